"""Theme retrieval on a mirsearch dataset: Top-1/5/10, MRR, MAP and query time (same code as
``mirsearch bench theme``).

    python benchmarks/bench_theme.py --dataset data/bench --features chroma --baseline librosa
    python benchmarks/bench_theme.py --dataset data/bench --features cens

Writes ``benchmarks/results/theme_<features>_<split>.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mirsearch.cli.main import main

if __name__ == "__main__":
    results = str(Path(__file__).resolve().parent / "results")
    argv = sys.argv[1:]
    if "--results-dir" not in argv:
        argv += ["--results-dir", results]
    sys.exit(main(["bench", "theme", *argv]))
