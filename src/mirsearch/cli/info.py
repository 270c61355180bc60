"""``mirsearch info``: what a collection holds."""

from __future__ import annotations

import argparse

from mirsearch.cli.common import add_collection_argument, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "info",
        help="show what a collection holds",
        description="Recordings, hours of audio, stored features and their configuration, failed files.",
    )
    add_collection_argument(p)
    p.add_argument("--recordings", action="store_true", help="also list every recording")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mirsearch.collection import Collection

    with Collection.open(args.collection, readonly=True) as coll:
        info = coll.info()
        recs = [r.to_dict() for r in coll.recordings()] if args.recordings else None
    if recs is not None:
        info["recording_list"] = recs
    if args.json:
        print_json(info)
        return 0
    print(f"collection   {info['path']}")
    print(f"recordings   {info['recordings']} ({info['hours']:.2f} h), {info['size_mb']} MB on disk")
    print(f"frame rate   {info['feature_rate']} Hz")
    for kind, d in info["features"].items():
        print(f"features     {kind}: {d['recordings']} recordings, {d['frames']} frames, config {d['config']}")
    for f in info["failures"]:
        print(f"failed       {f['error']}")
    for r in recs or []:
        print(f"  {r['id']:5d}  {r['duration']:8.1f} s  {r['path']}")
    return 0
