"""The notes cascade's fallback cost for tailed queries: how often it falls back, and how often its answer differs.

For every theme of each validation collection the notes cascade runs without a fallback and the exhaustive search
runs (top 1, one match per recording, learned chroma), with the plain query and with the query tail
(:data:`mirsearch.search.theme.TAIL`). For each threshold: the themes whose best verified cost is above it (they
fall back to a wider search) and, among the others, those whose top-1 recording is not the exhaustive search's.
The untailed cascade's :data:`~mirsearch.search.cascade.NOTE_FALLBACK_COST` is the reference row.

    nice -n 10 .venv/bin/python benchmarks/bench_tail_fallback.py \\
        --collection mutopia-validation=data/mutopia_themes:validation:data/mt_coll_s14/validation.mirs \\
        --collection corpus-validation-a=data/bench:validation:data/bench/collections/confidence-validation-a.mirs \\
        --collection corpus-validation-b=data/bench:validation:data/bench/collections/confidence-validation-b.mirs
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

THRESHOLDS = (0.10, 0.11, 0.12, 0.125, 0.13, 0.14, 0.15)


def run_collection(dataset: str, split: str, collection: str) -> list[dict]:
    """Per theme: ``{"plain"|"tail": [cascade recording, cascade cost, exhaustive recording, exhaustive cost]}``."""
    from mirsearch.collection import Collection
    from mirsearch.datasets.manifest import Dataset
    from mirsearch.search.cascade import THEME_PRESETS, cascade_search_theme
    from mirsearch.search.theme import TAIL, search_theme

    preset = dataclasses.replace(THEME_PRESETS["notes"], fallback_cost=None)
    themes = sorted(Dataset.load(dataset).split(split).themes.values(), key=lambda t: t.theme_id)
    rows = []
    with Collection.open(collection, readonly=True) as coll:
        for info in themes:
            theme, row = info.to_theme(), {"theme": info.theme_id}
            for tag, tail in (("plain", None), ("tail", TAIL)):
                options = {"features": "learned", "top": 1, "per_recording": 1, "query_tail": tail}
                c = cascade_search_theme(coll, theme, cascade=preset.with_candidates(32), **options)
                e = search_theme(coll, theme, **options)
                row[tag] = [c[0].recording_id if c else None, c[0].cost if c else None, e[0].recording_id, e[0].cost]
            rows.append(row)
    return rows


def summarise(per_set: dict[str, list[dict]], tag: str, threshold: float) -> dict:
    """Fallbacks and differing answers (without fallback) at ``threshold``, per set and in all."""
    out = {"query": tag, "threshold": threshold, "fallbacks": 0, "differs": 0, "themes": 0}
    for name, rows in per_set.items():
        fb = [r[tag][0] is None or r[tag][1] > threshold for r in rows]
        differs = sum(1 for r, f in zip(rows, fb, strict=True) if not f and r[tag][0] != r[tag][2])
        out[name] = f"{sum(fb)} / {differs}"
        out["fallbacks"] += sum(fb)
        out["differs"] += differs
        out["themes"] += len(rows)
    return out


def main() -> None:
    from mirsearch.search.cascade import NOTE_FALLBACK_COST

    from _common import print_table, write_results

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--collection", action="append", required=True, metavar="NAME=DATASET:SPLIT:COLLECTION")
    ap.add_argument("--name", default="tail_fallback_s14")
    args = ap.parse_args()
    per_set = {}
    for spec in args.collection:
        name, rest = spec.split("=", 1)
        dataset, split, collection = rest.split(":", 2)
        per_set[name] = run_collection(dataset, split, collection)
    table = [summarise(per_set, "plain", NOTE_FALLBACK_COST)]
    table += [summarise(per_set, "tail", float(t)) for t in THRESHOLDS]
    print_table(table, ["query", "threshold", "themes", "fallbacks", "differs", *per_set])
    ratio = [r["tail"][3] / r["plain"][3] for rows in per_set.values() for r in rows if r["plain"][3] > 0]
    print(f"median exhaustive cost ratio tail / plain: {np.median(ratio):.3f}")
    write_results(args.name, {"args": vars(args), "rows": table, "themes": per_set})


if __name__ == "__main__":
    main()
