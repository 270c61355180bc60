"""``mirsearch search``: find a theme (notes or a score file) or an audio excerpt in a collection.

``--theme`` / ``--theme-file`` run the task ``theme``, ``--audio`` the task ``passages``; the options are
those of both requests (:func:`~mirsearch.cli.common.add_task_options`), and an option of one task given
with the other's query is refused with a one-line message.
"""

from __future__ import annotations

import argparse
import sys

from mirsearch.cli.common import (
    add_collection_argument,
    add_format_argument,
    add_task_options,
    print_json,
    print_match_table,
    print_matches,
    print_table,
    request_for,
)
from mirsearch.service.audio import PassagesRequest
from mirsearch.service.scores import ScoreThemeRequest
from mirsearch.service.sheets import SheetSearchRequest
from mirsearch.service.tags import TagSearchRequest
from mirsearch.service.theme import ThemeRequest

#: the query option of each task (``--scores``: the theme in the collection's scores)
MODES = {
    "--theme": ThemeRequest,
    "--audio": PassagesRequest,
    "--scores": ScoreThemeRequest,
    "--tag": TagSearchRequest,
    "--sheets": SheetSearchRequest,
}


HELP = "find where a theme or an audio excerpt occurs"
DESCRIPTION = (
    "Rank occurrences of a query in the collection's recordings. A theme is matched with "
    "chroma features (the best the collection has) and subsequence DTW in all 12 transpositions; an "
    "audio excerpt with CENS features (see --audio)."
)
EPILOG = (
    'example: mirsearch search -c my.mirs --theme "G G G Eb F F F D" --top 5\n'
    "note strings: note names C D E F G A B with # or b, an optional octave (C4 is middle C; default: the "
    "nearest to the previous note) and an optional value after / (4 quarter, 8 eighth, 2. dotted half; "
    'default: the previous note\'s), rests R/4; e.g. "E5/8 D#5/8 E5/8 D#5 E B D C A/4".\n'
    "output: cost is the mean distance along the match (0 = identical; not comparable across queries); "
    "conf. the probability that a theme or audio match is a true occurrence; tempo > 1: the match is played faster "
    "than the excerpt; transp. is the recording's key relative to the query, -6..+5 semitones "
    "(docs/cli.md)."
)


def register(sub) -> None:
    p = sub.add_parser(
        "search",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_collection_argument(p)
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--theme", metavar="NOTES", help='note string, e.g. "E D# E G" or "E5/8 D#5/8 E5/4"')
    q.add_argument("--theme-file", metavar="FILE", help="theme as MIDI, MusicXML (.xml/.mxl/.musicxml) or kern")
    q.add_argument("--audio", metavar="FILE", help="audio excerpt (10-30 s) to match")
    q.add_argument("--tag", metavar="NAME", help="rank recordings by a tag (index with --features tags)")
    p.add_argument("--part", metavar="NAME|INDEX", help="part of a polyphonic score file (default: highest)")
    p.add_argument("--scores", action="store_true", help="find every occurrence of the theme in the indexed scores")
    p.add_argument("--sheets", action="store_true", help="with --audio: the page and system of the indexed sheet music")
    add_task_options(p, MODES)
    add_format_argument(p)
    p.add_argument("--plot", metavar="PNG", help="plot the matching curve of the best recording (--audio)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mirsearch.collection import Collection
    from mirsearch.service import run as run_task

    if args.tag:
        return _run_tag(args)
    if args.sheets:
        return _run_sheets(args)
    if args.audio:
        from mirsearch.service.audio import read_audio_query

        request = request_for(MODES, "--audio", args, foreign=("part", "scores"), query=read_audio_query(args.audio))
        task = "passages"
    else:
        from mirsearch.service.theme import ThemeQuery

        query = ThemeQuery.from_text(args.theme) if args.theme is not None else None
        if query is None:
            query = ThemeQuery.from_file(args.theme_file, part=args.part)
        mode, task = ("--scores", "score-theme") if args.scores else ("--theme", "theme")
        foreign = ("plot",) if args.theme_file else ("plot", "part")  # a part is chosen in a score file only
        request = request_for(MODES, mode, args, foreign=foreign, query=query)
    # the shingle index is stored in the collection and built or updated on first use
    writable = task == "passages" and request.index != "exhaustive"
    with Collection.open(args.collection, readonly=not writable) as coll:
        result = run_task(task, request, collection=coll)
    if args.plot:
        _plot(result, args.plot)
    if print_matches(result, args.format):
        return 0
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if task == "score-theme":
        return _print_score_rows([m.to_dict() for m in result.matches])
    if task in ("theme", "passages") and not result.matches and result.rejected:
        print("no confident match; the best candidates, below --min-confidence (--all shows them as matches):")
        return print_match_table([m.to_dict() for m in result.rejected])
    return print_match_table([m.to_dict() for m in result.matches])


def _plot(result, out: str) -> None:
    from mirsearch.errors import ParameterError
    from mirsearch.viz.figures import plot_matching_curve

    if not result.matches or not result.curves:
        raise ParameterError("--plot: no matching curve (no match, or a search with the shingle index)")
    best = result.matches[0]
    curve = next(c for c in result.curves if c.recording_id == best.recording_id)
    spans = [(m.start, m.end, m.cost) for m in result.matches if m.recording_id == best.recording_id]
    plot_matching_curve(curve.cost, feature_rate=curve.feature_rate, matches=spans, out=out,
                        title=f"matching curve in {curve.recording}")  # fmt: skip


def _print_score_rows(rows: list[dict]) -> int:
    if not rows:
        print("no occurrences")
        return 0
    for i, r in enumerate(rows, 1):
        r["rank"], r["quarters"] = i, f"{r['start_quarter']:g}-{r['end_quarter']:g}"
        r["score"] = f"{r['score']:.2f}"
    columns = [("rank", "#"), ("recording", "score file"), ("measure", "m."), ("part", "part")]
    print_table(rows, [*columns, ("quarters", "quarters"), ("transposition", "transp."), ("score", "share")])
    return 0


def _run_tag(args: argparse.Namespace) -> int:
    """``--tag``: the task ``tag-search`` (JSON: {"tag", "matches": [{"recording", "recording_id", "score"}]})."""
    from mirsearch.collection import Collection
    from mirsearch.service import run as run_task

    request = request_for(MODES, "--tag", args, foreign=("part", "scores", "plot"), tag=args.tag)
    with Collection.open(args.collection, readonly=True) as coll:
        result = run_task("tag-search", request, collection=coll)
    if args.format == "json":
        print_json(result.to_dict())
        return 0
    rows = [{"rank": i, **m} for i, m in enumerate(result.to_dict()["matches"], 1)]
    print_table(rows, [("rank", "#"), ("recording", "recording"), ("score", args.tag)])
    return 0


def _run_sheets(args: argparse.Namespace) -> int:
    """``--audio FILE --sheets``: the task ``sheets`` (JSON: {"matches": [{"recording", "page", "box", "score"}]})."""
    from mirsearch.collection import Collection
    from mirsearch.errors import ParameterError
    from mirsearch.service import run as run_task
    from mirsearch.service.audio import read_audio_query

    if not args.audio:
        raise ParameterError("--sheets needs --audio FILE (the excerpt to find in the sheet music)")
    query = read_audio_query(args.audio)
    request = request_for(MODES, "--sheets", args, foreign=("part", "scores", "plot"), query=query)
    with Collection.open(args.collection, readonly=True) as coll:
        result = run_task("sheets", request, collection=coll)
    if print_matches(result, args.format):
        return 0
    rows = [{"rank": i, **m} for i, m in enumerate(result.to_dict()["matches"], 1)]
    for r in rows:
        r["box"] = " ".join(str(v) for v in r["box"])
    print_table(rows, [("rank", "#"), ("recording", "pages"), ("page", "page"), ("system", "system"),
                       ("box", "box x0 y0 x1 y1"), ("score", "score")])  # fmt: skip
    return 0
