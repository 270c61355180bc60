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


# ------------------------------------------------------------------------------------------ version sets

#: instrument programs of the ensembles used for versions (all parts the same program)
ENSEMBLE_PROGRAMS = {
    "piano": 0,
    "harpsichord": 6,
    "organ": 19,
    "guitar": 24,
    "strings": 48,
    "choir": 52,
    "brass": 61,
    "flutes": 73,
}


@dataclass
class Version:
    """One rendered version of a work, with its ground-truth times."""

    work: str
    version: int
    path: str
    ensemble: str
    soundfont: str
    tempo_scale: float
    transpose: int
    lead_in: float
    quarters: np.ndarray  # unique onset positions (quarter notes)
    times: np.ndarray  # their times in this version (s), lead-in included
    duration: float

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["quarters"] = self.quarters.tolist()
        d["times"] = self.times.tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Version:
        d = dict(d)
        d["quarters"] = np.asarray(d["quarters"])
        d["times"] = np.asarray(d["times"])
        return cls(**d)


def chorale_works(n_works: int, per_work: int, *, offset: int = 0) -> dict[str, list[str]]:
    """Group corpus chorales into works of ``per_work`` chorales (deterministic order)."""
    import music21

    paths = sorted(str(p) for p in music21.corpus.getComposer("bach") if str(p).endswith((".mxl", ".xml")))
    names = ["bach/" + Path(p).stem for p in paths]
    names = [n for n in names if n.startswith("bach/bwv") and "-" not in n]
    # many chorales share a tune: keep one harmonisation per melody (first 10 soprano intervals)
    chosen, seen = [], set()
    for name in names[offset:]:
        if len(chosen) >= n_works * per_work:
            break
        try:
            s = corpus_notes(name, max_parts=1)
        except Exception:  # unparsable corpus file
            continue
        first = np.unique(s.onset, return_index=True)[1]
        melody = s.pitch[first][:11]
        key = tuple(np.diff(melody))
        if len(melody) < 11 or key in seen:
            continue
        seen.add(key)
        chosen.append(name)
    return {f"work{i:02d}": chosen[i * per_work : (i + 1) * per_work] for i in range(n_works)}


def build_versions(
    out_dir: Path,
    works: dict[str, list[str]],
    *,
    n_versions: int = 3,
    seed: int = 0,
    transpose_every: int = 3,
    noise_snr_db: float | None = 30.0,
) -> list[Version]:
    """Render ``n_versions`` versions of every work (cached: existing files are reused).

    Versions differ in ensemble, SoundFont, global tempo (0.75-1.35 of 100 bpm), a smooth tempo curve
    (+-15 %), lead-in silence (0-3 s) and, for every ``transpose_every``-th version, a key change of 1-3
    semitones; even versions get background noise at ``noise_snr_db``.
    """
    import json

    import soundfile as sf

    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / "versions.json"
    if manifest.is_file():
        cached = [Version.from_dict(d) for d in json.loads(manifest.read_text())]
        if {(v.work, v.version) for v in cached} == {(w, k) for w in works for k in range(n_versions)} and all(
            Path(v.path).is_file() for v in cached
        ):
            return cached
    versions = []
    ensembles = list(ENSEMBLE_PROGRAMS)
    counter = 0
    for wi, (work, names) in enumerate(works.items()):
        notes = concat_notes([corpus_notes(n) for n in names], gap=2.0, name=work)
        q = np.unique(notes.onset)
        for k in range(n_versions):
            rng = np.random.default_rng([seed, wi, k])
            ens = ensembles[(wi * n_versions + k * 3) % len(ensembles)]
            sf_name = "fluid" if k % 2 == 0 else "timgm"
            scale = float(rng.uniform(0.75, 1.35))
            transpose = int(rng.integers(1, 4) * rng.choice([-1, 1])) if counter % transpose_every == 2 else 0
            counter += 1
            lead_in = float(rng.uniform(0.0, 3.0))
            tmap = TempoMap.random(notes.length, base_bpm=100.0 * scale, variation=0.15, rng=rng)
            shifted = TempoMap(tmap.q, tmap.t + lead_in)
            stem = f"{work}_v{k}_{ens}"
            mid = out_dir / f"{stem}.mid"
            wav = out_dir / f"{stem}.flac"
            write_midi(
                notes, shifted, mid, programs=ENSEMBLE_PROGRAMS[ens], transpose=transpose, rng=rng, velocity_jitter=15
            )
            render(mid, wav, soundfont=sf_name)
            y, sr = sf.read(wav, dtype="float32")
            if noise_snr_db is not None and k % 2 == 0:
                p = float(np.mean(y**2))
                y = y + rng.normal(0.0, np.sqrt(p / 10 ** (noise_snr_db / 10)), y.shape).astype(np.float32)
                sf.write(wav, y, sr)
            versions.append(
                Version(
                    work=work,
                    version=k,
                    path=str(wav),
                    ensemble=ens,
                    soundfont=sf_name,
                    tempo_scale=scale,
                    transpose=transpose,
                    lead_in=lead_in,
                    quarters=q,
                    times=shifted.time(q),
                    duration=y.shape[0] / sr,
                )
            )
    manifest.write_text(json.dumps([v.to_dict() for v in versions]))
    return versions


def deadpan_midi(names: list[str], path: Path, *, bpm: float = 100.0) -> np.ndarray:
    """The work as a score MIDI at a constant tempo; returns the unique onset positions (quarters)."""
    notes = concat_notes([corpus_notes(n) for n in names], gap=2.0)
    tmap = TempoMap.from_bpm(notes.length, lambda q: np.full_like(q, bpm))
    write_midi(notes, tmap, path, programs=0, legato=1.0)
    return np.unique(notes.onset)
