"""Finding identification candidates and checking them against a recording's stored fingerprint (arrays in, arrays
out).

The line candidates of the triplet hashes (:func:`match_geometry`, :func:`vote_candidates`, :func:`fit_line`,
:func:`plausible_shift`: the geometry of every shared hash, a vote over (recording, offset), a line fitted to each
candidate's matches) and three measures used by :mod:`mirsearch.search.identify`:

- :func:`peak_overlap`: how many of a recording's peaks a query's peaks meet on a candidate line
  ``t_ref = offset + speed * t_query``, and how far that count stands out of the counts at wrong alignments of
  the same recording (the score of a match);
- :func:`offset_votes`: where in a recording a query at unchanged speed and pitch lies, from every pair of a
  query peak and a recording peak in the same frequency bin (a histogram of their time differences). Under
  loud noise few triplet hashes survive (each needs three peaks), while single peaks still meet: this proposes
  the line that the hashes missed, for the recordings the hashes pointed to;
- :class:`ChangeCheck`: how well the query's spectro-temporal changes (which bands get louder than the others,
  :func:`mirsearch.features.fingerprint.band_changes`), mapped onto a recording along a candidate line, agree
  with the recording's stored change signs, as a standout from the agreement with unrelated music. It uses
  the whole spectrogram, not only the peaks that survive noise.
"""

from __future__ import annotations

import numpy as np

from mirsearch.features import fingerprint as fp
from mirsearch.index.fingerprints import Matches

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


def match_geometry(trip: dict, m: Matches, *, bins_per_octave: int, options) -> dict:
    """Per match: speed, pitch shift (bins), offset (frames); matches outside the search range dropped."""
    q = m.query
    speed = m.dt13 / np.maximum(trip["dt13"][q], 1e-3)
    shift = trip["f1"][q] - m.f1
    offset = m.t1 - speed * trip["t1"][q]
    max_shift = bins_per_octave * (np.log2(1.0 + options.max_speed_change) + options.max_pitch_shift / 12.0)
    ok = (np.abs(np.log(speed)) <= np.log(1.0 + options.max_speed_change)) & (np.abs(shift) <= max_shift)
    return {
        "query": q[ok],
        "rec": m.recording_ids[ok].astype(np.int64),
        "t_ref": m.t1[ok].astype(np.float64),
        "t_query": trip["t1"][q[ok]],
        "f_query": trip["f1"][q[ok]],
        "speed": speed[ok],
        "shift": shift[ok],
        "offset": offset[ok],
    }


def vote_candidates(g: dict, *, bin_frames: float, n: int) -> list[tuple[int, float]]:
    """Top (recording, offset) cells of the vote, neighbouring cells added in."""
    if g["rec"].size == 0:
        return []
    cell = np.floor(g["offset"] / bin_frames).astype(np.int64)
    key = (g["rec"] << 32) + (cell + (1 << 31))
    keys, counts = np.unique(key, return_counts=True)
    smooth = counts.astype(np.float64)
    for d in (-1, 1):
        pos = np.searchsorted(keys, keys + d)
        pos = np.minimum(pos, keys.size - 1)
        smooth += np.where(keys[pos] == keys + d, counts[pos], 0)
    order = np.argsort(-smooth, kind="stable")
    chosen: list[tuple[int, float]] = []
    for k in keys[order]:
        rec, c = int(k >> 32), int(k & 0xFFFFFFFF) - (1 << 31)
        if any(r == rec and abs(c - cc) <= 2 for r, cc in chosen):
            continue
        chosen.append((rec, c))
        if len(chosen) >= n:
            break
    return [(rec, (c + 0.5) * bin_frames) for rec, c in chosen]


def fit_line(g: dict, rec: int, offset: float, *, bin_frames: float, options):
    """Fit ``t_ref = offset + speed * t_query`` to a candidate's matches; returns (score, offset, speed, shift)."""
    mine = g["rec"] == rec
    near = mine & (np.abs(g["offset"] - offset) <= 2.0 * bin_frames)
    if np.count_nonzero(near) < 3:
        return 0.0, offset, 1.0, 0.0
    speed = float(np.median(g["speed"][near]))
    shift = float(np.median(g["shift"][near]))
    off = float(np.median(g["t_ref"][near] - speed * g["t_query"][near]))
    inl = np.zeros(0, bool)
    for _ in range(2):
        resid = g["t_ref"] - (off + speed * g["t_query"])
        inl = (
            mine
            & (np.abs(resid) <= options.time_tolerance)
            & (np.abs(g["shift"] - shift) <= options.freq_tolerance)
            & (np.abs(np.log(g["speed"] / speed)) <= options.speed_tolerance)
        )
        tq, tr = g["t_query"][inl], g["t_ref"][inl]
        if inl.sum() < 4 or np.ptp(tq) < 20:
            break
        speed_fit, off_fit = np.polyfit(tq, tr, 1)
        if abs(np.log(speed_fit)) > np.log(1.0 + options.max_speed_change):
            break
        speed, off = float(speed_fit), float(off_fit)
        shift = float(np.median(g["shift"][inl]))
    # distinct query anchor frames on the line: the peaks of one chord count once (consonant intervals make
    # many triplets of one chord, which inflated the scores of unrelated music)
    score = float(np.unique(np.round(g["t_query"][inl])).size)
    return score, off, speed, shift


def plausible_shift(speed: float, shift_octaves: float, options) -> bool:
    """A pitch shift between none (time-stretch) and the speed's (resampling), widened by ``max_pitch_shift``."""
    implied = 12.0 * np.log2(speed)
    semitones = 12.0 * shift_octaves
    return min(0.0, implied) - options.max_pitch_shift <= semitones <= max(0.0, implied) + options.max_pitch_shift


def _signed_correlation(changes: np.ndarray, signs: np.ndarray) -> float:
    """Pearson correlation of real-valued changes with stored signs over the frames whose signs are known."""
    n = min(changes.shape[1], signs.shape[1])
    known = np.any(signs[:, :n] != 0, axis=0)
    if np.count_nonzero(known) < 8:
        return float("nan")
    x = changes[:, :n][:, known].astype(np.float64)
    y = signs[:, :n][:, known].astype(np.float64)
    x -= x.mean()
    y -= y.mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else float("nan")


def change_correlation(signs: np.ndarray, L: np.ndarray, *, offset: float, speed: float, shift: float,
                       config: dict) -> float:  # fmt: skip
    """Agreement of a query's band changes, mapped onto a recording along a line, with the recording's signs.

    Parameters
    ----------
    signs : np.ndarray, shape (n_bands, n_change_frames), int8
        The recording's stored change signs (:func:`mirsearch.features.fingerprint.split_stored`).
    L : np.ndarray, shape (n_bins, n_frames)
        The query's log spectrogram (:func:`mirsearch.features.fingerprint.log_spectrogram`).
    offset, speed, shift : float
        The line ``t_ref = offset + speed * t_query`` (frames) and the pitch shift ``f_query - f_ref`` (bins).
    config : dict
        The fingerprint configuration.

    Returns
    -------
    float
        Correlation in [-1, 1] of the query's changes, resampled on the recording's grid, with the signs; NaN when
        fewer than 8 change frames with known signs overlap.
    """
    hop = int(config["change_hop"])
    k0 = max(int(np.ceil(offset / hop)), 0)
    k1 = min(int(np.floor((offset + speed * (L.shape[1] - 1)) / hop)), signs.shape[1])
    if k1 - k0 < 9:
        return float("nan")
    # linear interpolation commutes with the block means: shift in frequency, pool into bands, then warp in time
    L = np.asarray(L, np.float32)
    n_bins = L.shape[0]
    f = np.clip(np.arange(n_bins) + shift, 0, n_bins - 1)
    i = np.minimum(np.floor(f).astype(np.int64), n_bins - 2)
    w = (f - i)[:, None].astype(np.float32)
    shifted = L[i] * (1 - w) + L[i + 1] * w
    fb = int(config["change_band_bins"])
    bands = shifted[: (n_bins // fb) * fb].reshape(n_bins // fb, fb, -1).mean(axis=1)
    t = np.clip((np.arange(k0 * hop, k1 * hop) - offset) / speed, 0, L.shape[1] - 1)
    j = np.minimum(np.floor(t).astype(np.int64), L.shape[1] - 2)
    u = (t - j).astype(np.float32)
    warped = bands[:, j] * (1 - u) + bands[:, j + 1] * u
    changes, _ = fp.band_changes(fp.band_energies(warped, config={**config, "change_band_bins": 1}))
    return _signed_correlation(changes[:, 1:], signs[:, k0 + 1 : k1])


class StoredFingerprints:
    """Recordings' stored fingerprint arrays, each read once: their peaks, and their change signs when asked.

    Parameters
    ----------
    reference : callable
        ``reference(recording_id) -> np.ndarray (3, n)``: a recording's stored fingerprint array.
    config : dict
        The fingerprint configuration.
    """

    def __init__(self, reference, config: dict):
        self.reference = reference
        self.config = config
        self._raw: dict = {}
        self._peaks: dict = {}
        self._signs: dict = {}

    def peaks(self, rec: int) -> np.ndarray:
        """The recording's peaks ``(3, n_peaks)``."""
        if rec not in self._peaks:
            self._raw[rec] = np.asarray(self.reference(rec))
            self._peaks[rec] = fp.peaks_of(self._raw[rec])
        return self._peaks[rec]

    def signs(self, rec: int) -> np.ndarray:
        """The recording's change signs ``(n_bands, n_change_frames)`` (none stored: ``n_change_frames == 0``)."""
        if rec not in self._signs:
            self.peaks(rec)
            self._signs[rec] = fp.split_stored(self._raw[rec], config=self.config)[1]
        return self._signs[rec]


class ChangeCheck:
    """The change check of one query: its log spectrogram and the null of its agreement with unrelated music.

    The null: the query's changes (unchanged speed and pitch) against ``windows`` evenly spaced windows of each
    of ``null_signs`` (recordings chosen without regard to the query); a candidate's standout is
    ``(correlation - mean(null)) / std(null)``.

    Parameters
    ----------
    L : np.ndarray, shape (n_bins, n_frames)
        The query's log spectrogram.
    config : dict
        The fingerprint configuration.
    null_signs : list of np.ndarray, or a callable returning one
        Stored change signs of some recordings of the collection (a callable is called when a candidate first needs
        the check: a query whose candidates all pass by their peaks reads none).
    windows : int >= 1
        Windows per recording in the null.
    min_null : int
        Fewest null correlations for the check to be made (else :meth:`standout` is NaN).
    """

    def __init__(self, L: np.ndarray, *, config: dict, null_signs: list, windows: int = 4, min_null: int = 8):
        self.L = np.asarray(L, np.float32)
        self.config = config
        self.null_signs, self.windows, self.min_null = null_signs, windows, min_null
        self._null: tuple | None = None  # (mean, std), computed when a candidate first needs it

    @property
    def null(self) -> tuple[float, float]:
        """Mean and standard deviation of the null correlations (NaN when fewer than ``min_null``)."""
        if self._null is None:
            changes, _ = fp.band_changes(fp.band_energies(self.L, config=self.config))
            m = changes.shape[1]
            values = []
            for S in self.null_signs() if callable(self.null_signs) else self.null_signs:
                if S.shape[1] < m + 1:
                    continue
                for a in np.linspace(0, S.shape[1] - m, self.windows).astype(np.int64):
                    values.append(_signed_correlation(changes[:, 1:], S[:, a + 1 : a + m]))
            values = np.asarray([v for v in values if np.isfinite(v)])
            ok = values.size >= self.min_null and values.std() > 0
            self._null = (float(values.mean()), float(values.std())) if ok else (float("nan"), float("nan"))
        return self._null

    def standout(self, signs: np.ndarray, *, offset: float, speed: float, shift: float) -> float:
        """Standout of the agreement along a line (:func:`change_correlation`); NaN when it cannot be measured."""
        if signs.shape[1] == 0:
            return float("nan")
        mean, std = self.null
        if not np.isfinite(mean):
            return float("nan")
        r = change_correlation(signs, self.L, offset=offset, speed=speed, shift=shift, config=self.config)
        return (r - mean) / std


def line_answer(stored: StoredFingerprints, changes, rec: int, line: tuple, score: float, needed: float, options):
    """The change standout of a line ``(offset, speed, shift)`` with peak standout ``score`` (NaN when not checked),
    and whether the line is answered: by its peaks (``score >= needed``) unless its changes veto it
    (``options.change_veto``, below ``options.veto_below``), else by peaks and changes together
    (``options.change_floor``, ``options.change_min``; options: :class:`mirsearch.search.identify.IdentifyOptions`).

    ``changes``: the query's :class:`ChangeCheck`, or None (the peaks alone decide); ``stored``: the recordings'
    :class:`StoredFingerprints`.
    """
    if changes is None:
        return float("nan"), score >= needed
    if score >= needed:
        if score >= options.veto_below or not np.isfinite(options.change_veto):
            return float("nan"), True
        z = changes.standout(stored.signs(rec), offset=line[0], speed=line[1], shift=line[2])
        return z, not (np.isfinite(z) and z < options.change_veto)
    if score < options.change_floor:
        return float("nan"), False
    z = changes.standout(stored.signs(rec), offset=line[0], speed=line[1], shift=line[2])
    return z, bool(np.isfinite(z) and score + z >= options.change_min)


__all__ = [
    "NULL_COUNT",
    "NULL_SHIFTS",
    "ChangeCheck",
    "StoredFingerprints",
    "change_correlation",
    "fit_line",
    "line_answer",
    "match_geometry",
    "offset_votes",
    "peak_overlap",
    "plausible_shift",
    "vote_candidates",
]
