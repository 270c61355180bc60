"""The numpy log-mel front end against librosa with the same settings, and its patches."""

import numpy as np
import pytest

from mirsearch.errors import ParameterError
from mirsearch.features.logmel import (
    YAMNET,
    LogMelConfig,
    log_mel,
    log_mel_patches,
    mel_filters,
    patch_times,
)

librosa = pytest.importorskip("librosa")


@pytest.mark.parametrize("htk,norm", [(True, None), (False, "slaney"), (True, "slaney"), (False, None)])
def test_mel_filters_equal_librosa(htk, norm):
    ours = mel_filters(sr=16000, n_fft=512, n_mels=64, fmin=125.0, fmax=7500.0, htk=htk, norm=norm)
    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, fmin=125.0, fmax=7500.0, htk=htk, norm=norm)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("center", [False, True])
def test_yamnet_log_mel_equals_librosa(center):
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2) / 16000
    y = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    config = YAMNET.with_options(center=center)
    L, rate = log_mel(y, sr=16000, config=config)
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=16000,
        n_fft=512,
        win_length=400,
        hop_length=160,
        center=center,
        pad_mode="constant",
        power=1.0,
        n_mels=64,
        fmin=125.0,
        fmax=7500.0,
        htk=True,
        norm=None,
    )
    ref = np.log(mel + 0.001)
    assert rate == 100.0
    assert L.shape == ref.shape and L.dtype == np.float32
    np.testing.assert_allclose(L, ref, atol=2e-4)


def test_other_rate_is_resampled_and_power_two():
    rng = np.random.default_rng(1)
    y = rng.standard_normal(22050).astype(np.float32) * 0.1
    L, _ = log_mel(y, sr=22050)
    assert L.shape == (64, 1 + (16000 - 512) // 160)
    cfg = LogMelConfig(
        sr=22050,
        n_fft=1024,
        win_length=1024,
        hop_length=512,
        n_mels=40,
        fmin=0.0,
        fmax=11025.0,
        mel_scale="slaney",
        norm="slaney",
        power=2.0,
        log_offset=1e-6,
    )
    L2, rate = log_mel(y, sr=22050, config=cfg)
    ref = np.log(
        librosa.feature.melspectrogram(
            y=y, sr=22050, n_fft=1024, hop_length=512, center=False, n_mels=40, fmin=0.0, fmax=11025.0
        )
        + 1e-6
    )
    np.testing.assert_allclose(L2, ref, atol=2e-3)
    assert rate == pytest.approx(22050 / 512)


def test_patches_cover_and_pad():
    L = np.arange(64 * 200, dtype=np.float32).reshape(64, 200)
    P = log_mel_patches(L)
    # starts 0, 48, 96, 144: the last covers frames 144..239, padded after frame 199
    assert P.shape == (4, 64, 96)
    np.testing.assert_array_equal(P[1], L[:, 48:144])
    np.testing.assert_array_equal(P[3, :, :56], L[:, 144:200])
    assert np.all(P[3, :, 56:] == np.float32(np.log(0.001)))
    short = log_mel_patches(L[:, :10])
    assert short.shape == (1, 64, 96)
    exact = log_mel_patches(L[:, :96])
    assert exact.shape == (1, 64, 96)
    times = patch_times(4)
    np.testing.assert_allclose(times[1], [(48 * 160 + 256) / 16000, (143 * 160 + 256) / 16000])


def test_bad_settings():
    with pytest.raises(ParameterError, match="win_length"):
        LogMelConfig(win_length=1024, n_fft=512)
    with pytest.raises(ParameterError, match="fmax"):
        LogMelConfig(fmax=9000.0)
    with pytest.raises(ParameterError, match="mel_scale"):
        LogMelConfig(mel_scale="mel")
    with pytest.raises(ParameterError, match="norm"):
        LogMelConfig(norm="l2")
    with pytest.raises(ParameterError):
        log_mel(np.zeros((2, 100), np.float32), sr=16000)
    L, _ = log_mel(np.zeros(100, np.float32), sr=16000)
    assert L.shape == (64, 1)
