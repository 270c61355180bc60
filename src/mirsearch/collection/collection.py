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
import logging
from pathlib import Path

import numpy as np

from mirsearch._util import directory_lock
from mirsearch.audio import display_name
from mirsearch.collection import store, upkeep
from mirsearch.collection.catalog import Catalog, Recording
from mirsearch.collection.indexing import AddReport, run_add
from mirsearch.collection.scan import expand_paths
from mirsearch.collection.views import DerivedViews
from mirsearch.errors import CollectionError, ParameterError
from mirsearch.features import registry

log = logging.getLogger(__name__)

CATALOG_NAME = "catalog.sqlite"
#: CENS parameters used when a theme is searched with ``features="cens"`` (10 Hz, light smoothing)
THEME_CENS = {"window": 9, "downsample": 1}
#: feature kinds of a new collection: plain chroma and the learned chroma, whose theme matches are both better ranked
#: and better told from chance (docs/benchmarks.md, issue 15), and the upper-register chroma audio matching uses
#: (issue 14; computed from the chroma's pitch bands); ``features=[...]`` / ``--features`` override
DEFAULT_FEATURES = ("chroma", "learned", "chroma_upper")


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
            Stored feature kinds (``"chroma"``, ``"learned"``, ...); default :data:`DEFAULT_FEATURES` (chroma,
            learned chroma and the upper-register chroma of audio matching) for a new collection, unchanged for an
            existing one.
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
        try:
            if root.exists() and any(root.iterdir()):
                raise CollectionError(f"{root}: folder exists and is not empty (not a collection)")
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CollectionError(
                f"{root}: cannot create the collection ({exc.strerror or type(exc).__name__})"
            ) from None
        coll = cls(root, Catalog(root / CATALOG_NAME, create=True))
        coll.set_features(features or DEFAULT_FEATURES, feature_rate=feature_rate or 10.0)
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

    def add(
        self,
        paths,
        *,
        jobs: int = 1,
        progress: bool = False,
        on_result=None,
        retry_failed: bool = False,
        producer=None,
    ) -> AddReport:
        """Index audio files and folders (recursively); new and changed files only.

        Parameters
        ----------
        paths : path-like or sequence of path-like
            Files and folders; folders are searched for ``AUDIO_EXTENSIONS`` (other files are counted in
            ``AddReport.skipped`` by extension).
        jobs : int >= 1
            Worker processes for decoding and feature extraction (they die with this process).
        progress : bool
            Show a progress bar (tqdm, on stderr).
        on_result : callable, optional
            Called as ``on_result(status, path, message)`` after each file (``status`` in
            ``"added", "updated", "unchanged", "moved", "skipped", "failed"``); used by the server's indexing job.
        retry_failed : bool
            Try again files that failed in an earlier run although they have not changed.
        producer : callable, optional
            Where decoding and extraction run: ``producer(todo, configs)`` yields a result per file
            (:func:`mirsearch.collection.indexing.run_add`); default ``jobs`` local processes.

        Returns
        -------
        AddReport
            Files added, updated, unchanged, moved and failed (with one-line reasons); nothing is raised
            for a bad file, the batch goes on. When the collection itself cannot be written (disk full), the
            run stops with ``AddReport.aborted`` set; what was committed stays usable.
        """
        if self.catalog.readonly:
            raise CollectionError(f"{self.root}: opened read-only")
        if jobs < 1:
            raise ParameterError(f"jobs={jobs} must be >= 1")
        self._acquire_lock()
        return run_add(
            self, paths, jobs=jobs, progress=progress, on_result=on_result, retry_failed=retry_failed,
            producer=producer,
        )  # fmt: skip

    # -- upkeep -----------------------------------------------------------------------------------
    def listing(self) -> list[dict]:
        """Every recording with its stored path (relative to the collection's base where it can be) and
        whether its file exists (:func:`mirsearch.collection.upkeep.listing`)."""
        return upkeep.listing(self)

    def remove(self, paths) -> upkeep.UpkeepReport:
        """Remove the recordings of these files, or of every file under these folders (the audio files are
        not touched)."""
        self._writable()
        return upkeep.remove(self, paths)

    def prune(self) -> upkeep.UpkeepReport:
        """Remove the recordings whose files are gone."""
        self._writable()
        return upkeep.prune(self)

    def relocate(self, old, new) -> upkeep.UpkeepReport:
        """Recordings under the folder (or file) ``old`` now live under ``new``: their paths change, their
        features do not (the content hash is checked)."""
        self._writable()
        return upkeep.relocate(self, old, new)

    def _writable(self) -> None:
        if self.catalog.readonly:
            raise CollectionError(f"{self.root}: opened read-only")
        self._acquire_lock()

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
        X = store.load_array(self.root, entry.file)
        if not np.all(np.isfinite(X)):
            name = display_name(self.recording(recording_id).path)
            raise CollectionError(f"{name}: stored '{kind}' features contain NaN or infinite values (re-index it)")
        return X, entry.feature_rate

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

    def database_of(self, kind: str, recording_ids) -> tuple:
        """:meth:`database` of some recordings only (by id; not memoised): a shard of a sharded search."""
        return self._build_database(kind, only={int(i) for i in recording_ids})

    def _build_database(self, kind: str, only: set[int] | None = None):
        from mirsearch.matching.subsequence import unit_columns

        recs = [r for r in self.recordings() if only is None or r.id in only]
        base = "chroma" if kind == "cens" else kind
        entries = self.catalog.features(base)
        parts, kept, rate, bad = [], [], None, []
        for rec in recs:
            if rec.id not in entries:
                continue
            try:
                X, r = self.load_features(rec.id, kind)
            except CollectionError as exc:  # one damaged recording must not take the whole search down
                name = display_name(rec.path)
                bad.append(str(exc) if str(exc).startswith(name) else f"{name} ({exc})")
                continue
            if X.shape[1] == 0:
                continue
            if rate is not None and abs(r - rate) > 1e-9:
                raise CollectionError(f"{self.root}: mixed feature rates ({r} and {rate}); re-run 'mirsearch index'")
            rate = r
            parts.append(unit_columns(np.asarray(X, dtype=np.float32)))
            kept.append(rec)
        if bad:
            log.warning(
                "%s: %d recordings skipped (unusable stored features): %s", self.root, len(bad), "; ".join(bad[:5])
            )
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
