"""Multi-label tagging metrics: ROC-AUC and PR-AUC (average precision) per tag, and their macro means."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mirsearch.errors import ParameterError
from mirsearch.evaluation.detection import roc_auc
from mirsearch.evaluation.metrics import average_precision


def tag_metrics(Y: np.ndarray, S: np.ndarray, names: Sequence[str]) -> dict:
    """Per-tag ROC-AUC and PR-AUC of scores ``S`` against 0/1 labels ``Y``, both ``(n_items, n_tags)``.

    A tag without positives or without negatives gets ``None`` (it does not enter the macro means).

    Returns
    -------
    dict
        ``{"tags": {name: {"roc_auc", "pr_auc", "positives", "prevalence"}}, "macro_roc_auc", "macro_pr_auc",
        "n_items", "n_tags_scored"}``.
    """
    Y = np.asarray(Y)
    S = np.asarray(S, dtype=np.float64)
    if Y.shape != S.shape or Y.ndim != 2 or Y.shape[1] != len(names):
        raise ParameterError(f"tag_metrics: Y {Y.shape}, S {S.shape} and {len(names)} names do not agree")
    per = {}
    for k, name in enumerate(names):
        pos = Y[:, k] > 0.5
        row = {"positives": int(pos.sum()), "prevalence": round(float(pos.mean()), 4) if len(pos) else 0.0}
        if 0 < pos.sum() < len(pos):
            ranking = np.argsort(-S[:, k], kind="stable")
            row["roc_auc"] = roc_auc(S[pos, k], S[~pos, k])
            row["pr_auc"] = average_precision(ranking.tolist(), set(np.flatnonzero(pos).tolist()))
        else:
            row["roc_auc"] = row["pr_auc"] = None
        per[name] = row
    scored = [r for r in per.values() if r["roc_auc"] is not None]
    return {
        "tags": per,
        "macro_roc_auc": float(np.mean([r["roc_auc"] for r in scored])) if scored else None,
        "macro_pr_auc": float(np.mean([r["pr_auc"] for r in scored])) if scored else None,
        "n_items": int(Y.shape[0]),
        "n_tags_scored": len(scored),
    }


def macro_over(metrics: dict, names: Sequence[str], key: str = "roc_auc") -> float | None:
    """Mean of ``key`` over the tags ``names`` of a :func:`tag_metrics` result (tags without a value skipped)."""
    vals = [metrics["tags"][n][key] for n in names if n in metrics["tags"] and metrics["tags"][n][key] is not None]
    return float(np.mean(vals)) if vals else None
