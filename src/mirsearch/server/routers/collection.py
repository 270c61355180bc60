"""Collection endpoints: liveness, statistics, recordings and their audio (streamed by id, with ranges)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from mirsearch import __version__
from mirsearch.server.models import ERRORS, RecordingOut, RecordingsOut
from mirsearch.server.routers import RecordingId, ServerDep
from mirsearch.server.state import NotFound

router = APIRouter(tags=["collection"])

#: media types of the audio formats the collection may hold
MEDIA_TYPES = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".mp3": "audio/mpeg",
    ".aif": "audio/aiff",
    ".aiff": "audio/aiff",
}


@router.get("/api/health")
async def health() -> dict:
    """Liveness check (never waits for a work queue)."""
    return {"status": "ok", "version": __version__}


@router.get("/api/stats")
async def stats(server: ServerDep) -> dict:
    """Collection statistics (task ``info``), the running indexing job and the server's limits."""
    info = await run_in_threadpool(server.stats)
    return {**info, "index_job": server.jobs.status()}


@router.get("/api/recordings", response_model=RecordingsOut)
async def recordings(server: ServerDep):
    """All recordings of the collection, by id (paths relative to the folder that holds them all)."""
    recs = await run_in_threadpool(server.coll.recordings)
    return {"recordings": [server.recording_json(r) for r in recs]}


@router.get("/api/recordings/{recording_id}", response_model=RecordingOut, responses=ERRORS)
async def recording(recording_id: RecordingId, server: ServerDep):
    """One recording."""
    return server.recording_json(await run_in_threadpool(server.recording, recording_id))


@router.get(
    "/api/recordings/{recording_id}/audio",
    responses={**ERRORS, 206: {"description": "partial content (Range request)"}},
    response_class=FileResponse,
)
async def audio(recording_id: RecordingId, server: ServerDep):
    """The recording's audio file; supports ``Range: bytes=...`` (206) so players can seek (HEAD too).

    Only files listed in the catalogue are served: the id is looked up, the path comes from there.
    """
    rec = await run_in_threadpool(server.recording, recording_id)
    path = Path(rec.path)
    if not path.is_file():
        raise NotFound(f"recording {recording_id} ({path.name}): file is missing on disk")
    media = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return FileResponse(path, media_type=media, headers={"Cache-Control": "no-cache"})


router.head("/api/recordings/{recording_id}/audio", include_in_schema=False)(audio)
