"""One cache of the views derived from a collection (concatenated databases, coarse blocks, indexes).

Every view is keyed by a tuple that names it (``("database", "chroma")``, ``("notes", "learned", 4)``) and is
valid for one *generation* of the collection (a counter the catalogue moves whenever a recording is added,
updated or removed, also by another process). A view built at an older generation is rebuilt on its next use,
so no view can go stale after an in-place re-index. The cache is thread-safe: a server answering several
requests at once builds each view once (builds of different keys run in parallel).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class DerivedViews:
    """Views of a collection memoised per generation.

    Parameters
    ----------
    generation : callable () -> int
        The collection's current generation (read on every :meth:`get`; cheap).
    """

    def __init__(self, generation: Callable[[], int]):
        self._generation = generation
        self._values: dict[tuple, tuple[int, Any]] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: tuple, build: Callable[[], T]) -> T:
        """The view named ``key``: the memoised value, or ``build()`` when there is none for this generation."""
        generation = self._generation()
        hit = self._values.get(key)
        if hit is not None and hit[0] == generation:
            return hit[1]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            hit = self._values.get(key)
            if hit is not None and hit[0] == generation:
                return hit[1]
            log.debug("building view %s at generation %d", key, generation)
            value = build()
            self._values[key] = (generation, value)
            return value

    def peek(self, key: tuple) -> Any | None:
        """The memoised value of ``key`` if it is current, else None (never builds)."""
        hit = self._values.get(key)
        return hit[1] if hit is not None and hit[0] == self._generation() else None

    def clear(self) -> None:
        """Forget every view (they are rebuilt on their next use)."""
        with self._guard:
            self._values.clear()

    def __len__(self) -> int:
        return len(self._values)
