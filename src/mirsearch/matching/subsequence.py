"""Subsequence dynamic time warping: where in a long sequence does a short query occur?

The recursion (librosa's convention, query on the first axis)::

    D[0, m] = C[0, m]                                   (a match may start anywhere)
    D[n, m] = min_k  D[n - a_k, m - b_k] + w_k * C[n, m]   for steps (a_k, b_k) with weights w_k

with the default steps ``(2, 1), (1, 2), (1, 1)`` and weights ``(2, 1, 1)``: the local tempo of a match
may lie between half and twice that of the query, and every query frame is counted once (the (2, 1)
step skips a query frame and is weighted double), so the total weight of any path is ``N`` and
``D[N-1, m] / N`` is the average local cost along the best path ending at frame ``m``: the *matching
function*.

The kernels keep only the last few columns of ``D`` (memory ``O(N)`` per query, never ``N x M``) and
carry the start frame of each partial path along, so start frames come without backtracking. Cost is
the cosine distance ``1 - <q, y> / (|q| |y|)``, computed on the fly. :func:`subsequence_dtw_shifts`
runs all cyclic chroma shifts of the query in parallel threads (numba ``prange``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from mirsearch.errors import ParameterError

#: default step sizes (query frames, database frames) and multiplicative weights
STEPS = np.array([[2, 1], [1, 2], [1, 1]], dtype=np.int64)
WEIGHTS = np.array([2.0, 1.0, 1.0], dtype=np.float64)


@dataclass
class SubsequenceDTWResult:
    """Output of :func:`subsequence_dtw`.

    Attributes
    ----------
    matching_function : np.ndarray, shape (M,), float64
        Normalised cost of the best path ending at each database frame (``inf`` where none can end).
    start_frames : np.ndarray, shape (M,), int64
        Database frame where that best path starts.
    accumulated : np.ndarray, shape (M,), float64
        Unnormalised accumulated cost ``D[N-1, m]`` (librosa's ``D[-1, :]``).
    path : np.ndarray, shape (L, 2), int64, optional
        Warping path (query frame, database frame) of the best match, end first as in librosa;
        only with ``return_path=True``.
    """

    matching_function: np.ndarray
    start_frames: np.ndarray
    accumulated: np.ndarray
    path: np.ndarray | None = None


@numba.njit(cache=True, nogil=True)
def _sdtw_one(Q, Y, steps, weights, reset, out_acc, out_start, out_weight):  # pragma: no cover - numba
    """Column-wise subsequence DTW with a ring buffer of columns; cosine cost on unit vectors."""
    N, K = Q.shape
    M = Y.shape[0]
    n_steps = steps.shape[0]
    R = 1
    for i in range(n_steps):
        R = max(R, steps[i, 1] + 1)
    D = np.full((R, N), np.inf)
    S = np.zeros((R, N), dtype=np.int64)
    W = np.zeros((R, N))
    for m in range(M):
        col = m % R
        if reset[m]:  # a new sequence starts: no path may come from earlier columns
            D[:, :] = np.inf
        for n in range(N):
            dot = 0.0
            for k in range(K):
                dot += Q[n, k] * Y[m, k]
            c = 1.0 - dot
            if n == 0:
                best, best_s, best_w = c, m, 1.0
            else:
                best, best_s, best_w = np.inf, 0, 0.0
            for i in range(n_steps):
                a = steps[i, 0]
                b = steps[i, 1]
                if n - a < 0 or m - b < 0 or (a == 0 and b == 0):
                    continue
                prev = (m - b) % R
                v = D[prev, n - a] + weights[i] * c
                if v < best:
                    best = v
                    best_s = S[prev, n - a]
                    best_w = W[prev, n - a] + weights[i]
            D[col, n] = best
            S[col, n] = best_s
            W[col, n] = best_w
        out_acc[m] = D[col, N - 1]
        out_start[m] = S[col, N - 1]
        out_weight[m] = W[col, N - 1]


@numba.njit(cache=True, nogil=True, parallel=True)
def _sdtw_many(Qs, Y, steps, weights, reset, out_acc, out_start, out_weight):  # pragma: no cover - numba
    for s in numba.prange(Qs.shape[0]):
        _sdtw_one(Qs[s], Y, steps, weights, reset, out_acc[s], out_start[s], out_weight[s])


@numba.njit(cache=True, nogil=True, fastmath=True, inline="always")
def _default_column(Qt, Y, m, restart, c, dc, d1, d2, sc, s1, s2):  # pragma: no cover - numba
    """One database column ``m`` of the default-step recursion: steps (2,1), (1,2), (1,1), weights (2,1,1).

    ``Qt`` is the query as (K, N) so that every inner loop runs over contiguous query frames; ``Y[m]``
    is the database frame. ``dc, d1, d2`` are the accumulated costs of columns m, m-1, m-2 and
    ``sc, s1, s2`` their start frames. The three steps read only the two previous columns, so the column
    is one branch-free, vectorisable pass (selects instead of branches; 4x faster than the generic
    kernel). Ties go to the first step in librosa's order, as in :func:`_accumulate_full`.
    ``restart`` marks the first column of a new sequence: no path may come from earlier columns.
    """
    K, N = Qt.shape
    for n in range(N):
        c[n] = np.float32(1.0)
    for k in range(K):
        yk = Y[m, k]
        for n in range(N):
            c[n] -= Qt[k, n] * yk
    if restart:
        d1[:] = np.inf
        d2[:] = np.inf
    dc[0] = c[0]
    sc[0] = m
    if N > 1:  # row 1: only (1,2) and (1,1) fit
        v = d2[0] + c[1]
        st = s2[0]
        w = d1[0] + c[1]
        if w < v:
            v = w
            st = s1[0]
        dc[1] = v
        sc[1] = st
    for n in range(2, N):
        cn = c[n]
        a = d1[n - 2] + 2 * cn  # (2,1)
        b = d2[n - 1] + cn  # (1,2)
        e = d1[n - 1] + cn  # (1,1)
        sa = s1[n - 2]  # load all three starts first: selects, not conditional loads
        sb = s2[n - 1]
        se = s1[n - 1]
        take_b = b < a
        v = b if take_b else a
        st = sb if take_b else sa
        take_e = e < v
        dc[n] = e if take_e else v
        sc[n] = se if take_e else st


@numba.njit(cache=True, nogil=True, fastmath=True)
def _sdtw_default_one(Qt, Y, reset, out_acc, out_start):  # pragma: no cover - numba
    """Default-step kernel for one query ``Qt`` (K, N): matching costs and starts per database frame."""
    N = Qt.shape[1]
    c = np.empty(N, dtype=np.float32)
    d = np.full((3, N), np.float32(np.inf), dtype=np.float32)  # ring of columns m, m-1, m-2
    s = np.zeros((3, N), dtype=np.int32)
    for m in range(Y.shape[0]):
        dc, d1, d2 = d[m % 3], d[(m + 2) % 3], d[(m + 1) % 3]
        sc, s1, s2 = s[m % 3], s[(m + 2) % 3], s[(m + 1) % 3]
        _default_column(Qt, Y, m, reset[m], c, dc, d1, d2, sc, s1, s2)
        out_acc[m] = dc[N - 1]
        out_start[m] = sc[N - 1]


@numba.njit(cache=True, nogil=True, parallel=True)
def _sdtw_default_many(Qts, Y, reset, out_acc, out_start):  # pragma: no cover - numba
    for s in numba.prange(Qts.shape[0]):
        _sdtw_default_one(Qts[s], Y, reset, out_acc[s], out_start[s])


@numba.njit(cache=True, nogil=True, fastmath=True)
def _sdtw_reduce_segment(Qts, Y, reset, lo, hi, block, out_cost, out_start, out_shift):  # pragma: no cover
    """All shifts of the default-step kernel over frames ``lo:hi``, keeping the best shift per frame.

    The database is walked in blocks of ``block`` frames; every shift processes a block before the
    next block is read, so the block stays in cache. Each shift keeps its own three-column state.
    """
    S, K, N = Qts.shape
    d = np.full((S, 3, N), np.float32(np.inf), dtype=np.float32)
    s = np.zeros((S, 3, N), dtype=np.int32)
    c = np.empty(N, dtype=np.float32)
    for b0 in range(lo, hi, block):
        b1 = min(b0 + block, hi)
        for sh in range(S):
            Qt = Qts[sh]
            for m in range(b0, b1):
                dc, d1, d2 = d[sh, m % 3], d[sh, (m + 2) % 3], d[sh, (m + 1) % 3]
                sc, s1, s2 = s[sh, m % 3], s[sh, (m + 2) % 3], s[sh, (m + 1) % 3]
                _default_column(Qt, Y, m, reset[m], c, dc, d1, d2, sc, s1, s2)
                if dc[N - 1] < out_cost[m]:
                    out_cost[m] = dc[N - 1]
                    out_start[m] = sc[N - 1]
                    out_shift[m] = sh


#: below this many DTW cells (shifts x query x database frames) :func:`best_over_shifts` runs on one thread:
#: starting the parallel kernel costs 0.4-0.8 ms, about what one core needs for 2**17 cells
SERIAL_CELLS = 1 << 17


@numba.njit(cache=True, nogil=True, parallel=True)
def _sdtw_reduce(Qts, Y, reset, segments, block, out_cost, out_start, out_shift):  # pragma: no cover - numba
    for i in numba.prange(segments.shape[0] - 1):
        _sdtw_reduce_segment(Qts, Y, reset, segments[i], segments[i + 1], block, out_cost, out_start, out_shift)


@numba.njit(cache=True)
def _accumulate_full(C, steps, weights, subseq):  # pragma: no cover - numba
    N, M = C.shape
    D = np.full((N, M), np.inf)
    step_index = np.full((N, M), -1, dtype=np.int64)
    D[0, 0] = C[0, 0]
    if subseq:
        for m in range(M):
            D[0, m] = C[0, m]
    for n in range(N):
        for m in range(M):
            for i in range(steps.shape[0]):
                a = steps[i, 0]
                b = steps[i, 1]
                if n - a < 0 or m - b < 0 or (a == 0 and b == 0):
                    continue
                v = D[n - a, m - b] + weights[i] * C[n, m]
                if v < D[n, m]:
                    D[n, m] = v
                    step_index[n, m] = i
    return D, step_index


def accumulated_cost(
    C: np.ndarray,
    *,
    steps: np.ndarray = STEPS,
    weights: np.ndarray = WEIGHTS,
    subseq: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Full accumulated cost matrix for a given cost matrix (small inputs, plots, paths).

    Parameters
    ----------
    C : np.ndarray, shape (N, M)
        Local cost matrix (query on the first axis).
    steps, weights : np.ndarray
        Step sizes (n_steps, 2) and multiplicative weights (n_steps,).
    subseq : bool
        Free start along the first row (subsequence DTW) instead of a fixed start at (0, 0).

    Returns
    -------
    D : np.ndarray, shape (N, M), float64
        Accumulated cost.
    step_index : np.ndarray, shape (N, M), int64
        Index of the step taken into each cell (-1 for start cells and unreachable cells).
    """
    steps, weights = check_steps(steps, weights)
    C = np.asarray(C, dtype=np.float64)
    if C.ndim != 2 or C.size == 0:
        raise ParameterError(f"C must be a non-empty 2-D matrix, got shape {C.shape}")
    if np.any(np.isnan(C)):
        raise ParameterError("C contains NaN values")
    return _accumulate_full(np.ascontiguousarray(C), steps, weights, subseq)


def check_steps(steps, weights, *, max_steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate DTW step sizes ``(n_steps, 2)`` and weights ``(n_steps,)``; returns contiguous copies.

    ``max_steps`` bounds the number of steps (kernels that store the step index in a byte).
    """
    steps = np.ascontiguousarray(steps, dtype=np.int64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if steps.ndim != 2 or steps.shape[1] != 2 or steps.shape[0] == 0:
        raise ParameterError(f"steps must have shape (n_steps, 2), got {steps.shape}")
    if weights.shape != (steps.shape[0],):
        raise ParameterError(f"weights must have shape ({steps.shape[0]},), got {weights.shape}")
    if np.any(steps < 0) or np.any(steps.sum(axis=1) == 0):
        raise ParameterError("steps must be non-negative and not (0, 0)")
    if max_steps is not None and steps.shape[0] > max_steps:
        raise ParameterError(f"at most {max_steps} steps are supported, got {steps.shape[0]}")
    if np.any(weights <= 0) or not np.all(np.isfinite(weights)):
        raise ParameterError("weights must be finite and > 0")
    return steps, weights


def unit_columns(X: np.ndarray, *, name: str = "features") -> np.ndarray:
    """Frames as unit-length rows, shape (n_frames, n_features), C-contiguous float32/64.

    Columns of norm 0 become the uniform unit vector, so the cosine cost stays defined.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ParameterError(f"{name} must have shape (n_features, n_frames), got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ParameterError(f"{name} contains NaN or infinite values")
    dtype = np.float64 if X.dtype == np.float64 else np.float32
    X = X.astype(dtype, copy=False)
    norms = np.linalg.norm(X, axis=0)
    out = np.empty_like(X)
    ok = norms > 0
    out[:, ok] = X[:, ok] / norms[ok]
    out[:, ~ok] = 1.0 / np.sqrt(X.shape[0])
    return np.ascontiguousarray(out.T)


def cosine_cost(query: np.ndarray, database: np.ndarray) -> np.ndarray:
    """Cosine distance matrix, shape (N, M), between the columns of two feature matrices."""
    return 1.0 - unit_columns(query, name="query") @ unit_columns(database, name="database").T


def backtrack(step_index: np.ndarray, steps: np.ndarray, end: tuple[int, int], *, subseq: bool) -> np.ndarray:
    """Follow stored step indices back from ``end``; returns the path (L, 2), end first."""
    n, m = end
    path = [(n, m)]
    while (subseq and n > 0) or (not subseq and (n, m) != (0, 0)):
        i = step_index[n, m]
        if i < 0:
            break
        n, m = n - steps[i, 0], m - steps[i, 1]
        if n < 0 or m < 0:
            break
        path.append((n, m))
    return np.asarray(path, dtype=np.int64)


def subsequence_dtw(
    query: np.ndarray,
    database: np.ndarray,
    *,
    steps: np.ndarray = STEPS,
    weights: np.ndarray = WEIGHTS,
    return_path: bool = False,
) -> SubsequenceDTWResult:
    """Subsequence DTW of a query against a longer database sequence (cosine cost).

    Parameters
    ----------
    query : np.ndarray, shape (K, N)
        Query features (e.g. 12 chroma bands), ``N >= 1`` frames.
    database : np.ndarray, shape (K, M)
        Database features, same ``K``.
    steps : np.ndarray, shape (n_steps, 2)
        Step sizes (query frames, database frames); default ``(2, 1), (1, 2), (1, 1)``.
    weights : np.ndarray, shape (n_steps,)
        Multiplicative weight of each step's local cost; default ``(2, 1, 1)``.
    return_path : bool
        Also compute the warping path of the best match. This builds the full ``N x M`` matrices:
        use it on excerpts, not on a whole collection.

    Returns
    -------
    SubsequenceDTWResult
        Matching function (cost / path weight), start frames, raw accumulated cost, optional path.
        A match ending at frame ``e`` spans database frames ``start_frames[e] .. e``.
    """
    steps, weights = check_steps(steps, weights)
    Q = unit_columns(query, name="query")
    Y = unit_columns(database, name="database")
    if Q.shape[1] != Y.shape[1]:
        raise ParameterError(f"query has {Q.shape[1]} features per frame, database {Y.shape[1]}")
    if Q.shape[0] == 0 or Y.shape[0] == 0:
        raise ParameterError(f"query ({Q.shape[0]} frames) and database ({Y.shape[0]} frames) must not be empty")
    Y = Y.astype(Q.dtype, copy=False)
    M = Y.shape[0]
    acc = np.empty((1, M))
    start = np.empty((1, M), dtype=np.int64)
    weight = np.empty((1, M))
    _sdtw_many(Q[None], Y, steps, weights, _no_reset(M), acc, start, weight)
    with np.errstate(invalid="ignore", divide="ignore"):
        mf = np.where(np.isfinite(acc[0]), acc[0] / weight[0], np.inf)
    path = None
    if return_path:
        if not np.any(np.isfinite(acc[0])):
            raise ParameterError("no subsequence path fits the step sizes (query too long for the database)")
        D, step_index = accumulated_cost(1.0 - Q @ Y.T, steps=steps, weights=weights, subseq=True)
        path = backtrack(step_index, steps, (Q.shape[0] - 1, int(np.argmin(D[-1]))), subseq=True)
    return SubsequenceDTWResult(mf, start[0], acc[0], path)


def subsequence_dtw_shifts(
    query: np.ndarray,
    database: np.ndarray,
    *,
    shifts=range(12),
    steps: np.ndarray = STEPS,
    weights: np.ndarray = WEIGHTS,
    sequence_starts=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Subsequence DTW for several cyclic shifts of a chroma query, in parallel.

    Parameters
    ----------
    query : np.ndarray, shape (12, N)
    database : np.ndarray, shape (12, M)
    shifts : iterable of int
        Shifts ``k`` applied as ``np.roll(query, k, axis=0)``: pitch class ``p`` of the query is compared
        with ``p + k`` of the database, i.e. the query transposed up by ``k`` semitones.

    Returns
    -------
    matching : np.ndarray, shape (n_shifts, M), float64
        Normalised matching function per shift.
    start_frames : np.ndarray, shape (n_shifts, M), int64
    """
    steps, weights = check_steps(steps, weights)
    shifts = [int(s) for s in shifts]
    Q = unit_columns(query, name="query")
    Y = unit_columns(database, name="database").astype(Q.dtype, copy=False)
    reset = _no_reset(Y.shape[0])
    if sequence_starts is not None:
        starts = np.asarray(list(sequence_starts), dtype=np.int64)
        if np.any((starts < 0) | (starts >= max(Y.shape[0], 1))):
            raise ParameterError(f"sequence_starts must lie in [0, {Y.shape[0]})")
        reset[starts] = True
    return _run_shifts(Q, Y, shifts, steps, weights, reset)


def _is_default(steps: np.ndarray, weights: np.ndarray) -> bool:
    return steps.shape == STEPS.shape and np.array_equal(steps, STEPS) and np.array_equal(weights, WEIGHTS)


def _no_reset(M: int) -> np.ndarray:
    reset = np.zeros(M, dtype=np.bool_)
    if M:
        reset[0] = True
    return reset


def _run_shifts(Q, Y, shifts, steps=STEPS, weights=WEIGHTS, reset=None):
    """Kernel call on prepared unit rows Q (N, K), Y (M, K); returns (matching, start) (n_shifts, M).

    ``reset`` (M,) bool marks frames where a new sequence begins when several recordings are
    concatenated into ``Y``: no path crosses such a boundary.
    """
    M = Y.shape[0]
    n_shifts = len(shifts)
    reset = _no_reset(M) if reset is None else np.ascontiguousarray(reset, dtype=np.bool_)
    if _is_default(steps, weights):
        Qts = np.ascontiguousarray(np.stack([np.roll(Q, s, axis=1).T for s in shifts]), dtype=np.float32)
        acc32 = np.empty((n_shifts, M), dtype=np.float32)
        start32 = np.empty((n_shifts, M), dtype=np.int32)
        _sdtw_default_many(Qts, np.ascontiguousarray(Y, dtype=np.float32), reset, acc32, start32)
        # with these weights every query frame is counted once: the path weight is N
        return acc32.astype(np.float64) / Q.shape[0], start32.astype(np.int64)
    Qs = np.ascontiguousarray(np.stack([np.roll(Q, s, axis=1) for s in shifts]))
    acc = np.empty((n_shifts, M))
    start = np.empty((n_shifts, M), dtype=np.int64)
    weight = np.empty((n_shifts, M))
    _sdtw_many(Qs, Y, steps, weights, reset, acc, start, weight)
    with np.errstate(invalid="ignore", divide="ignore"):
        mf = np.where(np.isfinite(acc), acc / weight, np.inf)
    return mf, start


def best_over_shifts(
    Q: np.ndarray,
    Y: np.ndarray,
    shifts,
    *,
    reset: np.ndarray | None = None,
    n_segments: int | None = None,
    block: int = 2048,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Default-step subsequence DTW over many shifts, reduced to the best shift per end frame.

    Memory is ``O(M)`` for the outputs (9 bytes per database frame) plus ``O(n_shifts * N)`` state per
    thread, whatever the number of shifts. Work is split into segments at sequence boundaries
    (``reset``) and the segments run in parallel.

    Parameters
    ----------
    Q : np.ndarray, shape (N, K)
        Query frames as unit rows (:func:`unit_columns`).
    Y : np.ndarray, shape (M, K)
        Database frames as unit rows.
    shifts : sequence of int
        Cyclic shifts of the query's feature axis.
    reset : np.ndarray of bool, shape (M,), optional
        Frames where a new sequence begins.
    n_segments : int, optional
        Parallel work units (default: 4 per numba thread, where the boundaries allow). Problems of at
        most :data:`SERIAL_CELLS` cells run on the calling thread in one unit.
    block : int
        Database frames processed per shift before moving on (cache blocking).

    Returns
    -------
    cost : np.ndarray, shape (M,), float64
        Normalised matching function (minimum over shifts).
    start : np.ndarray, shape (M,), int64
        Start frame of that best path.
    shift : np.ndarray, shape (M,), int64
        The shift (value from ``shifts``) that achieved it.
    """
    M = Y.shape[0]
    shifts = [int(s) for s in shifts]
    reset = _no_reset(M) if reset is None else np.ascontiguousarray(reset, dtype=np.bool_)
    if n_segments is None:
        n_segments = 4 * numba.get_num_threads()
    boundaries = np.flatnonzero(reset)
    if boundaries.size == 0 or boundaries[0] != 0:
        boundaries = np.r_[0, boundaries]
    # segment borders: the sequence starts closest to evenly spaced targets
    targets = np.linspace(0, M, n_segments + 1)[1:-1]
    picks = boundaries[np.clip(np.searchsorted(boundaries, targets), 0, boundaries.size - 1)]
    segments = np.unique(np.r_[0, picks, M]).astype(np.int64)
    Qts = np.ascontiguousarray(np.stack([np.roll(Q, s, axis=1).T for s in shifts]), dtype=np.float32)
    cost = np.full(M, np.inf, dtype=np.float32)
    start = np.zeros(M, dtype=np.int32)
    shift_index = np.zeros(M, dtype=np.int8)
    Y = np.ascontiguousarray(Y, dtype=np.float32)
    if Qts.shape[0] * Qts.shape[2] * M <= SERIAL_CELLS:  # waking the thread pool costs more than the work
        _sdtw_reduce_segment(Qts, Y, reset, 0, M, block, cost, start, shift_index)
    else:
        _sdtw_reduce(Qts, Y, reset, segments, block, cost, start, shift_index)
    return cost.astype(np.float64) / Q.shape[0], start.astype(np.int64), np.asarray(shifts)[shift_index]


def find_matches(
    matching_function: np.ndarray,
    start_frames: np.ndarray,
    *,
    top: int = 5,
    max_overlap: float = 0.2,
    max_cost: float = np.inf,
) -> list[tuple[int, int, float]]:
    """Best non-overlapping matches from a matching function.

    Parameters
    ----------
    matching_function : np.ndarray, shape (M,)
        Cost of the best match ending at each frame.
    start_frames : np.ndarray, shape (M,)
        Start frame of that match.
    top : int >= 1
        Maximum number of matches.
    max_overlap : float in [0, 1)
        A candidate is suppressed when it overlaps an accepted match by more than this share of the
        shorter of the two spans (the neighbourhood suppression).
    max_cost : float
        Ignore candidates costlier than this.

    Returns
    -------
    list of (start, end, cost)
        Inclusive frame spans, best first.
    """
    if top < 1:
        raise ParameterError(f"top={top} must be >= 1")
    order = np.argsort(matching_function, kind="stable")
    accepted: list[tuple[int, int, float]] = []
    for e in order:
        cost = float(matching_function[e])
        if not np.isfinite(cost) or cost > max_cost:
            break
        s = int(start_frames[e])
        e = int(e)
        ok = True
        for s2, e2, _ in accepted:
            inter = min(e, e2) - max(s, s2) + 1
            if inter > max_overlap * min(e - s + 1, e2 - s2 + 1):
                ok = False
                break
        if ok:
            accepted.append((s, e, cost))
            if len(accepted) >= top:
                break
    return accepted
