"""The API documentation, served without a network: Swagger UI 5 comes from the ``fastapi-offline`` wheel.

FastAPI's own ``/docs`` page loads Swagger UI from a CDN (blank on an offline machine) and starts it with an
inline script (which the page's Content-Security-Policy forbids); this one serves the assets itself and
starts them with ``static/api-docs.js``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse

from mirsearch.server.state import NotAvailable, NotFound

router = APIRouter(include_in_schema=False)

#: the Swagger UI files served under /api/docs/assets/
ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon.png": "image/png",
}

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>mirsearch API</title>
  <link rel="stylesheet" href="/api/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/api/docs/assets/favicon.png">
</head>
<body>
  <div id="swagger-ui" data-spec="/api/openapi.json"></div>
  <script src="/api/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/static/api-docs.js"></script>
</body>
</html>
"""


def _assets():
    """The folder of Swagger UI's files (only the files of ``fastapi-offline`` are used, not its code)."""
    from importlib import resources

    try:
        return resources.files("fastapi_offline") / "static"
    except ModuleNotFoundError:
        raise NotAvailable("API documentation needs the fastapi-offline package (pip install mirsearch)") from None


@router.get("/api/docs")
async def docs() -> HTMLResponse:
    """Swagger UI for /api/openapi.json, all from this server."""
    _assets()
    return HTMLResponse(PAGE)


@router.get("/api/docs/assets/{name}")
async def asset(name: Annotated[str, PathParam(max_length=64)]) -> FileResponse:
    if name not in ASSETS:
        raise NotFound(f"{name}: no such documentation asset")
    return FileResponse(str(_assets() / name), media_type=ASSETS[name], headers={"Cache-Control": "max-age=86400"})
