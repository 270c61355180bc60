"""Task ``theme``: where in the collection is a theme played (every occurrence, with its transposition)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from mirsearch.search.confidence import BACKGROUND, DEFAULT_THRESHOLDS, search_confidences, split_by_confidence
from mirsearch.search.query import ThemeQuery
from mirsearch.search.results import Match, SearchResult
from mirsearch.service.cluster import cluster_spec, dask_param
from mirsearch.service.core import Context, Request, param, query_field, register, version_block

log = logging.getLogger(__name__)

#: theme search features; "auto" takes the best the collection has (learned chroma, else chroma)
THEME_FEATURES = ("auto", "chroma", "cens", "learned")
#: "auto": the notes cascade on learned chroma (milliseconds, no measurable loss), else the exhaustive search;
#: the others name :data:`mirsearch.search.cascade.THEME_PRESETS` (a test keeps the two equal; the table itself
#: is not imported here so that ``mirsearch --help`` stays fast)
CASCADE_CHOICES = ("auto", "exhaustive", "notes", "notes-only", "align", "coarse", "index")


def min_confidence_param(default: str):
    """The ``min_confidence`` option of a search whose matches have a confidence (``default``: where its default
    threshold comes from)."""
    return param(None, help=f"hide matches whose confidence (probability of a true occurrence) is lower (default: "
                 f"{default})", minimum=0.0, maximum=1.0)  # fmt: skip


def show_all_param():
    """The ``--all`` option: confident matches or every match."""
    return param(False, help="show every match, confident or not", flag="--all")


@dataclass(frozen=True)
class ThemeRequest(Request):
    """Parameters of a theme search."""

    query: ThemeQuery = query_field("the theme: a note string or a MIDI / MusicXML / kern file")
    top: int = param(10, help="number of matches", minimum=1, maximum=1000)
    per_recording: int = param(3, help="occurrences per recording at most", minimum=1, maximum=100)
    features: str = param(
        "auto", choices=THEME_FEATURES, help="database features (auto: learned chroma if indexed, else chroma)"
    )
    cascade: str = param(
        "auto",
        choices=CASCADE_CHOICES,
        help="two-stage search: candidate regions proposed, DTW re-ranks them (notes: note index and alignment of "
        "learned chroma; notes-only: the index alone; align: the alignment alone; coarse: DTW at a third of the "
        "frame rate); exhaustive: DTW everywhere; auto: notes with learned chroma, else exhaustive (with --dask "
        "only the exhaustive search is sharded; a cascade runs in this process)",
    )
    candidates: int = param(32, help="recordings proposed by a cascade", minimum=1, maximum=100000)
    tempo: float | None = param(
        None, help="assumed theme tempo, quarter notes per minute (default: the file's, else 100)",
        minimum=10, maximum=600, metavar="BPM",
    )  # fmt: skip
    tempo_factors: tuple[float, ...] = param(
        (1.0,), help="extra global scalings of the query, e.g. 0.5,1,2 (slower, wider tempo range)",
        minimum=0.1, maximum=10, metavar="LIST",
    )  # fmt: skip
    transpose: bool = param(True, help="match at the notated pitch only (default: in all 12 transpositions)")
    min_confidence: float | None = min_confidence_param("the threshold of the features' model, chosen on the "
                                                        "validation split")  # fmt: skip
    show_all: bool = show_all_param()
    dask: str | None = dask_param()


#: said when "auto" finds no learned chroma: plain chroma's confidence lets through about a third of the absent themes
#: (docs/benchmarks.md, "Confidence of theme and audio matches")
PLAIN_CHROMA_WARNING = (
    "features: this collection has no learned chroma, and plain chroma's confidence lets about a third of absent "
    "themes through; 'mirsearch index PATH -c COLLECTION --features chroma,learned' adds it"
)


def resolve_features(collection, features: str) -> str:
    """``"auto"`` -> the best theme features the collection has (learned chroma, else chroma)."""
    if features != "auto":
        return features
    return "learned" if "learned" in collection.feature_kinds else "chroma"


def resolve_cascade(cascade: str, features: str) -> str:
    """``"auto"`` -> ``"notes"`` on learned chroma, else ``"exhaustive"``."""
    if cascade != "auto":
        return cascade
    return "notes" if features == "learned" else "exhaustive"


@register("theme", request=ThemeRequest, area="search", summary="find where a theme is played")
def run_theme(context: Context, request: ThemeRequest) -> SearchResult:
    from mirsearch.search.cascade import THEME_PRESETS, cascade_search_theme
    from mirsearch.search.theme import default_query_tail, search_theme

    coll = context.require_collection("theme")
    features = resolve_features(coll, request.features)
    cascade = resolve_cascade(request.cascade, features)
    dask = cluster_spec(request)
    if dask is not None and cascade != "exhaustive":
        # a cascade reads only its candidates' features: it runs here, with the answer a local search gives
        log.info("theme: the %s cascade runs in this process (only the exhaustive search is sharded)", cascade)
        dask = None
    options = {  # more matches than shown: the other recordings' best costs are the confidence's background
        "top": request.top + BACKGROUND * request.per_recording,
        "per_recording": request.per_recording,
        "features": features,
        "tempo_bpm": request.tempo,
        "tempo_factors": request.tempo_factors,
        "transpositions": tuple(range(12)) if request.transpose else (0,),
        "query_tail": default_query_tail(features),  # the search, its cascade and its confidence build one query
    }
    stats: dict = {}
    t0 = time.perf_counter()
    theme = request.query.theme
    if dask is not None:
        from mirsearch.cluster import sharded

        matches = sharded(dask).theme(coll, theme, **options)
    elif cascade == "exhaustive":
        matches = search_theme(coll, theme, **options)
    else:
        preset = THEME_PRESETS[cascade].with_candidates(request.candidates)
        matches = cascade_search_theme(coll, theme, cascade=preset, stats=stats, **options)
    t1 = time.perf_counter()
    confidence = search_confidences(coll, theme, matches, features=features, tempo_bpm=request.tempo,
                                    transpositions=options["transpositions"],
                                    query_tail=options["query_tail"])  # fmt: skip
    stats["confidence_ms"] = round((time.perf_counter() - t1) * 1000, 1)
    shown, rejected = _split_by_confidence(matches, confidence, features=features, request=request)
    stats["ms"] = round((time.perf_counter() - t0) * 1000, 1)
    query = version_block(
        theme=theme.to_string(),
        source=request.query.source,
        **{
            **request.params(),
            "features": features,
            "cascade": cascade,
            "dask": dask,
            "query_tail": options["query_tail"],
        },
    )
    warnings = request.query.warnings()
    if request.features == "auto" and features == "chroma":  # the collection has no learned chroma
        warnings.append(PLAIN_CHROMA_WARNING)
    return SearchResult(shown, query, warnings, _json_stats(stats), rejected)


def _split_by_confidence(matches: list[Match], confidence, *, features: str, request: ThemeRequest):
    """``(shown, rejected)``: each at most ``top`` matches, with ``confidence`` set on every match."""
    threshold = DEFAULT_THRESHOLDS.get(features, 0.0) if request.min_confidence is None else request.min_confidence
    return split_by_confidence(matches, confidence, threshold=threshold, show_all=request.show_all, top=request.top)


def _json_stats(stats: dict) -> dict:
    return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in stats.items() if not k.endswith("_ids")}
