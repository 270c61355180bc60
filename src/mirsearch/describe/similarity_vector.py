"""The vector of the similarity index: the timbre vector beside the classic and the learned descriptors, every
view alike.

A recording's *search vector* (:func:`search_vector`) is up to four views read from its stored ``"timbre"``
features (:func:`mirsearch.features.timbre_stats.extract_timbre`):

- ``T``: the timbre vector (:func:`mirsearch.describe.similarity.recording_vector`, 494 values in six
  sub-blocks: band statistics, their spread, rhythm, its spread, cepstral dynamics, modulation spectrum);
- ``M``: MFCC statistics (mean and variance of 20 coefficients over the recording's frames, 40 values);
- ``Y``: the mean YAMNet embedding over the recording's 0.96 s patches (1024 values; absent where YAMNet was
  not installed at index time, then the vector is ``T`` and ``M`` only);
- ``N``: the mean max-pooled musicnn features (:mod:`mirsearch.features.musicnn`, 753 values) of up to 8 of its
  3-s patches (version 5; absent where the musicnn wheel was not installed, or YAMNet was not).

and, from :data:`~mirsearch.describe.similarity.MIN_COLLECTION` recordings with all four on, a fifth view that
depends on the collection:

- ``H``: the recording's texture histogram over the collection's codebook of 4-s segments
  (:mod:`mirsearch.describe.segment_codebook`, 64 values, unit length), appended by
  :func:`mirsearch.describe.similarity.raw_vector`.

The views are standardised over the collection and weighted so that each adds the same to the distance of a
typical pair of the collection's recordings (:func:`balanced_normaliser`; ``T``'s six sub-blocks share one view's
weight): ``T`` and ``M`` are z-scored per dimension and compared by their absolute differences (L1); ``Y`` and ``N``
keep the geometry of the networks: each made unit length, centred, and compared by squared differences, i.e. by the
cosine distance ``2 (1 - cos)`` (:data:`COSINE_VIEW`); so is ``H`` (the Hellinger form of the histograms). The
distance of two recordings is the sum of both kinds of term over the dimensions divided by the dimension (1 for a
typical pair). The design was fixed on 20
track-disjoint halves of six real soundtracks in sessions 17-18; the cosine ``Y`` and the musicnn view were checked
in session 19 on collections of three unseen soundtracks (docs/benchmarks.md, "Search by similarity").
"""

from __future__ import annotations

import numpy as np

from mirsearch.describe.segment_codebook import K as TEXTURE_K
from mirsearch.errors import ParameterError

#: sizes of the timbre vector's sub-blocks (:data:`mirsearch.describe.similarity.VECTOR_BLOCKS`)
TIMBRE_SUBBLOCKS = (192, 192, 11, 11, 40, 48)
#: size of the MFCC block, the YAMNet block and the musicnn block
MFCC_DIM, YAMNET_DIM, MUSICNN_DIM = 40, 1024, 753
#: size of the texture histogram (the codebook's components)
TEXTURE_DIM = TEXTURE_K
#: names of the views, in the order of the search vector
VIEWS = ("timbre", "mfcc", "yamnet", "musicnn", "textures")
#: dimension of :func:`search_vector` with T, M and Y (no musicnn)
TMY_DIM = sum(TIMBRE_SUBBLOCKS) + MFCC_DIM + YAMNET_DIM
#: dimension of :func:`search_vector` with all four views
SEARCH_DIM = TMY_DIM + MUSICNN_DIM
#: dimension of a raw vector with the collection's texture histogram (:func:`mirsearch.describe.similarity.raw_vector`)
TEXTURES_DIM = SEARCH_DIM + TEXTURE_DIM
#: recordings sampled (at most) for the blocks' mean distances
SAMPLE = 500
#: the YAMNet and musicnn views are compared by cosine (each unit length, squared differences); z-scored L1 when
#: False (sessions 17-18): on collections of three of the six soundtracks T+M+Y +0.020 against -0.016 MAP@10 over
#: the best baseline
COSINE_VIEW = True


def search_vector(X: np.ndarray) -> np.ndarray:
    """The raw search vector of a recording from its stored ``"timbre"`` features: ``[T, M, Y, N]``, shape
    (:data:`SEARCH_DIM`,), or ``[T, M, Y]`` (:data:`TMY_DIM`) without the musicnn block, ``[T, M]`` (534,) without
    the YAMNet block, or ``T`` (494,) for features of version 3."""
    from mirsearch.describe.similarity import recording_vector
    from mirsearch.features.timbre_stats import mfcc_block, musicnn_block, yamnet_block

    parts = [recording_vector(X)]
    for block in (mfcc_block, yamnet_block, musicnn_block):  # each view only after the ones before it
        v = block(X)
        if v is None:
            break
        parts.append(v)
    return np.concatenate(parts).astype(np.float32)


def block_groups(dim: int) -> list[tuple[slice, int]] | None:
    """The blocks of a search vector of dimension ``dim``: ``(columns, sub-blocks in its view)`` per block
    (``T``'s six, then ``M``, ``Y``, ``N`` and ``H``); None for a vector of another dimension."""
    sizes = list(TIMBRE_SUBBLOCKS) + [MFCC_DIM, YAMNET_DIM, MUSICNN_DIM, TEXTURE_DIM]
    views = [len(TIMBRE_SUBBLOCKS)] * len(TIMBRE_SUBBLOCKS) + [1, 1, 1, 1]
    out, start = [], 0
    for size, n in zip(sizes, views, strict=True):
        if start == dim:
            break
        out.append((slice(start, start + size), n))
        start += size
    return out if start == dim and len(out) >= len(TIMBRE_SUBBLOCKS) else None


def cosine_start(dim: int, *, cosine: bool | None = None) -> int | None:
    """The first column of the views compared by cosine (``Y`` and, where present, ``N`` and ``H``: every block from
    there on) in search vectors of dimension ``dim``; None when they have no ``Y`` block or ``cosine`` is off
    (default :data:`COSINE_VIEW`)."""
    cosine = COSINE_VIEW if cosine is None else cosine
    return TMY_DIM - YAMNET_DIM if cosine and dim in (TMY_DIM, SEARCH_DIM, TEXTURES_DIM) else None


def unit_rows(V: np.ndarray, start: int | None) -> np.ndarray:
    """``V`` (..., dim) with each block (:func:`block_groups`) from column ``start`` on divided by its Euclidean
    norm (all-zero rows kept); ``V`` itself when ``start`` is None."""
    if start is None:
        return V
    V = np.array(V, copy=True)
    for cols, _ in block_groups(V.shape[-1]) or [(slice(start, None), 1)]:
        if cols.start >= start:
            n = np.linalg.norm(V[..., cols], axis=-1, keepdims=True)
            V[..., cols] /= np.where(n > 0, n, 1)
    return V


def block_distances(
    Z: np.ndarray, *, sample: int = SAMPLE, seed: int = 0, squared_from: int | None = None
) -> np.ndarray:
    """Mean L1 distance between two recordings within every block of standardised search vectors ``Z`` (n, dim)
    (over at most ``sample`` recordings, a seeded draw), shape (n_blocks,); the block starting at
    ``squared_from`` by its mean squared Euclidean distance."""
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
    squared = squared_from if squared_from is not None else Z.shape[1]
    metric = ["sqeuclidean" if cols.start >= squared else "cityblock" for cols, _ in groups]
    return np.array(
        [cdist(Z[:, cols], Z[:, cols], m).sum() / (n * (n - 1)) for (cols, _), m in zip(groups, metric, strict=True)]
    )


def balanced_weights(distances: np.ndarray, dim: int, *, squared_from: int | None = None) -> np.ndarray:
    """Per-dimension weights (dim,) that make every view (``T``, ``M``, ``Y``) weigh alike in the distance of
    standardised vectors whose blocks have the mean distances ``distances`` (:func:`block_distances`): an L1
    block ``b`` gets ``1 / (sub-blocks of its view * distance_b)``, a squared block (those from ``squared_from``)
    the square root of ``1 / distance_b``, all scaled so that the summed terms over the dimensions divided by the
    dimension are 1 for a typical pair of the collection. Blocks with no spread weigh nothing."""
    groups = block_groups(dim)
    if groups is None:
        return np.ones(dim)
    d = np.asarray(distances, np.float64)
    if len(d) < len(groups):
        raise ParameterError(f"{len(d)} block distances for {len(groups)} blocks")
    w = np.zeros(dim)
    n_views = len(groups) - len(TIMBRE_SUBBLOCKS) + 1
    for (cols, views), db in zip(groups, d, strict=False):
        if db <= 1e-12:
            continue
        squared = squared_from is not None and cols.start >= squared_from
        w[cols] = np.sqrt(dim / n_views / db) if squared else dim / n_views / (views * db)
    return w


def view_statistics(
    V: np.ndarray, *, cosine: bool | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int | None]:
    """What standardises raw search vectors ``V`` (n, dim): per dimension the ``mean`` and ``std`` (the cosine
    view's rows made unit length first, its ``std`` 1 so that its geometry is kept), the blocks' mean distances
    (:func:`block_distances` of the standardised vectors) and the cosine view's first column
    (:func:`cosine_start`). Returns ``(mean, std, distances, start)``."""
    start = cosine_start(V.shape[1], cosine=cosine)
    V = unit_rows(np.asarray(V, np.float64), start)
    mean, std = V.mean(axis=0), V.std(axis=0) + 1e-6
    if start is not None:
        std[start:] = 1.0
    return mean, std, block_distances((V - mean) / std, squared_from=start), start


def weighted_normaliser(mean: np.ndarray, std: np.ndarray, distances: np.ndarray, start: int | None, source: str):
    """The :class:`~mirsearch.describe.similarity.Normaliser` of :func:`view_statistics` (the views weighing alike,
    :func:`balanced_weights`)."""
    from mirsearch.describe.similarity import Normaliser

    w = balanced_weights(distances, len(mean), squared_from=start)
    scale = np.where(w > 0, std / np.maximum(w, 1e-300), np.inf)
    return Normaliser(mean.astype(np.float32), scale.astype(np.float32), source, cosine_from=start)


def balanced_normaliser(V: np.ndarray, *, source: str = "collection", cosine: bool | None = None):
    """The standardisation of raw search vectors ``V`` (n, dim): :func:`view_statistics` over the rows, the views
    weighing alike (plain z-scores for a vector of unknown blocks). ``cosine=False``: ``Y`` z-scored and compared
    by L1 like the others (the form of sessions 17-18)."""
    from mirsearch.describe.similarity import Normaliser

    V = np.asarray(V, np.float64)
    if block_groups(V.shape[1]) is None:
        mean, std = V.mean(axis=0), V.std(axis=0) + 1e-6
        return Normaliser(mean.astype(np.float32), std.astype(np.float32), source)
    return weighted_normaliser(*view_statistics(V, cosine=cosine), source)


def view_distances(Z: np.ndarray, v: np.ndarray, *, squared_from: int | None = None) -> dict[str, np.ndarray]:
    """How far standardised search vectors ``Z`` (n, dim) are from a standardised vector ``v`` (dim,) in each view
    (:data:`VIEWS`): the terms the view adds to the distance (absolute differences; squared ones from
    ``squared_from``) times the number of views over the dimension, so that 1 is a typical pair of the collection
    in every view and the mean over the views is the distance. Empty for vectors of unknown blocks.

    Returns
    -------
    dict of str to np.ndarray, shape (n,)
    """
    Z = np.atleast_2d(np.asarray(Z, np.float64))
    groups = block_groups(Z.shape[1])
    if groups is None:
        return {}
    diff = Z - np.asarray(v, np.float64)
    n_views = len(groups) - len(TIMBRE_SUBBLOCKS) + 1
    out = dict.fromkeys(VIEWS[:n_views], 0.0)
    for i, (cols, _) in enumerate(groups):
        d = diff[:, cols]
        squared = squared_from is not None and cols.start >= squared_from
        term = (np.square(d) if squared else np.abs(d)).sum(axis=1)
        name = VIEWS[max(0, i - len(TIMBRE_SUBBLOCKS) + 1)]
        out[name] = out[name] + term * n_views / Z.shape[1]
    return out
