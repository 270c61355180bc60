"""mirsearch: music retrieval by theme, by audio excerpt, and synchronisation of versions."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
