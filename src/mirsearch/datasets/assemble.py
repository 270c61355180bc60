"""The manifest of a built dataset: works, themes (with readable names) and rendered versions."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from mirsearch import __version__
from mirsearch.datasets.corpus import ScoreData
from mirsearch.datasets.manifest import FORMAT, FORMAT_VERSION, SPLITS
from mirsearch.datasets.performance import RANGES
from mirsearch.datasets.themes import ExtractedTheme, top_part

if TYPE_CHECKING:
    from mirsearch.datasets.build import Preset


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


def build_manifest(
    cfg: Preset,
    *,
    seed: int,
    scores_sel: list[ScoreData],
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
