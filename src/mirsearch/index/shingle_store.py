"""The shingle store: the shingles of every recording of a collection, on disk beside it (a derived index).

The shingles themselves (:class:`~mirsearch.features.shingles.ShingleConfig`, CENS, tempo scaling) are
:mod:`mirsearch.features.shingles`; this module keeps them up to date with the collection.

On disk (:class:`ShingleStore`)::

    <collection>/index/shingles/<config key>/
        manifest.json               configuration, segments, recordings (id, fingerprint, rows); written last
        seg-00000.npy               float32 (n_rows, 12 * length) shingles of one batch of recordings
        seg-00000-meta.npy          int64 (n_rows, 2): recording id, start frame (CENS frames = seconds at 1 Hz)
        ...

Rows are numbered across segments in manifest order; that number is the label the ANN indexes use.
Adding recordings appends a segment; when a recording was removed or changed (other audio, other chroma
configuration) the store is rebuilt and gets a new ``generation``, which tells indexes built on it to
rebuild too. Every file is written to a temporary name and moved into place with :func:`os.replace`, and
the manifest last: a reader sees the old or the new state, never a mix.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_save_npy, atomic_write_text, directory_lock
from mirsearch.errors import CollectionError
from mirsearch.features.shingles import CHROMA_RATE, DEFAULT_CONFIG, ShingleConfig, cens_of, shingles
from mirsearch.index.ann import read_format_json

log = logging.getLogger(__name__)

FORMAT = "mirsearch-shingles"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


# -- the store --------------------------------------------------------------------------------------------
@dataclass
class UpdateReport:
    """What :meth:`ShingleStore.update` did."""

    added: int = 0
    rows_added: int = 0
    rebuilt: bool = False
    removed: int = 0
    rows: int = 0
    seconds: float = 0.0
    skipped: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _fingerprint(entry) -> str:
    """What identifies a recording's chroma: its stored file name (content hash + configuration key)."""
    return entry.file


class ShingleStore:
    """Shingles of all recordings of a collection, in append-only segments.

    Parameters
    ----------
    directory : path-like
        ``<collection>/index/shingles/<config.key>``; use :meth:`for_collection`.
    config : ShingleConfig
    """

    def __init__(self, directory, *, config: ShingleConfig = DEFAULT_CONFIG):
        self.directory = Path(directory)
        self.config = config
        self._vectors: np.ndarray | None = None
        self._meta: np.ndarray | None = None
        self._loaded_manifest: dict | None = None

    @classmethod
    def for_collection(cls, collection, *, config: ShingleConfig = DEFAULT_CONFIG) -> ShingleStore:
        """The store of ``collection`` (nothing is computed; see :meth:`update`)."""
        return cls(Path(collection.root) / "index" / "shingles" / config.key, config=config)

    # -- reading ---------------------------------------------------------------------------------------
    def manifest(self) -> dict:
        """The current manifest (an empty one when nothing was built)."""
        path = self.directory / MANIFEST
        if not path.is_file():
            return {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "config": self.config.to_dict(),
                "generation": None,
                "segments": [],
                "recordings": {},
                "rows": 0,
            }
        m = read_format_json(path, fmt=FORMAT, version=FORMAT_VERSION, what="a shingle manifest")
        if ShingleConfig.from_dict(m["config"]) != self.config:
            raise CollectionError(f"{path}: built with shingle config {m['config']}, expected {self.config}")
        return m

    @property
    def generation(self) -> str | None:
        """Identifier that changes whenever the store is rebuilt (rows renumbered)."""
        return self.manifest()["generation"]

    def __len__(self) -> int:
        return int(self.manifest()["rows"])

    def _load(self) -> None:
        m = self.manifest()
        if self._loaded_manifest is not None and self._loaded_manifest == m:
            return
        vecs, metas = [], []
        for seg in m["segments"]:
            vecs.append(np.load(self.directory / seg["file"], mmap_mode="r"))
            metas.append(np.load(self.directory / seg["meta"], mmap_mode="r"))
        dim = self.config.dim
        self._vectors = (
            vecs[0] if len(vecs) == 1 else (np.concatenate(vecs) if vecs else np.zeros((0, dim), np.float32))
        )
        self._meta = metas[0] if len(metas) == 1 else (np.concatenate(metas) if metas else np.zeros((0, 2), np.int64))
        self._loaded_manifest = m

    def vectors(self, start: int = 0) -> np.ndarray:
        """Shingles from row ``start`` on, shape (n_rows - start, dim), float32 (memory-mapped if one segment)."""
        self._load()
        return self._vectors[start:]

    def meta(self) -> tuple[np.ndarray, np.ndarray]:
        """Recording id and start frame of every row: two int64 arrays of shape (n_rows,)."""
        self._load()
        return np.asarray(self._meta[:, 0]), np.asarray(self._meta[:, 1])

    def recording_rows(self) -> dict[int, tuple[int, int]]:
        """``recording id -> (first row, n_rows)``."""
        return {int(k): (int(v["row0"]), int(v["rows"])) for k, v in self.manifest()["recordings"].items()}

    # -- writing ---------------------------------------------------------------------------------------
    def update(self, collection, *, progress: bool = False, rebuild: bool = False) -> UpdateReport:
        """Bring the store up to date with ``collection``.

        New recordings are shingled and appended as one segment. When a stored recording was removed or
        its chroma changed, or ``rebuild``, everything is recomputed (new generation).

        Parameters
        ----------
        collection : Collection
            Needs ``"chroma"`` features at 10 Hz.
        progress : bool
            tqdm progress bar on stderr.
        rebuild : bool
            Recompute all shingles.

        Returns
        -------
        UpdateReport
        """
        t0 = time.perf_counter()
        report = UpdateReport()
        with directory_lock(self.directory.parent, name=f".{self.config.key}.lock"):
            m = self.manifest()
            entries = collection.catalog.features(self.config.features)
            current = {int(rid): _fingerprint(e) for rid, e in entries.items()}
            stored = {int(k): v["fingerprint"] for k, v in m["recordings"].items()}
            stale = [rid for rid, fp in stored.items() if current.get(rid) != fp]
            if rebuild or stale or m["generation"] is None:
                report.rebuilt = bool(stored) or rebuild
                report.removed = len(stale)
                if stale:
                    log.info("%d stored recordings removed or changed: rebuilding shingles", len(stale))
                m = {
                    **self.manifest(),
                    "generation": uuid.uuid4().hex[:12],
                    "segments": [],
                    "recordings": {},
                    "rows": 0,
                }
                todo = sorted(current)
                old_files = {f for seg in self.manifest()["segments"] for f in (seg["file"], seg["meta"])}
            else:
                todo = sorted(rid for rid in current if rid not in stored)
                old_files = set()
            if todo:
                self._append_segment(collection, m, todo, current, progress=progress, report=report)
            m["rows"] = int(sum(seg["rows"] for seg in m["segments"]))
            m["updated"] = time.time()
            atomic_write_text(self.directory / MANIFEST, json.dumps(m, indent=1, sort_keys=True))
            keep = {f for seg in m["segments"] for f in (seg["file"], seg["meta"])}
            for f in old_files - keep:
                (self.directory / f).unlink(missing_ok=True)
        self._loaded_manifest = None
        report.rows = int(m["rows"])
        report.seconds = time.perf_counter() - t0
        return report

    def _append_segment(self, collection, m: dict, todo: list[int], current: dict, *, progress, report) -> None:
        parts, metas = [], []
        row = int(sum(seg["rows"] for seg in m["segments"]))
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), unit="rec", desc="shingles", dynamic_ncols=True)
        try:
            for rid in todo:
                C, rate = collection.load_features(rid, self.config.features)
                if abs(rate - CHROMA_RATE) > 1e-6:
                    raise CollectionError(
                        f"{collection.root}: chroma at {rate} Hz; shingles need {CHROMA_RATE} Hz (index with 10 Hz)"
                    )
                S, starts = shingles(
                    cens_of(np.asarray(C), config=self.config), length=self.config.length, hop=self.config.hop
                )
                m["recordings"][str(rid)] = {"fingerprint": current[rid], "row0": row, "rows": int(len(S))}
                if len(S) == 0:
                    report.skipped.append(rid)
                parts.append(S)
                metas.append(np.stack([np.full(len(S), rid, np.int64), starts], axis=1))
                row += len(S)
                report.added += 1
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        S = np.concatenate(parts) if parts else np.zeros((0, self.config.dim), np.float32)
        meta = np.concatenate(metas) if metas else np.zeros((0, 2), np.int64)
        index = len(m["segments"])
        name = f"seg-{m['generation']}-{index:05d}"
        atomic_save_npy(self.directory / f"{name}.npy", S.astype(np.float32))
        atomic_save_npy(self.directory / f"{name}-meta.npy", meta.astype(np.int64))
        m["segments"].append({"file": f"{name}.npy", "meta": f"{name}-meta.npy", "rows": int(len(S))})
        report.rows_added += int(len(S))


__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST", "ShingleStore", "UpdateReport"]
