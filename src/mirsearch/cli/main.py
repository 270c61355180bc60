"""Entry point of the ``mirsearch`` command.

Each command group lives in its own module of this package and exposes
``register(subparsers) -> None``, which adds its sub-parser(s) and sets ``func`` (a callable taking
the parsed ``argparse.Namespace`` and returning an exit code). Heavy imports happen inside ``func`` so
that ``mirsearch --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from mirsearch import __version__

#: command modules, in the order they appear in ``--help``
COMMAND_MODULES = (
    "index",
    "search",
    "info",
    "versions",
    "align",
    "dataset",
    "bench",
    "train",
    "shingles",
    "serve",
    "segment",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available command group."""
    parser = argparse.ArgumentParser(
        prog="mirsearch",
        description="Music retrieval: find themes in recordings, match audio, align versions.",
    )
    parser.add_argument("--version", action="version", version=f"mirsearch {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"mirsearch.cli.{name}")
        except ModuleNotFoundError as exc:  # a command group not built yet
            if exc.name != f"mirsearch.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from mirsearch.errors import MirsearchError

    try:
        return int(args.func(args) or 0)
    except MirsearchError as exc:
        print(f"mirsearch {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
