"""Model bundles: a directory with ``config.json`` and ``weights.pt``.

``config.json`` says everything needed to run the model on audio (input features and their
parameters, sampling rate, frame rates, network hyper-parameters, classes), how it was trained, and
``model_id``: the first 16 hex digits of the SHA-256 of the weights file together with the
network and input sections of the config. Anything that stores features computed by a model (the
collection) should store ``model_id`` with them and re-extract when it changes.

``weights.pt`` is a plain ``state_dict`` written by :func:`torch.save` and read with
``torch.load(..., weights_only=True)``: tensors only, no pickled code. Torch inference on 2 cores is
fast enough (well above 100x realtime for the network), so no ONNX export is needed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mirsearch.errors import InputError
from mirsearch.models.network import BLANK, ChromaNet

logger = logging.getLogger(__name__)

FORMAT = "mirsearch-chroma-bundle"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
#: directory of the bundles that ship with the package
BUNDLES_DIR = Path(__file__).parent / "bundles"
#: name of the default bundle in :data:`BUNDLES_DIR`
DEFAULT_BUNDLE = "theme_ctc"

#: pitch-class names of the output classes, then the blank
CLASS_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B", "blank")


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(n)`` and restore the previous setting after it.

    On a shared 2-core machine two intra-op threads are often much slower than one (the threads
    spin-wait for each other when the other core is busy), hence inference defaults to one thread.
    """
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def default_input_config() -> dict:
    """HCQT parameters of the default model input."""
    sr = 22050
    return {
        "features": "hcqt",
        "sr": sr,
        "feature_rate": sr / 512,
        "harmonics": [0.5, 1.0, 2.0, 3.0, 4.0, 5.0],
        "fmin_midi": 24 - 1 / 3,  # groups of 3 bins centred on the semitones, group 0 on C1
        "n_octaves": 6,
        "bins_per_semitone": 3,
        "top_db": 80.0,
    }


def default_network_config() -> dict:
    """Hyper-parameters of :class:`~mirsearch.models.network.ChromaNet`."""
    return {"n_harmonics": 6, "bins_per_semitone": 3, "channels": 32, "time_pool": 2}


def _model_id(weights_path: Path, config: dict) -> str:
    h = hashlib.sha256()
    h.update(weights_path.read_bytes())
    h.update(json.dumps({k: config[k] for k in ("input", "network")}, sort_keys=True).encode())
    return h.hexdigest()[:16]


@dataclass
class ModelBundle:
    """A trained chroma network together with its configuration.

    Attributes
    ----------
    config : dict
        Contents of ``config.json`` (sections ``input``, ``network``, ``output``, ``training``).
    model : ChromaNet
        The network in eval mode.
    path : Path or None
        Directory it was loaded from.
    """

    config: dict
    model: ChromaNet
    path: Path | None = None
    _id: str | None = field(default=None, repr=False)

    @property
    def model_id(self) -> str:
        """Identifier of this model version (changes whenever weights or input parameters change)."""
        return self.config.get("model_id") or self._id or "unsaved"

    @property
    def input(self) -> dict:
        """HCQT parameters (``sr``, ``feature_rate``, ``harmonics``, ...)."""
        return self.config["input"]

    @property
    def output_rate(self) -> float:
        """Frame rate of the network output in Hz."""
        return self.config["input"]["feature_rate"] / self.config["network"]["time_pool"]

    def hcqt(self, y: np.ndarray, *, sr: int) -> np.ndarray:
        """HCQT of ``y`` (already at ``self.input["sr"]``) with this bundle's parameters."""
        from mirsearch.features.hcqt import hcqt

        p = self.input
        H, _ = hcqt(
            y,
            sr=sr,
            feature_rate=p["feature_rate"],
            harmonics=tuple(p["harmonics"]),
            fmin_midi=p["fmin_midi"],
            n_octaves=p["n_octaves"],
            bins_per_semitone=p["bins_per_semitone"],
            top_db=p["top_db"],
        )
        return H

    @torch.inference_mode()
    def predict(self, H: np.ndarray, *, block_frames: int = 8192, num_threads: int | None = 1) -> np.ndarray:
        """Per-frame log-probabilities for an HCQT.

        Parameters
        ----------
        H : np.ndarray, shape (n_harmonics, n_bins, n_frames)
            HCQT at the bundle's input rate.
        block_frames : int
            Input frames per forward pass (long recordings run in overlapping blocks to bound memory).
        num_threads : int or None
            Torch intra-op threads during the call (None: leave the global setting).

        Returns
        -------
        np.ndarray, shape (13, n_frames // time_pool), float32
            Log-probabilities; row 12 is the blank.
        """
        pool = self.model.time_pool
        n_out = H.shape[-1] // pool
        ctx = 32 * pool  # more than the receptive field in input frames
        block = max(block_frames // pool * pool, 2 * ctx + pool)
        out = np.empty((13, n_out), dtype=np.float32)
        with torch_threads(num_threads):
            self._predict_blocks(H, out, block, ctx)
        return out

    def _predict_blocks(self, H: np.ndarray, out: np.ndarray, block: int, ctx: int) -> None:
        pool = self.model.time_pool
        n_out = out.shape[1]
        start = 0
        while start < n_out * pool:
            end = min(start + block, n_out * pool)
            lo = max(0, start - ctx)
            hi = min(n_out * pool, end + ctx)
            x = torch.from_numpy(np.ascontiguousarray(H[None, :, :, lo:hi], dtype=np.float32))
            lp = self.model(x)[0].numpy()
            out[:, start // pool : end // pool] = lp[:, (start - lo) // pool : (end - lo) // pool]
            start = end

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``weights.pt`` into directory ``path``; sets ``model_id``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        weights = path / WEIGHTS_FILE
        torch.save(self.model.state_dict(), weights)
        config = dict(self.config)
        config["format"] = FORMAT
        config["format_version"] = FORMAT_VERSION
        config["output"] = {"classes": list(CLASS_NAMES), "blank": BLANK, "feature_rate": self.output_rate}
        config["model_id"] = _model_id(weights, config)
        (path / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        self.config = config
        self.path = path
        logger.info("saved model bundle %s (model_id %s)", path, config["model_id"])
        return path


def new_bundle(*, network: dict | None = None, input: dict | None = None, training: dict | None = None):
    """A bundle with a freshly initialised network."""
    network = {**default_network_config(), **(network or {})}
    config = {
        "input": {**default_input_config(), **(input or {})},
        "network": network,
        "training": dict(training or {}),
    }
    model = ChromaNet(**network)
    model.eval()
    return ModelBundle(config=config, model=model)


def read_config(path: str | os.PathLike) -> dict:
    """Read and check ``config.json`` of the bundle directory ``path``."""
    path = Path(path)
    cfg_path = path / CONFIG_FILE
    try:
        config = json.loads(cfg_path.read_text())
    except FileNotFoundError:
        raise InputError(f"{cfg_path}: model bundle has no config.json") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{cfg_path}: cannot read bundle config ({exc})") from None
    if config.get("format") != FORMAT or config.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{cfg_path}: not a {FORMAT} version {FORMAT_VERSION} config")
    return config


def load_bundle(path: str | os.PathLike | None = None) -> ModelBundle:
    """Load a bundle directory (default: the packaged :data:`DEFAULT_BUNDLE`)."""
    path = Path(path) if path is not None else BUNDLES_DIR / DEFAULT_BUNDLE
    config = read_config(path)
    weights = path / WEIGHTS_FILE
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{weights}: model bundle has no weights") from None
    except Exception as exc:  # torch raises several kinds for corrupt files
        raise InputError(f"{weights}: cannot load weights ({type(exc).__name__})") from None
    model = ChromaNet(**config["network"])
    try:
        model.load_state_dict(state)
    except RuntimeError:
        raise InputError(f"{weights}: weights do not fit the network in config.json") from None
    model.eval()
    return ModelBundle(config=config, model=model, path=path)


def bundle_model_id(path: str | os.PathLike | None = None) -> str:
    """``model_id`` from a bundle's config.json without loading the weights (default bundle if None)."""
    path = Path(path) if path is not None else BUNDLES_DIR / DEFAULT_BUNDLE
    return read_config(path)["model_id"]
