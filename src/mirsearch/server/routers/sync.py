"""Synchronisation endpoints: the time map between two recordings (task ``align``), computed as a background job.

The first request for a pair starts an alignment job (:class:`~mirsearch.server.jobs.AlignJobs`: its own process,
time and memory budget) and is answered at once with ``202`` and the job's status; the page polls
``/api/align/jobs/{job}`` and, once the job is done, asks ``/api/align`` again, which then answers from the
cache on disk. No request waits for an alignment longer than ``wait`` (at most :data:`MAX_WAIT` seconds).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from mirsearch.errors import ParameterError
from mirsearch.server.models import ERRORS, TimeMapOut
from mirsearch.server.routers import ServerDep
from mirsearch.server.state import NotFound, Server
from mirsearch.service.core import version_block

router = APIRouter(tags=["synchronisation"])

#: longest a request may wait for its alignment job to finish (s)
MAX_WAIT = 5.0


class AlignJobOut(BaseModel):
    """An alignment job: ``state`` queued, running, done or failed; ``fraction`` estimated from the durations."""

    job: str
    a: int
    b: int
    state: str
    fraction: float
    elapsed: float
    estimate_seconds: float
    error: str
    status_url: str
    result_url: str


def _time_map_json(server: Server, rec_a, rec_b, t: float | None) -> dict | None:
    """The cached time map as the endpoint's answer; None when the pair has none yet."""
    tmap = server.timemaps.time_map_for(rec_a, rec_b, compute=False)
    if tmap is None:
        return None
    d = tmap.to_dict()
    d.update({"a": rec_a.id, "b": rec_b.id, "name_a": Path(rec_a.path).name, "name_b": Path(rec_b.path).name})
    d["query"] = version_block(task="align", a=rec_a.id, b=rec_b.id, t=t)  # the time map of the task's defaults
    if t is not None:
        d["t"] = t
        d["mapped"] = round(float(tmap.map(t)), 3)
    return d


@router.get(
    "/api/align", response_model=TimeMapOut,
    responses={**ERRORS, 202: {"model": AlignJobOut, "description": "the alignment is running: poll status_url"}},
)  # fmt: skip
async def align(
    server: ServerDep,
    a: Annotated[int, Query(ge=1, le=2**62, description="recording id (source time axis)")],
    b: Annotated[int, Query(ge=1, le=2**62, description="recording id (target time axis)")],
    t: Annotated[float | None, Query(ge=0, le=1e6, description="a time in a (s) to map to b")] = None,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT, description="seconds to wait for a running alignment")] = 0.0,
):
    """Time map from recording ``a`` to ``b`` (task ``align``, cached on disk).

    ``time_a[i]`` corresponds to ``time_b[i]`` (seconds, strictly increasing, linear in between).
    With ``t``, also ``mapped``: the time in ``b`` corresponding to ``t`` in ``a``.
    A pair not aligned yet starts (or joins) a background alignment job and is answered with 202 and the job
    (``status_url`` to poll; ``wait`` seconds are waited for it first); once the job is done, the same request
    answers with the map. A pair that cannot be aligned answers 400 (504 / 413 when the job ran out of time or
    memory; tried again 10 minutes later).
    """
    if a == b:
        raise ParameterError(f"a={a} and b={b} are the same recording")
    rec_a, rec_b = await run_in_threadpool(lambda: (server.recording(a), server.recording(b)))
    answer = await run_in_threadpool(_time_map_json, server, rec_a, rec_b, t)  # a cached map: at once
    if answer is not None:
        return answer
    job = server.align_jobs.start(rec_a, rec_b)
    deadline = time.monotonic() + wait
    while job.state in ("queued", "running") and time.monotonic() < deadline:
        await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
    if job.state == "failed":
        raise type(job.error)(str(job.error))  # a fresh exception (the job keeps its own)
    if job.state == "done":
        answer = await run_in_threadpool(_time_map_json, server, rec_a, rec_b, t)
        if answer is not None:
            return answer
    return JSONResponse(job.to_dict(), status_code=202)


@router.get("/api/align/jobs/{job}", response_model=AlignJobOut, responses=ERRORS)
async def align_job(server: ServerDep, job: Annotated[str, PathParam(max_length=64, pattern=r"^[0-9a-f]+$")]):
    """Status of an alignment job started by ``/api/align`` (``fraction`` is an estimate from the durations)."""
    found = server.align_jobs.get(job)
    if found is None:
        raise NotFound(f"alignment job {job} does not exist (finished jobs are kept for a while)")
    return found.to_dict()
