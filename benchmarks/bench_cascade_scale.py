"""Audio cascade against the exhaustive search on a large collection (hundreds of hours of CENS).

The test split of a dataset (``mirsearch dataset build``) keeps its recordings as they are; the train and
validation splits (other works) are added as distractors with new variations (all 12 transpositions,
tempo factors 1.0 / 0.9 / 1.1 / 0.8 / 1.2), until the database holds ``--hours`` hours. That is a
collection's CENS database and shingle index built in memory from the rendered audio's stored chroma:
no new audio. Queries are the ``retrieval`` section's 25 s excerpts of the test versions
(``bench_shingles.py``, same seed; every ``--query-step``-th one). Per query, the same
:func:`mirsearch.search.audio_cascade.cens_cascade` runs exhaustively (CENS subsequence DTW at 11 tempo factors
over every frame) and as the cascade (learned 12-dim embeddings in an HNSW index propose
``--candidates`` recordings, the DTW runs in their best region only). Top-1 / MRR: a version of the
query's work first (own recording excluded), original key. Writes
``benchmarks/results/cascade_scale.json``.

    python benchmarks/bench_cascade_scale.py --dataset data/bench --hours 350 [--candidates 8,16,32]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from mirsearch.evaluation.metrics import hit_at_k, reciprocal_rank

from _common import accuracy_row, print_table, write_results


class MemoryShingleIndex:
    """Learned-embedding HNSW index over in-memory shingles (the interface :func:`cens_cascade` uses)."""

    def __init__(self, reduction, ann, rec_ids: np.ndarray, starts: np.ndarray, config):
        self.reduction, self.ann, self.rec_ids, self.starts, self.config = reduction, ann, rec_ids, starts, config

    def search_vectors(self, S: np.ndarray, *, k: int):
        return self.ann.search(self.reduction.transform(S), k=k)


def build_database(args):
    """CENS database of the test split plus distractor variations, and the learned shingle vectors."""
    from mirsearch.features.shingles import DEFAULT_CONFIG, cens_of, shingles
    from mirsearch.matching.subsequence import unit_columns
    from mirsearch.models.embedding import load_reduction
    from mirsearch.training.embedding import dataset_collection

    config = DEFAULT_CONFIG
    red = load_reduction("embedding", dim=12, threads=args.threads)
    cache = Path(args.cache) / f"cascade-scale-{args.hours:g}h-{red.model_id}" if args.cache else None
    if cache is not None and (cache / "Y.npy").is_file():
        d = {
            k: np.load(cache / f"{k}.npy")
            for k in ("Y", "offsets", "ids", "work", "Z", "rec_ids", "starts", "test_frames")
        }
        print(f"database from {cache}", flush=True)
        return d, red, config
    parts, ids, works, zs, rec_ids, starts = [], [], [], [], [], []
    target = args.hours * 3600 * config.frame_rate
    total = 0

    def add(X, rid, work):
        nonlocal total
        parts.append(unit_columns(X))
        ids.append(rid)
        works.append(work)
        S, st = shingles(X, length=config.length, hop=config.hop)
        if len(S):
            zs.append(red.transform(S))
            rec_ids.append(np.full(len(S), rid, np.int64))
            starts.append(st)
        total += X.shape[1]

    distractors = []
    for split in ("test", "train", "validation"):
        coll, view = dataset_collection(args.dataset, split, jobs=1, progress=False)
        by_path = {r.path: r.id for r in coll.recordings()}
        for v in view:
            rid = by_path.get(str(v.path.resolve()))
            if rid is None:
                continue
            C = np.asarray(coll.load_features(rid)[0])
            if split == "test":
                add(cens_of(C, config=config), rid, v.work_id)
            else:
                distractors.append((C, v.work_id))
        coll.close()
    test_frames = total
    next_id = 1_000_000
    for f in (1.0, 0.9, 1.1, 0.8, 1.2):
        for C, work in distractors:
            X = cens_of(C, config=config, tempo_factor=f)
            for t in range(12):
                if total >= target:
                    break
                add(np.roll(X, t, axis=0), next_id, f"distractor:{work}")
                next_id += 1
        print(f"  tempo {f}: {total / config.frame_rate / 3600:.0f} h, {sum(len(z) for z in zs)} shingles", flush=True)
        if total >= target:
            break
    d = {
        "Y": np.ascontiguousarray(np.concatenate(parts)),
        "offsets": np.concatenate([[0], np.cumsum([p.shape[0] for p in parts])]).astype(np.int64),
        "ids": np.asarray(ids, np.int64),
        "work": np.asarray(works),
        "Z": np.ascontiguousarray(np.concatenate(zs)),
        "rec_ids": np.concatenate(rec_ids),
        "starts": np.concatenate(starts).astype(np.int64),
        "test_frames": np.asarray(test_frames),
    }
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        for k, v in d.items():
            np.save(cache / f"{k}.npy", v)
    return d, red, config


def test_queries(args, ids, work):
    """The retrieval section's queries: (recording id, 10 Hz chroma excerpt), every ``query_step``-th."""
    from mirsearch.training.embedding import dataset_collection

    coll, view = dataset_collection(args.dataset, "test", jobs=1, progress=False)
    rng = np.random.default_rng(args.seed)
    n_frames = int(args.query_seconds * 10)
    test_ids = {int(r) for r, w in zip(ids, work, strict=True) if not str(w).startswith("distractor:")}
    queries = []
    for r in sorted(rr.id for rr in coll.recordings() if rr.id in test_ids):
        C = np.asarray(coll.load_features(r)[0])
        if C.shape[1] < n_frames + 10:
            continue
        for s in rng.choice(C.shape[1] - n_frames, size=args.queries_per_version, replace=False):
            queries.append((r, np.ascontiguousarray(C[:, s : s + n_frames])))
    coll.close()
    work_of = dict(zip(ids.tolist(), work.tolist(), strict=True))
    queries = [q for q in queries if any(work_of[x] == work_of[q[0]] and x != q[0] for x in test_ids)]
    return queries[:: args.query_step], work_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="data/bench")
    parser.add_argument("--hours", type=float, default=350.0, help="database size (test split + distractors)")
    parser.add_argument("--candidates", default="8,16,32", help="recordings proposed, comma-separated")
    parser.add_argument("--query-seconds", type=float, default=25.0)
    parser.add_argument("--queries-per-version", type=int, default=1)
    parser.add_argument("--query-step", type=int, default=3, help="every n-th query (exhaustive is slow)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ef", type=int, default=64, help="HNSW search ef (>= k)")
    parser.add_argument("--M", type=int, default=8)
    parser.add_argument("--ef-construction", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="threads of the embedding and the index build")
    parser.add_argument("--cache", default="data/runs/scale-cache", help="cache of the database ('' for none)")
    parser.add_argument("--name", default="cascade_scale")
    args = parser.parse_args()

    from mirsearch.index.ann import build_index
    from mirsearch.search.audio_cascade import AudioCascadeOptions, cens_cascade

    load_start = [round(x, 2) for x in os.getloadavg()]
    t0 = time.perf_counter()
    d, red, config = build_database(args)
    build_db_s = time.perf_counter() - t0
    hours = float(d["offsets"][-1]) / config.frame_rate / 3600
    print(f"{len(d['ids'])} recordings, {hours:.0f} h, {len(d['Z'])} shingles ({build_db_s:.0f} s)", flush=True)
    t1 = time.perf_counter()
    ann = build_index("hnsw", d["Z"], M=args.M, ef_construction=args.ef_construction, ef=args.ef, threads=args.threads)
    ann.search(d["Z"][:1], k=1)  # the graph exists
    ann.params["threads"] = 1  # queries one at a time on one thread
    index_s = time.perf_counter() - t1
    print(f"HNSW index built in {index_s:.0f} s", flush=True)
    index = MemoryShingleIndex(red, ann, d["rec_ids"], d["starts"], config)
    queries, work_of = test_queries(args, d["ids"], d["work"])
    print(f"{len(queries)} queries of {args.query_seconds:g} s", flush=True)
    variants = [("exhaustive", None, 1)] + [(f"index-{c}", index, int(c)) for c in args.candidates.split(",")]
    rows, firsts = [], {}
    for name, idx, cand in variants:
        options = AudioCascadeOptions(candidates=cand)
        cens_cascade(queries[0][1], d["Y"], d["offsets"], d["ids"], shingle_index=idx, options=options)  # warm
        top1, rr, times, prop_ms, dtw_ms, frames = [], [], [], [], [], []
        firsts[name] = []
        for rid, C in queries:
            stats: dict = {}
            t = time.perf_counter()
            found = cens_cascade(
                C,
                d["Y"],
                d["offsets"],
                d["ids"],
                shingle_index=idx,
                options=options.replace(exclude=(rid,)),
                stats=stats,
            )
            times.append(time.perf_counter() - t)
            ranked = list(dict.fromkeys(m[0] for m in found))
            firsts[name].append(ranked[0] if ranked else None)
            rank = next((i for i, r in enumerate(ranked, 1) if work_of[r] == work_of[rid]), None)
            top1.append(hit_at_k(rank))
            rr.append(reciprocal_rank(rank))
            prop_ms.append(stats["proposal_ms"])
            dtw_ms.append(stats["dtw_ms"])
            frames.append(stats["frames_searched"] / stats["frames_total"])
        row = {
            **accuracy_row(name, top1, rr, times),
            "proposal_ms": round(float(np.mean(prop_ms)), 2),
            "dtw_ms": round(float(np.mean(dtw_ms)), 2),
            "frames_in_dtw": round(float(np.mean(frames)), 5),
        }
        rows.append(row)
        print_table([row], list(row))
        print(flush=True)
    for row in rows:
        row["speedup"] = round(rows[0]["mean_ms"] / row["mean_ms"], 1)
        row["same_top1"] = round(
            float(np.mean([a == b for a, b in zip(firsts[row["method"]], firsts["exhaustive"], strict=True)])), 4
        )
    cols = ["method", "Top-1", "MRR", "mean_ms", "median_ms", "p95_ms", "proposal_ms", "dtw_ms", "frames_in_dtw"]
    print_table(rows, [*cols, "speedup", "same_top1"])
    path = write_results(
        args.name,
        {
            "command": "python benchmarks/bench_cascade_scale.py " + " ".join(sys.argv[1:]),
            "load_average_start": load_start,
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "hours": round(hours, 1),
            "test_hours": round(float(d["test_frames"]) / config.frame_rate / 3600, 2),
            "recordings": int(len(d["ids"])),
            "shingles": int(len(d["Z"])),
            "queries": len(queries),
            "database_s": round(build_db_s, 1),
            "index_s": round(index_s, 1),
            "hnsw": {"M": args.M, "ef_construction": args.ef_construction, "ef": args.ef},
            "embedding": red.model_id,
            "rows": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
