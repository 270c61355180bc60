"""Held-out choice of the similarity representation: per-patch descriptor groups (band statistics, onset rhythm,
modulation spectrum, spectral contrast, cepstral dynamics, tonality), pooled to mean and spread per recording,
z-scored over the collection, each block weighted; weights chosen with the query's soundtrack never in the
fitting set.

    nice -n 10 .venv/bin/python benchmarks/similarity_heldout.py --compute     # cache per-patch groups
    nice -n 10 .venv/bin/python benchmarks/similarity_heldout.py               # -> results/similarity_heldout.json

Protocols (similar = same soundtrack; a query's own clip and the other clips of its track are left out):

- ``loso``: for each half ``h`` of the tracks and each soundtrack ``s``, block weights are chosen on the *other*
  half's clips of the five other soundtracks (MAP@10 there, greedy coordinate search); the queries of ``s`` in
  half ``h`` are ranked among all of half ``h``'s clips. Both halves together: every clip is a query once.
- ``disjoint``: every split of the six soundtracks into three fitting and three evaluation soundtracks (20
  splits): weights chosen on all clips of the fitting three; every clip of the evaluation three is a query among
  the clips of those three only (nothing in the evaluated collection was seen). Per-query scores averaged over
  the splits a clip is evaluated in (10 each).
- few-shot (issue 19): as ``bench_similarity.few_shot`` on each half, the representation of the fold that never
  saw the target soundtrack.

The baselines (MFCC statistics, YAMNet mean embedding, both combined) need no fitting and rank the same queries
in the same collections.
"""

from __future__ import annotations

import argparse
import itertools
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

from mirsearch.describe.taught import SHRINK  # noqa: E402
from mirsearch.evaluation.ranking import per_query_scores, ranked_relevance, summarize  # noqa: E402
from similarity_features import DATA, feature_path, load_features  # noqa: E402

from _common import write_results  # noqa: E402

log = logging.getLogger("similarity_heldout")
GROUPS = ("stats", "rhythm", "modulation", "contrast", "cepstra", "tonality")


def group_path(data: Path, clip_path: str) -> Path:
    return feature_path(data, clip_path).with_suffix(".groups.npz")


def compute(data: Path) -> int:
    """Per-patch descriptor groups of every clip (resumable cache beside the other features)."""
    from mirsearch._util import atomic_path
    from mirsearch.audio import load_audio
    from mirsearch.datasets.soundtracks import load_manifest
    from mirsearch.features import timbre_stats as ts
    from mirsearch.features.chroma import chroma
    from mirsearch.features.logmel import YAMNET, log_mel, log_mel_patches, patch_times

    n = 0
    for clip in load_manifest(data):
        out = group_path(data, clip.path)
        if out.exists():
            continue
        y, sr = load_audio(data / clip.path, min_duration=0.1)
        L, rate = log_mel(y, sr=sr, config=YAMNET)
        P = log_mel_patches(L, config=YAMNET)
        C, crate = chroma(y, sr=sr, feature_rate=10.0)
        groups = {
            "stats": ts.patch_statistics(L),
            "rhythm": ts.patch_rhythm(L),
            "modulation": ts.patch_modulation(P, feature_rate=rate),
            "contrast": ts.patch_contrast(P),
            "cepstra": ts.patch_cepstra(P),
            "tonality": ts.patch_tonality(C, patch_times(len(P), config=YAMNET), feature_rate=crate),
        }
        with atomic_path(out) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **groups)
        n += 1
        if n % 20 == 0:
            log.info("%d clips", n)
    return n


def load_blocks(data: Path, clips) -> dict[str, np.ndarray]:
    """Recording-level blocks: ``<group>.mean`` and ``<group>.std`` over patches, shape (n_clips, d) each."""
    per = {f"{g}.{s}": [] for g in GROUPS for s in ("mean", "std")}
    for clip in clips:
        with np.load(group_path(data, clip.path)) as z:
            for g in GROUPS:
                X = z[g].astype(np.float64)
                per[f"{g}.mean"].append(X.mean(axis=0))
                per[f"{g}.std"].append(X.std(axis=0))
    return {k: np.stack(v) for k, v in per.items()}


def zscore(V: np.ndarray) -> np.ndarray:
    return (V - V.mean(axis=0)) / (V.std(axis=0) + 1e-6)


def represent(blocks: dict[str, np.ndarray], weights: dict[str, float], rows: np.ndarray) -> np.ndarray:
    """Weighted z-scored blocks of ``rows`` (z-scored over those rows: collection-relative)."""
    parts = [w * zscore(blocks[b][rows]) / np.sqrt(blocks[b].shape[1]) for b, w in weights.items() if w > 0]
    return np.concatenate(parts, axis=1) if parts else np.zeros((len(rows), 1))


def distances(V: np.ndarray, metric: str) -> np.ndarray:
    return cdist(V, V, "cityblock" if metric == "l1" else "euclidean")


def map10(D: np.ndarray, labels: np.ndarray, tracks: np.ndarray, qrows: np.ndarray | None = None) -> np.ndarray:
    """Per-query AP@10 (queries ``qrows`` of the collection, default all)."""
    qrows = np.arange(len(labels)) if qrows is None else qrows
    same = tracks[qrows][:, None] == tracks[None, :]
    rel, R = ranked_relevance(D[qrows], labels, query_rows=qrows, exclude=same, k=10)
    return per_query_scores(rel, R, k=10)["map@10"]


#: candidate block sets (the shipped v2 vector first) and query-expansion depths chosen among on the fitting set
BLOCK_SETS = {
    "v2": ("stats.mean", "stats.std", "rhythm.mean", "rhythm.std"),
    "v2+cepstra": ("stats.mean", "stats.std", "rhythm.mean", "rhythm.std", "cepstra.mean"),
    "v2+modulation": ("stats.mean", "stats.std", "rhythm.mean", "rhythm.std", "modulation.mean"),
    "v2+cepstra+modulation": (
        "stats.mean",
        "stats.std",
        "rhythm.mean",
        "rhythm.std",
        "cepstra.mean",
        "modulation.mean",
    ),
    "all": tuple(f"{g}.{s}" for g in GROUPS for s in ("mean", "std")),
}
EXPANSIONS = (0, 2, 3, 5)


def expanded_distances(V: np.ndarray, tracks: np.ndarray, *, k: int, metric: str) -> np.ndarray:
    """Distances after average query expansion: each query is replaced by the mean of itself and its ``k``
    nearest items outside its own track (the query recording never expands itself)."""
    D = distances(V, metric)
    if k == 0:
        return D
    E = D.copy()
    E[tracks[:, None] == tracks[None, :]] = np.inf
    idx = np.argsort(E, axis=1, kind="stable")[:, :k]
    Q = (V + V[idx].sum(axis=1)) / (1 + k)
    return cdist(Q, V, "cityblock" if metric == "l1" else "euclidean")


def config_distances(blocks, config: dict, rows, tracks) -> np.ndarray:
    w = {b: 1.0 for b in BLOCK_SETS[config["blocks"]]}
    return expanded_distances(represent(blocks, w, rows), tracks[rows], k=config["expand"], metric=config["metric"])


def select_config(blocks, rows, labels, tracks, *, metric: str) -> tuple[dict, float]:
    """The candidate (block set, expansion) with the best MAP@10 on ``rows`` (same-track exclusion)."""
    best, best_score = None, -1.0
    for name in BLOCK_SETS:
        for k in EXPANSIONS:
            c = {"blocks": name, "expand": k, "metric": metric}
            s = float(map10(config_distances(blocks, c, rows, tracks), labels[rows], tracks[rows]).mean())
            if s > best_score + 1e-4:
                best, best_score = c, s
    return best, best_score


def baseline_vectors(feats, rows) -> dict[str, np.ndarray]:
    from mirsearch.features.timbre_stats import mfcc_statistics

    mf = np.stack([mfcc_statistics(feats[i]["mfcc"]) for i in rows])
    ym = np.stack([feats[i]["yamnet"].mean(axis=0) for i in rows])
    both = np.concatenate([zscore(mf) / np.sqrt(mf.shape[1]), zscore(ym) / np.sqrt(ym.shape[1])], axis=1)
    return {"mfcc-stats": zscore(mf), "yamnet": ym, "mfcc+yamnet": both}


def baseline_distances(feats, rows) -> dict[str, np.ndarray]:
    V = baseline_vectors(feats, rows)
    ym = V["yamnet"] / np.linalg.norm(V["yamnet"], axis=1, keepdims=True)
    return {"mfcc-stats": distances(V["mfcc-stats"], "l2"), "yamnet": 1 - ym @ ym.T,
            "mfcc+yamnet": distances(V["mfcc+yamnet"], "l2")}  # fmt: skip


SHIPPED_V2 = None  # filled in main: the v2 vector's weights (stats + rhythm, mean and std, equal)


def timbre_block_weights() -> np.ndarray:
    """The timbre vector's weights up to session 17: ``1 / sqrt(size)`` of each of its six blocks (494,)."""
    from mirsearch.describe.similarity import _layout

    return 1.0 / np.sqrt(_layout()[1])


def shipped_vectors(feats, rows) -> np.ndarray:
    """The shipped code path: stored ``timbre`` features -> search vectors -> the collection's standardisation."""
    from mirsearch.describe.similarity import collection_normaliser
    from mirsearch.describe.similarity_vector import search_vector

    V = np.stack([search_vector(feats[i]["timbre"]) for i in rows])
    return collection_normaliser(V)(V).astype(np.float64)


def shipped_distances(feats, rows, tracks) -> np.ndarray:
    """Shipped ranking: L1 after average query expansion (:data:`~mirsearch.describe.similarity.EXPAND`)."""
    from mirsearch.describe.similarity import EXPAND

    return expanded_distances(shipped_vectors(feats, rows), tracks[rows], k=EXPAND, metric="l1")


def protocol_loso(blocks, feats, labels, tracks, halves, metric) -> tuple[dict, dict]:
    """Per-query AP@10 of every system (dict name -> array over all clips) and the chosen weights per fold."""
    n = len(labels)
    scores = {}
    chosen = {}
    for h in ("train", "test"):
        coll = np.flatnonzero(halves == h)
        for name, D in baseline_distances(feats, coll).items():
            scores.setdefault(name, np.zeros(n))[coll] = map10(D, labels[coll], tracks[coll])
        v2 = distances(represent(blocks, SHIPPED_V2, coll), "l1")
        scores.setdefault("timbre v2 (previous), L1", np.zeros(n))[coll] = map10(v2, labels[coll], tracks[coll])
        D = shipped_distances(feats, coll, tracks)
        scores.setdefault("shipped v3 (fixed choice)", np.zeros(n))[coll] = map10(D, labels[coll], tracks[coll])
        for s in np.unique(labels):
            fit = np.flatnonzero((halves != h) & (labels != s))
            c, inner = select_config(blocks, fit, labels, tracks, metric=metric)
            chosen[f"{h}/{s}"] = {**c, "fit_map10": round(inner, 4)}
            log.info("loso %s/%s fit %.3f %s", h, s, inner, c)
            D = config_distances(blocks, c, coll, tracks)
            q = np.flatnonzero(labels[coll] == s)
            scores.setdefault(f"chosen held out, {metric}", np.zeros(n))[coll[q]] = map10(
                D, labels[coll], tracks[coll], q
            )
    return scores, chosen


def protocol_disjoint(blocks, feats, labels, tracks, metric) -> tuple[dict, list]:
    """Per-query AP@10 averaged over the 3/3 soundtrack splits in which the clip is evaluated."""
    names = sorted(np.unique(labels))
    sums, counts, chosen = {}, np.zeros(len(labels)), []
    for fit_s in itertools.combinations(names, 3):
        fit = np.flatnonzero(np.isin(labels, fit_s))
        coll = np.flatnonzero(~np.isin(labels, fit_s))
        c, inner = select_config(blocks, fit, labels, tracks, metric=metric)
        chosen.append({"fit": list(fit_s), **c, "fit_map10": round(inner, 4)})
        systems = dict(baseline_distances(feats, coll))
        systems["timbre v2 (previous), L1"] = distances(represent(blocks, SHIPPED_V2, coll), "l1")
        systems["shipped v3 (fixed choice)"] = shipped_distances(feats, coll, tracks)
        systems[f"chosen held out, {metric}"] = config_distances(blocks, c, coll, tracks)
        for name, D in systems.items():
            sums.setdefault(name, np.zeros(len(labels)))[coll] += map10(D, labels[coll], tracks[coll])
        counts[coll] += 1
        log.info("disjoint fit %s: %.3f", fit_s, inner)
    return {k: v / np.maximum(counts, 1) for k, v in sums.items()}, chosen


def few_shot_items(labels, tracks) -> np.ndarray:
    """One clip per track (the first), in manifest order (as ``bench_similarity.few_shot_items``)."""
    _, first = np.unique(tracks, return_index=True)
    return np.sort(first)


def prototype_ap(V, support, pool, rel, *, metric: str, expand: int = 0) -> tuple[float, float]:
    """AP@10 and AP of ``pool`` ranked by distance to the mean of ``V[support]``; with ``expand``, the prototype
    is averaged with its ``expand`` nearest pool items first (the examples weighted as one query each)."""
    proto = V[support].mean(axis=0, keepdims=True)
    kind = "cityblock" if metric == "l1" else "euclidean"
    d = cdist(proto, V[pool], kind)[0]
    if expand:
        near = pool[np.argsort(d, kind="stable")[:expand]]
        proto = (V[support].sum(axis=0) + V[near].sum(axis=0))[None, :] / (len(support) + expand)
        d = cdist(proto, V[pool], kind)[0]
    r = rel[np.argsort(d, kind="stable")][None, :]
    return (per_query_scores(r, [rel.sum()], k=10)["map@10"][0],
            per_query_scores(r, [rel.sum()], k=len(pool))[f"map@{len(pool)}"][0])  # fmt: skip


SHRINKS = (0.01, 0.03, 0.1, 0.3)


def llr_ap(V, support, pool, rel, *, shrink: float) -> tuple[float, float]:
    """AP@10 and AP of ``pool`` ranked by :class:`mirsearch.describe.taught.TimbreTag` taught from ``support``
    with the rest of the collection (``pool``) as background: the shipped taught-tag ranking."""
    from mirsearch.describe.taught import fit_timbre_tag

    tag = fit_timbre_tag("t", V[support], V[pool], shrink=shrink)
    r = rel[np.argsort(tag.distance(V[pool]), kind="stable")][None, :]
    return (per_query_scores(r, [rel.sum()], k=10)["map@10"][0],
            per_query_scores(r, [rel.sum()], k=len(pool))[f"map@{len(pool)}"][0])  # fmt: skip


def select_shrink(feats, labels, tracks, halves, *, target: str, half: str, draws: int = 10) -> float:
    """The shrinkage with the best mean AP@10 on few-shot tasks of the *other* half without ``target``: every
    other soundtrack with >= 8 tracks there, its tracks relevant among the other soundtracks' (one clip each)."""
    items = few_shot_items(labels, tracks)
    items = items[(halves[items] != half) & (labels[items] != target)]
    best, best_score = SHRINKS[0], -1.0
    for shrink in SHRINKS:
        aps = []
        for s in np.unique(labels[items]):
            own = items[labels[items] == s]
            if len(own) < 8:
                continue
            coll = np.r_[own, items[labels[items] != s]]
            V = np.stack([feats[i]["_vector"] for i in coll])
            rng = np.random.default_rng(1)
            for _ in range(draws):
                support = rng.choice(len(own), 5, replace=False)
                pool = np.setdiff1d(np.arange(len(coll)), support)
                aps.append(llr_ap(V, support, pool, pool < len(own), shrink=shrink)[0])
        if aps and np.mean(aps) > best_score + 1e-4:
            best, best_score = shrink, float(np.mean(aps))
    return best


def protocol_few_shot(blocks, feats, labels, tracks, halves, chosen, *, draws: int = 20, seed: int = 0) -> dict:
    """Issue 19's check per half: 5 support tracks of a soundtrack (>= 8 tracks), the other tracks of that
    soundtrack relevant among the other soundtracks' tracks of the half; one clip per track; representation of
    the fold that never saw the target soundtrack. Returns per-draw AP@10 and AP per system."""
    items = few_shot_items(labels, tracks)
    out: dict[str, dict[str, list]] = {}
    for h in ("train", "test"):
        for s in np.unique(labels):
            own = items[labels[items] == s]
            if len(own) < 8:
                continue
            coll = np.r_[own, items[(labels[items] != s) & (halves[items] == h)]]
            c = chosen[f"{h}/{s}"]
            w = {b: 1.0 for b in BLOCK_SETS[c["blocks"]]}
            base = baseline_vectors(feats, coll)
            shrink = select_shrink(feats, labels, tracks, halves, target=s, half=h)
            chosen[f"{h}/{s}"]["shrink"] = shrink
            raw = np.stack([feats[i]["_vector"] for i in coll])
            systems = {
                "mfcc-stats": (base["mfcc-stats"], "l2", 0),
                "yamnet": (base["yamnet"], "l2", 0),
                "mfcc+yamnet": (base["mfcc+yamnet"], "l2", 0),
                "timbre v2 (previous), L1": (represent(blocks, SHIPPED_V2, coll), "l1", 0),
                "chosen held out, mean prototype": (represent(blocks, w, coll), c["metric"], 0),
                "chosen held out, prototype expanded": (represent(blocks, w, coll), c["metric"], c["expand"]),
            }
            rng = np.random.default_rng(seed)
            n_own = len(own)
            for _ in range(draws):
                support = rng.choice(n_own, 5, replace=False)
                pool = np.setdiff1d(np.arange(len(coll)), support)
                rel = pool < n_own
                rows = {name: prototype_ap(V, support, pool, rel, metric=metric, expand=k)
                        for name, (V, metric, k) in systems.items()}  # fmt: skip
                rows["shipped taught tag (TimbreTag), shrink chosen held out"] = llr_ap(raw, support, pool, rel,
                                                                                     shrink=shrink)  # fmt: skip
                rows["shipped taught tag (TimbreTag), SHRINK"] = llr_ap(raw, support, pool, rel, shrink=SHRINK)
                for name, (a10, a) in rows.items():
                    out.setdefault(name, {"map@10": [], "map": []})
                    out[name]["map@10"].append(a10)
                    out[name]["map"].append(a)
    return {n: {m: np.array(v) for m, v in d.items()} for n, d in out.items()}


def main(argv=None) -> int:
    global SHIPPED_V2
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--compute", action="store_true")
    ap.add_argument("--metric", default="l1", choices=("l1", "l2"))
    ap.add_argument("--protocols", default="loso,disjoint")
    ap.add_argument("--out", default="similarity_heldout")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    data = Path(args.data)
    if args.compute:
        print(f"{compute(data)} clips computed")
        return 0
    t0 = time.time()
    clips, feats = load_features(data)
    blocks = load_blocks(data, clips)
    from mirsearch.describe.similarity import recording_vector

    for f in feats:
        f["_vector"] = recording_vector(f["timbre"]).astype(np.float64)
    SHIPPED_V2 = {b: (1.0 if b.startswith(("stats", "rhythm")) else 0.0) for b in blocks}
    labels = np.array([c.soundtrack for c in clips])
    tracks = np.array([f"{c.soundtrack}/{c.track}" for c in clips])
    halves = np.array([c.split for c in clips])
    from mirsearch.evaluation.paired import paired_difference

    payload = {"protocol": __doc__, "clips": len(clips), "metric": args.metric}
    for proto in args.protocols.split(","):
        if proto == "loso":
            scores, chosen = protocol_loso(blocks, feats, labels, tracks, halves, args.metric)
        else:
            scores, chosen = protocol_disjoint(blocks, feats, labels, tracks, args.metric)
        best = max(("mfcc-stats", "yamnet", "mfcc+yamnet"), key=lambda n: scores[n].mean())
        payload[proto] = {
            "map@10": {n: summarize({"map@10": v})["map@10"] for n, v in scores.items()},
            "best_baseline": best,
            "against_best": {
                n: paired_difference(scores[best], v).to_dict()
                for n, v in scores.items()
                if n not in ("mfcc-stats", "yamnet", "mfcc+yamnet")
            },  # fmt: skip
            "per_soundtrack": {
                n: {s: round(float(v[labels == s].mean()), 4) for s in np.unique(labels)} for n, v in scores.items()
            },  # fmt: skip
            "per_half": {
                n: {h: round(float(v[halves == h].mean()), 4) for h in ("train", "test")} for n, v in scores.items()
            },  # fmt: skip
            "chosen": chosen,
        }
        for n, v in scores.items():
            print(f"{proto:9s} {n:45s} {v.mean():.3f}")
        if proto == "loso":
            few = protocol_few_shot(blocks, feats, labels, tracks, halves, chosen)
            fbest = max(("mfcc-stats", "yamnet", "mfcc+yamnet"), key=lambda n: few[n]["map@10"].mean())
            abest = max(("mfcc-stats", "yamnet", "mfcc+yamnet"), key=lambda n: few[n]["map"].mean())
            payload["few_shot"] = {
                "per_draw": {n: summarize(v) for n, v in few.items()},
                "best_baseline": fbest,
                "against_best": {n: paired_difference(few[fbest]["map@10"], v["map@10"]).to_dict()
                                 for n, v in few.items() if n not in ("mfcc-stats", "yamnet", "mfcc+yamnet")},
                "best_baseline_full_ap": abest,
                "against_best_full_ap": {n: paired_difference(few[abest]["map"], v["map"]).to_dict()
                                         for n, v in few.items() if n not in ("mfcc-stats", "yamnet", "mfcc+yamnet")},
            }  # fmt: skip
            for n, v in few.items():
                print(f"few-shot  {n:45s} {v['map@10'].mean():.3f} {v['map'].mean():.3f}")
    payload["seconds"] = round(time.time() - t0, 1)
    out = write_results(args.out, payload)
    print(json.dumps({"written": str(out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
