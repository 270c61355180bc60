"""Every figure mirsearch draws (matplotlib, Agg canvas; nothing is ever shown, nothing else draws).

- :mod:`mirsearch.viz.figures`: chromagrams, cost matrices and warping paths, alignments, matching
  curves, version lists;
- :mod:`mirsearch.viz.training`: a chroma model's output for a recording and training curves.

matplotlib is imported only when a figure is drawn.
"""

from mirsearch.viz.figures import (
    AlignmentView,
    plot_alignment,
    plot_chromagrams,
    plot_cost_path,
    plot_matching_curve,
    plot_versions,
    save_figure,
)
from mirsearch.viz.training import plot_history, plot_output

__all__ = [
    "AlignmentView",
    "plot_alignment",
    "plot_chromagrams",
    "plot_cost_path",
    "plot_history",
    "plot_matching_curve",
    "plot_output",
    "plot_versions",
    "save_figure",
]
