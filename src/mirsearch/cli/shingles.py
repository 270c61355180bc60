"""``mirsearch shingles``: the shingle index of a collection (build, search, train, info, remove).

::

    mirsearch shingles build  -c C [--reduction none|embedding|pca|BUNDLE] [--dim 12] [--index hnsw|kdtree|exact]
                                   [--M 16] [--ef-construction 200] [--ef 64] [--rebuild]
    mirsearch shingles search -c C --audio X [--index hnsw] [--reduction none] [--top 10]
                                   [--k 64] [--tempo-factors 0.8,...,1.25] [--no-all-keys] [--cascade] [--json]
    mirsearch shingles train  --dataset data/bench --dim 12 [--resume] ...   (same as 'mirsearch train embedding')
    mirsearch shingles info   -c C
    mirsearch shingles remove -c C
"""

from __future__ import annotations

import argparse

from mirsearch.cli.common import (
    add_collection_argument,
    add_command_group,
    add_json_flag,
    print_json,
    print_match_table,
)
from mirsearch.cli.options import add_request_options, request_from_args
from mirsearch.service.shingles import ShingleBuildRequest, ShingleInfoRequest, ShingleSearchRequest

HELP = "shingle index: fast cross-version retrieval (build, search, train)"
DESCRIPTION = (
    "Audio shingles (10 s of 2 Hz CENS, 240 dims, one per second) of every recording, optionally reduced "
    "(learned embedding / PCA), and "
    "indexed (HNSW / KD-tree / exact) inside the collection folder."
)


def register(subparsers) -> None:
    """Add the ``shingles`` command group."""
    sub = add_command_group(subparsers, "shingles", help=HELP, description=DESCRIPTION)

    b = sub.add_parser("build", help="build or update the shingle index of a collection")
    add_collection_argument(b)
    add_request_options(b, ShingleBuildRequest)
    add_json_flag(b)
    b.set_defaults(func=_build)

    s = sub.add_parser("search", help="find versions of an audio excerpt with the shingle index")
    add_collection_argument(s)
    s.add_argument("--audio", required=True, metavar="FILE", help="audio excerpt (20-30 s)")
    s.add_argument("--start", type=float, default=None, help="excerpt start in the file (s)")
    s.add_argument("--end", type=float, default=None, help="excerpt end in the file (s)")
    add_request_options(s, ShingleSearchRequest)
    add_json_flag(s, help='print {"matches": [...], "query": {...}} as JSON')
    s.set_defaults(func=_search)

    t = sub.add_parser("train", help="train the shingle embedding (same as 'mirsearch train embedding')")
    from mirsearch.cli.train_embedding import add_arguments

    add_arguments(t)

    i = sub.add_parser("info", help="shingle stores and indexes of a collection")
    add_collection_argument(i)
    add_json_flag(i)
    i.set_defaults(func=_info)

    r = sub.add_parser("remove", help="delete the shingle stores and indexes of a collection")
    add_collection_argument(r)
    r.set_defaults(func=_remove)


def _run(task: str, request, collection: str):
    """Run a shingle task on the collection (opened read-only: the index lives beside the catalogue)."""
    from mirsearch.collection import Collection
    from mirsearch.service import run

    with Collection.open(collection, readonly=True) as coll:
        return run(task, request, collection=coll)


def _build(args: argparse.Namespace) -> int:
    result = _run("shingles-build", request_from_args(ShingleBuildRequest, args), args.collection)
    if args.json:
        print_json(result.to_dict())
    else:
        for key, value in result.summary.items():
            print(f"{key:10s} {value}")
    return 0


def _search(args: argparse.Namespace) -> int:
    from mirsearch.service.shingles import AudioQuery

    query = AudioQuery.from_file(args.audio, start=args.start, end=args.end)
    result = _run("shingles-search", request_from_args(ShingleSearchRequest, args, query=query), args.collection)
    if args.json:
        print_json(result.to_dict())
        return 0
    return print_match_table([m.to_dict() for m in result.matches], extra=(("votes", "votes"),))


def _info(args: argparse.Namespace) -> int:
    result = _run("shingles-info", ShingleInfoRequest(), args.collection)
    if args.json:
        print_json(result.to_dict())
        return 0
    for kind, label in (("stores", "store"), ("indexes", "index")):
        for row in result.summary[kind]:
            print(f"{label}: " + "  ".join(f"{key} {value}" for key, value in row.items()))
    if not result.summary["stores"] and not result.summary["indexes"]:
        print("no shingle index (mirsearch shingles build)")
    return 0


def _remove(args: argparse.Namespace) -> int:
    result = _run("shingles-remove", ShingleInfoRequest(), args.collection)
    print(f"removed {result.summary['removed']} index folders")
    return 0
