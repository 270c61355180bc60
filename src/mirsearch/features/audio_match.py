"""One audio-matching configuration and one tempo scaling for passages, versions and shingles.

Audio matching compares CENS (chroma energy normalised statistics) of a query with those of a collection
(Müller, Kurth & Clausen, ISMIR 2005). Every audio task (passage search, version identification, the shingle
index and its cascade) describes how with one :class:`AudioMatchConfig`: the chroma the CENS is derived from,
the CENS smoothing window and downsampling, the relative tempi the query is scaled to (*multiple scaling*) and
the transpositions (cyclic chroma shifts) tried. The presets :data:`PASSAGE_MATCH`, :data:`VERSION_MATCH` and
:data:`SHINGLE_MATCH` are the defaults of the three tasks.

:func:`scale_tempo` is the one resampling of a feature sequence in time: output frame ``j`` lies at input frame
``j * tempo_factor`` (linear interpolation), so a position found in the scaled query maps back to seconds of
the query by multiplying with the factor.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from mirsearch.errors import ParameterError
from mirsearch.features.chroma import cens

#: relative tempi of passage search and version identification (Müller's FMP notebook C7S2: 0.66 ... 1.5)
TEMPO_FACTORS = (0.66, 0.81, 1.0, 1.22, 1.5)
#: relative tempi of shingle queries: 0.6 .. 1.67, about 11 % apart (versions of a work in the benchmark
#: differ in tempo by up to 1.5x for 90 % of the pairs)
SHINGLE_TEMPO_FACTORS = (0.6, 0.665, 0.736, 0.815, 0.903, 1.0, 1.108, 1.227, 1.359, 1.505, 1.667)
#: every cyclic chroma shift (versions in any key)
ALL_KEYS = tuple(range(12))


def scale_tempo(C: np.ndarray, *, tempo_factor: float) -> np.ndarray:
    """Resample a feature sequence in time as if it were played ``tempo_factor`` times as fast.

    Parameters
    ----------
    C : np.ndarray, shape (n_features, n_frames)
        Features at a fixed frame rate (e.g. 10 Hz chroma).
    tempo_factor : float > 0
        1.25 plays 25 % faster (fewer frames), 0.8 slower (more frames).

    Returns
    -------
    np.ndarray, shape (n_features, max(1, round(n_frames / tempo_factor))), float32
        Linear interpolation between the input frames; output frame ``j`` lies at input frame
        ``j * tempo_factor`` (clipped to the last frame). A new array (the input is not modified).
    """
    if not tempo_factor > 0:
        raise ParameterError(f"tempo_factor={tempo_factor!r} must be > 0")
    C = np.asarray(C, dtype=np.float32)
    n = C.shape[1]
    if n == 0 or abs(tempo_factor - 1.0) < 1e-9:
        return C.copy()
    m = max(1, int(round(n / tempo_factor)))
    pos = np.minimum(np.arange(m) * tempo_factor, n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    w = (pos - lo).astype(np.float32)
    return C[:, lo] * (1.0 - w) + C[:, hi] * w


@dataclass(frozen=True)
class AudioMatchConfig:
    """How an audio query is matched against a collection's CENS.

    Attributes
    ----------
    features : str
        Chroma the CENS is derived from: a stored feature kind (``"chroma"``, ``"learned"``) or
        ``"matching"`` (the matching chroma of :mod:`mirsearch.features.matching_chroma`, computed from audio).
    window : int >= 1
        CENS smoothing window in chroma frames (21 at 10 Hz: 2.1 s; 41: about 4 s).
    downsample : int >= 1
        CENS downsampling factor (5: 10 Hz -> 2 Hz; 10: -> 1 Hz).
    tempo_factors : tuple of float > 0
        Relative tempi the query is scaled to before CENS (> 1: the query played faster).
    transpositions : tuple of int
        Semitones the query is shifted up (cyclic chroma shifts), each in ``0 .. 11``; ``(0,)`` for the
        query's key only, :data:`ALL_KEYS` for every key.
    """

    features: str = "chroma"
    window: int = 21
    downsample: int = 5
    tempo_factors: tuple[float, ...] = TEMPO_FACTORS
    transpositions: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        if not isinstance(self.features, str) or not self.features:
            raise ParameterError(f"features={self.features!r} must be a feature kind")
        for name in ("window", "downsample"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ParameterError(f"{name}={value!r} must be an integer >= 1")
        factors = tuple(float(f) for f in self.tempo_factors)
        if not factors or any(not f > 0 for f in factors):
            raise ParameterError(f"tempo_factors={self.tempo_factors!r} must be non-empty and > 0")
        shifts = tuple(sorted({int(t) % 12 for t in self.transpositions}))
        if not shifts:
            raise ParameterError("transpositions must not be empty")
        object.__setattr__(self, "window", int(self.window))
        object.__setattr__(self, "downsample", int(self.downsample))
        object.__setattr__(self, "tempo_factors", factors)
        object.__setattr__(self, "transpositions", shifts)

    def replace(self, **changes) -> AudioMatchConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def cens(self, C: np.ndarray, *, feature_rate: float, tempo_factor: float = 1.0) -> np.ndarray:
        """CENS (12, n) at ``feature_rate / downsample`` of chroma ``C``, scaled by ``tempo_factor`` first.

        Parameters
        ----------
        C : np.ndarray, shape (12, n_frames)
            Non-negative chroma at ``feature_rate`` (Hz).
        feature_rate : float > 0
        tempo_factor : float > 0
            See :func:`scale_tempo`.
        """
        Cs = scale_tempo(C, tempo_factor=tempo_factor) if tempo_factor != 1.0 else np.asarray(C, dtype=np.float32)
        X, _ = cens(Cs, feature_rate=feature_rate, window=self.window, downsample=self.downsample)
        return X

    def frame_rate(self, feature_rate: float) -> float:
        """CENS frames per second of chroma at ``feature_rate``."""
        return feature_rate / self.downsample


#: passage search: CENS 2 Hz (window 21, downsample 5 of 10 Hz chroma), five tempi, the query's key
PASSAGE_MATCH = AudioMatchConfig()
#: version identification: CENS 1 Hz (41 / 10, Müller's CENS for matching), five tempi, every key
VERSION_MATCH = AudioMatchConfig(window=41, downsample=10, transpositions=ALL_KEYS)
#: shingle index and audio cascade: CENS 1 Hz, eleven tempi 0.6 .. 1.67, the query's key
SHINGLE_MATCH = AudioMatchConfig(window=41, downsample=10, tempo_factors=SHINGLE_TEMPO_FACTORS)

__all__ = [
    "ALL_KEYS",
    "PASSAGE_MATCH",
    "SHINGLE_MATCH",
    "SHINGLE_TEMPO_FACTORS",
    "TEMPO_FACTORS",
    "VERSION_MATCH",
    "AudioMatchConfig",
    "scale_tempo",
]
