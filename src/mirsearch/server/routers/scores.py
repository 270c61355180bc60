"""Score endpoints: the collection's scores, a theme searched in them, a score engraved and its audio.

=======  ===========================================  ==============================================
GET      ``/api/scores``                              the scores of the collection's score store
POST     ``/api/scores/search``                       task ``score-theme``: a note string (JSON body)
GET      ``/api/scores/{id}/view``                    task ``score-view``: SVG pages and timed note ids
GET      ``/api/scores/{id}/audio.wav``               task ``score-audio``: the notes synthesised (ranges)
=======  ===========================================  ==============================================

Scores are named by their id in the store only. The tasks run in the search worker processes (time and memory
budgets, :mod:`mirsearch.server.workers`); a synthesised WAV is kept in the server's private temporary folder
(keyed by the score's content hash) and served with HTTP ranges, so the page's player can seek in it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from mirsearch._util import atomic_write_bytes
from mirsearch.errors import CollectionError
from mirsearch.server.models import ERRORS, request_model, request_values
from mirsearch.server.routers import ServerDep
from mirsearch.server.workers import task
from mirsearch.service import run
from mirsearch.service.score_view import ScoreAudioRequest, ScoreViewRequest
from mirsearch.service.scores import ScoreThemeRequest, score_store
from mirsearch.service.theme import ThemeQuery

router = APIRouter(tags=["scores"])

ScoreId = Annotated[int, PathParam(ge=1, le=2**62, description="score id from /api/scores")]
ScoreSearchBody = request_model(ScoreThemeRequest, "ScoreThemeSearch", query="the theme as a note string")
ViewQuery = request_model(ScoreViewRequest, "ScoreViewOptions", exclude=("score",))
AudioQuery = request_model(ScoreAudioRequest, "ScoreAudioOptions", exclude=("score",))


class ScoreOut(BaseModel):
    """One score of the collection."""

    id: int
    name: str
    notes: int
    parts: list[str]


class ScoresOut(BaseModel):
    scores: list[ScoreOut]


class ScoreViewOut(BaseModel):
    """An engraved score: ``pages`` (SVG text), ``notes`` (``id``, ``quarter``, ``duration_quarter``, ``pitch``,
    ``onset``, ``offset`` in seconds of the score's audio)."""

    model_config = ConfigDict(extra="allow")

    score: int
    name: str
    pages: list[str]
    duration: float
    notes: list[dict] = Field(description="engraved notes sorted by onset")


def _scores(coll) -> list[dict]:
    try:
        entries = score_store(coll).entries()
    except CollectionError:
        return []
    return [{"id": e.id, "name": Path(e.path).name, "notes": e.n_notes, "parts": list(e.parts)} for e in entries]


@router.get("/api/scores", response_model=ScoresOut, responses=ERRORS)
async def scores(server: ServerDep):
    """The scores of the collection (id, file name, notes, parts)."""
    return {"scores": await run_in_threadpool(_scores, server.coll)}


def _score_theme(coll, notes: str, values: dict):
    """Parse a note string and search it in the scores (in a search worker)."""
    query = ThemeQuery.from_text(notes)
    return query, run("score-theme", ScoreThemeRequest(query=query, **values), collection=coll)


@router.post("/api/scores/search", responses=ERRORS)
async def search_scores(body: ScoreSearchBody, server: ServerDep):
    """Every occurrence of a theme in the collection's scores (task ``score-theme``); ``matches[i].notes_at``
    lists the matched notes as ``[quarter, pitch]`` for :func:`score_view`'s highlighting."""
    t0 = time.perf_counter()
    query, result = await server.task(_score_theme, body.notes, request_values(body))
    d = result.to_dict()
    for m in d["matches"]:
        m["recording"] = Path(m["recording"]).name  # no server path leaves the server
    d["query"] = {**d["query"], "kind": "score-theme", "notes": query.theme.to_string()}
    d["seconds"] = round(time.perf_counter() - t0, 4)
    return d


@router.get("/api/scores/{score_id}/view", response_model=ScoreViewOut, responses=ERRORS)
async def score_view(score_id: ScoreId, params: Annotated[ViewQuery, Query()], server: ServerDep):
    """A score engraved with verovio (task ``score-view``): SVG pages and each note's id, position and time (in the
    score's synthesised audio, or with ``recording`` in that recording, the score aligned to it)."""
    request = ScoreViewRequest(score=score_id, **request_values(params))
    if request.recording is not None:  # an alignment: the slow queue (its worker and its time budget)
        result = await server.slow.run(run, "score-view", request, collection=server.coll)
    else:
        result = await server.task(task, "score-view", request)
    return result.to_dict()


def _audio_path(server, score_id: int, sr: int) -> Path:
    """Where the synthesised audio of a score is kept (named by the store's generation: a changed file gets
    a new one)."""
    gen = score_store(server.coll).generation() or "none"
    return server.tmp / "scores" / f"{gen}-{score_id}-{sr}.wav"


def _keep(path: Path, wav: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, wav)


@router.get("/api/scores/{score_id}/audio.wav", responses=ERRORS, response_class=FileResponse)
async def score_audio(score_id: ScoreId, params: Annotated[AudioQuery, Query()], server: ServerDep):
    """The score's notes synthesised (task ``score-audio``), on the time axis of ``/view``'s notes."""
    request = ScoreAudioRequest(score=score_id, **request_values(params))
    path = await run_in_threadpool(_audio_path, server, score_id, request.sr)
    if not path.is_file():
        result = await server.task(task, "score-audio", request)
        await run_in_threadpool(_keep, path, result.wav)
    return FileResponse(path, media_type="audio/wav")
