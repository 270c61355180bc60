"""``mirsearch bench``: benchmarks on a dataset built by ``mirsearch dataset build``."""

from __future__ import annotations

import argparse
import json

from mirsearch.cli.common import add_command_group, add_run_options, pick, show_progress

HELP = "benchmarks on a mirsearch dataset (theme retrieval)"
DESCRIPTION = "Benchmarks on a dataset built by 'mirsearch dataset build'."

BASELINE_QUERIES_HELP = "run the baseline on the first N queries only (it is slow)"
TEMPO_HELP = "query tempo (quarter notes per minute); default each work's nominal tempo"
RESULTS_DIR_HELP = "where theme_<features>_<split>.json is written (default benchmarks/results)"


def register(subparsers) -> None:
    """Add the ``bench`` command group (``theme``)."""
    sub = add_command_group(subparsers, "bench", help=HELP, description=DESCRIPTION)
    t = sub.add_parser(
        "theme",
        help="theme retrieval: Top-1/5/10, MRR, MAP, query time",
        description=(
            "Index the versions of a split (cached in the dataset folder), query every theme of the split "
            "(notated in C), and report Top-1/5/10, MRR, P@k, MAP and the query times."
        ),
        epilog="example: mirsearch bench theme --dataset data/bench --features chroma --baseline librosa",
    )
    t.add_argument("--dataset", required=True, help="dataset folder (manifest.json)")
    t.add_argument("--features", default="chroma", choices=("chroma", "cens", "learned"))
    t.add_argument("--split", default="test", help="split to use (default test)")
    t.add_argument("--baseline", choices=("librosa",), default=None, help="also run a baseline on the same queries")
    t.add_argument("--baseline-queries", type=int, default=None, metavar="N", help=BASELINE_QUERIES_HELP)
    t.add_argument("--limit", type=int, default=None, metavar="N", help="use only the first N themes")
    t.add_argument("--tempo-bpm", type=float, default=None, help=TEMPO_HELP)
    t.add_argument("--results-dir", default="benchmarks/results", help=RESULTS_DIR_HELP)
    t.add_argument("--no-write", action="store_true", help="do not write the results file")
    add_run_options(t, jobs=2, jobs_help="worker processes for indexing", json_help="print the result as JSON")
    t.set_defaults(func=_theme)


def _theme(args: argparse.Namespace) -> int:
    from mirsearch.evaluation.theme_bench import format_table, run_theme_benchmark, write_result

    options = pick(args, "features", "split", "baseline", "baseline_queries", "limit", "tempo_bpm", "jobs")
    result = run_theme_benchmark(args.dataset, **options, progress=show_progress(args))
    path = None if args.no_write else write_result(result, args.results_dir)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    idx = result["index"]
    print(
        f"{result['dataset']} [{result['split']}]: {result['recordings']} recordings ({result['hours']:.2f} h), "
        f"{result['queries']} themes, {result['mean_relevant']:.1f} relevant recordings per theme"
    )
    print(f"index: {idx['added']} added, {idx['unchanged']} cached, {idx['seconds']:.1f} s ({idx['collection']})")
    print(format_table(result))
    m = result["metrics"]
    print(f"P@5 {m['p@5']:.3f}  P@10 {m['p@10']:.3f}  best match on an annotated occurrence: {m['top1_localised']:.3f}")
    if "baseline" in result and result["baseline"].get("speed_ratio"):
        print(f"mirsearch is {result['baseline']['speed_ratio']:.1f}x faster per query than the librosa baseline")
    if path is not None:
        print(f"wrote {path}")
    return 0
