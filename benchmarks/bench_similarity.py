"""Search by similarity on real soundtracks: the learned embedding against MFCC statistics, an MFCC Gaussian with
KL divergence, the YAMNet embedding, both combined and an auto-tagger baseline, on the same held-out recordings;
and the few-shot check of issue 19 (a tag taught from 5 recordings of one soundtrack).

    .venv/bin/python benchmarks/build_soundtracks.py                   # once: data/soundtracks (clips)
    nice -n 10 .venv/bin/python benchmarks/similarity_features.py      # once: cached features
    nice -n 10 .venv/bin/python benchmarks/bench_similarity.py         # -> benchmarks/results/similarity.json

Protocol (similar = same soundtrack). Items: the clips of the ``test`` tracks of all six soundtracks (tracks
disjoint from the ``train`` tracks). A query's ranking leaves out the query and every clip of its own track
(they count neither as hits nor in ``R``). Learned models are trained leave-one-soundtrack-out: the queries of
soundtrack ``s`` are ranked by a model trained on the ``train`` tracks of the five *other* soundtracks, so no
query's soundtrack was seen in training; the baselines need no training and rank the same queries on the same
items. Metrics per query at k = 10 and 20 (:mod:`mirsearch.evaluation.ranking`), means with 95 % bootstrap
intervals over queries.

Few-shot (issue 19): for every soundtrack with at least 8 tracks, 20 draws of 5 support tracks (one clip per
track); the prototype is the mean of their vectors; the collection is one clip per track of every other track
of that soundtrack (relevant) and of the ``test`` tracks of the other soundtracks (not relevant); MAP@10 and
full AP of the ranking by distance to the prototype. Learned models use the fold that never saw the soundtrack.
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

from mirsearch.evaluation.ranking import per_query_scores, ranked_relevance, summarize  # noqa: E402
from similarity_features import DATA, load_features  # noqa: E402

from _common import print_table, write_results  # noqa: E402

log = logging.getLogger("bench_similarity")
KS = (10, 20)
#: the evaluated half of the tracks (``--split``); learned models train on the other
EVAL_SPLIT = ["test"]


# -- vectors and distances of the baselines ---------------------------------------------------------------------
def zscore(V: np.ndarray) -> np.ndarray:
    """Collection-relative normalisation: every dimension standardised over the items of the collection."""
    return (V - V.mean(axis=0)) / (V.std(axis=0) + 1e-6)


def cosine_distances(V: np.ndarray, W: np.ndarray | None = None) -> np.ndarray:
    U = V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)
    X = U if W is None else W / np.maximum(np.linalg.norm(W, axis=1, keepdims=True), 1e-12)
    return 1.0 - U @ X.T


def euclidean(V: np.ndarray, W: np.ndarray | None = None) -> np.ndarray:
    W = V if W is None else W
    d = (V**2).sum(1)[:, None] + (W**2).sum(1)[None, :] - 2 * V @ W.T
    return np.sqrt(np.maximum(d, 0.0))


def mean_abs(V: np.ndarray, W: np.ndarray | None = None) -> np.ndarray:
    """Mean absolute difference (L1 / dim), the ranking of :class:`mirsearch.describe.similarity.SimilarityIndex`."""
    W = V if W is None else W
    return np.abs(V[:, None, :] - W[None, :, :]).mean(axis=2)


def baseline_vectors(feats: list[dict]) -> dict[str, np.ndarray]:
    """Recording vectors of mirsearch's timbre vectors and of the vector baselines (before any normalisation)."""
    from mirsearch.describe.similarity import recording_vector
    from mirsearch.features.timbre_stats import mfcc_statistics

    return {  # "timbre": the shipped vector's blocks, unweighted, without expansion (the shipped ranking and the
        # held-out protocol: benchmarks/similarity_heldout.py)
        "timbre": np.stack([recording_vector(f["timbre"]) for f in feats]),
        "mfcc-stats": np.stack([mfcc_statistics(f["mfcc"]) for f in feats]),
        "yamnet": np.stack([f["yamnet"].mean(axis=0) for f in feats]),
        "audioset-tags": np.stack([f["scores"].mean(axis=0) for f in feats]),
    }


def combined(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two z-scored blocks with equal weight (each divided by the root of its dimension)."""
    return np.concatenate([zscore(a) / np.sqrt(a.shape[1]), zscore(b) / np.sqrt(b.shape[1])], axis=1)


def baseline_distances(feats: list[dict]) -> dict[str, np.ndarray]:
    from mirsearch.features.timbre_stats import fit_gaussian, gaussian_kl_matrix

    V = baseline_vectors(feats)
    return {
        "ours: timbre-z, L1 (shipped)": mean_abs(zscore(V["timbre"])),
        "ours: timbre-z, Euclidean": euclidean(zscore(V["timbre"])),
        "ours: timbre-z + yamnet (not shipped)": euclidean(combined(V["timbre"], V["yamnet"])),
        "mfcc-kl": gaussian_kl_matrix([fit_gaussian(f["mfcc"]) for f in feats]),
        "mfcc-stats": euclidean(zscore(V["mfcc-stats"])),
        "yamnet": cosine_distances(V["yamnet"]),
        "yamnet-z": cosine_distances(zscore(V["yamnet"])),
        "mfcc+yamnet": euclidean(combined(V["mfcc-stats"], V["yamnet"])),
        "autotagger-audioset": cosine_distances(V["audioset-tags"]),
    }


# -- evaluation -------------------------------------------------------------------------------------------------
def scores_of(D: np.ndarray, labels: np.ndarray, same_track: np.ndarray, rows: np.ndarray) -> dict:
    out = {}
    for k in KS:
        rel, R = ranked_relevance(D[rows], labels, query_rows=rows, exclude=same_track[rows], k=k)
        out.update(per_query_scores(rel, R, k=k))
    return out


def evaluate_fixed(D: np.ndarray, labels, same_track) -> dict:
    return scores_of(D, labels, same_track, np.arange(len(labels)))


def evaluate_folds(D_by_fold: dict[str, np.ndarray], labels, same_track) -> dict:
    parts = [scores_of(D, labels, same_track, np.flatnonzero(labels == s)) for s, D in D_by_fold.items()]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def few_shot(vectors_by_fold: dict[str, np.ndarray], fs_labels, fs_split, *, draws: int = 20, seed: int = 0,
             metric=None):  # fmt: skip
    """Per draw: AP@10 and AP of the prototype ranking (module docstring). ``vectors_by_fold`` maps a target
    soundtrack to the vectors of the few-shot items (one clip per track)."""
    rng = np.random.default_rng(seed)
    ap10, ap = [], []
    for s, V in vectors_by_fold.items():
        own = np.flatnonzero(fs_labels == s)
        others = np.flatnonzero((fs_labels != s) & (fs_split == EVAL_SPLIT[0]))
        for _ in range(draws):
            support = rng.choice(own, 5, replace=False)
            pool = np.r_[np.setdiff1d(own, support), others]
            rel = np.isin(pool, own)
            proto = V[support].mean(axis=0, keepdims=True)
            order = np.argsort((metric or euclidean)(proto, V[pool])[0], kind="stable")
            r = rel[order][None, :]
            ap10.append(per_query_scores(r, [rel.sum()], k=10)["map@10"][0])
            ap.append(per_query_scores(r, [rel.sum()], k=len(pool))[f"map@{len(pool)}"][0])
    return {"map@10": np.array(ap10), "map": np.array(ap)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--models", default="", help="comma-separated learned variants (see similarity_models.py)")
    ap.add_argument("--out", default="similarity")
    ap.add_argument("--tagger", action="store_true", help="add the rows of the packaged tagger (issue 19)")
    ap.add_argument("--split", default="test", choices=("test", "train"),
                    help="the evaluated half of the tracks (learned models train on the other half)")  # fmt: skip
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t0 = time.time()
    clips, feats = load_features(Path(args.data))
    EVAL_SPLIT[0] = args.split
    os.environ["MIRSEARCH_SIMILARITY_TRAIN_SPLIT"] = "train" if args.split == "test" else "test"
    test = np.array([c.split == args.split for c in clips])
    eval_idx = np.flatnonzero(test)
    labels = np.array([clips[i].soundtrack for i in eval_idx])
    tracks = np.array([f"{clips[i].soundtrack}/{clips[i].track}" for i in eval_idx])
    same_track = tracks[:, None] == tracks[None, :]
    eval_feats = [feats[i] for i in eval_idx]
    results, rows = {}, []
    for name, D in baseline_distances(eval_feats).items():
        results[name] = evaluate_fixed(D, labels, same_track)
    if args.tagger:
        from similarity_tagger import tagger_vectors

        tags, emb, model_id = tagger_vectors(clips, Path(args.data))
        results[f"autotagger-mirsearch ({model_id})"] = evaluate_fixed(cosine_distances(tags[eval_idx]), labels,
                                                                       same_track)  # fmt: skip
        results[f"tagger-embedding ({model_id})"] = evaluate_fixed(euclidean(emb[eval_idx]), labels, same_track)
    fs = few_shot_items(clips)
    fs_labels = np.array([clips[i].soundtrack for i in fs])
    fs_split = np.array([clips[i].split for i in fs])
    targets = [s for s in np.unique(fs_labels) if (fs_labels == s).sum() >= 8]
    V = baseline_vectors([feats[i] for i in fs])
    fs_vectors = {
        "ours: timbre-z, Euclidean": zscore(V["timbre"]),
        "mfcc-stats": zscore(V["mfcc-stats"]),
        "yamnet": V["yamnet"],
        "yamnet-z": zscore(V["yamnet"]),
        "mfcc+yamnet": combined(V["mfcc-stats"], V["yamnet"]),
    }
    few = {name: few_shot({s: W for s in targets}, fs_labels, fs_split) for name, W in fs_vectors.items()}
    if args.tagger:
        few[f"tagger-embedding ({model_id})"] = few_shot({s: emb[fs] for s in targets}, fs_labels, fs_split)
    few["ours: timbre-z, L1 (shipped)"] = few_shot({s: zscore(V["timbre"]) for s in targets}, fs_labels, fs_split,
                                                   metric=mean_abs)  # fmt: skip
    if args.models:
        from similarity_models import run_linear, run_variants

        names = args.models.split(",")
        learned, learned_few = run_variants([n for n in names if not n.startswith("lin:")], clips, feats, eval_idx,
                                            fs, targets)  # fmt: skip
        lin, lin_few = run_linear([n for n in names if n.startswith("lin:")], clips, feats, eval_idx, fs, targets)
        learned.update(lin)
        learned_few.update(lin_few)
        for name, D_by_fold in learned.items():
            results[name] = evaluate_folds(D_by_fold, labels, same_track)
        for name, W_by_fold in learned_few.items():
            few[name] = few_shot(W_by_fold, fs_labels, fs_split)
    comparisons = {"similarity": against_best(results, "map@10"), "few_shot": against_best(few, "map@10")}
    results = {name: summarize(v) for name, v in results.items()}
    few = {name: summarize(v) for name, v in few.items()}
    for name, res in results.items():
        rows.append({"system": name, **{m: res[m]["mean"] for m in res}})
    print_table(rows, ["system", *[f"{m}@{k}" for k in KS for m in ("map", "recall", "rr", "ndcg")]])
    print_table([{"system": n, "map@10": r["map@10"]["mean"], "map": r["map"]["mean"]} for n, r in few.items()],
                ["system", "map@10", "map"])  # fmt: skip
    payload = {"protocol": __doc__, "queries": len(eval_idx), "soundtracks": sorted(set(labels.tolist())),
               "queries_per_soundtrack": {s: int((labels == s).sum()) for s in sorted(set(labels.tolist()))},
               "similarity": results, "few_shot": few, "few_shot_targets": targets,
               "against_best_baseline": comparisons,
               "seconds": round(time.time() - t0, 1)}  # fmt: skip
    write_results(args.out, payload)
    print(json.dumps(comparisons, indent=1))
    print(json.dumps({"written": f"benchmarks/results/{args.out}.json"}))
    return 0


#: the baselines of the issues' "Done when" (MFCC statistics, the YAMNet embedding, both combined) and the others
BASELINES = ("mfcc-kl", "mfcc-stats", "yamnet", "yamnet-z", "mfcc+yamnet", "autotagger-audioset")


def against_best(per_query: dict[str, dict], metric: str) -> dict:
    """Every non-baseline system minus the best baseline (by mean ``metric``), paired over the same queries."""
    from mirsearch.evaluation.paired import paired_difference

    base = [n for n in per_query if n in BASELINES]
    if not base:
        return {}
    best = max(base, key=lambda n: per_query[n][metric].mean())
    return {"best_baseline": best, **{n: paired_difference(per_query[best][metric], v[metric]).to_dict()
                                      for n, v in per_query.items() if n not in BASELINES}}  # fmt: skip


def few_shot_items(clips) -> np.ndarray:
    """One clip per track (the first), in manifest order."""
    seen, out = set(), []
    for i, c in enumerate(clips):
        key = (c.soundtrack, c.track)
        if key not in seen:
            seen.add(key)
            out.append(i)
    return np.array(out)


if __name__ == "__main__":
    sys.exit(main())
