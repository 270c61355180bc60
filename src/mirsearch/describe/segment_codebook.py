"""A collection's palette of textures: a codebook of its recordings' 4-s timbre segments and each recording's soft
histogram over it, the ``textures`` view of the search by similarity.

The stored kind ``"timbre"`` keeps per 4-s segment the sufficient statistics of the patch features
(:func:`mirsearch.features.timbre_stats.extract_timbre`), so every segment has a timbre vector of its own
(:func:`segment_vectors`, the 494 values of :func:`mirsearch.describe.similarity.recording_vector`). A
:class:`SegmentCodebook` is fitted per collection without labels, as the z-scores of the other views are: the
segments z-scored over the collection, each of the timbre vector's six sub-blocks divided by the root of its
width (they weigh alike), projected on the first :data:`AXES` principal axes and modelled by a Gaussian mixture of
:data:`K` diagonal components (scikit-learn's EM, a fixed seed). A recording's *texture histogram*
(:meth:`SegmentCodebook.histogram`) is the square root of its segments' mean posterior over the components: which
of the collection's textures occur in it and how often, a unit vector whose squared distances are the Hellinger
form of the histograms' difference (``2 (1 - Bhattacharyya coefficient)``).

The mean and spread statistics of the other views blur what a recording's sections share with other recordings;
the histogram keeps it (Aucouturier and Pachet's bag of frames, Seyerlehner's block-level features). Measured on
six real soundtracks (docs/benchmarks.md, "Search by similarity", session 22): a fitted codebook is needed -- one
fitted on *other* recordings than the collection's loses -- and the view adds about +0.01 MAP@10.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from mirsearch.errors import ParameterError

log = logging.getLogger(__name__)

#: components of the codebook (the texture view's dimension)
K = 64
#: principal axes the segments are projected on
AXES = 64
#: segments the codebook is fitted on at most (an even draw over the recordings)
MAX_FIT_SEGMENTS = 20_000
#: recordings whose segments the codebook is fitted on at most (evenly spread over a larger collection, so that
#: the fit reads at most this many recordings' features whatever the collection's size)
MAX_FIT_RECORDINGS = 2_000
#: a codebook needs at least this many segments per component
MIN_SEGMENTS_PER_COMPONENT = 4
#: EM of the Gaussian mixture: covariance floor, iterations and seed
REG_COVAR, MAX_ITER, SEED = 1e-3, 200, 0


def segment_vectors(X: np.ndarray) -> np.ndarray:
    """The timbre vector of every stored segment with patches of a ``"timbre"`` array: per segment the mean and the
    spread over its patches of the patch features, the rows of
    :func:`~mirsearch.describe.similarity.recording_vector` (as if each segment were a recording).

    Parameters
    ----------
    X : np.ndarray, shape (rows, n_segments)
        Stored ``"timbre"`` features (the core rows and any extras).

    Returns
    -------
    S : np.ndarray, shape (n, 494), float64
        One row per segment with patches, in time order (n may be 0).
    """
    from mirsearch.describe.similarity import _layout
    from mirsearch.features.timbre_stats import CORE_ROWS, N_PATCH_FEATURES

    X = np.asarray(X, np.float64)
    if X.ndim != 2 or X.shape[0] < CORE_ROWS:
        raise ParameterError(f"timbre features of shape {X.shape} have no per-segment patch statistics")
    d = N_PATCH_FEATURES
    X = X[:, X[CORE_ROWS - 1] > 0]
    mean = X[:d]
    std = np.sqrt(np.maximum(X[d : 2 * d] - mean**2, 0.0))
    return np.concatenate([mean, std])[_layout()[0]].T


def fit_recordings(ids) -> list:
    """The recordings a collection's codebook is fitted on: all of ``ids``, or :data:`MAX_FIT_RECORDINGS` of them
    evenly spread (in the given order)."""
    ids = list(ids)
    if len(ids) <= MAX_FIT_RECORDINGS:
        return ids
    return [ids[i] for i in np.linspace(0, len(ids) - 1, MAX_FIT_RECORDINGS).round().astype(int)]


def _block_widths() -> np.ndarray:
    """Per timbre-vector row the width of its sub-block (494,)."""
    from mirsearch.describe.similarity import _layout

    return _layout()[1].astype(np.float64)


def fit_sample(segment_lists: list[np.ndarray], *, max_segments: int = MAX_FIT_SEGMENTS) -> np.ndarray:
    """The segments a codebook is fitted on: all of them, or from every recording the same number at most, evenly
    spread over it, so that at most about ``max_segments`` are kept. Shape (n, 494)."""
    lists = [np.asarray(S, np.float64) for S in segment_lists if len(S)]
    if not lists:
        return np.zeros((0, len(_block_widths())))
    total = sum(len(S) for S in lists)
    if total <= max_segments:
        return np.concatenate(lists)
    per = max(1, max_segments // len(lists))
    return np.concatenate([S[np.unique(np.linspace(0, len(S) - 1, min(per, len(S))).round().astype(int))]
                           for S in lists])  # fmt: skip


@dataclass(frozen=True)
class SegmentCodebook:
    """A collection's codebook of segment textures (:func:`fit`).

    Attributes
    ----------
    mean, scale : np.ndarray, shape (494,)
        The segments' standardisation ``(s - mean) / scale`` (z-scores, sub-blocks weighing alike).
    axes : np.ndarray, shape (AXES, 494)
        Principal axes of the standardised segments.
    means, variances : np.ndarray, shape (K, AXES)
        The mixture's components (diagonal).
    log_weights : np.ndarray, shape (K,)
    """

    mean: np.ndarray
    scale: np.ndarray
    axes: np.ndarray
    means: np.ndarray
    variances: np.ndarray
    log_weights: np.ndarray

    @property
    def k(self) -> int:
        """Components (the histogram's dimension)."""
        return len(self.log_weights)

    def project(self, S: np.ndarray) -> np.ndarray:
        """Segment vectors ``S`` (n, 494) in the codebook's space (n, AXES)."""
        return ((np.asarray(S, np.float64) - self.mean) / self.scale) @ self.axes.T

    def posteriors(self, S: np.ndarray) -> np.ndarray:
        """Posterior probabilities (n, K) of the components for segment vectors ``S`` (n, 494)."""
        Y = self.project(S)
        inv = 1.0 / self.variances  # (K, AXES)
        log_p = (-0.5 * (np.square(Y) @ inv.T - 2.0 * Y @ (self.means * inv).T + np.sum(self.means**2 * inv, axis=1))
                 - 0.5 * np.sum(np.log(2.0 * np.pi * self.variances), axis=1) + self.log_weights)  # fmt: skip
        log_p -= log_p.max(axis=1, keepdims=True)
        P = np.exp(log_p)
        return P / P.sum(axis=1, keepdims=True)

    def histogram(self, X: np.ndarray) -> np.ndarray:
        """A recording's texture histogram from its stored ``"timbre"`` array ``X``: the square root of its
        segments' mean posterior, shape (K,), float32, unit length.

        Raises
        ------
        ParameterError
            ``X`` has no segment with patches.
        """
        S = segment_vectors(X)
        if len(S) == 0:
            raise ParameterError("timbre features without a segment of sound have no texture histogram")
        return np.sqrt(self.posteriors(S).mean(axis=0)).astype(np.float32)


def fit(segment_lists: list[np.ndarray], *, k: int = K, axes: int = AXES, seed: int = SEED,
        max_segments: int = MAX_FIT_SEGMENTS) -> SegmentCodebook | None:  # fmt: skip
    """The codebook of a collection's segments.

    Parameters
    ----------
    segment_lists : list of np.ndarray, each shape (n_i, 494)
        Every recording's :func:`segment_vectors`.
    k, axes : int
        Components and principal axes.
    seed : int
        Seed of the mixture's k-means initialisation (the result is deterministic for it).
    max_segments : int
        Segments fitted on at most (:func:`fit_sample`).

    Returns
    -------
    SegmentCodebook, or None when there are fewer than ``MIN_SEGMENTS_PER_COMPONENT * k`` segments.
    """
    from sklearn.mixture import GaussianMixture

    if k < 1 or axes < 1:
        raise ParameterError(f"k={k} and axes={axes} must be >= 1")
    S = fit_sample(segment_lists, max_segments=max_segments)
    if len(S) < MIN_SEGMENTS_PER_COMPONENT * k:
        log.info("texture codebook: %d segments are too few for %d components; the view is left out", len(S), k)
        return None
    mean = S.mean(axis=0)
    scale = (S.std(axis=0) + 1e-6) * np.sqrt(_block_widths())
    Z = (S - mean) / scale
    _, _, Vt = np.linalg.svd(Z - Z.mean(axis=0), full_matrices=False)
    A = Vt[: min(axes, Vt.shape[0])]
    gmm = GaussianMixture(k, covariance_type="diag", reg_covar=REG_COVAR, max_iter=MAX_ITER, random_state=seed)
    gmm.fit(Z @ A.T)
    return SegmentCodebook(mean=mean, scale=scale, axes=A, means=gmm.means_, variances=gmm.covariances_,
                           log_weights=np.log(np.maximum(gmm.weights_, 1e-300)))  # fmt: skip
