"""Audio-to-audio synchronisation, and what score-to-audio alignment shares with it.

``align_audio(a, b)`` returns a :class:`TimeMap`: for every time in ``a`` the musically corresponding
time in ``b`` (the *interpretation switcher* of Müller's tutorial). ``align_score(score, audio)`` returns
a :class:`ScoreAlignment`: the time map from score time to audio time plus each note's time in the audio.

Pipeline: chroma + DLNCO onset features at 50 Hz (:mod:`mirsearch.features.onset`; for a score they are
synthesised from the notes) -> multiresolution DTW (:func:`mirsearch.matching.sync.sync_dtw`: full DTW at
1 Hz, banded DTW at 5 Hz and 50 Hz, onsets at the finest level) -> a strictly monotonic time map. Between
two recordings the features follow :data:`AUDIO_RECIPE`, with a sharper chroma at the finest level, and a last
50 Hz pass runs along the smoothed path (:data:`AUDIO_WARP_SECONDS`) so that the path follows the local tempo,
and the time map is moved by the difference of the two recordings' attack times (:data:`AUDIO_ATTACK_SLOPE`).

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
  For audio-audio pairs a second null must agree before a pair is refused: the path cost divided by the
  mean cosine distance of all frame pairs (``SyncResult.mean_cost_ratio`` > :data:`MAX_MEAN_COST_RATIO`).
  Music whose reversal is as plausible as itself (a chord exercise cycling I-IV-V, static harmony) has a
  high reversal ratio although its path is far cheaper than chance. On 29 hard rendered same-piece pairs
  outside the chorales (``benchmarks/bench_sync_hard.py``: folk tunes, madrigals, chord exercises, melody-only
  parts, 27 transposed) the mean ratio of same pieces is at most 0.42 and that of different pieces at least
  0.51; with both rules no same-piece pair is refused there (one with the reversal alone), and on the
  validation chorales 2 of 30 instead of 4, with no additional different-piece pair passing on either set.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mirsearch.errors import InputError, ParameterError, check_positive
from mirsearch.features.onset import SyncFeatures, SyncRecipe
from mirsearch.sync.timemap import TimeMap

log = logging.getLogger(__name__)

MAX_COST_RATIO = 0.75  # mismatch threshold on ``SyncResult.cost_ratio`` (see the module docstring)
#: second audio-audio threshold, on ``SyncResult.mean_cost_ratio`` (path cost / the pair's all-pairs mean cost):
#: a pair is refused only when it exceeds both (see the module docstring)
MAX_MEAN_COST_RATIO = 0.5
MAX_COST_RATIO_SCORE = 0.55  # the same for score-to-audio alignment (see the module docstring)
MAX_TEMPO_RATIO = 3.0  # largest accepted duration ratio between two versions
#: log compression ``log(1 + gamma * P)`` of the band energies the audio-audio onset features (DLNCO) start from,
#: after the loud frames are scaled to 1: 1e6 puts the floor 60 dB below them, so an onset is a rise in dB
#: wherever it starts, and a soft attack (choir, strings, brass) counts from its first rise like a plucked
#: note. Chosen on the validation pairs of ``bench_sync_hard.py --set validation`` (session 10: mean error
#: 50.1 ms at 1e3, 43.4 at 1e4, 40.4 at 1e5, 39.2 at 1e6).
AUDIO_ONSET_GAMMA = 1e6


#: feature recipe of audio-audio synchronisation (:class:`~mirsearch.features.onset.SyncRecipe`), chosen on the
#: validation pairs of ``bench_sync_hard.py --set validation`` (session 11, mean onset error 45.5 -> 31.4 ms; the
#: validation chorales of the benchmark dataset 110 -> 92 ms): onset strength as the rise of the log energy over
#: 40 ms (two frames) without peak picking, so a soft attack gives a broad rise instead of one weak impulse
#: somewhere in it; no onset lead (it cancels between two recordings, and shifting the onsets against the chroma
#: cost 3.5 ms); a 0.1 s decay; and a sharp chroma (2048-point window, ``log(1 + 100 P)``) at the finest level,
#: where the 4096-point chroma blurs note changes. The coarse levels, the transposition search and the mismatch
#: criterion keep the 4096-point chroma (``gamma`` 10) they were calibrated on. Score-to-audio alignment keeps
#: the defaults of :class:`~mirsearch.features.onset.SyncRecipe`.
#: width (s) of the smoothing of the finest path that the tempo-following pass of audio-audio alignment resamples
#: both recordings along (``SyncOptions.warp_seconds`` of :func:`~mirsearch.matching.sync.sync_dtw`): the DTW's
#: diagonal then follows the local tempo instead of slope 1, so held chords and soft attacks no longer give a
#: staircase of slope-1 runs and jumps that lands onsets hundreds of ms off. Chosen on the validation pairs of
#: ``bench_sync_hard.py --set validation`` (session 11: mean onset error 31.4 -> 26.6 ms at 2 s, 26.3 at 1 s,
#: 26.6 at 1.5 s; validation chorales 92.3 -> 76.0 / 83.1 / 77.1 ms). Score-to-audio alignment does not use it.
AUDIO_WARP_SECONDS = 2.0
#: the path of two recordings lands ``AUDIO_ATTACK_SLOPE * (attack_b - attack_a)`` seconds late in ``b``, where
#: ``attack`` is how long each recording's onsets take to rise (:func:`~mirsearch.features.onset.attack_time`):
#: a soft attack (strings, flutes, organ) reaches the onset features later after the true onset than a plucked or
#: struck one, and the time map is moved by that much. Fitted (one slope, no intercept, so that aligning b to a
#: gives the inverse map) on the validation pairs of ``bench_sync_hard.py --set validation`` (session 11, after the
#: tempo-following pass: mean onset error 26.6 -> 20.6 ms leaving each pair out of the fit in turn; on the
#: validation chorales, not fitted there, 76.0 -> 72.4 ms, median 23.1 -> 19.0).
AUDIO_ATTACK_SLOPE = 0.22

AUDIO_RECIPE = SyncRecipe(
    gammas=(10.0, AUDIO_ONSET_GAMMA, 100.0), onset_lead=0.0, onset_lag=0.04, peaks_only=False, decay_seconds=0.1
)


@dataclass(frozen=True)
class AlignOptions:
    """Options shared by :func:`align_audio` and :func:`~mirsearch.sync.score.align_score`.

    Attributes
    ----------
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
    max_tempo_ratio : float or None
        Largest accepted duration ratio; None disables the check.
    """

    feature_rate: float = 50.0
    transpose: bool = True
    onsets: bool = True
    w_onset: float = 2.0
    radius_seconds: float = 1.0
    max_tempo_ratio: float | None = MAX_TEMPO_RATIO


def resolve_options(options: AlignOptions | None, overrides: dict) -> AlignOptions:
    """``options`` (default :class:`AlignOptions`) with the fields in ``overrides`` replaced.

    Raises
    ------
    TypeError
        For a name in ``overrides`` that is no field of :class:`AlignOptions` (as for any unknown keyword).
    """
    opts = dataclasses.replace(options or AlignOptions(), **overrides)
    check_positive("feature_rate", opts.feature_rate)
    return opts


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


def _check_match(result, name_a: str, name_b: str, max_cost_ratio: float | None, max_mean_ratio=None) -> None:
    """Refuse a pair whose path is no cheaper than the reversed-recording null (``cost_ratio``) *and*, when
    ``max_mean_ratio`` is given, no cheaper than the pair's all-pairs null (``mean_cost_ratio``)."""
    if max_cost_ratio is None or result.cost_ratio <= max_cost_ratio:
        return
    if max_mean_ratio is not None and result.mean_cost_ratio <= max_mean_ratio:
        return  # the reversal fits as well (static or cyclic harmony), but the path is far cheaper than chance
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
TRIM_THRESHOLD_DB = -60.0  # low enough that a soft start of the music is never cut (only near-digital silence is)


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


def synchronise(
    Ca, Cb, Da, Db, *, rate: float, options: AlignOptions, names: tuple[str, str], max_cost_ratio, max_mean_ratio=None,
    sharp: tuple[np.ndarray, np.ndarray] | None = None, warp_seconds: float | None = None,
):  # fmt: skip
    """Multiresolution DTW of two feature sequences and the mismatch check (shared by both alignments).

    Parameters
    ----------
    Ca, Cb : np.ndarray, shape (12, N) and (12, M)
        Chroma at ``rate``.
    Da, Db : np.ndarray
        DLNCO onset features at ``rate`` (used when ``options.onsets``).
    rate : float
        Frame rate (Hz).
    options : AlignOptions
    names : (str, str)
        Labels of the two inputs for messages.
    max_cost_ratio : float or None
        Mismatch threshold; None disables the check.
    max_mean_ratio : float or None
        Second mismatch threshold, on ``SyncResult.mean_cost_ratio``: a pair is refused only when both are
        exceeded (None: ``max_cost_ratio`` alone decides).
    sharp : (np.ndarray, np.ndarray), optional
        Chroma of the finest level in place of ``Ca``, ``Cb`` (:attr:`SyncFeatures.sharp`).
    warp_seconds : float, optional
        A tempo-following pass after the finest level (``SyncOptions.warp_seconds``; :data:`AUDIO_WARP_SECONDS`
        between two recordings); default none.

    Returns
    -------
    mirsearch.matching.sync.SyncResult
    """
    from mirsearch.matching.sync import sync_dtw

    result = sync_dtw(
        Ca,
        Cb,
        feature_rate=rate,
        U=Da if options.onsets else None,
        V=Db if options.onsets else None,
        fine=sharp,
        w_onset=options.w_onset,
        radius_seconds=options.radius_seconds,
        shifts=range(12) if options.transpose else None,
        warp_seconds=warp_seconds,
    )
    _check_match(result, names[0], names[1], max_cost_ratio, max_mean_ratio)
    return result


def align_audio(
    a,
    b,
    *,
    sr: int | None = None,
    options: AlignOptions | None = None,
    max_cost_ratio: float | None = MAX_COST_RATIO,
    trim_silence: bool = False,
    return_details: bool = False,
    **overrides,
):
    """Align two recordings of the same piece.

    Parameters
    ----------
    a, b : path, (y, sr) tuple or np.ndarray
        The two recordings; arrays need ``sr``.
    sr : int, optional
        Sample rate of array inputs.
    options : AlignOptions, optional
        Features and DTW settings (default :class:`AlignOptions`).
    max_cost_ratio : float or None
        Mismatch threshold (module docstring); None disables the check.
    trim_silence : bool
        Align only the parts between leading and trailing near-silence (60 dB below the loud frames, plus
        a short margin) and map that silence of one recording linearly onto the other's (so silence never
        maps into music, and the last notes are not pulled into the other's trailing silence). Off by
        default: on the benchmark pairs (short lead-ins) it raised the mean error (docs/benchmarks.md);
        use it for recordings with seconds of silence at either end.
    return_details : bool
        Also return :class:`AlignmentDetails` (features and the DTW result).
    **overrides
        Fields of :class:`AlignOptions` (``feature_rate``, ``transpose``, ``onsets``, ``w_onset``,
        ``radius_seconds``, ``max_tempo_ratio``) replacing those of ``options``.

    Returns
    -------
    TimeMap
        From ``a`` time to ``b`` time; ``meta`` holds ``transposition`` (semitones ``b`` is above ``a``),
        ``cost_ratio``, ``feature_rate``, the per-level band sizes, ``active_a`` / ``active_b`` (the
        aligned spans in seconds) and ``attack_shift`` (s the path was moved earlier in ``b`` for the two
        recordings' attack times, :data:`AUDIO_ATTACK_SLOPE`).
    (TimeMap, AlignmentDetails)
        With ``return_details=True``.

    Raises
    ------
    InputError
        Unreadable, silent or too short input, durations too different, or mismatched pieces.
    """
    opts = resolve_options(options, overrides)
    if not trim_silence and all(isinstance(x, (str, os.PathLike)) for x in (a, b)):
        # files: decoded block by block, one after the other (memory flat in their length)
        (name_a, dur_a), (name_b, dur_b) = _header_duration(a), _header_duration(b)
        if dur_a and dur_b:  # known from the headers: refuse before decoding
            _check_durations(name_a, dur_a, name_b, dur_b, opts.max_tempo_ratio)
        fa, fb = (file_sync_features(x, opts) for x in (a, b))
        spans = ((0.0, fa.duration), (0.0, fb.duration))
    else:
        fa, fb, spans = _signal_features(a, b, sr, opts, trim_silence)
    (Fa, rate, dur_a, name_a), (Fb, _, dur_b, name_b) = fa, fb
    _check_durations(name_a, dur_a, name_b, dur_b, opts.max_tempo_ratio)
    result = synchronise(
        Fa.chroma, Fb.chroma, Fa.dlnco, Fb.dlnco, rate=rate, options=opts, names=(name_a, name_b),
        max_cost_ratio=max_cost_ratio, max_mean_ratio=MAX_MEAN_COST_RATIO, sharp=(Fa.sharp, Fb.sharp),
        warp_seconds=AUDIO_WARP_SECONDS,
    )  # fmt: skip
    meta = sync_meta(result)
    meta["active_a"] = [round(spans[0][0], 3), round(spans[0][1], 3)]
    meta["active_b"] = [round(spans[1][0], 3), round(spans[1][1], 3)]
    # path frames of the trimmed signals -> frames of the whole recordings (fractional offsets are fine)
    path = np.asarray(result.path, dtype=np.float64) + np.array([spans[0][0] * rate, spans[1][0] * rate])
    shift = AUDIO_ATTACK_SLOPE * (Fb.attack - Fa.attack)  # seconds by which the path is late in b
    path[:, 1] = np.clip(path[:, 1] - shift * rate, path[0, 1], path[-1, 1])
    meta["attack_shift"] = round(float(shift), 4)
    tmap = path_time_map(path, rate=rate, durations=(dur_a, dur_b), names=(name_a, name_b), meta=meta)
    log.info("aligned %s (%.1f s) and %s (%.1f s): %d points", name_a, dur_a, name_b, dur_b, len(tmap))
    if return_details:
        return tmap, AlignmentDetails(Fa.chroma, Fb.chroma, rate, result)
    return tmap


class AudioSyncFeatures(NamedTuple):
    """Sync features of one recording (:data:`AUDIO_RECIPE`) with its frame rate (Hz), duration (s) and name."""

    features: SyncFeatures
    feature_rate: float
    duration: float
    name: str


def signal_sync_features(y: np.ndarray, *, sr: int, feature_rate: float, name: str = "audio") -> SyncFeatures:
    """:data:`AUDIO_RECIPE` features of a whole mono signal (tuning estimated from it), the reference that
    :func:`file_sync_features` reproduces block by block."""
    from mirsearch.features.chroma import estimate_tuning
    from mirsearch.features.onset import hop_for_rate, sync_band_energies, sync_features_from_bands

    hop, rate = hop_for_rate(sr, feature_rate)
    tuning = estimate_tuning(y, sr=sr)
    bands = sync_band_energies(y, sr=sr, hop_length=hop, tuning=tuning)
    F = sync_features_from_bands(*bands, n_frames=int(np.ceil(y.size / hop)), feature_rate=rate, recipe=AUDIO_RECIPE)
    log.debug("%s: sync features %d frames at %.1f Hz (tuning %.2f)", name, F.chroma.shape[1], rate, tuning)
    return F


def _signal_features(a, b, sr, opts: AlignOptions, trim_silence: bool):
    """Sync features of two inputs held in memory whole (arrays, or files when silence is trimmed):
    an :class:`AudioSyncFeatures` of each and the aligned spans in seconds."""
    from mirsearch.audio import SR
    from mirsearch.features.onset import hop_for_rate

    out, spans = [], []
    for x, label in ((a, "a"), (b, "b")):
        y, r, name = _as_signal(x, sr=sr, name=label, target_sr=SR)
        i0, i1 = _trimmed(y, r) if trim_silence else (0, y.size)
        F = signal_sync_features(y[i0:i1], sr=r, feature_rate=opts.feature_rate, name=name)
        out.append(AudioSyncFeatures(F, hop_for_rate(r, opts.feature_rate)[1], y.size / r, name))
        spans.append((i0 / r, i1 / r))
        del y
    return out[0], out[1], tuple(spans)


def _header_duration(path) -> tuple[str, float]:
    """A file's name and its duration from the header (0 when unknown: the check after decoding decides)."""
    from mirsearch.audio import probe_audio

    info = probe_audio(path)
    return Path(path).name, info.duration or 0.0


#: an audio file is decoded and analysed in windows of this length (s) ...
WINDOW_SECONDS = 120
#: ... with this much context on either side (s; more than half the longest FFT, 4096 samples)
CONTEXT_SECONDS = 1
#: tuning is estimated, as for a whole signal, on this many evenly spaced excerpts (:func:`estimate_tuning`)
TUNING_EXCERPTS = 8
#: seconds of audio in those excerpts together
TUNING_SECONDS = 120.0


def _stream_tuning(path, n_expected: int | None) -> float:
    """The tuning of a long file from the excerpts :func:`~mirsearch.features.chroma.estimate_tuning` would take
    of the whole signal (positions from the expected length), gathered while the file is decoded once."""
    from mirsearch.audio import SR, stream_audio
    from mirsearch.features.chroma import estimate_tuning

    n_take = int(TUNING_SECONDS * SR)
    chunk = n_take // TUNING_EXCERPTS
    starts = np.linspace(0, max(0, (n_expected or n_take) - chunk), TUNING_EXCERPTS).astype(np.int64)
    wanted = [np.zeros(chunk, np.float32) for _ in starts]
    n = 0
    for block in stream_audio(path, sr=SR):
        for piece, s0 in zip(wanted, starts, strict=True):  # the overlap of this block with each excerpt
            lo, hi = max(s0, n), min(s0 + chunk, n + block.size)
            if lo < hi:
                piece[lo - s0 : hi - s0] = block[lo - n : hi - n]
        n += block.size
    return estimate_tuning(np.concatenate(wanted), sr=SR, max_seconds=TUNING_SECONDS)


def file_sync_features(path, opts: AlignOptions, *, recipe: SyncRecipe = AUDIO_RECIPE) -> AudioSyncFeatures:
    """Sync features of an audio file decoded block by block (windows of :data:`WINDOW_SECONDS` with context).

    A file that fits in one window is analysed whole, exactly as :func:`signal_sync_features` on
    :func:`~mirsearch.audio.load_audio`; a longer one is decoded twice (tuning first, from the same excerpts
    as for the whole signal), and its band energies are computed window by window. Peak memory: one window and
    the band energies (2 x 88 float32 per frame), not the signal. ``recipe``: how the band energies become
    features (:data:`AUDIO_RECIPE`).

    Returns
    -------
    AudioSyncFeatures
        Chroma, DLNCO and sharp chroma (each ``(12, n_frames)`` float32), frame rate, duration (s) and name.
    """
    from mirsearch.audio import SR, probe_audio, stream_audio
    from mirsearch.collection.extract import windows
    from mirsearch.features.chroma import estimate_tuning
    from mirsearch.features.onset import hop_for_rate, sync_band_energies, sync_features_from_bands

    name = Path(path).name
    hop, rate = hop_for_rate(SR, opts.feature_rate)
    tuning, parts, n = None, [], 0
    blocks = stream_audio(path, sr=SR)
    for w0, y, lo, hi, last in windows(blocks, sr=SR, block=WINDOW_SECONDS, overlap=CONTEXT_SECONDS):
        if tuning is None:
            info = probe_audio(path)
            n_expected = None if info.frames is None else int(round(info.frames * SR / info.samplerate))
            tuning = estimate_tuning(y, sr=SR) if last and w0 == 0 else _stream_tuning(path, n_expected)
        bands = sync_band_energies(y, sr=SR, hop_length=hop, tuning=tuning)
        j0, j1 = (lo - w0) // hop, None if last else (hi - w0) // hop  # windows start on whole seconds
        parts.append([None if X is None else X[:, j0:j1] for X in bands])
        n = w0 + y.size
        del y, bands
    P, Po = (None if parts[0][i] is None else np.concatenate([p[i] for p in parts], axis=1) for i in (0, 1))
    del parts
    F = sync_features_from_bands(P, Po, n_frames=int(np.ceil(n / hop)), feature_rate=rate, recipe=recipe)
    log.debug("%s: sync features %d frames at %.1f Hz (tuning %.2f, streamed)", name, F.chroma.shape[1], rate, tuning)
    return AudioSyncFeatures(F, float(rate), n / SR, name)


def path_time_map(path, *, rate: float, durations: tuple[float, float], names: tuple[str, str], meta: dict) -> TimeMap:
    """:meth:`TimeMap.from_path` of a warping path in frames at ``rate`` Hz, with the inputs' durations (s)
    and names."""
    return TimeMap.from_path(
        path,
        feature_rate=rate,
        duration_a=durations[0],
        duration_b=durations[1],
        name_a=names[0],
        name_b=names[1],
        meta=meta,
    )


def sync_meta(result) -> dict:
    """JSON-ready summary of a :class:`~mirsearch.matching.sync.SyncResult` for ``TimeMap.meta``."""
    # np.roll(Y, k) maps pitch class p of Y to p + k: Y transposed up by k matches X, so Y is k below X
    return {
        "transposition": int((-result.transposition) % 12),
        "cost_ratio": round(float(result.cost_ratio), 4),
        "mean_cost_ratio": round(float(result.mean_cost_ratio), 4),
        "feature_rate": float(result.feature_rate),
        "levels": [
            {"rate": round(lv["rate"], 3), "shape": list(lv["shape"]), "cells": int(lv["cells"])}
            for lv in result.levels
        ],
    }
