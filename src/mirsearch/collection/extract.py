"""Per-file work of indexing: hash, decode in blocks, extract every stored feature kind, check the result.

Runs in worker processes (one file at a time); whatever goes wrong with one file becomes that file's
:class:`FileResult` with a one-line error, never an exception that stops the batch. Library messages (decoder
warnings on stderr, Python warnings) are collected per file and returned with it.

Long files are analysed in windows of :data:`BLOCK_SECONDS` with :data:`OVERLAP_SECONDS` of context on either
side, so memory stays flat in a file's length (a 3-hour WAV needs no more than a 10-minute one). A file that
fits in one window is analysed whole, exactly as :func:`mirsearch.features.registry.extract` on
:func:`mirsearch.audio.load_audio` would.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import signal
import sys
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

    Never raises (except on interruption): every failure is a ``FileResult("error", ...)``.
    """
    name = display_name(path)
    notes: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = _process(path, known, configs, notes)
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


def _process(path: str, known, configs: list[dict], notes: list[str]) -> FileResult:
    sha1 = sha1_of(path)
    if sha1 in known:
        return FileResult("same", path, sha1)
    duration, feats = extract_features(path, configs, warnings=notes)
    return FileResult("ok", path, sha1, duration, feats)


def extract_features(path: str | os.PathLike, configs: list[dict], *, warnings: list[str] | None = None):
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
        Bad audio (see :func:`mirsearch.audio.stream_audio`) or features that are not finite.
    """
    name = display_name(path)
    parts: list[list[np.ndarray]] = [[] for _ in configs]
    rates: list[float] = [0.0] * len(configs)
    n_total = 0
    for w0, y, lo, hi, last in windows(stream_audio(path, sr=SR, warnings=warnings), sr=SR):
        n_total = w0 + y.size
        for i, config in enumerate(configs):
            X, rate = registry.extract(y, sr=SR, config=config)
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
    pending: list[np.ndarray] = []
    start, size, k = 0, 0, 0  # sample index of pending[0][0], samples pending, window number
    for chunk in chunks:
        pending.append(chunk)
        size += chunk.size
        while start + size >= (k + 1) * B + O + 1:  # the window and its right context are in; more follows
            w0, w1 = max(0, k * B - O), (k + 1) * B + O
            y = np.concatenate(pending)
            yield w0, y[w0 - start : w1 - start], k * B, (k + 1) * B, False
            keep = (k + 1) * B - O  # the next window's first sample
            pending, size, start = [y[keep - start :]], start + size - keep, keep
            k += 1
    if size or k == 0:
        y = np.concatenate(pending) if pending else np.zeros(0, np.float32)
        w0 = max(0, k * B - O)
        yield w0, y[w0 - start :], k * B, start + size, True


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
    handles it) and keep library output of other files out of this one's report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the parent's shutdown still ends the pool
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
