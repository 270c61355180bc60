"""``mirsearch segment``: split audio files into speech, music, speech+music and noise segments."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mirsearch.cli.common import add_collection_argument, print_json, print_table
from mirsearch.cli.options import add_request_options, request_from_args
from mirsearch.service.segment import RecordingSegmentsRequest, SegmentRequest

FORMATS = ("table", "csv", "audacity")


HELP = "split audio into speech, music, speech+music and noise"
DESCRIPTION = (
    "Label every part of each FILE as speech, music, speech+music or noise. Segments are sorted, do not "
    "overlap and cover the whole file. Files are streamed in blocks (hours are fine). A bad file is "
    "reported on one line and the others go on (exit code 3). With --collection and --recording ID, a "
    "recording of the collection is segmented from its stored probabilities (indexed with --features "
    "segments; no audio is decoded) or else from its file."
)


def register(sub) -> None:
    p = sub.add_parser("segment", help=HELP, description=DESCRIPTION)
    p.add_argument("files", nargs="*", metavar="FILE", help="audio files")
    add_collection_argument(p, required=False)
    p.add_argument("--recording", type=int, action="append", default=[], metavar="ID",
                   help="a recording of the collection (repeatable; ids from 'mirsearch list')")  # fmt: skip
    add_request_options(p, SegmentRequest)
    p.add_argument("--json", action="store_true", help='JSON: {"path", "duration", "segments"}; several files: '
                   '{"files": [...]}')  # fmt: skip
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table (default), csv (path,start,end,label) or audacity (a label track: start<TAB>end<TAB>"
                   "label)")  # fmt: skip
    p.add_argument("--plot", metavar="PNG", help="draw the spectrogram with the labelled bands (several files: "
                   "PNG-<file stem>.png)")  # fmt: skip
    p.set_defaults(func=run)


def _jobs(args: argparse.Namespace):
    """``(task, request)`` per item asked for: the files, then the collection's recordings."""
    from mirsearch.errors import ParameterError

    if not args.files and not args.recording:
        raise ParameterError("give audio FILEs, or --collection DIR with --recording ID")
    if args.recording and not args.collection:
        raise ParameterError("--recording needs --collection DIR")
    jobs = [("segment", request_from_args(SegmentRequest, args, path=path)) for path in args.files]
    for rid in args.recording:
        jobs.append(("recording-segments", request_from_args(RecordingSegmentsRequest, args, recording=rid)))
    return jobs


def run(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from mirsearch.errors import MirsearchError
    from mirsearch.service import Archive
    from mirsearch.service import run as run_task

    jobs = _jobs(args)
    results, failed = [], 0
    with Archive.open(args.collection, readonly=True) if args.collection else nullcontext() as archive:
        coll = archive.collection if archive is not None else None
        for task, request in jobs:
            try:
                result = run_task(task, request, collection=coll)
                if args.plot:
                    _plot(result, args.plot, several=len(jobs) > 1)
            except MirsearchError as exc:
                print(f"mirsearch segment: error: {exc}", file=sys.stderr)
                failed += 1
                continue
            results.append(result)
            if not args.json:
                _print(result, args.format, first=len(results) == 1)
    if args.json:
        dicts = [r.to_dict() for r in results]
        print_json(dicts[0] if len(jobs) == 1 and dicts else {"files": dicts})
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
