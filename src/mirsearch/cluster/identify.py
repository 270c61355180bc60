"""Audio identification on a Dask cluster: the fingerprint index split into shards held by the workers.

:class:`ShardedFingerprintIndex` answers :meth:`~mirsearch.index.fingerprints.FingerprintIndex.lookup` like the
collection's index, so :func:`mirsearch.search.identify.identify` and :func:`~mirsearch.search.identify.scan`
run unchanged on it (``index=``): the voting and verification stay in the calling process, the index (the
memory) is spread over the workers. A lookup takes two fan-outs: the shards' bucket sizes of the query hashes
are summed first, so that a hash skipped for being too common (``max_bucket``) is skipped as in the whole
index; then every shard returns its entries for the other hashes, each with its hash and its rank within that
hash's bucket of the whole index, and the union is sorted by (hash, rank), which is the order of the whole
index's rows: the local lookup's entries *in the local order*, bit for bit. (The verification's line fit sums
in that order, so any other order moves offsets and speeds by an ulp.)
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from mirsearch.index.fingerprints import MAX_BUCKET, FingerprintIndex, Matches


@dataclass(frozen=True)
class PlacedMatches(Matches):
    """:class:`Matches` of a shard, with each entry's place in the whole index: its hash and its rank in that
    hash's bucket."""

    hashes: np.ndarray  # uint32
    ranks: np.ndarray  # uint16 or uint32


class FingerprintShard(FingerprintIndex):
    """The entries of some recordings (still sorted by hash) and each one's rank in its hash's bucket of the
    whole index (uint16 while every rank fits, else uint32: 2 or 4 bytes per entry beside the entry's 16).

    Its :meth:`lookup` returns :class:`PlacedMatches`, which :func:`merge_placed` puts back in the whole
    index's order.
    """

    def __init__(self, arrays: dict, *, ranks: np.ndarray, **kwargs):
        super().__init__(arrays, **kwargs)
        self.ranks = ranks

    def _gather(self, pos: np.ndarray, query: np.ndarray) -> PlacedMatches:
        m = super()._gather(pos, query)
        place = {"hashes": np.asarray(self.arrays["hashes"][pos]), "ranks": self.ranks[pos]}
        return PlacedMatches(**{f.name: getattr(m, f.name) for f in fields(Matches)}, **place)

    def nbytes(self) -> int:
        return super().nbytes() + int(self.ranks.nbytes)


def shard_of(index: FingerprintIndex, recording_ids) -> FingerprintShard | None:
    """The entries of some recordings, or None when they have none."""
    ids = np.asarray(sorted(int(i) for i in recording_ids if int(i) in index.recordings), dtype=np.uint32)
    if ids.size == 0:
        return None
    keep = np.isin(np.asarray(index.arrays["recording_ids"]), ids)
    arrays = {k: np.ascontiguousarray(np.asarray(v)[keep]) for k, v in index.arrays.items()}
    rows = np.flatnonzero(keep)
    ranks = rows - np.searchsorted(np.asarray(index.arrays["hashes"]), arrays["hashes"], side="left")
    ranks = ranks.astype(np.uint16 if ranks.max(initial=0) < 2**16 else np.uint32)
    recordings = {int(i): index.recordings[int(i)] for i in ids}
    return FingerprintShard(
        arrays, ranks=ranks, hconfig=index.hconfig, peak_config=index.peak_config, recordings=recordings
    )


def _bucket_task(index: FingerprintIndex, hashes: np.ndarray) -> np.ndarray:
    """On a worker: entries per query hash in this shard."""
    H = index.arrays["hashes"]  # noqa: N806
    return np.searchsorted(H, hashes, side="right") - np.searchsorted(H, hashes, side="left")


def _lookup_task(index: FingerprintShard, hashes: np.ndarray, source: np.ndarray) -> PlacedMatches:
    """On a worker: this shard's entries of the hashes (too common ones were dropped by the caller)."""
    return index.lookup(hashes, source, max_bucket=np.iinfo(np.int64).max)


def merge_placed(parts: list) -> Matches:
    """The shards' entries in the order of the whole index (by hash, then rank in the hash's bucket: the order
    of its rows): the local lookup's :class:`Matches`.

    Places are unique across shards (each entry is in one shard), and among the equal places of one shard (an
    entry matched by several probes) the stable sort keeps the shard's order, the probes' order, as the local
    lookup does.
    """
    names = [f.name for f in fields(Matches)]
    if not parts:
        return Matches(np.zeros(0, np.int64), *(np.zeros(0, t) for t in (np.uint32, *(np.float32,) * 3)))
    hashes = np.concatenate([p.hashes for p in parts]).astype(np.uint64)
    ranks = np.concatenate([p.ranks for p in parts]).astype(np.uint64)
    order = np.argsort((hashes << np.uint64(32)) | ranks, kind="stable")
    return Matches(*(np.concatenate([getattr(p, f) for p in parts])[order] for f in names))


class ShardedFingerprintIndex:
    """A collection's fingerprint index as shards on a cluster's workers (duck-typed ``FingerprintIndex``).

    Parameters
    ----------
    client : distributed.Client
    shards : list of distributed.Future
        Each a :class:`FingerprintShard` of some recordings, in the workers' memory.
    like : FingerprintIndex
        The whole index (its configuration and recordings are copied, not its arrays).
    """

    def __init__(self, client, shards: list, like: FingerprintIndex):
        self.client = client
        self.shards = shards
        self.hconfig = like.hconfig
        self.peak_config = like.peak_config
        self.recordings = dict(like.recordings)
        self.frame_rate = like.frame_rate

    def lookup(self, hashes: np.ndarray, source: np.ndarray, *, max_bucket: int = MAX_BUCKET) -> Matches:
        """Entries sharing a hash with each query probe, from every shard, in the local lookup's order (hashes
        with more than ``max_bucket`` entries in the whole index skipped)."""
        hashes = np.asarray(hashes, dtype=np.uint32)
        source = np.asarray(source, dtype=np.int64)
        from mirsearch.cluster.search import gather_within_budget

        client, submit = self.client, self.client.submit
        counts = sum(gather_within_budget(client, [submit(_bucket_task, s, hashes, pure=False) for s in self.shards]))
        keep = np.asarray(counts) <= max_bucket
        lookups = [submit(_lookup_task, s, hashes[keep], source[keep], pure=False) for s in self.shards]
        parts = gather_within_budget(client, lookups)
        return merge_placed(parts)


__all__ = ["FingerprintShard", "PlacedMatches", "ShardedFingerprintIndex", "merge_placed", "shard_of"]
