"""ASGI middleware: Host check, optional token, request body limits before parsing, security headers.

Order (outermost first, see :func:`mirsearch.server.app.create_app`): :class:`SecurityHeaders`,
:class:`HostCheck` (a DNS-rebinding page cannot talk to a local server), :class:`TokenCheck` (when the server
has a token), :class:`BodySizeLimit` (a JSON body above a few hundred kB, an upload above the limit, is
refused from its ``Content-Length`` or while it arrives, before anything parses it).
"""

from __future__ import annotations

import hmac
import json
import logging
from urllib.parse import parse_qs

log = logging.getLogger(__name__)

#: the page and the API: scripts, styles and media only from this server
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
#: the API documentation (Swagger UI sets inline styles; its scripts still come from this server only)
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
#: names under which the local machine is always reachable
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
#: the cookie that carries the token for the page (set by ``/?token=...``)
TOKEN_COOKIE = "mirsearch_token"
#: paths reachable without the token: liveness and the page's static assets (no collection data)
PUBLIC_PREFIXES = ("/api/health", "/static/", "/favicon")


async def send_json(send, status: int, message: str, headers: list | None = None) -> None:
    """Send a complete ``{"error": message}`` response."""
    body = json.dumps({"error": message}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head + (headers or [])})
    await send({"type": "http.response.body", "body": body})


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def host_name(host_header: str) -> str:
    """The name part of a ``Host`` header (port and IPv6 brackets removed, lower case)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostCheck:
    """Refuse requests whose ``Host`` is not a name of this server (HTTP 400).

    Parameters
    ----------
    app : ASGI application
    allowed : iterable of str
        Accepted host names besides :data:`LOOPBACK_NAMES`; ``"*"`` accepts any.
    """

    def __init__(self, app, *, allowed=()):
        self.app = app
        self.allowed = {host_name(h) for h in (*LOOPBACK_NAMES, *allowed)}
        self.any = "*" in allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and not self.any:
            host = host_name(_header(scope, b"host") or "")
            if host not in self.allowed:
                await send_json(
                    send, 400, f"host {host[:80]!r} is not served here (see mirsearch serve --allowed-host)"
                )
                return
        await self.app(scope, receive, send)


class TokenCheck:
    """Require a shared secret: ``Authorization: Bearer TOKEN``, the page's cookie, or ``?token=TOKEN``.

    Opening ``/?token=TOKEN`` once sets an HttpOnly cookie (SameSite=Strict) and redirects to ``/``, so the
    page, its audio and its figures work without the token in their URLs.
    """

    def __init__(self, app, *, token: str):
        self.app = app
        self.token = token.encode()

    def _given(self, scope) -> list[bytes]:
        given = []
        auth = _header(scope, b"authorization") or ""
        if auth.lower().startswith("bearer "):
            given.append(auth[7:].strip().encode())
        for part in (_header(scope, b"cookie") or "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == TOKEN_COOKIE:
                given.append(value.encode())
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given.extend(v.encode() for v in query.get("token", []))
        return given

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        if not any(hmac.compare_digest(g, self.token) for g in self._given(scope)):
            await send_json(send, 401, "a token is required: open the URL the server printed (…/?token=…)")
            return
        if scope["path"] == "/" and b"token=" in scope.get("query_string", b""):
            cookie = f"{TOKEN_COOKIE}={self.token.decode()}; HttpOnly; SameSite=Strict; Path=/"
            headers = [(b"location", b"/"), (b"set-cookie", cookie.encode()), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 303, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


class BodySizeLimit:
    """Answer 413 once a request body exceeds its limit, before anything parses it.

    JSON (and any other non-multipart) bodies are limited to ``max_json_bytes``, multipart uploads to
    ``max_bytes``. ``Content-Length`` is checked first; bodies without one (chunked) are counted as they arrive.
    After the 413 the application sees a disconnect and its own response is discarded, so a huge body is
    never spooled to disk or parsed.
    """

    def __init__(self, app, *, max_bytes: int, max_json_bytes: int):
        self.app = app
        self.max_bytes = int(max_bytes)
        self.max_json_bytes = int(max_json_bytes)

    async def _reject(self, send, limit: int) -> None:
        await send_json(send, 413, f"request body too large (limit {limit / 1e6:.1f} MB)")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        multipart = (_header(scope, b"content-type") or "").lower().startswith("multipart/")
        limit = self.max_bytes if multipart else self.max_json_bytes
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.strip().isdigit() or int(declared) > limit):
            await self._reject(send, limit)
            return
        received = 0
        rejected = False

        async def limited_receive():
            nonlocal received, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    rejected = True
                    await self._reject(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            if not rejected:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not rejected:
                raise
            log.debug("request aborted after the body size limit", exc_info=True)


class SecurityHeaders:
    """A strict Content-Security-Policy, nosniff and no referrer on every response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope["path"].startswith("/api/docs") else CSP

        async def add_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                headers.append((b"content-security-policy", csp.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, add_headers)
