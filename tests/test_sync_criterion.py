"""The "not the same piece" check of audio-audio synchronisation: both nulls (reversed recording, all pairs)."""

from types import SimpleNamespace

import numpy as np
import pytest

from mirsearch.errors import InputError
from mirsearch.matching.sync import SyncResult
from mirsearch.sync.audio import MAX_COST_RATIO, MAX_MEAN_COST_RATIO, AlignOptions, _check_match, synchronise


def test_mean_cost_ratio_is_path_cost_over_all_pairs_cost():
    r = SyncResult(path=np.zeros((1, 2), np.int64), feature_rate=50.0, cost=0.0, coarse_path_cost=0.1,
                   coarse_mean_cost=0.4, coarse_reverse_cost=0.125)  # fmt: skip
    assert r.mean_cost_ratio == pytest.approx(0.25)
    assert r.cost_ratio == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("ratio", "mean_ratio", "max_mean", "refused"),
    [
        (0.5, 0.9, MAX_MEAN_COST_RATIO, False),  # far cheaper than the reversal: accepted whatever the mean
        (0.8, 0.3, MAX_MEAN_COST_RATIO, False),  # the reversal fits too (static harmony), chance does not
        (0.8, 0.6, MAX_MEAN_COST_RATIO, True),  # no cheaper than either null
        (0.8, 0.3, None, True),  # the reversal null alone (score alignment)
    ],
)
def test_refused_only_when_both_nulls_agree(ratio, mean_ratio, max_mean, refused):
    result = SimpleNamespace(cost_ratio=ratio, mean_cost_ratio=mean_ratio)
    if refused:
        with pytest.raises(InputError, match="not seem to be the same piece"):
            _check_match(result, "a", "b", MAX_COST_RATIO, max_mean)
    else:
        _check_match(result, "a", "b", MAX_COST_RATIO, max_mean)
    _check_match(result, "a", "b", None, max_mean)  # None disables the check


def _chords(degrees, frames: int, rng, shift: int = 0) -> np.ndarray:
    pcs = {1: (0, 4, 7), 4: (5, 9, 0), 5: (7, 11, 2)}
    cols = []
    for d in degrees:
        v = np.full(12, 0.05, np.float32)
        v[list(pcs[d])] = 1.0
        cols.append(np.repeat(v[:, None], frames, axis=1))
    C = np.roll(np.concatenate(cols, axis=1), shift, axis=0)
    return (C + 0.05 * rng.random(C.shape)).astype(np.float32)


def test_unrelated_progression_refused_and_same_progression_kept():
    rng = np.random.default_rng(0)
    a = _chords([1, 4, 5, 1, 4, 1, 5, 1] * 2, 100, rng)
    same = _chords([1, 4, 5, 1, 4, 1, 5, 1] * 2, 130, rng, shift=2)  # slower, two semitones up
    other = _chords([4, 5, 1, 5, 4, 1, 4, 5] * 2, 130, rng, shift=2)
    opts = AlignOptions(onsets=False)
    kw = {"rate": 50.0, "options": opts, "names": ("a", "b"), "max_cost_ratio": MAX_COST_RATIO,
          "max_mean_ratio": MAX_MEAN_COST_RATIO}  # fmt: skip
    r = synchronise(a, same, None, None, **kw)
    assert r.mean_cost_ratio < 0.2 and r.cost_ratio < MAX_COST_RATIO
    with pytest.raises(InputError):
        synchronise(a, other, None, None, **kw)
