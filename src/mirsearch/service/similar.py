"""Tasks ``similar`` (recordings of the collection that sound like one of its recordings: "more like this") and
``similar-audio`` (recordings that sound like an audio file), by the similarity vectors of
:mod:`mirsearch.describe.similarity` (collections indexed with ``--features ...,timbre``).
With ``dask`` the vectors are shards on a Dask cluster's workers (:mod:`mirsearch.cluster.similar`), which rank
every recording exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mirsearch.search.audio_query import AudioQuery
from mirsearch.service.cluster import cluster_spec, dask_param
from mirsearch.service.core import Context, Request, param, query_field, register, version_block


@dataclass(frozen=True, kw_only=True)
class SimilarRequest(Request):
    """Parameters of a search by similarity to a recording of the collection."""

    top: int = param(20, help="recordings to return at most, nearest first", minimum=1, maximum=1000)
    start: float | None = param(None, minimum=0, help="only the passage from here (s) is the query (more like this "
                                "passage; default: the whole recording)")  # fmt: skip
    end: float | None = param(None, minimum=0, help="only the passage up to here (s) is the query")
    recording: int = query_field("recording id (from `mirsearch list`); it is left out of its own answer")
    dask: str | None = dask_param()


@dataclass(frozen=True, kw_only=True)
class SimilarAudioRequest(Request):
    """Parameters of a search by similarity to an audio file."""

    top: int = param(20, help="recordings to return at most, nearest first", minimum=1, maximum=1000)
    query: AudioQuery = query_field("the audio file (any length; the whole file is described)")
    dask: str | None = dask_param()


@dataclass(frozen=True)
class SimilarAnswer:
    """Recordings nearest first (:class:`mirsearch.describe.similarity.SimilarMatch`), the settings used and
    timings."""

    matches: tuple
    query: dict
    stats: dict

    def to_dict(self) -> dict:
        found = [m.to_dict() for m in self.matches]
        return {"matches": found, "query": self.query, "stats": self.stats}


def _answer(coll, index, vector, parts, *, top: int, exclude: int | None, query: dict,
            started: float) -> SimilarAnswer:  # fmt: skip
    from mirsearch.describe.similarity import SimilarMatch, rerank_by_parts, similar_search

    t = time.perf_counter()
    if parts is None or getattr(index, "parts", None) is not None:
        found = similar_search(index, vector, top=top, exclude=exclude, parts=parts)
    else:  # shards on a cluster: their whole-vector candidates ranked by parts here
        found = rerank_by_parts(index, coll, vector, parts, top=top, exclude=exclude)
    search_ms = (time.perf_counter() - t) * 1000
    paths = {r.id: r.path for r in (coll.recording(rid) for rid, _ in found)}
    views = _views(index, vector, [rid for rid, _ in found])
    matches = tuple(SimilarMatch(recording_id=rid, recording=paths[rid], distance=d,
                                 views={k: v[i] for k, v in views.items()})
                    for i, (rid, d) in enumerate(found))  # fmt: skip
    stats = {"recordings": len(index), "index": index.kind, "search_ms": round(search_ms, 3),
             "total_ms": round((time.perf_counter() - started) * 1000, 3)}  # fmt: skip
    return SimilarAnswer(matches=matches, query=query, stats=stats)


def _views(index, vector, ids: list[int]) -> dict:
    """Each found recording's distance from the query (not expanded) per view: ``{view: (n,)}``."""
    from mirsearch.describe.similarity_vector import view_distances

    if not ids:
        return {}
    Z = [index.vector(rid) for rid in ids]
    return view_distances(Z, vector, squared_from=index.normaliser.squared_from)


def has_similarity_features(coll) -> bool:
    """Whether the collection stores what a search by similarity reads (indexed with ``--features ...,timbre``)."""
    from mirsearch.describe.similarity import STORED_KIND

    return STORED_KIND in coll.feature_kinds


def _index(coll, request):
    """The collection's similarity index, or its shards on the request's Dask cluster (the same interface)."""
    dask = cluster_spec(request)
    if dask is None:
        from mirsearch.describe.similarity import collection_index

        return collection_index(coll)
    from mirsearch.cluster import sharded

    return sharded(dask).similarity(coll)


@register("similar", request=SimilarRequest, area="describe",
          summary="recordings that sound like a recording of the collection (more like this)")  # fmt: skip
def run_similar(context: Context, request: SimilarRequest) -> SimilarAnswer:
    started = time.perf_counter()
    coll = context.require_collection("similar")
    coll.recording(request.recording)  # a clear error for an unknown id
    index = _index(coll, request)
    from mirsearch.describe.similarity import COMPARE_PARTS, passage_vector, stored_parts

    vector = index.vector(request.recording)
    parts, passage = None, None
    if request.start is not None or request.end is not None:  # a passage: its own vector, compared as a whole
        raw = passage_vector(coll, request.recording, start=request.start, end=request.end,
                             codebook=index.normaliser.codebook)  # fmt: skip
        vector = index.normaliser(raw[None, : len(index.normaliser.mean)])[0]
        passage = [request.start or 0.0, request.end]
    elif getattr(index, "parts", None) is not None:
        parts = index.part_vectors(request.recording)
    elif COMPARE_PARTS:
        parts = stored_parts(coll, request.recording, index.normaliser)
    query = version_block(recording_id=request.recording, top=request.top, normalised=index.normaliser.source,
                          textures=index.normaliser.codebook is not None, parts=None if parts is None else len(parts),
                          passage=passage, dask=cluster_spec(request))  # fmt: skip
    return _answer(coll, index, vector, parts, top=request.top, exclude=request.recording, query=query,
                   started=started)  # fmt: skip


@register("similar-audio", request=SimilarAudioRequest, area="describe",
          summary="recordings that sound like an audio file")  # fmt: skip
def run_similar_audio(context: Context, request: SimilarAudioRequest) -> SimilarAnswer:
    from mirsearch.describe.similarity import COMPARE_PARTS, audio_parts

    started = time.perf_counter()
    coll = context.require_collection("similar-audio")
    index = _index(coll, request)
    q = request.query
    if q.samples is None:
        from mirsearch.errors import ParameterError

        raise ParameterError("similar-audio: the query must be audio (not chroma)")
    raw, raw_parts = audio_parts(q.samples, sr=q.sr, codebook=index.normaliser.codebook)
    dim = len(index.normaliser.mean)  # the views the collection has (e.g. indexed where YAMNet was not installed)
    raw, raw_parts = raw[:dim], raw_parts[:, :dim]
    vector = index.normaliser(raw[None, :])[0]
    parts = index.normaliser(raw_parts) if COMPARE_PARTS or getattr(index, "parts", None) is not None else None
    query = version_block(audio=q.name, top=request.top, normalised=index.normaliser.source,
                          textures=index.normaliser.codebook is not None, parts=None if parts is None else len(parts),
                          dask=cluster_spec(request))  # fmt: skip
    return _answer(coll, index, vector, parts, top=request.top, exclude=None, query=query, started=started)
