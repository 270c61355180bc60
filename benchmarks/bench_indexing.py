"""Indexing throughput (x realtime) of ``Collection.add`` with 1 and 2 worker processes.

    python benchmarks/bench_indexing.py AUDIO_FOLDER [--limit 40]

Uses the first ``--limit`` audio files of the folder (e.g. ``data/bench/audio``), indexes them into a
fresh temporary collection per setting, and reports audio seconds per wall-clock second. The first
setting also pays numba's compile/cache load once; it is run twice and the second run is reported.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from mirsearch.audio import is_audio_file
from mirsearch.collection import Collection

from _common import print_table, write_results


def run(files: list[Path], jobs: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="mirsearch-bench-"))
    try:
        with Collection.create(tmp / "c.mirs", features=["chroma"]) as coll:
            t0 = time.perf_counter()
            report = coll.add(files, jobs=jobs)
            seconds = time.perf_counter() - t0
        return {
            "jobs": jobs,
            "files": len(report.added),
            "failed": len(report.failed),
            "audio_h": report.audio_seconds / 3600,
            "wall_s": seconds,
            "x_realtime": report.audio_seconds / seconds,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--limit", type=int, default=40)
    args = ap.parse_args()
    files = sorted(p for p in args.folder.rglob("*") if p.is_file() and is_audio_file(p))[: args.limit]
    if not files:
        raise SystemExit(f"{args.folder}: no audio files")
    run(files[:2], 1)  # warm caches (numba, imports)
    rows = [run(files, 1), run(files, 2)]
    print_table(rows, ["jobs", "files", "failed", "audio_h", "wall_s", "x_realtime"])
    path = write_results("indexing", {"folder": str(args.folder), "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
