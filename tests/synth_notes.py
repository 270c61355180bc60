"""Random 'music' for the identification tests: three voices of harmonic notes with decaying envelopes."""

from __future__ import annotations

import numpy as np


def random_notes(seed: int, seconds: float, *, sr: int) -> np.ndarray:
    """Three voices of harmonic notes (random pitch and length, 0.12-0.5 s) at ``sr`` Hz, peak 0.2, float32."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * sr), np.float32)
    for _voice in range(3):
        t = 0.0
        while t < seconds:
            dur = rng.uniform(0.12, 0.5)
            f0 = 110.0 * 2 ** (rng.integers(0, 40) / 12)
            a = int(t * sr)
            tt = np.arange(min(int(dur * sr), y.size - a)) / sr
            note = sum(np.sin(2 * np.pi * f0 * k * tt) / k for k in (1, 2, 3))
            y[a : a + tt.size] += (note * np.exp(-tt * 4.0)).astype(np.float32)
            t += dur
    return 0.2 * y / np.max(np.abs(y))
