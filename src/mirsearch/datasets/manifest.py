"""The dataset manifest (``manifest.json``): format, writer and loader.

The format is documented in ``docs/dataset.md``. In short::

    {"format": "mirsearch-dataset", "format_version": 1, "name", "seed", "sample_rate",
     "generation": {...every build parameter and sampling range...},
     "splits": {"train": [work ids], "validation": [...], "test": [...]},
     "rendered_splits": [...],
     "works":    [{"id", "title", "composer", "source", "category", "split", "family", "themes", "versions", ...}],
     "themes":   [{"id", "work", "kind", "name", "key", "shift_to_c", "measure", "tempo_bpm",
                   "notes": [[pitch, onset_q, duration_q], ...],        # notated in C major / A minor
                   "score_occurrences": [{"work", "onsets_q", "end_q", "shift"}]}],
     "versions": [{"id", "work", "split", "audio", "midi", "duration", "sample_rate", "soundfont",
                   "ensemble", "programs", "transposition", "tuning_cents", "tempo_factor",
                   "tempo_map": {"score": [...], "audio": [...]}, "params": {...},
                   "occurrences": [{"theme", "start", "end", "onsets", "transposition",
                                    "score_start", "score_end"}]}]}

Times are seconds in the audio file, score positions quarter notes; ``audio`` and ``midi`` paths are
relative to the dataset root.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mirsearch._util import atomic_write_text
from mirsearch.errors import InputError, ParameterError

FORMAT = "mirsearch-dataset"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
SPLITS = ("train", "validation", "test")


# --------------------------------------------------------------------------------------------------
# JSON writing


def dumps(data: Any) -> str:
    """JSON with indentation for objects and lists of objects, but lists of numbers on one line.

    Keys keep their insertion order; the output is identical for identical input (used to compare
    manifests of two builds byte for byte).
    """
    out: list[str] = []

    def scalar(x: Any) -> str:
        if isinstance(x, float):
            if not math.isfinite(x):
                raise ParameterError(f"manifest: non-finite number {x!r}")
            return repr(round(x, 6))
        return json.dumps(x, ensure_ascii=False)

    def emit(x: Any, indent: int) -> None:
        pad = " " * indent
        if isinstance(x, dict):
            if not x:
                out.append("{}")
                return
            out.append("{\n")
            for k, (key, value) in enumerate(x.items()):
                out.append(f"{pad}  {json.dumps(str(key))}: ")
                emit(value, indent + 2)
                out.append(",\n" if k + 1 < len(x) else "\n")
            out.append(pad + "}")
        elif isinstance(x, (list, tuple)):
            if not x:
                out.append("[]")
            elif all(not isinstance(v, (dict, list, tuple)) for v in x):
                out.append("[" + ", ".join(scalar(v) for v in x) + "]")
            elif all(isinstance(v, (list, tuple)) and all(not isinstance(w, (dict, list)) for w in v) for v in x):
                out.append("[" + ", ".join("[" + ", ".join(scalar(w) for w in v) + "]" for v in x) + "]")
            else:
                out.append("[\n")
                for k, value in enumerate(x):
                    out.append(pad + "  ")
                    emit(value, indent + 2)
                    out.append(",\n" if k + 1 < len(x) else "\n")
                out.append(pad + "]")
        else:
            out.append(scalar(x))

    emit(data, 0)
    out.append("\n")
    return "".join(out)


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as JSON (see :func:`dumps`) atomically (:func:`mirsearch._util.atomic_write_text`)."""
    atomic_write_text(path, dumps(data))


# --------------------------------------------------------------------------------------------------
# loader


@dataclass(frozen=True)
class Occurrence:
    """One occurrence of a theme in a version.

    Attributes
    ----------
    theme_id, version_id : str
    start, end : float
        Seconds in the audio file: first note onset and end of the last note (weak alignment).
    onsets : tuple of float
        Onset in seconds of every theme note (strong alignment), same length as the theme's notes.
    transposition : int
        Semitones from the theme's C notation to the sounding pitch of this occurrence
        (the version's key change included; its tuning deviation in cents is not).
    score_start, score_end : float
        The same span in score quarter notes.
    """

    theme_id: str
    version_id: str
    start: float
    end: float
    onsets: tuple[float, ...]
    transposition: int
    score_start: float
    score_end: float

    def to_dict(self) -> dict:
        return {
            "theme": self.theme_id,
            "version": self.version_id,
            "start": self.start,
            "end": self.end,
            "onsets": list(self.onsets),
            "transposition": self.transposition,
            "score_start": self.score_start,
            "score_end": self.score_end,
        }


@dataclass(frozen=True)
class ThemeInfo:
    """A theme: monophonic, notated in C major / A minor.

    Attributes
    ----------
    theme_id, work_id, kind, name, key : str
        ``kind`` is ``"opening"`` or ``"phrase"``; ``key`` the estimated key at the source position.
    notes : tuple of (int, float, float)
        ``(pitch, onset, duration)``; MIDI pitch in C, onset from the first note and duration in
        quarter notes.
    shift_to_c : int
        Semitones added to the source pitches.
    measure : int
        Measure number of the first note in the source work.
    tempo_bpm : float
        Nominal tempo of the work (quarter notes per minute).
    score_occurrences : tuple of dict
        Occurrences in score time: ``{"work", "onsets_q", "end_q", "shift"}``.
    """

    theme_id: str
    work_id: str
    kind: str
    name: str
    key: str
    notes: tuple[tuple[int, float, float], ...]
    shift_to_c: int
    measure: int
    tempo_bpm: float
    score_occurrences: tuple[dict, ...] = ()

    @property
    def pitches(self) -> tuple[int, ...]:
        return tuple(n[0] for n in self.notes)

    @property
    def duration_q(self) -> float:
        """Length in quarter notes (first onset to end of the last note)."""
        return self.notes[-1][1] + self.notes[-1][2]

    def to_theme(self) -> Any:
        """This theme as a :class:`mirsearch.scores.Theme` (for ``Collection.search_theme``)."""
        from mirsearch.scores import Note, Theme

        notes = tuple(Note(pitch=int(p), onset=float(o), duration=float(d)) for p, o, d in self.notes)
        return Theme(notes=notes, tempo_bpm=self.tempo_bpm, name=self.name)


@dataclass(frozen=True)
class Version:
    """One rendered performance of a work.

    Attributes
    ----------
    version_id, work_id, split : str
    audio : str
        Path relative to the dataset root; :attr:`path` is absolute.
    midi : str
        Performed MIDI file (all notes at their audio times), relative to the root.
    duration : float
        Seconds.
    sample_rate : int
    soundfont, ensemble : str
    programs : tuple of int
        General MIDI program per part.
    transposition : int
        Key change of the performance relative to the score (semitones).
    tuning_cents : float
        Global tuning deviation.
    tempo_factor : float
        Global tempo relative to the nominal tempo.
    tempo_score, tempo_audio : np.ndarray, shape (n,)
        Tempo-map breakpoints (quarter notes -> seconds), piecewise linear.
    occurrences : tuple of Occurrence
    params : dict
        All generation parameters.
    """

    version_id: str
    work_id: str
    split: str
    audio: str
    midi: str
    duration: float
    sample_rate: int
    soundfont: str
    ensemble: str
    programs: tuple[int, ...]
    transposition: int
    tuning_cents: float
    tempo_factor: float
    tempo_score: np.ndarray = field(repr=False, compare=False)
    tempo_audio: np.ndarray = field(repr=False, compare=False)
    occurrences: tuple[Occurrence, ...] = field(default=(), repr=False)
    params: dict = field(default_factory=dict, repr=False, compare=False)
    root: Path = field(default=Path("."), repr=False, compare=False)

    @property
    def path(self) -> Path:
        """Absolute path of the audio file."""
        return self.root / self.audio

    @property
    def midi_path(self) -> Path:
        return self.root / self.midi

    def score_to_audio(self, q: float | np.ndarray) -> float | np.ndarray:
        """Audio seconds of score positions ``q`` (quarter notes), by the tempo map."""
        t = np.interp(np.asarray(q, dtype=float), self.tempo_score, self.tempo_audio)
        return float(t) if np.ndim(q) == 0 else t

    def audio_to_score(self, t: float | np.ndarray) -> float | np.ndarray:
        """Score positions (quarter notes) of audio times ``t`` in seconds."""
        q = np.interp(np.asarray(t, dtype=float), self.tempo_audio, self.tempo_score)
        return float(q) if np.ndim(t) == 0 else q


@dataclass(frozen=True)
class Work:
    """A composition (one score) with its themes and versions."""

    work_id: str
    title: str
    composer: str
    source: str
    category: str
    split: str
    family: str
    theme_ids: tuple[str, ...]
    version_ids: tuple[str, ...]
    tempo_bpm: float
    duration_q: float
    info: dict = field(default_factory=dict, repr=False, compare=False)


class Dataset:
    """A loaded dataset (or a view of one split of it).

    Parameters
    ----------
    root : Path
        Dataset folder (audio paths are relative to it).
    manifest : dict
        Parsed ``manifest.json``.
    splits : iterable of str, optional
        Restrict the view to these splits.

    Examples
    --------
    >>> ds = Dataset.load("data/bench")                       # doctest: +SKIP
    >>> test = ds.split("test")                               # doctest: +SKIP
    >>> for theme in test.themes.values():                    # doctest: +SKIP
    ...     relevant = test.relevant_versions(theme.theme_id)
    """

    def __init__(self, root: Path, manifest: dict, *, splits: Iterable[str] | None = None) -> None:
        self.root = Path(root)
        self.manifest = manifest
        self.name = manifest.get("name", self.root.name)
        self.seed = manifest.get("seed")
        self.generation = manifest.get("generation", {})
        self.split_names = tuple(splits) if splits is not None else tuple(manifest.get("splits", {}))
        keep = set(self.split_names)
        works = [w for w in manifest["works"] if w["split"] in keep]
        work_ids = {w["id"] for w in works}
        self.works: dict[str, Work] = {w["id"]: _work(w) for w in works}
        self.themes: dict[str, ThemeInfo] = {t["id"]: _theme(t) for t in manifest["themes"] if t["work"] in work_ids}
        self.versions: dict[str, Version] = {
            v["id"]: _version(v, self.root) for v in manifest["versions"] if v["work"] in work_ids
        }
        self._occ: dict[str, list[Occurrence]] = {}
        for v in self.versions.values():
            for o in v.occurrences:
                self._occ.setdefault(o.theme_id, []).append(o)

    @classmethod
    def load(cls, root: str | os.PathLike) -> Dataset:
        """Load ``root/manifest.json``; raises :class:`InputError` if missing or not a dataset."""
        root = Path(root)
        path = root / MANIFEST_NAME
        if not path.is_file():
            raise InputError(f"{root}: no {MANIFEST_NAME} (not a dataset folder, or the build did not finish)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(f"{path}: not valid JSON ({exc})") from exc
        if data.get("format") != FORMAT:
            raise InputError(f"{path}: not a mirsearch dataset manifest")
        if int(data.get("format_version", 0)) > FORMAT_VERSION:
            raise InputError(f"{path}: format_version {data['format_version']} is newer than this mirsearch")
        return cls(root, data)

    def split(self, name: str) -> Dataset:
        """View of one split (``"train"``, ``"validation"`` or ``"test"``)."""
        if name not in self.manifest.get("splits", {}):
            raise ParameterError(f"split={name!r} is not one of {sorted(self.manifest.get('splits', {}))}")
        return Dataset(self.root, self.manifest, splits=[name])

    def __repr__(self) -> str:
        return (
            f"Dataset({str(self.root)!r}, splits={list(self.split_names)}, works={len(self.works)}, "
            f"themes={len(self.themes)}, versions={len(self.versions)})"
        )

    def __iter__(self) -> Iterator[Version]:
        return iter(self.versions.values())

    def __len__(self) -> int:
        return len(self.versions)

    def occurrences(self, theme_id: str) -> list[Occurrence]:
        """All occurrences of a theme in the versions of this view."""
        return list(self._occ.get(theme_id, []))

    def relevant_versions(self, theme_id: str) -> set[str]:
        """Ids of the versions (in this view) in which the theme occurs."""
        return {o.version_id for o in self._occ.get(theme_id, [])}

    def versions_of(self, work_id: str) -> list[Version]:
        """Versions of one work."""
        return [self.versions[v] for v in self.works[work_id].version_ids if v in self.versions]

    @property
    def hours(self) -> float:
        """Total audio duration of the versions in this view, in hours."""
        return sum(v.duration for v in self.versions.values()) / 3600.0

    def summary(self) -> dict:
        """Counts per split: works, versions, hours, themes, occurrences."""
        out = {}
        for name in self.split_names:
            view = self if len(self.split_names) == 1 else self.split(name)
            out[name] = {
                "works": len(view.works),
                "versions": len(view.versions),
                "hours": round(view.hours, 3),
                "themes": len(view.themes),
                "themes_with_occurrences": sum(1 for t in view.themes if view._occ.get(t)),
                "occurrences": sum(len(v.occurrences) for v in view.versions.values()),
            }
        return out


def _work(d: dict) -> Work:
    return Work(
        work_id=d["id"],
        title=d.get("title", ""),
        composer=d.get("composer", ""),
        source=d.get("source", ""),
        category=d.get("category", ""),
        split=d["split"],
        family=d.get("family", d["id"]),
        theme_ids=tuple(d.get("themes", ())),
        version_ids=tuple(d.get("versions", ())),
        tempo_bpm=float(d.get("tempo_bpm", 0.0)),
        duration_q=float(d.get("duration_q", 0.0)),
        info=d,
    )


def _theme(d: dict) -> ThemeInfo:
    return ThemeInfo(
        theme_id=d["id"],
        work_id=d["work"],
        kind=d.get("kind", "phrase"),
        name=d.get("name", d["id"]),
        key=d.get("key", ""),
        notes=tuple((int(p), float(o), float(du)) for p, o, du in d["notes"]),
        shift_to_c=int(d.get("shift_to_c", 0)),
        measure=int(d.get("measure", 1)),
        tempo_bpm=float(d.get("tempo_bpm", 100.0)),
        score_occurrences=tuple(d.get("score_occurrences", ())),
    )


def _version(d: dict, root: Path) -> Version:
    occs = tuple(
        Occurrence(
            theme_id=o["theme"],
            version_id=d["id"],
            start=float(o["start"]),
            end=float(o["end"]),
            onsets=tuple(float(x) for x in o["onsets"]),
            transposition=int(o["transposition"]),
            score_start=float(o["score_start"]),
            score_end=float(o["score_end"]),
        )
        for o in d.get("occurrences", ())
    )
    tm = d["tempo_map"]
    return Version(
        version_id=d["id"],
        work_id=d["work"],
        split=d["split"],
        audio=d["audio"],
        midi=d.get("midi", ""),
        duration=float(d["duration"]),
        sample_rate=int(d["sample_rate"]),
        soundfont=d.get("soundfont", ""),
        ensemble=d.get("ensemble", ""),
        programs=tuple(int(p) for p in d.get("programs", ())),
        transposition=int(d.get("transposition", 0)),
        tuning_cents=float(d.get("tuning_cents", 0.0)),
        tempo_factor=float(d.get("tempo_factor", 1.0)),
        tempo_score=np.asarray(tm["score"], dtype=float),
        tempo_audio=np.asarray(tm["audio"], dtype=float),
        occurrences=occs,
        params=d.get("params", {}),
        root=root,
    )


def load_dataset(root: str | os.PathLike) -> Dataset:
    """Shortcut for :meth:`Dataset.load`."""
    return Dataset.load(root)
