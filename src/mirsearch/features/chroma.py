"""Chroma and CENS features from audio.

The chroma variant is a *tuning-corrected, register-weighted pitch chroma*, after Müller's STMSP pitch
features: the power spectrum (STFT, 4096-point Hann window at 22050 Hz) is pooled into 88 semitone
bands (A0-C8) whose centres are shifted by the recording's estimated tuning deviation, weighted by a
Gaussian over log frequency (one octave around C5), scaled so that the recording's loud frames are 1,
folded into 12 pitch classes, averaged to the output frame rate and l2-normalised. Why this variant:

- semitone pooling *with tuning estimation* keeps partials of a recording tuned 40 cents sharp in the
  right pitch class (plain STFT chroma with fixed bands smears them into the neighbour);
- themes mostly lie in the upper-middle register, above the accompaniment: the register weighting
  favours them (librosa's chroma filters do the same with two octaves around C5). No logarithmic
  compression: it raises the accompaniment as much as the melody. Both were chosen on the validation
  split of the standard benchmark (``benchmarks/tune_chroma.py``, docs/benchmarks.md): Top-1 0.43 with
  log compression (gamma 10, no weighting), 0.45 linear, 0.52 linear with the weighting. A narrower
  weighting (0.75 octave) scored higher there (0.59), but that split is mostly four-voice chorales whose
  melody is the soprano; one octave is kept so that themes in other registers still count;
- it is a matrix product with a sparse filter bank over a streamed STFT: linear time, flat memory.

CENS (chroma energy normalised statistics) quantises l1-normalised chroma, smooths it over a long
window and downsamples it: robust to articulation and local tempo, used for audio matching.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import scipy.ndimage
import scipy.signal
import scipy.sparse

from mirsearch._util.docs import doc_blocks
from mirsearch.errors import ParameterError, check_positive

log = logging.getLogger(__name__)

#: FFT size and hop of the underlying STFT at 22050 Hz (93 ms window, 23 ms hop)
N_FFT = 4096
HOP_LENGTH = 512
#: MIDI range of the pitch bands (piano range)
MIDI_MIN, MIDI_MAX = 21, 108
#: frames whose l2 norm falls below this are replaced by the uniform chroma vector
NORM_THRESHOLD = 1e-3
#: STFT frames processed at once (bounds memory for long recordings)
BLOCK_FRAMES = 1024
#: defaults chosen on the validation split of the standard benchmark (benchmarks/tune_chroma.py):
#: no compression, bands weighted by a Gaussian of one octave around C5
DEFAULT_GAMMA = 0.0
REGISTER_CENTRE = 72.0
REGISTER_WIDTH = 1.0
#: chroma frames weaker than this (relative power, -60 dB below the recording's loud frames) count as silent
SILENCE_POWER = 1e-6


@functools.lru_cache(maxsize=32)
def pitch_filterbank(sr: int, n_fft: int, tuning: float) -> scipy.sparse.csr_matrix:
    """Sparse map from STFT bins to semitone bands.

    Parameters
    ----------
    sr : int
        Sample rate (Hz).
    n_fft : int
        FFT size.
    tuning : float
        Tuning deviation in semitones, in [-0.5, 0.5) (0.4 = 40 cents sharp).

    Returns
    -------
    scipy.sparse.csr_matrix, shape (1 + n_fft // 2, 88)
        Entry (k, p) is 1 when bin k lies within +-0.5 semitone of band p's centre.
    """
    freqs = np.arange(1 + n_fft // 2) * sr / n_fft
    with np.errstate(divide="ignore"):
        midi = 69.0 + 12.0 * np.log2(freqs / 440.0) - tuning
    band = np.round(np.nan_to_num(midi, neginf=-1.0)).astype(np.int64)
    valid = np.isfinite(midi) & (band >= MIDI_MIN) & (band <= MIDI_MAX)
    rows = np.nonzero(valid)[0]
    cols = band[valid] - MIDI_MIN
    return scipy.sparse.csr_matrix(
        (np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(freqs.size, MIDI_MAX - MIDI_MIN + 1)
    )


def _stft_power_blocks(y: np.ndarray, *, n_fft: int, hop_length: int):
    """Yield power spectrogram blocks, shape (n_frames_block, 1 + n_fft // 2), centred frames."""
    pad = n_fft // 2
    yp = np.pad(y, (pad, pad))
    n_frames = 1 + (yp.size - n_fft) // hop_length
    window = scipy.signal.get_window("hann", n_fft).astype(np.float32)
    scale = 2.0 / window.sum()  # a full-scale sinusoid peaks near 1
    frames = np.lib.stride_tricks.sliding_window_view(yp, n_fft)[::hop_length][:n_frames]
    for start in range(0, n_frames, BLOCK_FRAMES):
        block = frames[start : start + BLOCK_FRAMES] * window
        spec = np.fft.rfft(block, axis=1)
        yield (spec.real**2 + spec.imag**2).astype(np.float32) * np.float32(scale**2)


def estimate_tuning(y: np.ndarray, *, sr: int, n_fft: int = N_FFT, max_seconds: float = 120.0) -> float:
    """Estimate the tuning deviation of a recording in semitones, in [-0.5, 0.5).

    Uses :func:`librosa.estimate_tuning` (parabolic peak interpolation) on the spectrum of up to
    ``max_seconds`` of audio taken evenly from the whole recording.
    """
    import librosa

    hop = n_fft // 2
    n_take = int(max_seconds * sr)
    if y.size > n_take:  # strided excerpts from across the recording
        n_chunks = 8
        chunk = n_take // n_chunks
        starts = np.linspace(0, y.size - chunk, n_chunks).astype(np.int64)
        y = np.concatenate([y[s : s + chunk] for s in starts])
    S = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop, center=False))
    if S.size == 0 or not np.any(S > 0):
        return 0.0
    tuning = float(librosa.estimate_tuning(S=S, sr=sr, n_fft=n_fft, bins_per_octave=12))
    return tuning if np.isfinite(tuning) else 0.0


@doc_blocks
def pitch_features(
    y: np.ndarray,
    *,
    sr: int,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    tuning: float | None = None,
) -> tuple[np.ndarray, float]:
    """Semitone-band energies (A0-C8) of a signal.

    Parameters
    ----------
    {signal}
    n_fft, hop_length : int
        STFT size and hop (samples).
    tuning : float, optional
        Tuning deviation in semitones; estimated when omitted.

    Returns
    -------
    P : np.ndarray, shape (88, n_frames), float32
        Power per semitone band.
    frame_rate : float
        Frames per second of ``P`` (``sr / hop_length``).
    """
    if tuning is None:
        check_positive("sr", sr)
        tuning = estimate_tuning(y, sr=sr, n_fft=n_fft)
    (P,), frame_rate = pitch_features_tunings(y, sr=sr, tunings=(tuning,), n_fft=n_fft, hop_length=hop_length)
    return P, frame_rate


def pitch_features_tunings(
    y: np.ndarray, *, sr: int, tunings, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH
) -> tuple[list[np.ndarray], float]:
    """:func:`pitch_features` of one signal at several tunings, from one pass of its STFT.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal at ``sr`` (Hz).
    tunings : sequence of float
        Tuning deviations in semitones (each band set centred on one).
    n_fft, hop_length : int
        STFT size and hop (samples).

    Returns
    -------
    bands : list of np.ndarray, each shape (88, n_frames), float32
        Power per semitone band, one array per tuning, equal to ``pitch_features(y, tuning=t)``.
    frame_rate : float
        Frames per second (``sr / hop_length``).
    """
    check_positive("sr", sr)
    check_positive("hop_length", hop_length)
    fbs = [pitch_filterbank(int(sr), int(n_fft), round(float(t), 2)) for t in tunings]
    parts: list[list[np.ndarray]] = [[] for _ in fbs]
    for block in _stft_power_blocks(y, n_fft=n_fft, hop_length=hop_length):
        for out, fb in zip(parts, fbs, strict=True):
            out.append(np.asarray(fb.T @ block.T))
    bands = [np.concatenate(p, axis=1).astype(np.float32) if p else np.zeros((88, 0), np.float32) for p in parts]
    return bands, sr / hop_length


def resample_frames(X: np.ndarray, *, frame_rate: float, feature_rate: float) -> np.ndarray:
    """Average frames into bins of ``1 / feature_rate`` seconds.

    Parameters
    ----------
    X : np.ndarray, shape (n_features, n_frames)
        Features at ``frame_rate`` (Hz).
    frame_rate, feature_rate : float > 0
        Input and output frame rates; ``feature_rate <= frame_rate``.

    Returns
    -------
    np.ndarray, shape (n_features, ceil(n_frames * feature_rate / frame_rate))
        Output frame ``k`` is the mean of the input frames whose time falls in
        ``[k / feature_rate, (k + 1) / feature_rate)``.
    """
    check_positive("feature_rate", feature_rate)
    if feature_rate > frame_rate:
        raise ParameterError(f"feature_rate={feature_rate} must be <= the input frame rate {frame_rate:.2f} Hz")
    n = X.shape[1]
    if n == 0:
        return X.copy()
    bins = np.floor(np.arange(n) / frame_rate * feature_rate + 1e-9).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
    sums = np.add.reduceat(X, starts, axis=1)
    counts = np.diff(np.r_[starts, n])
    out = np.zeros((X.shape[0], bins[-1] + 1), dtype=X.dtype)
    out[:, bins[starts]] = sums / counts
    return out


def normalize_frames(X: np.ndarray, *, norm: int = 2, threshold: float = NORM_THRESHOLD) -> np.ndarray:
    """Normalise each column to unit ``norm``; weak columns become the uniform vector.

    Parameters
    ----------
    X : np.ndarray, shape (n_features, n_frames)
    norm : {1, 2}
    threshold : float
        Columns with a norm below this are replaced by the unit-norm constant vector.

    Returns
    -------
    np.ndarray, same shape, float32 (a new array)
    """
    if norm not in (1, 2):
        raise ParameterError(f"norm={norm!r} must be 1 or 2")
    X = np.asarray(X, dtype=np.float32)
    d = X.shape[0]
    norms = np.abs(X).sum(axis=0) if norm == 1 else np.sqrt(np.square(X).sum(axis=0))
    out = np.empty_like(X)
    weak = norms < threshold
    out[:, ~weak] = X[:, ~weak] / norms[~weak]
    out[:, weak] = 1.0 / d if norm == 1 else 1.0 / np.sqrt(d)
    return out


def fold_chroma(P: np.ndarray) -> np.ndarray:
    """Sum semitone bands (A0 = MIDI 21 first) into 12 pitch classes, C first. Shape (12, n_frames)."""
    C = np.zeros((12, P.shape[1]), dtype=np.float32)
    for i in range(P.shape[0]):
        C[(MIDI_MIN + i) % 12] += P[i]
    return C


def register_weights(centre_midi: float | None, width_octaves: float) -> np.ndarray | None:
    """Gaussian weight of each semitone band (A0-C8) over log frequency.

    Parameters
    ----------
    centre_midi : float, optional
        MIDI pitch of weight 1 (72 = C5); ``None`` gives no weighting (returns ``None``).
    width_octaves : float > 0
        Standard deviation in octaves.

    Returns
    -------
    np.ndarray, shape (88,), float32, or None
    """
    if centre_midi is None:
        return None
    check_positive("width_octaves", width_octaves)
    midi = np.arange(MIDI_MIN, MIDI_MAX + 1, dtype=np.float64)
    return np.exp(-0.5 * ((midi - centre_midi) / (12.0 * width_octaves)) ** 2).astype(np.float32)


def _check_chroma_options(*, feature_rate: float, gamma: float) -> None:
    check_positive("feature_rate", feature_rate)
    if gamma < 0:
        raise ParameterError(f"gamma={gamma} must be >= 0")


@doc_blocks
def chroma(
    y: np.ndarray,
    *,
    sr: int,
    feature_rate: float = 10.0,
    gamma: float = DEFAULT_GAMMA,
    register_centre: float | None = REGISTER_CENTRE,
    register_width: float = REGISTER_WIDTH,
    tuning: float | None = None,
    normalize: bool = True,
) -> tuple[np.ndarray, float]:
    """Tuning-corrected, register-weighted pitch chroma of an audio signal (analysed at 22050 Hz; other
    sample rates work, with the same FFT size).

    Parameters
    ----------
    {signal}
    feature_rate : float > 0
        Output frames per second (at most ``sr / 512``); default 10 Hz.
    gamma : float >= 0
        Logarithmic compression ``log(1 + gamma * energy)`` of the band energies; 0 (the default) keeps
        the energies. The recording's loud frames are scaled to about 1 first (level invariance).
    register_centre : float, optional
        MIDI pitch where the band weighting peaks (72 = C5, see :func:`register_weights`); ``None``
        weighs all bands equally.
    register_width : float > 0
        Standard deviation of the band weighting in octaves.
    tuning : float, optional
        Tuning deviation in semitones; estimated from the signal when omitted.
    normalize : bool
        l2-normalise each frame; frames more than 60 dB below the loud frames become uniform.

    Returns
    -------
    C : np.ndarray, shape (12, n_frames), float32
        Chroma, index 0 = C. ``n_frames = ceil(duration * feature_rate)``.
    feature_rate : float
        Frames per second of ``C``.
    """
    _check_chroma_options(feature_rate=feature_rate, gamma=gamma)  # before the costly analysis
    P, frame_rate = pitch_features(y, sr=sr, tuning=tuning)
    C = chroma_from_pitch(
        P,
        frame_rate=frame_rate,
        feature_rate=feature_rate,
        gamma=gamma,
        register_centre=register_centre,
        register_width=register_width,
        normalize=normalize,
    )
    return C[:, : int(np.ceil(y.size / sr * feature_rate))], float(feature_rate)


def chroma_from_pitch(
    P: np.ndarray,
    *,
    frame_rate: float,
    feature_rate: float = 10.0,
    gamma: float = DEFAULT_GAMMA,
    register_centre: float | None = REGISTER_CENTRE,
    register_width: float = REGISTER_WIDTH,
    normalize: bool = True,
) -> np.ndarray:
    """Chroma from semitone-band energies (:func:`pitch_features`); the options are those of :func:`chroma`.

    Parameters
    ----------
    P : np.ndarray, shape (88, n_frames)
        Power per semitone band A0-C8 at ``frame_rate`` (Hz).

    Returns
    -------
    np.ndarray, shape (12, ceil(n_frames * feature_rate / frame_rate)), float32
    """
    _check_chroma_options(feature_rate=feature_rate, gamma=gamma)
    weights = register_weights(register_centre, register_width)
    if weights is not None:
        P = P * weights[:, None]
    # level invariance: scale so that the loud frames (99th percentile of the frame maxima) are ~1; the
    # same recording played louder or softer gives the same chroma, and "silent" is relative to it
    level = float(np.percentile(P.max(axis=0), 99)) if P.shape[1] else 0.0
    if level > 0:
        P = P / np.float32(level)
    threshold = SILENCE_POWER
    if gamma > 0:
        P = np.log1p(np.float32(gamma) * P)
        threshold = float(np.log1p(gamma * SILENCE_POWER))
    C = resample_frames(fold_chroma(P), frame_rate=frame_rate, feature_rate=feature_rate)
    if normalize:
        C = normalize_frames(C, threshold=threshold)
    return C.astype(np.float32, copy=False)


def cens(
    C: np.ndarray,
    *,
    feature_rate: float,
    window: int = 41,
    downsample: int = 10,
    thresholds: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4),
) -> tuple[np.ndarray, float]:
    """Chroma Energy Normalised Statistics from chroma.

    Parameters
    ----------
    C : np.ndarray, shape (12, n_frames)
        Non-negative chroma at ``feature_rate`` (any normalisation; l1-normalised here).
    feature_rate : float > 0
        Frame rate of ``C`` (Hz).
    window : int >= 1
        Length of the Hann smoothing window (frames of ``C``); 41 at 10 Hz covers about 4 s.
    downsample : int >= 1
        Keep every ``downsample``-th smoothed frame (10 at 10 Hz -> 1 Hz).
    thresholds : tuple of float
        Quantisation steps of the l1-normalised chroma (energy >= t adds 1).

    Returns
    -------
    X : np.ndarray, shape (12, ceil(n_frames / downsample)), float32
        l2-normalised CENS.
    feature_rate : float
        ``feature_rate / downsample``.
    """
    check_positive("feature_rate", feature_rate)
    if window < 1 or downsample < 1:
        raise ParameterError(f"window={window} and downsample={downsample} must be >= 1")
    if np.any(C < 0):
        raise ParameterError("CENS needs non-negative chroma")
    L1 = normalize_frames(C, norm=1)
    Q = np.zeros_like(L1)
    for t in thresholds:
        Q += L1 >= t
    if window > 1:
        w = scipy.signal.get_window("hann", window + 2)[1:-1].astype(np.float32)
        Q = scipy.ndimage.convolve1d(Q, w / w.sum(), axis=1, mode="constant")
    X = Q[:, ::downsample]
    return normalize_frames(X), feature_rate / downsample
