"""Tasks ``passages`` (an audio excerpt: where do similar passages occur?) and ``versions`` (which recordings
are versions of this one?), both over the collection's CENS (:mod:`mirsearch.search.audio`,
:mod:`mirsearch.search.versions`; the shingle index with ``index`` other than ``exhaustive``).

The query is an :class:`AudioQuery`, decoded and validated at the interface (:meth:`AudioQuery.from_file`).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

from mirsearch.errors import ParameterError
from mirsearch.search.audio_query import AudioQuery
from mirsearch.search.results import Match
from mirsearch.service.cluster import cluster_spec, dask_param
from mirsearch.service.core import Context, Request, param, query_field, register, version_block
from mirsearch.service.theme import min_confidence_param, show_all_param

log = logging.getLogger(__name__)

#: chroma the CENS is derived from; "auto": the collection's stored chroma, else the matching chroma (computed
#: from the audio files, for a collection indexed with learned features only)
AUDIO_FEATURES = ("auto", "chroma", "matching")
METHODS = ("scaling", "sdtw")
#: "exhaustive": CENS matching everywhere; else the shingle index of that kind (built on first use)
AUDIO_INDEXES = ("exhaustive", "hnsw", "kdtree", "exact")


@dataclass(frozen=True)
class PassagesRequest(Request):
    """Parameters of a passage search with an audio excerpt."""

    query: AudioQuery = query_field("the audio excerpt (10-30 s)")
    top: int = param(10, help="number of matches", minimum=1, maximum=1000)
    per_recording: int | None = param(None, help="matches per recording at most (default: top)", minimum=1,
                                      maximum=1000)  # fmt: skip
    features: str = param(
        "auto", choices=AUDIO_FEATURES,
        help="chroma of the CENS: the collection's (auto, chroma) or the matching chroma computed from the audio",
    )  # fmt: skip
    method: str = param(
        "scaling", choices=METHODS,
        help="exhaustive search: multiple tempo scaling of the query (default) or subsequence DTW; either way the "
        "best 20 candidates and the best 10 of a coarse 1 Hz search are re-scored at 5 Hz",
    )  # fmt: skip
    index: str = param(
        "exhaustive", choices=AUDIO_INDEXES,
        help="exhaustive CENS matching (default) or the shingle index (built on first use; needs a writable "
        "collection)",
    )  # fmt: skip
    transpose: bool = param(True, help="match at the excerpt's key only (default: in all 12 transpositions)")
    min_confidence: float | None = min_confidence_param("the audio model's threshold, chosen on held-out tracks")
    show_all: bool = show_all_param()
    dask: str | None = dask_param()


@dataclass
class PassagesResult:
    """Passages, best first, with the settings used; ``curves`` holds the exhaustive search's matching curves;
    ``rejected`` the best matches below the confidence threshold (not shown)."""

    matches: list[Match]
    query: dict
    curves: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    rejected: list[Match] = field(default_factory=list)

    def to_dict(self) -> dict:
        matches = [m.to_dict() for m in self.matches]
        return {"matches": matches, "query": self.query, "warnings": self.warnings, "stats": self.stats,
                "rejected": [m.to_dict() for m in self.rejected]}  # fmt: skip


def resolve_audio_features(coll, features: str) -> str:
    """``"auto"`` -> ``"chroma"`` when the collection stores it, else ``"matching"`` (use what is there)."""
    if features != "auto":
        return features
    return "chroma" if "chroma" in coll.feature_kinds else "matching"


def _audio_block(request, query: AudioQuery, **resolved) -> dict:
    return version_block(audio=query.name, duration=round(query.duration, 3), **{**request.params(), **resolved})


@register("passages", request=PassagesRequest, area="search", summary="find passages that sound like an excerpt")
def run_passages(context: Context, request: PassagesRequest) -> PassagesResult:
    coll = context.require_collection("passages")
    features = resolve_audio_features(coll, request.features)
    keys = tuple(range(12)) if request.transpose else (0,)
    dask = cluster_spec(request)
    t0 = time.perf_counter()
    if request.index != "exhaustive":
        if features != "chroma" or request.method != "scaling":
            raise ParameterError(f"index={request.index!r}: the shingle index takes neither features nor method")
        if dask is not None:
            raise ParameterError(f"index={request.index!r}: on a Dask cluster only the exhaustive search is sharded")
        matches, curves = _search_index(coll, request, keys), []
    else:
        from mirsearch.features.audio_match import PASSAGE_MATCH
        from mirsearch.search.audio import PassageOptions, search_audio

        match = PASSAGE_MATCH.replace(features=features, transpositions=keys)
        options = PassageOptions(
            top=request.top, method=request.method, per_recording=request.per_recording, curves=True, match=match
        )
        if dask is not None:
            from mirsearch.cluster import sharded
            from mirsearch.search.audio import first_stage_options, refine_found, resolve_kind

            options = resolve_kind(coll, options)  # the shards search the stored kind a local search would
            found = sharded(dask).passages(coll, request.query, first_stage_options(options))
            found.matches = refine_found(coll, request.query, found.matches, options, found.curves)
        else:
            found = search_audio(coll, request.query, options)
        matches, curves = found.matches, found.curves
    shown, rejected, warnings = matches, [], []
    if request.index == "exhaustive":
        shown, rejected = _confident(matches, curves, request)
    else:  # shingle distances are another scale than the CENS costs the audio model was fitted on
        warnings.append(f"index={request.index}: no confidence (calibrated for the exhaustive search only)")
    stats = {"ms": round((time.perf_counter() - t0) * 1000, 1)}
    query = _audio_block(request, request.query, features=features, dask=dask)
    return PassagesResult(shown, query, curves, stats, warnings, rejected)


def _confident(matches: list[Match], curves: list, request: PassagesRequest) -> tuple[list[Match], list[Match]]:
    """``(shown, rejected)`` by the audio confidence (:func:`mirsearch.search.confidence.audio_confidences`) of the
    exhaustive search's matches."""
    from mirsearch.search.confidence import audio_confidences, load_audio_model, split_by_confidence

    confidence = audio_confidences(matches, curves)
    threshold = load_audio_model().threshold if request.min_confidence is None else request.min_confidence
    return split_by_confidence(matches, confidence, threshold=threshold, show_all=request.show_all, top=request.top)


def _search_index(coll, request: PassagesRequest, keys: tuple) -> list[Match]:
    from mirsearch.index.shingle_index import IndexSpec
    from mirsearch.search.shingles import SHINGLE_MATCH, ShingleSearchOptions, search_shingles

    options = ShingleSearchOptions(
        top=request.top,
        per_recording=request.per_recording or 1,
        match=SHINGLE_MATCH.replace(transpositions=keys),
        index=IndexSpec(kind=request.index),
    )
    return search_shingles(coll, request.query, options)


@dataclass(frozen=True)
class VersionsRequest(Request):
    """Parameters of version identification."""

    query: AudioQuery = query_field("the query recording (a whole track or a long excerpt)")
    top: int = param(10, help="number of recordings listed", minimum=1, maximum=1000)
    transpose: bool = param(True, help="only versions in the same key")
    shingle: float = param(20.0, help="shingle length in seconds (hop: half of it)", minimum=2, maximum=300,
                           metavar="S")  # fmt: skip
    features: str = param("auto", choices=AUDIO_FEATURES, help="chroma of the CENS (auto: the collection's)")
    exclude: tuple[int, ...] | None = param(
        None, help="recording ids left out (e.g. the query's own recording)", minimum=1,
        metavar="IDS",
    )  # fmt: skip


@dataclass
class VersionsResult:
    """Recordings ranked as versions of the query, best first (``cost`` is the version score)."""

    matches: list[Match]
    query: dict
    excluded: list[int] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        matches = [m.to_dict() for m in self.matches]
        return {"matches": matches, "query": self.query, "excluded": self.excluded, "stats": self.stats}


def recordings_at(coll, path: str | os.PathLike) -> tuple[int, ...]:
    """Ids of the collection's recordings stored from the file ``path`` (to leave a query's own file out)."""
    real = os.path.realpath(path)
    return tuple(r.id for r in coll.recordings() if os.path.realpath(r.path) == real)


@register("versions", request=VersionsRequest, area="search", summary="find other versions of a recording")
def run_versions(context: Context, request: VersionsRequest) -> VersionsResult:
    from mirsearch.search.versions import VERSION_MATCH, VersionOptions, identify_versions

    coll = context.require_collection("versions")
    features = resolve_audio_features(coll, request.features)
    excluded = sorted(set(request.exclude or ()))
    match = VERSION_MATCH.replace(features=features, transpositions=tuple(range(12)) if request.transpose else (0,))
    options = VersionOptions(
        top=request.top, shingle_seconds=request.shingle, hop_seconds=request.shingle / 2, exclude=tuple(excluded),
        match=match,
    )  # fmt: skip
    t0 = time.perf_counter()
    matches = identify_versions(coll, request.query, options)
    stats = {"ms": round((time.perf_counter() - t0) * 1000, 1)}
    return VersionsResult(matches, _audio_block(request, request.query, features=features), excluded, stats)


def read_audio_query(path: str | os.PathLike, *, max_seconds: float | None = None) -> AudioQuery:
    """An :class:`AudioQuery` from a file; ``max_seconds`` refuses longer audio (also a stream of unknown length,
    while it is decoded) with a one-line message."""
    if max_seconds is None:
        return AudioQuery.from_file(path)
    from mirsearch.audio import SR, display_name, load_audio

    y, sr = load_audio(path, sr=SR, max_duration=max_seconds)
    return AudioQuery.from_samples(y, sr, name=display_name(path))


__all__ = ["AudioQuery", "PassagesRequest", "PassagesResult", "VersionsRequest", "VersionsResult", "read_audio_query"]
__all__ += ["recordings_at"]
