"""Time maps: a strictly monotonic correspondence between the time axes of two recordings (or a score and
a recording), in seconds, with CSV and JSON round trips."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_write_text
from mirsearch.errors import InputError, ParameterError, check_positive


class TimeMap:
    """Strictly monotonic correspondence between the time axes of two recordings (seconds).

    Parameters
    ----------
    a, b : array-like, shape (K,)
        Corresponding times (s) in ``a`` and ``b``; both strictly increasing, ``K >= 2``.
    name_a, name_b : str
        Labels (file names) of the two axes.
    duration_a, duration_b : float, optional
        Durations (s); default the last entries.
    meta : dict, optional
        JSON-ready extra information (transposition, costs, feature rate, ...).

    Notes
    -----
    :meth:`map` interpolates linearly between the points and clamps outside ``[a[0], a[-1]]``; because
    both axes increase strictly, the map is invertible and :attr:`inverse` just swaps them.
    """

    def __init__(
        self,
        a,
        b,
        *,
        name_a: str = "a",
        name_b: str = "b",
        duration_a: float | None = None,
        duration_b: float | None = None,
        meta: dict | None = None,
    ):
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if a.ndim != 1 or a.shape != b.shape or a.size < 2:
            raise ParameterError(f"time map needs two equal-length 1-D arrays of >= 2 points, got {a.shape}, {b.shape}")
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            raise ParameterError("time map contains NaN or infinite times")
        if np.any(np.diff(a) <= 0) or np.any(np.diff(b) <= 0):
            raise ParameterError("time map points must be strictly increasing on both axes")
        self.a = a
        self.b = b
        self.name_a = str(name_a)
        self.name_b = str(name_b)
        self.duration_a = float(a[-1] if duration_a is None else duration_a)
        self.duration_b = float(b[-1] if duration_b is None else duration_b)
        self.meta = dict(meta or {})

    @classmethod
    def from_path(
        cls,
        path: np.ndarray,
        *,
        feature_rate: float,
        duration_a: float | None = None,
        duration_b: float | None = None,
        **kwargs,
    ) -> TimeMap:
        """Time map from a warping path in frames.

        Runs of equal indices (horizontal or vertical path segments) collapse to their mean (at the ends:
        to the frame where the other recording's music starts or stops), so the points are strictly
        increasing. The map starts on an axis (``a[0] == 0`` or ``b[0] == 0``; ``(0, 0)`` when both
        recordings start together) and ends at ``duration_a`` or ``duration_b``; :meth:`map` clamps
        outside, so every time of either recording has a counterpart.

        Parameters
        ----------
        path : np.ndarray, shape (L, 2)
            Monotonic warping path ``(frame in a, frame in b)``; frame ``k`` is at ``k / feature_rate`` s.
        feature_rate : float > 0
            Frames per second.
        duration_a, duration_b : float, optional
            Recording durations (s); the map is extended to them.
        """
        check_positive("feature_rate", feature_rate)
        path = np.asarray(path, dtype=np.float64)
        if path.ndim != 2 or path.shape[1] != 2 or path.shape[0] == 0:
            raise ParameterError(f"path must have shape (L, 2), got {path.shape}")
        if np.any(np.diff(path, axis=0) < 0):
            raise ParameterError("path must be monotonic (non-decreasing in both columns)")
        a, b = _strictly_monotonic(path[:, 0] / feature_rate, path[:, 1] / feature_rate)
        if a[0] > 0 and b[0] > 0:
            a, b = np.r_[0.0, a], np.r_[0.0, b]
        if duration_a is not None and duration_b is not None:
            if duration_a > a[-1] and duration_b > b[-1]:
                a, b = np.r_[a, duration_a], np.r_[b, duration_b]
            else:
                a[-1], b[-1] = max(a[-1], duration_a), max(b[-1], duration_b)
        if a.size < 2:
            a, b = np.array([0.0, max(a[-1], 1e-3)]), np.array([0.0, max(b[-1], 1e-3)])
        return cls(a, b, duration_a=duration_a, duration_b=duration_b, **kwargs)

    def __len__(self) -> int:
        return self.a.size

    def __repr__(self) -> str:
        return (
            f"TimeMap({self.name_a!r} {self.duration_a:.2f} s -> {self.name_b!r} {self.duration_b:.2f} s, "
            f"{self.a.size} points)"
        )

    def map(self, t):
        """Times in ``b`` corresponding to times ``t`` in ``a`` (s); float in, float out, array in, array out.

        Times before the start or after the end map to the first or last point of ``b``.
        """
        t_arr = np.asarray(t, dtype=np.float64)
        if not np.all(np.isfinite(t_arr)):
            raise ParameterError("times to map must be finite")
        out = np.interp(t_arr, self.a, self.b)
        return float(out) if np.ndim(t) == 0 else out

    @property
    def inverse(self) -> TimeMap:
        """The map from ``b`` to ``a``."""
        return TimeMap(
            self.b,
            self.a,
            name_a=self.name_b,
            name_b=self.name_a,
            duration_a=self.duration_b,
            duration_b=self.duration_a,
            meta=self.meta,
        )

    def resample(self, step: float = 0.1) -> TimeMap:
        """The same map on a regular grid of ``a`` (every ``step`` seconds, ends kept): smaller files."""
        check_positive("step", step)
        grid = np.unique(np.r_[np.arange(self.a[0], self.a[-1], step), self.a[-1]])
        b = np.interp(grid, self.a, self.b)
        keep = np.r_[True, np.diff(b) > 0]
        return TimeMap(
            grid[keep],
            b[keep],
            name_a=self.name_a,
            name_b=self.name_b,
            duration_a=self.duration_a,
            duration_b=self.duration_b,
            meta=self.meta,
        )

    # -- export ------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dict: names, durations, meta and the points (ms precision)."""
        return {
            "a": self.name_a,
            "b": self.name_b,
            "duration_a": round(self.duration_a, 3),
            "duration_b": round(self.duration_b, 3),
            "meta": self.meta,
            "time_a": [round(float(x), 3) for x in self.a],
            "time_b": [round(float(x), 3) for x in self.b],
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict) -> TimeMap:
        return cls(
            d["time_a"],
            d["time_b"],
            name_a=d.get("a", "a"),
            name_b=d.get("b", "b"),
            duration_a=d.get("duration_a"),
            duration_b=d.get("duration_b"),
            meta=d.get("meta"),
        )

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        """Write ``time_a,time_b`` rows (seconds, ms precision) to ``path``; returns the CSV text."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["time_a", "time_b"])
        for x, y in zip(self.a, self.b, strict=True):
            w.writerow([f"{x:.3f}", f"{y:.3f}"])
        text = buf.getvalue()
        if path is not None:
            atomic_write_text(path, text)
        return text

    @classmethod
    def from_csv(cls, path: str | os.PathLike, **kwargs) -> TimeMap:
        """Read a file written by :meth:`to_csv` (duplicate times after rounding are dropped)."""
        rows = list(csv.reader(Path(path).read_text().splitlines()))
        if not rows or rows[0][:2] != ["time_a", "time_b"]:
            raise InputError(f"{path}: not a time map CSV (header time_a,time_b expected)")
        data = np.array([[float(x) for x in r[:2]] for r in rows[1:] if r], dtype=np.float64)
        a, b = _strictly_monotonic(data[:, 0], data[:, 1])
        return cls(a, b, **kwargs)


def _strictly_monotonic(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Collapse runs of equal values of a monotonic path so that both outputs strictly increase.

    An interior run (one frame of ``a`` matched to several of ``b``, or the reverse) becomes its mean.
    A run at the start becomes its *last* value and a run at the end its *first*: a recording that starts
    with silence maps its first sounding frame (not the middle of the silence) onto the other's start.
    """

    def collapse(x, y):
        ux, inv = np.unique(x, return_inverse=True)
        my = np.bincount(inv, weights=y) / np.bincount(inv)
        if ux.size > 1:
            my[0] = y[inv == 0].max()
            my[-1] = y[inv == ux.size - 1].min()
        else:
            my[0] = y.mean()
        return ux, my

    ua, mb = collapse(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    ub, ma = collapse(mb, ua)
    return ma, ub
