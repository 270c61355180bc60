"""Audio fingerprints: spectral peaks on a log-frequency grid and speed-invariant triplet hashes.

The design follows Panako (Six & Leman 2014, 2021): peaks of a log-frequency magnitude spectrogram
(36 bins per octave, a constant-Q-like grid computed from an STFT) are combined in triplets
``p1, p2, p3`` (``t1 < t2 < t3``). The hash of a triplet holds

- the ratio of time differences ``(t2 - t1) / (t3 - t1)``, invariant to a change of tempo;
- the log-frequency differences ``f2 - f1`` and ``f3 - f1``, invariant to a change of pitch;
- coarse values of ``f1`` (half-octave bands) and of ``log2(t3 - t1)`` (quarter octaves) for entropy.

A change of playback speed (resampling: tempo and pitch together), a time-stretch or a pitch shift of
a few percent therefore leave most hashes unchanged; the coarse components, and every component that
lies near a quantisation boundary, are looked up in the neighbouring cell too (:func:`query_hashes`).
Stored with each reference hash: the anchor's time ``t1``, its log-frequency ``f1`` and ``t3 - t1``, so
that a match tells the query's speed (``dt13_ref / dt13_query``), its pitch shift (``f1_query - f1_ref``)
and the offset; verification (:mod:`mirsearch.search.identify`) keeps matches consistent in all three.

What a collection stores per recording (:func:`extract_fingerprints`) is a float32 array ``(3, n)``: the peak
list (frame time, fractional log-frequency bin, prominence) and, in columns of their own, the signs of the
spectro-temporal changes (:func:`band_changes`): a Haitsma-Kalker-like bit pattern, per 32 ms, of which of 60
log-frequency bands (12 per octave) got louder than the frame's average band, that verifies candidates when too
few peaks survive noise. :func:`split_stored` separates the two. Hashes are derived from the peaks by the
fingerprint index, so a new hash layout needs no re-extraction.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mirsearch.errors import ParameterError

#: bump when peak extraction changes in a way that changes stored arrays (2: change signs stored beside the peaks;
#: 3: the signs packed as bits, one column per 32 ms instead of three)
FINGERPRINT_VERSION = 3

#: default peak-extraction parameters (the stored configuration)
PEAK_DEFAULTS = {
    "sr": 8000,
    "n_fft": 2048,
    "hop_length": 128,
    "fmin": 110.0,
    "n_octaves": 5,
    "bins_per_octave": 36,
    "time_radius": 8,
    "freq_radius": 9,
    "peaks_per_second": 30.0,
    "peak_bands": 5,
    "change_band_bins": 3,
    "change_hop": 2,
}

#: default triplet and hash parameters (used by the index; no re-extraction when they change)
HASH_DEFAULTS = {
    "fan_out": 6,
    "query_fan_out": 10,
    "min_dt": 2.0,
    "max_dt": 60.0,
    "max_df": 48.0,
    "df_step": 1.5,
    "ratio_levels": 24,
    "band_bins": 18.0,
    "log_dt_step": 0.25,
    "probe_margin": 0.25,
    "band_margin": 4.0,
    "log_dt_margin": 0.09,
}


def fingerprint_config() -> dict:
    """Configuration of the stored ``"fingerprint"`` kind (JSON-able; its hash names the arrays)."""
    return {"kind": "fingerprint", "version": FINGERPRINT_VERSION, **PEAK_DEFAULTS}


def hash_config(**overrides) -> dict:
    """Triplet / hash parameters: :data:`HASH_DEFAULTS` with ``overrides`` (unknown names raise)."""
    unknown = set(overrides) - set(HASH_DEFAULTS)
    if unknown:
        raise ParameterError(f"unknown hash parameter(s): {', '.join(sorted(unknown))}")
    return {**HASH_DEFAULTS, **overrides}


def frame_rate(config: dict) -> float:
    """Frames per second of the peak times of a configuration."""
    return config["sr"] / config["hop_length"]


def _log_frequency_matrix(*, sr: int, n_fft: int, fmin: float, n_bins: int, bins_per_octave: int) -> np.ndarray:
    """Weights ``(n_bins, n_fft // 2 + 1)`` mapping STFT magnitudes to a log-frequency grid.

    Each row is a triangle in Hz around the bin's centre ``fmin * 2 ** (k / bins_per_octave)``,
    half as wide as the larger of the STFT bin spacing and the log-bin spacing; rows sum to one.
    """
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    centres = fmin * 2.0 ** (np.arange(n_bins) / bins_per_octave)
    half = np.maximum(sr / n_fft, centres * (2.0 ** (1.0 / bins_per_octave) - 1.0))
    W = np.maximum(0.0, 1.0 - np.abs(freqs[None, :] - centres[:, None]) / half[:, None])
    return (W / np.maximum(W.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)


def log_spectrogram(y: np.ndarray, *, sr: int, config: dict) -> np.ndarray:
    """Log-magnitude spectrogram on the log-frequency grid, shape ``(n_bins, n_frames)`` float32.

    ``y`` (mono, any rate ``sr``) is resampled to ``config["sr"]``; frame ``k`` is centred at
    ``k * hop_length / config["sr"]`` seconds.
    """
    import librosa
    import soxr

    target = int(config["sr"])
    y = np.asarray(y, dtype=np.float32)
    if sr != target:
        y = soxr.resample(y, sr, target).astype(np.float32)
    S = np.abs(librosa.stft(y, n_fft=config["n_fft"], hop_length=config["hop_length"], center=True))
    W = _log_frequency_matrix(
        sr=target,
        n_fft=config["n_fft"],
        fmin=config["fmin"],
        n_bins=config["n_octaves"] * config["bins_per_octave"],
        bins_per_octave=config["bins_per_octave"],
    )
    return np.log(W @ S + 1e-6).astype(np.float32)


def pick_peaks(L: np.ndarray, *, config: dict) -> np.ndarray:
    """Spectral peaks of a log spectrogram ``L (n_bins, n_frames)``.

    A peak is the maximum of its neighbourhood (``±time_radius`` frames, ``±freq_radius`` bins);
    its prominence is its height above the neighbourhood's mean. In every second the
    ``peaks_per_second`` most prominent peaks are kept, shared equally by ``peak_bands`` frequency
    bands (so that noise concentrated in one region, e.g. pink noise in the bass, does not take every
    peak). Time and frequency are refined by a parabola
    through the neighbours.

    Returns
    -------
    peaks : np.ndarray, shape (3, n_peaks), float32
        Rows: time (frames, fractional), log-frequency bin (fractional), prominence; sorted by time.
    """
    from scipy.ndimage import maximum_filter, uniform_filter

    n_bins, n_frames = L.shape
    if n_frames < 3:
        return np.zeros((3, 0), np.float32)
    audible = L > np.log(1e-4)
    if config.get("whiten", False):  # stationary noise and equalisation: each bin relative to its median level
        L = L - np.median(L, axis=1, keepdims=True)
    size = (2 * config["freq_radius"] + 1, 2 * config["time_radius"] + 1)
    # a query may look for maxima in a smaller neighbourhood (a superset of the reference's peaks)
    max_size = (
        2 * config.get("query_freq_radius", config["freq_radius"]) + 1,
        2 * config.get("query_time_radius", config["time_radius"]) + 1,
    )
    is_max = (maximum_filter(L, size=max_size, mode="nearest") == L) & audible
    prominence = L - uniform_filter(L, size=size, mode="nearest")
    is_max[[0, -1], :] = False
    is_max[:, [0, -1]] = False
    fi, ti = np.nonzero(is_max)
    prom = prominence[fi, ti]
    keep = prom > 0
    fi, ti, prom = fi[keep], ti[keep], prom[keep]
    bands = int(config.get("peak_bands", 1))
    band = np.minimum(fi * bands // n_bins, bands - 1)
    block = np.floor(ti / frame_rate(config)).astype(np.int64) * bands + band
    order = np.lexsort((-prom, block))
    fi, ti, prom, block = fi[order], ti[order], prom[order], block[order]
    starts = np.searchsorted(block, block, side="left")
    rank = np.arange(block.size) - starts
    keep = rank < config["peaks_per_second"] / bands
    fi, ti, prom = fi[keep], ti[keep], prom[keep]
    c = L[fi, ti]
    df = _parabola(L[fi - 1, ti], c, L[fi + 1, ti])
    dt = _parabola(L[fi, ti - 1], c, L[fi, ti + 1])
    peaks = np.stack([ti + dt, fi + df, prom]).astype(np.float32)
    return peaks[:, np.argsort(peaks[0], kind="stable")]


def _parabola(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Offset in ``[-0.5, 0.5]`` of the vertex of the parabola through ``(-1, a), (0, b), (1, c)``."""
    denom = a - 2.0 * b + c
    safe = np.where(np.abs(denom) > 1e-9, denom, -1.0)
    return np.clip(0.5 * (a - c) / safe, -0.5, 0.5)


def extract_fingerprints(y: np.ndarray, *, sr: int, config: dict) -> tuple[np.ndarray, float]:
    """The stored fingerprint of a recording: its peak list and the frame rate of the peak times.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio.
    sr : int > 0
        Sample rate of ``y`` (Hz).
    config : dict
        From :func:`fingerprint_config`.

    Returns
    -------
    peaks : np.ndarray, shape (3, n_peaks), float32
        See :func:`pick_peaks`.
    frame_rate : float
        Frames per second of the peak times.
    """
    if sr <= 0:
        raise ParameterError(f"sr={sr!r} must be > 0")
    L = log_spectrogram(y, sr=sr, config=config)
    peaks = pick_peaks(L, config=config)
    if "change_hop" not in config:  # version 1: peaks only
        return peaks, frame_rate(config)
    return np.concatenate(
        [peaks, change_columns(*band_changes(band_energies(L, config=config)), config=config)], axis=1
    ), frame_rate(config)


#: log magnitude below which a band is silent (the audibility floor of :func:`pick_peaks`)
_AUDIBLE = float(np.log(1e-4))
#: sign bits in the two data rows of a stored change column (version 3): 29 in row 1 (kept negative and below
#: 2 ** -62 in magnitude, so that it is never taken for a peak's bin nor for a version-2 word number), 31 in row 2
_ROW_BITS = (29, 31)
#: version-2 layout (read only): 24 sign bits per column, as an integer a float32 holds exactly
_WORD_BITS = 24


def band_energies(L: np.ndarray, *, config: dict) -> np.ndarray:
    """Mean log magnitude over blocks of ``change_band_bins`` bins and ``change_hop`` frames of ``L``.

    Returns
    -------
    E : np.ndarray, shape (n_bins // change_band_bins, n_frames // change_hop), float32
        Change frame ``k`` covers frames ``k * change_hop ...`` of ``L``.
    """
    fb, tb = int(config["change_band_bins"]), int(config["change_hop"])
    nb, nt = L.shape[0] // fb, L.shape[1] // tb
    return np.asarray(L[: nb * fb, : nt * tb], np.float32).reshape(nb, fb, nt, tb).mean(axis=(1, 3))


def band_changes(E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spectro-temporal changes of band energies: each band's change from the previous frame minus the frame's
    mean change (a loudness change of the whole spectrum cancels, as in Haitsma & Kalker's frequency difference).

    Returns
    -------
    changes : np.ndarray, shape (n_bands, n_frames), float32
        Column 0 is zero (no previous frame).
    valid : np.ndarray, shape (n_frames,), bool
        Frames with an audible band in them or the previous frame (digital silence has no changes).
    """
    C = np.zeros(E.shape, np.float32)
    valid = np.zeros(E.shape[1], bool)
    if E.shape[1] >= 2:
        C[:, 1:] = E[:, 1:] - E[:, :-1]
        C -= C.mean(axis=0, keepdims=True)
        loud = E.max(axis=0, initial=-np.inf) > _AUDIBLE
        valid[1:] = loud[1:] | loud[:-1]
    return C, valid


def _bits_to_float(v: np.ndarray, *, negative: bool) -> np.ndarray:
    """Up to 29 (``negative``) or 31 data bits per value as finite, normal float32 values, exactly recoverable.

    The low 23 bits are the mantissa, the next 6 (7) bits plus one the exponent (1 .. 64 or 1 .. 128: never zero,
    so no subnormals, and never 255, so no infinities or NaNs), and for 31 bits the last one the sign. Such values
    survive any float32 / float64 round trip, JSON included.
    """
    v = np.asarray(v, np.uint32)
    mantissa = v & np.uint32(0x7FFFFF)
    if negative:
        exponent = ((v >> np.uint32(23)) & np.uint32(0x3F)) + np.uint32(1)
        sign = np.uint32(1 << 31)
    else:
        exponent = ((v >> np.uint32(23)) & np.uint32(0x7F)) + np.uint32(1)
        sign = (v >> np.uint32(30)) << np.uint32(31)
    return (sign | (exponent << np.uint32(23)) | mantissa).view(np.float32)


def _float_to_bits(x: np.ndarray, *, negative: bool) -> np.ndarray:
    """Inverse of :func:`_bits_to_float`."""
    u = np.ascontiguousarray(x, np.float32).view(np.uint32)
    exponent = ((u >> np.uint32(23)) & np.uint32(0xFF)) - np.uint32(1)
    v = (exponent << np.uint32(23)) | (u & np.uint32(0x7FFFFF))
    if negative:
        return v & np.uint32((1 << 29) - 1)
    return (v & np.uint32((1 << 30) - 1)) | ((u >> np.uint32(31)) << np.uint32(30))


def _pack_rows(bits: np.ndarray) -> np.ndarray:
    """Sign bits ``(n_bands <= 60, n)`` (0/1) -> the two data rows ``(2, n)`` float32 of a change column."""
    rows = []
    start = 0
    for i, width in enumerate(_ROW_BITS):
        part = bits[start : start + width].astype(np.uint32)
        weights = np.uint32(1) << np.arange(part.shape[0], dtype=np.uint32)
        rows.append(_bits_to_float((part * weights[:, None]).sum(axis=0, dtype=np.uint32), negative=i == 0))
        start += width
    return np.stack(rows)


def _unpack_rows(rows: np.ndarray, nb: int) -> np.ndarray:
    """Inverse of :func:`_pack_rows`: ``(2, n)`` float32 -> sign bits ``(nb, n)`` uint8."""
    parts = []
    for i, width in enumerate(_ROW_BITS):
        v = _float_to_bits(rows[i], negative=i == 0)
        parts.append((v[None, :] >> np.arange(width, dtype=np.uint32)[:, None]) & np.uint32(1))
    return np.concatenate(parts)[:nb].astype(np.uint8)


def change_columns(changes: np.ndarray, valid: np.ndarray, *, config: dict) -> np.ndarray:
    """The signs of the valid frames' changes as stored columns ``(time, bits, bits)``, shape ``(3, n_valid)``.

    Each valid change frame ``k`` gives one column: its time ``k * change_hop`` (frames of the peaks, so that a
    window of the stored array is cut like the peaks) and its up to 60 sign bits (band ``i`` rose: bit ``i``), 29 in
    row 1 and 31 in row 2, each row's bits written into a float32 (:func:`_bits_to_float`; row 1 negative and
    tiny: a peak's bin is never negative). 12 bytes per 32 ms, 1.35 MB per hour of audible audio.
    """
    nb, _ = changes.shape
    if nb > sum(_ROW_BITS):
        raise ParameterError(f"change bands: {nb} > {sum(_ROW_BITS)} (one stored column holds {sum(_ROW_BITS)})")
    frames = np.flatnonzero(valid)
    times = (frames * float(config["change_hop"])).astype(np.float32)
    return np.concatenate([times[None, :], _pack_rows(changes[:, frames] > 0)]).astype(np.float32)


def _version2_signs(cols: np.ndarray, nb: int, hop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames, bits ``(nb, n)`` of version-2 change columns ``(time, -1 - word, 24-bit word)``."""
    n_words = -(-nb // _WORD_BITS)
    k = np.round(cols[0] / hop).astype(np.int64)
    w = np.round(-1.0 - cols[1]).astype(np.int64)
    ok = (w >= 0) & (w < n_words) & (k >= 0)
    k, w, v = k[ok], w[ok], cols[2, ok].astype(np.uint32)
    frames, inverse = np.unique(k, return_inverse=True)
    words = np.zeros((n_words, frames.size), np.uint32)
    words[w, inverse] = v
    bits = (words[:, None, :] >> np.arange(_WORD_BITS, dtype=np.uint32)[None, :, None]) & np.uint32(1)
    return frames, bits.reshape(n_words * _WORD_BITS, frames.size)[:nb].astype(np.uint8)


def split_stored(X: np.ndarray, *, config: dict) -> tuple[np.ndarray, np.ndarray]:
    """A stored fingerprint array -> its peaks and its change signs.

    Reads every stored layout: version 3 (one column per change frame, :func:`change_columns`), version 2 (three
    columns per frame, 24 bits each as an integer) and version 1 (peaks only).

    Returns
    -------
    peaks : np.ndarray, shape (3, n_peaks), float32
        As :func:`pick_peaks` returns them.
    signs : np.ndarray, shape (n_bands, n_change_frames), int8
        +1 where a band rose more than the frame's mean, -1 where not, 0 where unknown (silent frames, arrays
        stored before version 2: then ``n_change_frames`` is 0).
    """
    X = np.asarray(X, np.float32)
    is_peak = X[1] >= 0
    peaks = np.ascontiguousarray(X[:, is_peak])
    nb = int(config["n_octaves"] * config["bins_per_octave"]) // int(config.get("change_band_bins", 1))
    cols = X[:, ~is_peak]
    if cols.shape[1] == 0 or "change_hop" not in config:
        return peaks, np.zeros((nb, 0), np.int8)
    hop = int(config["change_hop"])
    old = cols[1] <= -0.5  # version 2: word numbers -1, -2, ...; version 3: |row 1| < 2 ** -62
    f2, b2 = _version2_signs(cols[:, old], nb, hop)
    new = cols[:, ~old]
    k = np.round(new[0] / hop).astype(np.int64)
    ok = k >= 0
    frames = np.concatenate([f2, k[ok]])
    bits = np.concatenate([b2, _unpack_rows(new[1:, ok], nb)], axis=1)
    n = int(frames.max(initial=-1)) + 1
    signs = np.zeros((nb, n), np.int8)
    signs[:, frames] = 2 * bits.astype(np.int8) - 1
    return peaks, signs


def peaks_of(X: np.ndarray) -> np.ndarray:
    """The peak columns of a stored fingerprint array (:func:`split_stored` without the signs)."""
    X = np.asarray(X, np.float32)
    return np.ascontiguousarray(X[:, X[1] >= 0])


@njit(cache=True)
def _triplet_indices(t, f, fan_out, min_dt, max_dt, max_df):  # pragma: no cover - numba
    n = t.size
    cap = n * fan_out * (fan_out - 1) // 2
    out = np.empty((cap, 3), np.int64)
    m = 0
    cand = np.empty(fan_out, np.int64)
    for i in range(n):
        k = 0
        j = i + 1
        while j < n and k < fan_out:
            d = t[j] - t[i]
            if d > max_dt:
                break
            if d >= min_dt and abs(f[j] - f[i]) <= max_df:
                cand[k] = j
                k += 1
            j += 1
        for a in range(k):
            for b in range(a + 1, k):
                if t[cand[b]] - t[cand[a]] >= min_dt:
                    out[m, 0] = i
                    out[m, 1] = cand[a]
                    out[m, 2] = cand[b]
                    m += 1
    return out[:m]


def triplets(peaks: np.ndarray, *, hconfig: dict, query: bool = False) -> dict:
    """Triplets of peaks and their continuous hash components.

    Parameters
    ----------
    peaks : np.ndarray, shape (3, n_peaks)
        From :func:`pick_peaks` (sorted by time).
    hconfig : dict
        From :func:`hash_config`.
    query : bool
        Pair each anchor with the next ``query_fan_out`` peaks instead of ``fan_out``: a query's triplets then
        include the reference's even when noise added a few peaks.

    Returns
    -------
    dict of 1-D arrays (one entry per triplet)
        ``t1`` (frames), ``f1`` (bins), ``dt13`` (frames), ``ratio`` = (t2-t1)/(t3-t1),
        ``df12``, ``df13`` (bins).
    """
    t = np.ascontiguousarray(peaks[0], dtype=np.float64)
    f = np.ascontiguousarray(peaks[1], dtype=np.float64)
    idx = _triplet_indices(
        t,
        f,
        int(hconfig["query_fan_out" if query else "fan_out"]),
        float(hconfig["min_dt"]),
        float(hconfig["max_dt"]),
        float(hconfig["max_df"]),
    )
    i, j, k = idx[:, 0], idx[:, 1], idx[:, 2]
    dt13 = t[k] - t[i]
    return {
        "t1": t[i],
        "f1": f[i],
        "dt13": dt13,
        "ratio": (t[j] - t[i]) / dt13,
        "df12": f[j] - f[i],
        "df13": f[k] - f[i],
    }


def _cells(trip: dict, hconfig: dict) -> dict:
    """Continuous cell coordinates of each hash component (integer part = the cell)."""
    step = hconfig["df_step"]
    offset = np.ceil(hconfig["max_df"] / step) + 1
    return {
        "ratio": trip["ratio"] * hconfig["ratio_levels"],
        "df12": trip["df12"] / step + offset,
        "df13": trip["df13"] / step + offset,
        "band": trip["f1"] / hconfig["band_bins"],
        "logdt": np.log2(np.maximum(trip["dt13"], 1e-3) / hconfig["min_dt"]) / hconfig["log_dt_step"],
    }


#: bit widths of the hash components, lowest bits first
_FIELDS = (("ratio", 5), ("df12", 7), ("df13", 7), ("band", 4), ("logdt", 5))


def _pack(cells: dict) -> np.ndarray:
    h = np.zeros(next(iter(cells.values())).shape, np.uint32)
    shift = 0
    for name, bits in _FIELDS:
        v = np.clip(cells[name], 0, (1 << bits) - 1).astype(np.uint32)
        h |= v << np.uint32(shift)
        shift += bits
    return h


def reference_hashes(trip: dict, *, hconfig: dict) -> np.ndarray:
    """One uint32 hash per triplet (the cell each component falls in)."""
    cells = _cells(trip, hconfig)
    return _pack({k: np.floor(v) for k, v in cells.items()})


def query_hashes(trip: dict, *, hconfig: dict) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of query triplets with multi-probing of components near a cell boundary.

    A component within ``probe_margin`` of a cell (``band_margin`` bins for the frequency band,
    ``log_dt_margin`` octaves for ``t3 - t1``, which a speed change of a few percent moves) is also
    looked up in the neighbouring cell.

    Returns
    -------
    hashes : np.ndarray, shape (n_probes,), uint32
    source : np.ndarray, shape (n_probes,), int64
        Index of the triplet each probe belongs to.
    """
    cells = _cells(trip, hconfig)
    margins = {
        "ratio": hconfig["probe_margin"],
        "df12": hconfig["probe_margin"],
        "df13": hconfig["probe_margin"],
        "band": hconfig["band_margin"] / hconfig["band_bins"],
        "logdt": hconfig["log_dt_margin"] / hconfig["log_dt_step"],
    }
    n = cells["ratio"].size
    source = np.arange(n)
    probe = {k: np.floor(v) for k, v in cells.items()}
    for name, _ in _FIELDS:
        frac = cells[name][source] - np.floor(cells[name][source])
        cur = probe[name]
        lo = frac < margins[name]
        hi = frac > 1.0 - margins[name]
        extra = np.nonzero(lo | hi)[0]
        shifted = cur[extra] + np.where(lo[extra], -1.0, 1.0)
        source = np.concatenate([source, source[extra]])
        probe = {k: np.concatenate([v, v[extra]]) for k, v in probe.items()}
        probe[name][cur.size :] = shifted
    return _pack(probe), source


__all__ = [
    "FINGERPRINT_VERSION",
    "band_changes",
    "band_energies",
    "change_columns",
    "peaks_of",
    "split_stored",
    "HASH_DEFAULTS",
    "PEAK_DEFAULTS",
    "extract_fingerprints",
    "fingerprint_config",
    "frame_rate",
    "hash_config",
    "log_spectrogram",
    "pick_peaks",
    "query_hashes",
    "reference_hashes",
    "triplets",
]
