"""``mirsearch versions``: rank the recordings of a collection as versions of a query recording."""

from __future__ import annotations

import argparse
from pathlib import Path

from mirsearch.cli.common import add_collection_argument, add_format_argument, print_matches, print_rows
from mirsearch.cli.options import add_request_options, request_from_args
from mirsearch.service.audio import VersionsRequest

HELP = "find other versions of a piece in a collection"
DESCRIPTION = (
    "Version identification: the query recording is cut into 20 s shingles matched with CENS and "
    "multiple tempo scaling; each recording scores the mean best cost of the shingles (lower is "
    "more similar). The query itself is skipped when it is in the collection."
)
EPILOG = (
    "Scoring: the query's chroma is cut into shingles of S seconds every S/2 seconds; each shingle is "
    "turned into 1 Hz CENS at five relative tempi (0.66, 0.81, 1, 1.22, 1.5) and laid over every "
    "position of each recording (diagonal matching, mean cosine distance). "
    "score(R) = min over key shifts k of [ mean over shingles i of (min over positions and tempi of "
    "cost_i(R, k)) ] (0 = identical CENS, higher = less similar); a shingle longer than the "
    "recording counts 1. Key shifts: the two cyclic shifts whose global mean chroma correlates best "
    "(only 0 with --no-transpose); 'transp.' is the recording's key relative to the query, -6..+5 "
    "semitones. Recordings are ranked by increasing score; 'coverage' is the share "
    "of the recording covered by the shingles' best matches (a low coverage with a low score suggests "
    "a version that only shares a part). Measured accuracy: docs/benchmarks.md."
)


def register(sub) -> None:
    p = sub.add_parser("versions", help=HELP, description=DESCRIPTION, epilog=EPILOG)
    add_collection_argument(p)
    p.add_argument("--audio", required=True, metavar="FILE", help="the query recording (whole track or long excerpt)")
    add_request_options(p, VersionsRequest)
    add_format_argument(p)
    p.add_argument("--plot", metavar="PNG", help="bar chart of the scores")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mirsearch.collection import Collection
    from mirsearch.service import run as run_task
    from mirsearch.service.audio import read_audio_query, recordings_at

    query = read_audio_query(args.audio)
    with Collection.open(args.collection, readonly=True) as coll:
        own = recordings_at(coll, args.audio)  # the query's own file is no version of itself
        args.exclude = tuple(args.exclude or ()) + own or None
        result = run_task("versions", request_from_args(VersionsRequest, args, query=query), collection=coll)
    if args.plot:
        from mirsearch.viz.figures import plot_versions

        title = f"versions of {Path(args.audio).name}"
        plot_versions([(m.recording, m.cost) for m in result.matches], out=args.plot, title=title)
    if print_matches(result, args.format):
        return 0
    columns = [("rank", "#"), ("recording", "recording"), ("score", "score"), ("transposition", "transp.")]
    cells = {"score": "{cost:.4f}", "coverage": "{coverage:.2f}"}
    print_rows(
        [m.to_dict() for m in result.matches], [*columns, ("coverage", "coverage")], empty="no versions", cells=cells
    )
    if args.plot and result.matches:
        print(f"wrote {args.plot}")
    return 0
