"""Reductions of audio shingles to low-dimensional vectors: none, PCA, and a learned triplet embedding.

Every reduction maps unit-length shingles (n, 240) (see :mod:`mirsearch.features.shingles`) to
(n, d) float32 vectors compared by Euclidean distance:

``none``
    The shingles themselves (d = 240).
``pca``
    Principal component analysis fitted on a set of shingles (a collection or a training set):
    ``(S - mean) @ components.T`` with the ``d`` leading eigenvectors of the covariance. Keeps
    Euclidean distances as well as a linear map of that size can.
``whiten`` (the default of the shingle index)
    The shingles centred and *whitened* with the covariance of a collection's shingles in all 12
    transpositions, ``(S - mean) @ W`` with ``W = U diag((lambda + eps mean(lambda))^-1/2) U^T``, then
    scaled to unit length (d = 240, no reduction). Euclidean distance becomes a regularised Mahalanobis
    distance: the few directions every CENS shingle shares (the average chroma, slow loudness-like changes)
    stop dominating it, and the many small directions in which passages differ count as much. On degraded
    real recordings this lifts the right track to first place from 0.90 to 0.99 of the tune queries
    (docs/shingles.md).
``embedding``
    :class:`EmbeddingNet`, a small convolutional network trained with a triplet loss
    (:mod:`mirsearch.training.embedding`) so that shingles of corresponding passages in two
    versions of a work lie close together and shingles of other works far apart (Zalkow & Müller,
    "Learning low-dimensional embeddings of audio shingles for cross-version retrieval of classical
    music", Applied Sciences 2020). Output vectors have unit length.

A reduction is saved as a *bundle* directory (the layout of :mod:`mirsearch.models.bundle_format`,
format ``mirsearch-shingle-reduction``): ``config.json`` (format, type, dimension, shingle
configuration, network hyper-parameters, training summary, ``model_id``) plus the parameters:
``weights.pt`` (a plain ``state_dict``, read with ``torch.load(weights_only=True)``) for the
network, ``pca.npz`` (``np.load(allow_pickle=False)``) for PCA. No pickle anywhere. The shipped
default, ``bundles/embedding-12``, is what :func:`load_reduction("embedding", dim=12)` returns.
"""

from __future__ import annotations

import abc
import logging
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_path
from mirsearch.errors import InputError, ParameterError
from mirsearch.models import bundle_format
from mirsearch.models.bundle_format import CONFIG_FILE, WEIGHTS_FILE, content_id, load_weights, save_state_dict

log = logging.getLogger(__name__)

FORMAT = "mirsearch-shingle-reduction"
FORMAT_VERSION = 1
PCA_FILE = "pca.npz"
WHITEN_FILE = "whiten.npz"
#: regularisation of the whitening: ``eps`` times the mean eigenvalue is added to every eigenvalue (chosen on
#: the tune split of benchmarks/bench_shingles_real.py; docs/shingles.md)
WHITEN_EPS = 0.1
#: folder name inside ``weights.pt`` (the shipped bundles were written through ``.weights.pt.tmp``)
WEIGHTS_ARCHIVE = ".weights.pt"
#: config entries that (with the parameter files) define ``model_id``
ID_KEYS = ("type", "dim", "shingles", "network")
#: shingle configuration of reductions made without one (the shipped bundles'; equal to
#: ``mirsearch.features.shingles.REFERENCE_CONFIG.to_dict()``, which a test checks)
DEFAULT_SHINGLES = {"length": 20, "hop": 1, "window": 41, "downsample": 10, "features": "chroma"}
#: packaged bundles
BUNDLES_DIR = Path(__file__).parent / "bundles"
#: dimensions the reference evaluates (and ``--dim`` accepts for learned embeddings by convention)
DIMS = (6, 12, 30)
TYPES = ("none", "pca", "whiten", "embedding")
#: reductions fitted on the collection they index
FITTED = ("pca", "whiten")
#: the default reduction of the shingle index: the shingles whitened with the collection's covariance (on degraded
#: real recordings the raw shingles lose 9 points on tune, the first shipped embeddings, trained on rendered corpus
#: shingles, most of the accuracy: docs/shingles.md)
DEFAULT_REDUCTION = "whiten"
DEFAULT_DIM: int | None = None


def default_network_config(dim: int = 12) -> dict:
    """Hyper-parameters of :class:`EmbeddingNet` for output dimension ``dim``."""
    return {"dim": int(dim), "length": 20, "channels": [16, 32, 32], "hidden": 128, "arch": "cnn"}


def _shingle_config_dict() -> dict:
    return dict(DEFAULT_SHINGLES)


def _typed_config(config: dict | None, type_: str, dim: int) -> dict:
    """A copy of a reduction's config with its type, dimension and (default) shingle configuration."""
    config = dict(config or {})
    config.setdefault("shingles", _shingle_config_dict())
    return {**config, "dim": int(dim), "type": type_}


# -- reductions -------------------------------------------------------------------------------------------
class Reduction(abc.ABC):
    """Base class of the shingle reductions.

    Attributes
    ----------
    config : dict
        What :meth:`save` writes to ``config.json``.
    """

    type = "base"

    def __init__(self, config: dict):
        self.config = config

    @property
    def dim(self) -> int:
        """Output dimension."""
        return int(self.config["dim"])

    @property
    def input_dim(self) -> int:
        """Shingle dimension expected (``12 * length``)."""
        return 12 * int(self.config["shingles"]["length"])

    @property
    def name(self) -> str:
        """Short name for directories and tables (``pca12``, ``embedding12``, ``none240``)."""
        return f"{self.type}{self.dim}"

    @property
    def model_id(self) -> str:
        """Identifier of these parameters (changes when the reduction is refitted or retrained)."""
        return str(self.config.get("model_id", "unsaved"))

    def _check(self, S) -> np.ndarray:
        S = np.asarray(S, dtype=np.float32)
        if S.ndim != 2 or S.shape[1] != self.input_dim:
            raise ParameterError(f"shingles must have shape (n, {self.input_dim}), got {S.shape}")
        return S

    def transform(self, S, *, batch: int = 65536) -> np.ndarray:
        """Reduce shingles.

        Parameters
        ----------
        S : array-like, shape (n, input_dim)
            Unit-length shingles.
        batch : int
            Rows per step (bounds memory).

        Returns
        -------
        np.ndarray, shape (n, dim), float32, C-contiguous
        """
        S = self._check(S)
        if len(S) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = np.empty((len(S), self.dim), np.float32)
        for s in range(0, len(S), batch):
            out[s : s + batch] = self._transform(np.asarray(S[s : s + batch], dtype=np.float32))
        return out

    @abc.abstractmethod
    def _transform(self, S: np.ndarray) -> np.ndarray:
        """Implemented by each concrete subclass."""

    def save(self, path) -> Path:
        """Write the bundle directory ``path``; sets ``model_id``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        files = self._save_params(path)
        config = {**self.config, "format": FORMAT, "format_version": FORMAT_VERSION, "type": self.type}
        config["model_id"] = content_id(files, config, ID_KEYS)
        bundle_format.write_config(path, config)
        self.config = config
        log.info("saved %s reduction to %s (model_id %s)", self.name, path, config["model_id"])
        return path

    def _save_params(self, path: Path) -> list[Path]:
        return []


class IdentityReduction(Reduction):
    """No reduction: the 240-dimensional shingles themselves."""

    type = "none"

    def __init__(self, config: dict | None = None):
        shingles = (config or {}).get("shingles") or _shingle_config_dict()
        super().__init__({"type": "none", "dim": 12 * int(shingles["length"]), "shingles": shingles})
        self.config["model_id"] = "none"

    def _transform(self, S):
        return S


class PCAReduction(Reduction):
    """Principal component analysis of shingles.

    Parameters
    ----------
    mean : np.ndarray, shape (input_dim,)
    components : np.ndarray, shape (dim, input_dim)
        Orthonormal rows, leading first.
    config : dict, optional
    """

    type = "pca"

    def __init__(self, mean: np.ndarray, components: np.ndarray, config: dict | None = None):
        components = np.asarray(components, dtype=np.float32)
        super().__init__(_typed_config(config, "pca", components.shape[0]))
        self.mean = np.asarray(mean, dtype=np.float32)
        self.components = components

    @classmethod
    def fit(
        cls,
        S,
        *,
        dim: int,
        transpositions: bool = True,
        max_rows: int | None = 500_000,
        seed: int = 0,
        info: dict | None = None,
    ) -> PCAReduction:
        """Fit PCA on shingles.

        Parameters
        ----------
        S : array-like, shape (n, input_dim)
            Training shingles (e.g. a collection's store).
        dim : int, 1 <= dim <= input_dim
        transpositions : bool
            Fit on the shingles in all 12 transpositions (cyclic chroma shifts). The covariance is then
            invariant to transposition, so a transposed query is reduced as faithfully as the original
            key; fitted on one key only, transposed queries land near unrelated shingles (searching in
            12 keys then *lowers* P@1, see docs/benchmarks.md).
        max_rows : int or None
            Fit on a random subset of this many rows (the covariance converges long before).
        seed : int
        info : dict, optional
            Stored under ``training`` in the config (what it was fitted on).
        """
        S = np.asarray(S, dtype=np.float32)
        if S.ndim != 2 or len(S) < 2:
            raise ParameterError(f"PCA needs at least 2 shingles of shape (n, d), got {S.shape}")
        if not 1 <= dim <= S.shape[1]:
            raise ParameterError(f"dim={dim} must lie in [1, {S.shape[1]}]")
        mean, values, vectors, rows = _rolled_covariance(S, transpositions=transpositions, max_rows=max_rows, seed=seed)
        order = np.argsort(values)[::-1][:dim]
        comps = vectors[:, order].T
        # deterministic sign: largest absolute entry of each component positive
        signs = np.sign(comps[np.arange(dim), np.argmax(np.abs(comps), axis=1)])
        comps *= signs[:, None]
        explained = float(values[order].sum() / max(values.sum(), 1e-12))
        return cls(
            mean, comps, _fitted_config(S, rows, transpositions, {"explained_variance": round(explained, 6)}, info)
        )

    def _transform(self, S):
        return (S - self.mean) @ self.components.T

    def _save_params(self, path: Path) -> list[Path]:
        target = path / PCA_FILE
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, mean=self.mean, components=self.components)
        return [target]


def _rolled_covariance(S: np.ndarray, *, transpositions: bool, max_rows: int | None, seed: int):
    """Mean, eigenvalues and eigenvectors of the covariance of shingles ``S`` (n, 12 * length) in all 12
    transpositions (or as they are), on a random subset of at most ``max_rows`` rows; and the rows used."""
    if S.shape[1] % 12:
        raise ParameterError(f"shingle dimension {S.shape[1]} is not a multiple of 12")
    n_keys = 12 if transpositions else 1
    if max_rows is not None and len(S) * n_keys > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(S), max(2, max_rows // n_keys), replace=False))
        S = S[rows]
    frames = np.asarray(S, dtype=np.float64).reshape(len(S), -1, 12)
    X = np.concatenate([np.roll(frames, t, axis=2).reshape(len(S), -1) for t in range(n_keys)])
    mean = X.mean(axis=0)
    cov = np.cov(X - mean, rowvar=False) if len(X) > 1 else np.zeros((X.shape[1], X.shape[1]))
    values, vectors = np.linalg.eigh(cov)
    return mean, np.maximum(values, 0.0), vectors, len(X)


def _fitted_config(S: np.ndarray, rows: int, transpositions: bool, fit: dict, info: dict | None) -> dict:
    shingles = _shingle_config_dict()
    shingles["length"] = S.shape[1] // 12
    training = {"rows": int(rows), "shingles_fitted": int(len(S)), "transpositions": bool(transpositions), **fit}
    return {"shingles": shingles, "training": {**training, **(info or {})}}


class WhitenReduction(Reduction):
    """Shingles centred, whitened with a regularised covariance and scaled to unit length (module docstring).

    Parameters
    ----------
    mean : np.ndarray, shape (input_dim,)
    W : np.ndarray, shape (input_dim, input_dim)
        Symmetric whitening matrix.
    config : dict, optional
    """

    type = "whiten"

    def __init__(self, mean: np.ndarray, W: np.ndarray, config: dict | None = None):
        W = np.asarray(W, dtype=np.float32)
        if W.ndim != 2 or W.shape[0] != W.shape[1]:
            raise ParameterError(f"W must be square, got {W.shape}")
        super().__init__(_typed_config(config, "whiten", W.shape[0]))
        self.mean = np.asarray(mean, dtype=np.float32)
        self.W = W

    @classmethod
    def fit(
        cls,
        S,
        *,
        eps: float = WHITEN_EPS,
        transpositions: bool = True,
        max_rows: int | None = 500_000,
        seed: int = 0,
        info: dict | None = None,
    ) -> WhitenReduction:
        """Fit the whitening on shingles.

        Parameters
        ----------
        S : array-like, shape (n >= 1, input_dim)
            Shingles (e.g. a collection's store).
        eps : float > 0
            Added to every eigenvalue, in units of their mean (bounds the gain of directions the shingles
            hardly vary in; with few shingles the covariance is singular).
        transpositions : bool
            Fit on the shingles in all 12 transpositions: the covariance, and so the whitening, commutes with
            transposition (a transposed query is whitened as its original key).
        max_rows, seed, info
            As :meth:`PCAReduction.fit`.
        """
        S = np.asarray(S, dtype=np.float32)
        if S.ndim != 2 or len(S) < 1:
            raise ParameterError(f"whitening needs at least 1 shingle of shape (n, d), got {S.shape}")
        if not eps > 0:
            raise ParameterError(f"eps={eps} must be > 0")
        mean, values, vectors, rows = _rolled_covariance(S, transpositions=transpositions, max_rows=max_rows, seed=seed)
        floor = eps * max(float(values.mean()), 1e-12)
        W = (vectors / np.sqrt(values + floor)) @ vectors.T
        return cls(mean, W, _fitted_config(S, rows, transpositions, {"eps": float(eps)}, info))

    @property
    def rows_fitted(self) -> int:
        """Shingles the whitening was fitted on (0 when unknown)."""
        return int(self.config.get("training", {}).get("shingles_fitted", 0))

    def _transform(self, S):
        Y = (S - self.mean) @ self.W
        Y /= np.maximum(np.linalg.norm(Y, axis=1, keepdims=True), 1e-12)
        return Y

    def _save_params(self, path: Path) -> list[Path]:
        target = path / WHITEN_FILE
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, mean=self.mean, W=self.W)
        return [target]


# -- the embedding network --------------------------------------------------------------------------------
def _torch_modules():
    import torch
    from torch import nn

    class EmbeddingNet(nn.Module):
        """Shingle (B, 12 * length) -> unit vector (B, dim).

        ``arch="cnn"`` (default): the shingle is a one-channel image of ``length`` frames x 12 chroma
        bands. Three convolution blocks (3x3 kernels; chroma axis padded *circularly*, time axis with
        zeros; ELU; batch normalisation) with max pooling over time (20 -> 10 -> 5 frames), then two dense
        layers. About 260 k parameters for the default widths, ~0.15 ms per shingle on one core.
        ``arch="mlp"``: three dense layers (240 -> 2 * hidden -> hidden -> dim), ~10x faster.
        Both end in l2 normalisation.
        """

        def __init__(
            self, *, dim: int = 12, length: int = 20, channels=(16, 32, 32), hidden: int = 128, arch: str = "cnn"
        ):
            super().__init__()
            if arch not in ("cnn", "mlp"):
                raise ParameterError(f"arch={arch!r} must be 'cnn' or 'mlp'")
            self.dim, self.length, self.arch = int(dim), int(length), arch
            layers = []
            c_in, t = 1, self.length
            if arch == "cnn":
                for i, c in enumerate(channels):
                    layers += [nn.Conv2d(c_in, c, kernel_size=3, padding=(1, 0)), nn.ELU(), nn.BatchNorm2d(c)]
                    if i < 2 and t >= 2:
                        layers.append(nn.MaxPool2d((2, 1)))
                        t //= 2
                    c_in = c
                flat = c_in * t * 12
            else:
                flat = 12 * self.length
                layers += [nn.Flatten(), nn.Linear(flat, 2 * hidden), nn.ELU(), nn.BatchNorm1d(2 * hidden)]
                flat = 2 * hidden
            self.convs = nn.ModuleList(layers)
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, hidden), nn.ELU(), nn.Linear(hidden, self.dim))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.reshape(x.shape[0], 1, self.length, 12)
            for layer in self.convs:
                if isinstance(layer, nn.Conv2d):
                    x = torch.nn.functional.pad(x, (1, 1, 0, 0), mode="circular")  # chroma: circular
                if isinstance(layer, nn.MaxPool2d):  # (2, 1) pooling as a reshape: 5-10x faster on CPU
                    b, c, t, w = x.shape
                    x = x[:, :, : t - t % 2].reshape(b, c, t // 2, 2, w).amax(dim=3)
                else:
                    x = layer(x)
            return torch.nn.functional.normalize(self.head(x), dim=1)

    return torch, EmbeddingNet


def new_network(config: dict | None = None):
    """A freshly initialised :class:`EmbeddingNet` (torch module) for a network config."""
    _, EmbeddingNet = _torch_modules()
    cfg = {**default_network_config(), **(config or {})}
    return EmbeddingNet(
        dim=cfg["dim"], length=cfg["length"], channels=tuple(cfg["channels"]), hidden=cfg["hidden"], arch=cfg["arch"]
    )


class EmbeddingReduction(Reduction):
    """A trained :class:`EmbeddingNet` as a reduction.

    Parameters
    ----------
    model : torch.nn.Module
        The network (put in eval mode here).
    config : dict
        Bundle config with sections ``network``, ``shingles`` and ``training``.
    threads : int
        Torch intra-op threads during :meth:`transform`.
    """

    type = "embedding"

    def __init__(self, model, config: dict, *, threads: int = 1):
        config = dict(config)
        config["type"] = "embedding"
        config["dim"] = int(config["network"]["dim"])
        config.setdefault("shingles", _shingle_config_dict())
        super().__init__(config)
        self.model = model.eval()
        self.threads = int(threads)

    def _transform(self, S):
        import torch

        from mirsearch.models.bundle import torch_threads

        with torch_threads(self.threads), torch.inference_mode():
            x = torch.from_numpy(np.require(S, dtype=np.float32, requirements=["C", "W"]))
            return self.model(x).numpy()

    def transform(self, S, *, batch: int = 8192) -> np.ndarray:
        return super().transform(S, batch=batch)

    def _save_params(self, path: Path) -> list[Path]:
        return [save_state_dict(self.model.state_dict(), path / WEIGHTS_FILE, archive=WEIGHTS_ARCHIVE)]


# -- loading ----------------------------------------------------------------------------------------------
def read_config(path) -> dict:
    """``config.json`` of a reduction bundle, checked."""
    config = bundle_format.read_config(path, format=FORMAT, version=FORMAT_VERSION, what="reduction bundle")
    if config.get("type") not in TYPES:
        raise InputError(f"{Path(path) / CONFIG_FILE}: unknown reduction type {config.get('type')!r}")
    return config


def load_bundle(path, *, threads: int = 1) -> Reduction:
    """Load a reduction bundle directory (PCA or embedding)."""
    path = Path(path)
    config = read_config(path)
    if config["type"] == "none":
        return IdentityReduction(config)
    if config["type"] in FITTED:
        f = path / (PCA_FILE if config["type"] == "pca" else WHITEN_FILE)
        try:
            with np.load(f, allow_pickle=False) as z:
                if config["type"] == "pca":
                    return PCAReduction(z["mean"], z["components"], config)
                return WhitenReduction(z["mean"], z["W"], config)
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"{f}: cannot load {config['type']} parameters ({exc})") from None
    model = load_weights(new_network(config["network"]), path / WEIGHTS_FILE, what="reduction bundle")
    return EmbeddingReduction(model, config, threads=threads)


def packaged_bundle(dim: int) -> Path:
    """Directory of the shipped embedding bundle of dimension ``dim``."""
    path = BUNDLES_DIR / f"embedding-{int(dim)}"
    if not (path / CONFIG_FILE).is_file():
        shipped = sorted(p.name for p in BUNDLES_DIR.glob("embedding-*") if (p / CONFIG_FILE).is_file())
        raise InputError(
            f"{path}: no shipped embedding of dim={dim} (shipped: {', '.join(shipped) or 'none'}; "
            "train one with 'mirsearch shingles train' and pass its directory)"
        )
    return path


def load_reduction(spec: str = "embedding", *, dim: int | None = 12, threads: int = 1) -> Reduction:
    """A reduction from a name or a bundle directory.

    Parameters
    ----------
    spec : str or path-like
        ``"none"``; ``"embedding"`` (the shipped bundle of dimension ``dim``); or a bundle directory
        (a PCA or embedding bundle). ``"pca"`` needs fitting first: use :meth:`PCAReduction.fit`.
    dim : int, optional
        Dimension of the shipped embedding.
    threads : int
        Torch threads of an embedding.
    """
    if isinstance(spec, Reduction):
        return spec
    if spec == "none":
        return IdentityReduction()
    if spec == "embedding":
        return load_bundle(packaged_bundle(dim or 12), threads=threads)
    if spec in FITTED:
        raise ParameterError(
            f"reduction={spec!r} must be fitted first (PCAReduction.fit, WhitenReduction.fit) or given as a bundle "
            "directory"
        )
    path = Path(spec)
    if not path.is_dir():
        raise ParameterError(f"reduction={spec!r} is not 'none', 'pca', 'whiten', 'embedding' or a bundle directory")
    return load_bundle(path, threads=threads)


__all__ = [
    "DEFAULT_DIM",
    "DEFAULT_REDUCTION",
    "DIMS",
    "FITTED",
    "WHITEN_EPS",
    "EmbeddingReduction",
    "IdentityReduction",
    "PCAReduction",
    "Reduction",
    "WhitenReduction",
    "default_network_config",
    "load_bundle",
    "load_reduction",
    "new_network",
    "packaged_bundle",
]
