"""A plain additive synthesiser: notes (pitch, onset, offset) -> a mono signal, no SoundFont needed.

Each note is a sum of :data:`HARMONICS` harmonics (amplitudes ``1/k``) under a short linear attack, an
exponential decay and a short release, so that onsets are audible and chords stay clear. It is what the page
plays for a score of the collection (:mod:`mirsearch.viz.score_view` gives the notes on the score's time axis):
sample ``round(t * sr)`` of the signal is time ``t`` of the score.
"""

from __future__ import annotations

import io

import numpy as np

from mirsearch.errors import ParameterError

#: harmonics per note
HARMONICS = 4
#: attack and release (s)
ATTACK, RELEASE = 0.008, 0.04
#: decay time constant (s) of the sustained part
DECAY = 1.2


def synthesize_notes(pitch, onset, offset, *, sr: int = 22050, peak: float = 0.8) -> np.ndarray:
    """Synthesise notes into one signal.

    Parameters
    ----------
    pitch : array-like, shape (n,)
        MIDI pitches.
    onset, offset : array-like, shape (n,)
        Seconds (``offset > onset``; notes with ``offset <= onset`` are skipped).
    sr : int > 0
        Sample rate (Hz).
    peak : float in (0, 1]
        Peak amplitude of the result.

    Returns
    -------
    y : np.ndarray, shape (ceil(max(offset) * sr) + release,), float32
    """
    if sr <= 0:
        raise ParameterError(f"sr={sr} must be > 0")
    if not 0 < peak <= 1:
        raise ParameterError(f"peak={peak} must be in (0, 1]")
    pitch = np.asarray(pitch, dtype=np.float64)
    onset, offset = np.asarray(onset, dtype=np.float64), np.asarray(offset, dtype=np.float64)
    if not pitch.shape == onset.shape == offset.shape:
        raise ParameterError("pitch, onset and offset must have one value per note")
    n_rel = int(RELEASE * sr)
    total = int(np.ceil(offset.max() * sr)) + n_rel + 1 if offset.size else 1
    y = np.zeros(total, np.float64)
    k = np.arange(1, HARMONICS + 1, dtype=np.float64)[:, None]
    for p, a, b in zip(pitch, onset, offset, strict=True):
        if not b > a:
            continue
        i0 = int(round(a * sr))
        n = max(1, int(round((b - a) * sr)))
        t = np.arange(n + n_rel) / sr
        f0 = 440.0 * 2.0 ** ((p - 69.0) / 12.0)
        ks = k[k[:, 0] * f0 < sr / 2]
        tone = (np.sin(2 * np.pi * f0 * ks * t) / ks).sum(axis=0)
        env = np.minimum(1.0, t / ATTACK) * np.exp(-t / DECAY)
        env[n:] *= np.linspace(1.0, 0.0, n_rel + 1)[1:] if n_rel else 1.0
        seg = tone * env
        y[i0 : i0 + seg.size] += seg[: max(0, total - i0)]
    top = np.abs(y).max()
    return (y * (peak / top) if top > 0 else y).astype(np.float32)


def wav_bytes(y: np.ndarray, *, sr: int) -> bytes:
    """``y`` as a 16-bit PCM WAV file in memory."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.asarray(y, dtype=np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


__all__ = ["HARMONICS", "synthesize_notes", "wav_bytes"]
