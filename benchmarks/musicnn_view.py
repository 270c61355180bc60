"""How the musicnn view of search by similarity (issue 20, session 19) was chosen: its form and patch count.

    nice -n 5 .venv/bin/python benchmarks/musicnn_view.py --check                  # the network against TensorFlow
    nice -n 5 .venv/bin/python benchmarks/musicnn_view.py --compute [--patches N]  # per-track features (cached)
    nice -n 5 .venv/bin/python benchmarks/musicnn_view.py [--patches N]            # -> results/musicnn_view[_N].json

The network is the library's (:mod:`mirsearch.features.musicnn`: the MSD checkpoint of the ``musicnn`` wheel read
without TensorFlow, rebuilt in torch). ``--check`` compares it with TensorFlow 2.15 running the wheel's own graph
on two random patches (``tests/data/musicnn_msd_tf215.npz``, made once in a separate environment; the patches are
``default_rng(seed).random((2, 187, 96)) * 3``): every output within 2e-4 of values up to 60. (The cached results
of session 19 were computed with the first version of this script, whose front end resampled with librosa; the
library's equals it within 4e-4 of the log-mel.)

Protocol (``similarity_fulltracks.py``'s whole tracks, benchmark cell of ``similarity_superset.py``: distances
averaged with expansion 2): the shipped views T, M, Y (cosine) plus one musicnn view (MSD model, at most 40 patches
per track evenly spread; penultimate, mean pool, max pool or tag probabilities; z-scored L1 or cosine), its form
chosen on one collection and measured on another (nested): both halves of 10 halvings (chosen on the other half),
the 20 collections of three soundtracks (chosen on the other three).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import write_results  # noqa: E402

CACHE = ROOT / "data" / "musicnn_view"
#: 3-s patches analysed per track at most (evenly spread; --patches)
PATCHES = 40
FORMS = [(k, f) for k in ("pen", "meanpool", "maxpool", "tags") for f in ("cos", "z")]


def _model():
    from mirsearch.features.musicnn import musicnn_model

    model = musicnn_model()
    if model is None:
        raise SystemExit("the musicnn checkpoints are needed: pip install --no-deps musicnn==0.1.0")
    return model


def _patches(y: np.ndarray, sr: int, most: int) -> np.ndarray:
    """Up to ``most`` whole 3-s log-mel patches of a signal, evenly spread (the library's choice)."""
    from mirsearch.features.musicnn import PATCH_FRAMES, log_mel, patch_starts

    L = log_mel(y, sr=sr)
    starts = patch_starts(len(L), most)
    L = np.pad(L, ((0, max(0, PATCH_FRAMES - len(L))), (0, 0)))
    return np.stack([L[s : s + PATCH_FRAMES] for s in starts])


def _cache(patches: int) -> Path:
    return CACHE if patches == PATCHES else CACHE.with_name(f"{CACHE.name}_{patches}")


def compute(data: Path, pkgs: Path, most: int = PATCHES) -> int:
    from mirsearch.datasets.soundtracks import SR, mix_track
    from similarity_fulltracks import tracks_of_manifest

    net, written, cache = _model(), 0, _cache(most)
    cache.mkdir(parents=True, exist_ok=True)
    for track, _ in tracks_of_manifest(data, pkgs):
        out = cache / f"{track.soundtrack}__{track.name}.npz"
        if out.exists():
            continue
        t0 = time.time()
        logits, pen, mean, mx = net(_patches(mix_track(track)[: int(600 * SR)], SR, most))
        np.savez(out, pen=pen.mean(0), meanpool=mean.mean(0), maxpool=mx.mean(0),
                 tags=(1 / (1 + np.exp(-logits))).mean(0))  # fmt: skip
        written += 1
        print(f"{track.soundtrack}/{track.name}: {time.time() - t0:.1f} s", flush=True)
    return written


def evaluate(data: Path, pkgs: Path, most: int = PATCHES) -> dict:
    import similarity_heldout as H
    import similarity_superset as SS
    from mirsearch.evaluation.ranking import bootstrap_mean
    from similarity_fulltracks import tracks_of_manifest

    full, parts = SS.load_items(data)["full"], SS.timbre_parts()
    zs = [np.load(_cache(most) / f"{t.soundtrack}__{t.name}.npz") for t, _ in tracks_of_manifest(data, pkgs)]
    views = {k: np.stack([z[k] for z in zs]) for k in ("pen", "meanpool", "maxpool", "tags")}

    def cos(Y):
        U = Y / np.linalg.norm(Y, axis=1, keepdims=True)
        D = 1 - U @ U.T
        return D / D[~np.eye(len(D), dtype=bool)].mean()

    def z(X):
        return SS.block_distances(X, transform="z", metric="l1")

    def scores(rows) -> dict:
        b = {k: v[rows] for k, v in full["blocks"].items()}
        labels, tracks = full["labels"][rows], full["tracks"][rows]
        best = max(v.mean() for v in SS.baselines(b, labels, tracks).values())
        base = sum(z(b["T"][:, sl]) for sl in parts) / len(parts) + z(b["M"]) + cos(b["Y"])
        out = {"shipped": H.map10(SS.expand(base / 3, 2), labels, tracks).mean() - best}
        for k, f in FORMS:
            D = (base + (cos if f == "cos" else z)(views[k][rows])) / 4
            out[(k, f)] = H.map10(SS.expand(D, 2), labels, tracks).mean() - best
        return out

    def pairs():
        for seed in range(10):
            half = SS.random_halves(full, seed)
            hv = np.array([half[t] for t in full["tracks"]])
            a, b = np.flatnonzero(hv == "train"), np.flatnonzero(hv == "test")
            yield "halves", a, b
            yield "halves", b, a
        names = np.unique(full["labels"])
        for chosen in itertools.combinations(names, 3):
            inside = np.isin(full["labels"], chosen)
            yield "three soundtracks", np.flatnonzero(~inside), np.flatnonzero(inside)

    cache, res = {}, {}
    for proto, choose_on, measure_on in pairs():
        sc = cache.setdefault(tuple(choose_on), scores(choose_on))
        se = cache.setdefault(tuple(measure_on), scores(measure_on))
        pick = max(FORMS, key=lambda c: sc[c])
        r = res.setdefault(proto, {"nested": [], "shipped": [], "chosen": [], "every form": {}})
        r["nested"].append(float(se[pick]))
        r["shipped"].append(float(se["shipped"]))
        r["chosen"].append(" ".join(pick))
        for c in FORMS:
            r["every form"].setdefault(" ".join(c), []).append(float(se[c]))
    out = {}
    for proto, r in res.items():
        d = bootstrap_mean(np.subtract(r["nested"], r["shipped"])).to_dict()
        shipped, nested = float(np.mean(r["shipped"])), float(np.mean(r["nested"]))
        forms = {k: round(float(np.mean(v)), 4) for k, v in r["every form"].items()}
        out[proto] = {"shipped": round(shipped, 4), "with musicnn, nested": round(nested, 4), "difference": d,
                      "chosen": r["chosen"], "every form (post hoc)": forms}  # fmt: skip
        print(f"{proto:18s} shipped {shipped:+.3f}  + musicnn (nested) {nested:+.3f}  "
              f"difference {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]")  # fmt: skip
    return out


def main(argv=None) -> int:
    from similarity_features import DATA
    from similarity_fulltracks import PKGS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compute", action="store_true", help="compute the missing per-track features")
    ap.add_argument("--patches", type=int, default=PATCHES, help="3-s patches analysed per track at most")
    ap.add_argument("--check", action="store_true", help="compare with TensorFlow's outputs (tests/data)")
    args = ap.parse_args(argv)
    if args.check:
        ref = np.load(ROOT / "tests" / "data" / "musicnn_msd_tf215.npz")
        X = (np.random.default_rng(int(ref["seed"])).random((2, 187, 96)) * 3).astype(np.float32)
        got = _model()(X)
        for name, a in zip(("logits", "pen", "mean", "mx"), got, strict=True):
            diff, top = np.abs(a - ref[name]).max(), np.abs(ref[name]).max()
            print(f"{name}: largest difference {diff:.2e} (largest value {top:.1f})")
        return 0
    if args.compute:
        print(f"{compute(DATA, PKGS, args.patches)} track feature files written")
        return 0
    t0 = time.time()
    payload = {"protocol": __doc__, "patches": args.patches, **evaluate(DATA, PKGS, args.patches)}
    payload["seconds"] = round(time.time() - t0)
    name = "musicnn_view" + ("" if args.patches == PATCHES else f"_{args.patches}")
    print(json.dumps({"written": str(write_results(name, payload))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
