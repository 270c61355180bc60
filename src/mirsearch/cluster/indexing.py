"""Indexing on a Dask cluster: decoding and feature extraction run as tasks on the workers.

:func:`dask_producer` returns the *result producer* of :func:`mirsearch.collection.indexing.run_add`: it
submits :func:`~mirsearch.collection.extract.process_file` for each file (a bounded number in flight) and
yields one :class:`~mirsearch.collection.extract.FileResult` per file as the tasks complete
(:class:`distributed.as_completed`). The catalogue is written by the calling process only, one recording per
transaction, exactly as in a local run.

A worker that dies (killed, out of memory, a decoder crash) loses nothing: the scheduler runs its tasks again
on the other workers; a file whose task has killed ``distributed.scheduler.allowed-failures`` workers becomes
a failure line (:class:`distributed.KilledWorker`), like a file that crashes the decoder of a local run. Each
task is yielded once, so no file is committed twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

from mirsearch.audio import display_name
from mirsearch.collection.extract import FileResult, process_file

log = logging.getLogger(__name__)

#: tasks in flight per worker thread (keeps the workers busy without holding every result in memory)
IN_FLIGHT_PER_THREAD = 4


def dask_producer(client, *, in_flight: int | None = None):
    """A result producer ``(todo, configs) -> iterator of FileResult`` running the files on ``client``'s workers.

    Parameters
    ----------
    client : distributed.Client
    in_flight : int >= 1, optional
        Files submitted at once (default :data:`IN_FLIGHT_PER_THREAD` per worker thread).
    """

    def produce(todo, configs) -> Iterator[FileResult]:
        limit = in_flight or max(2, IN_FLIGHT_PER_THREAD * max(1, sum(client.nthreads().values())))
        yield from _run(client, list(todo), configs, limit)

    return produce


def _run(client, todo: list, configs: list[dict], limit: int) -> Iterator[FileResult]:
    from distributed import as_completed

    run = uuid.uuid4().hex[:8]
    pending = iter(enumerate(todo))
    live: dict[str, tuple] = {}  # task key -> (path, future)
    done = as_completed()

    def submit_next() -> None:
        item = next(pending, None)
        if item is None:
            return
        i, (path, known) = item
        fut = client.submit(process_file, path, known, configs, key=f"index-{run}-{i}", pure=False)
        live[fut.key] = (path, fut)
        done.add(fut)

    for _ in range(limit):
        submit_next()
    try:
        for fut in done:
            path, _ = live.pop(fut.key)
            result = _result_of(fut, path)
            fut.release()
            submit_next()
            yield result
    finally:  # an aborted or interrupted run: nothing keeps running on the workers
        if live:
            client.cancel([f for _, f in live.values()], force=True)


def _result_of(fut, path: str) -> FileResult:
    """The task's result, or a failure line when it could not be run."""
    from distributed import KilledWorker

    try:
        return fut.result()
    except KilledWorker:
        return FileResult("error", path, error=f"{display_name(path)}: the decoder crashed (its workers died)")
    except Exception as exc:  # noqa: BLE001 - one file must never stop the batch
        log.debug("task of %s failed", path, exc_info=True)
        text = str(exc).strip().splitlines()
        msg = f"{display_name(path)}: {type(exc).__name__}: {text[0][:200] if text else ''}"
        return FileResult("error", path, error=msg)


__all__ = ["IN_FLIGHT_PER_THREAD", "dask_producer"]
