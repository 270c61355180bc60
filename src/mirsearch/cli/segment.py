"""``mirsearch segment``: split audio files into speech, music, speech+music and noise segments."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mirsearch.cli.common import print_json, print_table
from mirsearch.cli.options import add_request_options, request_from_args
from mirsearch.service.segment import SegmentRequest

FORMATS = ("table", "csv", "audacity")


HELP = "split audio into speech, music, speech+music and noise"
DESCRIPTION = (
    "Label every part of each FILE as speech, music, speech+music or noise. Segments are sorted, do not "
    "overlap and cover the whole file. Files are streamed in blocks (hours are fine). A bad file is "
    "reported on one line and the others go on (exit code 3)."
)


def register(sub) -> None:
    p = sub.add_parser("segment", help=HELP, description=DESCRIPTION)
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    add_request_options(p, SegmentRequest)
    p.add_argument("--json", action="store_true", help='JSON: {"path", "duration", "segments"}; several files: '
                   '{"files": [...]}')  # fmt: skip
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table (default), csv (path,start,end,label) or audacity (a label track: start<TAB>end<TAB>"
                   "label)")  # fmt: skip
    p.add_argument("--plot", metavar="PNG", help="draw the spectrogram with the labelled bands (several files: "
                   "PNG-<file stem>.png)")  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mirsearch.errors import MirsearchError
    from mirsearch.service import run as run_task

    results, failed = [], 0
    for path in args.files:
        try:
            result = run_task("segment", request_from_args(SegmentRequest, args, path=path))
            if args.plot:
                _plot(result, args.plot, several=len(args.files) > 1)
        except MirsearchError as exc:
            print(f"mirsearch segment: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        results.append(result)
        if not args.json:
            _print(result, args.format, first=len(results) == 1)
    if args.json:
        dicts = [r.to_dict() for r in results]
        print_json(dicts[0] if len(args.files) == 1 and dicts else {"files": dicts})
    return 3 if failed else 0


def _print(result, fmt: str, *, first: bool) -> None:
    if fmt == "csv":
        if first:
            print("path,start,end,label")
        for s in result.segments:
            print(f"{_csv(result.path)},{s.start:.3f},{s.end:.3f},{s.label}")
    elif fmt == "audacity":
        for s in result.segments:
            print(f"{s.start:.6f}\t{s.end:.6f}\t{s.label}")
    else:
        print(f"{result.path} ({result.duration:.1f} s, {len(result.segments)} segments)")
        rows = [{"start": f"{s.start:.2f}", "end": f"{s.end:.2f}", "label": s.label} for s in result.segments]
        print_table(rows, [("start", "start"), ("end", "end"), ("label", "label")])


def _csv(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


def _plot(result, target: str, *, several: bool) -> None:
    from mirsearch.viz.segments import plot_segments_file

    out = Path(target)
    if several:
        out = out.with_name(f"{out.stem}-{Path(result.path).stem}{out.suffix or '.png'}")
    plot_segments_file(result, out)
