"""Figure endpoints: a recording's chromagram around a match, the matching curve of a recent audio query.

Figures are drawn in the search worker processes (:meth:`~mirsearch.server.state.Server.figure`: the request's
time and memory budget, killed when over) and cached in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Response
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from mirsearch.errors import ParameterError
from mirsearch.server.models import ERRORS
from mirsearch.server.routers import RecordingId, ServerDep
from mirsearch.server.state import NotFound

router = APIRouter(tags=["figures"])
PNG_RESPONSES = {**ERRORS, 200: {"content": {"image/png": {}}}}
CACHE_HEADERS = {"Cache-Control": "private, max-age=300"}


def _overlay(notes: str | None, transposition: int, span: tuple[float, float] | None) -> list[tuple]:
    """The query's notes spread over the matched span, in the recording's key: ``(start, end, pitch class)``."""
    if not notes or span is None:
        return []
    from mirsearch.service.theme import ThemeQuery

    theme = ThemeQuery.from_text(notes).theme
    first = theme.notes[0].onset
    scale = (span[1] - span[0]) / max(theme.duration, 1e-9)
    return [
        (span[0] + (n.onset - first) * scale, span[0] + (n.onset - first + n.duration) * scale,
         (n.pitch + transposition) % 12)
        for n in theme.notes
    ]  # fmt: skip


def _view(start: float | None, end: float | None, context: float | None) -> tuple[float, float] | None:
    """The time span shown: ``context`` seconds around the highlighted span (or the start), else all."""
    if context is None:
        return None
    centre = ((start + end) / 2) if start is not None else 0.0
    half = context / 2 + ((end - start) / 2 if start is not None else 0.0)
    return max(0.0, centre - half), centre + half


@router.get("/api/recordings/{recording_id}/chromagram.png", response_class=Response, responses=PNG_RESPONSES)
async def chromagram(
    recording_id: RecordingId,
    server: ServerDep,
    start: Annotated[float | None, Query(ge=0, description="highlighted span start (s)")] = None,
    end: Annotated[float | None, Query(ge=0, description="highlighted span end (s)")] = None,
    context: Annotated[float | None, Query(gt=0, le=3600, description="show only this many s around")] = None,
    width: Annotated[int, Query(ge=200, le=2400)] = 1000,
    notes: Annotated[str | None, Query(max_length=2000, description="the query's notes, drawn over the span")] = None,
    transposition: Annotated[int, Query(ge=-6, le=5, description="the match's transposition")] = 0,
):
    """PNG chromagram of a recording (its stored chroma), with the span ``start``-``end`` highlighted and, with
    ``notes``, the query's notes drawn over it in the recording's key."""
    if (start is None) != (end is None) or (start is not None and not end > start):
        raise ParameterError("start and end must be given together, with end > start")

    await run_in_threadpool(server.recording, recording_id)  # 404 for an unknown id
    key = ("chroma", recording_id, start, end, context, width, notes, transposition)
    png = server.cached_figure(key) or await server.figure(key, _chromagram, recording_id, key[2:])
    return Response(png, media_type="image/png", headers=CACHE_HEADERS)


def _chromagram(coll, recording_id: int, options: tuple) -> bytes:
    """The chromagram PNG (in a search worker: drawing counts against the request's time and memory budget)."""
    from mirsearch.viz.web import chromagram_png

    start, end, context, width, notes, transposition = options
    rec = coll.recording(recording_id)
    kind = "chroma" if "chroma" in coll.feature_kinds else coll.feature_kinds[0]
    X, rate = coll.load_features(recording_id, kind)
    highlight = (start, end) if start is not None else None
    return chromagram_png(
        np.asarray(X), feature_rate=rate, highlight=highlight, view=_view(start, end, context),
        overlay=_overlay(notes, transposition, highlight), title=Path(rec.path).name, width=width,
    )  # fmt: skip


@router.get("/api/queries/{query_id}/curve.png", response_class=Response, responses=PNG_RESPONSES)
async def query_curve(
    query_id: Annotated[str, PathParam(min_length=8, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")],
    recording_id: Annotated[int, Query(ge=1, le=2**62)],
    server: ServerDep,
    width: Annotated[int, Query(ge=200, le=2400)] = 1000,
    start: Annotated[float | None, Query(ge=0, description="with end and context: the chromagram's view")] = None,
    end: Annotated[float | None, Query(ge=0)] = None,
    context: Annotated[float | None, Query(gt=0, le=3600)] = None,
):
    """PNG matching curve of a recent audio query (``query.id`` of /api/search/audio) in one of its
    result recordings, the matches shaded."""
    kept = server.queries.get(query_id)
    if kept is None:
        raise NotFound(f"query {query_id} is unknown or expired (search again)")
    curve = kept["curves"].get(recording_id)
    if curve is None:
        raise NotFound(f"recording {recording_id} is not among the results of query {query_id}")

    title = f"matching curve of {kept['file']} in {Path(curve.recording).name}"
    spans = kept["spans"].get(recording_id, [])
    view = _view(start, end, context) if start is not None and end is not None and end > start else None
    key = ("curve", query_id, recording_id, width, start, end, context)
    png = server.cached_figure(key) or await server.figure(
        key, _curve, np.asarray(curve.cost), curve.feature_rate, spans, view, title, width
    )
    return Response(png, media_type="image/png", headers=CACHE_HEADERS)


def _curve(coll, cost, feature_rate: float, spans: list, view, title: str, width: int) -> bytes:
    """The matching curve PNG (in a search worker, like :func:`_chromagram`)."""
    from mirsearch.viz.web import matching_curve_png

    return matching_curve_png(cost, feature_rate=feature_rate, matches=spans, view=view, title=title, width=width)
