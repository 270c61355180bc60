"""Training of the speech/music segmenter (a small CNN on log-mel) and of the classic-feature baseline.

    python -m mirsearch.training.segmenter --data data/segment --out src/mirsearch/models/bundles/segmenter

The data are the shards of ``benchmarks/build_segment_data.py`` (8 kHz mixtures of real speech, music and noise with
frame labels at 100 Hz). Log-mel features are computed once and cached beside the shards. The network is trained
with binary cross-entropy on two outputs (speech present, music present) at 25 Hz, with gain and spectral-tilt
augmentation; the epoch with the best mean frame F on the validation shards is kept, its batch norm folded into the
convolutions and written as a numpy bundle (see :mod:`mirsearch.models.segmenter`).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_path, atomic_save_npy, atomic_write_text
from mirsearch.features.segment_features import (
    ANALYSIS_SR,
    DB_FLOOR,
    HOP_LENGTH,
    N_FFT,
    classic_features,
    log_mel,
)
from mirsearch.models.segmenter import CONFIG_FILE, FORMAT, WEIGHTS_FILE, weights_id

log = logging.getLogger(__name__)

OUTPUTS = ("speech", "music")
FRONTEND = {"sr": ANALYSIS_SR, "n_fft": N_FFT, "hop_length": HOP_LENGTH, "n_mels": 40, "fmin": 60.0, "fmax": 3800.0}


@dataclass(frozen=True)
class TrainOptions:
    """Hyper-parameters of :func:`train`."""

    epochs: int = 14
    batch_size: int = 32
    lr: float = 2e-3
    crop_frames: int = 640
    channels: tuple = (16, 32, 32)
    hidden: int = 64
    gain_db: float = 12.0
    tilt_db: float = 6.0
    mel_shift: float = 0.0
    eq_db: float = 0.0
    dilations: tuple = (1, 2, 4, 8)
    freq_mask: int = 0
    epoch_steps: int = 0
    train_split: str = "train"
    seed: int = 0
    threads: int = 1
    patience: int = 0
    #: loss weight of the speech output where music plays without speech (hard negatives; 1: plain BCE)
    music_negative_weight: float = 1.0


def _net(n_mels: int, opts: TrainOptions):
    import torch
    from torch import nn

    class SegmenterNet(nn.Module):
        """conv2d x3 (3x3, BN, ReLU, max-pool) -> flatten -> dilated conv1d residual stack -> 2 logits."""

        pools = ((2, 2), (2, 2), (2, 1))

        def __init__(self):
            super().__init__()
            chans = (1, *opts.channels)
            self.convs = nn.ModuleList(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1) for i in range(3))
            self.bn2 = nn.ModuleList(nn.BatchNorm2d(c) for c in opts.channels)
            flat = opts.channels[-1] * (n_mels // 8)
            dims = [flat] + [opts.hidden] * len(opts.dilations)
            self.tconvs = nn.ModuleList(
                nn.Conv1d(dims[i], opts.hidden, 3, padding=d, dilation=d) for i, d in enumerate(opts.dilations)
            )
            self.bn1 = nn.ModuleList(nn.BatchNorm1d(opts.hidden) for _ in opts.dilations)
            self.out = nn.Conv1d(opts.hidden, len(OUTPUTS), 1)

        def forward(self, x):  # x: (B, 1, n_mels, T)
            for conv, bn, pool in zip(self.convs, self.bn2, self.pools, strict=True):
                x = torch.max_pool2d(torch.relu(bn(conv(x))), pool)
            x = x.flatten(1, 2)
            for i, (conv, bn) in enumerate(zip(self.tconvs, self.bn1, strict=True)):
                y = torch.relu(bn(conv(x)))
                x = x + y if i > 0 else y
            return self.out(x)

    return SegmenterNet()


def layer_list(opts: TrainOptions) -> list[dict]:
    """The layer list of the numpy forward pass (:func:`mirsearch.models.segmenter.forward`)."""
    layers = [{"op": "conv2d", "name": f"c{i}", "pool": list(p)} for i, p in enumerate(((2, 2), (2, 2), (2, 1)))]
    layers.append({"op": "flatten"})
    for i, d in enumerate(opts.dilations):
        layers.append({"op": "conv1d", "name": f"t{i}", "dilation": d, "relu": True, "residual": i > 0})
    layers.append({"op": "conv1d", "name": "out", "dilation": 1, "relu": False, "residual": False})
    return layers


def context_frames(opts: TrainOptions) -> int:
    """Input frames either side that influence an output (rounded up to a multiple of 4, with margin)."""
    temporal = 4 * sum(opts.dilations)  # 25 Hz outputs: 4 input frames each
    spatial = 1 + 2 + 4 + 4  # the three 3x3 convolutions at 100, 50 and 25 Hz, and the pools
    ctx = temporal + spatial + 8
    return -(-ctx // 4) * 4


# ----------------------------------------------------------------------------------------------- data
def load_split(data_dir: Path, split: str) -> dict:
    """Clips of a split with their log-mel (cached as ``<split>/logmel.npy``) and 100 Hz labels."""
    shards = sorted((data_dir / split).glob("shard-*.npz"))
    if not shards:
        raise FileNotFoundError(f"{data_dir / split}: no shards (run benchmarks/build_segment_data.py)")
    audio, speech, music, cond = [], [], [], []
    for s in shards:
        with np.load(s) as d:
            audio.append(d["audio"])
            speech.append(d["speech"])
            music.append(d["music"])
            cond.append(d["condition"])
    out = {
        "audio": np.concatenate(audio),
        "speech": np.concatenate(speech),
        "music": np.concatenate(music),
        "condition": np.concatenate(cond),
    }
    cache = data_dir / split / f"logmel-{len(shards)}.npy"
    if cache.exists():
        out["logmel"] = np.load(cache)
    else:
        fe = {k: FRONTEND[k] for k in ("n_mels", "fmin", "fmax")}
        out["logmel"] = np.stack([log_mel(a.astype(np.float32) / 32767.0, **fe) for a in out["audio"]]).astype(
            np.float16
        )
        atomic_save_npy(cache, out["logmel"])
    n = min(out["logmel"].shape[2], out["speech"].shape[1])
    out["logmel"], out["speech"], out["music"] = out["logmel"][:, :, :n], out["speech"][:, :n], out["music"][:, :n]
    return out


def _targets(labels: np.ndarray, hop: int = 4) -> np.ndarray:
    """(B, 2, T) 100 Hz labels -> (B, 2, T / hop) soft targets (label share in each output frame)."""
    b, k, t = labels.shape
    t4 = t // hop
    return labels[:, :, : t4 * hop].reshape(b, k, t4, hop).mean(axis=3).astype(np.float32)


def _augment(x: np.ndarray, rng, opts: TrainOptions) -> np.ndarray:
    b, m, _ = x.shape
    gain = rng.uniform(-opts.gain_db, opts.gain_db, (b, 1, 1))
    tilt = rng.uniform(-opts.tilt_db, opts.tilt_db, (b, 1, 1)) * np.linspace(-1, 1, m)[None, :, None]
    x = x + gain + tilt
    if opts.eq_db > 0:  # a random equaliser: three bell-shaped bands of +-eq_db at random places and widths
        bands = np.arange(m)[None, None, :]
        centre, width = rng.uniform(0, m, (b, 3, 1)), rng.uniform(2, 8, (b, 3, 1))
        curve = rng.uniform(-opts.eq_db, opts.eq_db, (b, 3, 1)) * np.exp(-0.5 * ((bands - centre) / width) ** 2)
        x = x + curve.sum(axis=1)[:, :, None]
    if opts.mel_shift > 0:  # vocal-tract-length-like warping: shift along the mel axis by a fraction of bands
        for i in range(b):
            pos = np.clip(np.arange(m) + rng.uniform(-opts.mel_shift, opts.mel_shift), 0, m - 1)
            lo = np.floor(pos).astype(int)
            hi = np.minimum(lo + 1, m - 1)
            frac = (pos - lo)[:, None]
            x[i] = x[i, lo] * (1 - frac) + x[i, hi] * frac
    if opts.freq_mask > 0:  # SpecAugment-like: half of the clips lose up to freq_mask adjacent bands
        for i in np.flatnonzero(rng.random(b) < 0.5):
            w = int(rng.integers(1, opts.freq_mask + 1))
            f0 = int(rng.integers(0, m - w + 1))
            x[i, f0 : f0 + w] = x[i].mean()
    return np.maximum(x, DB_FLOOR).astype(np.float32)


def frame_f1(pred: np.ndarray, ref: np.ndarray) -> float:
    """F-measure of binary frame decisions (1.0 when both are empty)."""
    tp = float(np.sum(pred & ref))
    denom = float(np.sum(pred) + np.sum(ref))
    return 1.0 if denom == 0 else 2 * tp / denom


# ----------------------------------------------------------------------------------------------- training
def train(
    data_dir: str | Path,
    out_dir: str | Path,
    opts: TrainOptions = TrainOptions(),
    *,
    finish: bool = False,
    init=None,
    last: bool = False,
) -> dict:
    """Train the CNN, write the bundle to ``out_dir`` and return its validation scores.

    The model is chosen on the validation files (``val_files/``: a voice and music tracks never trained on) by
    :func:`evaluate_files` (frame F after the default smoothing, averaged over conditions) when they exist, else on
    the validation shards; training stops after ``patience`` epochs without improvement (0: never). A checkpoint is
    written to ``out_dir/checkpoint.pt`` after each epoch, and a run with the same ``out_dir`` resumes from it;
    ``finish`` writes the bundle of the checkpoint's best epoch without training further; ``init`` (a run's output
    directory) starts from that run's best epoch and normalisation (fine-tuning); ``last`` writes the last epoch
    instead of the best one (the end of the one-cycle schedule, when a larger validation set prefers it).
    """
    import torch

    torch.manual_seed(opts.seed)
    torch.set_num_threads(opts.threads)
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    tr, va = load_split(data_dir, opts.train_split), load_split(data_dir, "val")
    vf = load_val_files(data_dir / "val_files") if (data_dir / "val_files").is_dir() else None
    norm = {"offset_db": float(np.mean(tr["logmel"][:256].astype(np.float32))), "scale_db": 20.0}
    if init is not None:
        fe = json.loads((Path(init) / CONFIG_FILE).read_text())["frontend"]
        norm = {"offset_db": fe["offset_db"], "scale_db": fe["scale_db"]}
    net = _net(FRONTEND["n_mels"], opts)
    optim = torch.optim.AdamW(net.parameters(), lr=opts.lr, weight_decay=1e-4)
    steps = opts.epochs * (opts.epoch_steps or len(tr["logmel"]) // opts.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, max_lr=opts.lr, total_steps=steps)
    state = {"epoch": 0, "best": None, "history": [], "rng": np.random.default_rng(opts.seed).bit_generator.state}
    ckpt = out_dir / "checkpoint.pt"
    if init is not None and not ckpt.exists():
        net.load_state_dict(torch.load(Path(init) / "checkpoint.pt", weights_only=True)["state"]["best"][1])
    if ckpt.exists():
        saved = torch.load(ckpt, weights_only=True)
        net.load_state_dict(saved["net"])
        optim.load_state_dict(saved["optim"])
        sched.load_state_dict(saved["sched"])
        state = saved["state"]
        log.info("resumed from %s at epoch %d", ckpt, state["epoch"])
    labels = np.stack([tr["speech"], tr["music"]], axis=1)
    while not finish and state["epoch"] < opts.epochs and not _stale(state, opts.patience):
        t0 = time.time()
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng"]
        loss = _epoch(net, optim, sched, tr["logmel"], labels, rng, opts, norm)
        scores = evaluate_net(net, va, norm)
        if vf is not None:
            scores.update(evaluate_files(net, vf, norm))
        key = "files_f" if vf is not None else "mean_f"
        state["history"].append({"epoch": state["epoch"], "loss": loss, **scores, "seconds": time.time() - t0})
        log.info("epoch %d: %s", state["epoch"], state["history"][-1])
        if state["best"] is None or scores[key] > state["best"][0][key]:
            state["best"] = (scores, {k: v.detach().clone() for k, v in net.state_dict().items()}, state["epoch"])
        state["epoch"] += 1
        state["rng"] = rng.bit_generator.state
        out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(ckpt, suffix=".pt") as tmp:
            torch.save({"net": net.state_dict(), "optim": optim.state_dict(), "sched": sched.state_dict(),
                        "state": state}, tmp)  # fmt: skip
    if last:
        training = {"validation": state["history"][-1], "last_epoch": state["epoch"] - 1, "history": state["history"]}
    else:
        net.load_state_dict(state["best"][1])
        training = {"validation": state["best"][0], "best_epoch": state["best"][2], "history": state["history"]}
    write_bundle(net, out_dir, opts, norm, training)
    return training["validation"]


def _stale(state: dict, patience: int) -> bool:
    """Whether ``patience`` epochs have passed since the best one (never when ``patience`` is 0)."""
    return bool(patience) and state["best"] is not None and state["epoch"] - state["best"][2] > patience


def _epoch(net, optim, sched, logmel: np.ndarray, labels: np.ndarray, rng, opts: TrainOptions, norm: dict) -> float:
    """One pass over the training clips, or ``epoch_steps`` batches of them (random crops, augmented); returns the
    mean loss."""
    import torch

    net.train()
    order = rng.permutation(len(labels))
    if opts.epoch_steps:
        order = order[: opts.epoch_steps * opts.batch_size]
    losses = []
    t0 = time.time()
    for i in range(0, len(order) - opts.batch_size + 1, opts.batch_size):
        if i and i % (50 * opts.batch_size) == 0:
            log.info(
                "  step %d: loss %.4f, %.2f s/step",
                i // opts.batch_size,
                np.mean(losses[-50:]),
                (time.time() - t0) / (i // opts.batch_size),
            )
        idx = np.sort(order[i : i + opts.batch_size])
        start = int(rng.integers(0, (labels.shape[2] - opts.crop_frames) // 4 + 1)) * 4
        sl = slice(start, start + opts.crop_frames)
        x = _augment(logmel[idx, :, sl].astype(np.float32), rng, opts)
        x = torch.from_numpy((x - norm["offset_db"]) / norm["scale_db"])[:, None]
        y = torch.from_numpy(_targets(labels[idx, :, sl]))
        w = torch.from_numpy(loss_weights(y.numpy(), opts.music_negative_weight))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), y, weight=w)
        optim.zero_grad()
        loss.backward()
        optim.step()
        sched.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def loss_weights(targets: np.ndarray, music_negative_weight: float) -> np.ndarray:
    """Per-output loss weights (B, 2, T): ``music_negative_weight`` on the speech output where the frame is music
    without speech, 1 elsewhere; normalised to a mean of 1 so the learning rate keeps its meaning."""
    w = np.ones_like(targets, dtype=np.float32)
    w[:, 0][(targets[:, 0] == 0) & (targets[:, 1] == 1)] = music_negative_weight
    return w / w.mean()


def load_val_files(folder: Path) -> list[dict]:
    """The validation files (``<condition>/NNN.wav`` with ``NNN.json``) as log-mel and 100 Hz labels (cached)."""
    cache = folder / "logmel.npz"
    wavs = sorted(folder.glob("*/*.wav"))
    if cache.exists():
        with np.load(cache) as d:
            mels = [d[f"m{i}"] for i in range(len(wavs))]
    else:
        from mirsearch.audio import load_audio

        fe = {k: FRONTEND[k] for k in ("n_mels", "fmin", "fmax")}
        mels = [log_mel(load_audio(w, sr=ANALYSIS_SR)[0], **fe).astype(np.float16) for w in wavs]
        with atomic_path(cache, suffix=".npz") as tmp:
            np.savez(tmp, **{f"m{i}": m for i, m in enumerate(mels)})
    out = []
    for w, m in zip(wavs, mels, strict=True):
        ref = json.loads(w.with_suffix(".json").read_text())
        n = int(round(ref["duration"] * 100))
        tracks = {k: _interval_frames(ref[k], n, merge=0.1 if k == "music" else 0.0) for k in OUTPUTS}
        out.append({"condition": w.parent.name, "logmel": m, **tracks})
    return out


def _interval_frames(intervals: list, n: int, *, merge: float) -> np.ndarray:
    """Presence per 10 ms frame from ``[start, end]`` intervals in seconds (gaps under ``merge`` s filled)."""
    lab = np.zeros(n, bool)
    prev = None
    for a, b in sorted(intervals):
        if prev is not None and a - prev < merge:
            a = prev
        lab[int(round(a * 100)) : int(round(b * 100))] = True
        prev = b
    return lab


def evaluate_files(net, files: list[dict], norm: dict, options=None) -> dict:
    """Frame F (10 ms) of speech and music on whole files after smoothing (default: the default options).

    Returns the pooled F of each track per condition and ``files_f``, the mean over conditions of the mean of the
    two tracks' F.
    """
    import torch

    from mirsearch.describe.segment import SegmentOptions, smooth

    options = options or SegmentOptions()
    net.eval()
    counts: dict = {}
    with torch.no_grad():
        for f in files:
            L = f["logmel"].astype(np.float32)
            n_out = -(-L.shape[1] // 4)
            x = np.full((L.shape[0], n_out * 4), DB_FLOOR, np.float32)
            x[:, : L.shape[1]] = L
            x = torch.from_numpy((x - norm["offset_db"]) / norm["scale_db"])[None, None]
            P = torch.sigmoid(net(x))[0].numpy()[:, :n_out]
            lab = np.repeat(smooth(P, rate=25.0, options=options), 4)
            for k, track in enumerate(OUTPUTS):
                ref = f[track]
                est = np.zeros(len(ref), bool)
                m = min(len(ref), len(lab))
                est[:m] = (lab[:m] >> k) & 1 == 1
                c = counts.setdefault((f["condition"], track), np.zeros(3))
                c += [np.sum(est & ref), np.sum(est), np.sum(ref)]
    out = {}
    for (cond, track), (tp, ne, nr) in sorted(counts.items()):
        out[f"{cond}_{track}_f"] = round(float(1.0 if ne + nr == 0 else 2 * tp / (ne + nr)), 4)
    conds = sorted({c for c, _ in counts})
    out["files_f"] = round(float(np.mean([[out[f"{c}_{t}_f"] for t in OUTPUTS] for c in conds])), 4)
    return out


def evaluate_net(net, split: dict, norm: dict) -> dict:
    """Frame F (10 ms frames, threshold 0.5, no smoothing) for speech and music on a split."""
    import torch

    net.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(split["logmel"]), 64):
            x = (split["logmel"][i : i + 64].astype(np.float32) - norm["offset_db"]) / norm["scale_db"]
            p = torch.sigmoid(net(torch.from_numpy(x)[:, None])).numpy()
            preds.append(np.repeat(p, 4, axis=2))
    P = np.concatenate(preds)[:, :, : split["speech"].shape[1]] > 0.5
    f_s = frame_f1(P[:, 0], split["speech"].astype(bool))
    f_m = frame_f1(P[:, 1], split["music"].astype(bool))
    return {"speech_f": round(f_s, 4), "music_f": round(f_m, 4), "mean_f": round((f_s + f_m) / 2, 4)}


def fold_weights(net) -> dict:
    """Conv weights with batch norm folded in, as float32 numpy arrays named as in :func:`layer_list`."""
    out = {}
    pairs = [(f"c{i}", c, b) for i, (c, b) in enumerate(zip(net.convs, net.bn2, strict=True))]
    pairs += [(f"t{i}", c, b) for i, (c, b) in enumerate(zip(net.tconvs, net.bn1, strict=True))]
    for name, conv, bn in pairs:
        scale = (bn.weight / (bn.running_var + bn.eps).sqrt()).detach().numpy()
        w = conv.weight.detach().numpy() * scale.reshape(-1, *([1] * (conv.weight.ndim - 1)))
        b = (conv.bias.detach().numpy() - bn.running_mean.numpy()) * scale + bn.bias.detach().numpy()
        out[name + ".weight"], out[name + ".bias"] = w.astype(np.float32), b.astype(np.float32)
    out["out.weight"] = net.out.weight.detach().numpy().astype(np.float32)
    out["out.bias"] = net.out.bias.detach().numpy().astype(np.float32)
    return out


def write_bundle(net, out_dir: str | Path, opts: TrainOptions, norm: dict, training: dict) -> Path:
    """Write ``config.json`` and ``weights.npz`` of a trained network."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / WEIGHTS_FILE, suffix=".npz") as tmp:
        np.savez(tmp, **fold_weights(net))
    config = {
        "format": FORMAT,
        "format_version": 1,
        "model_id": weights_id(out / WEIGHTS_FILE),
        "frontend": {**FRONTEND, **norm, "floor_db": DB_FLOOR},
        "outputs": list(OUTPUTS),
        "output_hop": 4,
        "context": context_frames(opts),
        "layers": layer_list(opts),
        "training": {"options": asdict(opts), **training},
    }
    atomic_write_text(out / CONFIG_FILE, json.dumps(config, indent=1))
    return out


# ----------------------------------------------------------------------------------------------- classic baseline
def classic_matrix(split: dict, *, max_clips: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Classic features (frames, 11) and labels (frames, 2) of a split's clips."""
    feats, labs = [], []
    for i, a in enumerate(split["audio"][:max_clips]):
        F = classic_features(a.astype(np.float32) / 32767.0, sr=ANALYSIS_SR)
        n = min(F.shape[1], split["speech"].shape[1])
        feats.append(F[:, :n].T)
        labs.append(np.stack([split["speech"][i, :n], split["music"][i, :n]], axis=1))
    return np.concatenate(feats), np.concatenate(labs)


def train_classic(data_dir: str | Path, *, split: str = "train", max_frames: int = 300_000, seed: int = 0) -> list:
    """Fit the classic baseline: one gradient-boosted tree classifier per output on the classic features.

    Returns a list of two fitted scikit-learn classifiers (speech, music); scikit-learn is needed only here and in
    the benchmark, not at run time.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    cache = Path(data_dir) / split / "classic.npz"
    if cache.exists():
        with np.load(cache) as d:
            X, Y = d["X"], d["Y"]
    else:
        X, Y = classic_matrix(load_split(Path(data_dir), split))
        with atomic_path(cache, suffix=".npz") as tmp:
            np.savez(tmp, X=X, Y=Y)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(X), size=min(max_frames, len(X)), replace=False)
    models = []
    for k in range(len(OUTPUTS)):
        clf = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=seed)
        clf.fit(X[idx], Y[idx, k])
        models.append(clf)
    return models


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Train the speech/music segmenter bundle.")
    ap.add_argument("--data", default="data/segment")
    ap.add_argument("--out", default="data/segment/bundle")
    ap.add_argument("--epochs", type=int, default=TrainOptions.epochs)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mel-shift", type=float, default=TrainOptions.mel_shift, help="augmentation (mel bands)")
    ap.add_argument("--train-split", default=TrainOptions.train_split, help="folder of the training shards")
    ap.add_argument("--crop-frames", type=int, default=TrainOptions.crop_frames)
    ap.add_argument("--eq-db", type=float, default=TrainOptions.eq_db, help="augmentation: random equaliser (dB)")
    ap.add_argument("--freq-mask", type=int, default=TrainOptions.freq_mask, help="augmentation: masked bands")
    ap.add_argument("--epoch-steps", type=int, default=0, help="batches per epoch (0: every clip once)")
    ap.add_argument("--patience", type=int, default=TrainOptions.patience, help="epochs without improvement")
    ap.add_argument("--init", default=None, help="a run's output directory: start from its best epoch")
    ap.add_argument("--lr", type=float, default=TrainOptions.lr, help="peak learning rate")
    ap.add_argument("--finish", action="store_true", help="write the bundle of the checkpoint's best epoch and stop")
    ap.add_argument("--last", action="store_true", help="write the last epoch, not the best one")
    ap.add_argument("--channels", default="16,32,32", help="channels of the three 2-D convolutions")
    ap.add_argument("--hidden", type=int, default=TrainOptions.hidden, help="channels of the 1-D convolutions")
    ap.add_argument("--dilations", default="1,2,4,8", help="dilations of the 1-D convolutions (context)")
    ap.add_argument("--music-negative-weight", type=float, default=1.0, help="loss weight: speech output on music")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ap_opts = {"epochs": args.epochs, "threads": args.threads, "mel_shift": args.mel_shift, "eq_db": args.eq_db}
    ap_opts.update(freq_mask=args.freq_mask, patience=args.patience, hidden=args.hidden, epoch_steps=args.epoch_steps)
    ap_opts["lr"] = args.lr
    ap_opts["channels"] = tuple(int(c) for c in args.channels.split(","))
    ap_opts["dilations"] = tuple(int(d) for d in args.dilations.split(","))
    ap_opts["music_negative_weight"] = args.music_negative_weight
    opts = TrainOptions(**ap_opts, train_split=args.train_split, crop_frames=args.crop_frames)
    scores = train(args.data, args.out, opts, finish=args.finish, init=args.init, last=args.last)
    log.info("%s validation: %s", "last" if args.last else "best", scores)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
