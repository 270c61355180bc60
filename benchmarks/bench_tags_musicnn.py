"""musicnn's MagnaTagATune tagger as a signal for the ten instrument families (issue 19): measured on validation.

    nice -n 10 .venv/bin/python benchmarks/bench_tags_musicnn.py compute --set tags          # train + validation
    nice -n 10 .venv/bin/python benchmarks/bench_tags_musicnn.py compute --set sample-stems  # 400 mixtures
    nice -n 10 .venv/bin/python benchmarks/bench_tags_musicnn.py compute --set msg-stems     # 400 mixtures
    nice -n 10 .venv/bin/python benchmarks/bench_tags_musicnn.py evaluate --full-grid   # -> results/tags_musicnn.json
    nice -n 10 .venv/bin/python benchmarks/bench_tags_musicnn.py evaluate --full-grid --combo --out tags_musicnn_combo
    # the chosen candidate on two more sets (1,000 mixtures each; computed first with
    # compute --set sample-stems --mixtures 1000 --splits train,validation / compute --set msg-stems --mixtures 1000):
    nice -n 10 .venv/bin/python benchmarks/bench_tags_musicnn.py evaluate --combo --features all --joint "" \
        --sets "sample-stems,msg-stems,sample-stems:1000:train+validation,msg-stems:1000:validation" \
        --only "packaged + 0.2 zero-shot (max);add: u=0.2 all C=0.03;add + zero-shot: u=0.2 v=0.2 all C=0.03;\
musicnn zero-shot (max);musicnn head alone all C=0.03" --out tags_musicnn_chosen

musicnn (``MTT_musicnn``) rows per tagger patch as the product computes them
(:mod:`mirsearch.features.musicnn_tags`: non-overlapping 3-s patches of the levelled signal, the mean of the rows of
the patches centred in a tagger patch; cached as float16).

Rows (ten-family macro ROC-AUC, nine for the sample stems; the paired 95 % bootstrap interval of the difference to
the packaged fusion over the clips, 1,000 resamplings, ``benchmarks/tagger_tta.py: paired_bootstrap``):

- ``packaged``: the session-12 fusion, ``sigmoid(0.7 logit(p_cnn) + 0.3 z_yamnet)`` per tagger patch, then the
  bundle's pooling;
- ``musicnn zero-shot (max|noisy-or)``: per family the max (or noisy-or) of the sigmoid of its MTT tags
  (:data:`mirsearch.features.musicnn_tags.MTT_FAMILY_TAGS`; organ, bass and brass have none), max over the clip's
  windows (families without tags are left out of that row's macro);
- ``packaged + v zero-shot``: ``v * logit(q_musicnn)`` added to the fused logit (families without MTT tags: 0);
- ``musicnn head``: one logistic regression per family on standardised musicnn window features (``logits`` 50,
  ``pen`` 200 or ``all`` 1,756) of the train clips of ``data/tags`` (labels of the clip); ``replace``:
  ``w logit(p_cnn) + (1 - w) z_musicnn``; ``add``: the packaged fused logit ``+ u z_musicnn``; ``joint``: one head
  on the YAMNet window features and the musicnn ones together, ``w logit(p_cnn) + (1 - w) z_joint``;
- ``add + zero-shot`` (``--combo``): the packaged fused logit ``+ u z_musicnn + v logit(q_musicnn)``.

The first table shows, per group, the candidate best on the 150 validation clips of ``data/tags``; ``--full-grid``
scores every candidate on every set (``grid`` in the results). The stem sets are mixtures of 1-4 stems of distinct
families of the validation stems of ``data/sample_stems`` (real instrument samples, no model trained on them) and of
``data/tag_stems_msg`` (MuseScore General), as ``benchmarks/tagger_tta.py``; ``--sets NAME:MIXTURES:SPLIT+SPLIT``
names others. The test split is not read here. Caches (resumable, one file per clip): ``data/tags19mn/``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from mirsearch.describe.tag_vocabulary import FAMILIES, TAG_NAMES  # noqa: E402
from mirsearch.features.musicnn_tags import musicnn_rows, window_rows  # noqa: E402

from _common import print_table, write_results  # noqa: E402

log = logging.getLogger("bench_tags_musicnn")
CACHE = ROOT / "data" / "tags19mn"
#: column ranges of the cached musicnn rows
SLICES = {"logits": slice(0, 50), "pen": slice(50, 250), "all": slice(0, 1756)}


# ----------------------------------------------------------------------------------------------- features
def _levelled_file(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    from mirsearch.features.tag_features import levelled

    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return levelled(y.mean(axis=1), sr=sr), sr


def compute_tags(net) -> None:
    """musicnn rows and tagger patch times of the train and validation clips of ``data/tags``."""
    from mirsearch.datasets.tags import load_manifest
    from mirsearch.features.tag_features import analyse

    data = ROOT / "data" / "tags"
    folder = CACHE / "tags"
    folder.mkdir(parents=True, exist_ok=True)
    records = [r for r in load_manifest(data) if r["split"] in ("train", "validation")]
    t0 = time.time()
    for i, r in enumerate(records):
        f = folder / f"{r['clip']}.npz"
        if f.is_file():
            continue
        y, sr = _levelled_file(data / r["audio"])
        a = analyse(y, sr, fuse=False)
        M, c = musicnn_rows(y, sr, net=net)
        np.savez(f, M=M.astype(np.float16), c=c, times=a.times)
        if i % 100 == 0:
            log.info("tags: %d / %d, %.0f s", i, len(records), time.time() - t0)


def compute_mixtures(net, name: str, n_mix: int, splits: tuple[str, ...]) -> None:
    """Per mixture (``benchmarks/tagger_tta.py: stem_mixtures``, 16 kHz): CNN patch probabilities, YAMNet window
    features and zero-shot scores, musicnn rows and patch times."""
    from mirsearch.features.tag_features import (
        analyse,
        levelled,
        window_features,
        yamnet_head,
        yamnet_patches,
        zero_shot_windows,
    )
    from tagger_tta import SR, clip_set

    loaders, Y, fams = clip_set(name, n_mix, splits)
    folder = CACHE / f"{name}-mix{n_mix}-{'+'.join(splits)}"
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "labels.npz", Y=Y, fams=np.array(fams))
    head = yamnet_head()
    t0 = time.time()
    for i, load in enumerate(loaders):
        f = folder / f"{i:05d}.npz"
        if f.is_file():
            continue
        y = levelled(load(), sr=SR)
        a = analyse(y, SR, fuse=False)
        E, S, centres = yamnet_patches(y, SR, patch_hop=head.patch_hop)
        M, c = musicnn_rows(y, SR, net=net)
        F = window_features(E, centres, a.times).astype(np.float16)
        Q = zero_shot_windows(S, centres, a.times, FAMILIES)
        np.savez(f, P=a.patch_probs, F=F, Q=Q, M=M.astype(np.float16), c=c, times=a.times)
        if i % 100 == 0:
            log.info("%s: %d / %d, %.0f s", name, i, len(loaders), time.time() - t0)


# ----------------------------------------------------------------------------------------------- data for scoring
class Clips:
    """Per clip: CNN patch probabilities ``P (T, 33)``, YAMNet window features ``F (T, 2048)``, musicnn window rows
    ``M (T, 1756)``; labels ``Y (n, F)`` over ``fams``."""

    def __init__(self, P, F, M, Y, fams):
        self.P, self.F, self.M, self.Y, self.fams = P, F, M, np.asarray(Y, np.float32), list(fams)


def tags_clips() -> dict[str, Clips]:
    """Train and validation clips of ``data/tags`` (the YAMNet windows from the library's cache)."""
    from mirsearch.datasets.tags import label_matrix, load_manifest
    from mirsearch.training.tag_head import yamnet_windows

    data = ROOT / "data" / "tags"
    records = load_manifest(data)
    win = yamnet_windows(data, records)
    Y = label_matrix(records)[:, [TAG_NAMES.index(f) for f in FAMILIES]]
    out = {}
    for split in ("train", "validation"):
        idx = [i for i, r in enumerate(records) if r["split"] == split]
        P, F, M = [], [], []
        for i in idx:
            with np.load(CACHE / "tags" / f"{records[i]['clip']}.npz") as z:
                rows = window_rows(z["M"], z["c"], z["times"])
            if len(rows) != len(win[i][1]):
                raise SystemExit(f"{records[i]['clip']}: {len(rows)} musicnn windows, {len(win[i][1])} tagger patches")
            P.append(np.asarray(win[i][1], np.float32))
            F.append(np.asarray(win[i][0], np.float32))
            M.append(rows)
        out[split] = Clips(P, F, M, Y[idx], FAMILIES)
    return out


def mixture_clips(name: str, n_mix: int, splits: tuple[str, ...]) -> Clips:
    folder = CACHE / f"{name}-mix{n_mix}-{'+'.join(splits)}"
    with np.load(folder / "labels.npz") as z:
        Y, fams = z["Y"], [str(f) for f in z["fams"]]
    P, F, M = [], [], []
    for i in range(len(Y)):
        with np.load(folder / f"{i:05d}.npz") as z:
            P.append(z["P"])
            F.append(z["F"].astype(np.float32))
            M.append(window_rows(z["M"], z["c"], z["times"]))
    return Clips(P, F, M, Y, fams)


# ----------------------------------------------------------------------------------------------- scoring
def _logit(p):
    q = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def zero_shot_rows(M: np.ndarray, how: str = "max") -> np.ndarray:
    """Per window the families' MTT zero-shot scores ``(T, 10)`` (NaN for a family without MTT tags)."""
    from mirsearch.features.musicnn import MTT_LABELS
    from mirsearch.features.musicnn_tags import MTT_FAMILY_TAGS

    s = 1.0 / (1.0 + np.exp(-np.asarray(M, np.float64)[:, :50]))
    out = np.full((len(s), len(FAMILIES)), np.nan)
    for k, f in enumerate(FAMILIES):
        cols = [MTT_LABELS.index(t) for t in MTT_FAMILY_TAGS.get(f, ())]
        if cols:
            out[:, k] = s[:, cols].max(axis=1) if how == "max" else 1 - np.prod(1 - s[:, cols], axis=1)
    return out


def clip_scores(model, clips: Clips, fused_logit) -> np.ndarray:
    """Clip family probabilities ``(n, 10)``: per clip the windows' family logits ``fused_logit(i) (T, 10)`` through a
    sigmoid into the CNN's patch probabilities, then the bundle's pooling."""
    cols = [TAG_NAMES.index(f) for f in FAMILIES]
    out = []
    for i, P in enumerate(clips.P):
        P = np.array(P, np.float32)
        P[:, cols] = 1.0 / (1.0 + np.exp(-np.clip(fused_logit(i), -50, 50)))
        out.append(model.pool(P.T)[cols])
    return np.asarray(out)


def family_auc(clips: Clips, S: np.ndarray) -> float:
    """Macro ROC-AUC over the families of ``clips`` with positives and negatives (and a finite score)."""
    from sklearn.metrics import roc_auc_score

    vals = []
    for j, f in enumerate(clips.fams):
        k = FAMILIES.index(f)
        y, s = clips.Y[:, j], S[:, k]
        if 0 < y.sum() < len(y) and np.all(np.isfinite(s)):
            vals.append(roc_auc_score(y, s))
    return float(np.mean(vals))


def per_family(clips: Clips, S: np.ndarray) -> dict:
    from sklearn.metrics import roc_auc_score

    out = {}
    for j, f in enumerate(clips.fams):
        y, s = clips.Y[:, j], S[:, FAMILIES.index(f)]
        out[f] = round(float(roc_auc_score(y, s)), 4) if 0 < y.sum() < len(y) and np.all(np.isfinite(s)) else None
    return out


def interval(clips: Clips, S0: np.ndarray, S1: np.ndarray) -> str:
    from tagger_tta import paired_bootstrap

    k = [FAMILIES.index(f) for f in clips.fams]
    ok = [j for j, kk in enumerate(k) if np.all(np.isfinite(S1[:, kk]))]
    d = family_auc(clips, S1) - family_auc(clips, S0)
    lo, hi = paired_bootstrap(clips.Y[:, ok], S0[:, [k[j] for j in ok]], S1[:, [k[j] for j in ok]])
    return f"{d:+.4f} [{lo:+.4f}, {hi:+.4f}]"


def fit_head(X: np.ndarray, Y: np.ndarray, C: float):
    """Standardisation and one L2 logistic regression per family -> ``(mean, scale, W (d, 10), b (10,))``."""
    from sklearn.linear_model import LogisticRegression

    X = np.asarray(X, np.float64)
    mean, scale = X.mean(axis=0), X.std(axis=0) + 1e-6
    Z = (X - mean) / scale
    fits = [LogisticRegression(C=C, max_iter=3000).fit(Z, Y[:, k]) for k in range(Y.shape[1])]
    W = np.stack([f.coef_[0] for f in fits], axis=1)
    b = np.array([f.intercept_[0] for f in fits])
    return mean, scale, W, b


def head_logits(head, X) -> np.ndarray:
    mean, scale, W, b = head
    return ((np.asarray(X, np.float64) - mean) / scale) @ W + b


def evaluate(args) -> int:
    from mirsearch.features.tag_features import yamnet_head
    from mirsearch.models.tagger import TaggerModel

    model = TaggerModel.load()
    yhead = yamnet_head(model)
    w0 = yhead.tagger_weight
    cols = [TAG_NAMES.index(f) for f in FAMILIES]
    sets = tags_clips()
    train = sets.pop("train")
    sets = {"tags validation": sets["validation"]}
    for spec in args.sets.split(","):  # NAME or NAME:MIXTURES:SPLIT+SPLIT
        if spec:
            name, n_mix, splits = (spec.split(":") + [str(args.mixtures), "validation"])[:3]
            sets[spec] = mixture_clips(name, int(n_mix), tuple(splits.split("+")))
    Yw = np.concatenate([np.repeat(train.Y[i][None], len(train.P[i]), axis=0) for i in range(len(train.P))])

    # per set and clip: the packaged fused logit, the musicnn zero-shot rows (both kinds)
    base = {n: [w0 * _logit(c.P[i][:, cols]) + (1 - w0) * yhead.logits(c.F[i]) for i in range(len(c.P))]
            for n, c in sets.items()}  # fmt: skip
    zs = {n: {h: [zero_shot_rows(m, h) for m in c.M] for h in ("max", "noisy-or")} for n, c in sets.items()}
    cands: dict[str, dict] = {}  # name -> {"group", "params", "fn": set name -> clip scores}

    only = set(args.only.split(";")) if args.only else None

    def add(name, group, params, fn):
        if only is None or name in only or group in ("packaged", "reference"):
            cands[name] = {"group": group, "params": params, "fn": fn}

    add("packaged", "packaged", {}, lambda n: clip_scores(model, sets[n], lambda i: base[n][i]))
    add("CNN alone", "reference", {}, lambda n: np.stack([model.pool(p.T)[cols] for p in sets[n].P]))
    for h in ("max", "noisy-or"):
        add(f"musicnn zero-shot ({h})", "zero-shot alone", {"how": h},
            lambda n, h=h: np.stack([q.max(axis=0) for q in zs[n][h]]))  # fmt: skip
        for v in (0.1, 0.2, 0.3, 0.5):
            add(f"packaged + {v:g} zero-shot ({h})", "packaged + zero-shot", {"how": h, "v": v},
                lambda n, h=h, v=v: clip_scores(model, sets[n], lambda i: base[n][i] + v * np.nan_to_num(
                    _logit(zs[n][h][i]), nan=0.0)))  # fmt: skip
    t0 = time.time()
    Ms = {n: np.concatenate(c.M) for n, c in sets.items()}
    Mtr = np.concatenate(train.M)
    for feat in args.features.split(","):
        sl = SLICES[feat]
        for C in (0.001, 0.003, 0.01, 0.03):
            head = fit_head(Mtr[:, sl], Yw, C)
            Z = {n: np.split(head_logits(head, Ms[n][:, sl]), np.cumsum([len(p) for p in c.P])[:-1])
                 for n, c in sets.items()}  # fmt: skip
            log.info("musicnn head %s C=%g fitted (%.0f s)", feat, C, time.time() - t0)
            add(f"musicnn head alone {feat} C={C:g}", "musicnn head alone", {"features": feat, "C": C},
                lambda n, Z=Z: clip_scores(model, sets[n], lambda i: Z[n][i]))  # fmt: skip
            for w in (0.5, 0.6, 0.7, 0.8):
                add(f"replace: w={w:g} {feat} C={C:g}", "replace YAMNet head", {"features": feat, "C": C, "w": w},
                    lambda n, Z=Z, w=w: clip_scores(model, sets[n], lambda i: w * _logit(sets[n].P[i][:, cols])
                                                    + (1 - w) * Z[n][i]))  # fmt: skip
            for u in (0.1, 0.2, 0.3, 0.5):
                add(f"add: u={u:g} {feat} C={C:g}", "packaged + musicnn head", {"features": feat, "C": C, "u": u},
                    lambda n, Z=Z, u=u: clip_scores(model, sets[n], lambda i: base[n][i] + u * Z[n][i]))  # fmt: skip
                for v in (0.05, 0.1, 0.2) if args.combo else ():
                    add(
                        f"add + zero-shot: u={u:g} v={v:g} {feat} C={C:g}",
                        "packaged + musicnn head + zero-shot",
                        {"features": feat, "C": C, "u": u, "v": v, "how": "max"},
                        lambda n, Z=Z, u=u, v=v: clip_scores(
                            model,
                            sets[n],
                            lambda i: base[n][i] + u * Z[n][i] + v * np.nan_to_num(_logit(zs[n]["max"][i]), nan=0.0),
                        ),
                    )
    if args.joint:
        Ftr = np.concatenate(train.F)
        Fs = {n: np.concatenate(c.F) for n, c in sets.items()}
        for feat in args.joint.split(","):
            sl = SLICES[feat]
            for C in (0.0003, 0.001, 0.003):
                head = fit_head(np.hstack([Ftr, Mtr[:, sl]]), Yw, C)
                Z = {n: np.split(head_logits(head, np.hstack([Fs[n], Ms[n][:, sl]])),
                                 np.cumsum([len(p) for p in c.P])[:-1]) for n, c in sets.items()}  # fmt: skip
                log.info("joint head %s C=%g fitted (%.0f s)", feat, C, time.time() - t0)
                for w in (0.5, 0.6, 0.7, 0.8):
                    add(f"joint: w={w:g} yamnet+{feat} C={C:g}", "joint YAMNet + musicnn head",
                        {"features": f"yamnet+{feat}", "C": C, "w": w},
                        lambda n, Z=Z, w=w: clip_scores(model, sets[n], lambda i: w * _logit(sets[n].P[i][:, cols])
                                                        + (1 - w) * Z[n][i]))  # fmt: skip

    # every candidate on validation; the best of each group then on every set
    val = "tags validation"
    scores = {name: {val: c["fn"](val)} for name, c in cands.items()}
    grid = [{"candidate": name, "group": c["group"], val: round(family_auc(sets[val], scores[name][val]), 4)}
            for name, c in cands.items()]  # fmt: skip
    chosen = {}
    for row in grid:
        g = row["group"]
        if g not in chosen or row[val] > chosen[g][val]:
            chosen[g] = row
    rows, fam_rows = [], []
    for g, row in chosen.items():
        name = row["candidate"]
        out = {"group": g, "candidate": name}
        for n in sets:
            S = scores[name].get(n)
            if S is None:
                S = scores[name][n] = cands[name]["fn"](n)
            out[n] = round(family_auc(sets[n], S), 4)
            if g not in ("packaged",):
                out[f"d {n}"] = interval(sets[n], scores["packaged"][n], S) if np.all(np.isfinite(S)) else "-"
            fam_rows.append({"set": n, "candidate": name, **per_family(sets[n], S)})
        rows.append(out)
    print_table(rows, list(dict.fromkeys(k for r in rows for k in r)))
    print_table(fam_rows, list(dict.fromkeys(k for r in fam_rows for k in r)))
    # the whole grid on every set when asked (for the report: is validation's choice stable?)
    if args.full_grid:
        for r in grid:
            for n in sets:
                if n != val:
                    S = scores[r["candidate"]].get(n)
                    if S is None:
                        S = scores[r["candidate"]][n] = cands[r["candidate"]]["fn"](n)
                    r[n] = round(family_auc(sets[n], S), 4)
    res = {"chosen_on_validation": rows, "per_family": fam_rows, "grid": grid,
           "sets": {n: {"items": len(c.P), "families": c.fams} for n, c in sets.items()},
           "utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "load_average": os.getloadavg()}  # fmt: skip
    print(f"wrote {write_results(args.out, res)}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compute")
    c.add_argument("--set", required=True, choices=("tags", "sample-stems", "msg-stems"))
    c.add_argument("--mixtures", type=int, default=400)
    c.add_argument("--splits", default="validation", help="stem sets: splits of the stems mixed")
    e = sub.add_parser("evaluate")
    e.add_argument("--sets", default="sample-stems,msg-stems", help="stem sets scored beside tags validation")
    e.add_argument("--mixtures", type=int, default=400)
    e.add_argument("--features", default="logits,pen,all", help="musicnn features of the head (comma list)")
    e.add_argument("--joint", default="pen", help="musicnn features of the joint head with YAMNet ('' : none)")
    e.add_argument("--full-grid", action="store_true", help="score every candidate on every set")
    e.add_argument("--combo", action="store_true", help="also the musicnn head and its zero-shot scores together")
    e.add_argument("--only", default="", help="score only these candidates (';' list of names) beside the packaged")
    e.add_argument("--out", default="tags_musicnn")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(1)
    if args.cmd == "evaluate":
        return evaluate(args)
    from mirsearch.features.musicnn import musicnn_model

    net = musicnn_model("MTT_musicnn")
    if net is None:
        raise SystemExit("the musicnn wheel is not installed")
    if args.set == "tags":
        compute_tags(net)
    else:
        compute_mixtures(net, args.set, args.mixtures, tuple(args.splits.split(",")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
