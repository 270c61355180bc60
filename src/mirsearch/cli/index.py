"""``mirsearch index``: add audio files and folders to a collection."""

from __future__ import annotations

import argparse
import os
import sys

from mirsearch.cli.common import add_collection_argument, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "index",
        help="add recordings to a collection (new and changed files only)",
        description=(
            "Decode audio files (wav, flac, ogg, mp3; folders are searched recursively), extract "
            "features and store them in the collection. Files already indexed and unchanged are "
            "skipped, so an interrupted run resumes where it stopped. Bad files are reported and the "
            "batch goes on."
        ),
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    add_collection_argument(p)
    p.add_argument(
        "--features",
        default=None,
        metavar="KINDS",
        help="comma-separated stored feature kinds: chroma (default), learned (the shipped CTC model)",
    )
    p.add_argument("--feature-rate", type=float, default=None, metavar="HZ", help="frames per second (default 10)")
    p.add_argument("--jobs", "-j", type=int, default=min(2, os.cpu_count() or 1), help="worker processes (default: 2)")
    p.add_argument("--json", action="store_true", help="print a JSON report instead of a summary")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mirsearch.collection import Collection

    kinds = args.features.split(",") if args.features else None
    with Collection.create(args.collection, features=kinds, feature_rate=args.feature_rate) as coll:
        show = not args.no_progress and not args.json and sys.stderr.isatty()
        report = coll.add(args.paths, jobs=args.jobs, progress=show)
    if args.json:
        print_json(report.to_dict())
    else:
        d = report.to_dict()
        speed = f", {d['x_realtime']}x realtime" if d["x_realtime"] else ""
        print(
            f"{args.collection}: {d['added']} added, {d['updated']} updated, {d['unchanged']} unchanged, "
            f"{len(report.failed)} failed ({d['seconds']:.1f} s{speed})"
        )
        for _, msg in report.failed:
            print(f"  failed: {msg}", file=sys.stderr)
    return 0 if not report.failed else 3
