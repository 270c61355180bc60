"""Symbolic features: a note list turned into a chroma sequence at a given frame rate."""

from __future__ import annotations

import numpy as np

from mirsearch.errors import InputError, check_positive
from mirsearch.scores import Theme

#: quarter notes per minute assumed for themes that carry no tempo of their own
DEFAULT_TEMPO_BPM = 100.0


def notes_to_chroma(
    theme: Theme,
    *,
    feature_rate: float = 10.0,
    tempo_bpm: float | None = None,
    transpose: int = 0,
) -> np.ndarray:
    """Chroma sequence of a monophonic theme.

    Each note occupies the frames of its duration at the assumed tempo (at least one frame per note, so
    that very short notes are not lost); rests between notes are dropped, as a theme query is matched
    against what sounds. Every frame is the l2-normalised one-hot vector of the note's pitch class.

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
    return X
