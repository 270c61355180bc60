"""Helpers shared by the command modules: JSON output and result tables."""

from __future__ import annotations

import json
import sys


def print_json(obj) -> None:
    """Print one JSON object on stdout."""
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def print_table(rows: list[dict], columns: list[tuple[str, str]], *, file=None) -> None:
    """Print ``rows`` as an aligned text table; ``columns`` are ``(key, header)`` pairs."""
    file = file or sys.stdout
    cells = [[str(r.get(k, "")) for k, _ in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_, h) in enumerate(columns)]
    print("  ".join(h.ljust(w) for (_, h), w in zip(columns, widths, strict=True)), file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)), file=file)


def add_collection_argument(parser, *, required: bool = True) -> None:
    parser.add_argument(
        "--collection",
        "-c",
        required=required,
        metavar="DIR",
        help="collection directory (created by 'mirsearch index'; '.mirs' by convention)",
    )
