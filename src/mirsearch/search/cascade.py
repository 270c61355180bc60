"""Theme search in stages: proposers name candidate regions, the exact subsequence DTW verifies them.

A cascade (:class:`ThemeCascade`) is a list of *proposers* whose proposals are united, then one *verifier*:
the subsequence DTW of the exhaustive search (:func:`mirsearch.search.theme.search_theme`) run on the proposed
spans only, so that costs and spans are the exhaustive ones wherever the proposals cover its results. A theme no
proposer can handle (too short), or whose best verified match costs more than ``fallback_cost``, is answered by
the fallback: the coarse cascade or the exhaustive search. The named presets are in :data:`THEME_PRESETS`, one
table for the CLI (``--cascade``), the server and the benchmarks; the exhaustive search is the preset
``"exhaustive"`` of the service.

Proposers:

:class:`CoarseProposer`
    The same DTW at a third of the frame rate (database blocks memoised per collection generation).
:class:`NoteIndexProposer` (learned chroma)
    The theme's pitch-class intervals looked up in a :class:`~mirsearch.index.notes.NoteIndex`: tempo and
    transposition invariant, a few milliseconds; proposes regions and their transposition.
:class:`NoteAlignProposer` (learned chroma)
    The recordings whose notes align best with the theme's (Smith-Waterman, a linear scan over the notes).
:class:`ShingleProposer`
    A shingle index of 3 s CENS shingles (weaker for monophonic themes; docs/benchmarks.md).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mirsearch.errors import InputError, ParameterError
from mirsearch.features.shingles import CHROMA_RATE, ShingleConfig
from mirsearch.index.notes import NOTE_NGRAM, align_notes, note_index, theme_pitch_classes
from mirsearch.index.shingle_index import IndexSpec, get_index
from mirsearch.matching.subsequence import best_over_shifts, find_matches, unit_columns
from mirsearch.scores import Theme
from mirsearch.search.results import Match
from mirsearch.search.shingles import THEME_CONFIG, THEME_TEMPO_FACTORS, query_shingles, score_regions
from mirsearch.search.theme import QUERY_HARMONIC_DECAY, check_theme_search, search_theme, theme_query

log = logging.getLogger(__name__)

#: the notes cascades search the whole collection when their best candidate costs more (learned chroma; also for
#: queries with a tail, whose costs are higher, so they fall back more often: docs/benchmarks.md, session 14)
NOTE_FALLBACK_COST = 0.1

#: a proposed span: (recording row, first frame, end frame, transpositions or None for all)
Span = tuple[int, int, int, tuple[int, ...] | None]


@dataclass
class ThemeContext:
    """What every stage of one theme search sees."""

    collection: object
    theme: Theme
    features: str
    tempo_bpm: float | None
    tempo_factors: tuple[float, ...]
    shifts: tuple[int, ...]
    Y: np.ndarray
    offsets: np.ndarray
    recs: list
    rate: float
    query_tail: tuple[float, float] | None = None

    def queries(self) -> list[tuple[np.ndarray, float]]:
        """The exhaustive search's query (unit rows) at every tempo factor (with its ``query_tail``)."""
        decay = QUERY_HARMONIC_DECAY.get(self.features, 0.0)
        return [
            (unit_columns(theme_query(self.theme, feature_rate=self.rate, tempo_bpm=self.tempo_bpm,
                                      tempo_factor=f, harmonic_decay=decay, tail=self.query_tail)), f)
            for f in self.tempo_factors
        ]  # fmt: skip

    def theme_frames(self) -> int:
        return max(
            theme_query(self.theme, feature_rate=self.rate, tempo_bpm=self.tempo_bpm, tempo_factor=f).shape[1]
            for f in self.tempo_factors
        )

    def length(self, i: int) -> int:
        return int(self.offsets[i + 1] - self.offsets[i])

    def region(self, i: int, a: float, b: float, margin_frames: float, shifts=None) -> Span:
        """Span of recording ``i`` from frame ``a`` to ``b``, widened by ``margin_frames`` and clipped."""
        n = self.length(i)
        lo, hi = int(a - margin_frames), int(b + margin_frames)
        return (int(i), max(0, lo), min(n, max(hi, lo + 1)), shifts)


def _check(**values) -> None:
    for name, (value, minimum) in values.items():
        if value < minimum:
            raise ParameterError(f"{name}={value} must be >= {minimum}")


# -- proposers ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CoarseProposer:
    """The best ``candidates`` recordings by subsequence DTW on ``factor``-frame block means (all shifts).

    With ``regions``, only the best region of each, widened by ``margin`` theme lengths on each side.
    """

    candidates: int = 32
    factor: int = 3
    regions: bool = False
    margin: float = 1.0

    def __post_init__(self) -> None:
        _check(candidates=(self.candidates, 1), factor=(self.factor, 2), margin=(self.margin, 0))

    def propose(self, ctx: ThemeContext) -> list[Span] | None:
        Yc, off_c = coarse_database(ctx.collection, features=ctx.features, factor=self.factor)
        reset = np.zeros(len(Yc), np.bool_)
        reset[off_c[:-1][off_c[:-1] < len(Yc)]] = True
        best = np.full(len(Yc), np.inf)
        best_start = np.zeros(len(Yc), np.int64)
        n_theme = 1
        for Q, _ in ctx.queries():
            n_theme = max(n_theme, len(Q))
            Qc = _block_rows(Q, np.arange(0, len(Q), self.factor))
            cost, start, _ = best_over_shifts(Qc, Yc, list(ctx.shifts), reset=reset)
            better = cost < best
            best[better] = cost[better]
            best_start[better] = start[better]
        nonempty = off_c[:-1] < off_c[1:]
        per_rec = np.full(len(off_c) - 1, np.inf)
        per_rec[nonempty] = np.minimum.reduceat(best, off_c[:-1][nonempty])
        spans: list[Span] = []
        for i in np.argsort(per_rec, kind="stable")[: self.candidates]:
            if not np.isfinite(per_rec[i]):
                break
            if not self.regions:
                spans.append((int(i), 0, ctx.length(i), None))
                continue
            lo, hi = off_c[i], off_c[i + 1]
            for s, e, _ in find_matches(best[lo:hi], best_start[lo:hi] - lo, top=1):
                spans.append(ctx.region(i, s * self.factor, (e + 1) * self.factor, self.margin * n_theme))
        return spans


@dataclass(frozen=True)
class _NoteStage:
    """Shared options of the proposers on the note index of learned chroma."""

    candidates: int = 32
    ngram: int = NOTE_NGRAM
    skips: bool = True
    note_options: tuple = ()
    margin: float = 1.0
    regions: bool = True
    dtw_shifts: str = "proposed"

    def __post_init__(self) -> None:
        _check(candidates=(self.candidates, 1), ngram=(self.ngram, 1), margin=(self.margin, 0))
        if self.dtw_shifts not in ("proposed", "all"):
            raise ParameterError(f"dtw_shifts={self.dtw_shifts!r} must be 'proposed' or 'all'")

    def _notes(self, ctx: ThemeContext):
        """``(note index, the theme's pitch classes)``, or None for a theme with too few pitch changes."""
        if ctx.features != "learned":
            log.warning("note proposals expect learned chroma (near one-hot frames), got features=%r", ctx.features)
        nidx = note_index(ctx.collection, features=ctx.features, n=self.ngram, skips=self.skips,
                          **dict(self.note_options))  # fmt: skip
        qpc = theme_pitch_classes(ctx.theme)
        if len(qpc) <= nidx.n:
            log.info("%s: %d pitch changes, too few for %d-interval keys", ctx.theme.name, len(qpc) - 1, self.ngram)
            return None
        return nidx, qpc

    def _span(self, ctx: ThemeContext, nidx, recording: int, first: int, last: int, shift: int) -> Span:
        shifts = (int(shift),) if self.dtw_shifts == "proposed" else ctx.shifts
        if not self.regions:
            return (int(recording), 0, ctx.length(recording), shifts)
        margin = int(round(self.margin * ctx.theme_frames()))
        return ctx.region(recording, nidx.start[first], nidx.end[last], margin, shifts)


@dataclass(frozen=True)
class NoteIndexProposer(_NoteStage):
    """Regions whose pitch-class interval windows match the theme's (:meth:`NoteIndex.propose`).

    ``per_recording`` regions of each of the ``candidates`` best recordings, in the transposition found;
    ``tolerance``: start notes of agreeing votes may differ by this many notes.
    """

    tolerance: int = 2
    per_recording: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(tolerance=(self.tolerance, 0), per_recording=(self.per_recording, 1))

    def propose(self, ctx: ThemeContext) -> list[Span] | None:
        found = self._notes(ctx)
        if found is None:
            return None
        nidx, qpc = found
        props = nidx.propose(qpc, candidates=self.candidates, per_recording=self.per_recording,
                             tolerance=self.tolerance)  # fmt: skip
        return [
            self._span(ctx, nidx, p.recording, p.first_note, p.last_note, p.transposition)
            for p in props
            if p.transposition in ctx.shifts
        ]


@dataclass(frozen=True)
class NoteAlignProposer(_NoteStage):
    """The best local alignment (:func:`align_notes`) in each of the ``candidates`` best-aligned recordings."""

    def propose(self, ctx: ThemeContext) -> list[Span] | None:
        found = self._notes(ctx)
        if found is None:
            return None
        nidx, qpc = found
        score, first, last, best_shift = align_notes(qpc, nidx, transpositions=ctx.shifts)
        ranked = [int(r) for r in np.argsort(-score, kind="stable")[: self.candidates] if score[r] > 0]
        return [self._span(ctx, nidx, r, int(first[r]), int(last[r]), int(best_shift[r])) for r in ranked]


@dataclass(frozen=True)
class ShingleProposer:
    """Recordings (regions) whose shingles are nearest to the theme's, from a shingle index of the collection.

    The theme is shingled with ``config`` at every ``tempo_factors`` x transposition; the ``k`` nearest shingles
    of each vote (:func:`score_regions`). ``index``, ``reduction``, ``dim``, ``params``, ``update``: the index
    (:func:`get_index`). Themes shorter than one shingle cannot be proposed for.
    """

    candidates: int = 32
    k: int = 32
    tempo_factors: tuple[float, ...] = THEME_TEMPO_FACTORS
    index: str = "hnsw"
    reduction: str = "none"
    dim: int | None = None
    config: ShingleConfig = THEME_CONFIG
    params: tuple = ()
    update: bool = True
    regions: bool = False
    margin: float = 1.0

    def __post_init__(self) -> None:
        _check(candidates=(self.candidates, 1), k=(self.k, 1), margin=(self.margin, 0))

    def propose(self, ctx: ThemeContext) -> list[Span] | None:
        Cq = theme_query(ctx.theme, feature_rate=CHROMA_RATE, tempo_bpm=ctx.tempo_bpm)
        try:
            spec = IndexSpec(self.index, self.reduction, self.dim, self.params, self.update)
            idx = get_index(ctx.collection, spec, config=self.config)
            qs = query_shingles(Cq, config=self.config, tempo_factors=self.tempo_factors,
                                transpositions=ctx.shifts, name=ctx.theme.name)  # fmt: skip
        except InputError as exc:
            log.info("%s: no shingle proposals", exc)
            return None
        D, L = idx.search_vectors(qs.S, k=self.k)
        row_of = {r.id: i for i, r in enumerate(ctx.recs)}
        theme_frames = Cq.shape[1] * ctx.rate / CHROMA_RATE
        spans: list[Span] = []
        for g in score_regions(qs, D, L, idx.rec_ids, idx.starts, per_recording=1)[: self.candidates]:
            i = row_of.get(g.recording_id)
            if i is None:
                continue
            if self.regions:
                w = self.margin * theme_frames / qs.variants[g.variant][0]
                rate = self.config.frame_rate
                spans.append(ctx.region(i, g.start / rate * ctx.rate, g.end / rate * ctx.rate, w))
            else:
                spans.append((i, 0, ctx.length(i), None))
        return spans


# -- cascades ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ThemeCascade:
    """Proposers (their proposals united), verified by the exact DTW; a fallback for what they miss.

    Attributes
    ----------
    proposers : tuple
        Stages with ``propose(ctx) -> list[Span] | None`` (None: this theme cannot be proposed for).
    fallback_cost : float, optional
        Search the whole collection (``fallback``) when the best verified match costs more (None: never).
    fallback : {"exhaustive", "coarse"}
        The exhaustive search, or the coarse cascade with the same number of candidates.
    """

    proposers: tuple
    fallback_cost: float | None = None
    fallback: str = "exhaustive"

    def __post_init__(self) -> None:
        if not self.proposers:
            raise ParameterError("a cascade needs at least one proposer")
        if self.fallback not in ("exhaustive", "coarse"):
            raise ParameterError(f"fallback={self.fallback!r} must be 'exhaustive' or 'coarse'")
        if self.fallback_cost is not None and not self.fallback_cost >= 0:
            raise ParameterError(f"fallback_cost={self.fallback_cost} must be >= 0")

    @property
    def candidates(self) -> int:
        return max(p.candidates for p in self.proposers)

    def with_candidates(self, candidates: int) -> ThemeCascade:
        """The same cascade with ``candidates`` recordings per proposer."""
        return dataclasses.replace(
            self, proposers=tuple(dataclasses.replace(p, candidates=candidates) for p in self.proposers)
        )


_COARSE_FALLBACK = {"fallback_cost": NOTE_FALLBACK_COST, "fallback": "coarse"}

#: the named theme cascades (CLI ``--cascade``, the HTTP API, benchmarks); defaults chosen on the validation
#: split (docs/benchmarks.md, "Theme cascade as the collection grows")
THEME_PRESETS: dict[str, ThemeCascade] = {
    "notes": ThemeCascade((NoteIndexProposer(), NoteAlignProposer()), **_COARSE_FALLBACK),
    "notes-only": ThemeCascade((NoteIndexProposer(),), **_COARSE_FALLBACK),
    "align": ThemeCascade((NoteAlignProposer(),), **_COARSE_FALLBACK),
    "coarse": ThemeCascade((CoarseProposer(),)),
    "index": ThemeCascade((ShingleProposer(),)),
}


def cascade_search_theme(
    collection,
    theme: Theme,
    *,
    cascade: ThemeCascade | str = "coarse",
    top: int = 10,
    per_recording: int = 3,
    features: str = "chroma",
    tempo_bpm: float | None = None,
    tempo_factors: Sequence[float] = (1.0,),
    transpositions: Sequence[int] = range(12),
    max_cost: float = np.inf,
    query_tail: tuple[float, float] | None = None,
    stats: dict | None = None,
) -> list[Match]:
    """Theme search through a cascade: proposals, then the exact subsequence DTW on them only.

    Parameters
    ----------
    collection : Collection
    theme : Theme
    cascade : ThemeCascade or str
        A cascade or the name of a preset (:data:`THEME_PRESETS`).
    top, per_recording, features, tempo_bpm, tempo_factors, transpositions, max_cost, query_tail
        As in :func:`mirsearch.search.theme.search_theme`: the verifier and the fallback run the exhaustive search's
        query (the proposers read the theme's notes or their own query).
    stats : dict, optional
        Filled with ``candidates`` (recordings verified), ``candidate_ids``, ``proposed_ids``, ``proposal_ms``,
        ``dtw_ms``, ``frames_searched``, ``frames_total``, ``fallback`` (False; True for a theme no proposer
        could handle; ``"cost"`` after ``fallback_cost``, then also ``exhaustive_ms``).

    Returns
    -------
    list of Match
        Best first, as the exhaustive search returns them.
    """
    if isinstance(cascade, str):
        if cascade not in THEME_PRESETS:
            raise ParameterError(f"cascade={cascade!r} must be one of {', '.join(THEME_PRESETS)}")
        cascade = THEME_PRESETS[cascade]
    check_theme_search(theme, top=top, per_recording=per_recording, tempo_factors=tempo_factors)
    stats = stats if stats is not None else {}
    common = {"top": top, "per_recording": per_recording, "features": features, "tempo_bpm": tempo_bpm,
              "tempo_factors": tuple(tempo_factors), "transpositions": sorted({int(s) % 12 for s in transpositions}),
              "max_cost": max_cost, "query_tail": query_tail}  # fmt: skip
    Y, offsets, recs, rate = collection.database(features)
    ctx = ThemeContext(collection, theme, features, tempo_bpm, common["tempo_factors"],
                       tuple(common["transpositions"]), Y, offsets, recs, rate, query_tail)  # fmt: skip
    t0 = time.perf_counter()
    spans = _propose(cascade, ctx)
    t1 = time.perf_counter()
    if spans is None:
        stats.update(fallback=True, candidates=None)
        return _fallback(collection, theme, cascade, common, {})
    timing = {"proposal_ms": (t1 - t0) * 1000, "frames_total": int(offsets[-1])}
    matches, frames = _verify(ctx, spans, per_recording=per_recording, max_cost=max_cost) if spans else ([], 0)
    t2 = time.perf_counter()
    proposed = sorted({recs[s[0]].id for s in spans})
    fallback_cost = cascade.fallback_cost
    if fallback_cost is not None and (not matches or matches[0].cost > fallback_cost):
        log.info("%s: best candidate cost above %g: %s search", theme.name, fallback_cost, cascade.fallback)
        fb_stats: dict = {}
        found = _fallback(collection, theme, cascade, common, fb_stats)
        stats.update(timing, fallback="cost", proposed_ids=proposed, dtw_ms=(t2 - t1) * 1000,
                     exhaustive_ms=(time.perf_counter() - t2) * 1000,
                     candidates=fb_stats.get("candidates", len(recs)),
                     candidate_ids=fb_stats.get("candidate_ids", [r.id for r in recs]),
                     frames_searched=fb_stats.get("frames_searched", int(offsets[-1])))  # fmt: skip
        return found
    stats.update(timing, fallback=False, candidates=len(proposed), candidate_ids=proposed, proposed_ids=proposed,
                 dtw_ms=(t2 - t1) * 1000, frames_searched=frames)  # fmt: skip
    return matches[:top]


def _propose(cascade: ThemeCascade, ctx: ThemeContext) -> list[Span] | None:
    """The united, merged proposals of every proposer; None when one of them cannot handle the theme."""
    spans: list[Span] = []
    for proposer in cascade.proposers:
        found = proposer.propose(ctx)
        if found is None:
            return None
        spans += found
    every = tuple(ctx.shifts)
    return [s for s in _merge_spans([(i, a, b, sh or every) for i, a, b, sh in spans]) if s[2] > s[1]]


def _fallback(collection, theme: Theme, cascade: ThemeCascade, common: dict, stats: dict) -> list[Match]:
    if cascade.fallback == "coarse":
        coarse = THEME_PRESETS["coarse"].with_candidates(cascade.candidates)
        return cascade_search_theme(collection, theme, cascade=coarse, stats=stats, **common)
    return search_theme(collection, theme, **common)


def _merge_spans(spans: list[Span]) -> list[Span]:
    """Merge overlapping spans of the same recording; their transpositions are united."""
    out: list[Span] = []
    for i, a, b, sh in sorted(spans):
        if out and out[-1][0] == i and a <= out[-1][2]:
            out[-1] = (i, out[-1][1], max(out[-1][2], b), tuple(sorted(set(out[-1][3]) | set(sh))))
        else:
            out.append((i, a, b, tuple(sorted(set(sh)))))
    return out


# -- the verifier: exact subsequence DTW on the proposed spans ----------------------------------------------
def _verify(ctx: ThemeContext, spans: list[Span], *, per_recording: int, max_cost: float):
    """Matches (best first) of the exhaustive search's DTW run on ``spans`` only, and the frames searched."""
    cost, start, shift, factor, sub_off = _dtw_on_spans(ctx.Y, ctx.offsets, spans, ctx.queries())
    matches: list[Match] = []
    by_rec: dict[int, list[int]] = {}
    for j, span in enumerate(spans):
        by_rec.setdefault(span[0], []).append(j)
    for i, js in by_rec.items():
        found = []
        for j in js:
            lo, hi = sub_off[j], sub_off[j + 1]
            a = spans[j][1]
            for s, e, c in find_matches(cost[lo:hi], start[lo:hi] - lo, top=per_recording, max_cost=max_cost):
                found.append((c, s + a, e + a, int(shift[lo + e]), float(factor[lo + e])))
        found.sort()
        rec = ctx.recs[i]
        matches += [
            Match(recording=rec.path, recording_id=rec.id, start=s / ctx.rate, end=(e + 1) / ctx.rate,
                  cost=float(c), transposition=t, extra={"tempo_factor": f})
            for c, s, e, t, f in found[:per_recording]
        ]  # fmt: skip
    matches.sort(key=lambda m: m.cost)
    return matches, int(sub_off[-1])


def _dtw_on_spans(Y: np.ndarray, offsets: np.ndarray, spans: list[Span], queries: list[tuple[np.ndarray, float]]):
    """Subsequence DTW of unit-row queries over database spans, each in its own transpositions.

    Returns the concatenated sub-database's best cost, start, shift and tempo factor per frame, and the frame
    offsets of the spans in it.
    """
    pieces = [Y[offsets[i] + a : offsets[i] + b] for i, a, b, _ in spans]
    sub_off = np.cumsum([0] + [len(p) for p in pieces]).astype(np.int64)
    n = int(sub_off[-1])
    best_cost = np.full(n, np.inf)
    best_start = np.zeros(n, np.int64)
    best_shift = np.zeros(n, np.int64)
    best_factor = np.ones(n)
    groups: dict[tuple[int, ...], list[int]] = {}
    for j, span in enumerate(spans):
        groups.setdefault(tuple(span[3]), []).append(j)
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
            best_start[idx] = rows[start[better]]  # starts index the group's concatenation
            best_shift[idx] = shift[better]
            best_factor[idx] = factor
    return best_cost, best_start, best_shift, best_factor, sub_off


# -- the coarse database ----------------------------------------------------------------------------------
def _block_rows(X: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Unit-length means of row blocks ``X[starts[j]:starts[j+1]]`` (last block to the end)."""
    return unit_columns(np.add.reduceat(np.asarray(X, dtype=np.float32), starts, axis=0).T)


def coarse_database(collection, *, features: str = "chroma", factor: int = 4):
    """The collection's database (:meth:`Collection.database`) averaged over blocks of ``factor`` frames.

    Blocks never cross a recording boundary. A view of the collection (memoised per generation).

    Returns
    -------
    Yc : np.ndarray, shape (n_blocks, 12), float32 unit rows
    offsets : np.ndarray, shape (n_recordings + 1,), int64
        Recording ``i`` occupies blocks ``offsets[i]:offsets[i+1]``.
    """

    def build():
        Y, offsets, _, _ = collection.database(features)
        lengths = np.diff(offsets)
        counts = -(-lengths // factor)
        starts = np.concatenate([off + np.arange(0, n, factor) for off, n in zip(offsets[:-1], lengths, strict=True)])
        return _block_rows(Y, starts.astype(np.int64)), np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    return collection.views.get(("coarse", features, int(factor)), build)


# -- cascades from flat option dicts (benchmark variant specs) ----------------------------------------------
_SPEC_KEYS = {
    "candidates": "candidates", "regions": "regions", "margin": "margin", "coarse_factor": "factor",
    "ngram": "ngram", "tolerance": "tolerance", "note_regions": "per_recording", "skips": "skips",
    "note_options": "note_options", "dtw_shifts": "dtw_shifts", "k": "k", "proposal_tempo_factors": "tempo_factors",
    "index": "index", "reduction": "reduction", "dim": "dim", "config": "config", "params": "params",
    "update": "update",
}  # fmt: skip


def cascade_from_spec(spec: dict) -> ThemeCascade:
    """A cascade from a flat dict of options, as benchmark variants spell them.

    ``proposal`` ("notes", "align", "coarse", "index") picks the preset; ``align=False`` leaves the alignment out
    of "notes"; ``fallback`` and ``fallback_cost`` set the fallback; every other key (:data:`_SPEC_KEYS`) is set on
    each proposer that has that option. Unknown keys raise :class:`ParameterError`.
    """
    spec = dict(spec)
    proposal = spec.pop("proposal", "coarse")
    name = "notes-only" if proposal == "notes" and spec.pop("align", True) is False else proposal
    if name not in THEME_PRESETS:
        raise ParameterError(f"proposal={proposal!r} must be one of notes, align, coarse, index")
    cascade = THEME_PRESETS[name]
    top_level = {k: spec.pop(k) for k in ("fallback", "fallback_cost") if k in spec}
    unknown = set(spec) - set(_SPEC_KEYS)
    if unknown:
        raise ParameterError(f"unknown cascade option(s): {', '.join(sorted(unknown))}")
    for key in ("note_options", "params"):
        if isinstance(spec.get(key), dict):
            spec[key] = tuple(sorted(spec[key].items()))
    proposers = []
    for p in cascade.proposers:
        names = {f.name for f in dataclasses.fields(p)}
        proposers.append(
            dataclasses.replace(p, **{_SPEC_KEYS[k]: v for k, v in spec.items() if _SPEC_KEYS[k] in names})
        )
    return dataclasses.replace(cascade, proposers=tuple(proposers), **top_level)
