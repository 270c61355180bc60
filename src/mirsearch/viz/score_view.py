"""Engraved scores for the page: SVG pages from verovio, with each note's id, position, pitch and time.

:func:`engrave_score` renders a score file (MusicXML ``.xml``/``.musicxml``/``.mxl``, MEI, kern; MIDI is
first converted to MusicXML with music21) into SVG pages and reads verovio's time map: every engraved note
gets its SVG element id, its onset and duration in quarter notes from the score's first note (the positions
the score store and :mod:`mirsearch.search.score_search` use, so a match's notes can be highlighted), its MIDI
pitch, and its onset and offset in seconds at the score's own tempo (verovio's reading of the tempo marks;
120 quarters per minute when there are none). Synthesising the same notes
(:func:`mirsearch.datasets.synth.synthesize_notes`) gives an audio track on that time axis, so a cursor that
follows the audio is ``onset <= t < offset``. Grace notes have no duration in the time map and are left out.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirsearch.errors import InputError
from mirsearch.scores import MIDI_EXTENSIONS, check_score_file

log = logging.getLogger(__name__)

#: file types verovio reads itself
VEROVIO_EXTENSIONS = (".xml", ".musicxml", ".mxl", ".mei", ".krn")
#: most pages rendered (the rest of a very long score is not engraved)
MAX_PAGES = 60
#: verovio keeps global state (resources, log level): one toolkit call at a time per process
_LOCK = threading.Lock()


@dataclass
class EngravedScore:
    """A score as engraved by verovio, and its notes on the engraving's time axis.

    Attributes
    ----------
    pages : list of str
        SVG documents, one per page (at most :data:`MAX_PAGES`).
    page_count : int
        Pages of the whole score (``len(pages)`` unless truncated).
    ids : list of str, length n_notes
        SVG element id of each note (``<g class="note" id=...>``).
    quarter, duration_quarter : np.ndarray, shape (n_notes,), float64
        Onset and duration in quarter notes from the score's first note.
    pitch : np.ndarray, shape (n_notes,), int64
        MIDI pitch (sounding).
    onset, offset : np.ndarray, shape (n_notes,), float64
        Seconds at the score's tempo; sorted by ``onset``.
    """

    pages: list[str]
    page_count: int
    ids: list[str]
    quarter: np.ndarray
    duration_quarter: np.ndarray
    pitch: np.ndarray
    onset: np.ndarray
    offset: np.ndarray

    @property
    def duration(self) -> float:
        """Seconds to the last note's end."""
        return float(self.offset.max()) if self.offset.size else 0.0

    def notes_json(self) -> list[dict]:
        """One dict per note (``id``, ``quarter``, ``duration_quarter``, ``pitch``, ``onset``, ``offset``)."""
        rows = zip(self.ids, self.quarter, self.duration_quarter, self.pitch, self.onset, self.offset, strict=True)
        return [{"id": i, "quarter": round(float(q), 4), "duration_quarter": round(float(d), 4), "pitch": int(p),
                 "onset": round(float(a), 4), "offset": round(float(b), 4)} for i, q, d, p, a, b in rows]  # fmt: skip


def _musicxml_of_midi(path: Path) -> str:
    """MusicXML text of a MIDI file (music21's quantised reading)."""
    import music21
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    try:
        score = music21.converter.parse(str(path), quantizePost=True)
        return GeneralObjectExporter(score).parse().decode("utf-8")
    except Exception as exc:  # music21 raises many kinds on odd files
        raise InputError(f"{path.name}: cannot convert to MusicXML ({type(exc).__name__})") from None


def _load(tk, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix in MIDI_EXTENSIONS:
        ok = tk.loadData(_musicxml_of_midi(path))
    elif suffix in VEROVIO_EXTENSIONS:
        ok = tk.loadFile(str(path))
    else:
        raise InputError(f"{path.name}: verovio cannot engrave {suffix or 'files without extension'}")
    if not ok:
        raise InputError(f"{path.name}: verovio could not read the score")


def _note_times(tk, timemap: list[dict]):
    """Per note id: (onset ms, offset ms, onset quarter, offset quarter) from verovio's time map."""
    on: dict[str, tuple[float, float]] = {}
    off: dict[str, tuple[float, float]] = {}
    for event in timemap:
        stamp = (float(event.get("tstamp", 0.0)), float(event.get("qstamp", 0.0)))
        for i in event.get("on", ()):
            on.setdefault(i, stamp)
        for i in event.get("off", ()):
            off[i] = stamp
    ids = [i for i in on if i in off and off[i][0] > on[i][0]]
    ids.sort(key=lambda i: (on[i][0], i))
    times = np.array([(*on[i], *off[i]) for i in ids], dtype=np.float64).reshape(-1, 4)
    pitch = np.array([int(tk.getMIDIValuesForElement(i).get("pitch", -1)) for i in ids], dtype=np.int64)
    keep = (pitch >= 0) & (pitch < 128)
    return [i for i, k in zip(ids, keep, strict=True) if k], times[keep], pitch[keep]


def engrave_score(path: str | os.PathLike, *, page_width: int = 2100, scale: int = 35) -> EngravedScore:
    """SVG pages of a score file and its notes' ids, positions and times (see the module docstring).

    Parameters
    ----------
    path : path-like
        MusicXML, MEI, kern or MIDI file.
    page_width : int
        Page width in verovio's units (tenths of a millimetre at scale 100).
    scale : int, 10..100
        Engraving scale in percent.

    Raises
    ------
    InputError
        Unreadable file, or no notes with a duration.
    """
    import verovio

    path = Path(path)
    check_score_file(path)
    with _LOCK:
        verovio.enableLog(verovio.LOG_OFF)
        tk = verovio.toolkit()
        tk.setOptions({"xmlIdChecksum": True})  # the same ids every time a file is engraved
        _load(tk, path)
        tk.setOptions({"pageWidth": int(page_width), "scale": int(scale), "adjustPageHeight": True,
                       "breaks": "auto", "header": "none", "footer": "none", "svgViewBox": True})  # fmt: skip
        tk.redoLayout()
        count = int(tk.getPageCount())
        pages = [tk.renderToSVG(k) for k in range(1, min(count, MAX_PAGES) + 1)]
        ids, times, pitch = _note_times(tk, tk.renderToTimemap())
    if not ids:
        raise InputError(f"{path.name}: no engraved notes")
    on_ms, on_q, off_ms, off_q = times.T
    log.info("%s: %d pages, %d notes engraved", path.name, count, len(ids))
    return EngravedScore(pages, count, ids, on_q - on_q.min(), off_q - on_q, pitch, on_ms / 1000.0, off_ms / 1000.0)


__all__ = ["MAX_PAGES", "VEROVIO_EXTENSIONS", "EngravedScore", "engrave_score"]
