"""Background jobs started from the page: indexing (one at a time, in a thread, with progress) and alignments.

The server's own collection handle is read-only; an indexing job opens the collection for writing on its own
(``write.lock`` keeps it the only writer, also against a ``mirsearch index`` run in a terminal) and
closes it when done. The read-only handle sees the new recordings on its next search.

An alignment job (:class:`AlignJobs`) computes the time map of two recordings in the alignment worker process
(its own time and memory budget) while the request that started it has already been answered (202); the page
polls the job and then reads the cached map.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from mirsearch.errors import CollectionError, MirsearchError

log = logging.getLogger(__name__)

#: failure messages kept in a job's status
MAX_FAILURES_SHOWN = 50


@dataclass
class JobStatus:
    """Progress of one indexing job (JSON via :meth:`to_dict`)."""

    id: int
    sources: list[str]
    state: str = "starting"  # starting, running, done, failed
    total: int = 0
    done: int = 0
    counts: dict = field(default_factory=lambda: {"added": 0, "updated": 0, "unchanged": 0, "failed": 0})
    failures: list = field(default_factory=list)
    current: str = ""
    error: str = ""
    started: float = field(default_factory=time.time)
    finished: float | None = None

    def to_dict(self) -> dict:
        end = self.finished or time.time()
        return {
            "id": self.id,
            "state": self.state,
            "sources": self.sources,
            "total": self.total,
            "done": self.done,
            "fraction": round(self.done / self.total, 4) if self.total else (1.0 if self.state == "done" else 0.0),
            "counts": dict(self.counts),
            "failures": list(self.failures),
            "current": self.current,
            "error": self.error,
            "elapsed": round(end - self.started, 2),
        }


class IndexJobs:
    """Runs the service's ``index`` task on configured source folders, one job at a time.

    Parameters
    ----------
    collection_path : Path
        The collection directory.
    sources : list of Path
        Folders (or files) the page may index; the client picks among them by position, it never
        sends a path.
    jobs : int >= 1
        Worker processes for decoding and feature extraction.
    on_finish : callable, optional
        Called without arguments after a job ends (e.g. to drop cached statistics).
    """

    def __init__(self, collection_path: Path, sources: list[Path], *, jobs: int = 1, on_finish=None):
        self.collection_path = Path(collection_path)
        self.sources = [Path(s) for s in sources]
        self.jobs = int(jobs)
        self.on_finish = on_finish
        self._lock = threading.Lock()
        self._status: JobStatus | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0

    def status(self) -> dict | None:
        with self._lock:
            return None if self._status is None else self._status.to_dict()

    def running(self) -> bool:
        with self._lock:
            return self._status is not None and self._status.state in ("starting", "running")

    def start(self, indices: list[int] | None = None) -> dict:
        """Start a job over the chosen sources (all by default).

        Raises
        ------
        PermissionError
            No sources configured (indexing from the page is off).
        CollectionError
            A job is already running.
        IndexError
            A source index out of range.
        """
        if not self.sources:
            raise PermissionError("indexing from the page is off: start the server with --index-source DIR")
        chosen = list(range(len(self.sources))) if not indices else list(dict.fromkeys(indices))
        for i in chosen:
            if not 0 <= i < len(self.sources):
                raise IndexError(f"source {i} does not exist (there are {len(self.sources)})")
        paths = [self.sources[i] for i in chosen]
        with self._lock:
            if self._status is not None and self._status.state in ("starting", "running"):
                raise CollectionError(f"an indexing job is running already (job {self._status.id})")
            self._counter += 1
            self._status = JobStatus(id=self._counter, sources=[p.name for p in paths])
            status = self._status
            self._thread = threading.Thread(target=self._run, args=(status, paths), name="mirsearch-index", daemon=True)
            self._thread.start()
            return status.to_dict()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the running job's thread (tests, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self, status: JobStatus, paths: list[Path]) -> None:
        from mirsearch.collection import Collection
        from mirsearch.service import run
        from mirsearch.service.collection import IndexRequest, count_inputs

        def on_result(kind: str, path: str, message: str) -> None:
            with self._lock:
                status.done += 1
                status.counts[kind] = status.counts.get(kind, 0) + 1
                status.current = Path(path).name
                if kind == "failed" and len(status.failures) < MAX_FAILURES_SHOWN:
                    status.failures.append(message)

        try:
            total = count_inputs(paths)
            with self._lock:
                status.total = total
                status.state = "running"
            request = IndexRequest(paths=tuple(paths), jobs=self.jobs, progress=False)
            with Collection.open(self.collection_path) as coll:
                run("index", request, collection=coll, on_result=on_result)
            with self._lock:
                status.state = "done"
                status.current = ""
        except MirsearchError as exc:
            with self._lock:
                status.state, status.error = "failed", str(exc)
        except Exception as exc:  # never let a job thread die silently
            log.exception("indexing job %d failed", status.id)
            with self._lock:
                status.state, status.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                status.finished = time.time()
            log.info("indexing job %d: %s %s", status.id, status.state, status.counts)
            if self.on_finish is not None:
                try:
                    self.on_finish()
                except Exception:
                    log.exception("on_finish after indexing job failed")


# ------------------------------------------------------------------------------------------- alignment jobs

#: alignment jobs kept (finished ones are dropped oldest first beyond this)
MAX_ALIGN_JOBS = 256
#: seconds a failed alignment is answered from its job before a new request may try the pair again
RETRY_SECONDS = 600.0
#: seconds a finished job is handed out again (after that, a request that finds no cached map starts a new one)
DONE_SECONDS = 60.0


def align_estimate(duration_a: float, duration_b: float) -> float:
    """Rough seconds an alignment takes (decoding and sync features of both files, DTW): for progress only."""
    return 5.0 + 0.3 * (duration_a + duration_b) / 60.0


@dataclass
class AlignJob:
    """One alignment of two recordings running in the background (JSON via :meth:`to_dict`)."""

    id: str
    a: int
    b: int
    estimate: float
    state: str = "queued"  # queued, running, done, failed
    error: Exception | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    done_event: threading.Event = field(default_factory=threading.Event, repr=False)

    def to_dict(self) -> dict:
        now = time.time()
        running = 0.0 if self.started is None else (self.finished or now) - self.started
        fraction = {"done": 1.0, "queued": 0.0}.get(self.state, min(0.95, running / max(self.estimate, 1e-3)))
        return {
            "job": self.id,
            "a": self.a,
            "b": self.b,
            "state": self.state,
            "fraction": round(fraction, 3),
            "elapsed": round((self.finished or now) - self.created, 2),
            "estimate_seconds": round(self.estimate, 1),
            "error": "" if self.error is None else str(self.error),
            "status_url": f"/api/align/jobs/{self.id}",
            "result_url": f"/api/align?a={self.a}&b={self.b}",
        }


def _still_answers(job: AlignJob) -> bool:
    """Whether a request gets ``job`` itself: queued or running, failed recently, or done just now (its map is
    read from the cache by the request)."""
    if job.state in ("queued", "running"):
        return True
    age = time.time() - (job.finished or 0.0)
    return age < (RETRY_SECONDS if job.state == "failed" else DONE_SECONDS)


class AlignJobs:
    """Alignments of two recordings as background jobs, one at a time, each in the alignment worker process.

    A request starts a job (or gets the one already queued, running, finished or recently failed for the same
    pair and settings, :func:`~mirsearch.server.timemaps.settings_tag`) and returns at once; the job computes
    the time map through ``timemaps`` (which runs ``align`` in a killable process with its own time and memory
    budget and stores the map on disk), so the next request for the pair is answered from the cache.

    Parameters
    ----------
    timemaps : TimeMapCache
        Computes and caches the maps (``time_map_for(rec_a, rec_b, compute=True)``).
    max_pending : int >= 1
        Queued jobs before a new one is refused (:class:`~mirsearch.server.state.ServerBusy`).
    """

    def __init__(self, timemaps, *, max_pending: int):
        from concurrent.futures import ThreadPoolExecutor

        self.timemaps = timemaps
        self.max_pending = int(max_pending)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mirsearch-align")
        self._lock = threading.Lock()
        self._by_key: dict[tuple, AlignJob] = {}
        self._by_id: dict[str, AlignJob] = {}

    def start(self, rec_a, rec_b) -> AlignJob:
        """The job aligning ``rec_a`` with ``rec_b`` (either order): an existing one, or a new one queued.

        Called when the pair's map is not cached: a job that finished long ago (its map since dropped from a
        cache that could not be written to disk) is started again.

        Raises
        ------
        ServerBusy
            ``max_pending`` jobs are queued already.
        """
        from mirsearch.server.timemaps import settings_tag

        key = (*sorted((rec_a.sha1, rec_b.sha1)), settings_tag())
        with self._lock:
            job = self._by_key.get(key)
            if job is not None and _still_answers(job):
                return job
            if sum(j.state == "queued" for j in self._by_id.values()) >= self.max_pending:
                from mirsearch.server.state import ServerBusy

                raise ServerBusy(f"server busy ({self.max_pending} alignments queued); try again later")
            job = AlignJob(id=uuid.uuid4().hex[:16], a=rec_a.id, b=rec_b.id,
                           estimate=align_estimate(rec_a.duration, rec_b.duration))  # fmt: skip
            self._by_key[key], self._by_id[job.id] = job, job
            self._prune()
        self._pool.submit(self._run, job, rec_a, rec_b)
        return job

    def get(self, job_id: str) -> AlignJob | None:
        with self._lock:
            return self._by_id.get(job_id)

    def _prune(self) -> None:
        finished = [j for j in self._by_id.values() if j.state in ("done", "failed")]
        for job in finished[: max(0, len(self._by_id) - MAX_ALIGN_JOBS)]:
            del self._by_id[job.id]
            self._by_key = {k: v for k, v in self._by_key.items() if v is not job}

    def _run(self, job: AlignJob, rec_a, rec_b) -> None:
        with self._lock:
            job.state, job.started = "running", time.time()
        state, error = "done", None
        try:
            self.timemaps.time_map_for(rec_a, rec_b, compute=True)
        except MirsearchError as exc:
            state, error = "failed", exc
        except Exception as exc:  # a bug: reported in the job, never a dead thread
            log.exception("alignment job %s failed", job.id)
            state, error = "failed", MirsearchError(f"alignment failed ({type(exc).__name__}: {exc})")
        with self._lock:
            job.state, job.error, job.finished = state, error, time.time()
        job.done_event.set()
        log.info("alignment job %s (%d, %d): %s in %.1f s", job.id, job.a, job.b, state, job.finished - job.started)

    def close(self) -> None:
        """Cancel the queued jobs (the running one ends when its worker process is stopped)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
