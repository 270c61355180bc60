"""Audio queries, decoded and validated once at the boundary; every audio search takes an :class:`AudioQuery`.

A query is either a decoded mono signal (``samples`` at ``sr``, resampled to :data:`mirsearch.audio.SR`) or
a chroma matrix at ``feature_rate`` (a benchmark, or an excerpt of a stored recording). Searches ask it for
its chroma in the collection's recipe (:meth:`AudioQuery.chroma_for`); they never read files.
:meth:`AudioQuery.from_file` is the thin helper the service layer and the CLI call to read one.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from mirsearch.errors import InputError, ParameterError
from mirsearch.features.matching_chroma import extract_chroma


@dataclass(frozen=True, eq=False)
class AudioQuery:
    """An audio excerpt to search for.

    Build with :meth:`from_samples`, :meth:`from_chroma` or :meth:`from_file`.

    Attributes
    ----------
    samples : np.ndarray, shape (n_samples,), float32, or None
        Mono signal at ``sr`` (validated: finite, not silent).
    sr : int or None
        Sample rate of ``samples`` (Hz).
    chroma : np.ndarray, shape (12, n_frames), float32, or None
        Chroma of the query when it is given as features.
    feature_rate : float or None
        Frame rate of ``chroma`` (Hz).
    name : str
        For messages (the file name of a file query).
    """

    samples: np.ndarray | None = None
    sr: int | None = None
    chroma: np.ndarray | None = None
    feature_rate: float | None = None
    name: str = "query"

    @classmethod
    def from_samples(cls, y, sr: int | None, *, name: str = "query") -> AudioQuery:
        """A signal query: mixed to mono, validated and resampled to :data:`mirsearch.audio.SR`.

        Parameters
        ----------
        y : array-like, shape (n_samples,) or (n_channels, n_samples) or (n_samples, n_channels)
            The signal; two-dimensional input is mixed down over its shorter axis.
        sr : int
            Sample rate (Hz).
        """
        from mirsearch.audio import SR, validate_audio

        if sr is None:
            raise ParameterError(f"{name}: sr is required for an array query")
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 2:
            y = y.mean(axis=0) if y.shape[0] < y.shape[1] else y.mean(axis=1)
        validate_audio(y, sr=sr, name=name)
        if int(sr) != SR:
            import soxr

            y = soxr.resample(y, int(sr), SR, quality="HQ").astype(np.float32)
            sr = SR
        return cls(samples=y, sr=int(sr), name=name)

    @classmethod
    def from_chroma(cls, C, *, feature_rate: float = 10.0, name: str = "query") -> AudioQuery:
        """A query given as chroma ``(12, n_frames)`` at ``feature_rate`` (Hz)."""
        C = np.asarray(C, dtype=np.float32)
        if C.ndim != 2 or C.shape[0] != 12:
            raise ParameterError(f"{name}: chroma must have shape (12, n_frames), got {C.shape}")
        if not np.isfinite(C).all():
            raise InputError(f"{name}: chroma contains NaN or infinite values")
        if not feature_rate > 0:
            raise ParameterError(f"feature_rate={feature_rate!r} must be > 0")
        return cls(chroma=C, feature_rate=float(feature_rate), name=name)

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, start: float | None = None, end: float | None = None) -> AudioQuery:
        """Read an audio file (decoded, mono, :data:`mirsearch.audio.SR`), optionally an excerpt in seconds."""
        from mirsearch.audio import SR, load_audio

        y, sr = load_audio(path, sr=SR)
        name = os.path.basename(os.fspath(path))
        if start is not None or end is not None:
            a = int(round((start or 0.0) * sr))
            b = int(round(end * sr)) if end is not None else y.size
            return cls.from_samples(y[a:b], sr, name=name)
        return cls(samples=y, sr=int(sr), name=name)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        if self.samples is not None:
            return self.samples.size / self.sr
        return self.chroma.shape[1] / self.feature_rate

    @functools.cached_property
    def tuning(self) -> float | None:
        """Tuning deviation of a signal query (semitones, in [-0.5, 0.5); estimated once), ``None`` for a chroma
        query."""
        if self.samples is None:
            return None
        from mirsearch.features.chroma import estimate_tuning

        return estimate_tuning(self.samples, sr=self.sr)

    @functools.cached_property
    def _pitch_bands(self) -> dict:
        """Pitch bands of a signal query per tuning, computed once and shared by the stages of a search."""
        return {}

    def prepare_tunings(self, config: dict, offsets) -> None:
        """Compute the pitch bands of a signal query for several tuning hypotheses (its estimate plus each of
        ``offsets``, semitones) in one pass of its STFT, for the next :meth:`chroma_for` calls (chroma kinds only;
        nothing for other kinds or a chroma query)."""
        if self.samples is None or config.get("kind") not in ("chroma", "chroma_upper"):
            return
        from mirsearch.features.matching_chroma import remember_pitch_bands

        tunings = [self.tuning + float(t) for t in offsets]
        remember_pitch_bands(self.samples, sr=self.sr, tunings=tunings, memo=self._pitch_bands)

    def chroma_for(self, config: dict, *, max_gain_db: float = 0.0, tuning_offset: float = 0.0) -> np.ndarray:
        """Chroma (12, n) of the query as ``config`` describes (a feature configuration with ``feature_rate``).

        A chroma query is returned as it is; its frame rate must be the configuration's. ``max_gain_db > 0``:
        the signal's pitch bands are equalised first
        (:func:`~mirsearch.features.matching_chroma.equalise_bands`, chroma kinds only). ``tuning_offset``
        (semitones): the pitch bands are centred on the estimated tuning (:attr:`tuning`) plus this offset, a
        hypothesis of the tuning when the excerpt's own estimate is unreliable (chroma kinds only).
        """
        if self.chroma is not None:
            rate = float(config["feature_rate"])
            if abs(self.feature_rate - rate) > 1e-6:
                raise ParameterError(f"{self.name}: chroma at {self.feature_rate:g} Hz, the search needs {rate:g} Hz")
            return self.chroma
        if self.samples is None:
            raise ParameterError(f"{self.name}: an audio query needs samples or chroma")
        tuning = self.tuning + float(tuning_offset)
        return extract_chroma(self.samples, sr=self.sr, config=config, max_gain_db=max_gain_db, tuning=tuning,
                              memo=self._pitch_bands)[0]  # fmt: skip


__all__ = ["AudioQuery"]
