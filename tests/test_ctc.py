"""The numpy CTC forward recursion against torch.nn.CTCLoss and against hand computation."""

import itertools

import numpy as np
import pytest
import torch

from mirsearch.training.ctc import best_path, collapse, ctc_log_alpha, ctc_loss, extend_labels

BLANK = 12


def _torch_ctc(log_probs: np.ndarray, labels, blank: int) -> float:
    lp = torch.as_tensor(log_probs, dtype=torch.float64)[:, None, :]  # (T, 1, C)
    loss = torch.nn.CTCLoss(blank=blank, reduction="none")(
        lp,
        torch.as_tensor([labels], dtype=torch.long),
        torch.as_tensor([lp.shape[0]]),
        torch.as_tensor([len(labels)]),
    )
    return float(loss[0])


def _random_log_probs(rng, n_frames, n_classes=13):
    logits = rng.normal(size=(n_frames, n_classes)) * 2.0
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", range(6))
def test_equals_torch_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    n_frames = int(rng.integers(8, 40))
    labels = [int(v) for v in rng.integers(0, 12, int(rng.integers(1, 7)))]
    lp = _random_log_probs(rng, n_frames)
    assert ctc_loss(lp, labels, blank=BLANK) == pytest.approx(_torch_ctc(lp, labels, BLANK), rel=1e-9)


def test_equals_torch_with_repeated_labels_and_blank_zero():
    rng = np.random.default_rng(7)
    labels = [3, 3, 3, 5, 5, 1]  # repeats need blanks in between
    lp = _random_log_probs(rng, 15)
    assert ctc_loss(lp, labels, blank=BLANK) == pytest.approx(_torch_ctc(lp, labels, BLANK), rel=1e-9)
    # blank at index 0 (torch's default) with labels shifted
    lp0 = np.roll(lp, 1, axis=1)
    assert ctc_loss(lp0, [v + 1 for v in labels], blank=0) == pytest.approx(
        _torch_ctc(lp0, [v + 1 for v in labels], 0), rel=1e-9
    )


def test_too_few_frames_is_infinite():
    # "A A" needs at least 3 frames (A, blank, A)
    lp = np.log(np.full((2, 13), 1 / 13))
    assert ctc_loss(lp, [0, 0], blank=BLANK) == np.inf
    assert np.isfinite(ctc_loss(np.log(np.full((3, 13), 1 / 13)), [0, 0], blank=BLANK))


def test_hand_checked_tiny_case():
    # 3 classes: a=0, b=1, blank=2; 2 frames; label "a".
    # Valid alignments of length 2 collapsing to "a": (a,a), (a,-), (-,a)
    p = np.array([[0.5, 0.2, 0.3], [0.6, 0.1, 0.3]])
    expected = 0.5 * 0.6 + 0.5 * 0.3 + 0.3 * 0.6  # = 0.63
    assert ctc_loss(np.log(p), [0], blank=2) == pytest.approx(-np.log(0.63), rel=1e-12)
    assert expected == pytest.approx(0.63)
    la = np.exp(ctc_log_alpha(np.log(p), [0], blank=2))
    # extended sequence (-, a, -); alpha_1 = (0.3, 0.5, 0); alpha_2(1) = 0.3*0.3, alpha_2(2) = (0.3+0.5)*0.6,
    # alpha_2(3) = (0.5 + 0)*0.3
    np.testing.assert_allclose(la, [[0.3, 0.5, 0.0], [0.09, 0.48, 0.15]], rtol=1e-12)


def test_brute_force_sum_over_alignments():
    rng = np.random.default_rng(3)
    n_classes, blank, n_frames = 4, 3, 5
    lp = _random_log_probs(rng, n_frames, n_classes)
    for labels in ([0, 1], [1, 1], [2, 0, 2]):
        total = 0.0
        for a in itertools.product(range(n_classes), repeat=n_frames):
            if collapse(a, blank=blank) == labels:
                total += np.exp(sum(lp[t, a[t]] for t in range(n_frames)))
        assert ctc_loss(lp, labels, blank=blank) == pytest.approx(-np.log(total), rel=1e-10)


def test_collapse_and_extend():
    assert collapse([7, 12, 7, 12, 7, 3, 3, 5, 12, 5, 12, 5, 2, 2, 2], blank=12) == [7, 7, 7, 3, 5, 5, 5, 2]
    np.testing.assert_array_equal(extend_labels([4, 4], blank=12), [12, 4, 12, 4, 12])
    lp = np.log(np.array([[0.9, 0.05, 0.05], [0.1, 0.1, 0.8], [0.9, 0.05, 0.05], [0.1, 0.8, 0.1]]))
    assert best_path(lp, blank=2) == [0, 0, 1]
