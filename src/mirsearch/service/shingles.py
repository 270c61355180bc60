"""Tasks on the shingle index of a collection (:mod:`mirsearch.index.shingle_index`): ``shingles-build``,
``shingles-search`` (versions of an audio excerpt; ``--cascade``: the proposed recordings verified by an exact
matcher),
``shingles-info`` and ``shingles-remove``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mirsearch.models.embedding import DEFAULT_DIM, DEFAULT_REDUCTION
from mirsearch.search.audio_query import AudioQuery
from mirsearch.service.audio import PassagesResult
from mirsearch.service.core import Context, Request, param, query_field, register, version_block

INDEX_KINDS = ("hnsw", "kdtree", "exact")


@dataclass(frozen=True)
class ShingleIndexRequest(Request):
    """Which shingle index: its reduction, kind and HNSW parameters (``shingles-build``, ``shingles-search``)."""

    reduction: str = param(
        DEFAULT_REDUCTION, metavar="NAME|DIR",
        help="whiten (default: the shingles whitened with the collection's covariance), none (the raw 240-dim "
        "shingles), embedding (shipped), pca (fitted on the collection) or a bundle directory",
    )  # fmt: skip
    dim: int | None = param(
        DEFAULT_DIM, minimum=1, maximum=240, help="dimension of pca / the shipped embedding (6, 12, 30)"
    )
    index: str = param("hnsw", choices=INDEX_KINDS, help="nearest-neighbour index")
    M: int | None = param(None, minimum=2, maximum=512, help="HNSW links per node (build; default 8, 16 above 32 dims)")
    ef_construction: int | None = param(None, minimum=1, maximum=10000,
                                        help="HNSW build list (default 64, 200 above 32 dims)")  # fmt: skip
    ef: int | None = param(None, minimum=1, maximum=10000, help="HNSW search list (default 16, 64 above 32 dims)")
    threads: int = param(1, minimum=1, maximum=64, help="threads for reduction and index build")

    def index_params(self) -> dict:
        """The HNSW parameters given (none for the other kinds)."""
        if self.index != "hnsw":
            return {}
        given = (("M", self.M), ("ef_construction", self.ef_construction), ("ef", self.ef))
        return {key: value for key, value in given if value is not None}


@dataclass(frozen=True)
class ShingleBuildRequest(ShingleIndexRequest):
    """Parameters of ``shingles-build``."""

    rebuild: bool = param(False, help="recompute shingles, refit PCA or the whitening, rebuild the index")
    progress: bool = param(True, help="no progress bars")


@dataclass(frozen=True, kw_only=True)
class ShingleSearchRequest(ShingleIndexRequest):
    """Parameters of ``shingles-search``."""

    query: AudioQuery = query_field("the audio excerpt (20-30 s)")
    top: int = param(10, minimum=1, maximum=1000, help="number of matches")
    k: int = param(64, minimum=1, maximum=4096, help="neighbours per query shingle")
    tempo_factors: tuple[float, ...] | None = param(
        None, minimum=0.1, maximum=10, metavar="LIST", help="query scalings (default 0.6..1.67, 11 factors)"
    )
    all_keys: bool = param(True, help="the excerpt's key only (default: every transposition, as search --audio does)")
    cascade: bool = param(False, help="verify the proposed recordings with an exact matcher (--verifier)")
    verifier: str = param(
        "shingles", choices=("shingles", "passages", "cens"),
        help="stage 2 of --cascade: exact shingle matching on the proposed recordings (default), the passage "
        "search (search --audio) on them, or CENS subsequence DTW in the proposed regions",
    )  # fmt: skip
    update: bool = param(True, help="do not add new recordings to the index first")


@dataclass
class ShingleIndexReport:
    """What a task did to (or found in) the shingle index: a JSON-ready summary and the settings used."""

    summary: dict
    query: dict

    def to_dict(self) -> dict:
        return {**self.summary, "query": self.query}


@register("shingles-build", request=ShingleBuildRequest, area="indexing", summary="build the shingle index")
def run_build(context: Context, request: ShingleBuildRequest) -> ShingleIndexReport:
    from mirsearch.index.shingle_index import ShingleIndex

    coll = context.require_collection("shingles-build")
    t0 = time.perf_counter()
    idx = ShingleIndex.open(
        coll, reduction=request.reduction, dim=request.dim, index=request.index, params=request.index_params(),
        rebuild=request.rebuild, threads=request.threads, progress=request.progress,
    )  # fmt: skip
    size = idx.ann.size_bytes(idx.directory) if idx.directory.is_dir() else 0
    summary = {
        "index": str(idx.directory), "reduction": idx.reduction.name, "kind": request.index, "shingles": len(idx),
        "added": idx.stats.added, "rebuilt": idx.stats.rebuilt, "params": idx.ann.params,
        "size_mb": round(size / 1e6, 2), "seconds": round(time.perf_counter() - t0, 2),
    }  # fmt: skip
    return ShingleIndexReport(summary, version_block(**request.params()))


@register("shingles-search", request=ShingleSearchRequest, area="search", summary="versions with the shingle index")
def run_search(context: Context, request: ShingleSearchRequest) -> PassagesResult:
    from mirsearch.features.audio_match import ALL_KEYS
    from mirsearch.features.shingles import SHINGLE_MATCH
    from mirsearch.index.shingle_index import IndexSpec
    from mirsearch.search.audio_cascade import AudioCascadeOptions, cascade_search_audio
    from mirsearch.search.shingles import ShingleSearchOptions, search_shingles

    coll = context.require_collection("shingles-search")
    match = SHINGLE_MATCH.replace(transpositions=ALL_KEYS if request.all_keys else (0,))
    if request.tempo_factors:
        match = match.replace(tempo_factors=request.tempo_factors)
    params = {**request.index_params(), "threads": request.threads}
    spec = IndexSpec(request.index, request.reduction, request.dim, params, update=request.cascade or request.update)
    t0 = time.perf_counter()
    if request.cascade:
        cascade = AudioCascadeOptions(top=request.top, k=request.k, match=match, index=spec, verifier=request.verifier)
        matches = cascade_search_audio(coll, request.query, cascade)
    else:
        options = ShingleSearchOptions(top=request.top, k=request.k, match=match, index=spec)
        matches = search_shingles(coll, request.query, options)
    stats = {"ms": round((time.perf_counter() - t0) * 1000, 1)}
    query = version_block(audio=request.query.name, duration=round(request.query.duration, 3), **request.params())
    return PassagesResult(matches, query, stats=stats)


@dataclass(frozen=True)
class ShingleInfoRequest(Request):
    """``shingles-info`` and ``shingles-remove`` take no parameters."""


@register("shingles-info", request=ShingleInfoRequest, area="collection", summary="shingle stores and indexes")
def run_info(context: Context, request: ShingleInfoRequest) -> ShingleIndexReport:
    from mirsearch.index.shingle_index import index_inventory

    inventory = index_inventory(context.require_collection("shingles-info"))
    return ShingleIndexReport(inventory, version_block())


@register("shingles-remove", request=ShingleInfoRequest, area="indexing", summary="delete the shingle index",
          writes=True)  # fmt: skip
def run_remove(context: Context, request: ShingleInfoRequest) -> ShingleIndexReport:
    from mirsearch.index.shingle_index import remove_index

    removed = remove_index(context.require_collection("shingles-remove"))
    return ShingleIndexReport({"removed": removed}, version_block())


__all__ = ["AudioQuery", "ShingleBuildRequest", "ShingleIndexReport", "ShingleIndexRequest", "ShingleInfoRequest"]
__all__ += ["ShingleSearchRequest"]
