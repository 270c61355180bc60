"""A collection: a directory holding a SQLite catalogue and the feature arrays of its recordings.

Layout::

    my.mirs/
      catalog.sqlite        recordings, content hashes, durations, feature configurations, failures
      features/<kind>/..    one .npy per recording and feature configuration
      write.lock            held by the one process that may add recordings

Indexing is resumable and safe to interrupt: each recording's arrays are written atomically, then its
catalogue rows are committed in one transaction. A run that is killed leaves every committed recording
usable; the next run skips them (same size and mtime, or same content hash) and goes on.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from mirsearch._util import directory_lock
from mirsearch.audio import SR, is_audio_file, load_audio
from mirsearch.collection import store
from mirsearch.collection.catalog import Catalog, Recording
from mirsearch.collection.views import DerivedViews
from mirsearch.errors import CollectionError, MirsearchError, ParameterError
from mirsearch.features import registry

log = logging.getLogger(__name__)

CATALOG_NAME = "catalog.sqlite"
#: CENS parameters used when a theme is searched with ``features="cens"`` (10 Hz, light smoothing)
THEME_CENS = {"window": 9, "downsample": 1}


@dataclass
class AddReport:
    """What :meth:`Collection.add` did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    audio_seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "failed": [{"path": p, "error": e} for p, e in self.failed],
            "seconds": round(self.seconds, 3),
            "audio_seconds": round(self.audio_seconds, 3),
            "x_realtime": round(self.audio_seconds / self.seconds, 1) if self.seconds > 0 else None,
        }


def _sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _process_file(path: str, known_sha1: str | None, configs: list[dict]):
    """Worker: hash, decode and extract. Returns a tuple tagged ``"ok"``, ``"same"`` or ``"error"``."""
    try:
        sha1 = _sha1(Path(path))
        if known_sha1 == sha1:
            return ("same", path, sha1)
        y, sr = load_audio(path, sr=SR)
        feats = [registry.extract(y, sr=sr, config=c) for c in configs]
        return ("ok", path, sha1, y.size / sr, feats)
    except MirsearchError as exc:
        return ("error", path, str(exc))
    except Exception as exc:  # a decoder or extractor bug must not stop the batch
        log.debug("unexpected error on %s", path, exc_info=True)
        return ("error", path, f"{Path(path).name}: {type(exc).__name__}: {exc}")


def expand_paths(paths) -> tuple[list[Path], list[tuple[str, str]]]:
    """Audio files under the given files and folders (recursively, sorted), and missing inputs."""
    found: list[Path] = []
    missing: list[tuple[str, str]] = []
    for p in [paths] if isinstance(paths, str | os.PathLike) else paths:
        p = Path(p)
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*") if q.is_file() and is_audio_file(q)))
        elif p.is_file():
            found.append(p)
        else:
            missing.append((str(p), f"{p}: no such file or folder"))
    unique = list(dict.fromkeys(q.resolve() for q in found))
    return unique, missing


class Collection:
    """A searchable set of recordings on disk.

    Use :meth:`create` or :meth:`open`; then :meth:`add` recordings. It stores and loads; the searches are in
    :mod:`mirsearch.search` and the tasks in :mod:`mirsearch.service`.
    """

    def __init__(self, root: Path, catalog: Catalog):
        self.root = Path(root)
        self.catalog = catalog
        #: views derived from the stored features, memoised per generation (:class:`DerivedViews`)
        self.views = DerivedViews(self.generation)
        self._lock: contextlib.ExitStack | None = None

    # -- life cycle -------------------------------------------------------------------------------
    @classmethod
    def create(cls, path, *, features=None, feature_rate: float | None = None, exist_ok: bool = True) -> Collection:
        """Create a collection directory, or open it when it exists and ``exist_ok``.

        Parameters
        ----------
        path : path-like
            Collection directory (``.mirs`` by convention).
        features : sequence of str, optional
            Stored feature kinds (``"chroma"``, ``"learned"``); default ``["chroma"]`` for a new
            collection, unchanged for an existing one.
        feature_rate : float > 0, optional
            Frames per second of the stored features (default 10 for a new collection).
        """
        root = Path(path)
        if (root / CATALOG_NAME).exists():
            if not exist_ok:
                raise CollectionError(f"{root}: collection exists already")
            coll = cls.open(root)
            if features is not None or feature_rate is not None:
                coll.set_features(features or coll.feature_kinds, feature_rate=feature_rate)
            return coll
        if root.exists() and any(root.iterdir()):
            raise CollectionError(f"{root}: folder exists and is not empty (not a collection)")
        root.mkdir(parents=True, exist_ok=True)
        coll = cls(root, Catalog(root / CATALOG_NAME, create=True))
        coll.set_features(features or ["chroma"], feature_rate=feature_rate or 10.0)
        return coll

    @classmethod
    def open(cls, path, *, readonly: bool = False) -> Collection:
        """Open an existing collection; ``readonly`` for servers and concurrent readers."""
        root = Path(path)
        if not (root / CATALOG_NAME).is_file():
            raise CollectionError(f"{root}: not a mirsearch collection (no {CATALOG_NAME}; run 'mirsearch index')")
        return cls(root, Catalog(root / CATALOG_NAME, readonly=readonly))

    def close(self) -> None:
        self._release_lock()
        self.catalog.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- configuration ----------------------------------------------------------------------------
    @property
    def feature_kinds(self) -> list[str]:
        return self.catalog.get_json("feature_kinds", ["chroma"])

    @property
    def feature_rate(self) -> float:
        return float(self.catalog.get_meta("feature_rate", 10.0))

    def set_features(self, kinds, *, feature_rate: float | None = None) -> None:
        """Set the stored feature kinds (a new kind or rate re-extracts on the next :meth:`add`)."""
        kinds = list(dict.fromkeys(kinds))
        for kind in kinds:
            registry.feature_config(kind, feature_rate=feature_rate or self.feature_rate)  # validates
        self.catalog.set_json("feature_kinds", kinds)
        if feature_rate is not None:
            self.catalog.set_meta("feature_rate", float(feature_rate))
        self.views.clear()

    def configs(self) -> list[dict]:
        return [registry.feature_config(k, feature_rate=self.feature_rate) for k in self.feature_kinds]

    # -- indexing ---------------------------------------------------------------------------------
    def _acquire_lock(self) -> None:
        """Hold ``write.lock`` until :meth:`close` (one writer at a time)."""
        if self._lock is not None:
            return
        stack = contextlib.ExitStack()
        stack.enter_context(directory_lock(self.root, name="write.lock"))
        self._lock = stack

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def add(self, paths, *, jobs: int = 1, progress: bool = False, on_result=None) -> AddReport:
        """Index audio files and folders (recursively); new and changed files only.

        Parameters
        ----------
        paths : path-like or sequence of path-like
            Files and folders; folders are searched for ``AUDIO_EXTENSIONS``.
        jobs : int >= 1
            Worker processes for decoding and feature extraction.
        progress : bool
            Show a progress bar (tqdm, on stderr).
        on_result : callable, optional
            Called as ``on_result(status, path, message)`` after each file (``status`` in
            ``"added", "updated", "unchanged", "failed"``); used by the server's indexing job.

        Returns
        -------
        AddReport
            Files added, updated, unchanged and failed (with one-line reasons); nothing is raised
            for a bad file, the batch goes on.
        """
        if self.catalog.readonly:
            raise CollectionError(f"{self.root}: opened read-only")
        if jobs < 1:
            raise ParameterError(f"jobs={jobs} must be >= 1")
        self._acquire_lock()
        t0 = time.perf_counter()
        report = AddReport()
        files, missing = expand_paths(paths)
        notify = on_result or (lambda *a: None)
        for path, msg in missing:
            report.failed.append((path, msg))
            notify("failed", path, msg)
        removed = store.remove_orphans(self.root, self.catalog.referenced_files())
        if removed:
            log.info("removed %d incomplete feature files from an interrupted run", removed)
        configs = self.configs()
        keys = {c["kind"]: registry.config_key(c) for c in configs}
        todo: list[tuple[str, str | None]] = []
        for f in files:
            st = f.stat()
            rec = self.catalog.by_path(str(f))
            current = rec is not None and self.catalog.feature_keys(rec.id) == keys
            if current and rec.size == st.st_size and rec.mtime == st.st_mtime:
                report.unchanged.append(str(f))
                notify("unchanged", str(f), "")
                continue
            todo.append((str(f), rec.sha1 if current else None))
        bar = None
        if progress and todo:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), unit="file", desc="indexing", dynamic_ncols=True)
        try:
            for result in self._run(todo, configs, jobs):
                status = self._commit(result, configs, keys, report)
                notify(status, result[1], result[2] if status == "failed" else "")
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(Path(result[1]).name[-30:])
        finally:
            if bar is not None:
                bar.close()
        report.seconds = time.perf_counter() - t0
        return report

    def _run(self, todo, configs, jobs):
        if jobs == 1 or len(todo) <= 1:
            for path, known in todo:
                yield _process_file(path, known, configs)
            return
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_process_file, path, known, configs) for path, known in todo]
            for fut in futures:
                yield fut.result()

    def _commit(self, result, configs, keys, report: AddReport) -> str:
        tag, path = result[0], result[1]
        if tag == "error":
            log.info("%s", result[2])
            self.catalog.put_failure(path, result[2])
            report.failed.append((path, result[2]))
            return "failed"
        st = Path(path).stat()
        if tag == "same":
            rec = self.catalog.by_path(path)
            self.catalog.touch(rec.id, size=st.st_size, mtime=st.st_mtime)
            report.unchanged.append(path)
            return "unchanged"
        _, path, sha1, duration, feats = result
        rows = []
        for config, (X, rate) in zip(configs, feats, strict=True):
            rel = store.feature_filename(config["kind"], sha1, keys[config["kind"]])
            store.save_array(self.root, rel, np.asarray(X, dtype=np.float32))
            rows.append((config["kind"], keys[config["kind"]], config, rel, int(X.shape[1]), float(rate)))
        previous = self.catalog.by_path(path)
        old_files = self.catalog.feature_files(previous.id) if previous else set()
        self.catalog.put_recording(
            path=path, sha1=sha1, size=st.st_size, mtime=st.st_mtime, duration=duration, features=rows
        )
        existed = previous is not None
        stale = old_files - self.catalog.referenced_files()
        for rel in stale:  # arrays of the old content, now unreferenced
            (self.root / rel).unlink(missing_ok=True)
        report.audio_seconds += duration
        (report.updated if existed else report.added).append(path)
        return "updated" if existed else "added"

    # -- reading ----------------------------------------------------------------------------------
    def recordings(self) -> list[Recording]:
        """All recordings, by id."""
        return self.catalog.recordings()

    def recording(self, recording_id: int) -> Recording:
        return self.catalog.recording(recording_id)

    def generation(self) -> int:
        """A counter of changes to the recordings (added, updated, removed), also by other processes.

        Views of the collection memoised in memory (the database, shingle indexes, note indexes) store
        the generation they were built at and are rebuilt when it moves.
        """
        return self.catalog.generation()

    def load_features(self, recording_id: int, kind: str = "chroma") -> tuple[np.ndarray, float]:
        """Stored features of one recording.

        Parameters
        ----------
        recording_id : int
        kind : str
            A stored kind (``"chroma"``, ``"learned"``), or ``"cens"`` (derived from chroma with
            :data:`THEME_CENS`).

        Returns
        -------
        X : np.ndarray, shape (12, n_frames), float32
        feature_rate : float
        """
        if kind == "cens":
            from mirsearch.features.chroma import cens

            X, rate = self.load_features(recording_id, "chroma")
            return cens(np.asarray(X), feature_rate=rate, **THEME_CENS)
        entry = self.catalog.features(kind).get(int(recording_id))
        if entry is None:
            raise CollectionError(
                f"recording_id={recording_id} has no '{kind}' features (index with --features {kind})"
            )
        return store.load_array(self.root, entry.file), entry.feature_rate

    def database(self, kind: str = "chroma"):
        """All recordings' features concatenated, as unit-length rows for the matching kernels.

        Returns
        -------
        Y : np.ndarray, shape (total_frames, 12), float32
        offsets : np.ndarray, shape (n_recordings + 1,), int64
            Recording ``i`` occupies rows ``offsets[i]:offsets[i+1]``.
        recordings : list of Recording
        feature_rate : float
        """
        return self.views.get(("database", kind), lambda: self._build_database(kind))

    def _build_database(self, kind: str):
        from mirsearch.matching.subsequence import unit_columns

        recs = self.recordings()
        base = "chroma" if kind == "cens" else kind
        entries = self.catalog.features(base)
        parts, kept, rate = [], [], None
        for rec in recs:
            if rec.id not in entries:
                continue
            X, r = self.load_features(rec.id, kind)
            if X.shape[1] == 0:
                continue
            if rate is not None and abs(r - rate) > 1e-9:
                raise CollectionError(f"{self.root}: mixed feature rates ({r} and {rate}); re-run 'mirsearch index'")
            rate = r
            parts.append(unit_columns(np.asarray(X, dtype=np.float32)))
            kept.append(rec)
        if not parts:
            raise CollectionError(f"{self.root}: no recordings with '{base}' features (run 'mirsearch index')")
        offsets = np.cumsum([0] + [p.shape[0] for p in parts]).astype(np.int64)
        return np.ascontiguousarray(np.concatenate(parts)), offsets, kept, float(rate)

    def info(self) -> dict:
        """Summary for ``mirsearch info``."""
        recs = self.recordings()
        stored = {}
        for kind in self.feature_kinds:
            entries = self.catalog.features(kind)
            stored[kind] = {
                "recordings": len(entries),
                "frames": int(sum(e.n_frames for e in entries.values())),
                "config": registry.feature_config(kind, feature_rate=self.feature_rate),
            }
        size = sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
        return {
            "path": str(self.root),
            "recordings": len(recs),
            "hours": round(sum(r.duration for r in recs) / 3600.0, 3),
            "feature_rate": self.feature_rate,
            "features": stored,
            "failures": [{"path": p, "error": e} for p, e in self.catalog.failures()],
            "size_mb": round(size / 1e6, 2),
        }


__all__ = ["AddReport", "Collection", "expand_paths"]
