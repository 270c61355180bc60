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
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import random
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path

from mirsearch import __version__
from mirsearch.datasets import corpus as corpus_mod
from mirsearch.datasets.corpus import ParseFailure, ScoreData
from mirsearch.datasets.manifest import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_NAME,
    SPLITS,
    Dataset,
    write_json_atomic,
)
from mirsearch.datasets.performance import RANGES, PerformanceParams, sample_params, stable_seed
from mirsearch.datasets.themes import ExtractedTheme, extract_themes, top_part, work_families
from mirsearch.errors import InputError, MirsearchError, ParameterError

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


# --------------------------------------------------------------------------------------------------
# helpers


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


def _uniform(*parts: object) -> float:
    return stable_seed(*parts) / float(1 << 63)


def assign_splits(families: dict[str, str], fractions: dict[str, float], *, seed: int) -> dict[str, str]:
    """Split works by family: families in hash order are cut by cumulative fractions.

    Parameters
    ----------
    families : dict
        ``work_id -> family id``; a family never spans two splits.
    fractions : dict
        ``split -> fraction`` (normalised); a split with a positive fraction gets at least one family
        when there are enough families.
    seed : int

    Returns
    -------
    dict
        ``work_id -> split``.
    """
    names = [s for s in fractions if fractions[s] > 0]
    if not names:
        raise ParameterError(f"fractions={fractions}: at least one split needs a positive fraction")
    total = sum(fractions[s] for s in names)
    fams = sorted(set(families.values()), key=lambda f: (_uniform(seed, "split", f), f))
    n = len(fams)
    counts = {s: int(round(fractions[s] / total * n)) for s in names}
    if n >= len(names):
        for s in names:
            counts[s] = max(counts[s], 1)
    # fix rounding so that the counts add up to n (largest split absorbs the difference)
    largest = max(names, key=lambda s: fractions[s])
    counts[largest] += n - sum(counts.values())
    out: dict[str, str] = {}
    k = 0
    fam_split = {}
    for s in names:
        for f in fams[k : k + counts[s]]:
            fam_split[f] = s
        k += counts[s]
    for wid, fam in families.items():
        out[wid] = fam_split[fam]
    return out


class _Workers:
    """Worker processes (fork) that survive a crashing task.

    When a worker dies (a segfault in a native library), the pending tasks are run one at a time until
    the one that crashes again is found; it gets ``crashed(item)`` as its result, and the others go on
    in parallel.
    """

    def __init__(self, n: int) -> None:
        self.n = int(n)
        self._ex: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._ex is None:
            self._ex = ProcessPoolExecutor(self.n, mp_context=multiprocessing.get_context("fork"))
        return self._ex

    def _reset(self) -> None:
        if self._ex is not None:
            self._ex.shutdown(wait=False, cancel_futures=True)
        self._ex = None

    def close(self) -> None:
        if self._ex is not None:
            self._ex.shutdown(wait=True, cancel_futures=True)
        self._ex = None

    def map(self, fn: Callable, items: Sequence) -> list:
        """Ordered results of ``fn`` over ``items`` (a crashed task raises :class:`MirsearchError`)."""

        def crashed(item):
            raise MirsearchError(f"a worker process crashed on {item!r:.80}")

        out = [None] * len(items)
        for i, res in self.run(fn, items, crashed=crashed):
            out[i] = res
        return out

    def run(self, fn: Callable, items: Sequence, *, crashed: Callable) -> Iterator[tuple[int, object]]:
        """Yield ``(index, fn(item))`` in completion order."""
        if self.n <= 1:
            for i, item in enumerate(items):
                yield i, fn(item)
            return
        pending = dict(enumerate(items))
        isolate = False
        while pending:
            ex = self._executor()
            if isolate:
                i = min(pending)
                try:
                    res = ex.submit(fn, pending[i]).result()
                except BrokenProcessPool:
                    logger.warning("a worker process crashed; giving up on one task")
                    self._reset()
                    res = crashed(pending[i])
                    isolate = False
                del pending[i]
                yield i, res
                continue
            futures = {ex.submit(fn, item): i for i, item in pending.items()}
            try:
                for fut in as_completed(futures):
                    i = futures[fut]
                    res = fut.result()
                    del pending[i]
                    yield i, res
            except BrokenProcessPool:
                logger.warning("a worker process crashed; running the %d pending tasks one by one", len(pending))
                self._reset()
                isolate = True


class _Selector:
    """Takes works category by category (by deficit of hours) until a duration target is met."""

    def __init__(
        self,
        candidates: dict[str, list[str]],
        shares: dict[str, float],
        *,
        parse: Callable[[list[str]], list[ScoreData | ParseFailure]],
        accept: Callable[[ScoreData], bool],
        estimate: Callable[[ScoreData], float],
        batch: int,
    ) -> None:
        self.candidates = candidates
        self.shares = shares
        self.parse = parse
        self.accept = accept
        self.estimate = estimate
        self.batch = batch
        self.pos = {c: 0 for c in candidates}
        self.buffer: dict[str, list] = {c: [] for c in candidates}
        self.seconds = {c: 0.0 for c in candidates}
        self.selected: list[ScoreData] = []
        self.failures: list[ParseFailure] = []
        self.rejected: list[tuple[str, str]] = []

    def _next(self, cat: str) -> ScoreData | ParseFailure | None:
        if not self.buffer[cat]:
            lst = self.candidates[cat]
            chunk = lst[self.pos[cat] : self.pos[cat] + self.batch]
            self.pos[cat] += len(chunk)
            if not chunk:
                return None
            self.buffer[cat] = list(self.parse(chunk))
        return self.buffer[cat].pop(0)

    def exhausted(self, cat: str) -> bool:
        return not self.buffer[cat] and self.pos[cat] >= len(self.candidates[cat])

    def extend_to(self, target_seconds: float | None) -> None:
        """Select more works until the estimated total reaches ``target_seconds`` (None: all)."""
        while True:
            total = sum(self.seconds.values())
            if target_seconds is not None and total >= target_seconds:
                return
            open_cats = [c for c in self.candidates if not self.exhausted(c) and self.shares.get(c, 0) > 0]
            if not open_cats:
                return
            cat = min(open_cats, key=lambda c: (self.seconds[c] / self.shares[c], c))
            res = self._next(cat)
            if res is None:
                continue
            if isinstance(res, ParseFailure):
                self.failures.append(res)
            elif self.accept(res):
                self.selected.append(res)
                self.seconds[cat] += self.estimate(res)
            else:
                self.rejected.append((res.source, f"not used: {res.nominal_seconds:.0f} s, {res.n_notes} notes"))


def _plan_hash(job: dict) -> str:
    text = json.dumps(
        {k: job[k] for k in ("version_id", "params", "occurrences", "sample_rate", "audio_stem")},
        sort_keys=True,
    )
    text += json.dumps(job["score"].to_json(), sort_keys=True)
    return hashlib.sha1(f"{FORMAT_VERSION}|{text}".encode()).hexdigest()


def _render_job(job: dict) -> dict:
    """Render one version (runs in a worker process); returns its record or ``{"error": ...}``."""
    from mirsearch.datasets.performance import perform, write_midi
    from mirsearch.datasets.render import ENCODINGS, apply_recording, encode, render_midi

    root = Path(job["root"])
    vid = job["version_id"]
    try:
        score: ScoreData = job["score"]
        params = PerformanceParams.from_json(job["params"])
        sr = int(job["sample_rate"])
        perf = perform(score, params)
        tmp_dir = root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp_mid = tmp_dir / f"{vid}.{os.getpid()}.mid"
        write_midi(perf, tmp_mid)
        y = render_midi(tmp_mid, soundfont=params.soundfont, sr=sr)
        y = apply_recording(y, sr=sr, recording=params.recording, seed=params.seed)
        stem = root / job["audio_stem"]
        audio = encode(y, stem, sr=sr, encoding=params.recording.encoding, quality=params.recording.quality)
        for ext, _, _ in ENCODINGS.values():  # an earlier plan may have used another encoding
            other = stem.with_name(stem.name + ext)
            if other != audio and other.exists():
                other.unlink()
        midi = root / "midi" / f"{vid}.mid"
        midi.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp_mid, midi)
        occurrences = []
        for occ in job["occurrences"]:
            onsets = [round(perf.onset_of(params.top_part, q), 4) for q in occ["onsets_q"]]
            end = max(float(perf.tempo_map(occ["end_q"])), onsets[-1] + 0.05)
            occurrences.append(
                {
                    "theme": occ["theme"],
                    "start": onsets[0],
                    "end": round(end, 4),
                    "onsets": onsets,
                    "transposition": int(occ["shift"] + params.transpose),
                    "score_start": occ["onsets_q"][0],
                    "score_end": occ["end_q"],
                }
            )
        occurrences.sort(key=lambda o: (o["start"], o["theme"]))
        record = {
            "id": vid,
            "work": score.work_id,
            "split": job["split"],
            "audio": audio.relative_to(root).as_posix(),
            "midi": midi.relative_to(root).as_posix(),
            "duration": round(len(y) / sr, 4),
            "sample_rate": sr,
            "encoding": params.recording.encoding,
            "soundfont": Path(params.soundfont).name,
            "ensemble": params.ensemble,
            "programs": list(params.programs),
            "transposition": params.transpose,
            "tuning_cents": params.tuning_cents,
            "tempo_factor": params.tempo_factor,
            "tempo_map": perf.tempo_map.to_json(),
            "params": {**params.to_json(), "soundfont": Path(params.soundfont).name},
            "occurrences": occurrences,
        }
        write_json_atomic(root / "records" / f"{vid}.json", {"plan": job["plan"], "version": record})
        return record
    except Exception as exc:  # noqa: BLE001 - a failed version is reported, the build goes on
        logger.debug("rendering %s failed", vid, exc_info=True)
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", "id": vid}


def display_title(score: ScoreData) -> str:
    """A readable title: the score's, unless it is only a file name (then e.g. ``"Chorale BWV 66.6"``)."""
    title = score.title.strip()
    if title and not re.search(r"\.(mxl|musicxml|xml|krn|abc|mid|midi)$", title, flags=re.I):
        return title
    m = re.match(r"corpus:bach/bwv([\w.-]+?)\.mxl$", score.source)
    if m:
        return f"Chorale BWV {m.group(1)}"
    return Path(score.source.partition("#")[0].removeprefix("corpus:")).stem


def _theme_name(score: ScoreData, theme: ExtractedTheme) -> str:
    who = score.composer or score.source.partition(":")[2].split("/")[0]
    what = display_title(score)
    label = "opening" if theme.kind == "opening" else f"theme from m. {theme.measure}"
    return f"{who}: {what}, {label}".strip(": ")


# --------------------------------------------------------------------------------------------------
# the build


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
    fonts = tuple(resolve_soundfont(f) for f in (soundfonts or DEFAULT_SOUNDFONTS))
    from mirsearch.datasets.render import fluidsynth_available

    if not fluidsynth_available():
        raise MirsearchError("fluidsynth: program not found (install the Debian package fluidsynth)")

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    cache_dir = root / "cache" / "scores"
    report = BuildReport(root=root)
    pool = _Workers(jobs)
    try:
        scores_sel, split_of, themes, skipped, unused = _choose_works(
            cfg,
            seed=seed,
            scores=scores,
            cache_dir=cache_dir,
            pool=pool,
            time_limit=time_limit,
            reuse_split=reuse_split,
            hours_given=hours is not None,
            jobs=jobs,
        )
        report.skipped_scores = skipped
        report.unused_scores = unused
        by_id = {s.work_id: s for s in scores_sel}
        families = work_families(themes)

        # plan the versions
        jobs_all = []
        for s in scores_sel:
            if split_of[s.work_id] not in render_splits:
                continue
            top = top_part(s)
            occ = [
                {"theme": t.theme_id, "onsets_q": list(o.onsets), "end_q": o.end, "shift": o.shift}
                for ths in themes.values()
                for t in ths
                for o in t.occurrences
                if o.work_id == s.work_id
            ]
            used: list[str] = []
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
                    "split": split_of[s.work_id],
                    "score": s,
                    "params": params.to_json(),
                    "occurrences": occ,
                    "sample_rate": cfg.sample_rate,
                    "audio_stem": f"audio/{split_of[s.work_id]}/{vid}",
                }
                job["plan"] = _plan_hash(job)
                jobs_all.append(job)

        records: dict[str, dict] = {}
        todo = []
        for job in jobs_all:
            rec = _load_record(root, job)
            if rec is not None:
                records[job["version_id"]] = rec
            else:
                todo.append(job)
        report.reused = len(records)
        logger.info("%d versions planned, %d already rendered", len(jobs_all), len(records))

        if todo:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), desc="rendering", unit="version", disable=not progress, smoothing=0.05)
            crashed = lambda job: {"error": "worker process crashed", "id": job["version_id"]}  # noqa: E731
            for _, res in pool.run(_render_job, todo, crashed=crashed):
                if "error" in res:
                    report.failed += 1
                    report.render_failures.append((res["id"], res["error"]))
                    logger.warning("version %s failed: %s", res["id"], res["error"])
                else:
                    records[res["id"]] = res
                    report.rendered += 1
                bar.update(1)
            bar.close()
    finally:
        pool.close()
    shutil.rmtree(root / "tmp", ignore_errors=True)

    manifest = _manifest(
        cfg,
        seed=seed,
        scores_sel=scores_sel,
        by_id=by_id,
        split_of=split_of,
        themes=themes,
        families=families,
        records=records,
        jobs_all=jobs_all,
        fonts=fonts,
        render_splits=render_splits,
        scores_dir=scores,
    )
    write_json_atomic(root / MANIFEST_NAME, manifest)
    report.works = len(scores_sel)
    ds = Dataset(root, manifest)
    summary = ds.summary()
    report.themes = {s: summary[s]["themes"] for s in summary}
    report.hours = {s: summary[s]["hours"] for s in summary if s in render_splits}
    report.seconds = time.perf_counter() - start_time
    info = {**report.to_dict(), "summary": summary, "mirsearch": __version__, "jobs": jobs}
    write_json_atomic(root / "build_info.json", info)
    return report


def _load_record(root: Path, job: dict) -> dict | None:
    path = root / "records" / f"{job['version_id']}.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    rec = data.get("version", {})
    if data.get("plan") != job["plan"] or not (root / rec.get("audio", "\0")).is_file():
        return None
    return rec


def _choose_works(
    cfg: Preset,
    *,
    seed: int,
    scores: str | os.PathLike | None,
    cache_dir: Path,
    pool,
    time_limit: float,
    reuse_split: str | os.PathLike | None,
    hours_given: bool,
    jobs: int,
) -> tuple[
    list[ScoreData], dict[str, str], dict[str, list[ExtractedTheme]], list[tuple[str, str]], list[tuple[str, str]]
]:
    """Select and parse works, extract themes, assign splits."""
    work_ids: dict[str, str] = {}
    fixed_split: dict[str, str] | None = None
    scores_root = Path(scores).resolve() if scores is not None else None

    if reuse_split is not None:
        old = Dataset.load(reuse_split)
        old_cache = Path(reuse_split) / "cache" / "scores"
        if old_cache.is_dir() and old_cache.resolve() != cache_dir.resolve():
            cache_dir.mkdir(parents=True, exist_ok=True)
            for f in old_cache.glob("*.json"):
                if not (cache_dir / f.name).exists():
                    shutil.copyfile(f, cache_dir / f.name)
        old_sources = []
        for w in old.manifest["works"]:
            src = w["source"]
            if not src.startswith("corpus:"):
                if scores_root is None:
                    raise ParameterError(f"reuse_split: {reuse_split} was built from a scores folder; pass it again")
                src = str(scores_root / src)
            old_sources.append(src)
            work_ids[src] = w["id"]
        sources, shares = {"reused": old_sources}, {"reused": 1.0}
        fixed_split = {w["id"]: w["split"] for w in old.manifest["works"]}
        target = None
    elif scores_root is not None:
        files = corpus_mod.user_sources(scores_root)
        if not files:
            raise InputError(f"{scores_root}: no score files ({', '.join(corpus_mod.SCORE_EXTENSIONS)})")
        random.Random(stable_seed(seed, "order")).shuffle(files)
        sources, shares = {"user": files}, {"user": 1.0}
        target = cfg.hours if hours_given else None
    elif cfg.sources:
        sources, shares, target = {"fixed": list(cfg.sources)}, {"fixed": 1.0}, None
    else:
        sources, shares = {}, {}
        for cat, share in sorted(cfg.categories.items()):
            lst = corpus_mod.corpus_sources(cat)
            random.Random(stable_seed(seed, "order", cat)).shuffle(lst)
            sources[cat], shares[cat] = lst, share
        target = cfg.hours

    def wid_of(src: str) -> str:
        if src not in work_ids:
            wid = corpus_mod.work_id_for(src, root=scores_root if not src.startswith("corpus:") else None)
            if wid in work_ids.values():
                wid = corpus_mod.slugify(wid + Path(src.partition("#")[0]).suffix)
            work_ids[src] = wid
        return work_ids[src]

    def parse(chunk: list[str]) -> list[ScoreData | ParseFailure]:
        res = corpus_mod.parse_many(
            [(s, wid_of(s)) for s in chunk], cache_dir=cache_dir, time_limit=time_limit, pool=pool
        )
        if cfg.measures:
            res = [r.truncated(cfg.measures) if isinstance(r, ScoreData) else r for r in res]
        return res

    est_factor = 1.08 * cfg.versions

    def estimate(s: ScoreData) -> float:
        return est_factor * s.nominal_seconds + 3.0 * cfg.versions

    def accept(s: ScoreData) -> bool:
        if fixed_split is not None or cfg.sources:
            return True
        return cfg.min_seconds <= s.nominal_seconds <= cfg.max_seconds and s.n_notes >= 12

    selector = _Selector(sources, shares, parse=parse, accept=accept, estimate=estimate, batch=max(2, jobs))
    target_seconds = None if target is None else target * 3600.0
    while True:
        selector.extend_to(target_seconds)
        chosen = list(selector.selected)
        limits = {
            s.work_id: cfg.max_themes_long if s.nominal_seconds > cfg.long_seconds else cfg.max_themes for s in chosen
        }
        themes = extract_themes(chosen, max_themes=limits)
        without = {w for w, ths in themes.items() if not ths}
        if fixed_split is None:
            kept = [s for s in chosen if s.work_id not in without]
        else:
            kept = chosen
        kept_ids = {s.work_id for s in kept}
        themes = {w: _restrict(ths, kept_ids) for w, ths in themes.items() if w in kept_ids}
        if fixed_split is not None:
            split_of = {w: fixed_split[w] for w in kept_ids}
        else:
            split_of = assign_splits(work_families(themes), cfg.fractions, seed=seed)
        n_test = sum(len(themes[w]) for w in kept_ids if split_of[w] == "test")
        if (
            cfg.min_test_themes <= 0
            or n_test >= cfg.min_test_themes
            or target_seconds is None
            or all(selector.exhausted(c) for c in sources)
        ):
            break
        grow = max(1.05, min(1.5, cfg.min_test_themes / max(n_test, 1)))
        logger.info("%d test themes < %d: selecting more works", n_test, cfg.min_test_themes)
        target_seconds *= grow
    skipped = [(f.source, f.reason) for f in selector.failures]
    unused = list(selector.rejected)
    unused += [(s.source, "not used: no usable theme") for s in chosen if s.work_id in without and fixed_split is None]
    return kept, split_of, themes, skipped, unused


def _restrict(themes: list[ExtractedTheme], keep: set[str]) -> list[ExtractedTheme]:
    return [replace(t, occurrences=tuple(o for o in t.occurrences if o.work_id in keep)) for t in themes]


def _manifest(
    cfg: Preset,
    *,
    seed: int,
    scores_sel: list[ScoreData],
    by_id: dict[str, ScoreData],
    split_of: dict[str, str],
    themes: dict[str, list[ExtractedTheme]],
    families: dict[str, str],
    records: dict[str, dict],
    jobs_all: list[dict],
    fonts: tuple[str, ...],
    render_splits: tuple[str, ...],
    scores_dir: str | os.PathLike | None,
) -> dict:
    versions_of: dict[str, list[str]] = {}
    for job in jobs_all:
        if job["version_id"] in records:
            versions_of.setdefault(job["score"].work_id, []).append(job["version_id"])
    ordered = sorted(scores_sel, key=lambda s: s.work_id)
    works = []
    for s in ordered:
        works.append(
            {
                "id": s.work_id,
                "title": display_title(s),
                "composer": s.composer,
                "source": s.source if s.source.startswith("corpus:") else _rel_source(s.source, scores_dir),
                "category": s.category,
                "split": split_of[s.work_id],
                "family": families.get(s.work_id, s.work_id),
                "n_parts": len(s.parts),
                "part_names": [p.name for p in s.parts],
                "top_part": top_part(s),
                "tempo_bpm": s.tempo_bpm,
                "time_signature": s.time_signature,
                "duration_q": s.duration_q,
                "nominal_seconds": round(s.nominal_seconds, 3),
                "repeats_expanded": s.repeats_expanded,
                "themes": [t.theme_id for t in themes.get(s.work_id, [])],
                "versions": versions_of.get(s.work_id, []),
            }
        )
    theme_list = []
    for s in ordered:
        for t in themes.get(s.work_id, []):
            theme_list.append(
                {
                    "id": t.theme_id,
                    "work": t.work_id,
                    "kind": t.kind,
                    "name": _theme_name(s, t),
                    "key": t.key,
                    "shift_to_c": t.shift_to_c,
                    "measure": t.measure,
                    "tempo_bpm": t.tempo_bpm,
                    "notes": [list(n) for n in t.notes],
                    "score_occurrences": [
                        {"work": o.work_id, "onsets_q": list(o.onsets), "end_q": o.end, "shift": o.shift}
                        for o in t.occurrences
                    ],
                }
            )
    version_list = [
        records[j["version_id"]] for j in sorted(jobs_all, key=lambda j: j["version_id"]) if j["version_id"] in records
    ]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": cfg.name,
        "seed": seed,
        "sample_rate": cfg.sample_rate,
        "generation": {
            "preset": cfg.name,
            "hours_target": cfg.hours,
            "versions_per_work": cfg.versions,
            "fractions": cfg.fractions,
            "categories": cfg.categories,
            "sources": list(cfg.sources),
            "measures": cfg.measures,
            "scores_folder": None if scores_dir is None else Path(scores_dir).name,
            "soundfonts": [Path(f).name for f in fonts],
            "max_themes": cfg.max_themes,
            "max_themes_long": cfg.max_themes_long,
            "min_test_themes": cfg.min_test_themes,
            "work_seconds": [cfg.min_seconds, cfg.max_seconds],
            "lossy_encodings": cfg.lossy,
            "key_changes": cfg.key_change,
            "ranges": {k: list(v) if isinstance(v, tuple) else v for k, v in RANGES.items()},
            "mirsearch": __version__,
        },
        "splits": {s: sorted(w for w in split_of if split_of[w] == s) for s in SPLITS},
        "rendered_splits": list(render_splits),
        "works": works,
        "themes": theme_list,
        "versions": version_list,
    }


def _rel_source(source: str, scores_dir: str | os.PathLike | None) -> str:
    if scores_dir is None:
        return source
    try:
        return Path(source).relative_to(Path(scores_dir).resolve()).as_posix()
    except ValueError:
        return source
