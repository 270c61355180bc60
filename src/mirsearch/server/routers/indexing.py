"""Indexing endpoints: start a job over the configured source folders, and its progress."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from mirsearch.errors import ParameterError
from mirsearch.server.models import ERRORS, ErrorOut, IndexOut, IndexStart
from mirsearch.server.routers import ServerDep

router = APIRouter(tags=["indexing"])


@router.get("/api/index", response_model=IndexOut)
async def index_status(server: ServerDep):
    """Folders the page may index (by name: the server's paths are not shown) and the current job's progress."""
    return {"sources": [p.name for p in server.jobs.sources], "job": server.jobs.status()}


@router.post(
    "/api/index",
    status_code=202,
    response_model=IndexOut,
    responses={**ERRORS, 403: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
async def index_start(server: ServerDep, body: IndexStart | None = None):
    """Start indexing the configured source folders (new and changed files only); poll GET for progress."""
    try:
        server.jobs.start(body.sources if body else None)
    except PermissionError as exc:
        raise HTTPException(403, str(exc)) from None
    except IndexError as exc:
        raise ParameterError(str(exc)) from None
    server.forget()
    return {"sources": [p.name for p in server.jobs.sources], "job": server.jobs.status()}
