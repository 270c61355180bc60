"""The *matching chroma*: the collection's chroma recipe restricted to a pitch range, for audio matching.

Below about E2 the 4096-point analysis STFT (5.4 Hz bins, a Hann main lobe of ~21 Hz) spans several semitones,
so bass partials leak into neighbouring pitch classes in a pattern that changes with any pitch shift, and a
telephone band (300-3400 Hz) removes them altogether; above C7 there is little harmonic content and mostly
noise. Folding only the bands in :data:`MATCHING_MIDI_RANGE` makes audio matching more robust to pitch shifts,
band limiting and noise (docs/benchmarks.md). :func:`extract_chroma` computes the chroma any configuration
describes (a stored kind of :mod:`mirsearch.features.registry` or the matching chroma).
"""

from __future__ import annotations

import numpy as np

from mirsearch.errors import ParameterError, check_positive

#: pitch range (MIDI, inclusive) of the matching chroma: E2-C7. Chosen on validation excerpts (real tracks
#: not in the reported queries).
MATCHING_MIDI_RANGE = (40, 96)
#: version of the matching chroma computation (part of its cache key)
MATCHING_VERSION = 2


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
        Mono signal at ``sr`` Hz.
    sr : int
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


def extract_chroma(y: np.ndarray, *, sr: int, config: dict) -> tuple[np.ndarray, float]:
    """Chroma ``(12, n)`` and its rate as ``config`` describes: the matching chroma or a stored kind."""
    if config.get("kind") == "matching_chroma":
        return matching_chroma(y, sr=sr, config=config)
    from mirsearch.features.registry import extract

    return extract(y, sr=sr, config=config)


__all__ = ["MATCHING_MIDI_RANGE", "MATCHING_VERSION", "extract_chroma", "matching_chroma", "matching_config"]
