"""``mirsearch list | remove | prune | relocate``: keep a collection in step with its files.

``list`` shows the recordings (paths relative to the folder holding the collection where they can be);
``remove PATH...`` drops the recordings of files or folders; ``prune`` drops those whose files are gone;
``relocate OLD NEW`` points recordings at their new place after a folder was renamed or moved (the content
hash is checked, no feature is recomputed). Audio files are never touched.
"""

from __future__ import annotations

import argparse
import sys

from mirsearch.cli.common import add_collection_argument, print_json


def register(sub) -> None:
    p = sub.add_parser("list", help="list the recordings of a collection", description=_doc("list"))
    _common(p)
    p.add_argument("--missing", action="store_true", help="only recordings whose file is gone")
    p.set_defaults(func=run_list)

    p = sub.add_parser("remove", help="remove recordings (files or whole folders)", description=_doc("remove"))
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files, or folders: all their recordings")
    _common(p)
    p.set_defaults(func=run_remove)

    p = sub.add_parser("prune", help="remove recordings whose files are gone", description=_doc("prune"))
    _common(p)
    p.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    p.set_defaults(func=run_prune)

    p = sub.add_parser("relocate", help="recordings moved: update their paths", description=_doc("relocate"))
    p.add_argument("old", metavar="OLD", help="the folder (or file) where the recordings were")
    p.add_argument("new", metavar="NEW", help="where they are now")
    _common(p)
    p.set_defaults(func=run_relocate)


def _doc(command: str) -> str:
    texts = {
        "list": "Every recording: id, duration and path (relative to the folder holding the collection where "
        "it lies below it); a '!' marks a recording whose file is gone.",
        "remove": "Remove the recordings of the given files, or of every file under the given folders, with "
        "their stored features. The audio files are not touched.",
        "prune": "Remove the recordings whose audio files no longer exist.",
        "relocate": "After renaming or moving a folder of indexed audio: point its recordings to the new place. "
        "A recording moves when the file at the new path has the same content (checked by hash); "
        "no feature is recomputed.",
    }
    return texts[command]


def _common(p) -> None:
    add_collection_argument(p)
    p.add_argument("--json", action="store_true", help="print JSON")


def _open(args, *, write: bool):
    import mirsearch.service.upkeep  # noqa: F401 - registers the tasks
    from mirsearch.collection import Collection

    return Collection.open(args.collection, readonly=not write)


def run_list(args: argparse.Namespace) -> int:
    from mirsearch.service import run
    from mirsearch.service.upkeep import ListRequest

    with _open(args, write=False) as coll:
        result = run("list", ListRequest(missing=args.missing), collection=coll)
    if args.json:
        print_json(result.to_dict())
        return 0
    for r in result.recordings:
        mark = " " if r["exists"] else "!"
        print(f"{r['id']:6d} {mark} {r['duration']:9.1f} s  {_printable(r['path'])}")
    gone = sum(not r["exists"] for r in result.recordings)
    print(f"{len(result.recordings)} recordings" + (f", {gone} with missing files ('mirsearch prune')" if gone else ""))
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from mirsearch.service import run
    from mirsearch.service.upkeep import RemoveRequest

    with _open(args, write=True) as coll:
        result = run("remove", RemoveRequest(paths=tuple(args.paths)), collection=coll)
    return _report(args, result, f"{len(result.report.removed)} recordings removed")


def run_prune(args: argparse.Namespace) -> int:
    from mirsearch.service import run
    from mirsearch.service.upkeep import PruneRequest

    with _open(args, write=not args.dry_run) as coll:
        result = run("prune", PruneRequest(dry_run=args.dry_run), collection=coll)
    verb = "would be removed" if args.dry_run else "removed"
    return _report(args, result, f"{len(result.report.removed)} recordings with missing files {verb}")


def run_relocate(args: argparse.Namespace) -> int:
    from mirsearch.service import run
    from mirsearch.service.upkeep import RelocateRequest

    with _open(args, write=True) as coll:
        result = run("relocate", RelocateRequest(old=args.old, new=args.new), collection=coll)
    return _report(args, result, f"{len(result.report.moved)} recordings relocated (no feature recomputed)")


def _report(args, result, summary: str) -> int:
    """Print the result; exit code 3 when some paths could not be handled."""
    if args.json:
        print_json(result.to_dict())
    else:
        for path in result.report.removed:
            print(f"  removed: {_printable(path)}")
        print(f"{args.collection}: {summary}")
        for _, msg in result.problems:
            print(f"  not done: {_printable(msg)}", file=sys.stderr)
    return 3 if result.problems else 0


def _printable(text: str) -> str:
    from mirsearch.audio import printable

    return printable(text)
