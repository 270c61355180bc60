"""Search by similarity at scale: query time and recall of the HNSW index over a simulated store of recordings.

    nice -n 10 .venv/bin/python benchmarks/bench_similarity_scale.py --n 100000   # -> results/similarity_scale.json
    nice -n 10 .venv/bin/python benchmarks/bench_similarity_scale.py --n 100000 --parts --exact-queries 5 \
        --out similarity_scale_parts

The store is simulated: the real search vectors (with ``--parts`` also the part vectors) of the soundtrack clips
(data/soundtracks) are repeated with Gaussian jitter (0.3 of a standard deviation over the clips) up to N
recordings. A query is a stored recording ("more like this", itself left out) through
:class:`mirsearch.describe.similarity.SimilarityIndex` and :func:`~mirsearch.describe.similarity.expanded_search`
(what the ``similar`` task runs once the index is built: a first search for the query expansion, then the
expanded query; with ``--parts``: HNSW candidates ranked by part distances, averaged with those of the nearest
two); recall@20 is measured against the exact ranking of all N with the same expansion.

The vectors end with the texture view (session 22): the codebook is fitted on the clips' segments (as
``collection_index`` fits it on a collection's), each clip's texture histogram is jittered with the rest. The
codebook's own cost at scale is timed apart: its fit on :data:`~mirsearch.describe.segment_codebook.MAX_FIT_SEGMENTS`
segments (the cap whatever the collection's size; the clips' segments repeated with jitter) and a recording's
histogram (per clip), from which the cost for N recordings follows. ``--no-textures``: the four views only.
"""

from __future__ import annotations

import argparse
import functools
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

from mirsearch.describe import segment_codebook as sc  # noqa: E402
from mirsearch.describe.similarity import (  # noqa: E402
    PARTS,
    SimilarityIndex,
    collection_codebook,
    collection_normaliser,
    expanded_search,
    part_vectors,
    raw_vector,
)
from similarity_features import load_features  # noqa: E402

from _common import write_results  # noqa: E402


def codebook_costs(arrays: list, n: int):
    """The clips' codebook (as a collection's) and the codebook's costs: the fit on the capped sample of segments,
    a recording's histogram, and both for ``n`` recordings."""
    codebook = collection_codebook(arrays, len(arrays))
    segments = [sc.segment_vectors(X) for X in arrays]
    rng = np.random.default_rng(1)
    pool = np.concatenate(segments)
    sample = pool[rng.integers(0, len(pool), sc.MAX_FIT_SEGMENTS)]
    sample = sample + 0.1 * pool.std(axis=0) * rng.standard_normal(sample.shape)
    t = time.perf_counter()
    sc.fit([sample])
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    for X in arrays:
        codebook.histogram(X)
    per_ms = (time.perf_counter() - t) / len(arrays) * 1000
    per_segment_us = per_ms * 1000 / (len(pool) / len(arrays))
    return codebook, {"codebook_fit_s": round(fit_s, 2), "fit_segments": sc.MAX_FIT_SEGMENTS,
                      "histogram_ms_per_clip": round(per_ms, 3), "histogram_us_per_segment": round(per_segment_us, 2),
                      "histograms_s_for_n_4min_recordings": round(per_segment_us * 60 * n / 1e6, 1)}  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--exact-queries", type=int, default=30, help="of those, compared with the exact ranking")
    ap.add_argument("--parts", action="store_true", help="compare recordings by their parts (COMPARE_PARTS)")
    ap.add_argument("--no-textures", action="store_true", help="the four views only (no texture histogram)")
    ap.add_argument("--out", default="similarity_scale")
    args = ap.parse_args(argv)
    _, feats = load_features()
    codebook, costs = (None, {}) if args.no_textures else codebook_costs([f["timbre"] for f in feats], args.n)
    vector = functools.partial(raw_vector, codebook=codebook)
    base = np.stack([vector(f["timbre"]) for f in feats])
    base_parts = [part_vectors(f["timbre"], parts=PARTS, vector=vector) for f in feats] if args.parts else None
    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(base), args.n)
    sd = 0.3 * base.std(axis=0)
    V = base[rows] + sd * rng.standard_normal((args.n, base.shape[1])).astype(np.float32)
    parts = None
    if args.parts:
        parts = [(base_parts[r] + sd * rng.standard_normal(base_parts[r].shape)).astype(np.float16) for r in rows]
    ids = np.arange(1, args.n + 1)
    t = time.perf_counter()
    hnsw = SimilarityIndex(ids, V, kind="hnsw", parts=parts, normaliser=collection_normaliser(V, codebook=codebook))
    build_s = time.perf_counter() - t
    exact = SimilarityIndex(ids, V, kind="exact", normaliser=hnsw.normaliser, parts=parts)
    del parts
    queries = rng.choice(ids, args.queries, replace=False)
    times, recall, exact_times = [], [], []
    for i, q in enumerate(queries):
        v, Q = hnsw.vector(q), (hnsw.part_vectors(q) if args.parts else None)
        t = time.perf_counter()
        got = expanded_search(hnsw, v, top=20, exclude=int(q), parts=Q)
        times.append(time.perf_counter() - t)
        if i >= args.exact_queries:
            continue
        t = time.perf_counter()
        want = expanded_search(exact, v, top=20, exclude=int(q), parts=Q)
        exact_times.append(time.perf_counter() - t)
        recall.append(len({r for r, _ in got} & {r for r, _ in want}) / 20)
    ms = np.array(times) * 1000
    payload = {"protocol": __doc__, "n": args.n, "dim": int(V.shape[1]), "queries": args.queries,
               "exact_queries": len(recall),
               "build_s": round(build_s, 1), "hnsw_median_ms": round(float(np.median(ms)), 3),
               "hnsw_p95_ms": round(float(np.percentile(ms, 95)), 3),
               "exact_median_ms": round(float(np.median(exact_times)) * 1000, 3),
               "recall@20": round(float(np.mean(recall)), 4), "params": hnsw.index.params,
               "parts": PARTS if args.parts else None,
               "part_bytes": int(hnsw.parts.nbytes) if args.parts else 0, "textures": codebook is not None,
               **costs}  # fmt: skip
    print(payload)
    write_results(args.out, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
