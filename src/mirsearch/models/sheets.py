"""The audio-sheet model (Dorfer et al., TISMIR 2018): two branches into one 32-dimensional embedding.

- **Sheet branch**: a snippet of a system strip (``mirsearch.features.staff.system_strip``: 4 pixels per
  staff space, 96 pixels high), ``snippet_width`` pixels wide, centred on a position of the music.
- **Audio branch**: a log mel spectrogram excerpt (``mirsearch.features.sheet_audio``: 92 bands, 20
  frames per second) of any length (2-8 s); convolution blocks, then *soft attention over time* (one
  weight per frame position, softmax) pools the frames into one vector: the seed's attention variant,
  which lets a longer excerpt concentrate on the part the sheet snippet shows.

Both end in a linear layer to ``dim`` (32) and are L2-normalised: cosine similarity is a dot product
and the Euclidean distance of the ANN index orders neighbours the same way. Blocks are VGG-like
(a stride-2 stem, then 3x3 convolution, batch norm, ELU and 2x2 max pooling per block; 12-24-32-48
channels), small enough to train on
two CPU cores. Bundles live in ``models/bundles/sheets``: ``config.json`` + ``weights.pt``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mirsearch.models.bundle_format import (
    WEIGHTS_FILE,
    content_id,
    load_weights,
    read_config,
    save_state_dict,
    write_config,
)

FORMAT = "mirsearch-sheet-bundle"
FORMAT_VERSION = 1
DEFAULT_BUNDLE = Path(__file__).parent / "bundles" / "sheets"


@dataclass(frozen=True)
class SheetModelConfig:
    """Network hyper-parameters and input geometry."""

    dim: int = 32
    channels: tuple[int, ...] = (12, 24, 32, 48)
    snippet_height: int = 96
    snippet_width: int = 112
    n_bands: int = 92
    px_per_space: float = 4.0
    feature_rate: float = 22050 / 1102


def _conv(c_in: int, c_out: int, *, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.BatchNorm2d(c_out), nn.ELU()]


def _stack(channels: tuple[int, ...]) -> nn.Sequential:
    """A stride-2 stem convolution, then per further width one convolution and 2x2 max pooling.

    The input shrinks by ``2 ** len(channels)`` in both directions.
    """
    layers, c_in = _conv(1, channels[0], stride=2), channels[0]
    for c in channels[1:]:
        layers += [*_conv(c_in, c), nn.MaxPool2d(2)]
        c_in = c
    return nn.Sequential(*layers)


class SheetBranch(nn.Module):
    """Sheet snippet ``(batch, 1, height, width)`` -> unit vectors ``(batch, dim)``."""

    def __init__(self, config: SheetModelConfig):
        super().__init__()
        self.conv = _stack(config.channels)
        shrink = 2 ** len(config.channels)
        n = config.channels[-1] * (config.snippet_height // shrink) * (config.snippet_width // shrink)
        self.head = nn.Linear(n, config.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.head(self.conv(x).flatten(1))
        return nn.functional.normalize(z, dim=1)


class AudioBranch(nn.Module):
    """Spectrogram excerpt ``(batch, 1, n_bands, n_frames)`` -> unit vectors ``(batch, dim)``.

    Frequency is reduced by the convolution blocks and a linear layer per time step; time is pooled by
    soft attention, so any excerpt of at least ``2 ** len(channels)`` frames works.
    """

    def __init__(self, config: SheetModelConfig):
        super().__init__()
        self.conv = _stack(config.channels)
        n = config.channels[-1] * (config.n_bands // 2 ** len(config.channels))
        self.frame = nn.Sequential(nn.Linear(n, 128), nn.ELU())
        self.attention = nn.Linear(128, 1)
        self.head = nn.Linear(128, config.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)  # (b, c, f, t)
        h = h.permute(0, 3, 1, 2).flatten(2)  # (b, t, c * f)
        h = self.frame(h)
        w = torch.softmax(self.attention(h), dim=1)  # (b, t, 1)
        z = self.head((w * h).sum(dim=1))
        return nn.functional.normalize(z, dim=1)


class SheetAudioModel(nn.Module):
    """The two branches."""

    def __init__(self, config: SheetModelConfig):
        super().__init__()
        self.config = config
        self.sheet = SheetBranch(config)
        self.audio = AudioBranch(config)


class SheetBundle:
    """A trained audio-sheet model for inference: :meth:`embed_sheet`, :meth:`embed_audio` (numpy in, out)."""

    def __init__(self, model: SheetAudioModel, *, model_id: str = "untrained", info: dict | None = None):
        self.model = model.eval()
        self.config = model.config
        self.model_id = model_id
        self.info = dict(info or {})

    @classmethod
    def load(cls, path: str | Path = DEFAULT_BUNDLE) -> SheetBundle:
        cfg = read_config(path, format=FORMAT, version=FORMAT_VERSION, what="sheet model bundle")
        net = cfg["network"]
        config = SheetModelConfig(**{**net, "channels": tuple(net["channels"])})
        model = load_weights(SheetAudioModel(config), Path(path) / WEIGHTS_FILE, what="sheet model bundle")
        return cls(model, model_id=cfg.get("model_id", "unknown"), info=cfg.get("training", {}))

    def save(self, path: str | Path, *, training: dict | None = None) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_state_dict(self.model.state_dict(), path / WEIGHTS_FILE, archive="weights")
        config = {"format": FORMAT, "format_version": FORMAT_VERSION, "network": asdict(self.config)}
        config["training"] = dict(training or self.info)
        config["model_id"] = content_id([path / WEIGHTS_FILE], config, ["network"])
        write_config(path, config)
        self.model_id = config["model_id"]
        return path

    def _run(self, branch: nn.Module, x: np.ndarray, batch: int) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(x), batch):
                chunk = torch.from_numpy(np.ascontiguousarray(x[i : i + batch], dtype=np.float32))
                out.append(branch(chunk[:, None]).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.config.dim), np.float32)

    def embed_sheet(self, snippets: np.ndarray, *, batch: int = 256) -> np.ndarray:
        """``(n, snippet_height, snippet_width)`` ink images -> ``(n, dim)`` unit vectors."""
        return self._run(self.model.sheet, snippets, batch)

    def embed_audio(self, excerpts: np.ndarray, *, batch: int = 128) -> np.ndarray:
        """``(n, n_bands, n_frames)`` spectrogram excerpts of one length -> ``(n, dim)`` unit vectors."""
        return self._run(self.model.audio, excerpts, batch)
