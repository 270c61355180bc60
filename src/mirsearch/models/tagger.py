"""The auto-tagging bundle: a small CNN on log-mel, run with onnxruntime (one thread).

A bundle is a directory with ``config.json`` and ``model.onnx``. ``config.json`` holds

- ``frontend``: the log-mel settings (:class:`mirsearch.features.logmel.LogMelConfig` fields) and the per-band
  ``mean`` / ``std`` that normalise its output;
- ``tags``: the vocabulary, ``[{"name", "group", "description"}]`` in output order;
- ``pooling``: how frame probabilities become the probability of a span (``max``, ``mean`` or ``autopool``)
  and, for ``autopool``, one ``alpha`` per tag;
- ``frame_hop`` (log-mel frames per output frame), ``context`` (log-mel frames either side of a block that its
  outputs depend on), ``embedding_dim``, ``patch_seconds`` / ``patch_hop_seconds`` (the spans of the per-patch
  outputs) and ``model_id``.

The graph takes normalised log-mel ``(batch, 1, n_mels, n_frames)`` and returns frame logits
``(batch, n_tags, n_frames / frame_hop)`` and frame embeddings ``(batch, embedding_dim, n_frames / frame_hop)``.
This module knows nothing of audio; :mod:`mirsearch.describe.tagger` computes the log-mel and calls
:meth:`TaggerModel.frames`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirsearch.errors import InputError
from mirsearch.models import bundle_format

FORMAT = "mirsearch-tagger-bundle"
FORMAT_VERSION = 1
ONNX_FILE = "model.onnx"
#: directory of the packaged tagger bundle
DEFAULT_BUNDLE_DIR = Path(__file__).parent / "bundles" / "tagger"
#: log-mel frames per block when a long recording is run in pieces
BLOCK_FRAMES = 3000


def pool(P: np.ndarray, *, method: str, alpha: np.ndarray | None = None, axis: int = -1) -> np.ndarray:
    """Pool probabilities over time.

    Parameters
    ----------
    P : np.ndarray, shape (..., n_tags, n_frames)
        Frame probabilities in [0, 1].
    method : {"max", "mean", "autopool"}
        ``autopool``: ``sum_t softmax(alpha_k p_kt) p_kt`` per tag ``k`` (McFee et al.; alpha 0 is the mean,
        large alpha the max).
    alpha : np.ndarray, shape (n_tags,), optional
        Autopool parameters.

    Returns
    -------
    np.ndarray, shape (..., n_tags)
    """
    P = np.asarray(P, dtype=np.float32)
    if P.shape[axis] == 0:
        return np.zeros(np.delete(P.shape, axis if axis >= 0 else P.ndim + axis), np.float32)
    if method == "max":
        return P.max(axis=axis)
    if method == "mean":
        return P.mean(axis=axis)
    if method != "autopool" or alpha is None:
        raise InputError(f"tagger bundle: unknown pooling {method!r}")
    a = np.asarray(alpha, dtype=np.float32)[:, None]
    z = a * P
    w = np.exp(z - z.max(axis=axis, keepdims=True))
    return ((w * P).sum(axis=axis) / w.sum(axis=axis)).astype(np.float32)


@dataclass(frozen=True)
class TaggerModel:
    """A loaded tagger bundle (see the module docstring)."""

    config: dict
    path: str
    _session: object = field(default=None, compare=False, repr=False)

    @classmethod
    def load(cls, path: str | Path | None = None) -> TaggerModel:
        """Load a bundle directory (default: the packaged one); loads offline."""
        return _load(str(Path(path) if path is not None else DEFAULT_BUNDLE_DIR))

    @property
    def tag_names(self) -> tuple[str, ...]:
        return tuple(t["name"] for t in self.config["tags"])

    @property
    def frame_rate(self) -> float:
        """Output frames per second."""
        fe = self.config["frontend"]
        return fe["sr"] / (fe["hop_length"] * int(self.config["frame_hop"]))

    @property
    def frontend(self) -> dict:
        """Log-mel settings (without the normalisation statistics)."""
        return {k: v for k, v in self.config["frontend"].items() if k not in ("mean", "std")}

    def pool(self, P: np.ndarray, axis: int = -1) -> np.ndarray:
        """Pool probabilities ``(..., n_tags, n)`` over time with the bundle's pooling (see :func:`pool`)."""
        p = self.config["pooling"]
        alpha = np.asarray(p["alpha"], np.float32) if p.get("alpha") is not None else None
        return pool(P, method=p["method"], alpha=alpha, axis=axis)

    def frames(self, L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frame probabilities and embeddings of a log-mel matrix.

        Parameters
        ----------
        L : np.ndarray, shape (n_mels, n_frames)
            Log-mel from the bundle's front end (not normalised).

        Returns
        -------
        P : np.ndarray, shape (n_tags, ceil(n_frames / frame_hop)), float32
            Tag probabilities of each output frame.
        E : np.ndarray, shape (embedding_dim, ceil(n_frames / frame_hop)), float32
        """
        fe = self.config["frontend"]
        L = np.asarray(L, dtype=np.float32)
        if L.ndim != 2 or L.shape[0] != fe["n_mels"]:
            raise InputError(f"log-mel: expected shape ({fe['n_mels']}, n_frames), got {L.shape}")
        hop, ctx = int(self.config["frame_hop"]), int(self.config["context"])
        n_out = -(-L.shape[1] // hop)
        floor = np.float32(np.log(fe["log_offset"]))
        mean = np.asarray(fe["mean"], np.float32)[:, None]
        std = np.asarray(fe["std"], np.float32)[:, None]
        X = np.full((L.shape[0], n_out * hop + 2 * ctx), floor, np.float32)
        X[:, ctx : ctx + L.shape[1]] = L
        X = (X - mean) / std
        logits, emb = [], []
        step = BLOCK_FRAMES // hop * hop
        for a in range(0, n_out * hop, step):
            b = min(a + step, n_out * hop)
            lo, e = self._run(X[:, a : b + 2 * ctx])
            k = ctx // hop
            logits.append(lo[:, k : k + (b - a) // hop])
            emb.append(e[:, k : k + (b - a) // hop])
        P = 1.0 / (1.0 + np.exp(-np.concatenate(logits, axis=1)))
        return P.astype(np.float32), np.concatenate(emb, axis=1).astype(np.float32)

    def _run(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        session = self._session
        name = session.get_inputs()[0].name
        logits, emb = session.run(None, {name: X[None, None]})
        return logits[0], emb[0]


@functools.lru_cache(maxsize=4)
def _load(path: str) -> TaggerModel:
    import onnxruntime as ort

    directory = Path(path)
    onnx_path = directory / ONNX_FILE
    config = bundle_format.read_config(directory, format=FORMAT, version=FORMAT_VERSION, what="tagger bundle")
    if not onnx_path.is_file():
        raise InputError(f"{directory}: not a tagger bundle (needs {ONNX_FILE})")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
    return TaggerModel(config=config, path=str(directory), _session=session)
