"""The API's endpoints, one router per area: collection, search, describe, figures, sync,
indexing, docs.

Every router reaches the app's state (:class:`~mirsearch.server.state.Server`) through :data:`ServerDep`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi import Path as PathParam

from mirsearch.server.state import Server, request_started


async def get_server(request: Request) -> Server:
    """The app's state; starts the request's time budget (async: in the endpoint's own context)."""
    request_started()
    return request.app.state.server


ServerDep = Annotated[Server, Depends(get_server)]
RecordingId = Annotated[int, PathParam(ge=1, le=2**62, description="recording id from /api/recordings")]
