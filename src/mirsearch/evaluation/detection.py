"""Detection metrics: how well a score separates true matches from false ones (ROC-AUC, rates at a threshold)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata

from mirsearch.errors import ParameterError


def roc_auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Area under the ROC curve: the probability that a positive scores above a negative (ties count half).

    Computed from ranks (the Mann-Whitney U statistic), exact for any number of ties.

    Parameters
    ----------
    positives, negatives : sequence of float
        Scores of the true and of the false cases; each non-empty and finite.
    """
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.asarray(negatives, dtype=np.float64)
    if pos.size == 0 or neg.size == 0:
        raise ParameterError(f"roc_auc needs positives and negatives (got {pos.size} and {neg.size})")
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise ParameterError("roc_auc: scores must be finite")
    ranks = rankdata(np.concatenate([pos, neg]))
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def rates_at(threshold: float, positives: Sequence[float], negatives: Sequence[float]) -> dict:
    """Share of positives kept (``>= threshold``) and of negatives rejected (``< threshold``)."""
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.asarray(negatives, dtype=np.float64)
    return {
        "threshold": float(threshold),
        "positives_kept": float(np.mean(pos >= threshold)) if pos.size else float("nan"),
        "negatives_rejected": float(np.mean(neg < threshold)) if neg.size else float("nan"),
    }
