"""The FastAPI application: JSON endpoints mirroring the Python API, and the static page.

Endpoints (all JSON unless noted; errors are ``{"error": "..."}`` with a 4xx status):

=======  ===========================================  ==============================================
GET      ``/``                                        the page (``static/index.html``)
GET      ``/api/health``                              liveness
GET      ``/api/stats``                               collection statistics and server limits
GET      ``/api/recordings``                          all recordings (id, name, duration, ...)
GET      ``/api/recordings/{id}``                     one recording
GET      ``/api/recordings/{id}/audio``               the audio file (HTTP range requests, 206)
GET      ``/api/recordings/{id}/chromagram.png``      chromagram, optionally with a span highlighted
GET      ``/api/recordings/{id}/versions``            other recordings ranked as versions of this one
POST     ``/api/search/theme``                        theme as a note string (JSON body)
POST     ``/api/search/theme-file``                   theme as an uploaded MIDI / MusicXML / kern file
POST     ``/api/search/audio``                        uploaded audio excerpt
POST     ``/api/versions``                            uploaded recording: versions in the collection
GET      ``/api/queries/{query}/curve.png``           matching curve of an audio query in a recording
GET      ``/api/align``                               time map between two recordings (``t``: map one)
GET      ``/api/index``  / POST ``/api/index``        indexing job: status / start
=======  ===========================================  ==============================================

Safety: audio is streamed by recording id only (the path comes from the catalogue, never from the
client); uploads are limited in size (while they arrive) and audio queries in duration; uploaded files
keep only a checked extension and a sanitised name inside a private temporary folder; the collection is
opened read-only. Searches, alignments and figures run in a pool of ``workers`` threads (the numba
kernels release the GIL, so that many run at once; more wait in the queue, and when it is full the server
answers 503). Catalogue reads, audio streaming, cached time maps and cached figures bypass that pool.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import shutil
import tempfile
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from mirsearch import __version__
from mirsearch.errors import CollectionError, InputError, MirsearchError, ParameterError
from mirsearch.server.uploads import BodySizeLimit, RecentQueries, UploadTooLarge, discard, new_folder, save_upload

log = logging.getLogger(__name__)

#: longest note string accepted (characters) and most notes in a theme
MAX_NOTE_STRING = 2000
MAX_THEME_NOTES = 400
#: media types of the audio formats the collection may hold
MEDIA_TYPES = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".mp3": "audio/mpeg",
    ".aif": "audio/aiff",
    ".aiff": "audio/aiff",
}
#: figures kept in memory (PNG bytes)
FIGURE_CACHE = 64
#: seconds the statistics are cached (they walk the collection folder)
STATS_TTL = 5.0
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class ServerBusy(MirsearchError):
    """The worker pool's queue is full (HTTP 503)."""


class NotAvailable(MirsearchError):
    """A feature of the API is not available in this installation (HTTP 501)."""


class NotFound(MirsearchError):
    """An id that does not exist (HTTP 404)."""


# ------------------------------------------------------------------------------------------ models


RecordingId = Annotated[int, PathParam(ge=1, le=2**62, description="recording id from /api/recordings")]


class ThemeQuery(BaseModel):
    """A theme search with a note string."""

    model_config = ConfigDict(extra="forbid")

    notes: str = Field(
        min_length=1,
        max_length=MAX_NOTE_STRING,
        description='note names, optionally with octave and value: "E D# E G", "E5/8 D#5/8 E5/4", rests "R/4"',
        examples=["G G G Eb F F F D"],
    )
    top: int = Field(10, ge=1, le=100, description="number of matches")
    per_recording: int = Field(3, ge=1, le=20, description="occurrences per recording at most")
    tempo_bpm: float | None = Field(None, gt=10, le=400, description="assumed tempo (quarter notes per minute)")
    transpose: bool = Field(True, description="try all 12 transpositions (else the notated key only)")
    features: Literal["chroma", "cens", "learned"] = Field("chroma", description="database features")
    cascade: Literal["notes", "notes-only", "align", "coarse"] | None = Field(
        None,
        description="search in two stages for large collections: candidate regions are proposed (notes: note "
        "index and alignment of learned chroma, with features 'learned'), DTW re-ranks them; none: exhaustive",
    )


class MatchOut(BaseModel):
    """One occurrence (``mirsearch.search.results.Match.to_dict`` plus name and duration)."""

    model_config = ConfigDict(extra="allow")

    recording: str
    recording_id: int
    name: str
    duration: float
    start: float
    end: float
    cost: float
    transposition: int
    start_mmss: str
    end_mmss: str


class SearchOut(BaseModel):
    query: dict
    matches: list[MatchOut]
    seconds: float = Field(description="server time for the search")


class RecordingOut(BaseModel):
    id: int
    name: str
    path: str
    duration: float
    duration_mmss: str
    format: str
    sha1: str


class RecordingsOut(BaseModel):
    recordings: list[RecordingOut]


class TimeMapOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    a: int
    b: int
    duration_a: float
    duration_b: float
    time_a: list[float]
    time_b: list[float]
    meta: dict
    t: float | None = None
    mapped: float | None = None


class IndexStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[int] | None = Field(None, description="positions in GET /api/index 'sources' (default all)")


class IndexOut(BaseModel):
    sources: list[str]
    job: dict | None


class ErrorOut(BaseModel):
    error: str


ERRORS = {
    400: {"model": ErrorOut, "description": "bad input (malformed file, note string, parameter)"},
    404: {"model": ErrorOut, "description": "unknown id"},
    413: {"model": ErrorOut, "description": "upload too large or too long"},
    422: {"model": ErrorOut, "description": "invalid request fields"},
    503: {"model": ErrorOut, "description": "server busy"},
}


# ------------------------------------------------------------------------------------------ state


class SharedCollection:
    """One read-only :class:`~mirsearch.collection.Collection` shared by the worker threads.

    Catalogue reads and the collection's feature cache are guarded by a lock; the matching kernels
    themselves run outside it, so searches overlap.
    """

    def __init__(self, coll):
        self._coll = coll
        self._lock = threading.RLock()
        self._audio_db: dict[tuple, tuple] = {}

    def __getattr__(self, name):
        return getattr(self._coll, name)

    def database(self, kind: str = "chroma"):
        with self._lock:
            return self._coll.database(kind)

    def recordings(self):
        with self._lock:
            return self._coll.recordings()

    def recording(self, recording_id: int):
        with self._lock:
            try:
                return self._coll.recording(recording_id)
            except CollectionError:
                raise NotFound(f"recording {recording_id} is not in the collection") from None

    def load_features(self, recording_id: int, kind: str = "chroma"):
        with self._lock:
            return self._coll.load_features(recording_id, kind)

    def info(self) -> dict:
        with self._lock:
            return self._coll.info()

    def generation(self) -> int:
        with self._lock:
            return self._coll.generation()

    def search_theme(self, theme, *, cascade: str | None = None, **options):
        """Exhaustive theme search, or a named cascade (:data:`mirsearch.search.cascade.THEME_PRESETS`)."""
        from mirsearch.search.cascade import cascade_search_theme
        from mirsearch.search.theme import search_theme

        if cascade is None:
            return search_theme(self, theme, **options)
        return cascade_search_theme(self, theme, cascade=cascade, **options)

    def audio_database(self, fn):
        """The CENS database ``fn`` (search_audio / identify_versions) uses by default, prepared once.

        Rebuilt when the catalogue changes (recordings added, removed or re-indexed).
        """
        from mirsearch.search.audio import prepare_database

        params = inspect.signature(fn).parameters
        window, downsample = params["window"].default, params["downsample"].default
        with self._lock:
            recs = self._coll.recordings()
            token = (window, downsample, hash(tuple((r.id, r.sha1) for r in recs)))
            cached = self._audio_db.get((window, downsample))
            if cached is None or cached[0] != token:
                cached = (token, prepare_database(self, window=window, downsample=downsample))
                self._audio_db[(window, downsample)] = cached
            return cached[1]

    def search_audio(self, query, **options):
        fn = _audio_api("search_audio")
        return fn(self.audio_database(fn), query, **options)

    def versions(self, query, **options):
        fn = _audio_api("identify_versions")
        if options.get("exclude"):  # a prepared database cannot leave recordings out
            return fn(self, query, **options)
        return fn(self.audio_database(fn), query, **options)

    def close(self) -> None:
        with self._lock:
            self._coll.close()


def _audio_api(name: str):
    try:
        from mirsearch.search import audio
    except ModuleNotFoundError as exc:
        if exc.name != "mirsearch.search.audio":
            raise
        raise NotAvailable("audio search is not available in this installation (mirsearch.search.audio)") from None
    return getattr(audio, name)


class Server:
    """State of one app: collection, worker pool, caches, uploads folder, indexing jobs."""

    def __init__(
        self,
        collection_path: Path,
        *,
        max_upload_mb: float,
        max_query_seconds: float,
        max_recording_seconds: float,
        workers: int,
        max_pending: int,
        index_sources: list[Path],
        index_jobs: int,
    ):
        from mirsearch.collection import Collection
        from mirsearch.server.jobs import IndexJobs
        from mirsearch.server.timemaps import TimeMapCache

        self.root = Path(collection_path)
        self.coll = SharedCollection(Collection.open(self.root, readonly=True))
        self.max_upload_bytes = int(max_upload_mb * 1e6)
        self.max_query_seconds = float(max_query_seconds)
        self.max_recording_seconds = float(max_recording_seconds)
        self.workers = int(workers)
        self.max_pending = int(max_pending)
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="mirsearch-worker")
        self._pending = 0
        self._pending_lock = threading.Lock()
        self.tmp = Path(tempfile.mkdtemp(prefix="mirsearch-server-"))
        weakref.finalize(self, shutil.rmtree, self.tmp, ignore_errors=True)  # also if the app never ran
        self.queries = RecentQueries()
        self.timemaps = TimeMapCache(self.root / "timemaps")
        self.jobs = IndexJobs(self.root, index_sources, jobs=index_jobs, on_finish=self.forget_stats)
        self._figures: dict[tuple, bytes] = {}
        self._figures_lock = threading.Lock()
        self._stats: tuple[float, dict] | None = None

    async def run(self, fn, *args, **kwargs):
        """Run ``fn`` in the worker pool; :class:`ServerBusy` when too many calls are queued."""
        with self._pending_lock:
            if self._pending >= self.max_pending:
                raise ServerBusy(f"server busy ({self._pending} requests queued); try again shortly")
            self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, partial(fn, *args, **kwargs))
        finally:
            with self._pending_lock:
                self._pending -= 1

    async def light(self, fn, *args, **kwargs):
        """Run a short blocking call (catalogue lookup, file header) in Starlette's thread pool.

        Kept apart from the worker pool so that streaming, listings and statistics never wait for searches.
        """
        return await run_in_threadpool(fn, *args, **kwargs)

    def forget_stats(self) -> None:
        self._stats = None

    def stats(self) -> dict:
        cached = self._stats
        if cached is not None and time.monotonic() - cached[0] < STATS_TTL:
            return cached[1]
        info = self.coll.info()
        info["server"] = {
            "version": __version__,
            "workers": self.workers,
            "max_upload_mb": round(self.max_upload_bytes / 1e6, 3),
            "max_query_seconds": self.max_query_seconds,
            "max_recording_seconds": self.max_recording_seconds,
            "index_sources": len(self.jobs.sources),
        }
        self._stats = (time.monotonic(), info)
        return info

    def cached_figure(self, key: tuple) -> bytes | None:
        with self._figures_lock:
            return self._figures.get(key)

    def figure(self, key: tuple, make) -> bytes:
        png = self.cached_figure(key)
        if png is None:
            png = make()
            with self._figures_lock:
                self._figures[key] = png
                while len(self._figures) > FIGURE_CACHE:
                    self._figures.pop(next(iter(self._figures)))
        return png

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.jobs.join(timeout=60)
        self.coll.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------ helpers


def _recording_json(rec) -> dict:
    from mirsearch.search.results import format_time

    path = Path(rec.path)
    return {
        "id": rec.id,
        "name": path.name,
        "path": rec.path,
        "duration": round(rec.duration, 3),
        "duration_mmss": format_time(rec.duration),
        "format": path.suffix.lower().lstrip("."),
        "sha1": rec.sha1,
    }


def _matches_json(matches, recordings) -> list[dict]:
    by_id = {r.id: r for r in recordings}
    out = []
    for m in matches:
        d = m.to_dict()
        rec = by_id.get(m.recording_id)
        d["name"] = Path(m.recording).name
        d["duration"] = round(rec.duration, 3) if rec is not None else round(m.end, 3)
        for key, value in list(d.items()):  # numpy scalars from extra keys
            if isinstance(value, np.generic):
                d[key] = value.item()
        out.append(d)
    return out


def _check_audio_duration(path: Path, max_seconds: float) -> float:
    """Duration of an uploaded audio file from its header; 413 above ``max_seconds``."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:
        raise InputError(f"{path.name}: unreadable audio (not a wav, flac, ogg or mp3 file?)") from None
    if info.samplerate <= 0 or info.frames <= 0:
        raise InputError(f"{path.name}: audio is empty (0 samples)")
    seconds = info.frames / info.samplerate
    if seconds > max_seconds:
        raise UploadTooLarge(f"{path.name}: audio query too long ({seconds:.1f} s > {max_seconds:g} s)")
    return seconds


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path", "form"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


class SecurityHeaders:
    """ASGI middleware: a strict Content-Security-Policy on the page, nosniff everywhere."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page = not scope["path"].startswith("/api/docs")

        async def add_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                if page:
                    headers.append((b"content-security-policy", CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, add_headers)


# ------------------------------------------------------------------------------------------ app


def create_app(
    collection_path,
    *,
    max_upload_mb: float = 20.0,
    max_query_seconds: float = 60.0,
    max_recording_seconds: float = 1200.0,
    workers: int = 2,
    max_pending: int | None = None,
    index_sources=(),
    index_jobs: int = 1,
) -> FastAPI:
    """Build the web application for one collection.

    Parameters
    ----------
    collection_path : path-like
        An existing collection (opened read-only).
    max_upload_mb : float > 0
        Largest request body / uploaded file (MB).
    max_query_seconds : float > 0
        Longest uploaded audio excerpt for passage search (s).
    max_recording_seconds : float > 0
        Longest uploaded recording for version identification (s).
    workers : int >= 1
        Threads running searches, alignments and figures.
    max_pending : int, optional
        Calls queued for the workers before the server answers 503 (default ``16 * workers``).
    index_sources : sequence of path-like
        Folders the page may index (it picks one by position; no path comes from the client). Empty:
        indexing from the page is off.
    index_jobs : int >= 1
        Worker processes of an indexing job.

    Returns
    -------
    fastapi.FastAPI

    Raises
    ------
    CollectionError
        ``collection_path`` is not a collection.
    ParameterError
        A limit is not positive.
    """
    for name, value in (
        ("max_upload_mb", max_upload_mb),
        ("max_query_seconds", max_query_seconds),
        ("max_recording_seconds", max_recording_seconds),
        ("workers", workers),
        ("index_jobs", index_jobs),
    ):
        if not value > 0:
            raise ParameterError(f"{name}={value!r} must be > 0")
    server = Server(
        Path(collection_path),
        max_upload_mb=max_upload_mb,
        max_query_seconds=max_query_seconds,
        max_recording_seconds=max_recording_seconds,
        workers=workers,
        max_pending=max_pending or 16 * workers,
        index_sources=[Path(p) for p in index_sources],
        index_jobs=index_jobs,
    )
    static = Path(str(resources.files("mirsearch.server") / "static"))

    @asynccontextmanager
    async def lifespan(app):
        yield
        server.close()

    app = FastAPI(
        title="mirsearch",
        version=__version__,
        description=(
            "Music retrieval over one collection: theme search (note string or score file), audio "
            "matching, version identification, time maps between versions, audio streaming by id."
        ),
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.server = server
    app.add_middleware(BodySizeLimit, max_bytes=server.max_upload_bytes + 64 * 1024)
    app.add_middleware(SecurityHeaders)

    # -- errors -----------------------------------------------------------------------------------
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return _error(422, _validation_message(exc))

    @app.exception_handler(MirsearchError)
    async def _mirsearch_error(request: Request, exc: MirsearchError):
        status = 400
        if isinstance(exc, UploadTooLarge):
            status = 413
        elif isinstance(exc, NotFound):
            status = 404
        elif isinstance(exc, ServerBusy):
            status = 503
        elif isinstance(exc, NotAvailable):
            status = 501
        elif isinstance(exc, CollectionError):
            status = 409
        return _error(status, str(exc))

    # -- page ---------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(static / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=static), name="static")

    # -- collection ---------------------------------------------------------------------------------
    @app.get("/api/health", tags=["collection"])
    async def health() -> dict:
        """Liveness check."""
        return {"status": "ok", "version": __version__}

    @app.get("/api/stats", tags=["collection"])
    async def stats() -> dict:
        """Collection statistics (``Collection.info()``), the running indexing job and server limits."""
        info = await server.light(server.stats)
        return {**info, "index_job": server.jobs.status()}

    @app.get("/api/recordings", tags=["collection"], response_model=RecordingsOut)
    async def recordings():
        """All recordings of the collection, by id."""
        recs = await server.light(server.coll.recordings)
        return {"recordings": [_recording_json(r) for r in recs]}

    @app.get("/api/recordings/{recording_id}", tags=["collection"], response_model=RecordingOut, responses=ERRORS)
    async def recording(recording_id: RecordingId):
        """One recording."""
        return _recording_json(await server.light(server.coll.recording, recording_id))

    @app.get(
        "/api/recordings/{recording_id}/audio",
        tags=["collection"],
        responses={**ERRORS, 206: {"description": "partial content (Range request)"}},
        response_class=FileResponse,
    )
    async def audio(recording_id: RecordingId):
        """The recording's audio file; supports ``Range: bytes=...`` (206) so players can seek (HEAD too).

        Only files listed in the catalogue are served: the id is looked up, the path comes from there.
        """
        rec = await server.light(server.coll.recording, recording_id)
        path = Path(rec.path)
        if not path.is_file():
            raise NotFound(f"recording {recording_id} ({path.name}): file is missing on disk")
        media = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
        return FileResponse(path, media_type=media, headers={"Cache-Control": "no-cache"})

    app.head("/api/recordings/{recording_id}/audio", include_in_schema=False)(audio)

    @app.get(
        "/api/recordings/{recording_id}/chromagram.png",
        tags=["figures"],
        response_class=Response,
        responses={**ERRORS, 200: {"content": {"image/png": {}}}},
    )
    async def chromagram(
        recording_id: RecordingId,
        start: Annotated[float | None, Query(ge=0, description="highlighted span start (s)")] = None,
        end: Annotated[float | None, Query(ge=0, description="highlighted span end (s)")] = None,
        context: Annotated[float | None, Query(gt=0, le=3600, description="show only this many s around")] = None,
        width: Annotated[int, Query(ge=200, le=2400)] = 1000,
    ):
        """PNG chromagram of a recording (stored chroma), with the span ``start``-``end`` highlighted."""
        if (start is None) != (end is None) or (start is not None and not end > start):
            raise ParameterError("start and end must be given together, with end > start")

        def make() -> bytes:
            from mirsearch.server.figures import chromagram_png

            rec = server.coll.recording(recording_id)
            X, rate = server.coll.load_features(recording_id, "chroma")
            highlight = (start, end) if start is not None else None
            view = None
            if context is not None:
                centre = ((start + end) / 2) if start is not None else 0.0
                half = context / 2 + ((end - start) / 2 if start is not None else 0.0)
                view = (max(0.0, centre - half), centre + half)
            return chromagram_png(
                np.asarray(X), feature_rate=rate, highlight=highlight, view=view, title=Path(rec.path).name, width=width
            )

        key = ("chroma", recording_id, start, end, context, width)
        png = server.cached_figure(key) or await server.run(server.figure, key, make)
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})

    # -- search -------------------------------------------------------------------------------------
    @app.post("/api/search/theme", tags=["search"], response_model=SearchOut, responses=ERRORS)
    async def search_theme(body: ThemeQuery):
        """Find where a theme, given as a note string, is played (``Collection.search_theme``)."""
        from mirsearch.scores import parse_note_string

        def work():
            t0 = time.perf_counter()
            theme = parse_note_string(body.notes, name="theme")  # never read_theme: a string is no path here
            if len(theme.notes) > MAX_THEME_NOTES:
                raise InputError(f"theme has {len(theme.notes)} notes; at most {MAX_THEME_NOTES} are accepted")
            matches = server.coll.search_theme(
                theme,
                top=body.top,
                per_recording=body.per_recording,
                features=body.features,
                tempo_bpm=body.tempo_bpm,
                transpositions=range(12) if body.transpose else [0],
                cascade=body.cascade,
            )
            query = {"kind": "theme", "notes": theme.to_string(), "n_notes": len(theme.notes)}
            return query, matches, time.perf_counter() - t0

        query, matches, seconds = await server.run(work)
        recs = await server.light(server.coll.recordings)
        return {"query": query, "matches": _matches_json(matches, recs), "seconds": round(seconds, 4)}

    @app.post("/api/search/theme-file", tags=["search"], response_model=SearchOut, responses=ERRORS)
    async def search_theme_file(
        file: Annotated[UploadFile, File(description="MIDI, MusicXML (.xml/.mxl/.musicxml) or kern file")],
        top: Annotated[int, Form(ge=1, le=100)] = 10,
        per_recording: Annotated[int, Form(ge=1, le=20)] = 3,
        part: Annotated[str | None, Form(max_length=100, description="part name or 0-based index")] = None,
        tempo_bpm: Annotated[float | None, Form(gt=10, le=400)] = None,
        transpose: Annotated[bool, Form()] = True,
    ):
        """Find where a theme, given as a score file, is played (top voice of the highest part)."""
        from mirsearch.scores import SCORE_EXTENSIONS, load_theme

        folder = new_folder(server.tmp)
        try:
            path = await save_upload(
                file, folder, allowed=SCORE_EXTENSIONS, kind="score", max_bytes=server.max_upload_bytes
            )

            def work():
                t0 = time.perf_counter()
                theme = load_theme(path, part=part or None)
                if len(theme.notes) > MAX_THEME_NOTES:
                    raise InputError(f"{path.name}: {len(theme.notes)} notes; at most {MAX_THEME_NOTES} are accepted")
                matches = server.coll.search_theme(
                    theme,
                    top=top,
                    per_recording=per_recording,
                    tempo_bpm=tempo_bpm,
                    transpositions=range(12) if transpose else [0],
                )
                query = {"kind": "theme-file", "file": path.name, "notes": theme.to_string()}
                query["n_notes"] = len(theme.notes)
                return query, matches, time.perf_counter() - t0

            query, matches, seconds = await server.run(work)
        finally:
            discard(folder)
        recs = await server.light(server.coll.recordings)
        return {"query": query, "matches": _matches_json(matches, recs), "seconds": round(seconds, 4)}

    async def _audio_upload(file: UploadFile, max_seconds: float) -> tuple[Path, float]:
        """Save an uploaded audio file in a private folder and check its duration from the header."""
        from mirsearch.audio import AUDIO_EXTENSIONS

        folder = new_folder(server.tmp)
        try:
            path = await save_upload(
                file, folder, allowed=AUDIO_EXTENSIONS, kind="audio", max_bytes=server.max_upload_bytes
            )
            seconds = await server.light(_check_audio_duration, path, max_seconds)
        except BaseException:
            discard(folder)
            raise
        return path, seconds

    @app.post("/api/search/audio", tags=["search"], response_model=SearchOut, responses=ERRORS)
    async def search_audio(
        file: Annotated[UploadFile, File(description="audio excerpt: wav, flac, ogg or mp3")],
        top: Annotated[int, Form(ge=1, le=100)] = 10,
        transpose: Annotated[bool, Form(description="also find transposed passages")] = False,
    ):
        """Find passages similar to an audio excerpt (``Collection.search_audio``, multiple scaling over CENS).

        The answer's ``query.id`` names the query's matching curves for ``/api/queries/{id}/curve.png``.
        """
        path, duration = await _audio_upload(file, server.max_query_seconds)
        try:
            t0 = time.perf_counter()
            matches, curves = await server.run(
                server.coll.search_audio, path, top=top, transpose=transpose, return_curves=True
            )
            seconds = time.perf_counter() - t0
        finally:
            discard(path.parent)
        spans: dict[int, list] = {}
        for m in matches:
            spans.setdefault(m.recording_id, []).append((m.start, m.end, m.cost))
        kept = {c.recording_id: c for c in curves if c.recording_id in spans}
        token = server.queries.put({"curves": kept, "spans": spans, "file": path.name})
        recs = await server.light(server.coll.recordings)
        query = {"kind": "audio", "id": token, "file": path.name, "duration": round(duration, 3)}
        return {"query": query, "matches": _matches_json(matches, recs), "seconds": round(seconds, 4)}

    @app.post("/api/versions", tags=["search"], response_model=SearchOut, responses=ERRORS)
    async def versions_upload(
        file: Annotated[UploadFile, File(description="a recording: wav, flac, ogg or mp3")],
        top: Annotated[int, Form(ge=1, le=100)] = 10,
    ):
        """Rank the collection's recordings as versions of an uploaded recording (``Collection.versions``)."""
        path, duration = await _audio_upload(file, server.max_recording_seconds)
        try:
            t0 = time.perf_counter()
            matches = await server.run(server.coll.versions, path, top=top)
            seconds = time.perf_counter() - t0
        finally:
            discard(path.parent)
        recs = await server.light(server.coll.recordings)
        query = {"kind": "versions", "file": path.name, "duration": round(duration, 3)}
        return {"query": query, "matches": _matches_json(matches, recs), "seconds": round(seconds, 4)}

    @app.get("/api/recordings/{recording_id}/versions", tags=["search"], response_model=SearchOut, responses=ERRORS)
    async def versions_of(recording_id: RecordingId, top: Annotated[int, Query(ge=1, le=100)] = 10):
        """The other recordings of the collection ranked as versions of this one."""
        rec = await server.light(server.coll.recording, recording_id)
        if not Path(rec.path).is_file():
            raise NotFound(f"recording {recording_id} ({Path(rec.path).name}): file is missing on disk")
        t0 = time.perf_counter()
        matches = await server.run(server.coll.versions, rec.path, top=top, exclude=[recording_id])
        recs = await server.light(server.coll.recordings)
        query = {"kind": "versions", "recording_id": recording_id, "name": Path(rec.path).name}
        return {
            "query": query,
            "matches": _matches_json(matches, recs),
            "seconds": round(time.perf_counter() - t0, 4),
        }

    @app.get(
        "/api/queries/{query_id}/curve.png",
        tags=["figures"],
        response_class=Response,
        responses={**ERRORS, 200: {"content": {"image/png": {}}}},
    )
    async def query_curve(
        query_id: Annotated[str, PathParam(min_length=8, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")],
        recording_id: Annotated[int, Query(ge=1, le=2**62)],
        width: Annotated[int, Query(ge=200, le=2400)] = 1000,
    ):
        """PNG matching curve of a recent audio query (``query.id`` of /api/search/audio) in one of its
        result recordings, the matches shaded."""
        kept = server.queries.get(query_id)
        if kept is None:
            raise NotFound(f"query {query_id} is unknown or expired (search again)")
        curve = kept["curves"].get(recording_id)
        if curve is None:
            raise NotFound(f"recording {recording_id} is not among the results of query {query_id}")

        def make() -> bytes:
            from mirsearch.server.figures import matching_curve_png

            title = f"matching curve of {kept['file']} in {Path(curve.recording).name}"
            return matching_curve_png(
                curve.cost,
                feature_rate=curve.feature_rate,
                matches=kept["spans"].get(recording_id, []),
                title=title,
                width=width,
            )

        key = ("curve", query_id, recording_id, width)
        png = server.cached_figure(key) or await server.run(server.figure, key, make)
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})

    # -- synchronisation ----------------------------------------------------------------------------
    @app.get("/api/align", tags=["synchronisation"], response_model=TimeMapOut, responses=ERRORS)
    async def align(
        a: Annotated[int, Query(ge=1, le=2**62, description="recording id (source time axis)")],
        b: Annotated[int, Query(ge=1, le=2**62, description="recording id (target time axis)")],
        t: Annotated[float | None, Query(ge=0, le=1e6, description="a time in a (s) to map to b")] = None,
    ):
        """Time map from recording ``a`` to ``b`` (``mirsearch.sync.align_audio``, cached on disk).

        ``time_a[i]`` corresponds to ``time_b[i]`` (seconds, strictly increasing, linear in between).
        With ``t``, also ``mapped``: the time in ``b`` corresponding to ``t`` in ``a``.
        The first request for a pair computes the alignment (seconds); later ones are read from the cache.
        """
        if a == b:
            raise ParameterError(f"a={a} and b={b} are the same recording")

        def work(compute: bool):
            rec_a, rec_b = server.coll.recording(a), server.coll.recording(b)
            tmap = server.timemaps.time_map_for(rec_a, rec_b, compute=compute)
            if tmap is None:
                return None
            d = tmap.to_dict()
            d.update({"a": a, "b": b, "name_a": Path(rec_a.path).name, "name_b": Path(rec_b.path).name})
            if t is not None:
                d["t"] = t
                d["mapped"] = round(float(tmap.map(t)), 3)
            return d

        cached = await server.light(work, False)  # a cached map does not wait for the worker pool
        return cached if cached is not None else await server.run(work, True)

    # -- indexing -----------------------------------------------------------------------------------
    @app.get("/api/index", tags=["indexing"], response_model=IndexOut)
    async def index_status():
        """Folders the page may index and the current (or last) job's progress."""
        return {"sources": [str(p) for p in server.jobs.sources], "job": server.jobs.status()}

    @app.post(
        "/api/index",
        tags=["indexing"],
        status_code=202,
        response_model=IndexOut,
        responses={**ERRORS, 403: {"model": ErrorOut}, 409: {"model": ErrorOut}},
    )
    async def index_start(body: IndexStart | None = None):
        """Start indexing the configured source folders (new and changed files only); poll GET for progress."""
        try:
            server.jobs.start(body.sources if body else None)
        except PermissionError as exc:
            raise HTTPException(403, str(exc)) from None
        except IndexError as exc:
            raise ParameterError(str(exc)) from None
        server.forget_stats()
        return {"sources": [str(p) for p in server.jobs.sources], "job": server.jobs.status()}

    return app
