"""The *matching chroma*: the collection's chroma recipe restricted to a pitch range, for audio matching.

Below about E2 the 4096-point analysis STFT (5.4 Hz bins, a Hann main lobe of ~21 Hz) spans several semitones,
so bass partials leak into neighbouring pitch classes in a pattern that changes with any pitch shift, and a
telephone band (300-3400 Hz) removes them altogether; above C7 there is little harmonic content and mostly
noise. Folding only the bands in :data:`MATCHING_MIDI_RANGE` makes audio matching more robust to pitch shifts,
band limiting and noise (docs/benchmarks.md). :func:`extract_chroma` computes the chroma any configuration
describes (a stored kind of :mod:`mirsearch.features.registry` or the matching chroma).

**Query equalisation** (:func:`equalise_bands`, ``extract_chroma(..., max_gain_db=...)``): a query that went
through a channel (a telephone band, a small loudspeaker, an equaliser) has lost some bands *relative to the
recording it was cut from*, and the recording's stored chroma still has them (the bass a 300-3400 Hz band
removes dominates the stored chroma). Any linear channel is a gain per semitone band, constant in time. The
excerpt's long-term band spectrum (smoothed over half an octave, so that the notes played stay) is compared
with a typical spectrum of music (:data:`EQ_REFERENCE_DB`, referred to the level of the bands C4-B5 that every
such channel keeps) and the bands below it are raised towards it, by at
most ``max_gain_db``: a bounded, boost-only blind equalisation. An unfiltered excerpt is hardly changed (its
bands lie around the typical spectrum, and a gate, :data:`EQ_GATE_DB`, leaves every excerpt alone whose bass
is not far below it); what a channel attenuated is restored as far as it is still there.

**Upper-register chroma** (stored kind ``"chroma_upper"``, :func:`upper_chroma`): the stored chroma's recipe
(:func:`mirsearch.features.chroma.chroma`: linear power, one-octave register weighting around C5) over the bands
from :data:`UPPER_MIDI_LOW` (G3) up only. In game and pop recordings the bass and the drums carry most of the
energy even after the register weighting; below about E2 the analysis STFT does not resolve semitones (the leak
pattern changes with any pitch shift), and a telephone band or a small loudspeaker removes the bass altogether.
Matching on the bands a degraded excerpt still has raised the right place first from 0.894 to 0.927 on the tune
split of ``benchmarks/bench_matching_real.py`` (G3 chosen there among C3, G3, C4; docs/benchmarks.md, issue 14
session 12). The passage search uses it when a collection stores it
(:attr:`mirsearch.search.audio.PassageOptions.upper`).
"""

from __future__ import annotations

import numpy as np

from mirsearch.errors import ParameterError, check_positive

#: pitch range (MIDI, inclusive) of the matching chroma: E2-C7. Chosen on validation excerpts (real tracks
#: not in the reported queries).
MATCHING_MIDI_RANGE = (40, 96)
#: version of the matching chroma computation (part of its cache key)
MATCHING_VERSION = 2


#: bands equalised (MIDI, inclusive): E2-C8 (below E2 the analysis STFT does not resolve semitones)
EQ_MIDI_RANGE = (40, 108)
#: typical long-term spectrum of music over the bands of :data:`EQ_MIDI_RANGE` (dB, relative to the mean of
#: :data:`EQ_LEVEL_RANGE`; smoothed as in :func:`equalise_bands`): the median of the 237 pitch-, tempo- and
#: speed-changed excerpts of the tune tracks of ``benchmarks/bench_matching_real.py`` (ufoai, singularity), in
#: 0.5 dB steps. Flat to G2, then falling by about 3 dB per octave.
EQ_REFERENCE_DB = (
    6.0, 5.5, 6.0, 6.0, 5.5, 6.0, 5.5, 5.0, 5.0, 4.5, 4.5, 4.5, 4.0, 3.5, 3.5, 3.0, 3.0, 2.5, 2.5, 2.0, 2.0, 1.5,
    1.5, 1.5, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0, 0.0, 0.0, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -1.0, -1.5, -2.0,
    -2.5, -2.5, -3.0, -3.5, -3.5, -4.0, -4.0, -4.5, -4.5, -5.0, -5.0, -5.0, -5.5, -5.5, -5.5, -6.0, -6.0, -6.0,
    -6.5, -6.5, -7.0, -7.5, -8.5, -8.5, -8.5, -9.0, -9.0,
)  # fmt: skip
#: bands the excerpt's level is referred to (MIDI, inclusive: C4-B5, inside a 300-3400 Hz telephone band)
EQ_LEVEL_RANGE = (60, 83)
#: smoothing of the long-term band spectrum (bands; half an octave keeps the notes of the excerpt)
EQ_SMOOTH_BANDS = 7
#: the gate: an excerpt is equalised only when its bands E2-E3 (:data:`EQ_GATE_RANGE`) lie at least this far
#: below the typical spectrum (median, dB): a channel removed them. On the tune excerpts every telephone-band
#: excerpt lies 23-61 dB below, 77 of 79 of each other kind less than 20 dB (95 % less than 14 dB); equalising
#: unfiltered excerpts too cost 0-3 points of P@1 per kind on tune, 4-11 on the test split (docs/benchmarks.md).
EQ_GATE_DB = 20.0
EQ_GATE_RANGE = (40, 52)

#: the stored upper-register chroma (kind ``"chroma_upper"``): lowest band folded (MIDI; 55 = G3, about 196 Hz)
UPPER_MIDI_LOW = 55
#: version of the upper-register chroma computation (part of its stored configuration)
UPPER_VERSION = 1


def equalise_bands(
    P: np.ndarray, *, max_gain_db: float = 20.0, min_deficit_db: float = 0.0, gate_db: float = EQ_GATE_DB
) -> np.ndarray:
    """Raise the bands a channel attenuated towards a typical music spectrum (module docstring).

    Parameters
    ----------
    P : np.ndarray, shape (88, n_frames)
        Power per semitone band A0-C8 (:func:`mirsearch.features.chroma.pitch_features`).
    max_gain_db : float >= 0
        Largest gain applied to a band (dB); 0 returns a copy of ``P``.
    min_deficit_db : float >= 0
        Only bands at least this far below the typical spectrum are raised (the others are left alone: a
        quiet register of the music itself is not a channel).
    gate_db : float
        Equalise only when the bands of :data:`EQ_GATE_RANGE` lie at least this far below the typical spectrum
        (their median deficit, dB); else ``P`` is returned unchanged (a copy).

    Returns
    -------
    np.ndarray, shape (88, n_frames), float32
        ``P`` with each band multiplied by its gain (>= 1; a new array).
    """
    import scipy.ndimage

    from mirsearch.features.chroma import MIDI_MAX, MIDI_MIN

    if not max_gain_db >= 0 or not min_deficit_db >= 0:
        raise ParameterError(f"max_gain_db={max_gain_db} and min_deficit_db={min_deficit_db} must be >= 0")
    P = np.asarray(P, dtype=np.float32)
    if P.shape[0] != MIDI_MAX - MIDI_MIN + 1:
        raise ParameterError(f"P must have {MIDI_MAX - MIDI_MIN + 1} semitone bands, got {P.shape[0]}")
    if max_gain_db == 0 or P.shape[1] == 0:
        return P.copy()
    midi = np.arange(EQ_MIDI_RANGE[0], EQ_MIDI_RANGE[1] + 1)
    rows = midi - MIDI_MIN
    power = P[rows].mean(axis=1, dtype=np.float64)
    if not power.max() > 0:
        return P.copy()
    # long-term level per band (dB), floored 80 dB below the loudest band, smoothed within the range only
    level = 10.0 * np.log10(np.maximum(power, power.max() * 1e-8))
    level = scipy.ndimage.uniform_filter1d(level, EQ_SMOOTH_BANDS, mode="nearest")
    ref = np.asarray(EQ_REFERENCE_DB, dtype=np.float64)
    inside = (midi >= EQ_LEVEL_RANGE[0]) & (midi <= EQ_LEVEL_RANGE[1])
    deficit = ref + float(np.mean(level[inside] - ref[inside])) - level
    gate = (midi >= EQ_GATE_RANGE[0]) & (midi <= EQ_GATE_RANGE[1])
    if float(np.median(deficit[gate])) < gate_db:
        return P.copy()
    gain = np.where(deficit >= min_deficit_db, np.clip(deficit, 0.0, float(max_gain_db)), 0.0)
    out = P.copy()
    out[rows] *= (10.0 ** (gain / 10.0)).astype(np.float32)[:, None]
    return out


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


def matching_chroma(
    y: np.ndarray, *, sr: int, config: dict | None = None, max_gain_db: float = 0.0, tuning: float | None = None
) -> tuple[np.ndarray, float]:
    """Chroma for audio matching: the collection's chroma recipe restricted to a pitch range.

    :func:`mirsearch.features.chroma.chroma_from_pitch` (tuning-corrected semitone bands, level scaling,
    ``log(1 + gamma x)``, folding, averaging to ``feature_rate``, l2 norm) without register weighting,
    and only the bands in ``config["midi_range"]`` are folded (:data:`MATCHING_MIDI_RANGE`).

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal at ``sr`` Hz.
    sr : int
    config : dict, optional
        From :func:`matching_config` (default parameters when omitted).
    max_gain_db : float >= 0
        Equalise the pitch bands first (:func:`equalise_bands`; 0: no).
    tuning : float, optional
        Tuning deviation of the pitch bands (semitones); estimated from ``y`` when omitted.

    Returns
    -------
    C : np.ndarray, shape (12, ceil(duration * feature_rate)), float32
    feature_rate : float
    """
    from mirsearch.features.chroma import MIDI_MIN, chroma_from_pitch, pitch_features

    config = matching_config() if config is None else config
    lo, hi = config["midi_range"]
    rate = float(config["feature_rate"])
    P, frame_rate = pitch_features(np.asarray(y, dtype=np.float32), sr=sr, tuning=tuning)
    if max_gain_db > 0:
        P = equalise_bands(P, max_gain_db=max_gain_db)
    P[: lo - MIDI_MIN] = 0.0
    P[hi - MIDI_MIN + 1 :] = 0.0
    C = chroma_from_pitch(
        P, frame_rate=frame_rate, feature_rate=rate, gamma=float(config["gamma"]), register_centre=None
    )
    return C[:, : int(np.ceil(y.size / sr * rate))], rate


def extract_chroma(
    y: np.ndarray,
    *,
    sr: int,
    config: dict,
    max_gain_db: float = 0.0,
    tuning: float | None = None,
    memo: dict | None = None,
) -> tuple[np.ndarray, float]:
    """Chroma ``(12, n)`` and its rate as ``config`` describes: the matching chroma or a stored kind.

    ``max_gain_db > 0``: the pitch bands of the signal are equalised first (:func:`equalise_bands`; for the
    chroma kinds and the matching chroma, the other kinds ignore it). ``tuning``: the tuning deviation the pitch
    bands are centred on (semitones; estimated from ``y`` when omitted; chroma kinds and the matching chroma).
    ``memo``: pitch bands of ``y`` kept between calls (:func:`register_chroma`; chroma kinds).
    """
    if config.get("kind") == "matching_chroma":
        return matching_chroma(y, sr=sr, config=config, max_gain_db=max_gain_db, tuning=tuning)
    if config.get("kind") in ("chroma", "chroma_upper"):
        return register_chroma(y, sr=sr, config=config, max_gain_db=max_gain_db, tuning=tuning, memo=memo)
    from mirsearch.features.registry import extract

    return extract(y, sr=sr, config=config)


def upper_config(*, feature_rate: float = 10.0) -> dict:
    """Configuration of the stored upper-register chroma (kind ``"chroma_upper"``; module docstring)."""
    from mirsearch.features.chroma import DEFAULT_GAMMA, REGISTER_CENTRE, REGISTER_WIDTH

    check_positive("feature_rate", feature_rate)
    return {
        "kind": "chroma_upper",
        "version": UPPER_VERSION,
        "feature_rate": float(feature_rate),
        "gamma": DEFAULT_GAMMA,
        "register_centre": REGISTER_CENTRE,
        "register_width": REGISTER_WIDTH,
        "lowest_midi": UPPER_MIDI_LOW,
    }


def upper_chroma(y: np.ndarray, *, sr: int, config: dict | None = None) -> tuple[np.ndarray, float]:
    """The upper-register chroma of a signal (module docstring): ``(12, ceil(duration * rate))`` and its rate."""
    return register_chroma(y, sr=sr, config=upper_config() if config is None else config)


def _bands_key(tuning: float | None) -> tuple:
    """Key of a signal's pitch bands at ``tuning`` in the ``memo`` of :func:`register_chroma`."""
    return ("pitch_features", tuning)


def remember_pitch_bands(y: np.ndarray, *, sr: int, tunings, memo: dict) -> None:
    """Put the pitch bands of ``y`` at each of ``tunings`` (semitones) into ``memo`` for :func:`register_chroma`,
    from one pass of the signal's STFT (:func:`mirsearch.features.chroma.pitch_features_tunings`); bands already
    there are kept."""
    from mirsearch.features.chroma import pitch_features_tunings

    missing = [float(t) for t in tunings if _bands_key(float(t)) not in memo]
    if missing:
        bands, frame_rate = pitch_features_tunings(np.asarray(y, dtype=np.float32), sr=sr, tunings=missing)
        memo.update({_bands_key(t): (P, frame_rate) for t, P in zip(missing, bands, strict=True)})


def register_chroma(
    y: np.ndarray,
    *,
    sr: int,
    config: dict,
    max_gain_db: float = 0.0,
    memo: dict | None = None,
    tuning: float | None = None,
) -> tuple[np.ndarray, float]:
    """The stored chroma's recipe (:func:`mirsearch.features.chroma.chroma`) as a ``"chroma"`` or
    ``"chroma_upper"`` configuration describes it (bands below ``config["lowest_midi"]`` left out), on pitch bands
    equalised first with ``max_gain_db > 0`` (:func:`equalise_bands`).

    ``memo``: a dict shared by the kinds extracted from one signal, or by the stages of one query; the pitch bands
    are computed once per tuning (key ``("pitch_features", tuning)``) and reused by the next kind or stage.
    ``tuning``: the tuning deviation the pitch bands are centred on (semitones; estimated from ``y`` when
    omitted).
    """
    from mirsearch.features.chroma import MIDI_MIN, chroma_from_pitch, pitch_features

    rate = float(config["feature_rate"])
    key = _bands_key(tuning)
    bands = None if memo is None else memo.get(key)
    if bands is None:
        bands = pitch_features(np.asarray(y, dtype=np.float32), sr=sr, tuning=tuning)
        if memo is not None:
            memo[key] = bands
    P, frame_rate = bands
    P = equalise_bands(P, max_gain_db=max_gain_db) if max_gain_db > 0 else P.copy()
    P[: max(0, int(config.get("lowest_midi", MIDI_MIN)) - MIDI_MIN)] = 0.0
    C = chroma_from_pitch(
        P,
        frame_rate=frame_rate,
        feature_rate=rate,
        gamma=float(config["gamma"]),
        register_centre=config["register_centre"],
        register_width=float(config["register_width"]),
    )
    return C[:, : int(np.ceil(y.size / sr * rate))], rate


__all__ = [
    "EQ_GATE_DB",
    "EQ_REFERENCE_DB",
    "MATCHING_MIDI_RANGE",
    "UPPER_MIDI_LOW",
    "MATCHING_VERSION",
    "equalise_bands",
    "extract_chroma",
    "matching_chroma",
    "matching_config",
    "register_chroma",
    "upper_chroma",
    "upper_config",
]
