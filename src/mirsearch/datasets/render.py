"""Synthesis and the recording chain: FluidSynth, room, microphone, noise, level, encoding.

FluidSynth runs as a command-line program (``fluidsynth -ni -g GAIN -F out.wav -r SR font in.mid``) with
its own reverb and chorus switched off and float output, so that the rest of the chain is under our
control and reproducible:

1. mono mix-down of FluidSynth's stereo output;
2. high-pass (rumble) and optional low-pass (distance / microphone colouration), 2nd-order Butterworth;
3. convolution with a synthetic room impulse response (exponentially decaying noise with faster decay of
   high frequencies, sparse early reflections, a pre-delay), mixed at a reverberant-to-direct ratio;
4. level: RMS of the active part set to ``level_db`` dBFS;
5. additive noise (white, pink, brown or mains hum with harmonics) at ``snr_db`` relative to that RMS;
6. peaks kept below -0.5 dBFS; encoding to FLAC (16 bit), Ogg Vorbis or MP3 with libsndfile.

Direct sound is never delayed, so note onsets in the audio equal the MIDI onsets (FluidSynth renders
events at block boundaries of 64 samples, under 3 ms at 22050 Hz).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_path
from mirsearch.audio import active_rms
from mirsearch.datasets.performance import RecordingParams, stable_seed
from mirsearch.errors import InputError, MirsearchError, ParameterError

logger = logging.getLogger(__name__)

#: file extension and libsndfile (format, subtype) per encoding
ENCODINGS = {
    "flac": (".flac", "FLAC", "PCM_16"),
    "ogg": (".ogg", "OGG", "VORBIS"),
    "mp3": (".mp3", "MP3", "MPEG_LAYER_III"),
    "wav": (".wav", "WAV", "PCM_16"),
}


def fluidsynth_available() -> bool:
    """True if the ``fluidsynth`` program is on the PATH."""
    return shutil.which("fluidsynth") is not None


def soundfont_gain(soundfont: str | os.PathLike) -> float:
    """FluidSynth gain for a SoundFont (sf3 fonts such as MuseScore_General render quietly)."""
    return 1.2 if str(soundfont).lower().endswith(".sf3") else 0.5


def render_midi(
    midi_path: str | os.PathLike,
    *,
    soundfont: str | os.PathLike,
    sr: int = 22050,
    gain: float | None = None,
    timeout: float = 600.0,
) -> np.ndarray:
    """Synthesise a MIDI file with the FluidSynth CLI.

    Parameters
    ----------
    midi_path : path
        Standard MIDI file.
    soundfont : path
        ``.sf2`` or ``.sf3`` file.
    sr : int > 0
        Sample rate in Hz.
    gain : float, optional
        FluidSynth master gain; default :func:`soundfont_gain`.
    timeout : float
        Seconds before the FluidSynth process is killed.

    Returns
    -------
    np.ndarray, shape (n_samples,), float32
        Mono signal (mean of FluidSynth's two channels).
    """
    import soundfile as sf

    if sr <= 0:
        raise ParameterError(f"sr={sr} must be > 0")
    if not Path(soundfont).is_file():
        raise InputError(f"{soundfont}: SoundFont not found")
    if not fluidsynth_available():
        raise MirsearchError("fluidsynth: program not found (install the Debian package fluidsynth)")
    gain = soundfont_gain(soundfont) if gain is None else gain
    with tempfile.TemporaryDirectory(prefix="mirsearch-fs-") as tmp:
        wav = Path(tmp) / "out.wav"
        cmd = [
            "fluidsynth",
            "-ni",
            "-q",
            "-R",
            "0",
            "-C",
            "0",
            "-g",
            f"{gain:g}",
            "-o",
            "audio.file.format=float",
            "-o",
            "synth.polyphony=512",
            "-o",
            "synth.dynamic-sample-loading=1",  # load only the samples used (same output, faster for sf3)
            "-F",
            str(wav),
            "-r",
            str(int(sr)),
            str(soundfont),
            str(midi_path),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0 or not wav.is_file():
            msg = (proc.stderr or proc.stdout).strip().splitlines()
            raise MirsearchError(f"{midi_path}: fluidsynth failed ({msg[-1] if msg else proc.returncode})")
        y, file_sr = sf.read(str(wav), dtype="float32", always_2d=True)
    if file_sr != sr:
        raise MirsearchError(f"{midi_path}: fluidsynth wrote {file_sr} Hz instead of {sr} Hz")
    return y.mean(axis=1).astype(np.float32)


def room_impulse_response(*, sr: int, rt60: float, predelay_ms: float, rng: np.random.Generator) -> np.ndarray:
    """Synthetic room impulse response (reverberant part only, unit energy).

    Parameters
    ----------
    sr : int
        Sample rate (Hz).
    rt60 : float > 0
        Time (s) for a 60 dB decay of the low band; the high band decays 1.8 times faster.
    predelay_ms : float >= 0
        Silence before the reverberant part.
    rng : np.random.Generator

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    from scipy.signal import butter, sosfilt

    n = int(sr * (predelay_ms / 1000.0 + 1.2 * rt60)) + 1
    t = np.arange(n) / sr
    pre = int(sr * predelay_ms / 1000.0)
    noise = rng.standard_normal(n)
    sos_lo = butter(2, 2000.0, btype="low", fs=sr, output="sos")
    low = sosfilt(sos_lo, noise)
    high = noise - low
    tt = np.maximum(t - pre / sr, 0.0)
    ir = low * np.exp(-6.91 * tt / rt60) + 0.6 * high * np.exp(-6.91 * tt * 1.8 / rt60)
    # sparse early reflections in the first 60 ms
    for _ in range(8):
        k = pre + int(rng.uniform(0.002, 0.06) * sr)
        if k < n:
            ir[k] += rng.uniform(-2.5, 2.5)
    ir[:pre] = 0.0
    energy = float(np.sqrt(np.sum(ir**2)))
    return (ir / energy).astype(np.float32) if energy > 0 else ir.astype(np.float32)


def _colored_noise(kind: str, n: int, *, sr: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "hum":
        t = np.arange(n) / sr
        f0 = 50.0 if rng.random() < 0.5 else 60.0
        y = sum((0.6**k) * np.sin(2 * np.pi * f0 * (k + 1) * t + rng.uniform(0, 2 * np.pi)) for k in range(5))
        return np.asarray(y + 0.05 * rng.standard_normal(n))
    from scipy import fft

    if kind == "white":
        return rng.standard_normal(n)
    m = fft.next_fast_len(max(n, 2), real=True)
    spec = fft.rfft(rng.standard_normal(m))
    f = np.fft.rfftfreq(m, 1.0 / sr)
    f[0] = f[1]
    power = 1.0 if kind == "pink" else 2.0  # 1/f or 1/f^2 in power
    spec /= f ** (power / 2.0)
    return fft.irfft(spec, m)[:n]


def apply_recording(y: np.ndarray, *, sr: int, recording: RecordingParams, seed: int) -> np.ndarray:
    """Apply the recording chain (filters, room, level, noise, peak limit) to a dry mono signal.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        Dry signal (not modified).
    sr : int
        Sample rate (Hz).
    recording : RecordingParams
    seed : int
        Seeds the impulse response and the noise.

    Returns
    -------
    np.ndarray, shape (n + tail,), float32
        Longer than ``y`` by the reverb tail (at most 2 s).
    """
    from scipy.signal import butter, oaconvolve, sosfilt

    rng = np.random.default_rng(stable_seed(seed, "recording"))
    x = np.asarray(y, dtype=np.float64)
    if recording.reverb_rt60 > 0 and recording.reverb_wet > 0:
        x = np.concatenate([x, np.zeros(int(min(recording.reverb_rt60, 2.0) * sr))])
    x = sosfilt(butter(2, recording.highpass_hz, btype="high", fs=sr, output="sos"), x)
    if recording.lowpass_hz is not None and recording.lowpass_hz < 0.45 * sr:
        x = sosfilt(butter(2, recording.lowpass_hz, btype="low", fs=sr, output="sos"), x)
    if recording.reverb_rt60 > 0 and recording.reverb_wet > 0:
        ir = room_impulse_response(sr=sr, rt60=recording.reverb_rt60, predelay_ms=recording.reverb_predelay_ms, rng=rng)
        wet = oaconvolve(x, ir)[: len(x)]
        e_dry, e_wet = float(np.sum(x**2)), float(np.sum(wet**2))
        if e_wet > 0:
            x = x + np.sqrt(recording.reverb_wet * e_dry / e_wet) * wet
    rms = active_rms(x, sr=sr)
    if rms <= 0:
        raise MirsearchError("rendering is silent")
    x *= 10 ** (recording.level_db / 20.0) / rms
    if recording.noise is not None and recording.snr_db is not None:
        noise = _colored_noise(recording.noise, len(x), sr=sr, rng=rng)
        noise -= noise.mean()
        n_rms = float(np.sqrt(np.mean(noise**2)))
        if n_rms > 0:
            x += noise * (10 ** (recording.level_db / 20.0) / n_rms) * 10 ** (-recording.snr_db / 20.0)
    peak = float(np.max(np.abs(x)))
    limit = 10 ** (-0.5 / 20.0)
    if peak > limit:
        x *= limit / peak
    return x.astype(np.float32)


def encode(y: np.ndarray, path: str | os.PathLike, *, sr: int, encoding: str, quality: float = 0.4) -> Path:
    """Write ``y`` atomically (:func:`mirsearch._util.atomic_path`).

    Parameters
    ----------
    y : np.ndarray, shape (n,)
    path : path
        Destination without extension; the encoding's (``.flac``, ``.ogg``, ``.mp3``, ``.wav``) is
        appended (names may contain dots).
    sr : int
    encoding : {"flac", "ogg", "mp3", "wav"}
    quality : float in [0, 1]
        libsndfile compression level for lossy encodings (0 = highest quality).

    Returns
    -------
    Path
        The written file.
    """
    import soundfile as sf

    if encoding not in ENCODINGS:
        raise ParameterError(f"encoding={encoding!r} is not one of {sorted(ENCODINGS)}")
    ext, fmt, subtype = ENCODINGS[encoding]
    stem = Path(path)
    out = stem.with_name(stem.name + ext)
    kwargs = {}
    if encoding in ("ogg", "mp3"):
        kwargs["compression_level"] = float(np.clip(quality, 0.0, 1.0))
    with atomic_path(out, suffix=ext) as tmp:
        # block-wise: libsndfile 1.2.2 crashes when a long signal is passed to the Vorbis encoder at once
        with sf.SoundFile(str(tmp), "w", samplerate=sr, channels=1, format=fmt, subtype=subtype, **kwargs) as f:
            for k in range(0, len(y), 65536):
                f.write(np.asarray(y[k : k + 65536], dtype=np.float32))
    return out
