"""Varied occurrences of a theme in scores: tonal answers, entries in the other mode, changed rhythm.

The point-set search (:mod:`mirsearch.search.score_search`) finds a theme whose notes keep their exact
relative onsets and pitches. A fugue's subject comes back varied: a tonal answer changes its first interval or
two by a step, an entry in the other mode moves the thirds, sixths and sevenths by a semitone, and the rhythm
may change (a dotted note straightened, a long note split into repeated notes, an augmentation). This module
finds such entries in a piano roll (voices merged, any number of parts) in three stages:

1. **Seeds** from the pair index: query note pairs ``(i, i+1)`` and ``(i, i+2)`` whose exact ``(onset
   difference, interval)`` occurs in the collection propose translations ``(score, part, dt, dp)``; the rarest
   pairs of each quarter of the theme are used (:data:`SEED_PAIRS`), and a translation must be proposed by
   ``min_votes`` of them. A varied entry keeps most of its intervals and durations, so several pairs agree.
2. **Tolerant count** (numba): the query notes with a note of the seed's part (staff, track, voice) at their
   transposed pitch within ``onset_tolerance`` of their onset; seeds below ``min_seed`` of the notes (or the
   threshold less :data:`SEED_MARGIN`) are dropped.
3. **Alignment** (numba DP over the notes of the seed's window, voices merged): query notes are matched
   in onset order to score notes within two semitones of their transposed pitch (cost
   ``pitch_costs[semitones off]``); the onset difference between consecutive matched notes may differ from the
   query's by a ratio ``r`` within ``1/max_ratio .. max_ratio`` at a cost ``rhythm_weight * |log2 r|`` (a dotted
   pair costs ``0.58 + 1`` octaves' worth, a uniform augmentation is searched as a time scale); up to
   :data:`MAX_SKIP` consecutive query notes may be missing (``skip_cost`` each, also at the ends); score notes
   between matched ones (other voices, repeated notes of a split, ornaments) are passed over; passing from one
   part to another (a subject crossing the staves) costs ``part_change_cost`` (None: the seed's part only). The
   occurrence's score is ``1 - cost / m``; it is kept when it reaches ``min_score``.

Occurrences sharing half their matched notes with a better one are dropped, as in the point-set search. The
threshold is stricter for short themes (``length_slack``), and a varied occurrence is kept only in a score that
states the theme exactly at least ``context_count`` times (``context_score``): measured on fugues in
docs/benchmarks.md ("Score search"), where the thresholds were chosen on design fugues only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from mirsearch.errors import ParameterError
from mirsearch.index.score_store import PackedScores
from mirsearch.search.score_search import _decode, _distinct, _encode, _lower_bound, _posting_range, query_points

#: most consecutive query notes an alignment may leave unmatched
MAX_SKIP = 2
#: seed pairs taken from each quarter of the theme (the rarest in the collection)
SEED_PAIRS = 3
#: the tolerant count must reach the threshold less this share of the notes (and at least ``min_seed``)
SEED_MARGIN = 0.2
#: parts told apart in a score (a part of a higher number counts as the last)
MAX_PARTS = 64
#: an occurrence may last this many times the query (its window in the score)
SPAN_FACTOR = 1.5
#: most seeds aligned per query variant (the best by tolerant count)
MAX_ALIGNED = 4000


@dataclass(frozen=True)
class VariantOptions:
    """Options of :func:`search_variants`.

    Attributes
    ----------
    min_score : float in (0, 1]
        Threshold of the alignment score ``1 - cost / m`` (chosen on the design fugues, docs/benchmarks.md) ...
    length_slack : float >= 0
        ... for themes of many notes: an ``m``-note theme may lose at most ``length_slack * (m - 4)`` of its
        ``m`` notes' worth of cost (short themes must match more closely: their chance matches are many).
    context_score, context_count : float, int
        A varied occurrence (score below ``context_score``) is returned only from a score holding at least
        ``context_count`` occurrences that reach ``context_score``: a fugue states its subject exactly at least
        once, a chance likeness elsewhere is not an entry. When no occurrence reaches ``context_score`` (a theme
        typed with a slip), the best score found takes its place. ``context_count=0`` turns this off.
    min_seed : float in (0, 1]
        Share of the query notes the tolerant count must find near a seed's translation.
    min_votes : int >= 1
        Seed pairs that must propose the same translation in the same part.
    pitch_costs : tuple of 3 float
        Cost of a query note matched 0, 1 and 2 semitones off.
    rhythm_weight : float >= 0
        Cost per octave of onset-difference ratio (``|log2 r|``) between consecutive matched notes.
    max_ratio : float > 1
        Largest onset-difference ratio allowed between consecutive matched notes.
    skip_cost : float > 0
        Cost of a query note left unmatched.
    onset_tolerance : float
        Quarter notes of onset tolerance of the tolerant count.
    transpose : bool
        Any transposition (True) or the notated pitch only.
    part_change_cost : float or None
        None: an occurrence stays in the part of its seed; else it may pass from part to part (a subject
        crossing the staves of a piano roll) at this cost per change.
    time_scales : tuple of float
        Onset scalings of the query (2: augmentation).
    limit : int or None
        Most occurrences returned.
    """

    min_score: float = 0.75
    length_slack: float = 0.5
    context_score: float = 1.0
    context_count: int = 1
    pitch_costs: tuple[float, float, float] = (0.0, 0.3, 0.6)
    min_seed: float = 0.5
    min_votes: int = 2
    rhythm_weight: float = 0.35
    max_ratio: float = 3.0
    time_scales: tuple[float, ...] = (1.0,)
    skip_cost: float = 1.0
    onset_tolerance: float = 0.25
    transpose: bool = True
    part_change_cost: float | None = 0.5
    limit: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.min_score <= 1.0:
            raise ParameterError(f"min_score={self.min_score!r} must be in (0, 1]")
        if self.length_slack < 0 or self.context_count < 0 or not 0.0 < self.context_score <= 1.0:
            raise ParameterError("length_slack and context_count must be >= 0, context_score in (0, 1]")
        if not 0.0 < self.min_seed <= 1.0:
            raise ParameterError(f"min_seed={self.min_seed!r} must be in (0, 1]")
        if len(self.pitch_costs) != 3 or any(c < 0 for c in self.pitch_costs):
            raise ParameterError(f"pitch_costs={self.pitch_costs!r} must be 3 costs >= 0")
        if not self.max_ratio > 1.0:
            raise ParameterError(f"max_ratio={self.max_ratio!r} must be > 1")
        if self.rhythm_weight < 0 or self.skip_cost <= 0:
            raise ParameterError("rhythm_weight must be >= 0 and skip_cost > 0")
        if not self.time_scales or any(not 0.05 <= s <= 20 for s in self.time_scales):
            raise ParameterError(f"time_scales={self.time_scales!r} must be factors between 0.05 and 20")

    def threshold(self, m: int) -> float:
        """Alignment score an ``m``-note theme's occurrence must reach."""
        return 1.0 - min(1.0 - self.min_score, self.length_slack * max(0, m - 4) / m)


# -- stage 1: seeds ---------------------------------------------------------------------------------------------
def seed_pairs(packed: PackedScores, t: np.ndarray, p: np.ndarray) -> list[tuple[int, tuple[int, int]]]:
    """``(i, posting range)`` of the rarest pairs ``(i, i+1)`` and ``(i, i+2)`` of each quarter of the query."""
    m = t.size
    pairs = []
    for i in range(m - 1):
        for j in (i + 1, i + 2):
            if j >= m:
                continue
            dt, dp = int(t[j] - t[i]), int(p[j] - p[i])
            if 0 < dt <= packed.pair_window and abs(dp) <= packed.pair_max_interval:
                lo, hi = _posting_range(packed, dt * 64 + dp + 32)
                pairs.append((i, (lo, hi)))
    chosen = []
    for part in range(4):
        mine = [x for x in pairs if part * m // 4 <= x[0] < (part + 1) * m // 4]
        chosen += sorted(mine, key=lambda x: x[1][1] - x[1][0])[:SEED_PAIRS]
    return chosen


def seeds(packed: PackedScores, t: np.ndarray, p: np.ndarray, *, transpose: bool, min_votes: int = 1):
    """Unique seeds ``(score, part, dt, dp)`` proposed by at least ``min_votes`` of the seed pairs (int64 arrays):
    the translation and the part (staff, track) of the note that proposed it."""
    rows_tick, rows_pitch, rows_score = packed.column("tick"), packed.column("pitch"), packed.column("score")
    where = rows_score * MAX_PARTS + np.minimum(packed.column("part"), MAX_PARTS - 1)
    parts = []
    for i, (lo, hi) in seed_pairs(packed, t, p):
        rows = np.asarray(packed.postings[lo:hi], dtype=np.int64)
        dp = rows_pitch[rows] - p[i]
        if not transpose:
            rows, dp = rows[dp == 0], dp[dp == 0]
        parts.append(_encode(where[rows], rows_tick[rows] - t[i], dp))
    codes = np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
    first = np.r_[True, codes[1:] != codes[:-1]] if codes.size else np.zeros(0, bool)
    starts = np.nonzero(first)[0]
    votes = np.diff(np.r_[starts, codes.size])
    codes = codes[starts[votes >= min_votes]]
    key, dt, dp = _decode(codes)
    return key // MAX_PARTS, key % MAX_PARTS, dt, dp


# -- stage 2: tolerant count ------------------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def _tolerant_count(keys, part, offsets, score, where, dt, dp, qt, qp, tol, need, out):  # pragma: no cover - numba
    """Query notes with a note of the seed's part at their transposed pitch within ``tol`` ticks of their onset
    (the count stops once ``need`` cannot be reached)."""
    m = qt.size
    for c in range(score.size):
        lo, hi = offsets[score[c]], offsets[score[c] + 1]
        found = 0
        for i in range(m):
            if found + m - i < need:
                break
            tick, pitch = qt[i] + dt[c], qp[i] + dp[c]
            a = _lower_bound(keys, lo, hi, (tick - tol) * 128)
            while a < hi and keys[a] < (tick + tol + 1) * 128:
                if keys[a] % 128 == pitch and min(part[a], MAX_PARTS - 1) == where[c]:
                    found += 1
                    break
                a += 1
        out[c] = found


# -- stage 3: alignment -----------------------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def _align_one(tick, pitch, part, rows, t0, dp, qt, qp, pc, knobs, rows_out):  # pragma: no cover - numba
    """Best alignment of the query ``(qt, qp)`` (onsets from its first note) to the notes ``rows`` (sorted by
    onset); returns its cost and fills ``rows_out`` (matched row per query note, -1: skipped)."""
    rw, max_ratio, skip, tol, change = knobs[0], knobs[1], knobs[2], knobs[3], knobs[5]
    m, n = qt.size, rows.size
    inf = 1e18
    cost = np.full((m, n), inf)
    prev = np.full((m, n, 2), -1, np.int64)
    live = np.empty((m, n), np.int64)  # per query note, the notes it may be matched to (ascending)
    n_live = np.zeros(m, np.int64)
    log_max = np.log2(max_ratio)
    for i in range(m):
        for j in range(n):
            dev = abs(pitch[rows[j]] - qp[i] - dp)
            if dev > 2:
                continue
            here = pc[dev]
            best, bi, bj = inf, -1, -1
            if i <= MAX_SKIP and abs(tick[rows[j]] - (t0 + qt[i])) <= 2 * tol:  # the occurrence starts here
                best = i * skip + here
            for k in range(max(0, i - MAX_SKIP - 1), i):
                expect = qt[i] - qt[k]
                if expect <= 0:
                    continue
                for x in range(n_live[k] - 1, -1, -1):
                    jj = live[k, x]
                    gap = tick[rows[j]] - tick[rows[jj]]
                    if gap <= 0:
                        continue
                    if gap > expect * max_ratio:
                        break
                    r = np.log2(gap / expect)
                    if abs(r) > log_max:
                        continue
                    c = cost[k, jj] + rw * abs(r) + (i - k - 1) * skip + here
                    if part[rows[jj]] != part[rows[j]]:
                        c += change
                    if c < best:
                        best, bi, bj = c, k, jj
            if best < inf:
                cost[i, j] = best
                prev[i, j, 0], prev[i, j, 1] = bi, bj
                live[i, n_live[i]] = j
                n_live[i] += 1
    total, ei, ej = inf, -1, -1
    for i in range(max(0, m - 1 - MAX_SKIP), m):
        for j in range(n):
            c = cost[i, j] + (m - 1 - i) * skip
            if c < total:
                total, ei, ej = c, i, j
    for i in range(m):
        rows_out[i] = -1
    while ei >= 0:
        rows_out[ei] = rows[ej]
        ei, ej = prev[ei, ej, 0], prev[ei, ej, 1]
    return total


@numba.njit(cache=True, nogil=True)
def _align_all(tick, pitch, part, keys, offsets, score, where, dt, dp, qt, qp, pc, knobs, out_cost, out_rows):
    # pragma: no cover - numba
    """:func:`_align_one` for every seed, on the notes of its part in its window (an occurrence stays in one part:
    a staff of a piano roll, a voice of a choral score)."""
    tol, span, one_part = np.int64(knobs[3]), np.int64(knobs[4]), knobs[5] < 0
    for c in range(score.size):
        lo, hi = offsets[score[c]], offsets[score[c] + 1]
        t0 = dt[c] + qt[0]
        a = _lower_bound(keys, lo, hi, (t0 - 2 * tol) * 128)
        b = _lower_bound(keys, a, hi, (t0 + span + tol + 1) * 128)
        usable = np.zeros(128, np.bool_)  # pitches some query note may be matched to (2 semitones off at most)
        for i in range(qp.size):
            for d in range(-2, 3):
                if 0 <= qp[i] + dp[c] + d < 128:
                    usable[qp[i] + dp[c] + d] = True
        rows = np.empty(b - a, np.int64)
        n = 0
        for r in range(a, b):
            if usable[pitch[r]] and (not one_part or min(part[r], MAX_PARTS - 1) == where[c]):
                rows[n] = r
                n += 1
        out_cost[c] = _align_one(tick, pitch, part, rows[:n], t0, dp[c], qt, qp, pc, knobs, out_rows[c])


def align(packed: PackedScores, score, where, dt, dp, t, p, options: VariantOptions):
    """Alignment cost (n,) and matched rows (n, m) of each seed (stage 3)."""
    keys, offsets = packed.column("key"), np.ascontiguousarray(packed.offsets)
    tick, pitch, part = packed.column("tick"), packed.column("pitch"), packed.column("part")
    tol = int(round(options.onset_tolerance * packed.ticks_per_quarter))
    span = int((t[-1] - t[0]) * SPAN_FACTOR)
    cost = np.zeros(score.size, np.float64)
    rows = np.full((score.size, t.size), -1, np.int64)
    pc = np.asarray(options.pitch_costs, dtype=np.float64)
    change = -1.0 if options.part_change_cost is None else options.part_change_cost
    knobs = np.array([options.rhythm_weight, options.max_ratio, options.skip_cost, tol, span, change], np.float64)
    _align_all(tick, pitch, part, keys, offsets, score, where, dt, dp, t, p, pc, knobs, cost, rows)
    return cost, rows


def search_variants(packed: PackedScores, theme, options: VariantOptions | None = None, *, stats=None):
    """Every occurrence of ``theme`` in the packed scores, varied ones included (see the module docstring).

    Returns
    -------
    list of ScoreMatch
        Best first; ``score`` is the alignment score, ``extra["matched"]`` the query notes matched.
    """
    options = options or VariantOptions()
    found = []
    counts = {"seeds": 0, "aligned": 0}
    keys, offsets = packed.column("key"), np.ascontiguousarray(packed.offsets)
    for scale in dict.fromkeys(options.time_scales):
        t, p, dur = query_points(theme, ticks_per_quarter=packed.ticks_per_quarter, time_scale=scale)
        m = t.size
        s, where, dt, dp = seeds(packed, t, p, transpose=options.transpose, min_votes=options.min_votes)
        counts["seeds"] += s.size
        near = np.zeros(s.size, np.int64)
        tol = int(round(options.onset_tolerance * packed.ticks_per_quarter))
        need = max(2, int(np.ceil(max(options.min_seed, options.threshold(m) - SEED_MARGIN) * m)))
        _tolerant_count(keys, packed.column("part"), offsets, s, where, dt, dp, t, p, tol, need, near)
        keep = np.nonzero(near >= need)[0]
        keep = keep[np.argsort(-near[keep], kind="stable")[:MAX_ALIGNED]]
        s, where, dt, dp = s[keep], where[keep], dt[keep], dp[keep]
        counts["aligned"] += s.size
        cost, rows = align(packed, s, where, dt, dp, t, p, options)
        value = 1.0 - cost / m
        for k in np.nonzero(value >= options.threshold(m) - 1e-9)[0]:
            found.append((float(value[k]), int(s[k]), int(dt[k]), int(dp[k]), rows[k], 0, dur, scale, False))
    if stats is not None:
        stats.update(counts, occurrences=len(found))
    found.sort(key=lambda f: (-f[0], f[1], f[2], f[3]))
    # the context: scores stating the theme as well as context_score (or as well as the best occurrence found)
    strong_at = min(options.context_score, found[0][0] if found else 1.0) - 1e-9
    if options.context_count:  # a cheap bound first: strong candidates per score before duplicates are dropped
        bound: dict[int, int] = {}
        for f in found:
            if f[0] >= strong_at:
                bound[f[1]] = bound.get(f[1], 0) + 1
        found = [f for f in found if f[0] >= strong_at or bound.get(f[1], 0) >= options.context_count]
    matches = _distinct(packed, found, limit=None)
    strong: dict[int, int] = {}
    for match in matches:
        if match.score >= strong_at:
            strong[match.recording_id] = strong.get(match.recording_id, 0) + 1
    matches = [x for x in matches if x.score >= strong_at
               or strong.get(x.recording_id, 0) >= options.context_count][: options.limit]  # fmt: skip
    for match in matches:  # the span of the notes found (a varied entry may start or end off the seed's place)
        at = np.asarray(match.extra["notes_at"], dtype=np.float64)
        match.start_quarter, match.end_quarter = float(at[:, 0].min()), max(match.end_quarter, float(at[:, 0].max()))
    return matches


__all__ = ["MAX_SKIP", "VariantOptions", "align", "search_variants", "seeds"]
