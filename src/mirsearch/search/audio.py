"""Audio matching: find the passages of a collection that sound like an audio excerpt.

**Audio matching** (Müller, Kurth & Clausen, ISMIR 2005; Müller's retrieval tutorial): the query's
chroma is turned into CENS (chroma energy normalised statistics: quantised, smoothed over about 2-4 s
and downsampled to 1-2 Hz, robust to timbre, dynamics and articulation) and compared with the CENS
of every recording (:mod:`mirsearch.index.audio_database`). Two ways of absorbing tempo differences:

- ``method="scaling"`` (default; *multiple scaling*): the query's 10 Hz chroma is resampled in time for
  each relative tempo of the configuration (:class:`~mirsearch.features.audio_match.AudioMatchConfig`; a
  factor ``r`` simulates the query played ``r`` times as fast), CENS is computed for each, and each scaled
  query slides diagonally over the database (:mod:`mirsearch.matching.diagonal`): the cost at start frame
  ``m`` is the mean cosine distance ``1/N_r sum_n (1 - <q_n, y_{m+n}>)``. The matching curve is the
  minimum over the tempo factors and the transpositions. One matrix product per scaled query covers the
  whole collection (concatenated; no match crosses a recording boundary).
- ``method="sdtw"``: subsequence DTW of the unscaled query CENS with step sizes (2,1), (1,2), (1,1)
  (local tempo between 1/2 and 2), :func:`mirsearch.matching.subsequence.subsequence_dtw_shifts`.

Matches are picked from the curve best first; a candidate overlapping an accepted match of the same
recording by more than ``max_overlap`` of the shorter span is suppressed (neighbourhood suppression).
``Match.cost`` is the mean cosine distance along the match (0 = identical CENS). Version identification
is :mod:`mirsearch.search.versions`.

**Second stage** (``PassageOptions.refine``, on by default when a collection is searched): the best
``refine`` candidates of the first stage (any recordings, several places of one recording) are re-scored by
subsequence DTW at a finer resolution, :data:`REFINE_MATCH` (CENS at 5 Hz over 1.1 s instead of 2 Hz over
2.1 s), against the recording's stored chroma around the candidate (+-:data:`REFINE_MARGIN` s), at the
candidate's transposition; they are re-ordered by that cost (``extra["refined_cost"]``) and their spans
become the refined paths'. Game and pop tracks loop: the 2 Hz costs of two repeats of a passage differ by a
few per cent, and a finer match separates them where the repeats differ (tune split of
``benchmarks/bench_matching_real.py``, docs/benchmarks.md). ``Match.cost`` stays the first stage's cost
(what the audio confidence model is calibrated on).

**Coarse proposer** (``PassageOptions.coarse``, on by default with the second stage): the second stage also
re-scores the best ``coarse`` candidates of the same search over a coarser CENS, :data:`COARSE_MATCH` (1 Hz,
smoothed over 4.1 s: libfmp's and Müller's CENS for matching), that the first stage's list does not already hold.
The coarse CENS absorbs local tempo and pitch deviations the 2 Hz CENS is sensitive to, so the two lists miss
different places (tune split: the right place is in the 2 Hz list's best 20 for 0.965 of the queries, in the
union with the 1 Hz list's best 10 for 0.980; docs/benchmarks.md, issue 14 session 13). A coarse candidate
carries the first stage's 2 Hz cost at its place as ``Match.cost`` (one scale for the audio confidence model) and
``extra["proposer"] = "coarse"``. A sharded search (:func:`first_stage_options`, :func:`refine_found`) adds them
when it hands the first stage's matching curves to :func:`refine_found`, else it proposes from the 2 Hz CENS only.

**Upper-register chroma** (``PassageOptions.upper``, on by default): a collection that stores the kind
:data:`UPPER_KIND` (the chroma's recipe over the bands from G3 up,
:func:`~mirsearch.features.matching_chroma.upper_chroma`) is matched on it instead of ``"chroma"``, in both
stages: the bass and the drums that dominate the full chroma of game and pop recordings are what pitch shifts
(leakage of the coarse low STFT bins), band limits and noise change most (docs/benchmarks.md, issue 14 session 12).
A collection without it is searched on its chroma, with a log message saying how to add it.

**Tuning hypotheses** (``PassageOptions.tuning_offsets``, default :data:`TUNING_OFFSETS`): the chroma's pitch bands
are centred on a tuning estimated from the signal, the whole recording's for the collection (reliable) and the
excerpt's own for a query (a few seconds, often degraded). On the tune split of ``benchmarks/bench_matching_real.py``
the excerpt's estimate lies 0.3-0.5 semitone from its recording's for 5 % of the queries (median 0.03), and then
the query's energy falls between the stored chroma's bands (centring the query's bands on the recording's tuning
instead would put the right place first for 0.957 instead of 0.942; docs/benchmarks.md, issue 14 session 14).
The query's chroma is therefore computed at its estimate and a quarter tone either side, and every stage (first
stage, coarse proposer, second stage) takes the best of the hypotheses, as it takes the best of the tempo factors
and transpositions (an error of a whole semitone is a cyclic shift, which the transpositions cover; the largest
error left is a quarter of a semitone, for an estimate half a semitone off). Tune split: the right place first
0.942 -> 0.952; test split, measured once: 0.940 -> 0.955. The query time grows with the number of hypotheses
(about 2.3 times with three).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from mirsearch.errors import InputError, ParameterError
from mirsearch.features.audio_match import PASSAGE_MATCH, AudioMatchConfig
from mirsearch.index.audio_database import AudioDatabase, audio_database, stored_is_current
from mirsearch.matching.diagonal import diagonal_costs_shifts, valid_starts
from mirsearch.matching.subsequence import unit_columns
from mirsearch.search.audio_query import AudioQuery
from mirsearch.search.results import Match, rank_matches

log = logging.getLogger(__name__)

#: shortest query accepted (seconds)
MIN_QUERY_SECONDS = 3.0
METHODS = ("scaling", "sdtw")
#: CENS of the second stage: 5 Hz (every 2nd frame of 10 Hz chroma), smoothed over 11 frames (1.1 s)
REFINE_MATCH = AudioMatchConfig(window=11, downsample=2)
#: seconds of the recording searched on either side of a first-stage candidate by the second stage
REFINE_MARGIN = 3.0
#: first-stage candidates re-scored by the second stage (``PassageOptions.refine``; 10 until session 13)
REFINE_CANDIDATES = 20
#: CENS of the coarse proposer: 1 Hz (every 10th frame of 10 Hz chroma), smoothed over 41 frames (4.1 s)
COARSE_MATCH = AudioMatchConfig(window=41, downsample=10)
#: candidates of the coarse proposer added to the second stage (``PassageOptions.coarse``)
COARSE_CANDIDATES = 10
#: largest gain of the query equalisation (dB; ``PassageOptions.max_gain_db``): chosen on the tune split of
#: ``benchmarks/bench_matching_real.py`` (docs/benchmarks.md)
QUERY_MAX_GAIN_DB = 20.0
#: the estimate and a quarter tone either side: chosen on the tune split of ``benchmarks/bench_matching_real.py``,
#: the test split measured once (docs/benchmarks.md, issue 14 session 14)
QUARTER_TONE_OFFSETS = (0.0, -0.25, 0.25)
#: hypotheses of the query's tuning relative to its estimate (semitones; :attr:`PassageOptions.tuning_offsets`;
#: ``(0.0,)`` until session 14)
TUNING_OFFSETS = QUARTER_TONE_OFFSETS
#: stored kind matched instead of ``"chroma"`` when the collection has it (:attr:`PassageOptions.upper`)
UPPER_KIND = "chroma_upper"
_told_no_upper: set[tuple[str, bool]] = set()  # collections told that their upper-register chroma is missing / stale


@dataclass(frozen=True)
class PassageOptions:
    """Options of :func:`search_audio`.

    Attributes
    ----------
    top : int >= 1
        Number of matches returned.
    method : {"scaling", "sdtw"}
        Multiple scaling of the query (diagonal matching) or subsequence DTW (module docstring).
    per_recording : int, optional
        At most this many matches per recording (default ``top``).
    max_overlap : float in [0, 1)
        Neighbourhood suppression: overlap share above which a weaker match is dropped.
    max_cost : float
        Drop matches costlier than this.
    exclude : tuple of int
        Recording ids not searched (e.g. the recording the query was cut from).
    curves : bool
        Also return the matching curve of every recording (:attr:`PassageResult.curves`).
    match : AudioMatchConfig
        Chroma and CENS of the database (when it is built from a collection), tempo factors tried with
        ``method="scaling"`` and transpositions (:data:`~mirsearch.features.audio_match.ALL_KEYS` for
        transposed versions).
    refine : int >= 0
        First-stage candidates re-scored at a finer resolution (module docstring; 0: one stage). Applies when
        a collection with stored chroma is searched; a prepared database (no chroma) is searched in one stage.
    max_gain_db : float >= 0
        Query equalisation: the bands of the excerpt a channel attenuated (a telephone band, a small
        loudspeaker) are raised towards a typical music spectrum by at most this much before its chroma is
        computed (:func:`~mirsearch.features.matching_chroma.equalise_bands`; 0: off; audio queries only).
    coarse : int >= 0
        Candidates of a search over the coarser CENS :data:`COARSE_MATCH` added to the second stage (module
        docstring; 0: none). Applies with ``refine > 0`` when a collection is searched.
    upper : bool
        With ``match.features == "chroma"``, match on the collection's upper-register chroma (:data:`UPPER_KIND`)
        when it stores it (module docstring); else, and for a prepared database, on ``match.features``.
    tuning_offsets : tuple of float
        Hypotheses of the query's tuning relative to its estimate (semitones, each in [-0.5, 0.5]): the query's
        chroma is computed for each and every stage takes the best (module docstring, *tuning hypotheses*;
        ``(0.0,)``: the estimate only; signal queries only).
    """

    top: int = 10
    method: str = "scaling"
    per_recording: int | None = None
    max_overlap: float = 0.2
    max_cost: float = np.inf
    exclude: tuple[int, ...] = ()
    curves: bool = False
    match: AudioMatchConfig = PASSAGE_MATCH
    refine: int = REFINE_CANDIDATES
    max_gain_db: float = QUERY_MAX_GAIN_DB
    coarse: int = COARSE_CANDIDATES
    upper: bool = True
    tuning_offsets: tuple[float, ...] = TUNING_OFFSETS

    def __post_init__(self) -> None:
        if self.top < 1:
            raise ParameterError(f"top={self.top} must be >= 1")
        if not self.max_gain_db >= 0:
            raise ParameterError(f"max_gain_db={self.max_gain_db} must be >= 0")
        if self.refine < 0 or self.coarse < 0:
            raise ParameterError(f"refine={self.refine} and coarse={self.coarse} must be >= 0")
        if self.method not in METHODS:
            raise ParameterError(f"method={self.method!r} must be 'scaling' or 'sdtw'")
        if not 0 <= self.max_overlap < 1:
            raise ParameterError(f"max_overlap={self.max_overlap} must be in [0, 1)")
        if self.per_recording is not None and self.per_recording < 1:
            raise ParameterError(f"per_recording={self.per_recording} must be >= 1")
        object.__setattr__(self, "exclude", tuple(int(i) for i in self.exclude))
        offsets = tuple(float(t) for t in self.tuning_offsets)
        if not offsets or any(not -0.5 <= t <= 0.5 for t in offsets):
            raise ParameterError(f"tuning_offsets={self.tuning_offsets!r} must be non-empty, each in [-0.5, 0.5]")
        object.__setattr__(self, "tuning_offsets", offsets)

    def replace(self, **changes) -> PassageOptions:
        return dataclasses.replace(self, **changes)


@dataclass
class MatchingCurve:
    """Matching curve of one recording (for plots and the web page).

    Attributes
    ----------
    recording_id : int
    recording : str
    feature_rate : float
        Frames per second of ``cost``.
    cost : np.ndarray, shape (M,)
        Best cost of a match *starting* at each frame (``inf`` where none fits).
    duration : float
        Length of the query match at tempo 1 (s), for drawing spans.
    """

    recording_id: int
    recording: str
    feature_rate: float
    cost: np.ndarray
    duration: float = 0.0

    @property
    def times(self) -> np.ndarray:
        """Start time (s) of each curve frame."""
        return np.arange(self.cost.size) / self.feature_rate


@dataclass
class PassageResult:
    """What :func:`search_audio` found.

    Attributes
    ----------
    matches : list of Match
        Best first; ``transposition`` is the semitones the query was shifted up to match, ``extra`` holds
        ``tempo_factor`` (> 1: the match is played faster than the query), ``method`` and ``rank``.
    curves : list of MatchingCurve
        One per searched recording with ``PassageOptions(curves=True)``, else empty.
    """

    matches: list[Match]
    curves: list[MatchingCurve] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"matches": [m.to_dict() for m in self.matches]}


@dataclass
class _Curves:
    """Per database frame: cost, start and end frame (inclusive) of the best match, its shift and tempo factor."""

    cost: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    shift: np.ndarray
    factor: np.ndarray
    by_start: bool  # True: frame t is the start of its match (scaling); False: its end (subsequence DTW)


def database_for(source, match: AudioMatchConfig, exclude=()) -> AudioDatabase:
    """``source`` itself when it is a prepared database, else the collection's (memoised) CENS database;
    without the ``exclude`` recordings."""
    db = source if isinstance(source, AudioDatabase) else audio_database(source, match)
    return db.without(exclude) if exclude else db


def query_chroma(
    query: AudioQuery,
    db: AudioDatabase | None,
    *,
    config: dict | None = None,
    max_gain_db: float = 0.0,
    tuning_offset: float = 0.0,
) -> np.ndarray:
    """Chroma (12, n) of a query, computed exactly like the database's (or as ``config`` describes), its pitch
    bands equalised first with ``max_gain_db > 0`` (:attr:`PassageOptions.max_gain_db`) and centred on its
    estimated tuning plus ``tuning_offset``; refuses queries that are too short."""
    if query.duration < MIN_QUERY_SECONDS:
        raise InputError(f"{query.name}: query too short ({query.duration:.1f} s < {MIN_QUERY_SECONDS:g} s)")
    config = db.chroma_config if config is None else config
    return query.chroma_for(config, max_gain_db=max_gain_db, tuning_offset=tuning_offset)


def query_chromas(
    query: AudioQuery,
    db: AudioDatabase | None,
    *,
    config: dict | None = None,
    max_gain_db: float = 0.0,
    tuning_offsets: tuple[float, ...] = TUNING_OFFSETS,
) -> np.ndarray:
    """The query's chroma under each tuning hypothesis (:func:`query_chroma`), shape (k, 12, n); a chroma query
    has one (its chroma)."""
    offsets = tuning_offsets if query.samples is not None else (0.0,)
    config = db.chroma_config if config is None else config
    query.prepare_tunings(config, offsets)  # one STFT pass for all hypotheses
    return np.stack([query_chroma(query, db, config=config, max_gain_db=max_gain_db, tuning_offset=t) for t in offsets])


def _stack(C: np.ndarray) -> np.ndarray:
    """Query chroma as a stack of hypotheses (k, 12, n); one (12, n) chroma is a stack of one."""
    C = np.asarray(C, dtype=np.float32)
    return C[None] if C.ndim == 2 else C


def query_cens(C: np.ndarray, *, db: AudioDatabase, factor: float = 1.0) -> np.ndarray:
    """CENS (12, n) of query chroma at the database's CENS parameters, scaled by a tempo factor."""
    return db.match.cens(C, feature_rate=db.chroma_rate, tempo_factor=factor)


def search_audio(source, query: AudioQuery, options: PassageOptions = PassageOptions()) -> PassageResult:
    """Find the passages of a collection that sound like an audio excerpt.

    Parameters
    ----------
    source : Collection or AudioDatabase
        The collection (its CENS database for ``options.match`` is built once per generation,
        :func:`~mirsearch.index.audio_database.audio_database`) or a prepared database (then its own CENS
        parameters are used; ``exclude`` drops recordings from a copy).
    query : AudioQuery
        The excerpt (10-30 s works best).
    options : PassageOptions

    Returns
    -------
    PassageResult

    Raises
    ------
    InputError
        A too short query, or a query longer than every recording.
    """
    t0 = time.perf_counter()
    options = resolve_kind(source, options)
    db = database_for(source, options.match, options.exclude)
    C = query_chromas(query, db, max_gain_db=options.max_gain_db, tuning_offsets=options.tuning_offsets)
    if options.method == "scaling":
        curves = _scaling_curves(C, db, options.match)
    else:
        curves = _sdtw_curves(C, db, options.match)
    if not np.any(np.isfinite(curves.cost)):
        longest = max(r.duration for r in db.recordings)
        raise InputError(
            f"query ({query.duration:.1f} s) is longer than every recording (longest {longest:.1f} s) at the tempo "
            f"factors tried"
        )
    matches: list[Match] = []
    per_recording = min(options.top if options.per_recording is None else options.per_recording, options.top)
    n_refine = options.refine if _can_refine(source, options) else 0
    for i in range(len(db.recordings)):
        matches += _recording_matches(db, i, curves, options, max(per_recording, n_refine))
    matches = rank_matches(matches, max(options.top, n_refine))
    if n_refine:
        found = {int(r.id): _curve(db, i, curves, query.duration) for i, r in enumerate(db.recordings)}
        head = matches[:n_refine] + coarse_candidates(source, C, matches[:n_refine], options, first_stage=found)
        matches = refine_matches(
            source, C, head + matches[n_refine:], options=options.replace(refine=len(head)), chroma_rate=db.chroma_rate
        )
    matches = _limit(matches, top=options.top, per_recording=per_recording)
    log.info("search_audio: %d recordings, %d matches in %.3f s", len(db), len(matches), time.perf_counter() - t0)
    found = [_curve(db, i, curves, query.duration) for i in range(len(db.recordings))] if options.curves else []
    return PassageResult(matches, found)


def first_stage_options(options: PassageOptions) -> PassageOptions:
    """Options of a one-stage search (e.g. on the shards of a cluster) that returns the candidates the second
    stage of ``options`` needs; :func:`refine_found` finishes it (without the coarse proposer's candidates)."""
    per_recording = options.top if options.per_recording is None else options.per_recording
    n = options.refine
    return options.replace(
        top=max(options.top, n), per_recording=max(min(per_recording, options.top), n), refine=0, coarse=0
    )


def refine_found(
    collection, query: AudioQuery, matches: list[Match], options: PassageOptions, curves: list | None = None
) -> list[Match]:
    """The second stage of ``options`` on the matches of :func:`first_stage_options` found elsewhere (the same
    result as :func:`search_audio` on the collection). ``curves``: the first stage's matching curves of every
    recording (:attr:`PassageResult.curves`), which the coarse proposer's candidates take their costs from; without
    them the second stage re-scores the first stage's candidates only."""
    per_recording = min(options.top if options.per_recording is None else options.per_recording, options.top)
    options = resolve_kind(collection, options)
    if _can_refine(collection, options) and matches:
        config = next(c for c in collection.configs() if c["kind"] == options.match.features)
        C = query_chromas(
            query, None, config=config, max_gain_db=options.max_gain_db, tuning_offsets=options.tuning_offsets
        )
        head, tail = matches[: options.refine], matches[options.refine :]
        if curves:
            found = {c.recording_id: c for c in curves}
            head = head + coarse_candidates(collection, C, head, options, first_stage=found)
        matches = refine_matches(
            collection,
            C,
            head + tail,
            options=options.replace(refine=len(head)),
            chroma_rate=float(config["feature_rate"]),
        )
    return _limit(matches, top=options.top, per_recording=per_recording)


def resolve_kind(source, options: PassageOptions) -> PassageOptions:
    """``options`` matching on :data:`UPPER_KIND` when ``options.upper`` asks for it and the collection stores it
    from the current recipe (the kind searched is then ``options.match.features``); a collection without it, or
    whose stored upper-register chroma comes from another recipe (an older :data:`~mirsearch.features.
    matching_chroma.UPPER_MIDI_LOW` or version), is searched on its chroma and told once (log) how to fix it."""
    if not options.upper or options.match.features != "chroma" or isinstance(source, AudioDatabase):
        return options
    stored = UPPER_KIND in source.feature_kinds
    if stored and stored_is_current(source, UPPER_KIND):
        return options.replace(match=options.match.replace(features=UPPER_KIND))
    root = str(getattr(source, "root", "collection"))
    if (root, stored) not in _told_no_upper:
        _told_no_upper.add((root, stored))
        kinds = ",".join(source.feature_kinds if stored else [*source.feature_kinds, UPPER_KIND])
        why = "comes from another recipe than the current one" if stored else "is not stored"
        log.warning(
            "%s: its upper-register chroma (%s) %s, so audio matching uses the full chroma, less robust to pitch "
            "shifts, band limits and noise; 'mirsearch index PATH -c %s --features %s' (re-)extracts it",
            root, UPPER_KIND, why, root, kinds,
        )  # fmt: skip
    return options


def _can_refine(source, options: PassageOptions) -> bool:
    """The second stage needs the recordings' stored chroma: a collection searched on a stored kind."""
    return bool(options.refine) and not isinstance(source, AudioDatabase) and options.match.features != "matching"


def refine_matches(collection, C: np.ndarray, matches: list[Match], *, options: PassageOptions, chroma_rate: float):
    """The second stage: the first ``options.refine`` matches re-scored at :data:`REFINE_MATCH` and re-ordered.

    Parameters
    ----------
    collection : Collection
        Source of the recordings' stored chroma (``load_features``, kind ``options.match.features``).
    C : np.ndarray, shape (12, n) or (k, 12, n)
        The query's chroma at ``chroma_rate`` (Hz), computed like the collection's (a stack: one per tuning
        hypothesis, the best of them counts).
    matches : list of Match
        First-stage matches, best first.

    Returns
    -------
    list of Match
        The re-scored candidates by refined cost (spans of their refined paths, ``extra["refined_cost"]``;
        a candidate overlapping a better one by more than ``options.max_overlap`` is dropped), then the other
        matches in their order.
    """
    from mirsearch.matching.subsequence import subsequence_dtw_shifts

    head, tail = matches[: options.refine], matches[options.refine :]
    Xs = [REFINE_MATCH.cens(c, feature_rate=chroma_rate) for c in _stack(C)]
    if Xs[0].shape[1] < 2:
        return matches
    down = REFINE_MATCH.downsample
    stored: dict[int, np.ndarray] = {}
    scored = []
    for m in head:
        if m.recording_id not in stored:
            stored[m.recording_id] = collection.load_features(m.recording_id, options.match.features)[0]
        R = stored[m.recording_id]
        a = max(0, int((m.start - REFINE_MARGIN) * chroma_rate))
        b = min(R.shape[1], int(np.ceil((m.end + REFINE_MARGIN) * chroma_rate)) + 1)
        Y = REFINE_MATCH.cens(R[:, a:b], feature_rate=chroma_rate)
        mf, st = min(
            (subsequence_dtw_shifts(X, Y, shifts=[m.transposition % 12]) for X in Xs), key=lambda r: np.min(r[0])
        )
        j = int(np.argmin(mf[0]))
        if not np.isfinite(mf[0, j]):
            scored.append((np.inf, m))
            continue
        extra = {**m.extra, "refined_cost": round(float(mf[0, j]), 4)}
        start, end = (a + int(st[0, j]) * down) / chroma_rate, (a + (j + 1) * down) / chroma_rate
        scored.append((float(mf[0, j]), dataclasses.replace(m, start=start, end=end, extra=extra)))
    kept: list[Match] = []
    for _, m in sorted(scored, key=lambda x: x[0]):
        if not any(_overlap(m, k) > options.max_overlap for k in kept):
            kept.append(m)
    return kept + tail


def coarse_candidates(
    source, C: np.ndarray, head: list[Match], options: PassageOptions, *, first_stage: dict
) -> list[Match]:
    """The coarse proposer (module docstring): the best ``options.coarse`` matches over :data:`COARSE_MATCH` but
    those starting within :data:`REFINE_MARGIN` of a candidate of ``head`` (the first stage's) or of a better one
    of their own recording (the second stage searches there already). A place a few seconds beside a first-stage
    candidate stays: the first stage's neighbourhood suppression removed it, and it is often the right repeat.

    ``first_stage``: recording id -> its first-stage :class:`MatchingCurve`; a candidate's ``cost`` is that curve's
    best within one frame of its start (the first stage's cost at its place; its coarse cost where none fits).
    """
    if not options.coarse:
        return []
    match = options.match.replace(window=COARSE_MATCH.window, downsample=COARSE_MATCH.downsample)
    coarse_db = database_for(source, match, options.exclude)
    curves = (_scaling_curves if options.method == "scaling" else _sdtw_curves)(C, coarse_db, match)
    found: list[Match] = []
    for i in range(len(coarse_db.recordings)):
        found += _recording_matches(coarse_db, i, curves, options, options.coarse)
    out: list[Match] = []
    for m in sorted(found, key=lambda m: m.cost)[: options.coarse]:
        curve = first_stage.get(m.recording_id)
        if curve is None or any(k.recording_id == m.recording_id and abs(k.start - m.start) <= REFINE_MARGIN
                                for k in head + out):  # fmt: skip
            continue
        j = int(round(m.start * curve.feature_rate))
        near = curve.cost[max(0, j - 1) : j + 2]
        cost = float(near.min()) if near.size and np.isfinite(near.min()) else m.cost
        out.append(dataclasses.replace(m, cost=cost, extra={**m.extra, "proposer": "coarse"}))
    return out


def _overlap(m: Match, k: Match) -> float:
    """Share of the shorter span two matches of one recording have in common (0 for other recordings)."""
    if m.recording_id != k.recording_id:
        return 0.0
    inter = min(m.end, k.end) - max(m.start, k.start)
    return max(0.0, inter) / max(min(m.end - m.start, k.end - k.start), 1e-9)


def _limit(matches: list[Match], *, top: int, per_recording: int) -> list[Match]:
    """The first ``top`` matches with at most ``per_recording`` of each recording, ranked 1, 2, ..."""
    out: list[Match] = []
    count: dict[int, int] = {}
    for m in matches:
        if count.get(m.recording_id, 0) < per_recording:
            count[m.recording_id] = count.get(m.recording_id, 0) + 1
            out.append(m)
            m.extra["rank"] = len(out)
        if len(out) == top:
            break
    return out


def _scaling_curves(C: np.ndarray, db: AudioDatabase, match: AudioMatchConfig) -> _Curves:
    """Min over tuning hypotheses (``C``: (12, n) or (k, 12, n)), tempo factors and shifts of the diagonal
    matching cost, per start frame."""
    T = db.Y.shape[0]
    shifts = list(match.transpositions)
    best = np.full(T, np.inf, dtype=np.float32)
    length = np.zeros(T, dtype=np.int64)
    which = np.zeros(T, dtype=np.int64)
    shift_of = np.zeros(T, dtype=np.int64)
    for c, (fi, factor) in ((c, f) for c in _stack(C) for f in enumerate(match.tempo_factors)):
        Qu = unit_columns(query_cens(c, db=db, factor=factor))
        N = Qu.shape[0]
        valid = valid_starts(db.offsets, T, N)
        if not valid.any():
            continue
        costs = diagonal_costs_shifts(Qu, db.Y, shifts=shifts, Yf=db.spectrum())
        k_best = np.argmin(costs, axis=0)
        cost = costs[k_best, np.arange(T)]
        cost[~valid] = np.inf
        better = cost < best
        best[better] = cost[better]
        length[better] = N
        which[better] = fi
        shift_of[better] = np.asarray(shifts)[k_best[better]]
    starts = np.arange(T)
    ends = starts + np.maximum(length, 1) - 1
    return _Curves(best, starts, ends, shift_of, np.asarray(match.tempo_factors)[which], by_start=True)


def _sdtw_curves(C: np.ndarray, db: AudioDatabase, match: AudioMatchConfig) -> _Curves:
    """Min over tuning hypotheses (``C``: (12, n) or (k, 12, n)) and shifts of the subsequence-DTW matching
    function, per end frame (no path crosses a recording boundary: the kernel resets at every sequence start)."""
    from mirsearch.matching.subsequence import subsequence_dtw_shifts

    T = db.Y.shape[0]
    shifts = list(match.transpositions)
    Xs = [query_cens(c, db=db) for c in _stack(C)]
    if Xs[0].shape[1] < 2:
        raise InputError(f"query too short for subsequence DTW at {db.feature_rate:g} Hz")
    per = [subsequence_dtw_shifts(X, db.Y.T, shifts=shifts, sequence_starts=db.offsets[:-1]) for X in Xs]
    mf = np.concatenate([m for m, _ in per])  # (k * n_shifts, T)
    st = np.concatenate([s for _, s in per])
    k = np.argmin(mf, axis=0)
    starts = st[k, np.arange(T)]
    ends = np.arange(T)
    factor = Xs[0].shape[1] / np.maximum(ends - starts + 1, 1)
    shift = np.tile(np.asarray(shifts), len(Xs))[k]
    return _Curves(mf[k, np.arange(T)].astype(np.float32), starts, ends, shift, factor, False)


def _recording_matches(db: AudioDatabase, i: int, curves: _Curves, options: PassageOptions, top: int) -> list[Match]:
    rec = db.recordings[i]
    a, b = int(db.offsets[i]), int(db.offsets[i + 1])
    picked = _pick(
        curves.cost[a:b],
        curves.starts[a:b],
        curves.ends[a:b],
        top=top,
        max_overlap=options.max_overlap,
        max_cost=options.max_cost,
    )
    out = []
    for s, e, j in picked:
        idx = a + j
        extra = {"tempo_factor": round(float(curves.factor[idx]), 3), "method": options.method}
        out.append(
            Match(
                recording=rec.path,
                recording_id=int(rec.id),
                start=(s - a) / db.feature_rate,
                end=min((e - a + 1) / db.feature_rate, float(rec.duration)),
                cost=float(curves.cost[idx]),
                transposition=int(curves.shift[idx]) % 12,
                extra=extra,
            )
        )
    return out


def _curve(db: AudioDatabase, i: int, curves: _Curves, duration: float) -> MatchingCurve:
    """The matching curve of recording ``i``, indexed by start frame."""
    rec = db.recordings[i]
    a, b = int(db.offsets[i]), int(db.offsets[i + 1])
    if curves.by_start:
        curve = curves.cost[a:b].copy()
    else:  # re-index the end-indexed SDTW curve by start frame
        curve = np.full(b - a, np.inf, dtype=np.float32)
        ok = np.isfinite(curves.cost[a:b])
        np.minimum.at(curve, np.clip(curves.starts[a:b][ok] - a, 0, b - a - 1), curves.cost[a:b][ok])
    return MatchingCurve(rec.id, rec.path, db.feature_rate, curve, duration)


def _pick(cost, starts, ends, *, top, max_overlap, max_cost):
    """Best non-overlapping spans (start, end inclusive, index) from candidate arrays, best first.

    After each accepted span every candidate overlapping it by more than ``max_overlap`` of the shorter
    span is suppressed (vectorised), so the loop runs once per returned match.
    """
    cost = np.where(np.isfinite(cost) & (cost <= max_cost), cost, np.inf).astype(np.float64)
    starts = np.asarray(starts)
    ends = np.asarray(ends)
    lengths = ends - starts + 1
    accepted: list[tuple[int, int, int]] = []
    while len(accepted) < top:
        i = int(np.argmin(cost))
        if not np.isfinite(cost[i]):
            break
        s, e = int(starts[i]), int(ends[i])
        accepted.append((s, e, i))
        inter = np.minimum(ends, e) - np.maximum(starts, s) + 1
        cost[inter > max_overlap * np.minimum(lengths, e - s + 1)] = np.inf
    return accepted


__all__ = [
    "COARSE_MATCH",
    "MIN_QUERY_SECONDS",
    "MatchingCurve",
    "PassageOptions",
    "PassageResult",
    "QUARTER_TONE_OFFSETS",
    "QUERY_MAX_GAIN_DB",
    "REFINE_MATCH",
    "TUNING_OFFSETS",
    "UPPER_KIND",
    "coarse_candidates",
    "database_for",
    "first_stage_options",
    "query_cens",
    "query_chroma",
    "query_chromas",
    "refine_found",
    "refine_matches",
    "resolve_kind",
    "search_audio",
]
