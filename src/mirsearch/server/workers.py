"""Search work in worker processes with a time and a memory budget that hold for real.

A numba kernel cannot be interrupted from another thread, so a thread-based time budget only stops *waiting*
for a search, not the search itself: a small request (a long theme against a large collection, a long audio
query) kept a worker busy for as long as it ran. Here every call runs in a worker *process*:

- the parent waits at most ``seconds`` for the answer; after that it kills the process (``SIGKILL``), starts
  a fresh one and answers :class:`~mirsearch.server.sandbox.OverBudget` (HTTP 504);
- before each call the worker lowers its own soft address-space limit (``RLIMIT_AS``) to what it uses plus
  ``memory_mb``, and raises it again afterwards: no call can add more than that (its caches from earlier
  calls stay), a call that needs more ends with :class:`OverMemory` (HTTP 413) and the worker is replaced;
- a worker dies with the server (``PR_SET_PDEATHSIG``), opens the collection read-only once and keeps its
  derived views between calls; a new worker runs two small searches and draws a small figure before it takes
  work (numba kernels loaded, views built, matplotlib imported), and that warm-up does not count against any
  request's budget.

A call is a module-level function ``fn(collection, *args)`` with picklable arguments and result (it is
sent to the worker by reference). The processes come from the same *forkserver* as the upload readers
(:mod:`mirsearch.server.sandbox`), so a script that creates an app must guard its work with
``if __name__ == "__main__":``.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import resource
import signal
import sys
import threading

from mirsearch.errors import MirsearchError
from mirsearch.server.sandbox import OverBudget, _context, _virtual_size

log = logging.getLogger(__name__)

#: seconds a new worker may take to start and warm up before it counts as broken
START_SECONDS = 300.0
#: small searches that load the kernels and build the views a new worker needs (errors ignored)
WARM_UP_NOTES = "C D E F G"
#: seconds of the warm-up's audio query (a C major chord)
WARM_UP_SECONDS = 5.0


class OverMemory(MirsearchError):
    """A call needed more memory than the server allows one request (HTTP 413)."""


class WorkerFailed(MirsearchError):
    """A worker process ended without an answer (HTTP 500)."""


# ------------------------------------------------------------------------------------------- worker side


def _die_with_parent() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _set_memory_limit(extra_bytes: int) -> None:
    """Soft ``RLIMIT_AS`` = this process's address space now + ``extra_bytes`` (0: no limit)."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = resource.RLIM_INFINITY if extra_bytes <= 0 else _virtual_size() + extra_bytes
    if hard != resource.RLIM_INFINITY and soft != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def warm_up(coll) -> None:
    """A small theme search, a small passage search, a search by similarity to a short chord and a small figure:
    numba kernels loaded, the collection's views built (the similarity index included, so that the first
    ``similar`` request does not build it within its budget), matplotlib imported (each that fails, e.g. on an
    empty collection or one without timbre features, is skipped)."""
    import numpy as np

    from mirsearch.service import run
    from mirsearch.service.audio import AudioQuery, PassagesRequest
    from mirsearch.service.similar import SimilarAudioRequest, has_similarity_features
    from mirsearch.service.theme import ThemeQuery, ThemeRequest

    sr = 22050
    t = np.arange(int(WARM_UP_SECONDS * sr)) / sr
    chord = (0.2 * sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0))).astype(np.float32)
    requests = (
        ("theme", lambda: ThemeRequest(query=ThemeQuery.from_text(WARM_UP_NOTES), top=1)),
        ("passages", lambda: PassagesRequest(query=AudioQuery.from_samples(chord, sr, name="warm-up"), top=1)),
        ("similar-audio", lambda: SimilarAudioRequest(query=AudioQuery.from_samples(chord, sr, name="warm-up"), top=1)),
    )
    if not has_similarity_features(coll):  # nothing to warm for `similar`: do not delay the first request
        requests = requests[:2]
    for name, request in requests:
        try:
            run(name, request(), collection=coll)
        except Exception as exc:  # the real calls will tell
            log.debug("warm-up %s: %s", name, exc)
    try:  # figures are drawn in the workers too: matplotlib imported, its fonts loaded
        from mirsearch.viz.web import chromagram_png

        chromagram_png(np.zeros((12, 20), dtype=np.float32), feature_rate=10.0, width=200)
    except Exception as exc:
        log.debug("warm-up figure: %s", exc)


def task(coll, name: str, request):
    """Task ``name`` of the service on the worker's collection (a call for :meth:`TaskWorkers.run`)."""
    from mirsearch.service import run

    return run(name, request, collection=coll)


def align_files(coll, path_a: str, path_b: str):
    """The time map from ``path_a`` to ``path_b`` (task ``align``, its defaults; a call for the aligner)."""
    from mirsearch.server.timemaps import align_recordings

    return align_recordings(path_a, path_b)


def _answer(fn, coll, args: tuple, memory_bytes: int):
    _set_memory_limit(memory_bytes)
    try:
        return ("ok", fn(coll, *args))
    except MemoryError:
        return ("memory", None)
    except MirsearchError as exc:
        return ("raise", exc)
    except Exception as exc:  # a bug: reported as such, the worker goes on
        log.exception("call %s failed", getattr(fn, "__name__", fn))
        return ("bug", f"{type(exc).__name__}: {exc}")
    finally:
        _set_memory_limit(0)


def _serve(conn, root: str, memory_bytes: int, warm: bool) -> None:
    """Worker main loop: open the collection, warm up, answer ``(fn, args)`` jobs until the pipe closes."""
    _die_with_parent()
    from mirsearch.collection import Collection

    coll = Collection.open(root, readonly=True)
    if warm:
        warm_up(coll)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            break
        answer = _answer(fn, coll, args, memory_bytes)
        try:
            conn.send(answer)
        except Exception as exc:  # an unpicklable result or exception
            conn.send(("bug", f"cannot send the answer ({type(exc).__name__}: {exc})"))
        if answer[0] == "memory":
            break  # a worker that ran out of memory may be in a poor state: the parent starts a new one
    coll.close()


# ------------------------------------------------------------------------------------------- parent side


class _Worker:
    """One worker process and its pipe."""

    def __init__(self, root: str, memory_bytes: int, warm: bool):
        ctx = _context()
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, root, memory_bytes, warm), daemon=True)
        self.proc.start()
        child.close()
        self.ready = False

    def wait_ready(self) -> None:
        if self.ready:
            return
        if not self.conn.poll(START_SECONDS):
            raise WorkerFailed(f"a search worker did not start within {START_SECONDS:g} s")
        try:
            message = self.conn.recv()
        except (EOFError, OSError):
            raise WorkerFailed("a search worker stopped while starting (see the server log)") from None
        if message[0] != "ready":
            raise WorkerFailed(f"a search worker answered {message[0]!r} while starting")
        self.ready = True

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


class TaskWorkers:
    """``workers`` processes answering calls, each with a time and a memory budget.

    Parameters
    ----------
    collection_path : path-like
        The collection each worker opens (read-only).
    workers : int >= 1
        Processes; a call waits (blocking its thread) while all are busy.
    seconds : float > 0
        Time budget of one call, from the moment a worker starts on it.
    memory_mb : float >= 0
        Address space one call may add to its worker (0: no limit).
    warm : bool
        Warm every new worker up (:func:`warm_up`) before it takes calls.
    name : str
        For messages (``"search"``, ``"alignment"``).
    """

    def __init__(self, collection_path, *, workers: int, seconds: float, memory_mb: float, warm: bool = True,
                 name: str = "search"):  # fmt: skip
        self.root = os.fspath(collection_path)
        self.seconds, self.name, self.warm = float(seconds), name, bool(warm)
        self.memory_bytes = int(memory_mb * 1e6)
        self._idle: queue.Queue[_Worker | None] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._workers = int(workers)
        self._started = False

    def _ensure_started(self) -> None:
        """Start the processes on first use (an app that never searches starts none)."""
        with self._lock:
            if self._started or self._closed:
                return
            self._started = True
        for _ in range(self._workers):
            self._idle.put(self._start())

    def start(self, *, wait: bool = False) -> None:
        """Start the processes now; they warm up in the background, or before this returns with ``wait``."""
        self._ensure_started()
        if wait:
            idle = [self._idle.get() for _ in range(self._workers)]
            try:
                for w in idle:
                    if w is not None:
                        w.wait_ready()
            finally:
                for w in idle:
                    self._idle.put(w)

    def _start(self) -> _Worker:
        w = _Worker(self.root, self.memory_bytes, self.warm)
        with self._lock:
            self._all.add(w)
        return w

    def _replace(self, w: _Worker) -> None:
        w.kill()
        with self._lock:
            self._all.discard(w)
            closed = self._closed
        if not closed:
            self._idle.put(self._start())

    def call(self, fn, *args, seconds: float | None = None):
        """``fn(collection, *args)`` in a worker (blocks the calling thread), within ``seconds`` (at most the
        workers' budget; default that budget).

        Raises
        ------
        OverBudget
            The call ran past ``seconds`` (its worker was killed and replaced).
        OverMemory
            The call needed more than ``memory_mb`` (its worker is replaced).
        MirsearchError
            What ``fn`` raised (the same type and message).
        """
        self._ensure_started()
        w = self._idle.get()
        if w is None:
            self._idle.put(None)
            raise WorkerFailed("the server is shutting down")
        keep = False
        try:
            w.wait_ready()
            try:
                w.conn.send((fn, args))
            except OSError:  # the worker had ended while idle (killed from outside)
                raise WorkerFailed(f"a {self.name} worker had stopped; try again") from None
            budget = self.seconds if seconds is None else min(self.seconds, seconds)
            if not w.conn.poll(budget):
                log.warning("%s call %s stopped after %.1f s", self.name, getattr(fn, "__name__", fn), budget)
                raise OverBudget(f"the {self.name} took longer than the server's time budget ({round(budget, 1):g} s; "
                                 "stopped)")  # fmt: skip
            kind, value = _receive(w.conn, self)
            keep = kind != "memory"
        finally:
            if keep and w.proc.is_alive():
                self._idle.put(w)
            else:
                self._replace(w)
        return _result(kind, value, self)

    def close(self) -> None:
        """Stop every worker (calls that wait get :class:`WorkerFailed`)."""
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
        for w in workers:
            w.kill()
        self._idle.put(None)

    def pids(self) -> list[int]:
        """Process ids of the workers (tests, monitoring)."""
        with self._lock:
            return [w.proc.pid for w in self._all if w.proc.pid is not None]


def _receive(conn, workers: TaskWorkers) -> tuple:
    """The worker's answer; a worker that died without one (killed for memory, a crash) is :class:`OverMemory`."""
    try:
        return conn.recv()
    except (EOFError, OSError):
        raise OverMemory(f"the {workers.name} stopped its worker (out of memory?); limit "
                         f"{workers.memory_bytes / 1e6:.0f} MB per request") from None  # fmt: skip
    except Exception as exc:  # an answer that cannot be unpickled
        raise WorkerFailed(f"the {workers.name} sent an unreadable answer ({type(exc).__name__})") from None


def _result(kind: str, value, workers: TaskWorkers):
    if kind == "ok":
        return value
    if kind == "raise":
        raise value
    if kind == "memory":
        raise OverMemory(f"the {workers.name} needs more memory than the server allows one request "
                         f"({workers.memory_bytes / 1e6:.0f} MB)")  # fmt: skip
    raise WorkerFailed(f"the {workers.name} failed: {value}")
