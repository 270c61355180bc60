"""Search by similarity ("more like this"): a vector per recording, nearest neighbours by the L1 distance.

A recording's *timbre vector* (:func:`recording_vector`, :data:`VECTOR_DIM` = 494 values) is made of blocks
(:data:`VECTOR_BLOCKS`) of statistics over its 0.96 s patches of the YAMNet-preset log-mel
(:func:`mirsearch.features.timbre_stats.patch_features`): the mean and the spread over patches of per-band mean,
standard deviation and flux (``stats``) and of the onset-strength autocorrelation in 11 lag bins (``rhythm``), and
the mean over patches of the cepstral dynamics (``cepstra``) and of the modulation spectrum of 8 band groups
(``modulation``). They are stored in a collection as the kind ``"timbre"`` (sufficient statistics per 4 s segment),
beside MFCC statistics, the mean YAMNet embedding of the same segments and musicnn's pooled features of a few 3-s
patches. The index ranks by the *search vector* (:func:`mirsearch.describe.similarity_vector.search_vector`: the
timbre vector, the MFCC statistics, the YAMNet mean and the musicnn mean) and, in collections of
:data:`MIN_COLLECTION` recordings or more, a histogram of the recording's 4-s segments over the collection's
codebook of textures (:data:`TEXTURES`, :mod:`mirsearch.describe.segment_codebook`; :func:`raw_vector`); taught
tags keep the timbre vector. Every
dimension is standardised *relative to the collection* (z-scored over its recordings; collections smaller than
:data:`MIN_COLLECTION` use the reference statistics shipped in ``models/bundles/similarity``) and the views are
weighted to weigh alike (:func:`collection_normaliser`). Recordings are ranked by the mean absolute difference of
the standardised vectors, the YAMNet and musicnn views by squared differences of their unit-length forms (cosine
distances; :meth:`Normaliser.distances`; 1 is a typical pair of the collection).

:func:`similar_search` is the ranking of the ``similar`` tasks: :func:`expanded_search`, average query
expansion (the query vector is averaged with its :data:`EXPAND` nearest recordings, never the query recording
itself, and searched again). :func:`reciprocal_search` re-ranks the query's :data:`POOL` nearest recordings by
their k-reciprocal neighbours instead (:func:`reciprocal_distances`, Zhong et al. 2017; on with
:data:`RECIPROCAL`): chosen on the train half of the soundtrack tracks it lost on the test half
(benchmarks/similarity_rerank.py, docs/benchmarks.md session 11), so it is off. The block set and the expansion
were chosen with the query's soundtrack never in the fitting set (benchmarks/similarity_heldout.py,
docs/benchmarks.md "Search by similarity"); triplet-trained embeddings (:mod:`mirsearch.training.similarity`)
did not generalise to unseen soundtracks.

Recordings can also be compared by their *parts* (:func:`part_vectors`; on with :data:`COMPARE_PARTS`): the
stored segments split into up to :data:`PARTS` consecutive runs, each described by the same vector and
standardised like the recordings; the distance of two recordings (:func:`part_distances`) is the mean distance
from each part to the nearest part of the other, both ways, and :meth:`SimilarityIndex.search_parts` averages a
query's distances with those of its :data:`EXPAND` nearest recordings. Better on 30-s clips, not on whole
tracks, and much dearer at scale (benchmarks/similarity_parts.py): off by default. An index without parts (the
Dask shards of :mod:`mirsearch.cluster.similar`) then proposes candidates that :func:`rerank_by_parts` ranks.

:class:`SimilarityIndex` keeps the standardised vectors in the project's HNSW index (:mod:`mirsearch.index.ann`,
Euclidean; exact search below :data:`HNSW_MIN` recordings), which proposes candidates that are then ranked
exactly (by their parts), so that a query over 100,000 recordings takes milliseconds. It is a derived view:
:func:`collection_index` builds it once per collection generation (``Collection.views``).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from mirsearch.describe.similarity_reciprocal import reciprocal_distances, reciprocal_search  # noqa: F401
from mirsearch.errors import CollectionError, InputError, ParameterError

if TYPE_CHECKING:
    from mirsearch.describe.segment_codebook import SegmentCodebook

log = logging.getLogger(__name__)

#: the stored kind the vectors come from
STORED_KIND = "timbre"
#: the shipped reference statistics
SHIPPED = Path(__file__).resolve().parents[1] / "models" / "bundles" / "similarity"
#: collections at least this large are standardised by their own statistics
MIN_COLLECTION = 30
#: collections at least this large are searched through HNSW; smaller ones exhaustively
HNSW_MIN = 2000
#: candidates HNSW proposes (at least) for the exact ranking
RERANK = 200
#: neighbours averaged into the query by :func:`expanded_search` (0: no expansion)
EXPAND = 2
#: the ``similar`` tasks re-rank by k-reciprocal neighbours (else :func:`expanded_search`): off, because chosen on
#: the train half it lost 0.09 MAP@10 against expansion on the test half (docs/benchmarks.md, session 11)
RECIPROCAL = False
#: parts of a recording when recordings are compared by their parts (:func:`part_vectors`)
PARTS = 8
#: the ``similar`` tasks compare recordings by their parts: off, because on whole tracks it was no better than
#: the whole-recording vectors and at 100,000 recordings it was 50x dearer (docs/benchmarks.md, session 10)
COMPARE_PARTS = False
#: whiten the collection's vectors by their *within-recording* covariance (:func:`within_transform`; the parts of
#: each long recording as the samples, no labels): off -- better on the train half's whole files, worse on 30 s
#: clips and on concatenated cuts, not measured on the test half (docs/benchmarks.md, session 12)
WITHIN = False
#: parts per recording for :func:`within_parts` (at most) and stored segments per part (at least: 8 x 4 s)
WITHIN_PARTS, WITHIN_MIN_SEGMENTS = 8, 8
#: shrinkage of the within-recording eigenvalues (a fraction of their mean) and the query expansion with it
WITHIN_SHRINK, WITHIN_EXPAND = 0.03, 0
#: the collection's texture histogram is a fifth view (:mod:`mirsearch.describe.segment_codebook`), in collections
#: of :data:`MIN_COLLECTION` recordings or more whose recordings all have the other four views: on 20
#: track-disjoint halves of six real soundtracks +0.056 MAP@10 over the best baseline against +0.046 without it
#: (docs/benchmarks.md, session 22)
TEXTURES = True
#: blocks of the recording vector: (name, descriptor group of ``patch_features``, statistic over patches)
VECTOR_BLOCKS = (("stats.mean", "stats", "mean"), ("stats.std", "stats", "std"), ("rhythm.mean", "rhythm", "mean"),
                 ("rhythm.std", "rhythm", "std"), ("cepstra.mean", "cepstra", "mean"),
                 ("modulation.mean", "modulation", "mean"))  # fmt: skip


@functools.lru_cache(maxsize=1)
def _layout() -> tuple[np.ndarray, np.ndarray]:
    """Rows of :func:`~mirsearch.features.timbre_stats.timbre_vector` kept, and each kept row's block size."""
    from mirsearch.features.timbre_stats import patch_blocks

    blocks = patch_blocks()
    d = max(b.stop for b in blocks.values())
    rows, sizes = [], []
    for _, group, stat in VECTOR_BLOCKS:
        sl = blocks[group]
        r = np.arange(sl.start, sl.stop) + (d if stat == "std" else 0)
        rows.append(r)
        sizes.append(np.full(len(r), len(r)))
    return np.concatenate(rows), np.concatenate(sizes)


#: dimension of :func:`recording_vector`
VECTOR_DIM = 494


@dataclass(frozen=True)
class Normaliser:
    """Per-dimension standardisation ``(v - mean) / scale`` of recording vectors, then (``transform``, (dim, dim),
    optional) a linear map: ``((v - mean) / scale) @ transform``. ``cosine_from``: the blocks from there on (the
    YAMNet and musicnn views) are each made unit length first and compared by squared differences
    (:meth:`distances`). ``codebook``: the collection's codebook of textures whose histograms the raw vectors
    end with (:func:`raw_vector`), or None."""

    mean: np.ndarray
    scale: np.ndarray
    source: str
    transform: np.ndarray | None = None
    cosine_from: int | None = None
    codebook: SegmentCodebook | None = None

    def __call__(self, V: np.ndarray) -> np.ndarray:
        from mirsearch.describe.similarity_vector import unit_rows

        Z = (unit_rows(np.asarray(V, np.float32), self.cosine_from) - self.mean) / self.scale
        return (Z if self.transform is None else Z @ self.transform).astype(np.float32)

    @property
    def squared_from(self) -> int | None:
        """The first column compared by squared differences (None: L1 over all; so after a ``transform``)."""
        return self.cosine_from if self.transform is None else None

    def distances(self, Z: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Distances (n,) of standardised vectors ``Z`` (n, dim) to a standardised vector ``v`` (dim,): absolute
        differences, squared ones from :attr:`squared_from`, summed and divided by the dimension."""
        diff = np.asarray(Z, np.float32) - np.asarray(v, np.float32)
        c = self.squared_from
        if c is None:
            return np.abs(diff).mean(axis=1)
        return (np.abs(diff[:, :c]).sum(axis=1) + np.square(diff[:, c:]).sum(axis=1)) / diff.shape[1]

    def pair_distances(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """:meth:`distances` of every row of ``A`` (m, dim) to every row of ``B`` (n, dim), shape (m, n)."""
        from scipy.spatial.distance import cdist

        A, B = np.atleast_2d(np.asarray(A, np.float32)), np.atleast_2d(np.asarray(B, np.float32))
        c = self.squared_from
        if c is None:
            return cdist(A, B, "cityblock") / A.shape[1]
        return (cdist(A[:, :c], B[:, :c], "cityblock") + cdist(A[:, c:], B[:, c:], "sqeuclidean")) / A.shape[1]

    @classmethod
    def fit(cls, V: np.ndarray, *, weights: np.ndarray | None = None, source: str = "collection") -> Normaliser:
        """Z-scores over the rows of ``V`` (n, dim), each dimension then multiplied by ``weights`` (dim,)."""
        V = np.asarray(V, np.float64)
        w = np.ones(V.shape[1]) if weights is None else np.asarray(weights, np.float64)
        return cls(V.mean(axis=0).astype(np.float32), ((V.std(axis=0) + 1e-6) / w).astype(np.float32), source)


def collection_normaliser(V: np.ndarray, *, within=None, codebook: SegmentCodebook | None = None) -> Normaliser:
    """The standardisation of a collection's raw search vectors ``V`` (n, dim): its own z-scores with every view
    weighing alike (:func:`~mirsearch.describe.similarity_vector.balanced_normaliser`) from
    :data:`MIN_COLLECTION` recordings on, else the shipped reference (:func:`reference_normaliser`). ``within``:
    the recordings' raw :func:`within_parts` (a list of (m_i, dim)); then the z-scores are followed by
    :func:`within_transform` of the standardised parts (none if fewer than two recordings have two parts or more).
    ``codebook``: the one the raw vectors' texture histograms come from (:func:`collection_codebook`), kept by the
    normaliser so that a query's raw vector can be made alike (:func:`raw_vector`)."""
    from dataclasses import replace

    from mirsearch.describe.similarity_vector import balanced_normaliser, block_groups

    V = np.asarray(V)
    if V.ndim != 2:
        raise ParameterError(f"raw vectors must have shape (n, dim), got {V.shape}")
    if len(V) >= MIN_COLLECTION or block_groups(V.shape[1]) is None:
        norm = replace(balanced_normaliser(V), codebook=codebook)
        T = None if within is None else within_transform([norm(P) for P in within if len(P) > 1])
        if T is None:
            return norm
        return replace(norm, source="collection, within-recording", transform=T)
    return reference_normaliser(V.shape[1])


def within_parts(X: np.ndarray, *, vector=None) -> np.ndarray:
    """Raw vectors (m, dim) of a recording's parts for :func:`within_transform`: its stored segments in
    ``m = min(WITHIN_PARTS, n_segments // WITHIN_MIN_SEGMENTS)`` runs (at least one; :func:`part_vectors`), each
    described by ``vector`` (default :func:`raw_vector` without textures)."""
    from mirsearch.features.timbre_stats import CORE_ROWS

    X = np.asarray(X)
    n = int((X[min(CORE_ROWS, len(X)) - 1] > 0).sum()) if X.ndim == 2 and X.shape[0] > 1 else 0
    return part_vectors(X, parts=max(1, min(WITHIN_PARTS, n // WITHIN_MIN_SEGMENTS)), vector=vector or raw_vector)


def within_transform(parts, *, shrink: float = WITHIN_SHRINK) -> np.ndarray | None:
    """Whitening by the within-recording covariance: from each recording's standardised part vectors (a list of
    (m_i >= 2, dim)), their deviations from the recording's mean pooled, ``S_w = U diag(e) U^T``; the map is
    ``U / sqrt(e + shrink * mean(e))`` (dim, dim). Directions in which a recording's sections vary (the music
    changes) weigh less than those in which recordings differ as wholes (production, instrumentation). None when
    fewer than two recordings have two parts or more."""
    parts = [np.asarray(P, np.float64) for P in parts if len(P) > 1]
    if len(parts) < 2:
        return None
    if not shrink > 0:
        raise ParameterError(f"shrink={shrink} must be > 0")
    W = np.concatenate([P - P.mean(axis=0) for P in parts])
    e, U = np.linalg.eigh(np.cov(W.T))
    e = np.maximum(e, 0.0)
    return (U / np.sqrt(e + shrink * max(float(e.mean()), 1e-12))).astype(np.float32)


@functools.lru_cache(maxsize=4)
def reference_normaliser(dim: int | None = None, path: str | None = None) -> Normaliser:
    """The shipped reference standardisation of search vectors of dimension ``dim`` (default all three views):
    ``reference.npz`` holds per dimension the ``mean`` and ``std`` of the reference recordings' search vectors
    (the YAMNet view unit length, its ``std`` 1), the ``block_distances`` of the standardised blocks and ``cosine``
    (whether the YAMNet view is compared by cosine); the views present weigh alike
    (:func:`~mirsearch.describe.similarity_vector.weighted_normaliser`)."""
    from mirsearch.describe.similarity_vector import SEARCH_DIM, block_groups, cosine_start, weighted_normaliser

    dim = SEARCH_DIM if dim is None else int(dim)
    f = Path(path) if path else SHIPPED / "reference.npz"
    try:
        with np.load(f, allow_pickle=False) as z:
            mean, std, dist, cosine = z["mean"][:dim], z["std"][:dim], z["block_distances"], bool(z["cosine"])
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{f}: unreadable similarity reference ({exc})") from None
    if block_groups(dim) is None or len(mean) != dim:
        raise ParameterError(f"the similarity reference has no statistics for vectors of dimension {dim}")
    return weighted_normaliser(mean, std, dist, cosine_start(dim, cosine=cosine), "reference")


def recording_vector(X: np.ndarray) -> np.ndarray:
    """The raw (unstandardised) vector of a recording from its stored ``"timbre"`` features: the blocks of
    :data:`VECTOR_BLOCKS` of :func:`~mirsearch.features.timbre_stats.timbre_vector`, shape (:data:`VECTOR_DIM`,)."""
    from mirsearch.features.timbre_stats import core_rows, timbre_vector

    v = timbre_vector(core_rows(X))
    rows = _layout()[0]
    if len(v) <= rows.max():
        raise ParameterError(f"timbre features of {len(v) // 2} rows per patch are of an older version (re-index)")
    return v[rows]


def raw_vector(X: np.ndarray, codebook: SegmentCodebook | None = None) -> np.ndarray:
    """The raw vector of the index from a recording's (or a part's) stored ``"timbre"`` features: the search vector
    (:func:`~mirsearch.describe.similarity_vector.search_vector`), followed by its texture histogram over
    ``codebook`` (:meth:`~mirsearch.describe.segment_codebook.SegmentCodebook.histogram`) when a codebook is given
    and the search vector has all four views. Shape (dim,), float32."""
    from mirsearch.describe.similarity_vector import search_vector

    return _with_textures(search_vector(X), X, codebook)


def _with_textures(v: np.ndarray, X: np.ndarray, codebook: SegmentCodebook | None) -> np.ndarray:
    """The search vector ``v`` of the stored features ``X`` followed by their texture histogram (:func:`raw_vector`)."""
    from mirsearch.describe.similarity_vector import SEARCH_DIM

    if codebook is None or len(v) != SEARCH_DIM:
        return v
    return np.concatenate([v, codebook.histogram(X)]).astype(np.float32)


def collection_codebook(arrays, n: int) -> SegmentCodebook | None:
    """The codebook of textures of a collection from the stored ``"timbre"`` arrays of ``n`` of its recordings (an
    iterable, read once: all of them, or those of :func:`~mirsearch.describe.segment_codebook.fit_recordings`;
    :func:`~mirsearch.describe.segment_codebook.fit`), or None: :data:`TEXTURES` off, fewer than
    :data:`MIN_COLLECTION` recordings, a recording without all four other views, or too few segments."""
    from mirsearch.describe import segment_codebook
    from mirsearch.features.timbre_stats import musicnn_block

    if not TEXTURES or n < MIN_COLLECTION:
        return None
    per = max(1, segment_codebook.MAX_FIT_SEGMENTS // n)
    lists = []
    for X in arrays:
        if musicnn_block(X) is None:
            return None
        lists.append(segment_codebook.fit_sample([segment_codebook.segment_vectors(X)], max_segments=per))
    return segment_codebook.fit(lists)


def audio_parts(y: np.ndarray, *, sr: int, codebook: SegmentCodebook | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The raw vector and raw part vectors (m, dim) of a signal (as if it were indexed, with the collection's
    ``codebook``: :func:`raw_vector`)."""
    from mirsearch.features.timbre_stats import extract_timbre

    X, _ = extract_timbre(y, sr=sr)
    vector = functools.partial(raw_vector, codebook=codebook)
    return vector(X), part_vectors(X, parts=PARTS, vector=vector)


def audio_vector(y: np.ndarray, *, sr: int) -> np.ndarray:
    """The raw timbre vector of a signal (as if it were indexed), shape (:data:`VECTOR_DIM`,)."""
    from mirsearch.features.timbre_stats import extract_timbre, timbre_config

    X, _ = extract_timbre(y, sr=sr, config=timbre_config() | {"extras": []})
    return recording_vector(X)


def part_vectors(X: np.ndarray, *, parts: int, vector=recording_vector) -> np.ndarray:
    """Raw vectors of up to ``parts`` consecutive parts of a recording: its stored segments with patches
    split into ``m = min(parts, n_segments)`` runs of (nearly) equal length, each described as a whole recording
    by ``vector`` (default :func:`recording_vector`, shape (m, :data:`VECTOR_DIM`)). A part without a view the
    whole recording has (musicnn analyses a few patches per recording) takes the recording's (:func:`_completed`)."""
    from mirsearch.features.timbre_stats import CORE_ROWS

    X = np.asarray(X)
    if parts < 1:
        raise ParameterError(f"parts={parts} must be >= 1")
    if X.ndim == 2 and X.shape[0] > 1:
        X = X[:, X[min(CORE_ROWS, len(X)) - 1] > 0]
    n = X.shape[1] if X.ndim == 2 else 0
    edges = np.round(np.linspace(0, n, max(1, min(parts, n)) + 1)).astype(int)
    vectors = [vector(X[:, a:b]) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    if len({len(v) for v in vectors}) > 1:
        whole = vector(X)
        vectors = [_completed(v, whole) for v in vectors]
    return np.stack(vectors)


def _completed(v: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """The raw search vector ``v`` of a part of a recording with the views it lacks taken from the recording's
    vector ``whole`` (the views come in a fixed order, so the missing ones are at the end)."""
    return v if len(v) >= len(whole) else np.concatenate([v, whole[len(v) :]]).astype(np.float32)


def part_distances(Q: np.ndarray, P: np.ndarray, offsets: np.ndarray, *, normaliser: Normaliser | None = None
                   ) -> np.ndarray:  # fmt: skip
    """Distances of a query to recordings described by parts: for each recording, the mean over the query's
    parts of the distance to the nearest of the recording's parts and the mean over the recording's parts of
    the distance to the nearest query part, averaged (between standardised part vectors, by
    ``normaliser.pair_distances``; default L1 / dim).

    Parameters
    ----------
    Q : np.ndarray, shape (m, dim)
        The query's standardised part vectors.
    P : np.ndarray, shape (total, dim)
        The recordings' standardised part vectors, recording after recording.
    offsets : np.ndarray of int, shape (n + 1,)
        Recording ``i``'s parts are ``P[offsets[i]:offsets[i + 1]]`` (each at least one).

    Returns
    -------
    d : np.ndarray, shape (n,)
    """
    from scipy.spatial.distance import cdist

    Q, P = np.atleast_2d(np.asarray(Q, np.float32)), np.atleast_2d(np.asarray(P, np.float32))
    offsets = np.asarray(offsets, np.int64)
    if len(offsets) < 2:
        return np.zeros(0)
    D = cdist(Q, P, "cityblock") / Q.shape[1] if normaliser is None else normaliser.pair_distances(Q, P)
    to_rec = np.minimum.reduceat(D, offsets[:-1], axis=1).mean(axis=0)
    to_query = np.add.reduceat(D.min(axis=0), offsets[:-1]) / np.diff(offsets)
    return 0.5 * (to_rec + to_query)


class SimilarMatch(NamedTuple):
    """One recording found similar to the query; ``views``: how far it is from the query in each view
    (:func:`~mirsearch.describe.similarity_vector.view_distances`; 1 is a typical pair), when known."""

    recording_id: int
    recording: str
    distance: float
    views: dict | None = None

    def to_dict(self) -> dict:
        out = {"recording": self.recording, "recording_id": self.recording_id, "distance": round(self.distance, 5)}
        if self.views:
            out["views"] = {k: round(float(v), 4) for k, v in self.views.items()}
        return out


class SimilarityIndex:
    """The standardised vectors of a collection's recordings behind a nearest-neighbour index.

    Parameters
    ----------
    ids : array-like of int, shape (n,)
        Recording ids, in the order of ``vectors``.
    vectors : np.ndarray, shape (n, dim)
        Raw search vectors (:func:`~mirsearch.describe.similarity_vector.search_vector`).
    normaliser : Normaliser, optional
        Default: the collection's own statistics from :data:`MIN_COLLECTION` recordings on, else the reference.
    kind : {"auto", "exact", "hnsw"}
        ``auto``: HNSW from :data:`HNSW_MIN` recordings on, else exact.
    parts : sequence of np.ndarray (m_i, dim), optional
        Raw part vectors of each recording (:func:`part_vectors`), in the order of ``ids``: then
        :meth:`search_parts` ranks by :func:`part_distances` (kept as float16).
    """

    def __init__(self, ids, vectors: np.ndarray, *, normaliser: Normaliser | None = None, kind: str = "auto",
                 parts=None, **params):  # fmt: skip
        from mirsearch.index.ann import build_index

        self.ids = np.asarray(ids, dtype=np.int64)
        V = np.asarray(vectors, dtype=np.float32)
        if V.ndim != 2 or len(V) != len(self.ids):
            raise ParameterError(f"{len(self.ids)} ids and vectors of shape {V.shape} do not match")
        self.normaliser = normaliser or collection_normaliser(V)
        if kind == "auto":
            kind = "hnsw" if len(V) >= HNSW_MIN else "exact"
        self.kind = kind
        self._row = {int(r): i for i, r in enumerate(self.ids)}
        self.index = build_index(kind, self.normaliser(V), **params) if len(V) else None
        self.parts = self.offsets = None
        if parts is not None:  # standardised like the recording vectors, stored as float16
            if len(parts) != len(self.ids):
                raise ParameterError(f"{len(self.ids)} ids and {len(parts)} part matrices do not match")
            self.offsets = np.r_[0, np.cumsum([len(p) for p in parts])].astype(np.int64)
            self.parts = np.empty((self.offsets[-1], V.shape[1]), np.float16)
            for i, p in enumerate(parts):
                self.parts[self.offsets[i] : self.offsets[i + 1]] = self.normaliser(p)

    def part_vectors(self, recording_id: int) -> np.ndarray:
        """The standardised part vectors (m, dim) of a recording of the index (indexed with ``parts``)."""
        if self.parts is None:
            raise ParameterError("this similarity index has no part vectors")
        self.vector(recording_id)  # a clear error for an unknown recording
        return self._parts_of(self._row[int(recording_id)])

    def _parts_of(self, row: int) -> np.ndarray:
        return self.parts[self.offsets[row] : self.offsets[row + 1]].astype(np.float32)

    def __len__(self) -> int:
        return len(self.ids)

    def vector(self, recording_id: int) -> np.ndarray:
        """The standardised vector of a recording of the index."""
        row = self._row.get(int(recording_id))
        if row is None:
            raise CollectionError(f"recording_id={recording_id} has no timbre features (index with --features "
                                  f"{STORED_KIND})")  # fmt: skip
        return np.asarray(self.index.vectors[row])

    def search(self, vector: np.ndarray, *, top: int, exclude: int | None = None) -> list[tuple[int, float]]:
        """The ``top`` nearest recordings ``(recording_id, distance)`` to a standardised vector, nearest first,
        ``exclude`` left out. The distance is :meth:`Normaliser.distances` of the standardised vectors;
        HNSW (Euclidean) proposes ``max(RERANK, 10 * top)`` candidates, which are ranked by that distance."""
        if top < 1:
            raise ParameterError(f"top={top} must be >= 1")
        if self.index is None:
            return []
        v = np.asarray(vector, np.float32)
        if self.kind == "exact":
            rows = np.arange(len(self))
        else:
            k = min(len(self), max(RERANK, 10 * (top + 1)))
            _, L = self.index.search(v[None, :], k=k)
            rows = L[0][L[0] >= 0]
        d = self.normaliser.distances(np.asarray(self.index.vectors[rows]), v)
        order = np.argsort(d, kind="stable")
        out = [(int(self.ids[rows[j]]), float(d[j])) for j in order[: top + 1]]
        return [(r, dist) for r, dist in out if r != exclude][:top]

    def _candidates(self, vector: np.ndarray, k: int) -> np.ndarray:
        if self.kind == "exact":
            return np.arange(len(self))
        _, L = self.index.search(np.asarray(vector, np.float32)[None, :], k=min(len(self), k))
        return L[0][L[0] >= 0]

    def _part_distances(self, Q: np.ndarray, rows: np.ndarray) -> np.ndarray:
        if len(rows) == len(self) and np.array_equal(rows, np.arange(len(self))):  # every recording (exact)
            return part_distances(Q, self.parts, self.offsets, normaliser=self.normaliser)
        starts, stops = self.offsets[rows], self.offsets[rows + 1]
        take = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops, strict=True)])
        return part_distances(Q, self.parts[take].astype(np.float32), np.r_[0, np.cumsum(stops - starts)],
                              normaliser=self.normaliser)  # fmt: skip

    def search_parts(self, vector: np.ndarray, parts: np.ndarray, *, top: int, exclude: int | None = None,
                     expand: int = EXPAND) -> list[tuple[int, float]]:  # fmt: skip
        """The ``top`` nearest recordings ``(recording_id, distance)`` by :func:`part_distances` to the
        standardised query ``parts`` (m, dim), averaged with the distances from its ``expand`` nearest
        recordings (``exclude`` never among them nor in the answer). HNSW over the recording vectors
        (``vector``, standardised) proposes ``max(RERANK, 10 * (top + 1 + expand))`` candidates."""
        if top < 1:
            raise ParameterError(f"top={top} must be >= 1")
        if self.index is None:
            return []
        if self.parts is None:
            raise ParameterError("this similarity index has no part vectors")
        rows = self._candidates(vector, max(RERANK, 10 * (top + 1 + expand)))
        d = self._part_distances(parts, rows)
        order = np.argsort(d, kind="stable")
        near = [j for j in order[: expand + 1] if self.ids[rows[j]] != exclude][:expand]
        if near and len(self) > expand + 1:
            total = d.copy()
            for j in near:
                total += self._part_distances(self._parts_of(rows[j]), rows)
            d = total / (1 + len(near))
            order = np.argsort(d, kind="stable")
        out = [(int(self.ids[rows[j]]), float(d[j])) for j in order[: top + 1]]
        return [(r, dist) for r, dist in out if r != exclude][:top]


def expanded_search(index, vector: np.ndarray, *, top: int, exclude: int | None = None, expand: int = EXPAND,
                    parts: np.ndarray | None = None) -> list[tuple[int, float]]:  # fmt: skip
    """The ``top`` nearest recordings ``(recording_id, distance)`` with query expansion (``exclude`` never among
    the expanding recordings nor in the answer). With the query's standardised ``parts`` and an index that has
    part vectors: :meth:`SimilarityIndex.search_parts` (distances averaged with those of the ``expand`` nearest).
    Otherwise average query expansion of the whole-recording vectors: the nearest to the mean of the standardised
    query ``vector`` and its ``expand`` nearest recordings. ``index`` is a :class:`SimilarityIndex` or anything
    with its ``search``, ``vector`` and ``len`` (the Dask shards: whole-recording vectors)."""
    if parts is not None and getattr(index, "parts", None) is not None:
        return index.search_parts(vector, parts, top=top, exclude=exclude, expand=expand)
    v = np.asarray(vector, np.float32)
    if expand > 0 and len(index) > expand + 1:
        first = index.search(v, top=expand, exclude=exclude)
        if first:
            v = ((v + np.sum([index.vector(r) for r, _ in first], axis=0)) / (1 + len(first))).astype(np.float32)
    return index.search(v, top=top, exclude=exclude)


def similar_search(index, vector: np.ndarray, *, top: int, exclude: int | None = None,
                   parts: np.ndarray | None = None) -> list[tuple[int, float]]:  # fmt: skip
    """The ranking of the ``similar`` tasks: by parts when given and the index has them
    (:func:`expanded_search`), else :func:`reciprocal_search` (:data:`RECIPROCAL`) or :func:`expanded_search`
    (expansion :data:`WITHIN_EXPAND` when the index's normaliser has a within-recording transform)."""
    if RECIPROCAL and (parts is None or getattr(index, "parts", None) is None):
        return reciprocal_search(index, vector, top=top, exclude=exclude)
    within = getattr(getattr(index, "normaliser", None), "transform", None) is not None
    return expanded_search(index, vector, top=top, exclude=exclude, parts=parts,
                           expand=WITHIN_EXPAND if within else EXPAND)  # fmt: skip


def stored_parts(coll, recording_id: int, normaliser: Normaliser) -> np.ndarray:
    """Standardised part vectors (m, dim) of a stored recording, rounded to float16 as an index keeps them."""
    X, _ = coll.load_features(int(recording_id), STORED_KIND)
    parts = part_vectors(X, parts=PARTS, vector=functools.partial(raw_vector, codebook=normaliser.codebook))
    return normaliser(parts).astype(np.float16).astype(np.float32)


def passage_vector(coll, recording_id: int, *, start: float | None = None, end: float | None = None,
                   codebook: SegmentCodebook | None = None) -> np.ndarray:  # fmt: skip
    """The raw search vector of a passage of a stored recording, ``start`` to ``end`` (s; default its beginning and
    end): the stored segments that overlap it (:data:`~mirsearch.features.timbre_stats.TIMBRE_SEGMENT_SECONDS`
    resolution), described as a whole recording is (:func:`raw_vector`, with the collection's ``codebook``);
    where no musicnn patch of the recording falls in the passage, its musicnn view is the recording's.

    Raises
    ------
    ParameterError
        An empty or reversed passage, or one with no stored segment of sound.
    """
    from mirsearch.describe.similarity_vector import SEARCH_DIM, search_vector
    from mirsearch.features.timbre_stats import CORE_ROWS

    X, rate = coll.load_features(int(recording_id), STORED_KIND)
    length = X.shape[1] / rate
    a = 0.0 if start is None else float(start)
    b = length if end is None else min(float(end), length)
    if not (np.isfinite(a) and np.isfinite(b)) or a < 0:
        raise ParameterError(f"recording {recording_id}: a passage needs a start >= 0 and a finite end")
    if a >= length:
        raise ParameterError(f"recording {recording_id}: the passage starts at {a:g} s, after its end ({length:.0f} s)")
    if b <= a:
        raise ParameterError(f"recording {recording_id}: the passage {a:g}-{b:g} s is empty (its end before its start)")
    cols = X[:, int(np.floor(a * rate)) : max(int(np.ceil(b * rate)), int(np.floor(a * rate)) + 1)]
    if cols.shape[1] == 0 or cols[CORE_ROWS - 1].sum() <= 0:
        raise ParameterError(f"recording {recording_id}: no sound analysed between {a:g} and {b:g} s")
    v = search_vector(cols)
    if len(v) < SEARCH_DIM:  # the whole recording's view where the passage has none
        v = _completed(v, search_vector(X))
    return _with_textures(v, cols, codebook)


def rerank_by_parts(index, coll, vector: np.ndarray, parts: np.ndarray, *, top: int, exclude: int | None = None,
                    expand: int = EXPAND) -> list[tuple[int, float]]:  # fmt: skip
    """:meth:`SimilarityIndex.search_parts` over an index without parts (the Dask shards): its whole-vector
    search proposes ``max(RERANK, 10 * (top + 1 + expand))`` candidates, whose parts are read from ``coll`` and
    ranked (with the expansion) by :func:`part_distances`."""
    if top < 1:
        raise ParameterError(f"top={top} must be >= 1")
    found = index.search(vector, top=max(RERANK, 10 * (top + 1 + expand)))
    if not found:
        return []
    vector = functools.partial(raw_vector, codebook=index.normaliser.codebook)
    ids = [r for r, _ in found]
    raw = [coll.load_features(r, STORED_KIND)[0] for r in ids]
    V = np.stack([vector(X) for X in raw])
    sub = SimilarityIndex(ids, V, normaliser=index.normaliser, kind="exact",
                          parts=[part_vectors(X, parts=PARTS, vector=vector) for X in raw])  # fmt: skip
    return sub.search_parts(vector, parts, top=top, exclude=exclude, expand=expand)


def _common_dim(vectors: list[np.ndarray]) -> int:
    """The dimension all search vectors share: a collection indexed partly without YAMNet (or partly with older
    timbre features) is compared on the views every recording has, with a warning."""
    dims = {len(v) for v in vectors}
    if len(dims) > 1:
        log.warning("similarity: recordings have search vectors of %s dimensions (features extracted with and "
                    "without YAMNet, or older ones); comparing on the first %d (re-index to compare on all)",
                    sorted(dims), min(dims))  # fmt: skip
    return min(dims) if dims else 0


def _stored(coll, parts: bool, within: bool = False, vector=None):
    """Ids, raw vectors (``vector``, default :func:`raw_vector` with the :func:`collection_codebook`), raw part
    vectors (if ``parts``), raw :func:`within_parts` (if ``within``, else None) and the codebook (or None)."""
    ids = sorted(coll.catalog.features(STORED_KIND))
    codebook = None
    if vector is None:  # a first pass over (at most 2,000 recordings') stored features fits the codebook
        from mirsearch.describe.segment_codebook import fit_recordings

        fit = fit_recordings(ids)
        codebook = collection_codebook((coll.load_features(rid, STORED_KIND)[0] for rid in fit), len(fit))
        vector = functools.partial(raw_vector, codebook=codebook)
    vectors, part_list, within_list = [], [], []
    for rid in ids:
        X, _ = coll.load_features(rid, STORED_KIND)
        vectors.append(vector(X))
        if parts:
            part_list.append(part_vectors(X, parts=PARTS, vector=vector))
        if within:
            within_list.append(within_parts(X, vector=vector))
    d = _common_dim(vectors)
    V = np.stack([v[:d] for v in vectors]) if vectors else np.zeros((0, 0), np.float32)
    part_list = [P[:, :d] for P in part_list]
    within_list = [P[:, :d] for P in within_list]
    return np.asarray(ids, np.int64), V, part_list, (within_list if within else None), codebook


def collection_vectors(coll) -> tuple[np.ndarray, np.ndarray]:
    """Ids and raw timbre vectors (:func:`recording_vector`, the space of taught tags) of every recording with
    stored ``timbre`` features (others are skipped)."""
    ids, V, _, _, _ = _stored(coll, False, vector=recording_vector)
    return ids, V


def normalised_collection(coll) -> tuple[np.ndarray, np.ndarray, Normaliser]:
    """Ids, raw search vectors and the :func:`collection_normaliser` of every recording with stored ``timbre``
    (with :func:`within_parts` when :data:`WITHIN`)."""
    ids, V, _, within, codebook = _stored(coll, False, WITHIN)
    V = np.asarray(V, np.float32)
    return ids, V, collection_normaliser(V, within=within, codebook=codebook)


def collection_index(coll) -> SimilarityIndex:
    """The collection's :class:`SimilarityIndex` (with part vectors if :data:`COMPARE_PARTS`), built once per
    generation (a derived view)."""

    def build():
        ids, V, parts, within, codebook = _stored(coll, COMPARE_PARTS, WITHIN)
        V = np.asarray(V, np.float32)
        log.info("similarity index: %d recordings%s", len(ids), ", with textures" if codebook else "")
        normaliser = collection_normaliser(V, within=within, codebook=codebook) if len(V) else None
        return SimilarityIndex(ids, V, normaliser=normaliser, parts=parts if COMPARE_PARTS else None)

    return coll.views.get(("similarity", STORED_KIND), build)
