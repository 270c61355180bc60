"""Metrics of speech / music segmentation: frame F-measure on 10 ms frames and boundary precision / recall.

Intervals are ``[[start, end], ...]`` in seconds; a presence track is a boolean array per frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mirsearch.errors import ParameterError

#: frame length of the frame metrics (seconds)
FRAME = 0.01


def intervals_to_frames(intervals: Sequence, duration: float, *, frame: float = FRAME) -> np.ndarray:
    """Presence per frame (frame ``t`` counts where its centre ``(t + 0.5) * frame`` lies in an interval)."""
    n = int(np.ceil(duration / frame - 1e-9))
    out = np.zeros(n, bool)
    for a, b in intervals:
        lo = max(0, int(np.ceil(a / frame - 0.5)))
        hi = min(n, int(np.ceil(b / frame - 0.5)))
        if hi > lo:
            out[lo:hi] = True
    return out


def frames_to_intervals(track: np.ndarray, *, frame: float = FRAME) -> list[list[float]]:
    """Runs of True frames as intervals in seconds."""
    x = np.concatenate([[False], np.asarray(track, bool), [False]])
    d = np.flatnonzero(np.diff(x.astype(np.int8)))
    return [[a * frame, b * frame] for a, b in zip(d[::2], d[1::2], strict=True)]


def frame_scores(est: np.ndarray, ref: np.ndarray) -> dict:
    """Precision, recall and F-measure of presence frames (all 1.0 when neither has a positive frame)."""
    est, ref = np.asarray(est, bool), np.asarray(ref, bool)
    if est.shape != ref.shape:
        raise ParameterError(f"est has {est.shape} frames, ref {ref.shape}")
    tp = float(np.sum(est & ref))
    n_est, n_ref = float(est.sum()), float(ref.sum())
    p = tp / n_est if n_est else float(n_ref == 0)
    r = tp / n_ref if n_ref else float(n_est == 0)
    f = 2 * tp / (n_est + n_ref) if n_est + n_ref else 1.0
    return {"precision": p, "recall": r, "f": f, "tp": tp, "n_est": n_est, "n_ref": n_ref}


def pooled_f(scores: Sequence[dict]) -> dict:
    """Frame precision / recall / F pooled over files (sums of the counts of :func:`frame_scores`)."""
    tp = sum(s["tp"] for s in scores)
    n_est = sum(s["n_est"] for s in scores)
    n_ref = sum(s["n_ref"] for s in scores)
    return {
        "precision": tp / n_est if n_est else float(n_ref == 0),
        "recall": tp / n_ref if n_ref else float(n_est == 0),
        "f": 2 * tp / (n_est + n_ref) if n_est + n_ref else 1.0,
    }


def boundaries(intervals: Sequence, duration: float) -> np.ndarray:
    """Change points of a presence track (interval starts and ends strictly inside ``(0, duration)``)."""
    pts = sorted({float(t) for iv in intervals for t in iv if 0.0 < t < duration})
    return np.array(pts, dtype=float)


def boundary_counts(est: np.ndarray, ref: np.ndarray, *, window: float = 0.5) -> dict:
    """Hits of estimated boundaries within ``window`` seconds of reference ones (one-to-one matching)."""
    import mir_eval

    est, ref = np.asarray(est, float), np.asarray(ref, float)
    hits = len(mir_eval.util.match_events(ref, est, window)) if len(est) and len(ref) else 0
    return {"hits": hits, "n_est": len(est), "n_ref": len(ref)}


def pooled_boundary(counts: Sequence[dict]) -> dict:
    """Boundary precision / recall / F pooled over files."""
    hits = sum(c["hits"] for c in counts)
    n_est = sum(c["n_est"] for c in counts)
    n_ref = sum(c["n_ref"] for c in counts)
    p = hits / n_est if n_est else float(n_ref == 0)
    r = hits / n_ref if n_ref else float(n_est == 0)
    return {"precision": p, "recall": r, "f": 2 * p * r / (p + r) if p + r else 0.0}
