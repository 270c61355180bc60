"""Audio identification: which recording is this excerpt from, where, and at what speed.

The query's triplet hashes (:mod:`mirsearch.features.fingerprint`) are looked up in the collection's
:class:`~mirsearch.index.fingerprints.FingerprintIndex`. Every shared hash says, for one reference triplet,
the query's speed (ratio of the triplets' ``t3 - t1``), its pitch shift (difference of the anchors'
log-frequencies) and the offset of the query's start in the recording. A vote over
(recording, offset) proposes candidates; each is verified by fitting a line ``t_ref = offset + speed * t_query``
to its matches and counting the query triplets that lie on it (within two frames) with a consistent pitch
shift. Candidates with at least ``min_anchors`` such anchors are then checked against the recording's stored
peak list: the query's peaks (picked more densely than for hashing) are mapped onto the recording along the
fitted line and counted where a reference peak lies within 1.5 frames and 0.7 bins (:func:`peak_overlap`). The
score is how far that count stands out of the counts at 16 wrong alignments of the same recording (the query
moved by the smallest multiples of 0.37 s that fit in it: up to 2.96 s either way, more near its ends): music
always shares some peaks with music, and the recording's own shifted copies measure how many. Below
``min_score`` (calibrated on held-out music, see docs/identify.md) a candidate may still be answered by its
spectro-temporal changes (:class:`~mirsearch.search.peak_check.ChangeCheck`, session 12): when the peak standout
and the standout of the query's band changes against the recording's stored change signs add up to
``change_min`` (and the peak standout is at least ``change_floor``); otherwise the answer is "not found" (no
matches). A candidate answered by its peaks with a standout below ``veto_below`` is dropped when its changes do not
follow the line (change standout below ``change_veto``, session 13); an excerpt nothing answered gets a last look by
its changes slid over the vote's first recordings (:mod:`mirsearch.search.change_scan`). Found matches are ranked by
their matched peak count.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, field

import numpy as np

from mirsearch.errors import InputError, ParameterError
from mirsearch.features import fingerprint as fp
from mirsearch.index.fingerprints import FingerprintIndex
from mirsearch.search.change_scan import scan_answer
from mirsearch.search.peak_check import (
    ChangeCheck,
    StoredFingerprints,
    fit_line,
    line_answer,
    match_geometry,
    offset_votes,
    peak_overlap,
    plausible_shift,
    vote_candidates,
)
from mirsearch.search.results import format_time

log = logging.getLogger(__name__)

#: standout of the peak overlap needed to answer "found" (calibrated on held-out tracks, docs/identify.md)
DEFAULT_MIN_SCORE = 5.0
#: the same for lines beyond the first ``IdentifyOptions.lead_candidates`` candidates of the hash vote; by default
#: no higher (the rule with 4.5 / 6.0, chosen on the tuning split, was worse on the test split: docs/identify.md)
BEYOND_MIN_SCORE = 5.0
#: sum of the peak standout and the change standout that answers a candidate below ``min_score`` (tuning split)
DEFAULT_CHANGE_MIN = 7.5
#: peak standout a candidate needs before its changes are checked (a line must have some support in the peaks)
DEFAULT_CHANGE_FLOOR = 2.5
#: change standout below which a line answered by its peaks alone (standout below ``VETO_BELOW``) is dropped: on the
#: tuning split, absent music's answers had -2.3 to -0.4, right answers 1.7 or more but one (docs/identify.md)
DEFAULT_CHANGE_VETO = 0.5
#: peak standout from which the changes are not looked at (no absent excerpt of the tuning split reached 9.1)
VETO_BELOW = 12.0
DEFAULT_CHANGE_SCAN, DEFAULT_CHANGE_SCAN_MIN = 3, 3.5  #: change scan: recordings scanned, peak standout that answers
#: recordings (evenly spread over the collection) and windows in each whose change signs make a query's null
CHANGE_NULL_RECORDINGS = 16
CHANGE_NULL_WINDOWS = 4
MIN_QUERY_SECONDS = 1.0  # shortest query (seconds)
MAX_QUERY_SECONDS = 600.0  # longest query without ``scan`` (seconds)


@dataclass(frozen=True)
class IdentifyOptions:
    """Options of :func:`identify` (all have working defaults).

    Attributes
    ----------
    top : int >= 1
        Most matches returned.
    min_score : float >= 0
        Standout of the peak overlap needed for a match among the first ``lead_candidates`` candidates of the
        hash vote ("not found" below; :func:`peak_overlap`).
    lead_candidates : int >= 0
        Candidates, best voted first, whose lines need ``min_score``; the others need ``beyond_min_score``. Each
        candidate checked is one more chance for an accidental standout (in music that is not in the collection,
        the largest standouts came from candidates far down the vote), while the right line is nearly always among
        the first few (docs/identify.md).
    beyond_min_score : float >= 0
        Standout needed by the lines of the later candidates (at least ``min_score``; by default equal to it, so
        that the rank does not matter; ``min_score=4.5, beyond_min_score=6.0`` is the rule measured in
        docs/identify.md).
    min_anchors : int >= 1
        Query anchor frames on a candidate's fitted line needed before its peaks are checked.
    sure_anchors : int >= 1
        Anchor frames on a line that make a match without the peak check (music that repeats itself within
        seconds, e.g. ambient pads, stands out little from its own shifted copies).
    max_speed_change : float in (0, 0.5)
        Largest relative speed / tempo change searched (0.12: 0.89 - 1.12).
    max_pitch_shift : float >= 0
        Largest pitch shift searched beyond the one a speed change implies (semitones).
    candidates : int >= 1
        (recording, offset) candidates verified.
    check_peaks_per_second : float > 0
        Density of the query peaks compared with a candidate's stored peaks.
    check_radius : (int, int)
        Neighbourhood (± frames, ± bins) of which those query peaks are maxima (smaller than the stored peaks':
        more of them, so that the recording's peaks that survive noise are among them).
    peak_tolerance : (float, float)
        Largest distance of a matched peak pair in frames and in log-frequency bins.
    offset_bin : float > 0
        Width of the offset vote bins (seconds).
    time_tolerance : float > 0
        Largest distance of a verified triplet from the fitted line (frames).
    freq_tolerance : float > 0
        Largest deviation of a verified triplet's pitch shift from the median (log-frequency bins).
    speed_tolerance : float > 0
        Largest relative deviation of a verified triplet's own speed (ratio of ``t3 - t1``) from the fitted one.
    fallback : bool
        When no candidate line passes, look again at every candidate's offset at unchanged speed and pitch: the
        offset within ``fallback_reach`` where most single peaks meet
        (:func:`~mirsearch.search.peak_check.offset_votes`) is checked like any line (the line the hashes proposed
        but could not fit under loud noise).
    fallback_reach : float > 0
        Seconds either side of a candidate's offset searched by the fallback.
    fallback_pooled : bool
        Run the fallback also when some lines were answered, but none beyond doubt (``sure_anchors``, or a peak
        standout of ``veto_below``), and rank its lines with them by matched peaks: under loud noise a line fitted
        to few triplets can land on a repeat of a loop while the fallback finds the excerpt's own place (False: only
        when no line was answered, sessions 9-12).
    change_check : bool
        Check candidates below ``min_score`` by their spectro-temporal changes too (needs fingerprints stored with
        version 2, which hold the change signs; older ones are checked by their peaks only).
    change_min : float
        A candidate whose peak standout plus change standout (:class:`~mirsearch.search.peak_check.ChangeCheck`)
        reaches this is answered.
    change_floor : float
        Peak standout a candidate needs before its changes are checked.
    change_veto : float
        A line answered by its peaks alone with a standout below ``veto_below`` (fewer than ``sure_anchors`` anchors)
        is dropped when its change standout is below this (the whole spectrum does not follow the line; ``-inf``: no
        veto). Fingerprints without change signs are not vetoed.
    veto_below : float
        Peak standout from which a line is answered without looking at its changes.
    change_scan, change_scan_min : int >= 0, float
        When nothing else answered, slide the query's changes at speed 1 over the vote's first ``change_scan``
        recordings; the best offset is answered if its peak standout reaches ``change_scan_min`` (0: off).
    """

    top: int = 5
    min_score: float = DEFAULT_MIN_SCORE
    lead_candidates: int = 3
    beyond_min_score: float = BEYOND_MIN_SCORE
    max_speed_change: float = 0.12
    max_pitch_shift: float = 1.5
    candidates: int = 30
    min_anchors: int = 3
    sure_anchors: int = 12
    check_peaks_per_second: float = 90.0
    check_radius: tuple = (4, 5)
    peak_tolerance: tuple = (1.5, 0.7)
    offset_bin: float = 0.2
    time_tolerance: float = 1.5
    freq_tolerance: float = 0.7
    speed_tolerance: float = 0.025
    fallback: bool = True
    fallback_pooled: bool = True
    fallback_reach: float = 0.64
    change_check: bool = True
    change_min: float = DEFAULT_CHANGE_MIN
    change_floor: float = DEFAULT_CHANGE_FLOOR
    change_veto: float = DEFAULT_CHANGE_VETO
    veto_below: float = VETO_BELOW
    change_scan: int = DEFAULT_CHANGE_SCAN
    change_scan_min: float = DEFAULT_CHANGE_SCAN_MIN

    def __post_init__(self):
        if self.top < 1:
            raise ParameterError(f"top={self.top!r} must be >= 1")
        for name in ("min_score", "beyond_min_score", "lead_candidates", "change_scan"):
            if getattr(self, name) < 0:
                raise ParameterError(f"{name}={getattr(self, name)!r} must be >= 0")
        if not 0 < self.max_speed_change < 0.5:
            raise ParameterError(f"max_speed_change={self.max_speed_change!r} must be in (0, 0.5)")
        for name in ("min_anchors", "sure_anchors"):
            if getattr(self, name) < 1:
                raise ParameterError(f"{name}={getattr(self, name)!r} must be >= 1")
        for name in ("offset_bin", "time_tolerance", "freq_tolerance", "speed_tolerance", "check_peaks_per_second",
                     "fallback_reach"):  # fmt: skip
            if not getattr(self, name) > 0:
                raise ParameterError(f"{name}={getattr(self, name)!r} must be > 0")


@dataclass(frozen=True)
class IdentifyMatch:
    """A recording the query was found in.

    ``offset``: where the query's first sample lies in the recording (s); ``speed``: the query's playback
    speed relative to the recording (1.04 = 4 % faster); ``pitch_shift``: semitones; ``score``: the standout of the
    peak overlap (:func:`peak_overlap`); ``matched_peaks``: the recording's peaks matched by the query's;
    ``change_score``: the standout of the spectro-temporal changes, when they were checked (a score below
    ``IdentifyOptions.veto_below``), else None.
    """

    recording: str
    recording_id: int
    offset: float
    speed: float
    score: float
    pitch_shift: float = 0.0
    matched_peaks: int = 0
    change_score: float | None = None

    def to_dict(self) -> dict:
        return {
            "recording": self.recording,
            "recording_id": self.recording_id,
            "offset": round(self.offset, 3),
            "offset_mmss": format_time(self.offset),
            "speed": round(self.speed, 4),
            "pitch_shift": round(self.pitch_shift, 2),
            "score": round(self.score, 1),
            "matched_peaks": self.matched_peaks,
            "change_score": None if self.change_score is None else round(self.change_score, 1),
        }


@dataclass(frozen=True)
class IdentifyResult:
    """Matches best first; empty when the query was not found."""

    matches: list[IdentifyMatch]
    query_duration: float
    n_hashes: int

    def to_dict(self) -> dict:
        return {
            "matches": [m.to_dict() for m in self.matches],
            "query_duration": round(self.query_duration, 3),
            "n_hashes": self.n_hashes,
        }


@dataclass(frozen=True)
class Stretch:
    """A stretch of a long query identified as (part of) a recording."""

    query_start: float
    query_end: float
    match: IdentifyMatch

    def to_dict(self) -> dict:
        d = self.match.to_dict()
        d.update({"query_start": round(self.query_start, 3), "query_end": round(self.query_end, 3)})
        return d


@dataclass(frozen=True)
class ScanResult:
    """Identified stretches of a long query, in query order."""

    stretches: list[Stretch]
    query_duration: float
    window: float = 10.0
    hop: float = 5.0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"stretches": [s.to_dict() for s in self.stretches], "query_duration": round(self.query_duration, 3)}


# -- arrays ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueryArrays:
    """A query's peaks for hashing ``(3, n)``, its denser peaks for checking ``(3, m)`` and its log spectrogram
    ``(n_bins, n_frames)`` (for the change check)."""

    peaks: np.ndarray
    dense: np.ndarray
    spectrogram: np.ndarray


def analyse_query(y: np.ndarray, *, sr: int, peak_config: dict, options: IdentifyOptions) -> QueryArrays:
    """Validated query audio -> its :class:`QueryArrays`.

    Raises :class:`InputError` for unusable audio.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise InputError(f"query: expected mono audio (1-D array), got shape {y.shape}")
    duration = y.size / sr
    if duration < MIN_QUERY_SECONDS:
        raise InputError(f"query: {duration:.2f} s is too short (at least {MIN_QUERY_SECONDS:g} s)")
    if not np.all(np.isfinite(y)):
        raise InputError("query: audio contains NaN or infinite samples")
    if float(np.max(np.abs(y))) < 1e-4:
        raise InputError("query: audio is silent")
    L = fp.log_spectrogram(y, sr=sr, config=peak_config)
    dense_config = {
        **peak_config,
        "peaks_per_second": options.check_peaks_per_second,
        "query_time_radius": options.check_radius[0],
        "query_freq_radius": options.check_radius[1],
    }
    dense = fp.pick_peaks(L, config=dense_config)
    return QueryArrays(fp.pick_peaks(L, config=peak_config), dense, L)


def query_peaks(
    y: np.ndarray, *, sr: int, peak_config: dict, options: IdentifyOptions
) -> tuple[np.ndarray, np.ndarray]:
    """Validated query audio -> its peak lists ``(3, n)`` for hashing and, denser, for checking candidates
    (``options.check_peaks_per_second``, ``options.check_radius``); :func:`analyse_query` without the spectrogram.

    Raises :class:`InputError` for unusable audio.
    """
    q = analyse_query(y, sr=sr, peak_config=peak_config, options=options)
    return q.peaks, q.dense


def _needed(rank: int, options: IdentifyOptions) -> float:
    """Standout needed by a line of the ``rank``-th candidate (0 = most hash votes)."""
    if rank < options.lead_candidates:
        return options.min_score
    return max(options.min_score, options.beyond_min_score)


def _unchanged_speed(cands, peaks, dense, *, stored, changes, span: float, rate: float, options) -> list:
    """Fallback lines: at each candidate ``(recording, offset)``, speed 1 and no pitch shift at the offset within
    ``options.fallback_reach`` where most single peaks meet (:func:`offset_votes` of the hashing peaks), checked with
    the dense peaks (and the changes) like any line."""
    reach = options.fallback_reach * rate
    out = []
    for rank, (rec, off0) in enumerate(cands):
        ref = stored.peaks(rec)
        near = (ref[0] >= off0 - reach) & (ref[0] < off0 + span + reach)
        for off in offset_votes(ref[:, near], peaks, tolerance=options.peak_tolerance, n=1):
            if abs(off - off0) > reach:
                continue
            matched, score = peak_overlap(
                ref, dense, offset=off, speed=1.0, shift=0.0, span=span, rate=rate, tolerance=options.peak_tolerance
            )
            z, ok = line_answer(stored, changes, rec, (off, 1.0, 0.0), score, _needed(rank, options), options)
            if ok:
                out.append((rec, score, float(off) / rate, 1.0, 0.0, matched, z))
    return out


def match_peaks(
    index: FingerprintIndex,
    peaks: np.ndarray,
    *,
    options: IdentifyOptions,
    reference,
    dense: np.ndarray | None = None,
    exclude: frozenset = frozenset(),
    changes: ChangeCheck | None = None,
) -> tuple[list[tuple], int]:
    """Identify a query peak list against an index (arrays in, arrays out).

    Parameters
    ----------
    index : FingerprintIndex
    peaks : np.ndarray, shape (3, n)
        The query's peaks for hashing (frames relative to the query's start).
    options : IdentifyOptions
    reference : callable
        ``reference(recording_id) -> np.ndarray (3, n_ref)``: a recording's stored fingerprint array (its peaks, and
        from version 2 its change signs: :func:`mirsearch.features.fingerprint.split_stored`).
    dense : np.ndarray, shape (3, m), optional
        The query's denser peaks to check candidates with (default ``peaks``).
    exclude : frozenset of int
        Recordings not to answer.
    changes : ChangeCheck, optional
        The query's change check: candidates below ``options.min_score`` are answered when their peak standout and
        change standout add up to ``options.change_min`` (none: the peaks alone decide).

    Returns
    -------
    candidates : list of (recording_id, score, offset (s), speed, pitch shift (semitones), matched peaks, change)
        Best (most matched peaks) first, one per (recording, offset); each with ``score >= options.min_score``,
        ``options.sure_anchors`` anchors on its line, or ``score + change >= options.change_min``; ``change`` is
        the change standout (NaN when it was not checked).
    n_hashes : int
        Query probes looked up.
    """
    dense = peaks if dense is None else dense
    trip = fp.triplets(peaks, hconfig=index.hconfig, query=True)
    hashes, source = fp.query_hashes(trip, hconfig=index.hconfig)
    m = index.lookup(hashes, source)
    bpo = int(index.peak_config["bins_per_octave"])
    g = match_geometry(trip, m, bins_per_octave=bpo, options=options)
    if exclude and g["rec"].size:
        keep = ~np.isin(g["rec"], np.fromiter(exclude, np.int64))
        g = {k: v[keep] for k, v in g.items()}
    rate = index.frame_rate
    bin_frames = options.offset_bin * rate
    span = max(float(np.max(dense[0], initial=0.0)), float(np.max(peaks[0], initial=0.0))) + 1.0
    out = []
    clear = False  # a line answered beyond doubt (sure anchors, or a peak standout of veto_below)
    stored = StoredFingerprints(reference, index.peak_config)  # read once however many lines are candidates
    cands = vote_candidates(g, bin_frames=bin_frames, n=options.candidates)
    for rank, (rec, off0) in enumerate(cands):
        anchors, off, speed, shift = fit_line(g, rec, off0, bin_frames=bin_frames, options=options)
        if anchors < options.min_anchors or not plausible_shift(speed, shift / bpo, options):
            continue
        matched, score = peak_overlap(
            stored.peaks(rec), dense, offset=off, speed=speed, shift=shift, span=speed * span, rate=rate,
            tolerance=options.peak_tolerance,
        )  # fmt: skip
        if anchors >= options.sure_anchors:  # music that repeats itself: its peaks (and changes) stand out little
            z, ok = float("nan"), True
        else:
            z, ok = line_answer(stored, changes, rec, (off, speed, shift), score, _needed(rank, options), options)
        if ok:
            out.append((rec, score, off / rate, speed, 12.0 * shift / bpo, matched, z))
            clear = clear or anchors >= options.sure_anchors or score >= options.veto_below
    if options.fallback and not clear and (options.fallback_pooled or not out):
        out += _unchanged_speed(cands, peaks, dense, stored=stored, changes=changes, span=span, rate=rate,
                                options=options)  # fmt: skip
    if options.change_scan and not out and changes is not None:  # the last step: nothing else answered
        out = scan_answer(cands, dense, stored=stored, changes=changes, span=span, rate=rate, options=options)
    out.sort(key=lambda c: (-c[5], -c[1]))
    unique: list = []
    for c in out:
        if not any(u[0] == c[0] and abs(u[2] - c[2]) < 1.0 for u in unique):
            unique.append(c)
    return unique, int(hashes.size)


def stored_peaks(coll):
    """``reference(recording_id)`` for :func:`match_peaks`: the collection's stored fingerprint arrays."""

    def reference(recording_id: int) -> np.ndarray:
        return np.asarray(coll.load_features(int(recording_id), "fingerprint")[0])

    return reference


_INDEXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def collection_index(coll) -> FingerprintIndex:
    """The collection's fingerprint index, memoised per collection object and generation."""
    token = coll.generation()
    cached = _INDEXES.get(coll)
    if cached is not None and cached[0] == token:
        return cached[1]
    index = FingerprintIndex.for_collection(coll)
    _INDEXES[coll] = (token, index)
    return index


_NULLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def change_null_signs(coll, index) -> list:
    """Change signs of up to :data:`CHANGE_NULL_RECORDINGS` recordings spread evenly over the index's recordings
    (by id; memoised per collection object and generation): the unrelated music of a query's change null."""
    token = (coll.generation(), len(index.recordings))
    cached = _NULLS.get(coll)
    if cached is not None and cached[0] == token:
        return cached[1]
    ids = sorted(index.recordings)
    pick = sorted({ids[int(i)] for i in np.linspace(0, len(ids) - 1, min(CHANGE_NULL_RECORDINGS, len(ids)))})
    reference = stored_peaks(coll)
    signs = [fp.split_stored(reference(rec), config=index.peak_config)[1] for rec in pick] if ids else []
    _NULLS[coll] = (token, signs)
    return signs


def change_check(coll, index, spectrogram: np.ndarray, options: IdentifyOptions) -> ChangeCheck | None:
    """The query's :class:`ChangeCheck` against the collection (None when ``options.change_check`` is off)."""
    if not options.change_check:
        return None
    null = lambda: change_null_signs(coll, index)  # noqa: E731 - read when a candidate first needs the check
    return ChangeCheck(spectrogram, config=index.peak_config, null_signs=null, windows=CHANGE_NULL_WINDOWS)


def _to_matches(coll, cands, top: int) -> list[IdentifyMatch]:
    # a candidate's fields in IdentifyMatch's order after the recording's path
    return [
        IdentifyMatch(
            coll.recording(rec).path,
            rec,
            off,
            speed,
            score,
            shift,
            matched,
            float(change) if np.isfinite(change) else None,
        )  # fmt: skip
        for rec, score, off, speed, shift, matched, change in cands[:top]
    ]


def identify(coll, y: np.ndarray, *, sr: int, options: IdentifyOptions | None = None, index=None) -> IdentifyResult:
    """Identify an excerpt in a collection with stored fingerprints.

    Parameters
    ----------
    coll : Collection
        Indexed with ``--features ...,fingerprint``.
    y : np.ndarray, shape (n_samples,)
        Mono query audio, at least :data:`MIN_QUERY_SECONDS` long.
    sr : int > 0
        Sample rate of ``y`` (Hz).
    options : IdentifyOptions, optional
    index : FingerprintIndex, optional
        Anything with its ``lookup``, ``hconfig``, ``peak_config`` and ``frame_rate`` (a sharded index,
        :mod:`mirsearch.cluster`); default the collection's (:func:`collection_index`).

    Returns
    -------
    IdentifyResult
        ``matches`` best first; empty when not found.
    """
    options = options or IdentifyOptions()
    if y.size / sr > MAX_QUERY_SECONDS:
        raise ParameterError(f"query: {y.size / sr:.0f} s is longer than {MAX_QUERY_SECONDS:g} s (use scan)")
    index = collection_index(coll) if index is None else index
    q = analyse_query(y, sr=sr, peak_config=index.peak_config, options=options)
    cands, n_hashes = match_peaks(
        index, q.peaks, options=options, reference=stored_peaks(coll), dense=q.dense,
        changes=change_check(coll, index, q.spectrogram, options),
    )  # fmt: skip
    return IdentifyResult(matches=_to_matches(coll, cands, options.top), query_duration=y.size / sr, n_hashes=n_hashes)


def window_peaks(peaks: np.ndarray, start: float, length: float) -> np.ndarray:
    """Peaks with ``start <= t < start + length`` (frames), times made relative to ``start``."""
    sel = (peaks[0] >= start) & (peaks[0] < start + length)
    w = np.array(peaks[:, sel], dtype=np.float32)
    w[0] -= start
    return w


def scan_peaks(
    index: FingerprintIndex, peaks: np.ndarray, *, duration: float, window: float, hop: float, options, reference,
    dense: np.ndarray | None = None, changes_for=None,
):  # fmt: skip
    """Identify windows of a long query's peak lists and join consecutive consistent windows into stretches.

    ``reference`` and ``dense`` as in :func:`match_peaks`; ``changes_for(first_frame, n_frames)``, optional: the
    :class:`ChangeCheck` of a window.

    Returns
    -------
    list of (query_start, query_end, candidate)
        ``candidate`` as :func:`match_peaks` returns them; its offset is the recording time at ``query_start``, its
        score the best window's.
    """
    rate = index.frame_rate
    starts = np.arange(0.0, max(duration - window, 0.0) + 1e-9, hop)
    found = []
    dense = peaks if dense is None else dense
    for s in starts:
        a, n = s * rate, window * rate
        cands, _ = match_peaks(
            index, window_peaks(peaks, a, n), options=options, reference=reference, dense=window_peaks(dense, a, n),
            changes=None if changes_for is None else changes_for(a, n),
        )  # fmt: skip
        if cands:
            found.append((float(s), min(float(s) + window, duration), cands[0]))
    stretches: list = []
    for s, e, c in found:
        if stretches:
            ps, pe, pc = stretches[-1]
            expected = pc[2] + pc[3] * (s - ps)
            if c[0] == pc[0] and s <= pe and abs(c[2] - expected) < 1.0:
                best = pc if pc[1] >= c[1] else (*pc[:1], c[1], *pc[2:5], *c[5:])
                stretches[-1] = (ps, e, best)
                continue
        stretches.append((s, e, c))
    return stretches


def scan(
    coll, y: np.ndarray, *, sr: int, window: float = 10.0, hop: float = 5.0, options=None, index=None
) -> ScanResult:
    """Every identified stretch of a long recording (e.g. a tape or a broadcast); ``index`` as in :func:`identify`."""
    options = options or IdentifyOptions()
    if not 0 < hop <= window:
        raise ParameterError(f"hop={hop!r} must be in (0, window={window!r}]")
    index = collection_index(coll) if index is None else index
    q = analyse_query(y, sr=sr, peak_config=index.peak_config, options=options)
    duration = y.size / sr

    def changes_for(a: float, n: float):
        return change_check(coll, index, q.spectrogram[:, int(round(a)) : int(round(a + n))], options)

    found = scan_peaks(
        index, q.peaks, duration=duration, window=window, hop=hop, options=options, reference=stored_peaks(coll),
        dense=q.dense, changes_for=changes_for,
    )  # fmt: skip
    stretches = [Stretch(s, e, _to_matches(coll, [c], 1)[0]) for s, e, c in found]
    return ScanResult(stretches=stretches, query_duration=duration, window=window, hop=hop)


@dataclass(frozen=True)
class Duplicate:
    """Recording ``recording_id`` is contained in ``other_id`` from ``offset`` (s) on, at ``speed``."""

    recording: str
    recording_id: int
    other: str
    other_id: int
    offset: float
    speed: float
    score: float
    relation: str

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d.update(offset=round(self.offset, 3), speed=round(self.speed, 4), score=round(self.score, 1))
        return d


def _probe_windows(duration: float, window: float) -> list[float]:
    if duration <= window:
        return [0.0]
    return sorted({0.0, round((duration - window) / 2, 3), round(duration - window, 3)})


def dedupe(coll, *, window: float = 10.0, options: IdentifyOptions | None = None) -> list[Duplicate]:
    """Pairs of recordings that contain each other (the same audio, possibly at another speed).

    Three windows of each recording (start, middle, end) are identified against the other recordings; a
    recording whose windows all land in one other recording on one line is reported as contained in it
    (``relation="same"`` when the durations agree within 2 %).
    """
    options = options or IdentifyOptions()
    index = collection_index(coll)
    rate = index.frame_rate
    reference = stored_peaks(coll)
    out = []
    for rec in coll.recordings():
        if rec.id not in index.recordings:
            continue
        peaks = fp.peaks_of(reference(rec.id))
        hits = []
        for s in _probe_windows(rec.duration, window):
            cands, _ = match_peaks(
                index,
                window_peaks(peaks, s * rate, window * rate),
                options=options,
                reference=reference,
                exclude=frozenset({rec.id}),
            )
            hits.append((s, cands[0] if cands else None))
        if any(c is None for _, c in hits) or len({c[0] for _, c in hits}) != 1:
            continue
        s0, c0 = hits[0]
        start = c0[2] - c0[3] * s0
        if any(abs(c[2] - (start + c0[3] * s)) > 1.0 for s, c in hits):
            continue
        other = coll.recording(c0[0])
        same = abs(other.duration * 1.0 - rec.duration * c0[3]) <= 0.02 * other.duration
        out.append(
            Duplicate(
                rec.path,
                rec.id,
                other.path,
                other.id,
                start,
                c0[3],
                min(c[1] for _, c in hits),
                "same" if same else "contained",
            )
        )
    return out


__all__ = [
    "BEYOND_MIN_SCORE",
    "DEFAULT_CHANGE_MIN",
    "QueryArrays",
    "analyse_query",
    "change_check",
    "change_null_signs",
    "DEFAULT_MIN_SCORE",
    "Duplicate",
    "IdentifyMatch",
    "IdentifyOptions",
    "IdentifyResult",
    "ScanResult",
    "Stretch",
    "collection_index",
    "dedupe",
    "identify",
    "match_peaks",
    "peak_overlap",
    "query_peaks",
    "scan",
    "scan_peaks",
    "stored_peaks",
    "window_peaks",
]
