"""The family heads of the tagger: YAMNet window features of the tags clips (cached), one logistic regression
per instrument family, and the choice of its strength and fusion weight on the validation clips; the musicnn head
the same way on musicnn's MagnaTagATune features (:func:`build_musicnn_head`).

    python -m mirsearch.training.tagger --data data/tags --yamnet-head BUNDLE --head-c 0.001 --head-weights 0.7
    python -c "from mirsearch.training.tag_head import build_musicnn_head as b; \\
        b('data/tags', 'src/mirsearch/models/bundles/tagger/musicnn_head.npz')"
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_path

log = logging.getLogger(__name__)


def yamnet_windows(data: str | Path, records: list[dict], *, bundle=None, patch_hop: int = 96) -> list[tuple]:
    """Per clip ``(F (T, 2048) YAMNet window features, P (T, K) CNN patch probabilities, Q (T, 10) YAMNet's
    zero-shot family scores)`` on the path of :func:`mirsearch.features.tag_features.analyse` (cached in
    ``<data>/features/``; Q from :func:`~mirsearch.features.tag_features.zero_shot_windows`)."""

    import soundfile as sf

    from mirsearch.describe.tag_vocabulary import FAMILIES
    from mirsearch.features.tag_features import (
        LEVEL_DBFS,
        analyse,
        levelled,
        window_features,
        yamnet_patches,
        zero_shot_windows,
    )
    from mirsearch.models.tagger import TaggerModel

    model = TaggerModel.load(bundle)
    clips = [r["clip"] for r in records]
    key = hashlib.sha1(json.dumps([model.config["model_id"], patch_hop, clips, LEVEL_DBFS, "zero-shot"]).encode())
    path = Path(data) / "features" / f"yamnet-windows-{key.hexdigest()[:12]}.npz"
    if path.is_file():
        with np.load(path) as z:
            return [(z[f"F{i}"], z[f"P{i}"], z[f"Q{i}"]) for i in range(len(records))]
    out = []
    for i, rec in enumerate(records):
        y, sr = sf.read(str(Path(data) / rec["audio"]), dtype="float32", always_2d=True)
        y = levelled(y.mean(axis=1), sr=sr)  # as analyse levels it for the CNN and for YAMNet
        a = analyse(y, sr, model=model, fuse=False)
        E, S, centres = yamnet_patches(y, sr, patch_hop=patch_hop)
        out.append((window_features(E, centres, a.times).astype(np.float16), a.patch_probs,
                    zero_shot_windows(S, centres, a.times, FAMILIES)))  # fmt: skip
        if i % 200 == 0:
            log.info("YAMNet windows %d / %d", i, len(records))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **{f"{k}{i}": a for i, row in enumerate(out) for k, a in zip("FPQ", row, strict=True)})
    return out


def family_regressions(X: np.ndarray, Y: np.ndarray, *, C: float) -> tuple:
    """Standardisation of features ``X (n, d)`` and one L2 logistic regression per column of labels ``Y (n, F)``
    (inverse strength ``C``) on the standardised features: ``(mean (d,), scale (d,), W (d, F), b (F,))``, float32."""
    from sklearn.linear_model import LogisticRegression

    X = np.asarray(X, np.float64)
    mean, scale = X.mean(axis=0), X.std(axis=0) + 1e-6
    Z = (X - mean) / scale
    fits = [LogisticRegression(C=C, max_iter=3000).fit(Z, Y[:, k]) for k in range(Y.shape[1])]
    W = np.stack([f.coef_[0] for f in fits], axis=1).astype(np.float32)
    b = np.array([f.intercept_[0] for f in fits], np.float32)
    return mean.astype(np.float32), scale.astype(np.float32), W, b


def fit_yamnet_head(F: np.ndarray, Y: np.ndarray, *, C: float, tagger_weight: float, patch_hop: int = 96):
    """A :class:`~mirsearch.features.tag_features.YamnetHead` for the ten families: standardised window features
    ``F (n, 2048)``, one L2 logistic regression per family (labels ``Y (n, 10)``, inverse strength ``C``)."""

    from mirsearch.describe.tag_vocabulary import FAMILIES
    from mirsearch.features.tag_features import YamnetHead

    mean, scale, W, b = family_regressions(F, Y, C=C)
    head_id = hashlib.sha1(W.tobytes() + b.tobytes() + np.float32(tagger_weight).tobytes()).hexdigest()[:16]
    return YamnetHead(tuple(FAMILIES), mean, scale, W, b, float(tagger_weight),
                      int(patch_hop), head_id)  # fmt: skip


def choose_yamnet_head(data: str | Path, *, bundle=None, Cs=(0.0003, 0.001, 0.003, 0.01),
                       weights=(0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)) -> tuple:  # fmt: skip
    """Fit heads on the train clips' windows (labels of the clip) for every ``C``; choose ``C`` and the fusion
    weight by the validation clips' ten-family macro ROC-AUC (patch probabilities fused, then the bundle's
    pooling). Returns ``(head, rows)``; rows hold every candidate's validation figure."""
    from sklearn.metrics import roc_auc_score

    from mirsearch.datasets.tags import label_matrix, load_manifest
    from mirsearch.describe.tag_vocabulary import FAMILIES, TAG_NAMES
    from mirsearch.models.tagger import TaggerModel

    model = TaggerModel.load(bundle)
    records = load_manifest(data)
    cols = [TAG_NAMES.index(f) for f in FAMILIES]
    Y = label_matrix(records)[:, cols]
    split = np.array([r["split"] for r in records])
    win = yamnet_windows(data, records, bundle=bundle)
    tr, va = np.flatnonzero(split == "train"), np.flatnonzero(split == "validation")
    F = np.concatenate([win[i][0] for i in tr]).astype(np.float32)
    Yw = np.concatenate([np.repeat(Y[i][None], len(win[i][0]), axis=0) for i in tr])

    def families_auc(S):  # macro ROC-AUC over the families with positives and negatives
        ok = [k for k in range(len(FAMILIES)) if 0 < Y[va, k].sum() < len(va)]
        return float(np.mean([roc_auc_score(Y[va, k], S[:, k]) for k in ok]))

    rows = [{"C": None, "tagger_weight": 1.0, "validation": families_auc(
        np.stack([model.pool(np.asarray(win[i][1], np.float32).T)[cols] for i in va]))}]  # fmt: skip
    best = (-1.0, None)
    for C in Cs:
        head = fit_yamnet_head(F, Yw, C=C, tagger_weight=1.0)
        Z = [head.logits(win[i][0].astype(np.float32)) for i in va]
        for w in weights:
            S = np.stack([_fused_clip(model, win[i][1], z, cols, w) for i, z in zip(va, Z, strict=True)])
            rows.append({"C": C, "tagger_weight": w, "validation": families_auc(S)})
            log.info("C=%g w=%.1f: validation ten-family ROC-AUC %.4f", C, w, rows[-1]["validation"])
            if rows[-1]["validation"] > best[0]:
                best = (rows[-1]["validation"], (C, w))
    C, w = best[1]
    return fit_yamnet_head(F, Yw, C=C, tagger_weight=w), rows


def fit_mil_head(bags: list, Y: np.ndarray, *, lam: float, tagger_weight: float, epochs: int = 150,
                 lr: float = 3e-3, batch_size: int = 128, patch_hop: int = 96, seed: int = 0):  # fmt: skip
    """A :class:`~mirsearch.features.tag_features.MilYamnetHead`: per-patch linear logits autopooled over each bag
    (list of ``(n_i, D)`` YAMNet patch embeddings, e.g. all patches of a clip) against the bag's labels ``Y (B, F)``;
    BCE plus ``lam * |W|^2``, Adam. Session 13: below the linear head on validation, not packaged."""
    import torch

    from mirsearch.describe.tag_vocabulary import FAMILIES
    from mirsearch.features.tag_features import MilYamnetHead

    allx = np.concatenate([np.asarray(b, np.float64) for b in bags])
    mean, scale = allx.mean(axis=0), allx.std(axis=0) + 1e-6
    n, D, F = max(len(b) for b in bags), allx.shape[1], Y.shape[1]
    X, M = torch.zeros(len(bags), n, D), torch.zeros(len(bags), n, dtype=torch.bool)
    for i, b in enumerate(bags):
        X[i, : len(b)] = torch.from_numpy(((np.asarray(b, np.float64) - mean) / scale).astype(np.float32))
        M[i, : len(b)] = True
    T = torch.as_tensor(np.asarray(Y, np.float32))
    torch.manual_seed(seed)
    lin, alpha = torch.nn.Linear(D, F), torch.nn.Parameter(torch.ones(F))
    opt = torch.optim.Adam([*lin.parameters(), alpha], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(bags), generator=gen).split(batch_size):
            z = lin(X[idx])
            w = torch.softmax((alpha * z).masked_fill(~M[idx, :, None], -1e9), dim=1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits((w * z).sum(1), T[idx])
            loss = loss + lam * (lin.weight**2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    W = lin.weight.detach().numpy().T.astype(np.float32)
    b, a = lin.bias.detach().numpy().astype(np.float32), alpha.detach().numpy().astype(np.float32)
    head_id = hashlib.sha1(W.tobytes() + b.tobytes() + a.tobytes() + np.float32(tagger_weight).tobytes()).hexdigest()
    tags = tuple(FAMILIES) if F == len(FAMILIES) else tuple(f"tag{k}" for k in range(F))
    return MilYamnetHead(tags, mean.astype(np.float32), scale.astype(np.float32), W, b, a, float(tagger_weight),
                         int(patch_hop), head_id[:16])  # fmt: skip


def musicnn_windows(data: str | Path, records: list[dict], *, bundle=None, every: float | None = None) -> list:
    """Per clip the musicnn window rows ``(T, 1756)`` at the tagger's patches (the path of
    :func:`mirsearch.features.tag_features.analyse`: levelled signal; :func:`~mirsearch.features.musicnn_tags.
    musicnn_rows` with one patch per ``every`` seconds, default the library's
    :data:`~mirsearch.features.musicnn_tags.EVERY_SECONDS`, and :func:`~mirsearch.features.musicnn_tags.window_rows`),
    cached one file per clip in ``<data>/features/musicnn-mtt-every<every>/`` (rows float16, patch centres and the
    tagger's patch times)."""
    import soundfile as sf

    from mirsearch.features.musicnn_tags import EVERY_SECONDS, _musicnn, musicnn_rows, window_rows
    from mirsearch.features.tag_features import analyse, levelled
    from mirsearch.models.tagger import TaggerModel

    model = TaggerModel.load(bundle)
    every = EVERY_SECONDS if every is None else float(every)
    folder = Path(data) / "features" / f"musicnn-mtt-every{every:g}"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, rec in enumerate(records):
        f = folder / f"{rec['clip']}.npz"
        if not f.is_file():
            if _musicnn() is None:
                raise RuntimeError("musicnn_windows: the musicnn wheel is not installed")
            y, sr = sf.read(str(Path(data) / rec["audio"]), dtype="float32", always_2d=True)
            y = levelled(y.mean(axis=1), sr=sr)
            a = analyse(y, sr, model=model, fuse=False)
            M, c = musicnn_rows(y, sr, every=every)
            with atomic_path(f) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, M=M.astype(np.float16), c=c, times=a.times)
            if i % 200 == 0:
                log.info("musicnn windows %d / %d", i, len(records))
        with np.load(f) as z:
            out.append(window_rows(z["M"], z["c"], z["times"]))
    return out


def fit_musicnn_head(M: np.ndarray, Y: np.ndarray, *, C: float, head_weight: float, zero_shot_weight: float):
    """A :class:`~mirsearch.features.musicnn_tags.MusicnnHead` for the ten families: standardised musicnn window rows
    ``M (n, 1756)``, one L2 logistic regression per family (labels ``Y (n, 10)``, inverse strength ``C``); the
    fusion weights ``u`` (``head_weight``) and ``v`` (``zero_shot_weight``).

    Session 20 (``benchmarks/bench_tags_musicnn.py``): ``C`` = 0.03, ``u`` = 0.2, ``v`` = 0.2."""
    from mirsearch.describe.tag_vocabulary import FAMILIES
    from mirsearch.features.musicnn_tags import MusicnnHead

    mean, scale, W, b = family_regressions(M, Y, C=C)
    key = W.tobytes() + b.tobytes() + np.float32([head_weight, zero_shot_weight]).tobytes()
    return MusicnnHead(tuple(FAMILIES), mean, scale, W, b, float(head_weight),
                       float(zero_shot_weight), hashlib.sha1(key).hexdigest()[:16])  # fmt: skip


def build_musicnn_head(data: str | Path, out: str | Path, *, bundle=None, C: float = 0.03, head_weight: float = 0.2,
                       zero_shot_weight: float = 0.2, every: float = 3.0):  # fmt: skip
    """Fit the musicnn head on the train clips' windows of ``data`` (labels of the clip; musicnn rows of one patch per
    ``every`` seconds: 3, every patch of the grid) and save it at ``out`` (``<bundle>/musicnn_head.npz``). The shipped
    head (session 20) was fitted on every grid patch plus one aligned to the clip's end, a layout since removed for
    its cost; ``every=3`` differs from it only by that last patch."""
    from mirsearch.datasets.tags import label_matrix, load_manifest
    from mirsearch.describe.tag_vocabulary import FAMILIES, TAG_NAMES

    records = [r for r in load_manifest(data) if r["split"] == "train"]
    Y = label_matrix(records)[:, [TAG_NAMES.index(f) for f in FAMILIES]]
    win = musicnn_windows(data, records, bundle=bundle, every=every)
    M = np.concatenate(win)
    Yw = np.concatenate([np.repeat(Y[i][None], len(w), axis=0) for i, w in enumerate(win)])
    head = fit_musicnn_head(M, Yw, C=C, head_weight=head_weight, zero_shot_weight=zero_shot_weight)
    head.save(out)
    log.info("musicnn head %s: %d windows of %d train clips -> %s", head.head_id, len(M), len(records), out)
    return head


def _fused_clip(model, P: np.ndarray, z: np.ndarray, cols: list, w: float, *, zero_shot=None,
                zero_shot_weight: float = 0.0, extra=None) -> np.ndarray:  # fmt: skip
    """The families' clip probabilities (F,) of CNN patch probabilities ``P (T, K)`` fused with head logits
    ``z (T, F)``, (optional) zero-shot scores ``(T, F)`` and (optional) further logit terms ``extra (T, F)`` (the
    musicnn terms) (as :func:`mirsearch.features.tag_features.fuse_families`, then the bundle's pooling)."""
    from mirsearch.features.tag_features import fuse_logits

    P = np.array(P, np.float32)
    P[:, cols] = fuse_logits(P[:, cols], z, w, zero_shot=zero_shot, zero_shot_weight=zero_shot_weight, extra=extra)
    return model.pool(P.T)[cols]


__all__ = ["build_musicnn_head", "choose_yamnet_head", "fit_mil_head", "fit_musicnn_head", "fit_yamnet_head",
           "musicnn_windows", "yamnet_windows"]  # fmt: skip
