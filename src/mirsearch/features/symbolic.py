"""Symbolic features: a note list turned into a chroma sequence at a given frame rate."""

from __future__ import annotations

import numpy as np

from mirsearch.errors import InputError, ParameterError, check_positive
from mirsearch.scores import Theme

#: quarter notes per minute assumed for themes that carry no tempo of their own
DEFAULT_TEMPO_BPM = 100.0
#: partials of the tone model used when a query is compared with audio chroma (see harmonic_template)
N_HARMONICS = 6


def harmonic_template(decay: float, *, n_harmonics: int = N_HARMONICS) -> np.ndarray:
    """Chroma of a harmonic tone per pitch class: partial ``h`` has amplitude ``decay ** (h - 1)``.

    Audio chroma of a single note also has energy in the pitch classes of its overtones (the 3rd
    partial is a fifth above, the 5th a major third); a query built from this template expects it.

    Parameters
    ----------
    decay : float in [0, 1]
        Amplitude ratio of consecutive partials; 0 gives the identity (one-hot pitch classes).
    n_harmonics : int >= 1

    Returns
    -------
    np.ndarray, shape (12, 12), float32
        Column ``p`` is the chroma of a tone of pitch class ``p``.
    """
    if not 0.0 <= decay <= 1.0 or n_harmonics < 1:
        raise ParameterError(f"decay={decay} must be in [0, 1] and n_harmonics={n_harmonics} >= 1")
    T = np.zeros((12, 12), dtype=np.float32)
    for h in range(1, n_harmonics + 1):
        T += np.float32(decay ** (h - 1)) * np.roll(np.eye(12, dtype=np.float32), round(12 * np.log2(h)), axis=0)
    return T


def notes_to_chroma(
    theme: Theme,
    *,
    feature_rate: float = 10.0,
    tempo_bpm: float | None = None,
    transpose: int = 0,
    harmonic_decay: float = 0.0,
) -> np.ndarray:
    """Chroma sequence of a monophonic theme.

    Each note occupies the frames of its duration at the assumed tempo (at least one frame per note, so
    that very short notes are not lost); rests between notes are dropped, as a theme query is matched
    against what sounds. Every frame is the one-hot vector of the note's pitch class, or with
    ``harmonic_decay > 0`` the chroma of a harmonic tone (:func:`harmonic_template`), l2-normalised.

    Parameters
    ----------
    theme : Theme
        The melody (onsets and durations in quarter notes).
    feature_rate : float > 0
        Frames per second.
    tempo_bpm : float > 0, optional
        Quarter notes per minute; default: the theme's own tempo, else :data:`DEFAULT_TEMPO_BPM`.
    transpose : int
        Semitones added to every pitch.
    harmonic_decay : float in [0, 1]
        Overtone model of the notes (0: none).

    Returns
    -------
    np.ndarray, shape (12, n_frames), float32
    """
    check_positive("feature_rate", feature_rate)
    bpm = tempo_bpm or theme.tempo_bpm or DEFAULT_TEMPO_BPM
    check_positive("tempo_bpm", bpm)
    if not theme.notes:
        raise InputError(f"{theme.name}: no notes found")
    frames_per_quarter = feature_rate * 60.0 / bpm
    columns = []
    carry = 0.0
    for note in theme.notes:
        exact = note.duration * frames_per_quarter + carry
        n = max(1, int(np.floor(exact + 0.5)))
        carry = exact - n
        columns.append(np.full(n, (note.pitch + transpose) % 12, dtype=np.int64))
    pcs = np.concatenate(columns)
    X = np.zeros((12, pcs.size), dtype=np.float32)
    X[pcs, np.arange(pcs.size)] = 1.0
    if harmonic_decay > 0:
        X = harmonic_template(harmonic_decay) @ X
        X /= np.linalg.norm(X, axis=0, keepdims=True)
    return X
