"""Atomic file writes and exclusive directory locks.

Every file mirsearch writes goes through :func:`atomic_path`: the content is written to a temporary file in the
target's folder, flushed to disk and moved into place with :func:`os.replace`, so a file that exists is always
complete, whatever moment a process is killed at.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mirsearch.errors import CollectionError, InputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The caller writes the temporary file by any means (a library's ``save(path)``, an external program).
    On an exception the temporary file is removed and ``path`` is left as it was. A folder that cannot be
    created or written raises :class:`~mirsearch.errors.InputError` naming ``path``.

    Parameters
    ----------
    path : path-like
        The file to (re)place. Its folder is created if needed.
    suffix : str, optional
        Suffix of the temporary file (some writers choose the format by it); default: ``path``'s suffix.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=target.parent, prefix=".tmp-", suffix=target.suffix if suffix is None else suffix
        )
    except OSError as exc:  # an output path that cannot be written: a one-line error naming it
        raise InputError(f"{target}: cannot write ({exc.strerror or type(exc).__name__})") from None
    os.close(fd)
    try:
        yield Path(tmp)
        with contextlib.suppress(OSError), open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npy(path: str | os.PathLike, X: np.ndarray) -> None:
    """Write the array ``X`` to ``path`` (``.npy``) atomically."""
    with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(X))


@contextlib.contextmanager
def directory_lock(directory: str | os.PathLike, *, name: str = "write.lock") -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``directory / name`` while the block runs.

    Raises
    ------
    CollectionError
        When another process holds the lock (the call does not wait).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fh = open(directory / name, "w")  # noqa: SIM115 - closed below
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CollectionError(f"{directory}: another process is updating it ({name} held)") from None
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
