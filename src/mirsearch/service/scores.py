"""Task ``score-theme``: every occurrence of a theme in the collection's scores (any part, any transposition).

The scores are those ``mirsearch index`` found among its paths (MIDI, MusicXML, MEI, kern; :func:`index_scores`),
kept in the collection's score store (:mod:`mirsearch.index.score_store`); the search is geometric point-set
matching (:mod:`mirsearch.search.score_search`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from mirsearch.search.query import ThemeQuery
from mirsearch.search.results import SearchResult
from mirsearch.service.core import Context, Request, param, query_field, register, version_block

#: default share of the theme's notes an occurrence must match: one note in ten may differ (a changed note,
#: a tonal answer's first interval); measured in docs/benchmarks.md ("Score search")
DEFAULT_MIN_SHARE = 0.9
#: defaults of the filters of partial occurrences (None: off): a partial occurrence must lie in one part (in the
#: benchmark it lifts precision from 0.897 to 0.915 at the same recall; exact occurrences may span parts)
DEFAULT_MAX_MISSING: int | None = None
DEFAULT_PARTIAL_PARTS: int | None = 1


VARIANTS_HELP = (
    "also find varied occurrences: tonal answers, entries in the other mode, changed rhythm (a note alignment in "
    "one part; --min-share, --max-errors and --inversion do not apply); see docs/scores.md"
)
VARIANT_SCORE_HELP = "with --variants: alignment score a long theme's occurrence must reach (short themes: more)"


@dataclass(frozen=True)
class ScoreThemeRequest(Request):
    """Parameters of a search for a theme in the collection's scores."""

    query: ThemeQuery = query_field("the theme: a note string or a MIDI / MusicXML / kern file")
    top: int = param(100, help="occurrences to return at most (best first)", minimum=1, maximum=100000)
    min_share: float = param(
        DEFAULT_MIN_SHARE, minimum=0.01, maximum=1.0,
        help="share of the theme's notes an occurrence must match (1: exact occurrences only)",
    )  # fmt: skip
    max_errors: int | None = param(
        None, minimum=0, maximum=1000, metavar="N", help="theme notes that may be missing (instead of --min-share)"
    )
    max_missing: int | None = param(
        DEFAULT_MAX_MISSING, minimum=0, maximum=1000, metavar="N",
        help="of the theme notes a partial occurrence does not match, how many may have no note at their onset "
        "within --pitch-tolerance semitones (0: deviations must be changed pitches, not holes; default: any)",
    )  # fmt: skip
    pitch_tolerance: int = param(2, minimum=0, maximum=12, help="semitones a changed note may differ by")
    partial_parts: int | None = param(
        DEFAULT_PARTIAL_PARTS, minimum=1, maximum=1000, metavar="N",
        help="most parts the matched notes of a partial occurrence may lie in (exact occurrences may always pass "
        "from part to part)",
    )  # fmt: skip
    changed_weight: float = param(
        0.0, minimum=0.0, maximum=0.99,
        help="what a theme note found 1-2 semitones off (a changed pitch) counts for in the share (0: nothing)",
    )  # fmt: skip
    transpose: bool = param(True, help="match at the notated pitch only (default: at any transposition)")
    time_scales: tuple[float, ...] = param(
        (1.0,), minimum=0.05, maximum=20, metavar="LIST", flag="--time-scale",
        help="onset scalings of the theme to search, e.g. 0.5,1,2 (diminution, as written, augmentation)",
    )  # fmt: skip
    inversion: bool = param(False, help="also search the theme inverted (mirrored about its first note)")
    variants: bool = param(False, help=VARIANTS_HELP)
    variant_score: float = param(0.75, minimum=0.3, maximum=1.0, help=VARIANT_SCORE_HELP)


#: the result of a score search: the one search result type (``rejected`` stays empty)
ScoreSearchResult = SearchResult


def score_store(collection):
    """The collection's score store (one object per open collection, so its pack stays in memory)."""
    from mirsearch.index.score_store import ScoreStore

    return collection.views.get(("score-store",), lambda: ScoreStore.for_collection(collection.root))


def index_scores(collection, paths, *, prune: bool = False):
    """Read the score files under ``paths`` into the collection's score store (new and changed files only).

    Called by ``mirsearch index`` after the audio; returns the
    :class:`~mirsearch.index.score_store.ScoreUpdateReport`.
    """
    from mirsearch.index.score_store import ScoreStore

    return ScoreStore.for_collection(collection.root).update([os.fspath(p) for p in paths], prune=prune)


@register("score-theme", request=ScoreThemeRequest, area="search", summary="find every occurrence of a theme in scores")
def run_score_theme(context: Context, request: ScoreThemeRequest) -> ScoreSearchResult:
    from mirsearch.search.score_search import ScoreSearchOptions, search_scores

    coll = context.require_collection("score-theme")
    t0 = time.perf_counter()
    packed = score_store(coll).packed()
    if request.variants:
        return _run_variants(packed, request, t0)
    options = ScoreSearchOptions(
        min_share=request.min_share, max_errors=request.max_errors, transpose=request.transpose,
        time_scales=request.time_scales, inversion=request.inversion, limit=request.top,
        max_missing=request.max_missing, pitch_tolerance=request.pitch_tolerance, partial_parts=request.partial_parts,
        changed_weight=request.changed_weight,
    )  # fmt: skip
    stats: dict = {"scores": len(packed), "notes": int(packed.offsets[-1])}
    theme = request.query.theme
    matches = search_scores(packed, theme, options, stats=stats)
    stats["ms"] = round((time.perf_counter() - t0) * 1000, 1)
    stats["need"] = options.need(len(theme.notes))
    query = version_block(theme=theme.to_string(), source=request.query.source, **request.params())
    return ScoreSearchResult(matches, query, request.query.warnings(), stats)


def _run_variants(packed, request: ScoreThemeRequest, t0: float) -> ScoreSearchResult:
    from mirsearch.search.score_variants import VariantOptions, search_variants

    options = VariantOptions(min_score=request.variant_score, transpose=request.transpose,
                             time_scales=request.time_scales, limit=request.top)  # fmt: skip
    stats: dict = {"scores": len(packed), "notes": int(packed.offsets[-1])}
    theme = request.query.theme
    matches = search_variants(packed, theme, options, stats=stats)
    stats["ms"] = round((time.perf_counter() - t0) * 1000, 1)
    query = version_block(theme=theme.to_string(), source=request.query.source, **request.params())
    return ScoreSearchResult(matches, query, request.query.warnings(), stats)


__all__ = ["DEFAULT_MIN_SHARE", "ScoreSearchResult", "ScoreThemeRequest", "index_scores", "score_store"]
