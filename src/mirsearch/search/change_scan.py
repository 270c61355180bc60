"""The change scan: the last identification step for an excerpt that nothing else answered (arrays in, arrays out).

Under loud noise (pink noise at 0 dB) too few triplet hashes survive for a line to be fitted, but the hash vote
still points at the right recording. The scan slides the excerpt's band changes
(:func:`mirsearch.features.fingerprint.band_changes`, real values) at unchanged speed and pitch over the whole of
the vote's first recordings (one FFT correlation per recording against its stored change signs) and takes the best
offset; that offset is then checked by its peaks (:func:`mirsearch.search.peak_check.peak_overlap`). The largest
correlation of such a search is inflated by the search itself, so the change standout is not the answer's test: the
peaks at the chosen offset are (docs/identify.md, step 6b).
"""

from __future__ import annotations

import numpy as np

from mirsearch.features import fingerprint as fp
from mirsearch.search.peak_check import peak_overlap


def query_changes(L: np.ndarray, *, config: dict) -> np.ndarray:
    """A query's band changes ``(n_bands, n_change_frames - 1)`` (float64, mean removed) from its log spectrogram
    ``(n_bins, n_frames)``: change frame ``j + 1`` of the query is column ``j``."""
    changes, _ = fp.band_changes(fp.band_energies(np.asarray(L, np.float32), config=config))
    x = changes[:, 1:].astype(np.float64)
    return x - x.mean()


def slide_correlation(x: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Normalised correlation of query changes with a recording's change signs at every offset.

    Parameters
    ----------
    x : np.ndarray, shape (n_bands, m)
        The query's changes (:func:`query_changes`).
    signs : np.ndarray, shape (n_bands, n_change_frames), int8
        The recording's stored signs (+1, -1, 0 where unknown).

    Returns
    -------
    np.ndarray, shape (n_change_frames - 1 - m + 1,)
        Value ``a``: ``sum(x * signs[:, a + 1 : a + 1 + m]) / sqrt(sum(x ** 2) * known)`` with ``known`` the number
        of known signs in that window; empty when the recording is shorter than the query.
    """
    m = x.shape[1]
    s = np.asarray(signs[:, 1:], np.float64)
    if m == 0 or s.shape[1] < m + 1 or s.shape[0] != x.shape[0]:
        return np.zeros(0)
    n = s.shape[1] + m
    nfft = 1 << int(np.ceil(np.log2(n)))
    num = np.fft.irfft((np.fft.rfft(s, nfft, axis=1) * np.conj(np.fft.rfft(x, nfft, axis=1))).sum(axis=0), nfft)
    valid = s.shape[1] - m + 1
    known = np.concatenate([[0.0], np.cumsum(np.abs(s).sum(axis=0))])
    count = known[m : m + valid] - known[:valid]
    return num[:valid] / np.sqrt(max(float((x * x).sum()), 1e-12) * np.maximum(count, 1.0))


def best_offset(x: np.ndarray, signs_of, recordings: list) -> tuple[int, float, float] | None:
    """The recording and offset (frames of the peaks, speed 1) where the query's changes agree best.

    Parameters
    ----------
    x : np.ndarray, shape (n_bands, m)
        The query's changes (:func:`query_changes`).
    signs_of : callable
        ``signs_of(recording_id) -> (n_bands, n_change_frames)`` stored signs (none stored: 0 frames).
    recordings : list of int
        The recordings to scan.

    Returns
    -------
    (recording_id, offset_change_frames, correlation) or None
        None when no recording is long enough or holds signs. The offset is in change frames (multiply by the
        configuration's ``change_hop`` for frames of the peaks).
    """
    best = None
    for rec in recordings:
        v = slide_correlation(x, signs_of(rec))
        if v.size == 0:
            continue
        a = int(np.argmax(v))
        if best is None or v[a] > best[2]:
            best = (int(rec), a, float(v[a]))
    return best


def first_recordings(cands: list, n: int) -> list:
    """The first ``n`` distinct recordings of candidates ``(recording_id, offset)`` in vote order."""
    recs: list = []
    for rec, _ in cands:
        if rec not in recs:
            recs.append(rec)
        if len(recs) == n:
            break
    return recs


def scan_answer(cands: list, dense: np.ndarray, *, stored, changes, span: float, rate: float, options) -> list:
    """The change scan's answer for a query that nothing else answered: at most one line at speed 1.

    Parameters
    ----------
    cands : list of (recording_id, offset)
        The hash vote's candidates, most votes first; the first ``options.change_scan`` distinct recordings are
        scanned (options: :class:`mirsearch.search.identify.IdentifyOptions`).
    dense : np.ndarray, shape (3, m)
        The query's peaks for checking.
    stored : StoredFingerprints
        The recordings' stored peaks and signs (:class:`mirsearch.search.peak_check.StoredFingerprints`).
    changes : ChangeCheck
        The query's change check (its log spectrogram ``changes.L``; the change standout reported).
    span, rate : float
        The query's length (frames) and the frame rate (Hz).

    Returns
    -------
    list of (recording_id, score, offset (s), 1.0, 0.0, matched peaks, change standout)
        Empty unless the peak standout at the best offset reaches ``options.change_scan_min``.
    """
    recs = first_recordings(cands, options.change_scan)
    best = best_offset(query_changes(changes.L, config=stored.config), stored.signs, recs) if recs else None
    if best is None:
        return []
    rec, a, _ = best
    off = float(a * int(stored.config["change_hop"]))
    matched, score = peak_overlap(
        stored.peaks(rec), dense, offset=off, speed=1.0, shift=0.0, span=span, rate=rate,
        tolerance=options.peak_tolerance,
    )  # fmt: skip
    if not score >= options.change_scan_min:
        return []
    z = changes.standout(stored.signs(rec), offset=off, speed=1.0, shift=0.0)
    return [(rec, score, off / rate, 1.0, 0.0, matched, z)]


__all__ = ["best_offset", "first_recordings", "query_changes", "scan_answer", "slide_correlation"]
