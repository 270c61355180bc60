"""Learned theme chroma: a CTC-trained network's chroma probabilities, blank removed, l2-normalised.

Following Zalkow and Müller (ISMIR 2020): the network (see :mod:`mirsearch.models.network`) outputs per
frame a distribution over 12 chroma classes and the blank; the blank is active most of the time, so
its row is dropped and every frame is normalised to unit l2 norm. The result is used like standard
chroma in theme search but follows the theme more than the accompaniment.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import numpy as np

from mirsearch._util.docs import doc_blocks
from mirsearch.errors import InputError, check_positive

logger = logging.getLogger(__name__)

#: frames whose chroma probabilities have an l2 norm below this become the uniform unit vector
NORM_THRESHOLD = 1e-12
#: the network's input is centred on the recording's estimated tuning (``None`` in the functions below). A
#: recording 25-50 cents off A440 otherwise falls between the semitone groups of the HCQT bins, and the shipped
#: network's Top-1 on held-out themes dropped from 0.70 to 0.43 (docs/benchmarks.md, session 17).
ESTIMATE_TUNING = True


@functools.lru_cache(maxsize=4)
def _cached_bundle(path: str | None, mtime: float):
    from mirsearch.models.bundle import load_bundle

    return load_bundle(path)


def get_bundle(bundle=None):
    """Resolve ``bundle`` (None = packaged default, a directory, or a loaded ModelBundle)."""
    from mirsearch.models.bundle import BUNDLES_DIR, CONFIG_FILE, DEFAULT_BUNDLE, ModelBundle

    if isinstance(bundle, ModelBundle):
        return bundle
    path = Path(bundle) if bundle is not None else BUNDLES_DIR / DEFAULT_BUNDLE
    try:
        mtime = (path / CONFIG_FILE).stat().st_mtime
    except OSError:
        raise InputError(f"{path}: no model bundle there (config.json missing)") from None
    return _cached_bundle(str(path), mtime)


def default_bundle_id() -> str:
    """``model_id`` of the packaged default bundle (from its config.json; the weights are not loaded).

    It changes whenever the default model is retrained, so stored learned features keyed by it are
    re-extracted. Raises :class:`~mirsearch.errors.InputError` if no default bundle is installed.
    """
    from mirsearch.models.bundle import bundle_model_id

    return bundle_model_id(None)


def postprocess(log_probs: np.ndarray, *, threshold: float = NORM_THRESHOLD) -> np.ndarray:
    """Drop the blank row of ``log_probs`` (13, n) and l2-normalise every frame -> (12, n) float32."""
    return normalize_chroma(np.exp(np.asarray(log_probs[:12], dtype=np.float64)), threshold=threshold)


def normalize_chroma(P: np.ndarray, *, threshold: float = NORM_THRESHOLD) -> np.ndarray:
    """l2-normalise every frame of chroma probabilities ``P`` (12, n) -> float32; near-zero frames
    (norm below ``threshold``) become the uniform unit vector."""
    P = np.asarray(P, dtype=np.float64)
    norms = np.sqrt((P**2).sum(axis=0))
    out = np.full(P.shape, 1.0 / np.sqrt(12.0), dtype=np.float64)
    ok = norms >= threshold
    out[:, ok] = P[:, ok] / norms[ok]
    return out.astype(np.float32)


def hcqt_tuning(y: np.ndarray, *, sr: int) -> float:
    """Tuning deviation of a recording in semitones, in [-0.5, 0.5): the shift of the network input's bins
    (:func:`mirsearch.features.chroma.estimate_tuning`, the standard chroma's estimate)."""
    from mirsearch.features.chroma import estimate_tuning

    return estimate_tuning(np.asarray(y, dtype=np.float32), sr=sr)


def bundle_hcqt(y: np.ndarray, *, sr: int, input_config: dict, tuning: float = 0.0) -> np.ndarray:
    """The network input: the HCQT of ``y`` with a bundle's input parameters.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio, already at ``input_config["sr"]``.
    sr : int
        Its sampling rate in Hz.
    input_config : dict
        The ``input`` section of a bundle config (``feature_rate``, ``harmonics``, ``fmin_midi``,
        ``n_octaves``, ``bins_per_semitone``, ``top_db``), e.g. ``bundle.input``.
    tuning : float
        Tuning deviation of ``y`` in semitones (:func:`hcqt_tuning`): every bin moves by it, so that a
        recording tuned 0.3 semitone sharp has its notes in the same bins as one tuned to A440.

    Returns
    -------
    np.ndarray, shape (n_harmonics, n_bins, n_frames), float32
        Values in ``[0, 1]``.
    """
    from mirsearch.features.hcqt import hcqt

    p = input_config
    H, _ = hcqt(
        y,
        sr=sr,
        feature_rate=p["feature_rate"],
        harmonics=tuple(p["harmonics"]),
        fmin_midi=p["fmin_midi"] + float(tuning),
        n_octaves=p["n_octaves"],
        bins_per_semitone=p["bins_per_semitone"],
        top_db=p["top_db"],
    )
    return H


def learned_log_probs(y: np.ndarray, *, sr: int, bundle=None, tuning: float | None = None) -> tuple[np.ndarray, float]:
    """Raw network output for a recording.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio.
    sr : int
        Its sampling rate in Hz (resampled to the bundle's rate if different).
    bundle : None, path or ModelBundle
        Model to use; None is the packaged default.
    tuning : float or None
        Tuning deviation in semitones; None estimates it (:func:`hcqt_tuning`) when :data:`ESTIMATE_TUNING`,
        else 0.

    Returns
    -------
    log_probs : np.ndarray, shape (13, n_frames), float32
        Log-probabilities over 12 chroma classes (0 = C) and the blank (row 12).
    feature_rate : float
        Frame rate of ``log_probs`` in Hz.
    """
    import soxr

    check_positive("sr", sr)
    b = get_bundle(bundle)
    model_sr = int(b.input["sr"])
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1 or y.size == 0:
        raise InputError(f"audio: expected a non-empty mono signal, got shape {y.shape}")
    if sr != model_sr:
        y = soxr.resample(y, sr, model_sr).astype(np.float32)
    if tuning is None:
        tuning = hcqt_tuning(y, sr=model_sr) if ESTIMATE_TUNING else 0.0
    H = bundle_hcqt(y, sr=model_sr, input_config=b.input, tuning=tuning)
    return b.predict(H), b.output_rate


@doc_blocks
def learned_chroma(
    y: np.ndarray, *, sr: int, feature_rate: float = 10.0, bundle: str | os.PathLike | object | None = None
) -> tuple[np.ndarray, float]:
    """Learned theme chroma of a recording.

    Parameters
    ----------
    {signal}
    feature_rate : float > 0
        Output frame rate in Hz; the chroma probabilities are averaged over the frames of the network
        output (21.5 Hz for the default model) that fall into each output frame.
    bundle : None, path or ModelBundle
        Model to use; None is the packaged default (:data:`mirsearch.models.bundle.DEFAULT_BUNDLE`).
        Its ``model_id`` identifies the model version.

    Returns
    -------
    {unit_chroma}
    """
    check_positive("feature_rate", feature_rate)
    log_probs, rate = learned_log_probs(y, sr=sr, bundle=bundle)
    P = np.exp(log_probs[:12].astype(np.float64))
    return readout(P, frame_rate=rate, duration=len(y) / sr, feature_rate=feature_rate), float(feature_rate)


def readout(P: np.ndarray, *, frame_rate: float, duration: float, feature_rate: float = 10.0) -> np.ndarray:
    """Chroma probabilities of a network -> unit-norm chroma at ``feature_rate``.

    Parameters
    ----------
    P : np.ndarray, shape (12, n)
        Chroma probabilities (0 = C) at ``frame_rate`` (Hz); ``n`` may be 0.
    frame_rate, feature_rate : float > 0
        Input and output frame rates (Hz); input frames are averaged into each output frame.
    duration : float >= 0
        Length of the recording (s).

    Returns
    -------
    np.ndarray, shape (12, 1 + floor(duration * feature_rate)), float32
        Unit l2 norm per frame (frames without any probability: the uniform unit vector).
    """
    from mirsearch.features.hcqt import _resample_frames

    check_positive("feature_rate", feature_rate)
    n_out = 1 + int(np.floor(duration * feature_rate + 1e-9))
    P = np.asarray(P, dtype=np.float64)
    if P.shape[1] == 0:
        return normalize_chroma(np.zeros((12, n_out)))
    return normalize_chroma(_resample_frames(P, rate_in=frame_rate, rate_out=feature_rate, n_out=n_out))
