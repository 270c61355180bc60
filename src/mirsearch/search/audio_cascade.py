"""Audio matching in two stages: shingle proposals, then CENS subsequence DTW in the proposed regions.

:func:`cascade_search_audio` first lets the collection's shingle index propose candidate recordings and
regions, then runs the exact subsequence-DTW matching of the exhaustive search (CENS at several tempo
factors, Müller, Kurth, Clausen 2005) on the candidates only, so the ranking among the candidates is
exactly the exhaustive one. :func:`cens_cascade` is the same on arrays; ``proposal="none"`` (no shingle
index) is the exhaustive search.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence

import numpy as np

from mirsearch.errors import ParameterError
from mirsearch.features.shingles import DEFAULT_CONFIG, ShingleConfig, cens_of
from mirsearch.index.shingle_index import get_index
from mirsearch.search.results import Match
from mirsearch.search.shingles import TEMPO_FACTORS, query_chroma, query_shingles, score_regions

_CENS_DB: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cens_database(collection, *, config: ShingleConfig = DEFAULT_CONFIG):
    """CENS of every recording of a collection, concatenated with unit-length frames; memoised.

    Memoised per collection object and shingle configuration until the collection's
    :meth:`~mirsearch.collection.collection.Collection.generation` moves (the audio cascade then reads no
    features per query).

    Returns
    -------
    Y : np.ndarray, shape (n_frames, 12), float32
        Unit-length CENS frames at ``config.frame_rate`` of all recordings, one after the other.
    offsets : np.ndarray, shape (n_recordings + 1,), int64
        Recording ``recordings[i]`` occupies rows ``offsets[i]:offsets[i+1]``.
    recordings : list of Recording
        In catalogue order.
    """
    from mirsearch.matching.subsequence import unit_columns

    token = collection.generation()
    per = _CENS_DB.setdefault(collection, {})
    hit = per.get(config)
    if hit is not None and hit[0] == token:
        return hit[1]
    recs = collection.recordings()
    parts = [
        unit_columns(cens_of(np.asarray(collection.load_features(r.id, config.features)[0]), config=config))
        for r in recs
    ]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    Y = np.ascontiguousarray(np.concatenate(parts)) if parts else np.zeros((0, 12), np.float32)
    value = (Y, offsets, recs)
    per[config] = (token, value)
    return value


def cens_cascade(
    C: np.ndarray,
    Y: np.ndarray,
    offsets: np.ndarray,
    ids: np.ndarray,
    *,
    shingle_index=None,
    config: ShingleConfig = DEFAULT_CONFIG,
    candidates: int = 16,
    margin: float = 0.5,
    tempo_factors: Sequence[float] = TEMPO_FACTORS,
    transpositions: Sequence[int] = (0,),
    k: int = 64,
    per_recording: int = 1,
    exclude: Sequence[int] = (),
    stats: dict | None = None,
) -> list[tuple[int, int, int, float, int, float]]:
    """Audio matching with multiple scaling over a CENS database, optionally on shingle proposals only.

    The core of :func:`cascade_search_audio` on arrays (a benchmark can pass a database that is not a
    collection). The query's CENS is computed once per tempo factor and serves both stages.

    Parameters
    ----------
    C : np.ndarray, shape (12, n_frames)
        Query chroma at 10 Hz.
    Y : np.ndarray, shape (n_db_frames, 12), float32
        Unit-length database CENS frames at ``config.frame_rate`` (:func:`cens_database`).
    offsets : np.ndarray, shape (n_recordings + 1,)
        Recording ``ids[i]`` occupies rows ``offsets[i]:offsets[i+1]``.
    ids : np.ndarray, shape (n_recordings,)
        Recording ids (those of the shingle index's ``rec_ids``).
    shingle_index : optional
        Anything with ``config``, ``rec_ids``, ``starts`` and ``search_vectors(S, k=)`` (a
        :class:`~mirsearch.index.shingle_index.ShingleIndex`): stage 1 proposes the ``candidates`` best
        recordings with their best region, stage 2 runs only there, widened by ``margin`` query lengths
        on each side. None: stage 2 on every whole recording (the exhaustive search).
    config : ShingleConfig
        CENS parameters of ``Y`` when there is no ``shingle_index``.
    candidates, margin, tempo_factors, transpositions, k, per_recording, exclude
        As in :func:`cascade_search_audio`.
    stats : dict, optional
        Filled with ``candidates``, ``proposal_ms``, ``dtw_ms``, ``frames_searched``, ``frames_total``.

    Returns
    -------
    list of (recording id, start frame, end frame (exclusive), cost, transposition, tempo factor)
        Frames of ``Y``'s rate within the recording; best (lowest cost) first.
    """
    from mirsearch.matching.subsequence import best_over_shifts, find_matches, unit_columns

    if candidates < 1 or per_recording < 1 or k < 1:
        raise ParameterError(f"candidates={candidates}, per_recording={per_recording} and k={k} must be >= 1")
    if margin < 0:
        raise ParameterError(f"margin={margin} must be >= 0")
    stats = stats if stats is not None else {}
    t0 = time.perf_counter()
    if shingle_index is not None:
        config = shingle_index.config
    C = np.asarray(C, dtype=np.float32)
    factors = [float(f) for f in tempo_factors]
    cens = [cens_of(C, config=config, tempo_factor=f) for f in factors]
    shifts = sorted({int(t) % 12 for t in transpositions})
    skip = set(int(e) for e in exclude)
    row_of = {int(r): i for i, r in enumerate(ids)}
    if shingle_index is not None:
        qs = query_shingles(C, config=config, tempo_factors=factors, transpositions=shifts, cens=cens)
        D, L = shingle_index.search_vectors(qs.S, k=k)
        regions = score_regions(qs, D, L, shingle_index.rec_ids, shingle_index.starts, exclude=list(skip))
        spans = []
        for g in regions[:candidates]:
            i = row_of.get(g.recording_id)
            if i is None:
                continue
            n = int(offsets[i + 1] - offsets[i])
            w = int(margin * (g.end - g.start))
            a, b = max(0, g.start - w), min(n, g.end + w)
            if b - a >= 2:
                spans.append((i, a, b))
        pieces = [Y[offsets[i] + a : offsets[i] + b] for i, a, b in spans]
        Ys = np.ascontiguousarray(np.concatenate(pieces)) if pieces else np.zeros((0, 12), np.float32)
        sub_off = np.cumsum([0] + [len(x) for x in pieces]).astype(np.int64)
    else:
        # every whole recording, in place (no copy); excluded recordings are dropped from the results
        Ys, sub_off = Y, np.asarray(offsets, dtype=np.int64)
        spans = [(i, 0, int(offsets[i + 1] - offsets[i])) for i in range(len(ids))]
    t1 = time.perf_counter()
    out: list[tuple[int, int, int, float, int, float]] = []
    if len(Ys):
        reset = np.zeros(len(Ys), np.bool_)
        reset[sub_off[:-1][sub_off[:-1] < len(Ys)]] = True
        best_cost = np.full(len(Ys), np.inf)
        best_start = np.zeros(len(Ys), np.int64)
        best_shift = np.zeros(len(Ys), np.int64)
        best_factor = np.ones(len(Ys))
        for f, X in zip(factors, cens, strict=True):
            cost, start, shift = best_over_shifts(unit_columns(X), Ys, shifts, reset=reset)
            better = cost < best_cost
            best_cost[better], best_start[better] = cost[better], start[better]
            best_shift[better], best_factor[better] = shift[better], f
        for j, (i, a, _b) in enumerate(spans):
            if int(ids[i]) in skip:
                continue
            lo, hi = int(sub_off[j]), int(sub_off[j + 1])
            for s_, e, c in find_matches(best_cost[lo:hi], best_start[lo:hi] - lo, top=per_recording):
                out.append(
                    (int(ids[i]), s_ + a, e + a + 1, float(c), int(best_shift[lo + e]), float(best_factor[lo + e]))
                )
    out.sort(key=lambda m: m[3])
    stats.update(
        candidates=len({i for i, _, _ in spans if int(ids[i]) not in skip}),
        proposal_ms=(t1 - t0) * 1000,
        dtw_ms=(time.perf_counter() - t1) * 1000,
        frames_searched=int(len(Ys)),
        frames_total=int(offsets[-1]),
    )
    return out


def cascade_search_audio(
    collection,
    query,
    *,
    top: int = 10,
    per_recording: int = 1,
    candidates: int = 16,
    margin: float = 0.5,
    tempo_factors: Sequence[float] = TEMPO_FACTORS,
    transpositions: Sequence[int] = (0,),
    proposal: str = "index",
    index: str = "hnsw",
    reduction="embedding",
    dim: int | None = 12,
    k: int = 64,
    exclude: Sequence[int] = (),
    sr: int | None = None,
    params: dict | None = None,
    stats: dict | None = None,
) -> list[Match]:
    """Audio matching in two stages: shingle proposals, then CENS subsequence DTW in the proposed regions.

    Stage 1 asks the collection's shingle index (:func:`~mirsearch.index.shingle_index.get_index`) for the
    best region of the ``candidates`` best recordings (the voting of
    :func:`~mirsearch.search.shingles.search_shingle_chroma`). Stage 2 matches the query's CENS (41 / 10,
    1 Hz) at every tempo factor with subsequence DTW (cosine cost, default steps) against each region
    widened by ``margin`` query lengths on each side, keeping the best over factors and transpositions,
    as audio matching with multiple scaling does (Müller, Kurth, Clausen 2005). ``cost`` of a match is
    the DTW cost (mean cosine distance along the path). ``proposal="none"`` skips stage 1 and runs stage
    2 on every whole recording: the exhaustive search the cascade is measured against. The collection's
    CENS is computed once and memoised (:func:`cens_database`); the work is :func:`cens_cascade`.

    Parameters are those of :func:`~mirsearch.search.shingles.search_shingles`; ``stats`` (a dict) is
    filled with ``setup_ms`` (query chroma, index and database lookup) and what :func:`cens_cascade`
    reports.
    """
    if proposal not in ("index", "none"):
        raise ParameterError(f"proposal={proposal!r} must be 'index' or 'none'")
    stats = stats if stats is not None else {}
    t0 = time.perf_counter()
    C = query if isinstance(query, np.ndarray) and query.ndim == 2 else query_chroma(query, sr=sr)
    idx = None
    if proposal == "index":
        idx = get_index(collection, reduction=reduction, dim=dim, index=index, params=params)
    config = idx.config if idx is not None else DEFAULT_CONFIG
    Y, offsets, recs = cens_database(collection, config=config)
    ids = np.asarray([r.id for r in recs], dtype=np.int64)
    stats["setup_ms"] = (time.perf_counter() - t0) * 1000
    found = cens_cascade(
        C,
        Y,
        offsets,
        ids,
        shingle_index=idx,
        config=config,
        candidates=candidates,
        margin=margin,
        tempo_factors=tempo_factors,
        transpositions=transpositions,
        k=k,
        per_recording=per_recording,
        exclude=exclude,
        stats=stats,
    )
    path_of = {r.id: r.path for r in recs}
    rate = config.frame_rate
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
        for rid, a, b, cost, shift, factor in found[:top]
    ]


__all__ = ["cascade_search_audio", "cens_cascade", "cens_database"]
