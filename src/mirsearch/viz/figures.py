"""Figures for alignment and matching results (matplotlib, Agg canvas; nothing is ever shown).

Every function takes arrays with explicit frame rates, returns a :class:`matplotlib.figure.Figure` and,
given ``out``, also writes it (PNG, SVG or PDF by the suffix). Axes are in seconds. No pyplot state is
touched (figures are created with :class:`~matplotlib.figure.Figure` directly), so these functions are
safe in servers and threads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mirsearch._util import atomic_path
from mirsearch.errors import ParameterError, check_positive

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
#: largest number of frames drawn per axis (longer inputs are averaged down)
MAX_FRAMES = 1200


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, out: str | os.PathLike, *, dpi: int = 110) -> None:
    """Write a figure to ``out`` (format from the suffix) atomically; the folder is created if needed."""
    with atomic_path(out) as tmp:
        fig.savefig(os.fspath(tmp), dpi=dpi)


def _written(fig, out: str | os.PathLike | None):
    """``fig``, written to ``out`` first if given."""
    if out is not None:
        save_figure(fig, out)
    return fig


def _reduce(X: np.ndarray, rate: float, max_frames: int = MAX_FRAMES) -> tuple[np.ndarray, float]:
    """Average frames so that at most ``max_frames`` remain; returns (X, new rate)."""
    n = X.shape[1]
    if n <= max_frames:
        return X, rate
    f = int(np.ceil(n / max_frames))
    m = n // f * f
    Xr = X[:, :m].reshape(X.shape[0], -1, f).mean(axis=2)
    if m < n:
        Xr = np.concatenate([Xr, X[:, m:].mean(axis=1, keepdims=True)], axis=1)
    return Xr, rate / f


def _check_features(X, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] == 0:
        raise ParameterError(f"{name} must have shape (n_features, n_frames) with n_frames > 0, got {X.shape}")
    return X


def _chromagram(ax, X: np.ndarray, rate: float, title: str) -> object:
    X, r = _reduce(X, rate)
    dur = X.shape[1] / r
    im = ax.imshow(
        X,
        origin="lower",
        aspect="auto",
        cmap="gray_r",
        extent=(0, dur, -0.5, X.shape[0] - 0.5),
        interpolation="nearest",
    )
    if X.shape[0] == 12:
        ax.set_yticks(range(12), PITCH_CLASSES, fontsize=7)
    ax.set_xlabel("time (s)")
    ax.set_title(title, fontsize=10)
    return im


def plot_chromagrams(
    A: np.ndarray,
    B: np.ndarray | None = None,
    *,
    feature_rate: float,
    feature_rate_b: float | None = None,
    names: Sequence[str] = ("A", "B"),
    out: str | os.PathLike | None = None,
):
    """Chromagrams of one or two recordings, one above the other.

    Parameters
    ----------
    A, B : np.ndarray, shape (12, n)
        Chroma (or any features) of the recordings; ``B`` optional.
    feature_rate, feature_rate_b : float > 0
        Frames per second of ``A`` and ``B`` (``feature_rate_b`` defaults to ``feature_rate``).
    names : (str, str)
        Titles.
    out : path, optional
        Also write the figure here.
    """
    check_positive("feature_rate", feature_rate)
    A = _check_features(A, "A")
    rows = 1 if B is None else 2
    fig = _figure(10, 2.4 * rows)
    axes = fig.subplots(rows, 1, squeeze=False)[:, 0]
    _chromagram(axes[0], A, feature_rate, names[0])
    if B is not None:
        _chromagram(axes[1], _check_features(B, "B"), feature_rate_b or feature_rate, names[1])
    return _written(fig, out)


@dataclass(frozen=True)
class AlignmentView:
    """What an alignment figure shows: two feature sequences and the path or time map between them.

    Parameters
    ----------
    A, B : np.ndarray, shape (K, N) and (K, M)
        Features at ``feature_rate`` (averaged down to at most :data:`MAX_FRAMES` per axis for drawing).
    feature_rate : float > 0
        Frames per second of ``A`` and ``B``.
    path : np.ndarray, shape (L, 2), optional
        Warping path in frames at ``path_rate`` (default ``feature_rate``).
    path_rate : float > 0, optional
    time_map : TimeMap, optional
        Drawn instead of / in addition to ``path`` (its points, in seconds).
    names : (str, str)
        Names of ``A`` and ``B`` (axis labels and titles).
    """

    A: np.ndarray
    B: np.ndarray
    feature_rate: float
    path: np.ndarray | None = None
    path_rate: float | None = None
    time_map: object = None
    names: tuple[str, str] = ("A", "B")

    def __post_init__(self) -> None:
        check_positive("feature_rate", self.feature_rate)
        object.__setattr__(self, "A", _check_features(self.A, "A"))
        object.__setattr__(self, "B", _check_features(self.B, "B"))


def plot_cost_path(view: AlignmentView, *, ax=None, out: str | os.PathLike | None = None):
    """Cosine cost matrix of two feature sequences with the warping path on top (``A`` along y, ``B`` along x).

    Parameters
    ----------
    view : AlignmentView
        The features, the path and the names.
    ax : matplotlib Axes, optional
        Draw into this axes (then the figure of ``ax`` is returned).
    out : path, optional
        Also write the figure.
    """
    from mirsearch.matching.subsequence import unit_columns

    A, ra = _reduce(view.A, view.feature_rate)
    B, rb = _reduce(view.B, view.feature_rate)
    Cm = 1.0 - unit_columns(A) @ unit_columns(B).T
    if ax is None:
        fig = _figure(7, 6)
        ax = fig.subplots()
    else:
        fig = ax.figure
    im = ax.imshow(
        Cm,
        origin="lower",
        aspect="auto",
        cmap="gray_r",
        extent=(0, B.shape[1] / rb, 0, A.shape[1] / ra),
        interpolation="nearest",
    )
    fig.colorbar(im, ax=ax, label="cosine distance", shrink=0.8)
    if view.path is not None:
        p = np.asarray(view.path, dtype=np.float64) / (view.path_rate or view.feature_rate)
        ax.plot(p[:, 1], p[:, 0], color="tab:red", linewidth=1.2, label="warping path")
    if view.time_map is not None:
        tm = view.time_map
        ax.plot(tm.b, tm.a, color="tab:orange", linewidth=1.0, linestyle="--", label="time map")
    if view.path is not None or view.time_map is not None:
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel(f"{view.names[1]} (s)")
    ax.set_ylabel(f"{view.names[0]} (s)")
    ax.set_title("cost matrix and warping path", fontsize=10)
    return _written(fig, out)


def plot_alignment(view: AlignmentView, *, out: str | os.PathLike | None = None):
    """Summary figure of an alignment: both chromagrams and the cost matrix with the warping path.

    Parameters
    ----------
    view : AlignmentView
    out : path, optional
        Also write the figure.
    """
    fig = _figure(11, 9)
    grid = fig.add_gridspec(3, 1, height_ratios=(1, 1, 3.2))
    _chromagram(fig.add_subplot(grid[0]), view.A, view.feature_rate, f"chroma: {view.names[0]}")
    _chromagram(fig.add_subplot(grid[1]), view.B, view.feature_rate, f"chroma: {view.names[1]}")
    plot_cost_path(view, ax=fig.add_subplot(grid[2]))
    return _written(fig, out)


def plot_matching_curve(
    cost: np.ndarray,
    *,
    feature_rate: float,
    matches: Sequence[tuple[float, float, float]] = (),
    title: str = "matching curve",
    ax=None,
    out: str | os.PathLike | None = None,
):
    """Matching curve over time with the found matches marked.

    Parameters
    ----------
    cost : np.ndarray, shape (M,)
        Cost per start frame (``inf`` where no match fits: not drawn).
    feature_rate : float > 0
        Frames per second of ``cost``.
    matches : sequence of (start, end, cost)
        Found matches in seconds: a marker at ``(start, cost)`` and a shaded span ``start .. end``.
    title : str
    ax : matplotlib Axes, optional
    out : path, optional
    """
    check_positive("feature_rate", feature_rate)
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 1 or cost.size == 0:
        raise ParameterError(f"cost must be a non-empty 1-D array, got shape {cost.shape}")
    if ax is None:
        fig = _figure(10, 3)
        ax = fig.subplots()
    else:
        fig = ax.figure
    t = np.arange(cost.size) / feature_rate
    shown = np.where(np.isfinite(cost), cost, np.nan)
    ax.plot(t, shown, color="black", linewidth=1.0, label="cost")
    for i, (s, e, c) in enumerate(matches):
        ax.axvspan(s, e, color="tab:red", alpha=0.15, linewidth=0)
        ax.plot([s], [c], marker="o", color="tab:red", markersize=5)
        ax.annotate(str(i + 1), (s, c), textcoords="offset points", xytext=(3, -10), fontsize=8, color="tab:red")
    ax.set_xlim(0, max(t[-1], 1.0 / feature_rate))
    finite = shown[np.isfinite(shown)]
    if finite.size:
        ax.set_ylim(0, max(float(finite.max()) * 1.05, 1e-3))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("cost")
    ax.set_title(title, fontsize=10)
    return _written(fig, out)


def plot_versions(
    scores: Sequence[tuple[str, float]], *, out: str | os.PathLike | None = None, title: str = "versions"
):
    """Horizontal bar chart of version scores (lower is more similar), best at the top."""
    fig = _figure(8, 0.35 * max(3, len(scores)) + 1)
    ax = fig.subplots()
    labels = [os.path.basename(s[0]) for s in scores][::-1]
    values = [float(s[1]) for s in scores][::-1]
    ax.barh(range(len(values)), values, color="tab:blue")
    ax.set_yticks(range(len(values)), labels, fontsize=8)
    ax.set_xlabel("score (mean shingle cost; lower = more similar)")
    ax.set_title(title, fontsize=10)
    return _written(fig, out)
