"""HTTP server and web page: theme / audio search, listening at the match, the interpretation switcher.

``mirsearch serve --collection C`` runs :func:`create_app` with uvicorn on 127.0.0.1 (``--host`` must be
given explicitly to listen beyond the local machine). The JSON API mirrors the Python API; the page
(``static/``) is plain HTML, JavaScript and CSS served by the same app. See ``docs/server.md``.
"""

from __future__ import annotations

from mirsearch.server.app import create_app

__all__ = ["create_app"]
