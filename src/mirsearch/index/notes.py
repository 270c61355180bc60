"""Pitch-class notes of learned chroma and an index of their intervals, for proposing theme occurrences.

Learned theme chroma (:mod:`mirsearch.features.learned`) is close to a transcription of the theme voice:
most frames are (nearly) one-hot. :func:`chroma_notes` turns such a chromagram into a sequence of
pitch-class notes; :class:`NoteIndex` indexes the pitch-class *intervals* of every window of
:data:`NOTE_NGRAM` + 1 notes (transposition and tempo invariant), plus the windows that skip one note
(an inserted note of another voice); a theme's windows vote for a recording, a start note and a
transposition; the clusters of agreeing votes are ranked by the local alignment of the theme with their
notes. :func:`align_notes` is the tolerant alternative: a Smith-Waterman alignment of the theme's pitch
classes with every recording's notes (numba, a linear scan). Both feed the theme cascade
(:mod:`mirsearch.search.cascade`, the ``notes`` and ``align`` proposers).
Optionally a second note stream per recording (:func:`second_voice_notes`) covers themes in an inner
voice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from mirsearch.errors import ParameterError

log = logging.getLogger(__name__)

#: a learned-chroma frame is a note of pitch class ``argmax`` when its largest (unit-norm) value reaches this
NOTE_THRESHOLD = 0.8
#: shortest note kept, in database frames (0.2 s at 10 Hz); shorter runs are treated as noise
NOTE_MIN_FRAMES = 2
#: pitch-class intervals per index key (4 notes)
NOTE_NGRAM = 3
#: ranking of the note index's clusters (:meth:`NoteIndex.propose`): the local alignment score of the theme
#: with the cluster's notes (validation split: the exhaustive top-1 recording among 8 / 16 / 32 candidates
#: for 89 / 94 / 99 % of the themes, against 79 / 92 / 98 % by summed key rarity, ``"idf"``)
NOTE_WEIGHTING = "align"


def chroma_notes(
    Y: np.ndarray, *, threshold: float = NOTE_THRESHOLD, min_frames: int = NOTE_MIN_FRAMES
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pitch-class notes of a chroma sequence whose frames are (nearly) one-hot, e.g. learned chroma.

    A frame is a note frame of pitch class ``argmax`` when its largest value is at least ``threshold``
    (rows of unit l2 norm: 1 for a one-hot frame, 0.29 for a flat one). Runs of one pitch class shorter
    than ``min_frames`` are dropped, then consecutive runs of the same pitch class are merged (a repeated
    note and a note interrupted by a rest or a dropped run become one): the result is the sequence of
    pitch-class *changes*, which is what :func:`theme_pitch_classes` gives for a theme.

    Parameters
    ----------
    Y : np.ndarray, shape (n_frames, 12)
        Unit-length chroma rows (the layout of :meth:`Collection.database`).
    threshold : float in (0, 1]
    min_frames : int >= 1

    Returns
    -------
    pc : np.ndarray, shape (n_notes,), int64
        Pitch class (0 = C) of each note; consecutive notes differ.
    start, end : np.ndarray, shape (n_notes,), int64
        First frame and end frame (exclusive) of each note.
    """
    Y = _check_rows(Y, threshold, min_frames)
    if len(Y) == 0:
        return _label_notes(np.zeros(0, np.int64), min_frames)
    label = np.where(Y.max(axis=1) >= threshold, Y.argmax(axis=1), -1).astype(np.int64)
    return _label_notes(label, min_frames)


def _check_rows(Y: np.ndarray, threshold: float, min_frames: int) -> np.ndarray:
    if not 0 < threshold <= 1:
        raise ParameterError(f"threshold={threshold} must be in (0, 1]")
    if min_frames < 1:
        raise ParameterError(f"min_frames={min_frames} must be >= 1")
    Y = np.asarray(Y)
    if Y.ndim != 2 or Y.shape[1] != 12:
        raise ParameterError(f"chroma rows must have shape (n_frames, 12), got {Y.shape}")
    return Y


def _label_notes(label: np.ndarray, min_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Notes of a frame labelling (pitch class or -1): runs of at least ``min_frames``, repeats merged."""
    empty = np.zeros(0, np.int64)
    if len(label) == 0:
        return empty, empty, empty
    change = np.flatnonzero(np.r_[True, label[1:] != label[:-1]])
    run_end = np.r_[change[1:], len(label)]
    keep = (label[change] >= 0) & (run_end - change >= min_frames)
    pc, start, end = label[change][keep], change[keep], run_end[keep]
    if len(pc) == 0:
        return empty, empty, empty
    first = np.r_[True, pc[1:] != pc[:-1]]
    last = np.r_[np.flatnonzero(first)[1:] - 1, len(pc) - 1]
    return pc[first], start[first], end[last]


def second_voice_notes(
    Y: np.ndarray,
    *,
    second: float,
    threshold: float = NOTE_THRESHOLD,
    min_frames: int = NOTE_MIN_FRAMES,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pitch-class notes of the weaker voice where two sound, of the only voice elsewhere.

    Where the learned chroma does not follow the theme voice (an inner voice under a louder one), the
    theme's pitch class is often the *second* largest value of a frame. A frame whose second largest
    value reaches ``second`` is labelled with that pitch class; a frame with one confident value
    (largest >= ``threshold``, second below ``second``) keeps its pitch class, so the theme voice stays
    continuous where the other voice rests. Runs, ``min_frames`` and merging as in :func:`chroma_notes`.

    Parameters
    ----------
    Y : np.ndarray, shape (n_frames, 12)
        Unit-length chroma rows.
    second : float in (0, 1]
        Smallest second-largest value that marks a second voice (two equal voices: 0.71 each).
    threshold, min_frames
        As in :func:`chroma_notes`.

    Returns
    -------
    pc, start, end : np.ndarray, shape (n_notes,), int64
        As :func:`chroma_notes` returns them.
    """
    Y = _check_rows(Y, threshold, min_frames)
    if not 0 < second <= 1:
        raise ParameterError(f"second={second} must be in (0, 1]")
    if len(Y) == 0:
        return _label_notes(np.zeros(0, np.int64), min_frames)
    order = np.argsort(Y, axis=1)
    top, runner = order[:, -1], order[:, -2]
    v1 = np.take_along_axis(Y, top[:, None], axis=1)[:, 0]
    v2 = np.take_along_axis(Y, runner[:, None], axis=1)[:, 0]
    label = np.where(v2 >= second, runner, np.where(v1 >= threshold, top, -1)).astype(np.int64)
    return _label_notes(label, min_frames)


def theme_pitch_classes(theme) -> np.ndarray:
    """Pitch classes of a theme's notes with repetitions merged (the analogue of :func:`chroma_notes`)."""
    pc = np.asarray([n.pitch % 12 for n in theme.notes], dtype=np.int64)
    return pc[np.r_[True, pc[1:] != pc[:-1]]] if len(pc) else pc


def interval_keys(pc: np.ndarray, n: int) -> np.ndarray:
    """Keys of the ``n``-interval windows of a pitch-class sequence (transposition invariant).

    Window ``i`` covers notes ``i .. i + n``; its key encodes the ``n`` intervals ``(pc[i+1] - pc[i]) % 12``
    (1..11 when consecutive notes differ) in base 12. Returns int64 keys, shape ``(max(0, len(pc) - n),)``.
    """
    pc = np.asarray(pc, dtype=np.int64)
    m = len(pc) - n
    if m <= 0:
        return np.zeros(0, np.int64)
    d = (pc[1:] - pc[:-1]) % 12
    keys = np.zeros(m, np.int64)
    for j in range(n):
        keys = keys * 12 + d[j : j + m]
    return keys


def skip_interval_keys(pc: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Keys of ``n``-interval windows that skip one note (an inserted note, e.g. from another voice).

    Window ``(i, s)`` takes notes ``i .. i + n + 1`` without note ``i + s`` (``s`` in 1..n); windows where
    the skip joins two equal pitch classes are left out. Returns the keys and the first note ``i`` of each
    window (int64 arrays of equal length).
    """
    pc = np.asarray(pc, dtype=np.int64)
    m = len(pc) - n - 1
    if m <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    keys, firsts = [], []
    base = np.arange(m)[:, None] + np.arange(n + 2)[None, :]
    for skip in range(1, n + 1):
        idx = np.delete(base, skip, axis=1)
        seq = pc[idx]
        d = (seq[:, 1:] - seq[:, :-1]) % 12
        ok = (d > 0).all(axis=1)
        k = np.zeros(int(ok.sum()), np.int64)
        for col in range(n):
            k = k * 12 + d[ok, col]
        keys.append(k)
        firsts.append(np.arange(m)[ok])
    return np.concatenate(keys), np.concatenate(firsts)


@dataclass
class NoteProposal:
    """A proposed theme occurrence: recording (row of the database), note range, transposition, votes."""

    recording: int
    first_note: int
    last_note: int
    transposition: int
    votes: int
    score: float = 0.0


class NoteIndex:
    """Inverted index of pitch-class interval n-grams of a collection's learned chroma.

    Every recording's chroma becomes a note sequence (:func:`chroma_notes`); each window of ``n``
    consecutive intervals is an index key, and with ``skips`` also each window that skips one note
    (:func:`skip_interval_keys`: a note of another voice inserted into the transcription; the query's
    skip windows cover a missed note). A theme's windows look their keys up; a hit of query window ``j``
    at database note ``g`` votes for the theme starting at note ``g - j`` in transposition
    ``pc[g] - pc_query[j]``. The lookup is tempo and transposition invariant and costs a few sorted-array
    searches, however large the collection (postings per key grow with it).

    With ``second`` every recording also gets a second note stream (:func:`second_voice_notes`: the
    weaker of two voices where two sound), indexed the same way, so a theme the learned chroma holds
    only as the second-largest value (an inner voice under a louder one) still has matching keys. The
    streams of a recording are separate *segments* of the note arrays: no window, cluster or alignment
    crosses from one into the other.

    Parameters
    ----------
    Y : np.ndarray, shape (n_frames, 12)
        Unit chroma rows of all recordings (:meth:`Collection.database`).
    offsets : np.ndarray, shape (n_recordings + 1,)
        Recording ``i`` occupies rows ``offsets[i]:offsets[i+1]``.
    n : int >= 1
        Intervals per key.
    threshold, min_frames
        Note extraction (:func:`chroma_notes`).
    skips : bool
        Also index (and query) windows that skip one note.
    second : float in (0, 1], optional
        Threshold of the second-voice stream (None: one stream). The index roughly doubles.

    Attributes
    ----------
    n : int
        Intervals per key.
    pc, start, end : np.ndarray, shape (n_notes,)
        All notes, recording after recording (with ``second``: a recording's first stream, then its
        second); ``start`` / ``end`` are frames within the recording.
    note_offsets : np.ndarray, shape (n_recordings + 1,)
        Recording ``i`` owns notes ``note_offsets[i]:note_offsets[i+1]``.
    note_rec : np.ndarray, shape (n_notes,)
        Recording row of every note.
    segment_offsets : np.ndarray, shape (n_segments + 1,)
        Note stream ``k`` (one per recording, two with ``second``) owns notes
        ``segment_offsets[k]:segment_offsets[k+1]``.
    note_segment : np.ndarray, shape (n_notes,)
        Note stream of every note.
    keys, postings : np.ndarray, shape (n_windows,)
        Sorted keys and the global note index where each window starts.
    """

    def __init__(
        self,
        Y,
        offsets,
        *,
        n=NOTE_NGRAM,
        threshold=NOTE_THRESHOLD,
        min_frames=NOTE_MIN_FRAMES,
        skips=True,
        second=None,
    ):
        if n < 1:
            raise ParameterError(f"n={n} must be >= 1")
        if second is not None and not 0 < second <= 1:
            raise ParameterError(f"second={second} must be in (0, 1] or None")
        self.n = int(n)
        self.skips = bool(skips)
        self.second = None if second is None else float(second)
        pcs, starts, ends, counts, seg_counts, keys, post = [], [], [], [], [], [], []
        base = 0
        for i in range(len(offsets) - 1):
            Yi = Y[offsets[i] : offsets[i + 1]]
            streams = [chroma_notes(Yi, threshold=threshold, min_frames=min_frames)]
            if self.second is not None:
                streams.append(second_voice_notes(Yi, second=self.second, threshold=threshold, min_frames=min_frames))
            for pc, s, e in streams:
                k = interval_keys(pc, self.n)
                pcs.append(pc), starts.append(s), ends.append(e), seg_counts.append(len(pc))
                keys.append(k)
                post.append(base + np.arange(len(k), dtype=np.int64))
                if self.skips:
                    k2, f2 = skip_interval_keys(pc, self.n)
                    keys.append(k2)
                    post.append(base + f2)
                base += len(pc)
            counts.append(sum(len(st[0]) for st in streams))
        cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.int64)  # noqa: E731
        self.pc, self.start, self.end = cat(pcs), cat(starts), cat(ends)
        self.note_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.note_rec = np.repeat(np.arange(len(counts)), counts).astype(np.int64)
        self.segment_offsets = np.concatenate([[0], np.cumsum(seg_counts)]).astype(np.int64)
        self.note_segment = np.repeat(np.arange(len(seg_counts)), seg_counts).astype(np.int64)
        keys, post = cat(keys), cat(post)
        order = np.argsort(keys, kind="stable")
        self.keys, self.postings = keys[order], post[order]

    def __len__(self) -> int:
        return len(self.keys)

    def propose(
        self,
        qpc: np.ndarray,
        *,
        candidates: int = 32,
        per_recording: int = 1,
        tolerance: int = 2,
        weighting: str = NOTE_WEIGHTING,
    ) -> list[NoteProposal]:
        """Best occurrences of a query's pitch-class sequence, most votes first.

        Parameters
        ----------
        qpc : np.ndarray, shape (m,)
            Query pitch classes, repetitions merged (:func:`theme_pitch_classes`); at least ``n + 1``.
        candidates : int >= 1
            Recordings returned (with ``per_recording`` proposals each).
        per_recording : int >= 1
        tolerance : int >= 0
            Hits whose implied start notes differ by at most this many notes vote together (absorbs
            notes the chroma missed or added).
        weighting : {"idf", "count", "align"}
            Rank clusters by the summed rarity ``log((1 + n_keys) / (1 + postings))`` of their distinct
            query windows (``"idf"``), by the number of windows (``"count"``), or by the score of the
            best local alignment (Smith-Waterman, as :func:`align_notes` scores it) of the query with
            the cluster's notes in its transposition (``"align"``; ties by ``"idf"``): every query note
            in order counts, not only the windows that survive intact.

        Returns
        -------
        list of NoteProposal
            Hits of one note stream of a recording and one transposition whose implied start notes
            chain within ``tolerance`` form a cluster; its votes are the distinct query windows in it.
            Recordings are ranked by their best cluster (``weighting``, then votes, then the
            recording's total hits); each contributes its ``per_recording`` best clusters (notes from
            the first to the last implied start, widened by the query length and ``tolerance``; with a
            second stream, a cluster overlapping one already taken in the same transposition is
            skipped). ``score`` is the ranking value. Empty when no window hits.
        """
        if weighting not in ("idf", "count", "align"):
            raise ParameterError(f"weighting={weighting!r} must be 'idf', 'count' or 'align'")
        if candidates < 1 or per_recording < 1 or tolerance < 0:
            raise ParameterError(
                f"candidates={candidates}, per_recording={per_recording} must be >= 1, tolerance={tolerance} >= 0"
            )
        qpc = np.asarray(qpc, dtype=np.int64)
        hits = self._hits(qpc)
        if hits is None:
            return []
        c = self._clusters(qpc, *hits, tolerance=tolerance)
        if weighting == "align":
            lo = np.maximum(c["lo"] - tolerance, self.segment_offsets[c["seg"]])
            hi = np.minimum(c["hi"] + len(qpc) + tolerance, self.segment_offsets[c["seg"] + 1])
            rank_by = _align_spans(qpc, self.pc, lo, hi, c["shift"])
            order = np.lexsort((-c["total"], -c["votes"], -c["score"], -rank_by))
        else:
            rank_by = c["score"] if weighting == "idf" else c["votes"].astype(np.float64)
            order = np.lexsort((-c["total"], -c["votes"], -rank_by))
        return self._pick(c, order, rank_by, m=len(qpc), candidates=candidates, per_recording=per_recording,
                          tolerance=tolerance)  # fmt: skip

    def _hits(self, qpc: np.ndarray):
        """Postings of the query's windows: ``(j, g, w)`` = query window, database note, key rarity; or None."""
        qk = interval_keys(qpc, self.n)
        qj = np.arange(len(qk), dtype=np.int64)
        if self.skips:
            k2, j2 = skip_interval_keys(qpc, self.n)
            qk, qj = np.concatenate([qk, k2]), np.concatenate([qj, j2])
        lo = np.searchsorted(self.keys, qk, side="left")
        hi = np.searchsorted(self.keys, qk, side="right")
        sizes = hi - lo
        if sizes.sum() == 0:
            return None
        # rarity of each query key: a window that matches everywhere (a scale step) says little
        idf = np.log((1.0 + len(self.keys)) / (1.0 + sizes))
        g = self.postings[np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)])]
        return np.repeat(qj, sizes), g, np.repeat(idf, sizes)

    def _clusters(self, qpc: np.ndarray, j: np.ndarray, g: np.ndarray, w: np.ndarray, *, tolerance: int) -> dict:
        """Clusters of hits of one (note stream, shift) whose implied start notes chain within ``tolerance``."""
        rec = self.note_rec[g]
        seg = self.note_segment[g]
        shift = (self.pc[g] - qpc[j]) % 12
        origin = g - j
        group = seg * 12 + shift
        order = np.lexsort((origin, group))
        group, origin, j, rec, seg, shift, w = (x[order] for x in (group, origin, j, rec, seg, shift, w))
        new = np.r_[True, (group[1:] != group[:-1]) | (origin[1:] - origin[:-1] > tolerance)]
        cluster = np.cumsum(new) - 1
        n_clusters = int(cluster[-1]) + 1
        # votes: distinct query windows (first notes) per cluster; score: their summed (largest) rarity
        pair = cluster * (len(qpc) + 1) + j
        o2 = np.lexsort((-w, pair))
        pair, w2 = pair[o2], w[o2]
        once = np.r_[True, pair[1:] != pair[:-1]]
        first_hit = np.flatnonzero(new)
        c_rec = rec[first_hit]
        return {
            "votes": np.bincount(pair[once] // (len(qpc) + 1), minlength=n_clusters),
            "score": np.bincount(pair[once] // (len(qpc) + 1), weights=w2[once], minlength=n_clusters),
            "rec": c_rec,
            "seg": seg[first_hit],
            "shift": shift[first_hit],
            "lo": origin[first_hit],
            "hi": np.maximum.reduceat(origin, first_hit),
            "total": np.bincount(rec, minlength=len(self.note_offsets) - 1)[c_rec],
        }

    def _pick(self, c: dict, order, rank_by, *, m: int, candidates: int, per_recording: int, tolerance: int):
        """The ``per_recording`` best clusters of the ``candidates`` best recordings, in ``order``."""
        picked: dict[int, list[NoteProposal]] = {}
        for k in order:
            r = int(c["rec"][k])
            props = picked.get(r)
            if props is None:
                if len(picked) >= candidates:
                    continue
                props = picked[r] = []
            if len(props) >= per_recording:
                continue
            sg = int(c["seg"][k])
            first = max(int(c["lo"][k]) - tolerance, int(self.segment_offsets[sg]))
            last = max(first, min(int(c["hi"][k]) + m - 1 + tolerance, int(self.segment_offsets[sg + 1]) - 1))
            a, b = int(self.start[first]), int(self.end[last])
            t = int(c["shift"][k])
            if self.second is not None and any(
                p.transposition == t and self.start[p.first_note] < b and a < self.end[p.last_note] for p in props
            ):
                continue  # the same passage found in the other note stream
            props.append(NoteProposal(r, first, last, t, int(c["votes"][k]), float(rank_by[k])))
        return [p for ps in picked.values() for p in ps]


@numba.njit(cache=True, nogil=True)
def _align_one(q, t, pc, note_rec, note_seg, match, mismatch, gap, best, best_first, best_last):  # pragma: no cover
    """Smith-Waterman of ``q`` transposed by ``t`` against every recording's notes (see align_notes)."""
    m = len(q)
    # score of database pitch class p against query note i (a profile: no modulo in the inner loop)
    profile = np.full((12, m + 1), mismatch)
    for i in range(1, m + 1):
        profile[(q[i - 1] + t) % 12, i] = match
    H = np.zeros(m + 1)
    S = np.zeros(m + 1, np.int64)
    prev_seg = -1
    for j in range(len(pc)):
        r = note_rec[j]
        if note_seg[j] != prev_seg:  # a new note stream: no alignment crosses it
            H[:] = 0.0
            S[:] = j
            prev_seg = note_seg[j]
        row = profile[pc[j]]
        diag, diag_s = 0.0, j
        up, up_s = 0.0, j
        for i in range(1, m + 1):
            h_old, s_old = H[i], S[i]
            v = diag + row[i]
            v_s = diag_s if diag > 0.0 else j
            if h_old - gap > v:  # a database note the query does not have
                v, v_s = h_old - gap, s_old
            if up - gap > v:  # a query note the database misses
                v, v_s = up - gap, up_s
            if v <= 0.0:
                v, v_s = 0.0, j + 1
            diag, diag_s = h_old, s_old
            H[i], S[i] = v, v_s
            up, up_s = v, v_s
            if v > best[r]:
                best[r] = v
                best_first[r] = v_s
                best_last[r] = j


@numba.njit(cache=True, nogil=True, parallel=True)
def _align_kernel(q, shifts, pc, note_rec, note_seg, n_recs, match, mismatch, gap):  # pragma: no cover - numba
    """:func:`_align_one` for every shift, in parallel threads; per-shift results, shape (n_shifts, n_recs)."""
    n = len(shifts)
    best = np.zeros((n, n_recs))
    best_first = np.zeros((n, n_recs), np.int64)
    best_last = np.zeros((n, n_recs), np.int64)
    for k in numba.prange(n):
        _align_one(q, shifts[k], pc, note_rec, note_seg, match, mismatch, gap, best[k], best_first[k], best_last[k])
    return best, best_first, best_last


@numba.njit(cache=True, nogil=True)
def _align_spans_kernel(q, pc, lo, hi, shift, match, mismatch, gap):  # pragma: no cover - numba
    """Best Smith-Waterman score of ``q`` (transposed by ``shift[k]``) within notes ``lo[k]:hi[k]``."""
    m = len(q)
    out = np.zeros(len(lo))
    H = np.zeros(m + 1)
    for k in range(len(lo)):
        H[:] = 0.0
        best = 0.0
        for j in range(lo[k], hi[k]):
            diag = 0.0
            up = 0.0
            for i in range(1, m + 1):
                h_old = H[i]
                v = diag + (match if pc[j] == (q[i - 1] + shift[k]) % 12 else mismatch)
                if h_old - gap > v:
                    v = h_old - gap
                if up - gap > v:
                    v = up - gap
                if v < 0.0:
                    v = 0.0
                diag = h_old
                H[i] = v
                up = v
                if v > best:
                    best = v
        out[k] = best
    return out


def _align_spans(q, pc, lo, hi, shift, match: float = 2.0, mismatch: float = -1.0, gap: float = 0.5) -> np.ndarray:
    """Local alignment scores of ``q`` in note spans (the scoring of :func:`align_notes`), one per span."""
    return _align_spans_kernel(
        np.ascontiguousarray(q, dtype=np.int64),
        pc,
        np.ascontiguousarray(lo, dtype=np.int64),
        np.ascontiguousarray(hi, dtype=np.int64),
        np.ascontiguousarray(shift, dtype=np.int64),
        float(match),
        float(mismatch),
        float(gap),
    )


def align_notes(
    qpc: np.ndarray,
    index: NoteIndex,
    *,
    transpositions: Sequence[int] = range(12),
    match: float = 2.0,
    mismatch: float = -1.0,
    gap: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Best local alignment (Smith-Waterman) of a theme's pitch classes with each recording's notes.

    A linear scan over all notes of the collection in 12 transpositions (``12 * len(qpc)`` cells per
    note, a few milliseconds for 30k notes); unlike the interval keys of :meth:`NoteIndex.propose` it
    survives several inserted or missing notes in a row (an interleaved second voice).

    Parameters
    ----------
    qpc : np.ndarray, shape (m,)
        Query pitch classes (:func:`theme_pitch_classes`).
    index : NoteIndex
        Supplies the notes (``pc``, ``note_rec``).
    transpositions : sequence of int
        Transpositions (semitones up) tried.
    match, mismatch, gap : float
        Score of equal pitch classes, of different ones, and penalty of a skipped note (either side).

    Returns
    -------
    score : np.ndarray, shape (n_recordings,), float64
        Best alignment score per recording (0: nothing matches).
    first, last : np.ndarray, shape (n_recordings,), int64
        Global note indices where that alignment starts and ends.
    shift : np.ndarray, shape (n_recordings,), int64
        Transposition (semitones up) of the query in that alignment.
    """
    if not match > 0 or gap < 0:
        raise ParameterError(f"match={match} must be > 0 and gap={gap} >= 0")
    n_recs = len(index.note_offsets) - 1
    q = np.ascontiguousarray(qpc, dtype=np.int64)
    shifts = np.asarray(sorted({int(t) % 12 for t in transpositions}), dtype=np.int64)
    if len(shifts) == 0:
        raise ParameterError("transpositions must not be empty")
    best, first, last = _align_kernel(
        q, shifts, index.pc, index.note_rec, index.note_segment, n_recs, float(match), float(mismatch), float(gap)
    )
    k = np.argmax(best, axis=0)  # the first (smallest) shift reaching a recording's best score
    cols = np.arange(n_recs)
    score = best[k, cols]
    return score, first[k, cols], last[k, cols], np.where(score > 0, shifts[k], 0)


def note_index(collection, *, features: str = "learned", n: int = NOTE_NGRAM, **options) -> NoteIndex:
    """The :class:`NoteIndex` of a collection's ``features``, a view memoised until the collection changes."""

    def build() -> NoteIndex:
        Y, offsets, _, _ = collection.database(features)
        t0 = time.perf_counter()
        index = NoteIndex(Y, offsets, n=n, **options)
        log.info("note index of %s: %d windows in %.2f s", features, len(index), time.perf_counter() - t0)
        return index

    return collection.views.get(("notes", features, n, tuple(sorted(options.items()))), build)


__all__ = [
    "NOTE_MIN_FRAMES",
    "NOTE_NGRAM",
    "NOTE_THRESHOLD",
    "NOTE_WEIGHTING",
    "NoteIndex",
    "NoteProposal",
    "align_notes",
    "chroma_notes",
    "interval_keys",
    "note_index",
    "second_voice_notes",
    "skip_interval_keys",
    "theme_pitch_classes",
]
