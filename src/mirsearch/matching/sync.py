"""Multiresolution DTW for music synchronisation: long recordings without a full-resolution matrix.

Two 20-minute recordings at 50 Hz have 60,000 frames each: a full DTW would evaluate 3.6e9 cells
(3.6 GB for one byte per cell, 29 GB for a float64 accumulated-cost matrix). :func:`sync_dtw` instead

1. smooths and downsamples the chroma to a coarse rate (1 Hz by default; coarser still if the coarse
   matrix would exceed ``max_coarse_cells``) and runs a full DTW there - optionally for all 12 cyclic
   chroma shifts, keeping the cheapest (transposed versions);
2. projects the coarse path onto the next finer rate (5 Hz, then 50 Hz): each coarse cell covers a block
   of fine cells, and the band is that union of blocks widened by ``radius_seconds`` in both directions;
3. runs a banded DTW (:func:`mirsearch.matching.dtw.dtw_band`, one byte per band cell) inside it, with
   chroma plus onset (DLNCO) features at the finest level (optionally another, sharper chroma there: ``fine``);
4. optionally (``warp_seconds``) runs the finest level once more along the smoothed path (:func:`tempo_warp`),
   so that the DTW's preferred diagonal follows the local tempo.

Memory is ``O((N + M) * W)`` for a band of width ``W`` cells per row (about 2 * ratio + 2 * radius).
The result reports the band size of every level.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.ndimage
import scipy.signal

from mirsearch.errors import ParameterError, check_positive
from mirsearch.features.chroma import normalize_frames
from mirsearch.matching.dtw import SYNC_STEPS, SYNC_WEIGHTS, check_steps, dtw_band, full_band, path_cost

log = logging.getLogger(__name__)

#: downsampling factors of the levels, relative to the input rate (50 Hz input -> 1 Hz, 5 Hz, 50 Hz)
FACTORS = (50, 10, 1)
#: step weights of the finest level (for SYNC_STEPS (1,1), (1,0), (0,1)): a diagonal step costs 2 local
#: costs, a horizontal or vertical one 1.5 (synctoolbox's choice; weaker diagonal preference than 1/1/1)
WEIGHTS = np.array([2.0, 1.5, 1.5])
#: slope-constrained steps of the coarser levels (local tempo ratio between 1/2 and 2) and their weights
COARSE_STEPS = np.array([[1, 1], [2, 1], [1, 2]], dtype=np.int64)
COARSE_WEIGHTS = np.array([2.0, 3.0, 3.0])
#: largest coarse full-DTW matrix (cells); longer inputs get an extra coarser level
MAX_COARSE_CELLS = 4_000_000


@dataclass
class SyncResult:
    """Output of :func:`sync_dtw`.

    Attributes
    ----------
    path : np.ndarray, shape (L, 2), int64
        Warping path in frames of the input rate, from ``(0, 0)`` to ``(N - 1, M - 1)``.
    feature_rate : float
        Frames per second of the path indices.
    cost : float
        Accumulated cost at the finest level.
    transposition : int
        Cyclic chroma shift ``k`` applied to ``Y`` (``np.roll(Y, k, axis=0)``), i.e. ``Y`` transposed
        down by ``k`` semitones matched ``X``; 0 unless shifts were searched.
    coarse_path_cost : float
        Mean cosine distance between the coarse chroma frames the coarse path pairs.
    coarse_mean_cost : float
        Mean cosine distance over all pairs of coarse frames.
    coarse_reverse_cost : float
        Mean cosine distance along the optimal coarse path between ``X`` and ``Y`` played backwards (with
        its own best shift): the cost of aligning music with the same harmonic statistics but no
        musical correspondence.
    levels : list of dict
        Per level: ``rate`` (Hz), ``shape`` (rows, cols), ``cells`` (band size), ``seconds`` (run time).
    """

    path: np.ndarray
    feature_rate: float
    cost: float
    transposition: int = 0
    coarse_path_cost: float = float("nan")
    coarse_mean_cost: float = float("nan")
    coarse_reverse_cost: float = float("nan")
    levels: list = field(default_factory=list)

    @property
    def cost_ratio(self) -> float:
        """``coarse_path_cost / coarse_reverse_cost``: 0.25-0.65 for versions of one piece, 0.7-1 otherwise."""
        return self.coarse_path_cost / max(self.coarse_reverse_cost, 1e-9)

    @property
    def mean_cost_ratio(self) -> float:
        """``coarse_path_cost / coarse_mean_cost``: the path against the pair's own all-pairs null (the mean
        distance of any frame of ``X`` to any frame of ``Y``); small when the path is far cheaper than chance,
        also for music whose reversal is as plausible as itself (static or cyclic harmony)."""
        return self.coarse_path_cost / max(self.coarse_mean_cost, 1e-9)

    @property
    def peak_cells(self) -> int:
        """Largest number of cells any level evaluated (one byte each in the step matrix)."""
        return max((lv["cells"] for lv in self.levels), default=0)


def smooth_downsample(X: np.ndarray, factor: int, *, window: int | None = None) -> np.ndarray:
    """Hann-smooth feature frames over ``window`` frames and keep every ``factor``-th, l2-normalised.

    Parameters
    ----------
    X : np.ndarray, shape (K, N)
        Non-negative features.
    factor : int >= 1
        Downsampling factor; output frame ``i`` is centred on input frame ``i * factor``.
    window : int, optional
        Smoothing length in input frames; default ``4 * factor + 1`` (no smoothing for ``factor == 1``).

    Returns
    -------
    np.ndarray, shape (K, ceil(N / factor)), float32
    """
    if factor < 1:
        raise ParameterError(f"factor={factor} must be >= 1")
    if factor == 1 and window is None:
        return normalize_frames(X)
    window = 4 * factor + 1 if window is None else window
    w = scipy.signal.get_window("hann", window + 2)[1:-1].astype(np.float32)
    S = scipy.ndimage.convolve1d(np.asarray(X, dtype=np.float32), w / w.sum(), axis=1, mode="constant")
    return normalize_frames(S[:, ::factor])


def project_band(
    path: np.ndarray,
    *,
    shape: tuple[int, int],
    ratio: float,
    radius: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Band at a finer level around a coarse warping path.

    Parameters
    ----------
    path : np.ndarray, shape (L, 2)
        Coarse path; coarse frame ``i`` is centred on fine frame ``i * ratio``.
    shape : (int, int)
        Fine matrix shape ``(N, M)``.
    ratio : float > 0
        Fine frames per coarse frame.
    radius : int >= 0
        Extra fine cells added around the projected blocks, in both directions.

    Returns
    -------
    lo, hi : np.ndarray, shape (N,), int64
        Allowed columns ``lo[n] <= m < hi[n]``; the band is connected and contains both corners.
    """
    N, M = shape
    path = np.asarray(path, dtype=np.int64)
    n_coarse = int(path[:, 0].max()) + 1
    jmin = np.full(n_coarse, np.iinfo(np.int64).max)
    jmax = np.full(n_coarse, -1)
    np.minimum.at(jmin, path[:, 0], path[:, 1])
    np.maximum.at(jmax, path[:, 0], path[:, 1])
    missing = jmax < 0  # rows skipped by steps such as (2, 1): span from the row before to the row after
    if missing.any():
        seen = np.flatnonzero(~missing)
        prev = seen[np.clip(np.searchsorted(seen, np.flatnonzero(missing)) - 1, 0, None)]
        nxt = seen[np.clip(np.searchsorted(seen, np.flatnonzero(missing)), None, seen.size - 1)]
        jmin[missing] = jmax[prev]
        jmax[missing] = jmin[nxt]
    rows = np.clip(np.floor(np.arange(N) / ratio + 0.5).astype(np.int64), 0, n_coarse - 1)
    lo = np.floor((jmin[rows] - 0.5) * ratio).astype(np.int64)
    hi = np.ceil((jmax[rows] + 0.5) * ratio).astype(np.int64) + 1
    if radius > 0:
        size = 2 * radius + 1
        lo = scipy.ndimage.minimum_filter1d(lo, size=size, mode="nearest") - radius
        hi = scipy.ndimage.maximum_filter1d(hi, size=size, mode="nearest") + radius
    lo = np.clip(lo, 0, M - 1)
    hi = np.clip(hi, 1, M)
    lo[0] = 0
    hi[-1] = M
    lo = np.minimum.accumulate(lo[::-1])[::-1]  # non-decreasing
    hi = np.maximum.accumulate(hi)
    hi = np.maximum(hi, lo + 1)
    lo[1:] = np.minimum(lo[1:], hi[:-1])  # each row reachable from the previous one
    return lo.astype(np.int64), hi.astype(np.int64)


def best_shift(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    shifts=range(12),
    steps: np.ndarray = SYNC_STEPS,
    weights: np.ndarray = SYNC_WEIGHTS,
    offset: float = 1.0,
) -> tuple[int, np.ndarray]:
    """Cyclic chroma shift of ``Y`` that minimises the full DTW cost (use coarse features).

    Returns
    -------
    shift : int
        Best ``k`` for ``np.roll(Y, k, axis=0)``.
    costs : np.ndarray, shape (n_shifts,)
        DTW cost per shift.
    """
    shifts = [int(s) for s in shifts]
    costs = np.array(
        [dtw_band(X, np.roll(Y, k, axis=0), steps=steps, weights=weights, offset=offset).cost for k in shifts]
    )
    return shifts[int(np.argmin(costs))], costs


def tempo_warp(path: np.ndarray, *, shape: tuple[int, int], sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """A smooth time map through a warping path, sampled as two frame positions along a common axis.

    Parameters
    ----------
    path : np.ndarray, shape (L, 2)
        Monotonic path in frames of the two sequences (e.g. the finest level's); it may end short of
        ``shape``: the corners ``(0, 0)`` and ``(N - 1, M - 1)`` are added.
    shape : (int, int)
        Frame counts ``(N, M)`` of the two sequences.
    sigma : float > 0
        Width (frames) of the Gaussian that smooths the path's deviation from the straight line between the
        corners (odd extension at both ends, so the smooth map keeps the corners).

    Returns
    -------
    pa, pb : np.ndarray, shape (max(N, M),), float64
        Non-decreasing fractional frame positions in the two sequences, from 0 to ``N - 1`` and ``M - 1``,
        equally spaced in ``pa + pb`` (each advances at most about one frame per step where the map's slope
        lies between ``N / M`` and ``M / N``).
    """
    N, M = shape
    path = np.asarray(path, dtype=np.float64)
    xs, inv = np.unique(np.concatenate([[0.0], path[:, 0], [N - 1.0]]), return_inverse=True)
    ys = np.bincount(inv, weights=np.concatenate([[0.0], path[:, 1], [M - 1.0]])) / np.bincount(inv)
    n = np.arange(N, dtype=np.float64)
    line = n * (M - 1) / max(N - 1, 1)
    dev = np.interp(n, xs, ys) - line
    dev[0] = dev[-1] = 0.0
    ext = np.concatenate([-dev[:0:-1], dev, -dev[-2::-1]])  # odd about both ends: the deviation stays 0 there
    smooth = scipy.ndimage.gaussian_filter1d(ext, sigma, mode="nearest")[N - 1 : 2 * N - 1]
    g = np.maximum.accumulate(np.clip(line + smooth, 0.0, M - 1.0))
    g[0], g[-1] = 0.0, M - 1.0
    s = n + g
    u = np.linspace(0.0, s[-1], max(N, M))
    return np.interp(u, s, n), np.interp(u, s, g)


def resample_frames(X: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Frames of ``X`` (shape (K, N)) at fractional ``positions`` (linear interpolation), float32 (K, len)."""
    i0 = np.clip(np.floor(positions).astype(np.int64), 0, X.shape[1] - 1)
    i1 = np.minimum(i0 + 1, X.shape[1] - 1)
    f = (positions - i0).astype(np.float32)
    return np.ascontiguousarray(X[:, i0] * (1.0 - f) + X[:, i1] * f, dtype=np.float32)


def diagonal_band(n: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Band ``lo[i] <= j < hi[i]`` of half-width ``radius`` around the diagonal of an ``n x n`` matrix."""
    i = np.arange(n, dtype=np.int64)
    return np.maximum(0, i - radius), np.minimum(n, i + radius + 1)


def unwarp_path(path: np.ndarray, warp: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """A path on the common axis of :func:`tempo_warp` as a path in frames of the two sequences.

    Positions are rounded; repeated points are dropped and larger jumps filled with intermediate points, so
    every step is ``(1, 1)``, ``(1, 0)`` or ``(0, 1)``. Returns an int64 array of shape (L', 2).
    """
    pa, pb = warp
    p = np.stack([np.rint(pa[path[:, 0]]), np.rint(pb[path[:, 1]])], axis=1).astype(np.int64)
    d = np.diff(p, axis=0)
    n_sub = np.maximum(d.max(axis=1), 1)  # sub-steps per step (a step of (0, 0) becomes one dropped point)
    start = np.repeat(p[:-1], n_sub, axis=0)
    k = np.arange(n_sub.sum()) - np.repeat(np.cumsum(n_sub) - n_sub, n_sub) + 1
    frac = k / np.repeat(n_sub, n_sub)
    inner = start + np.minimum(np.rint(np.repeat(d, n_sub, axis=0) * frac[:, None]), np.repeat(d, n_sub, axis=0))
    out = np.concatenate([p[:1], inner.astype(np.int64)], axis=0)
    keep = np.concatenate([[True], np.any(np.diff(out, axis=0) != 0, axis=1)])
    return out[keep]


@dataclass(frozen=True)
class SyncOptions:
    """Settings of :func:`sync_dtw`.

    Attributes
    ----------
    factors : tuple of int
        Downsampling factors of the levels, coarse to fine, ending with 1.
    radius_seconds : float >= 0
        Band widening around the projected coarse path at each finer level (at least 2 frames; default
        1 s: 5 frames at 5 Hz, 50 at 50 Hz).
    max_coarse_cells : int
        If the coarsest level's full matrix is larger, coarser levels (doubling factors) are prepended.
    shifts : iterable of int, optional
        Cyclic chroma shifts of ``Y`` to try at the coarsest level (``range(12)`` for transposed versions);
        default: no shift.
    steps, weights : np.ndarray
        DTW steps and weights of the finest level (default ``(1,1), (1,0), (0,1)`` with :data:`WEIGHTS`
        ``(2, 1.5, 1.5)``); also used for the shift search and the reversed baseline.
    offset : float >= 0
        Constant added to every local cost (favours the diagonal in flat regions).
    w_onset : float >= 0
        Weight of the onset distance at the finest level.
    refine_radius_seconds : float, optional
        With onset features: first align the finest level on chroma alone, then refine with chroma plus
        onsets inside a band of this half-width around that path (onsets then only move the path
        locally; safer for soft attacks and reverberant recordings). Default: one finest pass with both.
    fine_window : int, optional
        Hann smoothing of the finest-level chroma over this many frames (default: none).
    warp_seconds : float, optional
        A tempo-following pass after the finest level: that level's path, smoothed (its deviation from the
        straight line, with a Gaussian of this width in seconds), becomes a smooth time map; both sequences
        are resampled along it and another finest-level DTW runs in a band of ``radius_seconds`` around its
        diagonal. The diagonal step then follows the local tempo instead of slope 1, so flat stretches (held
        chords, soft attacks) no longer give a staircase of slope-1 runs and jumps. The path is mapped back
        and rounded to input frames. Default: none (the finest level aligns the inputs as they are).
    coarse_steps, coarse_weights : np.ndarray or None
        Steps of the coarser levels (default :data:`COARSE_STEPS`: (1,1), (2,1), (1,2), weights (2, 3, 3),
        local tempo ratio within 1/2..2, which keeps a coarse path from wandering through long
        horizontal or vertical runs); ``None`` uses ``steps``. Falls back to ``steps`` when the end cell
        cannot be reached (overall tempo ratio beyond 2).
    """

    factors: tuple[int, ...] = FACTORS
    radius_seconds: float = 1.0
    max_coarse_cells: int = MAX_COARSE_CELLS
    shifts: Sequence[int] | None = None
    steps: np.ndarray = field(default_factory=lambda: SYNC_STEPS)
    weights: np.ndarray = field(default_factory=lambda: WEIGHTS)
    offset: float = 1.0
    w_onset: float = 2.0
    refine_radius_seconds: float | None = None
    fine_window: int | None = None
    warp_seconds: float | None = None
    coarse_steps: np.ndarray | None = field(default_factory=lambda: COARSE_STEPS)
    coarse_weights: np.ndarray | None = field(default_factory=lambda: COARSE_WEIGHTS)


def sync_dtw(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    feature_rate: float,
    U: np.ndarray | None = None,
    V: np.ndarray | None = None,
    fine: tuple[np.ndarray, np.ndarray] | None = None,
    options: SyncOptions | None = None,
    **overrides,
) -> SyncResult:
    """Synchronise two feature sequences with multiresolution DTW.

    Parameters
    ----------
    X, Y : np.ndarray, shape (12, N) and (12, M)
        Chroma at ``feature_rate`` (e.g. 50 Hz from :func:`mirsearch.features.onset.sync_features`).
    feature_rate : float > 0
        Frame rate of all inputs (Hz).
    U, V : np.ndarray, shape (L, N) and (L, M), optional
        Onset features (DLNCO), used at the finest level only (Euclidean distance, weight ``w_onset``).
    fine : (np.ndarray, np.ndarray), shapes (12, N) and (12, M), optional
        Chroma of the finest level in place of ``X``, ``Y`` (e.g. a sharper analysis); the coarser levels, the
        shift search and the mismatch costs keep ``X``, ``Y``.
    options : SyncOptions, optional
        Levels, steps and weights (default :class:`SyncOptions`).
    **overrides
        Fields of :class:`SyncOptions` replacing those of ``options`` (``sync_dtw(X, Y, feature_rate=50,
        shifts=range(12))``); an unknown name raises ``TypeError``.

    Returns
    -------
    SyncResult
    """
    opts = dataclasses.replace(options or SyncOptions(), **overrides)
    check_positive("feature_rate", feature_rate)
    steps, weights = check_steps(opts.steps, opts.weights)
    X, Y = _check_sequences(X, Y, opts)
    factors = _level_factors(X.shape[1], Y.shape[1], opts)
    coarse = _coarse_steps(opts)
    t0 = time.perf_counter()
    Xc = smooth_downsample(X, factors[0])
    Yc = smooth_downsample(Y, factors[0])
    k_shift = 0
    if opts.shifts is not None:
        k_shift, _ = best_shift(Xc, Yc, shifts=opts.shifts, steps=steps, weights=weights, offset=opts.offset)
        Y, Yc, V = (None if Z is None else np.roll(np.asarray(Z), k_shift, axis=0) for Z in (Y, Yc, V))
    Xf, Yf = (X, Y) if fine is None else _fine_chroma(fine, X.shape, Y.shape, k_shift)
    have_onsets = U is not None and V is not None and opts.w_onset > 0
    path, coarse_path, result, levels = None, None, None, []
    prev_factor = None
    finest = None
    for i, (f, use_onsets, rad, warped) in enumerate(_passes(factors, have_onsets, opts)):
        t1 = time.perf_counter()
        if i == 0:
            Xl, Yl = Xc, Yc
        elif f == 1:
            finest = finest or _finest(Xf, Yf, opts.fine_window)
            Xl, Yl = finest
        else:
            Xl, Yl = smooth_downsample(X, f), smooth_downsample(Y, f)
        n, m = Xl.shape[1], Yl.shape[1]
        Ul, Vl = (U, V) if use_onsets else (None, None)
        radius = max(2, int(round(rad * feature_rate / f)))
        warp = None
        if path is None:
            lo, hi = full_band(n, m)
        elif warped:  # the tempo-following pass after the finest one
            warp, (Xl, Yl, Ul, Vl), (lo, hi) = _warped(path, (Xl, Yl, Ul, Vl), opts.warp_seconds * feature_rate, radius)
        else:
            lo, hi = project_band(path, shape=(n, m), ratio=prev_factor / f, radius=radius)
        level_steps = (steps, weights) if f == 1 or coarse is None else coarse
        result = _level_dtw(
            Xl,
            Yl,
            (lo, hi),
            U=Ul,
            V=Vl,
            steps=level_steps,
            fallback=(steps, weights),
            offset=opts.offset,
            w_onset=opts.w_onset if use_onsets else 0.0,
        )
        path = result.path if warp is None else unwarp_path(result.path, warp)
        if i == 0:
            coarse_path = path
        levels.append(
            {
                "rate": feature_rate / f,
                "onsets": bool(use_onsets),
                "shape": (n, m),
                "cells": result.n_cells,
                "seconds": time.perf_counter() - t1,
            }
        )
        prev_factor = f
    log.debug("sync_dtw: %d levels, %.2f s, peak %d cells", len(levels), time.perf_counter() - t0, levels[-1]["cells"])
    return SyncResult(
        path=path,
        feature_rate=float(feature_rate),
        cost=result.cost,
        transposition=int(k_shift),
        coarse_path_cost=float(path_cost(coarse_path, Xc, Yc).mean()),
        coarse_mean_cost=_mean_pair_cost(Xc, Yc),
        coarse_reverse_cost=_reverse_cost(Xc, Yc, shifts=opts.shifts, steps=steps, weights=weights, offset=opts.offset),
        levels=levels,
    )


def _check_sequences(X, Y, opts: SyncOptions) -> tuple[np.ndarray, np.ndarray]:
    """Validate the options' factors and radius and the two sequences; float32 copies of ``X``, ``Y``."""
    factors = tuple(int(f) for f in opts.factors)
    if not factors or factors[-1] != 1 or any(f < 1 for f in factors) or list(factors) != sorted(factors, reverse=True):
        raise ParameterError(f"factors={factors} must be decreasing and end with 1")
    if opts.radius_seconds < 0:
        raise ParameterError(f"radius_seconds={opts.radius_seconds} must be >= 0")
    X = np.asarray(X, dtype=np.float32)
    Y = np.asarray(Y, dtype=np.float32)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ParameterError(f"X {X.shape} and Y {Y.shape} must be (K, N) and (K, M) with the same K")
    if X.shape[1] < 2 or Y.shape[1] < 2:
        raise ParameterError(f"sequences need at least 2 frames, got {X.shape[1]} and {Y.shape[1]}")
    return X, Y


def _fine_chroma(fine, x_shape, y_shape, k_shift: int) -> tuple[np.ndarray, np.ndarray]:
    """The finest level's chroma ``fine`` checked against the shapes of ``X``, ``Y``; ``Y``'s shifted like ``Y``."""
    Xf, Yf = (np.asarray(Z, dtype=np.float32) for Z in fine)
    if Xf.shape != tuple(x_shape) or Yf.shape != tuple(y_shape):
        raise ParameterError(
            f"fine chroma {Xf.shape} and {Yf.shape} must have the shapes of X {x_shape} and Y {y_shape}"
        )
    return Xf, np.roll(Yf, k_shift, axis=0)


def _level_factors(N: int, M: int, opts: SyncOptions) -> list[int]:
    """Factors of the levels actually run: the coarsest small enough for a full DTW (at most
    ``max_coarse_cells``); the finest level alone if the whole problem is small."""
    factors = [int(f) for f in opts.factors]
    while -(-N // factors[0]) * -(-M // factors[0]) > opts.max_coarse_cells:
        factors.insert(0, factors[0] * 2)
    while len(factors) > 1 and -(-N // factors[1]) * -(-M // factors[1]) <= 10_000:
        factors.pop(0)
    return factors


def _coarse_steps(opts: SyncOptions) -> tuple[np.ndarray, np.ndarray] | None:
    """Checked ``(steps, weights)`` of the coarser levels (unit weights if none given), or None."""
    if opts.coarse_steps is None:
        return None
    cw = opts.coarse_weights if opts.coarse_weights is not None else np.ones(len(opts.coarse_steps))
    return check_steps(opts.coarse_steps, cw)


def _finest(X: np.ndarray, Y: np.ndarray, fine_window: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Finest-level chroma: normalised frames, Hann-smoothed over ``fine_window`` frames if > 1."""
    window = fine_window if fine_window and fine_window > 1 else None
    return smooth_downsample(X, 1, window=window), smooth_downsample(Y, 1, window=window)


def _passes(factors: list[int], have_onsets: bool, opts: SyncOptions) -> list[tuple[int, bool, float, bool]]:
    """``(factor, use_onsets, radius_seconds, tempo_following)`` of every DTW pass, coarse to fine."""
    passes = [(f, False, opts.radius_seconds, False) for f in factors[:-1]]
    if have_onsets and opts.refine_radius_seconds is not None:
        passes += [(1, False, opts.radius_seconds, False), (1, True, opts.refine_radius_seconds, False)]
    else:
        passes += [(1, have_onsets, opts.radius_seconds, False)]
    if opts.warp_seconds:
        passes += [(1, have_onsets, opts.radius_seconds, True)]
    return passes


def _warped(path, features, sigma: float, radius: int):
    """The tempo-following pass's inputs: the warp of :func:`tempo_warp` around ``path``, the features ``(X, Y,
    U, V)`` resampled along it (None stays None) and the band of half-width ``radius`` around its diagonal."""
    X, Y = features[:2]
    warp = tempo_warp(path, shape=(X.shape[1], Y.shape[1]), sigma=sigma)
    out = tuple(None if Z is None else resample_frames(Z, p) for Z, p in zip(features, warp * 2, strict=True))
    return warp, out, diagonal_band(warp[0].size, radius)


def _level_dtw(Xl, Yl, band, *, U, V, steps, fallback, offset: float, w_onset: float):
    """Banded DTW of one level with ``steps`` (steps, weights); with the ``fallback`` steps (those of the
    finest level) if the slope-constrained steps cannot reach the end cell."""
    lo, hi = band
    st, wt = steps
    try:
        return dtw_band(Xl, Yl, lo=lo, hi=hi, U=U, V=V, steps=st, weights=wt, offset=offset, w_onset=w_onset)
    except ParameterError:
        if st is fallback[0]:
            raise
        return dtw_band(Xl, Yl, lo=lo, hi=hi, steps=fallback[0], weights=fallback[1], offset=offset)


def _reverse_cost(X, Y, *, shifts, steps, weights, offset) -> float:
    """Mean path cost of X against Y played backwards (best shift): what unrelated music of the same
    harmonic statistics scores."""
    Yr = np.ascontiguousarray(Y[:, ::-1])
    if shifts is not None:
        k, _ = best_shift(X, Yr, shifts=shifts, steps=steps, weights=weights, offset=offset)
        Yr = np.roll(Yr, k, axis=0)
    r = dtw_band(X, Yr, steps=steps, weights=weights, offset=offset)
    return float(path_cost(r.path, X, Yr).mean())


def _mean_pair_cost(X: np.ndarray, Y: np.ndarray) -> float:
    """Mean cosine distance over all frame pairs, via the mean vectors (``1 - <mean x, mean y>``)."""
    from mirsearch.matching.subsequence import unit_columns

    return float(1.0 - unit_columns(X).mean(axis=0) @ unit_columns(Y).mean(axis=0))
