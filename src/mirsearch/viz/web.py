"""PNG figures for the web page, as bytes: a recording's chromagram with a match highlighted, a matching curve.

Drawn with matplotlib's object API (``Figure`` + Agg canvas, no pyplot state), so worker threads can
render at the same time.
"""

from __future__ import annotations

import io
import logging

import numpy as np

from mirsearch.errors import ParameterError

log = logging.getLogger(__name__)

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
#: highlight colour (matches the page's accent)
ACCENT = "#e4572e"
INK = "#1f2a37"


def _mmss(seconds: float, _pos=None) -> str:
    minutes, rest = divmod(max(0.0, float(seconds)), 60.0)
    return f"{int(minutes)}:{int(rest):02d}"


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _figure_axes(width: int, height: int, axes_height: float):
    """A ``width`` x ``height`` pixel figure (100 dpi) and its axes; every figure of the page puts the axes at the
    same horizontal place, so that figures of one recording line up one above the other."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / 100, height / 100))
    return fig, fig.add_axes((0.045, 0.17, 0.945, axes_height))


def _time_ticks(ax) -> None:
    """``m:ss`` labels at up to 12 round positions on the x axis."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_formatter(FuncFormatter(_mmss))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=12, steps=[1, 2, 3, 5, 6, 10]))


def chromagram_png(
    X: np.ndarray,
    *,
    feature_rate: float,
    highlight: tuple[float, float] | None = None,
    view: tuple[float, float] | None = None,
    overlay=(),
    title: str = "",
    width: int = 1000,
    height: int = 260,
) -> bytes:
    """A chromagram as PNG, optionally with a time span highlighted and notes drawn over it.

    Parameters
    ----------
    X : np.ndarray, shape (12, n_frames)
        Chroma features (index 0 = C).
    feature_rate : float > 0
        Frames per second of ``X``.
    highlight : (float, float), optional
        Span (s) drawn as a box (the match).
    view : (float, float), optional
        Only this time span (s) of the recording is drawn; default all.
    overlay : sequence of (start, end, pitch_class)
        Notes (s, 0-11) drawn as outlined bars over the chromagram (the query's notes at the match).
    title : str
        Figure title.
    width, height : int
        Image size in pixels (100 dpi).

    Returns
    -------
    bytes
        The PNG file.
    """
    from matplotlib.patches import Rectangle

    if X.ndim != 2 or X.shape[0] != 12 or X.shape[1] == 0:
        raise ParameterError(f"chroma must have shape (12, n>0), got {X.shape}")
    duration = X.shape[1] / feature_rate
    lo, hi = (0.0, duration) if view is None else (max(0.0, view[0]), min(duration, view[1]))
    if not hi > lo:
        raise ParameterError(f"view=({lo:.2f}, {hi:.2f}) is empty for a {duration:.2f} s recording")
    f0, f1 = int(np.floor(lo * feature_rate)), int(np.ceil(hi * feature_rate))
    fig, ax = _figure_axes(width, height, 0.72 if title else 0.78)
    ax.imshow(
        X[:, f0:f1],
        origin="lower",
        aspect="auto",
        cmap="Greys",
        interpolation="nearest",
        extent=(f0 / feature_rate, f1 / feature_rate, -0.5, 11.5),
        vmin=0.0,
        vmax=max(float(X[:, f0:f1].max()), 1e-6),
    )
    ax.set_yticks(range(12), PITCH_CLASSES, fontsize=7)
    _time_ticks(ax)
    ax.tick_params(labelsize=8, colors=INK)
    if highlight is not None:
        s, e = highlight
        ax.add_patch(Rectangle((s, -0.5), e - s, 12, facecolor=ACCENT, alpha=0.18, edgecolor=ACCENT, linewidth=2.0))
    for s, e, pc in overlay:
        ax.add_patch(Rectangle((s, pc - 0.35), e - s, 0.7, fill=False, edgecolor=ACCENT, linewidth=1.4))
    if title:
        fig.suptitle(title, fontsize=9, color=INK, x=0.045, ha="left", y=0.97)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return _png(fig)


def matching_curve_png(
    cost: np.ndarray,
    *,
    feature_rate: float,
    matches=(),
    view: tuple[float, float] | None = None,
    title: str = "",
    width: int = 1000,
    height: int = 240,
) -> bytes:
    """A matching curve as PNG (:func:`mirsearch.viz.figures.plot_matching_curve` on a figure of this size).

    Parameters
    ----------
    cost : np.ndarray, shape (M,)
        Cost of the best match starting at each frame (``inf``: not drawn).
    feature_rate : float > 0
        Frames per second of ``cost``.
    matches : sequence of (start, end, cost)
        Matches in seconds, shaded and marked.
    view : (float, float), optional
        Only this time span (s); the axes then sit where :func:`chromagram_png`'s do, so that the two figures
        line up one above the other.
    title : str
    width, height : int
        Image size in pixels (100 dpi).
    """
    from mirsearch.viz.figures import plot_matching_curve

    fig, ax = _figure_axes(width, height, 0.7)
    plot_matching_curve(np.asarray(cost), feature_rate=feature_rate, matches=list(matches), title=title, ax=ax)
    if view is not None:
        ax.set_xlim(max(0.0, view[0]), view[1])
        _time_ticks(ax)
        ax.set_xlabel("")
    ax.set_ylabel("")  # the title says what the curve is; the fixed margin has no room for a label
    ax.tick_params(labelsize=7)
    return _png(fig)
