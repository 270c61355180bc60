"""The shipped search by similarity on *whole audio files* (issue 20): every track of the six soundtracks decoded
in full (up to ``--max-seconds``), described as ``mirsearch index`` would, a query among the tracks of its half.

    nice -n 10 .venv/bin/python benchmarks/similarity_fulltracks.py --compute   # features (cached, resumable)
    nice -n 10 .venv/bin/python benchmarks/similarity_fulltracks.py             # -> results/similarity_fulltracks.json

The other similarity benchmarks describe a track by its up to four 30 s cuts; a user (and the issue's check)
indexes whole recordings. Here each track's audio (:func:`mirsearch.datasets.soundtracks.mix_track`, 22050 Hz,
stems mixed) gives the stored kind ``timbre``, MFCC statistics and the YAMNet mean embedding, cached under
``data/soundtracks/full/``. The halves are those of the clips' manifest; each half is its own collection, and
so are all 114 tracks together (``all``);
relevant are the other tracks of the query's soundtrack. No choice is made here: the shipped ranking (the search
vector of timbre kind v5 -- timbre vector, MFCC statistics, YAMNet mean and musicnn mean by cosine, the views
weighing alike, and from session 22 the texture histogram over the collection's codebook of segments -- with
expansion 2, as the ``similar`` task: benchmarks/similarity_rerank.py's library code) and the
timbre vector alone (the ranking up to session 17) against the baselines (MFCC statistics, YAMNet, both), the best
baseline of each half as the reference of the paired difference (bootstrap over queries). ``--resplits N``: the same
on both halves of N random track-disjoint halvings.

    nice -n 10 .venv/bin/python benchmarks/similarity_fulltracks.py --resplits 10   # -> ..._resplits.json

``--disjoint``: every collection of three of the six soundtracks (all their tracks; 20 collections), so that the
soundtracks of a collection differ from collection to collection.

    nice -n 10 .venv/bin/python benchmarks/similarity_fulltracks.py --disjoint      # -> ..._disjoint.json
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

import similarity_heldout as H  # noqa: E402
from mirsearch.evaluation.paired import paired_difference  # noqa: E402
from mirsearch.evaluation.ranking import summarize  # noqa: E402
from similarity_features import DATA  # noqa: E402
from similarity_rerank import BASELINES, baseline_distances, library_distances  # noqa: E402

from _common import write_results  # noqa: E402

log = logging.getLogger("similarity_fulltracks")
PKGS = ROOT / "data" / "real" / "pkgs"
SHIPPED = "shipped: T+M+Y+N + textures (the collection's codebook of segments), expansion 2"
TMYN = "T+M+Y+N, Y and N by cosine (session 19, before textures), expansion 2"
TMY = "T+M+Y, Y by cosine (session 19, before musicnn), expansion 2"
Y_L1 = "T+M+Y with Y z-scored, L1 (sessions 17-18), expansion 2"
TIMBRE_ONLY = "timbre vector alone (the ranking up to session 17), expansion 2"


def _cache(data: Path, soundtrack: str, name: str) -> Path:
    return data / "full" / f"{soundtrack}__{name}.npz"


def tracks_of_manifest(data: Path, pkgs: Path):
    """The tracks of the clips' manifest, with their half: ``[(Track, split)]``."""
    from mirsearch.datasets.soundtracks import find_tracks, load_manifest

    split = {(c.soundtrack, c.track): c.split for c in load_manifest(data)}
    return [(t, split[(t.soundtrack, t.name)]) for t in find_tracks(pkgs) if (t.soundtrack, t.name) in split]


def compute(data: Path, pkgs: Path, max_seconds: float) -> int:
    """Write the missing per-track feature files; returns how many were written."""
    from mirsearch._util import atomic_path
    from mirsearch.datasets.soundtracks import SR, mix_track
    from mirsearch.features.timbre_stats import TIMBRE_VERSION, extract_timbre, mfcc, mfcc_statistics
    from mirsearch.features.yamnet import YamnetModel

    model, written = None, 0
    todo = tracks_of_manifest(data, pkgs)
    for i, (track, _) in enumerate(todo):
        out = _cache(data, track.soundtrack, track.name)
        old = {}
        if out.exists():
            with np.load(out) as z:
                if int(z["timbre_version"]) == TIMBRE_VERSION:
                    continue
                old = {k: z[k] for k in z.files if k not in ("timbre", "timbre_version")}  # only the timbre is new
        t0 = time.time()
        y = mix_track(track)[: int(max_seconds * SR)]
        out.parent.mkdir(parents=True, exist_ok=True)
        if not old:
            model = model or YamnetModel(threads=1)
            old = {"mfcc_stats": mfcc_statistics(mfcc(y, sr=SR)[0]), "seconds": len(y) / SR,
                   "yamnet": model(y, sr=SR).embeddings.astype(np.float64).mean(axis=0)}  # fmt: skip
        with atomic_path(out) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **old, timbre=extract_timbre(y, sr=SR)[0], timbre_version=TIMBRE_VERSION)
        written += 1
        log.info("%d/%d %s/%s %.0f s audio, %.1f s", i + 1, len(todo), track.soundtrack, track.name, len(y) / SR,
                 time.time() - t0)  # fmt: skip
    return written


def load_items(data: Path, pkgs: Path):
    """Every track's cached features, soundtrack, fixed half and length: ``(items, labels, halves, seconds)``."""
    items, labels, halves, seconds = [], [], [], []
    for track, split in tracks_of_manifest(data, pkgs):
        with np.load(_cache(data, track.soundtrack, track.name)) as z:
            items.append({"timbre": z["timbre"], "mfcc-stats": z["mfcc_stats"], "yamnet": z["yamnet"],
                          "track": f"{track.soundtrack}/{track.name}"})  # fmt: skip
            seconds.append(float(z["seconds"]))
        labels.append(track.soundtrack)
        halves.append(split)
    return items, np.array(labels), np.array(halves), seconds


def load_clip_items(data: Path):
    """The 30-s clips of the same tracks (benchmarks/similarity_features.py's cache) as items: ``(items, labels)``,
    each item's ``track`` the track it was cut from."""
    from mirsearch.features.timbre_stats import mfcc_statistics
    from similarity_features import load_features

    clips, feats = load_features(data)
    items = [{"timbre": f["timbre"], "mfcc-stats": mfcc_statistics(f["mfcc"]), "track": f"{c.soundtrack}/{c.track}",
              "yamnet": f["yamnet"].astype(np.float64).mean(axis=0)}
             for c, f in zip(clips, feats, strict=True)]  # fmt: skip
    return items, np.array([c.soundtrack for c in clips])


def collection_scores(items, labels, rows, tracks=None) -> dict[str, np.ndarray]:
    """Per-query MAP@10 of the baselines, the shipped ranking and the timbre vector alone in the collection of
    ``rows`` (a query's own track, ``tracks`` of the rows, left out; default: each item its own track)."""
    from mirsearch.describe.similarity import (
        _layout,
        collection_codebook,
        collection_normaliser,
        raw_vector,
        recording_vector,
    )
    from mirsearch.describe.similarity_vector import SEARCH_DIM, TMY_DIM, balanced_normaliser

    systems = baseline_distances(items, rows)
    codebook = collection_codebook((items[i]["timbre"] for i in rows), len(rows))
    V = np.stack([raw_vector(items[i]["timbre"], codebook) for i in rows])
    systems[SHIPPED] = library_distances(V, reciprocal=False, normaliser=collection_normaliser(V, codebook=codebook))
    systems[TMYN] = library_distances(V[:, :SEARCH_DIM], reciprocal=False)
    V3 = V[:, :TMY_DIM]
    systems[TMY] = library_distances(V3, reciprocal=False)
    systems[Y_L1] = library_distances(V3, reciprocal=False, normaliser=balanced_normaliser(V3, cosine=False))
    T = np.stack([recording_vector(items[i]["timbre"]) for i in rows])
    systems[TIMBRE_ONLY] = library_distances(T, reciprocal=False, weights=1.0 / np.sqrt(_layout()[1]))
    ids = np.arange(len(rows)) if tracks is None else tracks
    return {n: H.map10(D, labels[rows], ids) for n, D in systems.items()}


def evaluate(data: Path, pkgs: Path) -> dict:
    items, labels, halves, seconds = load_items(data, pkgs)
    payload = {"tracks": len(items), "audio_minutes": round(sum(seconds) / 60, 1),
               "median_track_seconds": round(float(np.median(seconds)), 1)}  # fmt: skip
    for half in ("train", "test", "all"):
        rows = np.flatnonzero((halves == half) | (half == "all"))
        scores = collection_scores(items, labels, rows)
        best = max(BASELINES, key=lambda n: scores[n].mean())
        per_soundtrack = {n: {s: round(float(v[labels[rows] == s].mean()), 4) for s in np.unique(labels[rows])}
                          for n, v in scores.items()}  # fmt: skip
        payload[half] = {"queries": len(rows), "best_baseline": best, "map@10": summarize(scores),
                         "against_best": paired_difference(scores[best], scores[SHIPPED]).to_dict(),
                         "per_soundtrack": per_soundtrack}  # fmt: skip
        for n, v in scores.items():
            print(f"{half:5s} {n:35s} {v.mean():.3f}", flush=True)
        d = payload[half]["against_best"]
        print(f"{half:5s} shipped - {best}: {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]", flush=True)
    return payload


def halvings(labels: np.ndarray, tracks: np.ndarray, n: int):
    """Row sets of both halves of ``n`` random track-disjoint halvings (each soundtrack's tracks dealt
    alternately, seeded as benchmarks/similarity_superset.py's)."""
    from similarity_superset import random_halves

    for seed in range(n):
        half = random_halves({"labels": labels, "tracks": tracks}, seed)
        halves = np.array([half[t] for t in tracks])
        for h in ("train", "test"):
            yield np.flatnonzero(halves == h)


def soundtrack_sets(labels: np.ndarray, k: int = 3):
    """Row sets of every collection of ``k`` of the soundtracks, all their tracks (20 of 3 among 6)."""
    from itertools import combinations

    names = np.unique(labels)
    for chosen in combinations(names, k):
        yield np.flatnonzero(np.isin(labels, chosen))


def resplits(data: Path, pkgs: Path, n: int, *, clips: bool = False, disjoint: bool = False) -> dict:
    """Per collection each system's MAP@10 minus the collection's best baseline; the mean over collections with a
    bootstrap interval over them. Collections: both halves of ``n`` random track-disjoint halvings
    (:func:`halvings`), or with ``disjoint`` every set of three of the six soundtracks (:func:`soundtrack_sets`,
    whole tracks). Nothing is chosen here. ``clips``: the 30-s clips of the tracks instead of the whole tracks
    (the same halvings; a query's other clips of its track left out)."""
    from mirsearch.evaluation.ranking import bootstrap_mean

    items, labels = load_clip_items(data) if clips else load_items(data, pkgs)[:2]
    tracks = np.array([it["track"] for it in items])
    margins: dict[str, list[float]] = {}
    for rows in soundtrack_sets(labels) if disjoint else halvings(labels, tracks, n):
        scores = collection_scores(items, labels, rows, tracks[rows])
        best = max(scores[b].mean() for b in BASELINES)
        for name, v in scores.items():
            margins.setdefault(name, []).append(float(v.mean() - best))
    out = {}
    for name, v in margins.items():
        out[name] = {**bootstrap_mean(v).to_dict(), "min": min(v), "max": max(v), "halves": v,
                     "at_least_0.05": sum(x >= 0.05 for x in v)}  # fmt: skip
        print(f"{name:60s} {np.mean(v):+.3f} [{out[name]['low']:+.3f}, {out[name]['high']:+.3f}] "
              f"min {min(v):+.3f} max {max(v):+.3f}", flush=True)  # fmt: skip
    return {"collections": "3 of 6 soundtracks" if disjoint else f"{n} halvings", "minus_best_baseline": out}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--pkgs", default=str(PKGS))
    ap.add_argument("--compute", action="store_true", help="compute the missing per-track features first")
    ap.add_argument("--max-seconds", type=float, default=600.0, help="audio decoded per track at most (s)")
    ap.add_argument("--resplits", type=int, default=0, help="both halves of N random track-disjoint halvings instead")
    ap.add_argument("--clips", action="store_true", help="with --resplits: the 30-s clips instead of whole tracks")
    ap.add_argument(
        "--disjoint",
        action="store_true",
        help="collections of three of the six soundtracks (whole tracks, all 20 sets) instead",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t0 = time.time()
    if args.compute:
        print(f"{compute(Path(args.data), Path(args.pkgs), args.max_seconds)} track feature files written")
        return 0
    if args.resplits or args.disjoint:
        payload = {
            "protocol": __doc__,
            "items": "clips" if args.clips else "whole tracks",
            **resplits(Path(args.data), Path(args.pkgs), args.resplits, clips=args.clips, disjoint=args.disjoint),
        }
    else:
        payload = {"protocol": __doc__, **evaluate(Path(args.data), Path(args.pkgs))}
    payload["seconds"] = round(time.time() - t0, 1)
    name = "similarity_fulltracks" + ("_disjoint" if args.disjoint else "_resplits" if args.resplits else "")
    name += "_clips" if args.clips else ""
    out = write_results(name, payload)
    print(json.dumps({"written": str(out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
