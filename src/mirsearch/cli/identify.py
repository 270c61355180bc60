"""``mirsearch identify`` (which recording is this excerpt from?) and ``mirsearch dedupe`` (recordings that contain
each other), over the fingerprints stored with ``mirsearch index DIR -c COLL --features ...,fingerprint``."""

from __future__ import annotations

import argparse

from mirsearch.cli.common import add_collection_argument, print_json, print_rows
from mirsearch.cli.options import add_request_options, request_from_args
from mirsearch.service.identify import DedupeRequest, IdentifyRequest, ScanRequest

_HOW = (
    "Spectral peaks on a log-frequency grid are combined in triplets whose hashes do not change with the "
    "playback speed, a time-stretch or a pitch shift of a few percent; matches are verified by a consistent "
    "offset, speed and pitch shift, then checked against the recording's stored peaks. 'score': how far the "
    "peaks met on the recording stand out of those met at wrong alignments (below --min-score: not found). "
    "'offset': where the excerpt's first sample lies in the recording; 'speed': the excerpt's playback speed "
    "relative to the recording (1.04 = 4 %% faster). Measured accuracy: docs/identify.md."
)


HELP = "identify an audio excerpt: recording, offset and speed (fingerprints)"
DESCRIPTION = "Audio identification: " + _HOW
EPILOG = "The collection needs fingerprints: mirsearch index DIR -c COLL --features chroma,fingerprint"


def register(sub) -> None:
    p = sub.add_parser("identify", help=HELP, description=DESCRIPTION, epilog=EPILOG)
    add_collection_argument(p)
    p.add_argument("--audio", required=True, metavar="FILE", help="the excerpt (or, with --scan, a long file)")
    p.add_argument("--scan", action="store_true", help="identify every stretch of a long file (time ranges)")
    add_request_options(p, ScanRequest)
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.set_defaults(func=run_identify)

    d = sub.add_parser(
        "dedupe",
        help="find recordings that contain each other (the same audio, fingerprints)",
        description=(
            "Three windows of each recording (start, middle, end) are identified among the other recordings; a "
            "recording whose windows all fall on one line in another recording is contained in it ('same' when "
            "the durations agree)."
        ),
    )
    add_collection_argument(d)
    add_request_options(d, DedupeRequest)
    d.add_argument("--json", action="store_true", help="print the answer as JSON")
    d.set_defaults(func=run_dedupe)


def _open(path):
    from mirsearch.collection import Collection

    # writable: the fingerprint index is stored beside the catalogue and brought up to date on first use
    return Collection.open(path)


def run_identify(args: argparse.Namespace) -> int:
    from mirsearch.service import run as run_task
    from mirsearch.service.audio import read_audio_query

    query = read_audio_query(args.audio)
    with _open(args.collection) as coll:
        if args.scan:
            result = run_task("identify-scan", request_from_args(ScanRequest, args, query=query), collection=coll)
        else:
            result = run_task("identify", request_from_args(IdentifyRequest, args, query=query), collection=coll)
    if args.json:
        print_json(result.to_dict())
        return 0
    rows = [s.to_dict() for s in (result.stretches if args.scan else result.matches)]
    cells = {"speed": "{speed:.3f}", "score": "{score:.1f}"}
    columns = [("recording", "recording"), ("offset_mmss", "offset"), ("speed", "speed"),
               ("matched_peaks", "peaks met"), ("score", "score")]  # fmt: skip
    if args.scan:
        cells["range"] = "{query_start:.1f}-{query_end:.1f} s"
        columns = [("range", "in file"), *columns]
    return print_rows(rows, columns, empty="not found", cells=cells)


def run_dedupe(args: argparse.Namespace) -> int:
    from mirsearch.service import run as run_task

    with _open(args.collection) as coll:
        result = run_task("dedupe", request_from_args(DedupeRequest, args), collection=coll)
    if args.json:
        print_json(result.to_dict())
        return 0
    cols = [("recording", "recording"), ("relation", "is"), ("other", "in"), ("offset", "at (s)"), ("speed", "speed")]
    cells = {"offset": "{offset:.2f}", "speed": "{speed:.3f}"}
    return print_rows([d.to_dict() for d in result.duplicates], cols, empty="no duplicates", cells=cells)
