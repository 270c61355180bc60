"""Version identification: every version of the test split as the query against all other test recordings.

Collection: the versions of one split of the benchmark dataset (``data/bench``, built by ``mirsearch
dataset build``), the same collection as ``bench_matching.py`` (``data/bench_match/coll_<dataset>_<split>.mirs``,
seeded from the builder's ``collections/chroma-<split>.mirs``). With ``--with-real`` the 80 real
game-soundtrack tracks of that collection stay in as distractors.

Each version is the query (its whole audio file, features computed from the waveform, so the query
time includes decoding and chroma); its own recording is excluded. Relevant = the other versions of the
same work. Versions of other works of the same *family* (another harmonisation of the same tune) are
dropped from the ranking (neither right nor wrong), as in ``bench_matching.py``.

Metrics over the full ranking: P@1, MAP (mean over queries of the average precision, all relevant
versions counted), MR1 (mean rank of the first relevant version), mean query time.

Methods:

- *mirsearch* ``identify_versions`` (``mirsearch versions``): 20 s shingles every 10 s, CENS 1 Hz, multiple
  tempo scaling, score = mean over shingles of the best diagonal-matching cost in the recording, two key
  candidates per recording from the global chroma (module docstring of :mod:`mirsearch.search.versions`);
- *libfmp* (baseline, FMP notebook C7S2 recipe applied to whole recordings): librosa STFT chroma 10 Hz ->
  CENS (ell=21, d=5, 2 Hz) of the query; ``libfmp.c7.compute_matching_function_dtw_ti`` (subsequence DTW,
  steps (2,1), (1,2), (1,1), minimum over the 12 cyclic shifts) of the whole query against each
  recording; score = minimum of the matching function (when a recording is shorter than half the query,
  the recording is matched into the query instead). Recording CENS are cached
  (``data/bench_match/libfmp_cens.npz``, shared with ``bench_matching.py``).

    python benchmarks/bench_versions.py [--dataset data/bench] [--split test] [--with-real]
                                        [--baseline-every 1] [--skip-baseline] [--max-queries N] [--every K]
                                        [--features chroma|matching]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_data  # noqa: E402
from bench_matching import DATA, SR, build_collection, libfmp_database, real_tracks  # noqa: E402

from _common import print_table, write_results  # noqa: E402


def ranking_metrics(ranked_ids: list[int], relevant: set[int]) -> dict:
    """P@1, average precision over the whole ranking and rank of the first relevant item (1-based)."""
    hits, ap, first = 0, 0.0, None
    for k, rid in enumerate(ranked_ids, 1):
        if rid in relevant:
            hits += 1
            ap += hits / k
            if first is None:
                first = k
    return {
        "p1": float(bool(ranked_ids) and ranked_ids[0] in relevant),
        "ap": ap / max(1, len(relevant)),
        "first_rank": first if first is not None else len(ranked_ids) + 1,
    }


def libfmp_rank(y: np.ndarray, db: dict, ids: list[int]) -> list[int]:
    """Recording ids ranked by libfmp's subsequence-DTW matching cost of the whole query (min over shifts)."""
    import libfmp.c7

    from baselines import libfmp_cens

    X, _ = libfmp_cens(y, SR)
    shifts = np.arange(12)
    scores = []
    for rid in ids:
        Y = db[rid]
        A, B = (X, Y) if Y.shape[1] >= X.shape[1] // 2 + 1 else (Y, X)
        if B.shape[1] < A.shape[1] // 2 + 1:
            scores.append(np.inf)
            continue
        Delta, _, _ = libfmp.c7.compute_matching_function_dtw_ti(A, B, cyc=shifts)
        scores.append(float(np.min(Delta)))
    order = np.argsort(scores, kind="stable")
    return [ids[i] for i in order]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=str(HERE.parent / "data" / "bench"), help="benchmark dataset folder")
    ap.add_argument("--split", default="test")
    ap.add_argument("--with-real", action="store_true", help="keep the real tracks in the collection as distractors")
    ap.add_argument("--max-queries", type=int, default=0, help="at most this many queries (0: every version)")
    ap.add_argument("--every", type=int, default=1, help="every K-th version (in work order) as a query")
    ap.add_argument("--baseline-every", type=int, default=1, help="run libfmp on every K-th query only")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument(
        "--features",
        choices=("chroma", "matching"),
        default="chroma",
        help="mirsearch CENS from the stored chroma or from the matching chroma (prepare_database)",
    )
    ap.add_argument("--out", default="versions", help="results name (benchmarks/results/NAME.json)")
    args = ap.parse_args()
    import os

    os.environ.setdefault("MIRSEARCH_CACHE", str(DATA / "cache"))
    from mirsearch.audio import load_audio
    from mirsearch.features.audio_match import VERSION_MATCH
    from mirsearch.index.audio_database import prepare_database
    from mirsearch.search.audio_query import AudioQuery
    from mirsearch.search.versions import VersionOptions, identify_versions

    dataset = Path(args.dataset)
    ds = bench_data.load(dataset, args.split)
    groups = {w: [str(v.path) for v in ds.versions_of(w)] for w in ds.works}
    fam: dict = {}
    for w, info in ds.works.items():
        fam.setdefault(info.family, []).append(w)
    tracks = real_tracks()
    paths = [Path(p) for ps in groups.values() for p in ps]
    seed = dataset / "collections" / f"chroma-{args.split}.mirs"
    coll = build_collection(
        paths + tracks, name=f"coll_{dataset.name}_{args.split}.mirs", seed_from=seed, refresh=args.features == "chroma"
    )
    recs = coll.recordings()
    id_of = {str(Path(r.path).resolve()): r.id for r in recs}

    def rid(p) -> int:
        return id_of[str(Path(p).resolve())]

    version_ids = {rid(p) for p in paths}
    drop = [] if args.with_real else [r.id for r in recs if r.id not in version_ids]
    t0 = time.perf_counter()
    match = VERSION_MATCH.replace(features=args.features)
    db = prepare_database(coll, match, exclude=drop)
    t_prep = time.perf_counter() - t0
    searched = [r for r in db.recordings]
    hours = sum(r.duration for r in searched) / 3600
    fmp_db = None if args.skip_baseline else libfmp_database(coll)
    queries = [(w, p) for w in sorted(groups) for p in groups[w] if len(groups[w]) > 1]
    queries = queries[:: max(1, args.every)]
    if args.max_queries:
        queries = queries[: args.max_queries]
    print(f"{len(queries)} queries against {len(searched)} recordings ({hours:.2f} h)", flush=True)
    warm = VersionOptions(top=3, exclude=(rid(queries[0][1]),), match=match)
    identify_versions(db, AudioQuery.from_file(queries[0][1]), warm)  # warm-up
    rows = []
    for qi, (work, path) in enumerate(queries):
        me = rid(path)
        relevant = {rid(p) for p in groups[work] if p != path}
        ignore = {rid(p) for w2 in fam[ds.works[work].family] if w2 != work for p in groups[w2]}
        t1 = time.perf_counter()
        ranked = identify_versions(
            db, AudioQuery.from_file(path), VersionOptions(top=len(searched), exclude=(me,), match=match)
        )
        dt = time.perf_counter() - t1
        ids = [m.recording_id for m in ranked if m.recording_id not in ignore]
        rows.append({"method": "mirsearch", "query": Path(path).name, "s": dt, **ranking_metrics(ids, relevant)})
        if fmp_db is not None and qi % max(1, args.baseline_every) == 0:
            t1 = time.perf_counter()
            y, _ = load_audio(path)
            cand = [r.id for r in searched if r.id != me]
            ranked_ids = libfmp_rank(y, fmp_db, cand)
            dt = time.perf_counter() - t1
            ids = [i for i in ranked_ids if i not in ignore]
            rows.append({"method": "libfmp", "query": Path(path).name, "s": dt, **ranking_metrics(ids, relevant)})
        if (qi + 1) % 25 == 0:
            print(f"  {qi + 1}/{len(queries)}", flush=True)

    def summary(rs: list[dict], name: str, subset: str) -> dict:
        return {
            "method": name,
            "queries": subset,
            "n": len(rs),
            "P_at_1": float(np.mean([r["p1"] for r in rs])),
            "MAP": float(np.mean([r["ap"] for r in rs])),
            "MR1": float(np.mean([r["first_rank"] for r in rs])),
            "mean_query_s": float(np.mean([r["s"] for r in rs])),
        }

    mine = [r for r in rows if r["method"] == "mirsearch"]
    fmp = [r for r in rows if r["method"] == "libfmp"]
    table = [summary(mine, "mirsearch", "all")]
    if fmp:
        names = {r["query"] for r in fmp}
        if len(fmp) < len(mine):
            table.append(summary([r for r in mine if r["query"] in names], "mirsearch", "baseline subset"))
        table.append(summary(fmp, "libfmp", "baseline subset" if len(fmp) < len(mine) else "all"))
    print(
        f"\nversion identification, {args.features} features ({len(searched)} recordings, {hours:.2f} h; "
        f"CENS prepared in {t_prep:.1f} s)"
    )
    print_table(table, ["method", "queries", "n", "P_at_1", "MAP", "MR1", "mean_query_s"])
    out = write_results(
        args.out,
        {
            "command": "python benchmarks/bench_versions.py " + " ".join(sys.argv[1:]),
            "collection": {"recordings": len(searched), "hours": hours, "with_real": args.with_real},
            "features": args.features,
            "source": {"dataset": str(dataset), "split": args.split, "works": len(ds.works), "versions": len(ds)},
            "database_prepare_s": t_prep,
            "summary": table,
            "queries": rows,
        },
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
