"""One indexing run (:meth:`Collection.add <mirsearch.collection.Collection.add>`): per-file isolation,
worker processes that die with their parent, and a report of everything that happened.

Whatever goes wrong with one file is that file's failure line and the batch goes on; only a failure of the
collection itself (disk full, read-only file system) stops the run, with a clear message, and leaves every
recording committed so far usable. A file whose content is already in the collection under a path that no
longer exists is *moved* (no feature recomputed). A file that failed in an earlier run and has not changed
since (same size and mtime) is not tried again: it is listed as a known failure, not as a failure of this run.
"""

from __future__ import annotations

import collections
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from mirsearch.audio import display_name, printable
from mirsearch.collection import store
from mirsearch.collection.extract import FileResult, process_file, worker_init
from mirsearch.collection.scan import scan_paths
from mirsearch.errors import CollectionError
from mirsearch.features import registry

log = logging.getLogger(__name__)

#: a file whose worker process died this many times is reported as crashing the decoder
MAX_CRASHES = 2


@dataclass
class AddReport:
    """What :meth:`Collection.add` did.

    ``failed`` holds this run's failures only (the exit code of ``index`` counts them); ``known_failures``
    the unchanged files that failed before and were not tried again; ``skipped`` the files a folder scan
    left out, by extension; ``warnings`` library messages, each starting with its file's name; ``aborted``
    the reason when the collection itself could not be written and the run stopped.
    """

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    known_failures: list[tuple[str, str]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    aborted: str | None = None
    seconds: float = 0.0
    audio_seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "moved": [{"from": printable(a), "to": printable(b)} for a, b in self.moved],
            "failed": [{"path": printable(p), "error": printable(e)} for p, e in self.failed],
            "known_failures": [{"path": printable(p), "error": printable(e)} for p, e in self.known_failures],
            "skipped": dict(sorted(self.skipped.items())),
            "warnings": [printable(w) for w in self.warnings],
            "aborted": self.aborted,
            "seconds": round(self.seconds, 3),
            "audio_seconds": round(self.audio_seconds, 3),
            "x_realtime": round(self.audio_seconds / self.seconds, 1) if self.seconds > 0 else None,
        }

    def summary_lines(self, *, warnings: bool = False) -> list[str]:
        """Lines for a human summary beyond the counts: skipped files, known failures, moved recordings, library
        warnings (each with its file's name when ``warnings``, else how many), the reason a run stopped."""
        lines = []
        if self.moved:
            lines.append(f"{len(self.moved)} recordings moved to their new paths (no feature recomputed)")
        if self.skipped:
            kinds = ", ".join(f"{n} {ext or '(no extension)'}" for ext, n in sorted(self.skipped.items()))
            lines.append(f"skipped (not audio): {kinds}")
        if self.known_failures:
            lines.append(f"{len(self.known_failures)} unchanged files failed in an earlier run (not retried)")
        if warnings:
            lines.extend(f"warning: {printable(w)}" for w in self.warnings)
        elif self.warnings:
            lines.append(f"{len(self.warnings)} decoder warnings (listed with -v and in --json)")
        if self.aborted:
            lines.append(f"stopped: {self.aborted}")
        return lines


def run_add(coll, paths, *, jobs: int, progress: bool, on_result, retry_failed: bool, producer=None) -> AddReport:
    """The body of :meth:`Collection.add` (``coll`` is open for writing and holds the lock).

    ``producer(todo, configs)`` yields one :class:`FileResult` per ``(path, known hashes)`` of ``todo``, in
    any order (default: :func:`local_producer` with ``jobs`` processes; a cluster's, e.g.
    :func:`mirsearch.cluster.dask_producer`). Only this process writes the catalogue.
    """
    t0 = time.perf_counter()
    report = AddReport()
    notify = on_result or (lambda *a: None)
    scan = scan_paths(paths)
    report.skipped = dict(scan.skipped)
    for path, msg in scan.missing:
        report.failed.append((path, msg))
        notify("failed", path, msg)
    removed = store.remove_orphans(coll.root, coll.catalog.referenced_files())
    if removed:
        log.info("removed %d incomplete feature files from an interrupted run", removed)
    configs = coll.configs()
    keys = {c["kind"]: registry.config_key(c) for c in configs}
    todo, moved_from = _plan(coll, scan.files, keys, report, notify, retry_failed=retry_failed)
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="file", desc="indexing", dynamic_ncols=True)
    results = (producer or local_producer(jobs))(todo, configs) if todo else iter(())
    try:
        for result in results:
            report.warnings.extend(result.warnings)
            status = _commit_safely(coll, result, (configs, keys, moved_from), report)
            notify(status, result.path, report.failed[-1][1] if status == "failed" else "")
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(display_name(result.path)[-30:])
            if report.aborted:
                break
    finally:
        if hasattr(results, "close"):  # stop the producer's workers now, not when it is collected
            results.close()
        if bar is not None:
            bar.close()
    report.seconds = time.perf_counter() - t0
    return report


def _plan(coll, files: list[Path], keys: dict, report: AddReport, notify, *, retry_failed: bool):
    """The files to process, each with the content hashes that need no extraction."""
    catalog = coll.catalog
    moved_from = {}  # content of recordings whose file is gone (and whose features are current)
    for rec in catalog.recordings():
        if not os.path.exists(rec.path) and catalog.feature_keys(rec.id) == keys:
            moved_from.setdefault(rec.sha1, rec)
    todo = []
    for f in files:
        path = str(f)
        try:
            st = f.stat()
        except OSError as exc:
            msg = f"{display_name(f)}: cannot read ({exc.strerror or type(exc).__name__})"
            report.failed.append((path, msg))
            notify("failed", path, msg)
            continue
        rec = catalog.by_path(path)
        current = rec is not None and catalog.feature_keys(rec.id) == keys
        if current and rec.size == st.st_size and rec.mtime == st.st_mtime:
            report.unchanged.append(path)
            notify("unchanged", path, "")
            continue
        earlier = (
            None if retry_failed or rec is not None else catalog.failed_before(path, size=st.st_size, mtime=st.st_mtime)
        )
        if earlier is not None:
            report.known_failures.append((path, earlier))
            notify("skipped", path, earlier)
            continue
        known = {rec.sha1} if current else set()
        if rec is None:
            known |= set(moved_from)
        todo.append((path, frozenset(known)))
    return todo, moved_from


def local_producer(jobs: int):
    """The result producer of a local run: the files in this process for one job, else in a process pool."""
    return lambda todo, configs: _results(todo, configs, jobs)


def _results(todo, configs, jobs: int):
    """Process the files (in this process for one job, else in a pool); yields one FileResult per file."""
    if jobs == 1 or len(todo) <= 1:
        for path, known in todo:
            yield process_file(path, known, configs)
        return
    yield from _pool_results(todo, configs, jobs)


def _new_pool(jobs: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=jobs, mp_context=get_context("spawn"), initializer=worker_init, initargs=(os.getpid(),)
    )


def _stop_pool(pool: ProcessPoolExecutor, *, wait: bool) -> None:
    """Shut a pool down; without ``wait`` its workers are terminated at once (interruption, abort)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=wait, cancel_futures=True)
    if not wait:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=5)


def _pool_results(todo, configs, jobs: int):
    """Results in order with at most ``2 * jobs`` files in flight. A worker that dies (a decoder crash) breaks
    the pool: the files in flight are tried again in a new pool; a file that breaks it twice fails alone."""
    queue = collections.deque((path, known, 0) for path, known in todo)
    pool = _new_pool(jobs)
    inflight: collections.deque = collections.deque()
    clean = False
    try:
        while queue or inflight:
            while queue and len(inflight) < 2 * jobs:
                path, known, crashes = queue.popleft()
                inflight.append((path, known, crashes, pool.submit(process_file, path, known, configs)))
            path, known, crashes, fut = inflight.popleft()
            try:
                result = fut.result()
            except BrokenProcessPool:
                _stop_pool(pool, wait=False)
                retry = [(path, known, crashes + 1)] + [(p, k, c + 1) for p, k, c, _ in inflight]
                inflight.clear()
                for item in reversed(retry):
                    if item[2] >= MAX_CRASHES:
                        yield FileResult("error", item[0], error=f"{display_name(item[0])}: the decoder crashed")
                    else:
                        queue.appendleft(item)
                pool = _new_pool(jobs)
                continue
            yield result
        clean = True
    finally:
        _stop_pool(pool, wait=clean)


def _commit_safely(coll, result: FileResult, settings, report: AddReport) -> str:
    """Commit one result; a per-file problem is that file's failure, a collection problem stops the run.

    ``settings``: ``(configs, keys, moved_from)`` of the run.
    """
    try:
        return _commit(coll, result, settings, report)
    except CollectionError as exc:  # disk full, read-only: every further file would fail too
        report.aborted = str(exc)
        msg = f"{display_name(result.path)}: not stored ({exc})"
    except OSError as exc:  # the file vanished or changed under us
        msg = f"{display_name(result.path)}: cannot read ({exc.strerror or type(exc).__name__})"
    except Exception as exc:  # noqa: BLE001 - one file must never stop the batch
        log.debug("unexpected error committing %s", result.path, exc_info=True)
        msg = f"{display_name(result.path)}: {type(exc).__name__}: {str(exc)[:200]}"
    report.failed.append((result.path, msg))
    return "failed"


def _commit(coll, result: FileResult, settings, report: AddReport) -> str:
    configs, keys, moved_from = settings
    catalog, path = coll.catalog, result.path
    if result.status == "error":
        log.info("%s", result.error)
        st = _stat_or_none(path)
        catalog.put_failure(path, result.error, size=st and st.st_size, mtime=st and st.st_mtime)
        report.failed.append((path, result.error))
        return "failed"
    st = Path(path).stat()
    if result.status == "same":
        rec = catalog.by_path(path)
        if rec is not None:
            catalog.touch(rec.id, size=st.st_size, mtime=st.st_mtime)
            report.unchanged.append(path)
            return "unchanged"
        old = moved_from.pop(result.sha1, None)
        if old is not None:
            catalog.move(old.id, path, size=st.st_size, mtime=st.st_mtime)
            report.moved.append((old.path, path))
            return "moved"
        return _add_copy(coll, path, result.sha1, st, keys, report)
    rows = []
    for config, (X, rate) in zip(configs, result.feats, strict=True):
        kind = config["kind"]
        rel = store.feature_filename(kind, result.sha1, keys[kind])
        store.save_array(coll.root, rel, np.asarray(X, dtype=np.float32))
        rows.append((kind, keys[kind], config, rel, int(X.shape[1]), float(rate)))
    previous = catalog.by_path(path)
    old_files = catalog.feature_files(previous.id) if previous else set()
    catalog.put_recording(
        path=path, sha1=result.sha1, size=st.st_size, mtime=st.st_mtime, duration=result.duration, features=rows
    )
    for rel in old_files - catalog.referenced_files():  # arrays of the old content, now unreferenced
        (coll.root / rel).unlink(missing_ok=True)
    report.audio_seconds += result.duration
    (report.updated if previous else report.added).append(path)
    return "updated" if previous else "added"


def _add_copy(coll, path: str, sha1: str, st, keys: dict, report: AddReport) -> str:
    """A new file whose content the collection holds already: a new recording sharing the stored arrays."""
    catalog = coll.catalog
    twin = next((r for r in catalog.by_sha1(sha1) if catalog.feature_keys(r.id) == keys), None)
    if twin is None:
        raise RuntimeError("its content vanished from the collection during the run")
    rows = []
    for kind, key in keys.items():
        e = catalog.features(kind)[twin.id]
        rows.append(
            (
                kind,
                key,
                registry.feature_config(kind, feature_rate=coll.feature_rate),
                e.file,
                e.n_frames,
                e.feature_rate,
            )
        )
    catalog.put_recording(
        path=path, sha1=sha1, size=st.st_size, mtime=st.st_mtime, duration=twin.duration, features=rows
    )
    report.added.append(path)
    return "added"


def _stat_or_none(path: str):
    try:
        return os.stat(path)
    except OSError:
        return None
