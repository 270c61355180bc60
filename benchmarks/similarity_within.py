"""Within-recording whitening of the timbre vectors (built, off: ``similarity.WITHIN``) against the shipped
ranking and the baselines, through the library's code, on one half of the soundtrack tracks (issue 20, session 12).

    nice -n 10 .venv/bin/python benchmarks/similarity_within.py --half train      # where the settings were chosen

Protocols as benchmarks/similarity_superset.py (``full``: whole audio files; ``clips``: 30 s cuts; ``tracks``:
each track's cuts concatenated), each half its own collection, every item a query (its own track left out).
Rows: the baselines; the shipped ranking (:func:`~mirsearch.describe.similarity.similar_search` over a
:class:`~mirsearch.describe.similarity.SimilarityIndex` with the collection's z-scores, expansion 2); the same
with :func:`~mirsearch.describe.similarity.collection_normaliser` given every item's
:func:`~mirsearch.describe.similarity.within_parts` (within-recording whitening, expansion
:data:`~mirsearch.describe.similarity.WITHIN_EXPAND`). The settings (parts, segments per part, shrinkage,
expansion) were chosen on the train half's whole files among those that cost the clips and tracks protocols
at most 0.01 (data/soundtracks/exp/s12/wccn3.py); the test half was not measured for them.
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

import similarity_heldout as H  # noqa: E402
import similarity_superset as S  # noqa: E402
from mirsearch.evaluation.paired import paired_difference  # noqa: E402
from mirsearch.evaluation.ranking import summarize  # noqa: E402
from similarity_features import DATA, load_features  # noqa: E402
from similarity_rerank import ranked_by  # noqa: E402

from _common import half_arguments, write_results  # noqa: E402

log = logging.getLogger("similarity_within")
SHIPPED, WITHIN = "shipped: timbre v3, expansion 2", "within-recording whitening"


def timbre_arrays(data: Path) -> dict[str, list[np.ndarray]]:
    """The stored timbre features of every item of every protocol, in :func:`similarity_superset.load_items`'s
    order."""
    from similarity_fulltracks import PKGS, _cache, tracks_of_manifest

    out = {"full": [np.load(_cache(data, t.soundtrack, t.name))["timbre"] for t, _ in tracks_of_manifest(data, PKGS)]}
    clips, feats = load_features(data)
    out["clips"] = [f["timbre"] for f in feats]
    of = np.array([f"{c.soundtrack}/{c.track}" for c in clips])
    out["tracks"] = [np.concatenate([feats[i]["timbre"] for i in np.flatnonzero(of == t)], axis=1)
                     for t in dict.fromkeys(of)]  # fmt: skip
    return out


def library_rows(X: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Rank positions (n, n) of the shipped ranking and of the within-recording whitening over items ``X``."""
    from mirsearch.describe import similarity as sim

    V = np.stack([sim.recording_vector(x) for x in X]).astype(np.float32)
    out = {}
    for name, within in ((SHIPPED, None), (WITHIN, [sim.within_parts(x) for x in X])):
        index = sim.SimilarityIndex(np.arange(len(V)), V, normaliser=sim.collection_normaliser(V, within=within))
        if within is not None and index.normaliser.transform is None:
            log.warning("no recording long enough for the within-recording transform")
        out[name] = ranked_by(lambda q, i=index: sim.similar_search(i, i.vector(q), top=len(V) - 1, exclude=q), len(V))
    return out


def main(argv=None) -> int:
    args = half_arguments(__doc__, DATA, argv)
    t0 = time.time()
    items, arrays = S.load_items(Path(args.data)), timbre_arrays(Path(args.data))
    payload = {"protocol": __doc__, "half": args.half}
    for name, p in items.items():
        rows = np.flatnonzero(p["halves"] == args.half)
        blocks, labels, tracks = S.collection(p, rows)
        scores = S.baselines(blocks, labels, tracks)
        best = max(scores, key=lambda n: scores[n].mean())
        for row, D in library_rows([arrays[name][i] for i in rows]).items():
            scores[row] = H.map10(D, labels, tracks)
        gain = paired_difference(scores[SHIPPED], scores[WITHIN]).to_dict()
        payload[name] = {"queries": len(rows), "best_baseline": best, "map@10": summarize(scores),
                         "against_best": {n: paired_difference(scores[best], scores[n]).to_dict()
                                          for n in (SHIPPED, WITHIN)},
                         "within_minus_shipped": gain}  # fmt: skip
        d, w = payload[name]["against_best"][WITHIN], payload[name]["within_minus_shipped"]
        print(f"{name:6s} " + "  ".join(f"{n} {v.mean():.3f}" for n, v in scores.items())
              + f" | within - {best} {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"
              + f" | within - shipped {w['mean']:+.3f} [{w['low']:+.3f}, {w['high']:+.3f}]", flush=True)  # fmt: skip
    payload["seconds"] = round(time.time() - t0, 1)
    print(json.dumps({"written": str(write_results(f"similarity_within_{args.half}", payload))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
