"""Single-instrument stems for the auto-tagger: short clips of one instrument family, mixed while training.

``mirsearch dataset build --preset tag-stems --out data/tag_stems`` (:func:`build_tag_stems`):

- **Works and splits** are those of :mod:`mirsearch.datasets.tags` for the same seed (the same corpus works and
  the same split per work). Only train and validation works get stems: the test pieces stay unheard.
- **Stems**: per work :data:`STEMS_PER_WORK` clips of :data:`STEM_SECONDS` s, each one family of
  :data:`~mirsearch.describe.tag_vocabulary.FAMILIES` (every family once per work, so no family is tied to a
  piece), one random General MIDI program of that family playing one part or all parts of the work (the bass
  family plays the lowest part, an octave lower when it sits high; drums play a kit pattern alone), with its own
  performance and recording chain (room, filters, noise). The SoundFont is drawn from :data:`STEM_FONTS`, which
  never holds the test split's font.
- **Real guitar**: the guitar stems of the Frets on Fire song packs (``data/real/pkgs/fretsonfire-songs-*``), cut
  into :data:`STEM_SECONDS` s clips where they sound; one song in six goes to validation.

Labels: ``{"clip", "work_id", "split", "kind": "stem" | "real", "family", "soundfont", "programs", "audio",
"tags": [family]}``: a stem's only instrument is its family. Training mixes stems (and stems into the ensemble
clips of ``--preset tags``) so families are learnt inside mixtures (:mod:`mirsearch.training.tagger`). Clips are
``audio/<clip>.flac`` (16 kHz) and ``labels/<clip>.json``, written atomically; a rebuild resumes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_write_text
from mirsearch.datasets.corpus import PartData, ScoreData, parse_many, work_id_for
from mirsearch.datasets.performance import perform, sample_params, stable_seed
from mirsearch.datasets.tags import (
    CLIP_SR,
    TEST_FONTS,
    TagsBuildReport,
    _midi,
    _program,
    choose_sources,
    metre_of,
    split_of,
)
from mirsearch.describe.tag_vocabulary import FAMILIES
from mirsearch.errors import MirsearchError, ParameterError

logger = logging.getLogger(__name__)

#: stem length (s)
STEM_SECONDS = 5.0
#: stems per work (every family once; more cycles through them again)
STEMS_PER_WORK = 8
#: SoundFonts of the stems and their weights (never the test split's TimGM6mb)
STEM_FONTS = (
    ("/usr/share/sounds/sf2/FluidR3_GM.sf2", 0.7),
    ("/usr/share/sounds/sf3/MuseScore_General.sf3", 0.15),
    ("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3", 0.15),
)
#: folder of the extracted real-audio packages (``<pkgs>/fretsonfire-songs-*``)
REAL_PACKAGES = Path(__file__).resolve().parents[3] / "data" / "real" / "pkgs"
#: lead-in before a stem's window and the length of its slot in a shared rendering (s)
_LEAD, _SLOT = 0.5, 7.5


@dataclass(frozen=True)
class StemJob:
    """One stem to render: the work, its family, the split, the SoundFont and the output folder."""

    clip_id: str
    score: dict
    family: str
    index: int
    split: str
    soundfont: str
    root: str
    seed: int


def plan_stems(scores: list[ScoreData], *, seed: int, root: Path, per_work: int = STEMS_PER_WORK,
               fonts: tuple = STEM_FONTS, splits: tuple = ("train", "validation")) -> list[StemJob]:  # fmt: skip
    """Every stem of the works of ``splits`` (never test; deterministic for a seed), in a seeded order; the SoundFont
    of each stem drawn from ``fonts`` (``((path, weight), ...)``)."""
    weights = np.array([w for _, w in fonts])
    fonts = [f for f, _ in fonts]
    jobs = []
    for score in scores:
        split = split_of(score.work_id, seed=seed)
        if split == "test" or split not in splits:
            continue
        rng = np.random.default_rng(stable_seed(seed, score.work_id, "stems"))
        order = [FAMILIES[i] for i in rng.permutation(len(FAMILIES))]
        for k in range(per_work):
            font = str(rng.choice(fonts, p=weights / weights.sum()))
            cid = f"{score.work_id}-s{k}"
            jobs.append(StemJob(cid, score.to_json(), order[k % len(order)], k, split, font, str(root), seed))
    jobs.sort(key=lambda j: stable_seed(seed, j.clip_id, "order"))  # a partial build is a fair sample
    return jobs


def stem_score(score: ScoreData, family: str, rng: np.random.Generator) -> tuple[ScoreData, list[int]]:
    """The score a stem plays (the bass part an octave down when it sits above C3) and the parts that sound."""
    means = [p.mean_pitch for p in score.parts]
    if family == "bass":
        low = int(np.argmin(means))
        part = score.parts[low]
        if means[low] > 48:
            part = PartData(part.name, tuple((p - 12, o, d, f) for p, o, d, f in part.notes))
        parts = tuple(part if i == low else p for i, p in enumerate(score.parts))
        return replace(score, parts=parts), [low]
    if family == "drums" or len(score.parts) == 1 or rng.random() < 0.5:
        return score, [int(rng.integers(len(score.parts)))] if family != "drums" else []
    return score, list(range(len(score.parts)))


def _stem_midi(job: StemJob) -> tuple:
    """``(pretty_midi object, sounding programs, recording params, seed)`` of one stem (its window from 0 s)."""
    rng = np.random.default_rng(stable_seed(job.seed, job.clip_id, "stem"))
    score, playing = stem_score(ScoreData.from_json(job.score), job.family, rng)
    prog = _program(rng, job.family) if job.family != "drums" else None
    programs = [[prog] if i in playing else [] for i in range(len(score.parts))]
    params = sample_params(score, seed=job.seed, version=100 + job.index, soundfonts=[job.soundfont], top_part=0,
                           key_change=True, lossy=False)  # fmt: skip
    perf = perform(score, params)
    for _ in range(4):  # a window where the stem sounds
        t0 = float(rng.uniform(0.0, max(perf.end - STEM_SECONDS - 0.3, 0.0)))
        pm, sounding = _midi(perf, programs, job.family == "drums", t0=t0, t1=t0 + STEM_SECONDS, lead=_LEAD,
                             rng=rng, metre=metre_of(score.time_signature), tempo_map=perf.tempo_map)  # fmt: skip
        if sounding or (job.family == "drums" and pm.instruments):
            return pm, sounding, params.recording, params.seed
    raise MirsearchError(f"{job.clip_id}: no note sounds in the stem")


def render_stems(group: list[StemJob]) -> list[dict]:
    """Render stems of one SoundFont in one FluidSynth call (each in its own :data:`_SLOT` s slot, cut apart,
    then each through its own recording chain); stems whose labels exist are skipped. Returns the records
    (``{"clip", "error"}`` for a stem that failed)."""
    import tempfile

    import pretty_midi

    from mirsearch.datasets.render import apply_recording, encode, render_midi

    root = Path(group[0].root)
    out, todo = [], []
    for job in group:
        label_path = root / "labels" / f"{job.clip_id}.json"
        if label_path.is_file():
            out.append(json.loads(label_path.read_text()))
            continue
        try:
            todo.append((job, *_stem_midi(job)))
        except MirsearchError as exc:
            out.append({"clip": job.clip_id, "error": str(exc).splitlines()[0][:200]})
    if not todo:
        return out
    pm = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)
    for slot, (_, stem, *_) in enumerate(todo):
        for inst in stem.instruments:
            shifted = pretty_midi.Instrument(program=inst.program, is_drum=inst.is_drum)
            shifted.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start + slot * _SLOT, n.end + slot * _SLOT)
                             for n in inst.notes]  # fmt: skip
            pm.instruments.append(shifted)
    with tempfile.TemporaryDirectory(prefix="mirsearch-stems-") as tmp:
        mid = Path(tmp) / "stems.mid"
        pm.write(str(mid))
        y_all = render_midi(mid, soundfont=group[0].soundfont, sr=CLIP_SR)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    n = int(STEM_SECONDS * CLIP_SR)
    for slot, (job, _, sounding, recording, seed) in enumerate(todo):
        a = int((slot * _SLOT + _LEAD) * CLIP_SR)
        y = np.pad(y_all, (0, max(0, a + n - len(y_all))))[a - int(_LEAD * CLIP_SR) : a + n]
        try:
            y = apply_recording(y, sr=CLIP_SR, recording=recording, seed=seed)[int(_LEAD * CLIP_SR) :][:n]
        except MirsearchError as exc:
            out.append({"clip": job.clip_id, "error": str(exc).splitlines()[0][:200]})
            continue
        audio = encode(np.pad(y, (0, n - len(y))), root / "audio" / job.clip_id, sr=CLIP_SR, encoding="flac")
        record = {"clip": job.clip_id, "work_id": job.score["work_id"], "split": job.split,
                  "kind": "stem", "family": job.family, "soundfont": Path(job.soundfont).name,
                  "programs": sorted(sounding), "audio": str(audio.relative_to(root)),
                  "tags": [job.family]}  # fmt: skip
        atomic_write_text(root / "labels" / f"{job.clip_id}.json", json.dumps(record, sort_keys=True) + "\n")
        out.append(record)
    return out


def _groups(plan: list[StemJob], size: int = 8) -> list[list[StemJob]]:
    """The plan in groups of up to ``size`` stems of one SoundFont (plan order kept within a font)."""
    by_font: dict[str, list[StemJob]] = {}
    for job in plan:
        by_font.setdefault(job.soundfont, []).append(job)
    groups = [jobs[a : a + size] for jobs in by_font.values() for a in range(0, len(jobs), size)]
    groups.sort(key=lambda g: stable_seed(g[0].seed, g[0].clip_id, "group"))
    return groups


def _render_or_fail(group: list[StemJob]) -> list[dict]:
    try:
        return render_stems(group)
    except MirsearchError as exc:
        return [{"clip": job.clip_id, "error": str(exc).splitlines()[0][:200]} for job in group]


# ----------------------------------------------------------------------------------------------- real guitar
def real_guitar_stems(root: Path, *, packages: Path = REAL_PACKAGES, seed: int = 0) -> list[dict]:
    """Clips of the Frets on Fire guitar stems (``guitar.ogg`` of every song), :data:`STEM_SECONDS` s each where
    the stem sounds (active RMS within 30 dB of the song's loudest clip); one song in six is validation."""
    from mirsearch.audio import load_audio
    from mirsearch.datasets.render import encode

    songs = sorted(packages.glob("fretsonfire-songs-*/usr/share/games/fretsonfire/data/songs/*/*/guitar.ogg"))
    out = []
    for s, path in enumerate(sorted(songs, key=lambda p: stable_seed(seed, p.parent.name, "fof"))):
        name = "fof-" + "".join(c if c.isalnum() else "_" for c in path.parent.name.lower())
        split = "validation" if s % 6 == 5 else "train"
        done = sorted((root / "labels").glob(f"{name}-*.json"))
        if done:
            out += [json.loads(p.read_text()) for p in done]
            continue
        y, _ = load_audio(path, sr=CLIP_SR, min_duration=1.0)
        n = int(STEM_SECONDS * CLIP_SR)
        chunks = y[: len(y) // n * n].reshape(-1, n)
        rms = np.sqrt((chunks.astype(np.float64) ** 2).mean(axis=1))
        (root / "audio").mkdir(parents=True, exist_ok=True)
        (root / "labels").mkdir(parents=True, exist_ok=True)
        for k in np.flatnonzero(rms > rms.max() * 10 ** (-30 / 20)):
            cid = f"{name}-{k:03d}"
            audio = encode(chunks[k], root / "audio" / cid, sr=CLIP_SR, encoding="flac")
            record = {"clip": cid, "work_id": name, "split": split, "kind": "real", "family": "guitar",
                      "soundfont": None, "programs": [], "audio": str(audio.relative_to(root)), "tags": ["guitar"],
                      "source": str(path.relative_to(packages))}  # fmt: skip
            atomic_write_text(root / "labels" / f"{cid}.json", json.dumps(record, sort_keys=True) + "\n")
            out.append(record)
    return out


# ----------------------------------------------------------------------------------------------- driver
def build_tag_stems(out_dir: str | os.PathLike, *, seed: int = 0, jobs: int = 1, time_limit: float = 30.0,
                    per_work: int = STEMS_PER_WORK, real: bool = True, fonts: tuple = STEM_FONTS,
                    splits: tuple = ("train", "validation")) -> TagsBuildReport:  # fmt: skip
    """Build (or resume) the stems in ``out_dir``; see the module docstring.

    Parameters
    ----------
    out_dir : path
    seed : int
        The seed of ``--preset tags`` whose works and splits are used.
    jobs : int > 0
        Worker processes for parsing and rendering.
    time_limit : float > 0
        Seconds allowed to parse one score.
    per_work : int > 0
        Stems per train / validation work.
    real : bool
        Add the Frets on Fire guitar stems (when the package is extracted).
    fonts : tuple of (path, weight)
        SoundFonts of the stems (default :data:`STEM_FONTS`); another font for the validation works only gives a
        held-out SoundFont to choose models on (one of the project's allowed fonts that the training stems do not use,
        never the test's).
    splits : tuple of str
        Splits whose works get stems (``test`` is refused).
    """
    from mirsearch.datasets.workers import Workers

    if jobs < 1 or per_work < 1:
        raise ParameterError(f"jobs={jobs} and per_work={per_work} must be >= 1")
    if "test" in splits or any(Path(f).name in {Path(t).name for t in TEST_FONTS} for f, _ in fonts):
        raise ParameterError(f"splits={splits} / fonts: stems never use the test split or its SoundFont")
    start = time.perf_counter()
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    chosen = choose_sources(seed)
    pool = Workers(jobs)
    try:
        items = [(s, work_id_for(s)) for s, _ in chosen]
        parsed = parse_many(items, cache_dir=root / "cache" / "scores", time_limit=time_limit, pool=pool)
        scores = [p for p in parsed if isinstance(p, ScoreData) and p.n_notes]
        plan = plan_stems(scores, seed=seed, root=root, per_work=per_work, fonts=fonts, splits=splits)
        logger.info("tag stems: %d works, %d stems planned", len(scores), len(plan))
        records = [r for rs in pool.map(_render_or_fail, _groups(plan)) for r in rs]
    finally:
        pool.close()
    if real:
        records += real_guitar_stems(root, seed=seed)
    ok = sorted((r for r in records if "error" not in r), key=lambda r: r["clip"])
    for r in records:
        if "error" in r:
            logger.warning("stem %s failed: %s", r["clip"], r["error"])
    atomic_write_text(root / "manifest.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in ok))
    counts = {name: sum(r["split"] == name for r in ok) for name in ("train", "validation")}
    report = TagsBuildReport(root, len(scores), counts, len(records) - len(ok), time.perf_counter() - start)
    atomic_write_text(root / "build_info.json", json.dumps(report.to_dict(), indent=2) + "\n")
    return report


__all__ = ["build_tag_stems", "plan_stems", "real_guitar_stems", "render_stems", "stem_score"]
