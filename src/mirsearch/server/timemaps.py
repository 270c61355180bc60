"""Time maps between recordings of a collection, computed on demand and cached on disk.

The interpretation switcher needs, for two versions of a work, the time in one that corresponds to a
time in the other. :class:`TimeMapCache` computes it with the task ``align`` (its defaults) the first
time a pair is asked for and keeps it in ``<collection>/timemaps/`` (keyed by the two recordings'
content hashes and the alignment settings, :func:`settings_tag`, so a changed file or setting gets a new map),
and in memory. Only one direction is stored: the
other is its inverse. Concurrent requests for one pair wait for a single computation.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections import OrderedDict
from pathlib import Path

from mirsearch._util import atomic_write_text
from mirsearch.errors import InputError

log = logging.getLogger(__name__)

#: spacing (s) of the stored time map points
STEP = 0.1
#: time maps (and alignment failures) kept in memory
MEMORY_ITEMS = 64


class TimeMapCache:
    """Time maps between recordings, computed once per pair.

    Parameters
    ----------
    folder : Path or None
        Where maps are stored (``<collection>/timemaps``); created on first write. If it cannot be
        written (read-only medium), maps stay in memory only.
    align : callable, optional
        ``align(path_a, path_b) -> TimeMap``; default :func:`align_recordings` (task ``align``).
    """

    def __init__(self, folder: Path | None, *, align=None):
        self.folder = Path(folder) if folder is not None else None
        self._align = align
        self._memory: OrderedDict[tuple[str, str], object] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], threading.Lock] = {}
        self._writable = True

    def time_map_for(self, rec_a, rec_b, *, compute: bool = True):
        """The time map from recording ``rec_a`` to ``rec_b``.

        Parameters
        ----------
        rec_a, rec_b : Recording
            Catalogue entries (``.path``, ``.sha1``, ``.duration``).
        compute : bool
            Align the pair when no map is cached; else return None in that case.

        Returns
        -------
        mirsearch.sync.TimeMap or None
            ``.map(t)`` gives the time in ``rec_b`` for a time ``t`` in ``rec_a``.

        Raises
        ------
        InputError
            The recordings cannot be aligned (unreadable, or not versions of one piece).
        """
        if rec_a.sha1 <= rec_b.sha1:
            return self._canonical(rec_a, rec_b, compute)
        tmap = self._canonical(rec_b, rec_a, compute)
        return None if tmap is None else tmap.inverse

    # -- internals --------------------------------------------------------------------------------
    def _canonical(self, rec_a, rec_b, compute: bool):
        key = (rec_a.sha1, rec_b.sha1)
        hit = self._remembered(key)
        if hit is not None:
            return _raise_or_return(hit)
        if not compute:
            hit = self._load(key)
            if hit is not None:
                self._remember(key, hit)
            return hit
        with self._lock:
            pair_lock = self._pending.setdefault(key, threading.Lock())
        with pair_lock:  # one computation per pair; the others wait and then read the cache
            hit = self._remembered(key)
            if hit is None:
                hit = self._load(key)
            if hit is None:
                hit = self._compute(rec_a, rec_b)
                if not isinstance(hit, Exception):
                    self._store(key, hit)
            self._remember(key, hit)
        with self._lock:
            self._pending.pop(key, None)
        return _raise_or_return(hit)

    def _remembered(self, key):
        with self._lock:
            value = self._memory.get(key)
            if value is not None:
                self._memory.move_to_end(key)
            return value

    def _remember(self, key, value) -> None:
        with self._lock:
            self._memory[key] = value
            while len(self._memory) > MEMORY_ITEMS:
                self._memory.popitem(last=False)

    def _file(self, key) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / f"{key[0][:20]}_{key[1][:20]}_{settings_tag()}.json"

    def _load(self, key):
        path = self._file(key)
        if path is None or not path.is_file():
            return None
        from mirsearch.service.sync import TimeMap

        try:
            return TimeMap.from_dict(json.loads(path.read_text()))
        except Exception as exc:  # a damaged cache file is recomputed
            log.warning("%s: unreadable time map (%s); recomputing", path, exc)
            return None

    def _store(self, key, tmap) -> None:
        path = self._file(key)
        if path is None or not self._writable:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, tmap.to_json())
        except OSError as exc:
            self._writable = False
            log.warning("%s: cannot store time maps (%s); keeping them in memory", path.parent, exc)

    def _compute(self, rec_a, rec_b):
        align = self._align or align_recordings
        for rec in (rec_a, rec_b):
            if not Path(rec.path).is_file():
                return InputError(f"recording {rec.id} ({Path(rec.path).name}): file is missing on disk")
        try:
            tmap = align(rec_a.path, rec_b.path)
        except InputError as exc:
            log.info("no time map for %s and %s: %s", rec_a.path, rec_b.path, exc)
            return InputError(str(exc))
        return tmap.resample(STEP) if hasattr(tmap, "resample") else tmap


@functools.cache
def settings_tag() -> str:
    """A short hash of the settings every map is made with (task ``align``'s defaults, :data:`STEP`, the version
    of mirsearch): part of each cache file's name, so that changed settings make new maps."""
    from mirsearch.service.sync import align_settings_tag

    return align_settings_tag(step=STEP)


def align_recordings(path_a: str, path_b: str):
    """The time map from ``path_a`` to ``path_b``: task ``align`` with its defaults."""
    from mirsearch.service import run
    from mirsearch.service.sync import AlignRequest

    return run("align", AlignRequest(a=path_a, b=path_b)).time_map


def _raise_or_return(value):
    if isinstance(value, Exception):
        raise InputError(str(value))
    return value
