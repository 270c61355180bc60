"""Frame features for speech/music segmentation: log-mel (the CNN's input), the classic discriminator features of
Scheirer & Slaney (1997), and a streaming extractor of speech / music probabilities.

Everything here works at :data:`ANALYSIS_SR` (8 kHz): the segmenter looks at 0-4 kHz only, so telephone speech and
full-band speech look alike to it (its training speech is 8 kHz telephone prompts) and the analysis is cheap.
Frames are 10 ms (:data:`HOP_LENGTH` samples); frame ``t`` is centred on ``(t + 0.5) * 10 ms`` and a signal of
``n`` samples has ``ceil(n / HOP_LENGTH)`` frames.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from mirsearch.errors import ParameterError, check_positive

log = logging.getLogger(__name__)

#: analysis sample rate (Hz)
ANALYSIS_SR = 8000
#: hop between frames (samples at 8 kHz): 10 ms
HOP_LENGTH = 80
#: frame rate of the frame features (Hz)
FRAME_RATE = ANALYSIS_SR / HOP_LENGTH
#: FFT size and window length (samples): 50 ms
N_FFT = 400
#: log-mel floor (dB)
DB_FLOOR = -100.0
#: names of the rows of :func:`classic_features`
CLASSIC_NAMES = (
    "mod4hz",
    "low_energy",
    "rolloff",
    "centroid",
    "flux",
    "zcr",
    "var_rolloff",
    "var_centroid",
    "var_flux",
    "var_zcr",
    "log_energy",
)
#: file-level version of the stored "segments" kind; bump when the extraction changes
SEGMENTS_VERSION = 1


def n_frames(n_samples: int, *, hop_length: int = HOP_LENGTH) -> int:
    """Number of frames of a signal of ``n_samples`` samples: ``ceil(n_samples / hop_length)``."""
    return -(-int(n_samples) // hop_length)


def frame_power(y: np.ndarray, *, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Power spectrogram with a Hann window, frames centred on ``(t + 0.5) * hop_length``.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
    n_fft, hop_length : int > 0

    Returns
    -------
    S : np.ndarray, shape (n_fft // 2 + 1, n_frames), float32
    """
    y = np.asarray(y, dtype=np.float32)
    n = n_frames(len(y), hop_length=hop_length)
    pad = n_fft // 2 - hop_length // 2
    padded = np.zeros((n - 1) * hop_length + n_fft, np.float32)
    m = min(len(y), len(padded) - pad)
    padded[pad : pad + m] = y[:m]
    return _power_of_padded(padded, n, n_fft=n_fft, hop_length=hop_length)


def _power_of_padded(padded: np.ndarray, n: int, *, n_fft: int, hop_length: int) -> np.ndarray:
    if n <= 0:
        return np.zeros((n_fft // 2 + 1, 0), np.float32)
    from scipy.fft import rfft

    frames = np.lib.stride_tricks.sliding_window_view(padded[: (n - 1) * hop_length + n_fft], n_fft)[::hop_length]
    spec = rfft(frames * _hann(n_fft), axis=1, workers=1)  # single precision
    return (spec.real**2 + spec.imag**2).astype(np.float32).T


@functools.lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


def _hz_to_mel(f):
    """Slaney's mel scale (linear below 1 kHz, logarithmic above), as librosa's default."""
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log_part, lin)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * (200.0 / 3))


@functools.lru_cache(maxsize=8)
def mel_filterbank(*, sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular mel filters with Slaney area normalisation (equal to ``librosa.filters.mel`` defaults).

    Returns
    -------
    M : np.ndarray, shape (n_mels, n_fft // 2 + 1), float32
    """
    check_positive("sr", sr)
    if not 0 <= fmin < fmax <= sr / 2:
        raise ParameterError(f"fmin={fmin}, fmax={fmax} must satisfy 0 <= fmin < fmax <= sr / 2")
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    diff = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    lower = -ramps[:-2] / diff[:-1, None]
    upper = ramps[2:] / diff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def log_mel(
    y: np.ndarray,
    *,
    sr: int = ANALYSIS_SR,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    n_mels: int = 40,
    fmin: float = 60.0,
    fmax: float = 3800.0,
) -> np.ndarray:
    """Log-mel spectrogram in dB (floor :data:`DB_FLOOR`).

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal at ``sr``.
    sr : int > 0
    n_fft, hop_length, n_mels : int > 0
    fmin, fmax : float
        Band edges in Hz.

    Returns
    -------
    L : np.ndarray, shape (n_mels, ceil(n_samples / hop_length)), float32
    """
    S = frame_power(y, n_fft=n_fft, hop_length=hop_length)
    return power_to_log_mel(S, sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)


def power_to_log_mel(S: np.ndarray, *, sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Mel power in dB of a power spectrogram ``S`` (n_fft // 2 + 1, n_frames)."""
    M = mel_filterbank(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    mel = M @ S
    return (10.0 * np.log10(np.maximum(mel, 10 ** (DB_FLOOR / 10)))).astype(np.float32)


def _moving(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average along the last axis (edges use the frames available)."""
    c = np.cumsum(np.pad(x.astype(np.float64), [(0, 0)] * (x.ndim - 1) + [(1, 0)]), axis=-1)
    n = x.shape[-1]
    idx = np.arange(n)
    lo = np.clip(idx - width // 2, 0, n)
    hi = np.clip(idx + width - width // 2, 0, n)
    return ((c[..., hi] - c[..., lo]) / np.maximum(hi - lo, 1)).astype(np.float32)


def classic_features(y: np.ndarray, *, sr: int = ANALYSIS_SR, window: float = 1.0) -> np.ndarray:
    """Scheirer & Slaney's discriminator features per 10 ms frame, integrated over ``window`` seconds.

    Rows (:data:`CLASSIC_NAMES`): 4 Hz modulation energy (share of the band envelopes' energy between 2 and 6 Hz),
    percentage of low-energy frames (RMS below half the window's mean), spectral rolloff (95 %), centroid, flux,
    zero-crossing rate (each a 1 s mean), the 1 s variances of the last four, and the 1 s mean log energy.
    Frequencies are in kHz, so all rows have similar ranges.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal at ``sr`` (use :data:`ANALYSIS_SR`).
    sr : int > 0
    window : float > 0
        Integration window in seconds.

    Returns
    -------
    F : np.ndarray, shape (11, ceil(n_samples / 80)), float32
    """
    from scipy.signal import butter, sosfiltfilt

    check_positive("window", window)
    S = frame_power(y, n_fft=N_FFT, hop_length=HOP_LENGTH)
    n = S.shape[1]
    w = max(1, int(round(window * FRAME_RATE)))
    freqs = np.linspace(0, sr / 2, S.shape[0]).astype(np.float32) / 1000.0
    total = S.sum(axis=0) + 1e-10
    centroid = (freqs @ S) / total
    rolloff = freqs[np.minimum((np.cumsum(S, axis=0) < 0.95 * total).sum(axis=0), len(freqs) - 1)]
    mag = np.sqrt(S)
    norm = mag / (np.linalg.norm(mag, axis=0) + 1e-10)
    flux = np.concatenate([[0.0], np.sum(np.diff(norm, axis=1) ** 2, axis=0)]).astype(np.float32)
    zcr = _zero_crossings(y, n)
    energy = total / N_FFT
    low = (energy < 0.5 * _moving(energy[None], w)[0]).astype(np.float32)
    env = np.sqrt(mel_filterbank(sr=sr, n_fft=N_FFT, n_mels=20, fmin=60.0, fmax=3800.0) @ S)
    if n > 18:
        sos = butter(2, [2.0, 6.0], btype="bandpass", fs=FRAME_RATE, output="sos")
        mod = (sosfiltfilt(sos, env, axis=1, padlen=min(n - 1, 3 * 6)) ** 2).sum(axis=0)
    else:
        mod = np.zeros(n)
    mod4 = _moving(mod[None], w)[0] / (_moving((env**2).sum(axis=0)[None], w)[0] + 1e-10)
    base = np.stack([rolloff, centroid, flux * 10, zcr * 10])
    means = _moving(base, w)
    variances = np.maximum(_moving(base**2, w) - means**2, 0.0)
    log_e = _moving(np.log10(energy + 1e-10)[None], w)
    rows = [mod4[None], _moving(low[None], w), means, variances * 10, log_e]
    return np.concatenate(rows, axis=0).astype(np.float32)


def _zero_crossings(y: np.ndarray, n: int) -> np.ndarray:
    """Zero-crossing rate per frame (crossings per sample in the frame's hop)."""
    s = np.signbit(np.asarray(y, dtype=np.float32))
    cross = np.concatenate([[0], (s[1:] != s[:-1]).astype(np.float32)])
    cross = np.pad(cross, (0, n * HOP_LENGTH - len(cross)))
    return cross.reshape(n, HOP_LENGTH).mean(axis=1).astype(np.float32)


# ----------------------------------------------------------------------------------------------- streaming
class FrameProbabilityStream:
    """Speech / music probabilities of a signal fed in blocks, with memory bounded by the block size.

    Feed mono blocks at ``sr`` with :meth:`feed`; each call returns the probabilities that became final, and
    :meth:`finish` returns the rest. The concatenated outputs equal :meth:`SegmenterModel.predict` on the whole
    signal's log-mel (the network runs on chunks with :attr:`SegmenterModel.context` frames of overlap).

    Parameters
    ----------
    model : SegmenterModel
        A loaded bundle (:meth:`mirsearch.models.segmenter.SegmenterModel.load`).
    sr : int > 0
        Sample rate of the blocks; resampled to the model's rate with soxr.
    chunk_frames : int
        Log-mel frames per network run (a multiple of the model's output hop).
    """

    def __init__(self, model, *, sr: int, chunk_frames: int = 3000):
        import soxr

        check_positive("sr", sr)
        self.model = model
        fe = model.frontend
        self.sr_in, self.sr = int(sr), int(fe["sr"])
        self.n_fft, self.hop = int(fe["n_fft"]), int(fe["hop_length"])
        self._mel = {k: fe[k] for k in ("n_mels", "fmin", "fmax")}
        self._resampler = soxr.ResampleStream(self.sr_in, self.sr, 1, dtype="float32") if sr != self.sr else None
        self.chunk = max(model.output_hop, chunk_frames // model.output_hop * model.output_hop)
        self._samples = np.zeros(self.n_fft // 2 - self.hop // 2, np.float32)  # centred-frame padding
        self._n_in = 0  # samples received at the model rate
        self._frames_done = 0  # log-mel frames computed
        self._mel_buf = np.zeros((fe["n_mels"], 0), np.float32)
        self._mel_start = 0  # global index of the first buffered log-mel frame
        self._out_done = 0  # output frames emitted

    @property
    def rate(self) -> float:
        """Output frames per second."""
        return self.model.output_rate

    def feed(self, block: np.ndarray) -> np.ndarray:
        """Add a block of samples; returns the newly final probabilities (n_outputs, k)."""
        block = np.asarray(block, dtype=np.float32)
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block, last=False)
        self._add_samples(block)
        return self._run(final=False)

    def finish(self) -> np.ndarray:
        """Flush: returns the remaining probabilities; the total is ``ceil(n_frames / output_hop)``."""
        if self._resampler is not None:
            self._add_samples(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        total = n_frames(self._n_in, hop_length=self.hop)
        need = (total - self._frames_done - 1) * self.hop + self.n_fft
        if total > self._frames_done and need > len(self._samples):
            self._samples = np.concatenate([self._samples, np.zeros(need - len(self._samples), np.float32)])
        self._frames(total)
        return self._run(final=True)

    def _add_samples(self, y: np.ndarray) -> None:
        self._n_in += len(y)
        self._samples = np.concatenate([self._samples, y])
        self._frames(None)

    def _frames(self, limit: int | None) -> None:
        """Compute the log-mel frames whose windows are complete (up to ``limit`` frames in all)."""
        k = (len(self._samples) - self.n_fft) // self.hop + 1 if len(self._samples) >= self.n_fft else 0
        if limit is not None:
            k = min(k, limit - self._frames_done)
        if k <= 0:
            return
        S = _power_of_padded(self._samples, k, n_fft=self.n_fft, hop_length=self.hop)
        L = power_to_log_mel(S, sr=self.sr, n_fft=self.n_fft, **self._mel)
        self._mel_buf = np.concatenate([self._mel_buf, L], axis=1)
        self._samples = self._samples[k * self.hop :]
        self._frames_done += k

    def _run(self, *, final: bool) -> np.ndarray:
        hop, ctx = self.model.output_hop, self.model.context
        outs = []
        while True:
            first = self._out_done * hop  # first input frame of the next output
            end = self._mel_start + self._mel_buf.shape[1]
            if not final and end < first + self.chunk + ctx:
                break
            if final and first >= end:
                break
            stop = min(end, first + self.chunk + ctx)
            lo = max(self._mel_start, first - ctx)
            P = self.model.predict(self._mel_buf[:, lo - self._mel_start : stop - self._mel_start])
            n_new = -(-(end - first) // hop) if final and stop == end else self.chunk // hop
            skip = (first - lo) // hop
            outs.append(P[:, skip : skip + n_new])
            self._out_done += n_new
            drop = max(0, self._out_done * hop - ctx - self._mel_start)
            self._mel_buf = self._mel_buf[:, drop:]
            self._mel_start += drop
        if not outs:
            return np.zeros((len(self.model.outputs), 0), np.float32)
        return np.concatenate(outs, axis=1)


def frame_probabilities(y: np.ndarray, *, sr: int, model=None) -> tuple[np.ndarray, float]:
    """Speech and music probabilities of a whole signal.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal.
    sr : int > 0
        Its sample rate (any; resampled to 8 kHz).
    model : SegmenterModel, optional
        Default: the packaged bundle.

    Returns
    -------
    P : np.ndarray, shape (2, n_out), float32
        Rows are the model's outputs (``speech``, ``music``).
    rate : float
        Output frames per second.
    """
    from mirsearch.models.segmenter import SegmenterModel

    model = model or SegmenterModel.load()
    stream = FrameProbabilityStream(model, sr=sr)
    step = int(sr) * 60
    parts = [stream.feed(y[i : i + step]) for i in range(0, len(y), step)]
    parts.append(stream.finish())
    return np.concatenate(parts, axis=1), stream.rate


def segments_config() -> dict:
    """Configuration of the stored "segments" kind (speech / music probabilities of the packaged model)."""
    from mirsearch.models.segmenter import SegmenterModel

    model = SegmenterModel.load()
    return {"kind": "segments", "version": SEGMENTS_VERSION, "model": model.model_id, "rate": model.output_rate}


def extract_segments(y: np.ndarray, *, sr: int, config: dict) -> tuple[np.ndarray, float]:
    """Stored "segments" features: ``(P (2, n) float32, rate)`` speech and music probabilities.

    The labelled segments are derived from these at query time (:mod:`mirsearch.describe.segment`).
    """
    return frame_probabilities(y, sr=sr)
