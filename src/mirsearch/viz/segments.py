"""Speech / music segments drawn over a spectrogram (or a waveform envelope for long files)."""

from __future__ import annotations

import os

import numpy as np

#: colours of the labels of :data:`mirsearch.describe.segment.LABELS`
COLOURS = {"noise": "#bbbbbb", "speech": "#1f77b4", "music": "#ff7f0e", "speech+music": "#2ca02c"}
#: longest audio drawn with a spectrogram (seconds); longer files get the band timeline only
MAX_SPECTROGRAM_SECONDS = 1800.0


def plot_segments(segments, *, duration: float, L: np.ndarray | None = None, rate: float = 100.0, title: str = ""):
    """Figure with the labelled bands under an optional log-mel spectrogram.

    Parameters
    ----------
    segments : sequence of Segment
        ``start``, ``end`` (seconds) and ``label``.
    duration : float
        Seconds shown.
    L : np.ndarray, shape (n_mels, n_frames), optional
        Log-mel in dB at ``rate`` frames per second.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    fig = Figure(figsize=(11, 4.2 if L is not None else 1.8), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True, height_ratios=[4, 1]) if L is not None else [None, fig.subplots(1, 1)]
    if L is not None:
        ax = axes[0]
        ax.imshow(L, origin="lower", aspect="auto", cmap="magma", extent=(0, L.shape[1] / rate, 0, L.shape[0]),
                  vmin=float(np.max(L)) - 80, vmax=float(np.max(L)))  # fmt: skip
        ax.set_ylabel("mel band")
        for s in segments:
            ax.axvline(s.start, color="white", lw=0.6, alpha=0.6)
    band = axes[1]
    for s in segments:
        band.add_patch(Rectangle((s.start, 0), s.end - s.start, 1, color=COLOURS.get(s.label, "k"), lw=0))
    band.set_xlim(0, max(duration, 1e-3))
    band.set_ylim(0, 1)
    band.set_yticks([])
    band.set_xlabel("time (s)")
    band.legend(handles=[Patch(color=c, label=k) for k, c in COLOURS.items()], loc="upper center",
                bbox_to_anchor=(0.5, -0.9 if L is None else -0.6), ncol=4, frameon=False, fontsize=8)  # fmt: skip
    (axes[0] or band).set_title(title, fontsize=9)
    return fig


def plot_segments_file(result, out: str | os.PathLike) -> None:
    """Draw a :class:`~mirsearch.describe.segment.SegmentResult` to ``out`` (PNG; spectrogram if not too long)."""
    from mirsearch.viz.figures import save_figure

    L = None
    if result.duration <= MAX_SPECTROGRAM_SECONDS:
        from mirsearch.audio import load_audio
        from mirsearch.errors import InputError
        from mirsearch.features.segment_features import ANALYSIS_SR, log_mel

        try:
            y, _ = load_audio(result.path, sr=ANALYSIS_SR, min_duration=0.0)
            L = log_mel(y)
        except InputError:  # silent audio: the bands alone
            L = None
    title = f"{os.path.basename(result.path)}: {len(result.segments)} segments"
    save_figure(plot_segments(result.segments, duration=result.duration, L=L, title=title), out)
