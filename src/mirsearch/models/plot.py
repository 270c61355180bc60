"""Figures of a trained chroma model: its output for a recording, and training curves.

Writes image files with matplotlib's Agg backend; never opens a window.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mirsearch.features.learned import get_bundle, learned_log_probs, postprocess

    b = get_bundle(bundle)
    log_probs, rate = learned_log_probs(y, sr=sr, bundle=b)
    P = np.exp(log_probs)
    C = postprocess(log_probs)
    n = P.shape[1]
    extent = (offset, offset + n / rate, -0.5, 12.5)
    panels = 4 if standard_chroma else 3
    fig, axes = plt.subplots(
        panels, 1, figsize=(10, 2.2 * panels), sharex=True, gridspec_kw={"height_ratios": [3, 1, 3, 3][:panels]}
    )
    ax = axes[0]
    ax.imshow(P, origin="lower", aspect="auto", extent=extent, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(13), list(PITCH_CLASSES) + ["ε"])
    ax.set_title("network output: chroma + blank probabilities")
    ax = axes[1]
    t = offset + np.arange(n) / rate
    ax.plot(t, P[12], color="tab:red", lw=1)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("P(blank)")
    ax = axes[2]
    ax.imshow(
        C,
        origin="lower",
        aspect="auto",
        extent=(offset, offset + n / rate, -0.5, 11.5),
        cmap="gray_r",
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    ax.set_yticks(range(12), PITCH_CLASSES)
    ax.set_title("learned chroma (blank dropped, l2-normalised)")
    if standard_chroma:
        from mirsearch.features.chroma import chroma

        S, srate = chroma(y, sr=sr, feature_rate=rate)
        ax = axes[3]
        ax.imshow(
            S,
            origin="lower",
            aspect="auto",
            extent=(offset, offset + S.shape[1] / srate, -0.5, 11.5),
            cmap="gray_r",
            vmin=0,
            vmax=1,
            interpolation="nearest",
        )
        ax.set_yticks(range(12), PITCH_CLASSES)
        ax.set_title("standard chroma")
    axes[-1].set_xlabel("time (s)")
    head = title
    if labels is not None:
        head = f"{title}  labels: {' '.join(PITCH_CLASSES[int(k)] for k in labels)}".strip()
    if head:
        fig.suptitle(head, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    logger.info("wrote %s", out)
    return out


def plot_history(histories: dict[str, list[dict]], *, out: str | os.PathLike) -> Path:
    """Training curves: per run (name -> history entries) training and validation loss, the validation
    CTC loss and the validation chroma frame accuracy over epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
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
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
