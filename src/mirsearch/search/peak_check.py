"""Checking identification candidates against a recording's stored peaks (arrays in, arrays out).

Two measures used by :mod:`mirsearch.search.identify`:

- :func:`peak_overlap`: how many of a recording's peaks a query's peaks meet on a candidate line
  ``t_ref = offset + speed * t_query``, and how far that count stands out of the counts at wrong alignments of
  the same recording (the score of a match);
- :func:`offset_votes`: where in a recording a query at unchanged speed and pitch lies, from every pair of a
  query peak and a recording peak in the same frequency bin (a histogram of their time differences). Under
  loud noise few triplet hashes survive (each needs three peaks), while single peaks still meet: this proposes
  the line that the hashes missed, for the recordings the hashes pointed to.
"""

from __future__ import annotations

import numpy as np

#: shifts (s) of the wrong alignments whose peak overlaps are the null of a candidate's overlap
NULL_SHIFTS = 0.37 * np.arange(1, 17)
NULL_COUNT = 16  # wrong alignments used (the smallest shifts, either side, that fit in the recording)


def _null_shifts(start: float, span: float, end: float, rate: float) -> np.ndarray:
    """The :data:`NULL_COUNT` smallest shifts (frames, either side) whose window ``start + d .. + span`` lies in
    ``0 .. end``; fewer when the recording is short."""
    d = np.concatenate([NULL_SHIFTS, -NULL_SHIFTS]) * rate
    fits = (start + d >= 0) & (start + d + span <= end)
    d = d[fits]
    return d[np.argsort(np.abs(d), kind="stable")][:NULL_COUNT]


def peak_overlap(
    reference: np.ndarray,
    query: np.ndarray,
    *,
    offset: float,
    speed: float,
    shift: float,
    span: float,
    rate: float,
    tolerance: tuple = (1.5, 0.7),
) -> tuple[int, float]:
    """How many of a recording's peaks a query's peaks meet on a candidate line, and how far that stands out.

    The query's peaks are mapped to ``t = offset + speed * t_query``, ``f = f_query - shift``; a reference peak
    in ``offset .. offset + span`` counts when a mapped query peak lies within ``tolerance`` (frames, bins,
    Chebyshev). The same count at up to :data:`NULL_COUNT` wrong alignments (the reference window and the
    query moved together by :data:`NULL_SHIFTS` along the recording) is the null.

    Parameters
    ----------
    reference : np.ndarray, shape (3, n_ref)
        The recording's stored peaks (frames, bins, prominence), sorted by time.
    query : np.ndarray, shape (3, n_query)
        The query's peaks.
    offset, span : float
        Start and length of the candidate's window in the recording (frames).
    speed, shift : float
        The candidate's speed and pitch shift (log-frequency bins).
    rate : float
        Frames per second.
    tolerance : (float, float)
        Frames and bins.

    Returns
    -------
    matched : int
        Reference peaks met at the candidate's alignment.
    standout : float
        ``(matched - mean(null)) / (std(null) + 1)``; 0 when there is no null (a recording shorter than the
        query plus 0.37 s).
    """
    from scipy.spatial import cKDTree

    rt, rf = np.asarray(reference[0], np.float64), np.asarray(reference[1], np.float64)
    if rt.size == 0 or query.shape[1] == 0:
        return 0, 0.0
    tt, tf = tolerance
    tree = cKDTree(np.column_stack([(offset + speed * query[0]) / tt, (query[1] - shift) / tf]))
    shifts = np.concatenate([[0.0], _null_shifts(offset, span, float(rt[-1]) + 1.0, rate)])
    lo = np.searchsorted(rt, offset + shifts)
    hi = np.searchsorted(rt, offset + shifts + span)
    seg = np.repeat(np.arange(shifts.size), hi - lo)
    idx = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)])
    dist, _ = tree.query(np.column_stack([(rt[idx] - shifts[seg]) / tt, rf[idx] / tf]), p=np.inf,
                         distance_upper_bound=1.0 + 1e-9)  # fmt: skip
    counts = np.bincount(seg, weights=np.isfinite(dist), minlength=shifts.size)
    if shifts.size < 2:
        return int(counts[0]), 0.0
    null = counts[1:]
    return int(counts[0]), float((counts[0] - null.mean()) / (null.std() + 1.0))


def offset_votes(reference: np.ndarray, query: np.ndarray, *, tolerance: tuple = (1.5, 0.7), n: int = 2) -> np.ndarray:
    """The likeliest offsets of a query in a recording at unchanged speed and pitch.

    Every pair of a query peak and a reference peak within ``tolerance[1]`` bins votes for the offset
    ``t_ref - t_query``; votes are counted in cells of ``tolerance[0]`` frames (a cell and its two neighbours
    together), and the ``n`` best cells at least three cells apart are returned, each as the median of the votes
    in it and its neighbours.

    Parameters
    ----------
    reference : np.ndarray, shape (3, n_ref)
        The recording's peaks (frames, bins, ...).
    query : np.ndarray, shape (3, n_query)
        The query's peaks (frames from its start, bins, ...).
    tolerance : (float > 0, float > 0)
        Cell width (frames) and largest frequency difference (bins).
    n : int >= 1
        Offsets returned at most.

    Returns
    -------
    offsets : np.ndarray, shape (k,), float64, k <= n
        Offsets (frames) of the query's start in the recording, most votes first.
    """
    rf = np.asarray(reference[1], np.float64)
    if rf.size == 0 or query.shape[1] == 0:
        return np.zeros(0)
    order = np.argsort(rf, kind="stable")
    rf, rt = rf[order], np.asarray(reference[0], np.float64)[order]
    qt, qf = np.asarray(query[0], np.float64), np.asarray(query[1], np.float64)
    lo = np.searchsorted(rf, qf - tolerance[1], side="left")
    hi = np.searchsorted(rf, qf + tolerance[1], side="right")
    counts = hi - lo
    pos = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
    votes = rt[pos] - np.repeat(qt, counts)
    if votes.size == 0:
        return np.zeros(0)
    cell = np.floor(votes / tolerance[0]).astype(np.int64)
    cells, per_cell = np.unique(cell, return_counts=True)
    smooth = per_cell.astype(np.float64)
    for d in (-1, 1):
        at = np.minimum(np.searchsorted(cells, cells + d), cells.size - 1)
        smooth += np.where(cells[at] == cells + d, per_cell[at], 0)
    chosen: list[int] = []
    for c in cells[np.argsort(-smooth, kind="stable")]:
        if all(abs(c - b) >= 3 for b in chosen):
            chosen.append(int(c))
            if len(chosen) >= n:
                break
    return np.array([float(np.median(votes[np.abs(cell - c) <= 1])) for c in chosen])


__all__ = ["NULL_COUNT", "NULL_SHIFTS", "offset_votes", "peak_overlap"]
