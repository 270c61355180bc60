"""Diagonal matching: a query laid over a database at every start frame, without time warping.

The cost at start frame ``m`` is the mean cosine distance ``1 - 1/N sum_n <q_n, y_{m+n}>`` of unit-length
query frames ``q`` and database frames ``y`` (Müller, Kurth & Clausen, ISMIR 2005: audio matching with
multiple scaling runs this once per scaled query). :func:`diagonal_costs_shifts` covers all 12 cyclic chroma
shifts at the cost of about one, through the chroma DFT.
"""

from __future__ import annotations

import numpy as np

#: largest similarity block computed at once (float32 cells; bounds memory for large collections)
CHUNK_CELLS = 1 << 22


def diagonal_costs(Q: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Diagonal matching: mean cosine distance of the query laid over ``Y`` at every start frame.

    Parameters
    ----------
    Q : np.ndarray, shape (N, K) or (S, N, K)
        Unit-length query rows; with a leading axis, ``S`` queries of equal length (e.g. the 12 cyclic
        shifts of one query) matched in one matrix product.
    Y : np.ndarray, shape (T, K)
        Unit-length database rows.

    Returns
    -------
    np.ndarray, shape (T,) or (S, T), float32
        ``cost[m] = 1 - mean_n <Q[n], Y[m + n]>`` for ``m <= T - N``; ``inf`` for later starts.
    """
    single = Q.ndim == 2
    Qs = np.asarray(Q, dtype=np.float32)[None] if single else np.asarray(Q, dtype=np.float32)
    n_q, N, K = Qs.shape
    T = Y.shape[0]
    out = np.full((n_q, T), np.inf, dtype=np.float32)
    if N <= T:
        Qflat = np.ascontiguousarray(Qs.reshape(n_q * N, K))
        L_total = T - N + 1
        chunk = max(1024, CHUNK_CELLS // max(1, n_q * N))
        for c0 in range(0, L_total, chunk):
            L = min(chunk, L_total - c0)
            S = Qflat @ Y[c0 : c0 + L + N - 1].T  # (n_q * N, L + N - 1), C-contiguous
            r, c = S.strides
            for q in range(n_q):
                # diagonal view: D[n, m] = S[q * N + n, n + m]; summing over n gives the diagonal sums
                diag = np.lib.stride_tricks.as_strided(S[q * N :], shape=(N, L), strides=(r + c, c), writeable=False)
                out[q, c0 : c0 + L] = 1.0 - diag.sum(axis=0, dtype=np.float32) / N
    return out[0] if single else out


def diagonal_costs_shifts(
    Q: np.ndarray, Y: np.ndarray, *, shifts=range(12), Yf: np.ndarray | None = None
) -> np.ndarray:
    """Diagonal matching for all cyclic shifts of the query at once, through the chroma DFT.

    The dot product of a cyclically shifted query frame with a database frame is a circular
    cross-correlation over the chroma axis, i.e. ``irfft(conj(rfft(q)) * rfft(y))``; a sum of such products
    along a diagonal is, per chroma frequency bin, a correlation over *time* of two complex sequences
    (one FFT-based convolution per bin, :func:`scipy.signal.oaconvolve`). All 12 shifts then cost about
    as much as one, and ``O(T log N)`` instead of ``O(T N)`` per bin.

    Parameters
    ----------
    Q : np.ndarray, shape (N, K)
        Unit-length query rows.
    Y : np.ndarray, shape (T, K)
        Unit-length database rows.
    shifts : iterable of int
        Shifts ``k`` of ``np.roll(Q, k, axis=1)`` (the query transposed up by ``k``).
    Yf : np.ndarray, shape (T, K // 2 + 1), complex, optional
        ``np.fft.rfft(Y, axis=1)`` if already computed.

    Returns
    -------
    np.ndarray, shape (n_shifts, T), float32
        Same values as :func:`diagonal_costs` of each shifted query (``inf`` for starts after ``T - N``).
    """
    import scipy.signal

    shifts = [int(k) for k in shifts]
    N, K = Q.shape
    T = Y.shape[0]
    out = np.full((len(shifts), T), np.inf, dtype=np.float32)
    if N > T:
        return out
    if Yf is None:
        Yf = np.fft.rfft(np.asarray(Y, dtype=np.float64), axis=1)
    Qf = np.fft.rfft(np.asarray(Q, dtype=np.float64), axis=1)
    corr = scipy.signal.oaconvolve(Yf, np.conj(Qf[::-1]), mode="valid", axes=0)  # (T - N + 1, K // 2 + 1)
    acc = np.fft.irfft(corr, n=K, axis=1)  # (T - N + 1, K): acc[m, k] = sum_n <roll(Q, k)[n], Y[m + n]>
    out[:, : T - N + 1] = (1.0 - acc[:, [k % K for k in shifts]] / N).T
    return out


def valid_starts(offsets: np.ndarray, T: int, N: int) -> np.ndarray:
    """Mask (T,) of start frames whose window of N frames stays inside one recording."""
    valid = np.zeros(T, dtype=bool)
    for a, b in zip(offsets[:-1], offsets[1:], strict=True):
        if b - a >= N:
            valid[a : b - N + 1] = True
    return valid


__all__ = ["CHUNK_CELLS", "diagonal_costs", "diagonal_costs_shifts", "valid_starts"]
