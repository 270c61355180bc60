"""The Python API: an archive is an open collection with every task of the service on it.

It mirrors the CLI: ``mirsearch index`` is :meth:`Archive.add`, ``mirsearch search --theme`` is
:meth:`Archive.search_theme`, and any registered task runs with :meth:`Archive.run` (the same names, parameters
and defaults as the command line and the HTTP API).

>>> archive = Archive.create("beethoven.mirs")                      # doctest: +SKIP
>>> archive.add(["~/music"], jobs=2, progress=True)                 # doctest: +SKIP
>>> for m in archive.search_theme("G G G Eb F F F D", top=10).matches:   # doctest: +SKIP
...     print(m.recording, m.start, m.end, m.cost, m.transposition)
"""

from __future__ import annotations

import os
from pathlib import Path

from mirsearch.collection import Collection
from mirsearch.errors import InputError
from mirsearch.scores import Theme
from mirsearch.search.query import ThemeQuery
from mirsearch.service.core import Context, get_task, query_specs


class Archive:
    """A collection and the tasks that run on it.

    Parameters
    ----------
    collection : Collection
        An open collection (see :meth:`create` and :meth:`open`).
    """

    def __init__(self, collection: Collection):
        self.collection = collection

    @classmethod
    def create(cls, path: str | os.PathLike, **options) -> Archive:
        """Create (or open) a collection folder; ``options`` as :meth:`Collection.create`."""
        return cls(Collection.create(Path(path).expanduser(), **options))

    @classmethod
    def open(cls, path: str | os.PathLike, *, readonly: bool = False) -> Archive:
        """Open an existing collection folder."""
        return cls(Collection.open(Path(path).expanduser(), readonly=readonly))

    def close(self) -> None:
        self.collection.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, paths, *, jobs: int = 1, progress: bool = False):
        """Index audio files and folders (``~`` expanded); raises :class:`InputError` when nothing could be read.

        Returns the :class:`~mirsearch.collection.AddReport` (added, updated, unchanged, failed).
        """
        paths = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
        report = self.collection.add([Path(p).expanduser() for p in paths], jobs=jobs, progress=progress)
        if report.failed and not (report.added or report.updated or report.unchanged or report.moved):
            raise InputError(f"nothing could be added: {report.failed[0][1]}")
        return report

    def remove(self, paths):
        """Remove the recordings of files or folders (``mirsearch remove``); returns the UpkeepReport."""
        paths = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
        return self.collection.remove([Path(p).expanduser() for p in paths])

    def prune(self):
        """Remove the recordings whose files are gone (``mirsearch prune``)."""
        return self.collection.prune()

    def relocate(self, old: str | os.PathLike, new: str | os.PathLike):
        """Recordings under ``old`` now live under ``new`` (``mirsearch relocate``; no feature recomputed)."""
        return self.collection.relocate(Path(old).expanduser(), Path(new).expanduser())

    def run(self, task: str, query=None, **params):
        """Run the task ``task`` with ``query`` (where the task takes one) and its parameters by name."""
        spec = get_task(task)
        queries = query_specs(spec.request)
        fields = {queries[0][0]: query} if queries else {}
        return spec.run(Context(collection=self.collection), spec.request(**fields, **params))

    def search_theme(self, theme: str | Theme | ThemeQuery, **params):
        """Find where a theme (a note string, a :class:`Theme` or a :class:`ThemeQuery`) is played.

        ``params``: the ``theme`` task's parameters (``top``, ``per_recording``, ``features``, ``cascade``, ...).
        Returns a :class:`~mirsearch.service.theme.SearchResult`.
        """
        return self.run("theme", ThemeQuery.of(theme), **params)
