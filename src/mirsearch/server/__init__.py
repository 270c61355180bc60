"""HTTP server and web page: theme / audio search, listening at the match, the interpretation switcher.

``mirsearch serve --collection C`` runs :func:`create_app` with uvicorn on 127.0.0.1 (``--host`` must be
given explicitly to listen beyond the local machine, and then a ``--token``). The JSON API is derived from
the service's tasks (:mod:`mirsearch.server.models`); the page (``static/``) is plain HTML, JavaScript and
CSS served by the same app. See ``docs/server.md``.
"""

from __future__ import annotations


def __getattr__(name: str):  # the app (FastAPI) is imported on first use only
    if name == "create_app":
        from mirsearch.server.app import create_app

        return create_app
    raise AttributeError(name)


__all__ = ["create_app"]
