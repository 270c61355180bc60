"""The score store: the notes of every score file of a collection, and an index of pairs of notes over them.

Score files (MIDI, MusicXML, MEI, kern) are read with the one score reader,
:func:`mirsearch.scores.load_score_notes` (its size and note limits apply), and stored as one structured array
per file (:data:`NOTE_DTYPE`: onset and duration in ticks of 1/:data:`TICKS_PER_QUARTER` quarter note, pitch,
part, measure number, onset and offset in seconds at the score's tempo). Like the audio, a file is read again
only when its size or mtime changed and then only when its content hash (SHA-1) changed.

On disk, beside the collection's catalogue (derived data: :meth:`ScoreStore.rebuild` reads every file again)::

    <collection>/scores/
        manifest.json                     scores (id, path, size, mtime, sha1, parts, note file), failures,
                                          the current pack; written last, atomically
        notes/<sha1>.npy                  NOTE_DTYPE rows of one score, sorted by (onset, pitch)
        pack-<generation>-notes.npy       every score's rows concatenated in manifest order
        pack-<generation>-offsets.npy     int64 (n_scores + 1,): score i is rows offsets[i]:offsets[i+1]
        pack-<generation>-pair-keys.npy   int64 sorted unique keys of note pairs (see :func:`pair_key`)
        pack-<generation>-pair-starts.npy int64 (n_keys + 1,) posting ranges
        pack-<generation>-postings.npy    int32 row (in the pack) of the first note of each pair
        write.lock

The pair index lists, for every key ``(onset difference, pitch difference)`` of two notes of one score that
start at most :data:`PAIR_WINDOW_QUARTERS` apart (and at most :data:`PAIR_MAX_INTERVAL` semitones), the notes
that begin such a pair, in any parts: it proposes where a theme may start, whatever voices carry it
(:mod:`mirsearch.search.score_search`). Measure numbers and part names come from a second, light reading of
the file's bar lines (:func:`score_layout`) until the score reader returns them itself.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numba
import numpy as np

from mirsearch._util import atomic_save_npy, atomic_write_text, directory_lock
from mirsearch.collection.extract import sha1_of
from mirsearch.errors import CollectionError, InputError, MirsearchError
from mirsearch.index.ann import read_format_json
from mirsearch.scores import FULL_SCORE_EXTENSIONS, MIDI_EXTENSIONS, check_score_file, load_score_notes

log = logging.getLogger(__name__)

FORMAT = "mirsearch-scores"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: onsets and durations are stored as integer ticks of 1/480 quarter note (exact for 64ths, triplets, quintuplets)
TICKS_PER_QUARTER = 480
#: the pair index holds note pairs whose onsets are at most this many quarter notes apart ...
PAIR_WINDOW_QUARTERS = 4
#: ... and whose pitches differ by at most this many semitones
PAIR_MAX_INTERVAL = 24
#: one stored note
NOTE_DTYPE = np.dtype(
    [("tick", "<i8"), ("dur", "<i8"), ("pitch", "<i2"), ("part", "<i2"), ("measure", "<i4"),
     ("onset", "<f8"), ("offset", "<f8")]
)  # fmt: skip


# -- reading one score --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScoreLayout:
    """Part names and bar lines of a score (quarter notes from the first note, as the reader counts them)."""

    parts: tuple[str, ...]
    bar_quarters: np.ndarray
    bar_numbers: np.ndarray


def score_layout(path: str | os.PathLike) -> ScoreLayout:
    """Part names and bar lines of a score file (MIDI: tracks and the file's downbeats; notated: partitura)."""
    path = Path(path)
    check_score_file(path)
    try:
        if path.suffix.lower() in MIDI_EXTENSIONS:
            return _midi_layout(path)
        return _notated_layout(path)
    except MirsearchError:
        raise
    except Exception as exc:  # the notes were readable; a layout we cannot read only loses measure numbers
        log.warning("%s: no bar lines (%s); measures are counted as 0", path.name, type(exc).__name__)
        return ScoreLayout((), np.zeros(0), np.zeros(0, np.int64))


def _midi_layout(path: Path) -> ScoreLayout:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    names = tuple(inst.name.strip() or f"track {i}" for i, inst in enumerate(pm.instruments))
    beats, downbeats = pm.get_beats(), pm.get_downbeats()
    if beats.size < 2 or downbeats.size == 0:
        return ScoreLayout(names, np.zeros(0), np.zeros(0, np.int64))
    bars = np.interp(downbeats, beats, np.arange(beats.size))
    return ScoreLayout(names, bars, np.arange(1, bars.size + 1, dtype=np.int64))


def _notated_layout(path: Path) -> ScoreLayout:
    import partitura as pt

    score = pt.load_score(str(path))
    names, first = [], np.inf
    for i, part in enumerate(score.parts):
        names.append((part.part_name or "").strip() or f"part {i}")
        na = part.note_array()
        na = na[na["duration_quarter"] > 0]
        if na.size:
            first = min(first, float(na["onset_quarter"].min()))
    if not score.parts or not np.isfinite(first):
        return ScoreLayout(tuple(names), np.zeros(0), np.zeros(0, np.int64))
    part = score.parts[0]
    measures = list(part.iter_all(pt.score.Measure))
    quarters = np.array([float(part.quarter_map(m.start.t)) for m in measures]) - first
    numbers = np.array([m.number if m.number is not None else i + 1 for i, m in enumerate(measures)], np.int64)
    return ScoreLayout(tuple(names), quarters, numbers)


def read_score(path: str | os.PathLike) -> tuple[np.ndarray, ScoreLayout, float]:
    """The notes of one score file as :data:`NOTE_DTYPE` rows sorted by (onset, pitch).

    Returns
    -------
    notes : np.ndarray of NOTE_DTYPE, shape (n_notes,)
    layout : ScoreLayout
    seconds_per_quarter : float
        The tempo the seconds columns assume (notated: the first metronome mark, else 100 per minute; MIDI: the
        median of the file's own beat grid).

    Raises
    ------
    InputError
        The reader's errors (unreadable file, no notes, over a limit).
    """
    with warnings.catch_warnings():  # partitura warns about every irregular repeat and kern comment line
        warnings.simplefilter("ignore", UserWarning)
        sn = load_score_notes(path)
        layout = score_layout(path)
    quarters = np.asarray(sn.onset_quarter, dtype=np.float64)
    dur_q = np.asarray(sn.duration_quarter, dtype=np.float64)
    spq = float(sn.seconds_per_quarter)
    if not np.isfinite(spq):  # MIDI: the beat grid's own tempo; notes past the grid continue at that tempo
        ok = np.isfinite(quarters) & (quarters > 0)
        spq = float(np.median(sn.onset[ok] / quarters[ok])) if ok.any() else 0.5
        spq = spq if np.isfinite(spq) and spq > 0 else 0.5
        quarters = np.where(np.isfinite(quarters), quarters, sn.onset / spq)
        dur_q = np.where(np.isfinite(dur_q), dur_q, (sn.offset - sn.onset) / spq)
    notes = np.zeros(len(sn), NOTE_DTYPE)
    notes["tick"] = np.round(quarters * TICKS_PER_QUARTER)
    notes["dur"] = np.maximum(np.round(dur_q * TICKS_PER_QUARTER), 1)
    notes["pitch"] = sn.pitch
    notes["part"] = sn.part
    notes["onset"], notes["offset"] = sn.onset, sn.offset
    if layout.bar_quarters.size:
        bar = np.searchsorted(layout.bar_quarters, quarters + 1e-6, side="right") - 1
        notes["measure"] = np.where(bar >= 0, layout.bar_numbers[np.clip(bar, 0, None)], 0)
    notes = notes[np.lexsort((notes["pitch"], notes["tick"]))]
    return notes, layout, spq


# -- the pair index -----------------------------------------------------------------------------------------
def pair_key(dt, dp):
    """Key of a note pair: onset difference ``dt`` (ticks, 1..window) and pitch difference ``dp`` (semitones)."""
    return np.asarray(dt, dtype=np.int64) * 64 + (np.asarray(dp, dtype=np.int64) + 32)


@numba.njit(cache=True, nogil=True)
def _pairs(tick, pitch, offsets, window, max_interval, out_key, out_row):  # pragma: no cover - numba
    """Fill (or, with empty outputs, count) the pairs of each score; returns the number of pairs."""
    n_out = 0
    fill = out_key.size > 0
    for s in range(offsets.size - 1):
        hi = offsets[s + 1]
        for a in range(offsets[s], hi):
            b = a + 1
            while b < hi and tick[b] - tick[a] <= window:
                dt = tick[b] - tick[a]
                dp = pitch[b] - pitch[a]
                if dt > 0 and -max_interval <= dp <= max_interval:
                    if fill:
                        out_key[n_out] = dt * 64 + dp + 32
                        out_row[n_out] = a
                    n_out += 1
                b += 1
    return n_out


def build_pair_index(notes: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverted index of note pairs: ``(keys, starts, postings)``; the rows beginning pairs of key ``keys[k]``
    are ``postings[starts[k]:starts[k+1]]`` (ascending)."""
    tick = np.ascontiguousarray(notes["tick"])
    pitch = np.ascontiguousarray(notes["pitch"].astype(np.int64))
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    window = PAIR_WINDOW_QUARTERS * TICKS_PER_QUARTER
    empty_k, empty_r = np.zeros(0, np.int64), np.zeros(0, np.int32)
    n = _pairs(tick, pitch, offsets, window, PAIR_MAX_INTERVAL, empty_k, empty_r)
    keys, rows = np.empty(n, np.int64), np.empty(n, np.int32)
    _pairs(tick, pitch, offsets, window, PAIR_MAX_INTERVAL, keys, rows)
    order = np.argsort(keys, kind="stable")
    keys, rows = keys[order], rows[order]
    unique, first = np.unique(keys, return_index=True)
    starts = np.append(first, n).astype(np.int64)
    return unique, starts, rows


# -- the store ----------------------------------------------------------------------------------------------
@dataclass
class ScoreEntry:
    """One score file of the store."""

    id: int
    path: str
    size: int
    mtime_ns: int
    sha1: str
    file: str
    n_notes: int
    parts: list[str]
    seconds_per_quarter: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PackedScores:
    """Every score's notes in one array, with the pair index: what the score search runs on (no files).

    Attributes
    ----------
    notes : np.ndarray of NOTE_DTYPE, shape (n_notes,)
        Score ``i`` is ``notes[offsets[i]:offsets[i+1]]``, sorted by (tick, pitch).
    offsets : np.ndarray, shape (n_scores + 1,), int64
    entries : list of ScoreEntry
        In pack order.
    pair_keys, pair_starts, postings : np.ndarray
        The pair index (:func:`build_pair_index`).
    ticks_per_quarter, pair_window, pair_max_interval : int
        Ticks per quarter note, the index's window (ticks) and largest interval (semitones).
    """

    notes: np.ndarray
    offsets: np.ndarray
    entries: list[ScoreEntry]
    pair_keys: np.ndarray
    pair_starts: np.ndarray
    postings: np.ndarray
    ticks_per_quarter: int = TICKS_PER_QUARTER
    pair_window: int = PAIR_WINDOW_QUARTERS * TICKS_PER_QUARTER
    pair_max_interval: int = PAIR_MAX_INTERVAL

    _columns: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.entries)

    def column(self, name: str) -> np.ndarray:
        """One column of :attr:`notes` as a contiguous array (``"key"``: ``tick * 128 + pitch``), memoised."""
        if name not in self._columns:
            if name == "key":
                value = self.column("tick") * 128 + self.column("pitch")
            elif name == "score":
                value = np.repeat(np.arange(len(self.entries), dtype=np.int64), np.diff(self.offsets))
            else:
                kind = np.float64 if name in ("onset", "offset") else np.int64
                value = np.ascontiguousarray(self.notes[name], dtype=kind)
            self._columns[name] = value
        return self._columns[name]


def make_pack(arrays: list[np.ndarray], entries: list[ScoreEntry]) -> PackedScores:
    """A pack of note arrays (:data:`NOTE_DTYPE`, each sorted by (tick, pitch)) with its pair index."""
    if len(arrays) != len(entries):
        raise ValueError("one entry per note array expected")
    notes = np.concatenate(arrays).astype(NOTE_DTYPE) if arrays else np.zeros(0, NOTE_DTYPE)
    offsets = np.cumsum([0] + [a.size for a in arrays]).astype(np.int64)
    keys, starts, postings = build_pair_index(notes, offsets)
    return PackedScores(notes, offsets, list(entries), keys, starts, postings)


@dataclass
class ScoreUpdateReport:
    """What :meth:`ScoreStore.update` did (paths as given by the scan)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)
    scores: int = 0
    notes: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        d = {k: len(v) if isinstance(v, list) and k != "failed" else v for k, v in asdict(self).items()}
        d["failed"] = [{"path": p, "error": e} for p, e in self.failed]
        d["missing"] = [{"path": p, "error": e} for p, e in self.missing]
        return d


def scan_scores(paths) -> tuple[list[Path], list[tuple[str, str]]]:
    """Score files (:data:`~mirsearch.scores.FULL_SCORE_EXTENSIONS`) under files and folders, recursively and
    sorted, and the inputs that could not be used (one-line reasons). Hidden files and folders are passed over."""
    found: dict[Path, None] = {}
    missing = []
    for p in [paths] if isinstance(paths, str | bytes | os.PathLike) else paths:
        p = Path(os.fsdecode(p)).expanduser()
        try:
            if p.is_file():
                if p.suffix.lower() in FULL_SCORE_EXTENSIONS:
                    found[p.resolve()] = None
            elif p.is_dir():
                for dirpath, dirnames, filenames in os.walk(p):
                    dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                    for name in sorted(filenames):
                        if not name.startswith(".") and Path(name).suffix.lower() in FULL_SCORE_EXTENSIONS:
                            found[(Path(dirpath) / name).resolve()] = None
            else:
                missing.append((str(p), f"{p.name or p}: no such file or folder"))
        except (OSError, RuntimeError) as exc:  # a name too long, no permission, a symbolic link loop
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            name = os.fsencode(p.name).decode("utf-8", "backslashreplace")
            missing.append((str(p), f"{name}: cannot read ({reason})"))
    return list(found), missing


class ScoreStore:
    """The score files of a collection: their note arrays, a catalogue (JSON manifest) and the pair index.

    Parameters
    ----------
    directory : path-like
        ``<collection>/scores`` (see :meth:`for_collection`); created by the first :meth:`update`.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self._packed: tuple[str, PackedScores] | None = None

    @classmethod
    def for_collection(cls, root: str | os.PathLike) -> ScoreStore:
        """The store of the collection folder ``root``."""
        return cls(Path(root) / "scores")

    # -- manifest -----------------------------------------------------------------------------------------
    def _manifest(self) -> dict:
        path = self.directory / MANIFEST
        if not path.is_file():
            return {"format": FORMAT, "format_version": FORMAT_VERSION, "scores": [], "failures": [], "next_id": 1}
        return read_format_json(path, fmt=FORMAT, version=FORMAT_VERSION, what="a score store")

    def entries(self) -> list[ScoreEntry]:
        """The stored scores, by id."""
        return [ScoreEntry(**e) for e in self._manifest()["scores"]]

    def failures(self) -> list[tuple[str, str]]:
        """Files that could not be read in the last runs (path, one-line reason)."""
        return [(f["path"], f["error"]) for f in self._manifest()["failures"]]

    def __len__(self) -> int:
        return len(self._manifest()["scores"])

    def generation(self) -> str | None:
        """Identifier of the current pack (changes whenever a score is added, changed or removed)."""
        return (self._manifest().get("pack") or {}).get("generation")

    # -- updating -----------------------------------------------------------------------------------------
    def update(self, paths, *, prune: bool = False, on_result=None) -> ScoreUpdateReport:
        """Read new and changed score files under ``paths`` (files or folders, recursively) into the store.

        Parameters
        ----------
        paths : path-like or sequence of path-like
        prune : bool
            Also drop the stored scores whose files are gone.
        on_result : callable, optional
            ``on_result(status, path, message)`` after each file (``"added"``, ``"updated"``, ``"unchanged"``,
            ``"failed"``).

        Returns
        -------
        ScoreUpdateReport
            A bad file is a failure line, never an exception; the pack is rewritten when anything changed.
        """
        t0 = time.perf_counter()
        files, missing = scan_scores(paths)
        report = ScoreUpdateReport(missing=missing)
        if not files and not prune and not (self.directory / MANIFEST).is_file():
            return report  # no scores: a collection of recordings only gets no score store
        with directory_lock(self.directory, name="write.lock"):
            manifest = self._manifest()
            by_path = {e["path"]: e for e in manifest["scores"]}
            failures = {f["path"]: f["error"] for f in manifest["failures"]}
            changed = False
            for path in files:
                status, message = self._update_one(path, by_path, manifest, failures)
                getattr(report, status).append((str(path), message) if status == "failed" else str(path))
                changed |= status in ("added", "updated")
                if on_result is not None:
                    on_result(status, str(path), message)
            if prune:
                gone = [p for p in by_path if not Path(p).is_file()]
                for p in gone:
                    del by_path[p]
                changed |= bool(gone)
            manifest["scores"] = sorted(by_path.values(), key=lambda e: e["id"])
            manifest["failures"] = [{"path": p, "error": e} for p, e in sorted(failures.items())]
            if changed or "pack" not in manifest:
                self._write_pack(manifest)
            atomic_write_text(self.directory / MANIFEST, json.dumps(manifest, indent=1))
            self._remove_stale(manifest)
        report.scores, report.notes = len(manifest["scores"]), (manifest.get("pack") or {}).get("notes", 0)
        report.seconds = round(time.perf_counter() - t0, 3)
        return report

    def _update_one(self, path: Path, by_path: dict, manifest: dict, failures: dict) -> tuple[str, str]:
        key = str(path)
        old = by_path.get(key)
        try:
            st = path.stat()
            if old and old["size"] == st.st_size and old["mtime_ns"] == st.st_mtime_ns:
                return "unchanged", ""
            sha1 = sha1_of(path)
            if old and old["sha1"] == sha1 and (self.directory / old["file"]).is_file():
                old.update(size=st.st_size, mtime_ns=st.st_mtime_ns)
                return "unchanged", ""
            notes, layout, spq = read_score(path)
        except (InputError, OSError) as exc:
            message = str(exc) if isinstance(exc, InputError) else f"{path.name}: cannot read ({exc.strerror})"
            failures[key] = message
            return "failed", message
        file = f"notes/{sha1}.npy"
        atomic_save_npy(self.directory / file, notes)
        entry_id = old["id"] if old else manifest["next_id"]
        manifest["next_id"] = max(manifest["next_id"], entry_id + 1)
        by_path[key] = ScoreEntry(
            entry_id, key, st.st_size, st.st_mtime_ns, sha1, file, int(notes.size), list(layout.parts), spq
        ).to_dict()
        failures.pop(key, None)
        return ("updated" if old else "added"), ""

    def rebuild(self) -> ScoreUpdateReport:
        """Read every stored score file again (new note arrays and pack); files that are gone are dropped."""
        with directory_lock(self.directory, name="write.lock"):
            manifest = self._manifest()
            for e in manifest["scores"]:
                e["size"] = -1  # forces a new reading
            atomic_write_text(self.directory / MANIFEST, json.dumps(manifest, indent=1))
        report = self.update([e["path"] for e in manifest["scores"]], prune=True)
        return report

    def _write_pack(self, manifest: dict) -> None:
        arrays = [np.load(self.directory / e["file"], allow_pickle=False) for e in manifest["scores"]]
        pack = make_pack(arrays, [ScoreEntry(**e) for e in manifest["scores"]])
        notes, offsets, postings = pack.notes, pack.offsets, pack.postings
        gen = uuid.uuid4().hex[:12]
        for name, array in self._pack_files(gen, notes, offsets, pack.pair_keys, pack.pair_starts, postings):
            atomic_save_npy(self.directory / name, array)
        manifest["pack"] = {"generation": gen, "notes": int(notes.size), "pairs": int(postings.size),
                            "ticks_per_quarter": TICKS_PER_QUARTER, "pair_window_quarters": PAIR_WINDOW_QUARTERS,
                            "pair_max_interval": PAIR_MAX_INTERVAL}  # fmt: skip
        log.info("%s: %d scores, %d notes, %d pairs", self.directory, offsets.size - 1, notes.size, postings.size)

    @staticmethod
    def _pack_files(gen: str, *arrays):
        names = ("notes", "offsets", "pair-keys", "pair-starts", "postings")
        return [(f"pack-{gen}-{name}.npy", a) for name, a in zip(names, arrays, strict=True)]

    def _remove_stale(self, manifest: dict) -> None:
        """Delete note files no score uses and packs of older generations."""
        gen = manifest["pack"]["generation"]
        used = {e["file"] for e in manifest["scores"]}
        for p in (self.directory / "notes").glob("*.npy"):
            if f"notes/{p.name}" not in used:
                p.unlink(missing_ok=True)
        for p in self.directory.glob("pack-*.npy"):
            if not p.name.startswith(f"pack-{gen}-"):
                p.unlink(missing_ok=True)

    # -- reading ------------------------------------------------------------------------------------------
    def packed(self) -> PackedScores:
        """The current pack (memory-mapped; memoised until the store's manifest changes)."""
        try:
            st = (self.directory / MANIFEST).stat()
            stamp = f"{st.st_mtime_ns}:{st.st_size}"
        except OSError:
            stamp = None
        if self._packed is not None and self._packed[0] == stamp:
            return self._packed[1]
        manifest = self._manifest()
        pack = manifest.get("pack")
        if not pack or not manifest["scores"]:
            raise CollectionError(f"{self.directory.parent}: no scores indexed (run 'mirsearch index' on score files)")
        if pack.get("ticks_per_quarter") != TICKS_PER_QUARTER or pack.get("pair_max_interval") != PAIR_MAX_INTERVAL:
            raise CollectionError(f"{self.directory}: score pack of another layout (run 'mirsearch index' again)")
        try:
            arrays = [np.load(self.directory / name, mmap_mode="r", allow_pickle=False)
                      for name, _ in self._pack_files(pack["generation"], *([None] * 5))]  # fmt: skip
        except (OSError, ValueError) as exc:
            raise CollectionError(f"{self.directory}: score pack unreadable ({exc}); run 'mirsearch index'") from None
        entries = [ScoreEntry(**e) for e in manifest["scores"]]
        packed = PackedScores(arrays[0], np.asarray(arrays[1]), entries, np.asarray(arrays[2]),
                              np.asarray(arrays[3]), np.asarray(arrays[4]),
                              pair_window=int(pack["pair_window_quarters"]) * TICKS_PER_QUARTER)  # fmt: skip
        if packed.offsets.size != len(entries) + 1:
            raise CollectionError(f"{self.directory}: score pack does not match its manifest (run 'mirsearch index')")
        self._packed = (stamp, packed)
        return packed


__all__ = ["NOTE_DTYPE", "PackedScores", "ScoreEntry", "ScoreLayout", "ScoreStore", "ScoreUpdateReport"]
__all__ += ["TICKS_PER_QUARTER", "build_pair_index", "make_pack", "pair_key", "read_score", "scan_scores"]
__all__ += ["score_layout"]
