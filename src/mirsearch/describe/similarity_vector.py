"""The vector of the similarity index: the timbre vector beside the two classic descriptors, every block alike.

A recording's *search vector* (:func:`search_vector`) is three blocks read from its stored ``"timbre"``
features (version 4, :func:`mirsearch.features.timbre_stats.extract_timbre`):

- ``T``: the timbre vector (:func:`mirsearch.describe.similarity.recording_vector`, 494 values in six
  sub-blocks: band statistics, their spread, rhythm, its spread, cepstral dynamics, modulation spectrum);
- ``M``: MFCC statistics (mean and variance of 20 coefficients over the recording's frames, 40 values);
- ``Y``: the mean YAMNet embedding over the recording's 0.96 s patches (1024 values; absent where YAMNet was
  not installed at index time, then the vector is ``T`` and ``M`` only).

Each dimension is z-scored over the collection and each block weighted so that its mean L1 distance between two
of the collection's recordings is the same (:func:`balanced_weights`; ``T``'s six sub-blocks share one block's
weight), so that the L1 distance adds the three views alike. That cell was fixed before it was measured
(docs/benchmarks.md, "Search by similarity", sessions 17-18): on 20 track-disjoint halves of six real
soundtracks it is +0.02 MAP@10 above the best of the two baselines (MFCC statistics, YAMNet, both combined),
where the timbre vector alone is 0.03 below it.
"""

from __future__ import annotations

import numpy as np

from mirsearch.errors import ParameterError

#: sizes of the timbre vector's sub-blocks (:data:`mirsearch.describe.similarity.VECTOR_BLOCKS`)
TIMBRE_SUBBLOCKS = (192, 192, 11, 11, 40, 48)
#: size of the MFCC block and of the YAMNet block
MFCC_DIM, YAMNET_DIM = 40, 1024
#: dimension of :func:`search_vector` with all three blocks
SEARCH_DIM = sum(TIMBRE_SUBBLOCKS) + MFCC_DIM + YAMNET_DIM
#: recordings sampled (at most) for the blocks' mean distances
SAMPLE = 500


def search_vector(X: np.ndarray) -> np.ndarray:
    """The raw search vector of a recording from its stored ``"timbre"`` features: ``[T, M, Y]``, shape
    (:data:`SEARCH_DIM`,), or ``[T, M]`` (534,) without the YAMNet block, or ``T`` (494,) for features of
    version 3."""
    from mirsearch.describe.similarity import recording_vector
    from mirsearch.features.timbre_stats import mfcc_block, yamnet_block

    parts = [recording_vector(X)]
    m = mfcc_block(X)
    if m is not None:
        parts.append(m)
        y = yamnet_block(X)
        if y is not None:
            parts.append(y)
    return np.concatenate(parts).astype(np.float32)


def block_groups(dim: int) -> list[tuple[slice, int]] | None:
    """The blocks of a search vector of dimension ``dim``: ``(columns, sub-blocks in its view)`` per block
    (``T``'s six, then ``M`` and ``Y``); None for a vector of another dimension."""
    sizes = list(TIMBRE_SUBBLOCKS) + [MFCC_DIM, YAMNET_DIM]
    views = [len(TIMBRE_SUBBLOCKS)] * len(TIMBRE_SUBBLOCKS) + [1, 1]
    out, start = [], 0
    for size, n in zip(sizes, views, strict=True):
        if start == dim:
            break
        out.append((slice(start, start + size), n))
        start += size
    return out if start == dim and len(out) >= len(TIMBRE_SUBBLOCKS) else None


def block_distances(Z: np.ndarray, *, sample: int = SAMPLE, seed: int = 0) -> np.ndarray:
    """Mean L1 distance between two recordings within every block of standardised search vectors ``Z`` (n, dim)
    (over at most ``sample`` recordings, a seeded draw), shape (n_blocks,)."""
    groups = block_groups(Z.shape[1])
    if groups is None:
        raise ParameterError(f"search vectors of dimension {Z.shape[1]} have no known blocks")
    from scipy.spatial.distance import cdist

    Z = np.asarray(Z, np.float64)
    if len(Z) > sample:
        Z = Z[np.sort(np.random.default_rng(seed).choice(len(Z), sample, replace=False))]
    n = len(Z)
    if n < 2:
        return np.zeros(len(groups))
    return np.array([cdist(Z[:, cols], Z[:, cols], "cityblock").sum() / (n * (n - 1)) for cols, _ in groups])


def balanced_weights(distances: np.ndarray, dim: int) -> np.ndarray:
    """Per-dimension weights (dim,) that make every view (``T``, ``M``, ``Y``) weigh alike in the L1 distance of
    standardised vectors whose blocks have the mean distances ``distances`` (:func:`block_distances`): block
    ``b`` gets ``1 / (sub-blocks of its view * distance_b)``, scaled so that the mean of ``|a - b|`` over the
    dimensions is 1 for a typical pair of the collection. Blocks with no spread weigh nothing."""
    groups = block_groups(dim)
    if groups is None:
        return np.ones(dim)
    d = np.asarray(distances, np.float64)
    if len(d) < len(groups):
        raise ParameterError(f"{len(d)} block distances for {len(groups)} blocks")
    w = np.zeros(dim)
    for (cols, views), db in zip(groups, d, strict=False):
        w[cols] = 1.0 / (views * db) if db > 1e-12 else 0.0
    n_views = len(groups) - len(TIMBRE_SUBBLOCKS) + 1
    return w * dim / n_views


def balanced_normaliser(V: np.ndarray, *, source: str = "collection"):
    """The standardisation of raw search vectors ``V`` (n, dim): z-scores over the rows, then
    :func:`balanced_weights` of their block distances (uniform weights for a vector of unknown blocks)."""
    from mirsearch.describe.similarity import Normaliser

    V = np.asarray(V, np.float64)
    mean, std = V.mean(axis=0), V.std(axis=0) + 1e-6
    if block_groups(V.shape[1]) is None:
        return Normaliser(mean.astype(np.float32), std.astype(np.float32), source)
    w = balanced_weights(block_distances((V - mean) / std), V.shape[1])
    scale = np.where(w > 0, std / np.maximum(w, 1e-300), np.inf)
    return Normaliser(mean.astype(np.float32), scale.astype(np.float32), source)
