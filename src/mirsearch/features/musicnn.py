"""musicnn (Pons & Serra 2019), a music tagger trained on the Million Song Dataset, as an embedding of recordings.

The network's weights are the TensorFlow 1 checkpoint ``MSD_musicnn`` inside the PyPI wheel ``musicnn`` 0.1.0 (ISC
licence; install it with ``pip install --no-deps musicnn==0.1.0``: its metadata pins TensorFlow and an old numpy,
neither of which is used here). :func:`read_checkpoint` reads the checkpoint without TensorFlow: a V2 tensor bundle
is an SSTable (``.index``) whose values are ``BundleEntryProto`` messages (dtype, shape, offset and size of each
tensor in the ``.data`` shard). :class:`Musicnn` is the network rebuilt in torch from its published description:

- input: log-mel patches of 3 s (:data:`PATCH_FRAMES` = 187 frames; :func:`log_mel`: 16 kHz, 512-point frames every
  256 samples, 96 Slaney mel bands, power, ``log10(1 + 10000 x)`` of the value rounded to float16), batch-normalised;
- front end: timbral filters 7 x 38 and 7 x 67 (204 each, valid in frequency, the time axis zero-padded by 3) and
  temporal filters 128 / 64 / 32 x 1 (51 each, "same" in time), each ReLU, batch norm, max over frequency;
- mid end: three 1-d convolutions of 64 filters over time (kernel 7), the last two residual;
- back end: the front- and mid-end features (753 per frame) max- and mean-pooled over time, a dense layer of 200
  (the penultimate embedding) and 50 tag logits.

Checked against TensorFlow 2.15 running the wheel's own graph (tests/test_musicnn.py with the reference outputs in
``tests/data/musicnn_msd_tf215.npz``): every output within 2e-4. Batch norm uses TensorFlow's epsilon 1e-3.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import struct
from pathlib import Path

import numpy as np

from mirsearch.errors import InputError, ParameterError
from mirsearch.features.logmel import LogMelConfig, _resampled, magnitude_frames, mel_filters

log = logging.getLogger(__name__)

__all__ = ["CHECKPOINTS", "MTT_LABELS", "MUSICNN", "PATCH_FRAMES", "POOL_DIM", "Musicnn", "log_mel",
           "musicnn_model", "patch_starts", "read_checkpoint"]  # fmt: skip

#: the network's front end (16 kHz, 512 / 256, 96 Slaney mel bands over 0-8 kHz, power spectrum; its own log,
#: :func:`log_mel`, not ``log_offset``)
MUSICNN = LogMelConfig(sr=16000, n_fft=512, win_length=512, hop_length=256, n_mels=96, mel_scale="slaney", fmin=0.0,
                       fmax=8000.0, power=2.0, log_offset=1e-4, center=True, norm="slaney")  # fmt: skip
#: frames of one input patch (3 s)
PATCH_FRAMES = 187
#: size of the pooled features (front and mid end)
POOL_DIM = 753
_MAGIC = 0xDB4775248B80FB57
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64}
_EPS = 1e-3


def _varint(b: bytes, i: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        c = b[i]
        i += 1
        out |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return out, i


def _block(data: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """The (key, value) entries of an SSTable block (prefix-compressed keys, the restart array at its end)."""
    blk = data[offset : offset + size]
    n_restarts = struct.unpack("<I", blk[-4:])[0]
    end, i, key, out = len(blk) - 4 - 4 * n_restarts, 0, b"", []
    while i < end:
        shared, i = _varint(blk, i)
        non_shared, i = _varint(blk, i)
        vlen, i = _varint(blk, i)
        key = key[:shared] + blk[i : i + non_shared]
        i += non_shared
        out.append((key, blk[i : i + vlen]))
        i += vlen
    return out


def _fields(msg: bytes) -> dict[int, list]:
    """A protobuf message in wire format: ``{field number: [values]}``."""
    i, out = 0, {}
    while i < len(msg):
        tag, i = _varint(msg, i)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            v, i = _varint(msg, i)
        elif wire == 2:
            n, i = _varint(msg, i)
            v, i = msg[i : i + n], i + n
        elif wire == 5:
            v, i = struct.unpack("<I", msg[i : i + 4])[0], i + 4
        elif wire == 1:
            v, i = struct.unpack("<Q", msg[i : i + 8])[0], i + 8
        else:
            raise ParameterError(f"protobuf wire type {wire} is not read here")
        out.setdefault(field, []).append(v)
    return out


def read_checkpoint(prefix: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a TensorFlow V2 checkpoint (``PREFIX.index`` and ``PREFIX.data-00000-of-00001``).

    Raises
    ------
    InputError
        Missing files or not a tensor bundle.
    """
    prefix = str(prefix)
    try:
        data = Path(prefix + ".index").read_bytes()
        raw = Path(prefix + ".data-00000-of-00001").read_bytes()
    except OSError as exc:
        raise InputError(f"{prefix}: unreadable TensorFlow checkpoint ({exc})") from None
    if len(data) < 48 or struct.unpack("<Q", data[-8:])[0] != _MAGIC:
        raise InputError(f"{prefix}.index: not a TensorFlow tensor bundle")
    footer = data[-48:]
    _, j = _varint(footer, 0)
    _, j = _varint(footer, j)  # the metaindex handle, not needed
    offset, j = _varint(footer, j)
    size, _ = _varint(footer, j)
    out = {}
    for _, handle in _block(data, offset, size):
        off, k = _varint(handle, 0)
        sz, _ = _varint(handle, k)
        for key, value in _block(data, off, sz):
            if not key:  # the bundle header
                continue
            f = _fields(value)
            shape = [_fields(d).get(1, [0])[0] for d in _fields(f[2][0]).get(2, [])] if 2 in f else []
            start, n = f.get(4, [0])[0], f.get(5, [0])[0]
            dtype = _DTYPES.get(f.get(1, [1])[0])
            if dtype is not None:
                out[key.decode()] = np.frombuffer(raw[start : start + n], dtype=dtype).reshape(shape)
    return out


class Musicnn:
    """The musicnn network (module docstring) with the weights of a checkpoint ``prefix``."""

    def __init__(self, prefix: str | Path):
        import torch

        self._w = {k: torch.from_numpy(np.array(v)) for k, v in read_checkpoint(prefix).items() if "Adam" not in k}

    def _bn(self, x, i: int):
        p = "batch_normalization" + ("" if i == 0 else f"_{i}")
        g, b, m, v = (self._w[f"{p}/{n}"] for n in ("gamma", "beta", "moving_mean", "moving_variance"))
        shape = [1] * x.dim()
        shape[1] = -1
        return (x - m.view(shape)) / (v.view(shape) + _EPS).sqrt() * g.view(shape) + b.view(shape)

    def _conv(self, x, i: int, pad: tuple[int, int]):
        import torch.nn.functional as F

        name = "conv2d" + ("" if i == 0 else f"_{i}")
        k, b = self._w[f"{name}/kernel"], self._w[f"{name}/bias"]  # (time, frequency, in, out)
        if x.dim() == 3:  # the mid end: a 1-d convolution over time, the features as channels
            return F.conv1d(F.pad(x, pad), k[:, :, 0, :].permute(2, 1, 0).contiguous(), b)
        return F.conv2d(F.pad(x, (0, 0, *pad)), k.permute(3, 2, 0, 1).contiguous(), b)

    def __call__(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Run the network on log-mel patches.

        Parameters
        ----------
        X : np.ndarray, shape (b, frames, 96)

        Returns
        -------
        logits : (b, 50); penultimate : (b, 200); mean_pool : (b, 753); max_pool : (b, 753), float32
        """
        import torch
        import torch.nn.functional as F

        with torch.no_grad():
            x = self._bn(torch.as_tensor(np.asarray(X), dtype=torch.float32)[:, None], 0)
            front = [self._bn(F.relu(self._conv(x, i, (3, 3))), i + 1).amax(dim=3) for i in (0, 1)]
            for i, k in ((2, 128), (3, 64), (4, 32)):
                h = F.relu(self._conv(x, i, ((k - 1) // 2, k - 1 - (k - 1) // 2)))
                front.append(self._bn(h, i + 1).amax(dim=3))
            h = torch.cat(front, dim=1)
            c1 = self._bn(F.relu(self._conv(h, 5, (3, 3))), 6)
            c2 = self._bn(F.relu(self._conv(c1, 6, (3, 3))), 7) + c1
            c3 = self._bn(F.relu(self._conv(c2, 7, (3, 3))), 8) + c2
            mid = torch.cat([h, c1, c2, c3], dim=1)
            mx, mean = mid.amax(dim=2), mid.mean(dim=2)
            flat = self._bn(torch.stack([mx, mean], dim=2).reshape(len(mid), -1), 9)  # TensorFlow's (753, 2) order
            pen = self._bn(F.relu(flat @ self._w["dense/kernel"] + self._w["dense/bias"]), 10)
            logits = pen @ self._w["dense_1/kernel"] + self._w["dense_1/bias"]
        return tuple(t.numpy().astype(np.float32) for t in (logits, pen, mean, mx))


def log_mel(y: np.ndarray, *, sr: int) -> np.ndarray:
    """musicnn's input of a mono signal: ``log10(1 + 10000 mel)`` (mel power rounded to float16 first, as the
    network's training data), shape (n_frames, 96), float32, 62.5 frames per second."""
    c = MUSICNN
    y = _resampled(y, sr, c.sr)
    F = mel_filters(sr=c.sr, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax, htk=False, norm=c.norm)
    mel = (F @ magnitude_frames(y, config=c)).T
    return np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1)


def patch_starts(n_frames: int, most: int) -> np.ndarray:
    """First frames of up to ``most`` whole 3-s patches evenly spread over ``n_frames`` (one patch, zero-padded by
    the caller, for a shorter input)."""
    if most < 1:
        raise ParameterError(f"most={most} must be >= 1")
    n = max(1, n_frames // PATCH_FRAMES)
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int)) * PATCH_FRAMES


#: the checkpoints of the wheel with this architecture: trained on the Million Song Dataset (50 Last.fm tags) or on
#: MagnaTagATune (50 tags, many of them instruments: ``MTT_LABELS``)
CHECKPOINTS = ("MSD_musicnn", "MTT_musicnn")
#: the tags of the ``MTT_musicnn`` checkpoint, in the order of its logits (from the wheel's configuration)
MTT_LABELS = ("guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano",
              "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing", "vocals",
              "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop", "soft",
              "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal",
              "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice", "choral")  # fmt: skip


@functools.lru_cache(maxsize=2)
def musicnn_model(checkpoint: str = "MSD_musicnn") -> Musicnn | None:
    """A musicnn network (``checkpoint`` one of :data:`CHECKPOINTS`) from the installed ``musicnn`` wheel, or None
    where the wheel is not installed."""
    if checkpoint not in CHECKPOINTS:
        raise ParameterError(f"checkpoint={checkpoint!r} must be one of {CHECKPOINTS}")
    spec = importlib.util.find_spec("musicnn")
    if spec is None or spec.origin is None:
        log.info("musicnn: the wheel is not installed (pip install --no-deps musicnn==0.1.0)")
        return None
    try:
        return Musicnn(str(Path(spec.origin).parent / checkpoint) + "/")
    except (InputError, KeyError, ImportError) as exc:
        log.warning("musicnn: the %s checkpoint of the installed wheel does not load (%s)", checkpoint, exc)
        return None
