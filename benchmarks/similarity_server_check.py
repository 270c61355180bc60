"""Round trip of ``GET /api/recordings/{id}/similar`` through the server's worker processes (a sanity check).

nice -n 5 .venv/bin/python benchmarks/similarity_server_check.py data/soundtracks/e2e/c.mirs --queries 20
nice -n 5 .venv/bin/python benchmarks/similarity_server_check.py data/soundtracks/e2e/c.mirs --start   # workers
    started and warmed up (``TaskWorkers.start(wait=True)``) before the first request
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("collection")
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--start", action="store_true", help="start and warm the workers before the first request")
    args = ap.parse_args(argv)
    from fastapi.testclient import TestClient

    from mirsearch.server.app import create_app

    app = create_app(args.collection)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        if args.start:
            t = time.perf_counter()
            app.state.server.tasks.start(wait=True)
            print(f"workers started and warm in {(time.perf_counter() - t) * 1000:.1f} ms")
        t = time.perf_counter()
        first = c.get("/api/recordings/1/similar", params={"top": 10})
        print(f"first request: HTTP {first.status_code} in {(time.perf_counter() - t) * 1000:.1f} ms")
        times, stats = [], {}
        for rid in range(1, args.queries + 1):
            t = time.perf_counter()
            r = c.get(f"/api/recordings/{rid}/similar", params={"top": 10})
            times.append((time.perf_counter() - t) * 1000)
            stats = r.json().get("stats", {})
        print(f"round trip ms: median {statistics.median(times):.1f}, max {max(times):.1f}; last stats {stats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
