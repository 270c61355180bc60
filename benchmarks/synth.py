"""Renderings with known tempo maps for the matching and synchronisation benchmarks.

A score (music21 corpus) is played twice with different tempo curves, instruments and SoundFonts; the
time of every note in both renderings is known, so any alignment can be scored against the truth.
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


@dataclass
class ScoreNotes:
    """Notes of a score: MIDI pitch, onset and duration in quarter notes, part index."""

    name: str
    pitch: np.ndarray
    onset: np.ndarray
    duration: np.ndarray
    part: np.ndarray

    @property
    def length(self) -> float:
        return float((self.onset + self.duration).max())


def corpus_notes(name: str, *, max_parts: int = 8, max_quarters: float | None = None) -> ScoreNotes:
    """Parse a music21 corpus work into flat note arrays (repeats not expanded)."""
    import music21

    score = music21.corpus.parse(name)
    rows = []
    parts = score.parts if hasattr(score, "parts") and len(score.parts) else [score]
    for i, part in enumerate(parts[:max_parts]):
        for n in part.flatten().notes:
            for p in n.pitches:
                on = float(n.getOffsetInHierarchy(part))
                d = float(n.quarterLength)
                if d <= 0:
                    continue
                if max_quarters is not None and on >= max_quarters:
                    continue
                rows.append((p.midi, on, d, i))
    if not rows:
        raise ValueError(f"{name}: no notes")
    a = np.array(rows, dtype=np.float64)
    order = np.lexsort((a[:, 0], a[:, 1]))
    a = a[order]
    return ScoreNotes(name, a[:, 0].astype(int), a[:, 1], a[:, 2], a[:, 3].astype(int))


def concat_notes(scores: list[ScoreNotes], *, gap: float = 2.0, name: str = "concat") -> ScoreNotes:
    """Play several scores one after the other (``gap`` quarter notes between them)."""
    parts, t = [], 0.0
    for s in scores:
        parts.append((s.pitch, s.onset + t, s.duration, s.part))
        t += s.length + gap
    return ScoreNotes(name, *(np.concatenate([p[i] for p in parts]) for i in range(4)))


class TempoMap:
    """Monotonic map from score position (quarter notes) to time (seconds), piecewise linear on a grid."""

    def __init__(self, quarters: np.ndarray, seconds: np.ndarray):
        self.q = np.asarray(quarters, dtype=np.float64)
        self.t = np.asarray(seconds, dtype=np.float64)

    @classmethod
    def from_bpm(cls, q_end: float, bpm, *, step: float = 0.05) -> TempoMap:
        """Integrate a tempo curve ``bpm(q)`` (quarter notes per minute) from 0 to ``q_end`` (+ margin)."""
        q = np.arange(0.0, q_end + 8.0 + step, step)
        spq = 60.0 / np.asarray(bpm(q), dtype=np.float64)
        t = np.concatenate([[0.0], np.cumsum(0.5 * (spq[1:] + spq[:-1]) * step)])
        return cls(q, t)

    @classmethod
    def random(cls, q_end: float, *, base_bpm: float, variation: float, rng, ritardando: bool = True) -> TempoMap:
        """Smoothly varying tempo: ``base_bpm`` times a sum of slow sinusoids (+-``variation``) and a final rit."""
        phases = rng.uniform(0, 2 * np.pi, 3)
        periods = rng.uniform(8.0, 40.0, 3)
        amps = rng.uniform(0.3, 1.0, 3)
        amps = amps / amps.sum() * variation

        def bpm(q):
            f = 1.0 + sum(a * np.sin(2 * np.pi * q / p + ph) for a, p, ph in zip(amps, periods, phases, strict=True))
            if ritardando:
                f = f * np.where(q > q_end - 4, 1.0 - 0.35 * np.clip((q - (q_end - 4)) / 4, 0, 1), 1.0)
            return base_bpm * f

        return cls.from_bpm(q_end, bpm)

    def time(self, q) -> np.ndarray:
        return np.interp(q, self.q, self.t)

    def quarters(self, t) -> np.ndarray:
        return np.interp(t, self.t, self.q)


def write_midi(
    notes: ScoreNotes,
    tempo: TempoMap,
    path: Path,
    *,
    programs: dict[int, int] | int = 0,
    velocity: int = 80,
    transpose: int = 0,
    legato: float = 0.95,
    rng=None,
    velocity_jitter: int = 0,
) -> None:
    """Write the notes timed by ``tempo`` to a MIDI file (one instrument per part)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    insts = {}
    for part in np.unique(notes.part):
        prog = programs if isinstance(programs, int) else programs.get(int(part), 0)
        insts[int(part)] = pretty_midi.Instrument(program=int(prog), name=f"part{part}")
    starts = tempo.time(notes.onset)
    ends = tempo.time(notes.onset + notes.duration * legato)
    for p, s, e, part in zip(notes.pitch, starts, ends, notes.part, strict=True):
        v = velocity
        if rng is not None and velocity_jitter:
            v = int(np.clip(velocity + rng.integers(-velocity_jitter, velocity_jitter + 1), 20, 127))
        insts[int(part)].notes.append(pretty_midi.Note(v, int(p) + transpose, float(s), float(max(e, s + 0.03))))
    pm.instruments.extend(insts.values())
    pm.write(str(path))


def render(midi: Path, out: Path, *, soundfont: str = "fluid", sr: int = 22050, gain: float = 0.5) -> Path:
    """Render a MIDI file with FluidSynth to ``out`` (wav; flac/ogg converted with soundfile)."""
    if shutil.which("fluidsynth") is None:
        raise RuntimeError("fluidsynth is not installed")
    wav = out.with_suffix(".wav")
    subprocess.run(
        [
            "fluidsynth",
            "-ni",
            "-q",
            "-g",
            str(gain),
            "-F",
            str(wav),
            "-r",
            str(sr),
            str(SOUNDFONTS[soundfont]),
            str(midi),
        ],
        check=True,
        capture_output=True,
    )
    if out.suffix != ".wav":
        import soundfile as sf

        y, r = sf.read(wav)
        sf.write(out, y, r)
        wav.unlink()
    return out


def note_times(notes: ScoreNotes, tempo: TempoMap) -> np.ndarray:
    """Unique onset times (s) of the score's note onsets under a tempo map, with their quarter positions."""
    q = np.unique(notes.onset)
    return q, tempo.time(q)
