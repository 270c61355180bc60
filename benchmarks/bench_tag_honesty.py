"""Label honesty of the instrument families: how loud is a labelled family inside its clip, and what the packaged
tagger's ten-family ROC-AUC is when the quiet positives are left out of each family's ranking (a diagnostic: the
labels are not changed).

    nice -n 10 .venv/bin/python benchmarks/bench_tag_honesty.py --split test   # -> results/tag_honesty_test.json

Every clip of the split is re-created from its seeds (:func:`mirsearch.datasets.tags.clip_jobs`) and each of its
families rendered alone, dry, with the clip's SoundFont (:func:`~mirsearch.datasets.tags.family_shares`: energy
in the 10 s window relative to the sum, dB). Shares are cached in ``<data>/features/family-shares-<split>.json``
(resumable; about 1 s of CPU a clip).
"""

from __future__ import annotations

import argparse
import json
import logging
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
from mirsearch._util import atomic_write_text  # noqa: E402
from mirsearch.datasets.tags import clip_jobs, family_shares, label_matrix, load_manifest  # noqa: E402
from mirsearch.describe.tag_vocabulary import FAMILIES, TAG_NAMES  # noqa: E402
from mirsearch.evaluation.tagging import tag_metrics  # noqa: E402

from _common import write_results  # noqa: E402

THRESHOLDS_DB = (-25.0, -20.0, -15.0, -10.0)


def shares_of(data: Path, records: list[dict]) -> dict[str, dict[str, float]]:
    """``{clip: {family: share dB}}`` of the records (cached, resumable)."""
    path = data / "features" / f"family-shares-{records[0]['split']}.json"
    done = json.loads(path.read_text()) if path.is_file() else {}
    wanted = {r["clip"] for r in records} - set(done)
    if wanted:
        _, plan = clip_jobs(data, seed=0)
        for n, job in enumerate(j for j in plan if j.clip_id in wanted):
            done[job.clip_id] = {f: round(s, 2) if np.isfinite(s) else -200.0 for f, s in family_shares(job).items()}
            if n % 20 == 19:
                atomic_write_text(path, json.dumps(done))
        atomic_write_text(path, json.dumps(done))
    return done


def left_out_auc(Y: np.ndarray, S: np.ndarray, share: np.ndarray, mask: np.ndarray, thr: float | None) -> dict:
    """Per-family ROC-AUC over the clips ``mask`` with the positives quieter than ``thr`` dB left out, and the macro."""
    per = {}
    for k, f in enumerate(FAMILIES):
        ok = mask & ~((Y[:, k] > 0) & (share[:, k] < thr)) if thr is not None else mask
        if 0 < Y[ok, k].sum() < ok.sum():
            per[f] = round(tag_metrics(Y[ok][:, [k]], S[ok][:, [k]], [f])["tags"][f]["roc_auc"], 3)
    return {"macro": round(float(np.mean(list(per.values()))), 3), "per_family": per}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "data" / "tags"))
    ap.add_argument("--split", default="test", choices=("validation", "test"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(1)
    from mirsearch.training.tagger import compute_features

    data = Path(args.data)
    records = load_manifest(data)
    rows = np.flatnonzero(np.array([r["split"] for r in records]) == args.split)
    H = shares_of(data, [records[i] for i in rows])
    cols = [TAG_NAMES.index(f) for f in FAMILIES]
    Y = label_matrix(records)[rows][:, cols]
    share = np.array([[H[records[i]["clip"]].get(f, -200.0) for f in FAMILIES] for i in rows])
    out = {"split": args.split, "clips": len(rows), "positives": int(Y.sum()), "quiet_positives": {},
           "positives_without_energy": int(((Y > 0) & (share <= -100)).sum()),
           "families_with_energy_but_no_label": int(((Y == 0) & (share > -100)).sum())}  # fmt: skip
    for thr in THRESHOLDS_DB:
        q = (Y > 0) & (share < thr)
        out["quiet_positives"][f"below {thr:g} dB"] = {"all": int(q.sum()), **{f: int(q[:, k].sum())
                                                       for k, f in enumerate(FAMILIES)}}  # fmt: skip
    n = Y.sum(axis=1)
    groups = {"all": n >= 1, "1 family": n == 1, "2-3 families": (n >= 2) & (n <= 3), "4+ families": n >= 4}
    X = compute_features(data, records)
    for kind, S in B.packaged_scores(data, records, X, rows, None).items():
        out[kind] = {
            ("all positives" if thr is None else f"positives >= {thr:g} dB"): {
                g: left_out_auc(Y, S[:, cols], share, m, thr) for g, m in groups.items()
            }
            for thr in (None, *THRESHOLDS_DB)
        }
        print(kind, json.dumps({k: {g: v["macro"] for g, v in d.items()} for k, d in out[kind].items()}), flush=True)
    print(json.dumps(out["quiet_positives"]))
    print(write_results(f"tag_honesty_{args.split}", out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
