"""Audio shingles: short overlapping stretches of CENS features (the maths; stored by :mod:`mirsearch.index`).

A *shingle* is ``length`` consecutive CENS frames (default 20 frames at 1 Hz, i.e. 20 s of music) flattened
to one vector of ``12 * length`` values (240 by default) and scaled to unit Euclidean length. Shingles are
taken at every ``hop`` frames (default 1, one shingle per second of audio). Two shingles of two versions of
the same passage lie close together in Euclidean space (CENS absorbs timbre, dynamics and articulation),
which is what the shingle index (:mod:`mirsearch.index.shingle_store`, :mod:`mirsearch.index.shingle_index`)
uses (Grosche & Müller, ICASSP 2012; Zalkow & Müller, Applied Sciences 2020).

Vector layout: time-major, ``v[12 * t + c]`` is chroma ``c`` (0 = C) of frame ``t`` of the shingle;
``v.reshape(length, 12)`` gives the frames back.

Tempo: :func:`scale_tempo` resamples 10 Hz chroma before CENS, which simulates a global tempo change
(the "multiple scaling" of audio matching); a query is shingled at several tempo factors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from mirsearch.errors import ParameterError
from mirsearch.features.audio_match import SHINGLE_TEMPO_FACTORS, AudioMatchConfig, scale_tempo

CHROMA_RATE = 10.0  # the 10 Hz chroma rate shingles are computed from


@dataclass(frozen=True)
class ShingleConfig:
    """How shingles are made from 10 Hz chroma.

    Attributes
    ----------
    length : int >= 1
        CENS frames per shingle (20 at 1 Hz = 20 s).
    hop : int >= 1
        CENS frames between consecutive shingles.
    window : int >= 1
        CENS smoothing window in chroma frames (41 at 10 Hz, about 4 s).
    downsample : int >= 1
        CENS downsampling factor (10: 10 Hz -> 1 Hz).
    features : str
        Stored 10 Hz feature kind the CENS is computed from (``"chroma"``; ``"learned"`` works too).
    """

    length: int = 20
    hop: int = 1
    window: int = 41
    downsample: int = 10
    features: str = "chroma"

    def __post_init__(self) -> None:
        if not isinstance(self.features, str) or not self.features:
            raise ParameterError(f"shingle features={self.features!r} must be a stored feature kind")
        for name in ("length", "hop", "window", "downsample"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ParameterError(f"shingle {name}={value!r} must be an integer >= 1")

    @property
    def dim(self) -> int:
        """Dimension of a shingle vector (``12 * length``)."""
        return 12 * self.length

    @property
    def frame_rate(self) -> float:
        """CENS frames per second (``10 / downsample``)."""
        return CHROMA_RATE / self.downsample

    @property
    def key(self) -> str:
        """Directory name of this configuration (``cens41-10-L20-h1``; other features prefixed)."""
        key = f"cens{self.window}-{self.downsample}-L{self.length}-h{self.hop}"
        return key if self.features == "chroma" else f"{self.features}-{key}"

    def to_dict(self) -> dict:
        return asdict(self)

    def match(
        self, *, tempo_factors: Sequence[float] = SHINGLE_TEMPO_FACTORS, transpositions: Sequence[int] = (0,)
    ) -> AudioMatchConfig:
        """The audio-matching configuration of these shingles' CENS, with a query's tempi and transpositions."""
        return AudioMatchConfig(
            features=self.features,
            window=self.window,
            downsample=self.downsample,
            tempo_factors=tuple(tempo_factors),
            transpositions=tuple(transpositions),
        )

    @classmethod
    def for_match(cls, match: AudioMatchConfig, *, length: int | None = None, hop: int | None = None) -> ShingleConfig:
        """Shingles of ``length`` frames every ``hop`` (default: those of :data:`DEFAULT_CONFIG`) of the CENS
        ``match`` describes."""
        length = DEFAULT_CONFIG.length if length is None else length
        hop = DEFAULT_CONFIG.hop if hop is None else hop
        return cls(length=length, hop=hop, window=match.window, downsample=match.downsample, features=match.features)

    @classmethod
    def from_dict(cls, d: dict) -> ShingleConfig:
        ints = {k: int(d[k]) for k in ("length", "hop", "window", "downsample") if k in d}
        return cls(**ints, features=str(d.get("features", "chroma")))


#: the configuration of the reference (20 CENS frames at 1 Hz, 240 dimensions; the first shipped embeddings')
REFERENCE_CONFIG = ShingleConfig()
#: the default: 20 CENS frames at 2 Hz (window 21, downsampling 5), i.e. 10 s, one shingle per second (hop 2).
#: A query must be longer than a shingle at its tempo scaling: 20 s shingles left a 15 s excerpt only the
#: scalings 0.6-0.74, 26-40 % off a version at the same tempo (on degraded real excerpts of the tune split
#: right track first 0.71 -> 0.91 with the raw shingles, docs/shingles.md)
DEFAULT_CONFIG = ShingleConfig(length=20, hop=2, window=21, downsample=5)
#: audio queries of the shingle index and the audio cascade: the CENS of :data:`DEFAULT_CONFIG`, eleven tempi
#: 0.6 .. 1.67, the query's key
SHINGLE_MATCH = DEFAULT_CONFIG.match(tempo_factors=SHINGLE_TEMPO_FACTORS)


# -- pure functions ---------------------------------------------------------------------------------------
def shingles(X: np.ndarray, *, length: int = 20, hop: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Cut a feature sequence into overlapping shingles of unit length.

    Parameters
    ----------
    X : np.ndarray, shape (12, n_frames)
        CENS (or any 12-band) features.
    length : int >= 1
        Frames per shingle.
    hop : int >= 1
        Frames between shingle starts.

    Returns
    -------
    S : np.ndarray, shape (n_shingles, 12 * length), float32
        Time-major flattened shingles (``S[i].reshape(length, 12)`` are the frames), l2-normalised;
        ``n_shingles = (n_frames - length) // hop + 1``, or 0 when the sequence is shorter than a shingle.
    starts : np.ndarray, shape (n_shingles,), int64
        First frame of each shingle.
    """
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] != 12:
        raise ParameterError(f"features must have shape (12, n_frames), got {X.shape}")
    if length < 1 or hop < 1:
        raise ParameterError(f"length={length} and hop={hop} must be >= 1")
    n = X.shape[1]
    if n < length:
        return np.zeros((0, 12 * length), np.float32), np.zeros(0, np.int64)
    starts = np.arange(0, n - length + 1, hop, dtype=np.int64)
    frames = np.ascontiguousarray(X.T)  # (n, 12)
    windows = np.lib.stride_tricks.sliding_window_view(frames, (length, 12))[starts, 0]  # (n_sh, length, 12)
    S = windows.reshape(len(starts), 12 * length).astype(np.float32)
    norms = np.linalg.norm(S, axis=1, keepdims=True)
    S /= np.maximum(norms, 1e-12)
    return S, starts


def chroma_shingles(
    C: np.ndarray,
    *,
    feature_rate: float = CHROMA_RATE,
    config: ShingleConfig = DEFAULT_CONFIG,
    tempo_factor: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Shingles of a 10 Hz chroma sequence, optionally tempo-scaled before CENS.

    Parameters
    ----------
    C : np.ndarray, shape (12, n_frames)
        Non-negative chroma at ``feature_rate``.
    feature_rate : float
        Must be 10 Hz (the rate the CENS parameters are defined for).
    config : ShingleConfig
    tempo_factor : float > 0
        Simulated tempo change (see :func:`scale_tempo`).

    Returns
    -------
    S : np.ndarray, shape (n_shingles, config.dim), float32
        Unit-length shingles.
    times : np.ndarray, shape (n_shingles,), float64
        Start of each shingle in seconds of the *unscaled* input.
    """
    if abs(feature_rate - CHROMA_RATE) > 1e-6:
        raise ParameterError(f"feature_rate={feature_rate} must be {CHROMA_RATE} Hz for shingles")
    X = cens_of(C, config=config, tempo_factor=tempo_factor)
    S, starts = shingles(X, length=config.length, hop=config.hop)
    return S, starts / config.frame_rate * tempo_factor


def cens_of(C: np.ndarray, *, config: ShingleConfig = DEFAULT_CONFIG, tempo_factor: float = 1.0) -> np.ndarray:
    """CENS (12, n) at ``config.frame_rate`` of 10 Hz chroma, optionally tempo-scaled first (:func:`scale_tempo`)."""
    return config.match().cens(C, feature_rate=CHROMA_RATE, tempo_factor=tempo_factor)


__all__ = [
    "CHROMA_RATE",
    "DEFAULT_CONFIG",
    "REFERENCE_CONFIG",
    "SHINGLE_MATCH",
    "ShingleConfig",
    "cens_of",
    "chroma_shingles",
    "scale_tempo",
    "shingles",
]
