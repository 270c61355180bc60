"""Feature arrays on disk: one ``.npy`` file per recording and feature configuration.

Files are written to a temporary name and moved into place with :func:`os.replace`, so a file that
exists is always complete; the catalogue row that points at it is committed only afterwards.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def feature_filename(kind: str, sha1: str, key: str) -> str:
    """Relative path of a stored array: ``features/<kind>/<sha1[:2]>/<sha1>-<key>.npy``."""
    return f"features/{kind}/{sha1[:2]}/{sha1}-{key}.npy"


def save_array(root: Path, relative: str, X: np.ndarray) -> None:
    """Atomically write ``X`` to ``root / relative``."""
    target = Path(root) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, np.ascontiguousarray(X))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_array(root: Path, relative: str, *, mmap: bool = True) -> np.ndarray:
    """Load a stored array (memory-mapped by default)."""
    return np.load(Path(root) / relative, mmap_mode="r" if mmap else None)


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
