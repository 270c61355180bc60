"""k-reciprocal re-ranking of a search by similarity (Zhong et al., CVPR 2017): the query's nearest recordings
re-ranked by how much their neighbourhoods overlap the query's. Off in the ``similar`` tasks
(:data:`mirsearch.describe.similarity.RECIPROCAL`): chosen on the train half of the soundtrack tracks it lost on
the test half (docs/benchmarks.md, session 11)."""

from __future__ import annotations

import numpy as np

from mirsearch.errors import ParameterError

#: k-reciprocal re-ranking (:func:`reciprocal_distances`): neighbourhood size, local expansion, weight of the
#: original distance
K1, K2, LAMBDA = 12, 3, 0.3
#: the nearest recordings :func:`reciprocal_search` re-ranks (neighbourhoods are computed within them)
POOL = 100


def reciprocal_distances(D: np.ndarray, *, k1: int = K1, k2: int = K2, lam: float = LAMBDA) -> np.ndarray:
    """Distances of item 0 to every item after k-reciprocal re-ranking (Zhong et al., CVPR 2017) of a pool.

    Each item's k-reciprocal set (the items among its ``k1 + 1`` nearest that have it among theirs), widened by
    the ``round(k1 / 2)``-reciprocal sets of its members that share more than 2/3 of their items with it, is a
    vector of weights ``exp(-10 d / d_max)``, normalised and averaged over the item's ``k2`` nearest (local
    expansion). The new distance is ``(1 - lam) * Jaccard + lam * d / d_max``: items whose neighbourhoods
    overlap item 0's come first, ties broken by the original distance.

    Parameters
    ----------
    D : np.ndarray, shape (n, n)
        Distances among the pool (item 0 the query), ``>= 0``, 0 on the diagonal.
    k1, k2 : int >= 1
    lam : float in [0, 1]

    Returns
    -------
    d : np.ndarray, shape (n,), float64
    """
    D = np.asarray(D, np.float64)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ParameterError(f"pool distances of shape {D.shape} must be square")
    if k1 < 1 or k2 < 1 or not 0.0 <= lam <= 1.0:
        raise ParameterError(f"k1={k1}, k2={k2} must be >= 1 and lam={lam} in [0, 1]")
    n = len(D)
    Dn = D / max(float(D.max()), 1e-12)
    order = np.argsort(D, axis=1, kind="stable")

    def reciprocal(k: int) -> np.ndarray:
        near = np.zeros((n, n), bool)
        np.put_along_axis(near, order[:, : k + 1], True, axis=1)
        return near & near.T

    R, half = reciprocal(k1), reciprocal(int(round(k1 / 2)))
    shared = half.astype(np.int64) @ R.T.astype(np.int64)  # [j, i]: items of j's half set in i's set
    widen = shared > 2.0 / 3.0 * half.sum(axis=1)[:, None]
    R = R | ((R & widen.T).astype(np.int64) @ half.astype(np.int64) > 0) | np.eye(n, dtype=bool)
    V = np.where(R, np.exp(-10.0 * Dn), 0.0)
    V /= V.sum(axis=1, keepdims=True)
    if k2 > 1:
        V = V[order[:, :k2]].mean(axis=1)
    jaccard = 1.0 - np.minimum(V[0], V).sum(axis=1) / np.maximum(np.maximum(V[0], V).sum(axis=1), 1e-12)
    return (1.0 - lam) * jaccard + lam * Dn[0]


def reciprocal_search(index, vector: np.ndarray, *, top: int, exclude: int | None = None,
                      pool: int = POOL) -> list[tuple[int, float]]:  # fmt: skip
    """The ``top`` nearest recordings ``(recording_id, distance)`` to a standardised ``vector`` after
    :func:`reciprocal_distances` over the query and its ``max(pool, top)`` nearest recordings (``exclude`` left
    out); ``index`` as for :func:`expanded_search`. The distances are the re-ranked ones."""
    if top < 1:
        raise ParameterError(f"top={top} must be >= 1")
    from scipy.spatial.distance import cdist

    found = index.search(np.asarray(vector, np.float32), top=max(pool, top), exclude=exclude)
    if len(found) < 2:
        return found[:top]
    ids = [r for r, _ in found]
    P = np.vstack([np.asarray(vector, np.float32)[None, :]] + [index.vector(r)[None, :] for r in ids])
    d = reciprocal_distances(cdist(P, P, "cityblock") / P.shape[1])[1:]
    order = np.argsort(d, kind="stable")[:top]
    return [(ids[j], float(d[j])) for j in order]
