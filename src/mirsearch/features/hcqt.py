"""Harmonic constant-Q transform (HCQT).

The HCQT (Bittner et al., "Deep salience representations for F0 tracking in polyphonic music",
ISMIR 2017) stacks several CQTs whose minimum frequencies are harmonics ``h * fmin`` of one base
frequency: bin ``k`` of every channel belongs to the same fundamental ``f_k = fmin * 2**(k / bpo)``,
and channel ``h`` shows the energy at ``h * f_k``. A convolution over the channel axis then sees the
harmonic series of each candidate fundamental at one position.

Computing one CQT per harmonic is six times the work; here a single wide CQT from
``min(harmonics) * fmin`` up to ``max(harmonics) * fmax`` is computed once and each harmonic channel is
read from it with a (possibly fractional) bin shift ``bpo * log2(h / min(harmonics))``; fractional
shifts (harmonics 3 and 5) are linearly interpolated between neighbouring bins. With 3 bins per
semitone the interpolation error is at most half a bin (17 cents) in position, far below the
frequency resolution that the network uses.

Frames are centred (frame ``j`` at ``j / feature_rate`` seconds) as in librosa. The CQT runs at a
power-of-two hop (librosa halves the hop for every lower octave); when ``sr / hop`` differs from the
requested ``feature_rate`` the frames are averaged (or, when upsampling, interpolated) to that rate.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import warnings
from collections import OrderedDict

import numpy as np

from mirsearch.errors import InputError, ParameterError, check_positive

logger = logging.getLogger(__name__)

#: harmonics of the deep salience HCQT
DEFAULT_HARMONICS: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0)
#: MIDI pitch of the lowest fundamental (C1, 32.7 Hz)
DEFAULT_FMIN_MIDI = 24


#: memoised CQT filter bases (librosa rebuilds them on every call: about 0.7 s for the HCQT's 336 bins)
_FILTERS: OrderedDict = OrderedDict()
_FILTERS_MAX = 32
_FILTERS_LOCK = threading.Lock()


def _key(v):
    if isinstance(v, np.ndarray):
        return (v.dtype.str, v.shape, v.tobytes())
    return v if isinstance(v, int | float | str | type(None)) else repr(v)


@contextlib.contextmanager
def _memoized_cqt_filters():
    """Within the block, librosa's CQT reuses filter bases built before with the same arguments.

    ``librosa.core.constantq`` looks its private ``__vqt_filter_fft`` up as a module global on every
    call; it is replaced for the duration of the block by a memoising wrapper that returns copies
    (librosa rescales the basis in place). The results are identical to librosa's.
    """
    import librosa.core.constantq as cq

    name = "__vqt_filter_fft"
    orig = cq.__dict__.get(name)
    if orig is None or getattr(orig, "_mirsearch_memo", False):
        yield
        return

    def memo(*args, **kwargs):
        key = (tuple(_key(a) for a in args), tuple(sorted((k, _key(v)) for k, v in kwargs.items())))
        with _FILTERS_LOCK:
            hit = _FILTERS.get(key)
            if hit is not None:
                _FILTERS.move_to_end(key)
        if hit is None:
            hit = orig(*args, **kwargs)
            with _FILTERS_LOCK:
                _FILTERS[key] = hit
                while len(_FILTERS) > _FILTERS_MAX:
                    _FILTERS.popitem(last=False)
        basis, n_fft, lengths = hit
        return basis.copy(), n_fft, np.array(lengths, copy=True)

    memo._mirsearch_memo = True
    setattr(cq, name, memo)
    try:
        yield
    finally:
        setattr(cq, name, orig)


def _resample_frames(X: np.ndarray, *, rate_in: float, rate_out: float, n_out: int) -> np.ndarray:
    """Change the frame rate of ``X`` (..., n_in) to ``rate_out`` with ``n_out`` frames.

    Each output frame ``j`` (centred at ``j / rate_out`` seconds) is the mean of the input frames whose
    centres lie in ``[(j - 0.5) / rate_out, (j + 0.5) / rate_out)``; if that window holds no input frame
    (upsampling) the value is linearly interpolated.
    """
    n_in = X.shape[-1]
    t_in = np.arange(n_in) / rate_in
    edges = (np.arange(n_out + 1) - 0.5) / rate_out
    idx = np.searchsorted(t_in, edges, side="left")
    csum = np.concatenate([np.zeros(X.shape[:-1] + (1,), dtype=np.float64), np.cumsum(X, axis=-1)], axis=-1)
    counts = idx[1:] - idx[:-1]
    sums = csum[..., idx[1:]] - csum[..., idx[:-1]]
    out = np.empty(X.shape[:-1] + (n_out,), dtype=np.float64)
    full = counts > 0
    out[..., full] = sums[..., full] / counts[full]
    if not np.all(full):
        t_out = np.arange(n_out)[~full] / rate_out
        pos = np.clip(t_out * rate_in, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        frac = pos - lo
        out[..., ~full] = X[..., lo] * (1 - frac) + X[..., hi] * frac
    return out


def hcqt(
    y: np.ndarray,
    *,
    sr: int,
    feature_rate: float,
    harmonics: tuple[float, ...] = DEFAULT_HARMONICS,
    fmin_midi: float = DEFAULT_FMIN_MIDI,
    n_octaves: int = 6,
    bins_per_semitone: int = 3,
    top_db: float = 80.0,
) -> tuple[np.ndarray, float]:
    """Log-magnitude harmonic CQT of a mono signal.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio, float.
    sr : int > 0
        Sampling rate of ``y`` in Hz (22050 is the rate the default model uses).
    feature_rate : float > 0
        Frame rate of the output in Hz.
    harmonics : tuple of float > 0
        Harmonics of the fundamental, one output channel each.
    fmin_midi : float
        MIDI pitch (may be fractional) of bin 0 of the fundamental (harmonic 1) channel. With
        ``24 - (bins_per_semitone - 1) / (2 * bins_per_semitone)`` (C1 minus a third of a semitone for 3
        bins per semitone, as the chroma models use) every group of ``bins_per_semitone`` bins is
        centred on a semitone and group ``k // bins_per_semitone`` has pitch class
        ``(k // bins_per_semitone) % 12`` (0 = C), so detuning of up to half a semitone stays in its
        group.
    n_octaves : int > 0
        Octaves per channel.
    bins_per_semitone : int > 0
        Frequency resolution.
    top_db : float > 0
        Dynamic range kept: the output is ``(dB + top_db) / top_db`` clipped to ``[0, 1]``, where
        ``dB`` is the magnitude in decibels relative to the loudest bin of the whole HCQT (so the
        result does not depend on the gain of the recording).

    Returns
    -------
    H : np.ndarray, shape (n_harmonics, n_octaves * 12 * bins_per_semitone, n_frames), float32
        Log-magnitude HCQT in ``[0, 1]``; ``n_frames = 1 + floor(len(y) / sr * feature_rate)``.
    feature_rate : float
        Frame rate of ``H`` in Hz (the requested one).

    Raises
    ------
    ParameterError
        If a parameter is out of range or the highest harmonic is above the Nyquist frequency.
    InputError
        If ``y`` is not a non-empty 1-d finite signal.
    """
    import librosa

    y = _check_hcqt_input(y, sr, feature_rate, harmonics, (n_octaves, bins_per_semitone, top_db))
    bpo = 12 * bins_per_semitone
    n_bins = n_octaves * bpo
    h_min = min(harmonics)
    fmin = float(librosa.midi_to_hz(fmin_midi))
    shifts = [bpo * math.log2(h / h_min) for h in harmonics]
    n_wide = int(math.floor(max(shifts))) + n_bins + 1
    f_top = fmin * h_min * 2.0 ** ((n_wide - 1) / bpo)
    if f_top >= sr / 2:
        raise ParameterError(
            f"harmonics={harmonics!r}: highest CQT bin {f_top:.0f} Hz is above the Nyquist frequency "
            f"{sr / 2:.0f} Hz (lower fmin_midi / n_octaves or raise sr)"
        )
    C, hop = _wide_cqt(y, sr=sr, feature_rate=feature_rate, fmin=fmin * h_min, n_bins=n_wide, bins_per_octave=bpo)
    H = _stack_harmonics(C, shifts, n_bins)
    ref = float(H.max())
    if ref <= 0:
        return np.zeros(H.shape, dtype=np.float32), float(feature_rate)
    out = _unit_db(H, ref=ref, top_db=top_db)
    logger.debug("hcqt: %d samples -> %s at %.3f Hz (cqt hop %d)", len(y), out.shape, feature_rate, hop)
    return out, float(feature_rate)


def _check_hcqt_input(y, sr, feature_rate, harmonics, sizes: tuple) -> np.ndarray:
    """Validate the parameters and the signal of :func:`hcqt` (``sizes``: n_octaves, bins_per_semitone,
    top_db); returns ``y`` as an array."""
    check_positive("sr", sr)
    check_positive("feature_rate", feature_rate)
    for name, value in zip(("n_octaves", "bins_per_semitone", "top_db"), sizes, strict=True):
        check_positive(name, value)
    if not harmonics or min(harmonics) <= 0:
        raise ParameterError(f"harmonics={harmonics!r} must be a non-empty tuple of positive numbers")
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise InputError(f"audio: expected a non-empty mono signal, got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise InputError("audio: signal contains non-finite values")
    return y


def _wide_cqt(y, *, sr: int, feature_rate: float, fmin: float, n_bins: int, bins_per_octave: int):
    """Magnitude CQT from ``fmin`` (Hz) over ``n_bins`` bins at ``feature_rate`` (float32); returns
    ``(C, hop)`` with ``C`` of shape (n_bins, 1 + floor(duration * feature_rate))."""
    import librosa

    hop = 2 ** int(math.floor(math.log2(sr / feature_rate)))
    hop = int(min(max(hop, 256), 8192))
    rate_in = sr / hop
    with warnings.catch_warnings(), _memoized_cqt_filters():
        # short signals: librosa warns that the lowest octaves' FFT is longer than the signal
        warnings.filterwarnings("ignore", message="n_fft=.* is too large", category=UserWarning)
        C = np.abs(
            librosa.cqt(
                y.astype(np.float32, copy=False),
                sr=sr,
                hop_length=hop,
                fmin=fmin,
                n_bins=n_bins,
                bins_per_octave=bins_per_octave,
                tuning=0.0,
            )
        )
    n_out = 1 + int(math.floor(len(y) / sr * feature_rate + 1e-9))
    if abs(rate_in - feature_rate) > 1e-9 * feature_rate or C.shape[1] != n_out:
        C = _resample_frames(C, rate_in=rate_in, rate_out=feature_rate, n_out=n_out)
    return np.asarray(C, dtype=np.float32), hop


def _stack_harmonics(C: np.ndarray, shifts: list[float], n_bins: int) -> np.ndarray:
    """One channel per harmonic: ``n_bins`` rows of ``C`` from (fractional, linearly interpolated) row
    ``shift``; shape (len(shifts), n_bins, n_frames), float32."""
    H = np.empty((len(shifts), n_bins, C.shape[1]), dtype=np.float32)
    for i, s in enumerate(shifts):
        lo = int(math.floor(s))
        frac = np.float32(s - lo)
        if frac < 1e-6:
            H[i] = C[lo : lo + n_bins]
        else:
            np.multiply(C[lo : lo + n_bins], 1 - frac, out=H[i])
            H[i] += frac * C[lo + 1 : lo + 1 + n_bins]
    return H


def _unit_db(H: np.ndarray, *, ref: float, top_db: float) -> np.ndarray:
    """``(20 log10(max(H, floor) / ref) + top_db) / top_db`` clipped to [0, 1], in place, float32."""
    np.maximum(H, np.float32(ref * 10.0 ** (-top_db / 20.0)), out=H)
    np.log10(H, out=H)
    H -= np.float32(math.log10(ref) - top_db / 20.0)
    H *= np.float32(20.0 / top_db)
    np.minimum(H, 1.0, out=H)
    np.maximum(H, 0.0, out=H)
    return H
