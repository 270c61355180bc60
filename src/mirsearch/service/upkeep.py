"""Tasks that keep a collection in step with its files: ``list``, ``remove``, ``prune`` and ``relocate``.

They mirror :mod:`mirsearch.collection.upkeep`; none recomputes a feature (``relocate`` checks content hashes).
"""

from __future__ import annotations

from dataclasses import dataclass

from mirsearch.errors import ParameterError
from mirsearch.service.core import Context, Request, param, query_field, register, version_block


@dataclass(frozen=True)
class ListRequest(Request):
    """Parameters of ``list``."""

    missing: bool = param(False, help="only the recordings whose file is gone (what 'prune' would remove)")


@dataclass(frozen=True)
class RemoveRequest(Request):
    """Parameters of ``remove``."""

    paths: tuple = query_field("files, or folders whose recordings are all removed (the audio files stay)")


@dataclass(frozen=True)
class PruneRequest(Request):
    """Parameters of ``prune``."""

    dry_run: bool = param(False, help="only list what would be removed")


@dataclass(frozen=True)
class RelocateRequest(Request):
    """Parameters of ``relocate``."""

    old: str = query_field("the folder (or file) where the recordings were")
    new: str = query_field("where they are now")


@dataclass
class ListResult:
    """The recordings (id, stored path, absolute path, duration, exists)."""

    recordings: list[dict]
    query: dict

    def to_dict(self) -> dict:
        return {"recordings": self.recordings, "count": len(self.recordings), "query": self.query}


@dataclass
class ReportResult:
    """A task's report (an object with ``to_dict()``, whose attributes read through) and the settings used."""

    report: object
    query: dict

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("report", "query"):  # copying and unpickling ask before init
            raise AttributeError(name)
        return getattr(self.report, name)

    def to_dict(self) -> dict:
        return {**self.report.to_dict(), "query": self.query}


#: what ``remove``, ``prune`` or ``relocate`` did: a :class:`mirsearch.collection.upkeep.UpkeepReport`
#: (``removed``, ``moved``, ``problems``) and the settings used
UpkeepResult = ReportResult


@register("list", request=ListRequest, area="collection", summary="list the recordings of a collection")
def run_list(context: Context, request: ListRequest) -> ListResult:
    coll = context.require_collection("list")
    rows = coll.listing()
    if request.missing:
        rows = [r for r in rows if not r["exists"]]
    return ListResult(rows, version_block(**request.params()))


@register("remove", request=RemoveRequest, area="collection", summary="remove recordings", writes=True)
def run_remove(context: Context, request: RemoveRequest) -> UpkeepResult:
    coll = context.require_collection("remove")
    if not request.paths:
        raise ParameterError("remove: no paths given")
    report = coll.remove(list(request.paths))
    return UpkeepResult(report, version_block(paths=[str(p) for p in request.paths]))


@register(
    "prune", request=PruneRequest, area="collection", summary="remove recordings whose files are gone", writes=True
)
def run_prune(context: Context, request: PruneRequest) -> UpkeepResult:
    from mirsearch.collection.upkeep import UpkeepReport

    coll = context.require_collection("prune")
    if request.dry_run:
        report = UpkeepReport(removed=[r["absolute"] for r in coll.listing() if not r["exists"]])
    else:
        report = coll.prune()
    return UpkeepResult(report, version_block(**request.params()))


@register("relocate", request=RelocateRequest, area="collection", summary="recordings moved: new paths", writes=True)
def run_relocate(context: Context, request: RelocateRequest) -> UpkeepResult:
    coll = context.require_collection("relocate")
    report = coll.relocate(request.old, request.new)
    return UpkeepResult(report, version_block(old=str(request.old), new=str(request.new)))


__all__ = ["ListRequest", "PruneRequest", "RelocateRequest", "RemoveRequest", "ReportResult", "UpkeepResult"]
