"""Finding the audio files under the paths given to ``index``: recursively, sorted, with what was left out.

A folder scan takes every extension :data:`mirsearch.audio.AUDIO_EXTENSIONS` lists (everything libsndfile
reads, ``.opus`` included) and counts the files it leaves out by extension, so a summary can say what was not
indexed. A path that cannot be read (too long, no permission, not there) is reported, never raised.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mirsearch.audio import display_name, is_audio_file
from mirsearch.scores import FULL_SCORE_EXTENSIONS, SCORE_EXTENSIONS

#: file names a scan passes over silently (system and temporary files, not music)
_IGNORED_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini")
_SCORE_EXTENSIONS = frozenset(FULL_SCORE_EXTENSIONS + SCORE_EXTENSIONS)
#: sheet music pages: ``index`` reads them into the sheet store (mirsearch.index.sheets), not counted as skipped
_SHEET_EXTENSIONS = frozenset((".png", ".jpg", ".jpeg", ".pdf"))


@dataclass
class Scan:
    """Result of :func:`scan_paths`.

    Attributes
    ----------
    files : list of Path
        Audio files (resolved, unique, in order: each argument's files sorted).
    missing : list of (str, str)
        Inputs that could not be used, with a one-line reason.
    skipped : Counter
        Files left out of folder scans, by extension (``""`` for none); score files are not counted (``index``
        reads them into the collection's score store).
    """

    files: list[Path] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _walk(folder: Path, scan: Scan) -> list[Path]:
    found = []

    def onerror(exc: OSError) -> None:
        where = exc.filename if exc.filename is not None else folder
        scan.missing.append((os.fsdecode(where), f"{display_name(where)}: cannot read folder ({_reason(exc)})"))

    for dirpath, dirnames, filenames in os.walk(folder, onerror=onerror):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or name in _IGNORED_NAMES:
                continue
            path = Path(dirpath) / name
            if is_audio_file(path):
                found.append(path)
            elif path.suffix.lower() not in _SCORE_EXTENSIONS | _SHEET_EXTENSIONS:  # scores and sheets: other stores
                scan.skipped[path.suffix.lower()] += 1
    return sorted(found)


def scan_paths(paths) -> Scan:
    """Audio files under the given files and folders (see :class:`Scan`)."""
    scan = Scan()
    found: list[Path] = []
    for p in [paths] if isinstance(paths, str | bytes | os.PathLike) else paths:
        p = Path(os.fsdecode(p))
        try:
            if p.is_dir():
                found.extend(_walk(p, scan))
            elif p.is_file():
                found.append(p)
            else:
                scan.missing.append((str(p), f"{display_name(p)}: no such file or folder"))
        except OSError as exc:  # name too long, permission denied on a parent, ...
            scan.missing.append((str(p), f"{display_name(p)}: cannot read ({_reason(exc)})"))
    unique: dict[Path, None] = {}
    for q in found:
        try:
            unique[q.resolve()] = None
        except (OSError, RuntimeError) as exc:  # a symbolic link loop
            scan.missing.append((str(q), f"{display_name(q)}: cannot resolve path ({exc})"))
    scan.files = list(unique)
    return scan


def expand_paths(paths) -> tuple[list[Path], list[tuple[str, str]]]:
    """Audio files under the given files and folders (recursively, sorted), and inputs that could not be used."""
    scan = scan_paths(paths)
    return scan.files, scan.missing
