"""Shards of a collection's features: recordings split into balanced groups, each held by one worker.

A shard holds whole recordings, so every per-recording step of a search (the kernels reset at each
recording's start; occurrences are picked per recording) gives on a shard exactly what it gives on the whole
collection, and the per-shard top results merge into the local ranking (:mod:`mirsearch.cluster.search`).
Shards are balanced by duration (longest first, each to the lightest shard), since a query's time on a
shard is proportional to its frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirsearch.errors import ParameterError


def balance(durations, n_shards: int) -> list[np.ndarray]:
    """Split items into ``n_shards`` groups of about equal total duration.

    Parameters
    ----------
    durations : array-like, shape (n,)
        Seconds (any non-negative weight) per item.
    n_shards : int >= 1

    Returns
    -------
    list of np.ndarray of int
        ``n_shards`` groups of item indices, each ascending; every index in exactly one group (a group is
        empty when there are fewer items than shards). Longest-processing-time-first: the heaviest group
        exceeds the mean by at most the longest item.
    """
    if n_shards < 1:
        raise ParameterError(f"n_shards={n_shards} must be >= 1")
    d = np.asarray(durations, dtype=np.float64)
    if d.ndim != 1 or np.any(~np.isfinite(d)) or np.any(d < 0):
        raise ParameterError("durations must be finite seconds >= 0")
    load = np.zeros(n_shards)
    groups: list[list[int]] = [[] for _ in range(n_shards)]
    for i in np.argsort(-d, kind="stable"):
        g = int(np.argmin(load))
        groups[g].append(int(i))
        load[g] += d[i]
    return [np.asarray(sorted(g), dtype=np.int64) for g in groups]


@dataclass
class ThemeShard:
    """The theme-search database of some recordings, duck-typed as a collection for
    :func:`mirsearch.search.theme.search_theme` (it asks for ``database(kind)`` only).

    Attributes
    ----------
    kind : str
        The feature kind held (``"chroma"``, ``"cens"``, ``"learned"``).
    Y : np.ndarray, shape (frames, 12), float32
        Unit rows of the shard's recordings, one after the other.
    offsets : np.ndarray, shape (n_recordings + 1,), int64
    recordings : list of Recording
    feature_rate : float
    """

    kind: str
    Y: np.ndarray
    offsets: np.ndarray
    recordings: list
    feature_rate: float

    def database(self, kind: str) -> tuple:
        if kind != self.kind:
            raise ParameterError(f"features={kind!r}: this shard holds {self.kind!r}")
        return self.Y, self.offsets, self.recordings, self.feature_rate

    @property
    def hours(self) -> float:
        return self.Y.shape[0] / self.feature_rate / 3600.0

    @property
    def nbytes(self) -> int:
        return int(self.Y.nbytes + self.offsets.nbytes)


__all__ = ["ThemeShard", "balance"]
