"""musicnn (Pons & Serra 2019; the ``musicnn`` 0.1.0 wheel, ISC) as a fourth view of search by similarity: a port
measured, not in the product (issue 20, session 19).

    pip install --no-deps musicnn==0.1.0                                  # the checkpoints (no TensorFlow needed)
    nice -n 5 .venv/bin/python benchmarks/musicnn_view.py --compute       # per-track features (cached, resumable)
    nice -n 5 .venv/bin/python benchmarks/musicnn_view.py                 # -> results/musicnn_view.json

The wheel holds TensorFlow 1 checkpoints. :func:`read_checkpoint` reads a V2 tensor bundle without TensorFlow
(the ``.index`` file is an SSTable whose values are ``BundleEntryProto`` messages: dtype, shape, offset and size of
each tensor in the ``.data`` shard), and :class:`Musicnn` rebuilds the network in torch from its published
description: batch-normalised log-mel input (96 bands, 16 kHz, 512-point frames every 256 samples, ``log10(1 +
10000 x)``, 187-frame patches of 3 s); timbral filters 7 x 38 and 7 x 67 (204 each, valid in frequency) and temporal
filters 128 / 64 / 32 x 1 (51 each, "same" in time), each ReLU then batch norm then max over frequency; three
1-d convolutions of 64 filters over time (kernel 7, the last two residual); the front- and mid-end features (753)
max- and mean-pooled over time, a dense layer of 200 (the penultimate embedding) and 50 tag logits. Checked against
TensorFlow 2.15 running the wheel's own graph on two random patches (``--check``; the reference outputs,
``benchmarks/reference/musicnn_msd_tf215.npz``, were made once in a separate environment with TensorFlow; the
patches are ``default_rng(seed).random((2, 187, 96)) * 3``): every output within 2e-4 of values up to 60.

Protocol (``similarity_fulltracks.py``'s whole tracks, benchmark cell of ``similarity_superset.py``: distances
averaged with expansion 2): the shipped views T, M, Y (cosine) plus one musicnn view (MSD model, at most 40 patches
per track evenly spread; penultimate, mean pool, max pool or tag probabilities; z-scored L1 or cosine), its form
chosen on one collection and measured on another (nested): both halves of 10 halvings (chosen on the other half),
the 20 collections of three soundtracks (chosen on the other three).
"""

from __future__ import annotations

import argparse
import itertools
import json
import struct
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import write_results  # noqa: E402

CACHE = ROOT / "data" / "musicnn_view"
#: 3-s patches analysed per track at most (evenly spread; --patches)
PATCHES = 40
MAGIC = 0xDB4775248B80FB57
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64}
FORMS = [(k, f) for k in ("pen", "meanpool", "maxpool", "tags") for f in ("cos", "z")]


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
    """The (key, value) entries of an SSTable block (prefix-compressed keys, restart array at the end)."""
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
            raise ValueError(f"protobuf wire type {wire} is not read here")
        out.setdefault(field, []).append(v)
    return out


def read_checkpoint(prefix: str) -> dict[str, np.ndarray]:
    """Every tensor of a TensorFlow V2 checkpoint ``prefix`` (``prefix.index`` + ``prefix.data-00000-of-00001``)."""
    data = Path(prefix + ".index").read_bytes()
    if struct.unpack("<Q", data[-8:])[0] != MAGIC:
        raise ValueError(f"{prefix}.index is not a TensorFlow tensor bundle")
    footer = data[-48:]
    _, j = _varint(footer, 0)
    _, j = _varint(footer, j)  # the metaindex handle, not needed
    offset, j = _varint(footer, j)
    size, j = _varint(footer, j)
    raw = Path(prefix + ".data-00000-of-00001").read_bytes()
    out = {}
    for _, handle in _block(data, offset, size):
        off, k = _varint(handle, 0)
        sz, k = _varint(handle, k)
        for key, value in _block(data, off, sz):
            if not key:  # the bundle header
                continue
            f = _fields(value)
            shape = [_fields(d).get(1, [0])[0] for d in _fields(f[2][0]).get(2, [])] if 2 in f else []
            start, n = f.get(4, [0])[0], f.get(5, [0])[0]
            out[key.decode()] = np.frombuffer(raw[start : start + n], dtype=DTYPES[f.get(1, [1])[0]]).reshape(shape)
    return out


class Musicnn:
    """The musicnn network (module docstring) with the weights of a checkpoint of the wheel."""

    EPS = 1e-3  # batch normalisation epsilon of tf.compat.v1.layers

    def __init__(self, prefix: str):
        import torch

        self.w = {k: torch.from_numpy(np.array(v)) for k, v in read_checkpoint(prefix).items() if "Adam" not in k}

    def _bn(self, x, i: int):
        p = "batch_normalization" + ("" if i == 0 else f"_{i}")
        g, b, m, v = (self.w[f"{p}/{n}"] for n in ("gamma", "beta", "moving_mean", "moving_variance"))
        shape = [1] * x.dim()
        shape[1] = -1
        return (x - m.view(shape)) / (v.view(shape) + self.EPS).sqrt() * g.view(shape) + b.view(shape)

    def _conv(self, x, i: int, pad: tuple[int, int]):
        import torch.nn.functional as F

        name = "conv2d" + ("" if i == 0 else f"_{i}")
        k, b = self.w[f"{name}/kernel"], self.w[f"{name}/bias"]  # (time, freq, in, out)
        if x.dim() == 3:  # the mid-end: a 1-d convolution over time with the features as channels
            return F.conv1d(F.pad(x, pad), k[:, :, 0, :].permute(2, 1, 0).contiguous(), b)
        return F.conv2d(F.pad(x, (0, 0, *pad)), k.permute(3, 2, 0, 1).contiguous(), b)

    def __call__(self, X: np.ndarray):
        """Log-mel patches ``X`` (b, frames, 96) -> tag logits (b, 50), penultimate (b, 200), mean pool (b, 753),
        max pool (b, 753)."""
        import torch
        import torch.nn.functional as F

        with torch.no_grad():
            x = self._bn(torch.as_tensor(X, dtype=torch.float32)[:, None], 0)
            front = [self._bn(F.relu(self._conv(x, i, (3, 3))), i + 1).amax(dim=3) for i in (0, 1)]
            for i, k in ((2, 128), (3, 64), (4, 32)):
                front.append(self._bn(F.relu(self._conv(x, i, ((k - 1) // 2, k - 1 - (k - 1) // 2))), i + 1).amax(3))
            h = torch.cat(front, dim=1)
            c1 = self._bn(F.relu(self._conv(h, 5, (3, 3))), 6)
            c2 = self._bn(F.relu(self._conv(c1, 6, (3, 3))), 7) + c1
            c3 = self._bn(F.relu(self._conv(c2, 7, (3, 3))), 8) + c2
            mid = torch.cat([h, c1, c2, c3], dim=1)
            mx, mean = mid.amax(dim=2), mid.mean(dim=2)
            flat = self._bn(torch.stack([mx, mean], dim=2).reshape(len(mid), -1), 9)  # TF's flatten of (753, 2)
            pen = self._bn(F.relu(flat @ self.w["dense/kernel"] + self.w["dense/bias"]), 10)
            logits = pen @ self.w["dense_1/kernel"] + self.w["dense_1/bias"]
        return logits.numpy(), pen.numpy(), mean.numpy(), mx.numpy()


def log_mel(y: np.ndarray, sr: int) -> np.ndarray:
    """musicnn's input (frames, 96): mel power at 16 kHz, 512 / 256, ``log10(1 + 10000 x)`` of its float16 value."""
    import librosa

    y = librosa.resample(y, orig_sr=sr, target_sr=16000) if sr != 16000 else y
    S = librosa.feature.melspectrogram(y=y, sr=16000, hop_length=256, n_fft=512, n_mels=96).T
    return np.log10(10000 * S.astype(np.float16).astype(np.float32) + 1)


def patches(L: np.ndarray, n: int = 187, most: int | None = None) -> np.ndarray:
    """Consecutive ``n``-frame patches (k, n, 96) of a log-mel (the last partial one dropped; a short input padded),
    at most ``most`` of them evenly spread."""
    L = np.pad(L, ((0, max(0, n - len(L))), (0, 0)))
    P = np.stack([L[i * n : (i + 1) * n] for i in range(len(L) // n)])
    return P if most is None or len(P) <= most else P[np.linspace(0, len(P) - 1, most).round().astype(int)]


def _prefix() -> str:
    import importlib.util

    spec = importlib.util.find_spec("musicnn")
    if spec is None:
        raise SystemExit("the musicnn checkpoints are needed: pip install --no-deps musicnn==0.1.0")
    return str(Path(spec.origin).parent / "MSD_musicnn") + "/"


def _cache(patches: int) -> Path:
    return CACHE if patches == PATCHES else CACHE.with_name(f"{CACHE.name}_{patches}")


def compute(data: Path, pkgs: Path, most: int = PATCHES) -> int:
    from mirsearch.datasets.soundtracks import SR, mix_track
    from similarity_fulltracks import tracks_of_manifest

    net, written, cache = Musicnn(_prefix()), 0, _cache(most)
    cache.mkdir(parents=True, exist_ok=True)
    for track, _ in tracks_of_manifest(data, pkgs):
        out = cache / f"{track.soundtrack}__{track.name}.npz"
        if out.exists():
            continue
        t0 = time.time()
        logits, pen, mean, mx = net(patches(log_mel(mix_track(track)[: int(600 * SR)], SR), most=most))
        np.savez(out, pen=pen.mean(0), meanpool=mean.mean(0), maxpool=mx.mean(0),
                 tags=(1 / (1 + np.exp(-logits))).mean(0))  # fmt: skip
        written += 1
        print(f"{track.soundtrack}/{track.name}: {time.time() - t0:.1f} s", flush=True)
    return written


def evaluate(data: Path, pkgs: Path, most: int = PATCHES) -> dict:
    import similarity_heldout as H
    import similarity_superset as SS
    from mirsearch.evaluation.ranking import bootstrap_mean
    from similarity_fulltracks import tracks_of_manifest

    full, parts = SS.load_items(data)["full"], SS.timbre_parts()
    zs = [np.load(_cache(most) / f"{t.soundtrack}__{t.name}.npz") for t, _ in tracks_of_manifest(data, pkgs)]
    views = {k: np.stack([z[k] for z in zs]) for k in ("pen", "meanpool", "maxpool", "tags")}

    def cos(Y):
        U = Y / np.linalg.norm(Y, axis=1, keepdims=True)
        D = 1 - U @ U.T
        return D / D[~np.eye(len(D), dtype=bool)].mean()

    def z(X):
        return SS.block_distances(X, transform="z", metric="l1")

    def scores(rows) -> dict:
        b = {k: v[rows] for k, v in full["blocks"].items()}
        labels, tracks = full["labels"][rows], full["tracks"][rows]
        best = max(v.mean() for v in SS.baselines(b, labels, tracks).values())
        base = sum(z(b["T"][:, sl]) for sl in parts) / len(parts) + z(b["M"]) + cos(b["Y"])
        out = {"shipped": H.map10(SS.expand(base / 3, 2), labels, tracks).mean() - best}
        for k, f in FORMS:
            D = (base + (cos if f == "cos" else z)(views[k][rows])) / 4
            out[(k, f)] = H.map10(SS.expand(D, 2), labels, tracks).mean() - best
        return out

    def pairs():
        for seed in range(10):
            half = SS.random_halves(full, seed)
            hv = np.array([half[t] for t in full["tracks"]])
            a, b = np.flatnonzero(hv == "train"), np.flatnonzero(hv == "test")
            yield "halves", a, b
            yield "halves", b, a
        names = np.unique(full["labels"])
        for chosen in itertools.combinations(names, 3):
            inside = np.isin(full["labels"], chosen)
            yield "three soundtracks", np.flatnonzero(~inside), np.flatnonzero(inside)

    cache, res = {}, {}
    for proto, choose_on, measure_on in pairs():
        sc = cache.setdefault(tuple(choose_on), scores(choose_on))
        se = cache.setdefault(tuple(measure_on), scores(measure_on))
        pick = max(FORMS, key=lambda c: sc[c])
        r = res.setdefault(proto, {"nested": [], "shipped": [], "chosen": [], "every form": {}})
        r["nested"].append(float(se[pick]))
        r["shipped"].append(float(se["shipped"]))
        r["chosen"].append(" ".join(pick))
        for c in FORMS:
            r["every form"].setdefault(" ".join(c), []).append(float(se[c]))
    out = {}
    for proto, r in res.items():
        d = bootstrap_mean(np.subtract(r["nested"], r["shipped"])).to_dict()
        shipped, nested = float(np.mean(r["shipped"])), float(np.mean(r["nested"]))
        forms = {k: round(float(np.mean(v)), 4) for k, v in r["every form"].items()}
        out[proto] = {"shipped": round(shipped, 4), "with musicnn, nested": round(nested, 4), "difference": d,
                      "chosen": r["chosen"], "every form (post hoc)": forms}  # fmt: skip
        print(f"{proto:18s} shipped {shipped:+.3f}  + musicnn (nested) {nested:+.3f}  "
              f"difference {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]")  # fmt: skip
    return out


def main(argv=None) -> int:
    from similarity_features import DATA
    from similarity_fulltracks import PKGS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compute", action="store_true", help="compute the missing per-track features")
    ap.add_argument("--patches", type=int, default=PATCHES, help="3-s patches analysed per track at most")
    ap.add_argument("--check", action="store_true", help="compare with TensorFlow's outputs (benchmarks/reference)")
    args = ap.parse_args(argv)
    if args.check:
        ref = np.load(ROOT / "benchmarks" / "reference" / "musicnn_msd_tf215.npz")
        X = (np.random.default_rng(int(ref["seed"])).random((2, 187, 96)) * 3).astype(np.float32)
        got = Musicnn(_prefix())(X)
        for name, a in zip(("logits", "pen", "mean", "mx"), got, strict=True):
            diff, top = np.abs(a - ref[name]).max(), np.abs(ref[name]).max()
            print(f"{name}: largest difference {diff:.2e} (largest value {top:.1f})")
        return 0
    if args.compute:
        print(f"{compute(DATA, PKGS, args.patches)} track feature files written")
        return 0
    t0 = time.time()
    payload = {"protocol": __doc__, "patches": args.patches, **evaluate(DATA, PKGS, args.patches)}
    payload["seconds"] = round(time.time() - t0)
    name = "musicnn_view" + ("" if args.patches == PATCHES else f"_{args.patches}")
    print(json.dumps({"written": str(write_results(name, payload))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
