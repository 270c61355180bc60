"""Same answers before and after a change: every theme of a split through the exhaustive search (chroma, learned)
and the notes cascade, its top 10 written out, Top-1 / MRR and time per theme; ``--compare`` diffs two runs.

Run it once with the old code on the path and once with the new (the script uses only entry points both have):

    PYTHONPATH=/tmp/before/src python benchmarks/bench_theme_regression.py --dataset data/bench \
        --collection data/bench/collections/learned-test.mirs --name regression_before
    python benchmarks/bench_theme_regression.py --dataset data/bench \
        --collection data/bench/collections/learned-test.mirs --name regression_after
    python benchmarks/bench_theme_regression.py --compare benchmarks/results/regression_before.json \
        benchmarks/results/regression_after.json
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from pathlib import Path

import numpy as np

from mirsearch.evaluation.metrics import mean_reciprocal_rank, top_k


def _cascade(coll, theme, **options):
    from mirsearch.search import cascade

    if "cascade" in inspect.signature(cascade.cascade_search_theme).parameters:  # the stage-based API
        return cascade.cascade_search_theme(coll, theme, cascade="notes", **options)
    return cascade.cascade_search_theme(coll, theme, proposal="notes", **options)


def _tail(features: str, query_tail: str) -> dict:
    """The ``query_tail`` option of a search on ``features`` ({} with code that has none): ``query_tail`` is
    "default" (the service's, :func:`mirsearch.search.theme.default_query_tail`), "off" or "BETA,TAU"."""
    from mirsearch.search import theme

    if not hasattr(theme, "default_query_tail"):
        return {}
    if query_tail == "default":
        return {"query_tail": theme.default_query_tail(features)}
    return {"query_tail": None if query_tail == "off" else tuple(float(v) for v in query_tail.split(","))}


def _methods(query_tail: str = "default"):
    from mirsearch.search.theme import search_theme

    common = {"top": 10, "per_recording": 1}
    chroma, learned = _tail("chroma", query_tail), _tail("learned", query_tail)
    return {
        "exhaustive-chroma": lambda coll, t: search_theme(coll, t, features="chroma", **common, **chroma),
        "exhaustive-learned": lambda coll, t: search_theme(coll, t, features="learned", **common, **learned),
        "notes-cascade-learned": lambda coll, t: _cascade(coll, t, features="learned", **common, **learned),
    }


def run(args) -> None:
    from mirsearch.collection import Collection
    from mirsearch.datasets.manifest import Dataset

    view = Dataset.load(args.dataset).split(args.split)
    vid_of = {str(Path(v.path).resolve()): v.version_id for v in view if Path(v.path).is_file()}
    themes = [t for t in sorted(view.themes.values(), key=lambda t: t.theme_id)
              if view.relevant_versions(t.theme_id) & set(vid_of.values())][: args.limit]  # fmt: skip
    relevant = [view.relevant_versions(t.theme_id) for t in themes]
    out, rows = {}, []
    with Collection.open(args.collection, readonly=True) as coll:
        for name, search in _methods(args.query_tail).items():
            search(coll, themes[0].to_theme())  # compile, build the memoised views
            answers, rankings, seconds = [], [], []
            for t in themes:
                t0 = time.perf_counter()
                matches = search(coll, t.to_theme())
                seconds.append(time.perf_counter() - t0)
                answers.append([[int(m.recording_id), round(m.start, 3), round(m.cost, 6), int(m.transposition) % 12]
                                for m in matches])  # fmt: skip
                vids = [vid_of.get(str(Path(m.recording).resolve())) for m in matches]
                rankings.append(list(dict.fromkeys(v for v in vids if v is not None)))
            out[name] = answers
            ms = 1000 * np.asarray(seconds)
            rows.append({"method": name, "themes": len(themes), "top1": top_k(rankings, relevant, k=1),
                         "mrr": mean_reciprocal_rank(rankings, relevant), "ms_median": float(np.median(ms)),
                         "ms_mean": float(np.mean(ms))})  # fmt: skip
    _print(rows)
    # written without the benchmarks' helpers, which may not import with older code on the path
    path = Path(__file__).resolve().parent / "results" / f"{args.name}.json"
    path.write_text(json.dumps({"args": vars(args), "rows": rows, "answers": out}, indent=1))
    print(f"wrote {path}")


def _print(rows: list[dict]) -> None:
    for r in rows:
        print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))


def compare(a_path: str, b_path: str) -> None:
    a, b = (json.loads(Path(p).read_text()) for p in (a_path, b_path))
    rows = []
    for ra, rb in zip(a["rows"], b["rows"], strict=True):
        name = ra["method"]
        xa, xb = a["answers"][name], b["answers"][name]
        n = min(len(xa), len(xb))  # the first n themes of both (a run may be limited with --limit)
        xa, xb = xa[:n], xb[:n]
        same = sum(x == y for x, y in zip(xa, xb, strict=True))
        rows.append({"method": name, "themes": len(xa), "identical_top10": same, "top1_a": ra["top1"],
                     "top1_b": rb["top1"], "mrr_a": ra["mrr"], "mrr_b": rb["mrr"], "ms_median_a": ra["ms_median"],
                     "ms_median_b": rb["ms_median"]})  # fmt: skip
    _print(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset")
    ap.add_argument("--split", default="test")
    ap.add_argument("--collection", help="a collection of the split with chroma and learned features")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--name", default="theme_regression")
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    ap.add_argument("--query-tail", default="default", help="default (the service's per features), off or BETA,TAU")
    args = ap.parse_args()
    if args.compare:
        compare(*args.compare)
    else:
        run(args)


if __name__ == "__main__":
    main()
