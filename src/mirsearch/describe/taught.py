"""Tags taught from a few examples in the representation of search by similarity (issue 19's few-shot check).

A :class:`TimbreTag` models the examples' recording vectors (:func:`mirsearch.describe.similarity.recording_vector`,
raw) as a diagonal Gaussian -- their mean, and their variance shrunk towards the collection's:
``s2 = var(examples) + shrink * var(collection)`` -- and the collection (the background) as another diagonal
Gaussian. A recording's *distance* to the tag is the negative log-likelihood ratio per dimension,

``d(v) = 1/(2 dim) * sum_j [(v_j - mu_j)^2 / s2_j - (v_j - m_j)^2 / v0_j + log(s2_j / v0_j)]``

(smaller: more like the examples than like the collection), so the dimensions in which the examples agree weigh
most: the traits a soundtrack's recordings share. Its probability is a logistic function of ``d`` fitted by
:func:`calibrate` so that the examples (each against the tag taught from the others) and the background are told
apart with equal weight. Per-dimension scales cancel in ``d``, so the raw vectors need no standardisation and a
tag keeps working as its collection grows. :data:`SHRINK` was chosen with the target soundtrack never in the
fitting set (benchmarks/similarity_heldout.py; docs/benchmarks.md).

The same model serves three representations (``space``), chosen by what a collection stores:

- ``"timbre"``: the similarity vector alone (a collection that stores ``timbre`` only; :data:`SHRINK`);
- ``"embedding"``: the tagger's recording embedding (a collection that stores ``tags`` only);
- ``"embedding+timbre"``: the tagger embedding and one timbre block (:data:`TIMBRE_BLOCK`, the spread over
  patches of the cepstral dynamics), each block weighing half (:func:`block_weights`).

The last two use :data:`SHRINK_EMBEDDING`; space, block and shrinkage were chosen on the few-shot tasks of the
soundtracks' train half of the tracks and measured once on the test half (benchmarks/bench_taught_tags.py;
docs/benchmarks.md, issue 19 session 11).

- ``"learned"`` (session 13): the similarity embedding learned without labels from the parts of real recordings
  (:data:`LEARNED_BUNDLE`, :mod:`mirsearch.models.similarity`; any two stretches of one recording a positive
  pair), computed from the stored ``timbre`` kind's 4-s segments (:func:`learned_vector`); :data:`SHRINK_LEARNED`.
  Built, not chosen by :func:`mirsearch.describe.tagger.collection_space`: from 5 examples of a soundtrack the
  network never heard it ranked 30-s clips of its other recordings with a full-list AP 0.26 above the best
  baseline prototype, but whole recordings only 0.03 above (the shipped ``"embedding+timbre"``: 0.13 and 0.27;
  docs/benchmarks.md, session 13).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirsearch.errors import ParameterError

__all__ = ["LEARNED_BUNDLE", "SHRINK", "SHRINK_EMBEDDING", "SHRINK_LEARNED", "SPACE", "SPACES", "TIMBRE_BLOCK",
           "TimbreTag", "block_weights", "calibrate", "fit_space_tag", "fit_timbre_tag", "fused_vector",
           "learned_model", "learned_vector"]  # fmt: skip

#: shrinkage of the examples' variance towards the collection's (a fraction of the collection's variance)
SHRINK = 0.03
#: the name of the representation in a stored tag
SPACE = "timbre"
#: shrinkage in the spaces with the tagger embedding
SHRINK_EMBEDDING = 0.3
#: shrinkage in the learned similarity embedding (``"learned"``)
SHRINK_LEARNED = 0.3
#: the representations a tag can be taught in (module docstring)
SPACES = ("timbre", "embedding", "embedding+timbre", "learned")
#: the bundle of the ``"learned"`` space (:func:`mirsearch.models.similarity.load_model`)
LEARNED_BUNDLE = Path(__file__).resolve().parents[1] / "models" / "bundles" / "similarity_selfsup"
#: the timbre block beside the tagger embedding in ``"embedding+timbre"``: (descriptor group, statistic over
#: patches) of :func:`mirsearch.features.timbre_stats.timbre_vector`
TIMBRE_BLOCK = ("cepstra", "std")


def _timbre_rows(n: int) -> np.ndarray:
    """Rows of :data:`TIMBRE_BLOCK` in a timbre vector of ``n = 2 d`` values (means, then spreads)."""
    from mirsearch.features.timbre_stats import patch_blocks

    sl = patch_blocks()[TIMBRE_BLOCK[0]]
    if n % 2 or n // 2 < sl.stop:
        raise ParameterError(f"timbre vectors of {n} values have no {TIMBRE_BLOCK[0]} block (re-index)")
    return np.arange(sl.start, sl.stop) + (n // 2 if TIMBRE_BLOCK[1] == "std" else 0)


def _timbre_block_size() -> int:
    from mirsearch.features.timbre_stats import patch_blocks

    sl = patch_blocks()[TIMBRE_BLOCK[0]]
    return sl.stop - sl.start


def fused_vector(embedding: np.ndarray, timbre: np.ndarray) -> np.ndarray:
    """The ``"embedding+timbre"`` vector(s): tagger embedding(s) ``(D,)`` or ``(N, D)`` and the
    :data:`TIMBRE_BLOCK` rows of timbre vector(s) (:func:`~mirsearch.features.timbre_stats.timbre_vector`,
    ``(2 d,)`` or ``(N, 2 d)``) side by side: ``(D + b,)`` or ``(N, D + b)``."""
    E, T = np.asarray(embedding, np.float64), np.asarray(timbre, np.float64)
    if E.ndim != T.ndim or (E.ndim == 2 and len(E) != len(T)):
        raise ParameterError(f"embeddings {E.shape} and timbre vectors {T.shape} do not pair up")
    return np.concatenate([E, T[..., _timbre_rows(T.shape[-1])]], axis=-1)


def block_weights(sizes) -> np.ndarray:
    """Per-dimension weights ``(sum(sizes),)`` under which each block of ``sizes`` dimensions weighs alike (sum 1)."""
    sizes = [int(n) for n in sizes]
    if not sizes or min(sizes) < 1:
        raise ParameterError(f"sizes={sizes} must be positive block sizes")
    return np.concatenate([np.full(n, 1.0 / (n * len(sizes))) for n in sizes])


def calibrate(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """Logistic regression of ``label ~ distance`` with equal weight for the two classes: ``(slope, intercept)``
    (slope < 0: nearer is likelier). Without a background a default that puts the examples near 1."""
    pos = np.asarray(pos, np.float64)
    if len(neg) == 0:
        return -8.0, 8.0 * float(max(pos.max(), 0.1)) + 2.0
    from sklearn.linear_model import LogisticRegression

    d = np.concatenate([pos, np.asarray(neg, np.float64)])[:, None]
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    lr = LogisticRegression(class_weight="balanced", C=10.0).fit(d, y)
    slope = float(lr.coef_[0, 0])
    if slope >= 0:  # examples no closer than the background: nothing to learn
        slope = -1e-3
    return slope, float(lr.intercept_[0])


def _llr_distance(V: np.ndarray, mu, s2, m0, v0, weights=None) -> np.ndarray:
    V = np.atleast_2d(np.asarray(V, np.float64))
    if V.shape[1] != len(mu):
        raise ParameterError(f"vectors of dimension {V.shape[1]} do not match the tag's {len(mu)} (re-index)")
    terms = (V - mu) ** 2 / s2 - (V - m0) ** 2 / v0 + np.log(s2 / v0)
    return 0.5 * (terms.mean(axis=1) if weights is None else terms @ weights)


@dataclass(frozen=True)
class TimbreTag:
    """A tag taught as a Gaussian against the collection's (module docstring) in one of :data:`SPACES`; same
    interface as :class:`mirsearch.describe.tagger.TaughtTag` (``name``, ``examples``, ``space``,
    :meth:`probability`). ``weights`` (dim,), summing to 1: the dimensions' weights in the distance (None: alike)."""

    name: str
    prototype: np.ndarray
    variance: np.ndarray
    background_mean: np.ndarray
    background_var: np.ndarray
    slope: float
    intercept: float
    examples: tuple[str, ...] = field(default_factory=tuple)
    space: str = SPACE
    weights: np.ndarray | None = None

    def distance(self, vectors: np.ndarray) -> np.ndarray:
        """Negative log-likelihood ratio per dimension ``(N,)`` of raw recording vectors ``(N, dim)``."""
        return _llr_distance(vectors, self.prototype, self.variance, self.background_mean, self.background_var,
                             self.weights)  # fmt: skip

    def probability(self, vectors: np.ndarray) -> np.ndarray:
        """Probabilities ``(N,)`` of raw recording vectors ``(N, dim)``."""
        z = self.slope * self.distance(vectors) + self.intercept
        return (1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))).astype(np.float32)

    def to_json(self) -> dict:
        def arr(a):
            return [float(f"{v:.6g}") for v in np.asarray(a, np.float64)]

        out = {"name": self.name, "space": self.space, "prototype": arr(self.prototype),
               "variance": arr(self.variance), "background_mean": arr(self.background_mean),
               "background_var": arr(self.background_var), "slope": self.slope, "intercept": self.intercept,
               "examples": list(self.examples)}  # fmt: skip
        if self.weights is not None:
            out["weights"] = arr(self.weights)
        return out

    @classmethod
    def from_json(cls, data: dict) -> TimbreTag:
        arrays = [np.asarray(data[k], np.float64) for k in ("prototype", "variance", "background_mean",
                                                             "background_var")]  # fmt: skip
        weights = np.asarray(data["weights"], np.float64) if data.get("weights") is not None else None
        return cls(data["name"], *arrays, float(data["slope"]), float(data["intercept"]),
                   tuple(data.get("examples", ())), data.get("space", SPACE), weights)  # fmt: skip


def _gaussian(X: np.ndarray, floor: np.ndarray, shrink: float) -> tuple[np.ndarray, np.ndarray]:
    return X.mean(axis=0), X.var(axis=0) + shrink * floor


def fit_timbre_tag(name: str, examples: np.ndarray, background: np.ndarray, *, shrink: float = SHRINK,
                   paths=(), space: str = SPACE, weights: np.ndarray | None = None) -> TimbreTag:  # fmt: skip
    """Teach a tag from raw recording vectors.

    Parameters
    ----------
    name : str
    examples : np.ndarray, shape (n >= 1, dim)
        The examples' raw vectors (:func:`mirsearch.describe.similarity.recording_vector`).
    background : np.ndarray, shape (m >= 2, dim)
        The collection's other recordings' raw vectors.
    shrink : float > 0
        :data:`SHRINK`.
    paths : sequence of str
        The examples' files (kept for the record).
    space : str
        One of :data:`SPACES` (kept with the tag: what its vectors are).
    weights : np.ndarray, shape (dim,), optional
        The dimensions' weights in the distance (normalised to sum 1); None: all alike.
    """
    X = np.atleast_2d(np.asarray(examples, np.float64))
    B = np.atleast_2d(np.asarray(background, np.float64))
    if len(X) == 0 or X.shape[1] == 0:
        raise ParameterError("examples: at least one example is needed")
    if len(B) < 2 or B.shape[1] != X.shape[1]:
        raise ParameterError(f"background: at least 2 recordings of dimension {X.shape[1]} are needed, got {B.shape}")
    if not shrink > 0:
        raise ParameterError(f"shrink={shrink} must be > 0")
    if space not in SPACES:
        raise ParameterError(f"space={space!r} must be one of {', '.join(SPACES)}")
    if weights is not None:
        weights = np.asarray(weights, np.float64)
        if weights.shape != (X.shape[1],) or weights.min() < 0 or not weights.sum() > 0:
            raise ParameterError(f"weights: {X.shape[1]} non-negative values are needed, got shape {weights.shape}")
        weights = weights / weights.sum()
    m0, v0 = B.mean(axis=0), B.var(axis=0) + 1e-12
    mu, s2 = _gaussian(X, v0, shrink)
    if len(X) >= 2:  # each example against the tag taught from the others
        pos = [_llr_distance(X[i], *_gaussian(np.delete(X, i, axis=0), v0, shrink), m0, v0, weights)[0]
               for i in range(len(X))]  # fmt: skip
    else:
        pos = list(_llr_distance(X, mu, s2, m0, v0, weights))
    slope, intercept = calibrate(np.asarray(pos), _llr_distance(B, mu, s2, m0, v0, weights))
    return TimbreTag(name, mu, s2, m0, v0, slope, intercept, tuple(str(p) for p in paths), space, weights)


@functools.lru_cache(maxsize=2)
def learned_model(path: str | None = None):
    """The network of the ``"learned"`` space (:data:`LEARNED_BUNDLE`, or the bundle at ``path``)."""
    from mirsearch.models.similarity import load_model

    return load_model(path or LEARNED_BUNDLE)


def learned_vector(X: np.ndarray, *, model=None) -> np.ndarray:
    """A recording's vector in the ``"learned"`` space from its stored ``timbre`` features ``X`` (2 d + 1,
    n_segments): every segment with patches described as a recording
    (:func:`mirsearch.describe.similarity.part_vectors`), then the network's per-segment MLP and autopool over
    segments; shape (dim,), unit length."""
    from mirsearch.describe.similarity import part_vectors
    from mirsearch.features.timbre_stats import core_rows

    X = np.asarray(X)
    n = int((core_rows(X)[-1] > 0).sum()) if X.ndim == 2 and X.shape[0] > 1 else 0
    if n == 0:
        raise ParameterError(f"timbre features of shape {X.shape} have no segment with patches")
    return (model or learned_model()).embed(part_vectors(X, parts=n))


def fit_space_tag(name: str, examples: np.ndarray, background: np.ndarray, *, space: str, paths=()) -> TimbreTag:
    """Teach a tag in one of :data:`SPACES` with its shipped settings (shrinkage, block weights): examples
    ``(n, dim)`` and background ``(m, dim)`` are vectors of that space (:func:`fused_vector` for
    ``"embedding+timbre"``)."""
    if space == "timbre":
        return fit_timbre_tag(name, examples, background, paths=paths, space=space)
    if space == "learned":
        return fit_timbre_tag(name, examples, background, shrink=SHRINK_LEARNED, paths=paths, space=space)
    weights = None
    if space == "embedding+timbre":
        dim, b = np.atleast_2d(examples).shape[1], _timbre_block_size()
        if dim <= b:
            raise ParameterError(f"examples of dimension {dim} are not embedding+timbre vectors")
        weights = block_weights((dim - b, b))
    return fit_timbre_tag(name, examples, background, shrink=SHRINK_EMBEDDING, paths=paths, space=space,
                          weights=weights)  # fmt: skip
