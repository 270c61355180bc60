"""Retrieval metrics over ranked lists (mir_eval style: ``validate``, one function per metric, ``evaluate``).

Every query has a *ranking* (item ids, best first, no duplicates) and a set of *relevant* ids. A query
without relevant items counts as a failure (0 in every metric) and triggers a warning; with no queries
at all every metric is 0.0 (and a warning is issued), so that results are always defined.

Metrics
-------
- ``top_k``: fraction of queries with a relevant item among the first ``k`` (Top-1, Top-5, Top-10);
- ``mean_reciprocal_rank``: mean of ``1 / rank`` of the first relevant item (0 if none is ranked);
  per query from a known rank: ``reciprocal_rank``, ``hit_at_k``;
- ``precision_at_k``: mean fraction of relevant items among the first ``k`` (``k`` in the denominator);
- ``mean_average_precision``: mean over queries of the average of the precisions at the ranks of the
  relevant items, divided by the number of relevant items (those not ranked contribute 0).
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Sequence

import numpy as np

from mirsearch.errors import ParameterError


def validate(rankings: Sequence[Sequence], relevant: Sequence[Collection]) -> None:
    """Check the inputs of every metric.

    Parameters
    ----------
    rankings : sequence of sequences
        Per query, the retrieved item ids, best first.
    relevant : sequence of collections
        Per query, the ids of the relevant items.

    Raises
    ------
    ParameterError
        Different numbers of queries, or a ranking with a repeated item.
    """
    if len(rankings) != len(relevant):
        raise ParameterError(f"rankings ({len(rankings)} queries) and relevant ({len(relevant)}) differ in length")
    if len(rankings) == 0:
        warnings.warn("no queries: every metric is 0", stacklevel=3)
    for i, ranking in enumerate(rankings):
        if len(set(ranking)) != len(ranking):
            raise ParameterError(f"ranking of query {i} contains an item twice")
    empty = sum(1 for rel in relevant if len(rel) == 0)
    if empty:
        warnings.warn(f"{empty} queries without relevant items count as failures", stacklevel=3)


def _first_ranks(rankings: Sequence[Sequence], relevant: Sequence[Collection]) -> np.ndarray:
    """1-based rank of the first relevant item per query (``inf`` if none is ranked)."""
    out = np.full(len(rankings), np.inf)
    for i, (ranking, rel) in enumerate(zip(rankings, relevant, strict=True)):
        rel = set(rel)
        for r, item in enumerate(ranking, start=1):
            if item in rel:
                out[i] = r
                break
    return out


def _check_k(k: int) -> None:
    if int(k) != k or k < 1:
        raise ParameterError(f"k={k} must be an integer >= 1")


def top_k(rankings: Sequence[Sequence], relevant: Sequence[Collection], *, k: int = 1) -> float:
    """Fraction of queries with a relevant item among the first ``k`` results."""
    validate(rankings, relevant)
    _check_k(k)
    if len(rankings) == 0:
        return 0.0
    return float(np.mean(_first_ranks(rankings, relevant) <= k))


def reciprocal_ranks(rankings: Sequence[Sequence], relevant: Sequence[Collection]) -> np.ndarray:
    """``1 / rank`` of the first relevant item per query, shape (n_queries,) (0 if none is ranked)."""
    validate(rankings, relevant)
    return 1.0 / _first_ranks(rankings, relevant)


def reciprocal_rank(rank: int | None) -> float:
    """``1 / rank`` of one query from the 1-based rank of its first relevant item; 0.0 when none was
    ranked (``rank`` None or 0). :func:`reciprocal_ranks` computes the same from rankings."""
    if rank is not None and (int(rank) != rank or rank < 0):
        raise ParameterError(f"rank={rank!r} must be an integer >= 1, 0 or None")
    return 1.0 / rank if rank else 0.0


def hit_at_k(rank: int | None, *, k: int = 1) -> bool:
    """Whether one query's first relevant item (1-based ``rank``; None or 0: not ranked) is among the
    first ``k``: the per-query term of :func:`top_k`."""
    _check_k(k)
    return bool(rank) and rank <= k


def mean_reciprocal_rank(rankings: Sequence[Sequence], relevant: Sequence[Collection]) -> float:
    """Mean reciprocal rank of the first relevant item (MRR)."""
    rr = reciprocal_ranks(rankings, relevant)
    return float(rr.mean()) if len(rr) else 0.0


def precision_at_k(rankings: Sequence[Sequence], relevant: Sequence[Collection], *, k: int = 10) -> float:
    """Mean over queries of (relevant items among the first ``k``) / ``k``."""
    validate(rankings, relevant)
    _check_k(k)
    if len(rankings) == 0:
        return 0.0
    vals = [
        sum(1 for item in ranking[:k] if item in set(rel)) / k for ranking, rel in zip(rankings, relevant, strict=True)
    ]
    return float(np.mean(vals))


def average_precision(ranking: Sequence, relevant: Collection) -> float:
    """Average precision of one ranking (0 without relevant items)."""
    rel = set(relevant)
    if not rel:
        return 0.0
    hits = 0
    total = 0.0
    for r, item in enumerate(ranking, start=1):
        if item in rel:
            hits += 1
            total += hits / r
    return total / len(rel)


def mean_average_precision(rankings: Sequence[Sequence], relevant: Sequence[Collection]) -> float:
    """Mean average precision (MAP) over queries."""
    validate(rankings, relevant)
    if len(rankings) == 0:
        return 0.0
    return float(np.mean([average_precision(r, rel) for r, rel in zip(rankings, relevant, strict=True)]))


def evaluate(
    rankings: Sequence[Sequence], relevant: Sequence[Collection], *, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """All metrics at once.

    Returns
    -------
    dict
        ``{"queries", "top1", "top5", "top10", "mrr", "p@1", "p@5", "p@10", "map"}`` (keys follow ``ks``).
    """
    validate(rankings, relevant)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out: dict[str, float] = {"queries": len(rankings)}
        for k in ks:
            out[f"top{k}"] = top_k(rankings, relevant, k=k)
        out["mrr"] = mean_reciprocal_rank(rankings, relevant)
        for k in ks:
            out[f"p@{k}"] = precision_at_k(rankings, relevant, k=k)
        out["map"] = mean_average_precision(rankings, relevant)
    return out
