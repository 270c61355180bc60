"""The speech/music frame classifier bundle: a small CNN on log-mel run with numpy.

A bundle is a directory with ``config.json`` and ``weights.npz`` (float32 arrays, batch norm folded into the
convolutions; no pickle). ``config.json`` holds the front end (sample rate, FFT, mel bands, dB normalisation),
the layer list, the output names (``speech``, ``music``), the output hop in input frames, the context (input frames
either side that influence an output; streaming keeps that much overlap between blocks), and ``model_id`` (the
first 16 hex digits of the SHA-256 of the weights file). The packaged default lives in
``bundles/segmenter/``; it loads without a network and without torch.

This module knows nothing of audio: it maps a log-mel matrix (dB) to probabilities. The front end is in
:mod:`mirsearch.features.segment_features`.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirsearch.errors import InputError
from mirsearch.models import bundle_format

FORMAT = "mirsearch-segmenter-bundle"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.npz"
#: directory of the packaged segmenter bundle
DEFAULT_BUNDLE_DIR = Path(__file__).parent / "bundles" / "segmenter"


def weights_id(path: str | Path) -> str:
    """First 16 hex digits of the SHA-256 of a weights file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@dataclass(frozen=True)
class SegmenterModel:
    """A loaded segmenter bundle.

    Attributes
    ----------
    config : dict
        The bundle's ``config.json``.
    weights : dict of str -> np.ndarray
        Folded convolution weights and biases.
    """

    config: dict
    weights: dict

    @classmethod
    def load(cls, path: str | Path | None = None) -> SegmenterModel:
        """Load a bundle directory (default: the packaged one)."""
        return _load(str(Path(path) if path is not None else DEFAULT_BUNDLE_DIR))

    @property
    def model_id(self) -> str:
        return self.config["model_id"]

    @property
    def frontend(self) -> dict:
        """Front-end parameters: ``sr``, ``n_fft``, ``hop_length``, ``n_mels``, ``fmin``, ``fmax``."""
        return self.config["frontend"]

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(self.config["outputs"])

    @property
    def output_hop(self) -> int:
        """Input frames per output frame."""
        return int(self.config["output_hop"])

    @property
    def context(self) -> int:
        """Input frames either side of a block that its outputs depend on (a multiple of :attr:`output_hop`)."""
        return int(self.config["context"])

    @property
    def output_rate(self) -> float:
        """Output frames per second."""
        fe = self.frontend
        return fe["sr"] / fe["hop_length"] / self.output_hop

    def predict(self, L: np.ndarray) -> np.ndarray:
        """Probabilities of each output for a log-mel matrix.

        Parameters
        ----------
        L : np.ndarray, shape (n_mels, n_frames)
            Log-mel in dB from the bundle's front end.

        Returns
        -------
        P : np.ndarray, shape (n_outputs, ceil(n_frames / output_hop)), float32
            Output ``k`` frame ``j`` covers input frames ``[j * output_hop, (j + 1) * output_hop)``.
        """
        fe = self.frontend
        if L.ndim != 2 or L.shape[0] != fe["n_mels"]:
            raise InputError(f"log-mel: expected shape ({fe['n_mels']}, n_frames), got {L.shape}")
        hop = self.output_hop
        n_out = -(-L.shape[1] // hop)
        if n_out == 0:
            return np.zeros((len(self.outputs), 0), np.float32)
        x = np.full((fe["n_mels"], n_out * hop), fe["floor_db"], np.float32)
        x[:, : L.shape[1]] = L
        x = (x - fe["offset_db"]) / fe["scale_db"]
        logits = forward(self.config["layers"], self.weights, x[None])
        return _sigmoid(logits[:, :n_out])


@functools.lru_cache(maxsize=4)
def _load(path: str) -> SegmenterModel:
    directory = Path(path)
    cfg_path = directory / CONFIG_FILE
    w_path = directory / WEIGHTS_FILE
    if not cfg_path.is_file() or not w_path.is_file():
        raise InputError(f"{directory}: not a segmenter bundle (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    config = bundle_format.read_config(directory, format=FORMAT, version=None, what="segmenter bundle")
    with np.load(w_path, allow_pickle=False) as data:
        weights = {k: np.ascontiguousarray(data[k], dtype=np.float32) for k in data.files}
    return SegmenterModel(config=config, weights=weights)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)


def forward(layers: list[dict], weights: dict, x: np.ndarray) -> np.ndarray:
    """Run the layer list on ``x`` (1, n_mels, n_frames); returns logits (n_outputs, n_frames / hop).

    Layer kinds: ``conv2d`` (3x3 'same', ReLU, then max-pooling ``pool`` = (freq, time)), ``flatten``
    (channels x freq -> features) and ``conv1d`` (kernel k, ``dilation``, optional ReLU and residual).
    """
    for layer in layers:
        op = layer["op"]
        if op == "conv2d":
            W, b = weights[layer["name"] + ".weight"], weights[layer["name"] + ".bias"]
            pf, pt = layer.get("pool", (1, 1))
            x = _max_pool(conv2d(x, W, b), pf, pt)
            np.maximum(x, 0.0, out=x)  # ReLU after max-pooling: the same, on fewer values
        elif op == "flatten":
            x = x.reshape(-1, x.shape[-1])
        elif op == "conv1d":
            W, b = weights[layer["name"] + ".weight"], weights[layer["name"] + ".bias"]
            y = conv1d(x, W, b, dilation=int(layer.get("dilation", 1)))
            if layer.get("relu", True):
                y = np.maximum(y, 0.0)
            x = x + y if layer.get("residual", False) else y
        else:
            raise InputError(f"segmenter bundle: unknown layer op {op!r}")
    return x


def _max_pool(x: np.ndarray, pf: int, pt: int) -> np.ndarray:
    """Max-pooling of ``x`` (C, F, T) by ``pf`` x ``pt`` (remainders dropped, as torch)."""
    f, t = x.shape[1] // pf * pf, x.shape[2] // pt * pt
    out = None
    for i in range(pf):
        for j in range(pt):
            v = x[:, i:f:pf, j:t:pt]
            out = v.copy() if out is None else np.maximum(out, v, out=out)
    return out


def conv2d(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """'Same' 2-D convolution (cross-correlation, as torch) of ``x`` (C, F, T) with ``W`` (O, C, kf, kt)."""
    c, f, t = x.shape
    o, _, kf, kt = W.shape
    xp = np.pad(x, ((0, 0), (kf // 2, kf // 2), (kt // 2, kt // 2)))
    cols = np.empty((c, kf * kt, f, t), np.float32)
    for i in range(kf):
        for j in range(kt):
            cols[:, i * kt + j] = xp[:, i : i + f, j : j + t]
    out = W.reshape(o, -1) @ cols.reshape(c * kf * kt, f * t)
    return (out + b[:, None]).reshape(o, f, t)


def conv1d(x: np.ndarray, W: np.ndarray, b: np.ndarray, *, dilation: int = 1) -> np.ndarray:
    """'Same' dilated 1-D convolution of ``x`` (C, T) with ``W`` (O, C, k)."""
    c, t = x.shape
    o, _, k = W.shape
    half = (k // 2) * dilation
    xp = np.pad(x, ((0, 0), (half, half)))
    cols = np.empty((c, k, t), np.float32)
    for i in range(k):
        cols[:, i] = xp[:, i * dilation : i * dilation + t]
    return W.reshape(o, -1) @ cols.reshape(c * k, t) + b[:, None]
