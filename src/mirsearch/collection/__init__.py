"""Collections on disk: SQLite catalogue, feature store, indexes."""

from mirsearch.collection.catalog import Recording
from mirsearch.collection.collection import AddReport, Collection

__all__ = ["AddReport", "Collection", "Recording"]
