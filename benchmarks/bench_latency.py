"""Theme-query latency against collection size, next to librosa's subsequence DTW.

Synthetic chroma features at 10 Hz stand in for 1 h, 10 h and 100 h of indexed audio (the kernel's
cost does not depend on the values). A query is a 5 s theme (50 frames), matched in all 12
transpositions through :func:`mirsearch.search.theme.rank_occurrences` (the query path of
``search_theme``: blocks of recordings, the 10 best occurrences); ``query_peak_MB`` is the memory
the query allocates (tracemalloc), the database itself excluded. librosa runs the same recipe
(``librosa.sequence.dtw(subseq=True)`` with the same steps and weights, one call per shift) on the
1 h collection (and on 10 h with one shift, scaled by 12), in the same run.

    python benchmarks/bench_latency.py [--hours 1 10 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from mirsearch.matching.subsequence import STEPS, WEIGHTS, cosine_cost, unit_columns
from mirsearch.search.theme import rank_occurrences

from _common import print_table, write_results

RATE = 10.0
QUERY_FRAMES = 50
RECORDING_SECONDS = 300.0  # collection made of 5-minute recordings


def mirsearch_query(Q, Y, offsets):
    """The query path of ``search_theme``: blocks of recordings, 12 shifts, the 10 best occurrences."""
    return rank_occurrences([Q], Y, offsets, top=10)


def librosa_query(Xq, Y_feat, shifts):
    import librosa

    best = np.inf
    for k in shifts:
        C = cosine_cost(np.roll(Xq, k, axis=0), Y_feat)
        D = librosa.sequence.dtw(C=C, subseq=True, step_sizes_sigma=STEPS, weights_mul=WEIGHTS, backtrack=False)
        best = min(best, float(D[-1].min()))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, nargs="+", default=[1, 10, 100])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    Xq = rng.random((12, QUERY_FRAMES)).astype(np.float32)
    Q = unit_columns(Xq)
    mirsearch_query(Q, unit_columns(rng.random((12, 1000)).astype(np.float32)), np.array([0, 500, 1000]))  # compile
    rows = []
    for hours in args.hours:
        M = int(hours * 3600 * RATE)
        Y_feat = rng.random((12, M)).astype(np.float32)
        Y = unit_columns(Y_feat)
        offsets = np.r_[np.arange(0, M, int(RECORDING_SECONDS * RATE)), M]
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            mirsearch_query(Q, Y, offsets)
            times.append(time.perf_counter() - t0)
        tracemalloc.start()
        mirsearch_query(Q, Y, offsets)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        t = float(np.median(times))
        cells = 12 * QUERY_FRAMES * M
        row = {
            "hours": hours,
            "frames": M,
            "mirsearch_s": t,
            "Mcells_per_s_per_core": cells / t / 1e6 / 2,
            "query_peak_MB": peak / 1e6,
            "features_MB": Y.nbytes / 1e6,
        }
        if hours <= 1:
            t0 = time.perf_counter()
            librosa_query(Xq, Y_feat, range(12))
            row["librosa_s"] = time.perf_counter() - t0
            row["librosa_note"] = "12 shifts"
        elif hours <= 10:
            t0 = time.perf_counter()
            librosa_query(Xq, Y_feat, [0])
            row["librosa_s"] = 12 * (time.perf_counter() - t0)
            row["librosa_note"] = "1 shift x 12"
        if "librosa_s" in row:
            row["speedup"] = row["librosa_s"] / t
        rows.append(row)
        print_table([row], list(row))
    print()
    cols = ["hours", "mirsearch_s", "Mcells_per_s_per_core", "query_peak_MB", "librosa_s", "speedup", "librosa_note"]
    print_table(rows, cols)
    path = write_results("latency", {"query_frames": QUERY_FRAMES, "feature_rate": RATE, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
