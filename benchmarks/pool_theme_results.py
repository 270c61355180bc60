"""Pool rows of several ``bench_learned_chroma.py`` result files: Top-1 and MRR over all their themes.

Each result file holds per-query reciprocal ranks per row (``per_query_rr``); a row is named by its variant label.
The pooled figures are means over the union of the queries (each file's queries prefixed by its file name),
with a bootstrap interval over themes, and the paired difference of every row to the first one::

    python benchmarks/pool_theme_results.py --row "default, query tails floor 0.2 after 0.5 s" \\
        --row "a440, query tails floor 0.2 after 0.5 s" --name pooled_s17 \\
        benchmarks/results/s17_tuning_mutopia_validation.json benchmarks/results/s17_tuning_mutopia_test.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mirsearch.evaluation.paired import paired_difference
from mirsearch.evaluation.ranking import bootstrap_mean

from _common import print_table, write_results


def pooled_rr(files: list[Path], row: str) -> dict[str, float]:
    """``{file stem/query: reciprocal rank}`` of the row labelled ``row`` in every file (KeyError if absent)."""
    out = {}
    for f in files:
        rows = {r["variant"]: r for r in json.loads(f.read_text())["rows"]}
        if row not in rows:
            raise KeyError(f"{f}: no row {row!r} (rows: {', '.join(rows)})")
        out.update({f"{f.stem}/{q}": float(rr) for q, rr in rows[row]["per_query_rr"].items()})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path, help="bench_learned_chroma.py result files")
    ap.add_argument("--row", action="append", required=True, help="variant label to pool (the first is the reference)")
    ap.add_argument("--name", default=None, help="write benchmarks/results/NAME.json")
    args = ap.parse_args(argv)
    per_row = {row: pooled_rr(args.files, row) for row in args.row}
    queries = sorted(per_row[args.row[0]])
    table = []
    for row, rr in per_row.items():
        if sorted(rr) != queries:
            raise SystemExit(f"row {row!r} has other queries than {args.row[0]!r}")
        v = np.array([rr[q] for q in queries])
        top1, mrr = bootstrap_mean(v == 1.0), bootstrap_mean(v)
        entry = {
            "row": row,
            "queries": len(v),
            "top1": round(top1.mean, 4),
            "top1 95%": f"[{top1.low:.3f}, {top1.high:.3f}]",
            "mrr": round(mrr.mean, 4),
            "mrr 95%": f"[{mrr.low:.3f}, {mrr.high:.3f}]",
        }
        if row != args.row[0]:
            ref = np.array([per_row[args.row[0]][q] for q in queries])
            d1, dm = paired_difference(ref == 1.0, v == 1.0), paired_difference(ref, v)
            entry["dTop-1"] = f"{d1.mean:+.4f} [{d1.low:+.4f}, {d1.high:+.4f}]"
            entry["dMRR"] = f"{dm.mean:+.4f} [{dm.low:+.4f}, {dm.high:+.4f}]"
        table.append(entry)
    print_table(table, ["row", "queries", "top1", "top1 95%", "mrr", "mrr 95%", "dTop-1", "dMRR"])
    if args.name:
        print(f"wrote {write_results(args.name, {'files': [str(f) for f in args.files], 'rows': table})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
