"""Chroma-network bundles: a directory with ``config.json`` and ``weights.pt`` (the layout of
:mod:`mirsearch.models.bundle_format`, format ``mirsearch-chroma-bundle``).

``config.json`` says everything needed to run the model on audio (input features and their
parameters, sampling rate, frame rates, network hyper-parameters, classes), how it was trained, and
``model_id``: the first 16 hex digits of the SHA-256 of the weights file together with the
network and input sections of the config. Anything that stores features computed by a model (the
collection) should store ``model_id`` with them and re-extract when it changes.

``weights.pt`` is a plain ``state_dict`` written by :func:`torch.save` and read with
``torch.load(..., weights_only=True)``: tensors only, no pickled code.

Inference runs with onnxruntime when an ONNX export of the weights is at hand (about 3x faster than
torch on one CPU thread; the outputs agree to about 1e-5): ``model.onnx`` in the bundle directory if
``config.json`` says it was exported from this ``model_id`` (the packaged default ships one), else
``<cache>/onnx/<model_id>.onnx``, exported at first use (needs the ``onnx`` package; without it, or
with ``MIRSEARCH_INFERENCE=torch``, torch runs the network). ``<cache>`` is ``$MIRSEARCH_CACHE`` or
``~/.cache/mirsearch``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mirsearch._util import atomic_path
from mirsearch.errors import ParameterError
from mirsearch.models import bundle_format
from mirsearch.models.bundle_format import CONFIG_FILE as CONFIG_FILE  # re-exported
from mirsearch.models.bundle_format import WEIGHTS_FILE, content_id, load_weights, save_state_dict
from mirsearch.models.network import BLANK, ChromaNet

logger = logging.getLogger(__name__)

FORMAT = "mirsearch-chroma-bundle"
FORMAT_VERSION = 1
#: config sections that (with the weights) define ``model_id``
ID_SECTIONS = ("input", "network")
#: ONNX export of the weights inside a bundle directory (optional)
ONNX_FILE = "model.onnx"
#: ONNX opset of the exports
ONNX_OPSET = 17
#: inference backends of :meth:`ModelBundle.predict`
BACKENDS = ("auto", "onnx", "torch")
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


def cache_dir() -> Path:
    """Directory for derived files (ONNX exports): ``$MIRSEARCH_CACHE`` or ``~/.cache/mirsearch``."""
    env = os.environ.get("MIRSEARCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "mirsearch"


def ort_session(path: str | os.PathLike, *, num_threads: int | None):
    """onnxruntime CPU session of the ONNX file ``path``, quiet, with ``num_threads`` intra-op threads (None: the
    library default); onnxruntime must be importable."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if num_threads:
        so.intra_op_num_threads = int(num_threads)
        so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def select_session(backend: str, open_session: Callable[[], object], *, unavailable: str):
    """The onnxruntime session a ``backend`` option asks for, or None where torch runs the network.

    Parameters
    ----------
    backend : {"auto", "onnx", "torch"}
        ``auto`` takes the session ``open_session()`` returns (None: torch) unless the environment variable
        ``MIRSEARCH_INFERENCE`` is ``torch``; ``onnx`` requires a session; ``torch`` never opens one.
    open_session : callable
        Returns the model's session or None (no export, onnxruntime missing).
    unavailable : str
        Why there is no session, for the error of ``backend="onnx"``.

    Raises
    ------
    ParameterError
        Unknown ``backend``, or ``onnx`` without a session.
    """
    if backend not in BACKENDS:
        raise ParameterError(f"backend={backend!r} must be one of {', '.join(BACKENDS)}")
    if backend == "auto" and os.environ.get("MIRSEARCH_INFERENCE", "").lower() == "torch":
        backend = "torch"
    session = None if backend == "torch" else open_session()
    if backend == "onnx" and session is None:
        raise ParameterError(f"backend='onnx': {unavailable}")
    return session


def write_onnx_graph(module, x, path: str | os.PathLike, *, output: str, dynamic_axes: dict) -> None:
    """Export ``module`` (in eval mode) traced on ``x`` to ONNX at ``path``, atomically: input ``hcqt``,
    output ``output``, one thread, tracer warnings silenced."""
    import warnings

    with warnings.catch_warnings(), torch_threads(1), atomic_path(path) as tmp:
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), str(tmp), input_names=["hcqt"], output_names=[output],
                          dynamic_axes=dynamic_axes, opset_version=ONNX_OPSET, dynamo=False)  # fmt: skip


def export_onnx(model: ChromaNet, path: str | os.PathLike) -> Path:
    """Export ``model`` to ONNX with a dynamic batch and time axis (needs the ``onnx`` package).

    Parameters
    ----------
    model : ChromaNet
        Network (its eval-mode behaviour is exported).
    path : path
        File to write (atomically: a temporary file is renamed).

    Returns
    -------
    Path
        ``path``. The graph takes ``hcqt`` of shape ``(batch, n_harmonics, n_bins, n_frames)`` float32
        and returns ``log_probs`` of shape ``(batch, 13, n_frames // time_pool)``.
    """

    path = Path(path)
    was_training = model.training
    model.eval()
    n_bins = 72 * model.bins_per_semitone
    x = torch.zeros(1, model.conv1[0].in_channels, n_bins, 64)
    try:
        axes = {"hcqt": {0: "batch", 3: "frames"}, "log_probs": {0: "batch", 2: "out_frames"}}
        write_onnx_graph(model, x, path, output="log_probs", dynamic_axes=axes)
    finally:
        model.train(was_training)
    logger.info("exported ONNX model to %s", path)
    return path


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
    _sessions: dict = field(default_factory=dict, repr=False)
    _onnx_path: Path | None = field(default=None, repr=False)

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

    def onnx_path(self, *, export: bool = True) -> Path | None:
        """ONNX file of this model: the bundle's own ``model.onnx`` if exported from this ``model_id``,
        else the cached export ``<cache>/onnx/<model_id>.onnx``, exported now if ``export`` and the
        ``onnx`` package is installed. None if there is none (or the bundle was never saved)."""
        if self._onnx_path is not None and self._onnx_path.exists():
            return self._onnx_path
        model_id = self.config.get("model_id")
        if not model_id:
            return None
        if self.path is not None:
            own = self.path / ONNX_FILE
            if own.exists() and self.config.get("onnx", {}).get("model_id") == model_id:
                self._onnx_path = own
                return own
        cached = cache_dir() / "onnx" / f"{model_id}.onnx"
        if not cached.exists():
            if not export:
                return None
            try:
                import onnx  # noqa: F401  (torch.onnx.export needs it)
            except ImportError:
                logger.info("onnx not installed: no ONNX export of model %s, torch runs it", model_id)
                return None
            try:
                export_onnx(self.model, cached)
            except OSError as exc:
                logger.warning("cannot write ONNX export %s (%s): torch runs the model", cached, exc)
                return None
        self._onnx_path = cached
        return cached

    def onnx_session(self, *, num_threads: int | None = 1):
        """onnxruntime session of :meth:`onnx_path` (cached per thread count), or None."""
        key = num_threads or 0
        if key in self._sessions:
            return self._sessions[key]
        path = self.onnx_path()
        session = None
        if path is not None:
            try:
                import onnxruntime  # noqa: F401
            except ImportError:
                logger.info("onnxruntime not installed: torch runs the model")
            else:
                session = ort_session(path, num_threads=num_threads)
        self._sessions[key] = session
        return session

    def predict(
        self, H: np.ndarray, *, block_frames: int = 8192, num_threads: int | None = 1, backend: str = "auto"
    ) -> np.ndarray:
        """Per-frame log-probabilities for an HCQT.

        Parameters
        ----------
        H : np.ndarray, shape (n_harmonics, n_bins, n_frames)
            HCQT at the bundle's input rate.
        block_frames : int
            Input frames per forward pass (long recordings run in overlapping blocks to bound memory).
        num_threads : int or None
            Intra-op threads during the call (None: leave torch's global setting / onnxruntime's default).
        backend : {"auto", "onnx", "torch"}
            ``auto`` uses onnxruntime if an ONNX export is available (see :meth:`onnx_path`) unless the
            environment variable ``MIRSEARCH_INFERENCE`` is ``torch``; ``onnx`` requires it; ``torch``
            is the reference implementation.

        Returns
        -------
        np.ndarray, shape (13, n_frames // time_pool), float32
            Log-probabilities; row 12 is the blank.
        """
        session = select_session(
            backend,
            lambda: self.onnx_session(num_threads=num_threads),
            unavailable=f"no ONNX export of model {self.model_id} available",
        )
        pool = self.model.time_pool
        n_out = H.shape[-1] // pool
        # more than the receptive field in input frames (each time-context block adds its dilation)
        ctx = (32 + sum(int(d) for d in self.config["network"].get("time_context", ()))) * pool
        block = max(block_frames // pool * pool, 2 * ctx + pool)
        out = np.empty((13, n_out), dtype=np.float32)
        if session is not None:
            self._predict_blocks(H, out, block, ctx, lambda x: session.run(None, {"hcqt": x})[0][0])
        else:
            with torch.inference_mode(), torch_threads(num_threads):
                self._predict_blocks(H, out, block, ctx, lambda x: self.model(torch.from_numpy(x))[0].numpy())
        return out

    def _predict_blocks(self, H: np.ndarray, out: np.ndarray, block: int, ctx: int, run) -> None:
        pool = self.model.time_pool
        n_out = out.shape[1]
        start = 0
        while start < n_out * pool:
            end = min(start + block, n_out * pool)
            lo = max(0, start - ctx)
            hi = min(n_out * pool, end + ctx)
            lp = run(np.ascontiguousarray(H[None, :, :, lo:hi], dtype=np.float32))
            out[:, start // pool : end // pool] = lp[:, (start - lo) // pool : (end - lo) // pool]
            start = end

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``weights.pt`` into directory ``path``; sets ``model_id``.

        A ``model.onnx`` already in ``path`` is removed (it belongs to other weights); see
        :meth:`write_onnx`."""
        path = Path(path)
        weights = save_state_dict(self.model.state_dict(), path / WEIGHTS_FILE)
        config = dict(self.config)
        if config.pop("onnx", None) is not None or (path / ONNX_FILE).exists():
            (path / ONNX_FILE).unlink(missing_ok=True)  # exported from other weights
        config["format"] = FORMAT
        config["format_version"] = FORMAT_VERSION
        config["output"] = {"classes": list(CLASS_NAMES), "blank": BLANK, "feature_rate": self.output_rate}
        config["model_id"] = content_id([weights], config, ID_SECTIONS)
        bundle_format.write_config(path, config)
        self.config = config
        self.path = path
        self._sessions = {}
        self._onnx_path = None
        logger.info("saved model bundle %s (model_id %s)", path, config["model_id"])
        return path

    def write_onnx(self) -> Path:
        """Export the network to ``model.onnx`` inside the (saved) bundle directory and record it in
        ``config.json`` (``"onnx": {"file", "model_id", "opset"}``; ``model_id`` is unchanged).
        Needs the ``onnx`` package."""
        if self.path is None or not self.config.get("model_id"):
            raise ParameterError("write_onnx: save the bundle first")
        out = export_onnx(self.model, self.path / ONNX_FILE)
        self.config["onnx"] = {"file": ONNX_FILE, "model_id": self.config["model_id"], "opset": ONNX_OPSET}
        bundle_format.write_config(self.path, self.config)
        self._sessions = {}
        self._onnx_path = None
        return out


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
    return bundle_format.read_config(path, format=FORMAT, version=FORMAT_VERSION)


def load_bundle(path: str | os.PathLike | None = None) -> ModelBundle:
    """Load a bundle directory (default: the packaged :data:`DEFAULT_BUNDLE`)."""
    path = Path(path) if path is not None else BUNDLES_DIR / DEFAULT_BUNDLE
    config = read_config(path)
    model = load_weights(ChromaNet(**config["network"]), path / WEIGHTS_FILE)
    model.eval()
    return ModelBundle(config=config, model=model, path=path)


def bundle_model_id(path: str | os.PathLike | None = None) -> str:
    """``model_id`` from a bundle's config.json without loading the weights (default bundle if None)."""
    path = Path(path) if path is not None else BUNDLES_DIR / DEFAULT_BUNDLE
    return read_config(path)["model_id"]
