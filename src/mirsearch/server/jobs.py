"""Indexing jobs started from the page: one at a time, in a background thread, with progress.

The server's own collection handle is read-only; a job opens the collection for writing on its own
(``write.lock`` keeps it the only writer, also against a ``mirsearch index`` run in a terminal) and
closes it when done. The read-only handle sees the new recordings on its next search.
"""

from __future__ import annotations

import logging
import threading
import time
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
