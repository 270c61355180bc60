"""Front end and read-out of the peer's theme-chroma network (:mod:`mirsearch.models.peer`).

As the peer's README describes it (reimplemented, no code copied):

- mono audio at 22050 Hz, hop 896 samples (24.61 frames per second, frames centred as in librosa);
- six separate constant-Q transforms (``librosa.cqt``, magnitude, no log), harmonics 0.5, 1, 2, 3, 4,
  5 in this channel order, 36 bins per octave, 216 bins, ``tuning=0`` and
  ``fmin = h * C1 * 2**(-1/36) * 2**(tau/36)`` with ``tau = librosa.estimate_tuning(y, bins_per_octave=36)``
  of the recording, so that the middle bin of every group of three sits on a (tuned) semitone;
- the network's chroma probabilities (:meth:`mirsearch.models.peer.PeerModel.predict`: softmax over 13
  classes with the blank dropped for CTC models, over 12 otherwise) are averaged to the output rate
  (10 Hz) and l2-normalised per frame, as :func:`mirsearch.features.learned.learned_chroma` does for
  mirsearch's own models.

This HCQT differs from :func:`mirsearch.features.hcqt.hcqt` (one wide CQT at a power-of-two hop,
harmonics read with fractional shifts, dB scaled to [0, 1]): the peer's checkpoints expect exactly the
input they were trained on.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from mirsearch._util.docs import doc_blocks
from mirsearch.errors import InputError, check_positive

logger = logging.getLogger(__name__)

#: sampling rate (Hz) and hop (samples) of the peer's HCQT
PEER_SR = 22050
PEER_HOP = 896
#: frame rate of the HCQT and of the network output (Hz)
PEER_RATE = PEER_SR / PEER_HOP
#: harmonics, one channel each, in the checkpoints' order
PEER_HARMONICS: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0)
PEER_BINS_PER_OCTAVE = 36
PEER_N_BINS = 216
#: C1 in Hz (MIDI 24)
C1_HZ = 440.0 * 2.0 ** ((24 - 69) / 12)


def _prepare(y: np.ndarray, sr: int) -> np.ndarray:
    """Mono float32 signal at :data:`PEER_SR`."""
    import soxr

    check_positive("sr", sr)
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1 or y.size == 0:
        raise InputError(f"audio: expected a non-empty mono signal, got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise InputError("audio: signal contains non-finite values")
    if sr != PEER_SR:
        y = soxr.resample(y, sr, PEER_SR).astype(np.float32)
    return y


def peer_hcqt(y: np.ndarray, *, sr: int, tuning: float | None = None) -> np.ndarray:
    """The peer's HCQT of a recording.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio.
    sr : int > 0
        Its sampling rate in Hz (resampled to 22050 Hz if different).
    tuning : float or None
        Deviation from A440 in fractions of a bin (1/36 octave); None estimates it from the recording
        with ``librosa.estimate_tuning(bins_per_octave=36)``.

    Returns
    -------
    np.ndarray, shape (6, n_frames, 216), float32
        CQT magnitudes, channels = harmonics 0.5, 1, 2, 3, 4, 5; frame ``j`` centred at
        ``j * 896 / 22050`` seconds; ``n_frames = 1 + n_samples // 896`` (at 22050 Hz).
    """
    import librosa

    y = _prepare(y, sr)
    if tuning is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # silent input: "Trying to estimate tuning from empty frequency set"
            tuning = float(librosa.estimate_tuning(y=y, sr=PEER_SR, bins_per_octave=PEER_BINS_PER_OCTAVE))
    base = C1_HZ * 2.0 ** ((tuning - 1.0) / PEER_BINS_PER_OCTAVE)
    channels = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_fft=.* is too large", category=UserWarning)
        for h in PEER_HARMONICS:
            C = librosa.cqt(
                y,
                sr=PEER_SR,
                hop_length=PEER_HOP,
                fmin=h * base,
                n_bins=PEER_N_BINS,
                bins_per_octave=PEER_BINS_PER_OCTAVE,
                tuning=0.0,
            )
            channels.append(np.abs(C).T.astype(np.float32))
    # librosa's multi-rate CQT can give one frame more for some fmin when the length is just short of a hop
    # multiple (e.g. n_samples % 896 == 895): every channel has the documented frame count
    n_frames = 1 + len(y) // PEER_HOP
    channels = [c[:n_frames] if len(c) >= n_frames else np.pad(c, ((0, n_frames - len(c)), (0, 0))) for c in channels]
    logger.debug("peer_hcqt: %d samples, tuning %.2f bins -> %d frames", len(y), tuning, channels[0].shape[0])
    return np.stack(channels)


@doc_blocks
def peer_chroma(
    y: np.ndarray, *, sr: int, model, feature_rate: float = 10.0, num_threads: int | None = 1
) -> tuple[np.ndarray, float]:
    """Theme chroma of a recording by the peer network.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio.
    sr : int > 0
        Its sampling rate in Hz.
    model : mirsearch.models.peer.PeerModel
        Loaded checkpoint (:func:`mirsearch.models.peer.load_peer`); runs with onnxruntime when
        available (:meth:`~mirsearch.models.peer.PeerModel.predict`).
    feature_rate : float > 0
        Output frame rate in Hz; the network's frames (24.6 Hz) are averaged into it.
    num_threads : int or None
        Torch threads for the network.

    Returns
    -------
    {unit_chroma}
    """
    check_positive("feature_rate", feature_rate)
    y = _prepare(y, sr)
    P = model.predict(peer_hcqt(y, sr=PEER_SR), num_threads=num_threads)
    return peer_readout(P, duration=len(y) / PEER_SR, feature_rate=feature_rate), float(feature_rate)


def peer_readout(P: np.ndarray, *, duration: float, feature_rate: float = 10.0) -> np.ndarray:
    """Network chroma probabilities ``P`` (12, n) at :data:`PEER_RATE` -> unit-norm chroma (12, m) at
    ``feature_rate``, ``m = 1 + floor(duration * feature_rate)`` (:func:`mirsearch.features.learned.readout`)."""
    from mirsearch.features.learned import readout

    return readout(P, frame_rate=PEER_RATE, duration=duration, feature_rate=feature_rate)
