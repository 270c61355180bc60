"""Every occurrence of a theme in a collection of scores: geometric point-set matching, in polyphony.

A score is a set of points ``(onset, pitch)`` (onsets in integer ticks, all parts together); so is the query.
An *occurrence* is a translation ``(dt, dp)`` of the query (``dt`` ticks later, ``dp`` semitones higher) under
which at least ``need`` of its ``m`` points are points of the score, in any parts (Ukkonen, Lemström and
Mäkinen 2003: P1 when ``need == m``, exact occurrences; P2 when fewer suffice, partial occurrences). Voices
need not be separated: a theme whose notes pass from one part to another is found like any other.

Two stages:

1. **Proposals** from the pair index of :mod:`mirsearch.index.score_store` (note pairs ``(onset difference,
   interval)`` within a few quarter notes, in any parts). When ``e = m - need`` query notes may be missing, any
   ``e + 1`` query note pairs with no note in common contain at least one pair whose both notes are matched (the
   ``e`` missing notes break at most ``e`` disjoint pairs): the rarest such pairs are looked up and each posting
   proposes a translation. A query pair the index cannot hold (too far apart in time or pitch) is replaced by a
   single query note, whose translations are every note of the collection (the exhaustive case).
2. **Verification** of each proposed translation (numba): the query's points are looked up by binary search in
   the score's sorted points; the translation is kept when at least ``need`` are found. The search is therefore
   exactly the brute-force P1 / P2 answer (a test checks it), just faster.

Time-scaled occurrences (augmentation, diminution) are found by searching the query with its onsets scaled
(``time_scales``); inversion mirrors its pitches about the first note. Overlapping occurrences that share at
least half of their matched notes with a better one are dropped (two entries of a subject in different voices
share no notes and are both kept).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numba
import numpy as np

from mirsearch.errors import ParameterError
from mirsearch.index.score_store import PackedScores
from mirsearch.search.results import signed_semitones

log = logging.getLogger(__name__)

#: share of a better occurrence's matched notes above which an occurrence is dropped as its duplicate
DUPLICATE_OVERLAP = 0.5
#: most translations verified per query variant before the search refuses (a far too permissive query)
MAX_CANDIDATES = 50_000_000


@dataclass(frozen=True)
class ScoreSearchOptions:
    """Options of :func:`search_scores`.

    Attributes
    ----------
    min_share : float in (0, 1]
        Share of the query's notes an occurrence must match (1: exact occurrences only).
    max_errors : int or None
        Alternatively, how many query notes may be missing (overrides ``min_share``).
    transpose : bool
        Any transposition (True) or the notated pitch only.
    time_scales : tuple of float
        Onset scalings of the query to search (1: as written; 2: augmentation; 0.5: diminution).
    inversion : bool
        Also search the query mirrored about its first note's pitch.
    max_missing : int or None
        Of the query notes an occurrence does not match, how many may have no score note at their onset within
        ``pitch_tolerance`` semitones (None: any; 0: every deviation is a changed pitch, none a hole).
    pitch_tolerance : int
        Semitones a changed note may differ by (for ``max_missing``).
    partial_parts : int or None
        Most parts the matched notes of a partial occurrence may lie in (None: any; exact occurrences may always
        pass from part to part).
    changed_weight : float in [0, 1)
        What an unmatched query note with a score note at its onset within ``pitch_tolerance`` semitones (a
        changed pitch) counts for in the share: the occurrence's score is ``(matched + changed_weight * changed)
        / m`` and must reach ``min_share`` (0: only matched notes count, the P2 share).
    limit : int or None
        Most occurrences returned (best first); None: all.
    """

    min_share: float = 1.0
    max_errors: int | None = None
    transpose: bool = True
    time_scales: tuple[float, ...] = (1.0,)
    inversion: bool = False
    max_missing: int | None = None
    pitch_tolerance: int = 2
    partial_parts: int | None = None
    changed_weight: float = 0.0
    limit: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.min_share <= 1.0:
            raise ParameterError(f"min_share={self.min_share!r} must be in (0, 1]")
        if self.max_errors is not None and self.max_errors < 0:
            raise ParameterError(f"max_errors={self.max_errors!r} must be >= 0")
        if self.max_missing is not None and self.max_missing < 0:
            raise ParameterError(f"max_missing={self.max_missing!r} must be >= 0")
        if not 0.0 <= self.changed_weight < 1.0:
            raise ParameterError(f"changed_weight={self.changed_weight!r} must be in [0, 1)")
        if not 0 <= self.pitch_tolerance <= 12:
            raise ParameterError(f"pitch_tolerance={self.pitch_tolerance!r} must be 0..12 semitones")
        if not self.time_scales or any(not 0.05 <= s <= 20 for s in self.time_scales):
            raise ParameterError(f"time_scales={self.time_scales!r} must be factors between 0.05 and 20")

    def need(self, m: int) -> int:
        """Query notes an occurrence of an ``m``-note query must match (at least 2, at most ``m``)."""
        if self.max_errors is not None:
            need = m - self.max_errors
        else:  # matched + w * (m - matched) >= share * m
            w = self.changed_weight
            need = int(np.ceil((self.min_share - w) / (1.0 - w) * m - 1e-9))
        return int(min(m, max(2, need)))


@dataclass
class ScoreMatch:
    """One occurrence of a theme in a score.

    Attributes
    ----------
    recording : str
        The score file.
    recording_id : int
        Its id in the collection's score store.
    start_quarter, end_quarter : float
        Span in quarter notes from the score's first note (the query's first onset and last offset, moved).
    measure : int
        Measure number (as written) of the first matched note.
    part : str
        The part holding most of the matched notes (``extra["parts"]``: every part involved).
    start, end : float
        The span in seconds at the score's tempo (first metronome mark, else 100 quarters per minute; MIDI:
        its own).
    transposition : int
        Pitch of the score relative to the query, -6..+5 semitones (``extra["semitones"]``: the exact shift).
    score : float
        Share of the query's notes matched (1: every note).
    """

    recording: str
    recording_id: int
    start_quarter: float
    end_quarter: float
    measure: int
    part: str
    start: float
    end: float
    transposition: int
    score: float
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {"recording": self.recording, "recording_id": self.recording_id, "kind": "score"}
        d.update(start_quarter=round(self.start_quarter, 4), end_quarter=round(self.end_quarter, 4))
        d.update(measure=self.measure, part=self.part, start=round(self.start, 3), end=round(self.end, 3))
        d.update(transposition=self.transposition, score=round(self.score, 4))
        d["cost"] = round(1.0 - self.score, 4)  # as other tasks' matches (0: every note), for the export formats
        d.update(self.extra)
        return d


# -- the query ------------------------------------------------------------------------------------------------
def query_points(theme, *, ticks_per_quarter: int, time_scale: float = 1.0, inversion: bool = False):
    """The query's points: onsets (ticks from its first onset, scaled) and pitches, sorted by onset.

    Returns
    -------
    t : np.ndarray, shape (m,), int64
    p : np.ndarray, shape (m,), int64
    duration : int
        Ticks from the first onset to the last offset (scaled).
    """
    notes = sorted(theme.notes, key=lambda n: (n.onset, n.pitch))
    if len(notes) < 2:
        raise ParameterError(f"{theme.name}: a score search needs a theme of 2 notes or more")
    on = np.array([n.onset for n in notes], dtype=np.float64)
    off = np.array([n.onset + n.duration for n in notes], dtype=np.float64)
    t = np.round((on - on[0]) * time_scale * ticks_per_quarter).astype(np.int64)
    p = np.array([n.pitch for n in notes], dtype=np.int64)
    if inversion:
        p = 2 * p[0] - p
    duration = int(round((off.max() - on[0]) * time_scale * ticks_per_quarter))
    return t, p, duration


# -- stage 1: proposals ---------------------------------------------------------------------------------------
def _posting_range(packed: PackedScores, key: int) -> tuple[int, int]:
    k = int(np.searchsorted(packed.pair_keys, key))
    if k < packed.pair_keys.size and packed.pair_keys[k] == key:
        return int(packed.pair_starts[k]), int(packed.pair_starts[k + 1])
    return 0, 0


#: more query notes joined to each chosen pair (their postings intersected: fewer translations to verify)
EXTRA_NOTES = 2


def _pair_ranges(packed: PackedScores, t: np.ndarray, p: np.ndarray) -> dict:
    """``{(i, j): (lo, hi)}``: posting range of every query pair ``i < j`` the pair index can hold."""
    out = {}
    for i in range(t.size):
        for j in range(i + 1, t.size):
            dt, dp = int(t[j] - t[i]), int(p[j] - p[i])
            if 0 < dt <= packed.pair_window and abs(dp) <= packed.pair_max_interval:
                out[i, j] = _posting_range(packed, dt * 64 + dp + 32)
    return out


def _elements(packed: PackedScores, t: np.ndarray, p: np.ndarray, errors: int) -> list:
    """``errors + 1`` disjoint groups of query notes, each ``(anchor i, posting ranges)``.

    A group is a pair ``(i, j)`` with the fewest postings, joined by up to :data:`EXTRA_NOTES` further notes
    ``k > i`` (their pairs ``(i, k)``), or a single note (no ranges: every note of the collection). A translation
    matching every note of a group starts a pair of each of its ranges at its anchor row; the ``errors`` missing
    notes can break at most ``errors`` of the disjoint groups.
    """
    ranges = _pair_ranges(packed, t, p)
    pairs = sorted(ranges, key=lambda ij: ranges[ij][1] - ranges[ij][0])
    used: set[int] = set()
    chosen: list[tuple[int, list]] = []
    max_pairs = min(errors + 1, t.size - errors - 1)  # room for single notes when pairs alone cannot cover
    for i, j in pairs:
        if len(chosen) == max_pairs:
            break
        if i not in used and j not in used:
            used.update((i, j))
            chosen.append((i, [ranges[i, j]]))
    for i in range(t.size):  # not enough pairs: single notes
        if len(chosen) == errors + 1:
            break
        if i not in used:
            used.add(i)
            chosen.append((i, []))
    for i, group in chosen:  # the notes left over narrow the pairs down
        if not group:
            continue
        extra = sorted((k for k in range(i + 1, t.size) if k not in used and (i, k) in ranges),
                       key=lambda k: ranges[i, k][1] - ranges[i, k][0])[:EXTRA_NOTES]  # fmt: skip
        used.update(extra)
        group.extend(ranges[i, k] for k in extra)
    return chosen


def _anchor_rows(packed: PackedScores, group: list) -> np.ndarray:
    """Rows beginning a pair of every range of ``group`` (sorted postings intersected); all rows if empty."""
    if not group:
        return np.arange(int(packed.offsets[-1]))
    group = sorted(group, key=lambda r: r[1] - r[0])
    rows = np.asarray(packed.postings[group[0][0] : group[0][1]], dtype=np.int64)
    for lo, hi in group[1:]:
        if rows.size == 0:
            break
        other = packed.postings[lo:hi]
        if other.size == 0:
            return other[:0].astype(np.int64)
        pos = np.searchsorted(other, rows)
        rows = rows[(pos < other.size) & (other[np.minimum(pos, other.size - 1)] == rows)]
    return rows


def propose(packed: PackedScores, t: np.ndarray, p: np.ndarray, *, errors: int, transpose: bool):
    """Translations that may place ``m - errors`` query points on score points (a superset of them).

    Returns
    -------
    score, dt, dp : np.ndarray, int64
        Unique proposals: score index in the pack, onset shift (ticks) and pitch shift (semitones).
    """
    rows_tick, rows_pitch, rows_score = packed.column("tick"), packed.column("pitch"), packed.column("score")
    parts = []
    total = 0
    for i, group in _elements(packed, t, p, errors):
        rows = _anchor_rows(packed, group)
        total += rows.size
        if total > MAX_CANDIDATES:
            raise ParameterError(f"the query proposes over {MAX_CANDIDATES} translations; raise min_share")
        dp = rows_pitch[rows] - p[i]
        keep = dp == 0 if not transpose else slice(None)
        rows = rows[keep]
        parts.append(_encode(rows_score[rows], rows_tick[rows] - t[i], dp[keep]))
    codes = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    if len(parts) > 1:  # one translation proposed by several elements is verified once
        codes.sort()
        codes = codes[np.r_[True, codes[1:] != codes[:-1]]]
    return _decode(codes)


_DT_BITS, _DP_BITS = 32, 9


def _encode(score: np.ndarray, dt: np.ndarray, dp: np.ndarray) -> np.ndarray:
    return (score << (_DT_BITS + _DP_BITS)) | ((dt + (1 << (_DT_BITS - 1))) << _DP_BITS) | (dp + 256)


def _decode(codes: np.ndarray):
    score = codes >> (_DT_BITS + _DP_BITS)
    dt = ((codes >> _DP_BITS) & ((1 << _DT_BITS) - 1)) - (1 << (_DT_BITS - 1))
    dp = (codes & ((1 << _DP_BITS) - 1)) - 256
    return score, dt, dp


# -- stage 2: verification ------------------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def _lower_bound(keys, lo, hi, key):  # pragma: no cover - numba
    """First row of the sorted ``keys[lo:hi]`` whose key is >= ``key`` (``hi`` if none)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, nogil=True)
def _find(keys, lo, hi, key):  # pragma: no cover - numba
    """Row of ``key`` in the sorted ``keys[lo:hi]``, or -1."""
    row = _lower_bound(keys, lo, hi, key)
    return row if row < hi and keys[row] == key else -1


@numba.njit(cache=True, nogil=True)
def _verify(keys, offsets, score, dt, dp, qt, qp, need, out_count, out_rows):  # pragma: no cover - numba
    """Count the query points found under each translation (stops early below ``need``); with ``out_rows`` of
    shape (n, m) also record the matched rows (-1: not found)."""
    m = qt.size
    record = out_rows.shape[0] > 0
    for c in range(score.size):
        lo, hi = offsets[score[c]], offsets[score[c] + 1]
        found, missed = 0, 0
        for i in range(m):
            pitch = qp[i] + dp[c]
            row = -1
            if 0 <= pitch < 128:
                row = _find(keys, lo, hi, (qt[i] + dt[c]) * 128 + pitch)
            if record:
                out_rows[c, i] = row
            if row >= 0:
                found += 1
            else:
                missed += 1
                if missed > m - need and not record:
                    break
        out_count[c] = found


@numba.njit(cache=True, nogil=True)
def _substituted(keys, offsets, score, dt, dp, qt, qp, rows, tolerance, out):  # pragma: no cover - numba
    """Per translation, the unmatched query points with a score note at their onset within ``tolerance``
    semitones (a changed note rather than a missing one)."""
    for c in range(score.size):
        lo, hi = offsets[score[c]], offsets[score[c] + 1]
        for i in range(qt.size):
            if rows[c, i] >= 0:
                continue
            tick, pitch = qt[i] + dt[c], qp[i] + dp[c]
            a = _lower_bound(keys, lo, hi, tick * 128 + max(0, pitch - tolerance))
            if a < hi and keys[a] <= tick * 128 + min(127, pitch + tolerance):
                out[c] += 1


def substituted(packed: PackedScores, score, dt, dp, qt, qp, rows, *, tolerance: int) -> np.ndarray:
    """How many unmatched query notes of each occurrence have a score note at their onset within ``tolerance``
    semitones, shape (n,)."""
    out = np.zeros(score.size, np.int64)
    keys, offsets = packed.column("key"), np.ascontiguousarray(packed.offsets)
    _substituted(keys, offsets, score, dt, dp, qt, qp, rows, int(tolerance), out)
    return out


def verify(packed: PackedScores, score, dt, dp, qt, qp, *, need: int):
    """Matched query points per translation: ``count`` (n,) and, for the kept ones, ``rows`` (n_kept, m)."""
    keys, offsets = packed.column("key"), np.ascontiguousarray(packed.offsets)
    count = np.zeros(score.size, np.int64)
    _verify(keys, offsets, score, dt, dp, qt, qp, need, count, np.zeros((0, qt.size), np.int64))
    keep = count >= need
    score, dt, dp, count = score[keep], dt[keep], dp[keep], count[keep]
    rows = np.full((score.size, qt.size), -1, np.int64)
    _verify(keys, offsets, score, dt, dp, qt, qp, need, np.zeros(score.size, np.int64), rows)
    return score, dt, dp, count, rows


def occurrences(packed: PackedScores, t: np.ndarray, p: np.ndarray, *, need: int, transpose: bool = True):
    """Every translation placing at least ``need`` of the query points ``(t, p)`` on score points (P1 / P2).

    Returns
    -------
    score, dt, dp, count : np.ndarray, int64, shape (n,)
    rows : np.ndarray, int64, shape (n, m)
        Matched rows of the pack per query point (-1: missing).
    """
    if not 2 <= need <= t.size:
        raise ParameterError(f"need={need} must be between 2 and the {t.size} query notes")
    score, dt, dp = propose(packed, t, p, errors=t.size - need, transpose=transpose)
    return verify(packed, score, dt, dp, t, p, need=need)


# -- the search -----------------------------------------------------------------------------------------------
def search_scores(packed: PackedScores, theme, options: ScoreSearchOptions | None = None, *, stats=None):
    """Every occurrence of ``theme`` in the packed scores, best first (share of notes matched, then position).

    Parameters
    ----------
    packed : PackedScores
        :meth:`mirsearch.index.score_store.ScoreStore.packed`.
    theme : Theme
        The query (:class:`mirsearch.scores.Theme`).
    options : ScoreSearchOptions
    stats : dict, optional
        Filled with ``proposals`` and ``occurrences`` (before duplicates are dropped).

    Returns
    -------
    list of ScoreMatch
    """
    options = options or ScoreSearchOptions()
    found = []
    n_prop = 0
    for scale in dict.fromkeys(options.time_scales):
        for inverted in (False, True) if options.inversion else (False,):
            t, p, dur = query_points(theme, ticks_per_quarter=packed.ticks_per_quarter, time_scale=scale,
                                     inversion=inverted)  # fmt: skip
            need = options.need(t.size)
            score, dt, dp = propose(packed, t, p, errors=t.size - need, transpose=options.transpose)
            n_prop += score.size
            s, d, q, count, rows = verify(packed, score, dt, dp, t, p, need=need)
            near = substituted(packed, s, d, q, t, p, rows, tolerance=options.pitch_tolerance)
            value = (count + options.changed_weight * near) / t.size
            ok = _plausible(packed, count, rows, near, options)
            if options.max_errors is None:
                ok &= value >= options.min_share - 1e-9
            for k in np.nonzero(ok)[0]:
                found.append((float(value[k]), int(s[k]), int(d[k]), int(q[k]), rows[k], int(near[k]), dur, scale,
                              inverted))  # fmt: skip
    if stats is not None:
        stats.update(proposals=int(n_prop), occurrences=len(found))
    found.sort(key=lambda f: (-f[0], f[1], f[2], f[3]))
    return _distinct(packed, found, limit=options.limit)


def _plausible(packed, count, rows, near, options: ScoreSearchOptions) -> np.ndarray:
    """Which partial occurrences pass ``max_missing`` and ``partial_parts`` (exact ones always do)."""
    m = rows.shape[1]
    ok = np.ones(count.size, bool)
    partial = count < m
    if options.max_missing is not None:
        ok &= ~partial | (m - count - near <= options.max_missing)
    if options.partial_parts is not None and partial.any():
        parts = np.sort(np.where(rows >= 0, packed.column("part")[np.maximum(rows, 0)], -1), axis=1)
        first = np.ones_like(parts, bool)
        first[:, 1:] = parts[:, 1:] != parts[:, :-1]
        ok &= ~partial | (((parts >= 0) & first).sum(axis=1) <= options.partial_parts)
    return ok


def _distinct(packed: PackedScores, found: list, *, limit: int | None) -> list[ScoreMatch]:
    """Occurrences best first, without those sharing half their matched notes with a better one."""
    used: set[int] = set()
    out = []
    for value, s, dt, dp, rows, changed, dur, scale, inverted in found:
        matched = rows[rows >= 0]
        if sum(int(r) in used for r in matched) >= DUPLICATE_OVERLAP * matched.size:
            continue
        used.update(int(r) for r in matched)
        m = _match(packed, s, dt, dp, matched, rows.size, dur, scale, inverted)
        m.score = value
        m.extra["changed"] = changed
        out.append(m)
        if limit is not None and len(out) >= limit:
            break
    return out


def _match(packed, s: int, dt: int, dp: int, matched, m: int, dur: int, scale: float, inverted: bool):
    entry = packed.entries[s]
    tpq = packed.ticks_per_quarter
    parts = packed.column("part")[matched]
    names = entry.parts
    label = [names[i] if 0 <= i < len(names) else f"part {i}" for i in range(int(parts.max()) + 1)]
    counts = np.bincount(parts)
    values = np.nonzero(counts)[0]
    main = int(np.argmax(counts))
    first = int(matched.min())
    spq = entry.seconds_per_quarter
    start = float(packed.column("onset")[first]) + (dt - int(packed.column("tick")[first])) / tpq * spq
    extra = {"semitones": dp, "matched": int(matched.size), "notes": m, "time_scale": scale}
    extra.update(parts=[label[int(v)] for v in values], inverted=inverted)
    ticks, pitches = packed.column("tick")[matched], packed.column("pitch")[matched]  # the notes, to highlight
    extra["notes_at"] = [[round(int(t) / tpq, 4), int(p)] for t, p in zip(ticks, pitches, strict=True)]
    return ScoreMatch(
        recording=entry.path,
        recording_id=entry.id,
        start_quarter=dt / tpq,
        end_quarter=(dt + dur) / tpq,
        measure=int(packed.column("measure")[first]),
        part=label[main],
        start=max(0.0, start),
        end=max(0.0, start + dur / tpq * spq),
        transposition=signed_semitones(dp),
        score=matched.size / m,
        extra=extra,
    )


__all__ = ["ScoreMatch", "ScoreSearchOptions", "occurrences", "propose", "query_points", "search_scores", "verify"]
