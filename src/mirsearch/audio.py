"""Audio input: decode, validate, down-mix and resample to one analysis rate.

Everything mirsearch analyses passes through :func:`probe_audio` (header checks before any decoding) and
:func:`stream_audio` (decoding in blocks, down-mixed and resampled on the fly, every block checked), so every
file gets the same limits and the same one-line errors (``"take1.flac: audio is silent"``) and memory stays
flat in a file's length. :func:`load_audio` is the whole signal of a file that fits in memory.

Limits are counted from the header before decoding: channels, sample rate, and decoded samples (channels x
rate x duration), so a small file that claims hours of 8-channel 192 kHz audio is refused early. A header that
states no plausible length (a FLAC stream of unknown length) is decoded and the limits enforced while reading.
Sample values must be finite and at most :data:`MAX_AMPLITUDE` (80 dB above full scale): larger values (a
float WAV with samples of 1e30) would overflow the features.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirsearch.errors import InputError, check_positive

log = logging.getLogger(__name__)

#: analysis sample rate (Hz) used throughout mirsearch
SR = 22050
#: file extensions :func:`load_audio` accepts (everything libsndfile reads that has a header)
AUDIO_EXTENSIONS = (
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".snd",
    ".caf", ".w64", ".rf64", ".voc", ".paf", ".iff", ".svx", ".sf", ".ircam", ".nist", ".sph", ".mat",
    ".pvf", ".xi", ".htk", ".sds", ".avr", ".wve", ".sd2", ".mpc",
)  # fmt: skip
#: shortest audio that can be analysed (seconds)
MIN_DURATION = 0.5
#: longest audio accepted by default (seconds); protects against runaway work
MAX_DURATION = 4 * 3600.0
#: most channels a file may have
MAX_CHANNELS = 64
#: accepted sample rates of files (Hz)
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 768_000
#: most decoded samples (channels x frames) a file may hold: MAX_DURATION of 4 channels at 96 kHz
MAX_SAMPLES = int(MAX_DURATION * 4 * 96_000)
#: largest accepted sample magnitude (80 dB above full scale); beyond it features overflow
MAX_AMPLITUDE = 1e4
#: RMS level below which audio counts as silent (about -80 dBFS)
SILENCE_RMS = 1e-4
#: samples (all channels together) decoded per read
READ_SAMPLES = 1 << 20
#: a header's frame count is believed only up to this many frames per byte of file (compression bound)
_MAX_FRAMES_PER_BYTE = 8192

_stderr_lock = threading.Lock()


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says (checked against the limits by :func:`probe_audio`).

    Attributes
    ----------
    name : str
        File name for messages.
    samplerate : int
        Hz.
    channels : int
    frames : int or None
        Frames per channel; None when the header states no plausible length (then it is counted while decoding).
    format : str
        libsndfile's format name (``"FLAC"``, ``"WAV"``, ...).
    """

    name: str
    samplerate: int
    channels: int
    frames: int | None
    format: str

    @property
    def duration(self) -> float | None:
        """Seconds, or None when unknown."""
        return None if self.frames is None else self.frames / self.samplerate


def display_name(path: str | os.PathLike) -> str:
    """A file's name printable in any locale (undecodable bytes of the name shown as ``\\xNN``)."""
    name = Path(path).name or str(path)
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def printable(text: str | os.PathLike) -> str:
    """A path or message printable and JSON-encodable in any locale (undecodable bytes shown as ``\\xNN``)."""
    return os.fspath(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@contextlib.contextmanager
def captured_stderr(sink: list[str] | None, name: str) -> Iterator[None]:
    """Collect what C libraries (mpg123, libsndfile) write to file descriptor 2 while the block runs.

    Each non-empty line becomes ``"<name>: <line>"`` in ``sink``; with ``sink=None`` nothing is captured.
    """
    if sink is None:
        yield
        return
    with _stderr_lock, tempfile.TemporaryFile() as tmp:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all
            yield
            return
        try:
            os.dup2(tmp.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read(1 << 16).decode("utf-8", "replace")
            for line in dict.fromkeys(x.strip() for x in text.splitlines()):
                if line:
                    sink.append(f"{name}: {line[:300]}")


def _sf_message(exc: BaseException, path: Path) -> str:
    """libsndfile's message without the path it repeats ("Error opening '...': ")."""
    text = _first_line(exc)
    if ": " in text and text.startswith(("Error opening", "Error ")):
        text = text.split(": ", 1)[1]
    if "does not exist" in text.lower() and path.is_file():
        text = "format not recognised or data corrupt"
    return text.rstrip(".")


def probe_audio(
    path: str | os.PathLike,
    *,
    max_duration: float = MAX_DURATION,
    max_samples: int = MAX_SAMPLES,
    warnings: list[str] | None = None,
) -> AudioInfo:
    """Read and check a file's header before decoding.

    Parameters
    ----------
    path : path-like
        An audio file libsndfile reads.
    max_duration : float
        Longest accepted duration (seconds).
    max_samples : int
        Most decoded samples (channels x frames) accepted.
    warnings : list of str, optional
        Receives library messages printed while reading the header.

    Raises
    ------
    InputError
        Missing or unreadable file, or a header beyond the limits (channels, rate, duration, samples).
    """
    import soundfile as sf

    path = Path(path)
    name = display_name(path)
    try:
        if not path.is_file():
            raise InputError(f"{name}: no such file")
        size = path.stat().st_size
    except OSError as exc:  # name too long, permission denied, ...
        raise InputError(f"{name}: cannot read ({exc.strerror or type(exc).__name__})") from None
    if size == 0:
        raise InputError(f"{name}: file is empty (0 bytes)")
    try:
        with captured_stderr(warnings, name):
            info = sf.info(os.fsencode(path))
    except Exception as exc:  # libsndfile raises its own types with long messages
        raise InputError(f"{name}: unreadable audio ({_sf_message(exc, path)})") from None
    rate, channels = int(info.samplerate), int(info.channels)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise InputError(f"{name}: sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz")
    if not 1 <= channels <= MAX_CHANNELS:
        raise InputError(f"{name}: {channels} channels (at most {MAX_CHANNELS} are accepted)")
    frames = int(info.frames) if 0 <= info.frames <= size * _MAX_FRAMES_PER_BYTE else None
    if frames == 0:
        raise InputError(f"{name}: audio is empty (0 samples)")
    if frames is not None:
        _check_amount(name, frames, rate, channels, max_duration=max_duration, max_samples=max_samples)
    return AudioInfo(name, rate, channels, frames, str(info.format))


def _check_amount(name: str, frames: int, rate: int, channels: int, *, max_duration: float, max_samples: int):
    seconds = frames / rate
    if seconds > max_duration:
        raise InputError(f"{name}: audio is too long ({seconds:.0f} s > {max_duration:.0f} s)")
    if frames * channels > max_samples:
        raise InputError(
            f"{name}: too much audio ({channels} channels x {rate} Hz x {seconds:.0f} s = "
            f"{frames * channels:.3g} samples > {max_samples:.3g})"
        )


def stream_audio(
    path: str | os.PathLike,
    *,
    sr: int = SR,
    min_duration: float = MIN_DURATION,
    max_duration: float = MAX_DURATION,
    max_samples: int = MAX_SAMPLES,
    warnings: list[str] | None = None,
) -> Iterator[np.ndarray]:
    """Decode a file block by block as mono ``float32`` at ``sr``, checking every block.

    The blocks, concatenated, are the signal :func:`load_audio` returns (identical samples). The checks
    that need the whole signal (too short, silent) raise when the last block has been read, so a consumer
    that iterates to the end has validated the whole file.

    Parameters
    ----------
    path : path-like
        Any file libsndfile decodes, any rate and channel count.
    sr : int > 0
        Target rate in Hz (soxr, high quality, streamed).
    min_duration, max_duration : float
        Accepted duration range in seconds (also enforced while decoding a file of unknown length).
    max_samples : int
        Most decoded samples (channels x frames).
    warnings : list of str, optional
        Receives library messages (decoder warnings) as ``"<file name>: <message>"``; without it they are
        logged (INFO).

    Yields
    ------
    np.ndarray, shape (n,), float32
        Consecutive blocks (about one second of input or more each; the last may be short).

    Raises
    ------
    InputError
        Unreadable file, limits exceeded, non-finite or out-of-range samples, too short or silent audio.
    """
    check_positive("sr", sr)
    own = warnings is None  # no sink: decoder messages are logged (INFO) with the file's name, not printed
    warnings = [] if own else warnings
    try:
        yield from _stream(path, sr, (min_duration, max_duration, max_samples), warnings)
    finally:
        for line in warnings if own else ():
            log.info("%s", line)


def _stream(path, sr: int, limits: tuple[float, float, int], warnings: list[str]) -> Iterator[np.ndarray]:
    import soundfile as sf
    import soxr

    min_duration, max_duration, max_samples = limits
    info = probe_audio(path, max_duration=max_duration, max_samples=max_samples, warnings=warnings)
    name, rate, channels = info.name, info.samplerate, info.channels
    per_read = max(rate, READ_SAMPLES // channels)
    resampler = None if rate == sr else soxr.ResampleStream(rate, sr, 1, dtype="float32", quality="HQ")
    n_in, n_out, energy = 0, 0, 0.0
    try:
        with captured_stderr(warnings, name):
            fh = sf.SoundFile(os.fsencode(path))
    except Exception as exc:
        raise InputError(f"{name}: unreadable audio ({_sf_message(exc, Path(path))})") from None
    with fh:
        while True:
            try:
                with captured_stderr(warnings, name):
                    data = _read_block(fh, per_read, known_length=info.frames is not None)
            except Exception as exc:
                raise InputError(f"{name}: unreadable audio data ({_sf_message(exc, Path(path))})") from None
            last = data.shape[0] < per_read
            n_in += data.shape[0]
            _check_amount(name, n_in, rate, channels, max_duration=max_duration, max_samples=max_samples)
            y = _checked_mono(data, name)
            if resampler is not None:
                y = resampler.resample_chunk(y, last=last)
            if y.size:
                energy += float(np.dot(y.astype(np.float64), y.astype(np.float64)))
                n_out += y.size
                yield np.ascontiguousarray(y, dtype=np.float32)
            if last:
                break
    if n_out == 0:
        raise InputError(f"{name}: audio is empty (0 samples)")
    _check_level(name, n_out, sr, energy, min_duration=min_duration)
    log.debug("%s: %.1f s, %d Hz x %d -> %d Hz", name, n_out / sr, rate, channels, sr)


def _read_block(fh, frames: int, *, known_length: bool) -> np.ndarray:
    """Up to ``frames`` frames, shape (n, channels) float32.

    A file of unknown length cannot report its position, which :meth:`soundfile.SoundFile.read` asks for;
    it is read with libsndfile's own call.
    """
    if known_length:
        return fh.read(frames, dtype="float32", always_2d=True)
    from soundfile import LibsndfileError, _ffi, _snd

    buf = np.empty((frames, fh.channels), dtype=np.float32)
    n = int(_snd.sf_readf_float(fh._file, _ffi.cast("float *", _ffi.from_buffer(buf)), frames))
    code = int(_snd.sf_error(fh._file))
    if code:
        raise LibsndfileError(code)
    return buf[:n]


def _checked_mono(data: np.ndarray, name: str) -> np.ndarray:
    """Down-mix a block (frames, channels) after checking its values."""
    if data.size == 0:
        return np.zeros(0, np.float32)
    peak = float(np.max(np.abs(data)))  # NaN propagates
    if not np.isfinite(peak):
        raise InputError(f"{name}: audio contains NaN or infinite samples")
    if peak > MAX_AMPLITUDE:
        raise InputError(
            f"{name}: sample values out of range (peak {peak:.3g}, at most {MAX_AMPLITUDE:g} x full scale accepted)"
        )
    return data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]


def _check_level(name: str, n: int, sr: float, energy: float, *, min_duration: float) -> None:
    duration = n / sr
    if duration < min_duration:
        raise InputError(f"{name}: audio is too short ({duration:.2f} s < {min_duration:g} s)")
    rms = float(np.sqrt(energy / n))
    if rms < SILENCE_RMS:
        raise InputError(f"{name}: audio is silent (RMS {rms:.1e})")


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
        If the signal is not 1-D, empty, non-finite, out of range, too short, too long or silent.
    """
    check_positive("sr", sr)
    if y.ndim != 1:
        raise InputError(f"{name}: expected a mono signal, got shape {y.shape}")
    if y.size == 0:
        raise InputError(f"{name}: audio is empty (0 samples)")
    _checked_mono(y[:, None], name)
    duration = y.size / sr
    if duration > max_duration:
        raise InputError(f"{name}: audio is too long ({duration:.0f} s > {max_duration:.0f} s)")
    energy = float(np.dot(y.astype(np.float64), y.astype(np.float64)))
    _check_level(name, y.size, sr, energy, min_duration=min_duration)


def load_audio(
    path: str | os.PathLike,
    *,
    sr: int = SR,
    min_duration: float = MIN_DURATION,
    max_duration: float = MAX_DURATION,
    warnings: list[str] | None = None,
) -> tuple[np.ndarray, int]:
    """Decode an audio file to a validated mono signal at ``sr``.

    Parameters
    ----------
    path : path-like
        wav, flac, ogg, opus, mp3 file (anything libsndfile decodes), any sample rate and channel count.
    sr : int > 0
        Target sample rate in Hz; the signal is resampled with soxr (high quality).
    min_duration, max_duration : float
        Accepted duration range in seconds.
    warnings : list of str, optional
        Receives decoder messages (see :func:`stream_audio`).

    Returns
    -------
    y : np.ndarray, shape (n_samples,), float32
        Mono signal (channel mean).
    sr : int
        The sample rate of ``y``.

    Raises
    ------
    InputError
        Unreadable file or audio that fails the checks of :func:`stream_audio`.
    """
    blocks = list(stream_audio(path, sr=sr, min_duration=min_duration, max_duration=max_duration, warnings=warnings))
    y = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    return np.ascontiguousarray(y, dtype=np.float32), sr


def active_rms(y: np.ndarray, *, sr: int) -> float:
    """RMS (linear, full scale = 1) over the 50 ms frames of ``y`` within 40 dB of its loudest frame: the level of
    the music, not of its silences (the renderer sets it; the tagger's front end levels by it); 0 for silence."""
    check_positive("sr", sr)
    y = np.asarray(y, dtype=np.float64)
    hop = max(int(0.05 * sr), 1)
    n = len(y) // hop
    if n == 0:
        return float(np.sqrt(np.mean(y**2))) if len(y) else 0.0
    ms = np.mean(y[: n * hop].reshape(n, hop) ** 2, axis=1)
    active = ms[ms >= ms.max() * 1e-4]
    return float(np.sqrt(np.mean(active))) if len(active) else 0.0


def is_audio_file(path: str | os.PathLike) -> bool:
    """True if the file extension is one :func:`load_audio` accepts."""
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
