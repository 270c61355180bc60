"""Audio loading: formats, resampling, and one-line errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from mirsearch.audio import load_audio, validate_audio
from mirsearch.errors import InputError
from mirsearch.features.chroma import cens, chroma, estimate_tuning


def _tone(freq=440.0, sr=44100, seconds=2.0, channels=2):
    t = np.arange(int(sr * seconds)) / sr
    y = 0.3 * np.sin(2 * np.pi * freq * t)
    return np.stack([y] * channels, axis=1) if channels > 1 else y


@pytest.mark.parametrize("ext, subtype", [(".wav", "PCM_16"), (".flac", "PCM_24"), (".ogg", "VORBIS"), (".mp3", None)])
def test_formats_rates_and_channels(tmp_path, ext, subtype):
    path = tmp_path / f"tone{ext}"
    sf.write(path, _tone(sr=44100), 44100, subtype=subtype)
    y, sr = load_audio(path)
    assert sr == 22050 and y.ndim == 1 and y.dtype == np.float32
    assert abs(y.size / sr - 2.0) < 0.1
    spectrum = np.abs(np.fft.rfft(y[: sr // 2]))
    assert abs(np.argmax(spectrum) * sr / (sr // 2) - 440) < 5


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b"RIFF garbage"), "unreadable audio"),
        (lambda p: sf.write(p, np.zeros((0, 1)), 22050), "empty"),
        (lambda p: sf.write(p, np.zeros(22050 * 2), 22050), "silent"),
        (lambda p: sf.write(p, _tone(seconds=0.1, channels=1), 44100), "too short"),
    ],
)
def test_bad_audio_gives_one_line_error_naming_the_file(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(InputError, match=message) as info:
        load_audio(path)
    assert str(info.value).startswith("bad.wav:") and "\n" not in str(info.value)


def test_non_finite_and_too_long():
    with pytest.raises(InputError, match="NaN"):
        validate_audio(np.array([0.1, np.nan] * 22050, dtype=np.float32), sr=22050, name="x.wav")
    with pytest.raises(InputError, match="too long"):
        validate_audio(np.ones(22050 * 3, dtype=np.float32), sr=22050, name="x.wav", max_duration=2)


def test_chroma_of_a_tone_and_tuning_deviation():
    sr = 22050
    for cents, pc in [(0, 9), (40, 9), (-40, 9)]:
        y = _tone(440.0 * 2 ** (cents / 1200), sr=sr, seconds=3, channels=1).astype(np.float32)
        C, rate = chroma(y, sr=sr, feature_rate=10)
        assert rate == 10 and C.shape == (12, 30)
        assert np.all(C[:, 2:-2].argmax(0) == pc)
        assert abs(estimate_tuning(y, sr=sr) - cents / 100) < 0.06
        np.testing.assert_allclose(np.linalg.norm(C, axis=0), 1.0, atol=1e-5)
    # without tuning correction, 40 cents sharp leaks into the neighbour band
    y = _tone(440.0 * 2 ** (45 / 1200), sr=sr, seconds=3, channels=1).astype(np.float32)
    fixed, _ = chroma(y, sr=sr, tuning=0.0)
    tuned, _ = chroma(y, sr=sr)
    assert tuned[9, 5] > fixed[9, 5]


def test_chroma_level_invariance():
    sr = 22050
    y = (_tone(261.63, sr=sr, seconds=2, channels=1) + _tone(392.0, sr=sr, seconds=2, channels=1)).astype(np.float32)
    a, _ = chroma(y, sr=sr)
    b, _ = chroma(0.05 * y, sr=sr)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_cens_known_values():
    # constant chroma with 60 % in C and 40 % in G: quantised to 4 (>= 0.4) and 4, smoothing keeps it
    C = np.zeros((12, 50), dtype=np.float32)
    C[0], C[7] = 0.6, 0.4
    X, rate = cens(C, feature_rate=10, window=5, downsample=10)
    assert rate == 1.0 and X.shape == (12, 5)
    np.testing.assert_allclose(X[:, 2], np.eye(12)[0] / np.sqrt(2) + np.eye(12)[7] / np.sqrt(2), atol=1e-6)
    C[7] = 0.15  # 0.2 of the l1 mass after normalisation -> 3
    X, _ = cens(C, feature_rate=10, window=1, downsample=1)
    np.testing.assert_allclose(X[[0, 7], 0], np.array([4, 3]) / 5.0, atol=1e-6)


def test_register_weighting_favours_the_melody_register():
    from mirsearch.features.chroma import MIDI_MIN, register_weights

    w = register_weights(72.0, 1.0)
    assert w.shape == (88,) and w[72 - MIDI_MIN] == pytest.approx(1.0)
    assert w[60 - MIDI_MIN] == pytest.approx(np.exp(-0.5)) == pytest.approx(w[84 - MIDI_MIN])
    assert register_weights(None, 1.0) is None
    # a loud bass C2 under a softer E5: unweighted chroma says C, weighted chroma says E
    sr = 22050
    bass = _tone(65.41, sr=sr, seconds=2, channels=1)
    melody = 0.5 * _tone(659.26, sr=sr, seconds=2, channels=1)
    y = (bass + melody).astype(np.float32)
    flat, _ = chroma(y, sr=sr, register_centre=None)
    weighted, _ = chroma(y, sr=sr)
    assert np.all(flat[:, 3:-3].argmax(0) == 0)
    assert np.all(weighted[:, 3:-3].argmax(0) == 4)


def test_limits_are_checked_from_the_header_before_decoding(tmp_path):
    from mirsearch.audio import probe_audio

    path = tmp_path / "claims.flac"  # 2 s of 8-channel 192 kHz silence: a few kB that decode to 3 million samples
    sf.write(path, np.zeros((2 * 192000, 8), np.float32), 192000)
    assert path.stat().st_size < 50_000
    info = probe_audio(path)
    assert (info.channels, info.samplerate, info.frames) == (8, 192000, 384000)
    with pytest.raises(InputError, match="claims.flac: too much audio .*8 channels x 192000 Hz"):
        probe_audio(path, max_samples=10**6)
    with pytest.raises(InputError, match="too long"):
        probe_audio(path, max_duration=1.0)


def test_unknown_length_flac_is_read_and_streaming_equals_loading(tmp_path):
    from mirsearch.audio import stream_audio

    path = tmp_path / "u.flac"
    sf.write(path, _tone(sr=44100, seconds=3.0), 44100)
    whole, _ = load_audio(path)
    b = bytearray(path.read_bytes())  # STREAMINFO total samples = 0: "unknown"
    v = int.from_bytes(b[18:26], "big") & ~((1 << 36) - 1)
    b[18:26] = v.to_bytes(8, "big")
    (tmp_path / "u0.flac").write_bytes(bytes(b))
    y, _ = load_audio(tmp_path / "u0.flac")
    np.testing.assert_array_equal(y, whole)
    blocks = list(stream_audio(path))
    assert len(blocks) >= 1 and np.array_equal(np.concatenate(blocks), whole)
    with pytest.raises(InputError, match="too long"):
        load_audio(tmp_path / "u0.flac", max_duration=1.0)  # enforced while reading


def test_huge_finite_samples_are_refused_and_loud_ones_kept(tmp_path):
    y = _tone(sr=22050, channels=1).astype(np.float32)
    sf.write(tmp_path / "huge.wav", y * np.float32(1e30), 22050, subtype="FLOAT")
    with pytest.raises(InputError, match="huge.wav: sample values out of range"):
        load_audio(tmp_path / "huge.wav")
    sf.write(tmp_path / "loud.wav", y * np.float32(100.0), 22050, subtype="FLOAT")
    assert np.isfinite(load_audio(tmp_path / "loud.wav")[0]).all()


def test_many_channels_high_rate_and_opus(tmp_path):
    sf.write(tmp_path / "8ch.flac", _tone(sr=192000, seconds=1.0, channels=8), 192000)
    y, sr = load_audio(tmp_path / "8ch.flac")
    assert sr == 22050 and abs(y.size - 22050) <= 1
    sf.write(tmp_path / "x.opus", _tone(sr=48000, seconds=2.0, channels=2), 48000, format="OGG", subtype="OPUS")
    assert abs(load_audio(tmp_path / "x.opus")[0].size / 22050 - 2.0) < 0.05
