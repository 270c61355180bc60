"""Bag-of-segments codebook descriptors of a recording beside the shipped timbre vector (issue 20, session 17),
judged over many random halvings (nested), over the soundtrack-disjoint 3/3 splits, and once on the fixed test half.

    nice -n 10 .venv/bin/python benchmarks/similarity_codebook.py --resplits 10              # 20 evaluated halves
    nice -n 10 .venv/bin/python benchmarks/similarity_codebook.py --resplits 1 --disjoint    # 20 3/3 splits
    nice -n 10 .venv/bin/python benchmarks/similarity_codebook.py --half train               # choice, fixed train half
    nice -n 10 .venv/bin/python benchmarks/similarity_codebook.py --half test                # once: that choice on test
    # after seeing the declared grid (k = 8-64) favour the largest histograms, post hoc and exploratory:
    nice -n 10 .venv/bin/python benchmarks/similarity_codebook.py --resplits 10 --ks 128 256 \
        --out similarity_codebook_resplits_k128_256
    nice -n 10 .venv/bin/python benchmarks/similarity_codebook.py --resplits 1 --disjoint --ks 128 256 \
        --out similarity_codebook_disjoint_k128_256

Items: the 114 whole audio files of the six soundtracks (benchmarks/similarity_fulltracks.py's cache, loaded by
similarity_selfsup.load_full), each described by its stored ``timbre`` kind. A codebook is fitted per collection
and without labels, as the z-scoring of the shipped vector is: every stored 4-s segment's raw 494-value vector of
the collection, z-scored over the collection's segments, each of the six timbre blocks divided by the root of its
width (the blocks weigh alike, as in ``T``), projected on the first ``d`` principal axes (32 or 64), and a
diagonal-covariance Gaussian mixture of ``k`` components (8, 16, 32, 64; k-means initialised, seed 0) fitted on
them. A recording, from its segments' posteriors (soft assignments):

* ``hist``: the mean posterior (a soft histogram over the codewords), Hellinger distance;
* ``chi2``: the same histogram, chi-square distance;
* ``vlad``: per-codeword posterior-weighted sums of residuals from the component means, signed square root, L2
  normalised; Euclidean distance;
* ``sv``: the GMM mean supervector (means MAP-adapted to the recording, relevance factor 8, offsets from the
  collection's means scaled by ``sqrt(weight) / sigma``, the KL-kernel form); Euclidean distance.

Cells (each block's distances divided by their mean off the diagonal; expansion ``e``: a query's distances averaged
with those of its nearest ``e`` items): ``T`` (shipped vector, six z-scored blocks, L1), a codebook block ``C``
alone, ``T+C`` with ``C`` weighing 0.5 / 1 / 2; expansion 0 or 2. The choice: the cell with the best MAP@10 on the
fitting half (labels used only to choose); measured on the other half as the margin over that half's best baseline
(MFCC statistics, YAMNet mean embedding, both). ``--resplits N``: N random track-disjoint halvings, each direction
once; ``--disjoint``: every split of the six soundtracks into 3 + 3, each direction once. Besides the all-cells
choice, the choice restricted to the ``T+C`` cells of one descriptor (``choice:hist`` ...) and every fixed cell
(in-sample diagnostics: the fixed cell was not chosen on the other half) are reported.
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
from similarity_selfsup import EXPANSIONS, SHIPPED, WEIGHTS, halvings, load_full, scaled  # noqa: E402

from _common import write_results  # noqa: E402

log = logging.getLogger("similarity_codebook")
KS = (8, 16, 32, 64)
DIMS = (32, 64)
DESCRIPTORS = ("hist", "chi2", "vlad", "sv")
RELEVANCE = 8.0


def segment_space(segments: list[np.ndarray], dim: int) -> list[np.ndarray]:
    """The collection's segments z-scored over the collection, blocks weighed alike, on ``dim`` principal axes.

    Parameters
    ----------
    segments : list of np.ndarray, each shape (n_i, 494)
        Every recording's raw segment vectors.
    dim : int
        Principal axes kept.

    Returns
    -------
    list of np.ndarray, each shape (n_i, dim)
    """
    X = H.zscore(np.concatenate(segments))
    for sl in SS.timbre_parts():
        X[:, sl] /= np.sqrt(sl.stop - sl.start)
    X -= X.mean(axis=0)
    _, _, Vt = np.linalg.svd(X, full_matrices=False)
    Y = X @ Vt[:dim].T
    return np.split(Y, np.cumsum([len(s) for s in segments])[:-1])


def descriptors(Y: list[np.ndarray], k: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Distances (n, n) of every codebook descriptor of ``k`` codewords fitted on the collection's segments ``Y``."""
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(k, covariance_type="diag", reg_covar=1e-3, max_iter=200, random_state=seed)
    gmm.fit(np.concatenate(Y))
    mu, var, w = gmm.means_, gmm.covariances_, gmm.weights_
    hist, vlad, sv = [], [], []
    for S in Y:
        G = gmm.predict_proba(S)  # (n_i, k)
        n = G.sum(axis=0)  # (k,)
        hist.append(n / len(S))
        R = G.T @ S - n[:, None] * mu  # (k, dim): posterior-weighted residual sums
        v = np.sign(R) * np.sqrt(np.abs(R))
        vlad.append((v / (np.linalg.norm(v) + 1e-12)).ravel())
        alpha = (n / (n + RELEVANCE))[:, None]
        adapted = alpha * (R / np.maximum(n, 1e-12)[:, None]) + mu  # MAP-adapted means: alpha E_k + (1 - alpha) mu
        sv.append((np.sqrt(w)[:, None] * (adapted - mu) / np.sqrt(var)).ravel())
    Hh = np.sqrt(np.stack(hist))
    P = np.stack(hist)
    chi = 0.5 * ((P[:, None, :] - P[None, :, :]) ** 2 / (P[:, None, :] + P[None, :, :] + 1e-12)).sum(axis=2)
    return {"hist": scaled(cdist(Hh, Hh)), "chi2": scaled(chi), "vlad": scaled(cdist(np.stack(vlad), np.stack(vlad))),
            "sv": scaled(cdist(np.stack(sv), np.stack(sv)))}  # fmt: skip


def cells(T: np.ndarray, segments: list[np.ndarray], ks=KS) -> dict[tuple, np.ndarray]:
    """Distances of every cell ``(codebook, weight of C, expansion)`` over one collection (``"T"``: none)."""
    DT = SS.block_distances(T, transform="z", metric="l1", parts=SS.timbre_parts())
    out = {("T", 0.0, e): SS.expand(DT, e) for e in EXPANSIONS}
    for dim in DIMS:
        Y = segment_space(segments, dim)
        for k in ks:
            for name, DC in descriptors(Y, k).items():
                code = f"{name}-k{k}-d{dim}"
                for e in EXPANSIONS:
                    out[(code, 1.0, e)] = SS.expand(DC, e)
                    for w in WEIGHTS:
                        out[(f"T+{code}", w, e)] = SS.expand((DT + w * DC) / (1 + w), e)
    return out


def evaluate(p: dict, rows: np.ndarray, ks=KS) -> tuple[dict, dict]:
    """Per-query MAP@10 of the baselines and of every cell on the collection ``rows``."""
    labels, tracks = p["labels"][rows], p["tracks"][rows]
    base = SS.baselines({"M": p["M"][rows], "Y": p["Y"][rows]}, labels, tracks)
    got = cells(p["T"][rows], [p["segments"][i] for i in rows], ks)
    return base, {c: H.map10(D, labels, tracks) for c, D in got.items()}


def key(cell: tuple) -> str:
    return "/".join(map(str, cell))


def families(cells_: list[tuple]) -> dict[str, list[tuple]]:
    """The candidate sets chosen among: all cells, and the ``T+C`` cells of each descriptor (with ``T``)."""
    out = {"choice:all": list(cells_)}
    for d in DESCRIPTORS:
        out[f"choice:{d}"] = [c for c in cells_ if c[0] == "T" or c[0].startswith(f"T+{d}-")]
    return out


def measure(fit: tuple[dict, dict], ev: tuple[dict, dict]) -> dict:
    """Choose on ``fit`` (its baselines and cells), measure on ``ev``: margins over ``ev``'s best baseline."""
    (base_f, got_f), (base_e, got_e) = fit, ev
    best_f = max(v.mean() for v in base_f.values())
    best = max(base_e, key=lambda n: base_e[n].mean())
    ref = base_e[best].mean()
    out = {"best_baseline": best, "best_baseline_map": float(ref), "choices": {}}
    for fam, cand in families(list(got_f)).items():
        cell = max(cand, key=lambda c: got_f[c].mean())
        out["choices"][fam] = {"cell": key(cell), "fit_margin": float(got_f[cell].mean() - best_f),
                               "margin": float(got_e[cell].mean() - ref)}  # fmt: skip
    out["shipped"] = float(got_e[SHIPPED].mean() - ref)
    out["cells"] = {key(c): float(v.mean() - ref) for c, v in got_e.items()}
    return out


def resplits(p: dict, n: int, args) -> dict:
    cache: dict[tuple, tuple] = {}

    def collection(rows: np.ndarray):
        k = tuple(rows)
        if k not in cache:
            t0 = time.time()
            cache[k] = evaluate(p, rows, args.ks)
            log.info("collection of %d recordings: %d cells (%.0f s)", len(rows), len(cache[k][1]), time.time() - t0)
        return cache[k]

    rows, last = [], None
    for seed, fit, fit_rows, ev_rows in halvings(p, n, disjoint=args.disjoint):
        if seed != last:  # both directions of one split share its two collections
            cache.clear()
            last = seed
        r = measure(collection(fit_rows), collection(ev_rows))
        rows.append({"seed": seed, "fit": fit, **r})
        c = r["choices"]["choice:all"]
        log.info("seed %d fit %s: %s chosen %+.3f shipped %+.3f (fit %+.3f)", seed, fit, c["cell"], c["margin"],
                 r["shipped"], c["fit_margin"])  # fmt: skip
    series = {"shipped": [r["shipped"] for r in rows]}
    for fam in rows[0]["choices"]:
        series[fam] = [r["choices"][fam]["margin"] for r in rows]
    for c in rows[0]["cells"]:
        series[c] = [r["cells"][c] for r in rows]
    summary = {}
    for what, v in series.items():
        summary[what] = {**bootstrap_mean(v).to_dict(), "min": min(v), "max": max(v),
                         "at_least_0.05": int(sum(x >= 0.05 for x in v)),
                         "minus_shipped": bootstrap_mean(np.subtract(v, series["shipped"])).to_dict()}  # fmt: skip
    head = ["shipped", *(f for f in series if f.startswith("choice:"))]
    fixed = sorted((w for w in series if w not in head), key=lambda w: -summary[w]["mean"])
    for what in head + fixed[:15]:
        s = summary[what]
        tag = "" if what in head else "  (fixed cell: in-sample)"
        print(f"{what:28s} {s['mean']:+.3f} [{s['low']:+.3f}, {s['high']:+.3f}] min {s['min']:+.3f} "
              f"max {s['max']:+.3f} >=0.05: {s['at_least_0.05']}; minus shipped {s['minus_shipped']['mean']:+.3f} "
              f"[{s['minus_shipped']['low']:+.3f}, {s['minus_shipped']['high']:+.3f}]{tag}", flush=True)  # fmt: skip
    return {"splits": rows, "summary": summary, "best_fixed_cells": fixed[:15]}


def fixed_half(p: dict, args) -> dict:
    """Choose on the fixed train half; ``--half test`` measures that choice on the test half (run once)."""
    fit_rows, ev_rows = np.flatnonzero(p["halves"] == "train"), np.flatnonzero(p["halves"] == "test")
    fit = evaluate(p, fit_rows, args.ks)
    base_f, got_f = fit
    best_f = max(v.mean() for v in base_f.values())
    cell = max(got_f, key=lambda c: got_f[c].mean())
    ranked = sorted(got_f, key=lambda c: -got_f[c].mean())
    out = {"cell": key(cell), "fit_margin": float(got_f[cell].mean() - best_f),
           "fit_shipped": float(got_f[SHIPPED].mean() - best_f),
           "fit_top10": {key(c): float(got_f[c].mean() - best_f) for c in ranked[:10]}}  # fmt: skip
    if args.half == "train":
        return out
    base_e, got_e = evaluate(p, ev_rows, args.ks)
    best = max(base_e, key=lambda n: base_e[n].mean())
    base, chosen, shipped = base_e[best], got_e[cell], got_e[SHIPPED]
    out.update(best_baseline=best, against_best=paired_difference(base, chosen).to_dict(),
               shipped_against_best=paired_difference(base, shipped).to_dict(),
               chosen_against_shipped=paired_difference(shipped, chosen).to_dict(),
               map10={"best baseline": float(base.mean()), "chosen": float(chosen.mean()),
                      "shipped": float(shipped.mean())})  # fmt: skip
    return out


def rounded(x, digits: int = 4):
    """``x`` with every float rounded to ``digits`` decimals (the per-cell margins of 20 halves are most of a results
    file)."""
    if isinstance(x, float):
        return round(x, digits)
    if isinstance(x, dict):
        return {k: rounded(v, digits) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [rounded(v, digits) for v in x]
    return x


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--half", choices=("train", "test"), default="train")
    ap.add_argument("--resplits", type=int, default=0, help="nested random halvings instead")
    ap.add_argument("--disjoint", action="store_true", help="with --resplits: soundtrack-disjoint 3/3 splits")
    ap.add_argument("--ks", type=int, nargs="+", default=KS, help="codebook sizes (default: the declared grid)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t0 = time.time()
    p = load_full(Path(args.data))
    log.info("loaded %d recordings, %d segments", len(p["tracks"]), sum(map(len, p["segments"])))
    if args.resplits:
        name = "similarity_codebook_" + ("disjoint" if args.disjoint else "resplits")
        payload = resplits(p, args.resplits, args)
    else:
        payload, name = fixed_half(p, args), f"similarity_codebook_{args.half}"
        print(json.dumps(payload, indent=1))
    payload = {"protocol": __doc__, "options": vars(args), **payload, "seconds": round(time.time() - t0, 1)}
    print(json.dumps({"written": str(write_results(args.out or name, rounded(payload)))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
