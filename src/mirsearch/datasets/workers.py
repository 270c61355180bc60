"""Worker processes for the dataset build that survive a crashing task (a segfault in a native library)."""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from mirsearch.errors import MirsearchError

logger = logging.getLogger(__name__)


class Workers:
    """Worker processes (fork) that survive a crashing task.

    When a worker dies (a segfault in a native library), the pending tasks are run one at a time until
    the one that crashes again is found; it gets ``crashed(item)`` as its result, and the others go on
    in parallel.
    """

    def __init__(self, n: int) -> None:
        self.n = int(n)
        self._ex: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._ex is None:
            self._ex = ProcessPoolExecutor(self.n, mp_context=multiprocessing.get_context("fork"))
        return self._ex

    def _reset(self) -> None:
        if self._ex is not None:
            self._ex.shutdown(wait=False, cancel_futures=True)
        self._ex = None

    def close(self) -> None:
        if self._ex is not None:
            self._ex.shutdown(wait=True, cancel_futures=True)
        self._ex = None

    def map(self, fn: Callable, items: Sequence) -> list:
        """Ordered results of ``fn`` over ``items`` (a crashed task raises :class:`MirsearchError`)."""

        def crashed(item):
            raise MirsearchError(f"a worker process crashed on {item!r:.80}")

        out = [None] * len(items)
        for i, res in self.run(fn, items, crashed=crashed):
            out[i] = res
        return out

    def run(self, fn: Callable, items: Sequence, *, crashed: Callable) -> Iterator[tuple[int, object]]:
        """Yield ``(index, fn(item))`` in completion order."""
        if self.n <= 1:
            for i, item in enumerate(items):
                yield i, fn(item)
            return
        pending = dict(enumerate(items))
        isolate = False
        while pending:
            ex = self._executor()
            if isolate:
                i = min(pending)
                try:
                    res = ex.submit(fn, pending[i]).result()
                except BrokenProcessPool:
                    logger.warning("a worker process crashed; giving up on one task")
                    self._reset()
                    res = crashed(pending[i])
                    isolate = False
                del pending[i]
                yield i, res
                continue
            futures = {ex.submit(fn, item): i for i, item in pending.items()}
            try:
                for fut in as_completed(futures):
                    i = futures[fut]
                    res = fut.result()
                    del pending[i]
                    yield i, res
            except BrokenProcessPool:
                logger.warning("a worker process crashed; running the %d pending tasks one by one", len(pending))
                self._reset()
                isolate = True
