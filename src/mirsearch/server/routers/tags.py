"""Tag endpoints: the vocabulary, a recording's tags (from the stored "tags" kind) and recordings ranked by a tag."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from mirsearch.server.models import ERRORS, request_model, request_values
from mirsearch.server.routers import RecordingId, ServerDep
from mirsearch.service import run
from mirsearch.service.tags import RecordingTagsRequest, TagListRequest, TagSearchRequest

router = APIRouter(tags=["describe"])

TagSearchQuery = request_model(TagSearchRequest, "TagSearch")


@router.get("/api/tags", responses=ERRORS)
async def tag_vocabulary(server: ServerDep):
    """The tag vocabulary and the collection's taught tags: ``{"tags": [{"name", "group", "description"}]}``."""
    result = await run_in_threadpool(run, "tag-list", TagListRequest(), collection=server.coll)
    return result.to_dict()


@router.get("/api/tags/{tag}/recordings", responses=ERRORS)
async def tag_search(tag: Annotated[str, PathParam(max_length=200)], params: Annotated[TagSearchQuery, Query()],
                     server: ServerDep):  # fmt: skip
    """Recordings ranked by a tag (task ``tag-search``): ``{"tag", "matches": [{"recording", "recording_id",
    "score"}]}``."""
    request = TagSearchRequest(tag=tag, **request_values(params))
    result = await server.search.run(run, "tag-search", request, collection=server.coll)
    d = result.to_dict()
    for m in d["matches"]:
        m["recording"] = await run_in_threadpool(server.shown_path, m["recording"])
    return d


@router.get("/api/recordings/{recording_id}/tags", responses=ERRORS)
async def recording_tags(recording_id: RecordingId, server: ServerDep):
    """A recording's tag probabilities from its stored "tags" features (task ``recording-tags``):
    ``{"recording_id", "tags": {name: p}}``."""
    rec = await run_in_threadpool(server.recording, recording_id)
    result = await server.search.run(
        run, "recording-tags", RecordingTagsRequest(recording=rec.id), collection=server.coll
    )
    return result.to_dict()
