"""Tasks ``index`` (add recordings to a collection) and ``info`` (what a collection holds)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from mirsearch.errors import ParameterError
from mirsearch.features.registry import STORED_KINDS
from mirsearch.search.results import format_time
from mirsearch.service.cluster import cluster_spec, dask_param
from mirsearch.service.core import Context, Request, param, query_field, register, version_block


@dataclass(frozen=True)
class IndexRequest(Request):
    """Parameters of an indexing run (new and changed files only)."""

    paths: tuple = query_field("audio files and folders (searched recursively)")
    features: tuple[str, ...] | None = param(
        None, choices=STORED_KINDS, metavar="KINDS",
        help="comma-separated stored feature kinds: chroma, learned (chroma of the shipped CTC model: better theme "
        "matches and confidences), chroma_upper (chroma above G3: audio matching), fingerprint (audio "
        "identification), segments (speech/music), tags (auto-tagging; brings timbre along), timbre (search by "
        "similarity, taught tags); default: the collection's, and chroma,learned,chroma_upper for a new collection",
    )  # fmt: skip
    feature_rate: float | None = param(
        None, minimum=1, maximum=100, metavar="HZ", help="frames per second (default 10 for a new collection)"
    )
    jobs: int = param(min(2, os.cpu_count() or 1), minimum=1, maximum=64, help="worker processes (without --dask)",
                      flag="--jobs")  # fmt: skip
    progress: bool = param(True, help="no progress bar")
    dask: str | None = dask_param()


@dataclass
class IndexResult:
    """What an indexing run did (:class:`~mirsearch.collection.AddReport` and the settings)."""

    report: object
    query: dict

    @property
    def failed(self) -> list[tuple[str, str]]:
        return self.report.failed

    def to_dict(self) -> dict:
        return {**self.report.to_dict(), "query": self.query}


def with_implied_kinds(kinds) -> list[str]:
    """``tags`` brings ``timbre`` along: search by similarity and taught tags use the timbre vectors (issue 20's
    ``index --features tags`` then ``similar``; about 1 % of the indexing time)."""
    kinds = list(kinds)
    return kinds + ["timbre"] if "tags" in kinds and "timbre" not in kinds else kinds


@register("index", request=IndexRequest, area="indexing", summary="add recordings to a collection", writes=True)
def run_index(context: Context, request: IndexRequest) -> IndexResult:
    coll = context.require_collection("index")
    if not request.paths:
        raise ParameterError("index: no paths given")
    if request.features is not None or request.feature_rate is not None:
        coll.set_features(with_implied_kinds(request.features or coll.feature_kinds), feature_rate=request.feature_rate)
    producer, dask = None, cluster_spec(request)
    if dask is not None:  # decoding and extraction on the cluster's workers (--jobs does not apply)
        from mirsearch.cluster import connect, dask_producer

        producer = dask_producer(connect(dask))
    report = coll.add(
        list(request.paths), jobs=request.jobs, progress=request.progress, producer=producer,
        on_result=context.on_result,
    )  # fmt: skip
    query = version_block(paths=[os.fspath(p) for p in request.paths], **request.params())
    query["features"] = list(coll.feature_kinds)
    return IndexResult(report, query)


def count_inputs(paths) -> int:
    """How many files an indexing run over ``paths`` will report on (audio files found, plus missing paths)."""
    from mirsearch.collection.collection import expand_paths

    files, missing = expand_paths(paths)
    return len(files) + len(missing)


@dataclass(frozen=True)
class InfoRequest(Request):
    """Parameters of ``info``."""

    recordings: bool = param(False, help="also list every recording")


@dataclass
class InfoResult:
    """The collection's summary (``Collection.info()``) and, if asked, its recordings."""

    info: dict
    recordings: list[dict] | None = None
    query: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = dict(self.info)
        if self.recordings is not None:
            out["recording_list"] = self.recordings
        out["query"] = self.query
        return out


@register("info", request=InfoRequest, area="collection", summary="show what a collection holds")
def run_info(context: Context, request: InfoRequest) -> InfoResult:
    coll = context.require_collection("info")
    recs = [r.to_dict() for r in coll.recordings()] if request.recordings else None
    return InfoResult(coll.info(), recs, version_block(**request.params()))


__all__ = ["IndexRequest", "IndexResult", "InfoRequest", "InfoResult", "format_time"]
