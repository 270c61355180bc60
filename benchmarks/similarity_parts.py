"""Recordings described by consecutive parts (issue 20): held-out choice of the number of parts, the
standardisation and the expansion, against the shipped whole-recording vector and the baselines.

    nice -n 10 .venv/bin/python benchmarks/similarity_parts.py       # -> results/similarity_parts.json
    nice -n 10 .venv/bin/python benchmarks/similarity_parts.py --protocols tracks --out similarity_tracks

A recording's stored ``timbre`` segments (4 s) are split into up to ``parts`` consecutive runs, each described
as a whole recording (:func:`mirsearch.describe.similarity.part_vectors`); two recordings are compared by the
mean distance from each part to the nearest part of the other, both ways
(:func:`~mirsearch.describe.similarity.part_distances`). Expansion ``k``: a query's distances are averaged
with those of its ``k`` nearest recordings outside its own track. Candidates: parts in {1, 2, 4, 8},
standardisation by the collection's recording vectors or by its part vectors, k in {0, 2, 3}. The choice is
made with the query's soundtrack left out, in the protocols of ``similarity_heldout.py``: ``loso`` (for half
``h`` and soundtrack ``s``: chosen on the other half's clips of the five other soundtracks, the queries of ``s``
ranked among half ``h``) and ``disjoint`` (the 20 splits into three fitting and three evaluated soundtracks).
``tracks``: no choice; every track (its clips concatenated, about 1.8 min) a query among its half's tracks.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from scipy.spatial.distance import cdist  # noqa: E402

import similarity_heldout as H  # noqa: E402
from mirsearch.evaluation.ranking import summarize  # noqa: E402
from similarity_features import DATA, load_features  # noqa: E402

from _common import write_results  # noqa: E402

log = logging.getLogger("similarity_parts")
PARTS = (1, 2, 4, 8)
NORMS = ("recording", "parts")
EXPANSIONS = (0, 2, 3)
BASELINES = ("mfcc-stats", "yamnet", "mfcc+yamnet")
#: the row of the shipped settings (describe/similarity.py: PARTS, EXPAND; standardised by the recordings)
SHIPPED = "shipped: parts, expansion (fixed choice)"


class Parts:
    """Raw part vectors of every clip per number of parts, and the recording vectors."""

    def __init__(self, feats):
        from mirsearch.describe.similarity import part_vectors, recording_vector

        self.rec = np.stack([recording_vector(f["timbre"]) for f in feats]).astype(np.float64)
        self.parts = {p: [part_vectors(f["timbre"], parts=p).astype(np.float64) for f in feats] for p in PARTS}

    def distances(self, rows: np.ndarray, parts: int, norm: str) -> np.ndarray:
        """Symmetric part distances among ``rows`` (the matrix form of ``part_distances``)."""
        from mirsearch.describe.similarity import Normaliser, collection_normaliser

        A = np.concatenate([self.parts[parts][i] for i in rows])
        w = H.timbre_block_weights()
        A = (collection_normaliser(self.rec[rows]) if norm == "recording" else Normaliser.fit(A, weights=w))(A)
        offsets = np.r_[0, np.cumsum([len(self.parts[parts][i]) for i in rows])]
        D = cdist(A, A, "cityblock") / A.shape[1]
        to_b = np.add.reduceat(np.minimum.reduceat(D, offsets[:-1], axis=1), offsets[:-1], axis=0)
        to_b /= np.diff(offsets)[:, None]
        return 0.5 * (to_b + to_b.T)


def expand_rows(R: np.ndarray, tracks: np.ndarray, k: int) -> np.ndarray:
    """Each row averaged with the rows of its ``k`` nearest items outside its own track."""
    if k == 0:
        return R
    E = np.where(tracks[:, None] == tracks[None, :], np.inf, R)
    nn = np.argsort(E, axis=1, kind="stable")[:, :k]
    return (R + R[nn].sum(axis=1)) / (1 + k)


def configs():
    return [{"parts": p, "norm": n, "expand": k} for p in PARTS for n in NORMS for k in EXPANSIONS]


def select(P: Parts, rows, labels, tracks) -> tuple[dict, float]:
    best, best_score = None, -1.0
    for p in PARTS:
        for n in NORMS:
            R = P.distances(rows, p, n)
            for k in EXPANSIONS:
                s = float(H.map10(expand_rows(R, tracks[rows], k), labels[rows], tracks[rows]).mean())
                if s > best_score + 1e-4:
                    best, best_score = {"parts": p, "norm": n, "expand": k}, s
    return best, best_score


def fixed_systems(P: Parts, feats, rows, tracks) -> dict[str, np.ndarray]:
    """Distances of the systems that need no choice among ``rows``."""
    from mirsearch.describe import similarity as sim

    out = dict(H.baseline_distances(feats, rows))
    out["shipped v3 (whole recording, expansion 2)"] = H.shipped_distances(feats, rows, tracks)
    out[SHIPPED] = expand_rows(P.distances(rows, sim.PARTS, "recording"), tracks[rows], sim.EXPAND)
    return out


def protocol_loso(P, feats, labels, tracks, halves) -> tuple[dict, dict]:
    n = len(labels)
    scores, chosen = {}, {}
    for h in ("train", "test"):
        coll = np.flatnonzero(halves == h)
        for name, D in fixed_systems(P, feats, coll, tracks).items():
            scores.setdefault(name, np.zeros(n))[coll] = H.map10(D, labels[coll], tracks[coll])
        for s in np.unique(labels):
            fit = np.flatnonzero((halves != h) & (labels != s))
            c, inner = select(P, fit, labels, tracks)
            chosen[f"{h}/{s}"] = {**c, "fit_map10": round(inner, 4)}
            log.info("loso %s/%s fit %.3f %s", h, s, inner, c)
            D = expand_rows(P.distances(coll, c["parts"], c["norm"]), tracks[coll], c["expand"])
            q = np.flatnonzero(labels[coll] == s)
            scores.setdefault("parts, chosen held out", np.zeros(n))[coll[q]] = H.map10(
                D, labels[coll], tracks[coll], q
            )
    return scores, chosen


def protocol_disjoint(P, feats, labels, tracks) -> tuple[dict, list]:
    names = sorted(np.unique(labels))
    sums, counts, chosen = {}, np.zeros(len(labels)), []
    for fit_s in itertools.combinations(names, 3):
        fit = np.flatnonzero(np.isin(labels, fit_s))
        coll = np.flatnonzero(~np.isin(labels, fit_s))
        c, inner = select(P, fit, labels, tracks)
        chosen.append({"fit": list(fit_s), **c, "fit_map10": round(inner, 4)})
        systems = fixed_systems(P, feats, coll, tracks)
        systems["parts, chosen held out"] = expand_rows(P.distances(coll, c["parts"], c["norm"]), tracks[coll],
                                                        c["expand"])  # fmt: skip
        for name, D in systems.items():
            sums.setdefault(name, np.zeros(len(labels)))[coll] += H.map10(D, labels[coll], tracks[coll])
        counts[coll] += 1
        log.info("disjoint fit %s: %.3f %s", fit_s, inner, c)
    return {k: v / np.maximum(counts, 1) for k, v in sums.items()}, chosen


def summary(scores: dict, labels, halves) -> dict:
    from mirsearch.evaluation.paired import paired_difference

    best = max(BASELINES, key=lambda n: scores[n].mean())
    out = {"map@10": {n: summarize({"map@10": v})["map@10"] for n, v in scores.items()}, "best_baseline": best}
    out["against_best"] = {n: paired_difference(scores[best], v).to_dict() for n, v in scores.items()
                           if n not in BASELINES}  # fmt: skip
    out["against_best_per_half"] = {
        n: {h: paired_difference(scores[best][halves == h], v[halves == h]).to_dict() for h in ("train", "test")}
        for n, v in scores.items() if n not in BASELINES
    }  # fmt: skip
    out["per_soundtrack"] = {n: {s: round(float(v[labels == s].mean()), 4) for s in np.unique(labels)}
                             for n, v in scores.items()}  # fmt: skip
    out["per_half"] = {n: {h: round(float(v[halves == h].mean()), 4) for h in ("train", "test")}
                       for n, v in scores.items()}  # fmt: skip
    return out


def track_items(clips, feats) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Whole tracks: the clips of a track (up to four 30 s cuts) concatenated in clip order (stored timbre
    segments, MFCC frames, YAMNet patches). Returns the items, their soundtracks and halves."""
    from mirsearch.features.timbre_stats import mfcc_statistics

    names = list(dict.fromkeys(f"{c.soundtrack}/{c.track}" for c in clips))
    of = np.array([f"{c.soundtrack}/{c.track}" for c in clips])
    items = []
    for t in names:
        rows = np.flatnonzero(of == t)
        items.append({
            "timbre": np.concatenate([feats[i]["timbre"] for i in rows], axis=1),
            "mfcc-stats": mfcc_statistics(np.concatenate([feats[i]["mfcc"] for i in rows], axis=1)),
            "yamnet": np.concatenate([feats[i]["yamnet"].astype(np.float64) for i in rows]).mean(axis=0),
        })  # fmt: skip
    first = [int(np.flatnonzero(of == t)[0]) for t in names]
    return items, np.array([clips[i].soundtrack for i in first]), np.array([clips[i].split for i in first])


def protocol_tracks(clips, feats) -> tuple[dict, np.ndarray, np.ndarray]:
    """Every whole track a query among the tracks of its half (no choice made: the shipped settings)."""
    from mirsearch.describe import similarity as sim

    items, labels, halves = track_items(clips, feats)
    ids = np.arange(len(items))
    scores = {}
    for h in ("train", "test"):
        rows = np.flatnonzero(halves == h)
        mf = H.zscore(np.stack([items[i]["mfcc-stats"] for i in rows]))
        ym = np.stack([items[i]["yamnet"] for i in rows])
        both = np.concatenate([mf / np.sqrt(mf.shape[1]), H.zscore(ym) / np.sqrt(ym.shape[1])], axis=1)
        yn = ym / np.linalg.norm(ym, axis=1, keepdims=True)
        V = np.stack([sim.recording_vector(items[i]["timbre"]) for i in rows])
        nz = sim.collection_normaliser(V)
        parts = [nz(sim.part_vectors(items[i]["timbre"], parts=sim.PARTS)) for i in rows]
        offsets = np.r_[0, np.cumsum([len(p) for p in parts])]
        R = np.stack([sim.part_distances(p, np.concatenate(parts), offsets) for p in parts])
        systems = {"mfcc-stats": cdist(mf, mf), "yamnet": 1 - yn @ yn.T, "mfcc+yamnet": cdist(both, both),
                   "shipped v3 (whole recording, expansion 2)": H.expanded_distances(nz(V), ids[rows], k=2,
                                                                                     metric="l1"),
                   SHIPPED: expand_rows(R, ids[rows], sim.EXPAND)}  # fmt: skip
        for name, D in systems.items():
            scores.setdefault(name, np.zeros(len(items)))[rows] = H.map10(D, labels[rows], ids[rows])
    return scores, labels, halves


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--protocols", default="loso,disjoint")
    ap.add_argument("--out", default="similarity_parts")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t0 = time.time()
    clips, feats = load_features(Path(args.data))
    P = Parts(feats)
    labels = np.array([c.soundtrack for c in clips])
    tracks = np.array([f"{c.soundtrack}/{c.track}" for c in clips])
    halves = np.array([c.split for c in clips])
    payload = {"protocol": __doc__, "clips": len(clips), "candidates": configs()}
    for proto in args.protocols.split(","):
        lab, hv = labels, halves
        if proto == "loso":
            scores, chosen = protocol_loso(P, feats, labels, tracks, halves)
        elif proto == "disjoint":
            scores, chosen = protocol_disjoint(P, feats, labels, tracks)
        else:
            (scores, lab, hv), chosen = protocol_tracks(clips, feats), None
        payload[proto] = {**summary(scores, lab, hv), "chosen": chosen}
        for n, v in scores.items():
            tr, te = v[hv == "train"].mean(), v[hv == "test"].mean()
            print(f"{proto:9s} {n:45s} {v.mean():.3f}  train {tr:.3f}  test {te:.3f}", flush=True)
    payload["seconds"] = round(time.time() - t0, 1)
    out = write_results(args.out, payload)
    print(json.dumps({"written": str(out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
