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
import os
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
    "collection_admin",
    "segment",
    "identify",
    "tag",
    "similar",
)


#: the exit codes, as ``mirsearch --help`` lists them
EXIT_CODES = """exit codes:
  0  done
  1  error (a one-line message on stderr)
  2  usage error (unknown option, bad value)
  3  some files of THIS run could not be indexed (the others were; earlier failures do not count)
  130 interrupted (Ctrl+C)"""


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available command group."""
    parser = argparse.ArgumentParser(
        prog="mirsearch",
        description="Music retrieval: find themes in recordings, match audio, align versions.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    for command in sub.choices.values():  # -v after the command too ("mirsearch search -v ...")
        command.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def configure_logging(verbose: int) -> None:
    """mirsearch's own loggers at INFO (-v) or DEBUG (-vv); third-party loggers (numba, ...) stay at WARNING."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("mirsearch").setLevel(logging.WARNING - 10 * min(verbose, 2))


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from mirsearch.errors import MirsearchError

    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below, not at interpreter exit
        return code
    except MirsearchError as exc:
        print(f"mirsearch {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``mirsearch ... --json | head``): no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail again
        return 0


if __name__ == "__main__":
    sys.exit(main())
