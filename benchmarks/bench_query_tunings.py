"""Query time of the default audio search with its tuning hypotheses: the pitch bands of all hypotheses from one
STFT pass (the default) against one pass per hypothesis, and the single-tuning search of session 13, in one process
on the same queries (issue 14, session 14).

Needs the test collection and cached queries of ``bench_matching_real.py --split test --per-track 2``:

    nice -n 5 .venv/bin/python benchmarks/bench_query_tunings.py [--queries 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, print_table, write_results  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=30, help="every k-th cached test query, up to this many")
    ap.add_argument("--rounds", type=int, default=3, help="timing rounds per row (the median is reported)")
    args = ap.parse_args(argv)

    import bench_matching_real as real
    from mirsearch.collection import Collection
    from mirsearch.search.audio_query import AudioQuery

    z = np.load(real.DATA / "real_queries_test_2.npz", allow_pickle=False)
    n = len(z["meta"])
    audible = [i for i in range(n) if np.abs(z[f"q{i}"]).max() > 1e-3]
    qs = [{"y": z[f"q{i}"]} for i in audible[:: max(1, len(audible) // args.queries)][: args.queries]]
    one_pass = AudioQuery.prepare_tunings
    rows, answers = [], {}
    with Collection.open(real.DATA / "real_test.mirs", readonly=True) as coll:
        for name, variant, prepare in (
            ("three hypotheses, one STFT pass (default)", "default", one_pass),
            ("three hypotheses, one pass each", "default", lambda self, config, offsets: None),
            ("one tuning (session 13)", "one_tuning", one_pass),
        ):
            AudioQuery.prepare_tunings = prepare
            try:
                run = real.mirsearch_runner(coll, variant)
                run(qs[0])  # compile and build the memoised views outside the timing
                seconds = []
                for _ in range(args.rounds):
                    t0 = time.perf_counter()
                    answers[name] = [run(q) for q in qs]
                    seconds.append((time.perf_counter() - t0) / len(qs))
            finally:
                AudioQuery.prepare_tunings = one_pass
            rows.append({"search": name, "queries": len(qs), "s_per_query": float(np.median(seconds)),
                         "rounds": [round(s, 4) for s in seconds]})  # fmt: skip
    base = rows[2]["s_per_query"]
    for r in rows:
        r["x_session13"] = r["s_per_query"] / base
    same = answers[rows[0]["search"]] == answers[rows[1]["search"]]
    print_table(rows, ["search", "queries", "s_per_query", "x_session13"])
    print(f"one pass and one pass each give the same answers: {same}")
    write_results("query_tunings_s14", {"machine": machine(), "rows": rows, "same_answers": same})


if __name__ == "__main__":
    main()
