"""Confidence of theme matches: can a search say "nothing good here"?

Every theme of a dataset split is searched in the split's collection twice over: *present* (the full ranking)
and *absent* (the same ranking with every recording that contains the theme removed, as if the work were not in
the archive: no DTW path crosses a recording, so the other recordings' costs are those of a collection without
it). Positives are present themes whose top-1 recording is right; negatives are the top-1 of absent themes.
Reported per feature kind: ROC-AUC of the confidence between them, and at the default threshold the share of
absent themes answered "no confident match" and of the present top-1 hits still shown.

The themes are split by work into a calibration half and an evaluation half (seeded); ``--fit`` fits the
logistic model (:class:`mirsearch.search.confidence.ConfidenceModel`) on the calibration half and prints the
constants for ``MODELS``; the figures are always those of the evaluation half.

    python benchmarks/bench_confidence.py --dataset data/bench --split test \
        --collection data/bench/collections/learned-test.mirs --features chroma,learned [--fit]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from mirsearch.collection import Collection
from mirsearch.datasets.manifest import Dataset
from mirsearch.evaluation.detection import rates_at, roc_auc
from mirsearch.search.confidence import BACKGROUND, DEFAULT_THRESHOLD, MODELS, ConfidenceModel
from mirsearch.search.theme import search_theme

from _common import machine, print_table, write_results


def _examples(coll, view, themes, features: str):
    """Per theme: (work, present top-1 cost, its background, top-1 right?, absent top-1 cost, its background)."""
    vid_of = {str(Path(v.path).resolve()): v.version_id for v in view if Path(v.path).is_file()}
    out = []
    for theme in themes:
        rel = view.relevant_versions(theme.theme_id)
        matches = search_theme(coll, theme.to_theme(), top=BACKGROUND + 2 + len(rel), per_recording=1,
                               features=features)  # fmt: skip
        ranked = [(vid_of.get(str(Path(m.recording).resolve())), m.cost) for m in matches]
        absent = [c for vid, c in ranked if vid not in rel]
        costs = [c for _, c in ranked]
        out.append((theme.work_id, costs[0], costs[1 : BACKGROUND + 1], ranked[0][0] in rel, absent[0],
                    absent[1 : BACKGROUND + 1]))  # fmt: skip
    return out


def _split_by_work(examples, seed: int):
    works = sorted({e[0] for e in examples})
    rng = np.random.default_rng(seed)
    calib = set(rng.permutation(works)[: len(works) // 2].tolist())
    return [e for e in examples if e[0] in calib], [e for e in examples if e[0] not in calib]


def _features(model: ConfidenceModel, examples):
    """Design rows (z, cost) and labels: positives (present and right) and negatives (absent)."""
    rows, labels = [], []
    for _, c, bg, right, ca, bga in examples:
        if right:
            rows.append((model.standout(c, bg), c))
            labels.append(1)
        rows.append((model.standout(ca, bga), ca))
        labels.append(0)
    return np.asarray(rows), np.asarray(labels)


def _fit_logistic(X: np.ndarray, y: np.ndarray, *, l2: float = 1e-3, iters: int = 50) -> np.ndarray:
    """Weights ``[bias, w...]`` of an L2-regularised logistic regression (Newton's method)."""
    A = np.c_[np.ones(len(X)), X]
    w = np.zeros(A.shape[1])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(A @ w, -50, 50)))
        grad = A.T @ (p - y) + l2 * np.r_[0, w[1:]]
        H = (A * (p * (1 - p))[:, None]).T @ A + l2 * np.diag(np.r_[0, np.ones(len(w) - 1)])
        step = np.linalg.solve(H, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w


def _fit(examples, base: ConfidenceModel) -> ConfidenceModel:
    """Background statistics and the logistic weights from calibration examples."""
    bgs = [np.asarray(e[5]) for e in examples if len(e[5]) >= 5]
    if not bgs:
        raise SystemExit("too few recordings for a background (>= 5 other recordings per query): a larger split")
    medians = [float(np.median(b)) for b in bgs]
    scales = [1.4826 * float(np.median(np.abs(b - np.median(b)))) for b in bgs]
    model = dataclasses.replace(base, scale_floor=max(float(np.percentile(scales, 5)), 1e-6),
                                typical_median=float(np.median(medians)),
                                typical_scale=float(np.median(scales)))  # fmt: skip
    X, y = _features(model, examples)
    bias, w_z, w_cost = _fit_logistic(X, y)
    return dataclasses.replace(model, w_z=float(w_z), w_cost=float(w_cost), bias=float(bias))


def _evaluate(model: ConfidenceModel, examples, threshold: float) -> dict:
    pos, neg, present_shown = [], [], []
    for _, c, bg, right, ca, bga in examples:
        p = float(model.probability(model.standout(c, bg), c))
        if right:
            pos.append(p)
        neg.append(float(model.probability(model.standout(ca, bga), ca)))
        present_shown.append(p >= threshold)
    rates = rates_at(threshold, pos, neg)
    return {"themes": len(examples), "present_top1_right": len(pos), "roc_auc": roc_auc(pos, neg),
            "absent_no_confident_match": rates["negatives_rejected"],
            "present_top1_hits_shown": rates["positives_kept"]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--collection", required=True, help="the split's collection (with the features below)")
    ap.add_argument("--features", default="chroma,learned")
    ap.add_argument("--limit", type=int, default=None, help="first N themes only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fit", action="store_true", help="fit the models on the calibration half and print them")
    ap.add_argument("--name", default="confidence")
    args = ap.parse_args()
    view = Dataset.load(args.dataset).split(args.split)
    available = {v.version_id for v in view if Path(v.path).is_file()}
    themes = [t for t in sorted(view.themes.values(), key=lambda t: t.theme_id)
              if view.relevant_versions(t.theme_id) & available][: args.limit]  # fmt: skip
    rows, models = [], {}
    with Collection.open(args.collection, readonly=True) as coll:
        for features in args.features.split(","):
            t0 = time.perf_counter()
            calib, held_out = _split_by_work(_examples(coll, view, themes, features), args.seed)
            model = _fit(calib, MODELS[features]) if args.fit else MODELS[features]
            models[features] = dataclasses.asdict(model)
            row = {"features": features, **_evaluate(model, held_out, DEFAULT_THRESHOLD)}
            row["seconds"] = round(time.perf_counter() - t0, 1)
            rows.append(row)
    print_table(rows, ["features", "themes", "present_top1_right", "roc_auc", "absent_no_confident_match",
                       "present_top1_hits_shown", "seconds"])  # fmt: skip
    if args.fit:
        for features, m in models.items():
            print(f'    "{features}": ConfidenceModel(' + ", ".join(f"{k}={v:.6g}" for k, v in m.items()) + "),")
    write_results(args.name, {"machine": machine(), "args": vars(args), "threshold": DEFAULT_THRESHOLD,
                              "rows": rows, "models": models})  # fmt: skip


if __name__ == "__main__":
    main()
