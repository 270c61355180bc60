"""Short synthetic sounds of two textures for the timbre and similarity tests: a bright harmonic tone with vibrato
and low-passed noise bursts (22,050 Hz)."""

from __future__ import annotations

import numpy as np

SR = 22050


def sound(kind: str, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    if kind == "tone":  # a bright harmonic tone with vibrato
        f = 220 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t)) * (1 + 0.1 * seed)
        y = sum(np.sin(2 * np.pi * f * h * t) / h for h in range(1, 8))
    else:  # low-passed noise bursts
        y = np.convolve(rng.standard_normal(t.size), np.ones(30) / 30, mode="same") * (np.sin(2 * np.pi * 2 * t) > 0)
    return (0.2 * y / np.max(np.abs(y))).astype(np.float32)
