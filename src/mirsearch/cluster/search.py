"""Sharded search on a Dask cluster: shards held in the workers' memory, a query fanned out, results merged.

:class:`ShardedSearch` splits a collection's recordings into one shard per worker (balanced by duration,
:func:`~mirsearch.cluster.shards.balance`), builds each shard's database in this process one shard at a
time and scatters it to its worker, where it stays for every further query until the collection's
*generation* moves (a recording added, updated or removed). A query runs the local search function on every
shard at once (:func:`~mirsearch.search.theme.search_theme`, :func:`~mirsearch.search.audio.search_audio`);
since a shard holds whole recordings and both searches pick their occurrences per recording, the union of
the shards' top results holds the collection's top results, and sorting it by cost, then by recording id
(the order of the local database) gives exactly the local ranking. A shard lost with its worker is
scattered again once. Identification (:meth:`ShardedSearch.fingerprints`, :mod:`mirsearch.cluster.identify`)
and search by similarity (:meth:`ShardedSearch.similarity`, :mod:`mirsearch.cluster.similar`) use the same
shards machinery.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from functools import partial

from mirsearch.cluster.client import connect, worker_addresses
from mirsearch.cluster.shards import ThemeShard, balance
from mirsearch.errors import CollectionError, InputError, MirsearchError

log = logging.getLogger(__name__)


def _theme_task(shard: ThemeShard, theme, options: dict):
    """On a worker: the theme search of one shard (errors are returned, not raised)."""
    from mirsearch.search.theme import search_theme

    try:
        return search_theme(shard, theme, **options)
    except MirsearchError as exc:
        return exc


def _passages_task(db, query, options):
    """On a worker: the passage search of one shard's CENS database (errors are returned, not raised)."""
    from mirsearch.search.audio import search_audio

    try:
        return search_audio(db, query, options)
    except MirsearchError as exc:
        return exc


def merge_matches(parts, top: int) -> list:
    """The best ``top`` of the shards' matches, by cost, then recording id (each shard's order kept among
    equal keys): the order of the local search."""
    found = [m for part in parts for m in part]
    found.sort(key=lambda m: (m.cost, m.recording_id))
    return found[:top]


class ShardedSearch:
    """Searches of collections whose shards live on the workers of one Dask client.

    Parameters
    ----------
    client : distributed.Client
    """

    def __init__(self, client):
        self.client = client
        self._shards: dict[tuple, tuple[int, list]] = {}
        self._lock = threading.Lock()

    # -- shards ---------------------------------------------------------------------------------
    def shards(self, coll, key: tuple, build, *, weigh=None) -> list:
        """Futures of the shards named ``key`` for ``coll``'s current generation, scattered on first use.

        ``build(recording_ids)`` returns a shard's data, or None when none of them has usable features;
        ``weigh(recording)`` what the shards are balanced by (default its duration).
        """
        generation = coll.generation()
        name = (str(coll.root), key)
        with self._lock:
            hit = self._shards.get(name)
            if hit is not None and hit[0] == generation:
                return hit[1]
            self._shards.pop(name, None)  # the old generation's shards are released
            t0 = time.perf_counter()
            workers = worker_addresses(self.client)
            recs = coll.recordings()
            futures = []
            weights = [weigh(r) if weigh else r.duration for r in recs]
            for address, group in zip(workers, balance(weights, len(workers)), strict=True):
                part = build([recs[i].id for i in group]) if group.size else None
                if part is not None:
                    futures.append(self.client.scatter(part, workers=[address], hash=False))
            self._shards[name] = (generation, futures)
            log.info("%s %s: %d shards scattered in %.2f s", coll.root, key, len(futures), time.perf_counter() - t0)
            return futures

    def forget(self, coll=None) -> None:
        """Release the shards of one collection (or of all)."""
        with self._lock:
            for name in [n for n in self._shards if coll is None or n[0] == str(coll.root)]:
                del self._shards[name]

    def _retrying(self, coll, key: tuple, build, work, *, weigh=None):
        """``work(shards)``; when it fails for another reason than a search error (a worker died with its
        shard), once more with the shards scattered again."""
        for attempt in (0, 1):
            shards = self.shards(coll, key, build, weigh=weigh)
            try:
                return work(shards)
            except MirsearchError:
                raise
            except Exception:
                if attempt:
                    raise
                log.warning("%s: a shard was lost with its worker; scattering again", coll.root, exc_info=True)
                with self._lock:
                    self._shards.pop((str(coll.root), key), None)
        raise AssertionError("unreachable")

    def fan_out(self, coll, key: tuple, build, task, *args, weigh=None) -> list:
        """``task(shard, *args)`` on every shard of :meth:`shards` (a search's errors are returned by the task,
        not raised); a shard lost with its worker is scattered again once."""

        def work(shards):
            return gather_within_budget(self.client, [self.client.submit(task, s, *args, pure=False) for s in shards])

        return self._retrying(coll, key, build, work, weigh=weigh)

    def fingerprints(self, coll, work):
        """``work(index)`` with the collection's fingerprint index as shards on the workers
        (:class:`~mirsearch.cluster.identify.ShardedFingerprintIndex`; for ``identify(..., index=)``)."""
        from mirsearch.cluster.identify import ShardedFingerprintIndex, shard_of
        from mirsearch.search.identify import collection_index

        whole = collection_index(coll)  # memory-mapped; only its configuration and slices are used here
        build = partial(shard_of, whole)
        return self._retrying(
            coll, ("fingerprint",), build, lambda s: work(ShardedFingerprintIndex(self.client, s, whole))
        )

    def similarity(self, coll):
        """The collection's similarity vectors as shards on the workers, duck-typed as its
        :class:`~mirsearch.describe.similarity.SimilarityIndex`
        (:class:`~mirsearch.cluster.similar.ShardedSimilarityIndex`: the same answers as the exact index)."""
        from mirsearch.cluster.similar import ShardedSimilarityIndex

        return ShardedSimilarityIndex(self, coll)

    # -- searches -------------------------------------------------------------------------------
    def theme(self, coll, theme, *, features: str, top: int, **options) -> list:
        """:func:`~mirsearch.search.theme.search_theme` over the shards: the same matches, in the same order."""

        def build(ids):
            try:
                Y, offsets, recs, rate = coll.database_of(features, ids)
            except CollectionError as exc:
                return _none_if_empty(exc)
            return ThemeShard(features, Y, offsets, recs, rate)

        options = {**options, "features": features, "top": top}
        parts = self.fan_out(coll, ("theme", features), build, _theme_task, theme, options)
        if not parts:
            coll.database(features)  # raises the local search's message (nothing to search)
        return merge_matches(_results_or_raise(parts), top)

    def passages(self, coll, query, options):
        """:func:`~mirsearch.search.audio.search_audio` over the shards' CENS databases: the same result."""
        from mirsearch.index.audio_database import prepare_database
        from mirsearch.search.audio import PassageResult

        everyone = [r.id for r in coll.recordings()]

        def build(ids):
            keep = set(ids)
            try:
                return prepare_database(coll, options.match, exclude=[i for i in everyone if i not in keep])
            except InputError as exc:
                return _none_if_empty(exc)

        match = options.match
        key = ("audio", match.features, match.window, match.downsample)
        parts = self.fan_out(coll, key, build, _passages_task, query, options)
        if not parts:
            raise InputError(f"collection: no recordings with {match.features} features (run 'mirsearch index')")
        found = _results_or_raise(parts)
        matches = merge_matches([p.matches for p in found], options.top)
        for rank, m in enumerate(matches, 1):
            m.extra["rank"] = rank
        curves = sorted((c for p in found for c in p.curves), key=lambda c: c.recording_id)
        return PassageResult(matches, curves)


class ClusterTimeout(MirsearchError):
    """A fan-out ran past the time budget of :func:`time_budget` (its futures were cancelled)."""


_BUDGET = threading.local()


@contextmanager
def time_budget(seconds: float | None):
    """In this block (this thread), a fan-out still running ``seconds`` after the block began is cancelled on
    the cluster and raises :class:`ClusterTimeout` (``mirsearch serve --dask``: the per-request budget)."""
    old = getattr(_BUDGET, "deadline", None)
    _BUDGET.deadline = None if seconds is None else time.monotonic() + seconds
    try:
        yield
    finally:
        _BUDGET.deadline = old


def gather_within_budget(client, futures: list) -> list:
    """``client.gather(futures)``; within :func:`time_budget`, the futures are cancelled at its deadline."""
    deadline = getattr(_BUDGET, "deadline", None)
    if deadline is not None:
        from distributed import wait

        try:
            wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            client.cancel(futures)
            raise ClusterTimeout("the cluster did not answer within the time budget (tasks cancelled)") from None
    return client.gather(futures)


def _none_if_empty(exc: Exception) -> None:
    """None when none of a shard's recordings has the features searched (the shard is left out); else raise."""
    if "no recordings with" not in str(exc):
        raise exc
    return None


def _results_or_raise(parts: list) -> list:
    """The shards' results; when every shard failed, the first shard's error (all shards search the same
    query, so they fail alike: a query too short, or longer than every recording; the first shard holds the
    longest recording, :func:`~mirsearch.cluster.shards.balance`, so its message is the local one)."""
    ok = [p for p in parts if not isinstance(p, Exception)]
    if ok or not parts:
        return ok
    raise parts[0]


_SEARCHES: dict[str, ShardedSearch] = {}
_GUARD = threading.Lock()


def sharded(spec: str) -> ShardedSearch:
    """The :class:`ShardedSearch` of a cluster spec (``local:N``, ``tcp://host:port``), kept for the process."""
    client = connect(spec)
    with _GUARD:
        search = _SEARCHES.get(spec)
        if search is None or search.client is not client:
            search = _SEARCHES[spec] = ShardedSearch(client)
        return search


__all__ = ["ClusterTimeout", "ShardedSearch", "gather_within_budget", "merge_matches", "sharded", "time_budget"]
