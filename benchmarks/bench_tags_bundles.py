"""Tagger bundles side by side on one split of the tags dataset: macro ROC-AUC, the ten families (ROC-AUC,
PR-AUC), families within clips of 1 / 2-3 / 4+ families, per family. Nothing else (no baselines, no soundtracks):
the check of a candidate bundle against the packaged one. A bundle with a YAMNet family head is scored with it and,
as "<bundle> (tagger CNN alone)", without it.

    nice -n 10 .venv/bin/python benchmarks/bench_tags_bundles.py data/tags19/bundle-s11 --split test \
        --out tags_s11_not_shipped --log data/tags/runs/s11-mix/log.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_tags as B  # noqa: E402
from mirsearch.datasets.tags import label_matrix, load_manifest  # noqa: E402
from mirsearch.describe.tag_vocabulary import FAMILIES, TAG_NAMES  # noqa: E402
from mirsearch.evaluation.tagging import macro_over, tag_metrics  # noqa: E402

from _common import write_results  # noqa: E402


def bundle_row(Y: np.ndarray, S: np.ndarray) -> dict:
    m = tag_metrics(Y, S, TAG_NAMES)
    return {"macro": round(m["macro_roc_auc"], 4), "families": round(macro_over(m, FAMILIES), 4),
            "families_pr": round(macro_over(m, FAMILIES, "pr_auc"), 4), "by_count": B.by_family_count(Y, S),
            "per_family": {f: round(m["tags"][f]["roc_auc"], 3) for f in FAMILIES}}  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="+", help="bundle folders compared with the packaged one")
    ap.add_argument("--data", default=str(ROOT / "data" / "tags"))
    ap.add_argument("--split", default="validation", choices=("validation", "test"))
    ap.add_argument("--out", default=None, help="results name (default: print only)")
    ap.add_argument("--log", default=None, help="a training run's log.jsonl to keep with the results")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from mirsearch.training.tagger import compute_features

    data = Path(args.data)
    records = load_manifest(data)
    Y = label_matrix(records)
    rows = np.flatnonzero(np.array([r["split"] for r in records]) == args.split)
    X = compute_features(data, records)
    out = {}
    for name, bundle in [("packaged", None), *((b, b) for b in args.bundles)]:
        for kind, S in B.packaged_scores(data, records, X, rows, bundle).items():  # with its YAMNet head, if any
            key = name if kind == "tagger (packaged)" else f"{name} ({kind})"
            out[key] = bundle_row(Y[rows], S)
            print(key, json.dumps(out[key]), flush=True)
    if args.out:
        log = [json.loads(line) for line in Path(args.log).read_text().splitlines()] if args.log else None
        print(write_results(args.out, {"split": args.split, "clips": len(rows), "bundles": out, "training_log": log}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
