"""``mirsearch search``: find a theme (notes or a score file) or an audio excerpt in a collection."""

from __future__ import annotations

import argparse

from mirsearch.cli.common import add_collection_argument, print_json, print_table


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
    p.add_argument("--top", type=int, default=10, help="number of matches (default 10)")
    p.add_argument("--per-recording", type=int, default=3, help="occurrences per recording at most (default 3)")
    p.add_argument("--features", default="chroma", help="theme search features: chroma (default), cens, learned")
    p.add_argument("--tempo", type=float, metavar="BPM", help="assumed theme tempo, quarter notes/min (default 100)")
    p.add_argument(
        "--tempo-factors",
        default="1",
        metavar="LIST",
        help="extra global query scalings, e.g. 0.5,1,2 (theme search; slower, wider tempo range)",
    )
    p.add_argument("--no-transpose", action="store_true", help="only match at the notated pitch")
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
    p.add_argument(
        "--cascade",
        choices=["notes", "notes-only", "align", "coarse"],  # mirsearch.search.cascade.THEME_CASCADES
        help="theme search in two stages: candidate regions are proposed, DTW re-ranks them (notes: note index "
        "and note alignment of learned chroma, use with --features learned; notes-only: the note index alone, "
        "faster but less accurate on large collections; align: the alignment alone; coarse: DTW at a third of "
        "the frame rate); default: exhaustive DTW",
    )
    p.add_argument("--candidates", type=int, help="recordings proposed by --cascade (default 32)")
    p.add_argument("--json", action="store_true", help='print {"matches": [...]} as JSON')
    p.add_argument("--plot", metavar="PNG", help="plot the matching curve of the best recording (audio search)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mirsearch.collection import Collection

    factors = [float(x) for x in args.tempo_factors.split(",") if x.strip()]
    use_index = args.audio and args.index != "exhaustive"
    # the shingle index is stored in the collection and built or updated on first use
    with Collection.open(args.collection, readonly=not use_index) as coll:
        if use_index:
            from mirsearch.search.shingles import search_shingles

            matches = search_shingles(
                coll,
                args.audio,
                index=args.index,
                top=args.top,
                transpositions=[0] if args.no_transpose else range(12),
            )
        elif args.audio:
            options = {"top": args.top, "transpose": not args.no_transpose, "method": args.method}
            if args.plot:
                options["plot"] = args.plot
            matches = coll.search_audio(args.audio, **options)
        else:
            from mirsearch.scores import load_theme, parse_note_string

            if args.theme is not None:
                theme = parse_note_string(args.theme)
            else:
                theme = load_theme(args.theme_file, part=args.part)
            options = {
                "top": args.top,
                "per_recording": args.per_recording,
                "features": args.features,
                "tempo_bpm": args.tempo,
                "tempo_factors": factors,
                "transpositions": [0] if args.no_transpose else range(12),
            }
            if args.cascade:
                from mirsearch.search.cascade import THEME_CASCADES, cascade_search_theme

                if args.candidates is not None:
                    options["candidates"] = args.candidates
                matches = cascade_search_theme(coll, theme, **THEME_CASCADES[args.cascade], **options)
            else:
                matches = coll.search_theme(theme, **options)
    rows = [m.to_dict() for m in matches]
    if args.json:
        print_json({"matches": rows})
        return 0
    if not rows:
        print("no matches")
        return 0
    for i, r in enumerate(rows, 1):
        r["rank"] = i
        r["span"] = f"{r['start_mmss']}-{r['end_mmss']}"
        r["seconds"] = f"{r['start']:.1f}-{r['end']:.1f}"
        r["cost"] = f"{r['cost']:.4f}"
    print_table(
        rows,
        [
            ("rank", "#"),
            ("recording", "recording"),
            ("span", "mm:ss"),
            ("seconds", "seconds"),
            ("cost", "cost"),
            ("transposition", "transp."),
        ],
    )
    return 0
