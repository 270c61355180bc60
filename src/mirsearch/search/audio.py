"""Audio matching and version identification: query by an audio excerpt or a whole recording.

**Audio matching** (Müller, Kurth & Clausen, ISMIR 2005; Müller's retrieval tutorial): the query's
chroma is turned into CENS (chroma energy normalised statistics: quantised, smoothed over about 2-4 s
and downsampled to 1-2 Hz, robust to timbre, dynamics and articulation) and compared with the CENS
of every recording. Two ways of absorbing tempo differences:

- ``method="scaling"`` (default; *multiple scaling*): the query's 10 Hz chroma is resampled in time for
  each relative tempo in ``tempo_factors`` (a factor ``r`` simulates the query played ``r`` times as
  fast), CENS is computed for each, and each scaled query slides diagonally over the database: the cost
  at start frame ``m`` is the mean cosine distance ``1/N_r sum_n (1 - <q_n, y_{m+n}>)``. The matching
  curve is the minimum over the tempo factors (and, with ``transpose``, over the 12 cyclic shifts). One
  matrix product per scaled query covers the whole collection (concatenated; no match crosses a
  recording boundary).
- ``method="sdtw"``: subsequence DTW of the unscaled query CENS with step sizes (2,1), (1,2), (1,1)
  (local tempo between 1/2 and 2), :func:`mirsearch.matching.subsequence.subsequence_dtw_shifts`.

Matches are picked from the curve best first; a candidate overlapping an accepted match of the same
recording by more than ``max_overlap`` of the shorter span is suppressed (neighbourhood suppression).
``Match.cost`` is the mean cosine distance along the match (0 = identical CENS).

**Version identification** (:func:`identify_versions`): the query (a whole recording or a long excerpt)
is cut into *shingles* of ``shingle_seconds`` every ``hop_seconds``; each shingle is matched with
multiple scaling. For a recording ``R`` and a transposition ``k`` the score is

    score(R, k) = mean over shingles i of  min over positions and tempo factors of  cost_i(R, k)

i.e. how well, on average, every part of the query finds a counterpart somewhere in ``R`` (robust to
repeats, cuts and re-ordered sections); ``score(R) = min_k score(R, k)`` over the transpositions
considered. Recordings are ranked by increasing score. With ``transpose=True`` only the
``key_candidates`` shifts that best correlate the global (mean) chroma of query and recording are tried,
which keeps the cost at two shifts instead of twelve.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np

from mirsearch.errors import InputError, ParameterError, check_positive
from mirsearch.matching.subsequence import unit_columns
from mirsearch.search.results import Match

log = logging.getLogger(__name__)

#: relative tempi of the scaled queries (Müller's FMP notebook C7S2: 0.66 ... 1.5)
TEMPO_FACTORS = (0.66, 0.81, 1.0, 1.22, 1.5)
#: CENS parameters on 10 Hz chroma: window 21 frames (2.1 s), downsample 5 -> 2 Hz
CENS_WINDOW = 21
CENS_DOWNSAMPLE = 5
#: pitch range (MIDI, inclusive) of the *matching chroma* (``features="matching"``): E2-C7. Below about
#: E2 the 4096-point analysis STFT (5.4 Hz bins, a Hann main lobe of ~21 Hz) spans several semitones, so
#: bass partials leak into neighbouring pitch classes in a pattern that changes with any pitch shift,
#: and a telephone band (300-3400 Hz) removes them altogether; above C7 there is little harmonic content
#: and mostly noise. Chosen on validation excerpts (real tracks not in the reported queries).
MATCHING_MIDI_RANGE = (40, 96)
#: version of the matching chroma computation (part of its cache key)
MATCHING_VERSION = 2
#: shortest query accepted (seconds)
MIN_QUERY_SECONDS = 3.0
#: largest similarity block computed at once (float32 cells; bounds memory for large collections)
CHUNK_CELLS = 1 << 22


# ---------------------------------------------------------------------------------------------- database


@dataclass
class AudioDatabase:
    """CENS of every recording of a collection, concatenated as unit rows (build with :func:`prepare_database`).

    Attributes
    ----------
    Y : np.ndarray, shape (T, 12), float32
        Unit-length CENS frames of all recordings, one after the other.
    offsets : np.ndarray, shape (n_recordings + 1,), int64
        Recording ``i`` occupies rows ``offsets[i]:offsets[i + 1]``.
    recordings : list
        Catalogue records (``id``, ``path``, ``duration``) in the same order.
    feature_rate : float
        CENS frames per second.
    chroma_rate : float
        Frame rate of the chroma the CENS was derived from (the query is processed the same way).
    window, downsample : int
        CENS parameters.
    chroma_config : dict
        Configuration of the chroma the CENS was derived from (the collection's stored chroma or the
        matching chroma, :func:`matching_config`); query chroma is computed with the same.
    """

    Y: np.ndarray
    offsets: np.ndarray
    recordings: list
    feature_rate: float
    chroma_rate: float
    window: int
    downsample: int
    chroma_config: dict = field(default_factory=dict)
    _spectrum: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.recordings)

    def index_of(self, frame: int) -> int:
        """Recording index of a database row."""
        return int(np.searchsorted(self.offsets, frame, side="right") - 1)

    def spectrum(self) -> np.ndarray:
        """``np.fft.rfft(Y, axis=1)`` (T, 7) complex, computed once (for :func:`diagonal_costs_shifts`)."""
        if self._spectrum is None:
            self._spectrum = np.fft.rfft(self.Y.astype(np.float64), axis=1)
        return self._spectrum

    def without(self, recording_ids) -> AudioDatabase:
        """A database without some recordings (views of the kept rows; the cached spectrum is sliced too)."""
        drop = {int(i) for i in recording_ids}
        keep = [i for i, r in enumerate(self.recordings) if r.id not in drop]
        if len(keep) == len(self.recordings):
            return self
        if not keep:
            raise InputError("collection: every recording is excluded")
        rows = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in keep])
        offsets = np.cumsum([0] + [int(self.offsets[i + 1] - self.offsets[i]) for i in keep]).astype(np.int64)
        return AudioDatabase(
            Y=np.ascontiguousarray(self.Y[rows]),
            offsets=offsets,
            recordings=[self.recordings[i] for i in keep],
            feature_rate=self.feature_rate,
            chroma_rate=self.chroma_rate,
            window=self.window,
            downsample=self.downsample,
            chroma_config=self.chroma_config,
            _spectrum=None if self._spectrum is None else self._spectrum[rows],
        )

    def recording_features(self, i: int) -> np.ndarray:
        """CENS of recording ``i`` as (12, M)."""
        return self.Y[self.offsets[i] : self.offsets[i + 1]].T


def matching_config(*, feature_rate: float = 10.0, midi_range=MATCHING_MIDI_RANGE, gamma: float = 10.0) -> dict:
    """Configuration of the matching chroma (JSON-able; its hash names the cached arrays).

    Parameters
    ----------
    feature_rate : float > 0
        Chroma frames per second.
    midi_range : (int, int)
        Lowest and highest pitch band kept (MIDI, inclusive, within 21-108).
    gamma : float >= 0
        Logarithmic compression, as in :func:`mirsearch.features.chroma.chroma`.
    """
    check_positive("feature_rate", feature_rate)
    lo, hi = (int(v) for v in midi_range)
    if not 21 <= lo < hi <= 108:
        raise ParameterError(f"midi_range={tuple(midi_range)} must satisfy 21 <= low < high <= 108")
    if gamma < 0:
        raise ParameterError(f"gamma={gamma} must be >= 0")
    return {
        "kind": "matching_chroma",
        "version": MATCHING_VERSION,
        "feature_rate": float(feature_rate),
        "midi_range": [lo, hi],
        "gamma": float(gamma),
    }


def matching_chroma(y: np.ndarray, *, sr: int, config: dict | None = None) -> tuple[np.ndarray, float]:
    """Chroma for audio matching: the collection's chroma recipe restricted to a pitch range.

    :func:`mirsearch.features.chroma.chroma_from_pitch` (tuning-corrected semitone bands, level scaling,
    ``log(1 + gamma x)``, folding, averaging to ``feature_rate``, l2 norm) without register weighting,
    and only the bands in ``config["midi_range"]`` are folded (:data:`MATCHING_MIDI_RANGE`).

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal.
    sr : int
        Sample rate (Hz).
    config : dict, optional
        From :func:`matching_config` (default parameters when omitted).

    Returns
    -------
    C : np.ndarray, shape (12, ceil(duration * feature_rate)), float32
    feature_rate : float
    """
    from mirsearch.features.chroma import MIDI_MIN, chroma_from_pitch, pitch_features

    config = matching_config() if config is None else config
    lo, hi = config["midi_range"]
    rate = float(config["feature_rate"])
    P, frame_rate = pitch_features(np.asarray(y, dtype=np.float32), sr=sr)
    P[: lo - MIDI_MIN] = 0.0
    P[hi - MIDI_MIN + 1 :] = 0.0
    C = chroma_from_pitch(
        P, frame_rate=frame_rate, feature_rate=rate, gamma=float(config["gamma"]), register_centre=None
    )
    return C[:, : int(np.ceil(y.size / sr * rate))], rate


def _extract(y: np.ndarray, *, sr: int, config: dict) -> tuple[np.ndarray, float]:
    if config.get("kind") == "matching_chroma":
        return matching_chroma(y, sr=sr, config=config)
    from mirsearch.features.registry import extract

    return extract(y, sr=sr, config=config)


def cache_dir() -> str:
    """Folder of cached matching chroma: ``$MIRSEARCH_CACHE/matching`` or ``~/.cache/mirsearch/matching``."""
    root = os.environ.get("MIRSEARCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "mirsearch")
    return os.path.join(root, "matching")


def _matching_features(rec, config: dict) -> tuple[np.ndarray, float]:
    """Matching chroma of a catalogued recording, from the cache or computed from its audio file (and cached)."""
    from mirsearch.audio import SR, load_audio
    from mirsearch.features.registry import config_key

    path = os.path.join(cache_dir(), f"{rec.sha1}_{config_key(config)}.npy")
    if os.path.isfile(path):
        return np.load(path, allow_pickle=False), float(config["feature_rate"])
    y, sr = load_audio(rec.path, sr=SR)
    C, rate = matching_chroma(y, sr=sr, config=config)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp.npy"
    np.save(tmp, C)
    os.replace(tmp, path)
    return C, rate


def prepare_database(
    collection,
    *,
    window: int = CENS_WINDOW,
    downsample: int = CENS_DOWNSAMPLE,
    exclude=(),
    features: str = "chroma",
    matching: dict | None = None,
) -> AudioDatabase:
    """CENS of all recordings of a collection.

    Parameters
    ----------
    collection : Collection
        Anything with ``recordings()`` and ``load_features(recording_id, kind="chroma")``.
    window, downsample : int >= 1
        CENS smoothing window and downsampling factor on the chroma frames.
    exclude : iterable of int
        Recording ids left out.
    features : {"chroma", "matching"}
        ``"chroma"``: CENS derived from the collection's stored chroma (no audio decoding).
        ``"matching"``: CENS of the *matching chroma* (:func:`matching_chroma`, pitch bands
        :data:`MATCHING_MIDI_RANGE` only), computed from each recording's audio file on first use and
        cached under :func:`cache_dir` by content hash; more robust to pitch shifts, band limiting and
        noise (docs/benchmarks.md), but the first use decodes every recording.
    matching : dict, optional
        Configuration of the matching chroma (:func:`matching_config`; default parameters when omitted).

    Returns
    -------
    AudioDatabase
    """
    from mirsearch.features.chroma import cens
    from mirsearch.features.registry import feature_config

    if window < 1 or downsample < 1:
        raise ParameterError(f"window={window} and downsample={downsample} must be >= 1")
    if features not in ("chroma", "matching"):
        raise ParameterError(f"features={features!r} must be 'chroma' or 'matching'")
    config = (matching or matching_config()) if features == "matching" else None
    excluded = {int(i) for i in exclude}
    stored_keys = _stored_chroma_keys(collection) if config is None else {}
    parts, kept, rate = [], [], None
    for rec in collection.recordings():
        if rec.id in excluded:
            continue
        try:
            if config is None:
                C, r = collection.load_features(rec.id, "chroma")
            else:
                C, r = _matching_features(rec, config)
        except Exception as exc:  # a recording without features is skipped, not fatal
            log.warning("recording %s: no %s features (%s)", rec.id, features, exc)
            continue
        C = np.asarray(C, dtype=np.float32)
        if C.shape[1] == 0:
            continue
        if rate is not None and abs(r - rate) > 1e-9:
            raise ParameterError(f"mixed chroma rates in the collection ({r} and {rate} Hz)")
        rate = float(r)
        if stored_keys:
            _check_current(collection, rec, stored_keys, rate)
        X, _ = cens(C, feature_rate=rate, window=window, downsample=downsample)
        parts.append(unit_columns(X))
        kept.append(rec)
    if not parts:
        raise InputError("collection: no recordings with chroma features (run 'mirsearch index')")
    offsets = np.cumsum([0] + [p.shape[0] for p in parts]).astype(np.int64)
    Y = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
    return AudioDatabase(
        Y=Y,
        offsets=offsets,
        recordings=kept,
        feature_rate=rate / downsample,
        chroma_rate=rate,
        window=int(window),
        downsample=int(downsample),
        chroma_config=config if config is not None else feature_config("chroma", feature_rate=rate),
    )


def _stored_chroma_keys(collection) -> dict:
    """Configuration key of each recording's stored chroma ({} when the collection does not say)."""
    catalog = getattr(collection, "catalog", None)
    if catalog is None or not hasattr(catalog, "features"):
        return {}
    return {rid: entry.config_key for rid, entry in catalog.features("chroma").items()}


def _check_current(collection, rec, stored_keys: dict, rate: float) -> None:
    """Stored chroma must come from the current chroma recipe: query chroma is computed with it."""
    from mirsearch.features.registry import config_key, feature_config

    key = stored_keys.get(rec.id)
    if key is not None and key != config_key(feature_config("chroma", feature_rate=rate)):
        root = getattr(collection, "root", "collection")
        raise InputError(
            f"{root}: the stored chroma of {os.path.basename(rec.path)} comes from another chroma configuration "
            f"than the current one (queries would not be comparable); run 'mirsearch index' on the collection"
        )


def _database(collection_or_db, *, window, downsample, exclude, features="chroma") -> AudioDatabase:
    if isinstance(collection_or_db, AudioDatabase):
        return collection_or_db.without(exclude) if exclude else collection_or_db
    return prepare_database(collection_or_db, window=window, downsample=downsample, exclude=exclude, features=features)


# ---------------------------------------------------------------------------------------------- query


def query_chroma(query, *, db: AudioDatabase, sr: int | None = None, name: str = "query") -> tuple[np.ndarray, float]:
    """Chroma of an audio query computed exactly like the collection's stored chroma.

    Parameters
    ----------
    query : path, (y, sr) tuple, or np.ndarray (with ``sr``)
        The excerpt.

    Returns
    -------
    C : np.ndarray, shape (12, n), float32
    duration : float
        Query duration in seconds.
    """
    from mirsearch.audio import SR, load_audio, validate_audio

    if isinstance(query, (str, os.PathLike)):
        y, r = load_audio(query, sr=SR)
        name = os.path.basename(os.fspath(query))
    else:
        if isinstance(query, tuple):
            if len(query) != 2:
                raise ParameterError("query: expected a path, (y, sr) or an array")
            y, r = query
        else:
            y, r = query, sr
        if r is None:
            raise ParameterError("query: sr is required for an array query")
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 2:
            y = y.mean(axis=0) if y.shape[0] < y.shape[1] else y.mean(axis=1)
        validate_audio(y, sr=r, name=name)
        if int(r) != SR:
            import soxr

            y = soxr.resample(y, int(r), SR, quality="HQ").astype(np.float32)
            r = SR
    duration = y.size / r
    if duration < MIN_QUERY_SECONDS:
        raise InputError(f"{name}: query too short ({duration:.1f} s < {MIN_QUERY_SECONDS:g} s)")
    C, _ = _extract(y, sr=r, config=db.chroma_config)
    return C, duration


def scale_tempo(C: np.ndarray, factor: float) -> np.ndarray:
    """Resample a feature sequence in time as if played ``factor`` times as fast (linear interpolation).

    Parameters
    ----------
    C : np.ndarray, shape (K, N)
    factor : float > 0

    Returns
    -------
    np.ndarray, shape (K, max(1, round(N / factor))), float32
    """
    check_positive("tempo factor", factor)
    N = C.shape[1]
    n_new = max(1, int(round(N / factor)))
    if n_new == N:
        return np.asarray(C, dtype=np.float32)
    t_new = np.linspace(0.0, N - 1, n_new)
    lo = np.floor(t_new).astype(np.int64)
    hi = np.minimum(lo + 1, N - 1)
    w = (t_new - lo).astype(np.float32)
    return (C[:, lo] * (1 - w) + C[:, hi] * w).astype(np.float32)


def query_cens(C: np.ndarray, *, db: AudioDatabase, factor: float = 1.0) -> np.ndarray:
    """CENS (12, n) of query chroma at the database's CENS parameters, scaled by a tempo factor."""
    from mirsearch.features.chroma import cens

    X, _ = cens(scale_tempo(C, factor), feature_rate=db.chroma_rate, window=db.window, downsample=db.downsample)
    return X


# ---------------------------------------------------------------------------------------------- kernels


def diagonal_costs(Q: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Diagonal matching: mean cosine distance of the query laid over ``Y`` at every start frame.

    Parameters
    ----------
    Q : np.ndarray, shape (N, K) or (S, N, K)
        Unit-length query rows; with a leading axis, ``S`` queries of equal length (e.g. the 12 cyclic
        shifts of one query) matched in one matrix product.
    Y : np.ndarray, shape (T, K)
        Unit-length database rows.

    Returns
    -------
    np.ndarray, shape (T,) or (S, T), float32
        ``cost[m] = 1 - mean_n <Q[n], Y[m + n]>`` for ``m <= T - N``; ``inf`` for later starts.
    """
    single = Q.ndim == 2
    Qs = np.asarray(Q, dtype=np.float32)[None] if single else np.asarray(Q, dtype=np.float32)
    n_q, N, K = Qs.shape
    T = Y.shape[0]
    out = np.full((n_q, T), np.inf, dtype=np.float32)
    if N <= T:
        Qflat = np.ascontiguousarray(Qs.reshape(n_q * N, K))
        L_total = T - N + 1
        chunk = max(1024, CHUNK_CELLS // max(1, n_q * N))
        for c0 in range(0, L_total, chunk):
            L = min(chunk, L_total - c0)
            S = Qflat @ Y[c0 : c0 + L + N - 1].T  # (n_q * N, L + N - 1), C-contiguous
            r, c = S.strides
            for q in range(n_q):
                # diagonal view: D[n, m] = S[q * N + n, n + m]; summing over n gives the diagonal sums
                diag = np.lib.stride_tricks.as_strided(S[q * N :], shape=(N, L), strides=(r + c, c), writeable=False)
                out[q, c0 : c0 + L] = 1.0 - diag.sum(axis=0, dtype=np.float32) / N
    return out[0] if single else out


def diagonal_costs_shifts(
    Q: np.ndarray, Y: np.ndarray, *, shifts=range(12), Yf: np.ndarray | None = None
) -> np.ndarray:
    """Diagonal matching for all cyclic shifts of the query at once, through the chroma DFT.

    The dot product of a cyclically shifted query frame with a database frame is a circular
    cross-correlation over the chroma axis, i.e. ``irfft(conj(rfft(q)) * rfft(y))``; a sum of such products
    along a diagonal is, per chroma frequency bin, a correlation over *time* of two complex sequences
    (one FFT-based convolution per bin, :func:`scipy.signal.oaconvolve`). All 12 shifts then cost about
    as much as one, and ``O(T log N)`` instead of ``O(T N)`` per bin.

    Parameters
    ----------
    Q : np.ndarray, shape (N, K)
        Unit-length query rows.
    Y : np.ndarray, shape (T, K)
        Unit-length database rows.
    shifts : iterable of int
        Shifts ``k`` of ``np.roll(Q, k, axis=1)`` (the query transposed up by ``k``).
    Yf : np.ndarray, shape (T, K // 2 + 1), complex, optional
        ``np.fft.rfft(Y, axis=1)`` if already computed.

    Returns
    -------
    np.ndarray, shape (n_shifts, T), float32
        Same values as :func:`diagonal_costs` of each shifted query (``inf`` for starts after ``T - N``).
    """
    import scipy.signal

    shifts = [int(k) for k in shifts]
    N, K = Q.shape
    T = Y.shape[0]
    out = np.full((len(shifts), T), np.inf, dtype=np.float32)
    if N > T:
        return out
    if Yf is None:
        Yf = np.fft.rfft(np.asarray(Y, dtype=np.float64), axis=1)
    Qf = np.fft.rfft(np.asarray(Q, dtype=np.float64), axis=1)
    corr = scipy.signal.oaconvolve(Yf, np.conj(Qf[::-1]), mode="valid", axes=0)  # (T - N + 1, K // 2 + 1)
    acc = np.fft.irfft(corr, n=K, axis=1)  # (T - N + 1, K): acc[m, k] = sum_n <roll(Q, k)[n], Y[m + n]>
    out[:, : T - N + 1] = (1.0 - acc[:, [k % K for k in shifts]] / N).T
    return out


def _valid_starts(offsets: np.ndarray, T: int, N: int) -> np.ndarray:
    """Mask (T,) of start frames whose window of N frames stays inside one recording."""
    valid = np.zeros(T, dtype=bool)
    for a, b in zip(offsets[:-1], offsets[1:], strict=True):
        if b - a >= N:
            valid[a : b - N + 1] = True
    return valid


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


def _scaling_curves(C, db: AudioDatabase, *, tempo_factors, shifts):
    """Min over tempo factors and shifts; returns (cost (T,), length (T,), factor index (T,), shift (T,))."""
    T = db.Y.shape[0]
    best = np.full(T, np.inf, dtype=np.float32)
    length = np.zeros(T, dtype=np.int64)
    which = np.zeros(T, dtype=np.int64)
    shift_of = np.zeros(T, dtype=np.int64)
    for fi, factor in enumerate(tempo_factors):
        Qu = unit_columns(query_cens(C, db=db, factor=factor))
        N = Qu.shape[0]
        valid = _valid_starts(db.offsets, T, N)
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
    return best, length, which, shift_of


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


# ---------------------------------------------------------------------------------------------- search


def search_audio(
    collection,
    query,
    *,
    top: int = 10,
    method: str = "scaling",
    tempo_factors=TEMPO_FACTORS,
    transpose: bool = False,
    per_recording: int | None = None,
    max_overlap: float = 0.2,
    max_cost: float = np.inf,
    exclude=(),
    window: int = CENS_WINDOW,
    downsample: int = CENS_DOWNSAMPLE,
    sr: int | None = None,
    return_curves: bool = False,
    plot: str | os.PathLike | None = None,
    index: str = "exhaustive",
    features: str = "chroma",
):
    """Find the passages of a collection that sound like an audio excerpt.

    Parameters
    ----------
    collection : Collection or AudioDatabase
        The collection (CENS derived from its chroma) or a database prepared with
        :func:`prepare_database` (faster for many queries; ``exclude`` then drops recordings from a copy).
    query : path, (y, sr) tuple or np.ndarray
        The excerpt (10-30 s works best); arrays need ``sr``.
    top : int >= 1
        Number of matches returned.
    method : {"scaling", "sdtw"}
        Multiple scaling of the query (diagonal matching) or subsequence DTW (module docstring).
    tempo_factors : sequence of float > 0
        Relative tempi tried with ``method="scaling"``.
    transpose : bool
        Also try the 11 other cyclic chroma shifts (transposed versions).
    per_recording : int, optional
        At most this many matches per recording (default ``top``).
    max_overlap : float in [0, 1)
        Neighbourhood suppression: overlap share above which a weaker match is dropped.
    max_cost : float
        Drop matches costlier than this.
    exclude : iterable of int
        Recording ids not searched (e.g. the recording the query was cut from).
    window, downsample : int
        CENS parameters (ignored with a prepared database).
    sr : int, optional
        Sample rate of an array query.
    return_curves : bool
        Also return the matching curve of every recording.
    plot : path, optional
        Write the matching curve of the best match's recording, matches marked (:mod:`mirsearch.viz`).
    index : {"exhaustive"}
        Search strategy; only the exhaustive scan of the collection is implemented for audio queries.
    features : {"chroma", "matching"}
        Chroma the CENS is derived from (:func:`prepare_database`; ignored with a prepared database).

    Returns
    -------
    list of Match
        Best first; ``transposition`` is the semitones the query was shifted up to match, ``extra`` holds
        ``tempo_factor`` (scaling; > 1: the match is played faster than the query), ``method`` and ``rank``.
    (list of Match, list of MatchingCurve)
        With ``return_curves=True``.

    Raises
    ------
    InputError
        Unreadable, silent or too short query, or a query longer than every recording.
    """
    if top < 1:
        raise ParameterError(f"top={top} must be >= 1")
    if method not in ("scaling", "sdtw"):
        raise ParameterError(f"method={method!r} must be 'scaling' or 'sdtw'")
    if not 0 <= max_overlap < 1:
        raise ParameterError(f"max_overlap={max_overlap} must be in [0, 1)")
    tempo_factors = tuple(float(f) for f in tempo_factors)
    if not tempo_factors or any(not f > 0 for f in tempo_factors):
        raise ParameterError(f"tempo_factors={tempo_factors} must be non-empty and > 0")
    if index != "exhaustive":
        raise ParameterError(f"index={index!r}: audio search supports only 'exhaustive'")
    per_recording = top if per_recording is None else int(per_recording)
    t0 = time.perf_counter()
    db = _database(collection, window=window, downsample=downsample, exclude=exclude, features=features)
    C, duration = query_chroma(query, db=db, sr=sr)
    shifts = list(range(12)) if transpose else [0]
    T = db.Y.shape[0]
    if method == "scaling":
        cost, length, which, shift_of = _scaling_curves(C, db, tempo_factors=tempo_factors, shifts=shifts)
        starts = np.arange(T)
        ends = starts + np.maximum(length, 1) - 1
        factor_of = np.asarray(tempo_factors)[which]
    else:
        from mirsearch.matching.subsequence import subsequence_dtw_shifts

        X = query_cens(C, db=db)
        if X.shape[1] < 2:
            raise InputError(f"query too short for subsequence DTW at {db.feature_rate:g} Hz")
        mf, st = subsequence_dtw_shifts(X, db.Y.T, shifts=shifts, sequence_starts=db.offsets[:-1])
        k = np.argmin(mf, axis=0)
        cost = mf[k, np.arange(T)].astype(np.float32)
        starts = st[k, np.arange(T)]
        ends = np.arange(T)
        shift_of = np.asarray(shifts)[k]
        n_q = X.shape[1]
        factor_of = n_q / np.maximum(ends - starts + 1, 1)
        # no path crosses a recording boundary: the kernel resets at every sequence start
    if not np.any(np.isfinite(cost)):
        longest = max(r.duration for r in db.recordings)
        raise InputError(
            f"query ({duration:.1f} s) is longer than every recording (longest {longest:.1f} s) at the tempo "
            f"factors tried"
        )
    matches: list[Match] = []
    curves: list[MatchingCurve] = []
    for i, rec in enumerate(db.recordings):
        a, b = int(db.offsets[i]), int(db.offsets[i + 1])
        if return_curves or plot is not None:
            if method == "scaling":
                curve = cost[a:b].copy()
            else:  # re-index the end-indexed SDTW curve by start frame
                curve = np.full(b - a, np.inf, dtype=np.float32)
                ok = np.isfinite(cost[a:b])
                np.minimum.at(curve, np.clip(starts[a:b][ok] - a, 0, b - a - 1), cost[a:b][ok])
            curves.append(MatchingCurve(rec.id, rec.path, db.feature_rate, curve, duration))
        picked = _pick(
            cost[a:b],
            starts[a:b],
            ends[a:b],
            top=min(per_recording, top),
            max_overlap=max_overlap,
            max_cost=max_cost,
        )
        for s, e, j in picked:
            idx = a + j
            matches.append(
                Match(
                    recording=rec.path,
                    recording_id=int(rec.id),
                    start=(s - a) / db.feature_rate,
                    end=min((e - a + 1) / db.feature_rate, float(rec.duration)),
                    cost=float(cost[idx]),
                    transposition=int(shift_of[idx]) % 12,
                    extra={"tempo_factor": round(float(factor_of[idx]), 3), "method": method},
                )
            )
    matches.sort(key=lambda m: m.cost)
    matches = matches[:top]
    for rank, m in enumerate(matches, 1):
        m.extra["rank"] = rank
    log.info("search_audio: %d recordings, %d matches in %.3f s", len(db), len(matches), time.perf_counter() - t0)
    if plot is not None and matches:
        from mirsearch.viz.figures import plot_matching_curve

        best = matches[0]
        curve = next(c for c in curves if c.recording_id == best.recording_id)
        spans = [(m.start, m.end, m.cost) for m in matches if m.recording_id == best.recording_id]
        plot_matching_curve(
            curve.cost,
            feature_rate=curve.feature_rate,
            matches=spans,
            title=f"matching curve: {os.path.basename(best.recording)}",
            out=plot,
        )
    if return_curves:
        return matches, curves
    return matches


# ---------------------------------------------------------------------------------------------- versions


def key_shifts(query_cens: np.ndarray, rec_cens: np.ndarray, *, n: int = 2) -> list[int]:
    """The ``n`` cyclic shifts ``k`` whose rolled global query chroma best correlates with the recording's."""
    q = query_cens.mean(axis=1)
    r = rec_cens.mean(axis=1)
    corr = np.array([float(np.roll(q, k) @ r) for k in range(12)])
    return [int(k) for k in np.argsort(-corr, kind="stable")[:n]]


def identify_versions(
    collection,
    query,
    *,
    top: int = 10,
    shingle_seconds: float = 20.0,
    hop_seconds: float = 10.0,
    tempo_factors=TEMPO_FACTORS,
    transpose: bool = True,
    key_candidates: int = 2,
    exclude=(),
    window: int = 41,
    downsample: int = 10,
    sr: int | None = None,
    features: str = "chroma",
) -> list[Match]:
    """Rank the recordings of a collection as versions of the query (module docstring: the score).

    Parameters
    ----------
    collection : Collection or AudioDatabase
        A prepared database must use the same ``window``/``downsample``.
    query : path, (y, sr) tuple or np.ndarray
        A whole recording or a long excerpt (at least ``shingle_seconds``; shorter queries are one shingle).
    top : int >= 1
        Number of recordings returned.
    shingle_seconds, hop_seconds : float > 0
        Shingle length and hop (s).
    tempo_factors : sequence of float
        Relative tempi of the scaled shingles.
    transpose : bool
        Consider transposed versions (``key_candidates`` shifts per recording from the global chroma).
    key_candidates : int in [1, 12]
        Shifts tried per recording with ``transpose``.
    exclude : iterable of int
        Recording ids left out (e.g. the query itself when it is in the collection).
    window, downsample : int
        CENS parameters (default 41 / 10: 1 Hz, Müller's CENS for matching).
    sr : int, optional
        Sample rate of an array query.
    features : {"chroma", "matching"}
        Chroma the CENS is derived from (:func:`prepare_database`; ignored with a prepared database).

    Returns
    -------
    list of Match
        One per recording, best (lowest score) first: ``cost`` is the score, ``start``/``end`` the span of
        the recording that the shingles matched, ``transposition`` the shift, ``extra`` ``shingles``
        (count), ``coverage`` (share of the recording's duration covered by matched shingles) and ``rank``.
    """
    check_positive("shingle_seconds", shingle_seconds)
    check_positive("hop_seconds", hop_seconds)
    if top < 1:
        raise ParameterError(f"top={top} must be >= 1")
    if not 1 <= key_candidates <= 12:
        raise ParameterError(f"key_candidates={key_candidates} must be in [1, 12]")
    tempo_factors = tuple(float(f) for f in tempo_factors)
    t0 = time.perf_counter()
    db = _database(collection, window=window, downsample=downsample, exclude=exclude, features=features)
    C, duration = query_chroma(query, db=db, sr=sr)
    # shingles of the query chroma (in chroma frames), each scaled and turned into CENS
    L = max(1, int(round(shingle_seconds * db.chroma_rate)))
    H = max(1, int(round(hop_seconds * db.chroma_rate)))
    n = C.shape[1]
    starts = list(range(0, max(1, n - L + 1), H)) if n > L else [0]
    shingles = [C[:, s : s + L] for s in starts]
    Q_all = query_cens(C, db=db)
    T = db.Y.shape[0]
    n_sh = len(shingles)
    R = len(db.recordings)
    shift_sets = []
    for i in range(R):
        if transpose:
            shift_sets.append(key_shifts(Q_all, db.recording_features(i), n=key_candidates))
        else:
            shift_sets.append([0])
    all_shifts = sorted({k for ks in shift_sets for k in ks})
    # best[k][sh, rec] = min cost of shingle sh in recording rec at shift k
    best = {k: np.full((n_sh, R), np.inf) for k in all_shifts}
    pos = {k: np.zeros((n_sh, R, 2), dtype=np.int64) for k in all_shifts}
    for factor in tempo_factors:
        Qs = [unit_columns(query_cens(sh, db=db, factor=factor)) for sh in shingles]
        for si, Qu in enumerate(Qs):
            N = Qu.shape[0]
            invalid = ~_valid_starts(db.offsets, T, N)
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
    results = []
    for r, rec in enumerate(db.recordings):
        options = []
        for k in shift_sets[r]:
            c = best[k][:, r]
            ok = np.isfinite(c)
            if not ok.any():
                continue
            # a shingle that fits nowhere in the recording (too long) counts as cost 1 (unrelated)
            options.append((float((c[ok].sum() + (n_sh - ok.sum())) / n_sh), k, ok))
        if not options:
            continue
        score, k, ok = min(options, key=lambda o: o[0])
        spans = pos[k][ok, r]
        covered = np.zeros(db.offsets[r + 1] - db.offsets[r], dtype=bool)
        for s, e in spans:
            covered[s : e + 1] = True
        results.append(
            Match(
                recording=rec.path,
                recording_id=int(rec.id),
                start=float(spans[:, 0].min()) / db.feature_rate,
                end=min(float(spans[:, 1].max() + 1) / db.feature_rate, float(rec.duration)),
                cost=score,
                transposition=int(k) % 12,
                extra={"shingles": int(ok.sum()), "coverage": round(float(covered.mean()), 3)},
            )
        )
    if not results:
        raise InputError(f"query ({duration:.1f} s): no recording is long enough to compare")
    results.sort(key=lambda m: m.cost)
    results = results[:top]
    for rank, m in enumerate(results, 1):
        m.extra["rank"] = rank
    log.info("identify_versions: %d recordings, %d shingles in %.3f s", R, n_sh, time.perf_counter() - t0)
    return results
