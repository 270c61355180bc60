"""Matching kernels: subsequence DTW (theme and audio search), DTW and synchronisation."""

from mirsearch.matching.subsequence import (
    STEPS,
    WEIGHTS,
    SubsequenceDTWResult,
    accumulated_cost,
    backtrack,
    cosine_cost,
    find_matches,
    subsequence_dtw,
    subsequence_dtw_shifts,
)

__all__ = [
    "STEPS",
    "WEIGHTS",
    "SubsequenceDTWResult",
    "accumulated_cost",
    "backtrack",
    "cosine_cost",
    "find_matches",
    "subsequence_dtw",
    "subsequence_dtw_shifts",
]
