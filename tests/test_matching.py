"""Subsequence DTW against librosa, a hand-computed example, and the match picker."""

import librosa
import numpy as np
import pytest

from mirsearch.errors import ParameterError
from mirsearch.matching import (
    STEPS,
    WEIGHTS,
    accumulated_cost,
    backtrack,
    cosine_cost,
    find_matches,
    subsequence_dtw,
    subsequence_dtw_shifts,
)


def test_hand_computed_accumulated_cost():
    # steps (2,1), (1,2), (1,1) with weights (2,1,1); values worked out by hand
    C = np.array([[1, 0, 2, 3], [2, 1, 0, 4], [0, 3, 1, 0]], dtype=float)
    D, idx = accumulated_cost(C, subseq=True)
    inf = np.inf
    expected = np.array([[1, 0, 2, 3], [inf, 2, 0, 4], [inf, 7, 2, 0]])
    np.testing.assert_array_equal(D, expected)
    path = backtrack(idx, STEPS, (2, 3), subseq=True)
    np.testing.assert_array_equal(path, [[2, 3], [1, 2], [0, 1]])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shape", [(7, 40), (25, 200), (3, 5)])
def test_equals_librosa_subsequence_dtw(seed, shape):
    rng = np.random.default_rng(seed)
    n, m = shape
    X = rng.random((12, n))
    Y = rng.random((12, m))
    C = cosine_cost(X, Y)
    D, wp = librosa.sequence.dtw(C=C, subseq=True, step_sizes_sigma=STEPS, weights_mul=WEIGHTS)
    result = subsequence_dtw(X, Y, return_path=True)
    np.testing.assert_allclose(result.accumulated, D[-1], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(result.path, wp)
    # the start frame carried along equals the end of librosa's backtracked path
    assert result.start_frames[np.argmin(D[-1])] == wp[-1, 1]


def test_generic_steps_match_librosa():
    rng = np.random.default_rng(5)
    X, Y = rng.random((12, 9)), rng.random((12, 60))
    steps = np.array([[1, 1], [1, 0], [0, 1]])
    weights = np.array([2.0, 1.0, 1.0])
    D, wp = librosa.sequence.dtw(C=cosine_cost(X, Y), subseq=True, step_sizes_sigma=steps, weights_mul=weights)
    result = subsequence_dtw(X, Y, steps=steps, weights=weights, return_path=True)
    np.testing.assert_allclose(result.accumulated, D[-1], rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(result.path, wp)


def test_fast_kernel_equals_generic_kernel_for_all_shifts():
    rng = np.random.default_rng(3)
    X, Y = rng.random((12, 30)), rng.random((12, 500))
    mf, start = subsequence_dtw_shifts(X, Y)
    for k in range(12):
        ref = subsequence_dtw(np.roll(X, k, axis=0), Y)
        np.testing.assert_allclose(mf[k], ref.matching_function, atol=1e-5)
        np.testing.assert_array_equal(start[k], ref.start_frames)


def test_planted_query_found_at_its_shift():
    rng = np.random.default_rng(7)
    Y = rng.random((12, 400)).astype(np.float32)
    X = np.roll(Y[:, 120:160], -5, axis=0)  # query is the excerpt transposed down by 5
    mf, start = subsequence_dtw_shifts(X, Y)
    k, e = np.unravel_index(np.argmin(mf), mf.shape)
    assert (k, e, start[k, e]) == (5, 159, 120)
    assert mf[k, e] == pytest.approx(0.0, abs=1e-5)


def test_find_matches_suppresses_neighbourhood():
    mf = np.full(100, 1.0)
    mf[20], mf[21], mf[70] = 0.1, 0.11, 0.2
    start = np.arange(100) - 9
    matches = find_matches(mf, start, top=3)
    assert [(s, e) for s, e, _ in matches[:2]] == [(11, 20), (61, 70)]
    assert len(matches) == 3 and matches[2][2] == 1.0


def test_bad_parameters():
    with pytest.raises(ParameterError):
        subsequence_dtw(np.ones((12, 3)), np.ones((11, 10)))
    with pytest.raises(ParameterError):
        subsequence_dtw(np.ones((12, 3)), np.ones((12, 10)), weights=np.array([1.0, 1.0]))
    with pytest.raises(ParameterError):
        subsequence_dtw(np.full((12, 3), np.nan), np.ones((12, 10)))
    with pytest.raises(ParameterError):
        find_matches(np.ones(3), np.zeros(3, int), top=0)


@pytest.mark.parametrize("default_steps", [True, False])
def test_sequence_boundaries_equal_separate_runs(default_steps):
    rng = np.random.default_rng(11)
    X = rng.random((12, 10))
    A, B = rng.random((12, 50)), rng.random((12, 35))
    kw = {} if default_steps else {"steps": np.array([[1, 1], [1, 0], [0, 1]]), "weights": np.array([2.0, 1, 1])}
    mf, start = subsequence_dtw_shifts(X, np.hstack([A, B]), shifts=[0, 4], sequence_starts=[50], **kw)
    for part, sl, offset in ((A, slice(0, 50), 0), (B, slice(50, 85), 50)):
        ref_mf, ref_start = subsequence_dtw_shifts(X, part, shifts=[0, 4], **kw)
        np.testing.assert_allclose(mf[:, sl], ref_mf, atol=1e-6)
        finite = np.isfinite(ref_mf)
        np.testing.assert_array_equal(start[:, sl][finite], ref_start[finite] + offset)


@pytest.mark.parametrize(("n_segments", "serial_cells"), [(1, 0), (3, 0), (8, 0), (None, 1 << 30)])
def test_best_over_shifts_equals_per_shift_minimum(n_segments, serial_cells, monkeypatch):
    from mirsearch.matching import subsequence
    from mirsearch.matching.subsequence import best_over_shifts, unit_columns

    monkeypatch.setattr(subsequence, "SERIAL_CELLS", serial_cells)  # 0: always the parallel kernel
    rng = np.random.default_rng(4)
    X = rng.random((12, 15))
    Y = rng.random((12, 700))
    starts = [0, 100, 350, 351, 600]
    mf, start = subsequence_dtw_shifts(X, Y, sequence_starts=starts)
    reset = np.zeros(700, bool)
    reset[starts] = True
    cost, best_start, shift = best_over_shifts(
        unit_columns(X), unit_columns(Y), range(12), reset=reset, n_segments=n_segments, block=64
    )
    np.testing.assert_allclose(cost, mf.min(axis=0), atol=1e-6)
    finite = np.isfinite(cost)
    k = mf.argmin(axis=0)
    np.testing.assert_array_equal(shift[finite], k[finite])
    np.testing.assert_array_equal(best_start[finite], start[k, np.arange(700)][finite])
