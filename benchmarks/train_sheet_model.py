"""Train the audio-sheet model (issue 22) on the verovio training split of data/sheets.

    nice -n 15 .venv/bin/python benchmarks/train_sheet_model.py --steps 6000 --time-limit 3600

Caches detected system strips and spectrograms per piece (data/sheets/cache), trains with the pairwise
ranking loss (resumable from data/sheets/runs/<name>/checkpoint.pt) and copies the best validation model
to src/mirsearch/models/bundles/sheets with ``--install``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from mirsearch.datasets.sheets_build import load_manifest
from mirsearch.models.sheets import DEFAULT_BUNDLE, SheetModelConfig
from mirsearch.training.sheets import SheetTrainOptions, cache_piece, load_cached, train_sheet_model

log = logging.getLogger("train_sheet_model")


def cached(rows: list[dict], cache_dir: Path) -> list:
    out = []
    for row in rows:
        try:
            path = cache_piece(row, cache_dir)
        except Exception as exc:  # a page the detector cannot read: leave the piece out
            log.warning("%s: not cached (%s: %s)", row["id"], type(exc).__name__, exc)
            continue
        if path is not None:
            out.append(load_cached(path, row["id"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="data/sheets")
    ap.add_argument("--run", default="data/sheets/runs/base")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--margin", type=float, default=0.7)
    ap.add_argument("--time-limit", type=float, default=3600.0)
    ap.add_argument("--cache-only", action="store_true")
    ap.add_argument("--install", action="store_true", help="copy the best model to the package bundle")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    import torch

    torch.set_num_threads(1)
    rows = [r for r in load_manifest(args.corpus) if r["engraver"] == "verovio"]
    cache_dir = Path(args.corpus) / "cache"
    train = cached([r for r in rows if r["split"] == "train"], cache_dir)
    val = cached([r for r in rows if r["split"] == "val"], cache_dir)
    log.info("%d train pieces (%d heads), %d val pieces", len(train), sum(len(p.head_x) for p in train), len(val))
    if args.cache_only:
        return
    opts = SheetTrainOptions(
        corpus=args.corpus,
        run_dir=args.run,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        margin=args.margin,
        time_limit=args.time_limit,
    )
    state = train_sheet_model(opts, train, val, SheetModelConfig())
    log.info("best val MRR %.3f after %d steps", state["best_mrr"], state["step"])
    if args.install:
        DEFAULT_BUNDLE.mkdir(parents=True, exist_ok=True)
        for f in ("config.json", "weights.pt"):
            shutil.copy(Path(args.run) / "best" / f, DEFAULT_BUNDLE / f)


if __name__ == "__main__":
    main()
