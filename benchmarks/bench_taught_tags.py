"""A tag taught from 5 recordings of one real soundtrack (issue 19's few-shot check): the shipped taught tags
(:func:`mirsearch.describe.taught.fit_space_tag`, each space) against the baseline prototypes.

    nice -n 10 .venv/bin/python benchmarks/bench_taught_tags.py --protocol tune     # the choice (train half)
    nice -n 10 .venv/bin/python benchmarks/bench_taught_tags.py --protocol test     # once, after the choice
    nice -n 10 .venv/bin/python benchmarks/bench_taught_tags.py --protocol mixed    # session 9/10's draws
    nice -n 10 .venv/bin/python benchmarks/bench_taught_tags.py --superset --out taught_tags_tune_superset
    nice -n 10 .venv/bin/python benchmarks/bench_taught_tags.py --superset --resplits 5   # diagnostic: random halves

Data: ``data/soundtracks`` (benchmarks/build_soundtracks.py, benchmarks/similarity_features.py), one clip per
track (the first), the tagger's embeddings of the packaged bundle (cached by benchmarks/similarity_tagger.py).
Protocols (every soundtrack with >= 8 tracks in the half is a target; 20 draws of 5 support tracks each; the
target's other tracks are relevant among the other soundtracks' tracks; the background of a taught tag is the
collection without its examples):

- ``tune``: the collection is the train half of the tracks (target and distractors);
- ``test``: the same on the test half (tracks in no tuning draw);
- ``mixed``: session 9/10's draws: the target's tracks of both halves among the distractors of one half.

Baselines (no fitting): prototypes (mean, Euclidean) of MFCC statistics (z-scored over the collection), of the
mean YAMNet embedding, and of both combined (each block z-scored and weighted by the root of its size). Mean
average precision over the full ranking (the issue's figure) and at 10; paired differences against the best
baseline (by full-list AP), bootstrap intervals over draws.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from scipy.spatial.distance import cdist  # noqa: E402

from mirsearch.evaluation.paired import paired_difference  # noqa: E402
from mirsearch.evaluation.ranking import per_query_scores, summarize  # noqa: E402
from similarity_features import DATA, load_features  # noqa: E402

from _common import write_results  # noqa: E402

log = logging.getLogger("bench_taught_tags")
BASELINES = ("mfcc-stats", "yamnet", "mfcc+yamnet")
#: the baselines and their late fusion (with ``--fusion``): the best of those present is the reference
BASELINE_ROWS = (*BASELINES, "fusion M+Y")


def _zscore(V: np.ndarray) -> np.ndarray:
    return (V - V.mean(axis=0)) / (V.std(axis=0) + 1e-9)


def representations(feats, embeddings: np.ndarray) -> dict[str, np.ndarray]:
    """Per-clip vectors: the baselines' raw inputs and the three spaces of the shipped taught tags."""
    from mirsearch.describe.similarity import recording_vector
    from mirsearch.describe.taught import fused_vector
    from mirsearch.features.timbre_stats import core_rows, mfcc_statistics, timbre_vector

    full = np.stack([timbre_vector(core_rows(f["timbre"])) for f in feats]).astype(np.float64)
    return {
        "mfcc": np.stack([mfcc_statistics(f["mfcc"]) for f in feats]).astype(np.float64),
        "yamnet": np.stack([f["yamnet"].mean(axis=0) for f in feats]).astype(np.float64),
        "timbre": np.stack([recording_vector(f["timbre"]) for f in feats]).astype(np.float64),
        "embedding": embeddings.astype(np.float64),
        "embedding+timbre": fused_vector(embeddings, full),
    }


def draws(labels, halves, items, protocol: str, *, n_draws: int = 20, seed: int = 0):
    """``(collection rows, support, pool, relevant, target)`` of every draw (module docstring)."""
    for h in ("train", "test"):
        if protocol != "mixed" and h != {"tune": "train", "test": "test"}[protocol]:
            continue
        for s in np.unique(labels):
            own = items[labels[items] == s]
            if protocol != "mixed":
                own = own[halves[own] == h]
            if len(own) < 8:
                continue
            coll = np.r_[own, items[(labels[items] != s) & (halves[items] == h)]]
            rng = np.random.default_rng(seed)
            for _ in range(n_draws):
                support = rng.choice(len(own), 5, replace=False)
                pool = np.setdiff1d(np.arange(len(coll)), support)
                yield coll, support, pool, pool < len(own), s


def _aps(score: np.ndarray, rel: np.ndarray) -> tuple[float, float]:
    r = rel[np.argsort(-score, kind="stable")][None, :]
    return (per_query_scores(r, [rel.sum()], k=10)["map@10"][0],
            per_query_scores(r, [rel.sum()], k=len(rel))[f"map@{len(rel)}"][0])  # fmt: skip


def scores_of_draw(R: dict[str, np.ndarray], coll, support, pool) -> dict[str, np.ndarray]:
    """Every system's score (higher: more like the examples) of the pool's items."""
    from mirsearch.describe.taught import SPACES, fit_space_tag

    def proto(V):
        return -cdist(V[support].mean(axis=0, keepdims=True), V[pool])[0]

    mf, ym = _zscore(R["mfcc"][coll]), R["yamnet"][coll]
    both = np.c_[mf / np.sqrt(mf.shape[1]), _zscore(ym) / np.sqrt(ym.shape[1])]
    out = {"mfcc-stats": proto(mf), "yamnet": proto(ym), "mfcc+yamnet": proto(both)}
    for space in (s for s in SPACES if s in R):  # "learned" only with --learned
        V = R[space][coll]
        tag = fit_space_tag("t", V[support], V[pool], space=space)
        out[f"taught tag, {space}"] = -tag.distance(V[pool])
    return out


#: session 12: the baselines' blocks and the tagger's beside each other, each transformed over the collection
#: (``z`` or ``pcaw3``, benchmarks/similarity_superset.py), scored by a shrunk Gaussian (0.3), by the mean CSLS or
#: mutual-proximity distance to the examples, or by the prototype with its 2 nearest recordings (expansion)
SUPERSET_SETS = ("M+Y", "M+Y+E+C", "T+M+Y+E+C")


def superset_scores(R: dict[str, np.ndarray], coll, support, pool) -> dict[str, np.ndarray]:
    """The ``--superset`` rows of a draw: ``superset <transform>/<block set>/<scoring>`` (higher: more like the
    examples). Blocks: M (MFCC statistics), Y (YAMNet), E (tagger embedding), C (the cepstral-spread timbre
    block), T (the similarity vector's six blocks)."""
    from mirsearch.describe.taught import fit_timbre_tag
    from similarity_superset import csls, mutual_proximity, timbre_parts, whiten

    raw = {"M": R["mfcc"], "Y": R["yamnet"], "E": R["embedding"], "T": R["timbre"],
           "C": R["embedding+timbre"][:, R["embedding"].shape[1] :]}  # fmt: skip
    out = {}
    for how in ("z", "pcaw3"):
        Z = {}
        for k, X in raw.items():
            X = X[coll]
            if k == "T":
                Zk = np.concatenate([_zscore(X[:, sl]) / np.sqrt(sl.stop - sl.start) for sl in timbre_parts()], 1)
            else:
                Zk = _zscore(X) if how == "z" else whiten(X, 3.0)
            D = cdist(Zk, Zk)
            Z[k] = Zk / D[~np.eye(len(D), dtype=bool)].mean()
        for bs in SUPERSET_SETS:
            W = np.concatenate([Z[k] for k in bs.split("+")], axis=1)
            D = cdist(W, W)
            near = pool[np.argsort(cdist(W[support].mean(axis=0, keepdims=True), W[pool])[0])[:2]]
            proto = np.r_[W[support], W[near]].mean(axis=0, keepdims=True)
            tag = fit_timbre_tag("t", W[support], W[pool], shrink=0.3)
            rows = {"gauss": -tag.distance(W[pool]), "csls": -csls(D)[support][:, pool].mean(axis=0),
                    "mp": -mutual_proximity(D)[support][:, pool].mean(axis=0),
                    "proto+2": -cdist(proto, W[pool])[0]}  # fmt: skip
            out.update({f"superset {how}/{bs}/{n}": v for n, v in rows.items()})
    return out


#: session 13: late fusion of per-space scores, each standardised over the draw's background (the collection
#: without the examples): ``{name: rows of scores_of_draw / superset_scores}``; ``learned`` rows need ``--learned``
FUSIONS = {
    "M+Y": ("mfcc-stats", "yamnet"),
    "E+C, T": ("taught tag, embedding+timbre", "taught tag, timbre"),
    "E+C, M, Y": ("taught tag, embedding+timbre", "mfcc-stats", "yamnet"),
    "E+C, T, M, Y": ("taught tag, embedding+timbre", "taught tag, timbre", "mfcc-stats", "yamnet"),
    "E+C, L": ("taught tag, embedding+timbre", "learned prototype"),
    "E+C, T, L": ("taught tag, embedding+timbre", "taught tag, timbre", "learned prototype"),
    "E+C, T, L, M, Y": ("taught tag, embedding+timbre", "taught tag, timbre", "learned prototype", "mfcc-stats",
                        "yamnet"),
}  # fmt: skip


def fusion_scores(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The :data:`FUSIONS` rows of a draw: the mean of the members' scores, each z-scored over the pool."""
    z = {n: (v - v.mean()) / (v.std() + 1e-12) for n, v in rows.items()}
    return {f"fusion {name}": sum(z[m] for m in members) / len(members) for name, members in FUSIONS.items()
            if all(m in z for m in members)}  # fmt: skip


def learned_rows(R: dict[str, np.ndarray], support, pool) -> dict[str, np.ndarray]:
    """The learned embedding's rows: distance to the examples' mean, and a shrunk Gaussian (0.3) in its space."""
    from mirsearch.describe.taught import fit_timbre_tag

    V = R["learned"]
    tag = fit_timbre_tag("t", V[support], V[pool], shrink=0.3)
    return {"learned prototype": -cdist(V[support].mean(axis=0, keepdims=True), V[pool])[0],
            "taught tag, learned": -tag.distance(V[pool])}  # fmt: skip


def learned_space(full: dict, segments: list[np.ndarray], fit_tracks, *, epochs: int = 12, seed: int = 0):
    """Every clip (its per-segment vectors ``segments``) embedded by the self-supervised network
    (benchmarks/similarity_selfsup.py) trained, without labels, on the whole files of ``fit_tracks``."""
    from similarity_selfsup import train

    fit = np.flatnonzero(np.isin(full["tracks"], list(fit_tracks)))
    model = train([full["segments"][i] for i in fit], part_segments=8, epochs=epochs, seed=seed)
    return np.stack([model.embed(S) for S in segments]).astype(np.float64)


def add_learned(L: dict, data: Path) -> dict:
    """``L`` with the whole files (``full``), every item's segment vectors and ``R["learned"]`` trained on the
    fixed train half's whole files."""
    from mirsearch.describe.similarity import part_vectors
    from similarity_selfsup import load_full

    if "full" not in L:
        segments = [part_vectors(f["timbre"], parts=10**6) for f in load_features(data)[1]]
        L = dict(L, full=load_full(data), segments=segments)
    full, segments = L["full"], L["segments"]
    L["R"]["learned"] = learned_space(full, segments, full["tracks"][full["halves"] == "train"])
    return L


def load(data: Path) -> dict:
    """Representations, soundtracks, tracks and halves of the clips, the first clip of every track (``items``)."""
    from similarity_tagger import tagger_vectors

    clips, feats = load_features(data)
    _, embeddings, model_id = tagger_vectors(clips, data)
    tracks = np.array([f"{c.soundtrack}/{c.track}" for c in clips])
    _, first = np.unique(tracks, return_index=True)
    return {"R": representations(feats, embeddings), "labels": np.array([c.soundtrack for c in clips]),
            "tracks": tracks, "halves": np.array([c.split for c in clips]), "items": np.sort(first),
            "model_id": model_id}  # fmt: skip


def draw_scores(protocol: str, L: dict, *, superset: bool = False, fusion: bool = False, only=None):
    """Per system, the full-list AP and AP@10 of every draw of the protocol (targets in ``only``, default all),
    and the draws' targets."""
    R = L["R"]
    per: dict[str, dict[str, list]] = {}
    targets = []
    for coll, support, pool, rel, target in draws(L["labels"], L["halves"], L["items"], protocol):
        if only is not None and target not in only:
            continue
        targets.append(target)
        rows = scores_of_draw(R, coll, support, pool)
        if "learned" in R:
            rows.update(learned_rows(R, support, pool))
        if superset:
            rows.update(superset_scores(R, coll, support, pool))
        if fusion:
            rows.update(fusion_scores(rows))
        for name, sc in rows.items():
            a10, a = _aps(sc, rel)
            per.setdefault(name, {"map@10": [], "map": []})
            per[name]["map@10"].append(a10)
            per[name]["map"].append(a)
    return {n: {m: np.array(v) for m, v in d.items()} for n, d in per.items()}, np.array(targets)


def summary(protocol: str, per: dict, targets: np.ndarray, model_id: str) -> dict:
    best = max((b for b in BASELINE_ROWS if b in per), key=lambda n: per[n]["map"].mean())
    return {
        "protocol": protocol,
        "draws": len(targets),
        "tagger_model_id": model_id,
        "systems": {n: summarize(v) for n, v in per.items()},
        "per_target_map": {
            n: {t: round(float(v["map"][targets == t].mean()), 4) for t in np.unique(targets)} for n, v in per.items()
        },  # fmt: skip
        "best_baseline": best,
        "against_best_map": {
            n: paired_difference(per[best]["map"], v["map"]).to_dict() for n, v in per.items() if n not in BASELINE_ROWS
        },  # fmt: skip
    }


def whole_file_embeddings(data: Path, names, model_id: str, *, max_seconds: float = 600.0) -> np.ndarray:
    """The packaged tagger's recording embedding of every whole track (``names`` in the manifest's order, as
    :func:`similarity_fulltracks.tracks_of_manifest` lists them; the first ``max_seconds`` as that script decodes),
    computed by :func:`mirsearch.describe.tagger.analyse` and cached per model and "tags" kind version in
    ``full/tagger-<model id>-v<version>.npz``."""
    from mirsearch._util import atomic_path
    from mirsearch.datasets.soundtracks import SR, mix_track
    from mirsearch.describe.tagger import analyse
    from mirsearch.features.tag_features import TAGS_VERSION
    from similarity_fulltracks import PKGS, tracks_of_manifest

    path = data / "full" / f"tagger-{model_id}-v{TAGS_VERSION}.npz"
    if path.exists():
        with np.load(path) as z:
            if list(z["names"]) != list(names):
                raise SystemExit(f"{path}: its tracks are not the manifest's (delete it to recompute)")
            return z["embeddings"].astype(np.float64)
    tracks = tracks_of_manifest(data, PKGS)
    E = []
    for i, (track, _) in enumerate(tracks):
        E.append(analyse(mix_track(track)[: int(max_seconds * SR)], SR).embedding)
        log.info("tagger embedding %d/%d %s", i + 1, len(tracks), track.name)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, names=np.asarray(list(names)), embeddings=np.stack(E).astype(np.float32))
    return np.stack(E).astype(np.float64)


def load_whole_files(data: Path) -> dict:
    """As :func:`load` for the whole audio files (benchmarks/similarity_fulltracks.py's cache, the tagger's
    embeddings of them from :func:`whole_file_embeddings`): every track one item."""
    from mirsearch.describe.taught import fused_vector
    from mirsearch.features.timbre_stats import core_rows, timbre_vector
    from mirsearch.models.tagger import TaggerModel
    from similarity_fulltracks import PKGS, _cache, tracks_of_manifest
    from similarity_selfsup import load_full

    full = load_full(data)
    model_id = str(TaggerModel.load().config.get("model_id", "unknown"))
    E = whole_file_embeddings(data, full["tracks"], model_id)
    T = np.stack([timbre_vector(core_rows(np.load(_cache(data, t.soundtrack, t.name))["timbre"]))
                  for t, _ in tracks_of_manifest(data, PKGS)]).astype(np.float64)  # fmt: skip
    R = {"mfcc": full["M"], "yamnet": full["Y"], "timbre": full["T"], "embedding": E,
         "embedding+timbre": fused_vector(E, T)}  # fmt: skip
    return {"R": R, "labels": full["labels"], "tracks": full["tracks"], "halves": full["halves"],
            "items": np.arange(len(full["tracks"])), "model_id": model_id, "full": full,
            "segments": full["segments"]}  # fmt: skip


def run(protocol: str, data: Path | dict, *, superset: bool = False, fusion: bool = False) -> dict:
    """Every system's full-list AP and AP@10 over the protocol's draws; ``data``: a folder or :func:`load`'s dict."""
    L = data if isinstance(data, dict) else load(data)
    per, targets = draw_scores(protocol, L, superset=superset, fusion=fusion)
    return summary(protocol, per, targets, L["model_id"])


def leave_soundtrack_out(L: dict, *, fusion: bool) -> dict:
    """Both halves' draws (``tune`` and ``test``), each target's with the network trained on the whole files of
    the *other* soundtracks only (both halves; no labels): the target soundtrack never heard."""
    pooled: dict[str, dict[str, list]] = {}
    all_targets = []
    for target in ("colobot", "singularity", "ufoai"):
        others = L["full"]["tracks"][L["full"]["labels"] != target]
        Lt = dict(L, R=dict(L["R"], learned=learned_space(L["full"], L["segments"], others)))
        for protocol in ("tune", "test"):
            per, targets = draw_scores(protocol, Lt, fusion=fusion, only={target})
            all_targets.extend(targets)
            for n, d in per.items():
                for m, v in d.items():
                    pooled.setdefault(n, {}).setdefault(m, []).extend(v)
    per = {n: {m: np.array(v) for m, v in d.items()} for n, d in pooled.items()}
    return summary("leave the target soundtrack out, both halves", per, np.array(all_targets), L["model_id"])


def resplits(data: Path | dict, n: int, *, superset: bool, fusion: bool = False) -> dict:
    """Both halves of ``n`` random track-disjoint halvings (each soundtrack's tracks shuffled and dealt
    alternately; seeds 0 .. n-1): every system's margin over the best baseline (full-list AP), and (nested) the
    margin of the system with the best margin on the other half of the same halving (``"chosen on the other
    half"``)."""
    from mirsearch.evaluation.ranking import bootstrap_mean

    L = data if isinstance(data, dict) else load(data)
    margins: dict[str, list[float]] = {}
    chosen = []
    for seed in range(n):
        rng, half = np.random.default_rng(seed), {}
        for s in np.unique(L["labels"]):
            for i, t in enumerate(rng.permutation(np.unique(L["tracks"][L["labels"] == s]))):
                half[t] = "train" if i % 2 == 0 else "test"
        split = dict(L, halves=np.array([half[t] for t in L["tracks"]]))
        got = {}
        for protocol in ("tune", "test"):
            if "full" in L:  # the network trained on the other half's whole files only (nested)
                other = [t for t, h in half.items() if h == ("test" if protocol == "tune" else "train")]
                R = dict(L["R"], learned=learned_space(L["full"], L["segments"], other, seed=seed))
                split = dict(split, R=R)
            res = run(protocol, split, superset=superset, fusion=fusion)
            got[protocol] = {name: d["mean"] for name, d in res["against_best_map"].items()}
            for name, m in got[protocol].items():
                margins.setdefault(name, []).append(m)
            log.info("seed %d %s: %s", seed, protocol, {k: round(v[-1], 3) for k, v in margins.items()})
        for fit, ev in (("tune", "test"), ("test", "tune")):
            pick = max(got[fit], key=got[fit].get)
            chosen.append({"seed": seed, "fit": fit, "system": pick, "margin": got[ev][pick]})
    margins["chosen on the other half"] = [c["margin"] for c in chosen]
    return {"halves": 2 * n, "margins": margins, "chosen": chosen,
            "mean_margin": {k: bootstrap_mean(v).to_dict() for k, v in margins.items()}}  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--protocol", default="tune", choices=("tune", "test", "mixed"))
    ap.add_argument("--out", default=None, help="results name (default taught_tags_<protocol>)")
    ap.add_argument("--superset", action="store_true", help="also the session-12 superset rows (SUPERSET_SETS)")
    ap.add_argument("--resplits", type=int, default=0, help="both halves of N random halvings (and nested)")
    ap.add_argument("--fusion", action="store_true", help="also the session-13 late fusions (FUSIONS)")
    ap.add_argument("--learned", action="store_true", help="also the self-supervised embedding's rows")
    ap.add_argument("--loso", action="store_true", help="with --learned: the network never hears the target")
    ap.add_argument("--whole-files", action="store_true", help="items: the whole audio files, not first clips")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    L = load_whole_files(Path(args.data)) if args.whole_files else load(Path(args.data))
    if args.learned:
        L = add_learned(L, Path(args.data))
    if args.resplits:
        res = resplits(L, args.resplits, superset=args.superset, fusion=args.fusion)
        for n, v in res["mean_margin"].items():
            print(f"{n:36s} {v['mean']:+.3f} [{v['low']:+.3f}, {v['high']:+.3f}]  min {min(res['margins'][n]):+.3f}")
        print(json.dumps({"written": str(write_results(args.out or "taught_tags_resplits", res))}))
        return 0
    if args.loso:
        res = leave_soundtrack_out(L, fusion=args.fusion)
    else:
        res = run(args.protocol, L, superset=args.superset, fusion=args.fusion)
    for n, v in res["systems"].items():
        d = res["against_best_map"].get(n)
        diff = f"  {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]" if d else ""
        print(f"{n:36s} AP@10 {v['map@10']['mean']:.3f}  AP {v['map']['mean']:.3f}{diff}")
    out = write_results(args.out or f"taught_tags_{args.protocol}", res)
    print(json.dumps({"written": str(out), "best_baseline": res["best_baseline"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
