"""Search by similarity ("more like this"): the recordings nearest to a recording of the collection.

The task runs where the other searches run: in a search worker process (its budgets), or, with
``mirsearch serve --dask``, in the server with its work on the cluster (the cluster is the server's choice, not a
client's parameter).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from mirsearch.server.models import ERRORS, request_model, request_values
from mirsearch.server.routers import RecordingId, ServerDep
from mirsearch.server.routers.search import SERVER_SIDE
from mirsearch.server.workers import task
from mirsearch.service.similar import SimilarRequest

router = APIRouter(tags=["describe"])

SimilarQuery = request_model(SimilarRequest, "Similar", exclude=SERVER_SIDE)


class SimilarMatchOut(BaseModel):
    recording: str = Field(description="path relative to the collection's audio root")
    recording_id: int
    distance: float = Field(
        description="distance to the (expanded) query: absolute differences of the standardised features, the YAMNet "
        "and musicnn views by cosine, the texture histograms by their Hellinger form; about 1 for two typical "
        "recordings of the collection; nearest first"
    )
    views: dict[str, float] | None = Field(
        default=None,
        description="distance from the query itself in each view (timbre, mfcc, yamnet, musicnn, textures; 1: a "
        "typical pair)",
    )


class SimilarOut(BaseModel):
    matches: list[SimilarMatchOut]
    query: dict
    stats: dict


@router.get("/api/recordings/{recording_id}/similar", response_model=SimilarOut, responses=ERRORS)
async def similar(recording_id: RecordingId, params: Annotated[SimilarQuery, Query()], server: ServerDep):
    """Recordings that sound like this one, nearest first, itself left out (task ``similar``)."""
    request = SimilarRequest(recording=recording_id, **request_values(params))
    result = await server.task(task, "similar", request)
    d = result.to_dict()
    for m in d["matches"]:
        m["recording"] = server.shown_path(m["recording"])
    return d
