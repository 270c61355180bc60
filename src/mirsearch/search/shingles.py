"""Shingle-index search: cross-version retrieval in milliseconds, and index cascades for theme / audio search.

The index itself (building, opening, updating) is :mod:`mirsearch.index.shingle_index`.

Cross-version retrieval (:func:`search_shingles`)
-------------------------------------------------
The query's 10 Hz chroma is resampled by each tempo factor (multiple scaling), turned into CENS and cut
into shingles (hop 1 s); each shingle (and optionally each of its 12 transpositions) asks the index for
its ``k`` nearest database shingles. A hit of query shingle ``j`` at database frame ``p`` *votes* for
the query starting at ``p - j`` in that recording. Hits of one recording are grouped by that implied
start (within ``tolerance`` frames) into regions. The cost of a region for one scaled variant of the
query is the mean, over the variant's query shingles, of the distance of the shingle's best hit in the
region, or of its ``k``-th neighbour distance when it has none there (an upper bound of the distance it
would have); a region's cost is the minimum over the variants, and recordings are ranked by their best
region. With a one-shingle query this is the minimum shingle distance of the reference
(Zalkow & Müller 2020); longer queries get the more robust average. Each returned :class:`Match` spans
the region; ``extra`` holds ``votes`` (query shingles with a hit in the region), ``tempo_factor`` (of the
best variant), ``best_distance`` and ``shingle_positions`` (database seconds of the best hits).

The two-stage cascades built on this index are in :mod:`mirsearch.search.cascade`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mirsearch.errors import InputError, ParameterError
from mirsearch.features.audio_match import SHINGLE_TEMPO_FACTORS, AudioMatchConfig
from mirsearch.features.shingles import CHROMA_RATE, DEFAULT_CONFIG, SHINGLE_MATCH, ShingleConfig, cens_of, shingles
from mirsearch.index.shingle_index import IndexSpec, ShingleIndex
from mirsearch.search.audio_query import AudioQuery
from mirsearch.search.results import Match

log = logging.getLogger(__name__)

#: query scalings of cross-version search (:data:`~mirsearch.features.audio_match.SHINGLE_TEMPO_FACTORS`)
TEMPO_FACTORS = SHINGLE_TEMPO_FACTORS
#: shingles for theme proposals: 6 frames of 2 Hz CENS (3 s, 72 dims), light smoothing
THEME_CONFIG = ShingleConfig(length=6, hop=1, window=11, downsample=5)
#: theme tempo scalings of the proposal stage (the theme's notated tempo is a guess)
THEME_TEMPO_FACTORS = (0.55, 0.7, 0.85, 1.0, 1.2, 1.45, 1.75)


# -- query shingles ----------------------------------------------------------------------------------------
@dataclass
class QueryShingles:
    """Shingles of every scaled / transposed variant of a query.

    Attributes
    ----------
    S : np.ndarray, shape (n, dim)
    variant : np.ndarray, shape (n,), int64
        Index into ``variants`` of each row.
    position : np.ndarray, shape (n,), int64
        Shingle index ``j`` within its variant (CENS frames from the variant's start).
    variants : list of (tempo_factor, transposition, n_frames)
        ``n_frames``: CENS frames of the scaled query (its length in database frames).
    """

    S: np.ndarray
    variant: np.ndarray
    position: np.ndarray
    variants: list[tuple[float, int, int]]


def query_shingles(
    C: np.ndarray,
    *,
    config: ShingleConfig = DEFAULT_CONFIG,
    tempo_factors: Sequence[float] = TEMPO_FACTORS,
    transpositions: Sequence[int] = (0,),
    name: str = "query",
    cens: Sequence[np.ndarray] | None = None,
) -> QueryShingles:
    """Shingles of a 10 Hz chroma query at several tempo factors and transpositions.

    Parameters
    ----------
    C : np.ndarray, shape (12, n_frames)
        Query chroma at 10 Hz (non-negative).
    config : ShingleConfig
    tempo_factors : sequence of float > 0
        The query is played this many times as fast before CENS (see
        :func:`~mirsearch.features.shingles.scale_tempo`).
    transpositions : sequence of int
        Semitones the query is transposed up (cyclic chroma shifts).
    name : str
        For error messages.
    cens : sequence of np.ndarray, optional
        ``cens_of(C, config=config, tempo_factor=f)`` for each of ``tempo_factors``, when the caller
        has computed it already.
    """
    C = np.asarray(C, dtype=np.float32)
    if C.ndim != 2 or C.shape[0] != 12:
        raise ParameterError(f"{name}: chroma must have shape (12, n_frames), got {C.shape}")
    factors = [float(f) for f in tempo_factors]
    if not factors or any(not f > 0 for f in factors):
        raise ParameterError(f"tempo_factors={tempo_factors!r} must be non-empty and > 0")
    shifts = sorted({int(t) % 12 for t in transpositions})
    if not shifts:
        raise ParameterError("transpositions must not be empty")
    parts, var, pos, variants = [], [], [], []
    if cens is not None and len(cens) != len(factors):
        raise ParameterError(f"cens: {len(cens)} arrays for {len(factors)} tempo factors")
    for i, f in enumerate(factors):
        X = cens[i] if cens is not None else cens_of(C, config=config, tempo_factor=f)
        S0, starts = shingles(X, length=config.length, hop=config.hop)
        if len(S0) == 0:
            continue
        frames = S0.reshape(len(S0), config.length, 12)
        for t in shifts:  # a transposition rolls the chroma axis of every frame (norms unchanged)
            S = np.roll(frames, t, axis=2).reshape(len(S0), -1) if t else S0
            parts.append(S)
            var.append(np.full(len(S), len(variants), np.int64))
            pos.append(starts)
            variants.append((f, t, int(X.shape[1])))
    if not parts:
        need = config.length / config.frame_rate * min(factors)
        raise InputError(
            f"{name}: too short for {config.length}-frame shingles "
            f"({C.shape[1] / CHROMA_RATE:.1f} s; needs about {need:.1f} s with tempo factor {min(factors):g})"
        )
    return QueryShingles(np.concatenate(parts), np.concatenate(var), np.concatenate(pos), variants)


# -- voting ------------------------------------------------------------------------------------------------
@dataclass
class Region:
    """A proposed occurrence of the query in a recording (database CENS frames)."""

    recording_id: int
    start: int
    end: int
    cost: float
    votes: int
    variant: int
    best_distance: float
    positions: list[int]


def score_regions(
    qs: QueryShingles,
    D: np.ndarray,
    L: np.ndarray,
    rec_ids: np.ndarray,
    starts: np.ndarray,
    *,
    per_recording: int = 1,
    tolerance: int | None = None,
    exclude: Sequence[int] = (),
    aggregate: str = "mean",
) -> list[Region]:
    """Group nearest-neighbour hits into regions and score them (see the module docstring).

    Parameters
    ----------
    qs : QueryShingles
    D, L : np.ndarray, shape (n_query_shingles, k)
        Distances and row labels from the index.
    rec_ids, starts : np.ndarray, shape (n_rows,)
        Recording id and start frame of every index row.
    per_recording : int
        Regions kept per recording.
    tolerance : int, optional
        Implied query starts within this many frames form one region (default: a quarter of the
        shortest variant, at least 2).
    exclude : sequence of int
        Recording ids to ignore.
    aggregate : {"mean", "min"}
        ``"mean"`` (default): a region's cost is the mean over the query shingles of a variant of their
        best distance in the region (the ``k``-th neighbour distance for shingles without a hit there),
        minimised over the variants: every part of the query has to match, in temporal order.
        ``"min"``: the single smallest shingle distance in the region, the document distance of the
        reference (Zalkow & Müller 2020, one 20 s shingle per query). On the benchmark's validation split
        ``"mean"`` is 4-5 points of P@1 better for 25 s queries (docs/benchmarks.md).

    Returns
    -------
    list of Region
        Best (lowest cost) first.
    """
    if aggregate not in ("mean", "min"):
        raise ParameterError(f"aggregate={aggregate!r} must be 'mean' or 'min'")
    hits = _Hits.of(qs, D, L, rec_ids, starts, exclude)
    lengths = np.asarray([v[2] for v in qs.variants])
    tol = tolerance if tolerance is not None else max(2, int(lengths.min() // 4))
    found: list[tuple[float, int, int, int, Region]] = []
    alive = np.ones(len(hits.dist), bool)
    for round_ in range(per_recording):  # one region per recording and round, all recordings at once
        if not alive.any():
            break
        found += [(g.cost, -g.votes, g.recording_id, round_, g) for g in hits.regions(alive, tol, lengths, aggregate)]
    found.sort(key=lambda t: t[:4])  # ties: by recording, then by round
    return [t[4] for t in found]


@dataclass
class _Hits:
    """The nearest-neighbour hits of a query's shingles, flattened (one entry per kept hit)."""

    qs: QueryShingles
    starts: np.ndarray  # start frame of every index row
    q_idx: np.ndarray  # query shingle of each hit
    labels: np.ndarray  # index row of each hit
    dist: np.ndarray
    rec: np.ndarray  # recording id of each hit
    var: np.ndarray  # query variant of each hit
    implied: np.ndarray  # query start the hit implies (database frames)
    kth: np.ndarray  # per query shingle: its k-th distance (bounds every shingle not retrieved)
    kth_sum: np.ndarray  # per variant: sum of the k-th distances of its shingles
    n_per_var: np.ndarray  # per variant: number of shingles

    @classmethod
    def of(cls, qs: QueryShingles, D, L, rec_ids, starts, exclude) -> _Hits:
        n_var = len(qs.variants)
        k = D.shape[1]
        ok = L >= 0
        if exclude:
            ok &= ~np.isin(np.where(ok, rec_ids[np.maximum(L, 0)], -1), np.asarray(list(exclude)))
        finite = np.isfinite(D)
        fallback = float(D[finite].max()) if finite.any() else 2.0
        kth = np.where(finite[:, -1], D[:, -1], fallback).astype(np.float64)
        q_idx = np.repeat(np.arange(D.shape[0]), k)[ok.ravel()]
        labels = L.ravel()[ok.ravel()]
        return cls(
            qs=qs,
            starts=starts,
            q_idx=q_idx,
            labels=labels,
            dist=D.ravel()[ok.ravel()].astype(np.float64),
            rec=rec_ids[labels],
            var=qs.variant[q_idx],
            implied=starts[labels] - qs.position[q_idx],
            kth=kth,
            kth_sum=np.bincount(qs.variant, weights=kth, minlength=n_var),
            n_per_var=np.bincount(qs.variant, minlength=n_var),
        )

    def regions(self, alive: np.ndarray, tol: int, lengths: np.ndarray, aggregate: str) -> list[Region]:
        """One region per recording from the hits still ``alive`` (which it then consumes)."""
        rec, dist, implied = self.rec, self.dist, self.implied
        hits = np.flatnonzero(alive)
        # seed: the recording's closest remaining hit; members: hits implying about the same query start
        by_rec = hits[np.lexsort((dist[hits], rec[hits]))]
        seeds = by_rec[np.r_[True, rec[by_rec][1:] != rec[by_rec][:-1]]]
        recs_r = rec[seeds]
        g_of_hit = np.searchsorted(recs_r, rec[hits])
        member = hits[np.abs(implied[hits] - implied[seeds][g_of_hit]) <= tol]
        alive[member] = False
        g = np.searchsorted(recs_r, rec[member])
        votes, cost_var = self._variant_costs(member, recs_r)
        if aggregate == "min":  # the seed is the region's closest hit
            v_best, cost = self.var[seeds], dist[seeds].astype(np.float64)
        else:
            v_best = np.argmin(cost_var, axis=1)
            cost = cost_var[np.arange(len(seeds)), v_best]
        start = self._starts(member, g, seeds, recs_r, v_best)
        pos_of = self._closest_positions(member, recs_r)
        lengths_v = lengths[v_best]
        return [
            Region(
                recording_id=int(recs_r[i]),
                start=int(start[i]),
                end=int(start[i] + lengths_v[i]),
                cost=float(cost[i]),
                votes=int(votes[i]),
                variant=int(v_best[i]),
                best_distance=float(dist[seeds[i]]),
                positions=[int(x) for x in pos_of[i]],
            )
            for i in range(len(seeds))
        ]

    def _variant_costs(self, member: np.ndarray, recs_r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Votes per region and its cost per variant: the mean over the variant's shingles of their best
        distance in the region, the k-th distance for the shingles without a hit there."""
        n_g, n_var = len(recs_r), len(self.qs.variants)
        q_idx, dist = self.q_idx, self.dist
        o = member[np.lexsort((dist[member], q_idx[member], np.searchsorted(recs_r, self.rec[member])))]
        go = np.searchsorted(recs_r, self.rec[o])
        first = np.r_[True, (go[1:] != go[:-1]) | (q_idx[o][1:] != q_idx[o][:-1])]
        qb, db, gb = q_idx[o][first], dist[o][first], go[first]
        votes = np.bincount(gb, minlength=n_g)
        weights = self.kth[qb] - db
        gain = np.bincount(gb * n_var + self.qs.variant[qb], weights=weights, minlength=n_g * n_var).reshape(n_g, n_var)
        with np.errstate(invalid="ignore", divide="ignore"):
            cost_var = (self.kth_sum[None, :] - gain) / np.maximum(self.n_per_var, 1)[None, :]
        cost_var[:, self.n_per_var == 0] = np.inf
        return votes, cost_var

    def _starts(self, member, g, seeds, recs_r, v_best) -> np.ndarray:
        """Median implied start of the members of the chosen variant (the seed's when there are none)."""
        implied = self.implied
        start = implied[seeds].astype(np.float64)
        sel = member[self.var[member] == v_best[g]]
        if len(sel):
            gs = np.searchsorted(recs_r, self.rec[sel])
            o2 = np.lexsort((implied[sel], gs))
            x, gs = implied[sel][o2].astype(np.float64), gs[o2]
            counts = np.bincount(gs, minlength=len(seeds))
            lo = np.concatenate([[0], np.cumsum(counts)[:-1]])
            has = counts > 0
            mid_a, mid_b = lo[has] + (counts[has] - 1) // 2, lo[has] + counts[has] // 2
            start[has] = (x[mid_a] + x[mid_b]) / 2
        return np.round(start).astype(np.int64)

    def _closest_positions(self, member, recs_r) -> list[np.ndarray]:
        """Database positions of the 5 closest hits of each region."""
        o3 = member[np.lexsort((self.dist[member], np.searchsorted(recs_r, self.rec[member])))]
        g3 = np.searchsorted(recs_r, self.rec[o3])
        rank = np.arange(len(o3)) - np.searchsorted(g3, g3)
        top5 = o3[rank < 5]
        return np.split(self.starts[self.labels[top5]], np.searchsorted(g3[rank < 5], np.arange(1, len(recs_r))))


# -- search ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShingleSearchOptions:
    """Options of :func:`search_shingles`.

    Attributes
    ----------
    top : int >= 1
        Matches returned.
    k : int >= 1
        Neighbours retrieved per query shingle.
    per_recording : int >= 1
        Regions reported per recording.
    exclude : tuple of int
        Recording ids not to return (e.g. the recording the query was cut from).
    aggregate : {"mean", "min"}
        Region cost (see :func:`score_regions`).
    match : AudioMatchConfig
        Query scalings (default 0.6 .. 1.67) and transpositions (default: none; ``ALL_KEYS`` for versions in
        other keys, 12x slower); its CENS parameters choose the shingles of the index (default 41 / 10).
    index : IndexSpec
        The index searched (kind, reduction, dimension, parameters, update).
    """

    top: int = 10
    k: int = 64
    per_recording: int = 1
    exclude: tuple[int, ...] = ()
    aggregate: str = "mean"
    match: AudioMatchConfig = SHINGLE_MATCH
    index: IndexSpec = IndexSpec()

    def __post_init__(self) -> None:
        if self.top < 1 or self.k < 1 or self.per_recording < 1:
            raise ParameterError(f"top={self.top}, k={self.k} and per_recording={self.per_recording} must be >= 1")
        if self.aggregate not in ("mean", "min"):
            raise ParameterError(f"aggregate={self.aggregate!r} must be 'mean' or 'min'")
        object.__setattr__(self, "exclude", tuple(int(i) for i in self.exclude))

    def replace(self, **changes) -> ShingleSearchOptions:
        return dataclasses.replace(self, **changes)


def shingle_query_chroma(query: AudioQuery, match: AudioMatchConfig = SHINGLE_MATCH) -> np.ndarray:
    """The query's 10 Hz chroma in the recipe of the stored features the shingles are made of."""
    from mirsearch.features.registry import feature_config

    return query.chroma_for(feature_config(match.features, feature_rate=CHROMA_RATE))


def regions_to_matches(collection, regions: list[Region], qs: QueryShingles, config: ShingleConfig) -> list[Match]:
    """Regions of :func:`score_regions` as :class:`Match` objects (seconds; ``extra``: votes, tempo factor, ...)."""
    rate = config.frame_rate
    paths = {r.id: r.path for r in collection.recordings()}
    out = []
    for g in regions:
        f, t, _ = qs.variants[g.variant]
        out.append(
            Match(
                recording=paths.get(g.recording_id, str(g.recording_id)),
                recording_id=g.recording_id,
                start=max(0.0, g.start / rate),
                end=g.end / rate,
                cost=g.cost,
                transposition=int(t),
                extra={
                    "votes": g.votes,
                    "tempo_factor": f,
                    "best_distance": round(g.best_distance, 6),
                    "shingle_positions": [p / rate for p in g.positions],
                },
            )
        )
    return out


def search_shingle_chroma(
    shingle_index: ShingleIndex, C: np.ndarray, options: ShingleSearchOptions = ShingleSearchOptions()
) -> tuple[list[Region], QueryShingles]:
    """Regions of an opened index that match a 10 Hz query chroma (the core of :func:`search_shingles`),
    best first, and the query's shingles."""
    match = options.match
    qs = query_shingles(
        C, config=shingle_index.config, tempo_factors=match.tempo_factors, transpositions=match.transpositions
    )
    D, L = shingle_index.search_vectors(qs.S, k=options.k)
    regions = score_regions(
        qs,
        D,
        L,
        shingle_index.rec_ids,
        shingle_index.starts,
        per_recording=options.per_recording,
        exclude=options.exclude,
        aggregate=options.aggregate,
    )
    return regions[: options.top], qs


def search_shingles(
    collection, query: AudioQuery, options: ShingleSearchOptions = ShingleSearchOptions()
) -> list[Match]:
    """Cross-version retrieval of an audio excerpt with the shingle index.

    Parameters
    ----------
    collection : Collection
    query : AudioQuery
        At least about 20 s (one shingle at the slowest scaling), 20-30 s recommended.
    options : ShingleSearchOptions

    Returns
    -------
    list of Match
        Best first; ``cost`` is the mean shingle distance of the best region (0 = identical),
        ``extra`` holds ``votes``, ``tempo_factor``, ``best_distance``, ``shingle_positions``,
        ``query_seconds`` and ``search_ms``.
    """
    t0 = time.perf_counter()
    C = shingle_query_chroma(query, options.match)
    idx = options.index.open(collection, config=ShingleConfig.for_match(options.match))
    t1 = time.perf_counter()
    regions, qs = search_shingle_chroma(idx, C, options)
    matches = regions_to_matches(collection, regions, qs, idx.config)
    ms = (time.perf_counter() - t1) * 1000
    for m in matches:
        m.extra["query_seconds"] = round(C.shape[1] / CHROMA_RATE, 2)
        m.extra["search_ms"] = round(ms, 2)
    log.info(
        "shingle search (%s-%s, %d shingles): %d matches, %.1f ms search, %.1f ms total",
        idx.reduction.name,
        options.index.kind,
        len(idx),
        len(matches),
        ms,
        (time.perf_counter() - t0) * 1000,
    )
    return matches


__all__ = [
    "SHINGLE_MATCH",
    "TEMPO_FACTORS",
    "THEME_CONFIG",
    "THEME_TEMPO_FACTORS",
    "QueryShingles",
    "Region",
    "ShingleSearchOptions",
    "query_shingles",
    "regions_to_matches",
    "score_regions",
    "search_shingle_chroma",
    "search_shingles",
    "shingle_query_chroma",
]
