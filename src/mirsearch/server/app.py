"""The FastAPI application: the JSON API (one router per area, derived from the service's tasks) and the page.

Endpoints (all JSON unless noted; errors are ``{"error": "..."}`` with a 4xx/5xx status):

=======  ===========================================  ==============================================
GET      ``/``                                        the page (``static/index.html``)
GET      ``/api/docs``                                API documentation (Swagger UI, served locally)
GET      ``/api/health``                              liveness (never queued, no token needed)
GET      ``/api/stats``                               collection statistics and server limits
GET      ``/api/recordings``                          all recordings (id, name, relative path, ...)
GET      ``/api/recordings/{id}``                     one recording
GET      ``/api/recordings/{id}/audio``               the audio file (HTTP range requests, 206)
GET      ``/api/recordings/{id}/chromagram.png``      chromagram, optionally with a span highlighted
GET      ``/api/recordings/{id}/versions``            task ``versions`` of a recording of the collection
POST     ``/api/search/theme``                        task ``theme``: a note string (JSON body)
POST     ``/api/search/theme-file``                   task ``theme``: an uploaded MIDI / MusicXML / kern file
POST     ``/api/search/audio``                        task ``passages``: an uploaded audio excerpt
POST     ``/api/versions``                            task ``versions``: an uploaded recording
POST     ``/api/identify``                            task ``identify``: which recording an uploaded excerpt is from
GET      ``/api/queries/{query}/curve.png``           matching curve of an audio query in a recording
GET      ``/api/align``                               task ``align``: time map between two recordings (cached), or
                                                      202 and a background alignment job
GET      ``/api/align/jobs/{job}``                    an alignment job's state and estimated progress
GET      ``/api/index``  / POST ``/api/index``        indexing job: status / start
GET      ``/api/scores`` (and ``/api/scores/...``)    scores: list, theme search, engraving, audio
=======  ===========================================  ==============================================

Safety: the ``Host`` header must name this server (DNS rebinding); with a token every request but
``/api/health`` and static assets needs it; request bodies are limited before they are parsed (JSON to
``max_json_kb``, uploads to ``max_upload_mb``); uploaded files keep only a checked extension and a sanitised
name inside a private temporary folder and are parsed in a child process with a time and memory budget;
audio is streamed by recording id only; paths are shown relative to the folder holding the recordings; the
collection is opened read-only. Work queues and time budgets: :mod:`mirsearch.server.state`.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from mirsearch import __version__
from mirsearch.errors import CollectionError, MirsearchError
from mirsearch.server.middleware import BodySizeLimit, HostCheck, SecurityHeaders, TokenCheck
from mirsearch.server.routers import collection, describe, docs, figures, indexing, scores, search, similar, sync, tags
from mirsearch.server.sandbox import OverBudget, ReadersBusy
from mirsearch.server.state import NotAvailable, NotFound, Server, ServerBusy, ServerOptions
from mirsearch.server.uploads import MULTIPART_SLACK, UploadTooLarge
from mirsearch.server.workers import OverMemory, WorkerFailed

log = logging.getLogger(__name__)

#: HTTP status of each error kind (the first that matches)
STATUS = ((UploadTooLarge, 413), (OverMemory, 413), (NotFound, 404), (ServerBusy, 503), (ReadersBusy, 503),
          (WorkerFailed, 503), (OverBudget, 504), (NotAvailable, 501), (CollectionError, 409))  # fmt: skip


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path", "form"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return _error(422, _validation_message(exc))

    @app.exception_handler(MirsearchError)
    async def _mirsearch_error(request: Request, exc: MirsearchError):
        status = next((code for kind, code in STATUS if isinstance(exc, kind)), 400)
        return _error(status, str(exc))


def _add_page(app: FastAPI) -> None:
    static = Path(str(resources.files("mirsearch.server") / "static"))

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(static / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=static), name="static")


def create_app(collection_path, options: ServerOptions | None = None, **fields) -> FastAPI:
    """Build the web application for one collection.

    Parameters
    ----------
    collection_path : path-like
        An existing collection (opened read-only).
    options : ServerOptions, optional
        Limits and access rules; ``fields`` (the names of :class:`ServerOptions`) replace single ones.

    Raises
    ------
    CollectionError
        ``collection_path`` is not a collection.
    ParameterError
        A limit is not positive.
    """
    if options is None:
        options = ServerOptions(**fields)
    elif fields:
        import dataclasses

        options = dataclasses.replace(options, **fields)
    server = Server(Path(collection_path), options)

    @asynccontextmanager
    async def lifespan(app):
        yield
        server.close()

    app = FastAPI(
        title="mirsearch",
        version=__version__,
        description=(
            "Music retrieval over one collection: theme search (note string or score file), audio "
            "matching, version identification, time maps between versions, audio streaming by id. "
            "The request fields are the parameters of the command line's tasks, with the same defaults."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.server = server
    app.add_middleware(
        BodySizeLimit,
        max_bytes=options.max_upload_bytes + MULTIPART_SLACK,
        max_json_bytes=int(options.max_json_kb * 1e3),
    )
    if options.token:
        app.add_middleware(TokenCheck, token=options.token)
    app.add_middleware(HostCheck, allowed=options.allowed_hosts)
    app.add_middleware(SecurityHeaders)
    _add_error_handlers(app)
    _add_page(app)
    for module in (collection, search, describe, figures, sync, indexing, docs, tags, similar, scores):
        app.include_router(module.router)
    return app
