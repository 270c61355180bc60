"""Training versions for the shingle embedding from real recordings: augmented copies of their passages.

The rendered corpus gives the embedding versions of the same work played by synthesisers; real queries
differ from the recordings they come from in other ways (a pitch-shifting vocoder, a time stretch, a
faster playback, noise, a telephone channel, a lossy codec). Here every passage of ``seconds`` seconds
of a recording becomes a *work* of :mod:`mirsearch.training.embedding` whose *versions* are the clean
passage and ``versions`` augmented copies, each with a chain of one to ``max_chain`` of:

``pitch``
    phase-vocoder pitch shift by +-1 or +-2 semitones (librosa), tempo unchanged;
``stretch``
    phase-vocoder time stretch by a factor in ``stretch`` (pitch unchanged);
``speed``
    resampling (soxr): tempo and pitch change together by a factor in ``speed``;
``noise``
    white or pink noise at a signal-to-noise ratio in ``snr_db``;
``band``
    a band-pass with a random low (100-500 Hz) and high (2.5-5 kHz) edge, sometimes through 8 kHz;
``codec``
    MP3 at a random low bit rate (libsndfile's encoder).

Each copy's tempo map (passage seconds -> copy seconds) and transposition (semitones, rounded) are
known, so :class:`~mirsearch.training.embedding.PairSampler` pairs a shingle of one version with the
shingle of another covering the same music, exactly as for renderings (tempo grid, key roll).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_path
from mirsearch.errors import ParameterError
from mirsearch.training.embedding import TrainingVersion

log = logging.getLogger(__name__)

AUGMENTATIONS = ("pitch", "stretch", "speed", "noise", "band", "codec")


@dataclass(frozen=True)
class AugmentOptions:
    """How passages are cut from recordings and augmented (see the module docstring).

    Attributes
    ----------
    seconds : float > 0
        Passage length.
    passages : int >= 1
        Passages per recording at most (evenly spread, skipping the first and last 5 s).
    versions : int >= 1
        Augmented copies per passage (besides the clean one).
    max_chain : int >= 1
        Augmentations chained in one copy at most.
    kinds : tuple of str
        Augmentations drawn from (:data:`AUGMENTATIONS`).
    stretch, speed : (float, float)
        Ranges of the time-stretch and playback-speed factors.
    snr_db : (float, float)
        Range of the noise's signal-to-noise ratio.
    seed : int
    """

    seconds: float = 40.0
    passages: int = 3
    versions: int = 3
    max_chain: int = 2
    kinds: tuple[str, ...] = AUGMENTATIONS
    stretch: tuple[float, float] = (0.85, 1.18)
    speed: tuple[float, float] = (0.92, 1.08)
    snr_db: tuple[float, float] = (5.0, 20.0)
    seed: int = 0

    def __post_init__(self) -> None:
        if unknown := [k for k in self.kinds if k not in AUGMENTATIONS]:
            raise ParameterError(f"kinds: unknown augmentations {unknown} (known: {', '.join(AUGMENTATIONS)})")
        if not self.seconds > 0 or self.passages < 1 or self.versions < 1 or self.max_chain < 1:
            raise ParameterError("seconds > 0, passages, versions and max_chain >= 1 required")


def augment(y: np.ndarray, *, sr: int, kind: str, rng: np.random.Generator, options: AugmentOptions = AugmentOptions()):
    """One augmentation of a mono signal.

    Returns
    -------
    z : np.ndarray, float32
    tempo : float
        ``z`` plays this many times as fast as ``y``.
    semitones : float
        ``z`` sounds this many semitones above ``y``.
    """
    import librosa
    import scipy.signal
    import soxr

    if kind == "pitch":
        steps = int(rng.choice([-2, -1, 1, 2]))
        return librosa.effects.pitch_shift(y, sr=sr, n_steps=steps), 1.0, float(steps)
    if kind == "stretch":
        rate = float(np.exp(rng.uniform(*np.log(options.stretch))))
        return librosa.effects.time_stretch(y, rate=rate), rate, 0.0
    if kind == "speed":
        speed = float(np.exp(rng.uniform(*np.log(options.speed))))
        return soxr.resample(y, sr, sr / speed), speed, 12 * math.log2(speed)
    if kind == "noise":
        white = rng.normal(0, 1, y.shape)
        noise = white if rng.random() < 0.5 else scipy.signal.lfilter([1.0], [1.0, -0.97], white)  # pinkish
        snr = rng.uniform(*options.snr_db)
        gain = np.sqrt(np.mean(y**2) / max(float(np.mean(noise**2)), 1e-12) / 10 ** (snr / 10))
        return y + gain * noise, 1.0, 0.0
    if kind == "band":
        lo, hi = rng.uniform(100, 500), rng.uniform(2500, 5000)
        z = scipy.signal.sosfilt(scipy.signal.butter(4, [lo, hi], btype="bandpass", fs=sr, output="sos"), y)
        if rng.random() < 0.5:
            z = soxr.resample(soxr.resample(z, sr, 8000), 8000, sr)
        return z, 1.0, 0.0
    if kind == "codec":
        return _mp3(y, sr=sr, quality=float(rng.uniform(0.5, 1.0))), 1.0, 0.0
    raise ParameterError(f"augmentation {kind!r} unknown (known: {', '.join(AUGMENTATIONS)})")


def _mp3(y: np.ndarray, *, sr: int, quality: float) -> np.ndarray:
    """``y`` through an MP3 encoder and decoder (``quality`` 0 = best .. 1 = lowest bit rate)."""
    import soundfile as sf

    buf = io.BytesIO()
    peak = max(float(np.max(np.abs(y))), 1e-9)
    sf.write(buf, y / peak * 0.9, sr, format="MP3", compression_level=quality)
    buf.seek(0)
    z, _ = sf.read(buf, dtype="float32")
    z = z[: len(y)] if len(z) >= len(y) else np.pad(z, (0, len(y) - len(z)))
    return z * (peak / 0.9)


def passage_versions(
    y: np.ndarray, *, sr: int, work: str, chroma_of, rng: np.random.Generator, options: AugmentOptions
) -> list[TrainingVersion]:
    """The clean passage and ``options.versions`` augmented copies as training versions of one work.

    ``chroma_of(signal) -> (12, n)`` gives the 10 Hz chroma of the recipe the index stores.
    """
    seconds = y.size / sr
    out = [TrainingVersion(work, f"{work}/clean", chroma_of(y), [0.0, seconds], [0.0, seconds])]
    for v in range(options.versions):
        z, tempo, semitones = np.asarray(y, np.float64), 1.0, 0.0
        n_chain = int(rng.integers(1, options.max_chain + 1))
        names = [str(k) for k in rng.choice(options.kinds, size=min(n_chain, len(options.kinds)), replace=False)]
        for kind in names:
            z, t, s = augment(z, sr=sr, kind=kind, rng=rng, options=options)
            tempo, semitones = tempo * t, semitones + s
        name = f"{work}/{v}:{'+'.join(names)}"
        out.append(
            TrainingVersion(work, name, chroma_of(np.asarray(z, np.float32)), [0.0, seconds], [0.0, seconds / tempo],
                            transposition=int(round(semitones)))
        )  # fmt: skip
    return out


def recording_versions(
    y: np.ndarray, *, sr: int, name: str, index: int, chroma_of, options: AugmentOptions = AugmentOptions()
) -> list[TrainingVersion]:
    """Training versions of the passages of one recording (mono signal ``y``).

    Passages are evenly spread over the recording (``options.passages`` at most, not overlapping, 5 s
    from either end); the random draws depend on ``options.seed`` and ``index`` only.
    """
    out: list[TrainingVersion] = []
    n = int(options.seconds * sr)
    usable = y.size - 10 * sr
    count = min(options.passages, usable // n) if usable > 0 else 0
    if count < 1:
        log.info("%s: shorter than one passage of %g s, skipped", name, options.seconds)
        return out
    rng = np.random.default_rng([options.seed, index])
    starts = 5 * sr + np.linspace(0, usable - n, count).astype(np.int64)
    for j, s in enumerate(starts):
        out += passage_versions(y[s : s + n], sr=sr, work=f"{name}#{j}", chroma_of=chroma_of, rng=rng, options=options)
    return out


def _save_versions(path: Path, versions: list[TrainingVersion]) -> None:
    meta = np.array([[v.work, v.name, str(v.transposition)] for v in versions]).reshape(-1, 3)
    arrays = {f"c{i}": v.chroma for i, v in enumerate(versions)}
    arrays.update({f"t{i}": np.stack([v.score_time, v.audio_time]) for i, v in enumerate(versions)})
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, meta=meta, **arrays)


def _load_versions(path: Path) -> list[TrainingVersion]:
    with np.load(path, allow_pickle=False) as z:
        return [
            TrainingVersion(str(w), str(n), z[f"c{i}"], z[f"t{i}"][0], z[f"t{i}"][1], transposition=int(t))
            for i, (w, n, t) in enumerate(z["meta"])
        ]


def augmented_versions(
    paths: Sequence, *, cache, options: AugmentOptions = AugmentOptions(), progress: bool = False
) -> list[TrainingVersion]:
    """Training versions of the passages of audio files, augmented (cached per file: resumable).

    Parameters
    ----------
    paths : sequence of path-like
        Audio files (each one's passages are works of their own).
    cache : path-like
        Folder of the per-file results (``<cache>/<options id>/<index>-<stem>.npz``); a file already
        there is loaded, not recomputed.
    options : AugmentOptions
    progress : bool

    Returns
    -------
    list of TrainingVersion
        The stored chroma recipe (:func:`mirsearch.features.registry.feature_config` ``"chroma"``, 10 Hz).
    """
    from mirsearch.audio import SR, load_audio
    from mirsearch.features.matching_chroma import extract_chroma
    from mirsearch.features.registry import feature_config

    config = feature_config("chroma", feature_rate=10.0)

    def chroma_of(y):
        return np.asarray(extract_chroma(y, sr=SR, config=config)[0], np.float32)

    key = hashlib.sha1(json.dumps([asdict(options), config], sort_keys=True, default=str).encode()).hexdigest()[:12]
    folder = Path(cache) / key
    folder.mkdir(parents=True, exist_ok=True)
    out: list[TrainingVersion] = []
    for i, p in enumerate(paths):
        target = folder / f"{i:04d}-{Path(p).stem}.npz"
        if not target.is_file():
            y, _ = load_audio(p, sr=SR)
            found = recording_versions(
                y, sr=SR, name=f"real:{Path(p).stem}", index=i, chroma_of=chroma_of, options=options
            )
            _save_versions(target, found)
            if progress:
                log.info("augmented %d / %d: %s", i + 1, len(paths), Path(p).name)
        out += _load_versions(target)
    return out


__all__ = ["AUGMENTATIONS", "AugmentOptions", "augment", "augmented_versions", "passage_versions", "recording_versions"]
