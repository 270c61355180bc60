"""Queries, parsed and validated once at the boundary (CLI, server, Python API); searches take these.

:class:`ThemeQuery` holds a parsed :class:`~mirsearch.scores.Theme` (from a note string or a MIDI / MusicXML /
kern file) and says when a theme is too uninformative to be found reliably.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from mirsearch.errors import ParameterError
from mirsearch.scores import Theme, load_theme, parse_note_string

MIN_NOTES, MIN_DISTINCT_INTERVALS = 5, 2  # fewer notes or distinct intervals: matches almost anywhere


@dataclass(frozen=True)
class ThemeQuery:
    """A theme to search for.

    Attributes
    ----------
    theme : Theme
        The notes (pitch, onset and duration in quarter notes) and the file's tempo if it has one.
    source : str
        ``"notes"`` for a typed note string, else the file it was read from.
    """

    theme: Theme
    source: str = "notes"

    @classmethod
    def from_text(cls, text: str) -> ThemeQuery:
        """Parse a note string (``"G G G Eb"``, ``"E5/8 D#5/8 E5/4"``, rests ``R/4``)."""
        if not isinstance(text, str):
            raise ParameterError(f"theme={text!r} must be a note string")
        return cls(parse_note_string(text), "notes")

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, part: str | int | None = None) -> ThemeQuery:
        """Read the top voice (or ``part``) of a MIDI, MusicXML or kern file."""
        return cls(load_theme(path, part=part), os.fspath(path))

    @classmethod
    def of(cls, value: ThemeQuery | Theme | str) -> ThemeQuery:
        """A query from a query, a :class:`Theme` or a note string (never a file name: use :meth:`from_file`)."""
        if isinstance(value, ThemeQuery):
            return value
        if isinstance(value, Theme):
            return cls(value, "theme")
        return cls.from_text(value)

    @property
    def name(self) -> str:
        return self.theme.name

    def warnings(self) -> list[str]:
        """Why this theme may be found unreliably (too few notes, too few distinct intervals); empty if fine."""
        pitches = np.array([n.pitch for n in self.theme.notes])
        out = []
        if len(pitches) < MIN_NOTES:
            out.append(f"{self.name}: only {len(pitches)} notes; themes of {MIN_NOTES} or more are found reliably")
        intervals = set(np.diff(pitches).tolist())
        if len(pitches) >= 2 and len(intervals) < MIN_DISTINCT_INTERVALS:
            out.append(f"{self.name}: {len(intervals)} distinct interval(s); such themes match almost anywhere")
        return out
