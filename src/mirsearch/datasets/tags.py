"""The auto-tagging training set: 10 s clips of corpus pieces rendered with random instruments, with honest labels.

``mirsearch dataset build --preset tags --out data/tags`` (:func:`build_tags`):

1. **Works** from the music21 corpus, chosen by a seeded shuffle with a quota per group
   (:data:`QUOTAS`): Bach chorales, string quartet movements, other instrumental pieces, renaissance vocal
   polyphony, German and Chinese folk songs of the Essen collection and jigs, reels and hornpipes of Ryan's
   Mammoth Collection. Parsed works are cached (``<out>/cache/scores``).
2. **Splits by work**: a hash of ``(seed, work_id)`` puts a work in train (72 %), validation (10 %) or test
   (18 %); no piece is in two splits. Train and validation are rendered with FluidR3_GM (seven clips in
   eight) and MuseScore General, the test split only with TimGM6mb (a SoundFont the model never hears in training).
3. **Clips**: per work :data:`CLIPS_PER_WORK` clips, each a 10 s window of its own performance
   (:mod:`mirsearch.datasets.performance`: tempo, dynamics, timing, tuning, room, noise) with its own
   instrumentation: one program for all parts (a solo), a choir, a program per part drawn across the ten
   families, or every part doubled (an orchestra); drums on channel 10 for some clips; one-part folk tunes
   get a chordal accompaniment (bass and chords on I, IV, V) for most clips.
4. **Labels** (:mod:`mirsearch.describe.tag_vocabulary`): the families of the programs that sound in the
   window and drums; the ensemble from the number of instruments; mode from a Krumhansl key estimate of the
   notes; metre from the time signature; tempo class from the rendered tempo; era/style from the composer or
   collection; region (Essen) and tune type (Ryan's) from the corpus.

Every clip leaves ``audio/<clip>.flac`` (16 kHz mono) and ``labels/<clip>.json`` written atomically; a rebuild
skips finished clips, so an interrupted build resumes. ``manifest.jsonl`` lists every finished clip.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_write_text
from mirsearch.datasets.corpus import PartData, ScoreData, parse_many, work_id_for
from mirsearch.datasets.performance import perform, sample_params, stable_seed
from mirsearch.describe.tag_vocabulary import FAMILIES, FAMILY_PROGRAMS, TAG_NAMES, family_of_program
from mirsearch.errors import MirsearchError, ParameterError

logger = logging.getLogger(__name__)

#: sample rate of the stored clips (Hz)
CLIP_SR = 16000
#: clip length (s)
CLIP_SECONDS = 10.0
#: clips rendered per work
CLIPS_PER_WORK = 3
#: works per group (taken after a seeded shuffle)
QUOTAS = {"chorale": 160, "quartet": 20, "other": 20, "vocal": 90, "german": 90, "chinese": 60}
QUOTAS.update({"jig": 40, "reel": 40, "hornpipe": 40})
#: SoundFonts of the train / validation split and of the test split
TRAIN_FONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf3/MuseScore_General.sf3")
TEST_FONTS = ("/usr/share/sounds/sf2/TimGM6mb.sf2",)
#: split fractions (by work)
FRACTIONS = (("train", 0.72), ("validation", 0.10), ("test", 0.18))

_ERA_BY_PREFIX = (
    (("palestrina/", "josquin/", "trecento/", "luca/", "lusitano/", "ciconia/"), "renaissance"),
    (("bach/", "handel/", "corelli/", "cpebach/", "monteverdi/"), "baroque"),
    (("mozart/", "haydn/", "beethoven/"), "classical"),
    (("schumann", "schubert/", "chopin/", "verdi/", "weber/", "beach/"), "romantic"),
    (("essenFolksong/", "ryansMammoth/", "oneills1850/", "airdsAirs/", "miscFolk/"), "folk"),
)
_KS_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KS_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


# ----------------------------------------------------------------------------------------------- works
def candidate_sources(group: str) -> list[str]:
    """Every corpus source of a group of :data:`QUOTAS`, sorted."""
    from music21 import corpus

    from mirsearch.datasets.corpus import corpus_sources

    if group in ("chorale", "quartet", "other", "vocal"):
        return corpus_sources(group)
    if group in ("german", "chinese"):
        files = ("han1", "han2") if group == "chinese" else ("altdeu10", "altdeu20", "erk10", "erk20", "kinder0")
        out = []
        for name in files:
            text = Path(corpus.getWork(f"essenFolksong/{name}.abc")).read_text(encoding="latin-1")
            out += [f"corpus:essenFolksong/{name}.abc#{x}" for x in re.findall(r"^X:\s*(\d+)", text, re.M)]
        return out
    paths = sorted(str(p).replace("\\", "/").split("/corpus/", 1)[-1] for p in corpus.getPaths())
    pattern = {"jig": r"(Slip)?[Jj]ig\.abc$", "reel": r"Reel\.abc$", "hornpipe": r"Hornpipe\.abc$"}[group]
    return [f"corpus:{p}" for p in paths if p.startswith("ryansMammoth/") and re.search(pattern, p)]


def choose_sources(seed: int, quotas: dict[str, int] = QUOTAS) -> list[tuple[str, str]]:
    """``(source, group)`` pairs: each group's candidates in a seeded order, the first ``quota`` of them."""
    chosen = []
    for group, quota in quotas.items():
        cands = candidate_sources(group)
        cands.sort(key=lambda s: stable_seed(seed, "tags", s))
        chosen += [(s, group) for s in cands[:quota]]
    return chosen


def split_of(work_id: str, *, seed: int) -> str:
    """The split of a work (a hash of seed and work id against :data:`FRACTIONS`)."""
    u = (stable_seed(seed, "tags-split", work_id) % 10_000) / 10_000
    acc = 0.0
    for name, frac in FRACTIONS:
        acc += frac
        if u < acc:
            return name
    return FRACTIONS[-1][0]


# ----------------------------------------------------------------------------------------------- score labels
def estimate_tonic(score: ScoreData) -> tuple[int, str]:
    """Tonic pitch class and mode of the best Krumhansl-Schmuckler key."""
    hist = np.zeros(12)
    for part in score.parts:
        for pitch, _, dur, _ in part.notes:
            hist[pitch % 12] += dur
    scores = [
        (np.corrcoef(hist, np.roll(prof, t))[0, 1] if hist.std() > 0 else 0.0, t, name)
        for t in range(12)
        for name, prof in (("major", _KS_MAJOR), ("minor", _KS_MINOR))
    ]
    _, tonic, mode = max(scores)
    return int(tonic), mode


def metre_of(time_signature: str) -> str | None:
    """``"duple"``, ``"triple"``, ``"compound"`` or None (other or unknown metres)."""
    m = re.match(r"^(\d+)/(\d+)$", time_signature or "")
    if not m:
        return None
    num = int(m.group(1))
    if num in (6, 9, 12):
        return "compound"
    if num == 3:
        return "triple"
    if num in (2, 4):
        return "duple"
    return None


def tempo_class(bpm: float) -> str:
    """``"slow"`` (< 80), ``"moderate"`` (80-120) or ``"fast"`` (> 120 quarter notes per minute)."""
    return "slow" if bpm < 80 else ("moderate" if bpm <= 120 else "fast")


def era_of(source: str) -> str | None:
    """Era/style from the corpus path (composer or collection)."""
    path = source.removeprefix("corpus:")
    for prefixes, era in _ERA_BY_PREFIX:
        if path.startswith(prefixes):
            return era
    return None


def score_tags(score: ScoreData, group: str) -> list[str]:
    """Tags that hold for the whole work: mode, metre, era, region, tune type."""
    tags = [estimate_tonic(score)[1]]
    for tag in (metre_of(score.time_signature), era_of(score.source)):
        if tag is not None:
            tags.append(tag)
    if group in ("german", "chinese", "jig", "reel", "hornpipe"):
        tags.append(group)
    return tags


# ----------------------------------------------------------------------------------------------- accompaniment
def with_accompaniment(score: ScoreData) -> ScoreData:
    """A one-part tune with a bass part and a chord part added: per measure the chord (I, IV or V of the
    estimated key) that holds most of the melody's duration; the bass plays its root on every beat."""
    tonic, mode = estimate_tonic(score)
    third = 3 if mode == "minor" else 4
    chords = [(0, third, 7), (5, 5 + third, 12), (7, 11, 14)]  # I, IV, V (V always major)
    melody = score.parts[0].notes
    starts = list(score.measure_starts) + [score.duration_q]
    beat = 1.5 if metre_of(score.time_signature) == "compound" else 1.0
    bass, harmony = [], []
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        if b - a <= 1e-6:
            continue
        weight = np.zeros(12)
        for p, o, d, _ in melody:
            overlap = min(o + d, b) - max(o, a)
            if overlap > 0:
                weight[(p - tonic) % 12] += overlap
        best = max(chords, key=lambda c: sum(weight[x % 12] for x in c))
        root = 36 + (tonic + best[0]) % 12
        q = a
        while q < b - 1e-6:
            dur = min(beat, b - q)
            bass.append((root, round(q, 6), round(dur * 0.9, 6), False))
            q += beat
        for x in best:
            harmony.append((55 + (tonic + x - 55) % 12, round(a, 6), round(b - a, 6), False))
    parts = (*score.parts, PartData("chords", tuple(sorted(harmony, key=lambda n: (n[1], n[0])))))
    parts = (*parts, PartData("bass", tuple(bass)))
    return replace(score, parts=parts)


# ----------------------------------------------------------------------------------------------- instrumentation
def _program(rng: np.random.Generator, family: str) -> int:
    progs = [p for p in FAMILY_PROGRAMS[family] if p != 47]  # timpani is not a string sound
    return int(rng.choice(progs))


def _pitched_family(rng: np.random.Generator, *, lowest: bool, exclude: tuple[str, ...] = ()) -> str:
    names = [f for f in FAMILY_PROGRAMS if f not in exclude and (lowest or f != "bass")]
    weights = np.array([0.5 if f == "voice" else (0.6 if f == "bass" else 1.0) for f in names])
    return str(rng.choice(names, p=weights / weights.sum()))


def instrumentation(n_parts: int, lowest: int, rng: np.random.Generator) -> tuple[str, list[list[int]], bool]:
    """``(strategy, programs per part (one or two each), drums)`` for a clip.

    Strategies: ``single`` (one program for every part), ``choir`` (voices), ``mixed`` (a family per part),
    ``orchestra`` (``mixed`` with every part doubled by a second family).
    """
    u = rng.random()
    if n_parts == 1 or u < 0.25:
        strategy = "single"
    elif u < 0.35 and n_parts >= 3:
        strategy = "choir"
    elif u < 0.85 or n_parts > 7:
        strategy = "mixed"
    else:
        strategy = "orchestra"
    if strategy == "single":
        prog = _program(rng, _pitched_family(rng, lowest=n_parts == 1, exclude=("voice",) if n_parts > 1 else ()))
        programs = [[prog] for _ in range(n_parts)]
    elif strategy == "choir":
        programs = [[int(rng.choice((52, 53, 52, 54)))] for _ in range(n_parts)]
    else:
        programs = []
        for i in range(n_parts):
            fam = _pitched_family(rng, lowest=i == lowest and rng.random() < 0.5)
            row = [_program(rng, fam)]
            if strategy == "orchestra":
                row.append(_program(rng, _pitched_family(rng, lowest=i == lowest, exclude=(fam,))))
            programs.append(row)
    drums = strategy != "choir" and rng.random() < 0.3
    return strategy, programs, drums


def drum_notes(tempo_map, *, start_q: float, end_q: float, metre: str | None, rng) -> list[tuple[int, float, int]]:
    """``(GM drum key, seconds, velocity)`` of a simple kit pattern for the metre between two score positions."""
    pattern = {
        "triple": ((0.0, 36), (0.0, 42), (1.0, 42), (1.0, 38), (2.0, 42), (2.0, 38)),
        "compound": ((0.0, 36), (0.5, 42), (1.0, 42), (1.5, 38), (1.5, 42), (2.0, 42), (2.5, 42)),
    }.get(metre or "", ((0.0, 36), (0.0, 42), (0.5, 42), (1.0, 38), (1.0, 42), (1.5, 42), (1.5, 36)))
    bar = {"triple": 3.0, "compound": 3.0}.get(metre or "", 2.0)
    hat = 51 if rng.random() < 0.3 else 42
    out = []
    q0 = np.floor(start_q / bar) * bar
    while q0 < end_q:
        for off, key in pattern:
            q = q0 + off
            if start_q <= q < end_q:
                vel = int(np.clip(rng.normal(95 if key == 36 else 75, 8), 30, 127))
                out.append((hat if key == 42 else key, float(tempo_map(q)), vel))
        q0 += bar
    return out


# ----------------------------------------------------------------------------------------------- one clip
@dataclass(frozen=True)
class ClipJob:
    """One clip to render: the work, the clip index, the split, the SoundFont and the output folder."""

    clip_id: str
    score: dict
    group: str
    index: int
    split: str
    soundfont: str
    root: str
    seed: int


def _train_font(seed: int, work_id: str, k: int) -> str:
    """FluidR3_GM for seven clips in eight, MuseScore General (slow to render: sf3) for the eighth."""
    return TRAIN_FONTS[1] if stable_seed(seed, work_id, k, "font") % 8 == 0 else TRAIN_FONTS[0]


def plan_clips(scores: list[tuple[ScoreData, str]], *, seed: int, root: Path) -> list[ClipJob]:
    """Every clip of every work (deterministic for a seed)."""
    jobs = []
    for score, group in scores:
        split = split_of(score.work_id, seed=seed)
        for k in range(CLIPS_PER_WORK):
            font = TEST_FONTS[0] if split == "test" else _train_font(seed, score.work_id, k)
            cid = f"{score.work_id}-c{k}"
            jobs.append(ClipJob(cid, score.to_json(), group, k, split, font, str(root), seed))
    jobs.sort(key=lambda j: stable_seed(seed, j.clip_id, "order"))  # a partial build is a fair sample
    return jobs


def _midi(perf, programs, drums, *, t0: float, t1: float, lead: float, rng, metre, tempo_map) -> tuple:
    """pretty_midi object of the notes sounding in ``[t0 - lead, t1]`` shifted by ``lead - t0``, and the
    channels (programs) that sound inside ``[t0, t1]``."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)
    insts, sounding = {}, set()
    for n in perf.notes:
        if n.end <= t0 - lead or n.start >= t1:
            continue
        for prog in programs[n.part]:
            key = (n.part, prog)
            if key not in insts:
                insts[key] = pretty_midi.Instrument(program=prog, name=f"part{n.part}")
            s, e = max(n.start - t0 + lead, 0.0), min(n.end, t1 + 1.0) - t0 + lead
            insts[key].notes.append(pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=s, end=max(e, s + 0.02)))
            if n.end > t0 + 0.3 and n.start < t1 - 0.3:
                sounding.add(prog)
    # one instrument per program (several parts on one program share it: fewer channels)
    merged: dict[int, pretty_midi.Instrument] = {}
    for (_, prog), inst in insts.items():
        merged.setdefault(prog, pretty_midi.Instrument(program=prog)).notes.extend(inst.notes)
    pm.instruments.extend(list(merged.values())[:15])
    if drums:
        kit = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
        q0, q1 = float(tempo_map.inverse(t0)), float(tempo_map.inverse(t1))
        for key, t, vel in drum_notes(tempo_map, start_q=q0, end_q=q1, metre=metre, rng=rng):
            kit.notes.append(pretty_midi.Note(velocity=vel, pitch=key, start=t - t0 + lead, end=t - t0 + lead + 0.1))
        if kit.notes:
            pm.instruments.append(kit)
    return pm, sounding


def clip_labels(sounding: set[int], *, drums: bool, strategy: str, base_tags: list[str], bpm: float) -> list[str]:
    """The tags of a clip from the programs that sound in it and the work's tags."""
    fams = {family_of_program(p) for p in sounding} - {None}
    tags = set(fams)
    n_inst = len(sounding) + (1 if drums else 0)
    if drums:
        tags.add("drums")
    if strategy == "choir" and fams == {"voice"} and len(sounding) >= 1 and not drums:
        tags.add("choir")
    elif n_inst == 1:
        tags.add("solo")
    elif n_inst == 2:
        tags.add("duo")
    elif n_inst <= 5:
        tags.add("chamber")
    elif n_inst > 5:
        tags.add("orchestra")
    tags.update(base_tags)
    tags.add(tempo_class(bpm))
    return [t for t in TAG_NAMES if t in tags]


@dataclass
class _ClipMidi:
    """What :func:`render_clip` renders: the clip's MIDI (``lead`` s before the window), its performance and labels."""

    pm: object
    sounding: set
    score: ScoreData
    params: object
    strategy: str
    drums: bool
    t0: float
    lead: float


def _clip_midi(job: ClipJob) -> _ClipMidi:
    """The MIDI of one clip, deterministic for the job (the seeded draws of :func:`render_clip`)."""
    score = ScoreData.from_json(job.score)
    rng = np.random.default_rng(stable_seed(job.seed, job.clip_id, "clip"))
    if len(score.parts) == 1 and rng.random() < 0.7:
        score = with_accompaniment(score)
    lowest = int(np.argmin([p.mean_pitch for p in score.parts]))
    strategy, programs, drums = instrumentation(len(score.parts), lowest, rng)
    params = sample_params(score, seed=job.seed, version=job.index, soundfonts=[job.soundfont], top_part=0,
                           key_change=True, lossy=False)  # fmt: skip
    params = replace(params, ensemble=strategy, programs=tuple(p[0] for p in programs))
    perf = perform(score, params)
    t0 = float(rng.uniform(0.0, max(perf.end - CLIP_SECONDS - 0.5, 0.0)))
    t1, lead = t0 + CLIP_SECONDS, 1.0
    metre = metre_of(score.time_signature)
    pm, sounding = _midi(perf, programs, drums, t0=t0, t1=t1, lead=lead, rng=rng, metre=metre,
                         tempo_map=perf.tempo_map)  # fmt: skip
    if not sounding:
        raise MirsearchError(f"{job.clip_id}: no note sounds in the clip")
    return _ClipMidi(pm, sounding, score, params, strategy, drums, t0, lead)


def _render(pm, soundfont: str) -> np.ndarray:
    """FluidSynth rendering of a pretty_midi object at :data:`CLIP_SR`."""
    import tempfile

    from mirsearch.datasets.render import render_midi

    with tempfile.TemporaryDirectory(prefix="mirsearch-tags-") as tmp:
        mid = Path(tmp) / "clip.mid"
        pm.write(str(mid))
        return render_midi(mid, soundfont=soundfont, sr=CLIP_SR)


def render_clip(job: ClipJob) -> dict:
    """Render one clip (audio + labels) unless it exists; returns its record."""
    from mirsearch.datasets.render import apply_recording, encode

    root = Path(job.root)
    label_path = root / "labels" / f"{job.clip_id}.json"
    if label_path.is_file():
        return json.loads(label_path.read_text())
    c = _clip_midi(job)
    score, params, sounding, lead = c.score, c.params, c.sounding, c.lead
    y = _render(c.pm, job.soundfont)
    y = apply_recording(y, sr=CLIP_SR, recording=params.recording, seed=params.seed)
    a = int(lead * CLIP_SR)
    y = np.pad(y, (0, max(0, a + int(CLIP_SECONDS * CLIP_SR) - len(y))))[a : a + int(CLIP_SECONDS * CLIP_SR)]
    (root / "audio").mkdir(parents=True, exist_ok=True)
    audio = encode(y, root / "audio" / job.clip_id, sr=CLIP_SR, encoding="flac")
    bpm = params.base_bpm * params.tempo_factor
    record = {
        "clip": job.clip_id, "work_id": score.work_id, "source": score.source, "group": job.group,
        "split": job.split, "soundfont": Path(job.soundfont).name, "audio": str(audio.relative_to(root)),
        "strategy": c.strategy, "programs": sorted(sounding), "drums": c.drums, "bpm": round(bpm, 2),
        "time_signature": score.time_signature, "composer": score.composer, "start": round(c.t0, 3),
        "tags": clip_labels(sounding, drums=c.drums, strategy=c.strategy, base_tags=score_tags(score, job.group),
                            bpm=bpm),
    }  # fmt: skip
    label_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(label_path, json.dumps(record, sort_keys=True) + "\n")
    return record


def family_shares(job: ClipJob) -> dict[str, float]:
    """Energy of each family of a clip relative to the whole (dB), each family rendered alone, dry (no recording
    chain), over the clip's window: how audible a labelled family is (``-inf`` for a family whose notes all lie
    in the lead-in before the window)."""
    import pretty_midi

    c = _clip_midi(job)
    a, b = int(c.lead * CLIP_SR), int((c.lead + CLIP_SECONDS) * CLIP_SR)

    def family(inst) -> str | None:
        return "drums" if inst.is_drum else family_of_program(inst.program)

    energy = {}
    for fam in sorted({family(i) for i in c.pm.instruments} - {None}):
        sub = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)
        sub.instruments = [i for i in c.pm.instruments if family(i) == fam]
        energy[fam] = float(np.sum(_render(sub, job.soundfont)[a:b].astype(np.float64) ** 2))
    total = max(sum(energy.values()), 1e-30)
    return {f: float(10 * np.log10(e / total)) if e > 0 else float("-inf") for f, e in energy.items()}


def _render_or_fail(job: ClipJob) -> dict:
    try:
        return render_clip(job)
    except MirsearchError as exc:
        return {"clip": job.clip_id, "error": str(exc).splitlines()[0][:200]}


# ----------------------------------------------------------------------------------------------- driver
@dataclass
class TagsBuildReport:
    """What a build did."""

    root: Path
    works: int = 0
    clips: dict | None = None
    failed: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"root": str(self.root), "works": self.works, "clips": self.clips or {}, "failed": self.failed,
                "seconds": round(self.seconds, 1)}  # fmt: skip


def clip_jobs(root: Path, *, seed: int = 0, time_limit: float = 30.0, quotas: dict[str, int] | None = None,
              pool=None) -> tuple[list, list[ClipJob]]:  # fmt: skip
    """``(works, clip jobs)`` of a tagging set in ``root``: the chosen works parsed (cached in
    ``<root>/cache/scores``) and every clip planned, as :func:`build_tags` renders them."""
    chosen = choose_sources(seed, quotas or QUOTAS)
    items = [(s, work_id_for(s)) for s, _ in chosen]
    parsed = []
    for a in range(0, len(items), 16):  # in chunks: the cache keeps what an interrupted build parsed
        parsed += parse_many(items[a : a + 16], cache_dir=root / "cache" / "scores", time_limit=time_limit, pool=pool)
        logger.info("tags: %d / %d works parsed", len(parsed), len(items))
    scores = [(p, g) for p, (_, g) in zip(parsed, chosen, strict=True) if isinstance(p, ScoreData) and p.n_notes]
    plan = plan_clips(scores, seed=seed, root=root)
    logger.info("tags: %d works, %d clips planned", len(scores), len(plan))
    return scores, plan


def build_tags(out_dir: str | os.PathLike, *, seed: int = 0, jobs: int = 1, time_limit: float = 30.0,
               quotas: dict[str, int] | None = None) -> TagsBuildReport:  # fmt: skip
    """Build (or resume) the tagging set in ``out_dir``; see the module docstring.

    Parameters
    ----------
    out_dir : path
    seed : int
        Seed of every random choice (works, splits, performances, instrumentations).
    jobs : int > 0
        Worker processes for parsing and rendering.
    time_limit : float > 0
        Seconds allowed to parse one score.
    quotas : dict, optional
        Works per group (default :data:`QUOTAS`).
    """
    from mirsearch.datasets.workers import Workers

    if jobs < 1:
        raise ParameterError(f"jobs={jobs} must be >= 1")
    start = time.perf_counter()
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    pool = Workers(jobs)
    try:
        scores, plan = clip_jobs(root, seed=seed, time_limit=time_limit, quotas=quotas, pool=pool)
        records = pool.map(_render_or_fail, plan)
    finally:
        pool.close()
    ok = [r for r in records if "error" not in r]
    for r in records:
        if "error" in r:
            logger.warning("clip %s failed: %s", r["clip"], r["error"])
    ok.sort(key=lambda r: r["clip"])
    atomic_write_text(root / "manifest.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in ok))
    counts = {name: sum(r["split"] == name for r in ok) for name, _ in FRACTIONS}
    report = TagsBuildReport(root, len(scores), counts, len(records) - len(ok), time.perf_counter() - start)
    atomic_write_text(root / "build_info.json", json.dumps(report.to_dict(), indent=2) + "\n")
    return report


def load_manifest(root: str | os.PathLike) -> list[dict]:
    """The clip records of a tagging set, sorted by clip: ``manifest.jsonl`` of a finished build, else the
    records of the clips finished so far (``labels/*.json``)."""
    path = Path(root) / "manifest.jsonl"
    if path.is_file():
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    files = sorted((Path(root) / "labels").glob("*.json"))
    if not files:
        raise MirsearchError(f"{path}: no manifest (run mirsearch dataset build --preset tags)")
    return [json.loads(f.read_text()) for f in files]


def label_matrix(records: list[dict]) -> np.ndarray:
    """``(n_clips, n_tags)`` 0/1 matrix of the records' tags in vocabulary order."""
    index = {t: i for i, t in enumerate(TAG_NAMES)}
    Y = np.zeros((len(records), len(TAG_NAMES)), np.float32)
    for r, rec in enumerate(records):
        for t in rec["tags"]:
            Y[r, index[t]] = 1.0
    return Y


__all__ = ["FAMILIES", "build_tags", "clip_jobs", "family_shares", "label_matrix", "load_manifest", "render_clip"]
