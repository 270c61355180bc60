"""Build the "other music" theme benchmark (issue 14): Mutopia pieces and folk tunes with generated backing,
rendered with SoundFonts no mirsearch model heard; splits ``validation`` / ``test`` by work.

    nice -n 10 .venv/bin/python benchmarks/build_mutopia_themes.py \
        --mutopia /work/.mirror/MutopiaProject+MutopiaProject/repo --out data/mutopia_themes [--n-per-split 50]

Deterministic and resumable (finished or failed pieces are not redone). Then for example:

    .venv/bin/python benchmarks/bench_learned_chroma.py --dataset data/mutopia_themes --split validation --default
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def excluded_sets(dirs: list[str]) -> dict:
    """``exclude_works`` and ``exclude_names`` of the built sets ``dirs`` (their manifest's Mutopia works, every
    ``pieces/<id>/piece.json``'s work, every piece id)."""
    from mirsearch.datasets.mutopia_themes import name_key

    works, names = set(), set()
    for d in map(Path, dirs):
        if not d.is_dir():
            raise SystemExit(f"--exclude {d}: not a directory")
        manifest = d / "manifest.json"
        if manifest.is_file():
            works |= {w["mutopia_work"] for w in json.loads(manifest.read_text())["works"] if "mutopia_work" in w}
        for piece in (d / "pieces").glob("*"):
            names.add(name_key(piece.name))
            row = piece / "piece.json"
            if row.is_file():
                works.add(json.loads(row.read_text()).get("work", ""))
    logging.info("excluded: %d works, %d piece names", len(works), len(names))
    return {"exclude_works": frozenset(works - {""}), "exclude_names": frozenset(names)}


def main(argv=None) -> int:
    from mirsearch.datasets.manifest import Dataset
    from mirsearch.datasets.mutopia_themes import MutopiaThemesOptions, build

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mutopia", required=True, help="bare git directory of the Mutopia Project repository")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n-per-split", type=int, default=50)
    ap.add_argument("--max-seconds", type=float, default=75.0)
    ap.add_argument("--time-limit", type=float, default=3600.0)
    ap.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="DIR",
        help="pass over the Mutopia works and piece series of this built set (an evaluation set or a training set "
        "of train_mutopia.py; repeatable)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    opts = MutopiaThemesOptions(
        mutopia_git=args.mutopia,
        out=args.out,
        n_per_split=args.n_per_split,
        max_seconds=args.max_seconds,
        time_limit=args.time_limit,
        **excluded_sets(args.exclude),
    )
    build(opts)
    print(Dataset.load(args.out).summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
