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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mirsearch.errors import ParameterError

__all__ = ["SHRINK", "SPACE", "TimbreTag", "calibrate", "fit_timbre_tag"]

#: shrinkage of the examples' variance towards the collection's (a fraction of the collection's variance)
SHRINK = 0.03
#: the name of the representation in a stored tag
SPACE = "timbre"


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


def _llr_distance(V: np.ndarray, mu, s2, m0, v0) -> np.ndarray:
    V = np.atleast_2d(np.asarray(V, np.float64))
    if V.shape[1] != len(mu):
        raise ParameterError(f"vectors of dimension {V.shape[1]} do not match the tag's {len(mu)} (re-index)")
    terms = (V - mu) ** 2 / s2 - (V - m0) ** 2 / v0 + np.log(s2 / v0)
    return 0.5 * terms.mean(axis=1)


@dataclass(frozen=True)
class TimbreTag:
    """A tag taught in the similarity representation (module docstring); same interface as
    :class:`mirsearch.describe.tagger.TaughtTag` (``name``, ``examples``, ``space``, :meth:`probability`)."""

    name: str
    prototype: np.ndarray
    variance: np.ndarray
    background_mean: np.ndarray
    background_var: np.ndarray
    slope: float
    intercept: float
    examples: tuple[str, ...] = field(default_factory=tuple)
    space: str = SPACE

    def distance(self, vectors: np.ndarray) -> np.ndarray:
        """Negative log-likelihood ratio per dimension ``(N,)`` of raw recording vectors ``(N, dim)``."""
        return _llr_distance(vectors, self.prototype, self.variance, self.background_mean, self.background_var)

    def probability(self, vectors: np.ndarray) -> np.ndarray:
        """Probabilities ``(N,)`` of raw recording vectors ``(N, dim)``."""
        z = self.slope * self.distance(vectors) + self.intercept
        return (1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))).astype(np.float32)

    def to_json(self) -> dict:
        def arr(a):
            return [float(f"{v:.6g}") for v in np.asarray(a, np.float64)]

        return {"name": self.name, "space": self.space, "prototype": arr(self.prototype),
                "variance": arr(self.variance), "background_mean": arr(self.background_mean),
                "background_var": arr(self.background_var), "slope": self.slope, "intercept": self.intercept,
                "examples": list(self.examples)}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict) -> TimbreTag:
        arrays = [np.asarray(data[k], np.float64) for k in ("prototype", "variance", "background_mean",
                                                             "background_var")]  # fmt: skip
        return cls(data["name"], *arrays, float(data["slope"]), float(data["intercept"]),
                   tuple(data.get("examples", ())))  # fmt: skip


def _gaussian(X: np.ndarray, floor: np.ndarray, shrink: float) -> tuple[np.ndarray, np.ndarray]:
    return X.mean(axis=0), X.var(axis=0) + shrink * floor


def fit_timbre_tag(name: str, examples: np.ndarray, background: np.ndarray, *, shrink: float = SHRINK,
                   paths=()) -> TimbreTag:  # fmt: skip
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
    """
    X = np.atleast_2d(np.asarray(examples, np.float64))
    B = np.atleast_2d(np.asarray(background, np.float64))
    if len(X) == 0 or X.shape[1] == 0:
        raise ParameterError("examples: at least one example is needed")
    if len(B) < 2 or B.shape[1] != X.shape[1]:
        raise ParameterError(f"background: at least 2 recordings of dimension {X.shape[1]} are needed, got {B.shape}")
    if not shrink > 0:
        raise ParameterError(f"shrink={shrink} must be > 0")
    m0, v0 = B.mean(axis=0), B.var(axis=0) + 1e-12
    mu, s2 = _gaussian(X, v0, shrink)
    if len(X) >= 2:  # each example against the tag taught from the others
        pos = [_llr_distance(X[i], *_gaussian(np.delete(X, i, axis=0), v0, shrink), m0, v0)[0] for i in range(len(X))]
    else:
        pos = list(_llr_distance(X, mu, s2, m0, v0))
    slope, intercept = calibrate(np.asarray(pos), _llr_distance(B, mu, s2, m0, v0))
    return TimbreTag(name, mu, s2, m0, v0, slope, intercept, tuple(str(p) for p in paths))
