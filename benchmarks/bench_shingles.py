"""Shingle index benchmark: cross-version retrieval, index scale, and the theme-search cascade.

Three sections, each writing ``benchmarks/results/shingles_<section>.json``; the ``## Shingle index``
section of ``docs/benchmarks.md`` is rebuilt from whichever result files exist.

``retrieval``
    The test split of a dataset (``mirsearch dataset build``) is indexed as a collection. Queries are
    ``--query-seconds`` excerpts at random positions of every test version (``--queries-per-version``);
    the relevant documents are the *other* versions of the same work (the query's own recording is
    excluded, as in the reference's cross-version setting). For every reduction (none = 240 dims, PCA
    fitted on the test collection, learned embeddings) and index (exact, KD-tree, HNSW): P@1, MAP (over
    the ranking of all recordings; relevant recordings the index never proposes count as not retrieved),
    mean time per query (reduction + nearest neighbours + voting; the query's CENS shingles at the 7 tempo
    factors are computed once and shared, 2-5 ms more per query) and per nearest-neighbour lookup.
``scale``
    At least ``--scale`` shingles (default 1.25 million): the shingles of every split of the dataset
    with new variations (all 12 transpositions, tempo factors 1.0 / 1.1 / 0.9 ...), reduced by the learned
    embeddings; held-out query shingles from the test split at tempo factor 0.95. Build time, index size
    on disk, per-query latency (one query at a time, one thread) and recall@10 against the exact search,
    for KD-tree and HNSW (and exact), in one run.
``cascade``
    Every theme of the test split searched with the exhaustive theme search
    (:func:`mirsearch.search.theme.search_theme`) and with :func:`cascade_search_theme` (index proposals,
    DTW on the candidates): Top-1 and MRR at recording level, mean time per query and the speed-up.
``learned_cascade``
    The same on learned chroma (collection ``<dataset>/collections/learned-<split>.mirs``, the one
    ``mirsearch bench theme --features learned`` uses): exhaustive learned theme search against the
    cascade with note-index proposals (``proposal="notes"``) at several candidate counts (the trade-off
    curve) and with learned-CENS shingle proposals from an HNSW index (``index-*``). Per variant:
    Top-1, MRR, ms per query split into proposal and DTW stage, and the proposal recall (queries whose
    exhaustive top-1 recording is among the candidates).

    python benchmarks/bench_shingles.py --dataset data/bench [--sections retrieval,scale,cascade]
        [--embeddings data/runs/embedding-6,data/runs/embedding-12,data/runs/embedding-30] [--scale 1250000]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from mirsearch.evaluation.metrics import hit_at_k, reciprocal_rank

from _common import RESULTS, accuracy_row, paired_columns, print_table, write_results

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
HEADING = "## Shingle index"

#: the reference's tables (tutorial notes 002: Zalkow & Müller 2020, Zalkow et al. 2021)
REF_RETRIEVAL = {
    "none240": {"p1": 0.996, "map": 0.972, "seconds": 23.0},
    "embedding30": {"p1": 0.981, "map": 0.959, "seconds": 3.4},
    "embedding12": {"p1": 0.964, "map": 0.928, "seconds": 1.8},
    "embedding6": {"p1": 0.890, "map": 0.856, "seconds": 1.2},
}
REF_SCALE_MS = {
    ("kdtree", "none240"): 772.95,
    ("kdtree", "embedding30"): 117.54,
    ("kdtree", "embedding12"): 7.24,
    ("kdtree", "embedding6"): 0.66,
    ("hnsw", "none240"): 0.20,
    ("hnsw", "embedding30"): 0.08,
    ("hnsw", "embedding12"): 0.06,
    ("hnsw", "embedding6"): 0.06,
}

log = logging.getLogger("bench_shingles")


# -- helpers ----------------------------------------------------------------------------------------------
def average_precision(ranked: list[int], relevant: set[int]) -> float:
    """AP of a ranked list of ids; relevant ids never ranked contribute 0."""
    if not relevant:
        return float("nan")
    hits, total = 0, 0.0
    for i, r in enumerate(ranked, 1):
        if r in relevant:
            hits += 1
            total += hits / i
    return total / len(relevant)


def embedding_label(path) -> str:
    """``embedding12`` (CNN) or ``embedding12-mlp`` for a bundle directory."""
    cfg = json.loads((Path(path) / "config.json").read_text())
    arch = cfg["network"].get("arch", "cnn")
    return f"embedding{cfg['dim']}" + ("" if arch == "cnn" else f"-{arch}")


def reductions(args, coll) -> list[tuple[str, object, int | None]]:
    """(label, reduction spec, dim) of every reduction to compare."""
    out = [("none240", "none", None)]
    out += [(f"pca{d}", "pca", d) for d in (6, 12, 30)]
    for path in args.embeddings:
        cfg = json.loads((Path(path) / "config.json").read_text())
        out.append((embedding_label(path), path, cfg["dim"]))
    return out


def load_reduction_spec(spec, dim, store):
    from mirsearch.models.embedding import PCAReduction, load_reduction

    if spec == "pca":
        return PCAReduction.fit(store.vectors(), dim=dim)
    return load_reduction(spec, dim=dim)


# -- retrieval ----------------------------------------------------------------------------------------------
def run_retrieval(args) -> dict:
    from mirsearch.index.shingle_index import ShingleIndex
    from mirsearch.search.shingles import TEMPO_FACTORS, query_shingles, score_regions
    from mirsearch.training.embedding import dataset_collection

    coll, view = dataset_collection(args.dataset, args.split, jobs=args.jobs, progress=True)
    recs = coll.recordings()
    by_path = {r.path: r.id for r in recs}
    work_of, rid_of_version, family_of, key_of = {}, {}, {}, {}
    for v in view:
        rid = by_path.get(str(v.path.resolve()))
        if rid is not None:
            work_of[rid] = v.work_id
            family_of[rid] = view.works[v.work_id].family
            key_of[rid] = v.transposition
            rid_of_version[v.version_id] = rid
    rng = np.random.default_rng(args.seed)
    queries = []  # (rid, start s, chroma)
    n_frames = int(args.query_seconds * 10)
    for _vid, rid in sorted(rid_of_version.items()):
        C = np.asarray(coll.load_features(rid)[0])
        if C.shape[1] < n_frames + 10:
            continue
        for s in rng.choice(C.shape[1] - n_frames, size=args.queries_per_version, replace=False):
            queries.append((rid, int(s) / 10.0, np.ascontiguousarray(C[:, s : s + n_frames])))
    relevant = {rid: {r for r, w in work_of.items() if w == work_of[rid] and r != rid} for rid in work_of}
    family = {rid: {r for r, f in family_of.items() if f == family_of[rid] and r != rid} for rid in work_of}
    same_key = {rid: {r for r in relevant[rid] if key_of[r] == key_of[rid]} for rid in work_of}
    queries = [q for q in queries if relevant[q[0]]]
    print(
        f"{args.split} split: {len(recs)} recordings ({sum(r.duration for r in recs) / 3600:.2f} h), "
        f"{len(set(work_of.values()))} works, {len(queries)} queries of {args.query_seconds:g} s",
        flush=True,
    )
    key_modes = [("same", (0,))] + ([("all 12", tuple(range(12)))] if args.all_keys else [])
    qsh, shingle_ms, n_lookups = {}, {}, {}
    for mode, keys in key_modes:
        t0 = time.perf_counter()
        qsh[mode] = [query_shingles(q[2], tempo_factors=TEMPO_FACTORS, transpositions=keys) for q in queries]
        shingle_ms[mode] = round((time.perf_counter() - t0) / len(queries) * 1000, 3)
        n_lookups[mode] = int(np.mean([len(q.S) for q in qsh[mode]]))
    rows = []
    load = [round(x, 2) for x in os.getloadavg()]

    def summary():
        return _retrieval_summary(
            args, recs, work_of, family_of, queries, relevant, same_key, n_lookups, shingle_ms, rows
        )

    for label, spec, dim in reductions(args, coll):
        if args.reductions and label not in args.reductions:
            continue
        reduced: dict[str, tuple] = {}  # key mode -> (reduced query shingles, seconds per query)
        for kind in args.kinds:
            if kind == "kdtree" and label == "none240" and not args.kdtree240:
                continue
            t1 = time.perf_counter()
            params = {"ef": args.ef} if kind == "hnsw" else {}
            idx = ShingleIndex.open(coll, reduction=spec, dim=dim, index=kind, params=params)
            build = time.perf_counter() - t1
            idx.ann.search(np.zeros((32, idx.reduction.dim), np.float32), k=args.k)  # warm up (lazy structures)
            for mode, _keys in key_modes:
                if mode != "same" and kind not in args.all_keys_kinds:
                    continue  # 12x the lookups: only for the listed index kinds
                if mode not in reduced:  # the same reduced shingles serve every index kind
                    ta = time.perf_counter()
                    Zs = [idx.reduction.transform(qs.S) for qs in qsh[mode]]
                    reduced[mode] = (Zs, (time.perf_counter() - ta) / len(Zs))
                Zs, reduce_t = reduced[mode]
                p1, p1f, aps, ann_t, total_t, p1_orig, ap_orig = [], [], [], 0.0, 0.0, [], []
                for (rid, _s, _C), qs, Z in zip(queries, qsh[mode], Zs, strict=True):
                    tb = time.perf_counter()
                    D, L = idx.ann.search(Z, k=args.k)
                    tc = time.perf_counter()
                    regions = score_regions(qs, D, L, idx.rec_ids, idx.starts, exclude=[rid], aggregate=args.aggregate)
                    td = time.perf_counter()
                    ann_t += tc - tb
                    total_t += td - tb + reduce_t
                    ranked = [g.recording_id for g in regions]
                    hit = bool(ranked) and ranked[0] in relevant[rid]
                    p1.append(hit)
                    p1f.append(bool(ranked) and ranked[0] in family[rid])
                    aps.append(average_precision(ranked, relevant[rid]))
                    if same_key[rid]:  # original-key protocol: versions in other keys leave the ranking
                        other = relevant[rid] - same_key[rid]
                        ranked_o = [r for r in ranked if r not in other]
                        p1_orig.append(bool(ranked_o) and ranked_o[0] in same_key[rid])
                        ap_orig.append(average_precision(ranked_o, same_key[rid]))
                n = len(queries)
                row = {
                    "reduction": label,
                    "index": kind,
                    "keys": mode,
                    "dim": idx.reduction.dim,
                    "P@1": round(float(np.mean(p1)), 4),
                    "MAP": round(float(np.mean(aps)), 4),
                    "P@1_orig": round(float(np.mean(p1_orig)), 4) if p1_orig else None,
                    "MAP_orig": round(float(np.mean(ap_orig)), 4) if ap_orig else None,
                    "n_orig": len(p1_orig),
                    "P@1_family": round(float(np.mean(p1f)), 4),
                    "query_ms": round(total_t / n * 1000, 3),
                    "reduce_ms": round(reduce_t * 1000, 3),
                    "lookup_ms": round(ann_t / (n * n_lookups[mode]) * 1000, 4),
                    "total_s": round(total_t, 2),
                    "build_s": round(build, 2),
                    "shingles": len(idx),
                }
                rows.append(row)
                print_table([row], list(row))
                print(flush=True)
                partial = {**summary(), "partial": True, "load_average": load}
                write_results(f"shingles_{args.name or 'retrieval'}", partial)  # a late kill keeps the rows
    coll.close()
    return summary()


def _retrieval_summary(args, recs, work_of, family_of, queries, relevant, same_key, n_lookups, shingle_ms, rows):
    from mirsearch.search.shingles import TEMPO_FACTORS

    return {
        "dataset": str(args.dataset),
        "split": args.split,
        "recordings": len(recs),
        "hours": round(sum(r.duration for r in recs) / 3600, 3),
        "works": len(set(work_of.values())),
        "families": len(set(family_of.values())),
        "queries": len(queries),
        "query_seconds": args.query_seconds,
        "aggregate": args.aggregate,
        "other_key_relevant_share": round(
            float(np.mean([len(relevant[q[0]] - same_key[q[0]]) / len(relevant[q[0]]) for q in queries])), 4
        ),
        "tempo_factors": list(TEMPO_FACTORS),
        "k": args.k,
        "ef": args.ef,
        "lookups_per_query": n_lookups,
        "query_shingle_ms": shingle_ms,
        "rows": rows,
        "reference": REF_RETRIEVAL,
    }


# -- protocol ---------------------------------------------------------------------------------------------
def run_protocol(args) -> dict:
    """Where the accuracy goes: exact search over raw (unreduced) shingles under several protocols.

    For each CENS configuration ``window/downsample/length`` of ``--protocol-configs``, every query
    (``--queries-per-version`` excerpts of ``--query-seconds`` per version) is searched exhaustively
    (all distances, k = ``--k`` nearest per query shingle, the query's own recording excluded) and scored
    under: region cost ``mean`` vs ``min``; original key vs all 12 transpositions; relevant = every other
    version vs the original-key protocol (only versions in the query's key are relevant, versions in
    other keys leave the ranking); and the reference's single-shingle query (the first shingle of every
    tempo variant only, a recording's distance = its smallest shingle distance).
    """
    from mirsearch.features.shingles import ShingleConfig, cens_of, shingles
    from mirsearch.search.shingles import TEMPO_FACTORS, query_shingles, score_regions
    from mirsearch.training.embedding import dataset_collection

    coll, view = dataset_collection(args.dataset, args.split, jobs=args.jobs, progress=True)
    by_path = {r.path: r.id for r in coll.recordings()}
    work, key, fam = {}, {}, {}
    for v in view:
        rid = by_path.get(str(v.path.resolve()))
        if rid is not None:
            work[rid], key[rid], fam[rid] = v.work_id, v.transposition, view.works[v.work_id].family
    rids = sorted(work)
    chroma = {r: np.asarray(coll.load_features(r)[0]) for r in rids}
    coll.close()
    rng = np.random.default_rng(args.seed)
    nq = int(args.query_seconds * 10)
    queries = []
    for r in rids:
        if chroma[r].shape[1] >= nq + 10:
            for s in rng.choice(chroma[r].shape[1] - nq, size=args.queries_per_version, replace=False):
                queries.append((r, chroma[r][:, s : s + nq]))
    rel = {r: {x for x in rids if work[x] == work[r] and x != r} for r in rids}
    same = {r: {x for x in rel[r] if key[x] == key[r]} for r in rids}
    print(f"{args.split}: {len(rids)} recordings, {len(set(work.values()))} works, {len(queries)} queries", flush=True)

    def first(ranked, r, orig):
        if orig:  # original-key protocol
            ranked = [x for x in ranked if not (x in rel[r] and x not in same[r])]
            return bool(ranked) and ranked[0] in same[r]
        return bool(ranked) and ranked[0] in rel[r]

    rows = []
    for spec in [c for c in args.protocol_configs.split(",") if c]:
        w, d, length = (int(x) for x in spec.split("/"))
        cfg = ShingleConfig(length=length, window=w, downsample=d)
        parts = [shingles(cens_of(chroma[r], config=cfg), length=length) for r in rids]
        DB = np.concatenate([S for S, _ in parts])
        rec_ids = np.concatenate([np.full(len(S), r) for r, (S, _) in zip(rids, parts, strict=True)])
        starts = np.concatenate([st for _, st in parts])
        bounds = np.r_[0, np.cumsum([len(S) for S, _ in parts])]
        for mode, keys in (("original key", (0,)), ("all 12", tuple(range(12)))):
            hits: dict[str, list] = {}
            for r, Cq in queries:
                qs = query_shingles(Cq, config=cfg, tempo_factors=TEMPO_FACTORS, transpositions=keys)
                G = qs.S @ DB.T
                G[:, rec_ids == r] = -np.inf
                kk = min(args.k, G.shape[1] - 1)
                L = np.argpartition(-G, kk, axis=1)[:, :kk]
                order = np.argsort(-np.take_along_axis(G, L, 1), axis=1)
                L = np.take_along_axis(L, order, 1)
                D = np.sqrt(np.maximum(2.0 - 2.0 * np.take_along_axis(G, L, 1), 0.0))
                for agg in ("mean", "min"):
                    ranked = [g.recording_id for g in score_regions(qs, D, L, rec_ids, starts, aggregate=agg)]
                    hits.setdefault(f"{agg}", []).append(first(ranked, r, False))
                    hits.setdefault(f"{agg}_family", []).append(bool(ranked) and fam[ranked[0]] == fam[r])
                    if same[r]:
                        hits.setdefault(f"{agg}_orig", []).append(first(ranked, r, True))
                g1 = G[qs.position == 0].max(axis=0)  # single-shingle query, document = min distance
                best = np.maximum.reduceat(g1, bounds[:-1]) if len(g1) else g1
                ranked1 = [rids[i] for i in np.argsort(-best, kind="stable") if rids[i] != r]
                hits.setdefault("one_shingle", []).append(first(ranked1, r, False))
                if same[r]:
                    hits.setdefault("one_shingle_orig", []).append(first(ranked1, r, True))
            row = {
                "config": f"CENS {w}/{d}, {length} frames ({length * d / 10:g} s)",
                "keys": mode,
                **{f"P@1_{name}": round(float(np.mean(v)), 4) for name, v in hits.items()},
                "queries": len(queries),
                "queries_orig": len(hits.get("mean_orig", [])),
            }
            rows.append(row)
            print_table([row], list(row))
            print(flush=True)
    return {
        "dataset": str(args.dataset),
        "split": args.split,
        "recordings": len(rids),
        "works": len(set(work.values())),
        "query_seconds": args.query_seconds,
        "queries_per_version": args.queries_per_version,
        "k": args.k,
        "rows": rows,
    }


# -- scale ------------------------------------------------------------------------------------------------
def scale_vectors(args) -> tuple[np.ndarray, np.ndarray]:
    """>= args.scale shingles (240-dim) from all splits with variations, and held-out query shingles."""
    from mirsearch.features.shingles import chroma_shingles
    from mirsearch.training.embedding import dataset_collection

    chromas = []
    for split in ("train", "validation", "test"):
        coll, view = dataset_collection(args.dataset, split, jobs=args.jobs, progress=True)
        for r in coll.recordings():
            chromas.append((split, np.asarray(coll.load_features(r.id)[0])))
        coll.close()
    variations = [(f, t) for f in (1.0, 1.1, 0.9, 1.2, 0.8) for t in range(12)]
    parts, total = [], 0
    for f, t in variations:
        for _split, C in chromas:
            S = chroma_shingles(np.roll(C, t, axis=0), tempo_factor=f)[0]
            parts.append(S.astype(np.float32))
            total += len(S)
        print(f"  variation tempo {f} transposition {t}: {total} shingles", flush=True)
        if total >= args.scale:
            break
    X = np.concatenate(parts)[: args.scale]
    rng = np.random.default_rng(args.seed)
    tests = [C for split, C in chromas if split == "test"]
    Q = np.concatenate([chroma_shingles(C, tempo_factor=0.95)[0] for C in tests])
    Q = Q[rng.choice(len(Q), min(args.scale_queries, len(Q)), replace=False)]
    return X, Q


def run_scale(args) -> dict:
    from mirsearch.index.ann import build_index, load_index
    from mirsearch.models.embedding import load_reduction

    t0 = time.perf_counter()
    cache = Path(args.scale_cache) if args.scale_cache else None
    base = cache / f"base-{args.scale}-{args.scale_queries}-{args.seed}" if cache else None
    if base is not None and (base / "X.npy").is_file():
        X240, Q240 = np.load(base / "X.npy", mmap_mode="r"), np.load(base / "Q.npy")
    else:
        X240, Q240 = scale_vectors(args)
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
            np.save(base / "X.npy", X240)
            np.save(base / "Q.npy", Q240)
    print(f"{len(X240)} shingles, {len(Q240)} queries ({time.perf_counter() - t0:.0f} s)", flush=True)
    rows = []
    specs = [(embedding_label(p), p) for p in args.embeddings]
    if args.scale240:
        specs.append(("none240", "none"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-shingles-", dir=args.tmp))
    try:
        for label, spec in specs:
            red = load_reduction(spec, threads=args.threads)
            t1 = time.perf_counter()
            reduced = base / f"{label}-{red.model_id}.npy" if base is not None else None
            if reduced is not None and reduced.is_file():
                X = np.load(reduced)
                reduce_s = None  # cached from an earlier run
            else:
                X = red.transform(X240)
                reduce_s = time.perf_counter() - t1
                if reduced is not None:
                    np.save(reduced, X)
            Q = red.transform(Q240)
            exact = build_index("exact", X, threads=1)
            t2 = time.perf_counter()
            _, truth = exact.search(Q, k=10)
            exact_batch_ms = (time.perf_counter() - t2) / len(Q) * 1000
            kinds = [("exact", {}), ("kdtree", {})]
            kinds += [("hnsw", {"M": args.M, "ef_construction": args.ef_construction, "ef": ef}) for ef in args.efs]
            built_hnsw = None
            for kind, params in kinds:
                if kind == "kdtree" and label == "none240" and not args.kdtree240:
                    continue
                d = tmp / f"{label}-{kind}"
                if kind == "hnsw" and built_hnsw is not None:  # same graph, other search ef
                    index = load_index(built_hnsw, ef=params["ef"], threads=1)
                    build_s = rows[-1]["build_s"]
                else:
                    t3 = time.perf_counter()
                    index = build_index(kind, X, **{**params, "threads": args.threads})
                    if kind == "kdtree":
                        index.build()
                    if kind == "hnsw":
                        index.search(Q[:1], k=1)  # graph exists
                    build_s = time.perf_counter() - t3
                    index.save(d)
                    if kind == "hnsw":
                        built_hnsw = d
                    index = load_index(d, threads=1) if kind != "kdtree" else index
                n_lat = min(len(Q), args.latency_queries if kind != "exact" else 100)
                index.search(Q[:5], k=10)  # warm up (kd-tree / faiss structures)
                rounds, cpu = [], []  # the machine is shared: the fastest of 3 rounds is the least disturbed one
                for _ in range(3 if kind != "exact" else 1):
                    t4, c4 = time.perf_counter(), time.process_time()
                    found = [index.search(Q[i : i + 1], k=10)[1][0] for i in range(n_lat)]
                    rounds.append((time.perf_counter() - t4) / n_lat * 1000)
                    cpu.append((time.process_time() - c4) / n_lat * 1000)
                lat_ms = min(rounds)
                raw_ms = None
                if kind == "hnsw":  # hnswlib directly: what mirsearch's checks and conversions add
                    graph = index._graph
                    graph.set_ef(max(params["ef"], 10))
                    graph.set_num_threads(1)
                    raw, raw_cpu = [], []
                    for _ in range(3):
                        t4, c4 = time.perf_counter(), time.process_time()
                        for i in range(n_lat):
                            graph.knn_query(Q[i : i + 1], k=10)
                        raw.append((time.perf_counter() - t4) / n_lat * 1000)
                        raw_cpu.append((time.process_time() - c4) / n_lat * 1000)
                    raw_ms = round(min(raw), 4)
                if n_lat < len(Q):
                    found_all = index.search(Q, k=10)[1]
                else:
                    found_all = np.asarray(found)
                recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found_all, truth, strict=True)]))
                row = {
                    "reduction": label,
                    "index": kind,
                    "ef": params.get("ef"),
                    "n": len(X),
                    "build_s": round(build_s, 2),
                    "size_mb": round(index.size_bytes(d) / 1e6, 1) if d.exists() else None,
                    "query_ms": round(lat_ms, 4),
                    "query_ms_rounds": [round(x, 4) for x in rounds],
                    "cpu_ms": round(min(cpu), 4),
                    "raw_ms": raw_ms,
                    "raw_cpu_ms": round(min(raw_cpu), 4) if raw_ms is not None else None,
                    "load_average": [round(x, 2) for x in os.getloadavg()],
                    "recall@10": round(recall, 4),
                    "reference_ms": REF_SCALE_MS.get((kind, label)),
                    "reduce_s": round(reduce_s, 1) if reduce_s is not None else None,
                    "exact_batch_ms": round(exact_batch_ms, 3),
                }
                rows.append(row)
                print_table([row], list(row))
                print(flush=True)
                del index
            shutil.rmtree(tmp / f"{label}-hnsw", ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "dataset": str(args.dataset),
        "shingles": int(len(X240)),
        "queries": int(len(Q240)),
        "M": args.M,
        "ef_construction": args.ef_construction,
        "latency_queries": args.latency_queries,
        "build_threads": args.threads,
        "rows": rows,
        "reference_ms": {f"{k[0]}/{k[1]}": v for k, v in REF_SCALE_MS.items()},
    }


# -- cascade ----------------------------------------------------------------------------------------------
def _compare_with_exhaustive(rows: list[dict], keys: list[str], tops: dict) -> None:
    """Add each row's speed-up over the first (exhaustive) row, how often its top match agrees and
    whether its accuracy differs measurably: paired Top-1 / MRR differences per query with 95 % bootstrap
    intervals, themes lost / won and the exact sign test (:func:`_common.paired_columns`).
    Rows carry their per-query scores in ``_top1`` / ``_rr``; they are removed here."""
    ref = rows[0]
    for row, key in zip(rows, keys, strict=True):
        row["speedup"] = round(ref["mean_ms"] / row["mean_ms"], 2)
        row["same_top1_as_exhaustive"] = round(
            float(np.mean([a == b for a, b in zip(tops[key], tops["exhaustive"], strict=True)])), 4
        )
        if "_top1" in ref and row is not ref:
            row.update(paired_columns(ref["_top1"], ref["_rr"], row["_top1"], row["_rr"]))
    for row in rows:
        row.pop("_top1", None)
        row.pop("_rr", None)
    cols = ["method", "Top-1", "MRR", "mean_ms", "speedup", "same_top1_as_exhaustive", "dTop-1", "lost/won", "p_sign"]
    print_table([{c: row.get(c, "") for c in cols} for row in rows], cols)
    print(flush=True)


def _close_with_summary(coll, dataset) -> dict:
    """Close the collection; its dataset, number of recordings and hours for a results file."""
    recs = coll.recordings()
    coll.close()
    return {
        "dataset": str(dataset),
        "recordings": len(recs),
        "hours": round(sum(r.duration for r in recs) / 3600, 3),
    }


def _first_and_rank(matches, relevant) -> tuple[int | None, int | None]:
    """Top recording of a result list and the 1-based rank of the first relevant recording (None if absent)."""
    ranked = list(dict.fromkeys(m.recording_id for m in matches))
    rank = next((i for i, r in enumerate(ranked, 1) if r in relevant), None)
    return (ranked[0] if ranked else None), rank


def _cascade_row(name: str, top1, rr, times, cand, frames, **extra) -> dict:
    """One printed results row of a cascade section: accuracy, time per query (s -> ms), work share."""
    row = {
        **accuracy_row(name, top1, rr, times),
        "candidates": round(float(np.mean(cand)), 1) if cand else None,
        "frames_share": round(float(np.mean(frames)), 4) if frames else 1.0,
        **extra,
    }
    print_table([row], list(row))
    print(flush=True)
    return {**row, "_top1": [float(x) for x in top1], "_rr": [float(x) for x in rr]}


def _theme_queries(coll, view, *, limit: int | None) -> list[tuple]:
    """(theme, ids of the recordings that contain it) for every theme of a dataset view, in theme order."""
    by_path = {r.path: r.id for r in coll.recordings()}
    rid_of_version = {v.version_id: by_path.get(str(v.path.resolve())) for v in view}
    themes = []
    for tid, th in sorted(view.themes.items()):
        rel = {rid_of_version[v] for v in view.relevant_versions(tid) if rid_of_version.get(v) is not None}
        if rel:
            themes.append((th.to_theme(), rel))
    return themes[:limit] if limit else themes


def run_cascade(args) -> dict:
    from mirsearch.index.shingle_index import ShingleIndex
    from mirsearch.search.cascade import cascade_from_spec, cascade_search_theme
    from mirsearch.search.shingles import THEME_CONFIG
    from mirsearch.search.theme import search_theme
    from mirsearch.training.embedding import dataset_collection

    coll, view = dataset_collection(args.dataset, "test", jobs=args.jobs, progress=True)
    themes = _theme_queries(coll, view, limit=args.theme_limit)
    t0 = time.perf_counter()
    ShingleIndex.open(coll, reduction="none", index="hnsw", config=THEME_CONFIG)
    theme_index_s = time.perf_counter() - t0
    coll.database("chroma")  # load once for both
    search_theme(coll, themes[0][0], top=10)  # compile / warm up
    variants = [("exhaustive", None)]
    for prop, c, r, f in args.cascades:
        name = f"{prop}{f if prop == 'coarse' else ''}-{c}{'-regions' if r else ''}"
        opts = {"proposal": prop, "candidates": c, "regions": r}
        if prop == "coarse":
            opts["coarse_factor"] = f
        variants.append((name, opts))
    rows = []
    warm: dict[str, float] = {}
    tops: dict[str, list] = {}
    for name, opts in variants:
        if opts is not None:  # warm-up: memoised coarse database / index (counted separately below)
            t1 = time.perf_counter()
            cascade_search_theme(coll, themes[0][0], top=10, cascade=cascade_from_spec({**opts, "update": False}))
            warm[name] = round(time.perf_counter() - t1, 3)
        top1, rr, times, cand, frames = [], [], [], [], []
        firsts = []
        for theme, rel in themes:
            stats = {}
            t1 = time.perf_counter()
            if opts is None:
                matches = search_theme(coll, theme, top=10)
            else:
                matches = cascade_search_theme(
                    coll, theme, top=10, stats=stats, cascade=cascade_from_spec({**opts, "update": False})
                )
            times.append(time.perf_counter() - t1)
            first, rank = _first_and_rank(matches, rel)
            firsts.append(first)
            top1.append(hit_at_k(rank))
            rr.append(reciprocal_rank(rank))
            if stats:
                cand.append(stats.get("candidates") or 0)
                frames.append(stats.get("frames_searched", 0) / max(stats.get("frames_total", 1), 1))
        tops[name] = firsts
        rows.append(_cascade_row(name, top1, rr, times, cand, frames))
    _compare_with_exhaustive(rows, [name for name, _ in variants], tops)
    return {
        **_close_with_summary(coll, args.dataset),
        "themes": len(themes),
        "theme_index_build_s": round(theme_index_s, 2),
        "first_call_s": warm,
        "rows": rows,
    }


#: learned-CENS theme shingles for the HNSW proposal of the learned cascade: 3 s of 2 Hz CENS with a
#: 21-frame window, query tempo factors 0.8 / 1 / 1.25 (the best of 15 configurations on the validation
#: split: proposal recall@32 0.91; 2-3.3 Hz, 2-5 s shingles, 3-7 tempo factors tried)
LEARNED_THEME_CONFIG = {"length": 6, "hop": 1, "window": 21, "downsample": 5, "features": "learned"}
LEARNED_THEME_TEMPO_FACTORS = (0.8, 1.0, 1.25)


def _learned_collection(dataset, split: str, *, jobs: int, splits: str | None = None):
    """The learned-feature collection of a split (as ``mirsearch bench theme --features learned`` builds it).

    ``splits`` (e.g. ``"test,validation,train"``): the collection holds the recordings of these splits
    (``learned-all.mirs`` for all three; the others are distractors), the themes stay those of ``split``.
    """
    from mirsearch.collection import Collection
    from mirsearch.datasets.manifest import Dataset

    full = Dataset.load(dataset)
    view = full.split(split)
    names = [x for x in (splits or split).split(",") if x]
    label = split if names == [split] else ("all" if set(names) == {"test", "validation", "train"} else "-".join(names))
    coll = Collection.create(Path(dataset) / "collections" / f"learned-{label}.mirs", features=["learned"])
    for name in names:
        versions = [v for v in full.split(name) if v.path.is_file()]
        coll.add([str(v.path.resolve()) for v in versions], jobs=jobs, progress=True)
    return coll, view


def run_learned_cascade(args) -> dict:
    from mirsearch.features.shingles import ShingleConfig
    from mirsearch.index.notes import NOTE_WEIGHTING, note_index
    from mirsearch.index.shingle_index import ShingleIndex
    from mirsearch.search.cascade import cascade_from_spec, cascade_search_theme
    from mirsearch.search.theme import search_theme

    coll, view = _learned_collection(args.dataset, args.learned_split, jobs=args.jobs, splits=args.learned_splits)
    themes = _theme_queries(coll, view, limit=args.theme_limit)
    t0 = time.perf_counter()
    coll.database("learned")
    database_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    nidx = note_index(coll, features="learned")
    note_index_s = time.perf_counter() - t0
    config = ShingleConfig(**LEARNED_THEME_CONFIG)
    t0 = time.perf_counter()
    sidx = ShingleIndex.open(coll, reduction="none", index="hnsw", config=config)
    shingle_index_s = time.perf_counter() - t0
    search_theme(coll, themes[0][0], top=10, features="learned")  # compile / warm up
    variants: list[tuple[str, dict | None]] = [("exhaustive", None)]
    for spec in args.learned_cascades:
        parts = spec.split(":")
        prop, cand = parts[0], int(parts[1])
        if prop == "notes":
            regions = int(parts[2]) if len(parts) > 2 else 3
            shifts = parts[3] if len(parts) > 3 else "proposed"
            bound = float(parts[4]) if len(parts) > 4 and parts[4] else None  # None: the default fallback cost
            with_align = len(parts) > 5 and parts[5] == "align"
            margin = float(parts[6]) if len(parts) > 6 and parts[6] else None  # None: the library's default
            name = f"notes-{cand}x{regions}{'-all-keys' if shifts == 'all' else ''}"
            name += "" if bound is None else ("-no-fallback" if np.isinf(bound) else f"-fallback{bound:g}")
            name += "+align" if with_align else ""
            name += "" if margin is None else f"-margin{margin:g}"
            opts = {"proposal": "notes", "candidates": cand, "note_regions": regions, "dtw_shifts": shifts}
            if margin is not None:
                opts["margin"] = margin
            if bound is not None:
                opts["fallback_cost"] = bound
            opts["align"] = with_align
        elif prop == "align":
            bound = float(parts[2]) if len(parts) > 2 else None
            name = f"align-{cand}" + ("" if bound is None else ("-no-fallback" if np.isinf(bound) else ""))
            opts = {"proposal": "align", "candidates": cand}
            if bound is not None:
                opts["fallback_cost"] = bound
        else:
            name = f"index-{cand}"
            opts = {
                "proposal": "index",
                "candidates": cand,
                "regions": True,
                "config": config,
                "reduction": "none",
                "proposal_tempo_factors": LEARNED_THEME_TEMPO_FACTORS,
            }
        variants.append((name, opts))
    rows, tops = [], {}
    exhaustive_top: list = []
    for name, opts in variants:
        if opts is not None:
            cascade_search_theme(
                coll, themes[0][0], top=10, features="learned", cascade=cascade_from_spec({**opts, "update": False})
            )
        top1, rr, times, prop_ms, dtw_ms, cand, frames, recall, firsts, fallback = ([] for _ in range(10))
        fast_times = []
        for q, (theme, rel) in enumerate(themes):
            stats: dict = {}
            t1 = time.perf_counter()
            if opts is None:
                matches = search_theme(coll, theme, top=10, per_recording=1, features="learned")
            else:
                matches = cascade_search_theme(
                    coll,
                    theme,
                    top=10,
                    per_recording=1,
                    features="learned",
                    stats=stats,
                    cascade=cascade_from_spec({**opts, "update": False}),
                )
            times.append(time.perf_counter() - t1)
            first, rank = _first_and_rank(matches, rel)
            firsts.append(first)
            top1.append(hit_at_k(rank))
            rr.append(reciprocal_rank(rank))
            if opts is None:
                continue
            fallback.append(bool(stats.get("fallback")))
            if stats.get("fallback") is True:  # too short to propose for: the exhaustive search ran
                recall.append(True)
                continue
            prop_ms.append(stats["proposal_ms"])
            dtw_ms.append(stats.get("dtw_ms", 0.0))
            cand.append(stats.get("candidates") or 0)
            frames.append(stats.get("frames_searched", 0) / max(stats.get("frames_total", 1), 1))
            proposed = stats.get("proposed_ids", stats.get("candidate_ids", ()))
            recall.append(exhaustive_top[q] is None or exhaustive_top[q] in proposed)
            if not stats.get("fallback"):
                fast_times.append(times[-1])
        if opts is None:
            exhaustive_top = firsts
        tops[name] = firsts
        extra = {
            "proposal_ms": round(float(np.mean(prop_ms)), 2) if prop_ms else None,
            "dtw_ms": round(float(np.mean(dtw_ms)), 2) if dtw_ms else None,
            "no_fallback_ms": round(float(np.mean(fast_times)) * 1000, 2) if fast_times else None,
            "recall": round(float(np.mean(recall)), 4) if recall else None,
            "fallbacks": int(np.sum(fallback)) if fallback else 0,
            "fallback_share": round(float(np.mean(fallback)), 4) if fallback else 0.0,
        }
        rows.append(_cascade_row(name, top1, rr, times, cand, frames, **extra))
    _compare_with_exhaustive(rows, [name for name, _ in variants], tops)
    return {
        **_close_with_summary(coll, args.dataset),
        "split": args.learned_split,
        "collection_splits": args.learned_splits or args.learned_split,
        "themes": len(themes),
        "database_load_s": round(database_s, 2),
        "note_index_build_s": round(note_index_s, 3),
        "note_index_windows": len(nidx),
        "note_index_notes": int(len(nidx.pc)),
        "note_weighting": NOTE_WEIGHTING,
        "shingle_index_build_s": round(shingle_index_s, 2),
        "shingle_index_rows": len(sidx),
        "rows": rows,
    }


def run_audio_cascade(args) -> dict:
    """Audio matching: exhaustive CENS subsequence DTW vs the shingle-index cascade, same queries."""
    from mirsearch.features.audio_match import SHINGLE_MATCH
    from mirsearch.index.audio_database import audio_database
    from mirsearch.index.shingle_index import IndexSpec
    from mirsearch.search.audio_cascade import AudioCascadeOptions, cascade_search_audio
    from mirsearch.search.audio_query import AudioQuery
    from mirsearch.training.embedding import dataset_collection

    coll, view = dataset_collection(args.dataset, "test", jobs=args.jobs, progress=True)
    by_path = {r.path: r.id for r in coll.recordings()}
    work_of, key_of, rids = {}, {}, []
    for v in view:
        rid = by_path.get(str(v.path.resolve()))
        if rid is not None:
            work_of[rid], key_of[rid] = v.work_id, v.transposition
            rids.append(rid)
    rng = np.random.default_rng(args.seed)
    n_frames = int(args.query_seconds * 10)
    queries = []
    for rid in sorted(rids):  # the retrieval section's queries (same seed, same order)
        C = np.asarray(coll.load_features(rid)[0])
        if C.shape[1] < n_frames + 10:
            continue
        for s in rng.choice(C.shape[1] - n_frames, size=args.queries_per_version, replace=False):
            queries.append((rid, np.ascontiguousarray(C[:, s : s + n_frames])))
    relevant = {r: {x for x in rids if work_of[x] == work_of[r] and x != r} for r in rids}
    queries = [q for q in queries if relevant[q[0]]]
    t0 = time.perf_counter()
    spec = IndexSpec("hnsw", "embedding", 12, {"ef": args.ef})
    audio_database(coll, SHINGLE_MATCH)
    spec.open(coll)
    setup_s = time.perf_counter() - t0
    variants = [("exhaustive", {"proposal": "none"})]
    variants += [(f"index-{c}", {"proposal": "index", "candidates": c}) for c in args.audio_candidates]
    rows, firsts = [], {}
    for name, opts in variants:
        options = AudioCascadeOptions(index=spec, **opts)
        warm = AudioQuery.from_chroma(queries[0][1])
        cascade_search_audio(coll, warm, options.replace(exclude=(queries[0][0],)))
        top1, rr, times, cand = [], [], [], []
        firsts[name] = []
        for rid, Cq in queries:
            stats: dict = {}
            t1 = time.perf_counter()
            query = AudioQuery.from_chroma(Cq)
            matches = cascade_search_audio(coll, query, options.replace(exclude=(rid,), top=10), stats=stats)
            times.append(time.perf_counter() - t1)
            ranked = list(dict.fromkeys(m.recording_id for m in matches))
            firsts[name].append(ranked[0] if ranked else None)
            rank = next((i for i, r in enumerate(ranked, 1) if r in relevant[rid]), None)
            top1.append(hit_at_k(rank))
            rr.append(reciprocal_rank(rank))
            cand.append(stats.get("candidates", 0))
        row = {**accuracy_row(name, top1, rr, times), "candidates": round(float(np.mean(cand)), 1)}
        print_table([row], list(row))
        print(flush=True)
        rows.append({**row, "_top1": [float(x) for x in top1], "_rr": rr})
    _compare_with_exhaustive(rows, [row["method"] for row in rows], firsts)
    return {
        **_close_with_summary(coll, args.dataset),
        "queries": len(queries),
        "query_seconds": args.query_seconds,
        "setup_s": round(setup_s, 2),
        "ef": args.ef,
        "rows": rows,
    }


# -- docs -------------------------------------------------------------------------------------------------
def _load(name: str) -> dict | None:
    path = RESULTS / f"shingles_{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _md_table(rows: list[dict], cols: list[tuple[str, str]]) -> str:
    def fmt(v):
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    head = "| " + " | ".join(h for _, h in cols) + " |"
    sep = "|" + "|".join("---" for _ in cols) + "|"
    body = ["| " + " | ".join(fmt(r.get(k)) for k, _ in cols) + " |" for r in rows]
    return "\n".join([head, sep, *body])


#: notes under the tables of the docs section (written from the measured figures)
PROTOCOL_NOTES = (
    "Reading (validation; the same analysis with the previous chroma gave the same `mean` figures, 0.684 "
    "/ 0.879): (1) **Protocol.** Our benchmark queries the notated key only but counts versions in other "
    "keys as relevant (a quarter of the renderings are transposed by 1-3 semitones); the reference's "
    "versions are performances of one score in one key. Under the original-key protocol P@1 rises from "
    "0.684 to 0.879. (2) **Query and vote.** The reference's query (one 20 s shingle, recording distance "
    "= nearest shingle) gives 0.858; our 25 s query with the region mean 0.879; the minimum over the 25 s"
    " query's shingles only 0.800 (more query shingles, more chances of one accidental close shingle). "
    "The default stays `mean`; `aggregate='min'` reproduces the reference's scoring. (3) **Features.** "
    "The shingle is the reference's: 20 frames x 12 CENS = 240 dimensions; the tutorial notes (002/003) "
    "give 20 x 12 but not the rate; we use CENS 41/10 at 1 Hz (20 s), the setting of Grosche & Müller "
    "2012 that we believe the paper keeps (the paper itself is not available offline to check). 2 Hz CENS"
    " (21/5, 10 s shingles) measured 0.895 with the previous chroma (same section, `--protocol-configs "
    "21/5/20`; needs new embeddings, not adopted); mean-centring the shingles before the distance changed"
    " nothing (0.874, exploratory script, not kept). (4) **What remains is the data.** 3 versions per "
    "work, so 2 relevant recordings per query (the reference's pieces have many performances each, and "
    "P@1 needs only the nearest of them); 85 % of the validation recordings are chorales, and works on "
    "the same tune or with the same cadence formulas compete (counting a work on the same chorale tune as"
    " correct adds 1.6 points, 3.7 with chroma v1); versions differ in tempo by up to 2x (each 0.7-1.4x "
    "nominal), and a 25 s query has no 20 s shingle at tempo factors >= 1.3, so a version played much "
    "faster than the query is matched by fewer variants. Querying all 12 keys finds the transposed "
    "versions (0.803 overall) but costs the original-key protocol 18 points (0.700): transposed chorales "
    "match other chorales' progressions."
)
RETRIEVAL_NOTES = (
    "All rows: chroma v2 (commit 88649a5); the learned rows use the embeddings retrained on chroma v2 shingles "
    "in session 4 (`mirsearch train embedding --dataset data/bench --dim D --out data/runs/embedding-v2-D "
    "--epochs 30 --max-minutes 18 --seed 0`; best validation top-1 0.688 / 0.906 / 0.957 at 6 / 12 / 30 dims, "
    "as the chroma-v1 ones: 0.688 / 0.906 / 0.955). Exact, KD-tree and HNSW search give the same P@1 for every "
    "reduction but one (HNSW at 30 dims misses one query: 0.529 vs 0.533; MAP within 0.003): the index is not "
    "what limits accuracy. Per lookup the KD-tree beats brute force at 6 dims (0.03 ms vs 0.13-0.14 ms), is "
    "mixed at 12 (PCA 0.09 vs 0.13 ms, embedding 0.42 vs 0.19 ms) and slower at 30 (0.37-0.84 vs 0.18-0.20 ms); "
    "HNSW takes 0.02-0.05 ms at 6-30 dims. PCA stays well below the learned embeddings at 6 and 12 dims (P@1 "
    "0.129 / 0.259 vs 0.294 / 0.498; original key 0.195 / 0.391 vs 0.444 / 0.752) and below them at 30 dims "
    "(0.455 vs 0.533), as with chroma v1 in session 1. On the test split the gap has the causes found on the "
    "validation split: the original-key protocol lifts the 240-dim P@1 from 0.529 to 0.799, and the rest is the "
    "data (2 relevant versions per query, chorale families, tempo ratios up to 2x). Scored as the reference "
    "scores (20 s queries, nearest shingle), the test split gives 0.698 at 240 dims and 0.509 at 12 (chroma-v1 "
    "embedding): our region vote over a 25 s query is 10 / 23 points better. The learned 30-dim embedding "
    "matches or beats the raw 240 dims (0.805 vs 0.799 original key; 0.792 vs 0.773 in all 12 keys), as in the "
    "reference, but 12 and 6 dims lose much more than there (0.752 and 0.444 vs 0.799; reference: 0.964 and "
    "0.890 of 0.996). Retraining on chroma v2 moved P@1 by +0.008 / +0.008 / 0 at 6 / 12 / 30 dims (2 of 255 "
    "queries at most): the chroma mismatch was not what held the small embeddings back. They fit the 151 "
    "training works (train accuracy 0.92-0.99) better than they generalise."
)
SCALE_NOTES = (
    "**HNSW target met:** on an idle machine (load average 1.2-1.4 during the run) with M = 8, "
    "ef_construction = 64 and ef = 16 a query takes 0.031 ms (wall clock, one query at a time through "
    "`AnnIndex.search`, one thread) at recall@10 0.983, a third of the target of 0.1 ms at recall >= 0.95; "
    "ef = 10: 0.028 ms at 0.965, ef = 32: 0.044 ms at 0.996 (the reference: 0.06-0.2 ms). hnswlib's "
    "`knn_query` alone takes 0.015-0.030 ms. Build 38 s on 2 threads; index 227 MB on disk (vectors 60 MB + "
    "graph 166 MB). The build is multi-threaded and not deterministic: the same command at load 6-8 "
    "(`results/shingles_scale_load8.json`, 09:11, build 134 s) gave recall 0.972 / 0.989 / 0.998 at ef 10 / "
    "16 / 32 and 0.078-0.114 ms wall clock (CPU time 0.038-0.058 ms); at load 17-20 "
    "(`results/shingles_scale_load20.json`, build 413 s) the same CPU times and 0.28-0.69 ms wall clock. A "
    "sweep under high load (exploratory, one thread): M = 12 / ef_construction = 100 reached recall 0.985 / "
    "0.995 at ef = 10 / 16 with a 206 MB graph and 3x the build time of M = 8 / 64 in the same sweep; session "
    "1's M = 16 / 100 gave 0.123 ms at recall 0.997 (load about 4). The 1.25 M vectors are the learned 12-dim "
    "embeddings of shingles cached from chroma v1 (index speed depends on the vectors' distribution, not on "
    "the chroma version)."
)
CASCADE_NOTES = (
    "Measured with chroma v2 (commit 88649a5) on the first 120 test themes (`--theme-limit 120 --cascades"
    " coarse:32:0:3,coarse:64:1:4,index:32:0:0`, to finish within the session; load average 17-18). The "
    "default cascade (`coarse3-32`) keeps Top-1 (0.333 = 0.333; MRR 0.438 vs 0.440, one of 120 top hits "
    "differs) but is only 1.8x faster and costs seconds, not milliseconds: the coarse DTW still visits "
    "every recording. Coarse regions (`coarse4-64-regions`) lose 0.008 Top-1 for 2.3x. The shingle-index "
    "proposal (`index-32`), the path that would cost milliseconds on a large collection, loses 0.15 Top-1"
    " (0.183 vs 0.333): a monophonic theme's 3 s CENS shingles resemble polyphonic audio shingles only "
    "loosely, so the right recording is often not proposed (session 1, chroma v1, all 316 themes: 0.269 "
    "vs 0.370)."
)
LEARNED_CASCADE_NOTES = (
    "All choices were made on the validation split (123 recordings, 143 themes; exhaustive Top-1 0.860 / MRR "
    "0.896 under this protocol): note extraction (peak >= 0.8, notes >= 0.2 s), 3-interval keys with "
    "one-note skips, rarity-weighted votes, 32 candidates x 3 regions and the fallback cost 0.1. There the "
    "default cascade returned the exhaustive top-1 recording for all 143 themes (Top-1 0.860, MRR 0.896) "
    "with 8 % fallbacks. **On the test split it is not lossless:** `notes-32x3` (the default) loses 0.016 "
    "Top-1 (0.769 vs 0.785: 5 of 316 themes) and 0.024 MRR, at 65 ms mean (11x faster) and 16 ms median; "
    "queries answered by the cascade alone take 16 ms (about 5 ms proposal + 12 ms DTW), the 6 % that fall "
    "back pay the exhaustive search on top. The loss is the proposal recall: the exhaustive top-1 "
    "recording is among the 32 candidates for 90 % of the test themes (98 % on validation). Where the "
    "learned chroma does not transcribe the theme's voice (inner voices, dense polyphony), no interval key "
    "matches, and another recording's candidate region often matches well enough (cost < 0.1) that the "
    "fallback does not fire; a lower bound of 0.05 (`-fallback0.05`, a point on the curve, not a tuned "
    "value) sends 15-16 % of the themes to the exhaustive search and still loses 0.010-0.013. The "
    "trade-off without fallback: 8 / 16 / 32 / 64 / 128 candidates give recall 0.76 / 0.83 / 0.90 / 0.94 / "
    "0.97 and Top-1 0.706 / 0.737 / 0.760 / 0.769 / 0.779 at 8 / 12 / 16 / 27 / 48 ms mean. No loss in "
    "Top-1 was measured only with 128 candidates and the fallback (`notes-128x3-fallback0.1`: Top-1 0.785 = "
    "0.785, MRR 0.842 vs 0.845, 88 ms mean, 53 ms median, 9x faster), but 128 candidates are half of this "
    "collection and 30 % of its frames go through the DTW: that is not yet a setting that scales. "
    "Restricting the DTW to the proposed transposition is about 5x faster at about the same accuracy "
    "(validation, an earlier version without skips, 64 candidates x 2 regions: Top-1 0.839 proposed vs "
    "0.832 all 12 keys, 11 vs 54 ms DTW; test, `notes-64x3-all-keys` in "
    "`shingles_learned_cascade_count.json`: 0.769 proposed vs 0.772 all 12, 23 vs 112 ms DTW). "
    "The learned-CENS HNSW proposal (`index-32`, the idea this section started from) is much weaker: recall "
    "0.75 and Top-1 0.671 at 84 ms, 50 ms of it in the proposal (~400 lookups of k = 32 per theme and the "
    "voting); on validation 15 shingle configurations (2-5 Hz CENS, 2-3 s, 3 / 5 / 7 tempo factors) gave at "
    "best recall 0.91 at 32 candidates, against "
    "0.98 for the note index: fixed-tempo shingles need the theme's tempo within about 10 %, the note keys "
    "ignore tempo. Scaling: the proposal cost grows with the postings per key (100k keys over 7.1 h here), "
    "the DTW stage with candidates x regions only, the exhaustive search linearly with the collection; how "
    "many candidates a fixed recall needs in a larger collection (more distractors) was not measured. "
    "Earlier run of the same section before rarity weighting (commit 746306a, "
    "`results/shingles_learned_cascade_count.json`): recall 0.86 / 0.94 at 32 / 64 candidates.\n\n"
    "**Note alignment (`align`, last rows).** To bridge runs of inserted or missed notes that the interval "
    "keys cannot (an interleaved second voice), `align_notes` aligns the theme's pitch classes with every "
    "recording's notes (Smith-Waterman, match +2, mismatch -1, skipped note -0.5, 12 transpositions; "
    "parameters from three settings tried on validation, where its recall was 0.87 / 0.94 / 0.99 at 8 / 16 "
    "/ 32 candidates vs 0.79 / 0.92 / 0.98 for the note index). It is a linear scan over the notes (15-20 ms "
    "for 31k notes under this load), not an index. Alone (`align-32`) it locates the occurrence less well "
    "(one region per recording): 0.779 with fallback. Added to the note index's proposals "
    "(`notes-32x3+align`, `align=True`; on validation Top-1 0.860 = 0.860, MRR 0.8965 vs 0.8961 exhaustive, "
    "recall 0.993) it is the closest to the exhaustive search measured: Top-1 0.782 vs 0.785 (1 of 316 "
    "themes), MRR 0.836 vs 0.845, recall 0.946, 72 ms mean (10x), 33 ms median, 5 % fallbacks. It was "
    "added after the first test runs, so it is not the default (`align=False`); `mirsearch search "
    "--cascade notes+align` selects it."
)
ALIGNRANK_NOTES = (
    "**Alignment-ranked note proposals** (session 4, commit 76d5b7a; the current default). `NoteIndex.propose` "
    "ranks its clusters of agreeing interval keys by the Smith-Waterman score of the theme's pitch classes "
    "against the cluster's notes (`weighting='align'`, about 1 ms more per query) instead of by summed key "
    "rarity: an occurrence with a wrong or missing note keeps the notes on both sides, while many recordings "
    "share a short theme's intact windows. Chosen on the validation split (143 themes), where the exhaustive "
    "top-1 recording is among 8 / 16 / 32 candidates for 0.89 / 0.94 / 0.99 of the themes (rarity: 0.79 / "
    "0.92 / 0.98) and the default 32x3 cascade returns the exhaustive top-1 for every theme (Top-1 0.860 = "
    "0.860, MRR 0.8960 vs 0.8961). Measured once on test: the default `notes-32x3` gives Top-1 0.782 vs "
    "0.785 exhaustive (1 of 316 themes; the rarity ranking lost 5) and MRR 0.834 vs 0.845, at 15 ms median "
    "and 38 ms mean (10x faster than the exhaustive search's 369 ms); the 5 % of themes that fall back to "
    "the exhaustive search make up most of the mean. With 64 candidates (a quarter of this collection, the "
    "share that 32 is of the validation collection): Top-1 0.791, MRR 0.841 (-0.004), 23 ms median, 46 ms "
    "mean. The rarity-ranking rows reproduce session 3 exactly (0.769 / 0.821). The second-voice rows add a "
    "second note stream per recording (the weaker pitch class where two voices sound, `NoteIndex(second=0.6)`"
    ", `cascade_search_theme(note_options=...)`): 32x3 reaches Top-1 0.785 = exhaustive and MRR 0.838, but "
    "with lower proposal recall (0.921 vs 0.927), more fallbacks (6 % vs 5 %), a 2x larger index and 2x the "
    "lookup time; without fallback it is below the default (0.772 / 0.779 at 32 / 64 candidates vs 0.772 / "
    "0.785), and on validation it gained nothing, so it stays off. A loss needs an exhaustive top-1 cost "
    "below the fallback bound 0.1, i.e. theme pitch classes that are mostly the frames' argmax: a theme heard "
    "only as a second voice cannot produce such a match, so the fallback already catches it. The "
    "rarity-ranking and second-voice runs were forced with a scratch script (`weighting='idf'`; "
    "`second=0.6`) at a higher load (1.9-3.0): their times are not comparable with the first rows. Tried on "
    "validation and dropped: query notes read from the theme's own 10 Hz chroma (MRR 0.8939 vs 0.8960), skip "
    "keys that merge equal neighbours (recall@32 0.972 vs 0.979), an exact lower bound in place of the "
    "fallback (exact but weak: 50 % of the DTW cells survive for top-1, more work than the exhaustive "
    "search), cheaper fallback tiers (coarse regions lose a theme; coarse whole recordings are exact but only "
    "1.5x cheaper; about 7 of the 10 validation fallbacks have an exhaustive cost above 0.1 themselves)."
)
LEARNED_ALL_NOTES = ""
AUDIO_CASCADE_NOTES = (
    "The cascade is 4.2-4.8x faster than the exhaustive search on this 7 h collection at the same accuracy: "
    "Top-1 0.494 / 0.494 / 0.490 with 8 / 16 / 32 candidates vs 0.490, MRR 0.540 / 0.540 / 0.541 vs 0.538. The "
    "top recording differs from the exhaustive search's for 16-31 % of the queries, in both directions: the DTW "
    "restricted to a proposed region ranks differently, and the exhaustive search's own top hit is often a "
    "version of another work. In session 3 (commit d3ac1f6, load 17-18) the cascade was slower than the "
    "exhaustive search (0.59-0.87x). Per query (20 queries profiled, load about 2) it now costs about 21 ms: "
    "10 ms for the CNN on the ~90 query shingles, 4 ms CENS at the 11 tempo factors, 2 ms HNSW, 2 ms voting, "
    "3 ms DTW. What changed (session 4): the query's CENS is computed once per tempo factor for both stages; "
    "subsequence DTW over fewer than 2^17 cells runs on the calling thread (`SERIAL_CELLS`; starting numba's "
    "parallel kernel cost 0.4-0.8 ms, 11 times per query); the CNN's (2, 1) max pooling is a reshape (torch's "
    "`MaxPool2d` took 3 of its 15 ms); the region voting (`score_regions`) runs over all recordings at once "
    "(11 -> 2 ms; checked against a loop over recordings); memoised views of a collection are keyed by a "
    "catalogue generation counter instead of listing its recordings (three SQL scans per query)."
)
AUDIO_SCALE_NOTES = (
    "At 350 h the exhaustive search takes 2.1 s per query (20x its 7 h time: it grows with the collection); "
    "the cascade takes 34-40 ms (53-62x faster), of which 30-34 ms is the proposal (CNN, CENS, HNSW lookups "
    "in 1 M shingles, voting) and 3-6 ms the DTW over 0.03-0.12 % of the frames. Nothing is lost: Top-1 "
    "0.388 with 8, 16 or 32 candidates vs 0.365 exhaustive, MRR 0.417-0.419 vs 0.395 (85 queries: 2 queries "
    "of difference). Both are lower than on the test split alone (0.49): among 13.5 k recordings some "
    "distractor passage, often a transposed chorale with the same progression, matches a 25 s query by DTW "
    "cost better than the other version of its work. The cascade first ranks recordings by the mean over all "
    "query shingles, which such local look-alikes presumably pass less often; the two lists' top recordings "
    "agree for only 33-44 % of the queries. Caveat: the distractors are transposed and tempo-changed copies "
    "of 576 rendered recordings, not 13 k independent performances."
)
MISSING_NOTES = (
    "**Still missing.** (1) Reference-level accuracy: 0.80 P@1 at 240 dims under the original-key "
    "protocol vs 0.996; the learned embeddings are far below the reference's (0.964 at 12 dims). Next: "
    "retrain them on chroma v2 with more works (the train split has 151), try 2 Hz / 10 s shingles (+1.6 "
    "points at 240 dims on validation with chroma v1), and a benchmark with more versions per work. (2) "
    "HNSW defaults: since commit 6f17742 an index of up to 32 dimensions is built with M 8 / "
    "ef_construction 64 / ef 16 (the scale setting above; the PCA rows of the retrieval table were built "
    "with it and match exact search); the raw 240-dim and embedding HNSW rows were built with the former "
    "M 16 / 200 and not rebuilt; for more than 32 dims the defaults stay M 16 / 200 / 64 (M 8 unmeasured "
    'there). (3) The theme cascade: measured at 7 / 21.5 / 50 h with real distractors in "Theme cascade as '
    'the collection grows" below (session 5): with the note alignment and the coarse fallback (now the '
    "defaults) no measurable loss in Top-1 or MRR at any size. Still open: the alignment scans every note "
    "(linear: 49 ms at 50 h), and a collection of hundreds of hours of independent music to measure it on. "
    "With standard chroma the theme cascade (`coarse`) keeps Top-1 but is 1.8x faster."
)


def audio_cascade_scale_section(c: dict) -> str:
    """Markdown of the audio cascade on a large database (``cascade_scale.json``, bench_cascade_scale.py)."""
    m = c.get("machine", {})
    command = c["command"]
    if "../" in command:  # run from benchmarks/
        command = "cd benchmarks && " + command.replace("python benchmarks/", "python ")
    text = (
        f"### Cascade vs exhaustive audio matching on {c['hours']:.0f} hours ({c['recordings']} recordings, "
        f"{c['shingles']} shingles, {c['queries']} queries of 25 s)\n\n"
        f"`{command}` ({m.get('date', '')}, commit {m.get('commit', '')}, load average "
        f"{' / '.join(str(x) for x in c['load_average_start'])} at the start; one thread per query). The test "
        f"split ({c['test_hours']} h) with distractors: the chroma of the train and validation splits (other "
        "works) in all 12 transpositions, at tempo 1.0 and then 0.9, until the database holds the hours asked "
        "for; CENS, shingles and learned 12-dim embeddings computed in memory from the stored chroma "
        f"({c['database_s']:.0f} s; HNSW M {c['hnsw']['M']} / ef_construction {c['hnsw']['ef_construction']} "
        f"built in {c['index_s']:.0f} s, searched with ef {c['hnsw']['ef']}). Every third query of the section "
        "above; both rows run `mirsearch.search.audio_cascade.cens_cascade` (the core of `cascade_search_audio`): "
        "exhaustively over every frame, or on the `index-N` proposals. `frames in DTW`: share of the database "
        "the DTW visits."
    )
    table = _md_table(
        c["rows"],
        [
            ("method", "method"),
            ("Top-1", "Top-1"),
            ("MRR", "MRR"),
            ("mean_ms", "mean ms"),
            ("median_ms", "median ms"),
            ("p95_ms", "p95 ms"),
            ("proposal_ms", "proposal ms"),
            ("dtw_ms", "DTW ms"),
            ("speedup", "speed-up"),
            ("frames_in_dtw", "frames in DTW"),
            ("same_top1", "same top-1"),
        ],
    )
    return "\n\n".join([text, table, AUDIO_SCALE_NOTES])


def learned_cascade_section(
    lc: dict,
    extras: dict[str, dict] | None = None,
    *,
    title: str = "Cascade vs exhaustive theme search on learned chroma",
    command: str = "python benchmarks/bench_shingles.py --dataset data/bench --sections learned_cascade",
    notes: str = "",
    labels: dict[str, str] | None = None,
) -> str:
    """Markdown of a learned-chroma theme cascade run (e.g. ``shingles_learned_cascade.json``), plus the
    variant rows of later runs (``{name: result}``, e.g. ``--name learned_cascade_more``; ``labels[name]``
    is appended to their method names)."""
    rows = list(lc["rows"])
    held = lc.get("collection_splits", lc["split"])
    what = f"{lc['split']} split" if held == lc["split"] else f"{lc['split']} themes, recordings of {held}"
    text = (
        f"### {title} ({what}: {lc['recordings']} recordings, {lc['hours']} h, {lc['themes']} themes)\n\n"
        f"`{command}` "
        f"({lc.get('machine', {}).get('date', '')}, commit {lc.get('machine', {}).get('commit', '')}, "
        f"{_load_avg(lc)}; one thread). `exhaustive`: `search_theme(features='learned')` over every recording. "
        "`notes-NxR`: `cascade_search_theme(features='learned', proposal='notes')`: the note index "
        "(`NoteIndex`: learned chroma -> pitch-class notes, keys of 3 consecutive intervals plus the keys "
        "that skip one note) proposes N recordings with their R best regions and the transposition found; "
        "the exhaustive search's subsequence DTW then runs in those regions (+-1 theme length) at that "
        "transposition only (`-all-keys`: in all 12). `index-N`: proposals from an HNSW index of learned-CENS "
        "theme shingles (3 s of 2 Hz CENS, window 21, 72 dims; theme at tempo factors 0.8 / 1 / 1.25 x 12 "
        "transpositions, k = 32), best region per recording. `proposal ms` / `DTW ms`: the two stages per "
        "query (mean over the themes with a proposal; `median ms` over all); `fallback`: share of the "
        "themes answered by the exhaustive search (too short for a proposal, or the best candidate costs more "
        "than the fallback bound, default 0.1 for `notes`; `-no-fallback`: never); `recall`: share of the "
        "themes whose exhaustive top-1 recording is among the proposed candidates; `candidates`: recordings "
        "searched (all of them after a fallback); Top-1 / MRR at recording level over the top-10 list; `same "
        "top-1`: the same top recording as the exhaustive search (another version of the same work counts "
        "as a difference). Note index built in "
        f"{lc['note_index_build_s']} s ({lc['note_index_notes']} notes, {lc['note_index_windows']} keys, "
        f"memoised per collection); shingle index opened in {lc['shingle_index_build_s']} s "
        f"({lc['shingle_index_rows']} shingles, built on first use); learned database loaded in "
        f"{lc['database_load_s']} s. Load average at the end {lc.get('load_average_end')}."
    )
    for name, more in (extras or {}).items():
        m = more.get("machine", {})
        new = [row for row in more["rows"] if row["method"] != "exhaustive"]
        specs = ",".join(_spec_of(row["method"]) for row in new)
        if labels and name in labels:
            new = [{**row, "method": f"{row['method']} {labels[name]}"} for row in new]
        first = len(rows) + 1
        rows += new
        text += (
            f" Rows {first}-{len(rows)}: a later run ("
            + (
                f"the variants {specs} with the setting {labels[name]} forced by a scratch script"
                if labels and name in labels
                else f"`--learned-cascades {specs} --name {name.removeprefix('shingles_')}`"
            )
            + f", {m.get('date', '')}, commit {m.get('commit', '')}, {_load_avg(more)}); their speed-up is against "
            f"that run's own exhaustive search ({more['rows'][0]['mean_ms']} ms)."
        )
    table = _md_table(
        rows,
        [
            ("method", "method"),
            ("Top-1", "Top-1"),
            ("MRR", "MRR"),
            ("mean_ms", "mean ms"),
            ("median_ms", "median ms"),
            ("proposal_ms", "proposal ms"),
            ("dtw_ms", "DTW ms"),
            ("speedup", "speed-up"),
            ("fallback_share", "fallback"),
            ("recall", "recall"),
            ("candidates", "candidates"),
            ("frames_share", "frames in DTW"),
            ("same_top1_as_exhaustive", "same top-1"),
        ],
    )
    return f"{text}\n\n{table}\n\n{notes}".rstrip() + "\n"


def _spec_of(method: str) -> str:
    """``notes-32x3-fallback0.05`` -> ``notes:32:3:proposed:0.05`` (the --learned-cascades spec)."""
    with_align = method.endswith("+align")
    parts = method.removesuffix("+align").split("-")
    if parts[0] != "notes":
        return ":".join(parts[:2]) + (":inf" if "no" in parts else "")
    cand, regions = parts[1].split("x")
    shifts = "all" if "all" in parts else "proposed"
    bound = next((p[len("fallback") :] for p in parts if p.startswith("fallback")), None)
    bound = "inf" if "no" in parts else bound
    tail = [shifts, bound or ""] if bound or with_align else ([shifts] if shifts == "all" else [])
    return ":".join(["notes", cand, regions, *tail] + (["align"] if with_align else []))


def _load_avg(r: dict) -> str:
    la = r.get("load_average")
    return f"load average {la[0]:.1f} / {la[1]:.1f} / {la[2]:.1f} (1 / 5 / 15 min) at the start" if la else ""


def _merged(name: str, key, suffixes: tuple[str, ...] = ("_more",)) -> dict | None:
    """A result file, with the rows of ``<name><suffix>`` (later partial runs, in order) replacing equal keys."""
    r = _load(name)
    for suffix in suffixes:
        more = _load(f"{name}{suffix}")
        if r and more and more.get("queries") == r.get("queries"):
            redone = {key(row) for row in more["rows"]}
            r = {**r, "rows": [row for row in r["rows"] if key(row) not in redone] + more["rows"]}
    return r


#: display order of the retrieval rows
_REDUCTION_ORDER = ("none240", "pca6", "pca12", "pca30", "embedding6", "embedding12", "embedding30")
_KIND_ORDER = ("exact", "kdtree", "hnsw")


def _retrieval_order(row: dict) -> tuple:
    red = row["reduction"]
    return (
        _REDUCTION_ORDER.index(red) if red in _REDUCTION_ORDER else len(_REDUCTION_ORDER),
        red,
        _KIND_ORDER.index(row["index"]) if row["index"] in _KIND_ORDER else 9,
        row["keys"] != "same",
    )


def docs_section() -> str:
    parts = [
        "Shingles: 20 CENS frames (window 41, downsampling 10: 1 Hz) x 12 chroma = 240 dimensions, i.e. 20 s "
        "of music, one shingle per second. A query (a 25 s excerpt by default) is resampled at 11 tempo "
        "factors 0.6-1.67 and shingled; each query shingle retrieves its k = 64 nearest database shingles; hits "
        "are grouped by the query start they imply and a recording is scored by its best region "
        "(`mirsearch.search.shingles.score_regions`, `aggregate='mean'`: mean over the query's shingles of "
        "their best distance in the region). Learned embeddings: `mirsearch train embedding --dataset "
        "data/bench --dim D` (CNN, triplet loss, semi-hard in-batch mining, negatives from other works; 30 "
        "epochs x 100 batches of 128 pairs on the train split). Raw numbers: `benchmarks/results/shingles_*.json` "
        "(each with the commit, date and load average of its run). The machine (2 cores) was shared with other "
        "jobs during every run (load average 6-23 in this session): times are upper bounds."
    ]
    p = _load("protocol_validation")
    if p:
        parts.append(
            f"### Where the accuracy goes (validation split, exact search over raw 240-dim shingles)\n\n"
            f"`python benchmarks/bench_shingles.py --dataset data/bench --sections protocol --split validation "
            f"--queries-per-version 2 --name protocol_validation` ({p['recordings']} recordings, {p['works']} works, "
            f"{p['rows'][0]['queries']} queries of {p['query_seconds']:g} s; {_load_avg(p)}). Columns: region cost "
            "`mean` (ours) or `min` (the reference's document distance: the smallest shingle distance); "
            "`orig.`: the original-key protocol: only versions in the query's key are relevant and versions in "
            f"other keys leave the ranking ({p['rows'][0]['queries_orig']} queries have a same-key version); "
            "`1 shingle`: the reference's query, one 20 s shingle per tempo variant, recording distance = minimum; "
            "`family`: the top hit is a work on the same chorale tune."
        )
        parts.append(
            _md_table(
                p["rows"],
                [
                    ("config", "shingles"),
                    ("keys", "keys queried"),
                    ("P@1_mean", "P@1 mean"),
                    ("P@1_min", "P@1 min"),
                    ("P@1_mean_orig", "P@1 mean, orig."),
                    ("P@1_min_orig", "P@1 min, orig."),
                    ("P@1_one_shingle_orig", "P@1 1 shingle, orig."),
                    ("P@1_mean_family", "P@1 family (mean)"),
                ],
            )
        )
        parts.append(PROTOCOL_NOTES)
    key = lambda row: (row["reduction"], row["index"], row["keys"])  # noqa: E731
    r = _merged("retrieval", key, ("_more", "_pca_kdtree", "_v2emb"))
    ref = _merged("retrieval_ref", key)
    if r:
        r = {**r, "rows": sorted(r["rows"], key=_retrieval_order)}
        lk = r["lookups_per_query"]
        parts.append(
            f"### Cross-version retrieval (test split: {r['recordings']} recordings, {r['hours']} h, "
            f"{r['works']} works in {r['families']} tune families; {r['queries']} queries of "
            f"{r['query_seconds']:g} s)\n\n"
            f"`python benchmarks/bench_shingles.py --dataset data/bench --sections retrieval --all-keys "
            "--all-keys-kinds hnsw --kinds exact,hnsw --reductions none240` "
            f"({r.get('machine', {}).get('date', '')}, commit "
            f"{r.get('machine', {}).get('commit', '')}, {_load_avg(r)}). Relevant: the other versions of the "
            f"query's work (the query's own recording is excluded). "
            f"{100 * r['other_key_relevant_share']:.0f} % of them are in another key: `same` queries only the "
            f"query's key, `all 12` every transposition ({lk.get('same')} vs {lk.get('all 12', '-')} lookups per "
            f"query). `orig.`: the original-key protocol (above). k = {r['k']}, HNSW ef = {r['ef']}. "
            "`query ms`: reduction + search + voting per query (cutting the query into shingles adds "
            f"{r['query_shingle_ms'].get('same')} ms)."
        )
        parts.append(
            _md_table(
                r["rows"],
                [
                    ("reduction", "reduction"),
                    ("index", "index"),
                    ("keys", "keys"),
                    ("P@1", "P@1"),
                    ("MAP", "MAP"),
                    ("P@1_orig", "P@1 orig."),
                    ("MAP_orig", "MAP orig."),
                    ("P@1_family", "P@1 family"),
                    ("query_ms", "query ms"),
                    ("lookup_ms", "ms / lookup"),
                    ("total_s", "all queries s"),
                ],
            )
        )
        side = []
        for label, rf in REF_RETRIEVAL.items():

            def pick(res, keys, label=label):
                rows = [row for row in (res or {}).get("rows", []) if row["reduction"] == label and row["keys"] == keys]
                rows.sort(key=lambda row: row["index"] != "exact")
                return rows[0] if rows else {}

            o, a, q = pick(r, "same"), pick(r, "all 12"), pick(ref, "same")
            side.append(
                {
                    "reduction": label,
                    "ref_p1": rf["p1"],
                    "ref_map": rf["map"],
                    "p1_ref_proto": q.get("P@1_orig"),
                    "map_ref_proto": q.get("MAP_orig"),
                    "p1_orig": o.get("P@1_orig"),
                    "map_orig": o.get("MAP_orig"),
                    "p1_all": a.get("P@1"),
                    "map_all": a.get("MAP"),
                }
            )
        parts.append(
            "Side by side with the reference (tutorial 002: Zalkow & Müller 2020, 330 test recordings of "
            "Beethoven / Chopin / Vivaldi, ~16 h; DNN = triplet embedding). `ref. protocol`: our test split "
            "searched as the reference does, 20 s queries, recording distance = minimum shingle distance, original "
            "key, same-key versions relevant (`bench_shingles.py --sections retrieval --query-seconds 20 "
            "--aggregate min --kinds exact --name retrieval_ref`); `ours, orig.`: 25 s queries, region mean, "
            "original-key protocol; `ours, 12 keys`: every transposition queried, all versions relevant "
            "(exact search where run, else HNSW)."
        )
        parts.append(
            _md_table(
                side,
                [
                    ("reduction", "reduction"),
                    ("ref_p1", "ref. P@1"),
                    ("ref_map", "ref. MAP"),
                    ("p1_ref_proto", "ref. protocol P@1"),
                    ("map_ref_proto", "ref. protocol MAP"),
                    ("p1_orig", "ours, orig. P@1"),
                    ("map_orig", "ours, orig. MAP"),
                    ("p1_all", "ours, 12 keys P@1"),
                    ("map_all", "ours, 12 keys MAP"),
                ],
            )
        )
        v2 = _load("retrieval_v2emb")
        if v2:
            parts.append(
                "Learned-embedding rows (6 / 12 / 30 dims, same key and all 12 keys): `python "
                "benchmarks/bench_shingles.py --dataset data/bench --sections retrieval --kinds exact,kdtree,hnsw "
                "--all-keys --all-keys-kinds hnsw --reductions embedding6,embedding12,embedding30 --embeddings "
                "data/runs/embedding-v2-6,data/runs/embedding-v2-12,data/runs/embedding-v2-30 --name "
                f"retrieval_v2emb` ({v2.get('machine', {}).get('date', '')}, commit "
                f"{v2.get('machine', {}).get('commit', '')}, {_load_avg(v2)}): the embeddings retrained on "
                "chroma v2 shingles; their HNSW indexes built in this run with the defaults for <= 32 dims (M 8 / "
                "ef_construction 64), searched with ef 64."
            )
        pk = _load("retrieval_pca_kdtree")
        if pk:
            parts.append(
                "PCA and KD-tree rows: `python "
                "benchmarks/bench_shingles.py --dataset data/bench --sections retrieval --kinds exact,kdtree,hnsw "
                "--reductions pca6,pca12,pca30,embedding6,embedding12,embedding30 --embeddings "
                "data/runs/embedding-6,data/runs/embedding-12,data/runs/embedding-30 --name retrieval_pca_kdtree` "
                f"({pk.get('machine', {}).get('date', '')}, commit {pk.get('machine', {}).get('commit', '')}, "
                f"{_load_avg(pk)}; a less loaded machine than the first run, so its times are lower; its learned "
                "rows, of the chroma-v1 embeddings, are replaced by the run above). PCA is fitted on the test "
                "collection's shingles (all 12 transpositions); its HNSW indexes were built in this run with the "
                "new defaults for <= 32 dims (M 8 / ef_construction 64; searched with ef 64 = k)."
            )
        parts.append(RETRIEVAL_NOTES)
    s = _load("scale")
    more = _load("scale_more")
    if s and more and more.get("shingles") == s.get("shingles"):
        s = {**s, "rows": s["rows"] + more["rows"]}
    if s:
        efs = ",".join(str(row["ef"]) for row in s["rows"] if row.get("ef"))
        parts.append(
            f"### Index scale ({s['shingles']:,} shingles, {s['queries']} held-out query shingles, one run)\n\n"
            f"`python benchmarks/bench_shingles.py --dataset data/bench --sections scale --M {s['M']} "
            f"--ef-construction {s['ef_construction']} --efs {efs}` "
            f"({s.get('machine', {}).get('date', '')}, {_load_avg(s)}). The shingles of all three splits with new "
            "variations (12 transpositions x tempo factors), reduced by the learned embeddings; query shingles from "
            "the test split at tempo 0.95 (not in the index). `query ms`: one query at a time through "
            "`AnnIndex.search`, one thread, k = 10, fastest of 3 rounds of "
            f"{s.get('latency_queries', 1000)} queries (wall clock); `CPU ms`: the CPU time of this process in the "
            "same round (what a query costs when the machine is not shared: other jobs stretch the wall clock, "
            "not the CPU time); `raw`: the same through hnswlib's `knn_query` directly (without mirsearch's "
            f"checks and conversions). HNSW M = {s['M']}, ef_construction = "
            f"{s['ef_construction']}, built with {s['build_threads']} thread(s). Recall@10 against the exact "
            "search of the same vectors. `ref. ms`: the reference's table (1.25 million shingles of 7115 "
            "recordings)."
        )
        parts.append(
            _md_table(
                s["rows"],
                [
                    ("reduction", "reduction"),
                    ("index", "index"),
                    ("ef", "ef"),
                    ("build_s", "build s"),
                    ("size_mb", "size MB"),
                    ("query_ms", "query ms"),
                    ("cpu_ms", "CPU ms"),
                    ("raw_ms", "raw ms"),
                    ("raw_cpu_ms", "raw CPU ms"),
                    ("recall@10", "recall@10"),
                    ("reference_ms", "ref. ms"),
                ],
            )
        )
        parts.append(SCALE_NOTES)
    c = _load("cascade")
    if c:
        parts.append(
            f"### Cascade vs exhaustive theme search (test split: {c['recordings']} recordings, {c['hours']} h, "
            f"{c['themes']} themes)\n\n"
            f"`python benchmarks/bench_shingles.py --dataset data/bench --sections cascade` "
            f"({c.get('machine', {}).get('date', '')}, commit {c.get('machine', {}).get('commit', '')}, "
            f"{_load_avg(c)}). `cascade_search_theme`: stage 1 proposes candidate recordings, stage 2 runs the "
            "exhaustive search's subsequence DTW (chroma, 12 transpositions) on the candidates only (`-regions`: "
            "only around the proposed occurrence, +-1 theme length). `coarseF-N`: proposals by the same DTW on "
            "F-frame block means (10 Hz -> 10/F Hz), N candidates. `index-N`: proposals from a theme shingle "
            "index (3 s shingles of 2 Hz CENS, 72 dims, HNSW; 12 transpositions x 7 tempo factors of the theme). "
            "Top-1 and MRR at recording level over the top-10 list. Theme shingle index build: "
            f"{c['theme_index_build_s']} s."
        )
        parts.append(
            _md_table(
                c["rows"],
                [
                    ("method", "method"),
                    ("Top-1", "Top-1"),
                    ("MRR", "MRR"),
                    ("mean_ms", "mean ms"),
                    ("p95_ms", "p95 ms"),
                    ("speedup", "speed-up"),
                    ("candidates", "candidates"),
                    ("frames_share", "frames in DTW"),
                    ("same_top1_as_exhaustive", "same top-1"),
                ],
            )
        )
        parts.append(CASCADE_NOTES)
    cur = _load("learned_cascade_alignrank")
    if cur:
        extras = {n: _load(n) for n in ("learned_cascade_idfrank", "learned_cascade_second")}
        extras = {n: r for n, r in extras.items() if r and r.get("themes") == cur.get("themes")}
        parts.append(
            learned_cascade_section(
                cur,
                extras,
                command=(
                    "python benchmarks/bench_shingles.py --dataset data/bench --sections learned_cascade "
                    "--learned-cascades notes:32:3,notes:64:3,notes:32:3:proposed::align,notes:64:3:proposed::align,"
                    "notes:8:3:proposed:inf,notes:16:3:proposed:inf,notes:32:3:proposed:inf,notes:64:3:proposed:inf "
                    "--name learned_cascade_alignrank"
                ),
                labels={"learned_cascade_idfrank": "(rarity ranking)", "learned_cascade_second": "(second voice)"},
                notes=ALIGNRANK_NOTES,
            )
        )
    everything = _load("learned_cascade_all")
    if everything:
        parts.append(
            learned_cascade_section(
                everything,
                title="The same with 3x the recordings",
                command=(
                    "python benchmarks/bench_shingles.py --dataset data/bench --sections learned_cascade "
                    "--learned-splits test,validation,train --learned-cascades "
                    f"{','.join(_spec_of(row['method']) for row in everything['rows'][1:])} "
                    "--name learned_cascade_all"
                ),
                notes=LEARNED_ALL_NOTES,
            )
        )
    lc = _load("learned_cascade")
    if lc:
        extras = {n: _load(n) for n in ("learned_cascade_more", "learned_cascade_align")}
        extras = {n: r for n, r in extras.items() if r and r.get("themes") == lc.get("themes")}
        parts.append(
            learned_cascade_section(
                lc, extras, title="Session 3: rarity-ranked note proposals", notes=LEARNED_CASCADE_NOTES
            )
        )
    a = _load("audio_cascade")
    if a:
        parts.append(
            f"### Cascade vs exhaustive audio matching (test split: {a['recordings']} recordings, {a['hours']} h, "
            f"{a['queries']} queries of {a['query_seconds']:g} s)\n\n"
            "`python benchmarks/bench_shingles.py --dataset data/bench --sections audio_cascade` "
            f"({a.get('machine', {}).get('date', '')}, commit {a.get('machine', {}).get('commit', '')}, "
            f"{_load_avg(a)}). `cascade_search_audio`: `exhaustive` runs the CENS (1 Hz) subsequence DTW at "
            "the 11 tempo factors over every whole recording (`proposal='none'`); `index-N` lets the learned "
            "12-dim HNSW shingle index propose N recordings and runs the same DTW on their best region only "
            "(+-0.5 query lengths). Top-1 / MRR: a version of the query's work first (own recording excluded), "
            f"original key. The memoised CENS database and the index are built once ({a['setup_s']} s)."
        )
        parts.append(
            _md_table(
                a["rows"],
                [
                    ("method", "method"),
                    ("Top-1", "Top-1"),
                    ("MRR", "MRR"),
                    ("mean_ms", "mean ms"),
                    ("p95_ms", "p95 ms"),
                    ("speedup", "speed-up"),
                    ("candidates", "candidates"),
                    ("same_top1_as_exhaustive", "same top-1"),
                ],
            )
        )
        parts.append(AUDIO_CASCADE_NOTES)
    scale_path = RESULTS / "cascade_scale.json"
    if scale_path.exists():
        parts.append(audio_cascade_scale_section(json.loads(scale_path.read_text())))
    parts.append(MISSING_NOTES)
    return "\n\n".join(part for part in parts if part)


def update_docs(section: str) -> None:
    """Replace the body of ``## Shingle index`` in docs/benchmarks.md (other sections untouched)."""
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    if HEADING not in text:
        text = text.rstrip("\n") + f"\n\n{HEADING}\n"
    head, rest = text.split(HEADING, 1)
    nxt = rest.find("\n## ")
    tail = rest[nxt:] if nxt >= 0 else ""
    tmp = DOCS.with_name(f".{DOCS.name}.tmp")
    tmp.write_text(f"{head}{HEADING}\n\n{section.strip()}\n{tail}")
    os.replace(tmp, DOCS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="data/bench")
    ap.add_argument("--sections", default="retrieval,scale,cascade")
    ap.add_argument("--embeddings", default=None, help="comma-separated bundle dirs (default data/runs/embedding-*)")
    ap.add_argument("--kinds", default="exact,kdtree,hnsw")
    ap.add_argument("--split", default="test", help="split of the retrieval section (validation: model selection)")
    ap.add_argument("--reductions", default=None, help="only these labels (e.g. none240,pca12,embedding12)")
    ap.add_argument("--name", default=None, help="result file suffix (default: the section name)")
    ap.add_argument("--queries-per-version", type=int, default=1)
    ap.add_argument("--query-seconds", type=float, default=25.0)
    ap.add_argument(
        "--aggregate", default="mean", choices=("mean", "min"), help="region cost (score_regions): mean or min"
    )
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--ef", type=int, default=64)
    ap.add_argument("--kdtree240", action="store_true", help="also run the (slow) 240-dim KD-tree")
    ap.add_argument("--all-keys", action="store_true", help="also query all 12 transpositions")
    ap.add_argument("--all-keys-kinds", default="exact,hnsw", help="index kinds queried in all 12 keys")
    ap.add_argument("--scale", type=int, default=1_250_000)
    ap.add_argument("--scale-queries", type=int, default=1000)
    ap.add_argument(
        "--scale-cache",
        default=str(ROOT / "data" / "runs" / "scale-cache"),
        help="cache of the scale vectors ('' = none)",
    )
    ap.add_argument("--latency-queries", type=int, default=1000)
    ap.add_argument("--scale240", action="store_true", help="also index the 240-dim shingles at scale")
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=100)
    ap.add_argument("--efs", default="16,32,64", help="HNSW search ef values at scale")
    ap.add_argument(
        "--protocol-configs", default="41/10/20,21/5/20", help="CENS window/downsample/length of the protocol section"
    )
    ap.add_argument("--theme-limit", type=int, default=0)
    ap.add_argument("--learned-split", default="test", help="split of the learned_cascade section")
    ap.add_argument(
        "--learned-splits",
        default=None,
        help="splits whose recordings the learned collection holds (default: --learned-split; "
        "'test,validation,train': the other splits' recordings as distractors)",
    )
    ap.add_argument(
        "--learned-cascades",
        default="notes:32:3,notes:16:3,notes:64:3,notes:8:3:proposed:inf,notes:16:3:proposed:inf,"
        "notes:32:3:proposed:inf,notes:64:3:proposed:inf,notes:128:3:proposed:inf,notes:32:1:proposed:inf,index:32",
        help="learned_cascade variants: notes:candidates[:regions[:proposed|all[:fallback_cost[:align[:margin]]]]], "
        "align:candidates[:fallback_cost] or index:candidates (fallback_cost inf: never fall back; empty or "
        "absent: the library's default)",
    )
    ap.add_argument("--audio-candidates", default="8,16,32", help="candidates of the audio cascade variants")
    ap.add_argument(
        "--cascades",
        default="coarse:32:0:3,coarse:32:1:3,coarse:16:1:4,coarse:32:1:4,index:32:0:0,index:32:1:0",
        help="proposal:candidates:regions:coarse_factor of each cascade variant",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.embeddings is None:
        found = [p for p in ROOT.glob("data/runs/embedding-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
        found.sort(key=lambda p: int(p.name.split("-")[-1]))
        args.embeddings = [str(p) for p in found if (p / "config.json").is_file()]
    else:
        args.embeddings = [p for p in args.embeddings.split(",") if p]
    args.kinds = [k for k in args.kinds.split(",") if k]
    args.all_keys_kinds = [k for k in args.all_keys_kinds.split(",") if k]
    args.reductions = [r for r in args.reductions.split(",") if r] if args.reductions else None
    args.efs = [int(x) for x in args.efs.split(",") if x]
    args.audio_candidates = [int(x) for x in args.audio_candidates.split(",") if x]
    args.learned_cascades = [x for x in args.learned_cascades.split(",") if x]
    args.cascades = [
        (p, int(c), bool(int(r)), int(f)) for p, c, r, f in (x.split(":") for x in args.cascades.split(","))
    ]
    import torch

    torch.set_num_threads(1)
    for section in [s for s in args.sections.split(",") if s]:
        t0 = time.perf_counter()
        load = [round(x, 2) for x in os.getloadavg()]
        print(f"== {section} (load average {load})", flush=True)
        runs = {
            "retrieval": run_retrieval,
            "protocol": run_protocol,
            "scale": run_scale,
            "cascade": run_cascade,
            "audio_cascade": run_audio_cascade,
            "learned_cascade": run_learned_cascade,
        }
        payload = runs[section](args)
        payload["seconds"] = round(time.perf_counter() - t0, 1)
        payload["load_average"] = load
        payload["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        path = write_results(f"shingles_{args.name or section}", payload)
        print(f"wrote {path}")
    if not args.no_docs:
        update_docs(docs_section())
        print(f"updated {DOCS}")


if __name__ == "__main__":
    main()
