"""Figures of a trained chroma model: its output for a recording, and training curves.

Written with matplotlib's Agg canvas (no pyplot state, never a window), atomically, like every figure of
:mod:`mirsearch.viz.figures`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mirsearch.viz.figures import _figure, save_figure

logger = logging.getLogger(__name__)

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _pitch_image(ax, M: np.ndarray, *, start: float, rate: float, names: Sequence[str], title: str) -> None:
    """``M`` (n_classes, n_frames) at ``rate`` Hz from ``start`` s as a grey image, one row per class."""
    ax.imshow(
        M,
        origin="lower",
        aspect="auto",
        extent=(start, start + M.shape[1] / rate, -0.5, len(names) - 0.5),
        cmap="gray_r",
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    ax.set_yticks(range(len(names)), list(names))
    ax.set_title(title)


def plot_output(
    y: np.ndarray,
    *,
    sr: int,
    out: str | os.PathLike,
    bundle=None,
    offset: float = 0.0,
    title: str = "",
    labels: Sequence[int] | None = None,
    standard_chroma: bool = True,
) -> Path:
    """Plot the network output for an excerpt: chroma + blank probabilities, the blank probability over
    time, the post-processed (blank dropped, l2-normalised) chromagram and, for comparison, standard
    chroma.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio of the excerpt.
    sr : int
        Its sampling rate in Hz.
    out : path
        Image file to write (png, pdf, svg).
    bundle : None, path or ModelBundle
        Model (None: packaged default).
    offset : float
        Time of the excerpt's first sample in seconds (for the time axis).
    title : str
        Figure title.
    labels : sequence of int, optional
        Expected label sequence, printed in the title.
    standard_chroma : bool
        Add a panel with standard chroma (:func:`mirsearch.features.chroma.chroma`).

    Returns
    -------
    Path
        ``out``.
    """
    from mirsearch.features.learned import get_bundle, learned_log_probs, postprocess

    log_probs, rate = learned_log_probs(y, sr=sr, bundle=get_bundle(bundle))
    P = np.exp(log_probs)
    panels = 4 if standard_chroma else 3
    fig = _figure(10, 2.2 * panels)
    axes = fig.subplots(panels, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1, 3, 3][:panels]})
    _pitch_image(
        axes[0],
        P,
        start=offset,
        rate=rate,
        names=[*PITCH_CLASSES, "ε"],
        title="network output: chroma + blank probabilities",
    )
    axes[1].plot(offset + np.arange(P.shape[1]) / rate, P[12], color="tab:red", lw=1)
    axes[1].set_ylim(0, 1.05)
    axes[1].set_ylabel("P(blank)")
    C = postprocess(log_probs)
    _pitch_image(
        axes[2], C, start=offset, rate=rate, names=PITCH_CLASSES, title="learned chroma (blank dropped, l2-normalised)"
    )
    if standard_chroma:
        from mirsearch.features.chroma import chroma

        S, srate = chroma(y, sr=sr, feature_rate=rate)
        _pitch_image(axes[3], S, start=offset, rate=srate, names=PITCH_CLASSES, title="standard chroma")
    axes[-1].set_xlabel("time (s)")
    head = title
    if labels is not None:
        head = f"{title}  labels: {' '.join(PITCH_CLASSES[int(k)] for k in labels)}".strip()
    if head:
        fig.suptitle(head, fontsize=10)
    save_figure(fig, out)
    logger.info("wrote %s", out)
    return Path(out)


def plot_history(histories: dict[str, list[dict]], *, out: str | os.PathLike) -> Path:
    """Training curves: per run (name -> history entries) training and validation loss, the validation
    CTC loss and the validation chroma frame accuracy over epochs."""
    fig = _figure(13, 3.6)
    axes = fig.subplots(1, 3)
    for name, hist in histories.items():
        ep = [h["epoch"] for h in hist]
        (line,) = axes[0].plot(ep, [h["train_loss"] for h in hist], ls="--", label=f"{name} train")
        axes[0].plot(ep, [h["val_loss"] for h in hist], color=line.get_color(), label=f"{name} val")
        axes[1].plot(ep, [h["val_ctc"] for h in hist], color=line.get_color(), label=name)
        acc = [h.get("val_chroma_accuracy") for h in hist]
        if any(a is not None for a in acc):
            axes[2].plot(ep, [np.nan if a is None else a for a in acc], color=line.get_color(), label=name)
    axes[0].set_title("loss (own kind)")
    axes[1].set_title("validation CTC loss")
    axes[2].set_title("validation chroma frame accuracy")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    save_figure(fig, out)
    return Path(out)
