"""Onset-aware features for accurate synchronisation: chroma and DLNCO at a high frame rate (50 Hz).

Chroma alone gives an alignment that is right within a few hundred milliseconds: within a sustained
chord every frame looks the same. The *decaying locally adaptive normalised chroma onset* (DLNCO)
features of Ewert, Müller and Grosche (ICASSP 2009) add where notes begin:

1. semitone-band energies ``P`` (88 bands, A0-C8, tuning-corrected) from a short STFT (2048 points at
   22050 Hz, hop ``sr / feature_rate`` = 441 samples for 50 Hz), scaled so that the recording's loud
   frames are about 1 (level invariance) and log-compressed ``log(1 + onset_gamma * P)``;
2. onset strength per band: half-wave rectified first difference over time, kept only at local maxima
   (peak picking, so a note onset is one impulse, not a ramp);
3. folded into 12 pitch classes (chroma onset, CO);
4. *locally adaptive normalisation* (LN): each frame divided by the maximum frame norm within
   +-``ln_seconds / 2`` (at least ``ln_floor``), so soft and loud passages weigh alike;
5. *decay* (D): each pitch class keeps ``max_k c_k * LNCO[t - k]`` with ``c_k = sqrt(1 / (k + 1))`` for
   ``k = 0 .. 9`` (200 ms at 50 Hz), so that Euclidean distances between DLNCO vectors fall off smoothly
   with the time difference between onsets.

The chroma part uses a 4096-point STFT at the same hop (frequency resolution for low notes), the same
level scaling and ``log(1 + gamma * P)``, folded and l2-normalised. This is our own STFT-based variant;
synctoolbox computes the onsets with an IIR filter bank per pitch (more precise for low notes, much
slower). The same steps 3-5 turn a note list into DLNCO features (:func:`notes_to_sync_features`) for
score-to-audio alignment.

:class:`SyncRecipe` holds the choices of steps 1-5 (compressions, difference span, peak picking, decay span)
and of a *sharp chroma*: chroma of the short (onset) analysis, for the finest alignment level, where the
4096-point window (186 ms) blurs note changes. Audio-to-audio synchronisation uses its own recipe
(:data:`mirsearch.sync.audio.AUDIO_RECIPE`); the defaults are those of score-to-audio alignment.

Feature matrices are ``(12, n_frames)`` float32; frame ``k`` is centred on time ``k / feature_rate``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.ndimage

from mirsearch.errors import InputError, ParameterError, check_positive
from mirsearch.features.chroma import (
    estimate_tuning,
    fold_chroma,
    normalize_frames,
    pitch_filterbank,
)

log = logging.getLogger(__name__)

#: default frame rate of the synchronisation features (Hz)
SYNC_FEATURE_RATE = 50.0
#: decay coefficients of DLNCO (sqrt(1/k), k = 1..10)
DECAY = np.sqrt(1.0 / np.arange(1, 11))
#: relative weight of a note's harmonics in symbolic chroma: semitone offset -> weight
HARMONICS = ((0, 1.0), (12, 0.5), (19, 0.33), (24, 0.25), (28, 0.2))


@dataclass(frozen=True)
class SyncRecipe:
    """How band energies become synchronisation features (:func:`sync_features_from_bands`).

    The compressions ``log(1 + gamma * P)`` apply after the loud frames of the recording are scaled to 1.
    """

    #: log compressions of the chroma (4096-point analysis), of the onset band energies and of the sharp
    #: chroma (both from the 2048-point analysis)
    gammas: tuple[float, float, float] = (10.0, 1000.0, 10.0)
    #: seconds by which onsets are moved earlier (see :func:`sync_features`)
    onset_lead: float = 0.04
    #: span (s) of the log-energy rise that makes the onset strength (at least one frame): one frame (20 ms at
    #: 50 Hz) sees the steepest part of a sharp attack, a longer span also the slow rise of a soft one
    onset_lag: float = 0.02
    #: keep only local maxima of the onset strength along time (one impulse per note)
    peaks_only: bool = True
    #: span (s) of the DLNCO decay, ``c_k = sqrt(1 / k)`` for the frames within it (0.2 s: 10 frames at 50 Hz)
    decay_seconds: float = 0.2


class SyncFeatures(NamedTuple):
    """Output of :func:`sync_features_from_bands`: three ``(12, n_frames)`` float32 matrices and the attack
    time of the recording's onsets (:func:`attack_time`, s)."""

    chroma: np.ndarray  #: l2-normalised log chroma (long analysis window)
    dlnco: np.ndarray  #: DLNCO onset features
    sharp: np.ndarray  #: l2-normalised log chroma of the onset (short-window) analysis
    attack: float = 0.0  #: :func:`attack_time` of the onset strength (s)


def hop_for_rate(sr: int, feature_rate: float) -> tuple[int, float]:
    """STFT hop (samples) for a frame rate and the exact rate it gives: ``(round(sr / rate), sr / hop)``."""
    check_positive("feature_rate", feature_rate)
    check_positive("sr", sr)
    hop = int(round(sr / feature_rate))
    if hop < 1:
        raise ParameterError(f"feature_rate={feature_rate} is too high for sr={sr}")
    return hop, sr / hop


def local_normalize(CO: np.ndarray, *, feature_rate: float, seconds: float = 0.8, floor: float = 0.1) -> np.ndarray:
    """Divide each frame by the largest frame norm in a window around it (at least ``floor``).

    Parameters
    ----------
    CO : np.ndarray, shape (12, n_frames)
        Non-negative chroma onset strengths.
    feature_rate : float > 0
        Frame rate (Hz).
    seconds : float > 0
        Window length of the running maximum.
    floor : float > 0
        Smallest normaliser (frames with weak onsets stay weak).

    Returns
    -------
    np.ndarray, shape (12, n_frames), float32
    """
    norms = np.sqrt(np.square(CO, dtype=np.float64).sum(axis=0))
    size = max(1, int(round(seconds * feature_rate)) | 1)
    local = scipy.ndimage.maximum_filter1d(norms, size=size, mode="constant", cval=0.0)
    return (CO / np.maximum(local, floor)).astype(np.float32)


def decay(LNCO: np.ndarray, *, coefficients: np.ndarray = DECAY) -> np.ndarray:
    """Decaying maximum ``out[:, t] = max_k c_k * LNCO[:, t - k]`` (shape preserved, float32)."""
    out = np.zeros_like(LNCO, dtype=np.float32)
    n = LNCO.shape[1]
    for k, c in enumerate(np.asarray(coefficients, dtype=np.float32)):
        if k >= n:
            break
        np.maximum(out[:, k:], c * LNCO[:, : n - k], out=out[:, k:])
    return out


def dlnco_from_chroma_onsets(
    CO: np.ndarray, *, feature_rate: float, ln_seconds: float = 0.8, ln_floor: float = 0.1, coefficients=DECAY
) -> np.ndarray:
    """DLNCO features from chroma onset strengths (steps 4-5 of the module description).

    Parameters
    ----------
    CO : np.ndarray, shape (12, n_frames)
        Non-negative chroma onset strengths.
    feature_rate : float > 0
        Frame rate (Hz); the decay spans 10 frames.
    ln_seconds, ln_floor : float
        Running-maximum window and floor of the local normalisation.
    coefficients : np.ndarray
        Decay weights (:data:`DECAY`: 10 frames).

    Returns
    -------
    np.ndarray, shape (12, n_frames), float32
    """
    return decay(
        local_normalize(CO, feature_rate=feature_rate, seconds=ln_seconds, floor=ln_floor), coefficients=coefficients
    )


def attack_time(strength: np.ndarray, *, feature_rate: float, start_share: float = 0.3, max_seconds=0.3) -> float:
    """How long a recording's onsets take to rise: the mean time (s) from the start of each strong onset's rise to
    the centroid of its strength.

    Parameters
    ----------
    strength : np.ndarray, shape (n_frames,)
        Broadband onset strength (the rises of the log band energies, summed over bands).
    feature_rate : float > 0
        Frame rate (Hz).
    start_share : float
        A rise starts after the last frame (at most ``max_seconds`` before the peak) whose strength is below this
        share of the peak's.
    max_seconds : float
        Longest rise considered.

    Strong onsets are the local maxima above 0.3 of the 95th percentile. A plucked or struck note rises within a
    frame (about 0); a bowed, blown or sung one over several, and its onset features lie later after the true
    onset (the offset of two recordings' alignment, see :data:`mirsearch.sync.audio.AUDIO_ATTACK_SLOPE`).
    Returns 0.0 when there is no strong onset.
    """
    O = np.asarray(strength, dtype=np.float64)
    if O.size < 3:
        return 0.0
    ref = float(np.percentile(O, 95))
    peaks = np.flatnonzero((O[1:-1] > O[:-2]) & (O[1:-1] >= O[2:]) & (O[1:-1] > 0.3 * ref)) + 1
    max_frames = max(1, int(round(max_seconds * feature_rate)))
    lags = []
    for p in peaks:
        j = p
        while j > max(0, p - max_frames) and O[j - 1] > start_share * O[p]:
            j -= 1
        seg = O[j : p + 1]
        lags.append(float((np.arange(seg.size) * seg).sum() / seg.sum()))
    return float(np.mean(lags)) / float(feature_rate) if lags else 0.0


def _peaks_only(O: np.ndarray) -> np.ndarray:
    """Keep values that are local maxima along time (ties keep the first), zero elsewhere."""
    keep = np.empty(O.shape, dtype=bool)  # O > its left neighbour (0 before the first frame) ...
    keep[:, 0] = O[:, 0] > 0
    np.greater(O[:, 1:], O[:, :-1], out=keep[:, 1:])
    keep[:, :-1] &= O[:, :-1] >= O[:, 1:]  # ... and >= its right one (0 after the last)
    keep[:, -1] &= O[:, -1] >= 0
    return np.where(keep, O, O.dtype.type(0))


#: STFT frames per block in :func:`band_energies` (bounds memory: ~4 MB per block at 4096 points)
BLOCK_FRAMES = 256


def band_energies(y: np.ndarray, *, sr: int, n_fft: int, hop_length: int, tuning: float) -> np.ndarray:
    """Semitone-band power (88 bands, A0-C8) of a signal, streamed in small blocks of STFT frames.

    The same analysis as :func:`mirsearch.features.chroma.pitch_features` (centred Hann frames, bins
    pooled by :func:`~mirsearch.features.chroma.pitch_filterbank`), computed in single precision with
    :mod:`scipy.fft` and blocks of :data:`BLOCK_FRAMES` frames: about 10x faster and a few MB of working
    memory however long the recording.

    Returns
    -------
    np.ndarray, shape (88, n_frames), float32
        ``n_frames = 1 + len(y) // hop_length``; frame ``k`` is centred on sample ``k * hop_length``.
    """
    import scipy.fft
    import scipy.signal

    fb = pitch_filterbank(int(sr), int(n_fft), round(float(tuning), 2))  # (n_bins, 88) sparse
    fbT = fb.T.tocsr()
    pad = n_fft // 2
    yp = np.pad(np.asarray(y, dtype=np.float32), (pad, pad))
    n_frames = 1 + (yp.size - n_fft) // hop_length
    window = scipy.signal.get_window("hann", n_fft).astype(np.float32)
    window *= np.float32(2.0 / window.sum())  # a full-scale sinusoid peaks near 1
    frames = np.lib.stride_tricks.sliding_window_view(yp, n_fft)[::hop_length][:n_frames]
    out = np.empty((fbT.shape[0], n_frames), dtype=np.float32)
    buf = np.empty((BLOCK_FRAMES, n_fft), dtype=np.float32)
    for start in range(0, n_frames, BLOCK_FRAMES):
        b = min(BLOCK_FRAMES, n_frames - start)
        np.multiply(frames[start : start + b], window, out=buf[:b])
        spec = scipy.fft.rfft(buf[:b], axis=1)
        power = np.square(spec.real) + np.square(spec.imag)
        out[:, start : start + b] = fbT @ power.T
    return out


def _level_normalize(P: np.ndarray) -> np.ndarray:
    """Scale band energies so that loud frames (99th percentile of the frame maxima) are about 1."""
    level = float(np.percentile(P.max(axis=0), 99)) if P.shape[1] else 0.0
    return P / np.float32(level) if level > 0 else P


def sync_features(
    y: np.ndarray,
    *,
    sr: int,
    feature_rate: float = SYNC_FEATURE_RATE,
    tuning: float | None = None,
    chroma_n_fft: int = 4096,
    onset_n_fft: int = 2048,
    recipe: SyncRecipe = SyncRecipe(),
    name: str = "audio",
) -> tuple[np.ndarray, np.ndarray, float]:
    """Chroma and DLNCO features of an audio signal at a high frame rate, for synchronisation.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal.
    sr : int
        Sample rate (Hz).
    feature_rate : float > 0
        Target frames per second; the STFT hop is ``round(sr / feature_rate)`` and the returned rate is
        exact (50 Hz at 22050 Hz).
    tuning : float, optional
        Tuning deviation in semitones; estimated when omitted.
    chroma_n_fft, onset_n_fft : int
        FFT sizes of the chroma (frequency resolution) and onset (time resolution) analyses.
    recipe : SyncRecipe
        Log compressions (applied after scaling the loud frames of the recording to about 1: level
        invariance), onset difference span, peak picking and decay. Its ``onset_lead`` moves detected onsets
        earlier: an energy rise peaks in the STFT frame whose window has taken in most of the attack, about
        half a window after the physical onset (measured on the benchmark dataset's validation split:
        30-40 ms). It cancels between two recordings but matters against a score, whose onsets are exact.
    name : str
        Label for error messages.

    Returns
    -------
    chroma : np.ndarray, shape (12, n_frames), float32
        l2-normalised log chroma.
    dlnco : np.ndarray, shape (12, n_frames), float32
        DLNCO onset features.
    feature_rate : float
        Frames per second.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1 or y.size == 0:
        raise InputError(f"{name}: expected a non-empty mono signal, got shape {y.shape}")
    hop, rate = hop_for_rate(sr, feature_rate)
    if tuning is None:
        tuning = estimate_tuning(y, sr=sr)
    bands = sync_band_energies(y, sr=sr, hop_length=hop, tuning=tuning, n_ffts=(chroma_n_fft, onset_n_fft))
    chroma, dl = sync_features_from_bands(
        *bands, n_frames=int(np.ceil(y.size / hop)), feature_rate=rate, recipe=recipe
    )[:2]
    log.debug("%s: sync features %d frames at %.1f Hz (tuning %.2f)", name, chroma.shape[1], rate, tuning)
    return chroma, dl, float(rate)


def sync_band_energies(
    y: np.ndarray, *, sr: int, hop_length: int, tuning: float, n_ffts: tuple[int, int] = (4096, 2048)
) -> tuple[np.ndarray, np.ndarray | None]:
    """The band energies :func:`sync_features` starts from: for chroma and, with another FFT size, for onsets.

    Frame ``k`` is centred on sample ``k * hop_length`` (:func:`band_energies`), so the energies of a long
    signal can be computed window by window (each with ``n_fft / 2`` samples of context) and concatenated.

    Returns
    -------
    P : np.ndarray, shape (88, 1 + len(y) // hop_length), float32
        For chroma (``n_ffts[0]``).
    Po : np.ndarray of the same shape, or None
        For onsets (``n_ffts[1]``); None when both sizes are equal (``P`` serves both).
    """
    P = band_energies(y, sr=sr, n_fft=n_ffts[0], hop_length=hop_length, tuning=tuning)
    if n_ffts[1] == n_ffts[0]:
        return P, None
    return P, band_energies(y, sr=sr, n_fft=n_ffts[1], hop_length=hop_length, tuning=tuning)


def sync_features_from_bands(
    P: np.ndarray,
    Po: np.ndarray | None,
    *,
    n_frames: int,
    feature_rate: float,
    recipe: SyncRecipe = SyncRecipe(),
) -> SyncFeatures:
    """Chroma, DLNCO and sharp chroma from the band energies of a whole recording (:func:`sync_band_energies`).

    ``n_frames`` frames are kept; ``recipe`` as in :func:`sync_features` (``Po`` None: ``P`` serves both).
    The three matrices have shape ``(12, n_frames)``, float32; ``attack`` is :func:`attack_time` of the onset
    strength (before peak picking).
    """
    rate = float(feature_rate)
    gamma, onset_gamma, sharp_gamma = (np.float32(g) for g in recipe.gammas)
    Pn = _level_normalize(P)[:, :n_frames]  # a new array: changed in place below (memory: one copy at a time)
    Pon = Pn.copy() if Po is None else _level_normalize(Po)[:, :n_frames]
    sharp = normalize_frames(fold_chroma(np.log1p(sharp_gamma * Pon)))
    L = np.log1p(np.multiply(Pon, onset_gamma, out=Pon), out=Pon)
    np.log1p(np.multiply(Pn, gamma, out=Pn), out=Pn)
    chroma = normalize_frames(fold_chroma(Pn))
    del Pn
    # onset strength: rise of the log energy over ``lag`` frames; the signal counts as preceded by silence,
    # so a note at t = 0 has an onset too
    lag = max(1, int(round(recipe.onset_lag * rate)))
    O = L - np.pad(L, ((0, 0), (lag, 0)))[:, : L.shape[1]]
    del L
    np.maximum(O, np.float32(0.0), out=O)
    attack = attack_time(O.sum(axis=0), feature_rate=rate)
    if recipe.peaks_only:
        O = _peaks_only(O)
    lead = min(int(round(recipe.onset_lead * rate)), O.shape[1] - 1)
    if lead > 0:  # move onsets earlier; those in the first frames stay at frame 0
        first = O[:, : lead + 1].max(axis=1)
        O = np.concatenate([O[:, lead:], np.zeros((O.shape[0], lead), dtype=O.dtype)], axis=1)
        O[:, 0] = first
    n_decay = max(1, int(round(recipe.decay_seconds * rate)))
    dl = dlnco_from_chroma_onsets(
        fold_chroma(O), feature_rate=rate, coefficients=np.sqrt(1.0 / np.arange(1, n_decay + 1))
    )
    return SyncFeatures(chroma.astype(np.float32), dl, sharp.astype(np.float32), attack)


def notes_to_sync_features(
    pitches: np.ndarray,
    onsets: np.ndarray,
    offsets: np.ndarray,
    *,
    feature_rate: float = SYNC_FEATURE_RATE,
    n_frames: int | None = None,
    velocities: np.ndarray | None = None,
    harmonics: tuple[tuple[int, float], ...] = HARMONICS,
    note_decay: float = 1.0,
    gamma: float = 10.0,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Chroma and DLNCO features of a note list (for score-to-audio synchronisation).

    Each note adds energy to the pitch classes of its first harmonics (``harmonics``: semitone offset,
    weight) from onset to offset, decaying exponentially with time constant ``note_decay`` seconds (a
    struck note fades; the decay keeps repeated chords distinguishable) - a crude model of what audio
    chroma sees. Onsets add impulses with the same harmonic weights; they go through the same local
    normalisation and decay as audio onsets.

    Parameters
    ----------
    pitches : np.ndarray, shape (n_notes,)
        MIDI pitches.
    onsets, offsets : np.ndarray, shape (n_notes,)
        Note start and end in seconds.
    feature_rate : float > 0
        Frames per second.
    n_frames : int, optional
        Length of the output; default covers the last offset.
    velocities : np.ndarray, shape (n_notes,), optional
        MIDI velocities (1-127) scaling each note's energy; default equal.
    harmonics : tuple of (int, float)
        Harmonic model.
    note_decay : float > 0
        Decay time constant (s) of a sounding note's energy.
    gamma : float >= 0
        Log compression of the summed energies (as for audio chroma).

    Returns
    -------
    chroma, dlnco : np.ndarray, shape (12, n_frames), float32
    feature_rate : float
    """
    check_positive("feature_rate", feature_rate)
    check_positive("note_decay", note_decay)
    pitches = np.asarray(pitches, dtype=np.int64)
    onsets = np.asarray(onsets, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.float64)
    if pitches.size == 0:
        raise InputError("score: no notes found")
    if not (pitches.shape == onsets.shape == offsets.shape):
        raise ParameterError("pitches, onsets and offsets must have the same shape")
    if np.any(offsets < onsets) or np.any(onsets < 0):
        raise ParameterError("notes need 0 <= onset <= offset")
    vel = np.ones(pitches.size) if velocities is None else np.asarray(velocities, dtype=np.float64) / 127.0
    if n_frames is None:
        n_frames = int(np.ceil(offsets.max() * feature_rate)) + 1
    E = np.zeros((12, n_frames), dtype=np.float64)
    CO = np.zeros((12, n_frames), dtype=np.float64)
    t_frames = np.arange(n_frames) / feature_rate
    for p, on, off, v in zip(pitches, onsets, offsets, vel, strict=True):
        a = int(round(on * feature_rate))
        b = max(a + 1, int(round(off * feature_rate)))
        if a >= n_frames:
            continue
        b = min(b, n_frames)
        env = v * np.exp(-(t_frames[a:b] - on) / note_decay)
        for semis, w in harmonics:
            if p + semis > 108 + 24:
                continue
            pc = (p + semis) % 12
            E[pc, a:b] += w * env
            CO[pc, a] += w * v
    chroma = normalize_frames(np.log1p(gamma * E).astype(np.float32))
    dl = dlnco_from_chroma_onsets(CO.astype(np.float32), feature_rate=feature_rate)
    return chroma.astype(np.float32), dl, float(feature_rate)


__all__ = [
    "DECAY",
    "SYNC_FEATURE_RATE",
    "SyncFeatures",
    "SyncRecipe",
    "decay",
    "dlnco_from_chroma_onsets",
    "hop_for_rate",
    "local_normalize",
    "notes_to_sync_features",
    "sync_band_energies",
    "sync_features",
    "sync_features_from_bands",
]
