"""Search by similarity with the baselines' information inside (issue 20, session 12): per-block whitening over
the collection, block weights, hubness reduction and expansion, all label-free; chosen on the train half.

    nice -n 10 .venv/bin/python benchmarks/similarity_superset.py --half train      # the grid and the choice
    nice -n 10 .venv/bin/python benchmarks/similarity_superset.py --half test       # once: the choice vs baselines
    nice -n 10 .venv/bin/python benchmarks/similarity_superset.py --resplits 10     # nested: random halves

Items and protocols (every collection is one half of the soundtrack tracks; relevant: the other items of the
query's soundtrack; a query's own track is left out): ``full`` -- whole audio files
(benchmarks/similarity_fulltracks.py's cache), ``clips`` -- the 30 s clips, ``tracks`` -- each track's clips
concatenated. Blocks: ``T`` the shipped timbre vector (its six blocks, each z-scored and weighing alike), ``M``
MFCC statistics, ``Y`` the YAMNet mean embedding. A *cell* of the grid: the per-block transform over the
collection (``z``: z-scores; ``pcawS``: z-scores, then PCA-whitened with eigenvalues shrunk by S times their mean),
the per-block metric (L1 or L2, each block's distances divided by their mean over the collection), the block set,
the block weights (``eq`` alike; ``cons``: each block's 5-NN agreement with the mean of the other blocks, no
labels), hubness reduction (``none``, ``csls`` 5-NN, ``mp``: empirical mutual proximity) and expansion (0 or 2:
a query's distances averaged with those of its 2 nearest items). The choice on the train half: the cell with the
largest *smallest* margin over the best baseline of the three protocols. ``--half test`` ranks the chosen cell
(:data:`CHOSEN`) and the baselines once on the test half. ``--resplits N``: N random track-disjoint halvings
(per soundtrack, alternately, seeded), the choice made on one half and measured on the other, both ways
(nested: no choice sees its evaluated half); it estimates how the *procedure* carries over, not the shipped system.
"""

from __future__ import annotations

import argparse
import json
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

from scipy.spatial.distance import cdist  # noqa: E402

import similarity_heldout as H  # noqa: E402
from mirsearch.evaluation.paired import paired_difference  # noqa: E402
from mirsearch.evaluation.ranking import bootstrap_mean  # noqa: E402
from similarity_features import DATA, load_features  # noqa: E402
from similarity_rerank import baseline_distances  # noqa: E402

from _common import write_results  # noqa: E402

log = logging.getLogger("similarity_superset")
PROTOCOLS = ("full", "clips", "tracks")
TRANSFORMS = ("z", "pcaw0.3", "pcaw1", "pcaw3")
METRICS = ("l1", "l2")
BLOCK_SETS = ("T", "M", "Y", "M+Y", "T+M", "T+Y", "T+M+Y")
HUBNESS = ("none", "csls", "mp")
EXPANSIONS = (0, 2)
#: the cell chosen on the train half (largest smallest margin over the three protocols), measured once on test
CHOSEN = ("pcaw3", "l2", "M+Y", "eq", "mp", 2)
#: k of the nearest-neighbour sets (CSLS, block agreement)
K = 5


def load_items(data: Path) -> dict[str, dict]:
    """Every protocol's items over both halves: ``{protocol: {"blocks": {T, M, Y}, "labels", "tracks", "halves"}}``
    (``tracks``: the item's track, left out of its rankings)."""
    from mirsearch.describe.similarity import recording_vector
    from mirsearch.features.timbre_stats import mfcc_statistics
    from similarity_fulltracks import PKGS, _cache, tracks_of_manifest
    from similarity_parts import track_items

    out = {}
    full = [(t, s) for t, s in tracks_of_manifest(data, PKGS)]
    zs = [np.load(_cache(data, t.soundtrack, t.name)) for t, _ in full]
    out["full"] = {"blocks": {"T": np.stack([recording_vector(z["timbre"]) for z in zs]),
                              "M": np.stack([z["mfcc_stats"] for z in zs]), "Y": np.stack([z["yamnet"] for z in zs])},
                   "labels": np.array([t.soundtrack for t, _ in full]),
                   "tracks": np.array([f"{t.soundtrack}/{t.name}" for t, _ in full]),
                   "halves": np.array([s for _, s in full])}  # fmt: skip
    clips, feats = load_features(data)
    out["clips"] = {"blocks": {"T": np.stack([recording_vector(f["timbre"]) for f in feats]),
                               "M": np.stack([mfcc_statistics(f["mfcc"]) for f in feats]),
                               "Y": np.stack([f["yamnet"].astype(np.float64).mean(axis=0) for f in feats])},
                    "labels": np.array([c.soundtrack for c in clips]),
                    "tracks": np.array([f"{c.soundtrack}/{c.track}" for c in clips]),
                    "halves": np.array([c.split for c in clips])}  # fmt: skip
    items, labels, halves = track_items(clips, feats)
    names = list(dict.fromkeys(f"{c.soundtrack}/{c.track}" for c in clips))
    out["tracks"] = {"blocks": {"T": np.stack([recording_vector(it["timbre"]) for it in items]),
                                "M": np.stack([it["mfcc-stats"] for it in items]),
                                "Y": np.stack([it["yamnet"] for it in items])},
                     "labels": labels, "tracks": np.array(names), "halves": halves}  # fmt: skip
    for p in out.values():
        p["blocks"] = {k: np.asarray(v, np.float64) for k, v in p["blocks"].items()}
    return out


def whiten(X: np.ndarray, shrink: float) -> np.ndarray:
    """Z-scores of ``X`` (n, d) projected on their principal axes and divided by the root of the eigenvalues
    plus ``shrink`` times their mean (n, r)."""
    Z = H.zscore(X)
    _, s, Vt = np.linalg.svd(Z - Z.mean(axis=0), full_matrices=False)
    ev = s**2 / len(Z)
    keep = ev > 1e-10 * ev.max()
    return (Z - Z.mean(axis=0)) @ Vt[keep].T / np.sqrt(ev[keep] + shrink * ev[keep].mean())


def block_distances(X: np.ndarray, *, transform: str, metric: str, parts=None) -> np.ndarray:
    """Distances (n, n) of one block, divided by their mean off the diagonal; ``parts``: column slices of
    sub-blocks z-scored and averaged alike (the timbre vector's six blocks)."""
    if parts is not None:
        return sum(block_distances(X[:, sl], transform="z", metric=metric) for sl in parts) / len(parts)
    Z = H.zscore(X) if transform == "z" else whiten(X, float(transform[4:]))
    D = cdist(Z, Z, "cityblock" if metric == "l1" else "euclidean")
    return D / D[~np.eye(len(D), dtype=bool)].mean()


def nearest(D: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` nearest other items of every item (n, k)."""
    return np.argsort(D + np.diag(np.full(len(D), np.inf)), axis=1, kind="stable")[:, :k]


def agreement_weights(Ds: list[np.ndarray], k: int = K) -> np.ndarray:
    """Label-free block weights (mean 1): each block's k-NN overlap with the mean distances of the other blocks."""
    if len(Ds) < 2:
        return np.ones(len(Ds))
    w = []
    for b, D in enumerate(Ds):
        other = sum(E for c, E in enumerate(Ds) if c != b) / (len(Ds) - 1)
        A, B = nearest(D, k), nearest(other, k)
        w.append(np.mean([len(set(a) & set(o)) for a, o in zip(A, B, strict=True)]) / k)
    w = np.asarray(w)
    return w / w.mean()


def csls(D: np.ndarray, k: int = K) -> np.ndarray:
    """Cross-domain similarity local scaling: ``2 d - r_i - r_j`` (r: mean distance to the k nearest)."""
    r = np.take_along_axis(D, nearest(D, k), axis=1).mean(axis=1)
    return 2 * D - r[:, None] - r[None, :]


def mutual_proximity(D: np.ndarray) -> np.ndarray:
    """Empirical mutual proximity: ``1 - P(D_i > d_ij) P(D_j > d_ij)`` over each item's distances to the others."""
    n = len(D)
    S = np.sort(D + np.diag(np.full(n, np.inf)), axis=1)[:, : n - 1]
    F = np.stack([np.searchsorted(S[i], D[i], side="right") for i in range(n)]) / (n - 1)
    return 1 - (1 - F) * (1 - F.T)


def expand(D: np.ndarray, e: int) -> np.ndarray:
    """Every item's distances averaged with those of its ``e`` nearest items."""
    return D if e == 0 else (D + D[nearest(D, e)].sum(axis=1)) / (1 + e)


def timbre_parts() -> list[slice]:
    from mirsearch.describe.similarity import _layout

    sizes, out, i = _layout()[1], [], 0
    while i < len(sizes):
        out.append(slice(i, i + int(sizes[i])))
        i += int(sizes[i])
    return out


def grid(
    blocks: dict[str, np.ndarray], labels, tracks, *, cells=None, block_sets=BLOCK_SETS
) -> dict[tuple, np.ndarray]:
    """Per-query MAP@10 of every cell with one of ``block_sets`` (or of ``cells``) over one collection."""
    wanted = None if cells is None else set(cells)
    out, parts = {}, timbre_parts()
    for tf in TRANSFORMS:
        for metric in METRICS:
            if wanted is not None and not any(c[:2] == (tf, metric) for c in wanted):
                continue
            Ds = {k: block_distances(X, transform=tf, metric=metric, parts=parts if k == "T" else None)
                  for k, X in blocks.items()}  # fmt: skip
            for bs in sorted(set(block_sets) | {c[2] for c in wanted or ()}):
                if wanted is not None and not any(c[:3] == (tf, metric, bs) for c in wanted):
                    continue
                L = [Ds[b] for b in bs.split("+")]
                for wname in ("eq", "cons") if len(L) > 2 else ("eq",):
                    w = agreement_weights(L) if wname == "cons" else np.ones(len(L))
                    D = sum(wi * Di for wi, Di in zip(w, L, strict=True)) / len(L)
                    for hub in HUBNESS:
                        for e in EXPANSIONS:
                            cell = (tf, metric, bs, wname, hub, e)
                            if wanted is not None and cell not in wanted:
                                continue
                            Dh = D if hub == "none" else csls(D) if hub == "csls" else mutual_proximity(D)
                            out[cell] = H.map10(expand(Dh, e), labels, tracks)
    return out


def baselines(blocks, labels, tracks) -> dict[str, np.ndarray]:
    items = [{"mfcc-stats": m, "yamnet": y} for m, y in zip(blocks["M"], blocks["Y"], strict=True)]
    return {n: H.map10(D, labels, tracks) for n, D in baseline_distances(items, np.arange(len(items))).items()}


def collection(p: dict, rows: np.ndarray):
    return {k: v[rows] for k, v in p["blocks"].items()}, p["labels"][rows], p["tracks"][rows]


def choose(per_protocol: dict[str, tuple[dict, dict]]) -> tuple[tuple, dict[str, float]]:
    """The cell with the largest smallest margin over the protocols' best baselines, and its margins."""
    margins = {}
    for name, (base, cells) in per_protocol.items():
        best = max(v.mean() for v in base.values())
        for cell, v in cells.items():
            margins.setdefault(cell, {})[name] = float(v.mean() - best)
    cell = max(margins, key=lambda c: (min(margins[c].values()), np.mean(list(margins[c].values()))))
    return cell, margins[cell]


def run_half(items: dict, half: str, *, cells=None, block_sets=BLOCK_SETS) -> dict:
    """Baselines and cells on one half of every protocol (the half is the collection)."""
    out = {}
    for name, p in items.items():
        blocks, labels, tracks = collection(p, np.flatnonzero(p["halves"] == half))
        out[name] = (
            baselines(blocks, labels, tracks),
            grid(blocks, labels, tracks, cells=cells, block_sets=block_sets),
        )
    return out


def report(res: dict, cell: tuple) -> dict:
    """Per protocol: MAP@10 with intervals, the paired difference of ``cell`` to the best baseline."""
    out = {}
    for name, (base, cells) in res.items():
        best = max(base, key=lambda n: base[n].mean())
        rows = {**base, "superset " + "/".join(map(str, cell)): cells[cell]}
        out[name] = {"queries": len(base[best]), "best_baseline": best,
                     "map@10": {n: bootstrap_mean(v).to_dict() for n, v in rows.items()},
                     "against_best": paired_difference(base[best], cells[cell]).to_dict()}  # fmt: skip
        d = out[name]["against_best"]
        print(f"{name:6s} " + "  ".join(f"{n} {v.mean():.3f}" for n, v in rows.items())
              + f"  | minus {best}: {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]", flush=True)  # fmt: skip
    return out


def random_halves(p: dict, seed: int) -> np.ndarray:
    """A track-disjoint halving: each soundtrack's tracks shuffled and dealt alternately ("train"/"test")."""
    rng = np.random.default_rng(seed)
    half = {}
    for s in np.unique(p["labels"]):
        names = np.unique(p["tracks"][p["labels"] == s])
        for i, t in enumerate(rng.permutation(names)):
            half[t] = "train" if i % 2 == 0 else "test"
    return half


def split_items(items: dict, seed: int) -> dict:
    """``items`` with the halves of :func:`random_halves` (seed)."""
    half = random_halves(items["full"], seed)
    return {k: dict(p, halves=np.array([half[t] for t in p["tracks"]])) for k, p in items.items()}


def resplits(items: dict, n: int, *, block_sets=BLOCK_SETS) -> dict:
    """Nested: for each random halving and direction, the choice made on one half (among ``block_sets``),
    measured on the other."""
    rows = []
    for seed in range(n):
        split = split_items(items, seed)
        for fit, ev in (("train", "test"), ("test", "train")):
            cell, fit_margins = choose(run_half(split, fit, block_sets=block_sets))
            res = run_half(split, ev, cells=[cell, CHOSEN])
            row = {"seed": seed, "fit": fit, "cell": "/".join(map(str, cell)), "fit_margins": fit_margins}
            for name, (base, cells) in res.items():
                best = max(v.mean() for v in base.values())
                row[name] = {"chosen here": float(cells[cell].mean() - best),
                             "CHOSEN": float(cells[CHOSEN].mean() - best)}  # fmt: skip
            rows.append(row)
            log.info("seed %d fit %s: %s -> %s", seed, fit, row["cell"], {k: row[k] for k in PROTOCOLS})
    summary = {name: {w: bootstrap_mean([r[name][w] for r in rows]).to_dict() for w in ("chosen here", "CHOSEN")}
               for name in PROTOCOLS}  # fmt: skip
    return {"splits": rows, "mean_margin": summary}


def spread(items: dict, n: int, cells) -> dict:
    """Diagnostic: fixed ``cells``' margins over the best baseline on both halves of ``n`` random halvings."""
    out = {c: {p: [] for p in PROTOCOLS} for c in cells}
    for seed in range(n):
        split = split_items(items, seed)
        for h in ("train", "test"):
            for name, (base, got) in run_half(split, h, cells=cells).items():
                best = max(v.mean() for v in base.values())
                for c in cells:
                    out[c][name].append(float(got[c].mean() - best))
    summary = {}
    for c in cells:
        summary["/".join(map(str, c))] = row = {}
        for p, v in out[c].items():
            row[p] = {
                **bootstrap_mean(v).to_dict(),
                "min": min(v),
                "max": max(v),
                "at_least_0.05": sum(x >= 0.05 for x in v),
            }
            print(f"{'/'.join(map(str, c)):34s} {p:6s} {np.mean(v):+.3f} [{row[p]['low']:+.3f}, {row[p]['high']:+.3f}] "
                  f"min {min(v):+.3f} max {max(v):+.3f}", flush=True)  # fmt: skip
    return summary


#: the fixed cells of ``--spread`` (looked at after the test measurement: a diagnostic, nothing chosen from it)
SPREAD_CELLS = (("z", "l1", "T", "eq", "none", 2), CHOSEN, ("pcaw3", "l2", "T+M+Y", "cons", "csls", 2),
                ("z", "l2", "T+M+Y", "eq", "csls", 2), ("z", "l2", "T+M", "eq", "csls", 2))  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--half", choices=("train", "test"), default="train")
    ap.add_argument("--resplits", type=int, default=0, help="nested random halvings instead (see the docstring)")
    ap.add_argument("--block-sets", default=",".join(BLOCK_SETS), help="block sets the choice is made among")
    ap.add_argument("--spread", type=int, default=0, help="diagnostic: SPREAD_CELLS on both halves of N halvings")
    ap.add_argument("--out", default=None, help="results name")
    args = ap.parse_args(argv)
    block_sets = tuple(args.block_sets.split(","))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t0 = time.time()
    items = load_items(Path(args.data))
    if args.spread:
        payload = {"protocol": __doc__, "spread": spread(items, args.spread, SPREAD_CELLS)}
        name = "similarity_superset_spread"
    elif args.resplits:
        payload = {
            "protocol": __doc__,
            "block_sets": block_sets,
            **resplits(items, args.resplits, block_sets=block_sets),
        }
        print(json.dumps(payload["mean_margin"], indent=1))
        name = "similarity_superset_resplits"
    elif args.half == "train":
        res = run_half(items, "train")
        cell, margins = choose(res)
        print(f"chosen {cell}: margins {margins}")
        payload = {"protocol": __doc__, "half": "train", "chosen": cell, "chosen_margins": margins,
                   "report": report(res, cell),
                   "cells": {"/".join(map(str, c)): {n: round(float(res[n][1][c].mean()), 4) for n in res}
                             for c in res["full"][1]}}  # fmt: skip
        name = "similarity_superset_train"
    else:
        payload = {"protocol": __doc__, "half": "test", "chosen": CHOSEN,
                   "report": report(run_half(items, "test", cells=[CHOSEN]), CHOSEN)}  # fmt: skip
        name = "similarity_superset_test"
    payload["seconds"] = round(time.time() - t0, 1)
    print(json.dumps({"written": str(write_results(args.out or name, payload))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
