"""The peer's theme-chroma network ("ThemeEnhancer", Zeitler & Müller, TASLP 2026), for inference.

Reimplemented from the prose description in ``shared/peer-models/themeenhancer-mtd/README.md`` (no
code copied) so that the published checkpoints, trained on real recordings of the Musical Theme
Dataset, can run beside mirsearch's own models (:mod:`mirsearch.models.network`).

==========  ==================================================  ==========================
layer       operation                                            output (channels, frames, bins)
==========  ==================================================  ==========================
input       HCQT magnitudes, 6 harmonics, 36 bins per octave     (6, T, 216)
norm        every frame of every channel divided by its           (6, T, 216)
            squared l2 norm over the bins
conv1-4     3 x 3 'same' convolutions, leaky ReLU (0.01):         (64 / 32 / 32 / 32, T, 216)
            6 -> 64 -> 32 -> 32 -> 32
conv5       3 x 42 (time x frequency) 'same', leaky ReLU          (8, T, 216)
conv6       1 x 1, sigmoid: salience map                          (1, T, 216)
pool1       fixed sums of each group of 3 bins (stride 3)         (1, T, 72) semitones
pool2       fixed sums over the octaves of each pitch class       (1, T, 12) chroma logits, 0 = C
convEps     learned 1 x 216 read-out of the salience (CTC only)   (1, T, 1) blank logit
==========  ==================================================  ==========================

The frame rate is the input's (22050 / 896 = 24.6 Hz); the front end is
:mod:`mirsearch.features.peer_front_end`. Learned parameters: 72,970 (conv1-6 and convEps); the
checkpoints also hold the 66 fixed pooling weights, which are checked on loading and kept fixed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mirsearch.errors import InputError
from mirsearch.models.bundle_format import load_state_dict

logger = logging.getLogger(__name__)

#: input channels (harmonics 0.5, 1, 2, 3, 4, 5) and frequency bins (6 octaves x 36)
N_HARMONICS = 6
N_BINS = 216
#: bins per semitone of the input; semitones over the 6 octaves
BINS_PER_SEMITONE = 3
N_SEMITONES = 72
#: slope of the leaky ReLU
LEAKY_SLOPE = 0.01
#: added to the squared frame norms of the input (silent frames stay zero)
NORM_EPS = 1e-12
#: checkpoint keys of the learned layers (conv1..conv6, convEps); pool1/pool2 are fixed sums
_LEARNED = ("conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "convEps")
#: frames per forward pass (activations of one block: 64 x frames x 216 floats)
BLOCK_FRAMES = 1024
#: context frames on each side of a block (the receptive field is +-5 frames)
CONTEXT_FRAMES = 8
#: names of the published checkpoints whose loss is CTC (their blank read-out is used)
_CTC_NAME = re.compile(r"(^|[^A-Za-z])CTC", re.IGNORECASE)


class ThemeEnhancer(nn.Module):
    """The peer's network: HCQT -> salience map -> 12 chroma logits (and a blank logit).

    Parameters
    ----------
    ctc : bool
        Whether the model was trained with CTC: :meth:`class_probabilities` then takes the softmax over
        13 classes (12 chroma + blank) and drops the blank; otherwise over the 12 chroma logits.

    Notes
    -----
    ``forward(x)`` takes ``x`` of shape ``(batch, 6, n_frames, 216)`` (HCQT magnitudes) and returns
    ``(chroma_logits, blank_logit)`` of shapes ``(batch, 12, n_frames)`` and ``(batch, n_frames)``.
    """

    def __init__(self, *, ctc: bool = False):
        super().__init__()
        self.ctc = bool(ctc)
        self.conv1 = nn.Conv2d(N_HARMONICS, 64, (3, 3), padding="same")
        self.conv2 = nn.Conv2d(64, 32, (3, 3), padding="same")
        self.conv3 = nn.Conv2d(32, 32, (3, 3), padding="same")
        self.conv4 = nn.Conv2d(32, 32, (3, 3), padding="same")
        self.conv5 = nn.Conv2d(32, 8, (3, 42), padding="same")
        self.conv6 = nn.Conv2d(8, 1, (1, 1))
        self.convEps = nn.Conv2d(1, 1, (1, N_BINS))
        self.register_buffer("pool1", _group_sums(N_BINS, BINS_PER_SEMITONE), persistent=False)
        self.register_buffer("pool2", _octave_fold(N_SEMITONES), persistent=False)

    def salience(self, x: torch.Tensor) -> torch.Tensor:
        """Salience map in (0, 1): ``x`` (batch, 6, T, 216) -> (batch, T, 216)."""
        x = x / ((x * x).sum(dim=-1, keepdim=True) + NORM_EPS)
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            x = F.leaky_relu(conv(x), LEAKY_SLOPE)
        return torch.sigmoid(self.conv6(x))[:, 0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.salience(x)  # (b, T, 216)
        chroma = (s @ self.pool1) @ self.pool2  # (b, T, 12)
        blank = self.convEps(s[:, None])[:, 0, :, 0]  # (b, T)
        return chroma.transpose(1, 2), blank

    def class_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """The read-out for retrieval before normalisation: chroma probabilities (batch, 12, T).

        CTC models: softmax over the 12 chroma logits and the blank, blank dropped (the rows do not sum
        to one); the others: softmax over the 12 chroma logits.
        """
        chroma, blank = self(x)
        if self.ctc:
            return torch.softmax(torch.cat([chroma, blank[:, None]], dim=1), dim=1)[:, :12]
        return torch.softmax(chroma, dim=1)


def _group_sums(n_in: int, group: int) -> torch.Tensor:
    """(n_in, n_in // group) matrix summing each group of ``group`` consecutive bins."""
    m = torch.zeros(n_in, n_in // group)
    m[torch.arange(n_in), torch.arange(n_in) // group] = 1.0
    return m


def _octave_fold(n_semitones: int) -> torch.Tensor:
    """(n_semitones, 12) matrix summing the octaves of each pitch class (semitone 0 = C)."""
    m = torch.zeros(n_semitones, 12)
    m[torch.arange(n_semitones), torch.arange(n_semitones) % 12] = 1.0
    return m


def count_learned_parameters(model: nn.Module) -> int:
    """Number of learned parameters (the fixed pooling sums are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters())


def is_ctc_checkpoint(path: str | os.PathLike) -> bool:
    """Whether a published checkpoint's file name says it was trained with CTC (``model_CTC-*``)."""
    return bool(_CTC_NAME.search(Path(path).stem))


def _check_fixed_pooling(state: dict, path: Path) -> None:
    """The checkpoint's fixed pooling weights must be the plain sums this module uses."""
    p1, p2 = state.get("pool1.weight"), state.get("pool2.weight")
    if p1 is None or p2 is None:
        return
    ok1 = p1.numel() == BINS_PER_SEMITONE and bool(torch.all(p1 == 1))
    taps = torch.zeros(p2.numel())
    taps[::12] = 1.0
    ok2 = p2.numel() == N_SEMITONES - 11 and bool(torch.equal(p2.flatten(), taps))
    if not (ok1 and ok2):
        raise InputError(f"{path}: pooling weights are not the fixed 3-bin / octave sums of the ThemeEnhancer")


class _Probabilities(nn.Module):
    """:meth:`ThemeEnhancer.class_probabilities` as a module's forward (for the ONNX export)."""

    def __init__(self, net: ThemeEnhancer):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.class_probabilities(x)


def export_onnx(net: ThemeEnhancer, path: str | os.PathLike) -> Path:
    """Export the retrieval read-out of ``net`` to ONNX (needs the ``onnx`` package): input ``hcqt``
    (batch, 6, frames, 216) float32, output ``probs`` (batch, 12, frames); written atomically."""
    from mirsearch.models.bundle import write_onnx_graph

    path = Path(path)
    x = torch.zeros(1, N_HARMONICS, 64, N_BINS)
    write_onnx_graph(_Probabilities(net).eval(), x, path, output="probs",
                     dynamic_axes={"hcqt": {0: "batch", 2: "frames"}, "probs": {0: "batch", 2: "frames"}})  # fmt: skip
    logger.info("exported peer model to %s", path)
    return path


@dataclass
class PeerModel:
    """A loaded peer checkpoint: the network, where it came from, and its inference sessions.

    Attributes
    ----------
    net : ThemeEnhancer
        The network in eval mode.
    path : Path
        The checkpoint file.
    model_id : str
        First 16 hex digits of the SHA-256 of the checkpoint file and the CTC flag (keys caches).
    """

    net: ThemeEnhancer
    path: Path
    model_id: str
    _sessions: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """The checkpoint's name without ``model_`` and ``_bestVal`` (e.g. ``SDTW-E-W``)."""
        return self.path.stem.removeprefix("model_").removesuffix("_bestVal")

    def onnx_session(self, *, num_threads: int | None = 1):
        """onnxruntime session of an export cached as ``<cache>/onnx/peer-<model_id>.onnx`` (exported
        at first use), or None without ``onnx`` / ``onnxruntime``."""
        from mirsearch.models.bundle import cache_dir, ort_session

        key = num_threads or 0
        if key not in self._sessions:
            self._sessions[key] = None
            try:
                import onnx  # noqa: F401  (torch.onnx.export needs it)
                import onnxruntime  # noqa: F401
            except ImportError:
                logger.info("onnx / onnxruntime not installed: torch runs the peer model")
                return None
            path = cache_dir() / "onnx" / f"peer-{self.model_id}.onnx"
            if not path.exists():
                export_onnx(self.net, path)
            self._sessions[key] = ort_session(path, num_threads=num_threads)
        return self._sessions[key]

    def predict(self, H: np.ndarray, *, num_threads: int | None = 1, backend: str = "auto") -> np.ndarray:
        """Chroma probabilities for an HCQT, in overlapping blocks of :data:`BLOCK_FRAMES` frames.

        Parameters
        ----------
        H : np.ndarray, shape (6, n_frames, 216)
            The peer's HCQT (magnitudes).
        num_threads : int or None
            Intra-op threads (None: the library default).
        backend : {"auto", "onnx", "torch"}
            ``auto``: onnxruntime when available (about 2.5x faster on one thread; agrees with torch to
            about 1e-5) unless ``MIRSEARCH_INFERENCE=torch``; ``torch`` is the reference.

        Returns
        -------
        np.ndarray, shape (12, n_frames), float32
            Row 0 = C; see :meth:`ThemeEnhancer.class_probabilities`.
        """
        from mirsearch.errors import ParameterError
        from mirsearch.models.bundle import select_session, torch_threads

        session = select_session(
            backend,
            lambda: self.onnx_session(num_threads=num_threads),
            unavailable="onnx / onnxruntime not installed",
        )
        H = np.asarray(H, dtype=np.float32)
        if H.ndim != 3 or H.shape[0] != N_HARMONICS or H.shape[2] != N_BINS:
            raise ParameterError(f"H: expected shape (6, n_frames, 216), got {H.shape}")
        if session is not None:
            return _blocks(H, lambda x: session.run(None, {"hcqt": x})[0][0])
        with torch.inference_mode(), torch_threads(num_threads):
            return _blocks(H, lambda x: self.net.class_probabilities(torch.from_numpy(x))[0].numpy())


def _blocks(H: np.ndarray, run) -> np.ndarray:
    """Apply ``run`` ((1, 6, frames, 216) -> (12, frames)) to overlapping blocks of ``H``."""
    n = H.shape[1]
    out = np.empty((12, n), dtype=np.float32)
    for start in range(0, n, BLOCK_FRAMES):
        end = min(start + BLOCK_FRAMES, n)
        lo, hi = max(0, start - CONTEXT_FRAMES), min(n, end + CONTEXT_FRAMES)
        P = run(np.ascontiguousarray(H[None, :, lo:hi]))
        out[:, start:end] = P[:, start - lo : end - lo]
    return out


def load_peer(path: str | os.PathLike, *, ctc: bool | None = None) -> PeerModel:
    """Load a published ThemeEnhancer checkpoint (a ``state_dict``, read with ``weights_only=True``).

    Parameters
    ----------
    path : path
        Local ``.pt`` file given by the user (never fetched).
    ctc : bool or None
        Whether it is a CTC model (blank read-out); None: from the file name (``model_CTC-*``).

    Returns
    -------
    PeerModel
        The network in eval mode with its checkpoint path and ``model_id``.

    Raises
    ------
    InputError
        Missing or unreadable file, or weights that do not fit the network.
    """
    path = Path(path)
    state = load_state_dict(path, what="peer checkpoint")
    if not isinstance(state, dict):
        raise InputError(f"{path}: not a state dict")
    _check_fixed_pooling(state, path)
    learned = {k: v for k, v in state.items() if k.split(".")[0] in _LEARNED}
    model = ThemeEnhancer(ctc=is_ctc_checkpoint(path) if ctc is None else ctc)
    try:
        model.load_state_dict(learned)
    except RuntimeError:
        raise InputError(f"{path}: weights do not fit the ThemeEnhancer network") from None
    model.eval()
    digest = hashlib.sha256(path.read_bytes() + f"ctc={model.ctc}".encode()).hexdigest()[:16]
    logger.info("loaded peer checkpoint %s (ctc=%s, model_id %s)", path, model.ctc, digest)
    return PeerModel(net=model, path=path, model_id=digest)
