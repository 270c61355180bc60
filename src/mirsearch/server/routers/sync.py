"""Synchronisation endpoint: the time map between two recordings (task ``align``, cached on disk)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from mirsearch.errors import ParameterError
from mirsearch.server.models import ERRORS, TimeMapOut
from mirsearch.server.routers import ServerDep
from mirsearch.service.core import version_block

router = APIRouter(tags=["synchronisation"])


@router.get("/api/align", response_model=TimeMapOut, responses=ERRORS)
async def align(
    server: ServerDep,
    a: Annotated[int, Query(ge=1, le=2**62, description="recording id (source time axis)")],
    b: Annotated[int, Query(ge=1, le=2**62, description="recording id (target time axis)")],
    t: Annotated[float | None, Query(ge=0, le=1e6, description="a time in a (s) to map to b")] = None,
):
    """Time map from recording ``a`` to ``b`` (task ``align``, cached on disk).

    ``time_a[i]`` corresponds to ``time_b[i]`` (seconds, strictly increasing, linear in between).
    With ``t``, also ``mapped``: the time in ``b`` corresponding to ``t`` in ``a``.
    The first request for a pair computes the alignment (seconds, on the slow queue); later ones are read
    from the cache.
    """
    if a == b:
        raise ParameterError(f"a={a} and b={b} are the same recording")

    def work(compute: bool):
        rec_a, rec_b = server.recording(a), server.recording(b)
        tmap = server.timemaps.time_map_for(rec_a, rec_b, compute=compute)
        if tmap is None:
            return None
        d = tmap.to_dict()
        d.update({"a": a, "b": b, "name_a": Path(rec_a.path).name, "name_b": Path(rec_b.path).name})
        d["query"] = version_block(task="align", a=a, b=b, t=t)  # the time map of the task's defaults
        if t is not None:
            d["t"] = t
            d["mapped"] = round(float(tmap.map(t)), 3)
        return d

    cached = await run_in_threadpool(work, False)  # a cached map does not wait for a queue
    return cached if cached is not None else await server.slow.run(work, True)
