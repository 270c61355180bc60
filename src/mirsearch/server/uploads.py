"""Uploads: safe temporary files, the audio header check, and recent audio queries kept for their figures.

A client's file name is never used as a path: only its extension (checked against a list) and a
sanitised base name (for error messages) survive, inside a fresh temporary folder.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from mirsearch.errors import InputError

log = logging.getLogger(__name__)

#: bytes of multipart framing and form fields allowed on top of the file size limit
MULTIPART_SLACK = 64 * 1024
#: decoded samples (channels x frames) an uploaded query may hold per second of its limit (stereo at 48 kHz)
SAMPLES_PER_SECOND = 2 * 48_000
#: uploads are copied in chunks of this many bytes
CHUNK = 1 << 16


def safe_name(filename: str | None, *, allowed: tuple[str, ...], kind: str) -> str:
    """A harmless base name for an uploaded file, keeping its (allowed) extension.

    Parameters
    ----------
    filename : str or None
        The name the client sent (may contain folders, ``..``, odd characters).
    allowed : tuple of str
        Accepted lower-case extensions with the dot (``".mid"``).
    kind : str
        What is expected (``"score"``, ``"audio"``), for the error message.

    Raises
    ------
    InputError
        No file name or an extension not in ``allowed``.
    """
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    suffix = Path(base).suffix.lower()
    if not base or suffix not in allowed:
        shown = base[:60] or "(no file name)"
        raise InputError(f"{shown}: not a {kind} file (accepted: {', '.join(allowed)})")
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(base).stem).strip("._")[:60] or "upload"
    return stem + suffix


async def save_upload(upload, folder: Path, *, allowed: tuple[str, ...], kind: str, max_bytes: int) -> Path:
    """Copy an uploaded file into ``folder`` under a safe name, enforcing ``max_bytes``.

    Returns
    -------
    Path
        The saved file (``folder`` / sanitised name).

    Raises
    ------
    InputError
        Bad name or extension, or an empty file.
    UploadTooLarge
        The file exceeds ``max_bytes``.
    """
    name = safe_name(getattr(upload, "filename", None), allowed=allowed, kind=kind)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    size = 0
    with open(path, "wb") as fh:
        while True:
            chunk = await upload.read(CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise UploadTooLarge(f"{name}: file too large (limit {max_bytes / 1e6:.1f} MB)")
            fh.write(chunk)
    if size == 0:
        raise InputError(f"{name}: empty file")
    return path


class UploadTooLarge(InputError):
    """An uploaded file or its audio is larger than the server accepts (HTTP 413)."""


class RecentQueries:
    """Results of recent audio queries (their matching curves), kept in memory for the figures.

    Each entry is addressed by a random token; the oldest are dropped beyond ``capacity``.
    """

    def __init__(self, *, capacity: int = 32):
        self.capacity = int(capacity)
        self._items: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, value) -> str:
        """Keep ``value``; returns its token."""
        token = secrets.token_urlsafe(12)
        with self._lock:
            self._items[token] = value
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return token

    def get(self, token: str):
        """The value kept under ``token``, or None (unknown or dropped)."""
        with self._lock:
            value = self._items.get(token)
            if value is not None:
                self._items.move_to_end(token)
            return value


def new_folder(root: Path) -> Path:
    """A fresh private folder for one upload under ``root``."""
    return Path(tempfile.mkdtemp(prefix="upload-", dir=root))


def discard(folder: Path) -> None:
    """Remove a temporary upload folder (errors ignored)."""
    shutil.rmtree(folder, ignore_errors=True)


def check_audio_header(path: Path, max_seconds: float) -> float | None:
    """Duration (s) of an uploaded audio file from its header (None: a stream of unknown length, limited while it
    is decoded); :class:`UploadTooLarge` above the limits.

    Counts channels and rate too: a file may decode to at most ``max_seconds`` of stereo 48 kHz samples.
    """
    from mirsearch.audio import probe_audio

    info = probe_audio(path)  # InputError for a file that is not audio, or beyond the absolute limits
    if info.frames is None:
        return None
    seconds = info.frames / info.samplerate
    if seconds > max_seconds:
        raise UploadTooLarge(f"{path.name}: audio too long ({seconds:.1f} s > {max_seconds:g} s)")
    if info.frames * info.channels > max_seconds * SAMPLES_PER_SECOND:
        raise UploadTooLarge(
            f"{path.name}: too many samples ({info.channels} channels at {info.samplerate} Hz); "
            f"at most {max_seconds:g} s of stereo 48 kHz are accepted"
        )
    return seconds
