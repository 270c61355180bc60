"""``mirsearch serve``: the web page and HTTP API for one collection (localhost unless told otherwise)."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from mirsearch.cli.common import add_collection_argument

DEFAULT_HOST = "127.0.0.1"


def register(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="web page and HTTP API: search, listen at the match, switch between versions",
        description=(
            "Serve a collection over HTTP: a web page (search by notes, score or audio excerpt; play at the "
            "match; chromagrams; interpretation switcher; indexing progress) and a JSON API with an OpenAPI "
            "description at /api/docs. The collection is opened read-only. Listens on 127.0.0.1 unless "
            "--host is given."
        ),
        epilog="example: mirsearch serve -c my.mirs --port 8000   (then open http://127.0.0.1:8000/)",
    )
    add_collection_argument(p)
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)",
    )
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--workers", type=int, default=2, help="threads running searches and alignments (default 2)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload in MB (default 20)")
    p.add_argument("--max-query-seconds", type=float, default=60.0, help="longest audio query in seconds (default 60)")
    p.add_argument(
        "--max-recording-seconds",
        type=float,
        default=1200.0,
        help="longest uploaded recording for version identification in seconds (default 1200)",
    )
    p.add_argument(
        "--index-source",
        action="append",
        default=[],
        metavar="DIR",
        help="folder the page may index (repeatable; default: none, indexing from the page is off)",
    )
    p.add_argument("--index-jobs", type=int, default=1, help="worker processes of an indexing job (default 1)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from mirsearch.errors import ParameterError
    from mirsearch.server import create_app

    if not 0 < args.port < 65536:
        raise ParameterError(f"--port={args.port} must be in 1..65535")
    app = create_app(
        args.collection,
        max_upload_mb=args.max_upload_mb,
        max_query_seconds=args.max_query_seconds,
        max_recording_seconds=args.max_recording_seconds,
        workers=args.workers,
        index_sources=args.index_source,
        index_jobs=args.index_jobs,
    )
    if not _is_loopback(args.host):
        print(
            f"warning: listening on {args.host}: anyone who can reach this address can search and listen "
            "to the collection (there is no authentication)",
            file=sys.stderr,
        )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"mirsearch: serving {args.collection} on http://{shown}:{args.port}/  (Ctrl+C stops)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0
