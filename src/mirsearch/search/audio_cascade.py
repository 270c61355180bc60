"""Audio matching in two stages: shingle proposals, then an exact matcher on the candidates only.

:func:`cascade_search_audio` first lets the collection's shingle index propose candidate recordings and
regions, then verifies them with an exact matcher (``AudioCascadeOptions.verifier``):

- ``"shingles"`` (default): the query's shingles against *every* shingle of the candidate recordings, exact
  nearest neighbours in the index's reduction (the whitened shingles by default) and the same voting, so the
  ranking among the candidates is that of an exact search over the whole collection (``proposal="none"``);
- ``"passages"``: the ordinary passage search (:func:`mirsearch.search.audio.search_audio`: multiple
  scaling of the query's 2 Hz CENS in every key, then its second stage at 5 Hz) on the candidate recordings
  only, so the ranking among the candidates is exactly that of ``mirsearch search --audio`` and the costs are
  the ones its audio confidence model was fitted on;
- ``"cens"``: subsequence DTW of the query's CENS of the shingles (several tempo factors, Müller, Kurth,
  Clausen 2005) in the proposed regions. :func:`cens_cascade` is this on arrays.

``proposal="none"`` (no shingle index) runs the verifier on every recording: the exhaustive search.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from mirsearch.errors import InputError, ParameterError
from mirsearch.features.audio_match import AudioMatchConfig
from mirsearch.features.shingles import SHINGLE_MATCH, ShingleConfig, cens_of
from mirsearch.index.ann import make_index
from mirsearch.index.audio_database import audio_database
from mirsearch.index.shingle_index import IndexSpec
from mirsearch.matching.subsequence import best_over_shifts, find_matches, unit_columns
from mirsearch.search.audio import (
    PassageOptions,
    PassageResult,
    first_stage_options,
    refine_found,
    resolve_kind,
    search_audio,
)
from mirsearch.search.audio_query import AudioQuery
from mirsearch.search.results import Match
from mirsearch.search.shingles import (
    QueryShingles,
    Region,
    query_shingles,
    regions_to_matches,
    score_regions,
    shingle_query_chroma,
)

#: stage 2 of the audio cascade (module docstring)
VERIFIERS = ("shingles", "passages", "cens")

#: a found match: (recording id, start frame, end frame (exclusive), cost, transposition, tempo factor)
Found = tuple[int, int, int, float, int, float]


@dataclass(frozen=True)
class AudioCascadeOptions:
    """Options of :func:`cascade_search_audio` and :func:`cens_cascade`.

    Attributes
    ----------
    top : int >= 1
        Matches returned (:func:`cascade_search_audio`).
    per_recording : int >= 1
        Matches kept per recording.
    candidates : int >= 1
        Recordings the shingle index proposes (stage 1), each with its best region.
    margin : float >= 0
        Stage 2 runs on each proposed region widened by this many query lengths on each side.
    proposal : {"index", "none"}
        ``"none"`` skips stage 1 and runs stage 2 on every whole recording (the exhaustive search).
    k : int >= 1
        Neighbours retrieved per query shingle in stage 1.
    exclude : tuple of int
        Recording ids neither proposed nor returned.
    match : AudioMatchConfig
        The query's shingles (their CENS and tempo factors) and transpositions (also those of the
        ``"passages"`` verifier); CENS and tempo factors of the ``"cens"`` verifier.
    index : IndexSpec
        The shingle index of stage 1.
    verifier : {"shingles", "passages", "cens"}
        Stage 2 (module docstring).
    passages : PassageOptions
        Method, CENS and tempo factors of the ``"passages"`` verifier (its ``top``, ``per_recording``,
        ``exclude`` and transpositions are this object's).
    """

    top: int = 10
    per_recording: int = 1
    candidates: int = 16
    margin: float = 0.5
    proposal: str = "index"
    k: int = 64
    exclude: tuple[int, ...] = ()
    match: AudioMatchConfig = SHINGLE_MATCH
    index: IndexSpec = IndexSpec()
    verifier: str = "shingles"
    passages: PassageOptions = PassageOptions()

    def __post_init__(self) -> None:
        if self.verifier not in VERIFIERS:
            raise ParameterError(f"verifier={self.verifier!r} must be one of {', '.join(VERIFIERS)}")
        if self.proposal not in ("index", "none"):
            raise ParameterError(f"proposal={self.proposal!r} must be 'index' or 'none'")
        if self.candidates < 1 or self.per_recording < 1 or self.k < 1 or self.top < 1:
            raise ParameterError(
                f"top={self.top}, candidates={self.candidates}, per_recording={self.per_recording} and k={self.k} "
                "must be >= 1"
            )
        if self.margin < 0:
            raise ParameterError(f"margin={self.margin} must be >= 0")
        object.__setattr__(self, "exclude", tuple(int(i) for i in self.exclude))

    def replace(self, **changes) -> AudioCascadeOptions:
        return dataclasses.replace(self, **changes)


def cens_cascade(
    C: np.ndarray,
    Y: np.ndarray,
    offsets: np.ndarray,
    ids: np.ndarray,
    *,
    shingle_index=None,
    options: AudioCascadeOptions = AudioCascadeOptions(),
    stats: dict | None = None,
) -> list[Found]:
    """Audio matching with multiple scaling over a CENS database, optionally on shingle proposals only.

    The core of :func:`cascade_search_audio` on arrays (a benchmark can pass a database that is not a
    collection). The query's CENS is computed once per tempo factor and serves both stages.

    Parameters
    ----------
    C : np.ndarray, shape (12, n_frames)
        Query chroma at 10 Hz.
    Y : np.ndarray, shape (n_db_frames, 12), float32
        Unit-length database CENS frames (those of ``options.match``, or of the shingle index's
        configuration).
    offsets : np.ndarray, shape (n_recordings + 1,)
        Recording ``ids[i]`` occupies rows ``offsets[i]:offsets[i+1]``.
    ids : np.ndarray, shape (n_recordings,)
        Recording ids (those of the shingle index's ``rec_ids``).
    shingle_index : optional
        Anything with ``config``, ``rec_ids``, ``starts`` and ``search_vectors(S, k=)`` (a
        :class:`~mirsearch.index.shingle_index.ShingleIndex`): stage 1 proposes the ``candidates`` best
        recordings with their best region, stage 2 runs only there, widened by ``margin`` query lengths
        on each side. None: stage 2 on every whole recording (the exhaustive search).
    options : AudioCascadeOptions
        ``top`` and ``index`` are not used here.
    stats : dict, optional
        Filled with ``candidates``, ``proposal_ms``, ``dtw_ms``, ``frames_searched``, ``frames_total``.

    Returns
    -------
    list of (recording id, start frame, end frame (exclusive), cost, transposition, tempo factor)
        Frames of ``Y``'s rate within the recording; best (lowest cost) first.
    """
    stats = stats if stats is not None else {}
    t0 = time.perf_counter()
    config = shingle_index.config if shingle_index is not None else ShingleConfig.for_match(options.match)
    C = np.asarray(C, dtype=np.float32)
    factors = list(options.match.tempo_factors)
    shifts = list(options.match.transpositions)
    cens = [cens_of(C, config=config, tempo_factor=f) for f in factors]
    if shingle_index is not None:
        qs = query_shingles(C, config=config, tempo_factors=factors, transpositions=shifts, cens=cens)
        spans = _proposed_spans(qs, shingle_index, offsets, ids, options)
        pieces = [Y[offsets[i] + a : offsets[i] + b] for i, a, b in spans]
        Ys = np.ascontiguousarray(np.concatenate(pieces)) if pieces else np.zeros((0, 12), np.float32)
        sub_off = np.cumsum([0] + [len(x) for x in pieces]).astype(np.int64)
    else:
        # every whole recording, in place (no copy); excluded recordings are dropped from the results
        Ys, sub_off = Y, np.asarray(offsets, dtype=np.int64)
        spans = [(i, 0, int(offsets[i + 1] - offsets[i])) for i in range(len(ids))]
    t1 = time.perf_counter()
    out = _dtw_on_spans(Ys, sub_off, spans, ids, list(zip(factors, cens, strict=True)), shifts, options)
    out.sort(key=lambda m: m[3])
    skip = set(options.exclude)
    stats.update(
        candidates=len({i for i, _, _ in spans if int(ids[i]) not in skip}),
        proposal_ms=(t1 - t0) * 1000,
        dtw_ms=(time.perf_counter() - t1) * 1000,
        frames_searched=int(len(Ys)),
        frames_total=int(offsets[-1]),
    )
    return out


def _proposed_spans(qs, shingle_index, offsets, ids, options: AudioCascadeOptions) -> list[tuple[int, int, int]]:
    """Stage 1: (recording row, first, end frame) of the best region of the ``candidates`` best recordings."""
    D, L = shingle_index.search_vectors(qs.S, k=options.k)
    regions = score_regions(qs, D, L, shingle_index.rec_ids, shingle_index.starts, exclude=list(options.exclude))
    row_of = {int(r): i for i, r in enumerate(ids)}
    spans = []
    for g in regions[: options.candidates]:
        i = row_of.get(g.recording_id)
        if i is None:
            continue
        n = int(offsets[i + 1] - offsets[i])
        w = int(options.margin * (g.end - g.start))
        a, b = max(0, g.start - w), min(n, g.end + w)
        if b - a >= 2:
            spans.append((i, a, b))
    return spans


def _dtw_on_spans(Ys, sub_off, spans, ids, scaled, shifts, options: AudioCascadeOptions) -> list[Found]:
    """Stage 2: subsequence DTW of every scaled query CENS over the spans; the best matches of each span."""
    out: list[Found] = []
    if not len(Ys):
        return out
    reset = np.zeros(len(Ys), np.bool_)
    reset[sub_off[:-1][sub_off[:-1] < len(Ys)]] = True
    best_cost = np.full(len(Ys), np.inf)
    best_start = np.zeros(len(Ys), np.int64)
    best_shift = np.zeros(len(Ys), np.int64)
    best_factor = np.ones(len(Ys))
    for f, X in scaled:
        cost, start, shift = best_over_shifts(unit_columns(X), Ys, shifts, reset=reset)
        better = cost < best_cost
        best_cost[better], best_start[better] = cost[better], start[better]
        best_shift[better], best_factor[better] = shift[better], f
    skip = set(options.exclude)
    for j, (i, a, _b) in enumerate(spans):
        if int(ids[i]) in skip:
            continue
        lo, hi = int(sub_off[j]), int(sub_off[j + 1])
        for s_, e, c in find_matches(best_cost[lo:hi], best_start[lo:hi] - lo, top=options.per_recording):
            out.append((int(ids[i]), s_ + a, e + a + 1, float(c), int(best_shift[lo + e]), float(best_factor[lo + e])))
    return out


def cascade_search_audio(
    collection, query: AudioQuery, options: AudioCascadeOptions = AudioCascadeOptions(), *, stats: dict | None = None
) -> list[Match]:
    """Audio matching in two stages: shingle proposals, then an exact matcher on the candidates.

    Stage 1 asks the collection's shingle index (:class:`~mirsearch.index.shingle_index.IndexSpec`) for the
    ``candidates`` best recordings (the voting of :func:`~mirsearch.search.shingles.search_shingle_chroma`).
    Stage 2 (``options.verifier``):

    - ``"shingles"``: :func:`shingle_cascade`, exact shingle matching on the candidates; ``cost`` and
      ``extra`` as :func:`~mirsearch.search.shingles.search_shingles` (the region's mean shingle distance).
    - ``"passages"``: :func:`~mirsearch.search.audio.search_audio` with ``options.passages`` (and this
      object's transpositions) on the candidate recordings only, both of its stages; ``cost`` and
      ``extra`` are its own (``extra["proposal_rank"]``: the recording's place in stage 1).
    - ``"cens"``: the query's CENS (that of the shingles) at every tempo factor is matched with
      subsequence DTW (cosine cost, default steps) against each proposed region widened by ``margin``
      query lengths on each side, the best over factors and transpositions kept (multiple scaling,
      Müller, Kurth, Clausen 2005); ``cost`` is the DTW cost. The work is :func:`cens_cascade`.

    ``proposal="none"`` skips stage 1: the verifier runs on every recording (the exhaustive search the
    cascade is measured against). ``stats`` (a dict) is filled with ``setup_ms`` (query chroma, index and
    database lookup), ``candidates``, ``proposal_ms`` and the verifier's time (``verify_ms`` or, for
    ``"cens"``, what :func:`cens_cascade` reports).
    """
    stats = stats if stats is not None else {}
    t0 = time.perf_counter()
    config = ShingleConfig.for_match(options.match)
    if options.verifier == "shingles":
        idx = options.index.open(collection, config=config)
        stats["setup_ms"] = (time.perf_counter() - t0) * 1000
        C = shingle_query_chroma(query, options.match)
        regions, qs = shingle_cascade(C, idx, options, stats=stats)
        return regions_to_matches(collection, regions[: options.top], qs, idx.config)
    idx = options.index.open(collection, config=config) if options.proposal == "index" else None
    if options.verifier == "passages":
        stats["setup_ms"] = (time.perf_counter() - t0) * 1000
        return _verify_passages(collection, query, idx, options, stats)
    C = shingle_query_chroma(query, options.match)
    db = audio_database(collection, idx.config.match() if idx is not None else options.match)
    stats["setup_ms"] = (time.perf_counter() - t0) * 1000
    found = cens_cascade(C, db.Y, db.offsets, db.ids, shingle_index=idx, options=options, stats=stats)
    path_of = {r.id: r.path for r in db.recordings}
    rate = db.feature_rate
    return [
        Match(
            recording=path_of[rid],
            recording_id=rid,
            start=a / rate,
            end=b / rate,
            cost=cost,
            transposition=shift,
            extra={"tempo_factor": factor},
        )
        for rid, a, b, cost, shift, factor in found[: options.top]
    ]


def shingle_cascade(
    C: np.ndarray, shingle_index, options: AudioCascadeOptions = AudioCascadeOptions(), *, stats: dict | None = None
) -> tuple[list[Region], QueryShingles]:
    """The ``"shingles"`` cascade on an opened index: the index proposes ``options.candidates`` recordings (all
    of them with ``proposal="none"``), then the query's shingles are matched exactly against every shingle of
    those recordings (in the index's reduction) and voted as :func:`~mirsearch.search.shingles.score_regions`
    does. Returns the regions (best first, at most ``options.per_recording`` per recording) and the query's
    shingles. ``stats``: ``candidates``, ``proposal_ms``, ``verify_ms``, ``rows_searched``."""
    stats = stats if stats is not None else {}
    t0 = time.perf_counter()
    match = options.match
    qs = query_shingles(
        C, config=shingle_index.config, tempo_factors=match.tempo_factors, transpositions=match.transpositions
    )
    rec_ids, starts = shingle_index.rec_ids, shingle_index.starts
    if options.proposal == "index":
        D, L = shingle_index.search_vectors(qs.S, k=options.k)
        proposed = score_regions(qs, D, L, rec_ids, starts, exclude=list(options.exclude))
        rows = np.flatnonzero(np.isin(rec_ids, [g.recording_id for g in proposed[: options.candidates]]))
    else:
        rows = np.flatnonzero(~np.isin(rec_ids, list(options.exclude)))
    t1 = time.perf_counter()
    regions: list[Region] = []
    if len(rows):
        exact = make_index("exact", shingle_index.reduction.dim)
        exact.add(shingle_index.reduction.transform(shingle_index.store.vectors()[rows]))
        D, L = exact.search(shingle_index.reduction.transform(qs.S), k=options.k)
        L = np.where(L >= 0, rows[np.maximum(L, 0)], -1)
        regions = score_regions(qs, D, L, rec_ids, starts, per_recording=options.per_recording)
    stats.update(
        candidates=len(np.unique(rec_ids[rows])),
        proposal_ms=(t1 - t0) * 1000,
        verify_ms=(time.perf_counter() - t1) * 1000,
        rows_searched=int(len(rows)),
    )
    return regions, qs


def proposed_recordings(C: np.ndarray, shingle_index, options: AudioCascadeOptions) -> list[int]:
    """Stage 1 alone: the ids of the ``options.candidates`` recordings whose best shingle region is cheapest
    (best first) for a 10 Hz query chroma ``C``, in the transpositions and tempo factors of ``options.match``."""
    match = options.match
    qs = query_shingles(
        C, config=shingle_index.config, tempo_factors=match.tempo_factors, transpositions=match.transpositions
    )
    D, L = shingle_index.search_vectors(qs.S, k=options.k)
    regions = score_regions(qs, D, L, shingle_index.rec_ids, shingle_index.starts, exclude=list(options.exclude))
    return [g.recording_id for g in regions[: options.candidates]]


def _verify_passages(collection, query: AudioQuery, shingle_index, options: AudioCascadeOptions, stats) -> list[Match]:
    """Stage 1 (the query's shingles' chroma, the proposals), then stage 2 ``"passages"``: the ordinary passage
    search (both of its stages) on the proposed recordings."""
    t0 = time.perf_counter()
    passages = options.passages
    match = passages.match.replace(transpositions=options.match.transpositions)
    popts = passages.replace(top=options.top, per_recording=options.per_recording, match=match, exclude=options.exclude)
    popts = resolve_kind(collection, popts)  # both stages on the stored kind the exhaustive search uses
    db = audio_database(collection, popts.match)
    skip = set(options.exclude)
    if shingle_index is not None:
        order = proposed_recordings(shingle_query_chroma(query, options.match), shingle_index, options)
    else:
        order = [r.id for r in db.recordings if r.id not in skip]
    keep = set(order)
    t1 = time.perf_counter()
    stats.update(candidates=len(keep), proposal_ms=(t1 - t0) * 1000)
    if not keep:
        stats["verify_ms"] = 0.0
        return []
    sub = db.without([r.id for r in db.recordings if r.id not in keep])
    try:
        first = search_audio(sub, query, first_stage_options(popts).replace(curves=True))
    except InputError:  # the query is longer than every candidate at every tempo factor
        first = PassageResult([], [])
    outside = tuple(sorted(skip | {r.id for r in db.recordings if r.id not in keep}))
    matches = refine_found(collection, query, first.matches, popts.replace(exclude=outside), first.curves)
    rank = {rid: i + 1 for i, rid in enumerate(order)}
    for m in matches:
        m.extra["proposal_rank"] = rank.get(m.recording_id)
    stats["verify_ms"] = (time.perf_counter() - t1) * 1000
    return matches


__all__ = [
    "VERIFIERS",
    "AudioCascadeOptions",
    "cascade_search_audio",
    "cens_cascade",
    "proposed_recordings",
    "shingle_cascade",
]
