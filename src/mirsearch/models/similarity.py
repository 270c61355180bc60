"""The similarity embedding (inference with numpy): per-patch features -> a small MLP -> adaptive pooling over
patches -> an L2-normalised recording vector whose Euclidean distances rank recordings by similarity.

Adaptive pooling (autopool; McFee, Salamon & Bello 2018), per output dimension ``k`` with a learned ``alpha_k``:
``v_k = sum_t softmax_t(alpha_k h_tk) h_tk`` -- the mean for ``alpha = 0``, the maximum as ``alpha -> inf``.

A bundle (:mod:`mirsearch.models.bundle_format`) is ``config.json`` (format ``mirsearch-similarity``, the input
kind and dimension, the layer sizes, the pooling) and ``weights.npz`` (``mean``, ``scale`` of the input, ``w1``,
``b1``, ``w2``, ``b2``, ``alpha``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirsearch.errors import InputError, ParameterError
from mirsearch.models.bundle_format import content_id, read_config, write_config

FORMAT = "mirsearch-similarity"
FORMAT_VERSION = 1
WEIGHTS = "weights.npz"
ARRAYS = ("mean", "scale", "w1", "b1", "w2", "b2", "alpha")
POOLINGS = ("autopool", "mean", "max")


def pool(H: np.ndarray, *, pooling: str, alpha: np.ndarray | None = None) -> np.ndarray:
    """Pool per-patch vectors over patches.

    Parameters
    ----------
    H : np.ndarray, shape (n_patches >= 1, d)
    pooling : {"autopool", "mean", "max"}
    alpha : np.ndarray, shape (d,)
        Autopool parameters (needed for ``"autopool"``).

    Returns
    -------
    v : np.ndarray, shape (d,), float32
    """
    H = np.asarray(H, dtype=np.float64)
    if H.ndim != 2 or len(H) == 0:
        raise ParameterError(f"pooling needs shape (n_patches >= 1, d), got {H.shape}")
    if pooling == "mean":
        return H.mean(axis=0).astype(np.float32)
    if pooling == "max":
        return H.max(axis=0).astype(np.float32)
    if pooling != "autopool" or alpha is None:
        raise ParameterError(f"pooling={pooling!r} must be one of {POOLINGS} (autopool needs alpha)")
    Z = np.asarray(alpha, dtype=np.float64)[None, :] * H
    W = np.exp(Z - Z.max(axis=0, keepdims=True))
    return ((W * H).sum(axis=0) / W.sum(axis=0)).astype(np.float32)


@dataclass(frozen=True)
class SimilarityModel:
    """A loaded similarity embedding.

    Attributes
    ----------
    config : dict
        ``input`` (the per-patch feature kind), ``input_dim``, ``hidden``, ``dim``, ``pooling``, ``model_id``.
    arrays : dict of np.ndarray
        ``mean``, ``scale`` (input_dim,); ``w1`` (input_dim, hidden); ``b1``; ``w2`` (hidden, dim); ``b2``;
        ``alpha`` (dim,).
    """

    config: dict
    arrays: dict

    @property
    def dim(self) -> int:
        return int(self.config["dim"])

    @property
    def model_id(self) -> str:
        return str(self.config.get("model_id", ""))

    def patch_vectors(self, X: np.ndarray) -> np.ndarray:
        """The MLP applied to every patch: shape (n_patches, input_dim) -> (n_patches, dim)."""
        a = self.arrays
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != len(a["mean"]):
            raise ParameterError(f"patch features must have shape (n, {len(a['mean'])}), got {X.shape}")
        h = np.maximum((X - a["mean"]) / a["scale"] @ a["w1"] + a["b1"], 0.0)
        return h @ a["w2"] + a["b2"]

    def embed(self, X: np.ndarray) -> np.ndarray:
        """The recording vector of one recording's patch features: shape (dim,), float32, unit length."""
        v = pool(self.patch_vectors(X), pooling=self.config["pooling"], alpha=self.arrays["alpha"])
        return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


def save_model(directory: str | Path, config: dict, arrays: dict) -> SimilarityModel:
    """Write a bundle (config + arrays); ``model_id`` is derived from the content."""
    from mirsearch._util import atomic_path

    missing = [k for k in ARRAYS if k not in arrays]
    if missing:
        raise ParameterError(f"similarity bundle lacks arrays {missing}")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    with atomic_path(d / WEIGHTS) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **{k: np.asarray(arrays[k], dtype=np.float32) for k in ARRAYS})
    config = {**config, "format": FORMAT, "format_version": FORMAT_VERSION}
    config["model_id"] = content_id([d / WEIGHTS], config, ("input", "input_dim", "hidden", "dim", "pooling"))
    write_config(d, config)
    return load_model(d)


def load_model(directory: str | Path) -> SimilarityModel:
    """Read a bundle written by :func:`save_model`."""
    d = Path(directory)
    config = read_config(d, format=FORMAT, version=FORMAT_VERSION, what="similarity bundle")
    try:
        with np.load(d / WEIGHTS, allow_pickle=False) as z:
            arrays = {k: z[k].astype(np.float32) for k in ARRAYS}
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{d / WEIGHTS}: unreadable similarity weights ({exc})") from None
    return SimilarityModel(config=config, arrays=arrays)
