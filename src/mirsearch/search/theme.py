"""Theme search: where in a collection of recordings is a (symbolic) melody played?

The theme becomes a chroma sequence at the collection's feature rate (:func:`notes_to_chroma`);
subsequence DTW with the cosine cost compares it, in all 12 cyclic shifts, with every recording of the
concatenated collection (no path crosses a recording boundary), one block of recordings per kernel
call so that a query's memory stays flat. The best end frames per recording give the occurrences; a
neighbourhood around each is suppressed (:func:`rank_occurrences`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from mirsearch.errors import ParameterError
from mirsearch.features.symbolic import notes_to_chroma
from mirsearch.matching.subsequence import best_over_shifts, find_matches, unit_columns
from mirsearch.scores import Theme
from mirsearch.search.results import Match

log = logging.getLogger(__name__)


#: overtone model of the query per database feature kind (notes_to_chroma's ``harmonic_decay``): audio
#: chroma holds the notes' partials, the learned chroma is trained to hold the melody's pitch class only
QUERY_HARMONIC_DECAY = {"chroma": 0.3, "cens": 0.3, "learned": 0.0}

#: the query tail ``(beta, tau)`` of :func:`theme_query` chosen on the validation sets (docs/benchmarks.md, "Theme
#: chroma, session 14")
TAIL = (0.2, 0.5)
#: the query tail the service (CLI, HTTP API, page) uses per database feature kind (:func:`default_query_tail`); a
#: kind not listed gets none. The confidence models of these kinds are fitted on tailed queries.
QUERY_TAIL: dict[str, tuple[float, float]] = {"learned": TAIL}


def default_query_tail(features: str) -> tuple[float, float] | None:
    """The service's query tail for database features ``features`` (:data:`QUERY_TAIL`), None: no tail."""
    return QUERY_TAIL.get(features)


def theme_query(
    theme: Theme,
    *,
    feature_rate: float,
    tempo_bpm: float | None = None,
    tempo_factor: float = 1.0,
    harmonic_decay: float = 0.0,
    tail: tuple[float, float] | None = None,
) -> np.ndarray:
    """Query chroma (12, N) of a theme at ``feature_rate``, played ``tempo_factor`` times as fast.

    ``tail = (beta, tau)`` (off by default; :func:`note_ages`): every frame gets a uniform floor
    ``beta * min(1, t / tau)`` at ``t`` seconds after its note's onset, so the held part of a long note costs less
    where a recording has moved on to other voices (the cosine cost normalises the frames).
    """
    from mirsearch.features.symbolic import DEFAULT_TEMPO_BPM

    bpm = (tempo_bpm or theme.tempo_bpm or DEFAULT_TEMPO_BPM) * tempo_factor
    X = notes_to_chroma(theme, feature_rate=feature_rate, tempo_bpm=bpm, harmonic_decay=harmonic_decay)
    if tail is not None:
        beta, tau = (float(v) for v in tail)
        if not beta >= 0 or not tau > 0:
            raise ParameterError(f"tail={tail}: the floor must be >= 0 and the time > 0 s")
        age = note_ages(theme, feature_rate=feature_rate, tempo_bpm=bpm)
        X = X + (beta * np.minimum(1.0, age / tau)).astype(np.float32)[None, :]
    return X


def note_ages(theme: Theme, *, feature_rate: float, tempo_bpm: float) -> np.ndarray:
    """Seconds since its note's onset of every frame of :func:`~mirsearch.features.symbolic.notes_to_chroma`.

    The frames are counted as ``notes_to_chroma`` counts them (each note's duration at ``tempo_bpm`` rounded with
    the rounding error carried on, at least one frame per note, rests dropped).

    Returns
    -------
    np.ndarray, shape (n_frames,), float64
    """
    frames_per_quarter = feature_rate * 60.0 / tempo_bpm
    ages, carry = [], 0.0
    for note in theme.notes:
        exact = note.duration * frames_per_quarter + carry
        n = max(1, int(np.floor(exact + 0.5)))
        carry = exact - n
        ages.append(np.arange(n) / feature_rate)
    return np.concatenate(ages) if ages else np.zeros(0)


#: database frames matched per kernel call: bounds a query's working memory (about 40 bytes per frame
#: of a block, 10 MB) whatever the size of the collection
BLOCK_FRAMES = 1 << 18


class Occurrence(NamedTuple):
    """One match in a concatenated database (frame indices local to the recording, end inclusive)."""

    recording: int
    start: int
    end: int
    cost: float
    shift: int
    query: int


def _blocks(offsets: np.ndarray, block_frames: int):
    """Consecutive recording ranges ``(i0, i1)`` of at most ``block_frames`` frames (or one recording)."""
    i0, n = 0, len(offsets) - 1
    while i0 < n:
        i1 = int(np.searchsorted(offsets, offsets[i0] + block_frames, side="right")) - 1
        i1 = min(max(i1, i0 + 1), n)
        yield i0, i1
        i0 = i1


def rank_occurrences(
    queries: Sequence[np.ndarray],
    Y: np.ndarray,
    offsets: np.ndarray,
    *,
    shifts=range(12),
    top: int = 10,
    per_recording: int = 3,
    max_cost: float = np.inf,
    block_frames: int = BLOCK_FRAMES,
) -> list[Occurrence]:
    """The best occurrences of one or more query versions in a concatenated database.

    The database is processed in blocks of whole recordings; each block's matching function (best over
    queries and shifts) gives its recordings' occurrences (:func:`find_matches`), and only the ``top``
    best are kept. A recording whose best end frame cannot beat the current ``top``-th occurrence is
    skipped. Memory is bounded by the block size, so it stays flat as the collection grows.

    Parameters
    ----------
    queries : sequence of np.ndarray, each shape (N_i, 12)
        Query frames as unit rows (:func:`unit_columns`), e.g. one per tempo factor.
    Y : np.ndarray, shape (M, 12)
        Database frames as unit rows; recording ``i`` occupies rows ``offsets[i]:offsets[i+1]``.
    offsets : np.ndarray, shape (n_recordings + 1,), int
    shifts : iterable of int
        Cyclic shifts of the query tried.
    top, per_recording : int >= 1
        Occurrences returned in all and at most per recording.
    max_cost : float
        Drop occurrences costlier than this.
    block_frames : int >= 1
        Database frames per kernel call.

    Returns
    -------
    list of Occurrence
        Best (lowest normalised cost) first; ``query`` indexes ``queries``, ``shift`` is from ``shifts``.
    """
    if top < 1 or per_recording < 1 or block_frames < 1:
        raise ParameterError(f"top={top}, per_recording={per_recording}, block_frames={block_frames} must be >= 1")
    shifts = [int(s) for s in shifts]
    offsets = np.asarray(offsets, dtype=np.int64)
    kept: list[Occurrence] = []
    for i0, i1 in _blocks(offsets, block_frames):
        lo, hi = int(offsets[i0]), int(offsets[i1])
        if hi == lo:
            continue
        reset = np.zeros(hi - lo, dtype=np.bool_)
        reset[offsets[i0:i1] - lo] = True
        cost = np.full(hi - lo, np.inf)
        start = np.zeros(hi - lo, dtype=np.int64)
        shift = np.zeros(hi - lo, dtype=np.int64)
        which = np.zeros(hi - lo, dtype=np.int64)
        for q, Q in enumerate(queries):
            c, s, k = best_over_shifts(Q, Y[lo:hi], shifts, reset=reset)
            better = c < cost
            cost[better], start[better], shift[better], which[better] = c[better], s[better], k[better], q
        local = offsets[i0 : i1 + 1] - lo
        nonempty = local[:-1] < local[1:]
        rec_min = np.full(i1 - i0, np.inf)
        rec_min[nonempty] = np.minimum.reduceat(cost, local[:-1][nonempty])
        for j in np.argsort(rec_min, kind="stable"):
            if not rec_min[j] <= max_cost or (len(kept) >= top and rec_min[j] >= kept[-1].cost):
                break
            a, b = local[j], local[j + 1]
            for s, e, c in find_matches(cost[a:b], start[a:b] - a, top=per_recording, max_cost=max_cost):
                kept.append(Occurrence(i0 + int(j), s, e, c, int(shift[a + e]), int(which[a + e])))
            kept.sort(key=lambda o: o.cost)
            del kept[top:]
    return kept


def check_theme_search(theme, *, top: int, per_recording: int, tempo_factors) -> None:
    """Validate the options that :func:`search_theme` and the cascades share.

    Raises
    ------
    ParameterError
        ``top`` or ``per_recording`` below 1, ``theme`` not a parsed :class:`~mirsearch.scores.Theme`, or a tempo
        factor that is not > 0.
    """
    if top < 1 or per_recording < 1:
        raise ParameterError(f"top={top} and per_recording={per_recording} must be >= 1")
    if not isinstance(theme, Theme):
        raise ParameterError(f"theme={theme!r} must be a parsed Theme (see mirsearch.search.query.ThemeQuery)")
    for factor in tempo_factors:
        if not factor > 0:
            raise ParameterError(f"tempo_factors must be > 0, got {factor}")


def search_theme(
    collection,
    theme,
    *,
    top: int = 10,
    per_recording: int = 3,
    features: str = "chroma",
    tempo_bpm: float | None = None,
    tempo_factors=(1.0,),
    transpositions=range(12),
    max_cost: float = np.inf,
    harmonic_decay: float | None = None,
    query_tail: tuple[float, float] | None = None,
) -> list[Match]:
    """Rank the occurrences of a theme in a collection.

    Parameters
    ----------
    collection : Collection
    theme : Theme
        The parsed theme (:class:`mirsearch.search.query.ThemeQuery` parses note strings and files).
    top : int >= 1
        Number of matches returned.
    per_recording : int >= 1
        At most this many occurrences per recording.
    features : str
        Database features: ``"chroma"``, ``"cens"`` (chroma smoothed at the same rate) or ``"learned"``.
    tempo_bpm : float, optional
        Assumed tempo of the theme (quarter notes per minute); default: the file's tempo or 100.
        Subsequence DTW absorbs tempo ratios between 0.5 and 2 around it.
    tempo_factors : sequence of float
        Extra global scalings of the query (multiple scaling); the best over all is kept.
    transpositions : iterable of int
        Cyclic chroma shifts tried (semitones the query is transposed up); default all 12.
    max_cost : float
        Drop matches costlier than this.
    harmonic_decay : float in [0, 1], optional
        Overtone model of the query notes (:func:`mirsearch.features.symbolic.harmonic_template`);
        default per feature kind, :data:`QUERY_HARMONIC_DECAY`.
    query_tail : (float, float), optional
        ``(beta, tau)`` of :func:`theme_query` (off by default here; the service's default per feature kind is
        :func:`default_query_tail`): held notes of the query fade towards the uniform frame. The confidence
        model of a kind is fitted on that kind's default.

    Returns
    -------
    list of Match
        Best first. ``transposition`` is the shift (0-11) at which the theme matched; ``extra`` holds
        ``tempo_factor`` and the query length in seconds.
    """
    check_theme_search(theme, top=top, per_recording=per_recording, tempo_factors=tempo_factors)
    shifts = [int(s) % 12 for s in transpositions]
    if not shifts:
        raise ParameterError("transpositions must not be empty")
    t0 = time.perf_counter()
    Y, offsets, recs, rate = collection.database(features)
    decay = QUERY_HARMONIC_DECAY.get(features, 0.0) if harmonic_decay is None else harmonic_decay
    queries = []
    for factor in tempo_factors:
        X = theme_query(theme, feature_rate=rate, tempo_bpm=tempo_bpm, tempo_factor=factor,
                        harmonic_decay=decay, tail=query_tail)  # fmt: skip
        queries.append(unit_columns(X))
    found = rank_occurrences(
        queries, Y, offsets, shifts=shifts, top=top, per_recording=per_recording, max_cost=max_cost
    )
    matches = [
        Match(
            recording=recs[o.recording].path,
            recording_id=recs[o.recording].id,
            start=o.start / rate,
            end=(o.end + 1) / rate,
            cost=o.cost,
            transposition=o.shift,
            extra={"tempo_factor": float(tempo_factors[o.query])},
        )
        for o in found
    ]
    query_seconds = max(Q.shape[0] for Q in queries) / rate
    log.info(
        "theme %s (%.1f s) over %d recordings (%.1f h): %.3f s",
        theme.name,
        query_seconds,
        len(recs),
        Y.shape[0] / rate / 3600,
        time.perf_counter() - t0,
    )
    return matches
