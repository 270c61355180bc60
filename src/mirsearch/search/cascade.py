"""Two-stage search: cheap proposals of candidate recordings, then exact subsequence DTW on them only.

:func:`cascade_search_theme` and :func:`cascade_search_audio` first *propose* candidate recordings (and
regions), then run the exact subsequence-DTW matching of the exhaustive search on the candidates only,
so the ranking among the candidates is exactly the exhaustive one. For audio queries the proposals come
from this shingle index. For themes (monophonic, usually shorter than a 20 s shingle) the default
proposal is the same DTW on 3-frame block means of the features (9x fewer cells, memoised database),
because a theme shingle index (:data:`THEME_CONFIG`: 3 s shingles of 2 Hz CENS, 72 dimensions, all
transpositions and a wide tempo grid; ``proposal="index"``) proposes the right recordings much less
reliably (docs/benchmarks.md has both). On learned chroma, which is close to a transcription of the theme
voice (:mod:`mirsearch.search.notes`), ``proposal="notes"`` looks the theme's pitch-class intervals up
in a :class:`NoteIndex` (tempo and transposition invariant, a few milliseconds) and runs the DTW
only in the proposed regions and
transpositions; by default it also adds the recordings whose notes align best with the theme's
(:func:`align_notes`, Smith-Waterman, a linear scan over the notes; ``align=False`` leaves them out), and
``fallback_cost`` sends themes whose best candidate matches poorly to a search over the whole collection
(``fallback``: the coarse cascade by default, or the exhaustive search).
"""

from __future__ import annotations

import functools
import logging
import time
import weakref
from collections.abc import Sequence

import numpy as np

from mirsearch.collection.shingles import CHROMA_RATE, ShingleConfig
from mirsearch.errors import InputError, ParameterError
from mirsearch.search.notes import NOTE_NGRAM, NoteProposal, align_notes, note_index, theme_pitch_classes
from mirsearch.search.results import Match
from mirsearch.search.shingles import (
    THEME_CONFIG,
    THEME_TEMPO_FACTORS,
    get_index,
    query_shingles,
    score_regions,
)

log = logging.getLogger(__name__)


def _dtw_on_candidates(
    Y: np.ndarray,
    offsets: np.ndarray,
    spans: list[tuple[int, int, int]],
    queries: list[tuple[np.ndarray, float]],
    shifts: Sequence[int],
    span_shifts: Sequence[tuple[int, ...]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Subsequence DTW of unit-row queries over database spans only.

    ``spans``: (recording index, first frame, end frame) in recording-relative frames. ``span_shifts``
    (optional, one tuple per span) restricts each span to its own shifts instead of ``shifts``. Returns
    the concatenated sub-database's cost, start, shift, tempo factor per frame and the frame offsets of
    the spans.
    """
    from mirsearch.matching.subsequence import best_over_shifts

    pieces = [Y[offsets[i] + a : offsets[i] + b] for i, a, b in spans]
    sub_off = np.cumsum([0] + [len(p) for p in pieces]).astype(np.int64)
    n = int(sub_off[-1])
    best_cost = np.full(n, np.inf)
    best_start = np.zeros(n, np.int64)
    best_shift = np.zeros(n, np.int64)
    best_factor = np.ones(n)
    if span_shifts is None:
        groups = {tuple(shifts): list(range(len(spans)))}
    else:
        groups = {}
        for j, sh in enumerate(span_shifts):
            groups.setdefault(tuple(sh), []).append(j)
    for group_shifts, js in groups.items():
        rows = np.concatenate([np.arange(sub_off[j], sub_off[j + 1]) for j in js])
        Ys = np.ascontiguousarray(np.concatenate([pieces[j] for j in js]))
        lengths = np.asarray([len(pieces[j]) for j in js])
        reset = np.zeros(len(Ys), np.bool_)
        firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        reset[firsts[firsts < len(Ys)]] = True
        for Q, factor in queries:
            cost, start, shift = best_over_shifts(Q, Ys, list(group_shifts), reset=reset)
            better = cost < best_cost[rows]
            idx = rows[better]
            best_cost[idx] = cost[better]
            # starts index the group's concatenation: map them to the full layout
            best_start[idx] = rows[start[better]]
            best_shift[idx] = shift[better]
            best_factor[idx] = factor
    return best_cost, best_start, best_shift, best_factor, sub_off


def _merge_spans(spans: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Merge overlapping (recording, a, b) spans of the same recording."""
    out: list[tuple[int, int, int]] = []
    for i, a, b in sorted(spans):
        if out and out[-1][0] == i and a <= out[-1][2]:
            out[-1] = (i, out[-1][1], max(out[-1][2], b))
        else:
            out.append((i, a, b))
    return out


_ShiftSpan = tuple[int, int, int, tuple[int, ...]]


def _merge_shift_spans(spans: list[_ShiftSpan]) -> list[_ShiftSpan]:
    """Merge overlapping (recording, a, b, shifts) spans of the same recording; shifts are united."""
    out: list[_ShiftSpan] = []
    for i, a, b, sh in sorted(spans):
        if out and out[-1][0] == i and a <= out[-1][2]:
            out[-1] = (i, out[-1][1], max(out[-1][2], b), tuple(sorted(set(out[-1][3]) | set(sh))))
        else:
            out.append((i, a, b, tuple(sorted(set(sh)))))
    return out


def _matches_from_spans(spans, cost, start, shift, factor, sub_off, recs, rate, *, per_recording, max_cost):
    from mirsearch.matching.subsequence import find_matches

    matches: list[Match] = []
    by_rec: dict[int, list[int]] = {}
    for j, (i, _a, _b) in enumerate(spans):
        by_rec.setdefault(i, []).append(j)
    for i, js in by_rec.items():
        found = []
        for j in js:
            lo, hi = sub_off[j], sub_off[j + 1]
            a = spans[j][1]
            for s, e, c in find_matches(cost[lo:hi], start[lo:hi] - lo, top=per_recording, max_cost=max_cost):
                found.append((c, s + a, e + a, int(shift[lo + e]), float(factor[lo + e])))
        found.sort()
        for c, s, e, t, f in found[:per_recording]:
            matches.append(
                Match(
                    recording=recs[i].path,
                    recording_id=recs[i].id,
                    start=s / rate,
                    end=(e + 1) / rate,
                    cost=float(c),
                    transposition=t,
                    extra={"tempo_factor": f},
                )
            )
    matches.sort(key=lambda m: m.cost)
    return matches


_COARSE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _block_rows(X: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Unit-length means of row blocks ``X[starts[j]:starts[j+1]]`` (last block to the end)."""
    from mirsearch.matching.subsequence import unit_columns

    return unit_columns(np.add.reduceat(np.asarray(X, dtype=np.float32), starts, axis=0).T)


def coarse_database(collection, *, features: str = "chroma", factor: int = 4):
    """The collection's database (:meth:`Collection.database`) averaged over blocks of ``factor`` frames.

    Blocks never cross a recording boundary. Memoised per collection while its recordings do not change.

    Returns
    -------
    Yc : np.ndarray, shape (n_blocks, 12), float32 unit rows
    offsets : np.ndarray, shape (n_recordings + 1,), int64
        Recording ``i`` occupies blocks ``offsets[i]:offsets[i+1]``.
    """
    Y, offsets, recs, rate = collection.database(features)
    token = (features, factor, len(recs), int(offsets[-1]), recs[-1].id if recs else 0)
    hit = _COARSE.get(collection)
    if hit is not None and hit[0] == token:
        return hit[1]
    lengths = np.diff(offsets)
    counts = -(-lengths // factor)
    starts = np.concatenate([off + np.arange(0, n, factor) for off, n in zip(offsets[:-1], lengths, strict=True)])
    value = (_block_rows(Y, starts.astype(np.int64)), np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
    _COARSE[collection] = (token, value)
    return value


def _coarse_proposals(collection, theme, *, features, factor, tempo_bpm, tempo_factors, shifts, candidates, margin):
    """Spans (recording index, first, end frame) of the best recordings by coarse subsequence DTW."""
    from mirsearch.matching.subsequence import best_over_shifts, find_matches, unit_columns
    from mirsearch.search.theme import QUERY_HARMONIC_DECAY, theme_query

    _, offsets, _, rate = collection.database(features)
    decay = QUERY_HARMONIC_DECAY.get(features, 0.0)
    Yc, off_c = coarse_database(collection, features=features, factor=factor)
    reset = np.zeros(len(Yc), np.bool_)
    reset[off_c[:-1][off_c[:-1] < len(Yc)]] = True
    best = np.full(len(Yc), np.inf)
    best_start = np.zeros(len(Yc), np.int64)
    n_theme = 1
    for f in tempo_factors:
        Q = theme_query(theme, feature_rate=rate, tempo_bpm=tempo_bpm, tempo_factor=f, harmonic_decay=decay)
        Q = unit_columns(Q)
        n_theme = max(n_theme, len(Q))
        Qc = _block_rows(Q, np.arange(0, len(Q), factor))
        cost, start, _ = best_over_shifts(Qc, Yc, shifts, reset=reset)
        better = cost < best
        best[better] = cost[better]
        best_start[better] = start[better]
    nonempty = off_c[:-1] < off_c[1:]
    per_rec = np.full(len(off_c) - 1, np.inf)
    per_rec[nonempty] = np.minimum.reduceat(best, off_c[:-1][nonempty])
    spans = []
    for i in np.argsort(per_rec, kind="stable")[:candidates]:
        if not np.isfinite(per_rec[i]):
            break
        lo, hi = off_c[i], off_c[i + 1]
        n = int(offsets[i + 1] - offsets[i])
        if margin is None:
            spans.append((int(i), 0, n))
            continue
        for s, e, _ in find_matches(best[lo:hi], best_start[lo:hi] - lo, top=1):
            a = int(s * factor - margin * n_theme)
            b = int((e + 1) * factor + margin * n_theme)
            spans.append((int(i), max(0, a), min(n, max(b, a + 1))))
    return spans


#: the notes cascade runs the exhaustive search when its best candidate costs more (learned chroma)
NOTE_FALLBACK_COST = 0.1

#: the theme cascades offered by name (CLI ``--cascade``, the HTTP API's ``cascade``): options of
#: :func:`cascade_search_theme`
THEME_CASCADES = {
    "notes": {"proposal": "notes"},
    "notes-only": {"proposal": "notes", "align": False},
    "align": {"proposal": "align"},
    "coarse": {"proposal": "coarse"},
}


def cascade_search_theme(
    collection,
    theme,
    *,
    top: int = 10,
    per_recording: int = 3,
    features: str = "chroma",
    tempo_bpm: float | None = None,
    tempo_factors: Sequence[float] = (1.0,),
    transpositions: Sequence[int] = range(12),
    part: str | int | None = None,
    max_cost: float = np.inf,
    proposal: str = "coarse",
    candidates: int = 32,
    regions: bool | None = None,
    margin: float = 1.0,
    coarse_factor: int = 3,
    ngram: int = NOTE_NGRAM,
    tolerance: int = 2,
    note_regions: int = 3,
    skips: bool = True,
    note_options: dict | None = None,
    dtw_shifts: str = "proposed",
    fallback_cost: float | None = None,
    fallback: str | None = None,
    align: bool | None = None,
    k: int = 32,
    proposal_tempo_factors: Sequence[float] = THEME_TEMPO_FACTORS,
    index: str = "hnsw",
    reduction="none",
    dim: int | None = None,
    config: ShingleConfig = THEME_CONFIG,
    params: dict | None = None,
    update: bool = True,
    stats: dict | None = None,
) -> list[Match]:
    """Theme search in two stages: cheap proposals, then exact subsequence DTW on the candidates only.

    Stage 1 proposes ``candidates`` recordings (with ``regions``: only the best region(s) of each, widened
    by ``margin`` theme lengths on each side):

    ``proposal="coarse"`` (default)
        The same subsequence DTW at a third of the frame rate: database and theme chroma averaged over
        blocks of ``coarse_factor`` frames (10 Hz -> 3.3 Hz; the database blocks are computed once per
        collection and memoised), all transpositions; ``coarse_factor**2`` times fewer DTW cells than the
        exhaustive search. Recordings are ranked by their best coarse cost. The defaults (3, 32 whole
        recordings) lost 1 of 316 top-1 hits on the benchmark (docs/benchmarks.md).
    ``proposal="index"``
        A shingle index: the theme is shingled with :data:`THEME_CONFIG` (3 s of 2 Hz CENS, 72 dims) at
        every ``proposal_tempo_factors`` x ``transpositions``, the ``k`` nearest shingles of each are
        retrieved and recordings scored with :func:`score_regions`. Cheap per lookup, but a monophonic
        theme's shingles resemble polyphonic audio shingles only loosely: the proposals are weaker
        (see docs/benchmarks.md). Themes shorter than one shingle fall back to the exhaustive search.
    ``proposal="align"`` (for ``features="learned"``)
        The same notes, but the ``candidates`` recordings with the best Smith-Waterman alignment of the
        theme's pitch classes (:func:`align_notes`; one region each): a linear scan, more tolerant of
        runs of inserted or missed notes, weaker at locating the occurrence (docs/benchmarks.md).
    ``proposal="notes"`` (for ``features="learned"``)
        A :class:`NoteIndex` of the collection's learned chroma (built in milliseconds and memoised): the
        learned chroma is close to a transcription of the theme voice, so the theme's pitch-class
        sequence (repetitions merged) is looked up as ``ngram``-interval windows, tempo and transposition
        invariant. Each hit votes for a start note and a transposition; hits that agree form clusters,
        ranked by the Smith-Waterman score of the theme against the cluster's notes
        (:meth:`NoteIndex.propose`). The ``candidates`` best recordings are proposed with their
        ``note_regions`` best clusters and the transposition found, and stage 2 runs only there
        (``dtw_shifts="proposed"``) or in all ``transpositions`` (``"all"``). Themes with at most
        ``ngram`` pitch changes fall back to the exhaustive search.

    Stage 2 is the matching of :func:`mirsearch.search.theme.search_theme` (same features, tempo factors,
    transpositions, peak picking) restricted to the candidates, so costs and spans are identical to the
    exhaustive search wherever the candidates cover its results.

    Parameters
    ----------
    collection, theme, top, per_recording, features, tempo_bpm, tempo_factors, transpositions, part, max_cost
        As in :func:`mirsearch.search.theme.search_theme`.
    proposal : {"coarse", "index", "notes", "align"}
    candidates : int >= 1
        Recordings passed to the DTW stage.
    regions : bool, optional
        Restrict DTW to the proposed region(s) of each candidate (faster; whole recordings otherwise).
        Default: True for ``"notes"``, False otherwise.
    margin : float >= 0
        Region widening, in theme lengths, on each side.
    coarse_factor : int >= 2
        Frames per block of the coarse stage.
    ngram, tolerance, note_regions, skips
        The note-index proposal (:class:`NoteIndex`): intervals per key, start-note tolerance of a vote,
        regions per recording, keys that skip one note.
    note_options : dict, optional
        Further :class:`NoteIndex` options, e.g. ``{"second": 0.6}`` (a second note stream of the weaker
        voice; measured without gain, docs/benchmarks.md).
    dtw_shifts : {"proposed", "all"}
        Stage-2 transpositions of a ``"notes"`` region: the one(s) proposed, or all ``transpositions``.
    fallback : {"exhaustive", "coarse"}, optional
        What answers a theme that falls back (too short to propose for, or ``fallback_cost`` exceeded): the
        exhaustive search, or the ``"coarse"`` cascade with the same ``candidates`` (``coarse_factor**2``
        times fewer DTW cells over the whole collection, then exact DTW on its candidates). Default:
        ``"coarse"`` for ``"notes"`` and ``"align"`` (validation split with 40 h of distractors: the same
        Top-1, MRR 0.780 vs 0.783, mean time per theme 72 vs 125 ms; docs/benchmarks.md), else
        ``"exhaustive"``.
    align : bool, optional
        With ``proposal="notes"``, also propose the best local alignment (:func:`align_notes`) of each of
        the ``candidates`` best-aligned recordings (a linear scan over the notes: 36 ms for 50 h of
        audio, 214k notes, on two cores). Default: True for ``"notes"``, chosen on the validation split
        (the exhaustive top-1 recording among the candidates for 99.3 % of the themes vs 98.6 % without,
        MRR 0.898 vs 0.896; docs/benchmarks.md).
    fallback_cost : float, optional
        When the best match among the candidates costs more than this (or there is none), the theme was
        probably not proposed: search the whole collection instead (``fallback``; ``stats["fallback"] =
        "cost"``). None: never (``np.inf`` for ``"notes"``). Default None, except
        :data:`NOTE_FALLBACK_COST` (0.1) for ``"notes"``: chosen on the validation split, where with 32
        candidates x 3 regions 8 % of the themes fall back and every top match equals the exhaustive
        search's.
    k, proposal_tempo_factors, index, reduction, dim, config, params, update
        The shingle-index proposal (:meth:`ShingleIndex.open`; default HNSW over raw 72-dim shingles).
    stats : dict, optional
        Filled with ``candidates`` (number of recordings searched), ``candidate_ids`` (their ids),
        ``proposed_ids`` (the recordings stage 1 proposed), ``proposal_ms``,
        ``dtw_ms``, ``frames_searched``, ``frames_total``, ``fallback`` (False, True for a theme too short
        to propose for, ``"cost"`` after ``fallback_cost``; then also ``exhaustive_ms``, the time of the
        ``fallback`` search).

    Returns
    -------
    list of Match
        Best first, as the exhaustive search returns them.
    """
    from mirsearch.matching.subsequence import unit_columns
    from mirsearch.scores import read_theme
    from mirsearch.search.theme import QUERY_HARMONIC_DECAY, search_theme, theme_query

    if fallback_cost is None and proposal in ("notes", "align"):
        fallback_cost = NOTE_FALLBACK_COST
    if align is None:
        align = proposal == "notes"
    if top < 1 or per_recording < 1 or candidates < 1:
        raise ParameterError(f"top={top}, per_recording={per_recording} and candidates={candidates} must be >= 1")
    if proposal not in ("coarse", "index", "notes", "align"):
        raise ParameterError(f"proposal={proposal!r} must be 'coarse', 'index', 'notes' or 'align'")
    if fallback is None:
        fallback = "coarse" if proposal in ("notes", "align") else "exhaustive"
    if fallback not in ("exhaustive", "coarse"):
        raise ParameterError(f"fallback={fallback!r} must be 'exhaustive' or 'coarse'")
    if dtw_shifts not in ("proposed", "all"):
        raise ParameterError(f"dtw_shifts={dtw_shifts!r} must be 'proposed' or 'all'")
    if ngram < 1 or tolerance < 0 or note_regions < 1:
        raise ParameterError(f"ngram={ngram}, note_regions={note_regions} must be >= 1, tolerance={tolerance} >= 0")
    if regions is None:
        regions = proposal in ("notes", "align")
    if fallback_cost is not None and not fallback_cost >= 0:
        raise ParameterError(f"fallback_cost={fallback_cost} must be >= 0")
    if margin < 0:
        raise ParameterError(f"margin={margin} must be >= 0")
    if coarse_factor < 2:
        raise ParameterError(f"coarse_factor={coarse_factor} must be >= 2")
    for factor in tempo_factors:
        if not factor > 0:
            raise ParameterError(f"tempo_factors must be > 0, got {factor}")
    stats = stats if stats is not None else {}
    theme = read_theme(theme, part=part)
    shifts = sorted({int(s) % 12 for s in transpositions})
    common = {
        "top": top,
        "per_recording": per_recording,
        "features": features,
        "tempo_bpm": tempo_bpm,
        "tempo_factors": tempo_factors,
        "transpositions": shifts,
        "max_cost": max_cost,
    }
    fallback_stats: dict = {}
    if fallback == "coarse" and proposal != "coarse":
        fallback_search = functools.partial(
            cascade_search_theme,
            collection,
            theme,
            proposal="coarse",
            candidates=candidates,
            coarse_factor=coarse_factor,
            stats=fallback_stats,
            **common,
        )
    else:
        fallback_search = functools.partial(search_theme, collection, theme, **common)
    t0 = time.perf_counter()
    Y, offsets, recs, rate = collection.database(features)
    span_shifts = None
    if proposal in ("notes", "align"):
        if features != "learned":
            log.warning("proposal=%r expects learned chroma (near one-hot frames), got features=%r", proposal, features)
        nidx = note_index(collection, features=features, n=ngram, skips=skips, **(note_options or {}))
        qpc = theme_pitch_classes(theme)
        if len(qpc) <= nidx.n:
            log.info("%s: %d pitch changes, too few for %d-interval keys: exhaustive", theme.name, len(qpc) - 1, ngram)
            stats.update(fallback=True, candidates=None)
            return fallback_search()
        allowed = set(shifts)
        props: list[NoteProposal] = []
        if proposal == "notes":
            props = [
                p
                for p in nidx.propose(qpc, candidates=candidates, per_recording=note_regions, tolerance=tolerance)
                if p.transposition in allowed
            ]
        if proposal == "align" or align:
            score, first, last, best_shift = align_notes(qpc, nidx, transpositions=shifts)
            ranked = [int(r) for r in np.argsort(-score, kind="stable")[:candidates] if score[r] > 0]
            props += [
                NoteProposal(r, int(first[r]), int(last[r]), int(best_shift[r]), 0, float(score[r])) for r in ranked
            ]
        theme_frames = max(
            theme_query(theme, feature_rate=rate, tempo_bpm=tempo_bpm, tempo_factor=f).shape[1] for f in tempo_factors
        )
        shifted = []
        for p in props:
            n = int(offsets[p.recording + 1] - offsets[p.recording])
            sh = (p.transposition,) if dtw_shifts == "proposed" else tuple(shifts)
            if regions:
                w = int(round(margin * theme_frames))
                a, b = int(nidx.start[p.first_note]) - w, int(nidx.end[p.last_note]) + w
                shifted.append((p.recording, max(0, a), min(n, max(b, a + 1)), sh))
            else:
                shifted.append((p.recording, 0, n, sh))
        merged = [m for m in _merge_shift_spans(shifted) if m[2] > m[1]]
        spans = [m[:3] for m in merged]
        span_shifts = [m[3] for m in merged]
    elif proposal == "coarse":
        spans = _coarse_proposals(
            collection,
            theme,
            features=features,
            factor=int(coarse_factor),
            tempo_bpm=tempo_bpm,
            tempo_factors=tempo_factors,
            shifts=shifts,
            candidates=candidates,
            margin=margin if regions else None,
        )
    else:
        Cq = theme_query(theme, feature_rate=CHROMA_RATE, tempo_bpm=tempo_bpm)
        try:
            idx = get_index(
                collection, reduction=reduction, dim=dim, index=index, config=config, params=params, update=update
            )
            qs = query_shingles(
                Cq, config=config, tempo_factors=proposal_tempo_factors, transpositions=shifts, name=theme.name
            )
        except InputError as exc:
            log.info("%s: exhaustive search instead", exc)
            stats.update(fallback=True, candidates=None)
            return fallback_search()
        D, L = idx.search_vectors(qs.S, k=k)
        proposals = score_regions(qs, D, L, idx.rec_ids, idx.starts, per_recording=1)
        row_of = {r.id: i for i, r in enumerate(recs)}
        spans = []
        theme_frames = Cq.shape[1] * rate / CHROMA_RATE
        for g in proposals[:candidates]:
            i = row_of.get(g.recording_id)
            if i is None:
                continue
            n = int(offsets[i + 1] - offsets[i])
            if regions:
                f = qs.variants[g.variant][0]
                a = int(g.start / config.frame_rate * rate - margin * theme_frames / f)
                b = int(g.end / config.frame_rate * rate + margin * theme_frames / f)
                spans.append((i, max(0, a), min(n, max(b, a + 1))))
            else:
                spans.append((i, 0, n))
    t1 = time.perf_counter()

    def fall_back(reason: str, dtw_ms: float) -> list[Match]:
        found = fallback_search()
        stats.update(
            fallback=reason,
            candidates=fallback_stats.get("candidates", len(recs)),
            candidate_ids=fallback_stats.get("candidate_ids", [r.id for r in recs]),
            proposed_ids=sorted({recs[s[0]].id for s in spans}),
            proposal_ms=(t1 - t0) * 1000,
            dtw_ms=dtw_ms,
            exhaustive_ms=(time.perf_counter() - t_fb) * 1000,
            frames_searched=fallback_stats.get("frames_searched", int(offsets[-1])),
            frames_total=int(offsets[-1]),
        )
        return found

    if span_shifts is None:
        spans = [s for s in _merge_spans(spans) if s[2] > s[1]]
    if not spans and fallback_cost is not None:
        t_fb = time.perf_counter()
        return fall_back("cost", 0.0)
    if not spans:
        stats.update(fallback=False, candidates=0, proposal_ms=(t1 - t0) * 1000, dtw_ms=0.0, frames_searched=0)
        return []
    decay = QUERY_HARMONIC_DECAY.get(features, 0.0)  # the same query as the exhaustive search
    queries = [
        (
            unit_columns(
                theme_query(theme, feature_rate=rate, tempo_bpm=tempo_bpm, tempo_factor=f, harmonic_decay=decay)
            ),
            f,
        )
        for f in tempo_factors
    ]
    cost, start, shift, factor, sub_off = _dtw_on_candidates(Y, offsets, spans, queries, shifts, span_shifts)
    matches = _matches_from_spans(
        spans, cost, start, shift, factor, sub_off, recs, rate, per_recording=per_recording, max_cost=max_cost
    )
    t2 = time.perf_counter()
    if fallback_cost is not None and (not matches or matches[0].cost > fallback_cost):
        log.info("%s: best candidate cost above %g: %s search", theme.name, fallback_cost, fallback)
        t_fb = time.perf_counter()
        return fall_back("cost", (t_fb - t1) * 1000)
    stats.update(
        fallback=False,
        candidates=len({s[0] for s in spans}),
        candidate_ids=sorted({recs[s[0]].id for s in spans}),
        proposed_ids=sorted({recs[s[0]].id for s in spans}),
        proposal_ms=(t1 - t0) * 1000,
        dtw_ms=(t2 - t1) * 1000,
        frames_searched=int(sub_off[-1]),
        frames_total=int(offsets[-1]),
    )
    return matches[:top]


__all__ = [
    "NOTE_FALLBACK_COST",
    "cascade_search_theme",
    "coarse_database",
]
