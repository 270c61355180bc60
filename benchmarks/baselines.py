"""Baselines run beside mirsearch in the matching and synchronisation benchmarks.

- synctoolbox MrMsDTW with chroma + DLNCO features, as in synctoolbox's own tutorial
  (``sync_audio_audio_full.ipynb``): 50 Hz IIR-filterbank pitch features, quantised chroma, DLNCO,
  ``compute_optimal_chroma_shift`` on 1 Hz CENS, step weights (1.5, 1.5, 2.0), ``threshold_rec = 10**6``.
- libfmp audio matching (FMP notebook C7S2): librosa STFT chroma at 10 Hz, CENS (ell=21, d=5 -> 2 Hz),
  subsequence DTW with step sizes (2,1), (1,2), (1,1) (``compute_matching_function_dtw_ti``: minimum
  over the 12 cyclic shifts), local minima with neighbourhood suppression.
"""

from __future__ import annotations

import contextlib
import io
import time

import numpy as np

SYNC_FEATURE_RATE = 50


def synctoolbox_features(y: np.ndarray, sr: int, *, feature_rate: int = SYNC_FEATURE_RATE):
    """Quantised chroma and DLNCO features of synctoolbox (prints silenced)."""
    from synctoolbox.feature.chroma import pitch_to_chroma, quantize_chroma
    from synctoolbox.feature.dlnco import pitch_onset_features_to_DLNCO
    from synctoolbox.feature.pitch import audio_to_pitch_features
    from synctoolbox.feature.pitch_onset import audio_to_pitch_onset_features
    from synctoolbox.feature.utils import estimate_tuning

    y = np.asarray(y, dtype=np.float64)
    with contextlib.redirect_stdout(io.StringIO()):
        tuning = estimate_tuning(y, sr)
        f_pitch = audio_to_pitch_features(f_audio=y, Fs=sr, tuning_offset=tuning, feature_rate=feature_rate)
        f_chroma = quantize_chroma(f_chroma=pitch_to_chroma(f_pitch=f_pitch))
        peaks = audio_to_pitch_onset_features(f_audio=y, Fs=sr, tuning_offset=tuning)
        f_dlnco = pitch_onset_features_to_DLNCO(
            f_peaks=peaks, feature_rate=feature_rate, feature_sequence_length=f_chroma.shape[1]
        )
    return f_chroma, f_dlnco


def synctoolbox_sync(y1, y2, sr: int, *, feature_rate: int = SYNC_FEATURE_RATE, transpose: bool = True):
    """Align two signals with synctoolbox; returns (path (2, L) in frames, timings dict)."""
    from synctoolbox.dtw.mrmsdtw import sync_via_mrmsdtw
    from synctoolbox.dtw.utils import compute_optimal_chroma_shift, make_path_strictly_monotonic
    from synctoolbox.feature.chroma import quantized_chroma_to_CENS
    from synctoolbox.feature.utils import shift_chroma_vectors

    t0 = time.perf_counter()
    c1, d1 = synctoolbox_features(y1, sr, feature_rate=feature_rate)
    c2, d2 = synctoolbox_features(y2, sr, feature_rate=feature_rate)
    t1 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        shift = 0
        if transpose:
            cens1 = quantized_chroma_to_CENS(c1, 201, 50, feature_rate)[0]
            cens2 = quantized_chroma_to_CENS(c2, 201, 50, feature_rate)[0]
            shift = int(compute_optimal_chroma_shift(cens1, cens2))
            c2 = shift_chroma_vectors(c2, shift)
            d2 = shift_chroma_vectors(d2, shift)
        wp = sync_via_mrmsdtw(
            f_chroma1=c1,
            f_onset1=d1,
            f_chroma2=c2,
            f_onset2=d2,
            input_feature_rate=feature_rate,
            step_weights=np.array([1.5, 1.5, 2.0]),
            threshold_rec=10**6,
        )
        wp = make_path_strictly_monotonic(wp)
    t2 = time.perf_counter()
    return wp, {"features_s": t1 - t0, "dtw_s": t2 - t1, "total_s": t2 - t0, "shift": shift}


def synctoolbox_sync_features(c1, d1, c2, d2, *, feature_rate: int = SYNC_FEATURE_RATE):
    """synctoolbox MrMsDTW on precomputed features (for memory measurements of the DTW alone)."""
    from synctoolbox.dtw.mrmsdtw import sync_via_mrmsdtw
    from synctoolbox.dtw.utils import make_path_strictly_monotonic

    with contextlib.redirect_stdout(io.StringIO()):
        wp = sync_via_mrmsdtw(
            f_chroma1=c1,
            f_onset1=d1,
            f_chroma2=c2,
            f_onset2=d2,
            input_feature_rate=feature_rate,
            step_weights=np.array([1.5, 1.5, 2.0]),
            threshold_rec=10**6,
        )
    return make_path_strictly_monotonic(wp)


# ------------------------------------------------------------------------------------------ libfmp matching


def libfmp_cens(y: np.ndarray, sr: int, *, ell: int = 21, d: int = 5):
    """CENS as in libfmp's ``compute_cens_from_file`` (STFT chroma 10 Hz -> CENS 2 Hz), from a signal."""
    import libfmp.c7
    import librosa

    X = librosa.feature.chroma_stft(
        y=np.asarray(y, dtype=np.float32), sr=sr, tuning=0, norm=None, hop_length=2205, n_fft=4410
    )
    X_cens, rate = libfmp.c7.compute_cens_from_chromagram(X, Fs=sr / 2205, ell=ell, d=d)
    return X_cens, rate


def libfmp_match(query_cens, db_cens: list, *, top: int = 10, shifts=range(12), rho: int | None = None):
    """libfmp subsequence-DTW matching (min over shifts) of one query against several recordings.

    Returns a list of (recording index, start frame, end frame, cost), best first.
    """
    import libfmp.c7

    N = query_cens.shape[1]
    rho = rho or max(1, N // 2)
    found = []
    for idx, Y in enumerate(db_cens):
        if Y.shape[1] < N // 2 + 1:
            continue
        Delta, _, Delta_cyc = libfmp.c7.compute_matching_function_dtw_ti(query_cens, Y, cyc=np.array(list(shifts)))
        # positions: local minima with neighbourhood suppression (libfmp); starts by backtracking
        Delta_s = np.array(Delta, copy=True)
        pos = libfmp.c7.mininma_from_matching_function(Delta_s, rho=rho, tau=1.0, num=top)
        for p in pos:
            k = int(np.argmin(Delta_cyc[:, p]))
            X_cyc = np.roll(query_cens, k, axis=0)
            _, _, D = libfmp.c7.compute_matching_function_dtw(X_cyc, Y, stepsize=2)
            start = int(libfmp.c7.matches_dtw(np.array([p]), D, stepsize=2)[0, 0])
            found.append((idx, start, int(p), float(Delta[p])))
    found.sort(key=lambda r: r[3])
    return found[:top]
