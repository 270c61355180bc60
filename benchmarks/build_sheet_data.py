"""Build the sheet-music corpus under data/sheets (issue 22): music21 via verovio, Mutopia via LilyPond.

    nice -n 15 .venv/bin/python benchmarks/build_sheet_data.py --engraver lilypond --n 60
    nice -n 15 .venv/bin/python benchmarks/build_sheet_data.py --engraver verovio --n 500

Needs the bench extra (lilypond, verovio, cairosvg) and the Mutopia sources as a bare git directory
(``--mutopia``). Resumable: finished pieces are skipped.
"""

from __future__ import annotations

import argparse
import logging

from mirsearch.datasets.sheets_build import SheetBuildOptions, build_mutopia, build_verovio

DEFAULT_MUTOPIA = "/work/.mirror/MutopiaProject+MutopiaProject/repo"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engraver", choices=("lilypond", "verovio"), required=True)
    ap.add_argument("--n", type=int, default=150, help="number of pieces")
    ap.add_argument("--out", default="data/sheets")
    ap.add_argument("--mutopia", default=DEFAULT_MUTOPIA)
    ap.add_argument("--time-limit", type=float, default=6 * 3600.0, help="seconds")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("mirsearch.datasets.render").setLevel(logging.WARNING)
    opts = SheetBuildOptions(
        mutopia_git=args.mutopia, out=args.out, n_mutopia=args.n, n_verovio=args.n, time_limit=args.time_limit
    )
    rows = (build_mutopia if args.engraver == "lilypond" else build_verovio)(opts)
    logging.info("%d pieces in %s", len(rows), args.out)


if __name__ == "__main__":
    main()
