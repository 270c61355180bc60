"""Search by similarity ("more like this") on a Dask cluster: the recordings' timbre vectors as shards.

The client computes the collection's raw search vectors (:func:`~mirsearch.describe.similarity.normalised_collection`)
and its standardisation once per generation (:class:`SimilarityPlan`: the collection's own statistics from
:data:`~mirsearch.describe.similarity.MIN_COLLECTION` recordings on, else the shipped reference, the rule of
:class:`~mirsearch.describe.similarity.SimilarityIndex`). Each shard is an exact
:class:`~mirsearch.describe.similarity.SimilarityIndex` of some recordings, standardised with *those*
statistics: the standardisation works element by element, so a shard's rows are the local index's rows bit
for bit. A query runs :meth:`SimilarityIndex.search` on every shard (the exact mean absolute difference, the
local code) and the union sorted by distance, then recording id, is the local exact ranking.

Locally, collections of :data:`~mirsearch.describe.similarity.HNSW_MIN` recordings and more are searched
through HNSW, whose (Euclidean) proposals are then ranked exactly; the sharded search ranks every recording
exactly. The two agree whenever the proposals hold the true nearest recordings (on clustered vectors like
real timbre vectors they did for every query tried at 2,500 and 5,000 recordings, docs/scale.md; a test keeps
2,500); where they differ, the sharded answer is the exact one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirsearch.errors import CollectionError

#: ``stats["index"]`` of a sharded answer
KIND = "exact-sharded"


@dataclass(frozen=True)
class SimilarityPlan:
    """What the client keeps of a collection's similarity vectors (one generation).

    Attributes
    ----------
    ids : np.ndarray, shape (n,), int64
        Recordings with timbre features, ascending.
    vectors : np.ndarray, shape (n, dim), float32
        Their raw search vectors (:func:`~mirsearch.describe.similarity_vector.search_vector`).
    normaliser : Normaliser
        The collection's standardisation (computed once, over every vector).
    """

    ids: np.ndarray
    vectors: np.ndarray
    normaliser: object

    def vector(self, recording_id: int) -> np.ndarray:
        """The standardised vector of a recording (bit for bit the local index's row)."""
        from mirsearch.describe.similarity import STORED_KIND

        row = int(np.searchsorted(self.ids, int(recording_id)))
        if row >= len(self.ids) or self.ids[row] != int(recording_id):
            raise CollectionError(f"recording_id={recording_id} has no timbre features (index with --features "
                                  f"{STORED_KIND})")  # fmt: skip
        return self.normaliser(self.vectors[row : row + 1])[0]

    def shard(self, recording_ids):
        """The exact index of some recordings (those without timbre features skipped), or None."""
        from mirsearch.describe.similarity import SimilarityIndex

        rows = np.flatnonzero(np.isin(self.ids, np.asarray(list(recording_ids), dtype=np.int64)))
        if rows.size == 0:
            return None
        return SimilarityIndex(self.ids[rows], self.vectors[rows], normaliser=self.normaliser, kind="exact")


def plan_of(coll) -> SimilarityPlan:
    """The collection's :class:`SimilarityPlan`, built once per generation (a derived view)."""
    from mirsearch.describe import similarity as sim

    def build() -> SimilarityPlan:
        ids, V, normaliser = sim.normalised_collection(coll)
        return SimilarityPlan(ids, np.asarray(V, dtype=np.float32), normaliser)

    return coll.views.get(("similarity-plan", sim.STORED_KIND), build)


def _nearest_task(shard, vector: np.ndarray, top: int, exclude: int | None) -> list:
    """On a worker: the shard's nearest recordings ``(recording_id, distance)``."""
    return shard.search(vector, top=top, exclude=exclude)


def merge_nearest(parts, top: int) -> list[tuple[int, float]]:
    """The ``top`` nearest of the shards' answers, by distance, then recording id: the local exact order (a
    stable sort of rows in ascending id order)."""
    return sorted((hit for part in parts for hit in part), key=lambda hit: (hit[1], hit[0]))[:top]


class ShardedSimilarityIndex:
    """A collection's similarity vectors as shards on a cluster's workers (duck-typed
    :class:`~mirsearch.describe.similarity.SimilarityIndex`: ``normaliser``, ``kind``, ``len``, :meth:`vector`,
    :meth:`search`).

    Parameters
    ----------
    searches : ShardedSearch
        Scatters the shards (one per worker, balanced by recordings) and fans a query out.
    coll : Collection
    """

    kind = KIND

    def __init__(self, searches, coll):
        self._searches = searches
        self._coll = coll
        self.plan = plan_of(coll)
        self.normaliser = self.plan.normaliser

    def __len__(self) -> int:
        return len(self.plan.ids)

    def vector(self, recording_id: int) -> np.ndarray:
        return self.plan.vector(recording_id)

    def search(self, vector: np.ndarray, *, top: int, exclude: int | None = None) -> list[tuple[int, float]]:
        """The ``top`` nearest recordings ``(recording_id, distance)`` to a standardised vector, nearest first,
        ``exclude`` left out: every shard's exact answer, merged."""
        from mirsearch.errors import ParameterError

        if top < 1:
            raise ParameterError(f"top={top} must be >= 1")
        if not len(self):
            return []
        key = ("similar", self.normaliser.source)
        v = np.asarray(vector, dtype=np.float32)
        parts = self._searches.fan_out(
            self._coll, key, self.plan.shard, _nearest_task, v, top, exclude, weigh=lambda rec: 1.0
        )
        return merge_nearest(parts, top)


__all__ = ["KIND", "ShardedSimilarityIndex", "SimilarityPlan", "merge_nearest", "plan_of"]
