"""Training pairs for the chroma network from a mirsearch dataset (``manifest.json``).

Every occurrence of a theme in a version of the requested split becomes one :class:`Segment`: the
audio between the occurrence's start and end (weak alignment), the theme's pitch classes transposed by
the occurrence's transposition (theme notation in C -> sounding pitch; the sounding MIDI pitches too, for CTC over
pitches: in the corpus builder's renders they are notes of the performed MIDI file), the notated durations (for
linear scaling) and the per-note audio onsets (strong alignment). Repeated notes are kept as repeated
labels: CTC then needs a blank between them, which the frame rate of the network (21.5 Hz) allows.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from mirsearch.errors import ParameterError
from mirsearch.training.chroma import Segment

logger = logging.getLogger(__name__)


def load_segments(root: str | os.PathLike, *, split: str, min_notes: int = 2) -> list[Segment]:
    """Theme occurrences of one split of a dataset as training segments.

    Parameters
    ----------
    root : path
        Dataset directory (with ``manifest.json``).
    split : {"train", "validation", "test"}
    min_notes : int
        Skip themes with fewer notes.

    Returns
    -------
    list of Segment
        In manifest order; versions whose audio file is missing (split not rendered) are skipped.
    """
    from mirsearch.datasets.manifest import Dataset

    full = Dataset.load(root)
    view = full.split(split)
    segments: list[Segment] = []
    missing = 0
    for v in view:
        if not Path(v.path).exists():
            missing += 1
            continue
        for o in v.occurrences:
            theme = full.themes.get(o.theme_id)
            if theme is None or len(theme.notes) < min_notes:
                continue
            if len(o.onsets) != len(theme.notes):
                raise ParameterError(f"{v.version_id}: occurrence of {o.theme_id} has a wrong number of onsets")
            segments.append(
                Segment(
                    recording=v.version_id,
                    audio_path=str(v.path),
                    start=float(o.start),
                    end=float(o.end),
                    labels=tuple((int(p) + int(o.transposition)) % 12 for p, _, _ in theme.notes),
                    pitches=tuple(int(p) + int(o.transposition) for p, _, _ in theme.notes),
                    durations=tuple(float(d) for _, _, d in theme.notes),
                    onsets=tuple(float(t) for t in o.onsets),
                    group=v.work_id,
                )
            )
    if missing:
        logger.warning("%s split %s: %d versions without audio skipped", root, split, missing)
    return segments


def load_segment_table(root: str | os.PathLike, *, min_notes: int = 2) -> list[Segment]:
    """Training segments of a segment table (``ROOT/segments.json``, :mod:`mirsearch.datasets.mutopia_train`).

    Parameters
    ----------
    root : path
        Directory with ``segments.json``: a list of ``{"recording", "audio" (relative to ``root``),
        "start", "end" (s), "labels" (sounding pitch classes), "group"}`` and optionally ``"pitches"`` (the
        notes' sounding MIDI pitches).
    min_notes : int
        Skip segments with fewer labels.

    Returns
    -------
    list of Segment
        In table order; segments whose audio file is missing are skipped.
    """
    path = Path(root) / "segments.json"
    if not path.is_file():
        raise ParameterError(f"{path}: no segment table")
    rows = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for r in rows:
        audio = Path(root) / r["audio"]
        if len(r["labels"]) < min_notes or not audio.is_file() or r["end"] <= r["start"]:
            continue
        labels = tuple(int(x) % 12 for x in r["labels"])
        pitches = r.get("pitches")
        pitches = tuple(int(p) for p in pitches) if pitches and len(pitches) == len(labels) else None
        out.append(Segment(r["recording"], str(audio), float(r["start"]), float(r["end"]), labels, group=r["group"],
                           pitches=pitches))  # fmt: skip
    return out
