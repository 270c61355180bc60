"""Music synchronisation: align two recordings, or a score and a recording.

``align_audio(a, b)`` returns a :class:`TimeMap`: for every time in ``a`` the musically corresponding
time in ``b`` (the *interpretation switcher* of Müller's tutorial). ``align_score(score, audio)`` returns
a :class:`ScoreAlignment`: the time map from score time to audio time plus each note's time in the audio.

Pipeline: chroma + DLNCO onset features at 50 Hz (:mod:`mirsearch.features.onset`; for a score they are
synthesised from the notes) -> multiresolution DTW (:func:`mirsearch.matching.sync.sync_dtw`: full DTW at
1 Hz, banded DTW at 5 Hz and 50 Hz, onsets at the finest level) -> a strictly monotonic time map.

Validation happens before a path is trusted:

- each input must be audible and at least ``MIN_DURATION`` long (:func:`mirsearch.audio.load_audio`);
- the durations may differ at most by ``max_tempo_ratio`` (default 3): a 10 s file is no version of a
  5-minute piece;
- **mismatch criterion**: on the coarse (1 Hz, smoothed) chroma, the mean cosine distance along the
  optimal path is divided by the same quantity for ``a`` against ``b`` *played backwards* (best shift
  for each): music with the same harmonic statistics but no musical correspondence
  (``SyncResult.cost_ratio``). DTW always finds *some* path; for unrelated music it is hardly cheaper
  than the path through the reversed recording. Calibrated on the validation split of the benchmark
  dataset (82 pairs of versions of one work, 62 pairs of different works, mostly chorales): at the
  default ``max_cost_ratio`` :data:`MAX_COST_RATIO` = 0.75, 7 % of same-work pairs are rejected (among
  them the pairs whose alignment fails) and 8 % of different-work pairs pass; for score-to-audio
  (:data:`MAX_COST_RATIO_SCORE` = 0.55) 0 % and 5 %. Above the threshold :func:`align_audio` raises
  :class:`InputError` instead of returning a meaningless path (``max_cost_ratio=None`` skips the check).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirsearch.errors import InputError, ParameterError, check_positive

log = logging.getLogger(__name__)

#: mismatch threshold on ``SyncResult.cost_ratio`` (see the module docstring)
MAX_COST_RATIO = 0.75
#: the same for score-to-audio alignment (see the module docstring)
MAX_COST_RATIO_SCORE = 0.55
#: largest accepted duration ratio between two versions
MAX_TEMPO_RATIO = 3.0
#: nominal tempo for scores without a metronome mark (only a starting point: see ``align_score``)
DEFAULT_BPM = 100.0


# -------------------------------------------------------------------------------------------------- TimeMap


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
            Path(path).write_text(text)
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


# -------------------------------------------------------------------------------------------------- inputs


def _as_signal(x, *, sr: int | None, name: str, target_sr: int) -> tuple[np.ndarray, int, str]:
    """Path, ``(y, sr)`` tuple or array (with ``sr``) -> validated mono signal at ``target_sr``."""
    from mirsearch.audio import load_audio, validate_audio

    if isinstance(x, (str, os.PathLike)):
        y, r = load_audio(x, sr=target_sr)
        return y, r, Path(x).name
    if isinstance(x, tuple):
        if len(x) != 2:
            raise ParameterError(f"{name}: expected a path, (y, sr) or an array, got a tuple of {len(x)}")
        y, sr = x
    else:
        y = x
    if sr is None:
        raise ParameterError(f"{name}: sr is required for an array input")
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2:  # (channels, samples) as librosa, or (samples, channels) as soundfile
        y = y.mean(axis=0) if y.shape[0] < y.shape[1] else y.mean(axis=1)
    validate_audio(y, sr=sr, name=name)
    if int(sr) != target_sr:
        import soxr

        y = soxr.resample(y, int(sr), target_sr, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(y, dtype=np.float32), target_sr, name


def _check_durations(name_a: str, dur_a: float, name_b: str, dur_b: float, max_tempo_ratio: float) -> None:
    if max_tempo_ratio is None:
        return
    long_, short_ = (name_a, dur_a), (name_b, dur_b)
    if dur_b > dur_a:
        long_, short_ = short_, long_
    if long_[1] > max_tempo_ratio * short_[1]:
        raise InputError(
            f"{short_[0]} ({short_[1]:.1f} s) is more than {max_tempo_ratio:g}x shorter than {long_[0]} "
            f"({long_[1]:.1f} s): not two versions of one piece (max_tempo_ratio={max_tempo_ratio:g})"
        )


def _check_match(result, name_a: str, name_b: str, max_cost_ratio: float | None) -> None:
    if max_cost_ratio is None:
        return
    if result.cost_ratio > max_cost_ratio:
        raise InputError(
            f"{name_a} and {name_b} do not seem to be the same piece: path cost ratio {result.cost_ratio:.2f} > "
            f"max_cost_ratio={max_cost_ratio:g} (max_cost_ratio=None or --force aligns anyway)"
        )


def active_span(
    y: np.ndarray, *, sr: int, threshold_db: float = -50.0, floor_share: float = 0.3, hop: int = 441
) -> tuple[float, float]:
    """Start and end (s) of the sounding part of a signal, leading and trailing silence or noise excluded.

    Frame RMS (``hop`` samples) is compared in dB with the loud level (99th percentile). The noise floor
    is the 10th percentile; a frame sounds if it lies above ``max(threshold_db, floor + floor_share *
    (loud - floor))`` relative to the loud level, so that background noise in a lead-in does not count
    as music (digital silence: the threshold is ``threshold_db``). A very quiet start of the music in a
    noisy recording can be cut; the alignment then maps it linearly.
    """
    n = y.size // hop
    if n < 2:
        return 0.0, y.size / sr
    rms = np.sqrt(np.mean(np.square(y[: n * hop].reshape(n, hop), dtype=np.float64), axis=1))
    db = 20.0 * np.log10(np.maximum(rms, 1e-12))
    loud = float(np.percentile(db, 99))
    floor = float(np.percentile(db, 10))
    thr = max(loud + threshold_db, floor + floor_share * (loud - floor))
    sounding = np.flatnonzero(db > thr)
    if sounding.size == 0:
        return 0.0, y.size / sr
    return sounding[0] * hop / sr, min(y.size, (sounding[-1] + 1) * hop) / sr


#: silence kept before / after the sounding part when trimming (s): onsets and release tails stay inside
TRIM_MARGIN = (0.1, 0.3)
#: level (dB below the loud frames) under which leading / trailing frames count as silence when trimming;
#: low enough that a soft start of the music is never cut (only near-digital silence is)
TRIM_THRESHOLD_DB = -60.0


def _trimmed(y: np.ndarray, sr: int, *, hop: int = 441) -> tuple[int, int]:
    """Sample range of ``y`` without leading / trailing near-silence (:data:`TRIM_THRESHOLD_DB`), plus margins.

    Unlike :func:`active_span` there is no noise-floor rule: a quiet beginning of the music (or a noisy
    lead-in) is kept, only what lies 60 dB below the loud frames is cut.
    """
    n = y.size // hop
    if n < 2:
        return 0, y.size
    rms = np.sqrt(np.mean(np.square(y[: n * hop].reshape(n, hop), dtype=np.float64), axis=1))
    db = 20.0 * np.log10(np.maximum(rms, 1e-12))
    sounding = np.flatnonzero(db > float(np.percentile(db, 99)) + TRIM_THRESHOLD_DB)
    if sounding.size == 0:
        return 0, y.size
    i0 = max(0, int(sounding[0] * hop - TRIM_MARGIN[0] * sr))
    i1 = min(y.size, int((sounding[-1] + 1) * hop + TRIM_MARGIN[1] * sr))
    if i1 - i0 < sr:  # nothing sensible to trim to: keep everything
        return 0, y.size
    return i0, i1


# -------------------------------------------------------------------------------------------------- audio-audio


@dataclass
class AlignmentDetails:
    """What :func:`align_audio` computed on the way (for plots and diagnostics)."""

    chroma_a: np.ndarray
    chroma_b: np.ndarray
    feature_rate: float
    sync: object  # SyncResult


def align_audio(
    a,
    b,
    *,
    sr: int | None = None,
    feature_rate: float = 50.0,
    transpose: bool = True,
    onsets: bool = True,
    w_onset: float = 2.0,
    radius_seconds: float = 1.0,
    max_cost_ratio: float | None = MAX_COST_RATIO,
    max_tempo_ratio: float | None = MAX_TEMPO_RATIO,
    trim_silence: bool = False,
    return_details: bool = False,
):
    """Align two recordings of the same piece.

    Parameters
    ----------
    a, b : path, (y, sr) tuple or np.ndarray
        The two recordings; arrays need ``sr``.
    sr : int, optional
        Sample rate of array inputs.
    feature_rate : float > 0
        Frame rate of the finest alignment level (Hz); the time map's resolution.
    transpose : bool
        Try all 12 chroma shifts (at 1 Hz) and align at the best one (versions in different keys).
    onsets : bool
        Use DLNCO onset features at the finest level (more accurate; slightly slower).
    w_onset : float >= 0
        Weight of the onset distance relative to the chroma cosine distance.
    radius_seconds : float >= 0
        Band half-width around the projected coarser path at each level.
    max_cost_ratio : float or None
        Mismatch threshold (module docstring); None disables the check.
    max_tempo_ratio : float or None
        Largest accepted duration ratio; None disables the check.
    trim_silence : bool
        Align only the parts between leading and trailing near-silence (60 dB below the loud frames, plus
        a short margin) and map that silence of one recording linearly onto the other's (so silence never
        maps into music, and the last notes are not pulled into the other's trailing silence). Off by
        default: on the benchmark pairs (short lead-ins) it raised the mean error (docs/benchmarks.md);
        use it for recordings with seconds of silence at either end.
    return_details : bool
        Also return :class:`AlignmentDetails` (features and the DTW result).

    Returns
    -------
    TimeMap
        From ``a`` time to ``b`` time; ``meta`` holds ``transposition`` (semitones ``b`` is above ``a``),
        ``cost_ratio``, ``feature_rate``, the per-level band sizes and ``active_a`` / ``active_b`` (the
        aligned spans in seconds).
    (TimeMap, AlignmentDetails)
        With ``return_details=True``.

    Raises
    ------
    InputError
        Unreadable, silent or too short input, durations too different, or mismatched pieces.
    """
    from mirsearch.audio import SR
    from mirsearch.features.onset import sync_features
    from mirsearch.matching.sync import sync_dtw

    check_positive("feature_rate", feature_rate)
    ya, sra, name_a = _as_signal(a, sr=sr, name="a", target_sr=SR)
    yb, srb, name_b = _as_signal(b, sr=sr, name="b", target_sr=SR)
    dur_a, dur_b = ya.size / sra, yb.size / srb
    _check_durations(name_a, dur_a, name_b, dur_b, max_tempo_ratio)
    (ia0, ia1), (ib0, ib1) = (0, ya.size), (0, yb.size)
    if trim_silence:
        (ia0, ia1), (ib0, ib1) = _trimmed(ya, sra), _trimmed(yb, srb)
    Ca, Da, rate = sync_features(ya[ia0:ia1], sr=sra, feature_rate=feature_rate, name=name_a)
    Cb, Db, _ = sync_features(yb[ib0:ib1], sr=srb, feature_rate=feature_rate, name=name_b)
    result = sync_dtw(
        Ca,
        Cb,
        feature_rate=rate,
        U=Da if onsets else None,
        V=Db if onsets else None,
        w_onset=w_onset,
        radius_seconds=radius_seconds,
        shifts=range(12) if transpose else None,
    )
    _check_match(result, name_a, name_b, max_cost_ratio)
    meta = _meta(result)
    meta["active_a"] = [round(ia0 / sra, 3), round(ia1 / sra, 3)]
    meta["active_b"] = [round(ib0 / srb, 3), round(ib1 / srb, 3)]
    # path frames of the trimmed signals -> frames of the whole recordings (fractional offsets are fine)
    path = np.asarray(result.path, dtype=np.float64) + np.array([ia0 / sra * rate, ib0 / srb * rate])
    tmap = TimeMap.from_path(
        path,
        feature_rate=rate,
        duration_a=dur_a,
        duration_b=dur_b,
        name_a=name_a,
        name_b=name_b,
        meta=meta,
    )
    log.info("aligned %s (%.1f s) and %s (%.1f s): %d points", name_a, dur_a, name_b, dur_b, len(tmap))
    if return_details:
        return tmap, AlignmentDetails(Ca, Cb, rate, result)
    return tmap


def _meta(result) -> dict:
    # np.roll(Y, k) maps pitch class p of Y to p + k: Y transposed up by k matches X, so Y is k below X
    return {
        "transposition": int((-result.transposition) % 12),
        "cost_ratio": round(float(result.cost_ratio), 4),
        "feature_rate": float(result.feature_rate),
        "levels": [
            {"rate": round(lv["rate"], 3), "shape": list(lv["shape"]), "cells": int(lv["cells"])}
            for lv in result.levels
        ],
    }


# -------------------------------------------------------------------------------------------------- score-audio


@dataclass
class ScoreNotes:
    """Notes of a full (polyphonic) score on one timeline.

    Attributes
    ----------
    pitch : np.ndarray, shape (n,), int
    onset, offset : np.ndarray, shape (n,), float
        In seconds at the score's nominal tempo (MIDI: the file's own times).
    onset_quarter, duration_quarter : np.ndarray, shape (n,), float
        Score position and length in quarter notes (NaN for MIDI files without a usable grid).
    part : np.ndarray, shape (n,), int
        Part (instrument) index.
    velocity : np.ndarray, shape (n,), int
    seconds_per_quarter : float
        Nominal tempo used for ``onset`` (NaN for MIDI).
    """

    pitch: np.ndarray
    onset: np.ndarray
    offset: np.ndarray
    onset_quarter: np.ndarray
    duration_quarter: np.ndarray
    part: np.ndarray
    velocity: np.ndarray
    seconds_per_quarter: float = float("nan")

    def __len__(self) -> int:
        return int(self.pitch.size)

    def shifted(self, seconds: float) -> ScoreNotes:
        """The same notes with all times moved by ``seconds`` (onsets stay >= 0)."""
        seconds = max(float(seconds), -float(self.onset.min()))
        return ScoreNotes(
            self.pitch,
            self.onset + seconds,
            self.offset + seconds,
            self.onset_quarter,
            self.duration_quarter,
            self.part,
            self.velocity,
            self.seconds_per_quarter,
        )

    def scaled(self, factor: float) -> ScoreNotes:
        """The same notes with all times multiplied by ``factor`` (a global tempo change)."""
        return ScoreNotes(
            self.pitch,
            self.onset * factor,
            self.offset * factor,
            self.onset_quarter,
            self.duration_quarter,
            self.part,
            self.velocity,
            self.seconds_per_quarter * factor,
        )


def load_score_notes(path: str | os.PathLike, *, bpm: float | None = None, expand_repeats: bool = False) -> ScoreNotes:
    """Read all notes of a score file (MIDI, MusicXML, MEI, kern).

    Parameters
    ----------
    path : path-like
        ``.mid/.midi`` (read with pretty_midi: times in seconds as in the file) or a notated score
        (``.musicxml/.xml/.mxl/.mei/.krn``, read with partitura).
    bpm : float > 0, optional
        Quarter notes per minute for notated scores; default the score's first metronome mark, else
        :data:`DEFAULT_BPM`.
    expand_repeats : bool
        Unfold repeats (partitura's maximal unfolding) for notated scores.

    Raises
    ------
    InputError
        Missing or unreadable file, or no notes.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".mid", ".midi"):
        return _midi_notes(path)
    if suffix in (".musicxml", ".xml", ".mxl", ".mei", ".krn", ".kern"):
        return _partitura_notes(path, bpm=bpm, expand_repeats=expand_repeats)
    raise InputError(f"{path.name}: unsupported score format '{suffix}' (MIDI, MusicXML, MEI or kern)")


def _midi_notes(path: Path) -> ScoreNotes:
    import pretty_midi

    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # mido/pretty_midi raise many types
        raise InputError(
            f"{path.name}: unreadable MIDI file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from None
    rows = []
    for i, inst in enumerate(pm.instruments):
        if inst.is_drum:
            continue
        for n in inst.notes:
            if n.end > n.start:
                rows.append((n.pitch, n.start, n.end, i, n.velocity))
    if not rows:
        raise InputError(f"{path.name}: no notes found")
    a = np.array(rows, dtype=np.float64)
    a = a[np.lexsort((a[:, 0], a[:, 1]))]
    beats = pm.get_beats()
    if beats.size >= 2:  # quarter positions from the file's beat grid (beats = quarter notes for x/4)
        q_on = np.interp(a[:, 1], beats, np.arange(beats.size), right=np.nan)
        q_off = np.interp(a[:, 2], beats, np.arange(beats.size), right=np.nan)
        q_dur = q_off - q_on
    else:
        q_on = q_dur = np.full(a.shape[0], np.nan)
    return ScoreNotes(
        pitch=a[:, 0].astype(np.int64),
        onset=a[:, 1],
        offset=a[:, 2],
        onset_quarter=q_on,
        duration_quarter=q_dur,
        part=a[:, 3].astype(np.int64),
        velocity=a[:, 4].astype(np.int64),
    )


def _partitura_notes(path: Path, *, bpm: float | None, expand_repeats: bool) -> ScoreNotes:
    import partitura as pt

    try:
        score = pt.load_score(str(path))
        if expand_repeats:
            score = pt.score.unfold_part_maximal(score)
    except Exception as exc:  # partitura raises many types for bad files
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path.name}: unreadable score ({msg})") from None
    rows = []
    first_bpm = None
    for i, part in enumerate(score.parts):
        if first_bpm is None:
            for tempo in part.iter_all(pt.score.Tempo):
                try:
                    first_bpm = float(tempo.bpm) * _quarters_per_beat_unit(getattr(tempo, "unit", None))
                except (TypeError, ValueError):
                    first_bpm = None
                break
        na = part.note_array()
        for r in na:
            if r["duration_quarter"] > 0:
                rows.append((r["pitch"], r["onset_quarter"], r["duration_quarter"], i))
    if not rows:
        raise InputError(f"{path.name}: no notes found")
    a = np.array(rows, dtype=np.float64)
    a = a[np.lexsort((a[:, 0], a[:, 1]))]
    a[:, 1] -= a[:, 1].min()  # anacrusis: the first note starts at 0
    bpm = bpm or first_bpm or DEFAULT_BPM
    check_positive("bpm", bpm)
    spq = 60.0 / bpm
    return ScoreNotes(
        pitch=a[:, 0].astype(np.int64),
        onset=a[:, 1] * spq,
        offset=(a[:, 1] + a[:, 2]) * spq,
        onset_quarter=a[:, 1],
        duration_quarter=a[:, 2],
        part=a[:, 3].astype(np.int64),
        velocity=np.full(a.shape[0], 80, dtype=np.int64),
        seconds_per_quarter=spq,
    )


def _quarters_per_beat_unit(unit) -> float:
    """Metronome unit -> quarter notes ("h" -> 2, "e" -> 0.5, dotted adds half)."""
    if not unit:
        return 1.0
    u = str(unit).lower()
    base = {"w": 4.0, "h": 2.0, "q": 1.0, "e": 0.5, "s": 0.25}
    for key, names in (
        ("w", ("w", "whole")),
        ("h", ("h", "half")),
        ("q", ("q", "quarter")),
        ("e", ("e", "eighth")),
        ("s", ("s", "16th")),
    ):
        if u.rstrip(".").startswith(names):
            v = base[key]
            return v * 1.5 if u.endswith(".") else v
    return 1.0


@dataclass
class ScoreAlignment:
    """Output of :func:`align_score`.

    Attributes
    ----------
    time_map : TimeMap
        From score time (s, at the fitted nominal tempo ``notes.seconds_per_quarter``) to audio time.
    notes : ScoreNotes
        The score's notes (score times at the fitted tempo).
    audio_onset, audio_offset : np.ndarray, shape (n_notes,)
        Each note's start and end in the audio (s).
    """

    time_map: TimeMap
    notes: ScoreNotes
    audio_onset: np.ndarray
    audio_offset: np.ndarray
    meta: dict = field(default_factory=dict)

    def rows(self) -> list[dict]:
        """One dict per note: pitch, part, score position, score time, audio time (ms precision)."""
        n = self.notes
        out = []
        for i in range(len(n)):
            out.append(
                {
                    "pitch": int(n.pitch[i]),
                    "part": int(n.part[i]),
                    "onset_quarter": _r(n.onset_quarter[i], 4),
                    "duration_quarter": _r(n.duration_quarter[i], 4),
                    "score_onset": _r(n.onset[i], 3),
                    "audio_onset": _r(self.audio_onset[i], 3),
                    "audio_offset": _r(self.audio_offset[i], 3),
                }
            )
        return out

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        """Write the notes table (:meth:`rows`) as CSV; returns the text."""
        rows = self.rows()
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0].keys()), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
        text = buf.getvalue()
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_dict(self) -> dict:
        return {"time_map": self.time_map.to_dict(), "notes": self.rows(), "meta": self.meta}


def _r(x, nd):
    x = float(x)
    return None if not np.isfinite(x) else round(x, nd)


def align_score(
    score,
    audio,
    *,
    sr: int | None = None,
    bpm: float | None = None,
    expand_repeats: bool = False,
    fit_tempo: bool = True,
    feature_rate: float = 50.0,
    transpose: bool = True,
    onsets: bool = True,
    w_onset: float = 2.0,
    radius_seconds: float = 1.0,
    onset_correction: float = 0.0,
    max_cost_ratio: float | None = MAX_COST_RATIO_SCORE,
    max_tempo_ratio: float | None = MAX_TEMPO_RATIO,
    return_details: bool = False,
):
    """Align a score to a recording of it: each note's time in the audio.

    The score's notes become chroma and DLNCO features directly (a harmonic model of each note, no
    synthesis: :func:`mirsearch.features.onset.notes_to_sync_features`); the rest is :func:`align_audio`.

    Parameters
    ----------
    score : path or ScoreNotes
        MIDI, MusicXML, MEI or kern file (:func:`load_score_notes`), or notes already loaded.
    audio : path, (y, sr) tuple or np.ndarray
        The recording.
    sr : int, optional
        Sample rate of an array ``audio``.
    bpm : float, optional
        Nominal tempo of a notated score (default: its metronome mark, else 100).
    expand_repeats : bool
        Unfold the score's repeats (when the performance plays them).
    fit_tempo : bool
        Scale and shift the score's timeline so that its first onset .. last offset cover the sounding
        part of the audio (:func:`active_span`; a global tempo estimate), so that the coarse DTW levels
        compare like with like. The time map's score axis is then in fitted seconds
        (``notes.seconds_per_quarter``).
    feature_rate, transpose, onsets, w_onset, radius_seconds, max_cost_ratio, max_tempo_ratio
        As in :func:`align_audio`.
    onset_correction : float
        Seconds added to every mapped note onset (audio onsets are detected after the physical start of
        a note; the benchmark measures this offset).
    return_details : bool
        Also return :class:`AlignmentDetails`.

    Returns
    -------
    ScoreAlignment
        (, AlignmentDetails with ``return_details``)
    """
    from mirsearch.audio import SR
    from mirsearch.features.onset import notes_to_sync_features, sync_features
    from mirsearch.matching.sync import sync_dtw

    check_positive("feature_rate", feature_rate)
    if isinstance(score, ScoreNotes):
        notes, score_name = score, "score"
    else:
        notes, score_name = load_score_notes(score, bpm=bpm, expand_repeats=expand_repeats), Path(score).name
    if len(notes) == 0:
        raise InputError(f"{score_name}: no notes found")
    y, r, audio_name = _as_signal(audio, sr=sr, name="audio", target_sr=SR)
    dur_audio = y.size / r
    dur_score = float(notes.offset.max())
    if dur_score <= 0:
        raise InputError(f"{score_name}: notes have no duration")
    _check_durations(score_name, dur_score, audio_name, dur_audio, None if fit_tempo else max_tempo_ratio)
    a0, a1 = active_span(y, sr=r)
    if fit_tempo:
        # the score's first onset .. last offset span the audio's sounding part (leading and trailing
        # silence excluded): a global tempo and offset estimate
        s0, s1 = float(notes.onset.min()), dur_score
        if s1 - s0 > 0 and a1 - a0 > 0:
            notes = notes.scaled((a1 - a0) / (s1 - s0))
            notes = notes.shifted(a0 - float(notes.onset.min()))
        dur_score = max(dur_audio, float(notes.offset.max()))
    Cb, Db, rate = sync_features(y, sr=r, feature_rate=feature_rate, name=audio_name)
    n_frames = int(np.ceil(dur_score * rate)) + 1
    Ca, Da, _ = notes_to_sync_features(
        notes.pitch, notes.onset, notes.offset, feature_rate=rate, n_frames=n_frames, velocities=notes.velocity
    )
    result = sync_dtw(
        Ca,
        Cb,
        feature_rate=rate,
        U=Da if onsets else None,
        V=Db if onsets else None,
        w_onset=w_onset,
        radius_seconds=radius_seconds,
        shifts=range(12) if transpose else None,
    )
    _check_match(result, score_name, audio_name, max_cost_ratio)
    meta = _meta(result)
    meta["seconds_per_quarter"] = _r(notes.seconds_per_quarter, 6)
    tmap = TimeMap.from_path(
        result.path,
        feature_rate=rate,
        duration_a=dur_score,
        duration_b=dur_audio,
        name_a=score_name,
        name_b=audio_name,
        meta=meta,
    )
    audio_onset = np.clip(tmap.map(notes.onset) + onset_correction, 0.0, dur_audio)
    audio_offset = np.maximum(tmap.map(notes.offset), audio_onset)
    out = ScoreAlignment(tmap, notes, audio_onset, audio_offset, meta=meta)
    if return_details:
        return out, AlignmentDetails(Ca, Cb, rate, result)
    return out
