"""MFCC statistics and the Gaussian KL baseline against librosa and closed forms."""

import numpy as np
import pytest

from mirsearch.errors import ParameterError
from mirsearch.features.timbre_stats import (
    Gaussian,
    fit_gaussian,
    gaussian_kl_matrix,
    mfcc,
    mfcc_statistics,
)


def test_mfcc_equals_librosa():
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    t = np.arange(22050) / 22050
    y = (0.4 * np.sin(2 * np.pi * 330 * t) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
    M, rate = mfcc(y, sr=22050)
    ref = librosa.feature.mfcc(y=y, sr=22050, n_mfcc=20, n_mels=40, pad_mode="constant")
    assert M.shape == ref.shape and rate == pytest.approx(22050 / 512)
    np.testing.assert_allclose(M, ref, atol=0.05, rtol=1e-3)


def test_statistics_and_gaussian():
    M = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 3.0]])
    np.testing.assert_allclose(mfcc_statistics(M), [2.0, 1.0, 2 / 3, 2.0])
    g = fit_gaussian(M, ridge=0.0)
    np.testing.assert_allclose(g.mean, [2.0, 1.0])
    np.testing.assert_allclose(g.cov, np.cov(M) + 1e-6 * np.eye(2))
    with pytest.raises(ParameterError):
        mfcc_statistics(np.zeros((20, 0)))


def test_symmetric_kl_closed_form():
    # 1-d: KL(p||q) + KL(q||p) = (s1/s2 + s2/s1)/2 + (m1 - m2)^2 (1/s1 + 1/s2)/2 - 1
    p = Gaussian(np.array([0.0]), np.array([[1.0]]))
    q = Gaussian(np.array([2.0]), np.array([[4.0]]))
    r = Gaussian(np.array([1.0, -1.0]), np.diag([2.0, 0.5]))
    s = Gaussian(np.array([0.0, 0.0]), np.eye(2))
    D = gaussian_kl_matrix([p, q])
    expected = (0.25 + 4.0) / 2 + 4.0 * (1.0 + 0.25) / 2 - 1
    assert D[0, 1] == pytest.approx(expected) and D[1, 0] == pytest.approx(expected)
    assert D[0, 0] == pytest.approx(0.0, abs=1e-12)
    # 2-d diagonal: the sum of the per-dimension divergences
    d2 = gaussian_kl_matrix([r], [s])[0, 0]
    per_dim = [(2.0 + 0.5) / 2 + 1.0 * (1 / 2 + 1) / 2 - 1, (0.5 + 2.0) / 2 + 1.0 * (2 + 1) / 2 - 1]
    assert d2 == pytest.approx(sum(per_dim))


def test_modulation_peaks_at_the_tremolo_rate():
    from mirsearch.features.logmel import log_mel, log_mel_patches
    from mirsearch.features.timbre_stats import MODULATION_EDGES, patch_modulation

    sr = 16000
    t = np.arange(sr * 3) / sr
    noise = np.random.default_rng(0).standard_normal(t.size)
    M = []
    for rate in (3.0, 12.0):  # amplitude modulated noise: bins [2, 4) and [8, 16) Hz
        L, fr = log_mel((noise * (1.2 + np.sin(2 * np.pi * rate * t))).astype(np.float32), sr=sr)
        M.append(patch_modulation(log_mel_patches(L), feature_rate=fr).reshape(-1, 8, len(MODULATION_EDGES) - 1))
    assert M[0].shape[1:] == (8, 6)
    assert np.all(np.argmax(M[0][1:-1].mean(axis=(0, 1))[1:], axis=0) + 1 == 1)
    assert np.all(np.argmax(M[1][1:-1].mean(axis=(0, 1)), axis=0) == 3)


def test_contrast_and_cepstra_separate_tone_from_noise():
    from mirsearch.features.logmel import log_mel, log_mel_patches
    from mirsearch.features.timbre_stats import N_CEPSTRA, patch_cepstra, patch_contrast

    sr = 16000
    t = np.arange(sr * 2) / sr
    tone = sum(np.sin(2 * np.pi * 440 * h * t) / h for h in range(1, 6)).astype(np.float32)
    noise = np.random.default_rng(1).standard_normal(t.size).astype(np.float32)
    P_tone, P_noise = (log_mel_patches(log_mel(y, sr=sr)[0]) for y in (tone, noise))
    assert patch_contrast(P_tone).mean() > 2 * patch_contrast(P_noise).mean()
    C = patch_cepstra(P_tone)
    assert C.shape == (len(P_tone), 2 * N_CEPSTRA) and np.all(C >= 0)
    # a steady tone: cepstra hardly move from frame to frame in the interior patches
    assert C[1:-1, N_CEPSTRA:].mean() < patch_cepstra(P_noise)[1:-1, N_CEPSTRA:].mean()


def test_tonality_of_major_and_minor_triads():
    from mirsearch.features.timbre_stats import patch_tonality

    major = np.zeros((12, 20))
    major[[0, 4, 7]] = 1.0  # C E G
    minor = np.zeros((12, 20))
    minor[[9, 0, 4]] = 1.0  # A C E
    times = np.array([[0.0, 0.96], [0.48, 1.44]])
    T_major = patch_tonality(major, times, feature_rate=10.0)
    T_minor = patch_tonality(minor, times, feature_rate=10.0)
    assert T_major[0, 0] > 0.7 and T_major[0, 1] > 0 > T_minor[0, 1]
    assert T_major[0, 2] == pytest.approx(np.log2(3), abs=1e-6) and T_major[0, 3] == 0.0
    assert np.all(patch_tonality(np.zeros((12, 20)), times, feature_rate=10.0) == 0)
