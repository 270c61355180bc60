"""Per-file work of indexing: hash, decode in blocks, extract every stored feature kind, check the result.

Runs in worker processes (one file at a time); whatever goes wrong with one file becomes that file's
:class:`FileResult` with a one-line error, never an exception that stops the batch. Library messages (decoder
warnings on stderr, Python warnings) are collected per file and returned with it.

Long files are analysed in windows of :data:`BLOCK_SECONDS` with :data:`OVERLAP_SECONDS` of context on either
side, so memory stays flat in a file's length (a 3-hour WAV needs no more than a 10-minute one). A file that
fits in one window is analysed whole, exactly as :func:`mirsearch.features.registry.extract` on
:func:`mirsearch.audio.load_audio` would.

Every file has a time budget (:class:`FileBudget`): :data:`FILE_SECONDS` plus :data:`SECONDS_PER_AUDIO_SECOND`
for each second of audio decoded so far, so a long file gets the time it needs and a small pathological one
cannot stall a batch. The budget is checked between decoded blocks and feature kinds; in a worker process
(:func:`worker_init`) a timer also interrupts Python code that runs past it.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from mirsearch.audio import SR, display_name, stream_audio
from mirsearch.errors import InputError, MirsearchError
from mirsearch.features import registry

log = logging.getLogger(__name__)

#: length of the analysis windows of long files (seconds; whole seconds keep frames aligned)
BLOCK_SECONDS = 600
#: context on either side of a window (seconds)
OVERLAP_SECONDS = 16
#: time budget of a file before any audio is decoded (s); environment ``MIRSEARCH_FILE_SECONDS`` replaces it
FILE_SECONDS = 120.0
#: budget added per second of audio decoded (s; 0.2: at least 5x realtime, 40x slower than usual)
SECONDS_PER_AUDIO_SECOND = 0.2

_IN_WORKER = False  # set by worker_init: this process analyses files in its main thread only


class FileTimeout(InputError):
    """A file took longer than its time budget to analyse."""


class FileBudget:
    """The time budget of one file: ``seconds`` plus ``per_audio_second`` for each second of audio decoded.

    :meth:`check` raises :class:`FileTimeout` once the budget is spent. With ``alarm`` (the main thread of a
    worker process only), a ``SIGALRM`` timer raises it too, between two Python instructions of any code.

    Parameters
    ----------
    name : str
        The file's display name (for the message).
    seconds : float >= 0
        Budget before any audio is decoded; 0 turns the budget off.
    per_audio_second : float >= 0
        Seconds added per second of decoded audio.
    """

    def __init__(self, name: str, *, seconds: float, per_audio_second: float, alarm: bool = False):
        self.name, self.per_audio_second = name, float(per_audio_second)
        self.base = float(seconds)
        self.limit = self.base
        self.t0 = time.monotonic()
        self._alarm = bool(alarm) and self.base > 0 and threading.current_thread() is threading.main_thread()
        self._previous = None

    def __enter__(self) -> FileBudget:
        if self._alarm:
            self._previous = signal.signal(signal.SIGALRM, self._on_alarm)
            signal.setitimer(signal.ITIMER_REAL, self.limit)
        return self

    def __exit__(self, *exc) -> None:
        if self._alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous or signal.SIG_DFL)

    def _error(self) -> FileTimeout:
        return FileTimeout(f"{self.name}: analysis stopped after {self.limit:.0f} s (the time limit of this file)")

    def _on_alarm(self, *_):
        if self._alarm and time.monotonic() - self.t0 >= self.limit - 0.01:
            self._alarm = False  # once
            raise self._error()

    def decoded(self, audio_seconds: float) -> None:
        """``audio_seconds`` of audio are decoded in all: extend the budget, then check it."""
        if self.base <= 0:
            return
        self.limit = self.base + self.per_audio_second * audio_seconds
        if self._alarm:
            signal.setitimer(signal.ITIMER_REAL, max(0.01, self.limit - (time.monotonic() - self.t0)))
        self.check()

    def check(self) -> None:
        """Raise :class:`FileTimeout` when the budget is spent."""
        if self.base > 0 and time.monotonic() - self.t0 > self.limit:
            raise self._error()


def file_seconds() -> float:
    """The base time budget of a file (:data:`FILE_SECONDS`, or ``MIRSEARCH_FILE_SECONDS``)."""
    try:
        return max(0.0, float(os.environ.get("MIRSEARCH_FILE_SECONDS", FILE_SECONDS)))
    except ValueError:
        return FILE_SECONDS


@dataclass
class FileResult:
    """What a worker reports for one file.

    ``status``: ``"ok"`` (``feats`` computed), ``"same"`` (content hash equals ``known``: nothing computed) or
    ``"error"`` (``error`` is the one-line reason).
    """

    status: str
    path: str
    sha1: str = ""
    duration: float = 0.0
    feats: list = field(default_factory=list)
    error: str = ""
    warnings: list[str] = field(default_factory=list)


def sha1_of(path: str | os.PathLike) -> str:
    """Content hash of a file (hex)."""
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def process_file(path: str, known: frozenset[str] | set[str], configs: list[dict]) -> FileResult:
    """Hash a file; when its hash is not in ``known``, decode it and extract the features of ``configs``.

    Never raises (except on interruption): every failure is a ``FileResult("error", ...)``, also a file
    that takes longer than its time budget (:class:`FileBudget`).
    """
    name = display_name(path)
    notes: list[str] = []
    budget = FileBudget(name, seconds=file_seconds(), per_audio_second=SECONDS_PER_AUDIO_SECOND, alarm=_IN_WORKER)
    try:
        with warnings.catch_warnings(record=True) as caught, budget:
            warnings.simplefilter("always")
            result = _process(path, known, configs, notes, budget)
        notes.extend(f"{name}: {w.category.__name__}: {str(w.message).splitlines()[0][:200]}" for w in caught)
    except MirsearchError as exc:
        result = FileResult("error", path, error=str(exc))
    except OSError as exc:
        result = FileResult("error", path, error=f"{name}: cannot read ({exc.strerror or type(exc).__name__})")
    except MemoryError:
        result = FileResult("error", path, error=f"{name}: out of memory while analysing")
    except Exception as exc:  # a decoder or extractor bug must not stop the batch
        log.debug("unexpected error on %s", name, exc_info=True)
        text = str(exc).strip().splitlines()
        result = FileResult("error", path, error=f"{name}: {type(exc).__name__}: {text[0][:200] if text else ''}")
    result.warnings = list(dict.fromkeys(notes))[:20]
    return result


def _process(path: str, known, configs: list[dict], notes: list[str], budget: FileBudget) -> FileResult:
    sha1 = sha1_of(path)
    if sha1 in known:
        return FileResult("same", path, sha1)
    duration, feats = extract_features(path, configs, warnings=notes, budget=budget)
    return FileResult("ok", path, sha1, duration, feats)


def _metered(chunks: Iterable[np.ndarray], budget: FileBudget | None) -> Iterator[np.ndarray]:
    """The blocks of ``chunks``, the budget told of the audio decoded so far after each."""
    n = 0
    for chunk in chunks:
        n += chunk.size
        if budget is not None:
            budget.decoded(n / SR)
        yield chunk


def extract_features(
    path: str | os.PathLike,
    configs: list[dict],
    *,
    warnings: list[str] | None = None,
    budget: FileBudget | None = None,
):
    """Decode ``path`` in windows and extract every configuration's features.

    Returns
    -------
    duration : float
        Seconds of audio.
    feats : list of (np.ndarray, float)
        Per configuration, the feature array and its frame rate, checked finite.

    Raises
    ------
    InputError
        Bad audio (see :func:`mirsearch.audio.stream_audio`) or features that are not finite;
        :class:`FileTimeout` when ``budget`` (checked between blocks and feature kinds) is spent.
    """
    name = display_name(path)
    parts: list[list[np.ndarray]] = [[] for _ in configs]
    rates: list[float] = [0.0] * len(configs)
    n_total = 0
    for w0, y, lo, hi, last in windows(_metered(stream_audio(path, sr=SR, warnings=warnings), budget), sr=SR):
        n_total = w0 + y.size
        # the chroma kinds of one window share its pitch bands (computed once)
        shared = {"memo": {}} if sum(c["kind"] in registry.CHROMA_KINDS for c in configs) > 1 else {}
        for i, config in enumerate(configs):
            if budget is not None:
                budget.check()
            X, rate = registry.extract(y, sr=SR, config=config, **shared)
            rates[i] = float(rate)
            parts[i].append(_trim(config["kind"], np.asarray(X, dtype=np.float32), rate, w0, lo, hi, last))
    feats = []
    for config, chunks, rate in zip(configs, parts, rates, strict=True):
        X = chunks[0] if len(chunks) == 1 else np.concatenate(chunks, axis=1)
        if not np.all(np.isfinite(X)):
            raise InputError(f"{name}: {config['kind']} features contain NaN or infinite values (not stored)")
        feats.append((np.ascontiguousarray(X), rate))
    return n_total / SR, feats


def windows(
    chunks: Iterable[np.ndarray], *, sr: int, block: int = BLOCK_SECONDS, overlap: int = OVERLAP_SECONDS
) -> Iterator[tuple[int, np.ndarray, int, int, bool]]:
    """Analysis windows over a stream of consecutive sample blocks.

    Yields ``(w0, y, lo, hi, last)``: the window's samples ``y`` start at sample ``w0``; the frames it
    contributes are those of samples ``[lo, hi)`` (its core; ``hi`` is ignored for the last window, which
    contributes everything from ``lo`` on). A stream no longer than one window plus its context gives a single
    window: the whole signal.
    """
    B, O = block * sr, overlap * sr  # noqa: N806 - sample counts
    k, w0 = 0, 0  # window number, its first sample
    buf, size = np.empty(B + O, np.float32), 0  # window k: samples [w0, (k + 1) B + O), filled up to size
    for chunk in chunks:
        pos = 0
        while pos < chunk.size:
            if size == buf.size:  # the window is full and more follows: out with it, the next starts
                yield w0, buf, k * B, (k + 1) * B, False
                keep = (k + 1) * B - O - w0  # the next window's first sample, in this one
                k, w0 = k + 1, (k + 1) * B - O
                nxt = np.empty(B + 2 * O, np.float32)
                size = buf.size - keep
                nxt[:size] = buf[keep:]
                buf = nxt  # (the consumer's reference to the old window is its own)
            take = min(chunk.size - pos, buf.size - size)
            buf[size : size + take] = chunk[pos : pos + take]
            size, pos = size + take, pos + take
    yield w0, buf[:size], k * B, w0 + size, True


def _trim(kind: str, X: np.ndarray, rate: float, w0: int, lo: int, hi: int, last: bool) -> np.ndarray:
    """The part of a window's features that belongs to its core, in the file's frame numbering."""
    if w0 == 0 and last:
        return X
    offset = w0 / SR * rate  # frames before the window (a whole number: windows start at whole seconds)
    first, stop = lo / SR * rate - offset, hi / SR * rate - offset
    if kind == "fingerprint":  # peaks (3, n): row 0 is the time in frames
        keep = (X[0] >= first) & ((X[0] < stop) | last)
        out = X[:, keep].copy()
        out[0] += offset
        return out
    return X[:, int(round(first)) : None if last else int(round(stop))]


# -- worker processes ---------------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def worker_init(parent_pid: int) -> None:
    """Initializer of indexing workers: die with the parent (``PR_SET_PDEATHSIG``), ignore Ctrl-C (the parent
    handles it) and keep library output of other files out of this one's report. Files analysed here get a
    timer that interrupts them at their time budget (:class:`FileBudget`)."""
    global _IN_WORKER
    _IN_WORKER = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the parent's shutdown still ends the pool
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
