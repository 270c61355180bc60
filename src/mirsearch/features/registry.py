"""The feature kinds a collection can store, their configurations and extractors.

A configuration is a small JSON-able dict; its hash (``config_key``) names the stored arrays, so a
changed configuration (other rate, new feature version, retrained model) re-extracts on the next
``index`` run.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from mirsearch.errors import ParameterError, check_positive

#: bump when the chroma computation changes in a way that changes stored arrays
CHROMA_VERSION = 2
#: kinds extracted from audio and stored; CENS is derived from stored chroma at query time
STORED_KINDS = ("chroma", "learned", "fingerprint", "segments", "tags", "timbre", "chroma_upper")
#: kinds computed from the same pitch bands (:func:`extract` with a shared ``memo`` computes them once)
CHROMA_KINDS = ("chroma", "chroma_upper")


def feature_config(kind: str, *, feature_rate: float = 10.0) -> dict:
    """Configuration of a stored feature kind.

    Parameters
    ----------
    kind : {"chroma", "learned", "chroma_upper", ...}
    feature_rate : float > 0
        Frames per second.
    """
    check_positive("feature_rate", feature_rate)
    if kind == "chroma":
        from mirsearch.features.chroma import DEFAULT_GAMMA, REGISTER_CENTRE, REGISTER_WIDTH

        return {
            "kind": "chroma",
            "version": CHROMA_VERSION,
            "feature_rate": float(feature_rate),
            "gamma": DEFAULT_GAMMA,
            "register_centre": REGISTER_CENTRE,
            "register_width": REGISTER_WIDTH,
        }
    if kind == "chroma_upper":  # the chroma's recipe above G3, for audio matching (features/matching_chroma.py)
        from mirsearch.features.matching_chroma import upper_config

        return upper_config(feature_rate=feature_rate)
    if kind == "learned":
        from mirsearch.features.learned import ESTIMATE_TUNING, default_bundle_id

        config = {"kind": "learned", "feature_rate": float(feature_rate), "model": default_bundle_id()}
        return config | ({"tuning": "estimate"} if ESTIMATE_TUNING else {})
    if kind == "fingerprint":  # spectral peaks (3, n_peaks) at their own frame rate; feature_rate does not apply
        from mirsearch.features.fingerprint import fingerprint_config

        return fingerprint_config()
    if kind == "segments":  # speech / music probabilities (2, n) at the segmenter's rate; feature_rate does not apply
        from mirsearch.features.segment_features import segments_config

        return segments_config()
    if kind == "tags":  # tag probabilities and embeddings per patch (K + D, n) at the tagger's patch rate
        from mirsearch.features.tag_features import tags_config

        return tags_config()
    if kind == "timbre":  # timbre statistics per 4 s segment (search by similarity); feature_rate does not apply
        from mirsearch.features.timbre_stats import timbre_config

        return timbre_config()
    raise ParameterError(f"features={kind!r} is not one of {', '.join(STORED_KINDS)}")


def config_key(config: dict) -> str:
    """Short stable hash of a configuration."""
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


def extract(y: np.ndarray, *, sr: int, config: dict, memo: dict | None = None) -> tuple[np.ndarray, float]:
    """Compute the features a configuration describes; returns ``(X (12, n) float32, feature_rate)``
    (fingerprints: ``(3, n_peaks)`` peaks and their frame rate).

    ``memo``: a dict shared by the kinds extracted from the same signal ``y`` (the chroma kinds compute its pitch
    bands once); omitted, nothing is shared.
    """
    kind = config["kind"]
    if kind in CHROMA_KINDS:  # the recipe of features.chroma.chroma, "chroma_upper" above G3
        from mirsearch.features.matching_chroma import register_chroma

        return register_chroma(y, sr=sr, config=config, memo=memo)
    if kind == "learned":
        from mirsearch.features.learned import learned_chroma

        return learned_chroma(y, sr=sr, feature_rate=config["feature_rate"])
    if kind == "fingerprint":
        from mirsearch.features.fingerprint import extract_fingerprints

        return extract_fingerprints(y, sr=sr, config=config)
    if kind == "segments":
        from mirsearch.features.segment_features import extract_segments

        return extract_segments(y, sr=sr, config=config)
    if kind == "tags":
        from mirsearch.features.tag_features import extract_tags

        return extract_tags(y, sr=sr, config=config)
    if kind == "timbre":
        from mirsearch.features.timbre_stats import extract_timbre

        return extract_timbre(y, sr=sr, config=config)
    raise ParameterError(f"features={kind!r} is not one of {', '.join(STORED_KINDS)}")
