"""Training of the auto-tagger: a small CNN on log-mel, multi-label BCE, pooling over time, an embedding for few shots.

    python -m mirsearch.training.tagger --data data/tags --run data/tags/runs/autopool --pooling autopool \\
        --epochs 20 --bundle src/mirsearch/models/bundles/tagger

The data are the clips of ``mirsearch dataset build --preset tags`` (:mod:`mirsearch.datasets.tags`). Log-mel
(:data:`FRONTEND`) is computed once and cached in ``<data>/features/``. Each step takes two random crops of every
clip of a batch:

- binary cross-entropy per tag on the pooled probability of each crop (``max``, ``mean`` or ``autopool`` with one
  learned alpha per tag over the frame probabilities);
- a prototypical-network episode on the embeddings (mean over time, L2-normalised): the crops A of the batch are
  the prototypes of as many classes (one shot each), the crops B the queries, softmax over negative squared
  distances with a learned scale.

With ``--stems`` (the folder of ``mirsearch dataset build --preset tag-stems``) every step also trains on mixtures
of single-instrument stems and on clips with a stem added (:mod:`mirsearch.training.tag_mixing`; masked BCE: only the
tags a mixture knows; ``--stem-colour``: every stem recoloured on its own before mixing; ``--sizes``: 1-5 families).
Augmentation of every crop: gain, tilt, a smooth random equaliser, a low-pass roll-off, a room tail (``--reverb``)
and a mel shift (:func:`~mirsearch.training.tag_mixing.augment`). ``--heldout-stems``: validation stems of a
SoundFont kept out of training, whose mixtures join the selection score. ``--res-blocks`` adds residual blocks that
start as the identity, so ``--init`` can start a wider network from a trained run. The epoch with the best
validation score (mean of the clips' macro ROC-AUC, their ten-family macro ROC-AUC and, with stems, the ten-family
ROC-AUC of fixed mixtures of validation stems, per stems folder) is kept and exported to ONNX
(:mod:`mirsearch.models.tagger`). Training resumes from ``<run>/last.pt`` and logs to ``<run>/log.jsonl``.
``--freq-pool max+flat`` gives the embedding the max over frequency beside every frequency row, so it knows the
register (session 24: better on a held-out font and on validation, level on the test font; off). ``--sample-stems
DIR`` (repeatable): more stems whose train stems join the mixtures, e.g. real instrument recordings
(:mod:`mirsearch.datasets.sample_stems`); they never enter the selection score. ``--import-bundle BUNDLE``: the
weights of an ONNX bundle (the packaged one) as ``<run>/best.pt`` for ``--init``
(:mod:`mirsearch.training.tagger_import`).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_save_npy, atomic_write_text

log = logging.getLogger(__name__)

#: the tagger's log-mel front end (:class:`mirsearch.features.logmel.LogMelConfig` fields)
FRONTEND = {
    "sr": 16000, "n_fft": 1024, "win_length": 1024, "hop_length": 320, "n_mels": 96, "mel_scale": "slaney",
    "fmin": 30.0, "fmax": 8000.0, "power": 1.0, "log_offset": 0.001, "center": True, "norm": None,
    "patch_frames": 150, "patch_hop": 75,
}  # fmt: skip
POOLINGS = ("max", "mean", "autopool")
#: how the top conv's frequency rows reach the embedding (:attr:`NetOptions.freq_pool`)
FREQ_POOLS = ("max", "max+flat")


@dataclass(frozen=True)
class NetOptions:
    """Shape of the tagger network."""

    channels: tuple = (12, 24, 64, 128)
    """channels of the four conv blocks (each halves frequency and time)"""
    top: int = 160
    """channels of the last conv layer (before the max over frequency)"""
    embedding_dim: int = 128
    """size of the embedding that few-shot tags and the similarity search reuse"""
    dropout: float = 0.2
    """dropout before the classifier"""
    res_blocks: int = 0
    """residual blocks (two 3x3 convs of ``top`` channels) after the top conv; they start as the identity, so a
    trained run can be widened and fine-tuned (``--init``)"""
    freq_pool: str = "max"
    """how the top conv's frequency axis becomes the embedding: ``max`` (over frequency, shift invariant) or
    ``max+flat`` (the max beside every frequency row, so the embedding also knows the register)"""


@dataclass(frozen=True)
class TrainOptions:
    """Hyper-parameters of :func:`train`."""

    pooling: str = "autopool"
    """pooling over time of the frame probabilities: max, mean or autopool"""
    epochs: int = 20
    """passes over the training clips"""
    batch_size: int = 24
    """clips per step (two crops each)"""
    lr: float = 2e-3
    """peak learning rate of the one-cycle schedule (AdamW)"""
    crop_frames: int = 256
    """log-mel frames per crop (5.1 s)"""
    net: NetOptions = field(default_factory=NetOptions)
    proto_weight: float = 0.5
    """weight of the prototypical episode loss"""
    seed: int = 0
    """seed of the initialisation, the crops and the augmentation"""
    threads: int = 1
    """torch threads"""
    stems: str | None = None
    """folder of ``mirsearch dataset build --preset tag-stems``: mixtures of its stems join every batch"""
    mixes: int = 32
    """stem mixtures per step (with ``stems``)"""
    clip_mixes: int = 16
    """ensemble clips with a stem added per step (with ``stems``)"""
    eq: bool = True
    """random equaliser and low-pass roll-off in the augmentation"""
    max_shift: int = 2
    """largest mel-band shift of the augmentation"""
    reverb: float = 0.0
    """probability of a room tail on a whole crop (:func:`~mirsearch.training.tag_mixing.smear`)"""
    sizes: tuple = (0.2, 0.3, 0.3, 0.2)
    """probabilities of 1, 2, 3, ... families in a stem mixture"""
    stem_colour: bool = False
    """each stem of a mixture recoloured on its own (equaliser, tilt, shift, room) before mixing"""
    heldout_stems: str | None = None
    """stems of the validation works in a SoundFont held out of training: their mixtures join the selection score"""
    stretch: float = 0.0
    """half of the stems and clip crops transposed by up to this many semitones (a SoundFont's sample stretching)"""
    dynamics: float = 0.0
    """strength of the loudness-contour augmentation of half of the stems (:func:`~.tag_mixing.dynamics`)"""
    train_fonts: tuple = ()
    """if given, only clips and stems of these SoundFonts (and stems of none) train; the validation clips and stems
    of the other fonts are scored apart (``heldout_clips``, ``heldout_font_mix``): a font held out of the run"""
    sample_stems: tuple = ()
    """more stem folders (e.g. :mod:`mirsearch.datasets.sample_stems`, real instrument recordings) whose train stems
    join the mixer's pool (never the selection score: runs with and without them are chosen on the same sets)"""

    @classmethod
    def from_json(cls, data: dict) -> TrainOptions:
        net = NetOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.get("net", {}).items()})
        return cls(**{**data, "net": net, "sizes": tuple(data.get("sizes", cls.sizes)),
                      "train_fonts": tuple(data.get("train_fonts", ())),
                      "sample_stems": tuple(data.get("sample_stems", ()))})  # fmt: skip


# ----------------------------------------------------------------------------------------------- features
def compute_features(root: Path, records: list[dict]) -> np.ndarray:
    """Log-mel of every clip (levelled as :func:`~mirsearch.features.tag_features.analyse` levels a signal),
    ``(n_clips, n_mels, n_frames)`` float16, cached by the list of clips."""
    import hashlib

    import soundfile as sf

    from mirsearch.features.logmel import LogMelConfig, log_mel
    from mirsearch.features.tag_features import LEVEL_DBFS, levelled

    key = hashlib.sha1(json.dumps([FRONTEND, [r["clip"] for r in records], LEVEL_DBFS]).encode()).hexdigest()[:12]
    path = root / "features" / f"logmel-{key}.npy"
    if path.is_file():
        return np.load(path, mmap_mode="r")
    config = LogMelConfig(**FRONTEND)
    out = None
    for i, rec in enumerate(records):
        y, sr = sf.read(str(root / rec["audio"]), dtype="float32", always_2d=True)
        L, _ = log_mel(levelled(y.mean(axis=1), sr=sr), sr=sr, config=config)  # as analyse levels a signal
        if out is None:
            out = np.zeros((len(records), L.shape[0], L.shape[1]), np.float16)
        n = min(L.shape[1], out.shape[2])
        out[i, :, :n] = L[:, :n]
        out[i, :, n:] = np.log(FRONTEND["log_offset"])
        if i % 500 == 0:
            log.info("log-mel %d / %d", i, len(records))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save_npy(path, out)
    return out


# ----------------------------------------------------------------------------------------------- network
def build_net(n_tags: int, net: NetOptions):
    """The tagger network: conv blocks (3x3, 2x2 max-pooling, batch norm, ReLU), a top conv, max over frequency,
    a 1x1 embedding and a 1x1 classifier per frame; returns ``(logits (B, K, T/16), embedding (B, D, T/16))``."""
    import torch
    from torch import nn

    if net.freq_pool not in FREQ_POOLS:
        raise ValueError(f"freq_pool must be one of {FREQ_POOLS}, not {net.freq_pool!r}")

    class Residual(nn.Module):
        def __init__(self, c: int):
            super().__init__()
            self.f = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                                   nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))  # fmt: skip
            nn.init.zeros_(self.f[4].weight)  # the identity at first (inputs are >= 0 after the ReLU)

        def forward(self, x):
            return torch.relu(x + self.f(x))

    class TaggerNet(nn.Module):
        def __init__(self):
            super().__init__()
            layers, c_in = [], 1
            for c in net.channels:
                # pooling before batch norm and ReLU: the same kind of network at a quarter of their cost
                layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(c), nn.ReLU()]
                c_in = c
            layers += [nn.Conv2d(c_in, net.top, 3, padding=1, bias=False), nn.BatchNorm2d(net.top), nn.ReLU()]
            layers += [Residual(net.top) for _ in range(net.res_blocks)]
            self.body = nn.Sequential(*layers)
            rows = FRONTEND["n_mels"] >> len(net.channels)  # frequency rows left after the poolings
            width = net.top * (1 + rows) if net.freq_pool == "max+flat" else net.top
            self.embed = nn.Conv1d(width, net.embedding_dim, 1)
            self.head = nn.Sequential(nn.ReLU(), nn.Dropout(net.dropout), nn.Conv1d(net.embedding_dim, n_tags, 1))
            self.alpha = nn.Parameter(torch.zeros(n_tags))  # autopool
            self.scale = nn.Parameter(torch.tensor(10.0))  # prototypical episodes

        def forward(self, x):
            b = self.body(x)
            h = b.amax(dim=2)
            if net.freq_pool == "max+flat":
                h = torch.cat([h, b.flatten(1, 2)], dim=1)
            e = self.embed(h)
            return self.head(e), e

    return TaggerNet()


def widened(start: dict, target: dict) -> dict:
    """``start``'s weights for a network whose embedding reads more rows (``freq_pool="max+flat"`` from a ``max``
    run): the new input columns of the embedding start at zero, so the network starts as ``start``."""
    import torch

    out = dict(start)
    w, t = start.get("embed.weight"), target.get("embed.weight")
    if w is not None and t is not None and w.shape[1] < t.shape[1]:
        out["embed.weight"] = torch.cat([w, w.new_zeros(w.shape[0], t.shape[1] - w.shape[1], *w.shape[2:])], dim=1)
    return out


def pooled(logits, alpha, method: str):
    """Clip probabilities ``(B, K)`` from frame logits ``(B, K, T)``."""
    import torch

    p = torch.sigmoid(logits)
    if method == "max":
        return p.amax(dim=2)
    if method == "mean":
        return p.mean(dim=2)
    w = torch.softmax(alpha[None, :, None] * p, dim=2)
    return (w * p).sum(dim=2)


def proto_loss(ea, eb, scale):
    """One-shot prototypical episode: crops A are the prototypes, crops B the queries (same order)."""
    import torch
    import torch.nn.functional as F

    a = F.normalize(ea.mean(dim=2), dim=1)
    b = F.normalize(eb.mean(dim=2), dim=1)
    d = torch.cdist(b, a) ** 2
    return F.cross_entropy(-scale * d, torch.arange(len(a)))


# ----------------------------------------------------------------------------------------------- training
def _crops(X: np.ndarray, idx: np.ndarray, rng, crop: int) -> np.ndarray:
    """Random raw crops ``(len(idx), n_mels, crop)`` of the clips ``idx``."""
    from mirsearch.training.tag_mixing import random_crop

    return np.stack([random_crop(X, int(i), crop, rng) for i in idx])


def _prepare(x: np.ndarray, rng, norm: tuple, opts: TrainOptions) -> np.ndarray:
    """Augmented and standardised network input ``(B, 1, n_mels, T)`` from raw crops ``(B, n_mels, T)``."""
    from mirsearch.training.tag_mixing import augment, stretch

    mean, std = norm
    if opts.stretch:
        x = [stretch(c, float(rng.uniform(-opts.stretch, opts.stretch)), band_hz=_band_hz()) if rng.random() < 0.5
             else c for c in x]  # fmt: skip
    out = np.stack([(augment(c, rng, eq=opts.eq, max_shift=opts.max_shift, reverb=opts.reverb) - mean) / std
                    for c in x])  # fmt: skip
    return out[:, None].astype(np.float32)


def evaluate(net, X: np.ndarray, Y: np.ndarray, norm: tuple, method: str, *, batch: int = 32) -> dict:
    """Macro ROC-AUC (tags with both classes) of whole clips, and the clip probabilities."""
    import torch
    from sklearn.metrics import roc_auc_score

    mean, std = norm
    net.eval()
    probs = []
    with torch.no_grad():
        for a in range(0, len(X), batch):
            x = (np.asarray(X[a : a + batch], np.float32) - mean) / std
            logits, _ = net(torch.from_numpy(x[:, None]))
            probs.append(pooled(logits, net.alpha, method).numpy())
    P = np.concatenate(probs)
    aucs = [roc_auc_score(Y[:, k], P[:, k]) for k in range(Y.shape[1]) if 0 < Y[:, k].sum() < len(Y)]
    return {"macro_auc": float(np.mean(aucs)), "probs": P}


def _band_hz() -> np.ndarray:
    from mirsearch.training.tag_mixing import band_centres

    return band_centres(FRONTEND["n_mels"], fmin=FRONTEND["fmin"], fmax=FRONTEND["fmax"])


def _in_fonts(rec: dict, fonts: tuple, held_out: bool = False) -> bool:
    """Whether a record is of the fonts ``fonts`` (all when empty; records of no font count as in), or with
    ``held_out`` of a font outside them."""
    if held_out:
        return bool(fonts) and rec.get("soundfont") is not None and rec["soundfont"] not in fonts
    return not fonts or rec.get("soundfont") is None or rec["soundfont"] in fonts


def _split(records, X, Y, name, fonts: tuple = (), held_out: bool = False):
    idx = np.array([i for i, r in enumerate(records) if r["split"] == name and _in_fonts(r, fonts, held_out)], int)
    return np.asarray(X[idx]) if len(idx) else X[:0], Y[idx]


def _val_mixtures(root: Path, seed: int, *, sizes: tuple = (0.2, 0.3, 0.3, 0.2), fonts: tuple = (),
                  held_out: bool = False):  # fmt: skip
    """``(X, Y)`` of fixed mixtures of the validation stems of ``root`` (the same in every epoch and run), of the
    fonts ``fonts`` (or outside them, ``held_out``; see :func:`_in_fonts`)."""
    from mirsearch.datasets.tags import label_matrix, load_manifest
    from mirsearch.training.tag_mixing import StemMixer

    records = load_manifest(root)
    S, Ys = compute_features(root, records), label_matrix(records)
    va = np.array([i for i, r in enumerate(records) if r["split"] == "validation" and _in_fonts(r, fonts, held_out)])
    val = StemMixer(np.asarray(S[va]), Ys[va], sizes=sizes)
    xv, yv, _ = val.stems_only(min(400, 2 * len(va)), S.shape[2], np.random.default_rng(seed + 12345))
    return xv, yv


def _stem_sets(opts: TrainOptions, seed: int):
    """``(StemMixer of the train stems, {name: validation mixtures (X, Y)})`` of ``opts.stems`` (``mix``) and
    ``opts.heldout_stems`` (``heldout_mix``), or ``(None, {})``."""
    if opts.stems is None:
        return None, {}
    from mirsearch.datasets.tags import label_matrix, load_manifest
    from mirsearch.training.tag_mixing import StemMixer

    root = Path(opts.stems)
    records = load_manifest(root)
    S, Ys = compute_features(root, records), label_matrix(records)
    tr = np.array([i for i, r in enumerate(records) if r["split"] == "train" and _in_fonts(r, opts.train_fonts)])
    S_tr, Y_tr = np.asarray(S[tr]), Ys[tr]
    for extra in opts.sample_stems:  # their train stems join the pool; their validation stems stay out of the score
        more = load_manifest(extra)
        Se, Ye = compute_features(Path(extra), more), label_matrix(more)
        te = np.array([i for i, r in enumerate(more) if r["split"] == "train"], int)
        n = min(S_tr.shape[2], Se.shape[2])
        S_tr, Y_tr = np.concatenate([S_tr[:, :, :n], np.asarray(Se[te])[:, :, :n]]), np.concatenate([Y_tr, Ye[te]])
        log.info("sample stems %s: %d train stems added", extra, len(te))
    mixer = StemMixer(S_tr, Y_tr, sizes=opts.sizes, stem_colour=opts.stem_colour,
                      stem_stretch=opts.stretch, stem_dynamics=opts.dynamics, band_hz=_band_hz())  # fmt: skip
    vmix = {"mix": _val_mixtures(root, seed, fonts=opts.train_fonts)}
    if opts.train_fonts and any(r["split"] == "validation" and _in_fonts(r, opts.train_fonts, True) for r in records):
        vmix["heldout_font_mix"] = _val_mixtures(root, seed, fonts=opts.train_fonts, held_out=True)
    if opts.heldout_stems:
        vmix["heldout_mix"] = _val_mixtures(Path(opts.heldout_stems), seed)
    log.info("stems: %d train; validation mixtures %s", len(S_tr), {k: len(v[0]) for k, v in vmix.items()})
    return mixer, vmix


def _score(net, Xva, Yva, vmix, norm, method: str) -> dict:
    """Validation macro ROC-AUC of the clips (all tags, families) and of the stem mixtures ``vmix`` (families, per
    set); ``score`` is their mean (the selection criterion)."""
    from sklearn.metrics import roc_auc_score

    from mirsearch.describe.tag_vocabulary import FAMILIES, TAG_NAMES

    cols = [TAG_NAMES.index(f) for f in FAMILIES]

    def fam(Y, P):
        return float(np.mean([roc_auc_score(Y[:, k], P[:, k]) for k in cols if 0 < Y[:, k].sum() < len(Y)]))

    result = evaluate(net, Xva, Yva, norm, method)
    out = {"val_macro_auc": result["macro_auc"], "val_families_auc": fam(Yva, result["probs"])}
    for name, (xv, yv) in vmix.items():
        out[f"val_{name}_families_auc"] = fam(yv, evaluate(net, xv, yv, norm, method)["probs"])
    out["score"] = float(np.mean(list(out.values())))
    return {k: round(v, 4) for k, v in out.items()}


def _loss(net, batch: dict, opts: TrainOptions):
    """BCE of the clip crops A and B, masked BCE of the mixtures, the prototypical episode on A/B."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.concatenate(batch["x"]))
    logits, emb = net(x)
    p = pooled(logits, net.alpha, opts.pooling).clamp(1e-6, 1 - 1e-6)
    n = batch["n_clips"]
    y = torch.from_numpy(batch["y"])
    loss = F.binary_cross_entropy(p[:n], y) + F.binary_cross_entropy(p[n : 2 * n], y)
    if len(p) > 2 * n:
        w = torch.from_numpy(batch["w"])
        bce = F.binary_cross_entropy(p[2 * n :], torch.from_numpy(batch["ym"]), weight=w, reduction="sum")
        loss = loss + 2.0 * bce / w.sum().clamp(min=1.0)
    return loss + opts.proto_weight * proto_loss(emb[:n], emb[n : 2 * n], net.scale)


def _batch(Xtr, Ytr, idx, rng, norm, opts: TrainOptions, mixer) -> dict:
    """Network inputs of one step: crops A and B of the clips ``idx``, then the mixtures."""
    xs = [_prepare(_crops(Xtr, idx, rng, opts.crop_frames), rng, norm, opts) for _ in range(2)]
    batch = {"x": xs, "y": Ytr[idx], "n_clips": len(idx)}
    if mixer is not None:
        xm, ym, wm = mixer.stems_only(opts.mixes, opts.crop_frames, rng)
        xc, yc, wc = mixer.into_clips(Xtr, Ytr, idx[: opts.clip_mixes], opts.crop_frames, rng)
        batch["x"] += [_prepare(np.concatenate([xm, xc]), rng, norm, opts)]
        batch["ym"], batch["w"] = np.concatenate([ym, yc]), np.concatenate([wm, wc])
    return batch


def train(data: str | Path, run: str | Path, opts: TrainOptions = TrainOptions(), *, init: str | None = None) -> dict:
    """Train (or resume) a run; returns the best validation result. Writes ``<run>/best.pt`` and ``last.pt``.
    ``init``: a run whose best weights and input normalisation start this one (fine-tuning on more data)."""
    import torch

    from mirsearch.datasets.tags import label_matrix, load_manifest

    torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    data, run = Path(data), Path(run)
    run.mkdir(parents=True, exist_ok=True)
    records = load_manifest(data)
    X, Y = compute_features(data, records), label_matrix(records)
    Xtr, Ytr = _split(records, X, Y, "train", opts.train_fonts)
    Xva, Yva = _split(records, X, Y, "validation", opts.train_fonts)
    mixer, vmix = _stem_sets(opts, opts.seed)
    if opts.train_fonts:  # the validation clips of the other fonts, scored on the families like the mixtures
        vmix["heldout_clips"] = _split(records, X, Y, "validation", opts.train_fonts, held_out=True)
    mean = Xtr.astype(np.float32).mean(axis=(0, 2))[:, None]
    std = Xtr.astype(np.float32).std(axis=(0, 2))[:, None] + 1e-3
    norm = (mean, std)
    net = build_net(Y.shape[1], opts.net)
    if init is not None:
        start, norm, _, _ = load_checkpoint(init)
        missing, unexpected = net.load_state_dict(widened(start.state_dict(), net.state_dict()), strict=False)
        if unexpected or any(not k.startswith("body.") for k in missing):
            raise ValueError(f"--init {init}: weights do not fit (missing {missing}, unexpected {unexpected})")
        mean, std = norm
    optim = torch.optim.AdamW(net.parameters(), lr=opts.lr, weight_decay=1e-4)
    steps = max(1, len(Xtr) // opts.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, max_lr=opts.lr, total_steps=opts.epochs * steps)
    state = {"epoch": 0, "best": -1.0}
    if (run / "last.pt").is_file():
        ck = torch.load(run / "last.pt", weights_only=False)
        net.load_state_dict(ck["net"]), optim.load_state_dict(ck["optim"]), sched.load_state_dict(ck["sched"])
        state = ck["state"]
        log.info("resumed %s at epoch %d", run, state["epoch"])
    if init is not None and state["epoch"] == 0:  # where the run starts, on the same score
        entry = {"epoch": 0, **_score(net, Xva, Yva, vmix, norm, opts.pooling)}
        log.info("%s", entry)
        with open(run / "log.jsonl", "a") as fh:
            fh.write(json.dumps(entry) + "\n")
    rng = np.random.default_rng(opts.seed + state["epoch"])
    for epoch in range(state["epoch"], opts.epochs):
        net.train()
        t0, losses = time.time(), []
        order = rng.permutation(len(Xtr))
        for s in range(steps):
            idx = order[s * opts.batch_size : (s + 1) * opts.batch_size]
            loss = _loss(net, _batch(Xtr, Ytr, idx, rng, norm, opts, mixer), opts)
            optim.zero_grad()
            loss.backward()
            optim.step()
            sched.step()
            losses.append(float(loss.detach()))
        result = _score(net, Xva, Yva, vmix, norm, opts.pooling)
        state = {"epoch": epoch + 1, "best": max(state["best"], result["score"])}
        entry = {"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 4), **result,
                 "seconds": round(time.time() - t0, 1)}  # fmt: skip
        log.info("%s", entry)
        with open(run / "log.jsonl", "a") as fh:
            fh.write(json.dumps(entry) + "\n")
        if result["score"] >= state["best"]:
            torch.save({"net": net.state_dict(), "norm": [mean, std], "opts": asdict(opts), "epoch": epoch + 1,
                        "val_macro_auc": result["val_macro_auc"], "validation": result}, run / "best.pt")  # fmt: skip
        torch.save({"net": net.state_dict(), "optim": optim.state_dict(), "sched": sched.state_dict(),
                    "state": state}, run / "last.pt")  # fmt: skip
    return {"best_val_score": state["best"], "epochs": state["epoch"]}


def compare_pooling(data: str | Path, run: str | Path, *, steps: int = 400, seed: int = 0) -> dict[str, np.ndarray]:
    """Pooling comparison on a frozen body: the conv body of ``<run>/best.pt`` computes frame features of every clip
    once; for each pooling (max, mean, autopool) a fresh embedding + classifier head is trained on the train split
    (``steps`` Adam steps on whole clips). Returns the clip probabilities ``(n_clips, n_tags)`` of every clip of
    :func:`mirsearch.datasets.tags.load_manifest` per pooling (score them per split)."""
    import torch

    from mirsearch.datasets.tags import label_matrix, load_manifest

    torch.manual_seed(seed)
    data = Path(data)
    records = load_manifest(data)
    X, Y = compute_features(data, records), label_matrix(records)
    net, (mean, std), opts, _ = load_checkpoint(run)
    with torch.no_grad():
        H = torch.cat([net.body(torch.from_numpy((np.asarray(X[a : a + 32], np.float32) - mean) / std)[:, None])
                       .amax(dim=2) for a in range(0, len(X), 32)])  # fmt: skip
    tr = np.flatnonzero(np.array([r["split"] for r in records]) == "train")
    out = {}
    for method in POOLINGS:
        head = build_net(Y.shape[1], opts.net)
        optim = torch.optim.Adam([*head.embed.parameters(), *head.head.parameters(), head.alpha], lr=3e-3)
        rng = np.random.default_rng(seed)
        for _ in range(steps):
            idx = rng.choice(tr, size=min(64, len(tr)), replace=False)
            p = pooled(head.head(head.embed(H[idx])), head.alpha, method).clamp(1e-6, 1 - 1e-6)
            loss = torch.nn.functional.binary_cross_entropy(p, torch.from_numpy(Y[idx]))
            optim.zero_grad()
            loss.backward()
            optim.step()
        head.eval()
        with torch.no_grad():
            out[method] = pooled(head.head(head.embed(H)), head.alpha, method).numpy()
    return out


# ----------------------------------------------------------------------------------------------- bundle
def load_checkpoint(run: str | Path):
    """``(net, norm, opts, checkpoint)`` of ``<run>/best.pt`` in eval mode."""
    import torch

    from mirsearch.describe.tag_vocabulary import TAG_NAMES

    ck = torch.load(Path(run) / "best.pt", weights_only=False)
    opts = TrainOptions.from_json(ck["opts"])
    net = build_net(len(TAG_NAMES), opts.net)
    net.load_state_dict(ck["net"])
    net.eval()
    return net, (np.asarray(ck["norm"][0]), np.asarray(ck["norm"][1])), opts, ck


def write_bundle(run: str | Path, out_dir: str | Path) -> Path:
    """Export the best epoch of a run as a tagger bundle (ONNX + config.json)."""
    import torch

    from mirsearch.describe.tag_vocabulary import VOCABULARY
    from mirsearch.models import bundle_format
    from mirsearch.models.bundle import write_onnx_graph
    from mirsearch.models.tagger import FORMAT, FORMAT_VERSION, ONNX_FILE

    net, (mean, std), opts, ck = load_checkpoint(run)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    class _Export(torch.nn.Module):  # two outputs: logits and embeddings
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x)

    x = torch.zeros(1, 1, FRONTEND["n_mels"], 256)
    axes = {"hcqt": {0: "batch", 3: "frames"}, "logits": {0: "batch", 2: "out_frames"}}
    write_onnx_graph(_Export(net), x, out / ONNX_FILE, output="logits", dynamic_axes=axes)
    _name_second_output(out / ONNX_FILE)
    hop = 2 ** len(opts.net.channels)
    config = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "frontend": {**FRONTEND, "mean": [round(float(v), 5) for v in mean.ravel()],
                     "std": [round(float(v), 5) for v in std.ravel()]},
        "tags": [t._asdict() for t in VOCABULARY],
        "pooling": {"method": opts.pooling,
                    "alpha": [round(float(a), 5) for a in net.alpha.detach()] if opts.pooling == "autopool" else None},
        "frame_hop": hop, "context": (4 + 2 * opts.net.res_blocks) * hop, "embedding_dim": opts.net.embedding_dim,
        "patch_seconds": 3.2, "patch_hop_seconds": 1.6,
        "training": {"options": asdict(opts), "epoch": ck["epoch"], "val_macro_auc": round(ck["val_macro_auc"], 4),
                     "validation": ck.get("validation")},
    }  # fmt: skip
    config["model_id"] = bundle_format.content_id([out / ONNX_FILE], config, ["frontend", "tags", "pooling"])
    bundle_format.write_config(out, config)
    return out


def _name_second_output(path: Path) -> None:
    """Name the graph's second output ``embedding`` (the export helper names the first one only)."""
    import onnx

    from mirsearch._util import atomic_write_bytes

    model = onnx.load(str(path))
    old = model.graph.output[1].name
    for node in model.graph.node:
        node.input[:] = ["embedding" if o == old else o for o in node.input]
        node.output[:] = ["embedding" if o == old else o for o in node.output]
    model.graph.output[1].name = "embedding"
    atomic_write_bytes(path, model.SerializeToString())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mirsearch.training.tagger", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder of mirsearch dataset build --preset tags")
    p.add_argument("--run", default=None, help="run folder (checkpoints, log; resumed)")
    p.add_argument("--head-c", default="0.0003,0.001,0.003,0.01", help="YAMNet head: candidate inverse strengths")
    p.add_argument("--head-weights", default="0.3,0.4,0.5,0.6,0.7,0.8,0.9", help="YAMNet head: candidate CNN weights")
    p.add_argument(
        "--yamnet-head",
        default=None,
        metavar="BUNDLE",
        help="instead of training the CNN: fit and choose the YAMNet family head of BUNDLE (written there)",
    )
    p.add_argument("--pooling", choices=POOLINGS, default="autopool")
    p.add_argument("--seed", type=int, default=TrainOptions.seed, help="seed of initialisation and crops")
    p.add_argument("--epochs", type=int, default=TrainOptions.epochs)
    p.add_argument("--proto-weight", type=float, default=TrainOptions.proto_weight)
    p.add_argument("--crop-frames", type=int, default=TrainOptions.crop_frames)
    p.add_argument("--batch-size", type=int, default=TrainOptions.batch_size)
    p.add_argument("--lr", type=float, default=TrainOptions.lr)
    p.add_argument("--bundle", default=None, help="write the best epoch as a bundle to this folder")
    p.add_argument("--init", default=None, help="start from the best weights of this run (fine-tuning)")
    p.add_argument("--stems", default=None, help="folder of mirsearch dataset build --preset tag-stems (mixtures)")
    p.add_argument("--mixes", type=int, default=TrainOptions.mixes, help="stem mixtures per step")
    p.add_argument("--clip-mixes", type=int, default=TrainOptions.clip_mixes, help="clips + a stem per step")
    p.add_argument("--channels", default="12,24,64,128", help="channels of the four conv blocks")
    p.add_argument("--top", type=int, default=NetOptions.top, help="channels of the last conv layer")
    p.add_argument("--res-blocks", type=int, default=0, help="residual blocks after the top conv (start as identity)")
    p.add_argument(
        "--freq-pool",
        choices=FREQ_POOLS,
        default=NetOptions.freq_pool,
        help="frequency axis into the embedding: max, or max beside every row (register-aware)",
    )
    p.add_argument("--sizes", default="0.2,0.3,0.3,0.2", help="probabilities of 1, 2, ... families in a mixture")
    p.add_argument("--stem-colour", action="store_true", help="recolour each stem of a mixture on its own")
    p.add_argument("--reverb", type=float, default=0.0, help="probability of a room tail on a crop")
    p.add_argument("--heldout-stems", default=None, help="stems of a held-out SoundFont (validation mixtures)")
    p.add_argument("--stretch", type=float, default=0.0, help="transpose half of the stems and crops (semitones)")
    p.add_argument("--dynamics", type=float, default=0.0, help="loudness-contour augmentation of half of the stems")
    p.add_argument(
        "--train-fonts", default="", help="comma-separated SoundFont file names that train (others held out)"
    )
    p.add_argument(
        "--sample-stems",
        action="append",
        default=[],
        metavar="DIR",
        help="more stems whose train stems join the mixtures (repeatable; e.g. real instrument samples)",
    )
    p.add_argument(
        "--import-bundle",
        default=None,
        metavar="BUNDLE",
        help="instead of training: write BUNDLE's ONNX weights as <run>/best.pt (for --init)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.import_bundle:
        if not args.run:
            p.error("--run is required")
        from mirsearch.training.tagger_import import import_bundle_run

        print(import_bundle_run(args.import_bundle, args.run, data=args.data))
        return 0
    if args.yamnet_head:
        from mirsearch.features.tag_features import YAMNET_HEAD_FILE
        from mirsearch.training.tag_head import choose_yamnet_head

        head, rows = choose_yamnet_head(args.data, bundle=args.yamnet_head,
                                        Cs=tuple(float(v) for v in args.head_c.split(",")),
                                        weights=tuple(float(v) for v in args.head_weights.split(",")))  # fmt: skip
        head.save(Path(args.yamnet_head) / YAMNET_HEAD_FILE)
        best = max(rows, key=lambda r: r["validation"])
        print(json.dumps({"chosen": {**best, "head_id": head.head_id}, "rows": rows}, indent=1))
        return 0
    if not args.run:
        p.error("--run is required")
    net = NetOptions(
        channels=tuple(int(c) for c in args.channels.split(",")),
        top=args.top,
        res_blocks=args.res_blocks,
        freq_pool=args.freq_pool,
    )
    opts = TrainOptions(pooling=args.pooling, epochs=args.epochs, proto_weight=args.proto_weight, net=net,
                        crop_frames=args.crop_frames, batch_size=args.batch_size, lr=args.lr, stems=args.stems,
                        mixes=args.mixes, clip_mixes=args.clip_mixes, reverb=args.reverb,
                        sizes=tuple(float(v) for v in args.sizes.split(",")), stem_colour=args.stem_colour,
                        heldout_stems=args.heldout_stems, stretch=args.stretch, dynamics=args.dynamics,
                        train_fonts=tuple(f for f in args.train_fonts.split(",") if f),
                        sample_stems=tuple(args.sample_stems), seed=args.seed)  # fmt: skip
    result = train(args.data, args.run, opts, init=args.init)
    atomic_write_text(Path(args.run) / "result.json", json.dumps(result, indent=2) + "\n")
    if args.bundle:
        write_bundle(args.run, args.bundle)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
