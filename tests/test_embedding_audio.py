"""Augmented training versions of real recordings for the shingle embedding (mirsearch.training.embedding_audio)."""

from __future__ import annotations

import numpy as np
import pytest

from mirsearch.errors import ParameterError
from mirsearch.features.shingles import ShingleConfig
from mirsearch.training.embedding import PairSampler
from mirsearch.training.embedding_audio import AugmentOptions, augment, augmented_versions, passage_versions

SR = 22050


def _chords(seconds: float, *, seed: int = 0) -> np.ndarray:
    """A sequence of random three-note chords, one per second (sines)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * 1.0)) / SR
    parts = []
    for _ in range(int(seconds)):
        midi = 48 + rng.choice(24, 3, replace=False)
        parts.append(sum(np.sin(2 * np.pi * 440 * 2 ** ((m - 69) / 12) * t) for m in midi) / 3)
    return np.concatenate(parts).astype(np.float32)


def _peak_class(y: np.ndarray) -> int:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    f = np.fft.rfftfreq(len(y), 1 / SR)[np.argmax(spec)]
    return int(round(12 * np.log2(f / 440) + 69)) % 12


def test_speed_changes_tempo_and_pitch_together():
    y = np.sin(2 * np.pi * 440 * np.arange(2 * SR) / SR).astype(np.float32)
    z, tempo, semitones = augment(y, sr=SR, kind="speed", rng=np.random.default_rng(3))
    assert len(z) == pytest.approx(len(y) / tempo, rel=1e-3)
    assert semitones == pytest.approx(12 * np.log2(tempo))
    # the tone moves by the same factor: 440 Hz * tempo
    spec = np.abs(np.fft.rfft(z * np.hanning(len(z))))
    assert np.fft.rfftfreq(len(z), 1 / SR)[np.argmax(spec)] == pytest.approx(440 * tempo, rel=5e-3)


def test_noise_has_the_drawn_signal_to_noise_ratio():
    y = _chords(4)
    options = AugmentOptions(snr_db=(10.0, 10.0))
    z, tempo, semitones = augment(y, sr=SR, kind="noise", rng=np.random.default_rng(0), options=options)
    snr = 10 * np.log10(np.mean(y**2) / np.mean((z - y) ** 2))
    assert (tempo, semitones) == (1.0, 0.0)
    assert snr == pytest.approx(10.0, abs=0.01)


def test_band_limits_the_spectrum_and_codec_keeps_length():
    y = np.sin(2 * np.pi * 60 * np.arange(SR) / SR).astype(np.float32)  # below every low edge (100-500 Hz)
    z, _, _ = augment(y, sr=SR, kind="band", rng=np.random.default_rng(1))
    assert np.sqrt(np.mean(z[SR // 2 :] ** 2)) < 0.3 * np.sqrt(np.mean(y**2))
    tone = np.sin(2 * np.pi * 440 * np.arange(SR) / SR).astype(np.float32)
    c, _, _ = augment(tone, sr=SR, kind="codec", rng=np.random.default_rng(1))
    assert len(c) == len(tone) and _peak_class(c) == _peak_class(tone) == 9


def test_bad_options_are_refused():
    with pytest.raises(ParameterError, match="unknown"):
        AugmentOptions(kinds=("pitch", "reverse"))
    with pytest.raises(ParameterError, match="augmentation"):
        augment(np.zeros(100, np.float32), sr=SR, kind="reverse", rng=np.random.default_rng(0))


def _chroma_of(y):
    from mirsearch.features.matching_chroma import extract_chroma
    from mirsearch.features.registry import feature_config

    return extract_chroma(y, sr=SR, config=feature_config("chroma", feature_rate=10.0))[0]


def test_passage_versions_pair_up_in_the_sampler():
    options = AugmentOptions(versions=2, kinds=("speed", "noise", "band"), seed=0)
    rng = np.random.default_rng(0)
    versions = []
    for w in range(2):
        versions += passage_versions(_chords(24, seed=w), sr=SR, work=f"w{w}", chroma_of=_chroma_of, rng=rng,
                                     options=options)  # fmt: skip
    assert len(versions) == 6 and {v.work for v in versions} == {"w0", "w1"}
    for v in versions:  # tempo map: passage seconds -> seconds of the copy, whose chroma has that length
        assert v.audio_time[-1] == pytest.approx(v.chroma.shape[1] / 10.0, abs=0.25)
    config = ShingleConfig(length=10, hop=1, window=11, downsample=5)
    sampler = PairSampler(versions, config=config)
    A, P, W = sampler.batch(np.random.default_rng(0), 8)
    assert A.shape[1] == P.shape[1] == 120 and len(W) > 0
    assert np.allclose(np.linalg.norm(A, axis=1), 1, atol=1e-5)


def test_augmented_versions_are_cached(tmp_path):
    import soundfile as sf

    paths = []
    for i in range(2):
        paths.append(tmp_path / f"rec{i}.wav")
        sf.write(paths[-1], _chords(40, seed=i), SR)
    options = AugmentOptions(seconds=12.0, passages=2, versions=1, kinds=("noise", "band"))
    first = augmented_versions(paths, cache=tmp_path / "cache", options=options)
    assert len(first) == 2 * 2 * 2 and first[0].work == "real:rec0#0"
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 2
    again = augmented_versions(paths, cache=tmp_path / "cache", options=options)
    assert [v.name for v in again] == [v.name for v in first]
    assert all(np.array_equal(a.chroma, b.chroma) for a, b in zip(first, again, strict=True))
