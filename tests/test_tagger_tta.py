"""Test-time augmentation of the tagger: pitch moves by resampling and the average over them (describe.tagger)."""

from __future__ import annotations

import numpy as np
import pytest

from mirsearch.describe.tagger import (
    PITCH_TTA,
    TTA_SEMITONES,
    analyse,
    analyse_tta,
    pitch_shifted,
    tag_file,
    tag_signal,
)
from mirsearch.errors import ParameterError


def _tone(seconds: float, sr: int = 16000, f0: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.2 * np.sin(2 * np.pi * f0 * t) * (1 + 0.3 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)


def _peak_hz(y: np.ndarray, sr: int) -> float:
    """Frequency of the largest spectral peak (Hann window, parabolic interpolation of the log magnitude)."""
    X = np.log(np.abs(np.fft.rfft(y * np.hanning(len(y)))) + 1e-12)
    k = int(np.argmax(X[1:-1])) + 1
    d = 0.5 * (X[k - 1] - X[k + 1]) / (X[k - 1] - 2 * X[k] + X[k + 1])
    return (k + d) * sr / len(y)


@pytest.mark.parametrize("semitones", [1.0, -1.0, 2.0])
def test_a_pitch_move_of_a_tone_is_that_many_semitones_at_the_front_end_rate(semitones):
    from mirsearch.features.logmel import _resampled

    sr, f0 = 16000, 440.0
    y = (0.3 * np.sin(2 * np.pi * f0 * np.arange(4 * sr) / sr)).astype(np.float32)
    ys, rate = pitch_shifted(y, sr, semitones)
    assert ys is y  # the samples are only read at another rate
    heard = _resampled(ys, rate, sr)  # what the tagger's front end does with (ys, rate)
    assert _peak_hz(heard, sr) == pytest.approx(f0 * 2 ** (semitones / 12), rel=2e-4)  # within 0.35 cent
    assert len(heard) / sr == pytest.approx(4 * 2 ** (-semitones / 12), abs=2e-3)  # tempo moves with it


def test_pitch_moves_out_of_range_are_refused():
    y = _tone(1.0)
    for bad in (13.0, -12.5, float("nan")):
        with pytest.raises(ParameterError, match="semitones"):
            pitch_shifted(y, 16000, bad)
    with pytest.raises(ParameterError, match="semitones"):
        analyse_tta(y, 16000, semitones=(1.0, 20.0))


def test_the_tta_average_is_the_mean_of_the_single_runs():
    sr = 16000
    y = np.concatenate([_tone(5.0), _tone(4.0, f0=330.0)])
    runs = [analyse(y, sr), analyse(y, round(sr * 2 ** (-1 / 12))), analyse(y, round(sr * 2 ** (1 / 12)))]
    a = analyse_tta(y, sr, semitones=(-1.0, 1.0))
    np.testing.assert_allclose(a.tags, np.mean([r.tags for r in runs], axis=0), atol=1e-6)
    assert not np.allclose(a.tags, runs[0].tags, atol=1e-4)  # the moves do change the probabilities
    # patches: the signal's own grid and embeddings; each move's probabilities interpolated at the signal's centres
    np.testing.assert_array_equal(a.times, runs[0].times)
    np.testing.assert_array_equal(a.embeddings, runs[0].embeddings)
    centres = runs[0].times.mean(axis=1)
    by_hand = [runs[0].patch_probs]
    for r, s in zip(runs[1:], (-1, 1), strict=True):
        at = r.times.mean(axis=1) * round(sr * 2 ** (s / 12)) / sr
        by_hand.append(np.stack([np.interp(centres, at, r.patch_probs[:, k]) for k in range(len(a.names))], axis=1))
    np.testing.assert_allclose(a.patch_probs, np.mean(by_hand, axis=0), atol=1e-6)
    assert a.patch_probs.shape == runs[0].patch_probs.shape


def test_no_moves_is_the_plain_analysis_and_files_use_the_default(tmp_path):
    import soundfile as sf

    sr = 16000
    y = _tone(4.0)
    np.testing.assert_array_equal(analyse_tta(y, sr, semitones=()).tags, analyse(y, sr).tags)
    assert TTA_SEMITONES == () and PITCH_TTA == (-1.0, 1.0)  # off by default: a file tags as a collection stores it
    from mirsearch.audio import load_audio

    path = tmp_path / "tone.wav"
    sf.write(path, y, sr, subtype="FLOAT")
    names = analyse(y, sr).names
    plain = analyse(load_audio(path, sr=sr)[0], sr).tags
    assert tag_file(path).tags == pytest.approx(dict(zip(names, plain.tolist(), strict=True)), abs=1e-5)
    expected = analyse_tta(load_audio(path, sr=sr)[0], sr, semitones=PITCH_TTA).tags
    got = tag_file(path, tta=PITCH_TTA).tags
    assert got == pytest.approx(dict(zip(names, expected.tolist(), strict=True)), abs=1e-5)
    assert got != pytest.approx(tag_file(path).tags, abs=1e-6)  # the moves change something
    off = tag_signal(y, sr, tta=()).tags
    assert off == pytest.approx(dict(zip(analyse(y, sr).names, analyse(y, sr).tags.tolist(), strict=True)), abs=1e-6)
