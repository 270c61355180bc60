"""The search by similarity on renderings, where two versions are similar when the same ensemble plays them (issue
20's other kind of similarity: instrumentation, not production).

    nice -n 5 .venv/bin/mirsearch index data/bench/audio -c data/bench_timbre.mirs --features timbre --jobs 2
    nice -n 5 .venv/bin/python benchmarks/similarity_ensembles.py data/bench_timbre.mirs --dataset data/bench
    #  -> results/similarity_ensembles.json

The versions of the corpus benchmark (``mirsearch dataset build --preset standard``: chorales, quartets, vocal
pieces; FluidR3_GM or TimGM6mb; each version with its own random performance and recording chain) indexed with
``--features timbre``; a version's relevant recordings are the other versions played by the same ensemble (the
manifest's ``ensemble``: choir, string quartet, organ, brass, ...). The systems of
benchmarks/similarity_fulltracks.py (the shipped ranking with the texture view, the four views without it, older
forms, the baselines MFCC statistics, YAMNet and both), MAP@10 on the whole collection and, against each
collection's best baseline, over both halves of ``--halvings`` random halvings (bootstrap over the halves).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import similarity_fulltracks as F  # noqa: E402
from mirsearch.evaluation.ranking import bootstrap_mean  # noqa: E402
from similarity_rerank import BASELINES  # noqa: E402

from _common import write_results  # noqa: E402


def load(collection: Path, dataset: Path):
    """Items (stored timbre features, MFCC statistics, YAMNet mean, version id) and ensemble labels of the indexed
    versions of ``dataset``."""
    from mirsearch.collection import Collection
    from mirsearch.features.timbre_stats import mfcc_block, yamnet_block

    manifest = json.loads((dataset / "manifest.json").read_text())
    ensemble = {v["id"]: v["ensemble"] for v in manifest["versions"]}
    items, labels = [], []
    with Collection.open(collection, readonly=True) as coll:
        stored = coll.catalog.features("timbre")
        for r in coll.recordings():
            vid = Path(r.path).stem
            if vid in ensemble and r.id in stored:
                X, _ = coll.load_features(r.id, "timbre")
                items.append({"timbre": X, "mfcc-stats": mfcc_block(X), "yamnet": yamnet_block(X), "track": vid})
                labels.append(ensemble[vid])
    return items, np.array(labels)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("collection", type=Path, help="the versions indexed with --features timbre")
    ap.add_argument(
        "--dataset", type=Path, default=ROOT / "data" / "bench", help="the dataset whose manifest names the ensembles"
    )
    ap.add_argument("--halvings", type=int, default=10)
    ap.add_argument("--out", default="similarity_ensembles")
    args = ap.parse_args(argv)
    items, labels = load(args.collection, args.dataset)
    tracks = np.array([it["track"] for it in items])
    names, counts = np.unique(labels, return_counts=True)
    print(f"{len(items)} versions: " + ", ".join(f"{n} {c}" for n, c in zip(names, counts, strict=True)), flush=True)
    whole = F.collection_scores(items, labels, np.arange(len(items)), tracks)
    rng = np.random.default_rng(0)
    margins: dict[str, list[float]] = {}
    for _ in range(args.halvings):
        perm = rng.permutation(len(items))
        for rows in (np.sort(perm[: len(items) // 2]), np.sort(perm[len(items) // 2 :])):
            scores = F.collection_scores(items, labels, rows, tracks[rows])
            best = max(scores[b].mean() for b in BASELINES)
            for name, v in scores.items():
                margins.setdefault(name, []).append(float(v.mean() - best))
    diff = np.array(margins[F.SHIPPED]) - np.array(margins[F.TMYN])
    payload = {"versions": len(items), "ensembles": {str(n): int(c) for n, c in zip(names, counts, strict=True)},
               "map@10_all": {n: round(float(v.mean()), 4) for n, v in whole.items()},
               "minus_best_baseline": {n: {**bootstrap_mean(v).to_dict(), "halves": v} for n, v in margins.items()},
               "textures_minus_four_views": {**bootstrap_mean(list(diff)).to_dict(), "up": int((diff > 0).sum()),
                                             "down": int((diff < 0).sum())}}  # fmt: skip
    for n, v in whole.items():
        m = payload["minus_best_baseline"][n]
        print(f"{n[:62]:62s} all {v.mean():.3f}  halves {m['mean']:+.3f} [{m['low']:+.3f}, {m['high']:+.3f}]")
    d = payload["textures_minus_four_views"]
    print(f"textures - four views: {d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] up {d['up']} down {d['down']}")
    print(json.dumps({"written": str(write_results(args.out, payload))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
