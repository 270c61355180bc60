"""Choosing the works of a dataset build: candidate sources, parsing until a duration target is met,
themes, and the split of works into train / validation / test by family."""

from __future__ import annotations

import logging
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from mirsearch.datasets import corpus as corpus_mod
from mirsearch.datasets.corpus import ParseFailure, ScoreData
from mirsearch.datasets.manifest import Dataset
from mirsearch.datasets.performance import stable_seed
from mirsearch.datasets.themes import ExtractedTheme, extract_themes, work_families
from mirsearch.errors import InputError, ParameterError

logger = logging.getLogger(__name__)


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


def choose_works(
    cfg,
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
    """Select and parse works, extract themes, assign splits.

    Parameters
    ----------
    cfg : mirsearch.datasets.build.Preset
        Build settings.
    seed : int
    scores : path, optional
        A folder of scores used instead of the music21 corpus.
    cache_dir : Path
        Cache of parsed scores.
    pool : Workers
        Worker processes for parsing.
    time_limit : float
        Seconds allowed per score.
    reuse_split : path, optional
        A dataset whose works and split assignment are reused.
    hours_given : bool
        Whether the caller set the hours (a scores folder then has a target too).
    jobs : int
        Scores parsed per batch (at least 2).

    Returns
    -------
    works, split_of, themes, skipped, unused
        Kept works; ``work_id -> split``; ``work_id -> themes``; ``(source, reason)`` of unparsable and of
        unused scores.
    """
    work_ids: dict[str, str] = {}
    scores_root = Path(scores).resolve() if scores is not None else None
    where = (scores_root, cache_dir, reuse_split)
    sources, shares, fixed_split, target = _candidates(cfg, seed, where, hours_given=hours_given, work_ids=work_ids)

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

    accept, estimate = _rules(cfg, take_all=fixed_split is not None or bool(cfg.sources))
    selector = _Selector(sources, shares, parse=parse, accept=accept, estimate=estimate, batch=max(2, jobs))
    target_seconds = None if target is None else target * 3600.0
    while True:
        selector.extend_to(target_seconds)
        chosen = list(selector.selected)
        kept, themes, split_of, without = _themes_and_splits(chosen, cfg, fixed_split=fixed_split, seed=seed)
        n_test = sum(len(themes[s.work_id]) for s in kept if split_of[s.work_id] == "test")
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


def _rules(cfg, *, take_all: bool) -> tuple[Callable[[ScoreData], bool], Callable[[ScoreData], float]]:
    """``accept(score)`` (duration and size limits unless ``take_all``) and ``estimate(score)`` (seconds of
    audio its versions will take)."""
    est_factor = 1.08 * cfg.versions

    def estimate(s: ScoreData) -> float:
        return est_factor * s.nominal_seconds + 3.0 * cfg.versions

    def accept(s: ScoreData) -> bool:
        if take_all:
            return True
        return cfg.min_seconds <= s.nominal_seconds <= cfg.max_seconds and s.n_notes >= 12

    return accept, estimate


def _candidates(cfg, seed: int, where: tuple, *, hours_given: bool, work_ids: dict):
    """Candidate sources by category, their shares, the fixed split (when reusing one) and the hour target.

    ``where`` is ``(scores_root, cache_dir, reuse_split)``: the scores folder (or None for the corpus), the
    parsed-score cache and the dataset whose split is reused (or None). Reusing a dataset fills ``work_ids``
    (source -> work id) with its ids and copies its parsed-score cache.
    """
    scores_root, cache_dir, reuse_split = where
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
        fixed_split = {w["id"]: w["split"] for w in old.manifest["works"]}
        return {"reused": old_sources}, {"reused": 1.0}, fixed_split, None
    if scores_root is not None:
        files = corpus_mod.user_sources(scores_root)
        if not files:
            raise InputError(f"{scores_root}: no score files ({', '.join(corpus_mod.SCORE_EXTENSIONS)})")
        random.Random(stable_seed(seed, "order")).shuffle(files)
        return {"user": files}, {"user": 1.0}, None, cfg.hours if hours_given else None
    if cfg.sources:
        return {"fixed": list(cfg.sources)}, {"fixed": 1.0}, None, None
    sources, shares = {}, {}
    for cat, share in sorted(cfg.categories.items()):
        lst = corpus_mod.corpus_sources(cat)
        random.Random(stable_seed(seed, "order", cat)).shuffle(lst)
        sources[cat], shares[cat] = lst, share
    return sources, shares, None, cfg.hours


def _themes_and_splits(chosen: list[ScoreData], cfg, *, fixed_split: dict[str, str] | None, seed: int):
    """Themes of the chosen works, the works kept (those with a theme, unless the split is fixed), their
    split, and the ids of the works without a usable theme."""
    limits = {
        s.work_id: cfg.max_themes_long if s.nominal_seconds > cfg.long_seconds else cfg.max_themes for s in chosen
    }
    themes = extract_themes(chosen, max_themes=limits)
    without = {w for w, ths in themes.items() if not ths}
    kept = [s for s in chosen if s.work_id not in without] if fixed_split is None else chosen
    kept_ids = {s.work_id for s in kept}
    themes = {w: _restrict(ths, kept_ids) for w, ths in themes.items() if w in kept_ids}
    if fixed_split is not None:
        split_of = {w: fixed_split[w] for w in kept_ids}
    else:
        split_of = assign_splits(work_families(themes), cfg.fractions, seed=seed)
    return kept, themes, split_of, without


def _restrict(themes: list[ExtractedTheme], keep: set[str]) -> list[ExtractedTheme]:
    return [replace(t, occurrences=tuple(o for o in t.occurrences if o.work_id in keep)) for t in themes]
