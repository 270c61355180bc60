"""``mirsearch index``: add audio files and folders to a collection."""

from __future__ import annotations

import argparse
import sys

from mirsearch.cli.common import add_collection_argument, print_json
from mirsearch.cli.options import add_request_options, request_from_args
from mirsearch.service.collection import IndexRequest

HELP = "add recordings to a collection (new and changed files only)"
DESCRIPTION = (
    "Decode audio files (wav, flac, ogg, opus, mp3; folders are searched recursively), extract "
    "features (a new collection: chroma and learned chroma, unless --features) and store them in the collection. "
    "Files already indexed and unchanged are "
    "skipped, so an interrupted run resumes where it stopped. Bad files are reported and the "
    "batch goes on; the exit code is 3 when a file of this run failed. Score files (MIDI, MusicXML, MEI, "
    "kern) under the same paths are read into the collection's score store (mirsearch search --scores); "
    "sheet music pages (.png, .jpg, .pdf) into its sheet store (mirsearch search --audio FILE --sheets)."
)


def register(sub) -> None:
    p = sub.add_parser("index", help=HELP, description=DESCRIPTION)
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    add_collection_argument(p)
    add_request_options(p, IndexRequest)
    p.add_argument("-j", dest="jobs", type=int, default=argparse.SUPPRESS, help="same as --jobs")
    p.add_argument("--json", action="store_true", help="print a JSON report instead of a summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mirsearch.collection import Collection
    from mirsearch.service import run as run_task
    from mirsearch.service.scores import index_scores
    from mirsearch.service.sheets import index_sheets

    args.progress = args.progress and not args.json and sys.stderr.isatty()
    request = request_from_args(IndexRequest, args, paths=tuple(args.paths))
    # the requested kinds from the start: a new collection's default (learned chroma) would load its model for nothing
    with Collection.create(args.collection, features=request.features) as coll:
        result = run_task("index", request, collection=coll)
        scores = index_scores(coll, request.paths)  # score files under the same paths: the collection's scores
        sheets = index_sheets(coll, request.paths)  # page images and PDFs: the collection's sheet music
    if args.json:
        print_json({**result.to_dict(), "scores": scores.to_dict(), "sheets": sheets.to_dict()})
    else:
        d = result.to_dict()
        speed = f", {d['x_realtime']}x realtime" if d["x_realtime"] else ""
        print(
            f"{args.collection}: {d['added']} added, {d['updated']} updated, {d['unchanged']} unchanged, "
            f"{len(result.failed)} failed ({d['seconds']:.1f} s{speed})"
        )
        for _, msg in result.failed:
            print(f"  failed: {msg}", file=sys.stderr)
        for line in result.report.summary_lines(warnings=args.verbose > 0):
            print(f"  {line}", file=sys.stderr)
        _print_scores(args.collection, scores)
        if sheets.added or sheets.unchanged or sheets.failed:
            print(f"{args.collection}: sheets: {sheets.added} added, {sheets.unchanged} unchanged, "
                  f"{len(sheets.failed)} failed ({sheets.pages} pages, {sheets.windows} windows)")  # fmt: skip
    return 0 if not (result.failed or scores.failed or sheets.failed) else 3


def _print_scores(collection, report) -> None:
    d = report.to_dict()
    if report.added or report.updated or report.unchanged or report.failed:
        print(
            f"{collection}: scores: {d['added']} added, {d['updated']} updated, {d['unchanged']} unchanged, "
            f"{len(report.failed)} failed ({report.scores} scores, {report.notes} notes, {report.seconds:.1f} s)"
        )
    for _, msg in report.failed:
        print(f"  failed: {msg}", file=sys.stderr)
