"""Tasks ``identify`` (which recording is this excerpt from, where, at what speed; or "not found"),
``identify-scan`` (every identified stretch of a long file) and ``dedupe`` (recordings that contain each other),
over the collection's fingerprints (:mod:`mirsearch.search.identify`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from mirsearch.search.audio_query import AudioQuery
from mirsearch.service.cluster import cluster_spec, dask_param
from mirsearch.service.core import Context, Request, param, query_field, register, version_block

#: standout of the peak overlap needed for "found" (the calibrated default of mirsearch.search.identify; a test
#: keeps the two equal; not imported here so that ``mirsearch --help`` stays fast)
MIN_SCORE = 5.0


@dataclass(frozen=True)
class IdentifyRequest(Request):
    """Parameters of an identification."""

    query: AudioQuery = query_field("the audio excerpt (1 s to 10 min; a few seconds are enough)")
    top: int = param(5, help="matches to return at most", minimum=1, maximum=100)
    min_score: float = param(
        MIN_SCORE, help="standout of the matched peaks over wrong alignments needed for a match; less: 'not found' "
        "(calibrated default)", minimum=0, maximum=10000,
    )  # fmt: skip
    max_speed_change: float = param(
        0.12, help="largest speed / tempo change searched, as a fraction (0.12: 0.89x to 1.12x)",
        minimum=0.01, maximum=0.3,
    )  # fmt: skip
    max_pitch_shift: float = param(1.5, help="largest pitch shift searched besides speed (semitones)",
                                   minimum=0, maximum=3)  # fmt: skip
    dask: str | None = dask_param()


@dataclass(frozen=True)
class ScanRequest(IdentifyRequest):
    """Parameters of a scan of a long file."""

    query: AudioQuery = query_field("the long recording to scan (a tape, a broadcast)")
    window: float = param(10.0, help="length of the scanned windows (s)", minimum=2, maximum=120)
    hop: float = param(5.0, help="step between windows (s)", minimum=0.5, maximum=120)


@dataclass(frozen=True)
class DedupeRequest(Request):
    """Parameters of a duplicate search."""

    min_score: float = param(MIN_SCORE, help="standout of the matched peaks needed in each probed window",
                             minimum=0, maximum=10000)  # fmt: skip
    window: float = param(10.0, help="length of the three probed windows of each recording (s)", minimum=2,
                          maximum=120)  # fmt: skip


@dataclass
class IdentifyAnswer:
    """Matches (best first; empty: not found), the settings used and timings."""

    matches: list
    query: dict
    stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"matches": [m.to_dict() for m in self.matches], "query": self.query, "stats": self.stats}


@dataclass
class ScanAnswer:
    """Identified stretches of a long file, in time order."""

    stretches: list
    query: dict
    stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"stretches": [s.to_dict() for s in self.stretches], "query": self.query, "stats": self.stats}


@dataclass
class DedupeAnswer:
    """Pairs of recordings where the first is contained in (or the same as) the second."""

    duplicates: list
    query: dict
    stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"duplicates": [d.to_dict() for d in self.duplicates], "query": self.query, "stats": self.stats}


def _options(request):
    from mirsearch.search.identify import IdentifyOptions

    return IdentifyOptions(
        top=getattr(request, "top", 5),
        min_score=request.min_score,
        max_speed_change=getattr(request, "max_speed_change", 0.12),
        max_pitch_shift=getattr(request, "max_pitch_shift", 1.5),
    )


def _samples(query: AudioQuery, task: str):
    from mirsearch.errors import ParameterError

    if query.samples is None:
        raise ParameterError(f"{task}: the query must be audio samples, not chroma")
    return query.samples, query.sr


def _query_block(request, duration: float) -> dict:
    params = {**request.params(), "dask": cluster_spec(request)}
    return version_block(audio=request.query.name, duration=round(duration, 3), **params)


def _on_index(coll, request, work):
    """``work(index)``: the collection's fingerprint index (None), or its shards on the ``dask`` cluster."""
    dask = cluster_spec(request)
    if dask is None:
        return work(None)
    from mirsearch.cluster import sharded

    return sharded(dask).fingerprints(coll, work)


@register("identify", request=IdentifyRequest, area="search", summary="which recording is this excerpt from?")
def run_identify(context: Context, request: IdentifyRequest) -> IdentifyAnswer:
    from mirsearch.search.identify import identify

    coll = context.require_collection("identify")
    y, sr = _samples(request.query, "identify")
    t0 = time.perf_counter()
    result = _on_index(coll, request, lambda index: identify(coll, y, sr=sr, options=_options(request), index=index))
    stats = {"ms": round((time.perf_counter() - t0) * 1000, 1), "hashes": result.n_hashes}
    query = _query_block(request, result.query_duration)
    return IdentifyAnswer(result.matches, query, stats)


@register("identify-scan", request=ScanRequest, area="search", summary="which recordings does a long file contain?")
def run_scan(context: Context, request: ScanRequest) -> ScanAnswer:
    from mirsearch.search.identify import scan

    coll = context.require_collection("identify-scan")
    y, sr = _samples(request.query, "identify-scan")
    t0 = time.perf_counter()
    options = _options(request)
    result = _on_index(
        coll, request, lambda index: scan(coll, y, sr=sr, window=request.window, hop=request.hop, options=options,
                                          index=index)
    )  # fmt: skip
    stats = {"ms": round((time.perf_counter() - t0) * 1000, 1)}
    query = _query_block(request, result.query_duration)
    return ScanAnswer(result.stretches, query, stats)


@register("dedupe", request=DedupeRequest, area="collection", summary="recordings that contain each other")
def run_dedupe(context: Context, request: DedupeRequest) -> DedupeAnswer:
    from mirsearch.search.identify import dedupe

    coll = context.require_collection("dedupe")
    t0 = time.perf_counter()
    found = dedupe(coll, window=request.window, options=_options(request))
    stats = {"ms": round((time.perf_counter() - t0) * 1000, 1), "recordings": len(coll.recordings())}
    return DedupeAnswer(found, version_block(**request.params()), stats)


__all__ = ["DedupeRequest", "IdentifyAnswer", "IdentifyRequest", "ScanAnswer", "ScanRequest", "run_identify"]
