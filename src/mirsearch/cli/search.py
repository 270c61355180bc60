"""``mirsearch search``: find a theme (notes or a score file) or an audio excerpt in a collection."""

from __future__ import annotations

import argparse
import sys

from mirsearch.cli.common import add_collection_argument, print_json, print_table
from mirsearch.cli.options import add_request_options, request_from_args
from mirsearch.service.theme import ThemeRequest


def register(sub) -> None:
    p = sub.add_parser(
        "search",
        help="find where a theme or an audio excerpt occurs",
        description=(
            "Rank occurrences of a query in the collection's recordings. A theme is matched with "
            "chroma features and subsequence DTW in all 12 transpositions; an audio excerpt with CENS "
            "features (see --audio)."
        ),
        epilog='example: mirsearch search -c my.mirs --theme "G G G Eb F F F D" --top 5',
    )
    add_collection_argument(p)
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--theme", metavar="NOTES", help='note string, e.g. "E D# E G" or "E5/8 D#5/8 E5/4"')
    q.add_argument("--theme-file", metavar="FILE", help="theme as MIDI, MusicXML (.xml/.mxl/.musicxml) or kern")
    q.add_argument("--audio", metavar="FILE", help="audio excerpt (10-30 s) to match")
    p.add_argument("--part", metavar="NAME|INDEX", help="part of a polyphonic score file (default: highest)")
    add_request_options(p, ThemeRequest)
    p.add_argument(
        "--method",
        choices=["scaling", "sdtw"],
        default="scaling",
        help="exhaustive audio search: multiple tempo scaling of the query (default) or subsequence DTW",
    )
    p.add_argument(
        "--index",
        choices=["exhaustive", "hnsw", "kdtree", "exact"],
        default="exhaustive",
        help="audio search: exhaustive CENS matching (default) or the shingle index (built on first use)",
    )
    p.add_argument("--json", action="store_true", help='print {"matches": [...]} as JSON')
    p.add_argument("--plot", metavar="PNG", help="plot the matching curve of the best recording (audio search)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.audio:
        matches = _run_audio(args)
        rows = [m.to_dict() for m in matches]
        if args.json:
            print_json({"matches": rows})
            return 0
        return _print_rows(rows)
    from mirsearch.collection import Collection
    from mirsearch.search.query import ThemeQuery
    from mirsearch.service import run as run_task

    if args.theme is not None:
        query = ThemeQuery.from_text(args.theme)
    else:
        query = ThemeQuery.from_file(args.theme_file, part=args.part)
    request = request_from_args(ThemeRequest, args, query=query)
    with Collection.open(args.collection, readonly=True) as coll:
        result = run_task("theme", request, collection=coll)
    if args.json:
        print_json(result.to_dict())
        return 0
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return _print_rows([m.to_dict() for m in result.matches])


def _run_audio(args: argparse.Namespace):
    from mirsearch.collection import Collection

    use_index = args.index != "exhaustive"
    # the shingle index is stored in the collection and built or updated on first use
    with Collection.open(args.collection, readonly=not use_index) as coll:
        if use_index:
            from mirsearch.search.shingles import search_shingles

            return search_shingles(
                coll, args.audio, index=args.index, top=args.top, transpositions=range(12) if args.transpose else [0]
            )
        from mirsearch.search.audio import search_audio

        options = {"top": args.top, "transpose": args.transpose, "method": args.method}
        if args.plot:
            options["plot"] = args.plot
        return search_audio(coll, args.audio, **options)


def _print_rows(rows: list[dict]) -> int:
    if not rows:
        print("no matches")
        return 0
    for i, r in enumerate(rows, 1):
        r["rank"] = i
        r["span"] = f"{r['start_mmss']}-{r['end_mmss']}"
        r["seconds"] = f"{r['start']:.1f}-{r['end']:.1f}"
        r["cost"] = f"{r['cost']:.4f}"
    columns = [("rank", "#"), ("recording", "recording"), ("span", "mm:ss"), ("seconds", "seconds")]
    print_table(rows, [*columns, ("cost", "cost"), ("transposition", "transp.")])
    return 0
