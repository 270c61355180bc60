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
