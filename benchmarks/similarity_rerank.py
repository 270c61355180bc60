"""Whole tracks ranked by the choice made on the train half (session 11: MFCC blocks + k-reciprocal
re-ranking), by the shipped search and by the baselines, one half of the soundtrack tracks at a time (issue 20).

    nice -n 10 .venv/bin/python benchmarks/similarity_rerank.py --half train   # tune: where the choice was made
    nice -n 10 .venv/bin/python benchmarks/similarity_rerank.py --half test    # measured once, after the choice

Every track (its clips concatenated: up to four 30 s cuts, about 1.8 min) is a query among the tracks of its half
(the half is the collection: its own standardisation); relevant are the other tracks of its soundtrack. Every
row runs the library's code for each query (:class:`~mirsearch.describe.similarity.SimilarityIndex` over the
half, :func:`~mirsearch.describe.similarity.expanded_search` or
:func:`~mirsearch.describe.similarity.reciprocal_search`, the query left out), as the ``similar`` task does.
What was chosen on the train half (data/soundtracks/exp, e18-e22: production blocks, diffusion, k-reciprocal
settings, MFCC block weight 0 / 0.5 / 1 / 2): MFCC mean and variance (over the frames) as two blocks of weight
2 beside the six timbre blocks, k-reciprocal re-ranking with k1 = 12, k2 = 3, lambda = 0.3; on the test half
it lost, and the shipped ranking stayed the timbre v3 vector with expansion 2. The baselines
(MFCC statistics, the YAMNet mean embedding, both) rank the same queries without any re-ranking; the best of
the three on the half is the reference of the paired difference (bootstrap over queries).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from scipy.spatial.distance import cdist  # noqa: E402

import similarity_heldout as H  # noqa: E402
from mirsearch.evaluation.paired import paired_difference  # noqa: E402
from mirsearch.evaluation.ranking import summarize  # noqa: E402
from similarity_features import DATA, load_features  # noqa: E402
from similarity_parts import track_items  # noqa: E402

from _common import half_arguments, write_results  # noqa: E402

log = logging.getLogger("similarity_rerank")
BASELINES = ("mfcc-stats", "yamnet", "mfcc+yamnet")
SHIPPED = "shipped: timbre v3, expansion 2"
CHOSEN = "chosen on train: timbre + MFCC blocks, k-reciprocal"
#: weight of each of the two MFCC blocks (mean, variance over frames) beside the six timbre blocks (weight 1)
MFCC_WEIGHT = 2.0


def baseline_distances(items, rows) -> dict[str, np.ndarray]:
    mf = H.zscore(np.stack([items[i]["mfcc-stats"] for i in rows]))
    ym = np.stack([items[i]["yamnet"] for i in rows])
    both = np.concatenate([mf / np.sqrt(mf.shape[1]), H.zscore(ym) / np.sqrt(ym.shape[1])], axis=1)
    yn = ym / np.linalg.norm(ym, axis=1, keepdims=True)
    return {"mfcc-stats": cdist(mf, mf), "yamnet": 1 - yn @ yn.T, "mfcc+yamnet": cdist(both, both)}


def ranked_by(search, n: int) -> np.ndarray:
    """A distance matrix (rank positions; unranked items last) from ``search(row) -> [(row, distance)]``."""
    D = np.full((n, n), float(n))
    for q in range(n):
        for pos, (r, _) in enumerate(search(q)):
            D[q, r] = pos
        D[q, q] = -1.0
    return D


def library_distances(V: np.ndarray, *, reciprocal: bool, weights: np.ndarray | None = None,
                      normaliser=None) -> np.ndarray:  # fmt: skip
    """The ranking of the library's search over raw vectors ``V`` (rows are recording ids), standardised by
    ``normaliser``, or by their own z-scores times ``weights`` (default: the library's standardisation,
    :func:`collection_normaliser`)."""
    from mirsearch.describe.similarity import Normaliser, SimilarityIndex, expanded_search, reciprocal_search

    if weights is not None:
        normaliser = Normaliser.fit(V, weights=weights)
    index = SimilarityIndex(np.arange(len(V)), V, normaliser=normaliser)
    run = reciprocal_search if reciprocal else expanded_search
    return ranked_by(lambda q: run(index, index.vector(q), top=len(V) - 1, exclude=q), len(V))


def systems(items, rows) -> dict[str, np.ndarray]:
    """The baselines, the shipped ranking and the rows of the choice made on the train half."""
    from mirsearch.describe import similarity as sim

    out = baseline_distances(items, rows)
    v3 = np.stack([sim.recording_vector(items[i]["timbre"]) for i in rows])
    mf = np.stack([items[i]["mfcc-stats"] for i in rows])  # MFCC frames' mean and variance (40)
    with_mfcc = np.concatenate([v3, mf], axis=1)
    w = np.r_[H.timbre_block_weights(), np.full(mf.shape[1], MFCC_WEIGHT / np.sqrt(mf.shape[1] / 2))]
    out[SHIPPED] = library_distances(v3, reciprocal=False)
    out["timbre v3, k-reciprocal"] = library_distances(v3, reciprocal=True)
    out["timbre + MFCC blocks, expansion 2"] = library_distances(with_mfcc, reciprocal=False, weights=w)
    out[CHOSEN] = library_distances(with_mfcc, reciprocal=True, weights=w)
    return out


def main(argv=None) -> int:
    args = half_arguments(__doc__, DATA, argv)
    t0 = time.time()
    clips, feats = load_features(Path(args.data))
    items, labels, halves = track_items(clips, feats)
    rows = np.flatnonzero(halves == args.half)
    ids = np.arange(len(rows))
    scores = {n: H.map10(D, labels[rows], ids) for n, D in systems(items, rows).items()}
    best = max(BASELINES, key=lambda n: scores[n].mean())
    payload = {"protocol": __doc__, "half": args.half, "queries": len(rows), "best_baseline": best,
               "map@10": summarize({n: v for n, v in scores.items()}),
               "against_best": {n: paired_difference(scores[best], v).to_dict() for n, v in scores.items()
                                if n not in BASELINES},
               "per_soundtrack": {n: {s: round(float(v[labels[rows] == s].mean()), 4) for s in np.unique(labels[rows])}
                                  for n, v in scores.items()}}  # fmt: skip
    for n, v in scores.items():
        diff = payload["against_best"].get(n)
        extra = f"  {diff['mean']:+.3f} [{diff['low']:+.3f}, {diff['high']:+.3f}]" if diff else ""
        print(f"{args.half:5s} {n:50s} {v.mean():.3f}{extra}", flush=True)
    payload["seconds"] = round(time.time() - t0, 1)
    out = write_results(f"similarity_rerank_{args.half}", payload)
    print(json.dumps({"written": str(out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
