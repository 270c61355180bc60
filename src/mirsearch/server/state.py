"""The state of one app: its options, the open collection, the work queues, caches and the uploads folder.

Work is queued by kind so that a few slow requests cannot starve the others:

- ``search`` (``workers`` threads, each driving one worker *process*, :class:`~mirsearch.server.workers.
  TaskWorkers`): theme, passage and version searches run in the processes with the time budget
  ``request_seconds`` and the memory budget ``task_memory_mb``, and are *stopped* (the process killed and
  replaced) when they overrun; so are figures.
- ``slow`` (one thread and one process): tasks that read a recording's audio (segments of a recording indexed
  without them), the same budgets ``request_seconds`` and ``task_memory_mb``, so they never hold a search worker.
- alignments of two recordings are background jobs (:class:`~mirsearch.server.jobs.AlignJobs`): a request
  starts one and is answered at once (202), the job runs in its own process (budget ``align_seconds`` and
  ``task_memory_mb``) and stores the time map on disk; later requests read it from there.
- uploaded files are read in child processes (:class:`~mirsearch.server.sandbox.Sandbox`), killed after
  ``parse_seconds``; a reader waiting for its turn holds no thread.

Each queue answers 503 when ``max_pending`` calls wait for it; a call over its time budget is answered with
HTTP 504 (one that has not started is cancelled), a call over its memory budget with 413. Catalogue reads, audio
streaming, cached time maps, cached figures and ``/api/health`` bypass the queues.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from mirsearch import __version__
from mirsearch.errors import CollectionError, MirsearchError, ParameterError
from mirsearch.server.sandbox import OverBudget, Sandbox
from mirsearch.server.uploads import RecentQueries
from mirsearch.service.core import Request, param

log = logging.getLogger(__name__)

#: figures kept in memory (PNG bytes)
FIGURE_CACHE = 64
#: seconds the statistics are cached (they walk the collection folder)
STATS_TTL = 5.0
#: seconds a search may wait for a worker that is still starting (its own budget starts when it gets one)
WARM_UP_SLACK = 60.0
#: seconds past the budget a request waits for a cluster search to cancel its tasks and return
CLUSTER_SLACK = 2.0
#: seconds a search still gets when reading its upload used up (nearly) all of the request's budget
MIN_TASK_SECONDS = 1.0
#: when the current request's work began (:func:`request_started`; None outside a request)
REQUEST_START: ContextVar[float | None] = ContextVar("mirsearch_request_start", default=None)


def request_started() -> None:
    """Start the current request's clock (the routers' dependency calls it once the request has been received)."""
    REQUEST_START.set(time.monotonic())


class ServerBusy(MirsearchError):
    """A work queue is full (HTTP 503)."""


class NotAvailable(MirsearchError):
    """A feature of the API is not available in this installation (HTTP 501)."""


class NotFound(MirsearchError):
    """An id that does not exist (HTTP 404)."""


@dataclass(frozen=True)
class ServerOptions(Request):
    """Limits and access rules of a server: the options of ``mirsearch serve`` (derived from these fields) and
    the keywords of :func:`~mirsearch.server.app.create_app`.

    Attributes
    ----------
    index_sources : tuple of path-like
        Folders the page may index (by position; no path comes from the client). Empty: off.
    allowed_hosts : tuple of str
        Host names accepted in the ``Host`` header besides the loopback names (``"*"``: any).
    token : str, optional
        Shared secret required on every request but ``/api/health`` and static assets.
    """

    max_upload_mb: float = param(20.0, minimum=0.001, maximum=10_000, help="largest upload in MB")
    max_query_seconds: float = param(60.0, minimum=1, maximum=3600, help="longest audio query in seconds")
    max_recording_seconds: float = param(
        1200.0, minimum=1, maximum=24 * 3600, help="longest uploaded recording for version identification (s)"
    )
    workers: int = param(2, minimum=1, maximum=256, help="threads running searches and figures")
    max_pending: int | None = param(None, minimum=1, maximum=100_000, help="calls waiting per queue before 503 "
                                    "(default: 16 x workers)")  # fmt: skip
    request_seconds: float = param(10.0, minimum=0.001, maximum=86_400, help="time budget of one request (s); a "
                                   "search is stopped after it")  # fmt: skip
    align_seconds: float = param(60.0, minimum=0.001, maximum=86_400, help="time budget of one alignment job (s; "
                                 "in the background, in its own process: no request waits for it)")  # fmt: skip
    task_memory_mb: float = param(500.0, minimum=0, maximum=1e6, help="memory one search or alignment may add to "
                                  "its worker process (MB; 0: no limit)")  # fmt: skip
    parse_seconds: float = param(10.0, minimum=0.1, maximum=3600, help="time budget for reading an uploaded file (s)")
    parse_memory_mb: float = param(500.0, minimum=0, maximum=1e6, help="memory a reader of an upload may add (MB; "
                                   "0: no limit)")  # fmt: skip
    max_json_kb: float = param(256.0, minimum=1, maximum=1e6, help="largest JSON request body (kB)")
    index_jobs: int = param(1, minimum=1, maximum=64, help="worker processes of an indexing job")
    dask: str | None = param(
        None, metavar="SPEC", help="fan theme, passage, identify and similarity searches out to a Dask cluster: "
        "local:N or tcp://host:port (searches then run in the server's threads, their work on the cluster's workers, "
        "cancelled after --request-seconds)",
    )  # fmt: skip
    index_sources: tuple = ()
    allowed_hosts: tuple[str, ...] = ()
    token: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.token is not None and len(self.token) < 8:
            raise ParameterError("token must have at least 8 characters")
        object.__setattr__(self, "index_sources", tuple(Path(p) for p in self.index_sources))
        object.__setattr__(self, "allowed_hosts", tuple(self.allowed_hosts))

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1e6)

    @property
    def pending(self) -> int:
        return self.max_pending or 16 * self.workers


@dataclass
class WorkQueue:
    """Threads for one kind of work, a bound on waiting calls and a time budget per call.

    With ``processes``, a task of the service sent to the queue (``run(service.run, name, request,
    collection=...)``) runs in those worker processes under their time and memory budget, whichever router
    sends it; other callables run in the threads.
    """

    name: str
    workers: int
    max_pending: int
    seconds: float
    processes: object = None  # TaskWorkers
    pool: ThreadPoolExecutor = field(init=False)
    _pending: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=f"mirsearch-{self.name}")

    def _done(self, _future) -> None:
        with self._lock:
            self._pending -= 1

    async def run(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` on this queue; :class:`ServerBusy` when full, :class:`OverBudget` when late."""
        if self.processes is not None and "collection" in kwargs and len(args) == 2 and _is_service_run(fn):
            from mirsearch.server.workers import task

            call = partial(self.processes.call, task, *args)  # the worker's own collection handle
            return await self.run_within(self.seconds + WARM_UP_SLACK, call)
        return await self.run_within(self.seconds, partial(fn, *args, **kwargs))

    async def run_within(self, seconds: float, fn):
        """``fn()`` on this queue, waiting at most ``seconds`` for it (see :meth:`run`)."""
        with self._lock:
            if self._pending >= self.max_pending:
                raise ServerBusy(f"server busy ({self._pending} {self.name} requests queued); try again shortly")
            self._pending += 1
        future = self.pool.submit(fn)
        future.add_done_callback(self._done)  # a call that overran still counts until it really ends
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), seconds)
        except TimeoutError:
            future.cancel()
            raise OverBudget(f"the request took longer than the server's time budget ({self.seconds:g} s)") from None

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class Server:
    """State of one app: collection, work queues, caches, uploads folder, indexing jobs."""

    def __init__(self, collection_path: Path, options: ServerOptions):
        from mirsearch.collection import Collection
        from mirsearch.server.jobs import AlignJobs, IndexJobs
        from mirsearch.server.timemaps import TimeMapCache
        from mirsearch.server.workers import TaskWorkers

        self.root = Path(collection_path)
        self.options = options
        self.coll = Collection.open(self.root, readonly=True)
        if options.dask is not None:  # started (or connected) now: a bad spec stops the server at once
            from mirsearch.service.cluster import use_cluster

            use_cluster(options.dask)
        seconds, memory_mb = options.request_seconds, options.task_memory_mb
        self.search = WorkQueue("search", options.workers, options.pending, seconds)
        self.slow = WorkQueue("slow", 1, options.pending, seconds)
        self.tasks = TaskWorkers(self.root, workers=options.workers, seconds=seconds, memory_mb=memory_mb)
        slow = TaskWorkers(self.root, workers=1, seconds=seconds, memory_mb=memory_mb, warm=False, name="slow request")
        self.aligner = TaskWorkers(
            self.root, workers=1, seconds=options.align_seconds, memory_mb=memory_mb, warm=False, name="alignment"
        )
        self.search.processes, self.slow.processes = self.tasks, slow  # every router's tasks run in the processes
        self.sandbox = Sandbox(
            parallel=options.workers, seconds=options.parse_seconds, memory_mb=options.parse_memory_mb,
            max_waiting=options.pending,
        )  # fmt: skip
        self.tmp = Path(tempfile.mkdtemp(prefix="mirsearch-server-"))
        weakref.finalize(self, shutil.rmtree, self.tmp, ignore_errors=True)  # also if the app never ran
        self.queries = RecentQueries()
        self.timemaps = TimeMapCache(self.root / "timemaps", align=self._align)
        self.align_jobs = AlignJobs(self.timemaps, max_pending=options.pending)
        self.jobs = IndexJobs(self.root, list(options.index_sources), jobs=options.index_jobs, on_finish=self.forget)
        self._figures: dict[tuple, bytes] = {}
        self._figures_lock = threading.Lock()
        self._stats: tuple[float, dict] | None = None

    async def run(self, fn, *args, **kwargs):
        """Run ``fn`` on the search queue (see :class:`WorkQueue`)."""
        return await self.search.run(fn, *args, **kwargs)

    def remaining(self) -> float:
        """Seconds left of the current request's budget ``request_seconds`` (counted from :func:`request_started`;
        reading an upload uses part of it), at least :data:`MIN_TASK_SECONDS`."""
        start = REQUEST_START.get()
        spent = 0.0 if start is None else time.monotonic() - start
        return max(MIN_TASK_SECONDS, self.options.request_seconds - spent)

    async def task(self, fn, *args):
        """``fn(collection, *args)`` in a search worker process, on the search queue, with what is left of the
        request's time budget (:meth:`remaining`) and the memory budget (see :mod:`mirsearch.server.workers`)."""
        seconds = self.remaining()
        try:
            if self.options.dask is not None and _fans_out(fn, args, self.coll):  # fans out to the cluster, merges
                call = partial(_on_cluster, seconds, fn, self.coll, *args)
                return await self.search.run_within(seconds + CLUSTER_SLACK, call)
            call = partial(self.tasks.call, fn, *args, seconds=seconds)  # the worker itself stops at ``seconds``
            return await self.search.run_within(seconds + WARM_UP_SLACK, call)
        except OverBudget as exc:
            if seconds > self.options.request_seconds - MIN_TASK_SECONDS:  # (nearly) the whole budget: as it is
                raise
            budget = self.options.request_seconds
            raise OverBudget(f"the request took longer than the server's time budget ({budget:g} s, reading the "
                             "upload included; stopped)") from exc  # fmt: skip

    def _align(self, path_a: str, path_b: str):
        """The time map between two files, computed in the alignment worker (its budgets)."""
        from mirsearch.server.workers import align_files

        return self.aligner.call(align_files, path_a, path_b)

    def forget(self) -> None:
        self._stats = None

    # -- catalogue ------------------------------------------------------------------------------------
    def recording(self, recording_id: int):
        try:
            return self.coll.recording(recording_id)
        except CollectionError:
            raise NotFound(f"recording {recording_id} is not in the collection") from None

    def audio_root(self) -> str:
        """The folder that holds every recording (their common parent); paths are shown relative to it."""

        def build() -> str:
            folders = [os.path.dirname(r.path) for r in self.coll.recordings()]
            return os.path.commonpath(folders) if folders else ""

        return self.coll.views.get(("server", "audio-root"), build)

    def shown_path(self, path: str) -> str:
        """``path`` relative to :meth:`audio_root` (absolute server paths are never shown)."""
        root = self.audio_root()
        try:
            rel = os.path.relpath(path, root) if root else os.path.basename(path)
        except ValueError:
            rel = os.path.basename(path)
        return os.path.basename(path) if rel.startswith("..") else rel

    def recording_json(self, rec) -> dict:
        from mirsearch.service.collection import format_time

        path = Path(rec.path)
        return {
            "id": rec.id,
            "name": path.name,
            "path": self.shown_path(rec.path),
            "duration": round(rec.duration, 3),
            "duration_mmss": format_time(rec.duration),
            "format": path.suffix.lower().lstrip("."),
            "sha1": rec.sha1,
        }

    def matches_json(self, rows: list[dict]) -> list[dict]:
        """Match dicts with the path made relative, the file name and the recording's duration added."""
        by_id = {r.id: r for r in self.coll.recordings()}
        out = []
        for d in rows:
            rec = by_id.get(d["recording_id"])
            d = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in d.items()}
            d["name"] = Path(d["recording"]).name
            d["recording"] = self.shown_path(d["recording"])
            d["duration"] = round(rec.duration, 3) if rec is not None else round(d["end"], 3)
            out.append(d)
        return out

    # -- caches ---------------------------------------------------------------------------------------
    def stats(self) -> dict:
        cached = self._stats
        if cached is not None and time.monotonic() - cached[0] < STATS_TTL:
            return cached[1]
        from mirsearch.service import run

        info = run("info", _info_request(), collection=self.coll).to_dict()
        info["path"] = self.root.name
        o = self.options
        info["server"] = {
            "version": __version__,
            "workers": o.workers,
            "max_upload_mb": round(o.max_upload_mb, 3),
            "max_query_seconds": o.max_query_seconds,
            "max_recording_seconds": o.max_recording_seconds,
            "request_seconds": o.request_seconds,
            "index_sources": len(self.jobs.sources),
        }
        self._stats = (time.monotonic(), info)
        return info

    def cached_figure(self, key: tuple) -> bytes | None:
        with self._figures_lock:
            return self._figures.get(key)

    async def figure(self, key: tuple, fn, *args) -> bytes:
        """The PNG ``fn(collection, *args)`` drawn in a search worker (the request's budgets), cached by ``key``."""
        png = self.cached_figure(key)
        if png is None:
            png = await self.task(fn, *args)
            with self._figures_lock:
                self._figures[key] = png
                while len(self._figures) > FIGURE_CACHE:
                    self._figures.pop(next(iter(self._figures)))
        return png

    def close(self) -> None:
        if self.options.dask is not None:
            from mirsearch.service.cluster import use_cluster

            use_cluster(None)
        self.align_jobs.close()
        for workers in (self.tasks, self.slow.processes, self.aligner):
            workers.close()
        self.search.close()
        self.slow.close()
        self.jobs.join(timeout=60)
        self.coll.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _fans_out(fn, args: tuple, coll) -> bool:
    """Whether a call of :meth:`Server.task` sends its work to the cluster (``serve --dask``): a task whose
    request has a ``dask`` field (passages, similar), a theme search only when it resolves to the exhaustive
    search (a cascade is not sharded: it runs in a worker process like any other call). ``fn`` is
    :func:`~mirsearch.server.workers.task` with such a request, or a function marked ``fans_out`` whose last
    argument holds a theme search's settings."""
    from mirsearch.server.workers import task
    from mirsearch.service.theme import ThemeRequest, resolve_cascade, resolve_features

    if fn is task:
        if len(args) != 2 or not hasattr(args[1], "dask"):
            return False
        if not isinstance(args[1], ThemeRequest):
            return True
        cascade, features = args[1].cascade, args[1].features
    elif getattr(fn, "fans_out", False):
        cascade, features = args[-1].get("cascade", "auto"), args[-1].get("features", "auto")
    else:
        return False
    return resolve_cascade(cascade, resolve_features(coll, features)) == "exhaustive"


def _on_cluster(seconds: float, fn, coll, *args):
    """``fn(coll, *args)`` in this thread with its fan-outs bounded by ``seconds`` (their futures cancelled after
    that: :class:`OverBudget`)."""
    from mirsearch.cluster.search import ClusterTimeout, time_budget

    try:
        with time_budget(seconds):
            return fn(coll, *args)
    except ClusterTimeout:
        raise OverBudget(f"the search took longer than the server's time budget ({seconds:g} s; its cluster tasks "
                         "were cancelled)") from None  # fmt: skip


def _is_service_run(fn) -> bool:
    from mirsearch.service import run

    return fn is run


def _info_request():
    from mirsearch.service.collection import InfoRequest

    return InfoRequest()
