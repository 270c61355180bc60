"""Music synchronisation: time maps, audio-to-audio and score-to-audio alignment.

- :mod:`mirsearch.sync.timemap`: :class:`TimeMap`, a strictly monotonic map between two time axes;
- :mod:`mirsearch.sync.audio`: :func:`align_audio` (two recordings), the options and checks both share;
- :mod:`mirsearch.sync.score`: :func:`align_score` (a score and a recording; the score is read by
  :func:`mirsearch.scores.load_score_notes`).

The DTW kernels are in :mod:`mirsearch.matching.sync`.
"""

from mirsearch.scores import DEFAULT_BPM, ScoreNotes, load_score_notes
from mirsearch.sync.audio import (
    MAX_COST_RATIO,
    MAX_COST_RATIO_SCORE,
    MAX_TEMPO_RATIO,
    TRIM_MARGIN,
    TRIM_THRESHOLD_DB,
    AlignmentDetails,
    AlignOptions,
    active_span,
    align_audio,
)
from mirsearch.sync.score import ScoreAlignment, align_score
from mirsearch.sync.timemap import TimeMap

__all__ = [
    "DEFAULT_BPM",
    "MAX_COST_RATIO",
    "MAX_COST_RATIO_SCORE",
    "MAX_TEMPO_RATIO",
    "TRIM_MARGIN",
    "TRIM_THRESHOLD_DB",
    "AlignOptions",
    "AlignmentDetails",
    "ScoreAlignment",
    "ScoreNotes",
    "TimeMap",
    "active_span",
    "align_audio",
    "align_score",
    "load_score_notes",
]
