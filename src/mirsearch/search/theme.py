"""Theme search: where in a collection of recordings is a (symbolic) melody played?

The theme becomes a chroma sequence at the collection's feature rate (:func:`notes_to_chroma`);
subsequence DTW with the cosine cost compares it, in all 12 cyclic shifts, with every recording in
one kernel call over the concatenated collection (no path crosses a recording boundary). The best
end frames per recording give the occurrences; a neighbourhood around each is suppressed.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from mirsearch.errors import ParameterError
from mirsearch.features.symbolic import notes_to_chroma
from mirsearch.matching.subsequence import best_over_shifts, find_matches, unit_columns
from mirsearch.scores import Theme, read_theme
from mirsearch.search.results import Match

log = logging.getLogger(__name__)


def theme_query(
    theme: Theme, *, feature_rate: float, tempo_bpm: float | None = None, tempo_factor: float = 1.0
) -> np.ndarray:
    """Query chroma (12, N) of a theme at ``feature_rate``, played ``tempo_factor`` times as fast."""
    from mirsearch.features.symbolic import DEFAULT_TEMPO_BPM

    bpm = (tempo_bpm or theme.tempo_bpm or DEFAULT_TEMPO_BPM) * tempo_factor
    return notes_to_chroma(theme, feature_rate=feature_rate, tempo_bpm=bpm)


def search_theme(
    collection,
    theme,
    *,
    top: int = 10,
    per_recording: int = 3,
    features: str = "chroma",
    tempo_bpm: float | None = None,
    tempo_factors=(1.0,),
    transpositions=range(12),
    part: str | int | None = None,
    max_cost: float = np.inf,
) -> list[Match]:
    """Rank the occurrences of a theme in a collection.

    Parameters
    ----------
    collection : Collection
    theme : Theme, str or path-like
        A :class:`Theme`, a note string (``"G G G Eb"``) or a MIDI / MusicXML / kern file.
    top : int >= 1
        Number of matches returned.
    per_recording : int >= 1
        At most this many occurrences per recording.
    features : str
        Database features: ``"chroma"``, ``"cens"`` (chroma smoothed at the same rate) or ``"learned"``.
    tempo_bpm : float, optional
        Assumed tempo of the theme (quarter notes per minute); default: the file's tempo or 100.
        Subsequence DTW absorbs tempo ratios between 0.5 and 2 around it.
    tempo_factors : sequence of float
        Extra global scalings of the query (multiple scaling); the best over all is kept.
    transpositions : iterable of int
        Cyclic chroma shifts tried (semitones the query is transposed up); default all 12.
    part : str or int, optional
        Part to take from a polyphonic score file.
    max_cost : float
        Drop matches costlier than this.

    Returns
    -------
    list of Match
        Best first. ``transposition`` is the shift (0-11) at which the theme matched; ``extra`` holds
        ``tempo_factor`` and the query length in seconds.
    """
    if top < 1 or per_recording < 1:
        raise ParameterError(f"top={top} and per_recording={per_recording} must be >= 1")
    theme = read_theme(theme, part=part)
    shifts = [int(s) % 12 for s in transpositions]
    if not shifts:
        raise ParameterError("transpositions must not be empty")
    t0 = time.perf_counter()
    Y, offsets, recs, rate = collection.database(features)
    reset = np.zeros(Y.shape[0], dtype=np.bool_)
    reset[offsets[:-1]] = True
    best_cost = np.full(Y.shape[0], np.inf)
    best_start = np.zeros(Y.shape[0], dtype=np.int64)
    best_shift = np.zeros(Y.shape[0], dtype=np.int64)
    best_factor = np.ones(Y.shape[0])
    query_seconds = 0.0
    for factor in tempo_factors:
        if not factor > 0:
            raise ParameterError(f"tempo_factors must be > 0, got {factor}")
        Q = unit_columns(theme_query(theme, feature_rate=rate, tempo_bpm=tempo_bpm, tempo_factor=factor))
        cost, start, shift = best_over_shifts(Q, Y, shifts, reset=reset)
        better = cost < best_cost
        best_cost[better] = cost[better]
        best_start[better] = start[better]
        best_shift[better] = shift[better]
        best_factor[better] = factor
        query_seconds = max(query_seconds, Q.shape[0] / rate)
    # rank recordings by their best end frame, then pick occurrences in the most promising ones
    finite = np.where(np.isfinite(best_cost), best_cost, np.inf)
    per_rec_min = np.minimum.reduceat(finite, offsets[:-1])
    order = np.argsort(per_rec_min, kind="stable")
    matches: list[Match] = []
    for i in order[: max(top, 1) * 2 + 5]:
        if not np.isfinite(per_rec_min[i]):
            break
        lo, hi = offsets[i], offsets[i + 1]
        for s, e, c in find_matches(finite[lo:hi], best_start[lo:hi] - lo, top=per_recording, max_cost=max_cost):
            matches.append(
                Match(
                    recording=recs[i].path,
                    recording_id=recs[i].id,
                    start=s / rate,
                    end=(e + 1) / rate,
                    cost=c,
                    transposition=int(best_shift[lo + e]),
                    extra={"tempo_factor": float(best_factor[lo + e])},
                )
            )
    matches.sort(key=lambda m: m.cost)
    log.info(
        "theme %s (%.1f s) over %d recordings (%.1f h): %.3f s",
        theme.name,
        query_seconds,
        len(recs),
        Y.shape[0] / rate / 3600,
        time.perf_counter() - t0,
    )
    return matches[:top]
