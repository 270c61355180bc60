"""Build a benchmark / training collection: works -> themes -> splits -> performances -> audio.

Steps
-----
1. **Select works**: candidates from the music21 corpus by category (or a user folder, or a fixed list)
   in an order shuffled by the seed; each is parsed (with a time limit, in worker processes, cached
   under ``<out>/cache/scores``) and taken until the estimated audio duration reaches ``hours``.
2. **Themes**: openings and prominent phrases of the top voice, notated in C, and their occurrences
   (:mod:`mirsearch.datasets.themes`); works without a usable theme are dropped.
3. **Splits**: works linked by a shared theme (the same chorale tune) form a family; families are ordered
   by a hash of ``(seed, family)`` and cut into train / validation / test by the split fractions. With
   a preset that asks for a minimum number of test themes, more works are added until it is reached.
4. **Versions**: per work ``versions`` performances (:mod:`mirsearch.datasets.performance`), rendered in
   ``jobs`` worker processes (:mod:`mirsearch.datasets.render`). Each finished version leaves an audio
   file, its performed MIDI and a record (``records/<version>.json``) written atomically; a rebuild
   skips versions whose record matches the plan, so an interrupted build resumes where it stopped.
5. **Manifest**: ``manifest.json`` (deterministic for a seed) and ``build_info.json`` (timings, skipped
   scores, failures).

Steps 1-3 are in :mod:`mirsearch.datasets.selection`, the rendering jobs of step 4 in
:mod:`mirsearch.datasets.jobs` (run by :class:`mirsearch.datasets.workers.Workers`), the manifest in
:mod:`mirsearch.datasets.assemble`; this module holds the presets and the driver, :func:`build_dataset`.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from mirsearch import __version__
from mirsearch.datasets.assemble import build_manifest, display_title
from mirsearch.datasets.corpus import ScoreData
from mirsearch.datasets.jobs import load_record, plan_hash, render_job
from mirsearch.datasets.manifest import MANIFEST_NAME, SPLITS, Dataset, write_json_atomic
from mirsearch.datasets.performance import sample_params
from mirsearch.datasets.selection import assign_splits, choose_works
from mirsearch.datasets.themes import ExtractedTheme, top_part, work_families
from mirsearch.datasets.workers import Workers
from mirsearch.errors import InputError, MirsearchError, ParameterError

__all__ = [
    "DEFAULT_SOUNDFONTS",
    "PRESETS",
    "BuildReport",
    "Preset",
    "assign_splits",
    "build_dataset",
    "display_title",
    "resolve_soundfont",
]

logger = logging.getLogger(__name__)

SOUNDFONT_DIRS = ("/usr/share/sounds/sf2", "/usr/share/sounds/sf3", "/usr/share/soundfonts")
DEFAULT_SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2")


@dataclass(frozen=True)
class Preset:
    """Settings of a named build (every field can be overridden by :func:`build_dataset` options).

    Attributes
    ----------
    name : str
    categories : dict
        Corpus category -> share of the audio hours (ignored when ``sources`` is set).
    sources : tuple of str
        Explicit source list (all are used, in order, no hour target).
    measures : int or None
        Keep only the first measures of every work.
    hours : float or None
        Target audio duration over all splits (None: use every candidate).
    versions : int
        Versions per work.
    fractions : dict
        Split -> fraction of the works (families).
    max_themes, max_themes_long : int
        Themes per work; works longer than ``long_seconds`` (nominal) may have ``max_themes_long``.
    min_test_themes : int
        Add works until the test split has this many themes (0: no minimum).
    min_seconds, max_seconds : float
        Nominal duration limits of a work.
    """

    name: str
    categories: dict = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    measures: int | None = None
    hours: float | None = 5.0
    versions: int = 3
    fractions: dict = field(default_factory=lambda: {"train": 0.6, "validation": 0.15, "test": 0.25})
    max_themes: int = 4
    max_themes_long: int = 6
    long_seconds: float = 100.0
    min_test_themes: int = 0
    min_seconds: float = 10.0
    max_seconds: float = 480.0
    sample_rate: int = 22050
    lossy: bool = True
    key_change: bool = True


_CATEGORY_SHARES = {"chorale": 0.5, "vocal": 0.3, "quartet": 0.15, "other": 0.05}

PRESETS: dict[str, Preset] = {
    "standard": Preset(
        name="standard",
        categories=dict(_CATEGORY_SHARES),
        hours=20.0,
        fractions={"train": 0.55, "validation": 0.15, "test": 0.30},
        min_test_themes=300,
    ),
    "fixture": Preset(
        name="fixture",
        sources=(
            "corpus:bach/bwv66.6.mxl",
            "corpus:bach/bwv101.7.mxl",
            "corpus:bach/bwv269.mxl",
            "corpus:airdsAirs/book1.abc#3",
        ),
        measures=8,
        hours=None,
        versions=2,
        fractions={"train": 0.5, "validation": 0.25, "test": 0.25},
        max_themes=3,
        min_seconds=3.0,
    ),
    "custom": Preset(name="custom", categories=dict(_CATEGORY_SHARES)),
}


@dataclass
class BuildReport:
    """What a build did.

    Attributes
    ----------
    root : Path
    works : int
        Works in the dataset (all splits).
    themes : dict
        Split -> number of themes.
    rendered, reused, failed : int
        Versions rendered now, found finished from an earlier run, failed to render.
    skipped_scores : list of (str, str)
        ``(source, reason)`` of scores that could not be parsed (or timed out).
    unused_scores : list of (str, str)
        ``(source, reason)`` of parsed scores left out (duration out of range, no usable theme).
    hours : dict
        Split -> hours of audio (rendered splits only).
    seconds : float
        Wall-clock time of the build.
    """

    root: Path
    works: int = 0
    themes: dict = field(default_factory=dict)
    rendered: int = 0
    reused: int = 0
    failed: int = 0
    skipped_scores: list = field(default_factory=list)
    unused_scores: list = field(default_factory=list)
    render_failures: list = field(default_factory=list)
    hours: dict = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "root": str(self.root),
            "works": self.works,
            "themes": self.themes,
            "versions_rendered": self.rendered,
            "versions_reused": self.reused,
            "versions_failed": self.failed,
            "skipped_scores": [{"source": s, "reason": r} for s, r in self.skipped_scores],
            "unused_scores": [{"source": s, "reason": r} for s, r in self.unused_scores],
            "render_failures": [{"version": v, "reason": r} for v, r in self.render_failures],
            "hours": self.hours,
            "seconds": round(self.seconds, 1),
        }


def resolve_soundfont(name: str | os.PathLike) -> str:
    """Absolute path of a SoundFont given as a path or as a file name in the system folders."""
    path = Path(name)
    if path.is_file():
        return str(path.resolve())
    for folder in SOUNDFONT_DIRS:
        cand = Path(folder) / str(name)
        if cand.is_file():
            return str(cand)
    raise InputError(f"{name}: SoundFont not found (give a path, or a file name in {', '.join(SOUNDFONT_DIRS)})")


def build_dataset(
    out_dir: str | os.PathLike,
    *,
    preset: str | Preset = "custom",
    hours: float | None = None,
    versions: int | None = None,
    seed: int = 0,
    scores: str | os.PathLike | None = None,
    soundfonts: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
    jobs: int = 2,
    progress: bool = True,
    time_limit: float = 20.0,
    reuse_split: str | os.PathLike | None = None,
) -> BuildReport:
    """Build (or resume building) a dataset in ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Dataset folder; created if needed. A finished version found there is reused.
    preset : {"custom", "standard", "fixture"} or Preset
        Base settings; ``"standard"`` is the documented benchmark (>= 10 h, >= 300 test themes).
    hours : float > 0, optional
        Target audio hours over all splits (overrides the preset; switches off its minimum number of
        test themes).
    versions : int > 0, optional
        Versions per work.
    seed : int
        Seed of every random choice; the same seed gives the same manifest.
    scores : path, optional
        Folder of MusicXML / MIDI / kern / ABC files used instead of the music21 corpus.
    soundfonts : sequence of str, optional
        SoundFonts for the rendered splits (paths or names in the system folders); default FluidR3_GM
        and TimGM6mb.
    splits : sequence of str, optional
        Splits to render (default all). Works are still chosen and split over all splits, so that a
        build with ``splits=["test"]`` and another SoundFont makes a test set for the same works.
    jobs : int > 0
        Worker processes for parsing and rendering.
    progress : bool
        Show a tqdm progress bar on stderr.
    time_limit : float > 0
        Seconds allowed for parsing one score.
    reuse_split : path, optional
        An existing dataset whose works and split assignment are reused as they are.

    Returns
    -------
    BuildReport
    """
    start_time = time.perf_counter()
    cfg, render_splits = _settings(preset, hours=hours, versions=versions, jobs=jobs, splits=splits)
    fonts = _soundfonts(soundfonts)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    report = BuildReport(root=root)
    pool = Workers(jobs)
    try:
        scores_sel, split_of, themes, report.skipped_scores, report.unused_scores = choose_works(
            cfg,
            seed=seed,
            scores=scores,
            cache_dir=root / "cache" / "scores",
            pool=pool,
            time_limit=time_limit,
            reuse_split=reuse_split,
            hours_given=hours is not None,
            jobs=jobs,
        )
        plan = [
            job
            for s in scores_sel
            if split_of[s.work_id] in render_splits
            for job in _plan_versions(s, split_of[s.work_id], themes, cfg=cfg, seed=seed, fonts=fonts, root=root)
        ]
        records = _render(plan, root=root, pool=pool, report=report, progress=progress)
    finally:
        pool.close()
    shutil.rmtree(root / "tmp", ignore_errors=True)

    manifest = build_manifest(
        cfg,
        seed=seed,
        scores_sel=scores_sel,
        split_of=split_of,
        themes=themes,
        families=work_families(themes),
        records=records,
        jobs_all=plan,
        fonts=fonts,
        render_splits=render_splits,
        scores_dir=scores,
    )
    _finish(report, manifest, render_splits=render_splits, start_time=start_time, jobs=jobs)
    return report


def _soundfonts(soundfonts: Sequence[str] | None) -> tuple[str, ...]:
    """Resolved SoundFont paths (default :data:`DEFAULT_SOUNDFONTS`); checks that FluidSynth is installed."""
    from mirsearch.datasets.render import fluidsynth_available

    fonts = tuple(resolve_soundfont(f) for f in (soundfonts or DEFAULT_SOUNDFONTS))
    if not fluidsynth_available():
        raise MirsearchError("fluidsynth: program not found (install the Debian package fluidsynth)")
    return fonts


def _finish(report: BuildReport, manifest: dict, *, render_splits, start_time: float, jobs: int) -> None:
    """Write ``manifest.json`` and ``build_info.json``; fill the report's counts, hours and time."""
    root = report.root
    write_json_atomic(root / MANIFEST_NAME, manifest)
    report.works = len(manifest["works"])
    summary = Dataset(root, manifest).summary()
    report.themes = {s: summary[s]["themes"] for s in summary}
    report.hours = {s: summary[s]["hours"] for s in summary if s in render_splits}
    report.seconds = time.perf_counter() - start_time
    info = {**report.to_dict(), "summary": summary, "mirsearch": __version__, "jobs": jobs}
    write_json_atomic(root / "build_info.json", info)


def _settings(preset, *, hours, versions, jobs: int, splits) -> tuple[Preset, tuple[str, ...]]:
    """The preset with the overrides applied, and the splits to render (all checked)."""
    cfg = PRESETS[preset] if isinstance(preset, str) and preset in PRESETS else preset
    if not isinstance(cfg, Preset):
        raise ParameterError(f"preset={preset!r} is not one of {sorted(PRESETS)}")
    if hours is not None:
        if not hours > 0:
            raise ParameterError(f"hours={hours} must be > 0")
        cfg = replace(cfg, hours=float(hours), min_test_themes=0)
    if versions is not None:
        if versions < 1:
            raise ParameterError(f"versions={versions} must be >= 1")
        cfg = replace(cfg, versions=int(versions))
    if jobs < 1:
        raise ParameterError(f"jobs={jobs} must be >= 1")
    render_splits = tuple(splits) if splits else SPLITS
    for s in render_splits:
        if s not in SPLITS:
            raise ParameterError(f"splits: {s!r} is not one of {', '.join(SPLITS)}")
    return cfg, render_splits


def _plan_versions(
    s: ScoreData, split: str, themes: dict[str, list[ExtractedTheme]], *, cfg: Preset, seed: int, fonts, root: Path
) -> list[dict]:
    """The rendering jobs (:mod:`mirsearch.datasets.jobs`) of the ``cfg.versions`` versions of one work."""
    top = top_part(s)
    occ = [
        {"theme": t.theme_id, "onsets_q": list(o.onsets), "end_q": o.end, "shift": o.shift}
        for ths in themes.values()
        for t in ths
        for o in t.occurrences
        if o.work_id == s.work_id
    ]
    used: list[str] = []
    out = []
    for v in range(cfg.versions):
        params = sample_params(
            s,
            seed=seed,
            version=v,
            soundfonts=fonts,
            top_part=top,
            key_change=cfg.key_change,
            lossy=cfg.lossy,
            used_ensembles=used,
        )
        used.append(params.ensemble)
        vid = f"{s.work_id}_v{v}"
        job = {
            "root": str(root),
            "version_id": vid,
            "split": split,
            "score": s,
            "params": params.to_json(),
            "occurrences": occ,
            "sample_rate": cfg.sample_rate,
            "audio_stem": f"audio/{split}/{vid}",
        }
        job["plan"] = plan_hash(job)
        out.append(job)
    return out


def _render(plan: list[dict], *, root: Path, pool: Workers, report: BuildReport, progress: bool) -> dict[str, dict]:
    """Records of every planned version: reused when finished earlier, else rendered now (failures are
    counted in ``report``)."""
    records: dict[str, dict] = {}
    todo = []
    for job in plan:
        rec = load_record(root, job)
        if rec is not None:
            records[job["version_id"]] = rec
        else:
            todo.append(job)
    report.reused = len(records)
    logger.info("%d versions planned, %d already rendered", len(plan), len(records))
    if not todo:
        return records
    from tqdm import tqdm

    bar = tqdm(total=len(todo), desc="rendering", unit="version", disable=not progress, smoothing=0.05)
    crashed = lambda job: {"error": "worker process crashed", "id": job["version_id"]}  # noqa: E731
    for _, res in pool.run(render_job, todo, crashed=crashed):
        if "error" in res:
            report.failed += 1
            report.render_failures.append((res["id"], res["error"]))
            logger.warning("version %s failed: %s", res["id"], res["error"])
        else:
            records[res["id"]] = res
            report.rendered += 1
        bar.update(1)
    bar.close()
    return records
