"""Viterbi decoding with a minimum run length (numba kernel of :func:`mirsearch.describe.segment.decode`).

Each label k is a chain of ``D`` states (frames spent in the current run, capped at ``D - 1``); a run can only
change label from its last state, so every run lasts at least ``D`` frames. The decoder starts in the last state of
every chain (the first run is exempt) and may end anywhere (so may the last run). Back-pointers take 2 bytes per
frame and label.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def viterbi_min_duration(E: np.ndarray, D: int, penalty: float) -> np.ndarray:
    n, K = E.shape
    NEG = -1e300
    cur = np.full((K, D), NEG)
    for k in range(K):
        cur[k, D - 1] = E[0, k]
    enter = np.zeros((n, K), np.int8)  # label we came from when entering state (k, 0)
    last = np.zeros((n, K), np.int8)  # for state (k, D-1): 1 = stayed, 0 = advanced from (k, D-2); D == 1: source
    new = np.empty((K, D))
    for t in range(1, n):
        for k in range(K):
            # best predecessor among the other labels' final states
            best, arg = NEG, 0
            for j in range(K):
                if j != k and cur[j, D - 1] - penalty > best:
                    best, arg = cur[j, D - 1] - penalty, j
            if D == 1:
                if cur[k, 0] >= best:
                    new[k, 0] = cur[k, 0] + E[t, k]
                    last[t, k] = k
                else:
                    new[k, 0] = best + E[t, k]
                    last[t, k] = arg
                continue
            new[k, 0] = best + E[t, k]
            enter[t, k] = arg
            for d in range(1, D - 1):
                new[k, d] = cur[k, d - 1] + E[t, k]
            if cur[k, D - 1] >= cur[k, D - 2]:
                new[k, D - 1] = cur[k, D - 1] + E[t, k]
                last[t, k] = 1
            else:
                new[k, D - 1] = cur[k, D - 2] + E[t, k]
                last[t, k] = 0
        cur[:, :] = new
    # best final state
    bk, bd, best = 0, 0, NEG
    for k in range(K):
        for d in range(D):
            if cur[k, d] > best:
                bk, bd, best = k, d, cur[k, d]
    labels = np.empty(n, np.int8)
    k, d = bk, bd
    for t in range(n - 1, -1, -1):
        labels[t] = k
        if t == 0:
            break
        if D == 1:
            k = last[t, k]
        elif d == 0:
            k, d = enter[t, k], D - 1
        elif d < D - 1:
            d -= 1
        elif last[t, k] == 0:
            d = D - 2
    return labels
