"""``mirsearch tag`` (tags of audio files, the vocabulary) and ``mirsearch tags teach`` (a new tag from examples)."""

from __future__ import annotations

import argparse
import sys

from mirsearch.cli.common import add_collection_argument, print_json, print_table
from mirsearch.cli.options import add_request_options, request_from_args
from mirsearch.service.tags import TagRequest

HELP = "tags of audio files: instruments, ensemble, era, mode, metre, tempo, ..."
DESCRIPTION = (
    "Give every FILE a probability for each tag of the vocabulary (--list shows it). With -c, the tags taught "
    "to that collection (mirsearch tags teach) are added. A bad file is reported on one line and the others go "
    "on (exit code 3)."
)
TEACH_HELP = "teach a collection a new tag from a few example recordings"


def register(sub) -> None:
    p = sub.add_parser("tag", help=HELP, description=DESCRIPTION)
    p.add_argument("files", nargs="*", metavar="FILE", help="audio files")
    add_request_options(p, TagRequest)
    add_collection_argument(p, required=False)
    p.add_argument("--list", action="store_true", help="print the vocabulary (name, group, description)")
    p.add_argument("--top", type=int, default=10, help="table: show the N most probable tags (default 10)")
    p.add_argument("--json", action="store_true", help='JSON: {"path", "tags": {name: probability}}; several '
                   'files: {"files": [...]}; --list: {"tags": [{"name", "group", "description"}]}')  # fmt: skip
    p.set_defaults(func=run)

    t = sub.add_parser("tags", help="manage taught tags", description="Tags a collection learns from examples.")
    tsub = t.add_subparsers(dest="tags_command", metavar="<subcommand>")
    teach = tsub.add_parser("teach", help=TEACH_HELP, description=TEACH_HELP + " (the collection must be indexed "
                            "with --features tags).")  # fmt: skip
    teach.add_argument("name", help="name of the new tag")
    add_collection_argument(teach)
    teach.add_argument("--examples", nargs="+", required=True, metavar="FILE", help="example audio files")
    teach.add_argument("--json", action="store_true", help="print the answer as JSON")
    teach.set_defaults(func=run_teach)
    t.set_defaults(func=lambda args: (t.print_help(), 2)[1])


def _open(path, *, readonly: bool = True):
    from contextlib import nullcontext

    from mirsearch.collection import Collection

    return Collection.open(path, readonly=readonly) if path else nullcontext(None)


def run(args: argparse.Namespace) -> int:
    from mirsearch.errors import ParameterError
    from mirsearch.service import run as run_task
    from mirsearch.service.tags import TagListRequest

    if args.list:
        with _open(args.collection) as coll:
            result = run_task("tag-list", TagListRequest(), collection=coll)
        if args.json:
            print_json(result.to_dict())
        else:
            print_table(result.to_dict()["tags"], [("name", "tag"), ("group", "group"), ("description", "description")])
        return 0
    if not args.files:
        raise ParameterError("FILE: give audio files (or --list)")
    with _open(args.collection) as coll:
        results = [_tag_one(path, args, coll) for path in args.files]
    found = [r for r in results if r is not None]
    if args.json:
        dicts = [r.to_dict() for r in found]
        print_json(dicts[0] if len(args.files) == 1 and dicts else {"files": dicts})
    else:
        for result in found:
            _print(result, args.top)
    return 3 if len(found) < len(results) else 0


def _tag_one(path: str, args: argparse.Namespace, coll):
    """The result of one file, or None after a one-line message on stderr."""
    from mirsearch.errors import MirsearchError
    from mirsearch.service import run as run_task

    try:
        return run_task("tag", request_from_args(TagRequest, args, path=path), collection=coll)
    except MirsearchError as exc:
        print(f"mirsearch tag: error: {exc}", file=sys.stderr)
        return None


def _print(result, top: int) -> None:
    print(f"{result.path} ({result.duration:.1f} s)")
    best = sorted(result.tags.items(), key=lambda kv: -kv[1])[:top]
    print_table([{"tag": k, "p": f"{v:.2f}"} for k, v in best], [("tag", "tag"), ("p", "probability")])
    for seg in result.segments or ():
        top3 = sorted(seg["tags"].items(), key=lambda kv: -kv[1])[:3]
        print(f"  {seg['start']:7.1f}-{seg['end']:7.1f}  " + "  ".join(f"{k} {v:.2f}" for k, v in top3))


def run_teach(args: argparse.Namespace) -> int:
    from mirsearch.service import run as run_task
    from mirsearch.service.tags import TeachRequest

    with _open(args.collection, readonly=False) as coll:
        result = run_task("tags-teach", TeachRequest(name=args.name, examples=tuple(args.examples)), collection=coll)
    if args.json:
        print_json(result.to_dict())
    else:
        info = result.to_dict()
        print(f"taught {info['name']!r} from {len(info['examples'])} examples to {info['collection']}")
    return 0
