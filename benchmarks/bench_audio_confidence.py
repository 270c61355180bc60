"""Confidence of audio-query matches (``mirsearch search --audio``): present vs absent excerpts of real audio.

Protocol. The real music tracks of the Debian packages named in the session rules (ufoai-music, singularity-music,
fretsonfire-songs-muldjord/-sectoid (the ``song.ogg`` mix of each song only), asterisk-moh-opsound-wav) are dealt
at random (``--seed``) into four groups by track: *fit-in*, *fit-out*, *test-in*, *test-out*. One collection holds
the *-in* tracks (``build``: indexed with :data:`FEATURES`, the chroma kinds the passage search uses).
``collect`` cuts ``--excerpts`` 20 s excerpts of every track at seeded random places and degrades each in six ways
(pitch +2 semitones, time stretch x0.85 and x1.2, white noise at 5 dB SNR, telephone band, MP3 at ~24 kbit/s;
``bench_matching.degrade``); each is searched with the service's default passage search (``mirsearch search
--audio``: exhaustive CENS matching, multiple tempo scaling, 12 transpositions). An excerpt of an *-in* track is
*present*: a positive when the top-1 match lies on its source passage (right recording, overlapping the source
span); an excerpt of an *-out* track is *absent*: its top-1 is a negative. Each search's matches and the
statistics of its matching curves (:func:`mirsearch.search.confidence.audio_background`) are cached per excerpt
as JSON under ``DATA/cache/``.

``fit`` fits the audio model (:class:`mirsearch.search.confidence.AudioConfidenceModel`) on the *fit* excerpts and
measures it on the *test* excerpts (tracks it never saw as queries): ROC-AUC, and at the default threshold the
share of absent excerpts answered "no confident match" and of the present top-1 hits still shown.

    nice -n 10 .venv/bin/python benchmarks/bench_audio_confidence.py build
    nice -n 10 .venv/bin/python benchmarks/bench_audio_confidence.py collect
    .venv/bin/python benchmarks/bench_audio_confidence.py fit [--refit --write-model]
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import time
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from mirsearch._util import atomic_write_text  # noqa: E402

log = logging.getLogger("bench_audio_confidence")

ROOT = HERE.parent
PKGS = ROOT / "data" / "real" / "pkgs"
DATA = ROOT / "data" / "bench_audio_confidence"
GROUPS = ("fit-in", "fit-out", "test-in", "test-out")
#: cache folder of the searched excerpts under ``DATA/cache``: ``seed<seed>`` without a tag holds the runs of the
#: one-stage multiple-scaling search the shipped model was fitted on; ``--cache TAG`` keeps the runs of another
#: search apart (``seed<seed>-TAG``; ``--cache sdtw-refine5 --method sdtw``: subsequence DTW + the second stage)
CACHE_TAG = ""


def cache_dir(seed: int, tag: str = CACHE_TAG) -> Path:
    """Where the searched excerpts of one seed and search configuration are cached."""
    return DATA / "cache" / (f"seed{seed}-{tag}" if tag else f"seed{seed}")


QUERY_SECONDS = 20.0
#: stored kinds of the collection: the chroma and the upper-register chroma the passage search matches on
#: (``build`` on an existing collection adds a missing kind)
FEATURES = ("chroma", "chroma_upper")


def real_music() -> list[Path]:
    """Every real music track of the allowed packages (one mix per Frets on Fire song)."""
    tracks = sorted((ROOT / "data" / "real" / "ufoai_ogg").rglob("*.ogg"))
    tracks += sorted((PKGS / "singularity-music").rglob("*.ogg"))
    tracks += sorted((PKGS / "fretsonfire-songs-muldjord").rglob("song.ogg"))
    tracks += sorted((PKGS / "fretsonfire-songs-sectoid").rglob("song.ogg"))
    tracks += sorted((PKGS / "asterisk-moh-opsound-wav").rglob("*.wav"))
    if not tracks:
        raise SystemExit(f"no real tracks under {PKGS}")
    return tracks


def groups(seed: int) -> dict[str, list[Path]]:
    tracks = real_music()
    order = np.random.default_rng(seed).permutation(len(tracks))
    return {g: sorted(tracks[j] for j in order[k :: len(GROUPS)]) for k, g in enumerate(GROUPS)}


def collection_path(seed: int) -> Path:
    return DATA / f"collection-seed{seed}.mirs"


def build(args) -> None:
    from mirsearch.collection import Collection

    g = groups(args.seed)
    paths = [str(p) for p in g["fit-in"] + g["test-in"]]
    t0 = time.perf_counter()
    with Collection.create(collection_path(args.seed), features=FEATURES) as coll:
        rep = coll.add(paths, jobs=1)
        print(f"{collection_path(args.seed)}: {len(rep.added)} added, {len(rep.failed)} failed, "
              f"{len(coll.recordings())} recordings, {time.perf_counter() - t0:.0f} s")  # fmt: skip


@functools.lru_cache(maxsize=4)
def _excerpt(path: Path, k: int, seed: int):
    """Excerpt ``k`` of a track: (samples at SR, start second)."""
    from bench_matching import SR
    from mirsearch.audio import load_audio

    y, _ = load_audio(path, sr=SR)
    rng = np.random.default_rng([seed, k, zlib.crc32(path.name.encode())])
    n = int(QUERY_SECONDS * SR)
    start = int(rng.integers(0, max(1, y.size - n)))
    return y[start : start + n], start / SR


def _one(coll, path: Path, k: int, kind: str, seed: int, in_ids: dict, method: str | None = None) -> dict:
    from bench_matching import SR, degrade
    from mirsearch.search.audio_query import AudioQuery
    from mirsearch.search.confidence import audio_background
    from mirsearch.service.audio import PassagesRequest, run_passages
    from mirsearch.service.core import Context

    y, start = _excerpt(path, k, seed)
    rng = np.random.default_rng([seed, k, zlib.crc32(f"{path.name}{kind}".encode())])
    z, factor, _ = degrade(y, kind, rng)
    query = AudioQuery.from_samples(z, SR, name=f"{path.name}:{k}:{kind}")
    t0 = time.perf_counter()
    request = PassagesRequest(query=query, show_all=True, **({"method": method} if method else {}))
    found = run_passages(Context(collection=coll), request)
    ms = (time.perf_counter() - t0) * 1000
    best = found.matches[0] if found.matches else None
    return {
        "track": str(path), "excerpt": k, "kind": kind, "start": start, "end": start + QUERY_SECONDS,
        "source_id": in_ids.get(str(path.resolve())),
        "matches": [[m.recording_id, m.cost, m.start, m.end, m.transposition] for m in found.matches],
        "background": audio_background(found.curves, best).to_dict() if best else None,
        "confidence": [m.extra.get("confidence") for m in found.matches], "ms": ms,
    }  # fmt: skip


def collect(args) -> None:
    from bench_matching import DEGRADATIONS
    from mirsearch.collection import Collection

    g = groups(args.seed)
    out = cache_dir(args.seed, args.cache)
    out.mkdir(parents=True, exist_ok=True)
    with Collection.open(collection_path(args.seed), readonly=True) as coll:
        in_ids = {str(Path(r.path).resolve()): r.id for r in coll.recordings()}
        t0, done = time.perf_counter(), 0
        for k in range(args.excerpts):  # excerpt k of every track before excerpt k + 1: a partial run is balanced
            for name in GROUPS:
                for path in g[name]:
                    for kind in DEGRADATIONS:
                        f = out / f"{name}_{zlib.crc32(str(path).encode()):08x}_{k}_{kind}.json"
                        if f.exists():
                            continue
                        row = {"group": name, **_one(coll, path, k, kind, args.seed, in_ids, args.method)}
                        atomic_write_text(f, json.dumps(row))
                        done += 1
                        if done % 20 == 0:
                            log.info("%d excerpts searched in %.0f s", done, time.perf_counter() - t0)
    log.info("done: %d new", done)


# -- fit and evaluation ---------------------------------------------------------------------------------------
def examples(seed: int, tag: str = CACHE_TAG) -> list[dict]:
    """Per excerpt: group, label (1 present and right at rank 1, 0 absent, None present and missed), top-1 cost
    and the background of its matching curves."""
    out = []
    for f in sorted(cache_dir(seed, tag).glob("*.json")):
        row = json.loads(f.read_text())
        if not row["matches"]:
            continue
        rid, cost, s, e, _ = row["matches"][0]
        if row["group"].endswith("-out"):
            label = 0
        else:
            label = 1 if rid == row["source_id"] and s < row["end"] and e > row["start"] else None
        out.append({"group": row["group"], "kind": row["kind"], "label": label, "cost": cost,
                    "background": row["background"], "ms": row["ms"]})  # fmt: skip
    return out


def fit_model(rows: list[dict], *, eps: float, keep: float, reject: float | None = None, names=("cost", "standout")):
    """Logistic model on the labelled rows; threshold rejecting ``reject`` of their absent excerpts, else keeping
    ``keep`` of their hits."""
    from sklearn.linear_model import LogisticRegression

    from mirsearch.search.confidence import AudioConfidenceModel

    used = [r for r in rows if r["label"] is not None]
    y = np.asarray([r["label"] for r in used])
    base = AudioConfidenceModel(bias=0.0, w_cost=0.0, w_standout=0.0, eps=eps, threshold=0.0)
    X = base.design([r["cost"] for r in used], [r["background"]["q01"] for r in used])
    cols = [("cost", "standout").index(n) for n in names]
    lr = LogisticRegression(C=10.0, max_iter=1000).fit(X[:, cols], y)
    w = dict.fromkeys(("cost", "standout"), 0.0)
    w.update({n: float(c) for n, c in zip(names, lr.coef_[0], strict=True)})
    typical = float(np.median([r["background"]["q01"] for r in used]))  # stands in where a search has none
    model = AudioConfidenceModel(bias=float(lr.intercept_[0]), w_cost=w["cost"], w_standout=w["standout"], eps=eps,
                                 threshold=0.0, background=typical)  # fmt: skip
    if reject is not None:  # the lowest threshold (0.01 steps) rejecting that share of the absent excerpts
        neg = confidences(model, [r for r in used if r["label"] == 0])
        threshold = float(np.ceil(np.quantile(neg, reject) * 100) / 100)
    else:  # the highest keeping that share of the hits
        pos = np.sort(confidences(model, [r for r in used if r["label"] == 1]))
        threshold = float(np.floor(pos[int(np.floor((1 - keep) * len(pos)))] * 100) / 100)
    return AudioConfidenceModel(**{**model.__dict__, "threshold": threshold})


def confidences(model, rows) -> np.ndarray:
    return np.asarray([float(model.probability(r["cost"], r["background"]["q01"])[0]) for r in rows])


def evaluate(model, rows: list[dict]) -> dict:
    from mirsearch.evaluation.detection import rates_at, roc_auc

    pos = confidences(model, [r for r in rows if r["label"] == 1])
    neg = confidences(model, [r for r in rows if r["label"] == 0])
    rates = rates_at(model.threshold, pos, neg)
    present = [r for r in rows if not r["group"].endswith("-out")]
    return {"present": len(present), "positives": len(pos), "negatives": len(neg),
            "roc_auc": round(roc_auc(pos, neg), 4) if len(pos) and len(neg) else None,
            "absent_no_confident_match": round(rates["negatives_rejected"], 4),
            "present_top1_hits_shown": round(rates["positives_kept"], 4)}  # fmt: skip


def fit(args) -> None:
    from mirsearch.search.confidence import load_audio_model

    from _common import print_table, write_results

    rows = examples(args.seed, args.cache)
    calib = [r for r in rows if r["group"].startswith("fit")]
    test = [r for r in rows if r["group"].startswith("test")]
    candidates = {"cost + standout": ("cost", "standout"), "cost only": ("cost",), "standout only": ("standout",)}
    table, models = [], {}
    for name, names in candidates.items():
        reject = args.reject or None
        model = fit_model(calib, eps=args.eps, keep=args.keep, reject=reject, names=names) if args.refit else None
        if model is None:
            if name != "cost + standout":
                continue
            model = load_audio_model()
        models[name] = model.to_dict()
        for set_name, sub in (("fit tracks", calib), ("test tracks", test)):
            table.append({"model": name, "set": set_name, **evaluate(model, sub)})
        kinds = sorted({r["kind"] for r in test})
        for kind in kinds:
            sub = [r for r in test if r["kind"] == kind]
            table.append({"model": name, "set": f"test tracks, {kind}", **evaluate(model, sub)})
    print_table(table, ["model", "set", "present", "positives", "negatives", "roc_auc", "absent_no_confident_match",
                        "present_top1_hits_shown"])  # fmt: skip
    ms = [r["ms"] for r in test]
    info = {
        "search_ms_median": round(float(np.median(ms)), 1),
        "tracks": {g: len(v) for g, v in groups(args.seed).items()},
    }
    print(json.dumps(info))
    if args.write_model and args.refit:
        path = ROOT / "src/mirsearch/models/bundles/confidence/models.json"
        shipped = json.loads(path.read_text())
        shipped["audio"] = models["cost + standout"]
        shipped.setdefault("fitted", {})["audio"] = (
            f"bench_audio_confidence.py fit, fit tracks (seed {args.seed}), {time.strftime('%Y-%m-%d')}"
        )
        atomic_write_text(path, json.dumps(shipped, indent=1) + "\n")
        print(f"wrote {path}")
    write_results(args.name, {"args": vars(args), "models": models, "rows": table, "info": info})


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("build", "collect", "fit"):
        p = sub.add_parser(name)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--cache", default=CACHE_TAG, help="cache tag of the search configuration ('' = untagged)")
    sub.choices["collect"].add_argument("--excerpts", type=int, default=2, help="excerpts per track")
    sub.choices["collect"].add_argument("--method", help="passage search method (default: the service's)")
    f = sub.choices["fit"]
    f.add_argument("--refit", action="store_true", help="fit the model (else evaluate the shipped one)")
    f.add_argument("--write-model", action="store_true", help="write the fitted model into the package")
    f.add_argument("--eps", type=float, default=0.005, help="added to the costs before their logarithm")
    f.add_argument("--keep", type=float, default=0.95, help="share of fit hits the threshold keeps (with --reject 0)")
    f.add_argument("--reject", type=float, default=0.95, help="share of fit absent excerpts the threshold rejects")
    f.add_argument("--name", default="confidence_audio")
    args = ap.parse_args()
    {"build": build, "collect": collect, "fit": fit}[args.command](args)


if __name__ == "__main__":
    main()
