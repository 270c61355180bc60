"""Build the speech/music segmentation data (training shards, validation and test files) from real recordings.

    .venv/bin/python benchmarks/build_segment_data.py            # everything, resumable
    .venv/bin/python benchmarks/build_segment_data.py --stage cache

Everything goes under ``data/segment/`` (git-ignored):

- ``cache/``: every source decoded once to 16 kHz mono int16 (``speech/<voice>.npy`` with the trimmed prompts
  end to end and ``<voice>.json`` with their spans; ``music/<source>__<track>.npy``; ``noise/<name>.npy``).
- ``train/shard-NNN.npz`` and ``val/shard-NNN.npz``: mixed clips at the analysis rate (8 kHz int16) with frame
  labels at 100 Hz (``speech``, ``music``, uint8).
- ``val_files/<condition>/NNN.wav`` and ``test/<condition>/NNN.wav`` (16 kHz) with ``NNN.json`` labels (speech and
  music intervals in seconds): what the benchmark and the smoothing choice read like a user's files.

Splits (by voice / language and by music track, so test material is never heard in training):
speech train = en Allison, it Carlo, es-co; validation = fr Armelle; test = ru IvrvoiceRU and it Menardi (an unseen
language and an unseen voice). Music: per source, about 15 % of the tracks for test, 15 % for validation, the rest
for training (by a hash of the track name). Noise: generated noise (white, pink, brown, hum, near silence) and
colobot sound effects (split like music).

Labels: speech is present from the first to the last non-silent sample of a run of prompts, gaps under 0.5 s
between prompts count as speech (the convention of segmentation, not of a voice-activity detector); music is present
where its fade gain is above -20 dB. Each shard or file is written atomically, so a killed run resumes where it
stopped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mirsearch._util import atomic_path, atomic_save_npy, atomic_write_text  # noqa: E402

log = logging.getLogger("build_segment_data")

PKGS = ROOT / "data" / "real" / "pkgs"
OUT = ROOT / "data" / "segment"
SR = 16000  # mixing rate of the files
ANALYSIS_SR = 8000  # rate of the training shards (the segmenter analyses 0-4 kHz)
LABEL_RATE = 100  # label frames per second
GAP_FILL = 0.5  # gaps between prompts shorter than this are labelled speech

VOICES = {
    "en_allison": ("asterisk-core-sounds-en-wav", "wav"),
    "it_carlo": ("asterisk-core-sounds-it-wav", "wav"),
    "es_co": ("asterisk-prompt-es-co", "gsm"),
    "fr_armelle": ("asterisk-prompt-fr-armelle", "gsm"),
    "ru_ivr": ("asterisk-core-sounds-ru-wav", "wav"),
    "it_menardi": ("asterisk-prompt-it-menardi-wav", "wav"),
}
SPEECH_SPLIT = {"train": ["en_allison", "it_carlo", "es_co"], "val": ["fr_armelle"], "test": ["ru_ivr", "it_menardi"]}
#: prompt files that are not speech (tones, beeps, silence, animal noises)
NOT_SPEECH = re.compile(r"(/silence/|beep|tt-monkeys\.|2tone|/tone|dial|ring|busy-tone|/music)")
GAME_MUSIC = ("ufoai", "singularity", "colobot")
CONDITIONS = ("clean", "under_music", "short", "telephone", "dialogue")
#: training-only conditions: music alone (hard negatives for the speech output), stored after CONDITIONS in shards
TRAIN_CONDITIONS = ("music_only",)


# ----------------------------------------------------------------------------------------------- cache
def _read(path, sr=SR) -> np.ndarray:
    import soundfile as sf
    import soxr

    data, file_sr = sf.read(path if hasattr(path, "read") else str(path), dtype="float32", always_2d=True)
    y = data.mean(axis=1)
    if file_sr != sr:
        y = soxr.resample(y, file_sr, sr, quality="HQ").astype(np.float32)
    return y


def _to_int16(y: np.ndarray) -> np.ndarray:
    return np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)


def _trim(y: np.ndarray, *, top_db: float = 40.0) -> np.ndarray:
    """Cut leading and trailing frames more than ``top_db`` below the loudest 20 ms frame."""
    hop = SR // 50
    n = len(y) // hop
    if n < 2:
        return y[:0]
    rms = np.sqrt(np.mean(y[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    on = np.flatnonzero(20 * np.log10(rms / rms.max()) > -top_db)
    return y[on[0] * hop : (on[-1] + 1) * hop] if on.size else y[:0]


def cache_speech() -> None:
    for voice, (pkg, ext) in VOICES.items():
        target = OUT / "cache" / "speech" / f"{voice}.npy"
        if target.exists():
            continue
        files = sorted(p for p in (PKGS / pkg).rglob(f"*.{ext}") if not NOT_SPEECH.search(str(p)))
        pieces, spans, pos = [], [], 0
        for path in files:
            y = _trim(_read(path))
            if len(y) < 0.3 * SR:
                continue
            y = y / (np.sqrt(np.mean(y**2)) + 1e-9) * 0.05  # equal prompt levels (-26 dBFS)
            pieces.append(y)
            spans.append([pos, pos + len(y)])
            pos += len(y)
        atomic_write_text(target.with_suffix(".json"), json.dumps({"spans": spans, "files": len(spans)}))
        atomic_save_npy(target, _to_int16(np.concatenate(pieces)))
        log.info("speech %s: %d prompts, %.1f min", voice, len(spans), pos / SR / 60)


def _music_files() -> list[tuple[str, str, list]]:
    """(source, track, [paths or (zip, member)]) of every music track."""
    out = []
    pk3 = PKGS / "ufoai-music/usr/share/games/ufoai/base/0music.pk3"
    with zipfile.ZipFile(pk3) as zf:
        out += [("ufoai", Path(m).stem, [(pk3, m)]) for m in sorted(zf.namelist()) if m.endswith(".ogg")]
    out += [("singularity", p.stem, [p]) for p in sorted((PKGS / "singularity-music").rglob("*.ogg"))]
    out += [("colobot", p.stem, [p]) for p in sorted((PKGS / "colobot-common-sounds").rglob("music/*.ogg"))]
    for song in sorted((PKGS).glob("fretsonfire-songs-*/usr/share/games/fretsonfire/data/songs/*/*/song.ogg")):
        stems = [song] + ([song.parent / "guitar.ogg"] if (song.parent / "guitar.ogg").exists() else [])
        out.append(("fretsonfire", song.parent.name.replace(" ", "_"), stems))
    out += [("moh", p.stem, [p]) for p in sorted((PKGS / "asterisk-moh-opsound-wav").rglob("*.wav"))]
    return out


def _load_stems(stems) -> np.ndarray:
    import io

    ys = []
    for s in stems:
        if isinstance(s, tuple):
            with zipfile.ZipFile(s[0]) as zf:
                ys.append(_read(io.BytesIO(zf.read(s[1]))))
        else:
            ys.append(_read(s))
    n = min(len(y) for y in ys)
    return sum(y[:n] for y in ys)


def cache_music() -> None:
    for source, track, stems in _music_files():
        target = OUT / "cache" / "music" / f"{source}__{track}.npy"
        if target.exists():
            continue
        y = _load_stems(stems)
        y = y / (np.abs(y).max() + 1e-9) * 0.9
        atomic_save_npy(target, _to_int16(y))
        log.info("music %s/%s: %.1f min", source, track, len(y) / SR / 60)


def cache_noise() -> None:
    for p in sorted((PKGS / "colobot-common-sounds").rglob("sounds/*.wav")):
        target = OUT / "cache" / "noise" / f"fx_{p.stem}.npy"
        if target.exists():
            continue
        y = _trim(_read(p), top_db=50)
        if len(y) < 0.2 * SR:
            continue
        atomic_save_npy(target, _to_int16(y / (np.abs(y).max() + 1e-9) * 0.9))


def _bucket(name: str) -> str:
    h = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) / 2**32
    return "test" if h < 0.15 else "val" if h < 0.30 else "train"


def music_split(split: str) -> list[Path]:
    """Music tracks of a split: per source, sorted by hash; at least one test and one validation track."""
    out = []
    files = sorted((OUT / "cache" / "music").glob("*.npy"))
    for source in sorted({f.name.split("__")[0] for f in files}):
        tracks = sorted((f for f in files if f.name.startswith(source + "__")), key=lambda f: _hash(f.stem))
        n = len(tracks)
        n_test = max(1, round(0.15 * n))
        n_val = max(1, round(0.15 * n))
        parts = {"test": tracks[:n_test], "val": tracks[n_test : n_test + n_val], "train": tracks[n_test + n_val :]}
        out += parts[split]
    return out


def _hash(name: str) -> int:
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16)


# ----------------------------------------------------------------------------------------------- sources
@dataclass
class Sources:
    """Memory-mapped material of one split."""

    voices: dict  # voice -> (audio int16, spans array (n, 2))
    music: list  # [(name, int16 array)]
    noise: list  # [(name, int16 array)]
    #: track name -> weight of its choice in music-only clips (hard negatives); empty: uniform
    hard: dict = None

    @classmethod
    def load(cls, split: str, extra_voices: tuple = ()) -> Sources:
        voices = {}
        for v in (*SPEECH_SPLIT[split], *extra_voices):
            path = OUT / "cache" / "speech" / f"{v}.npy"
            spans = np.array(json.loads(path.with_suffix(".json").read_text())["spans"])
            voices[v] = (np.load(path, mmap_mode="r"), spans)
        music = [(p.stem, np.load(p, mmap_mode="r")) for p in music_split(split)]
        noise = [
            (p.stem, np.load(p, mmap_mode="r"))
            for p in sorted((OUT / "cache" / "noise").glob("*.npy"))
            if _bucket(p.stem) == split
        ]
        return cls(voices, music, noise)


def speech_run(src: Sources, rng, length: int, voice: str | None = None) -> tuple[np.ndarray, list]:
    """Prompts of one voice end to end with short gaps, ``length`` samples; returns audio and speech spans."""
    voice = voice or rng.choice(sorted(src.voices))
    audio, spans = src.voices[voice]
    out = np.zeros(length, np.float32)
    active, pos = [], 0
    while pos < length - int(0.2 * SR):
        a, b = spans[rng.integers(len(spans))]
        piece = audio[a:b].astype(np.float32) / 32767.0
        piece = piece[: length - pos]
        if len(piece) < 0.2 * SR and active:
            break
        fade = min(len(piece) // 2, int(0.01 * SR))
        piece = piece.copy()
        if fade:
            piece[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
        out[pos : pos + len(piece)] = piece
        active.append((pos, pos + len(piece)))
        pos += len(piece) + int(rng.uniform(0.05, 0.4) * SR)
    return out, active


def music_run(src: Sources, rng, length: int, names: tuple = (), *, hard: bool = False) -> np.ndarray:
    """An excerpt of one music track (looped if short), rejecting near-silent excerpts when possible; ``hard``
    chooses tracks by the weights of ``src.hard`` (hard negatives) when it has any."""
    pool = [m for m in src.music if not names or m[0].split("__")[0] in names] or src.music
    p = None
    if hard and src.hard:
        w = np.array([0.05 + src.hard.get(name, 0.0) for name, _ in pool])
        p = w / w.sum()
    best = None
    for _ in range(8):
        _, track = pool[rng.choice(len(pool), p=p) if p is not None else rng.integers(len(pool))]
        n = len(track)
        if n <= length + 4 * SR:
            reps = int(np.ceil((length + SR) / max(n, 1))) + 1
            y = np.tile(np.asarray(track), reps)[:length].astype(np.float32) / 32767.0
        else:
            start = int(rng.integers(2 * SR, n - length - 2 * SR))
            y = track[start : start + length].astype(np.float32) / 32767.0
        quietest = _quietest(y)
        if best is None or quietest > best[0]:
            best = (quietest, y)
        if quietest > 0.1:
            break
    return best[1]


def _quietest(y: np.ndarray) -> float:
    """RMS of the quietest 0.5 s window relative to the whole excerpt."""
    w = SR // 2
    n = len(y) // w
    if n < 1:
        return 1.0
    rms = np.sqrt(np.mean(y[: n * w].reshape(n, w) ** 2, axis=1))
    return float(rms.min() / (np.sqrt(np.mean(y**2)) + 1e-12))


def noise_run(src: Sources, rng, length: int) -> np.ndarray:
    """Noise that is neither speech nor music: coloured noise, hum, near silence or sound effects."""
    kind = rng.choice(["white", "pink", "brown", "hum", "silence", "fx", "fx"])
    t = np.arange(length) / SR
    if kind == "fx" and src.noise:
        out = np.zeros(length, np.float32)
        pos = int(rng.uniform(0, 0.5) * SR)
        while pos < length:
            _, fx = src.noise[rng.integers(len(src.noise))]
            piece = fx[: length - pos].astype(np.float32) / 32767.0 * rng.uniform(0.2, 1.0)
            out[pos : pos + len(piece)] += piece
            pos += len(piece) + int(rng.uniform(0.0, 1.0) * SR)
        return out * 0.3
    white = rng.standard_normal(length).astype(np.float32)
    if kind == "white":
        return white * 0.05
    if kind in ("pink", "brown"):
        spec = np.fft.rfft(white)
        f = np.maximum(np.fft.rfftfreq(length, 1 / SR), 20.0)
        spec /= np.sqrt(f) if kind == "pink" else f
        y = np.fft.irfft(spec, length).astype(np.float32)
        return y / (np.sqrt(np.mean(y**2)) + 1e-9) * 0.05
    if kind == "hum":
        f0 = rng.choice([50.0, 60.0])
        y = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 6)).astype(np.float32)
        return y * 0.02 + white * 0.002
    return white * 10 ** rng.uniform(-5, -3.5)


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)) + 1e-12))


def _fade_gain(length: int, rng, *, abrupt: bool) -> tuple[np.ndarray, int, int]:
    """Gain envelope of a music segment and its labelled span (gain above -20 dB)."""
    g = np.ones(length, np.float32)
    if abrupt:
        f_in = f_out = int(0.01 * SR)
    else:
        f_in, f_out = (int(rng.uniform(0.2, 2.0) * SR) for _ in range(2))
        f_in, f_out = min(f_in, length // 3), min(f_out, length // 3)
    if f_in:
        g[:f_in] = 10 ** (np.linspace(-40, 0, f_in) / 20)
    if f_out:
        g[-f_out:] = 10 ** (np.linspace(0, -40, f_out) / 20)
    on = np.flatnonzero(g > 0.1)
    return g, int(on[0]), int(on[-1] + 1)


# ----------------------------------------------------------------------------------------------- clips
@dataclass
class Clip:
    """A mixture at 16 kHz and its labelled speech and music spans (samples)."""

    y: np.ndarray
    speech: list
    music: list


class Mixer:
    """Builds one clip: layers of speech, music and noise with their labelled spans.

    ``perturb`` (training clips only) resamples speech runs (a factor of 0.8-1.25: pitch, formants and tempo move
    together, a different-sounding speaker) and some music excerpts (0.89-1.12), and filters some clips through a
    synthetic room (see :func:`room`).
    """

    def __init__(self, src: Sources, rng, length: int, *, perturb: bool = False):
        self.src, self.rng, self.n, self.perturb = src, rng, length, perturb
        self.speech = np.zeros(length, np.float32)
        self.music = np.zeros(length, np.float32)
        self.noise = np.zeros(length, np.float32)
        self.speech_spans: list = []
        self.music_spans: list = []
        self.level = 10 ** (rng.uniform(-32, -14) / 20)  # RMS of speech (and of music alone)

    def _factor(self, p: float, lo: float, hi: float) -> float:
        """A resampling factor (log-uniform in [lo, hi]) with probability ``p`` when perturbing, else 1."""
        if not self.perturb or self.rng.random() >= p:
            return 1.0
        return float(np.exp(self.rng.uniform(np.log(lo), np.log(hi))))

    def add_speech(self, a: int, b: int, *, gain_db: float = 0.0, voice: str | None = None) -> None:
        f = self._factor(0.6, 0.8, 1.25)
        y, spans = speech_run(self.src, self.rng, int(round((b - a) * f)), voice)
        if f != 1.0:
            y, spans = _resample(y, f, b - a), [(int(s / f), min(b - a, int(e / f))) for s, e in spans]
        if not spans:
            return
        active = np.concatenate([y[s:e] for s, e in spans])
        self.speech[a:b] += y * (self.level * 10 ** (gain_db / 20) / _rms(active))
        self.speech_spans += [(a + s, a + e) for s, e in spans]

    def add_music(
        self, a: int, b: int, *, gain_db: float = 0.0, abrupt: bool = True, names: tuple = (), hard: bool = False
    ) -> None:
        f = self._factor(0.3, 0.89, 1.12)
        y = music_run(self.src, self.rng, int(round((b - a) * f)), names, hard=hard)
        if f != 1.0:
            y = _resample(y, f, b - a)
        g, on, off = _fade_gain(b - a, self.rng, abrupt=abrupt)
        self.music[a:b] += y * g * (self.level * 10 ** (gain_db / 20) / _rms(y))
        self.music_spans.append((a + on, a + off))

    def add_noise(self, a: int, b: int) -> None:
        y = noise_run(self.src, self.rng, b - a)
        self.noise[a:b] += y * (self.level * 10 ** (self.rng.uniform(-30, -3) / 20) / 0.05)

    def clip(self, *, telephone: bool = False, floor: bool = False) -> Clip:
        y = self.speech + self.music + self.noise
        if floor:
            y += (
                self.rng.standard_normal(self.n).astype(np.float32)
                * self.level
                * 10 ** (-self.rng.uniform(25, 45) / 20)
            )
        if self.perturb and self.rng.random() < 0.25:
            y = room(y, self.rng)
        if telephone:
            y = telephone_band(y)
        peak = np.abs(y).max()
        if peak > 0.95:
            y *= 0.95 / peak
        return Clip(y.astype(np.float32), self.speech_spans, self.music_spans)


def _resample(y: np.ndarray, factor: float, length: int) -> np.ndarray:
    """Play ``y`` ``factor`` times faster (pitch up by ``factor``), cut or padded to ``length`` samples."""
    import soxr

    z = soxr.resample(np.asarray(y, np.float32), SR * factor, SR, quality="HQ").astype(np.float32)
    return np.pad(z[:length], (0, max(0, length - len(z))))


def room(y: np.ndarray, rng) -> np.ndarray:
    """A reverberant version of ``y``: exponentially decaying noise as impulse response (RT60 0.15-0.8 s), mixed with
    the direct sound at a direct-to-reverberant ratio of 0-12 dB; same RMS as the input."""
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(0.15, 0.8)
    t = np.arange(int(rt60 * SR)) / SR
    ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    wet = fftconvolve(y, ir.astype(np.float32))[: len(y)]
    wet *= _rms(y) / _rms(wet) * 10 ** (-rng.uniform(0, 12) / 20)
    z = (y + wet).astype(np.float32)
    return z * (_rms(y) / _rms(z))


def telephone_band(y: np.ndarray) -> np.ndarray:
    """300-3400 Hz band-pass and 8-bit mu-law quantisation, as on a telephone line."""
    from scipy.signal import butter, sosfilt

    sos = butter(4, [300, 3400], btype="bandpass", fs=SR, output="sos")
    z = sosfilt(sos, y).astype(np.float32)
    peak = np.abs(z).max() + 1e-9
    mu = 255.0
    c = np.sign(z / peak) * np.log1p(mu * np.abs(z / peak)) / np.log1p(mu)
    c = np.round(c * 127) / 127
    return (np.sign(c) * np.expm1(np.abs(c) * np.log1p(mu)) / mu * peak).astype(np.float32)


def _sequence(rng, length: int, kinds, probs, dur: tuple) -> list:
    """Consecutive segments ``(kind, start, end)`` filling ``length`` samples."""
    out, pos = [], 0
    while pos < length:
        kind = rng.choice(kinds, p=probs)
        d = rng.uniform(*dur) * (0.4 if kind == "noise" else 1.0)
        end = min(length, pos + max(int(d * SR), SR // 2))
        if length - end < SR // 2:
            end = length
        out.append((kind, pos, end))
        pos = end
    return out


def compose(src: Sources, rng, condition: str, seconds: float, *, train: bool = False, perturb: bool = False) -> Clip:
    """One clip of a condition (see :data:`CONDITIONS`); ``train`` widens the ranges for training, ``perturb`` (with
    ``train``) adds speaker-like resampling, music resampling and rooms (see :class:`Mixer`)."""
    n = int(seconds * SR)
    mx = Mixer(src, rng, n, perturb=train and perturb)
    smr_low = -12.0 if train else -10.0
    if condition in ("clean", "short", "telephone"):
        if condition == "clean":
            kinds, probs, dur = ["speech", "music", "noise"], [0.45, 0.45, 0.1], (3.0, 20.0)
        elif condition == "short":
            kinds, probs, dur = ["speech", "music", "both", "noise"], [0.3, 0.3, 0.3, 0.1], (1.0, 3.0)
        else:
            kinds, probs, dur = ["speech", "music", "both", "noise"], [0.35, 0.3, 0.25, 0.1], (2.0, 10.0)
        for kind, a, b in _sequence(rng, n, kinds, probs, dur):
            abrupt = bool(rng.random() < 0.5)
            if kind == "speech":
                mx.add_speech(a, b)
            elif kind == "music":
                mx.add_music(a, b, gain_db=rng.uniform(-4, 4), abrupt=abrupt)
            elif kind == "both":
                mx.add_music(a, b, gain_db=-rng.uniform(smr_low, 20.0), abrupt=abrupt)
                mx.add_speech(a + int(rng.uniform(0, 0.3) * SR), b)
            else:
                mx.add_noise(a, b)
    elif condition == "under_music":
        _speech_over_music(mx, rng, smr=(smr_low, 10.0 if train else 0.0), turn=(2.0, 10.0), gap=(1.0, 6.0))
    elif condition == "dialogue":
        _speech_over_music(mx, rng, smr=(-5.0, 10.0), turn=(1.0, 6.0), gap=(0.2, 1.5), dialogue=True)
    elif condition == "music_only" and train:  # hard negatives: music alone, tracks changing, a little noise
        for kind, a, b in _sequence(rng, n, ["music", "noise"], [0.9, 0.1], (2.0, 12.0)):
            if kind == "music":
                mx.add_music(a, b, gain_db=rng.uniform(-6, 6), abrupt=bool(rng.random() < 0.5), hard=True)
            else:
                mx.add_noise(a, b)
    else:
        raise ValueError(condition)
    telephone = condition == "telephone" or (train and rng.random() < 0.2)
    return mx.clip(telephone=telephone, floor=bool(rng.random() < 0.4))


def _speech_over_music(mx: Mixer, rng, *, smr, turn, gap, dialogue: bool = False) -> None:
    """Continuous (game) music with speech turns over it; dialogue alternates two voices."""
    n = mx.n
    names = GAME_MUSIC if dialogue else ()
    pos, cut = 0, []
    while pos < n:  # music may change track (abrupt) along the clip
        end = min(n, pos + int(rng.uniform(15, 60) * SR))
        cut.append((pos, end))
        pos = end
    for a, b in cut:
        mx.add_music(a, b, abrupt=True, names=names)
    voices = sorted(mx.src.voices)
    pos, k = int(rng.uniform(0.0, 3.0) * SR), 0
    while pos < n - SR:
        end = min(n, pos + int(rng.uniform(*turn) * SR))
        voice = voices[k % len(voices)] if dialogue else None
        # the music keeps one level; each turn's speech lies ``smr`` dB above (or below) it
        mx.add_speech(pos, end, gain_db=float(rng.uniform(*smr)), voice=voice)
        pos = end + int(rng.uniform(*gap) * SR)
        k += 1


def frame_labels(spans: list, n_frames: int, *, fill: float = 0.0) -> np.ndarray:
    """Labels at :data:`LABEL_RATE` from spans in samples; gaps shorter than ``fill`` seconds are filled."""
    hop = SR // LABEL_RATE
    lab = np.zeros(n_frames, np.uint8)
    merged = merge_spans(spans, fill * SR)
    for a, b in merged:
        lab[max(0, int(round(a / hop))) : int(round(b / hop))] = 1
    return lab


def merge_spans(spans: list, gap: float) -> list:
    out: list = []
    for a, b in sorted(spans):
        if out and a - out[-1][1] < gap:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


# ----------------------------------------------------------------------------------------------- outputs
TRAIN_MIX = {"clean": 0.2, "short": 0.25, "under_music": 0.25, "dialogue": 0.15, "telephone": 0.15}


@dataclass(frozen=True)
class ShardOptions:
    """What :func:`build_shards` writes: ``perturb`` adds speaker-like resampling and rooms (see :class:`Mixer`),
    ``seed`` varies the clips of a second training set, ``mix`` the share of each condition."""

    folder: str | None = None
    extra_voices: tuple = ()
    perturb: bool = False
    seed: int = 0
    mix: tuple = tuple(TRAIN_MIX.items())
    #: track name -> weight for the music of ``music_only`` clips (e.g. how often a model hears speech in it)
    hard_music: tuple = ()


def build_shards(split: str, *, n_shards: int, per_shard: int, seconds: float, opts: ShardOptions = ShardOptions()):
    import soxr

    src = None
    folder, extra_voices = opts.folder or split, opts.extra_voices
    conds, probs = [c for c, _ in opts.mix], np.array([p for _, p in opts.mix])
    for s in range(n_shards):
        target = OUT / folder / f"shard-{s:03d}.npz"
        if target.exists():
            continue
        if src is None:
            src = Sources.load(split, extra_voices)
            src.hard = dict(opts.hard_music)
        audio, speech, music, cond = [], [], [], []
        for i in range(per_shard):
            key = [0 if split == "train" else 1, s, i, len(extra_voices)] + ([opts.seed] if opts.seed else [])
            rng = np.random.default_rng(key)
            c = str(rng.choice(conds, p=probs / probs.sum()))
            clip = compose(src, rng, c, seconds, train=True, perturb=opts.perturb)
            n_frames = len(clip.y) // (SR // LABEL_RATE)
            y8 = soxr.resample(clip.y, SR, ANALYSIS_SR, quality="HQ")
            audio.append(_to_int16(y8))
            speech.append(frame_labels(clip.speech, n_frames, fill=GAP_FILL))
            music.append(frame_labels(clip.music, n_frames))
            cond.append((CONDITIONS + TRAIN_CONDITIONS).index(c))
        with atomic_path(target, suffix=".npz") as tmp:
            np.savez(tmp, audio=np.stack(audio), speech=np.stack(speech), music=np.stack(music), condition=cond)
        log.info("%s shard %d/%d written", split, s + 1, n_shards)


def build_files(split: str, folder: str, *, per_condition: int, seconds: float) -> None:
    import soundfile as sf

    src = None
    for ci, cond in enumerate(CONDITIONS):
        for i in range(per_condition):
            target = OUT / folder / cond / f"{i:03d}.wav"
            if target.exists() and target.with_suffix(".json").exists():
                continue
            src = src or Sources.load(split)
            rng = np.random.default_rng([2 if split == "test" else 3, ci, i])
            clip = compose(src, rng, cond, seconds)
            labels = {
                "condition": cond,
                "duration": len(clip.y) / SR,
                "speech": [[a / SR, b / SR] for a, b in merge_spans(clip.speech, GAP_FILL * SR)],
                "music": [[a / SR, b / SR] for a, b in merge_spans(clip.music, 0)],
            }
            with atomic_path(target, suffix=".wav") as tmp:
                sf.write(str(tmp), clip.y, SR, subtype="PCM_16", format="WAV")
            atomic_write_text(target.with_suffix(".json"), json.dumps(labels))
        log.info("%s/%s: %d files", folder, cond, per_condition)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stage", choices=["cache", "train", "val", "files", "all"], default="all")
    ap.add_argument("--train-shards", type=int, default=12)
    ap.add_argument("--clips-per-shard", type=int, default=200)
    ap.add_argument("--clip-seconds", type=float, default=8.0)
    ap.add_argument("--test-files", type=int, default=30, help="test files per condition")
    ap.add_argument("--val-files", type=int, default=8, help="validation files per condition")
    ap.add_argument("--file-seconds", type=float, default=60.0)
    ap.add_argument("--train-dir", default="train", help="folder of the training shards")
    ap.add_argument("--add-val-voice", action="store_true", help="train on the validation voice too (4 voices)")
    ap.add_argument("--perturb", action="store_true", help="training clips: resampled voices and music, rooms")
    ap.add_argument("--seed", type=int, default=0, help="a seed for another set of training clips")
    ap.add_argument("--mix", default=None, help="condition shares, e.g. clean=0.3,short=0.2,under_music=0.2,...")
    ap.add_argument("--hard-music", default=None, help="JSON {track: weight} for the music of music_only clips")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.stage in ("cache", "all"):
        cache_speech()
        cache_music()
        cache_noise()
    if args.stage in ("files", "all"):
        build_files("test", "test", per_condition=args.test_files, seconds=args.file_seconds)
        build_files("val", "val_files", per_condition=args.val_files, seconds=args.file_seconds)
    if args.stage in ("val", "all"):
        build_shards("val", n_shards=2, per_shard=args.clips_per_shard, seconds=args.clip_seconds)
    if args.stage in ("train", "all"):
        extra = tuple(SPEECH_SPLIT["val"]) if args.add_val_voice else ()
        mix = tuple((k, float(v)) for k, v in (kv.split("=") for kv in args.mix.split(","))) if args.mix else None
        hard = tuple(json.loads(Path(args.hard_music).read_text()).items()) if args.hard_music else ()
        opts = ShardOptions(args.train_dir, extra, args.perturb, args.seed, mix or ShardOptions.mix, hard)
        build_shards("train", n_shards=args.train_shards, per_shard=args.clips_per_shard, seconds=args.clip_seconds,
                     opts=opts)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
