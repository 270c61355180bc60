"""``mirsearch info``: what a collection holds."""

from __future__ import annotations

import argparse

from mirsearch.cli.common import add_collection_argument, print_json
from mirsearch.cli.options import add_request_options, request_from_args
from mirsearch.service.collection import InfoRequest

HELP = "show what a collection holds"
DESCRIPTION = "Recordings, hours of audio, stored features and their configuration, failed files."


def register(sub) -> None:
    p = sub.add_parser("info", help=HELP, description=DESCRIPTION)
    add_collection_argument(p)
    add_request_options(p, InfoRequest)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mirsearch.collection import Collection
    from mirsearch.service import run as run_task

    with Collection.open(args.collection, readonly=True) as coll:
        result = run_task("info", request_from_args(InfoRequest, args), collection=coll)
    if args.json:
        print_json(result.to_dict())
        return 0
    info = result.info
    print(f"collection   {info['path']}")
    print(f"recordings   {info['recordings']} ({info['hours']:.2f} h), {info['size_mb']} MB on disk")
    print(f"frame rate   {info['feature_rate']} Hz")
    for kind, d in info["features"].items():
        print(f"features     {kind}: {d['recordings']} recordings, {d['frames']} frames, config {d['config']}")
    for f in info["failures"]:
        print(f"failed       {f['error']}")
    for r in result.recordings or []:
        print(f"  {r['id']:5d}  {r['duration']:8.1f} s  {r['path']}")
    return 0
