"""Is a difference between two systems on the same queries measurable? Paired comparisons of per-query scores.

A fast approximate search (a cascade) is judged against the exhaustive one on the same queries, so the
per-query scores are *paired*: :func:`paired_difference` gives the mean difference with a bootstrap
confidence interval over queries, and for 0/1 scores (Top-1) the counts of queries lost and won and the
exact two-sided sign test (McNemar's exact test) on them. "No measurable loss" then means: the interval
contains 0, and the sign test does not reject equality.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import binomtest

from mirsearch.errors import ParameterError


@dataclass
class PairedDifference:
    """Difference ``b - a`` of per-query scores (``b``: the system compared, ``a``: the reference).

    Attributes
    ----------
    mean : float
        Mean difference over queries.
    low, high : float
        Bootstrap percentile interval of the mean difference at ``confidence``.
    confidence : float
    lost, won : int
        Queries where ``b`` scores lower / higher than ``a``.
    p_value : float
        Two-sided exact sign test of ``lost`` vs ``won`` (ties dropped): 1.0 when nothing differs.
    n : int
        Queries compared.
    """

    mean: float
    low: float
    high: float
    confidence: float
    lost: int
    won: int
    p_value: float
    n: int

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def paired_difference(
    a,
    b,
    *,
    confidence: float = 0.95,
    n_boot: int = 10000,
    seed: int = 0,
) -> PairedDifference:
    """Mean paired difference ``b - a`` with a bootstrap interval and an exact sign test.

    Parameters
    ----------
    a, b : array-like, shape (n_queries,)
        Per-query scores of the reference and of the system compared (e.g. 0/1 Top-1 hits or
        reciprocal ranks), in the same query order.
    confidence : float in (0, 1)
        Coverage of the percentile interval.
    n_boot : int >= 100
        Bootstrap resamples of the queries.
    seed : int
        Seed of the resampling (the result is deterministic).

    Returns
    -------
    PairedDifference
        All zeros (and ``p_value`` 1) for empty input.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ParameterError(f"paired scores need two 1-d arrays of one length, got {a.shape} and {b.shape}")
    if not 0 < confidence < 1:
        raise ParameterError(f"confidence={confidence} must be in (0, 1)")
    if n_boot < 100:
        raise ParameterError(f"n_boot={n_boot} must be >= 100")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ParameterError("paired scores must be finite")
    n = len(a)
    if n == 0:
        return PairedDifference(0.0, 0.0, 0.0, confidence, 0, 0, 1.0, 0)
    d = b - a
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    lost, won = int((d < 0).sum()), int((d > 0).sum())
    p = binomtest(lost, lost + won, 0.5).pvalue if lost + won else 1.0
    return PairedDifference(float(d.mean()), float(low), float(high), confidence, lost, won, float(p), n)
