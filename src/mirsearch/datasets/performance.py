"""Performances: how one version of a work is played.

A version differs from the others of its work the way recordings by different performers do:

* **instrumentation**: an ensemble (string quartet, choir, organ, brass, woodwinds, piano, ...) chosen to
  suit the work's category, one General MIDI program per part chosen by the part's register, and a
  SoundFont;
* **tempo**: a global factor (0.7 to 1.4 of the nominal tempo), a smooth local tempo curve (a few
  slow sinusoids in log-tempo, up to about 8 % deviation), held fermatas, a ritardando before fermatas
  and at the end;
* **dynamics**: an overall level, a smooth crescendo/diminuendo curve, a brought-out melody, metric
  accents, velocity noise, and a matching expression (CC 11) curve for sustained sounds;
* **timing and articulation**: legato to detached note lengths, a small melody lead, per-note onset
  jitter (a few milliseconds);
* **pitch**: a key change by one to three semitones for some versions, and a tuning deviation of up to
  +-40 cents (a pitch bend on every channel);
* **recording** (applied by :mod:`mirsearch.datasets.render`): lead-in silence, room reverb,
  microphone colouration, background noise at an SNR, level, and lossy encoding for some versions.

Every random choice comes from a generator seeded by ``(seed, work_id, version)``, so a version is the
same whichever order versions are built in. The score-to-audio time map is kept as breakpoints
(:class:`TempoMap`); note onsets are that map plus the small timing offsets, and the per-note onsets used
as strong alignment are the onsets actually written to the MIDI file.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mirsearch.datasets.corpus import ScoreData
from mirsearch.errors import ParameterError

logger = logging.getLogger(__name__)

# registers by mean MIDI pitch of a part
_SOPRANO, _ALTO, _TENOR, _BASS = "S", "A", "T", "B"

#: ensembles: register -> General MIDI programs that may play a part in that register
ENSEMBLES: dict[str, dict[str, tuple[int, ...]]] = {
    "string_quartet": {_SOPRANO: (40,), _ALTO: (40, 41), _TENOR: (41, 42), _BASS: (42,)},
    "string_orchestra": {_SOPRANO: (48, 49), _ALTO: (48, 49), _TENOR: (48, 49), _BASS: (48, 43)},
    "choir": {_SOPRANO: (52,), _ALTO: (52, 53), _TENOR: (52, 53), _BASS: (52,)},
    "organ": {_SOPRANO: (19, 20), _ALTO: (19, 20), _TENOR: (19, 20), _BASS: (19, 20)},
    "piano": {_SOPRANO: (0, 1), _ALTO: (0, 1), _TENOR: (0, 1), _BASS: (0, 1)},
    "harpsichord": {_SOPRANO: (6,), _ALTO: (6,), _TENOR: (6,), _BASS: (6,)},
    "woodwinds": {_SOPRANO: (73, 68), _ALTO: (68, 71, 69), _TENOR: (71, 69), _BASS: (70,)},
    "brass": {_SOPRANO: (56, 60), _ALTO: (60, 56), _TENOR: (60, 57), _BASS: (57, 58)},
    "recorders": {_SOPRANO: (74, 73), _ALTO: (74,), _TENOR: (74, 71), _BASS: (70, 42)},
    "mixed": {
        _SOPRANO: (40, 73, 68, 56, 52, 71),
        _ALTO: (41, 68, 71, 60, 52, 69),
        _TENOR: (42, 41, 71, 57, 60, 69),
        _BASS: (42, 70, 57, 58, 43),
    },
    "folk_solo": {
        _SOPRANO: (40, 73, 21, 22, 24, 0, 71, 68, 110),
        _ALTO: (40, 73, 21, 24, 0, 71, 68),
        _TENOR: (24, 0, 21, 71, 42),
        _BASS: (24, 0, 42, 32),
    },
}

#: which ensembles suit a category, with weights
CATEGORY_ENSEMBLES: dict[str, dict[str, float]] = {
    "chorale": {
        "choir": 3,
        "organ": 2,
        "string_quartet": 2,
        "string_orchestra": 1,
        "brass": 1,
        "woodwinds": 1,
        "piano": 1,
        "mixed": 1,
    },
    "quartet": {"string_quartet": 5, "string_orchestra": 1, "piano": 1, "woodwinds": 1, "mixed": 1},
    "vocal": {"choir": 4, "recorders": 1, "string_quartet": 1, "brass": 1, "organ": 1, "mixed": 1},
    "folk": {"folk_solo": 4, "piano": 1, "woodwinds": 1},
    "other": {"piano": 2, "string_quartet": 2, "woodwinds": 1, "organ": 1, "mixed": 1, "harpsichord": 1},
    "user": {"piano": 2, "string_quartet": 2, "woodwinds": 1, "organ": 1, "mixed": 1, "harpsichord": 1},
}

#: sustained programs (expression curve matters; velocity alone does not shape the sound)
SUSTAINED = frozenset([19, 20, 21, 22, 40, 41, 42, 43, 48, 49, 52, 53, 56, 57, 58, 60, 61, 68, 69, 70, 71, 73, 74, 110])

#: ranges of every sampled parameter, documented in docs/dataset.md
RANGES = {
    "tempo_factor": (0.7, 1.4),
    "tempo_curve_depth": (0.0, 0.06),
    "tempo_curve_period_q": (6.0, 32.0),
    "fermata_hold": (1.3, 2.2),
    "final_ritardando": (0.0, 0.3),
    "transpose_probability": 0.25,
    "transpose_semitones": (-3, 3),
    "tuning_cents": (-40.0, 40.0),
    "dynamic_level": (45, 105),
    "dynamics_depth": (0.0, 18.0),
    "melody_boost": (0, 15),
    "articulation": (0.72, 1.0),
    "timing_jitter_ms": (0.0, 4.0),
    "melody_lead_ms": (0.0, 10.0),
    "lead_in_s": (0.2, 1.5),
}


def stable_seed(*parts: object) -> int:
    """A 63-bit integer derived from ``parts`` (independent of Python's hash randomisation)."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass(frozen=True)
class RecordingParams:
    """Recording chain of a version (applied after synthesis).

    Attributes
    ----------
    reverb_rt60 : float
        Reverberation time in seconds (0 = dry).
    reverb_wet : float
        Reverberant-to-direct energy ratio in [0, 1].
    reverb_predelay_ms : float
        Delay of the reverberant part.
    lowpass_hz : float or None
        Cut-off of a gentle (2nd order) low-pass, microphone / distance colouration.
    highpass_hz : float
        Cut-off of a 2nd-order high-pass (rumble filter).
    noise : str or None
        ``"white"``, ``"pink"``, ``"brown"`` or ``"hum"``; None for no added noise.
    snr_db : float or None
        Signal-to-noise ratio of the added noise.
    level_db : float
        RMS level of the final signal in dBFS (peaks limited to -0.5 dBFS).
    encoding : str
        ``"flac"``, ``"ogg"`` (Vorbis) or ``"mp3"``.
    quality : float
        Lossy encoders: libsndfile compression level in [0, 1] (0 = best quality).
    """

    reverb_rt60: float
    reverb_wet: float
    reverb_predelay_ms: float
    lowpass_hz: float | None
    highpass_hz: float
    noise: str | None
    snr_db: float | None
    level_db: float
    encoding: str
    quality: float


@dataclass(frozen=True)
class PerformanceParams:
    """Everything that defines one version (all JSON-serialisable; see :data:`RANGES`)."""

    seed: int
    soundfont: str
    ensemble: str
    programs: tuple[int, ...]
    base_bpm: float
    tempo_factor: float
    tempo_curve_depth: float
    tempo_curve_period_q: float
    fermata_hold: float
    final_ritardando: float
    transpose: int
    tuning_cents: float
    dynamic_level: int
    dynamics_depth: float
    melody_boost: int
    articulation: float
    timing_jitter_ms: float
    melody_lead_ms: float
    lead_in_s: float
    top_part: int
    recording: RecordingParams = field(default=None)  # type: ignore[assignment]

    def to_json(self) -> dict:
        """Plain dict (lists instead of tuples)."""
        data = asdict(self)
        data["programs"] = list(self.programs)
        return data

    @classmethod
    def from_json(cls, data: dict) -> PerformanceParams:
        data = dict(data)
        data["programs"] = tuple(data["programs"])
        data["recording"] = RecordingParams(**data["recording"])
        return cls(**data)


@dataclass(frozen=True)
class TempoMap:
    """Piecewise-linear map from score time (quarter notes) to audio time (seconds).

    Attributes
    ----------
    score : np.ndarray, shape (n,)
        Increasing breakpoints in quarter notes (the first is 0).
    audio : np.ndarray, shape (n,)
        Increasing audio times in seconds at those breakpoints (the first is the lead-in).
    """

    score: np.ndarray
    audio: np.ndarray

    def __call__(self, q: float | np.ndarray) -> float | np.ndarray:
        """Audio seconds of score positions ``q`` (linear extrapolation past the ends)."""
        q_arr = np.asarray(q, dtype=float)
        t = np.interp(q_arr, self.score, self.audio)
        lo_slope = (self.audio[1] - self.audio[0]) / (self.score[1] - self.score[0])
        hi_slope = (self.audio[-1] - self.audio[-2]) / (self.score[-1] - self.score[-2])
        t = np.where(q_arr < self.score[0], self.audio[0] + (q_arr - self.score[0]) * lo_slope, t)
        t = np.where(q_arr > self.score[-1], self.audio[-1] + (q_arr - self.score[-1]) * hi_slope, t)
        return float(t) if np.ndim(q) == 0 else t

    def inverse(self, t: float | np.ndarray) -> float | np.ndarray:
        """Score positions (quarter notes) of audio times ``t`` in seconds (clipped to the map)."""
        q = np.interp(np.asarray(t, dtype=float), self.audio, self.score)
        return float(q) if np.ndim(t) == 0 else q

    def to_json(self) -> dict:
        return {
            "score": [round(float(x), 4) for x in self.score],
            "audio": [round(float(x), 5) for x in self.audio],
        }

    @classmethod
    def from_json(cls, data: dict) -> TempoMap:
        return cls(np.asarray(data["score"], dtype=float), np.asarray(data["audio"], dtype=float))


@dataclass(frozen=True)
class PerformedNote:
    """A note as played: part index, MIDI pitch, start/end seconds, velocity, score onset (quarters)."""

    part: int
    pitch: int
    start: float
    end: float
    velocity: int
    onset_q: float


@dataclass
class Performance:
    """A rendered-to-be performance: notes, tempo map, onset lookup and controller curves."""

    params: PerformanceParams
    notes: list[PerformedNote]
    tempo_map: TempoMap
    onset_times: dict[tuple[int, float], float]
    expression: dict[int, list[tuple[float, int]]]
    end: float

    def onset_of(self, part: int, onset_q: float) -> float:
        """Audio time (s) at which the notes of ``part`` starting at score position ``onset_q`` sound."""
        key = (part, round(onset_q, 6))
        if key in self.onset_times:
            return self.onset_times[key]
        return float(self.tempo_map(onset_q))


# --------------------------------------------------------------------------------------------------
# sampling


def _register(mean_pitch: float) -> str:
    if mean_pitch >= 66:
        return _SOPRANO
    if mean_pitch >= 59:
        return _ALTO
    if mean_pitch >= 51:
        return _TENOR
    return _BASS


def choose_programs(score: ScoreData, ensemble: str, rng: np.random.Generator) -> tuple[int, ...]:
    """One General MIDI program per part of ``score`` for ``ensemble``, by each part's register.

    One-program ensembles (organ, piano) use the same program for all parts; otherwise a program is
    drawn per register and reused by the parts of that register.
    """
    if ensemble not in ENSEMBLES:
        raise ParameterError(f"ensemble={ensemble!r} is not one of {sorted(ENSEMBLES)}")
    table = ENSEMBLES[ensemble]
    if ensemble in ("organ", "piano", "harpsichord"):
        prog = int(rng.choice(table[_SOPRANO]))
        return tuple(prog for _ in score.parts)
    per_register = {reg: int(rng.choice(progs)) for reg, progs in table.items()}
    return tuple(per_register[_register(p.mean_pitch)] for p in score.parts)


def sample_params(
    score: ScoreData,
    *,
    seed: int,
    version: int,
    soundfonts: Sequence[str],
    top_part: int,
    key_change: bool = True,
    lossy: bool = True,
    used_ensembles: Sequence[str] = (),
) -> PerformanceParams:
    """Draw the parameters of version ``version`` of ``score``.

    Parameters
    ----------
    score : ScoreData
    seed : int
        Dataset seed; with ``score.work_id`` and ``version`` it seeds every draw.
    version : int >= 0
        Version number within the work.
    soundfonts : sequence of str
        SoundFont paths to choose from; versions of a work cycle through them from a random start.
    top_part : int
        Index of the melody part (brought out, played with a lead).
    key_change : bool
        Allow transposed versions (probability ``RANGES["transpose_probability"]``).
    lossy : bool
        Allow ogg/mp3 encodings.
    used_ensembles : sequence of str
        Ensembles already used by earlier versions of the work (avoided when possible).
    """
    if not soundfonts:
        raise ParameterError("soundfonts: at least one SoundFont is needed")
    rng = np.random.default_rng(stable_seed(seed, score.work_id, version))
    start = stable_seed(seed, score.work_id, "soundfont") % len(soundfonts)
    soundfont = str(soundfonts[(start + version) % len(soundfonts)])
    weights = dict(CATEGORY_ENSEMBLES.get(score.category, CATEGORY_ENSEMBLES["other"]))
    if len(score.parts) == 1:
        weights = dict(CATEGORY_ENSEMBLES["folk"])
    fresh = {k: v for k, v in weights.items() if k not in used_ensembles} or weights
    names = sorted(fresh)
    probs = np.array([fresh[n] for n in names], dtype=float)
    ensemble = str(rng.choice(names, p=probs / probs.sum()))
    programs = choose_programs(score, ensemble, rng)

    r = RANGES
    tempo_factor = float(np.exp(rng.uniform(np.log(r["tempo_factor"][0]), np.log(r["tempo_factor"][1]))))
    transpose = 0
    if key_change and rng.random() < r["transpose_probability"]:
        transpose = int(rng.choice([-3, -2, -1, 1, 2, 3]))
    # most ensembles tune within +-10 cents of A440, some far off (historical pitch, old recordings)
    tuning = float(rng.uniform(-10, 10) if rng.random() < 0.5 else rng.uniform(*r["tuning_cents"]))
    recording = _sample_recording(rng, score.category, lossy=lossy)
    return PerformanceParams(
        seed=int(stable_seed(seed, score.work_id, version, "noise")),
        soundfont=soundfont,
        ensemble=ensemble,
        programs=programs,
        base_bpm=round(float(score.tempo_bpm), 3),
        tempo_factor=round(tempo_factor, 4),
        tempo_curve_depth=round(float(rng.uniform(*r["tempo_curve_depth"])), 4),
        tempo_curve_period_q=round(float(rng.uniform(*r["tempo_curve_period_q"])), 3),
        fermata_hold=round(float(rng.uniform(*r["fermata_hold"])), 3),
        final_ritardando=round(float(rng.uniform(*r["final_ritardando"])), 3),
        transpose=transpose,
        tuning_cents=round(tuning, 2),
        dynamic_level=int(rng.integers(r["dynamic_level"][0], r["dynamic_level"][1] + 1)),
        dynamics_depth=round(float(rng.uniform(*r["dynamics_depth"])), 2),
        melody_boost=int(rng.integers(r["melody_boost"][0], r["melody_boost"][1] + 1)),
        articulation=round(float(rng.uniform(*r["articulation"])), 3),
        timing_jitter_ms=round(float(rng.uniform(*r["timing_jitter_ms"])), 2),
        melody_lead_ms=round(float(rng.uniform(*r["melody_lead_ms"])), 2),
        lead_in_s=round(float(rng.uniform(*r["lead_in_s"])), 3),
        top_part=int(top_part),
        recording=recording,
    )


def _sample_recording(rng: np.random.Generator, category: str, *, lossy: bool) -> RecordingParams:
    # churches for choirs and organs, halls for quartets, small rooms for folk
    rt_hi = {"chorale": 2.8, "vocal": 3.0, "quartet": 1.8, "folk": 1.0}.get(category, 2.0)
    dry = rng.random() < 0.15
    rt60 = 0.0 if dry else float(rng.uniform(0.3, rt_hi))
    wet = 0.0 if dry else float(rng.uniform(0.05, 0.5))
    lowpass = float(rng.uniform(4000, 10000)) if rng.random() < 0.4 else None
    noise_kind = None
    snr = None
    if rng.random() < 0.7:
        noise_kind = str(rng.choice(["white", "pink", "pink", "brown", "hum"]))
        snr = float(rng.uniform(15, 45))
    u = rng.random()
    encoding = "flac"
    if lossy and u < 0.2:
        encoding = "ogg"
    elif lossy and u < 0.35:
        encoding = "mp3"
    return RecordingParams(
        reverb_rt60=round(rt60, 3),
        reverb_wet=round(wet, 3),
        reverb_predelay_ms=round(float(rng.uniform(5, 30)), 2),
        lowpass_hz=None if lowpass is None else round(lowpass, 1),
        highpass_hz=round(float(rng.uniform(25, 100)), 1),
        noise=noise_kind,
        snr_db=None if snr is None else round(snr, 2),
        level_db=round(float(rng.uniform(-26, -16)), 2),
        encoding=encoding,
        quality=round(float(rng.uniform(0.2, 0.7)), 3),
    )


# --------------------------------------------------------------------------------------------------
# performing


def _smooth_curve(rng: np.random.Generator, x: np.ndarray, *, period: float, n: int = 3) -> np.ndarray:
    """Sum of ``n`` sinusoids with periods around ``period`` and random phases; unit standard deviation."""
    y = np.zeros_like(x, dtype=float)
    for k in range(n):
        p = period * (0.6 + 0.9 * rng.random()) * (1.0 + k)
        y += rng.normal() * np.sin(2 * np.pi * x / p + rng.uniform(0, 2 * np.pi))
    sd = y.std()
    return y / sd if sd > 1e-9 else y


def build_tempo_map(score: ScoreData, params: PerformanceParams, *, step_q: float = 0.5) -> TempoMap:
    """The version's score-to-audio map (breakpoints every ``step_q`` quarter notes and at fermatas).

    Seconds per quarter note at ``q`` are ``60 / (base_bpm * tempo_factor * exp(depth * curve(q)))``,
    lengthened by ``fermata_hold`` under fermatas, by up to 12 % in the half note before a fermata and
    by ``final_ritardando`` (linear) over the last four quarter notes.
    """
    rng = np.random.default_rng(stable_seed(params.seed, "tempo"))
    end = float(score.duration_q)
    fine = np.arange(0.0, end + 1.0 / 48, 1.0 / 48)
    spq = 60.0 / (params.base_bpm * params.tempo_factor)
    curve = np.exp(params.tempo_curve_depth * _smooth_curve(rng, fine, period=params.tempo_curve_period_q))
    slow = np.ones_like(fine)
    fermatas = sorted({(o, o + d) for part in score.parts for (_, o, d, f) in part.notes if f})
    for o, e in fermatas:
        slow[(fine >= o) & (fine < e)] *= params.fermata_hold
        pre = (fine >= o - 2.0) & (fine < o)
        slow[pre] *= 1.0 + 0.12 * (fine[pre] - (o - 2.0)) / 2.0
    rit_start = max(end - 4.0, 0.0)
    tail = fine >= rit_start
    slow[tail] *= 1.0 + params.final_ritardando * (fine[tail] - rit_start) / max(end - rit_start, 1e-6)
    seconds_per_q = spq * slow / curve
    t = np.concatenate([[0.0], np.cumsum(seconds_per_q[:-1] * np.diff(fine))])
    grid = np.arange(0.0, end + step_q, step_q)
    marks = np.array([x for o, e in fermatas for x in (o, e)], dtype=float)
    q_points = np.unique(np.round(np.concatenate([grid, marks, [end]]), 6))
    a_points = np.interp(q_points, fine, t) + params.lead_in_s
    return TempoMap(np.round(q_points, 4), np.round(a_points, 5))


def perform(score: ScoreData, params: PerformanceParams) -> Performance:
    """Turn a score into performed notes (seconds, velocities) following ``params``.

    Returns
    -------
    Performance
        ``onset_times[(part, onset_q)]`` is the exact start time written for that part's notes at that
        score position (tempo map + melody lead + jitter); it is the strong alignment of theme notes.
    """
    rng = np.random.default_rng(stable_seed(params.seed, "perform"))
    tmap = build_tempo_map(score, params)
    n_parts = len(score.parts)
    if len(params.programs) != n_parts:
        raise ParameterError(f"{score.work_id}: {len(params.programs)} programs for {n_parts} parts")
    balance = rng.integers(-6, 7, size=n_parts)
    dyn_curve_q = np.arange(0.0, score.duration_q + 1.0, 0.25)
    dyn = params.dynamics_depth * _smooth_curve(rng, dyn_curve_q, period=max(params.tempo_curve_period_q, 8.0))
    jitter_sd = params.timing_jitter_ms / 1000.0
    measure_starts = np.asarray(score.measure_starts)

    notes: list[PerformedNote] = []
    onset_times: dict[tuple[int, float], float] = {}
    for pi, part in enumerate(score.parts):
        lead = -params.melody_lead_ms / 1000.0 if pi == params.top_part else 0.0
        onsets = sorted({round(o, 6) for (_, o, _, _) in part.notes})
        jit = np.clip(rng.normal(0.0, jitter_sd, size=len(onsets)), -2.0 * jitter_sd, 2.0 * jitter_sd)
        q_arr = np.asarray(onsets)
        times = np.asarray(tmap(q_arr)) + lead + jit
        for q, t in zip(onsets, times, strict=True):
            onset_times[(pi, q)] = max(float(t), 0.0)
        for pitch, onset, dur, ferm in part.notes:
            start = onset_times[(pi, round(onset, 6))]
            t_end = float(tmap(onset + dur)) + lead
            full = max(t_end - start, 0.03)
            art = 1.0 if ferm else params.articulation
            end = start + max(full * art, min(0.06, full))
            downbeat = bool(np.any(np.abs(measure_starts - onset) < 1e-6))
            vel = (
                params.dynamic_level
                + float(np.interp(onset, dyn_curve_q, dyn))
                + balance[pi]
                + (params.melody_boost if pi == params.top_part else 0)
                + (4 if downbeat else 0)
                + rng.normal(0.0, 3.0)
            )
            p = pitch + params.transpose
            while p < 21:
                p += 12
            while p > 108:
                p -= 12
            notes.append(
                PerformedNote(pi, int(p), round(start, 5), round(end, 5), int(np.clip(round(vel), 1, 127)), onset)
            )
    notes = _fix_overlaps(notes)
    expression: dict[int, list[tuple[float, int]]] = {}
    q_grid = dyn_curve_q[::2]
    cc = np.clip(np.round(100 + 1.2 * np.interp(q_grid, dyn_curve_q, dyn)), 40, 127).astype(int)
    t_grid = np.asarray(tmap(q_grid))
    for pi, prog in enumerate(params.programs):
        if prog in SUSTAINED and params.dynamics_depth > 0:
            expression[pi] = [(round(float(t), 4), int(v)) for t, v in zip(t_grid, cc, strict=True)]
    end = max((n.end for n in notes), default=0.0)
    return Performance(params, notes, tmap, onset_times, expression, end)


def _fix_overlaps(notes: list[PerformedNote]) -> list[PerformedNote]:
    """Shorten a note that overlaps the next note of the same pitch in the same part (re-attack)."""
    notes = sorted(notes, key=lambda n: (n.part, n.pitch, n.start))
    out = []
    for k, n in enumerate(notes):
        nxt = notes[k + 1] if k + 1 < len(notes) else None
        if nxt is not None and nxt.part == n.part and nxt.pitch == n.pitch and n.end > nxt.start - 0.005:
            new_end = max(nxt.start - 0.005, n.start + 0.01)
            n = PerformedNote(n.part, n.pitch, n.start, round(new_end, 5), n.velocity, n.onset_q)
        out.append(n)
    return sorted(out, key=lambda n: (n.start, n.part, n.pitch))


def write_midi(performance: Performance, path: str | Path, *, tail: float = 2.5) -> None:
    """Write the performance as a MIDI file (one channel per part, up to 15 parts; more share channels).

    Each channel gets its program, a pitch bend for the tuning deviation (bend range 2 semitones) and the
    expression curve; a final controller event ``tail`` seconds after the last note keeps the release
    and the reverb tail in the rendering.
    """
    import pretty_midi

    params = performance.params
    pm = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)
    n_channels = min(len(params.programs), 15)
    insts = []
    bend = int(np.clip(round(params.tuning_cents / 200.0 * 8192), -8192, 8191))
    for ch in range(n_channels):
        inst = pretty_midi.Instrument(program=int(params.programs[ch]), name=f"part{ch}")
        inst.pitch_bends.append(pretty_midi.PitchBend(pitch=bend, time=0.0))
        inst.control_changes.append(pretty_midi.ControlChange(number=7, value=100, time=0.0))
        inst.control_changes.append(pretty_midi.ControlChange(number=11, value=110, time=0.0))
        insts.append(inst)
    for pi, curve in performance.expression.items():
        if pi < n_channels:
            for t, v in curve:
                insts[pi].control_changes.append(pretty_midi.ControlChange(number=11, value=int(v), time=float(t)))
    for n in performance.notes:
        ch = n.part if n.part < n_channels else n_channels - 1
        insts[ch].notes.append(pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=n.start, end=n.end))
    insts[0].control_changes.append(pretty_midi.ControlChange(number=11, value=110, time=float(performance.end + tail)))
    pm.instruments.extend(insts)
    pm.write(str(path))
