"""Ranking metrics at a cut-off for search by similarity, per query, from a distance matrix or a relevance table.

Every query has a ranked list (nearest first, the query itself left out) and ``R`` relevant items in the
collection searched. With ``rel_i`` 1 when the item at rank ``i`` is relevant:

- ``AP@k = sum_{i <= k} P@i * rel_i / min(R, k)`` (average precision at ``k``; MAP@k is its mean over queries);
- ``Recall@k = sum_{i <= k} rel_i / R``;
- ``RR@k = 1 / (rank of the first relevant item)`` when that rank is ``<= k``, else 0;
- ``nDCG@k = DCG@k / IDCG@k`` with ``DCG@k = sum_{i <= k} rel_i / log2(i + 1)`` and the ideal ``IDCG@k`` (the
  ``min(R, k)`` first ranks relevant).

A query without relevant items scores 0 everywhere. :func:`bootstrap_mean` gives a percentile interval of a
mean over queries.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mirsearch.errors import ParameterError

__all__ = [
    "RANKING_METRICS",
    "ranked_relevance",
    "per_query_scores",
    "bootstrap_mean",
    "MeanInterval",
    "summarize",
]

#: metric names of :func:`per_query_scores`, each followed by ``@k``
RANKING_METRICS = ("map", "recall", "rr", "ndcg")


def _check_k(k: int) -> int:
    if not isinstance(k, int | np.integer) or k < 1:
        raise ParameterError(f"k={k!r} must be an integer >= 1")
    return int(k)


def ranked_relevance(
    distances: np.ndarray, labels: np.ndarray, *, query_rows: np.ndarray | None = None, exclude=None, k: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """Relevance of the ``k`` nearest items of each query, from a distance matrix over one collection.

    Parameters
    ----------
    distances : np.ndarray, shape (n_queries, n_items)
        Distance of each query to every item (smaller is nearer); ties are broken by item order.
    labels : np.ndarray, shape (n_items,)
        Class of each item; an item is relevant to a query of the same class.
    query_rows : np.ndarray of int, shape (n_queries,), optional
        Item index of each query (default ``arange(n_queries)``); that item is left out of its ranking.
    exclude : np.ndarray of bool, shape (n_queries, n_items), optional
        Further items to leave out per query (e.g. other clips of the query's own track); they count neither in
        the ranking nor in ``R``.
    k : int >= 1

    Returns
    -------
    rel : np.ndarray of bool, shape (n_queries, k)
        Relevance of ranks 1..k (False past the end of a short collection).
    n_relevant : np.ndarray of int, shape (n_queries,)
    """
    k = _check_k(k)
    D = np.array(distances, dtype=np.float64)
    labels = np.asarray(labels)
    if D.ndim != 2 or D.shape[1] != len(labels):
        raise ParameterError(f"distances {D.shape} do not match {len(labels)} labels")
    rows = np.arange(len(D)) if query_rows is None else np.asarray(query_rows, dtype=np.int64)
    if rows.shape != (len(D),):
        raise ParameterError(f"query_rows must have shape ({len(D)},), got {rows.shape}")
    left_out = np.zeros(D.shape, bool) if exclude is None else np.array(exclude, dtype=bool)
    if left_out.shape != D.shape:
        raise ParameterError(f"exclude must have shape {D.shape}, got {left_out.shape}")
    left_out[np.arange(len(D)), rows] = True
    D[left_out] = np.inf
    same = labels[None, :] == labels[rows][:, None]
    n_relevant = (same & ~left_out).sum(axis=1)
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    rel = np.take_along_axis(same, order, axis=1) & np.isfinite(np.take_along_axis(D, order, axis=1))
    if rel.shape[1] < k:
        rel = np.pad(rel, ((0, 0), (0, k - rel.shape[1])))
    return rel, n_relevant


def per_query_scores(rel: np.ndarray, n_relevant: np.ndarray, *, k: int) -> dict[str, np.ndarray]:
    """AP@k, Recall@k, RR@k and nDCG@k of each query (module docstring).

    Parameters
    ----------
    rel : array-like of bool, shape (n_queries, >= k)
        Relevance of the ranked items, nearest first.
    n_relevant : array-like of int, shape (n_queries,)
        Relevant items in the collection searched (``R``).
    k : int >= 1

    Returns
    -------
    dict ``{"map@k", "recall@k", "rr@k", "ndcg@k"}`` -> np.ndarray, shape (n_queries,), float64
    """
    k = _check_k(k)
    rel = np.asarray(rel, dtype=bool)
    R = np.asarray(n_relevant, dtype=np.float64)
    if rel.ndim != 2 or rel.shape[1] < k or R.shape != (rel.shape[0],):
        raise ParameterError(f"rel {rel.shape} needs >= {k} columns and one row per n_relevant {R.shape}")
    if np.any(rel[:, :k].sum(axis=1) > R):
        raise ParameterError("a query has more relevant items ranked than n_relevant")
    r = rel[:, :k].astype(np.float64)
    ranks = np.arange(1, k + 1, dtype=np.float64)
    hits = np.cumsum(r, axis=1)
    has = R > 0
    cut = np.maximum(np.minimum(R, k), 1.0)
    ap = np.where(has, (hits / ranks * r).sum(axis=1) / cut, 0.0)
    recall = np.where(has, hits[:, -1] / np.maximum(R, 1.0), 0.0)
    first = np.argmax(r, axis=1)
    rr = np.where(r.any(axis=1), 1.0 / (first + 1.0), 0.0)
    gains = 1.0 / np.log2(ranks + 1.0)
    ideal = np.cumsum(gains)[np.minimum(R, k).astype(int) - 1]
    ndcg = np.where(has, (r * gains).sum(axis=1) / np.where(has, ideal, 1.0), 0.0)
    return {f"map@{k}": ap, f"recall@{k}": recall, f"rr@{k}": rr, f"ndcg@{k}": ndcg}


class MeanInterval(NamedTuple):
    """A mean over queries with its bootstrap percentile interval."""

    mean: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self._asdict().items()}


def bootstrap_mean(values, *, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> MeanInterval:
    """Mean of per-query values with a bootstrap percentile interval (queries resampled with replacement).

    Parameters
    ----------
    values : array-like, shape (n_queries,)
    confidence : float in (0, 1)
    n_boot : int >= 100
    seed : int
        The result is deterministic for a seed.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or not np.all(np.isfinite(v)):
        raise ParameterError(f"values must be a finite 1-d array, got shape {v.shape}")
    if not 0 < confidence < 1 or n_boot < 100:
        raise ParameterError(f"confidence={confidence} must be in (0, 1) and n_boot={n_boot} >= 100")
    if len(v) == 0:
        return MeanInterval(0.0, 0.0, 0.0, 0)
    means = v[np.random.default_rng(seed).integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return MeanInterval(float(v.mean()), float(low), float(high), len(v))


def summarize(scores: dict[str, np.ndarray], **options) -> dict[str, dict]:
    """:func:`bootstrap_mean` of every per-query metric: ``{name: {"mean", "low", "high", "n"}}``."""
    return {name: bootstrap_mean(v, **options).to_dict() for name, v in scores.items()}
