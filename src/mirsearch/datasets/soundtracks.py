"""Real soundtrack clips for similarity and category identification: label = the soundtrack (package).

Six soundtracks from the Debian data packages extracted under ``data/real/pkgs`` (the only real music this
dataset may use):

============================  ======================================================================
soundtrack                    tracks
============================  ======================================================================
``ufoai``                     ``ufoai-music``: the ogg files inside ``base/0music.pk3`` (a zip)
``singularity``               ``singularity-music``: every ogg
``colobot``                   ``colobot-common-sounds``: the music folder only (not the sound effects)
``fretsonfire-muldjord``      ``fretsonfire-songs-muldjord``: per song, the stems (song, guitar, ...) mixed
``fretsonfire-sectoid``       ``fretsonfire-songs-sectoid``: likewise
``opsound``                   ``asterisk-moh-opsound-wav``: the music-on-hold wav files
============================  ======================================================================

Each track gives up to ``clips_per_track`` non-overlapping clips of ``clip_seconds`` (a track shorter than that
but at least ``min_seconds`` long gives one clip of its whole length), evenly spread after ``skip_seconds``, as
FLAC at 22050 Hz under ``<out>/clips/<soundtrack>/``. Every track is assigned to split ``train`` or ``test``
(alternately in name order per soundtrack, so both halves hold about half the tracks of every soundtrack): the
splits are track-disjoint, never clip-disjoint only. ``manifest.json`` lists the clips. The build is
deterministic and resumable (existing clips are kept).
"""

from __future__ import annotations

import io
import json
import logging
import re
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mirsearch.errors import InputError

log = logging.getLogger(__name__)

__all__ = ["SOUNDTRACKS", "Track", "Clip", "find_tracks", "build_soundtracks", "load_manifest"]

SR = 22050
#: clips quieter than this RMS are left out (silence)
SILENCE_RMS = 1e-4
MANIFEST = "manifest.json"
FORMAT_VERSION = 1

#: soundtrack -> (package folder, kind of source)
SOUNDTRACKS = {
    "ufoai": ("ufoai-music", "pk3"),
    "singularity": ("singularity-music", "ogg"),
    "colobot": ("colobot-common-sounds", "music"),
    "fretsonfire-muldjord": ("fretsonfire-songs-muldjord", "stems"),
    "fretsonfire-sectoid": ("fretsonfire-songs-sectoid", "stems"),
    "opsound": ("asterisk-moh-opsound-wav", "wav"),
}


@dataclass(frozen=True)
class Track:
    """One recording of a soundtrack: its audio sources (several stems are mixed)."""

    soundtrack: str
    name: str
    sources: tuple[str, ...]
    """file paths, or ``archive.pk3::member`` for a file inside a zip"""


@dataclass(frozen=True)
class Clip:
    """One clip of the dataset (a row of the manifest)."""

    path: str
    """relative to the dataset folder"""
    soundtrack: str
    track: str
    split: str
    start: float
    duration: float


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def find_tracks(pkgs: str | Path) -> list[Track]:
    """The tracks of :data:`SOUNDTRACKS` under ``pkgs`` (the folder of extracted packages), in a fixed order."""
    pkgs = Path(pkgs)
    tracks: list[Track] = []
    for soundtrack, (package, kind) in SOUNDTRACKS.items():
        root = pkgs / package
        if not root.is_dir():
            log.warning("soundtracks: %s missing under %s", package, pkgs)
            continue
        if kind == "pk3":
            for pk3 in sorted(root.rglob("*.pk3")):
                with zipfile.ZipFile(pk3) as zf:
                    members = sorted(n for n in zf.namelist() if n.lower().endswith(".ogg"))
                tracks += [Track(soundtrack, Path(m).stem, (f"{pk3}::{m}",)) for m in members]
        elif kind == "stems":
            for song in sorted({p.parent for p in root.rglob("song.ogg")}):
                stems = tuple(str(p) for p in sorted(song.glob("*.ogg")))
                tracks.append(Track(soundtrack, song.name, stems))
        else:
            pattern = "*.wav" if kind == "wav" else "*.ogg"
            base = next(root.rglob("music"), root) if kind == "music" else root
            tracks += [Track(soundtrack, p.stem, (str(p),)) for p in sorted(base.rglob(pattern))]
    return tracks


def _decode(source: str) -> np.ndarray:
    import soundfile as sf
    import soxr

    if "::" in source:
        archive, member = source.split("::", 1)
        with zipfile.ZipFile(archive) as zf:
            data, rate = sf.read(io.BytesIO(zf.read(member)), dtype="float32", always_2d=True)
    else:
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    y = data.mean(axis=1)
    return soxr.resample(y, rate, SR, quality="HQ").astype(np.float32) if rate != SR else y


def mix_track(track: Track) -> np.ndarray:
    """The track's audio at 22050 Hz mono: its stems summed (peak kept <= 0.99)."""
    parts = [_decode(s) for s in track.sources]
    y = np.zeros(max(len(p) for p in parts), np.float32)
    for p in parts:
        y[: len(p)] += p
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    return y * (0.99 / peak) if peak > 0.99 else y


def clip_starts(duration: float, *, clip_seconds: float, clips: int, skip_seconds: float) -> list[float]:
    """Start times (s) of up to ``clips`` non-overlapping clips, evenly spread after ``skip_seconds``."""
    if duration <= clip_seconds:
        return [0.0]
    skip = skip_seconds if duration - skip_seconds >= clip_seconds else 0.0
    room = duration - skip
    n = max(1, min(clips, int(room // clip_seconds)))
    gap = (room - n * clip_seconds) / n
    return [round(skip + gap / 2 + i * (clip_seconds + gap), 3) for i in range(n)]


def build_soundtracks(
    pkgs: str | Path,
    out: str | Path,
    *,
    clip_seconds: float = 30.0,
    clips_per_track: int = 4,
    min_seconds: float = 10.0,
    skip_seconds: float = 5.0,
) -> list[Clip]:
    """Cut the clips of every track into ``out`` and write ``out/manifest.json`` (module docstring).

    Returns
    -------
    list of Clip
    """
    import soundfile as sf

    from mirsearch._util import atomic_path, atomic_write_text

    out = Path(out)
    previous: dict[tuple[str, str], list[Clip]] = {}
    if (out / MANIFEST).exists():
        for clip in load_manifest(out):
            previous.setdefault((clip.soundtrack, clip.track), []).append(clip)
    clips: list[Clip] = []
    by_soundtrack: dict[str, int] = {}
    for track in find_tracks(pkgs):
        position = by_soundtrack.get(track.soundtrack, 0)
        by_soundtrack[track.soundtrack] = position + 1
        done = previous.get((track.soundtrack, track.name))
        if done and all((out / c.path).exists() for c in done):
            clips += done
            continue
        y = mix_track(track)
        if len(y) < min_seconds * SR:
            log.info("soundtracks: %s/%s skipped (%.1f s)", track.soundtrack, track.name, len(y) / SR)
            continue
        starts = clip_starts(len(y) / SR, clip_seconds=clip_seconds, clips=clips_per_track, skip_seconds=skip_seconds)
        split = "train" if position % 2 == 0 else "test"
        before = len(clips)
        for i, start in enumerate(starts):
            path = out / "clips" / track.soundtrack / f"{_slug(track.name)}-{i}.flac"
            segment = y[int(start * SR) : int((start + clip_seconds) * SR)]
            if float(np.sqrt(np.mean(segment.astype(np.float64) ** 2))) < SILENCE_RMS:
                log.info("soundtracks: %s/%s clip %d is silent, skipped", track.soundtrack, track.name, i)
                continue
            with atomic_path(path) as tmp:
                sf.write(str(tmp), segment, SR, format="FLAC")
            rel = str(path.relative_to(out))
            clips.append(Clip(rel, track.soundtrack, track.name, split, float(start), round(len(segment) / SR, 3)))
        log.info("soundtracks: %s/%s: %d clips (%s)", track.soundtrack, track.name, len(clips) - before, split)
    manifest = {"format": "mirsearch-soundtracks", "format_version": FORMAT_VERSION, "sr": SR,
                "clip_seconds": clip_seconds, "clips": [asdict(c) for c in clips]}  # fmt: skip
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1))
    return clips


def load_manifest(folder: str | Path) -> list[Clip]:
    """The clips of a built dataset."""
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable soundtrack manifest ({exc})") from None
    return [Clip(**row) for row in data["clips"]]
