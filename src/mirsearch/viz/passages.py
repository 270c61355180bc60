"""Figures of passage search: the matching curve of the best match's recording, with the matches marked."""

from __future__ import annotations

import os

from mirsearch.search.audio import PassageResult
from mirsearch.viz.figures import plot_matching_curve


def plot_passages(result: PassageResult, *, out: str | os.PathLike | None = None):
    """Draw the matching curve of the best match's recording (``result`` needs ``PassageOptions(curves=True)``).

    Returns the figure, or None when there is no match.
    """
    if not result.matches:
        return None
    best = result.matches[0]
    curve = next(c for c in result.curves if c.recording_id == best.recording_id)
    spans = [(m.start, m.end, m.cost) for m in result.matches if m.recording_id == best.recording_id]
    return plot_matching_curve(
        curve.cost,
        feature_rate=curve.feature_rate,
        matches=spans,
        title=f"matching curve: {os.path.basename(best.recording)}",
        out=out,
    )


__all__ = ["plot_passages"]
