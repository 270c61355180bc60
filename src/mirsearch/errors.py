"""One exception hierarchy for mirsearch.

Every error a user can cause derives from :class:`MirsearchError`; its message is one line that names
the file or the parameter and what is wrong (``"query.mid: no notes found"``).
"""

from __future__ import annotations


class MirsearchError(Exception):
    """Root of all mirsearch errors."""


class InputError(MirsearchError):
    """A file or user input (audio, score, note string) cannot be used."""


class ParameterError(MirsearchError, ValueError):
    """A parameter has an invalid value."""


class CollectionError(MirsearchError):
    """A collection on disk is missing, locked or inconsistent."""


def check_positive(name: str, value: float) -> None:
    """Raise :class:`ParameterError` unless ``value > 0``."""
    if not value > 0:
        raise ParameterError(f"{name}={value!r} must be > 0")
