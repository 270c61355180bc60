"""The fingerprint index: triplet hashes of every recording, sorted, memory-mapped, rebuildable.

Layout beside the collection's catalogue::

    my.mirs/index/fingerprint/
      current.json               {"version": "<dir>"}: the complete version readers use
      <dir>/meta.json            hash configuration, peak configuration key, recordings and their feature files
      <dir>/hashes.npy           uint32, sorted
      <dir>/recording_ids.npy    uint32   recording of each entry
      <dir>/t1.npy               float32  anchor time (frames)
      <dir>/f1.npy               float16  anchor log-frequency bin
      <dir>/dt13.npy             float16  t3 - t1 (frames)

The index is derived from the peaks of the stored ``"fingerprint"`` arrays (see
:func:`mirsearch.features.fingerprint.extract_fingerprints`). :meth:`FingerprintIndex.for_collection`
brings it up to date incrementally: entries of removed or changed recordings are dropped, new recordings are
hashed and merged in. A new version is written to a fresh folder and published by replacing
``current.json`` atomically, so a reader never sees a half-written index.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_save_npy, atomic_write_text, directory_lock
from mirsearch.errors import CollectionError
from mirsearch.features import fingerprint as fp
from mirsearch.features.registry import config_key

log = logging.getLogger(__name__)

KIND = "fingerprint"
INDEX_DIR = "index/fingerprint"
_ARRAYS = (
    ("hashes", np.uint32),
    ("recording_ids", np.uint32),
    ("t1", np.float32),
    ("f1", np.float16),
    ("dt13", np.float16),
)
#: hashes shared by more entries than this are skipped at query time (they carry no information)
MAX_BUCKET = 400
_NO_FINGERPRINTS = "{root}: no fingerprints stored (run 'mirsearch index DIR -c {root} --features ...,fingerprint')"


@dataclass(frozen=True)
class Matches:
    """Index entries that share a hash with query triplets (one row per pair)."""

    query: np.ndarray  # int64, index of the query triplet
    recording_ids: np.ndarray  # uint32
    t1: np.ndarray  # float32, reference anchor time (frames)
    f1: np.ndarray  # float32, reference anchor bin
    dt13: np.ndarray  # float32, reference t3 - t1 (frames)


def entries_for(peaks: np.ndarray, recording_id: int, *, hconfig: dict) -> dict:
    """Index entries (unsorted) of one recording's peak list (or stored fingerprint array: its change columns,
    :func:`mirsearch.features.fingerprint.split_stored`, are left out)."""
    trip = fp.triplets(fp.peaks_of(peaks), hconfig=hconfig)
    n = trip["t1"].size
    return {
        "hashes": fp.reference_hashes(trip, hconfig=hconfig),
        "recording_ids": np.full(n, recording_id, np.uint32),
        "t1": trip["t1"].astype(np.float32),
        "f1": trip["f1"].astype(np.float16),
        "dt13": trip["dt13"].astype(np.float16),
    }


def _empty() -> dict:
    return {name: np.zeros(0, dtype) for name, dtype in _ARRAYS}


def _merge(old: dict, new: dict) -> dict:
    """Merge two sets of entries, each sorted by hash, into one sorted set."""
    if new["hashes"].size == 0:
        return old
    pos = np.searchsorted(old["hashes"], new["hashes"], side="right")
    return {name: np.insert(np.asarray(old[name]), pos, new[name]) for name, _ in _ARRAYS}


def _sort(entries: dict) -> dict:
    order = np.argsort(entries["hashes"], kind="stable")
    return {k: v[order] for k, v in entries.items()}


class FingerprintIndex:
    """Sorted hash table of reference triplets.

    Parameters
    ----------
    arrays : dict of np.ndarray
        ``hashes`` (sorted uint32), ``recording_ids``, ``t1``, ``f1``, ``dt13`` (see the module docstring).
    hconfig : dict
        Hash configuration (:func:`mirsearch.features.fingerprint.hash_config`).
    peak_config : dict
        Peak configuration the entries were computed with.
    recordings : dict
        ``{recording_id: feature file}`` of the recordings in the index.
    """

    def __init__(self, arrays: dict, *, hconfig: dict, peak_config: dict, recordings: dict | None = None):
        self.arrays = arrays
        self.hconfig = hconfig
        self.peak_config = peak_config
        self.recordings = dict(recordings or {})

    @property
    def n_entries(self) -> int:
        return int(self.arrays["hashes"].size)

    @property
    def frame_rate(self) -> float:
        return fp.frame_rate(self.peak_config)

    def nbytes(self) -> int:
        """Bytes of the arrays (the size on disk, headers aside)."""
        return int(sum(np.asarray(a).nbytes for a in self.arrays.values()))

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def from_peaks(cls, peak_lists: dict, *, peak_config: dict, hconfig: dict | None = None) -> FingerprintIndex:
        """Build in memory from ``{recording_id: peaks (3, n)}``."""
        hconfig = hconfig or fp.hash_config()
        parts = [entries_for(p, rid, hconfig=hconfig) for rid, p in peak_lists.items()]
        arrays = {k: np.concatenate([p[k] for p in parts]) for k, _ in _ARRAYS} if parts else _empty()
        return cls(_sort(arrays), hconfig=hconfig, peak_config=peak_config, recordings=dict.fromkeys(peak_lists, ""))

    def updated(self, peak_lists: dict, recordings: dict) -> FingerprintIndex:
        """A new index: entries of recordings not in ``recordings`` dropped, ``peak_lists`` merged in.

        Parameters
        ----------
        peak_lists : dict
            ``{recording_id: peaks (3, n)}`` of new or changed recordings.
        recordings : dict
            ``{recording_id: feature file}`` of every recording the new index holds.
        """
        arrays = self.arrays
        drop = [rid for rid in self.recordings if rid not in recordings or rid in peak_lists]
        if drop:
            keep = ~np.isin(np.asarray(arrays["recording_ids"]), np.asarray(drop, np.uint32))
            arrays = {k: np.asarray(v)[keep] for k, v in arrays.items()}
        parts = [entries_for(p, rid, hconfig=self.hconfig) for rid, p in peak_lists.items()]
        if parts:
            new = _sort({k: np.concatenate([p[k] for p in parts]) for k, _ in _ARRAYS})
            arrays = _merge(arrays, new)
        return FingerprintIndex(arrays, hconfig=self.hconfig, peak_config=self.peak_config, recordings=recordings)

    # -- disk -------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write a new version under ``folder`` and publish it atomically; older versions are removed."""
        folder = Path(folder)
        name = f"v{time.time_ns()}"
        for key, dtype in _ARRAYS:
            atomic_save_npy(folder / name / f"{key}.npy", np.asarray(self.arrays[key], dtype=dtype))
        meta = {
            "hash_config": self.hconfig,
            "peak_config": self.peak_config,
            "recordings": {str(k): v for k, v in self.recordings.items()},
            "n_entries": self.n_entries,
        }
        atomic_write_text(folder / name / "meta.json", json.dumps(meta, indent=1, sort_keys=True))
        atomic_write_text(folder / "current.json", json.dumps({"version": name}))
        for old in folder.iterdir():
            if old.is_dir() and old.name.startswith("v") and old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> FingerprintIndex | None:
        """The published version under ``folder`` (arrays memory-mapped), or None."""
        folder = Path(folder)
        try:
            name = json.loads((folder / "current.json").read_text())["version"]
            meta = json.loads((folder / name / "meta.json").read_text())
            arrays = {key: np.load(folder / name / f"{key}.npy", mmap_mode="r") for key, _ in _ARRAYS}
        except (OSError, ValueError, KeyError):
            return None
        recordings = {int(k): v for k, v in meta["recordings"].items()}
        return cls(arrays, hconfig=meta["hash_config"], peak_config=meta["peak_config"], recordings=recordings)

    @classmethod
    def for_collection(cls, coll, *, hconfig: dict | None = None, save: bool = True) -> FingerprintIndex:
        """The up-to-date index of a collection's stored fingerprints (updated incrementally, saved).

        Raises
        ------
        CollectionError
            When the collection stores no fingerprints.
        """
        hconfig = hconfig or fp.hash_config()
        entries = coll.catalog.features(KIND)
        if not entries:
            raise CollectionError(_NO_FINGERPRINTS.format(root=coll.root))
        current = {rid: e.file for rid, e in entries.items()}
        folder = Path(coll.root) / INDEX_DIR
        peak_config = fp.fingerprint_config()
        index = cls.load(folder)
        stale = index is None or index.hconfig != hconfig or index.peak_config != peak_config
        if stale:
            index = cls(_empty(), hconfig=hconfig, peak_config=peak_config)
        if index.recordings == current:
            return index
        changed = [rid for rid, f in current.items() if index.recordings.get(rid) != f]
        keys = {e.config_key for e in entries.values()}
        if keys != {config_key(peak_config)}:
            log.warning("%s: fingerprints stored with another configuration; re-run 'mirsearch index'", coll.root)
        t0 = time.perf_counter()
        peak_lists = {rid: np.asarray(coll.load_features(rid, KIND)[0]) for rid in changed}
        index = index.updated(peak_lists, current)
        log.info("fingerprint index: %d recordings hashed in %.1f s", len(changed), time.perf_counter() - t0)
        if save and not coll.catalog.readonly:
            try:
                with directory_lock(folder, name="index.lock"):
                    index.save(folder)
            except (CollectionError, OSError) as exc:
                log.warning("fingerprint index not saved (%s); it is kept in memory", exc)
        return index

    # -- querying ---------------------------------------------------------------------------------
    def lookup(self, hashes: np.ndarray, source: np.ndarray, *, max_bucket: int = MAX_BUCKET) -> Matches:
        """Entries sharing a hash with each query probe.

        Parameters
        ----------
        hashes : np.ndarray, shape (n_probes,), uint32
        source : np.ndarray, shape (n_probes,), int64
            Query triplet of each probe (copied into :attr:`Matches.query`).
        max_bucket : int
            Hashes with more entries are skipped.
        """
        H = self.arrays["hashes"]
        lo = np.searchsorted(H, hashes, side="left")
        hi = np.searchsorted(H, hashes, side="right")
        counts = hi - lo
        counts[counts > max_bucket] = 0
        total = int(counts.sum())
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
        pos = starts + np.arange(total)
        query = np.repeat(np.asarray(source, dtype=np.int64), counts)
        order = np.argsort(pos, kind="stable")  # memory order: faster gathers from memory-mapped arrays
        return self._gather(pos[order], query[order])

    def _gather(self, pos: np.ndarray, query: np.ndarray) -> Matches:
        a = self.arrays
        return Matches(
            query=query,
            recording_ids=np.asarray(a["recording_ids"][pos]),
            t1=np.asarray(a["t1"][pos], dtype=np.float32),
            f1=np.asarray(a["f1"][pos], dtype=np.float32),
            dt13=np.asarray(a["dt13"][pos], dtype=np.float32),
        )


__all__ = ["INDEX_DIR", "KIND", "MAX_BUCKET", "FingerprintIndex", "Matches", "entries_for"]
