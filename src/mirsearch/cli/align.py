"""``mirsearch align``: synchronise two recordings, or a score with a recording."""

from __future__ import annotations

import argparse
import sys

from mirsearch.cli.common import add_format_argument, print_json
from mirsearch.cli.options import add_request_options, request_from_args
from mirsearch.service.sync import AlignRequest

HELP = "align two recordings (or a score and a recording) of the same piece"
DESCRIPTION = (
    "Music synchronisation with chroma + onset (DLNCO) features and multiresolution DTW. "
    "A B: time map between two recordings. SCORE AUDIO (MIDI, MusicXML, MEI, kern first): "
    "each note's time in the recording."
)


def register(sub) -> None:
    p = sub.add_parser("align", help=HELP, description=DESCRIPTION)
    p.add_argument("a", metavar="A", help="first recording, or a score file")
    p.add_argument("b", metavar="B", help="second recording")
    p.add_argument(
        "--out",
        "-o",
        metavar="FILE",
        help="write the time map (or the notes table for a score) as CSV, or JSON if FILE ends in .json",
    )
    p.add_argument("--plot", metavar="PNG", help="write chromagrams and the cost matrix with the warping path")
    add_format_argument(p)
    add_request_options(p, AlignRequest)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mirsearch.service import run as run_task
    from mirsearch.service.sync import plot_alignment, write_alignment

    result = run_task("align", request_from_args(AlignRequest, args, a=args.a, b=args.b))
    if args.out:
        write_alignment(result, args.out)
    if args.plot:
        plot_alignment(result, args.plot)
    if args.format == "json":
        print_json(result.to_dict())
        return 0
    if args.format != "table":
        from mirsearch.service.export import notes_as, timemap_as

        if result.score is not None:
            sys.stdout.write(notes_as(args.format, result.score.rows()))
        else:
            d = result.output_map.to_dict()
            sys.stdout.write(timemap_as(args.format, d["time_a"], d["time_b"]))
        return 0
    tmap = result.time_map
    meta = tmap.meta
    print(
        f"aligned {tmap.name_a} ({tmap.duration_a:.1f} s) -> {tmap.name_b} ({tmap.duration_b:.1f} s): "
        f"{len(tmap)} points, cost ratio {meta.get('cost_ratio')}, transposition {meta.get('transposition')}"
    )
    for m in result.mapped:
        print(f"{m['a']:.3f} s in {tmap.name_a} -> {m['b']:.3f} s in {tmap.name_b}")
    if result.score is not None and not args.out:
        sys.stdout.write(result.score.to_csv())
    for path in (args.out, args.plot):
        if path:
            print(f"wrote {path}")
    return 0
