r"""Soft dynamic time warping (Cuturi and Blondel, ICML 2017) as a torch loss.

For a cost matrix :math:`C \in \mathbb{R}^{N \times M}` the DTW cost is the minimum of
:math:`\langle A, C \rangle` over all alignment matrices :math:`A` (step sizes (1, 0), (0, 1), (1, 1));
soft-DTW replaces the minimum by the smooth

.. math::  \min{}^\gamma(S) = -\gamma \log \sum_{s \in S} \exp(-s / \gamma),

which keeps Bellman's recursion

.. math::  R(n, m) = C(n, m) + \min{}^\gamma\{R(n-1, m-1), R(n-1, m), R(n, m-1)\},
           \quad R(0, 0) = 0, \; R(n, 0) = R(0, m) = \infty,

and :math:`\mathrm{SDTW}^\gamma(C) = R(N, M)`. Its gradient with respect to ``C`` is the *expected
alignment* :math:`E^\gamma(C)` under the Gibbs distribution :math:`p(A) \propto \exp(-\langle A, C
\rangle / \gamma)`, computed in :math:`O(NM)` by the backward recursion (algorithm 2 of the paper)

.. math::  E(n, m) = E(n+1, m)\, a + E(n, m+1)\, b + E(n+1, m+1)\, c, \quad
           a = e^{(R(n+1, m) - R(n, m) - C(n+1, m)) / \gamma}, \dots

with :math:`E(N, M) = 1`. Both recursions are numba kernels; :class:`SoftDTWFunction` wraps them as
a :class:`torch.autograd.Function` whose backward multiplies ``E`` by the incoming gradient. As
:math:`\gamma \to 0` the value tends to the DTW cost.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from mirsearch.errors import ParameterError


@numba.njit(cache=True)
def _softmin3(a: float, b: float, c: float, gamma: float) -> float:
    m = min(a, b, c)
    if m == np.inf:
        return np.inf
    s = np.exp(-(a - m) / gamma) + np.exp(-(b - m) / gamma) + np.exp(-(c - m) / gamma)
    return m - gamma * np.log(s)


@numba.njit(cache=True)
def softdtw_forward(C: np.ndarray, gamma: float) -> np.ndarray:
    """Accumulated soft-DTW matrix ``R``, shape ``(N + 2, M + 2)`` (1-based; ``R[N, M]`` is the value)."""
    N, M = C.shape
    R = np.full((N + 2, M + 2), np.inf)
    R[0, 0] = 0.0
    for n in range(1, N + 1):
        for m in range(1, M + 1):
            R[n, m] = C[n - 1, m - 1] + _softmin3(R[n - 1, m - 1], R[n - 1, m], R[n, m - 1], gamma)
    return R


@numba.njit(cache=True)
def softdtw_backward(C: np.ndarray, R: np.ndarray, gamma: float) -> np.ndarray:
    """Expected alignment ``E = d R[N, M] / d C``, shape ``(N, M)``; ``R`` from :func:`softdtw_forward`."""
    N, M = C.shape
    Cp = np.zeros((N + 2, M + 2))
    Cp[1 : N + 1, 1 : M + 1] = C
    Rp = R.copy()
    Rp[:, M + 1] = -np.inf
    Rp[N + 1, :] = -np.inf
    Rp[N + 1, M + 1] = R[N, M]
    E = np.zeros((N + 2, M + 2))
    E[N + 1, M + 1] = 1.0
    for m in range(M, 0, -1):
        for n in range(N, 0, -1):
            a = np.exp((Rp[n + 1, m] - Rp[n, m] - Cp[n + 1, m]) / gamma)
            b = np.exp((Rp[n, m + 1] - Rp[n, m] - Cp[n, m + 1]) / gamma)
            c = np.exp((Rp[n + 1, m + 1] - Rp[n, m] - Cp[n + 1, m + 1]) / gamma)
            E[n, m] = E[n + 1, m] * a + E[n, m + 1] * b + E[n + 1, m + 1] * c
    return E[1 : N + 1, 1 : M + 1]


class SoftDTWFunction(torch.autograd.Function):
    """Soft-DTW value of one cost matrix ``(N, M)``, differentiable with respect to it."""

    @staticmethod
    def forward(ctx, C: torch.Tensor, gamma: float) -> torch.Tensor:  # type: ignore[override]
        C_np = C.detach().cpu().double().numpy()
        R = softdtw_forward(C_np, float(gamma))
        ctx.save_for_backward(C)
        ctx.R = R
        ctx.gamma = float(gamma)
        N, M = C_np.shape
        return torch.as_tensor(R[N, M], dtype=C.dtype, device=C.device)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        (C,) = ctx.saved_tensors
        E = softdtw_backward(C.detach().cpu().double().numpy(), ctx.R, ctx.gamma)
        grad = torch.as_tensor(E, dtype=C.dtype, device=C.device) * grad_output
        return grad, None


def soft_dtw(C: torch.Tensor, *, gamma: float = 0.1) -> torch.Tensor:
    """Soft-DTW value of a cost matrix.

    Parameters
    ----------
    C : torch.Tensor, shape (N, M)
        Non-negative local costs between two sequences of lengths ``N`` and ``M``.
    gamma : float > 0
        Temperature of the soft minimum; smaller is closer to DTW.

    Returns
    -------
    torch.Tensor, scalar
        :math:`\\mathrm{SDTW}^\\gamma(C)`; its gradient with respect to ``C`` is the expected alignment.
    """
    if not gamma > 0:
        raise ParameterError(f"gamma={gamma!r} must be > 0")
    if C.ndim != 2 or C.shape[0] == 0 or C.shape[1] == 0:
        raise ParameterError(f"C: expected a non-empty (N, M) cost matrix, got shape {tuple(C.shape)}")
    return SoftDTWFunction.apply(C, gamma)
