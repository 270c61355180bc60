"""``mirsearch serve``: the web page and HTTP API for one collection (localhost unless told otherwise)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import sys

from mirsearch.cli.common import add_collection_argument
from mirsearch.cli.options import add_request_options, request_from_args
from mirsearch.server.state import ServerOptions

DEFAULT_HOST = "127.0.0.1"
#: environment variable that may hold the token (so that it does not show in the process list)
TOKEN_ENV = "MIRSEARCH_TOKEN"


HELP = "web page and HTTP API: search, listen at the match, switch between versions"
DESCRIPTION = (
    "Serve a collection over HTTP: a web page (search by notes, score or audio excerpt; play at the "
    "match; chromagrams; interpretation switcher; indexing progress) and a JSON API with its "
    "documentation at /api/docs. The collection is opened read-only. Listens on 127.0.0.1 unless "
    "--host is given; then a token is required (--token, or $MIRSEARCH_TOKEN, or 'auto')."
)
EPILOG = "example: mirsearch serve -c my.mirs --port 8000   (then open http://127.0.0.1:8000/)"


def register(sub) -> None:
    p = sub.add_parser("serve", help=HELP, description=DESCRIPTION, epilog=EPILOG)
    add_collection_argument(p)
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)",
    )
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name clients use to reach the server (repeatable; loopback names and --host are always "
        "allowed; other Host headers are refused against DNS rebinding)",
    )
    p.add_argument(
        "--token",
        metavar="SECRET",
        help=f"require this token (Bearer header, or open /?token=SECRET once); 'auto' makes one; default: "
        f"${TOKEN_ENV}; required with a non-loopback --host",
    )
    add_request_options(p, ServerOptions)
    p.add_argument(
        "--index-source",
        action="append",
        default=[],
        metavar="DIR",
        help="folder the page may index (repeatable; default: none, indexing from the page is off)",
    )
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, extra: list[str]) -> tuple[str, ...]:
    """Host names accepted in requests: ``--allowed-host`` names, the bound address and, for a wildcard
    address, this machine's name."""
    import socket

    names = list(extra)
    if host in ("0.0.0.0", "::", ""):
        names += [socket.gethostname(), socket.getfqdn()]
    elif not is_loopback(host):
        names.append(host)
    return tuple(dict.fromkeys(n for n in names if n))


def resolve_token(host: str, token: str | None) -> str | None:
    """The token in force: given, from the environment, made up (``auto``); required off loopback."""
    from mirsearch.errors import ParameterError

    token = token or os.environ.get(TOKEN_ENV) or None
    if token == "auto":
        token = secrets.token_urlsafe(24)
    if token is None and not is_loopback(host):
        raise ParameterError(f"--host={host} opens the collection to the network: give --token SECRET (or 'auto')")
    return token


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from mirsearch.errors import ParameterError
    from mirsearch.server import create_app

    if not 0 < args.port < 65536:
        raise ParameterError(f"--port={args.port} must be in 1..65535")
    token = resolve_token(args.host, args.token)
    options = request_from_args(
        ServerOptions, args, index_sources=tuple(args.index_source), token=token,
        allowed_hosts=allowed_hosts(args.host, args.allowed_host),
    )  # fmt: skip
    app = create_app(args.collection, options)
    app.state.server.tasks.start()  # search workers start and warm up now, not on the first request
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{args.port}/" + (f"?token={token}" if token else "")
    print(f"mirsearch: serving {args.collection} on {url}  (Ctrl+C stops)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0
