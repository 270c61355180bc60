"""The tagger's features: log-mel -> packaged CNN -> probabilities and embeddings per patch; the stored "tags" kind.

The packaged CNN (:mod:`mirsearch.models.tagger`) runs on the log-mel of the bundle's front end
(:mod:`mirsearch.features.logmel`) and gives per output frame (0.32 s) a probability for every tag of the
vocabulary and an embedding. :func:`analyse` groups frames into patches (3.2 s every 1.6 s): a patch's
probabilities are the bundle's pooling (autopool, max or mean) of its frames, its embedding the mean of its
frames'. A recording's probabilities are the same pooling over its patches and its embedding the L2-normalised
mean of its patch embeddings (:func:`recording_embedding`).

The stored kind ``"tags"`` is ``(K + D, T)`` float32: rows ``0..K-1`` the patch probabilities, rows ``K..K+D-1``
the patch embeddings, at one patch per ``patch_hop_seconds`` (1.6 s: a whole number of
frames, and of patches in the 8 s steps of the indexer's windows) (:func:`extract_tags`,
:func:`split_stored`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from mirsearch.errors import InputError, ParameterError

log = logging.getLogger(__name__)

#: version of the stored "tags" kind; bump when the extraction changes
TAGS_VERSION = 1


@dataclass(frozen=True)
class TagAnalysis:
    """What the tagger says about one signal.

    Attributes
    ----------
    names : tuple of str
        Tag names, in output order (K).
    tags : np.ndarray, shape (K,)
        Recording-level probabilities.
    patch_probs : np.ndarray, shape (T, K)
        Probabilities per patch.
    embeddings : np.ndarray, shape (T, D)
        Embedding per patch.
    times : np.ndarray, shape (T, 2)
        Start and end of each patch (s).
    """

    names: tuple[str, ...]
    tags: np.ndarray
    patch_probs: np.ndarray
    embeddings: np.ndarray
    times: np.ndarray

    @property
    def embedding(self) -> np.ndarray:
        """The recording's embedding (D,), L2-normalised."""
        return recording_embedding(self.embeddings)


def _model(model=None):
    from mirsearch.models.tagger import TaggerModel

    return model or TaggerModel.load()


def recording_embedding(embeddings: np.ndarray) -> np.ndarray:
    """L2-normalised mean of patch embeddings ``(T, D)`` -> ``(D,)`` (zeros for no patch)."""
    E = np.asarray(embeddings, dtype=np.float32)
    if E.shape[0] == 0:
        return np.zeros(E.shape[1], np.float32)
    m = E.mean(axis=0)
    n = float(np.linalg.norm(m))
    return (m / n if n > 0 else m).astype(np.float32)


def patches(P: np.ndarray, E: np.ndarray, *, model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group frame outputs into patches.

    Parameters
    ----------
    P : np.ndarray, shape (K, n)
        Frame probabilities.
    E : np.ndarray, shape (D, n)
        Frame embeddings.
    model : TaggerModel

    Returns
    -------
    patch_probs (T, K), patch_embeddings (T, D), times (T, 2)
        At least one patch (a short signal gives one patch over all its frames).
    """
    rate = model.frame_rate
    size = max(1, int(round(model.config["patch_seconds"] * rate)))
    hop = max(1, int(round(model.config["patch_hop_seconds"] * rate)))
    n = P.shape[1]
    starts = range(0, hop * (1 + max(0, -(-(n - size) // hop))), hop)  # a regular grid; the last may be short
    probs = np.stack([model.pool(P[:, s : s + size]) for s in starts]).astype(np.float32)
    embs = np.stack([E[:, s : s + size].mean(axis=1) for s in starts]).astype(np.float32)
    times = np.array([[s / rate, min(s + size, n) / rate] for s in starts])
    return probs, embs, times


def analyse(y: np.ndarray, sr: int, *, model=None) -> TagAnalysis:
    """Tag probabilities, patches over time and embeddings of a mono signal.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal (any length; a silent or very short one gives one patch).
    sr : int > 0
        Its sample rate (resampled to the front end's rate).
    model : TaggerModel, optional
        Default: the packaged bundle.
    """
    from mirsearch.features.logmel import LogMelConfig, log_mel

    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise InputError(f"audio: expected a mono signal, got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise InputError("audio: contains NaN or infinite samples")
    if sr <= 0:
        raise ParameterError(f"sr={sr} must be > 0")
    model = _model(model)
    L, _ = log_mel(y, sr=int(sr), config=LogMelConfig(**model.frontend))
    P, E = model.frames(L)
    probs, embs, times = patches(P, E, model=model)
    tags = model.pool(probs.T)
    return TagAnalysis(model.tag_names, tags, probs, embs, times)


# ----------------------------------------------------------------------------------------------- stored kind
def tags_config(model=None) -> dict:
    """Configuration of the stored "tags" kind."""
    model = _model(model)
    return {"kind": "tags", "version": TAGS_VERSION, "model": model.config["model_id"], "n_tags": len(model.tag_names),
            "embedding_dim": model.config["embedding_dim"]}  # fmt: skip


def split_stored(X: np.ndarray, *, n_tags: int) -> tuple[np.ndarray, np.ndarray]:
    """``(patch_probs (T, K), embeddings (T, D))`` of a stored "tags" array ``(K + D, T)``."""
    X = np.asarray(X, dtype=np.float32)
    return X[:n_tags].T, X[n_tags:].T


def extract_tags(y: np.ndarray, *, sr: int, config: dict) -> tuple[np.ndarray, float]:
    """Stored "tags" features of a signal: ``(X (K + D, T) float32, patches per second)``."""
    model = _model()
    a = analyse(y, sr, model=model)
    X = np.concatenate([a.patch_probs.T, a.embeddings.T], axis=0).astype(np.float32)
    hop = max(1, int(round(model.config["patch_hop_seconds"] * model.frame_rate)))
    return X, model.frame_rate / hop
