"""Soft-DTW forward and gradient against a direct numpy implementation of Cuturi & Blondel's recursion."""

import itertools

import numpy as np
import pytest
import torch

from mirsearch.errors import ParameterError
from mirsearch.training.softdtw import soft_dtw


def _softmin(values, gamma):
    v = np.asarray(values, dtype=np.float64)
    return -gamma * np.log(np.sum(np.exp(-v / gamma)))


def _reference_sdtw(C, gamma):
    """Straightforward recursion R(n,m) = C(n,m) + softmin(R(n-1,m-1), R(n-1,m), R(n,m-1))."""
    N, M = C.shape
    R = np.full((N + 1, M + 1), np.inf)
    R[0, 0] = 0.0
    for n in range(1, N + 1):
        for m in range(1, M + 1):
            R[n, m] = C[n - 1, m - 1] + _softmin([R[n - 1, m - 1], R[n - 1, m], R[n, m - 1]], gamma)
    return R[N, M]


def _all_alignments(N, M):
    """All monotone warping paths from (0,0) to (N-1,M-1) with steps (1,0), (0,1), (1,1)."""

    def rec(n, m):
        if (n, m) == (N - 1, M - 1):
            yield [(n, m)]
            return
        for dn, dm in ((1, 0), (0, 1), (1, 1)):
            if n + dn < N and m + dm < M:
                for rest in rec(n + dn, m + dm):
                    yield [(n, m)] + rest

    return list(rec(0, 0))


@pytest.mark.parametrize("gamma", [0.01, 0.1, 1.0, 10.0])
def test_forward_equals_reference(gamma):
    rng = np.random.default_rng(1)
    C = rng.uniform(0, 2, size=(7, 5))
    value = soft_dtw(torch.as_tensor(C), gamma=gamma)
    assert float(value) == pytest.approx(_reference_sdtw(C, gamma), rel=1e-10)


def test_forward_is_soft_minimum_over_all_alignments():
    rng = np.random.default_rng(2)
    C = rng.uniform(0, 1, size=(4, 3))
    costs = [sum(C[n, m] for n, m in path) for path in _all_alignments(4, 3)]
    gamma = 0.5
    assert float(soft_dtw(torch.as_tensor(C), gamma=gamma)) == pytest.approx(_softmin(costs, gamma), rel=1e-10)
    # gamma -> 0 gives the DTW cost
    assert float(soft_dtw(torch.as_tensor(C), gamma=1e-4)) == pytest.approx(min(costs), abs=1e-3)


def test_gradient_is_expected_alignment():
    rng = np.random.default_rng(3)
    C = rng.uniform(0, 1, size=(4, 3))
    gamma = 0.3
    paths = _all_alignments(4, 3)
    costs = np.array([sum(C[n, m] for n, m in p) for p in paths])
    w = np.exp(-(costs - costs.min()) / gamma)
    w /= w.sum()
    E = np.zeros_like(C)
    for weight, p in zip(w, paths, strict=True):
        for n, m in p:
            E[n, m] += weight
    Ct = torch.as_tensor(C, dtype=torch.float64).requires_grad_(True)
    soft_dtw(Ct, gamma=gamma).backward()
    np.testing.assert_allclose(Ct.grad.numpy(), E, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("shape", [(5, 4), (3, 6), (1, 4), (6, 1)])
def test_gradcheck_finite_differences(shape):
    rng = np.random.default_rng(4)
    C = torch.as_tensor(rng.uniform(0, 1, size=shape), dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda c: soft_dtw(c, gamma=0.2), (C,), eps=1e-6, atol=1e-6)


def test_gradient_flows_through_cost_computation():
    # the cost matrix as a function of network outputs; compare with finite differences by gradcheck
    rng = np.random.default_rng(5)
    x = torch.as_tensor(rng.normal(size=(6, 3)), dtype=torch.float64).requires_grad_(True)
    y = torch.as_tensor(rng.normal(size=(4, 3)), dtype=torch.float64)

    def f(x):
        C = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
        return soft_dtw(C, gamma=0.5)

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-6)


def test_rejects_bad_parameters():
    with pytest.raises(ParameterError, match="gamma"):
        soft_dtw(torch.zeros(2, 2), gamma=0.0)
    with pytest.raises(ParameterError, match="C"):
        soft_dtw(torch.zeros(0, 2))


def test_small_gamma_matches_hard_dtw_on_identity_costs():
    # two identical sequences: diagonal path costs 0
    x = np.array([0.0, 1.0, 2.0, 3.0])
    C = (x[:, None] - x[None, :]) ** 2
    assert float(soft_dtw(torch.as_tensor(C), gamma=1e-3)) == pytest.approx(0.0, abs=1e-2)
    assert list(itertools.islice(_all_alignments(2, 2), 5)) == [
        [(0, 0), (1, 0), (1, 1)],
        [(0, 0), (0, 1), (1, 1)],
        [(0, 0), (1, 1)],
    ]
