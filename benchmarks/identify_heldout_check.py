"""Which held-out tracks of bench_identify's test split share audio with its collection, and "not found" without them.

Run after ``bench_identify.py --split test`` (it uses the collection that run built, data/identify/bench-test.mirs)::

    nice -n 10 .venv/bin/python benchmarks/identify_heldout_check.py

1. Each held-out track is scanned (``mirsearch identify --scan``: 10 s windows every 5 s); a track with at least three
   windows identified in one collection recording shares audio with it (loops, a re-rendering at another speed).
2. "Not found" is measured again on excerpts of the other held-out tracks (8 per condition and length, new positions).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_identify as B  # noqa: E402

from _common import write_results  # noqa: E402


def main() -> int:
    from mirsearch.collection import Collection
    from mirsearch.search.identify import identify, scan

    coll = Collection.open(B.WORK / "bench-test.mirs")
    _, held = B.splits("test")
    audio = {p: B.load(p) for p in held}
    windows = Counter()
    stretches = []
    for p, y in audio.items():
        for s in scan(coll, y, sr=B.SR, window=10.0, hop=5.0).stretches:
            other = Path(s.match.recording).name
            windows[(p.name, other)] += 1
            m = s.match
            stretches.append([p.name, s.query_start, s.query_end, other, round(m.speed, 4), m.score, m.change_score])
            print(p.name, f"{s.query_start:.0f}-{s.query_end:.0f} s", other, f"speed {s.match.speed:.3f}", flush=True)
    shared = sorted({a for (a, _), n in windows.items() if n >= 3})
    keep = {p: y for p, y in audio.items() if p.name not in shared}
    rng = np.random.default_rng(5)
    ok, false_hits = [], []
    for length in (5.0, 10.0):
        for cond in B.CONDITIONS:
            for _ in range(8):
                key = list(keep)[rng.integers(len(keep))]
                start = float(rng.uniform(0, keep[key].size / B.SR - length * 1.06 - 0.5))
                q, _ = B.make_query(keep[key], start, length, cond, rng)
                m = identify(coll, q, sr=B.SR).matches
                ok.append(not m)
                if m:
                    top = m[0]
                    false_hits.append([key.name, cond, length, Path(top.recording).name, top.score, top.change_score])
    res = {
        "shared_tracks": shared,
        "stretches": stretches,
        "kept_tracks": len(keep),
        "n": len(ok),
        "not_found_correct": round(float(np.mean(ok)), 4),
        "false_hits": false_hits,
    }
    print(json.dumps({k: v for k, v in res.items() if k != "stretches"}, indent=1))
    write_results("identify_heldout", res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
