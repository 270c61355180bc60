"""Search endpoints: a theme (note string or score file), an audio excerpt, versions of a recording.

Each endpoint parses its query at the boundary (uploaded files in a child process with a time and memory
budget, :mod:`mirsearch.server.sandbox`), builds the task's request from the body (whose model is derived
from that request, :mod:`mirsearch.server.models`) and runs the task in a search worker process with a time
and a memory budget (:mod:`mirsearch.server.workers`).
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Query, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from mirsearch.audio import AUDIO_EXTENSIONS
from mirsearch.errors import InputError
from mirsearch.scores import SCORE_EXTENSIONS
from mirsearch.server.models import ERRORS, SearchOut, request_model, request_values
from mirsearch.server.routers import RecordingId, ServerDep
from mirsearch.server.sandbox import read_audio, read_theme
from mirsearch.server.state import NotFound, Server
from mirsearch.server.uploads import check_audio_header, discard, new_folder, save_upload
from mirsearch.server.workers import task
from mirsearch.service import run
from mirsearch.service.audio import AudioQuery, PassagesRequest, VersionsRequest
from mirsearch.service.identify import IdentifyRequest
from mirsearch.service.theme import ThemeQuery, ThemeRequest

router = APIRouter(tags=["search"])

#: most notes in a theme
MAX_THEME_NOTES = 400
#: parameters a client may not set: the Dask cluster is the server's choice (``mirsearch serve --dask``)
SERVER_SIDE = ("dask",)
NOTES_HELP = 'note names, optionally with octave and value: "E D# E G", "E5/8 D#5/8 E5/4", rests "R/4"'

ThemeBody = request_model(ThemeRequest, "ThemeSearch", query=NOTES_HELP, exclude=SERVER_SIDE)
ThemeFileForm = request_model(
    ThemeRequest, "ThemeFileSearch", upload="MIDI, MusicXML (.xml/.mxl/.musicxml) or kern file",
    texts=(("part", "part name or 0-based index (default: the highest part)"),), exclude=SERVER_SIDE,
)  # fmt: skip
PassagesForm = request_model(
    PassagesRequest, "AudioSearch", upload="audio excerpt: wav, flac, ogg, opus or mp3", exclude=SERVER_SIDE
)
VersionsForm = request_model(
    VersionsRequest, "VersionsSearch", upload="a recording: wav, flac, ogg, opus or mp3", exclude=("exclude",)
)
VersionsOfQuery = request_model(VersionsRequest, "VersionsOf", exclude=("exclude",))
IdentifyForm = request_model(
    IdentifyRequest, "Identify", upload="audio excerpt: wav, flac, ogg, opus or mp3", exclude=SERVER_SIDE
)


class IdentifiedOut(BaseModel):
    """A recording the excerpt was found in (``IdentifyMatch.to_dict`` with the path relative, name, duration)."""

    model_config = ConfigDict(extra="allow")

    recording: str
    recording_id: int
    name: str
    duration: float
    offset: float = Field(description="where the excerpt's first sample lies in the recording (s)")
    speed: float = Field(description="the excerpt's playback speed relative to the recording (1.04 = 4 % faster)")
    score: float = Field(description="standout of the recording's peaks met over wrong alignments (docs/identify.md)")
    start: float
    end: float


class IdentifyOut(BaseModel):
    """Matches best first; empty: not found."""

    model_config = ConfigDict(extra="allow")

    query: dict
    matches: list[IdentifiedOut]
    seconds: float


def _answer(server: Server, result, seconds: float, **query) -> dict:
    """The task's JSON answer for the page: paths relative, names and durations added, the server's time."""
    d = result.to_dict()
    d["query"] = {**d["query"], **query}
    for key in ("matches", "rejected"):  # shown matches and the best of those below the confidence threshold
        if key in d:
            d[key] = server.matches_json(d[key])
    d["seconds"] = round(seconds, 4)
    return d


def _checked(query: ThemeQuery) -> ThemeQuery:
    n = len(query.theme.notes)
    if n > MAX_THEME_NOTES:
        raise InputError(f"{query.name}: {n} notes; at most {MAX_THEME_NOTES} are accepted")
    return query


def _theme_from_text(coll, notes: str, values: dict):
    """Parse a note string and search it (in a search worker: parsing a long string counts against the budget)."""
    query = _checked(ThemeQuery.from_text(notes))  # a string is never a path here
    return query, run("theme", ThemeRequest(query=query, **values), collection=coll)


_theme_from_text.fans_out = True  # serve --dask: an exhaustive search goes to the cluster (Server.task)


def _versions_of(coll, path: str, recording_id: int, values: dict):
    """Versions of a recording of the collection (in a search worker: reading it counts against the budgets)."""
    request = VersionsRequest(query=AudioQuery.from_file(path), exclude=(recording_id,), **values)
    return run("versions", request, collection=coll)


@asynccontextmanager
async def _uploaded(server: Server, upload: UploadFile, *, allowed: tuple[str, ...], kind: str):
    """The upload saved under a safe name in a private folder, removed afterwards."""
    folder = new_folder(server.tmp)
    try:
        max_bytes = server.options.max_upload_bytes
        yield await save_upload(upload, folder, allowed=allowed, kind=kind, max_bytes=max_bytes)
    finally:
        discard(folder)


async def _audio_query(server: Server, upload: UploadFile, max_seconds: float) -> AudioQuery:
    async with _uploaded(server, upload, allowed=AUDIO_EXTENSIONS, kind="audio") as path:
        await run_in_threadpool(check_audio_header, path, max_seconds)
        return await server.sandbox.run(read_audio, str(path), max_seconds, name=path.name)


@router.post("/api/search/theme", response_model=SearchOut, responses=ERRORS)
async def search_theme(body: ThemeBody, server: ServerDep):
    """Find where a theme, given as a note string, is played (task ``theme``)."""

    t0 = time.perf_counter()
    query, result = await server.task(_theme_from_text, body.notes, request_values(body))
    extra = {"kind": "theme", "notes": query.theme.to_string(), "n_notes": len(query.theme.notes)}
    return _answer(server, result, time.perf_counter() - t0, **extra)


@router.post("/api/search/theme-file", response_model=SearchOut, responses=ERRORS)
async def search_theme_file(params: Annotated[ThemeFileForm, Form()], server: ServerDep):
    """Find where a theme, given as a score file, is played (its top voice, or ``part``; task ``theme``)."""
    async with _uploaded(server, params.file, allowed=SCORE_EXTENSIONS, kind="score") as path:
        query = _checked(await server.sandbox.run(read_theme, str(path), params.part or None, name=path.name))
    request = ThemeRequest(query=query, **request_values(params))
    t0 = time.perf_counter()
    result = await server.task(task, "theme", request)
    extra = {"kind": "theme-file", "file": path.name, "source": path.name, "n_notes": len(query.theme.notes)}
    return _answer(server, result, time.perf_counter() - t0, notes=query.theme.to_string(), **extra)


@router.post("/api/search/audio", response_model=SearchOut, responses=ERRORS)
async def search_audio(params: Annotated[PassagesForm, Form()], server: ServerDep):
    """Find passages similar to an audio excerpt (task ``passages``).

    The answer's ``query.id`` names the query's matching curves for ``/api/queries/{id}/curve.png``.
    """
    query = await _audio_query(server, params.file, server.options.max_query_seconds)
    request = PassagesRequest(query=query, **request_values(params))
    t0 = time.perf_counter()
    result = await server.task(task, "passages", request)
    seconds = time.perf_counter() - t0
    spans: dict[int, list] = {}
    for m in result.matches + result.rejected:  # the page shows the rejected ones when none is confident
        spans.setdefault(m.recording_id, []).append((m.start, m.end, m.cost))
    kept = {c.recording_id: c for c in result.curves if c.recording_id in spans}
    token = server.queries.put({"curves": kept, "spans": spans, "file": query.name})
    extra = {"kind": "audio", "id": token, "file": query.name, "duration": round(query.duration, 3)}
    return _answer(server, result, seconds, **extra)


@router.post("/api/identify", response_model=IdentifyOut, responses=ERRORS)
async def identify_upload(params: Annotated[IdentifyForm, Form()], server: ServerDep):
    """Which recording of the collection an uploaded excerpt comes from, where and at what speed (task
    ``identify``, over the collection's fingerprints); ``matches`` is empty when it is not found. Each match's
    ``start`` is its ``offset`` and ``end`` where the excerpt ends in the recording."""
    query = await _audio_query(server, params.file, server.options.max_query_seconds)
    request = IdentifyRequest(query=query, **request_values(params))
    t0 = time.perf_counter()
    result = await server.task(task, "identify", request)
    seconds = time.perf_counter() - t0
    d = result.to_dict()
    for row in d["matches"]:
        row["start"], row["end"] = row["offset"], round(row["offset"] + query.duration * row["speed"], 3)
    d["matches"] = server.matches_json(d["matches"])
    d["query"] = {**d["query"], "kind": "identify", "file": query.name, "duration": round(query.duration, 3)}
    d["seconds"] = round(seconds, 3)
    return d


@router.post("/api/versions", response_model=SearchOut, responses=ERRORS)
async def versions_upload(params: Annotated[VersionsForm, Form()], server: ServerDep):
    """Rank the collection's recordings as versions of an uploaded recording (task ``versions``)."""
    query = await _audio_query(server, params.file, server.options.max_recording_seconds)
    request = VersionsRequest(query=query, **request_values(params))
    t0 = time.perf_counter()
    result = await server.task(task, "versions", request)
    extra = {"kind": "versions", "file": query.name, "duration": round(query.duration, 3)}
    return _answer(server, result, time.perf_counter() - t0, **extra)


@router.get("/api/recordings/{recording_id}/versions", response_model=SearchOut, responses=ERRORS)
async def versions_of(recording_id: RecordingId, params: Annotated[VersionsOfQuery, Query()], server: ServerDep):
    """The other recordings of the collection ranked as versions of this one (task ``versions``)."""
    rec = await run_in_threadpool(server.recording, recording_id)
    if not Path(rec.path).is_file():
        raise NotFound(f"recording {recording_id} ({Path(rec.path).name}): file is missing on disk")

    t0 = time.perf_counter()
    result = await server.task(_versions_of, rec.path, recording_id, request_values(params))
    extra = {"kind": "versions", "recording_id": recording_id, "name": Path(rec.path).name}
    return _answer(server, result, time.perf_counter() - t0, **extra)
