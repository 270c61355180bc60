"""``mirsearch versions``: rank the recordings of a collection as versions of a query recording."""

from __future__ import annotations

import argparse
from pathlib import Path

from mirsearch.cli.common import add_collection_argument, print_json, print_table


def register(sub) -> None:
    p = sub.add_parser(
        "versions",
        help="find other versions of a piece in a collection",
        description=(
            "Version identification: the query recording is cut into 20 s shingles matched with CENS and "
            "multiple tempo scaling; each recording scores the mean best cost of the shingles (lower is "
            "more similar). The query itself is skipped when it is in the collection."
        ),
        epilog=(
            "Scoring: the query's chroma is cut into shingles of S seconds every S/2 seconds; each shingle is "
            "turned into 1 Hz CENS at five relative tempi (0.66, 0.81, 1, 1.22, 1.5) and laid over every "
            "position of each recording (diagonal matching, mean cosine distance). "
            "score(R) = min over key shifts k of [ mean over shingles i of (min over positions and tempi of "
            "cost_i(R, k)) ] (0 = identical CENS, higher = less similar); a shingle longer than the "
            "recording counts 1. Key shifts: the two cyclic shifts whose global mean chroma correlates best "
            "(only 0 with --no-transpose). Recordings are ranked by increasing score; 'coverage' is the share "
            "of the recording covered by the shingles' best matches (a low coverage with a low score suggests "
            "a version that only shares a part). Measured accuracy: docs/benchmarks.md."
        ),
    )
    add_collection_argument(p)
    p.add_argument("--audio", required=True, metavar="FILE", help="the query recording (whole track or long excerpt)")
    p.add_argument("--top", type=int, default=10, help="number of recordings listed (default 10)")
    p.add_argument("--no-transpose", action="store_true", help="only versions in the same key")
    p.add_argument("--shingle", type=float, default=20.0, metavar="S", help="shingle length in seconds (default 20)")
    p.add_argument("--json", action="store_true", help='print {"versions": [...]} as JSON')
    p.add_argument("--plot", metavar="PNG", help="bar chart of the scores")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mirsearch.collection import Collection
    from mirsearch.search.audio import identify_versions

    query = Path(args.audio).resolve()
    with Collection.open(args.collection, readonly=True) as coll:
        exclude = [r.id for r in coll.recordings() if Path(r.path).resolve() == query]
        versions = identify_versions(
            coll,
            str(query),
            top=args.top,
            transpose=not args.no_transpose,
            shingle_seconds=args.shingle,
            hop_seconds=args.shingle / 2,
            exclude=exclude,
        )
    rows = [m.to_dict() for m in versions]
    if args.plot:
        from mirsearch.viz.figures import plot_versions

        plot_versions([(m.recording, m.cost) for m in versions], out=args.plot, title=f"versions of {query.name}")
    if args.json:
        print_json({"query": str(query), "excluded": exclude, "versions": rows})
        return 0
    if not rows:
        print("no versions")
        return 0
    for r in rows:
        r["score"] = f"{r['cost']:.4f}"
        r["coverage"] = f"{r.get('coverage', 0):.2f}"
    print_table(
        rows,
        [
            ("rank", "#"),
            ("recording", "recording"),
            ("score", "score"),
            ("transposition", "transp."),
            ("coverage", "coverage"),
        ],
    )
    if args.plot:
        print(f"wrote {args.plot}")
    return 0
