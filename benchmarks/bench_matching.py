"""Audio matching and version identification: mirsearch against libfmp's CENS matching, same queries.

Collection (built once under ``data/bench_match/``, git-ignored):

- *versions*: the test split of the benchmark dataset (``mirsearch dataset build``, ``data/bench``; the
  builder's ``collections/chroma-test.mirs`` is copied as the starting point), whose versions carry
  their tempo maps; without a dataset, our own renderings (``benchmarks/synth.py``: works of four Bach
  chorales, three versions each);
- *real recordings*: the game soundtracks of the Debian packages ``ufoai-music`` (64 tracks) and
  ``singularity-music`` (16 tracks), fetched with ``apt-get download`` into ``data/real/``.

Queries (20 s):

- *versions*: cut at random positions from ``--max-versions`` versions (``--per-version`` each);
  relevant = the same passage in each other version of the work (mapped through the tempo maps; a
  match counts if it covers at least half of the true span); the query's own recording is excluded
  from the search, and versions of other works of the same *family* (another harmonisation of the same
  tune) are dropped from the ranking (neither right nor wrong);
- *real*: excerpts of real tracks degraded by a pitch shift (+2 semitones), a time stretch (x0.85 or
  x1.2), white noise (5 dB SNR), a telephone channel (300-3400 Hz, 8 kHz) and MP3 encoding at ~24 kbit/s;
  relevant = the original passage in the original track.

Methods (top 10 matches each, 12 transpositions): mirsearch ``search_audio`` with multiple scaling and
with subsequence DTW (CENS 2 Hz), each on the *matching chroma* (``features="matching"``: pitch bands
E2-C7 only, computed from the audio and cached under ``data/bench_match/cache``) or on the collection's
stored chroma (``features="chroma"``); libfmp (FMP notebook C7S2: librosa STFT chroma, CENS ell=21/d=5 at
2 Hz, ``compute_matching_function_dtw_ti``, local minima with suppression, start by backtracking).
Metrics: P@1, MAP (average precision over the top 10), mean query time (from the waveform, including
the query's features). Version identification: ``bench_versions.py``.

Parameters are chosen with ``--real-pool validation --real-only`` (excerpts of the 50 real tracks that
the reported queries do not use, cut with another seed), never on the reported queries.

    python benchmarks/bench_matching.py [--dataset data/bench] [--split test] [--max-versions 120]
                                        [--per-version 2] [--real-queries 30] [--real-pool test|validation]
                                        [--real-only] [--methods sdtw:matching,...] [--skip-baseline]
                                        [--baseline-from benchmarks/results/matching.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from synth import build_versions, chorale_works  # noqa: E402

from _common import print_table, summary_by, write_results  # noqa: E402

ROOT = HERE.parent
DATA = ROOT / "data" / "bench_match"
REAL = ROOT / "data" / "real"
SR = 22050
QUERY_SECONDS = 20.0
TOP = 10
#: real tracks excerpted for the reported (test) queries; validation excerpts come from the others
REPORTED_REAL = 30


# ---------------------------------------------------------------------------------------------- data


def real_tracks() -> list[Path]:
    tracks = sorted((REAL / "ufoai_ogg").rglob("*.ogg")) + sorted((REAL / "sing").rglob("*.ogg"))
    if not tracks:
        raise SystemExit(
            "no real tracks: apt-get download ufoai-music singularity-music, then dpkg -x each into data/real/ "
            "(ufoai: unzip usr/share/games/ufoai/base/0music.pk3 into data/real/ufoai_ogg)"
        )
    return tracks


def build_collection(
    paths: list[Path], *, name: str = "coll.mirs", seed_from: Path | None = None, refresh: bool = True, features=None
):
    """Open or create the benchmark collection and index what is missing.

    ``seed_from``: an existing collection with some of the files (e.g. the dataset builder's
    ``collections/chroma-test.mirs``, same chroma configuration) copied as the starting point.
    ``refresh``: also re-extract the stored features of known files whose feature configuration changed
    (needed whenever the stored chroma is searched); otherwise only new files are indexed.
    ``features``: the stored kinds (default: an existing collection's, ``["chroma"]`` for a new one).
    """
    import shutil

    from mirsearch.collection import Collection

    if not (DATA / name).exists() and seed_from is not None and seed_from.is_dir():
        DATA.mkdir(parents=True, exist_ok=True)
        shutil.copytree(seed_from, DATA / name, ignore=shutil.ignore_patterns("*.lock"))
    coll = Collection.create(DATA / name, features=features)
    known = {Path(r.path).resolve() for r in coll.recordings()}
    if refresh:  # every file catalogued with the current feature configuration: nothing to add (no write lock)
        from mirsearch.features.registry import config_key

        keys = {c["kind"]: config_key(c) for c in coll.configs()}
        current = {Path(r.path).resolve() for r in coll.recordings() if coll.catalog.feature_keys(r.id) == keys}
        refresh = any(Path(p).resolve() not in current for p in paths)
    todo = [p for p in paths if refresh or Path(p).resolve() not in known]
    if todo:
        t0 = time.perf_counter()
        rep = coll.add(todo, jobs=1)
        n = len(rep.added) + len(rep.updated)
        print(f"  indexed {n} files in {time.perf_counter() - t0:.0f} s ({len(rep.failed)} failed)", flush=True)
    return coll


def degrade(y: np.ndarray, kind: str, rng) -> tuple[np.ndarray, float, int]:
    """Apply one degradation; returns (signal, tempo factor of the result, semitones up)."""
    import librosa
    import scipy.signal
    import soundfile as sf
    import soxr

    if kind == "pitch+2":
        return librosa.effects.pitch_shift(y, sr=SR, n_steps=2).astype(np.float32), 1.0, 2
    if kind == "stretch0.85":
        return librosa.effects.time_stretch(y, rate=0.85).astype(np.float32), 0.85, 0
    if kind == "stretch1.2":
        return librosa.effects.time_stretch(y, rate=1.2).astype(np.float32), 1.2, 0
    if kind == "noise5dB":
        p = float(np.mean(y**2))
        return (y + rng.normal(0, np.sqrt(p / 10**0.5), y.shape)).astype(np.float32), 1.0, 0
    if kind == "telephone":
        sos = scipy.signal.butter(4, [300, 3400], btype="bandpass", fs=SR, output="sos")
        z = scipy.signal.sosfilt(sos, y).astype(np.float32)
        z = soxr.resample(soxr.resample(z, SR, 8000), 8000, SR).astype(np.float32)
        return z, 1.0, 0
    if kind == "mp3":
        tmp = DATA / f"tmp_query_{os.getpid()}.mp3"  # one per process: runs may go in parallel
        sf.write(tmp, y, SR, format="MP3", subtype="MPEG_LAYER_III", compression_level=0.95)
        z, r = sf.read(tmp, dtype="float32")
        tmp.unlink()
        return z[: y.size], 1.0, 0
    if kind == "clean":
        return y, 1.0, 0
    raise ValueError(kind)


DEGRADATIONS = ("pitch+2", "stretch0.85", "stretch1.2", "noise5dB", "telephone", "mp3")


def own_sources(n_works: int):
    """Own renderings: (audio paths, version queries spec, version-id groups) like the dataset adapter."""
    works = chorale_works(n_works, 4, offset=100)
    print(f"rendering {n_works} works x 3 versions", flush=True)
    versions = build_versions(DATA / "versions", works, n_versions=3, seed=2)
    by_work = {}
    for v in versions:
        by_work.setdefault(v.work, []).append(v)
    return versions, by_work


def own_version_queries(versions, by_work, *, per_version: int, rng) -> list[dict]:
    out = []
    for v in versions:
        music0, music1 = v.times[0], v.times[-1]
        for _ in range(per_version):
            s = float(rng.uniform(music0, max(music0, music1 - QUERY_SECONDS)))
            q0, q1 = np.interp([s, s + QUERY_SECONDS], v.times, v.quarters)
            relevant = {w.path: tuple(np.interp([q0, q1], w.quarters, w.times)) for w in by_work[v.work] if w is not v}
            out.append({"path": v.path, "start": s, "relevant": relevant, "ignore": []})
    return out


def real_picks(n_tracks: int, n_real: int, pool: str) -> tuple[np.ndarray, np.random.Generator]:
    """Indices of the real tracks excerpted and the generator that then cuts and degrades them.

    ``pool="test"``: the reported queries (seed 0). ``pool="validation"``: tracks *not* among the
    ``REPORTED_REAL`` reported ones, cut with seed 1 (for choosing parameters without the test queries).
    """
    if pool == "test":
        rng = np.random.default_rng(0)
        return rng.choice(n_tracks, size=min(n_real, n_tracks), replace=False), rng
    reported = set(np.random.default_rng(0).choice(n_tracks, size=min(REPORTED_REAL, n_tracks), replace=False).tolist())
    rest = np.array([i for i in range(n_tracks) if i not in reported], dtype=np.int64)
    rng = np.random.default_rng(1)
    return rng.choice(rest, size=min(n_real, rest.size), replace=False), rng


def make_queries(specs: list[dict], tracks, coll, *, n_real: int, real_pool: str = "test"):
    """Query list: dicts with signal, relevant spans {recording_id: (start, end)}, exclude and ignore ids."""
    from mirsearch.audio import load_audio

    id_of = {str(Path(r.path).resolve()): r.id for r in coll.recordings()}

    def rid(path):
        return id_of[str(Path(path).resolve())]

    queries = []
    signals = {}
    for q in specs:
        if q["path"] not in signals:
            signals.clear()
            signals[q["path"]] = load_audio(q["path"])[0]
        y = signals[q["path"]]
        s = q["start"]
        queries.append(
            {
                "group": "versions",
                "kind": "cut",
                "y": y[int(s * SR) : int((s + QUERY_SECONDS) * SR)],
                "relevant": {rid(p): span for p, span in q["relevant"].items()},
                "exclude": [rid(q["path"])],
                "ignore": {rid(p) for p in q["ignore"]},
            }
        )
    picks, rng = real_picks(len(tracks), n_real, real_pool)
    for ti in picks:
        path = tracks[ti]
        y, _ = load_audio(path)
        dur = y.size / SR
        if dur < QUERY_SECONDS + 20:
            continue
        s = float(rng.uniform(5.0, dur - QUERY_SECONDS - 5.0))
        clean = y[int(s * SR) : int((s + QUERY_SECONDS) * SR)]
        for kind in DEGRADATIONS:
            z, _, _ = degrade(clean, kind, rng)
            queries.append(
                {
                    "group": "real",
                    "kind": kind,
                    "y": z,
                    "relevant": {rid(path): (s, s + QUERY_SECONDS)},
                    "exclude": [],
                    "ignore": set(),
                }
            )
    return queries


# ---------------------------------------------------------------------------------------------- scoring


def is_hit(rec_id, start, end, relevant: dict, used: set) -> bool:
    if rec_id not in relevant or rec_id in used:
        return False
    s, e = relevant[rec_id]
    inter = min(end, e) - max(start, s)
    return inter >= 0.5 * (e - s)


def average_precision(ranked: list[tuple[int, float, float]], relevant: dict, ignore=()) -> tuple[float, bool]:
    used, hits, ap = set(), 0, 0.0
    first = False
    ranked = [r for r in ranked if r[0] not in ignore]
    for k, (rid, s, e) in enumerate(ranked[:TOP], 1):
        if is_hit(rid, s, e, relevant, used):
            used.add(rid)
            hits += 1
            ap += hits / k
            if k == 1:
                first = True
    return ap / max(1, len(relevant)), first


# ---------------------------------------------------------------------------------------------- methods


def libfmp_database(coll):
    """libfmp CENS (2 Hz) of every recording, cached as .npz beside the collection."""
    from baselines import libfmp_cens
    from mirsearch.audio import load_audio

    cache = DATA / "libfmp_cens.npz"
    recs = coll.recordings()
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        if sorted(int(k[1:]) for k in z.files) == sorted(r.id for r in recs):
            return {r.id: z[f"r{r.id}"] for r in recs}
    out = {}
    for r in recs:
        y, _ = load_audio(r.path)
        out[r.id] = libfmp_cens(y, SR)[0]
    np.savez(cache, **{f"r{k}": v for k, v in out.items()})
    return out


def run_libfmp(q, db: dict, recs) -> list[tuple[int, float, float]]:
    from baselines import libfmp_cens, libfmp_match

    X, rate = libfmp_cens(q["y"], SR)
    ids = [r.id for r in recs if r.id not in q["exclude"]]
    found = libfmp_match(X, [db[i] for i in ids], top=TOP + len(q["ignore"]))
    return [(ids[i], s / rate, (e + 1) / rate) for i, s, e, _ in found]


def run_mirsearch(q, db, method: str) -> list[tuple[int, float, float]]:
    from mirsearch.features.audio_match import ALL_KEYS, PASSAGE_MATCH
    from mirsearch.search.audio import PassageOptions, search_audio
    from mirsearch.search.audio_query import AudioQuery

    options = PassageOptions(
        top=TOP + len(q["ignore"]),
        method=method,
        exclude=tuple(q["exclude"]),
        match=PASSAGE_MATCH.replace(transpositions=ALL_KEYS),
    )
    ms = search_audio(db, AudioQuery.from_samples(q["y"], SR), options).matches
    return [(m.recording_id, m.start, m.end) for m in ms]


def evaluate(queries, runner, name: str) -> list[dict]:
    rows = []
    for q in queries:
        t0 = time.perf_counter()
        ranked = runner(q)
        dt = time.perf_counter() - t0
        ap, first = average_precision(ranked, q["relevant"], q["ignore"])
        rows.append({"method": name, "group": q["group"], "kind": q["kind"], "ap": ap, "p1": float(first), "s": dt})
    return rows


def summarise(rows: list[dict], by: tuple[str, ...]) -> list[dict]:
    return summary_by(rows, by, {
        "P_at_1": ("p1", "mean", 1, None), "MAP": ("ap", "mean", 1, None), "mean_query_s": ("s", "mean", 1, None),
    })  # fmt: skip


def reused_baseline(path: Path, queries: list[dict]) -> list[dict] | None:
    """libfmp rows of an earlier run on the same queries (same order, group and kind), else ``None``."""
    import json

    if not path.is_file():
        return None
    old = [r for r in json.loads(path.read_text()).get("queries", []) if r["method"] == "libfmp"]
    if [(r["group"], r["kind"]) for r in old] != [(q["group"], q["kind"]) for q in queries]:
        return None
    return old


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=str(ROOT / "data" / "bench"), help="benchmark dataset folder")
    ap.add_argument("--split", default="test")
    ap.add_argument("--max-versions", type=int, default=120, help="dataset versions that queries are cut from")
    ap.add_argument("--works", type=int, default=8, help="own renderings when there is no dataset")
    ap.add_argument("--per-version", type=int, default=2, help="queries cut from each version")
    ap.add_argument("--real-queries", type=int, default=REPORTED_REAL, help="real tracks excerpted (x6 degradations)")
    ap.add_argument(
        "--real-pool",
        choices=("test", "validation"),
        default="test",
        help="'validation': excerpts of other real tracks than the reported ones (seed 1), for choosing parameters",
    )
    ap.add_argument("--real-only", action="store_true", help="only the real-track queries (no version queries)")
    ap.add_argument(
        "--methods",
        default="scaling:matching,sdtw:matching,sdtw:chroma",
        help="comma-separated METHOD:FEATURES of mirsearch (METHOD scaling|sdtw, FEATURES matching|chroma)",
    )
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument(
        "--baseline-from",
        metavar="JSON",
        help="reuse the libfmp rows of an earlier results file when its queries are the same (saves its run time)",
    )
    ap.add_argument("--out", default="matching", help="results name (benchmarks/results/NAME.json)")
    args = ap.parse_args()
    os.environ.setdefault("MIRSEARCH_CACHE", str(DATA / "cache"))
    from mirsearch.features.audio_match import PASSAGE_MATCH
    from mirsearch.index.audio_database import prepare_database

    methods = [tuple(m.split(":")) for m in args.methods.split(",") if m]
    if any(len(m) != 2 or m[0] not in ("scaling", "sdtw") or m[1] not in ("matching", "chroma") for m in methods):
        raise SystemExit(f"--methods {args.methods!r}: expected METHOD:FEATURES items")
    rng = np.random.default_rng(0)
    dataset = Path(args.dataset)
    tracks = real_tracks()
    if (dataset / "manifest.json").is_file():
        import bench_data

        ds = bench_data.load(dataset, args.split)
        groups = {w: [str(v.path) for v in ds.versions_of(w)] for w in ds.works}
        specs = bench_data.match_queries(
            ds, per_version=args.per_version, seconds=QUERY_SECONDS, max_versions=args.max_versions
        )
        name = f"coll_{dataset.name}_{args.split}.mirs"
        source = {"dataset": str(dataset), "split": args.split, "works": len(ds.works), "versions": len(ds)}
    else:
        versions, by_work = own_sources(args.works)
        groups = {w: [v.path for v in vs] for w, vs in by_work.items()}
        specs = own_version_queries(versions, by_work, per_version=args.per_version, rng=rng)
        name = "coll.mirs"
        source = {"own_renderings": {w: [v.path for v in vs] for w, vs in by_work.items()}}
    if args.real_only:
        specs = []
    paths = [Path(p) for ps in groups.values() for p in ps]
    print(f"collection: {len(paths)} versions + {len(tracks)} real tracks", flush=True)
    seed = dataset / "collections" / f"chroma-{args.split}.mirs" if "dataset" in source else None
    coll = build_collection(paths + tracks, name=name, seed_from=seed, refresh=any(f == "chroma" for _, f in methods))
    recs = coll.recordings()
    hours = sum(r.duration for r in recs) / 3600
    dbs, prep = {}, {}
    for feats in sorted({f for _, f in methods}):
        t0 = time.perf_counter()
        dbs[feats] = prepare_database(coll, PASSAGE_MATCH.replace(features=feats))
        prep[feats] = time.perf_counter() - t0
        print(f"  database CENS ({feats}) in {prep[feats]:.1f} s", flush=True)
    queries = make_queries(specs, tracks, coll, n_real=args.real_queries, real_pool=args.real_pool)
    print(f"{len(queries)} queries over {len(recs)} recordings ({hours:.2f} h)", flush=True)
    rows = []
    for method, feats in methods:
        run_mirsearch(queries[0], dbs[feats], method)  # warm-up (numba caches, librosa)
        label = f"mirsearch {method} ({feats})"
        rows += evaluate(queries, lambda q, m=method, f=feats: run_mirsearch(q, dbs[f], m), label)
        print(f"  {label} done", flush=True)
    baseline_source = None
    if not args.skip_baseline:
        old = reused_baseline(Path(args.baseline_from), queries) if args.baseline_from else None
        if old is not None:
            rows += old
            baseline_source = args.baseline_from
            print(f"  libfmp rows reused from {args.baseline_from}", flush=True)
        else:
            fmp_db = libfmp_database(coll)
            run_libfmp(queries[0], fmp_db, recs)
            rows += evaluate(queries, lambda q: run_libfmp(q, fmp_db, recs), "libfmp")
            print("  libfmp done", flush=True)
    overall = summarise(rows, ("method", "group"))
    by_kind = summarise(rows, ("method", "kind"))
    print(f"\naudio matching ({len(recs)} recordings, {hours:.2f} h; real pool: {args.real_pool})")
    print_table(overall, ["method", "group", "queries", "P_at_1", "MAP", "mean_query_s"])
    print("\nby query kind")
    print_table(by_kind, ["method", "kind", "queries", "P_at_1", "MAP", "mean_query_s"])
    path = write_results(
        args.out,
        {
            "command": "python benchmarks/bench_matching.py " + " ".join(sys.argv[1:]),
            "collection": {"recordings": len(recs), "hours": hours, "versions": len(paths), "real": len(tracks)},
            "source": source,
            "real_pool": args.real_pool,
            "baseline_rows_from": baseline_source,
            "database_prepare_s": prep,
            "overall": overall,
            "by_kind": by_kind,
            "queries": [{k: r[k] for k in ("method", "group", "kind", "ap", "p1", "s")} for r in rows],
        },
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
