"""Reading uploaded files in a child process with a time and a memory budget, so that no file can hang the server.

A score of a few hundred bytes can describe a note of 200,000 quarters or a zip bomb, an audio file of half a
megabyte can decode to gigabytes. The server therefore parses every uploaded query in a fresh process forked
from a *forkserver* (started once, with the parsers imported, so a child starts in milliseconds): the child
gets an address-space limit, the parent waits at most ``seconds`` and kills it after that. The parsed query
(a theme, decoded samples) comes back through a pipe.

Like every ``multiprocessing`` start method but fork, a child imports the parent's main module (as
``__mp_main__``): a script that creates an app must guard its work with ``if __name__ == "__main__":``
(``mirsearch serve``, ``python -m mirsearch`` and uvicorn do).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import resource
import threading

from mirsearch.errors import InputError, MirsearchError
from mirsearch.server.uploads import UploadTooLarge

log = logging.getLogger(__name__)

#: modules imported once in the forkserver (each child starts with them: the score readers take seconds to import;
#: the search workers of :mod:`mirsearch.server.workers` need the service, its tasks and the routers' calls)
PRELOAD = ["mirsearch.server.sandbox", "mirsearch.scores", "mirsearch.audio", "numpy", "soundfile", "soxr",
           "music21", "pretty_midi", "mirsearch.search.audio_query", "mirsearch.collection", "mirsearch.service",
           "mirsearch.service.theme", "mirsearch.service.audio", "mirsearch.service.sync", "mirsearch.search.theme",
           "mirsearch.search.audio", "mirsearch.search.versions", "mirsearch.server.workers",
           "mirsearch.server.routers.search"]  # fmt: skip


class OverBudget(MirsearchError):
    """A request took longer than the server's time budget (HTTP 504)."""


class ReadersBusy(MirsearchError):
    """Too many uploads wait for a reader (HTTP 503)."""


_CONTEXT = None
_CONTEXT_LOCK = threading.Lock()


def _context():
    global _CONTEXT
    with _CONTEXT_LOCK:
        if _CONTEXT is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
            _CONTEXT = ctx
        return _CONTEXT


def _virtual_size() -> int:
    """This process's address-space size in bytes (Linux ``/proc/self/statm``)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _child(conn, fn, args: tuple, memory_bytes: int) -> None:
    """Run ``fn(*args)`` under an address-space limit and send ``("ok", value)`` or ``("error", kind, text)``."""
    if memory_bytes > 0:
        limit = _virtual_size() + memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        conn.send(("ok", fn(*args)))
    except MemoryError:
        conn.send(("error", "large", "the file needs more memory to read than the server allows"))
    except MirsearchError as exc:
        conn.send(("error", "input", str(exc)))
    except Exception as exc:  # a parser's internal error: the file is unusable, the server is fine
        conn.send(("error", "input", f"unreadable file ({type(exc).__name__})"))
    finally:
        conn.close()


def _wait(proc, conn, seconds: float):
    """Block until the child answers or ``seconds`` pass; kill it in the latter case (None)."""
    try:
        if conn.poll(seconds):
            try:
                return conn.recv()
            except EOFError:
                return ("error", "large", "the reader stopped (out of memory?)")
        return None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        conn.close()


class Sandbox:
    """Runs readers in child processes, at most ``parallel`` at once.

    Parameters
    ----------
    parallel : int >= 1
        Children at once; more callers wait (without holding a worker thread).
    seconds : float > 0
        Time budget of one child; it is killed after that (:class:`OverBudget`).
    memory_mb : float
        Address space a child may add to what it starts with (0: no limit).
    max_waiting : int >= 1
        Callers (running or waiting) beyond which :meth:`run` refuses at once.
    """

    def __init__(self, *, parallel: int = 1, seconds: float = 10.0, memory_mb: float = 500.0, max_waiting: int = 16):
        self.seconds = float(seconds)
        self.memory_bytes = int(memory_mb * 1e6)
        self.max_waiting = int(max_waiting)
        self._slots = asyncio.Semaphore(int(parallel))
        self._waiting = 0

    async def run(self, fn, *args, name: str = "file"):
        """``fn(*args)`` in a child process; its errors come back as :class:`InputError` naming ``name``.

        :class:`ReadersBusy` when ``max_waiting`` callers wait already (each holds an uploaded file).
        """
        if self._waiting >= self.max_waiting:
            raise ReadersBusy(f"server busy ({self._waiting} uploads wait to be read); try again shortly")
        self._waiting += 1  # (one event loop: no lock needed)
        try:
            return await self._run(fn, args, name)
        finally:
            self._waiting -= 1

    async def _run(self, fn, args: tuple, name: str):
        async with self._slots:
            ctx = _context()
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(child, fn, args, self.memory_bytes), daemon=True)
            await asyncio.to_thread(proc.start)
            child.close()
            answer = await asyncio.to_thread(_wait, proc, parent, self.seconds)
        if answer is None:
            raise OverBudget(f"{name}: reading the file took longer than {self.seconds:g} s (stopped)")
        if answer[0] == "ok":
            return answer[1]
        kind, text = answer[1], answer[2]
        text = text if text.startswith(name) else f"{name}: {text}"
        raise UploadTooLarge(text) if kind == "large" else InputError(text)


# ------------------------------------------------------------------------------------------ readers


def read_theme(path: str, part: str | None):
    """The theme query of a score file (run in the child)."""
    from mirsearch.service.theme import ThemeQuery

    return ThemeQuery.from_file(path, part=part)


def read_audio(path: str, max_seconds: float):
    """The audio query of an audio file (run in the child): decoded, validated, mono."""
    from mirsearch.service.audio import read_audio_query

    return read_audio_query(path, max_seconds=max_seconds)
