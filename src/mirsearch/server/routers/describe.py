"""Description endpoints: speech / music segments of a recording of the collection or of an uploaded file.

A recording indexed with ``--features segments`` is answered from its stored probabilities (no audio decoded);
otherwise its file is segmented on the slow queue. An uploaded file is segmented in the sandbox (a child
process with the server's time and memory budget, :mod:`mirsearch.server.sandbox`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from mirsearch.audio import AUDIO_EXTENSIONS
from mirsearch.server.models import ERRORS, request_model, request_values
from mirsearch.server.routers import RecordingId, ServerDep
from mirsearch.server.uploads import check_audio_header, discard, new_folder, save_upload
from mirsearch.service import run
from mirsearch.service.segment import RecordingSegmentsRequest, SegmentRequest

router = APIRouter(tags=["describe"])

SegmentsQuery = request_model(RecordingSegmentsRequest, "RecordingSegments")
SegmentForm = request_model(SegmentRequest, "SegmentUpload", upload="audio file: wav, flac, ogg, opus or mp3")


class SegmentOut(BaseModel):
    """One labelled span in seconds."""

    start: float
    end: float
    label: str = Field(description="noise, speech, music or speech+music")


class SegmentsOut(BaseModel):
    """Segments that are sorted, do not overlap and cover ``[0, duration]``."""

    model_config = ConfigDict(extra="allow")

    path: str = Field(description="file name (uploads) or path relative to the collection's audio root")
    duration: float
    recording_id: int | None = None
    segments: list[SegmentOut]
    stored: bool | None = Field(None, description="answered from the stored probabilities (no audio decoded)")


@router.get("/api/recordings/{recording_id}/segments", response_model=SegmentsOut, responses=ERRORS)
async def recording_segments(recording_id: RecordingId, params: Annotated[SegmentsQuery, Query()], server: ServerDep):
    """Speech / music segments of a recording (task ``recording-segments``)."""
    request = RecordingSegmentsRequest(recording=recording_id, **request_values(params))
    rec = await run_in_threadpool(server.recording, recording_id)
    stored = "segments" in await run_in_threadpool(server.coll.catalog.feature_keys, rec.id)
    queue = server.search if stored else server.slow
    result = await queue.run(run, "recording-segments", request, collection=server.coll)
    d = result.to_dict()
    d["path"] = await run_in_threadpool(server.shown_path, rec.path)
    d["stored"] = stored
    return d


def segment_upload(request: SegmentRequest):
    """Run the ``segment`` task (in the sandbox's child process)."""
    return run("segment", request).to_dict()


@router.post("/api/segment", response_model=SegmentsOut, responses=ERRORS)
async def segment_uploaded(params: Annotated[SegmentForm, Form()], server: ServerDep):
    """Speech / music segments of an uploaded audio file (task ``segment``), up to the server's longest
    recording."""
    folder = new_folder(server.tmp)
    try:
        kw = {"allowed": AUDIO_EXTENSIONS, "kind": "audio", "max_bytes": server.options.max_upload_bytes}
        path = await save_upload(params.file, folder, **kw)
        await run_in_threadpool(check_audio_header, path, server.options.max_recording_seconds)
        request = SegmentRequest(path=str(path), **request_values(params))
        d = await server.sandbox.run(segment_upload, request, name=path.name)
    finally:
        discard(folder)
    d["path"] = path.name
    return d
