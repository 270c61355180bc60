"""Audio input: decode, validate, down-mix and resample to one analysis rate.

Everything mirsearch analyses passes through :func:`load_audio`, so every file gets the same checks and
the same one-line errors (``"take1.flac: audio is silent"``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from mirsearch.errors import InputError, check_positive

log = logging.getLogger(__name__)

#: analysis sample rate (Hz) used throughout mirsearch
SR = 22050
#: file extensions :func:`load_audio` accepts
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")
#: shortest audio that can be analysed (seconds)
MIN_DURATION = 0.5
#: longest audio accepted by default (seconds); protects against runaway memory use
MAX_DURATION = 4 * 3600.0
#: RMS level below which audio counts as silent (about -80 dBFS)
SILENCE_RMS = 1e-4


def validate_audio(
    y: np.ndarray,
    *,
    sr: float,
    name: str = "audio",
    min_duration: float = MIN_DURATION,
    max_duration: float = MAX_DURATION,
) -> None:
    """Check that a signal can be analysed.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal.
    sr : float > 0
        Sample rate in Hz.
    name : str
        File name or label used in error messages.
    min_duration, max_duration : float
        Accepted duration range in seconds.

    Raises
    ------
    InputError
        If the signal is not 1-D, empty, non-finite, too short, too long or silent.
    """
    check_positive("sr", sr)
    if y.ndim != 1:
        raise InputError(f"{name}: expected a mono signal, got shape {y.shape}")
    if y.size == 0:
        raise InputError(f"{name}: audio is empty (0 samples)")
    if not np.all(np.isfinite(y)):
        raise InputError(f"{name}: audio contains NaN or infinite samples")
    duration = y.size / sr
    if duration < min_duration:
        raise InputError(f"{name}: audio is too short ({duration:.2f} s < {min_duration:g} s)")
    if duration > max_duration:
        raise InputError(f"{name}: audio is too long ({duration:.0f} s > {max_duration:.0f} s)")
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    if rms < SILENCE_RMS:
        raise InputError(f"{name}: audio is silent (RMS {rms:.1e})")


def load_audio(
    path: str | os.PathLike,
    *,
    sr: int = SR,
    min_duration: float = MIN_DURATION,
    max_duration: float = MAX_DURATION,
) -> tuple[np.ndarray, int]:
    """Decode an audio file to a validated mono signal at ``sr``.

    Parameters
    ----------
    path : path-like
        wav, flac, ogg or mp3 file (anything libsndfile decodes), any sample rate and channel count.
    sr : int > 0
        Target sample rate in Hz; the signal is resampled with soxr (high quality).
    min_duration, max_duration : float
        Accepted duration range in seconds.

    Returns
    -------
    y : np.ndarray, shape (n_samples,), float32
        Mono signal (channel mean).
    sr : int
        The sample rate of ``y``.

    Raises
    ------
    InputError
        Unreadable file or audio that fails :func:`validate_audio`.
    """
    import soundfile as sf
    import soxr

    check_positive("sr", sr)
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises its own types with long messages
        raise InputError(f"{name}: unreadable audio ({_first_line(exc)})") from None
    if info.frames == 0 or info.samplerate <= 0:
        raise InputError(f"{name}: audio is empty (0 samples)")
    if info.frames / info.samplerate > max_duration:
        raise InputError(f"{name}: audio is too long ({info.frames / info.samplerate:.0f} s > {max_duration:.0f} s)")
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise InputError(f"{name}: unreadable audio ({_first_line(exc)})") from None
    if data.shape[0] == 0:
        raise InputError(f"{name}: audio is empty (0 samples)")
    y = data.mean(axis=1)
    if not np.all(np.isfinite(y)):
        raise InputError(f"{name}: audio contains NaN or infinite samples")
    if file_sr != sr:
        y = soxr.resample(y, file_sr, sr, quality="HQ").astype(np.float32, copy=False)
    validate_audio(y, sr=sr, name=name, min_duration=min_duration, max_duration=max_duration)
    log.debug("%s: %.1f s, %d Hz -> %d Hz", name, y.size / sr, file_sr, sr)
    return np.ascontiguousarray(y, dtype=np.float32), sr


def is_audio_file(path: str | os.PathLike) -> bool:
    """True if the file extension is one :func:`load_audio` accepts."""
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
