"""A similarity embedding learned without labels from the parts of real recordings (issue 20, session 13), judged
over many random halvings (nested) and once on the fixed test half.

    nice -n 10 .venv/bin/python benchmarks/similarity_selfsup.py --resplits 10   # nested: 20 evaluated halves
    nice -n 10 .venv/bin/python benchmarks/similarity_selfsup.py --half train    # choice on the fixed train half
    nice -n 10 .venv/bin/python benchmarks/similarity_selfsup.py --half test     # once: that choice on test
    nice -n 10 .venv/bin/python benchmarks/similarity_selfsup.py --epochs 12 --bundle \
        src/mirsearch/models/bundles/similarity_selfsup                          # the taught tags' network

Items: the 114 whole audio files of the six soundtracks (benchmarks/similarity_fulltracks.py's cache), each
described by its stored ``timbre`` kind. Input of the network: every 4-s stored segment's raw 494-value vector
(the shipped recording vector's blocks, statistics over the segment's patches). Training
(:func:`mirsearch.training.similarity.train_similarity`): the fitting half's recordings cut into parts of
``--part-segments`` segments; the oracle (:func:`~mirsearch.training.similarity.recording_oracle`) makes two parts
of one recording a positive pair and parts of other recordings negatives (no labels), drawn by the seed's
``distance`` strategy; a per-segment MLP, autopool over segments, triplet loss, crops of 4-8 segments. A whole
recording is embedded by autopool over all its segments.

Cells ranked (each block's distances divided by their mean; expansion: a query's distances averaged with those of
its nearest ``e`` items): ``T`` the shipped timbre vector (six z-scored blocks, L1), ``L`` the learned embedding
(Euclidean), ``T+L`` with L weighing ``w``. The choice: the cell with the best MAP@10 on the fitting half (where
the network was trained without labels; labels used only to choose). Margins are over the best of the evaluated
half's baselines (MFCC statistics, YAMNet mean embedding, both; benchmarks/similarity_rerank.py). ``--resplits N``:
N random track-disjoint halvings (as benchmarks/similarity_superset.py), each direction once: the network trained
and the cell chosen on one half, measured on the other.
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
import similarity_superset as SS  # noqa: E402
from mirsearch.evaluation.paired import paired_difference  # noqa: E402
from mirsearch.evaluation.ranking import bootstrap_mean  # noqa: E402
from similarity_features import DATA  # noqa: E402

from _common import write_results  # noqa: E402

log = logging.getLogger("similarity_selfsup")
WEIGHTS = (0.5, 1.0, 2.0)
EXPANSIONS = (0, 2)
#: the ranking shipped in sessions 9-17 (the timbre vector, expansion 2); since session 18 the product ranks by
#: T + MFCC + YAMNet (benchmarks/similarity_fulltracks.py measures that one)
SHIPPED = ("T", 0.0, 2)
#: the cell chosen on the fixed train half (``--half train``), measured once by ``--half test``
CHOSEN = None


def load_full(data: Path) -> dict:
    """Whole files: ``{"T", "M", "Y", "segments" (list of (n_i, 494)), "labels", "tracks", "halves"}``."""
    from mirsearch.describe.similarity import part_vectors, recording_vector
    from similarity_fulltracks import PKGS, _cache, tracks_of_manifest

    full = tracks_of_manifest(data, PKGS)
    zs = [np.load(_cache(data, t.soundtrack, t.name)) for t, _ in full]
    return {"T": np.stack([recording_vector(z["timbre"]) for z in zs]).astype(np.float64),
            "M": np.stack([z["mfcc_stats"] for z in zs]).astype(np.float64),
            "Y": np.stack([z["yamnet"] for z in zs]).astype(np.float64),
            "segments": [part_vectors(z["timbre"], parts=10**6) for z in zs],
            "labels": np.array([t.soundtrack for t, _ in full]),
            "tracks": np.array([f"{t.soundtrack}/{t.name}" for t, _ in full]),
            "halves": np.array([s for _, s in full])}  # fmt: skip


def train(segments: list[np.ndarray], *, part_segments: int, epochs: int, seed: int, labels=None, crop=(4, 8)):
    """The embedding trained on ``segments``' recordings (self-supervised; ``labels`` add soundtrack positives)."""
    from mirsearch.models.similarity import SimilarityModel
    from mirsearch.training.similarity import TripletOptions, recording_oracle, recording_parts, train_similarity

    items, rec, lab = [], [], []
    for i, X in enumerate(segments):
        for P in recording_parts(X, part_segments=part_segments):
            items.append(np.asarray(P, np.float32))
            rec.append(i)
            lab.append(None if labels is None else labels[i])
    S, exclude = recording_oracle(rec, None if labels is None else lab)
    options = TripletOptions(epochs=epochs, crop=tuple(crop), seed=seed, n_positives=4, strategy="distance")
    config, arrays = train_similarity(items, S, exclude, options=options, input_kind="timbre-segments")
    return SimilarityModel(config=config, arrays={k: np.asarray(v, np.float32) for k, v in arrays.items()})


def scaled(D: np.ndarray) -> np.ndarray:
    return D / D[~np.eye(len(D), dtype=bool)].mean()


def cells(T: np.ndarray, E: np.ndarray) -> dict[tuple, np.ndarray]:
    """Distances of every cell ``(blocks, weight of L, expansion)`` over one collection."""
    DT = SS.block_distances(T, transform="z", metric="l1", parts=SS.timbre_parts())
    DL = scaled(cdist(E, E))
    out = {}
    for e in EXPANSIONS:
        out[("T", 0.0, e)] = SS.expand(DT, e)
        out[("L", 1.0, e)] = SS.expand(DL, e)
        for w in WEIGHTS:
            out[("T+L", w, e)] = SS.expand((DT + w * DL) / (1 + w), e)
    return out


def evaluate(p: dict, rows: np.ndarray, model) -> tuple[dict, dict]:
    """Per-query MAP@10 of the baselines and of every cell on the collection ``rows``."""
    labels, tracks = p["labels"][rows], p["tracks"][rows]
    E = np.stack([model.embed(p["segments"][i]) for i in rows])
    base = SS.baselines({"M": p["M"][rows], "Y": p["Y"][rows]}, labels, tracks)
    return base, {c: H.map10(D, labels, tracks) for c, D in cells(p["T"][rows], E).items()}


def fit_and_measure(p: dict, fit: np.ndarray, ev: np.ndarray, args, seed: int) -> dict:
    """Train on ``fit``, choose there, measure on ``ev``: margins over ``ev``'s best baseline."""
    model = train([p["segments"][i] for i in fit], part_segments=args.part_segments, epochs=args.epochs,
                  seed=seed, labels=p["labels"][fit] if args.supervised else None, crop=args.crop)  # fmt: skip
    base_f, got_f = evaluate(p, fit, model)
    cell = max(got_f, key=lambda c: got_f[c].mean())
    base_e, got_e = evaluate(p, ev, model)
    best_f = max(v.mean() for v in base_f.values())
    best = max(base_e, key=lambda n: base_e[n].mean())
    return {"cell": "/".join(map(str, cell)), "fit_margin": float(got_f[cell].mean() - best_f),
            "chosen": float(got_e[cell].mean() - base_e[best].mean()),
            "shipped": float(got_e[SHIPPED].mean() - base_e[best].mean()),
            "cells": {"/".join(map(str, c)): float(v.mean() - base_e[best].mean()) for c, v in got_e.items()},
            "fit_cells": {"/".join(map(str, c)): float(v.mean() - best_f) for c, v in got_f.items()},
            "best_baseline": best, "_ev": (base_e[best], got_e[cell], got_e[SHIPPED])}  # fmt: skip


def halvings(p: dict, n: int, *, disjoint: bool):
    """``(seed, name, fit rows, evaluated rows)``: both directions of ``n`` random track-disjoint halvings, or
    (``disjoint``) of every split of the soundtracks into two groups of three (``n`` ignored)."""
    from itertools import combinations

    if disjoint:
        names = sorted(np.unique(p["labels"]))
        for k, group in enumerate(c for c in combinations(names, len(names) // 2) if names[0] in c):
            a = np.isin(p["labels"], group)
            yield k, "+".join(group), np.flatnonzero(a), np.flatnonzero(~a)
            yield k, "not " + "+".join(group), np.flatnonzero(~a), np.flatnonzero(a)
        return
    for seed in range(n):
        half = SS.random_halves(p, seed)
        h = np.array([half[t] for t in p["tracks"]])
        yield seed, "train", np.flatnonzero(h == "train"), np.flatnonzero(h == "test")
        yield seed, "test", np.flatnonzero(h == "test"), np.flatnonzero(h == "train")


def resplits(p: dict, n: int, args) -> dict:
    rows = []
    for seed, fit, fit_rows, ev_rows in halvings(p, n, disjoint=args.disjoint):
        t0 = time.time()
        r = fit_and_measure(p, fit_rows, ev_rows, args, seed)
        r.pop("_ev")
        rows.append({"seed": seed, "fit": fit, **r})
        log.info("seed %d fit %s (%.0f s): %s chosen %+.3f shipped %+.3f (fit %+.3f)", seed, fit,
                 time.time() - t0, r["cell"], r["chosen"], r["shipped"], r["fit_margin"])  # fmt: skip
    summary = {}
    for what in ("chosen", "shipped", *rows[0]["cells"]):
        v = [r[what] if what in ("chosen", "shipped") else r["cells"][what] for r in rows]
        summary[what] = {**bootstrap_mean(v).to_dict(), "min": min(v), "max": max(v),
                         "at_least_0.05": int(sum(x >= 0.05 for x in v))}  # fmt: skip
        print(f"{what:16s} {np.mean(v):+.3f} [{summary[what]['low']:+.3f}, {summary[what]['high']:+.3f}] "
              f"min {min(v):+.3f} max {max(v):+.3f} >=0.05: {summary[what]['at_least_0.05']}", flush=True)  # fmt: skip
    return {"splits": rows, "summary": summary}


def fixed_half(p: dict, args) -> dict:
    """Train and choose on the fixed train half, measure on the test half (``--half test``: run once)."""
    fit, ev = np.flatnonzero(p["halves"] == "train"), np.flatnonzero(p["halves"] == "test")
    r = fit_and_measure(p, fit, ev if args.half == "test" else fit, args, seed=0)
    base, chosen, shipped = r.pop("_ev")
    if args.half == "train":
        return {k: r[k] for k in ("cell", "fit_margin", "fit_cells")}
    r["against_best"] = paired_difference(base, chosen).to_dict()
    r["shipped_against_best"] = paired_difference(base, shipped).to_dict()
    r["chosen_against_shipped"] = paired_difference(shipped, chosen).to_dict()
    r["map@10"] = {"best baseline": float(base.mean()), "chosen": float(chosen.mean()),
                   "shipped": float(shipped.mean())}  # fmt: skip
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--half", choices=("train", "test"), default="train")
    ap.add_argument("--resplits", type=int, default=0, help="nested random halvings instead")
    ap.add_argument("--disjoint", action="store_true", help="with --resplits: soundtrack-disjoint 3/3 splits")
    ap.add_argument("--part-segments", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--crop", type=int, nargs=2, default=(4, 8), help="training crops: segments, least and most")
    ap.add_argument("--supervised", action="store_true", help="soundtrack labels of the fitting half as positives too")
    ap.add_argument("--out", default=None)
    ap.add_argument("--bundle", default=None, help="train on every whole file (no labels) and save the bundle here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(1)
    t0 = time.time()
    p = load_full(Path(args.data))
    log.info("loaded %d recordings, %d segments (%.0f s)", len(p["tracks"]), sum(map(len, p["segments"])),
             time.time() - t0)  # fmt: skip
    if args.bundle:
        from mirsearch.models.similarity import save_model

        model = train(p["segments"], part_segments=args.part_segments, epochs=args.epochs, seed=0, crop=args.crop)
        config = dict(
            model.config,
            source="the stored timbre segments of the 114 whole files of the six real "
            "soundtracks (no labels: parts of one recording are positives; benchmarks/similarity_selfsup.py)",
        )
        saved = save_model(args.bundle, config, model.arrays)
        print(json.dumps({"bundle": args.bundle, "model_id": saved.model_id}))
        return 0
    if args.resplits:
        payload, name = resplits(p, args.resplits, args), "similarity_selfsup_resplits"
    else:
        payload, name = fixed_half(p, args), f"similarity_selfsup_{args.half}"
        print(json.dumps(payload, indent=1))
    payload = {"protocol": __doc__, "options": vars(args), **payload, "seconds": round(time.time() - t0, 1)}
    print(json.dumps({"written": str(write_results(args.out or name, payload))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
