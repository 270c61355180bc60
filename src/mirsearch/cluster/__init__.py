"""Indexing and search on a Dask cluster (``--dask local:N`` or ``--dask tcp://host:port``).

- :mod:`~mirsearch.cluster.client`: a client per spec (a local cluster of worker processes, or a scheduler).
- :mod:`~mirsearch.cluster.indexing`: decoding and feature extraction as Dask tasks; the catalogue is written
  by the calling process only (:func:`dask_producer` plugs into :meth:`Collection.add`).
- :mod:`~mirsearch.cluster.shards`: recordings split into shards balanced by duration.
- :mod:`~mirsearch.cluster.search`: shards held in the workers' memory, queries fanned out, the per-shard top
  results merged into exactly the local ranking (:class:`ShardedSearch`: theme, passages).
- :mod:`~mirsearch.cluster.identify`: the fingerprint index as shards (identify, identify-scan; bit for bit).
- :mod:`~mirsearch.cluster.similar`: the timbre vectors as shards (similar, similar-audio; the exact ranking).

``distributed`` is imported on first use only (``mirsearch --help`` stays fast).
"""

from __future__ import annotations

from mirsearch.cluster.client import SPEC_FORMS, close, connect, parse_spec
from mirsearch.cluster.indexing import dask_producer
from mirsearch.cluster.search import ShardedSearch, sharded

__all__ = ["SPEC_FORMS", "ShardedSearch", "close", "connect", "dask_producer", "parse_spec", "sharded"]
