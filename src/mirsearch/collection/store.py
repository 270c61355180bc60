"""Feature arrays on disk: one ``.npy`` file per recording content and feature configuration.

Files are written atomically (:func:`mirsearch._util.atomic_save_npy`), so a file that exists is always
complete; the catalogue row that points at it is committed only afterwards. Reading checks what it reads:
a truncated or foreign file gives a one-line :class:`~mirsearch.errors.CollectionError` naming it.
"""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_save_npy
from mirsearch.errors import CollectionError, InputError


def feature_filename(kind: str, sha1: str, key: str) -> str:
    """Relative path of a stored array: ``features/<kind>/<sha1[:2]>/<sha1>-<key>.npy``."""
    return f"features/{kind}/{sha1[:2]}/{sha1}-{key}.npy"


def save_array(root: Path, relative: str, X: np.ndarray) -> None:
    """Atomically write ``X`` to ``root / relative``.

    Raises
    ------
    CollectionError
        The file system refused (disk full, read-only, no permission); nothing is left behind.
    """
    try:
        atomic_save_npy(Path(root) / relative, X)
    except OSError as exc:
        reason = {errno.ENOSPC: "disk full", errno.EROFS: "read-only file system", errno.EDQUOT: "quota exceeded"}
        text = reason.get(exc.errno, exc.strerror or type(exc).__name__)
        raise CollectionError(f"{root}: cannot store features ({text})") from None
    except InputError as exc:  # the folder cannot be created or written
        raise CollectionError(f"{root}: cannot store features ({str(exc).rsplit('(', 1)[-1].rstrip(')')})") from None


def load_array(root: Path, relative: str, *, mmap: bool = True) -> np.ndarray:
    """Load a stored array (memory-mapped by default).

    Raises
    ------
    CollectionError
        Missing, truncated or unreadable file (named in the message).
    """
    path = Path(root) / relative
    try:
        X = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise CollectionError(f"{path}: stored features are missing (re-run 'mirsearch index')") from None
    except (OSError, ValueError, EOFError) as exc:
        text = str(exc).strip().splitlines()
        raise CollectionError(
            f"{path}: stored features are corrupt ({text[0][:120] if text else type(exc).__name__})"
        ) from None
    if not isinstance(X, np.ndarray) or X.ndim != 2:
        raise CollectionError(f"{path}: stored features are corrupt (not a 2-D array)")
    return X


def remove_orphans(root: Path, referenced: set[str]) -> int:
    """Delete feature files and temporary files no catalogue row refers to; returns how many."""
    removed = 0
    base = Path(root) / "features"
    if not base.is_dir():
        return 0
    for path in base.rglob("*.npy"):
        rel = path.relative_to(root).as_posix()
        if rel not in referenced:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
