"""Derived, rebuildable indexes over a collection: nearest-neighbour indexes (:mod:`~mirsearch.index.ann`),
the shingle store (:mod:`~mirsearch.index.shingle_store`) and the shingle index
(:mod:`~mirsearch.index.shingle_index`). They live in ``<collection>/index/`` and can be deleted at any time.
"""
