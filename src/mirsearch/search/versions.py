"""Version identification: rank the recordings of a collection as versions of a query recording.

The query (a whole recording or a long excerpt) is cut into *shingles* of ``shingle_seconds`` every
``hop_seconds``; each shingle is matched with multiple scaling (diagonal matching of its CENS at every tempo
factor of the configuration, :mod:`mirsearch.search.audio`). For a recording ``R`` and a transposition ``k``
the score is

    score(R, k) = mean over shingles i of  min over positions and tempo factors of  cost_i(R, k)

i.e. how well, on average, every part of the query finds a counterpart somewhere in ``R`` (robust to
repeats, cuts and re-ordered sections); ``score(R) = min_k score(R, k)`` over the transpositions
considered. Recordings are ranked by increasing score. With several transpositions in the configuration only
the ``key_candidates`` of them that best correlate the global (mean) chroma of query and recording are tried,
which keeps the cost at two shifts instead of twelve.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import numpy as np

from mirsearch.errors import InputError, ParameterError, check_positive
from mirsearch.features.audio_match import VERSION_MATCH, AudioMatchConfig
from mirsearch.index.audio_database import AudioDatabase
from mirsearch.matching.diagonal import diagonal_costs_shifts, valid_starts
from mirsearch.matching.subsequence import unit_columns
from mirsearch.search.audio import database_for, query_cens, query_chroma
from mirsearch.search.audio_query import AudioQuery
from mirsearch.search.results import Match, rank_matches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionOptions:
    """Options of :func:`identify_versions`.

    Attributes
    ----------
    top : int >= 1
        Number of recordings returned.
    shingle_seconds, hop_seconds : float > 0
        Shingle length and hop (s).
    key_candidates : int in [1, 12]
        Transpositions tried per recording when the configuration has several.
    exclude : tuple of int
        Recording ids left out (e.g. the query itself when it is in the collection).
    match : AudioMatchConfig
        Chroma and CENS (default 41 / 10: 1 Hz, Müller's CENS for matching), tempo factors of the scaled
        shingles and the transpositions considered (default: every key; ``(0,)`` for the query's key only).
    """

    top: int = 10
    shingle_seconds: float = 20.0
    hop_seconds: float = 10.0
    key_candidates: int = 2
    exclude: tuple[int, ...] = ()
    match: AudioMatchConfig = VERSION_MATCH

    def __post_init__(self) -> None:
        check_positive("shingle_seconds", self.shingle_seconds)
        check_positive("hop_seconds", self.hop_seconds)
        if self.top < 1:
            raise ParameterError(f"top={self.top} must be >= 1")
        if not 1 <= self.key_candidates <= 12:
            raise ParameterError(f"key_candidates={self.key_candidates} must be in [1, 12]")
        object.__setattr__(self, "exclude", tuple(int(i) for i in self.exclude))

    def replace(self, **changes) -> VersionOptions:
        return dataclasses.replace(self, **changes)


def key_shifts(query_cens: np.ndarray, rec_cens: np.ndarray, *, n: int = 2, shifts=range(12)) -> list[int]:
    """The ``n`` of ``shifts`` whose rolled global query chroma best correlates with the recording's."""
    shifts = [int(k) for k in shifts]
    q = query_cens.mean(axis=1)
    r = rec_cens.mean(axis=1)
    corr = np.array([float(np.roll(q, k) @ r) for k in shifts])
    return [shifts[i] for i in np.argsort(-corr, kind="stable")[:n]]


def identify_versions(source, query: AudioQuery, options: VersionOptions = VersionOptions()) -> list[Match]:
    """Rank the recordings of a collection as versions of the query (module docstring: the score).

    Parameters
    ----------
    source : Collection or AudioDatabase
        The collection (its CENS database for ``options.match``, memoised per generation) or a prepared
        database (its own CENS parameters are used).
    query : AudioQuery
        A whole recording or a long excerpt (at least ``shingle_seconds``; shorter queries are one shingle).
    options : VersionOptions

    Returns
    -------
    list of Match
        One per recording, best (lowest score) first: ``cost`` is the score, ``start``/``end`` the span of
        the recording that the shingles matched, ``transposition`` the shift, ``extra`` ``shingles``
        (count), ``coverage`` (share of the recording's duration covered by matched shingles) and ``rank``.
    """
    t0 = time.perf_counter()
    db = database_for(source, options.match, options.exclude)
    C = query_chroma(query, db)
    L = max(1, int(round(options.shingle_seconds * db.chroma_rate)))
    H = max(1, int(round(options.hop_seconds * db.chroma_rate)))
    n = C.shape[1]
    starts = list(range(0, max(1, n - L + 1), H)) if n > L else [0]
    shingles = [C[:, s : s + L] for s in starts]
    Q_all = query_cens(C, db=db)
    allowed = options.match.transpositions
    n_keys = options.key_candidates if len(allowed) > 1 else 1
    shift_sets = [key_shifts(Q_all, db.recording_features(i), n=n_keys, shifts=allowed) for i in range(len(db))]
    best, pos = _best_shingle_costs(shingles, db, sorted({k for ks in shift_sets for k in ks}), options.match)
    results = [m for r in range(len(db)) if (m := _version_match(db, r, shift_sets[r], best, pos)) is not None]
    if not results:
        longest = max((float(rec.duration) for rec in db.recordings), default=0.0)
        raise InputError(
            f"{query.name}: no recording of the collection is long enough to compare with it (versions are "
            f"compared in pieces of {options.shingle_seconds:g} s; the longest recording has {longest:.1f} s)"
        )
    results = rank_matches(results, options.top)
    log.info(
        "identify_versions: %d recordings, %d shingles in %.3f s", len(db), len(shingles), time.perf_counter() - t0
    )
    return results


def _best_shingle_costs(shingles: list[np.ndarray], db: AudioDatabase, all_shifts: list[int], match: AudioMatchConfig):
    """``best[k][i, r]``: the lowest cost of shingle ``i`` in recording ``r`` at shift ``k`` over positions and
    tempo factors; ``pos[k][i, r]``: the (first, last) frame of that match in the recording."""
    T = db.Y.shape[0]
    n_sh, R = len(shingles), len(db.recordings)
    best = {k: np.full((n_sh, R), np.inf) for k in all_shifts}
    pos = {k: np.zeros((n_sh, R, 2), dtype=np.int64) for k in all_shifts}
    for factor in match.tempo_factors:
        Qs = [unit_columns(query_cens(sh, db=db, factor=factor)) for sh in shingles]
        for si, Qu in enumerate(Qs):
            N = Qu.shape[0]
            invalid = ~valid_starts(db.offsets, T, N)
            costs = diagonal_costs_shifts(Qu, db.Y, shifts=all_shifts, Yf=db.spectrum())
            costs[:, invalid] = np.inf
            for ki, k in enumerate(all_shifts):
                cost = costs[ki]
                if not np.isfinite(cost).any():
                    continue
                per_rec = np.minimum.reduceat(cost, db.offsets[:-1]).astype(np.float64)
                better = per_rec < best[k][si]
                for r in np.flatnonzero(better):
                    a, b = db.offsets[r], db.offsets[r + 1]
                    m = int(np.argmin(cost[a:b]))
                    pos[k][si, r] = (m, m + N - 1)
                best[k][si, better] = per_rec[better]
    return best, pos


def _version_match(db: AudioDatabase, r: int, shifts: list[int], best: dict, pos: dict) -> Match | None:
    """Recording ``r``'s score at its best shift, or None when no shingle fits in it."""
    n_sh = next(iter(best.values())).shape[0]
    options = []
    for k in shifts:
        c = best[k][:, r]
        ok = np.isfinite(c)
        if not ok.any():
            continue
        # a shingle that fits nowhere in the recording (too long) counts as cost 1 (unrelated)
        options.append((float((c[ok].sum() + (n_sh - ok.sum())) / n_sh), k, ok))
    if not options:
        return None
    score, k, ok = min(options, key=lambda o: o[0])
    spans = pos[k][ok, r]
    covered = np.zeros(db.offsets[r + 1] - db.offsets[r], dtype=bool)
    for s, e in spans:
        covered[s : e + 1] = True
    rec = db.recordings[r]
    return Match(
        recording=rec.path,
        recording_id=int(rec.id),
        start=float(spans[:, 0].min()) / db.feature_rate,
        end=min(float(spans[:, 1].max() + 1) / db.feature_rate, float(rec.duration)),
        cost=score,
        transposition=int(k) % 12,
        extra={"shingles": int(ok.sum()), "coverage": round(float(covered.mean()), 3)},
    )


__all__ = ["VersionOptions", "identify_versions", "key_shifts"]
