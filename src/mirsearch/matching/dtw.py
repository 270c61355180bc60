"""Dynamic time warping between two whole sequences, optionally inside a band of allowed cells.

The recursion (query ``X`` on the first axis, ``Y`` on the second)::

    D[0, 0] = C[0, 0]
    D[n, m] = min_k  D[n - a_k, m - b_k] + w_k * C[n, m]    for steps (a_k, b_k) with weights w_k

with the synchronisation steps ``(1, 0), (0, 1), (1, 1)`` and weights ``(1, 1, 1)`` by default (Müller,
*Fundamentals of Music Processing*, Sec. 3.2). The optimal warping path runs from ``(0, 0)`` to
``(N - 1, M - 1)``.

Memory is the point of this module. The kernel keeps the accumulated cost ``D`` only for the last few
rows (a ring buffer) and stores, for every allowed cell, the index of the step taken into it (one byte).
Allowed cells are given row by row as half-open column ranges ``[lo[n], hi[n])`` (a *band*); a full DTW is
the band ``lo = 0, hi = M``. So the memory of a banded DTW is one byte per cell of the band, and a band
of width ``W`` around a path costs ``N * W`` bytes instead of ``8 * N * M``.

Local cost is either a precomputed matrix (small problems, plots) or computed on the fly from features:

    c(n, m) = offset + w_chroma * (1 - <x_n, y_m>) + w_onset * ||u_n - v_m||

where ``x, y`` are unit-length chroma vectors (cosine distance) and ``u, v`` optional onset features
(e.g. DLNCO, Euclidean distance). A positive ``offset`` penalises long paths, i.e. favours the diagonal
step in flat regions (synctoolbox rescales the cosine distance to [1, 2], an offset of 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from mirsearch.errors import ParameterError
from mirsearch.matching.subsequence import check_steps as check_sdtw_steps
from mirsearch.matching.subsequence import unit_columns

#: default step sizes (rows, columns) of synchronisation DTW and their weights
SYNC_STEPS = np.array([[1, 1], [1, 0], [0, 1]], dtype=np.int64)
SYNC_WEIGHTS = np.array([1.0, 1.0, 1.0], dtype=np.float64)


@dataclass
class DTWResult:
    """Output of :func:`dtw` and :func:`dtw_band`.

    Attributes
    ----------
    path : np.ndarray, shape (L, 2), int64
        Warping path ``(n, m)`` from ``(0, 0)`` to ``(N - 1, M - 1)``, start first, both columns
        non-decreasing.
    cost : float
        Accumulated cost ``D[N - 1, M - 1]``.
    n_cells : int
        Number of cells evaluated (the band size; ``N * M`` for a full DTW).
    """

    path: np.ndarray
    cost: float
    n_cells: int

    @property
    def normalized_cost(self) -> float:
        """Accumulated cost divided by the path length (average weighted local cost per path cell)."""
        return self.cost / max(1, len(self.path))


# ---------------------------------------------------------------------------------------------------- kernels


@numba.njit(cache=True, nogil=True, fastmath=True)
def _local_cost(n, m, X, Y, U, V, w_chroma, w_onset, offset, Cd):  # pragma: no cover - numba
    if Cd.shape[0] > 0:
        return Cd[n, m]
    c = offset
    if w_chroma != 0.0:
        dot = 0.0
        for k in range(X.shape[1]):
            dot += X[n, k] * Y[m, k]
        c += w_chroma * (1.0 - dot)
    if w_onset != 0.0:
        s = 0.0
        for k in range(U.shape[1]):
            d = U[n, k] - V[m, k]
            s += d * d
        c += w_onset * np.sqrt(s)
    return c


@numba.njit(cache=True, nogil=True)
def _dtw_band_kernel(lo, hi, off, steps, weights, X, Y, U, V, w_chroma, w_onset, offset, Cd):  # pragma: no cover
    """Banded DTW; returns (step index per band cell (int8), D[N-1, M-1])."""
    N = lo.shape[0]
    n_steps = steps.shape[0]
    R = 1
    width = 1
    for i in range(n_steps):
        R = max(R, steps[i, 0] + 1)
    for n in range(N):
        width = max(width, hi[n] - lo[n])
    D = np.full((R, width), np.inf)
    step_of = np.full(off[N], -1, dtype=np.int8)
    for n in range(N):
        row = n % R
        for j in range(width):
            D[row, j] = np.inf
        for m in range(lo[n], hi[n]):
            c = _local_cost(n, m, X, Y, U, V, w_chroma, w_onset, offset, Cd)
            j = m - lo[n]
            if n == 0 and m == 0:
                D[row, j] = c
                continue
            best = np.inf
            best_k = -1
            for k in range(n_steps):
                pn = n - steps[k, 0]
                pm = m - steps[k, 1]
                if pn < 0 or pm < 0:
                    continue
                if pm < lo[pn] or pm >= hi[pn]:
                    continue
                v = D[pn % R, pm - lo[pn]] + weights[k] * c
                if v < best:
                    best = v
                    best_k = k
            D[row, j] = best
            step_of[off[n] + j] = best_k
    end = D[(N - 1) % R, hi[N - 1] - 1 - lo[N - 1]]
    return step_of, end


@numba.njit(cache=True, nogil=True, fastmath=True)
def _dtw_band_sync_kernel(lo, hi, off, weights, X, Y, U, V, w_chroma, w_onset, offset, Cd):  # pragma: no cover
    """Specialised banded DTW for the steps (1, 1), (1, 0), (0, 1) (the order of SYNC_STEPS).

    Two row buffers instead of a ring; the local cost is computed once per cell. Same results as
    :func:`_dtw_band_kernel` (ties resolved in the same step order).
    """
    N = lo.shape[0]
    width = 1
    for n in range(N):
        width = max(width, hi[n] - lo[n])
    prev = np.full(width, np.inf)
    cur = np.full(width, np.inf)
    step_of = np.full(off[N], -1, dtype=np.int8)
    w_d, w_v, w_h = weights[0], weights[1], weights[2]
    K = X.shape[1]
    L = U.shape[1]
    dense = Cd.shape[0] > 0
    for n in range(N):
        a = lo[n]
        b = hi[n]
        pa = lo[n - 1] if n > 0 else 0
        pb = hi[n - 1] if n > 0 else 0
        for m in range(a, b):
            if dense:
                c = Cd[n, m]
            else:
                c = offset
                if w_chroma != 0.0:
                    dot = 0.0
                    for k in range(K):
                        dot += X[n, k] * Y[m, k]
                    c += w_chroma * (1.0 - dot)
                if w_onset != 0.0:
                    s = 0.0
                    for k in range(L):
                        d = U[n, k] - V[m, k]
                        s += d * d
                    c += w_onset * np.sqrt(s)
            j = m - a
            if n == 0 and m == 0:
                cur[j] = c
                continue
            best = np.inf
            best_k = -1
            if n > 0 and m - 1 >= pa and m - 1 < pb:  # (1, 1)
                best = prev[m - 1 - pa] + w_d * c
                best_k = 0
            if n > 0 and m >= pa and m < pb:  # (1, 0)
                v = prev[m - pa] + w_v * c
                if v < best:
                    best = v
                    best_k = 1
            if m - 1 >= a:  # (0, 1)
                v = cur[j - 1] + w_h * c
                if v < best:
                    best = v
                    best_k = 2
            cur[j] = best
            step_of[off[n] + j] = best_k
        if n < N - 1:
            tmp = prev
            prev = cur
            cur = tmp
    end = cur[hi[N - 1] - 1 - lo[N - 1]]
    return step_of, end


@numba.njit(cache=True)
def _backtrack_band(step_of, lo, off, steps, n_end, m_end):  # pragma: no cover - numba
    out = np.empty((n_end + m_end + 2, 2), dtype=np.int64)
    n = n_end
    m = m_end
    L = 0
    out[L, 0] = n
    out[L, 1] = m
    L += 1
    while n > 0 or m > 0:
        k = step_of[off[n] + m - lo[n]]
        if k < 0:
            return out[:0]
        n -= steps[k, 0]
        m -= steps[k, 1]
        out[L, 0] = n
        out[L, 1] = m
        L += 1
    return out[:L][::-1].copy()


# ---------------------------------------------------------------------------------------------------- helpers


def check_steps(steps, weights) -> tuple[np.ndarray, np.ndarray]:
    """Validate DTW step sizes ``(n_steps, 2)`` and weights ``(n_steps,)``; returns contiguous copies.

    At most 127 steps: the band kernels store the index of the step taken into a cell in one byte.
    """
    return check_sdtw_steps(steps, weights, max_steps=127)


def full_band(n_rows: int, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """The band of a full DTW: ``lo = 0`` and ``hi = n_cols`` for every row."""
    return np.zeros(n_rows, dtype=np.int64), np.full(n_rows, n_cols, dtype=np.int64)


def check_band(lo: np.ndarray, hi: np.ndarray, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate a band (half-open column range per row) that must contain ``(0, 0)`` and the end cell."""
    lo = np.ascontiguousarray(lo, dtype=np.int64)
    hi = np.ascontiguousarray(hi, dtype=np.int64)
    if lo.ndim != 1 or lo.shape != hi.shape or lo.size == 0:
        raise ParameterError(f"band lo {lo.shape} and hi {hi.shape} must be equal-length 1-D arrays")
    if np.any(lo < 0) or np.any(hi > n_cols) or np.any(hi <= lo):
        raise ParameterError(f"band rows must satisfy 0 <= lo < hi <= {n_cols}")
    if lo[0] != 0 or hi[-1] != n_cols:
        raise ParameterError("band must contain the start cell (0, 0) and the end cell (N-1, M-1)")
    return lo, hi


def _prepare_features(X, Y, U, V):
    Xu = unit_columns(X, name="X").astype(np.float64)
    Yu = unit_columns(Y, name="Y").astype(np.float64)
    if Xu.shape[1] != Yu.shape[1]:
        raise ParameterError(f"X has {Xu.shape[1]} features per frame, Y has {Yu.shape[1]}")
    if (U is None) != (V is None):
        raise ParameterError("onset features must be given for both sequences or for neither")
    if U is None:
        Uf = np.zeros((Xu.shape[0], 0))
        Vf = np.zeros((Yu.shape[0], 0))
    else:
        Uf = np.ascontiguousarray(np.asarray(U, dtype=np.float64).T)
        Vf = np.ascontiguousarray(np.asarray(V, dtype=np.float64).T)
        if Uf.shape[0] != Xu.shape[0] or Vf.shape[0] != Yu.shape[0]:
            raise ParameterError(
                f"onset features have {Uf.shape[0]} / {Vf.shape[0]} frames, chroma {Xu.shape[0]} / {Yu.shape[0]}"
            )
        if Uf.shape[1] != Vf.shape[1]:
            raise ParameterError(f"onset features have {Uf.shape[1]} and {Vf.shape[1]} dimensions")
        if not (np.all(np.isfinite(Uf)) and np.all(np.isfinite(Vf))):
            raise ParameterError("onset features contain NaN or infinite values")
    return Xu, Yu, Uf, Vf


# ---------------------------------------------------------------------------------------------------- public API


def dtw_band(
    X: np.ndarray | None = None,
    Y: np.ndarray | None = None,
    *,
    C: np.ndarray | None = None,
    lo: np.ndarray | None = None,
    hi: np.ndarray | None = None,
    U: np.ndarray | None = None,
    V: np.ndarray | None = None,
    steps: np.ndarray = SYNC_STEPS,
    weights: np.ndarray = SYNC_WEIGHTS,
    w_chroma: float = 1.0,
    w_onset: float = 0.0,
    offset: float = 0.0,
) -> DTWResult:
    """DTW restricted to a band of cells, cost from features (on the fly) or from a matrix.

    Parameters
    ----------
    X, Y : np.ndarray, shape (K, N) and (K, M)
        Feature sequences compared with the cosine distance (frames are l2-normalised here). Give either
        ``X, Y`` or ``C``.
    C : np.ndarray, shape (N, M), optional
        Precomputed local cost matrix (non-negative, finite where the band lies).
    lo, hi : np.ndarray, shape (N,), int, optional
        Allowed columns of row ``n`` are ``lo[n] <= m < hi[n]``; default: all columns (full DTW). The band
        must contain ``(0, 0)`` and ``(N - 1, M - 1)``.
    U, V : np.ndarray, shape (L, N) and (L, M), optional
        Onset features compared with the Euclidean distance (with ``X, Y`` only).
    steps : np.ndarray, shape (n_steps, 2)
        Step sizes (rows, columns); default ``(1, 1), (1, 0), (0, 1)``.
    weights : np.ndarray, shape (n_steps,)
        Multiplicative weights of the local cost per step; default ``(1, 1, 1)``.
    w_chroma, w_onset, offset : float
        Local cost ``offset + w_chroma * cosine + w_onset * euclidean`` (ignored with ``C``).

    Returns
    -------
    DTWResult
        Path (start first), accumulated cost, number of evaluated cells.

    Raises
    ------
    ParameterError
        Bad shapes or steps, or no path through the band.
    """
    steps, weights = check_steps(steps, weights)
    if C is not None:
        if X is not None or Y is not None:
            raise ParameterError("give either X and Y or C, not both")
        Cd = np.ascontiguousarray(C, dtype=np.float64)
        if Cd.ndim != 2 or Cd.size == 0:
            raise ParameterError(f"C must be a non-empty 2-D matrix, got shape {Cd.shape}")
        if np.any(np.isnan(Cd)):
            raise ParameterError("C contains NaN values")
        N, M = Cd.shape
        Xu = Yu = np.zeros((0, 0))
        Uf = Vf = np.zeros((0, 0))
    else:
        if X is None or Y is None:
            raise ParameterError("give X and Y (features) or C (cost matrix)")
        Xu, Yu, Uf, Vf = _prepare_features(X, Y, U, V)
        N, M = Xu.shape[0], Yu.shape[0]
        if N == 0 or M == 0:
            raise ParameterError(f"X ({N} frames) and Y ({M} frames) must not be empty")
        Cd = np.zeros((0, 0))
        if U is None:
            w_onset = 0.0
    if lo is None and hi is None:
        lo, hi = full_band(N, M)
    elif lo is None or hi is None:
        raise ParameterError("give both lo and hi, or neither")
    lo, hi = check_band(lo, hi, M)
    if lo.size != N:
        raise ParameterError(f"band has {lo.size} rows, the sequences {N}")
    off = np.zeros(N + 1, dtype=np.int64)
    np.cumsum(hi - lo, out=off[1:])
    args = (Xu, Yu, Uf, Vf, float(w_chroma), float(w_onset), float(offset), Cd)
    if steps.shape == SYNC_STEPS.shape and np.array_equal(steps, SYNC_STEPS):
        step_of, end = _dtw_band_sync_kernel(lo, hi, off, weights, *args)
    else:
        step_of, end = _dtw_band_kernel(lo, hi, off, steps, weights, *args)
    if not np.isfinite(end):
        raise ParameterError("no warping path fits the steps inside the band")
    path = _backtrack_band(step_of, lo, off, steps, N - 1, M - 1)
    if path.shape[0] == 0 or path[0, 0] != 0 or path[0, 1] != 0:
        raise ParameterError("no warping path fits the steps inside the band")
    return DTWResult(path=path, cost=float(end), n_cells=int(off[-1]))


def dtw(
    X: np.ndarray | None = None,
    Y: np.ndarray | None = None,
    *,
    C: np.ndarray | None = None,
    steps: np.ndarray = SYNC_STEPS,
    weights: np.ndarray = SYNC_WEIGHTS,
    offset: float = 0.0,
) -> DTWResult:
    """Full DTW between two feature sequences (cosine cost) or for a given cost matrix.

    Memory is one byte per cell (``N * M`` bytes) plus a few rows; for long sequences use
    :func:`mirsearch.matching.sync.sync_dtw`, which never builds the full matrix.

    Parameters
    ----------
    X, Y : np.ndarray, shape (K, N) and (K, M)
        Feature sequences; local cost ``offset + 1 - cos(x_n, y_m)``.
    C : np.ndarray, shape (N, M), optional
        Precomputed local cost instead of ``X, Y``.
    steps, weights : np.ndarray
        Step sizes ``(n_steps, 2)`` and weights ``(n_steps,)``; default steps ``(1, 1), (1, 0), (0, 1)``
        with weights ``(1, 1, 1)``. librosa's default corresponds to ``weights=(1, 1, 1)`` with these steps.
    offset : float
        Constant added to each local cost (features only).

    Returns
    -------
    DTWResult
    """
    return dtw_band(X, Y, C=C, steps=steps, weights=weights, offset=offset)


def path_cost(path: np.ndarray, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Cosine distance of the frames a path pairs, shape (L,), float64.

    Parameters
    ----------
    path : np.ndarray, shape (L, 2)
        Index pairs ``(n, m)``.
    X, Y : np.ndarray, shape (K, N) and (K, M)
        Features (normalised here).
    """
    Xu = unit_columns(X, name="X").astype(np.float64)
    Yu = unit_columns(Y, name="Y").astype(np.float64)
    return 1.0 - np.einsum("ij,ij->i", Xu[path[:, 0]], Yu[path[:, 1]])
