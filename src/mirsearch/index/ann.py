"""Nearest-neighbour indexes over fixed-length vectors, behind one small interface.

Three kinds, all with Euclidean distance and labels ``0 .. n-1`` in the order vectors were added:

``exact``
    Brute force: faiss ``IndexFlatL2`` (all queries of a call in one BLAS product), numpy as fallback.
    Always right; cost grows linearly with the collection (about 10-15 ms per query per million
    12-dimensional vectors on one core).
``kdtree``
    :class:`scipy.spatial.cKDTree` (exact search, ``eps=0``). Fast for few dimensions (6-12), hopeless
    for 240 (every leaf gets visited). The tree is not stored: it is rebuilt from the memory-mapped
    vectors when first searched (about a second per million 12-dimensional vectors), because scipy
    offers no serialisation but pickle.
``hnsw``
    Hierarchical navigable small-world graph (hnswlib; Malkov & Yashunin 2020), approximate. Parameters
    (defaults depend on the dimension, :data:`HNSW_DEFAULTS`):

    - ``M``: links per node and layer. More links: higher recall, more memory (about ``M * 2 * 4`` bytes
      per vector for the bottom layer) and slower build. 8-48 is sensible.
    - ``ef_construction``: candidate list size while inserting; higher builds a better graph, build time
      grows about linearly with it.
    - ``ef``: candidate list size while searching; the recall / speed knob, changeable after loading
      (:meth:`HNSWIndex.set_ef`). A search for ``k`` neighbours uses ``max(ef, k)``.
    - ``threads`` (default 1): build and batch-query threads.

    Up to 32 dimensions (the learned 12-dim embeddings) the defaults are M 8 / ef_construction 64 /
    ef 16, the setting benchmarked at scale (docs/benchmarks.md: recall@10 0.983 at 0.031 ms per query
    over 1.25 M 12-dim vectors, 38 s build; M 16 / 200 builds 3.5x slower for +0.01 recall). Above
    (raw 72- and 240-dim shingles) they stay M 16 / 200 / 64: a sparser graph loses more recall in
    high dimensions, and M 8 was not measured there.

Every index is a directory: ``config.json`` (kind, dimension, parameters, count; written last),
``vectors.npy`` (the vectors, memory-mapped on load) and for ``hnsw`` ``hnsw.bin`` (hnswlib's own
format, read into memory in one sequential read). Files are replaced atomically; on load the count in
``config.json`` is checked against the files, so a crash between two files is detected
(:class:`~mirsearch.errors.CollectionError`) rather than returning wrong labels.

Incremental add: ``exact`` appends, ``kdtree`` appends and rebuilds its tree lazily, ``hnsw`` inserts
into the graph (growing its capacity as needed), as in a fresh build.
"""

from __future__ import annotations

import abc
import json
import logging
import time
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_path, atomic_save_npy, atomic_write_text
from mirsearch.errors import CollectionError, ParameterError

log = logging.getLogger(__name__)

FORMAT = "mirsearch-ann"
FORMAT_VERSION = 1
KINDS = ("exact", "kdtree", "hnsw")
CONFIG_FILE = "config.json"
VECTORS_FILE = "vectors.npy"
HNSW_FILE = "hnsw.bin"


def _as_matrix(X, *, dim: int | None, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2:
        raise ParameterError(f"{name} must have shape (n, dim), got {X.shape}")
    if dim is not None and X.shape[1] != dim:
        raise ParameterError(f"{name} has dimension {X.shape[1]}, the index {dim}")
    if not np.isfinite(X.sum()) and not np.all(np.isfinite(X)):  # one reduction on the fast path
        raise ParameterError(f"{name} contains NaN or infinite values")
    return np.ascontiguousarray(X)


def read_format_json(path: Path, *, fmt: str, version: int, what: str) -> dict:
    """A JSON file with ``format`` / ``format_version`` keys, checked (:class:`CollectionError` naming ``path``)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CollectionError(f"{path}: unreadable ({exc})") from None
    if data.get("format") != fmt or int(data.get("format_version", 0)) > version:
        raise CollectionError(f"{path}: not {what} of format {fmt} v{version}")
    return data


class AnnIndex(abc.ABC):
    """Base class: a set of ``dim``-dimensional vectors searchable by Euclidean distance.

    Subclasses implement :meth:`_search` and may override :meth:`add`, :meth:`_save_extra` and
    :meth:`_load_extra`.
    """

    kind = "base"

    def __init__(self, dim: int, **params):
        if not isinstance(dim, int | np.integer) or dim < 1:
            raise ParameterError(f"dim={dim!r} must be an integer >= 1")
        self.dim = int(dim)
        self.params = params
        self._vectors = np.zeros((0, self.dim), np.float32)

    def __len__(self) -> int:
        return int(self._vectors.shape[0])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, n={len(self)}, {self.params})"

    @property
    def vectors(self) -> np.ndarray:
        """All vectors, shape (n, dim), float32 (possibly memory-mapped, read-only)."""
        return self._vectors

    def add(self, vectors) -> np.ndarray:
        """Add vectors; returns their labels (consecutive, starting at the old ``len(self)``).

        Parameters
        ----------
        vectors : array-like, shape (n, dim)
        """
        X = _as_matrix(vectors, dim=self.dim, name="vectors")
        start = len(self)
        self._vectors = np.concatenate([np.asarray(self._vectors), X]) if start else X.copy()
        self._added(X, start)
        return np.arange(start, start + len(X), dtype=np.int64)

    def _added(self, X: np.ndarray, start: int) -> None:  # noqa: B027 - optional hook for subclasses
        pass

    def search(self, queries, *, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest stored vectors of each query.

        Parameters
        ----------
        queries : array-like, shape (n_queries, dim) or (dim,)
        k : int >= 1

        Returns
        -------
        distances : np.ndarray, shape (n_queries, k), float32
            Euclidean distances, ascending; ``inf`` where fewer than ``k`` vectors exist.
        labels : np.ndarray, shape (n_queries, k), int64
            Labels of the neighbours; -1 where fewer than ``k`` exist.
        """
        if not isinstance(k, int | np.integer) or k < 1:
            raise ParameterError(f"k={k!r} must be an integer >= 1")
        Q = _as_matrix(queries, dim=self.dim, name="queries")
        n = len(self)
        if n == 0 or len(Q) == 0:
            return np.full((len(Q), k), np.inf, np.float32), np.full((len(Q), k), -1, np.int64)
        kk = min(int(k), n)
        D, L = self._search(Q, kk)
        D = np.asarray(D, dtype=np.float32)
        if self._squared:
            D = np.sqrt(np.maximum(D, 0.0, out=D), out=D)
        L = L.astype(np.int64, copy=False)
        missing = L < 0
        if missing.any():
            D[missing] = np.inf
        if kk < k:
            D = np.pad(D, ((0, 0), (0, k - kk)), constant_values=np.inf)
            L = np.pad(L, ((0, 0), (0, k - kk)), constant_values=-1)
        return D, L

    _squared = True

    @abc.abstractmethod
    def _search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Implemented by each concrete subclass."""

    # -- persistence -----------------------------------------------------------------------------------
    def save(self, directory) -> Path:
        """Write the index to ``directory`` (created; existing index files replaced atomically)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        atomic_save_npy(d / VECTORS_FILE, self._vectors)
        self._save_extra(d)
        config = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "dim": self.dim,
            "count": len(self),
            "params": self.params,
            "saved": time.time(),
        }
        atomic_write_text(d / CONFIG_FILE, json.dumps(config, indent=1, sort_keys=True))
        return d

    def _save_extra(self, directory: Path) -> None:  # noqa: B027 - optional hook
        pass

    def _load_extra(self, directory: Path) -> None:  # noqa: B027 - optional hook
        pass

    def size_bytes(self, directory) -> int:
        """Bytes the saved index occupies in ``directory``."""
        return sum(p.stat().st_size for p in Path(directory).iterdir() if p.is_file() and not p.name.startswith("."))


class ExactIndex(AnnIndex):
    """Brute-force search (faiss ``IndexFlatL2`` when importable, else numpy).

    Parameters
    ----------
    dim : int
    threads : int >= 1
        faiss OpenMP threads.
    """

    kind = "exact"

    def __init__(self, dim: int, *, threads: int = 1):
        super().__init__(dim, threads=int(threads))
        self._faiss = None

    def _added(self, X, start) -> None:
        if self._faiss is not None:
            self._faiss.add(X)

    def _search(self, Q, k):
        try:
            import faiss
        except ImportError:  # pragma: no cover - faiss is a dependency
            return self._numpy_search(Q, k)
        faiss.omp_set_num_threads(int(self.params.get("threads", 1)))
        if self._faiss is None:
            self._faiss = faiss.IndexFlatL2(self.dim)
            self._faiss.add(np.ascontiguousarray(self._vectors, dtype=np.float32))
        return self._faiss.search(Q, k)

    def _numpy_search(self, Q, k, block: int = 65536):
        X = self._vectors
        best_d = np.full((len(Q), k), np.inf, np.float32)
        best_l = np.full((len(Q), k), -1, np.int64)
        qq = np.square(Q).sum(1, keepdims=True)
        for s in range(0, len(X), block):
            B = np.asarray(X[s : s + block])
            d = qq - 2.0 * Q @ B.T + np.square(B).sum(1)[None]
            cat_d = np.concatenate([best_d, d], axis=1)
            cat_l = np.concatenate([best_l, np.broadcast_to(np.arange(s, s + len(B)), d.shape)], axis=1)
            idx = np.argpartition(cat_d, k - 1, axis=1)[:, :k]
            best_d = np.take_along_axis(cat_d, idx, 1)
            best_l = np.take_along_axis(cat_l, idx, 1)
        order = np.argsort(best_d, axis=1)
        return np.take_along_axis(best_d, order, 1), np.take_along_axis(best_l, order, 1)


class KDTreeIndex(AnnIndex):
    """Exact search with :class:`scipy.spatial.cKDTree` (rebuilt lazily after add and load).

    Parameters
    ----------
    dim : int
    leafsize : int
        Points per leaf (default 16).
    threads : int
        ``workers`` of the query (-1 = all cores).
    """

    kind = "kdtree"
    _squared = False

    def __init__(self, dim: int, *, leafsize: int = 16, threads: int = 1):
        super().__init__(dim, leafsize=int(leafsize), threads=int(threads))
        self._tree = None

    def _added(self, X, start) -> None:
        self._tree = None

    def build(self) -> None:
        """Build the tree now (otherwise the first search does it)."""
        from scipy.spatial import cKDTree

        self._tree = cKDTree(np.asarray(self._vectors), leafsize=self.params["leafsize"], balanced_tree=False)

    def _search(self, Q, k):
        if self._tree is None:
            self.build()
        D, L = self._tree.query(Q, k=k, workers=self.params["threads"])
        D, L = np.asarray(D).reshape(len(Q), k), np.asarray(L).reshape(len(Q), k)
        L = np.where(L >= len(self), -1, L)
        return D, L


#: HNSW defaults ``(M, ef_construction, ef)`` for dimensions ``<= 32`` and above (see the module docstring)
HNSW_DEFAULTS = {"low": (8, 64, 16), "high": (16, 200, 64)}
#: largest dimension that gets the ``"low"`` defaults
HNSW_LOW_DIM = 32


class HNSWIndex(AnnIndex):
    """Approximate search with an hnswlib HNSW graph (see the module docstring for the parameters).

    Parameters
    ----------
    dim : int
    M, ef_construction, ef : int, optional
        Default :data:`HNSW_DEFAULTS` for ``dim`` (stored with the index, so a loaded index keeps the
        values it was built with).
    threads : int
    seed : int
        Random seed of the level assignment (reproducible builds with ``threads=1``).
    """

    kind = "hnsw"

    def __init__(
        self,
        dim: int,
        *,
        M: int | None = None,
        ef_construction: int | None = None,
        ef: int | None = None,
        threads: int = 1,
        seed=100,
    ):
        defaults = HNSW_DEFAULTS["low" if int(dim) <= HNSW_LOW_DIM else "high"]
        M = defaults[0] if M is None else M
        ef_construction = defaults[1] if ef_construction is None else ef_construction
        ef = defaults[2] if ef is None else ef
        if M < 2 or ef_construction < 1 or ef < 1:
            raise ParameterError(f"M={M}, ef_construction={ef_construction}, ef={ef} must be >= 2, >= 1, >= 1")
        super().__init__(dim, M=int(M), ef_construction=int(ef_construction), ef=int(ef), threads=int(threads))
        self.seed = int(seed)
        self._graph = None
        self._graph_state = None

    def _new_graph(self, capacity: int):
        import hnswlib

        g = hnswlib.Index(space="l2", dim=self.dim)
        g.init_index(
            max_elements=max(1, capacity),
            M=self.params["M"],
            ef_construction=self.params["ef_construction"],
            random_seed=self.seed,
        )
        g.set_num_threads(self.params["threads"])
        return g

    def _added(self, X, start) -> None:
        if self._graph is None:
            self._graph = self._new_graph(start + len(X))
            self._graph_state = None
            if start:
                old = np.asarray(self._vectors[:start])
                self._graph.add_items(old, np.arange(start))
        elif self._graph.get_max_elements() < start + len(X):
            self._graph.resize_index(max(start + len(X), int(self._graph.get_max_elements() * 1.5)))
        self._graph.add_items(X, np.arange(start, start + len(X)))

    def set_ef(self, ef: int) -> None:
        """Change the search-time candidate list size."""
        if ef < 1:
            raise ParameterError(f"ef={ef} must be >= 1")
        self.params["ef"] = int(ef)

    def _search(self, Q, k):
        if self._graph is None:
            self._graph = self._new_graph(len(self))
            self._graph_state = None
            self._graph.add_items(np.asarray(self._vectors), np.arange(len(self)))
        state = (max(self.params["ef"], k), self.params["threads"])
        if state != self._graph_state:  # setting them costs as much as a small query
            self._graph.set_ef(state[0])
            self._graph.set_num_threads(state[1])
            self._graph_state = state
        try:
            L, D = self._graph.knn_query(Q, k=k)
        except RuntimeError:  # some query reached fewer than k nodes (tiny ef / M): pad row by row
            D = np.full((len(Q), k), np.inf, np.float32)
            L = np.full((len(Q), k), -1, np.int64)
            for i, q in enumerate(Q):
                for kk in range(k, 0, -1):
                    try:
                        li, di = self._graph.knn_query(q[None], k=kk)
                    except RuntimeError:
                        continue
                    L[i, :kk], D[i, :kk] = li[0], di[0]
                    break
        return D, L

    def _save_extra(self, directory: Path) -> None:
        if self._graph is None and len(self):
            self._search(np.zeros((1, self.dim), np.float32), 1)  # builds the graph
        if self._graph is not None:
            with atomic_path(directory / HNSW_FILE) as tmp:
                self._graph.save_index(str(tmp))
        else:
            (directory / HNSW_FILE).unlink(missing_ok=True)

    def _load_extra(self, directory: Path) -> None:
        import hnswlib

        path = directory / HNSW_FILE
        if not len(self):
            return
        if not path.is_file():
            raise CollectionError(f"{path}: missing (index incomplete; rebuild it)")
        g = hnswlib.Index(space="l2", dim=self.dim)
        g.load_index(str(path), max_elements=len(self))
        if g.get_current_count() != len(self):
            raise CollectionError(
                f"{path}: holds {g.get_current_count()} vectors, {VECTORS_FILE} {len(self)} (interrupted save?)"
            )
        g.set_num_threads(self.params["threads"])
        self._graph = g
        self._graph_state = None


_CLASSES = {"exact": ExactIndex, "kdtree": KDTreeIndex, "hnsw": HNSWIndex}


def make_index(kind: str, dim: int, **params) -> AnnIndex:
    """A new empty index of ``kind`` (``"exact"``, ``"kdtree"``, ``"hnsw"``) with its parameters."""
    if kind not in _CLASSES:
        raise ParameterError(f"index={kind!r} is not one of {', '.join(KINDS)}")
    try:
        return _CLASSES[kind](dim, **params)
    except TypeError as exc:
        raise ParameterError(f"index={kind!r}: {exc}") from None


def build_index(kind: str, vectors, **params) -> AnnIndex:
    """A new index of ``kind`` holding ``vectors`` (n, dim); labels are row numbers."""
    X = _as_matrix(vectors, dim=None, name="vectors")
    index = make_index(kind, X.shape[1], **params)
    index.add(X)
    return index


def load_index(directory, *, mmap: bool = True, **overrides) -> AnnIndex:
    """Load an index saved with :meth:`AnnIndex.save`.

    Parameters
    ----------
    directory : path-like
    mmap : bool
        Memory-map ``vectors.npy`` (the HNSW graph is read into memory either way).
    **overrides
        Search-time parameters to change (``ef``, ``threads``).
    """
    d = Path(directory)
    path = d / CONFIG_FILE
    if not path.is_file():
        raise CollectionError(f"{d}: no ANN index ({CONFIG_FILE} missing)")
    config = read_format_json(path, fmt=FORMAT, version=FORMAT_VERSION, what="an index")
    params = dict(config["params"])
    for key, value in overrides.items():
        if key not in params:
            raise ParameterError(f"{key}={value!r} is not a parameter of a {config['kind']} index")
        params[key] = value
    index = make_index(config["kind"], int(config["dim"]), **params)
    vectors = np.load(d / VECTORS_FILE, mmap_mode="r" if mmap else None)
    if vectors.shape != (int(config["count"]), index.dim):
        raise CollectionError(
            f"{d / VECTORS_FILE}: shape {vectors.shape}, config says "
            f"({config['count']}, {index.dim}) (interrupted save?)"
        )
    index._vectors = vectors
    index._load_extra(d)
    return index


__all__ = [
    "HNSW_DEFAULTS",
    "HNSW_LOW_DIM",
    "KINDS",
    "AnnIndex",
    "ExactIndex",
    "HNSWIndex",
    "KDTreeIndex",
    "build_index",
    "load_index",
    "make_index",
]
