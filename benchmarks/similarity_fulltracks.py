"""The shipped search by similarity on *whole audio files* (issue 20): every track of the six soundtracks decoded
in full (up to ``--max-seconds``), described as ``mirsearch index`` would, a query among the tracks of its half.

    nice -n 10 .venv/bin/python benchmarks/similarity_fulltracks.py --compute   # features (cached, resumable)
    nice -n 10 .venv/bin/python benchmarks/similarity_fulltracks.py             # -> results/similarity_fulltracks.json

The other similarity benchmarks describe a track by its up to four 30 s cuts; a user (and the issue's check)
indexes whole recordings. Here each track's audio (:func:`mirsearch.datasets.soundtracks.mix_track`, 22050 Hz,
stems mixed) gives the stored kind ``timbre``, MFCC statistics and the YAMNet mean embedding, cached under
``data/soundtracks/full/``. The halves are those of the clips' manifest; each half is its own collection, and
so are all 114 tracks together (``all``);
relevant are the other tracks of the query's soundtrack. No choice is made here: the shipped ranking
(timbre v3, expansion 2, as the ``similar`` task: benchmarks/similarity_rerank.py's library code) against the
baselines (MFCC statistics, YAMNet, both), the best baseline of each half as the reference of the paired
difference (bootstrap over queries).
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
SHIPPED = "shipped: timbre v3, expansion 2"


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
        if out.exists():
            continue
        model = model or YamnetModel(threads=1)
        t0 = time.time()
        y = mix_track(track)[: int(max_seconds * SR)]
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp, open(tmp, "wb") as fh:
            embedding = model(y, sr=SR).embeddings.astype(np.float64).mean(axis=0)
            np.savez(fh, timbre=extract_timbre(y, sr=SR)[0], timbre_version=TIMBRE_VERSION,
                     mfcc_stats=mfcc_statistics(mfcc(y, sr=SR)[0]), yamnet=embedding, seconds=len(y) / SR)  # fmt: skip
        written += 1
        log.info("%d/%d %s/%s %.0f s audio, %.1f s", i + 1, len(todo), track.soundtrack, track.name, len(y) / SR,
                 time.time() - t0)  # fmt: skip
    return written


def evaluate(data: Path, pkgs: Path) -> dict:
    from mirsearch.describe.similarity import recording_vector

    todo = tracks_of_manifest(data, pkgs)
    items, labels, halves, seconds = [], [], [], []
    for track, split in todo:
        with np.load(_cache(data, track.soundtrack, track.name)) as z:
            items.append({"timbre": z["timbre"], "mfcc-stats": z["mfcc_stats"], "yamnet": z["yamnet"]})
            seconds.append(float(z["seconds"]))
        labels.append(track.soundtrack)
        halves.append(split)
    labels, halves = np.array(labels), np.array(halves)
    payload = {"tracks": len(items), "audio_minutes": round(sum(seconds) / 60, 1),
               "median_track_seconds": round(float(np.median(seconds)), 1)}  # fmt: skip
    for half in ("train", "test", "all"):
        rows = np.flatnonzero((halves == half) | (half == "all"))
        systems = baseline_distances(items, rows)
        V = np.stack([recording_vector(items[i]["timbre"]) for i in rows])
        systems[SHIPPED] = library_distances(V, reciprocal=False)
        ids = np.arange(len(rows))
        scores = {n: H.map10(D, labels[rows], ids) for n, D in systems.items()}
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--pkgs", default=str(PKGS))
    ap.add_argument("--compute", action="store_true", help="compute the missing per-track features first")
    ap.add_argument("--max-seconds", type=float, default=600.0, help="audio decoded per track at most (s)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t0 = time.time()
    if args.compute:
        print(f"{compute(Path(args.data), Path(args.pkgs), args.max_seconds)} track feature files written")
        return 0
    payload = {"protocol": __doc__, **evaluate(Path(args.data), Path(args.pkgs))}
    payload["seconds"] = round(time.time() - t0, 1)
    out = write_results("similarity_fulltracks", payload)
    print(json.dumps({"written": str(out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
