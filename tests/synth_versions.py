"""Test helper: render 'versions' of music21 corpus chorales with known, varying tempo maps.

Each version plays the same notes with its own tempo curve, instruments and SoundFont through
FluidSynth, so the time of every score position is known in every version (the ground truth of the
alignment and matching tests). Used by test_align.py and test_audio_search.py; nothing is committed.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SOUNDFONTS = {
    "fluid": Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    "timgm": Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
}


def have_fluidsynth() -> bool:
    return shutil.which("fluidsynth") is not None and all(p.is_file() for p in SOUNDFONTS.values())


@dataclass
class Notes:
    pitch: np.ndarray
    onset: np.ndarray  # quarter notes
    duration: np.ndarray  # quarter notes
    part: np.ndarray

    @property
    def length(self) -> float:
        return float((self.onset + self.duration).max())


def chorale_notes(names: list[str], *, gap: float = 2.0) -> Notes:
    """Notes of one or more corpus chorales played one after another (quarter notes)."""
    import music21

    rows, t = [], 0.0
    for name in names:
        score = music21.corpus.parse(name)
        end = 0.0
        for i, part in enumerate(score.parts[:4]):
            for n in part.flatten().notes:
                for p in n.pitches:
                    on = float(n.getOffsetInHierarchy(part))
                    d = float(n.quarterLength)
                    if d > 0:
                        rows.append((p.midi, on + t, d, i))
                        end = max(end, on + d)
        t += end + gap
    a = np.array(rows)
    a = a[np.lexsort((a[:, 0], a[:, 1]))]
    return Notes(a[:, 0].astype(int), a[:, 1], a[:, 2], a[:, 3].astype(int))


@dataclass
class TempoMap:
    """Score position (quarter notes) -> time (s), piecewise linear on a fine grid."""

    q: np.ndarray
    t: np.ndarray

    @classmethod
    def curve(cls, q_end: float, *, bpm: float, depth: float = 0.0, period: float = 24.0, phase: float = 0.0):
        """Tempo ``bpm * (1 + depth * sin(2 pi q / period + phase))`` integrated over the score."""
        q = np.arange(0.0, q_end + 8.0, 0.05)
        spq = 60.0 / (bpm * (1.0 + depth * np.sin(2 * np.pi * q / period + phase)))
        t = np.concatenate([[0.0], np.cumsum(0.5 * (spq[1:] + spq[:-1]) * 0.05)])
        return cls(q, t)

    def time(self, q):
        return np.interp(q, self.q, self.t)


def render_version(
    notes: Notes,
    tempo: TempoMap,
    out: Path,
    *,
    program: int = 0,
    soundfont: str = "fluid",
    transpose: int = 0,
    lead_in: float = 0.0,
) -> Path:
    """Render the notes timed by ``tempo`` (plus ``lead_in`` s of silence) to a wav file."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    insts = {int(p): pretty_midi.Instrument(program=program) for p in np.unique(notes.part)}
    starts = tempo.time(notes.onset) + lead_in
    ends = tempo.time(notes.onset + 0.95 * notes.duration) + lead_in
    for p, s, e, part in zip(notes.pitch, starts, ends, notes.part, strict=True):
        insts[int(part)].notes.append(pretty_midi.Note(80, int(p) + transpose, float(s), float(max(e, s + 0.03))))
    pm.instruments.extend(insts.values())
    mid = out.with_suffix(".mid")
    pm.write(str(mid))
    subprocess.run(
        ["fluidsynth", "-ni", "-q", "-g", "0.5", "-F", str(out), "-r", "22050", str(SOUNDFONTS[soundfont]), str(mid)],
        check=True,
        capture_output=True,
    )
    return out


def error_stats(estimated: np.ndarray, truth: np.ndarray) -> dict:
    """Absolute error statistics in milliseconds."""
    e = np.abs(np.asarray(estimated) - np.asarray(truth)) * 1000.0
    return {
        "mean": float(e.mean()),
        "median": float(np.median(e)),
        "p95": float(np.percentile(e, 95)),
        "max": float(e.max()),
        "within_50": float(np.mean(e <= 50)),
    }
