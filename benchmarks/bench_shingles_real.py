"""The shingle index and the audio cascade on real recordings under the issue-14 degradations.

Protocol: that of ``bench_matching_real.py`` (imported read-only: its ``split_tracks``, ``degrade`` and
query cache): *tune* = ``ufoai-music`` + ``singularity-music``, *test* = ``colobot-common-sounds`` + the
Frets on Fire backing tracks; 15 s excerpts (``--per-track`` per track, 1 on tune, 2 on test: the cached
query sets) under five degradations (pitch +-1 semitone, tempo 0.9 / 1.1, speed +-5.9 %, white noise
10 dB, telephone band). Each split is its own collection, built here
(``data/bench_match/shingles_real_<split>.mirs``, as ``mirsearch index`` makes it) so that the shingle
indexes this benchmark builds do not touch the matching benchmark's collections.

Metric: **right track first** (``track_p1``: the first result is in the excerpt's source track), the
issue's criterion for the index and the cascade; for methods that return a position, also ``p1`` (first
result also overlaps the source span by half, ``bench_matching.is_hit``). Query times exclude the query's
chroma (computed once per query and shared by all methods; its time is reported separately).

Methods (``--methods``, names from :data:`METHODS`; each built from the library's current defaults):

- ``hnsw``: what ``mirsearch search --audio Q --index hnsw`` runs (the service's defaults: every key,
  the default shingles and reduction (whitened with the collection's covariance), HNSW);
- ``exact_whiten``: the same with exact search; ``hnsw_raw`` / ``exact_raw``: the raw 240-dim shingles
  (the default before session 11) through HNSW / exact search;
- ``cascade``: what ``mirsearch shingles search --audio Q --cascade`` runs (stage 1 the HNSW index proposes
  16 recordings, stage 2 exact shingle matching against every shingle of those, the same voting);
- ``exhaustive``: stage 2 of the cascade on every recording (``proposal="none"``), the reference;
- ``cascade_passages`` / ``exhaustive_passages``: the ``"passages"`` verifier (the ordinary passage search,
  both of its stages, on the candidates / on every recording: ``mirsearch search --audio Q``);
- ``cascade_cens`` / ``exhaustive_cens``: the ``"cens"`` verifier (CENS subsequence DTW of the shingles'
  CENS in the proposed regions, the default before session 11);
- ``*_old``: the same with the defaults before issue 14 (shipped embedding-12 on 20 s shingles of 1 Hz
  CENS; the cascade in the excerpt's key only);
- one change at a time: ``*_key0`` (the excerpt's key only), ``hnsw_raw_L20`` / ``_L10`` / ``_2hz_h1``
  (raw shingles of other lengths and hops), ``hnsw_k16`` / ``_k256`` (neighbours per query shingle),
  ``hnsw_min`` (a region scored by its nearest shingle), ``*_embedding`` (the bundle ``--embedding DIR``).

    nice -n 10 python benchmarks/bench_shingles_real.py --split tune [--methods hnsw,exact_raw,cascade,exhaustive]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_matching import DATA, SR, build_collection, is_hit  # noqa: E402
from bench_matching_real import make_queries, split_tracks  # noqa: E402

from _common import print_table, summary_by, write_results  # noqa: E402

PER_TRACK = {"tune": 1, "test": 2}  # the cached query sets of bench_matching_real.py


@dataclass(frozen=True)
class Method:
    """One row: the shingle search (``kind="shingles"``) or the cascade (``"cascade"``, ``"exhaustive"``)."""

    kind: str
    index: dict = field(default_factory=dict)  # IndexSpec changes
    cascade: dict = field(default_factory=dict)  # AudioCascadeOptions changes (verifier, candidates, ...)
    match: dict = field(default_factory=dict)  # SHINGLE_MATCH changes (transpositions, tempo_factors, ...)
    config: dict = field(default_factory=dict)  # ShingleConfig changes (length, window, downsample, hop)
    k: int | None = None
    aggregate: str | None = None
    keys_default: bool = True  # the transpositions of the command line's defaults


_RAW = {"kind": "exact", "reduction": "none", "dim": None}
_L20 = {"length": 20, "window": 41, "downsample": 10, "hop": 1}
_KEY0 = {"transpositions": (0,)}
_NONE = {"reduction": "none", "dim": None}
_EMB12 = {"reduction": "embedding", "dim": 12}
_2HZ = {"length": 20, "window": 21, "downsample": 5, "hop": 1}
_L10 = {"length": 10, "window": 41, "downsample": 10, "hop": 1}
METHODS: dict[str, Method] = {
    "hnsw": Method("shingles"),
    "exact_raw": Method("shingles", index=_RAW),
    "hnsw_raw": Method("shingles", index=_NONE),
    "exact_whiten": Method("shingles", index={"kind": "exact", "reduction": "whiten", "dim": None}),
    "cascade": Method("cascade"),
    "exhaustive": Method("exhaustive"),
    "cascade_passages": Method("cascade", cascade={"verifier": "passages"}),
    "exhaustive_passages": Method("exhaustive", cascade={"verifier": "passages"}),
    "cascade_cens": Method("cascade", cascade={"verifier": "cens"}),
    "exhaustive_cens": Method("exhaustive", cascade={"verifier": "cens"}),
    "cascade_c8": Method("cascade", cascade={"candidates": 8}),
    "cascade_c32": Method("cascade", cascade={"candidates": 32}),
    # the defaults before issue 14: shipped embedding-12 (1 Hz, 20 s shingles); the cascade in the query's key
    "hnsw_old": Method("shingles", index=_EMB12, config=_L20),
    "cascade_old": Method(
        "cascade", index=_EMB12, config=_L20, match=_KEY0, keys_default=False, cascade={"verifier": "cens"}
    ),
    "exhaustive_old": Method("exhaustive", config=_L20, cascade={"verifier": "cens"}),
    # one change at a time
    "hnsw_key0": Method("shingles", match=_KEY0, keys_default=False),
    "hnsw_k16": Method("shingles", k=16),
    "hnsw_k256": Method("shingles", k=256),
    "hnsw_min": Method("shingles", aggregate="min"),
    "cascade_key0": Method("cascade", match=_KEY0, keys_default=False),
    "hnsw_raw_L20": Method("shingles", index=_NONE, config=_L20),
    "hnsw_raw_L10": Method("shingles", index=_NONE, config=_L10),
    "hnsw_raw_2hz_h1": Method("shingles", index=_NONE, config=_2HZ),
    "hnsw_emb12_L20": Method("shingles", index=_EMB12, config=_L20, match=_KEY0, keys_default=False),
    # --embedding DIR: a trained bundle (its own shingles)
    "hnsw_embedding": Method("shingles", index={"reduction": "EMBEDDING", "dim": None}),
    "cascade_embedding": Method("cascade", index={"reduction": "EMBEDDING", "dim": None}),
}


def _options(method: Method, top: int):
    """(search options, shingle configuration) of a method, from the library's current defaults."""
    from mirsearch.features.audio_match import ALL_KEYS
    from mirsearch.features.shingles import ShingleConfig
    from mirsearch.index.shingle_index import IndexSpec
    from mirsearch.search.audio_cascade import AudioCascadeOptions
    from mirsearch.search.shingles import ShingleSearchOptions

    base = ShingleSearchOptions() if method.kind == "shingles" else AudioCascadeOptions()
    match = base.match.replace(**({"transpositions": ALL_KEYS} if method.keys_default else {}), **method.match)
    config = ShingleConfig.from_dict({**ShingleConfig.for_match(match).to_dict(), **method.config})
    match = match.replace(window=config.window, downsample=config.downsample)
    spec = base.index
    if method.index:
        spec = IndexSpec(**{"kind": spec.kind, "reduction": spec.reduction, "dim": spec.dim, **method.index})
    changes = {"top": top, "match": match, "index": spec}
    if method.k is not None:
        changes["k"] = method.k
    if method.aggregate is not None:
        changes["aggregate"] = method.aggregate
    if method.kind == "exhaustive":
        changes["proposal"] = "none"
    return base.replace(**changes, **method.cascade), config


def runner(coll, name: str, top: int = 1, embedding: str | None = None):
    """A function (query chroma, query samples) -> ranked [(recording id, start s, end s)] for method ``name``."""
    from mirsearch.index.audio_database import audio_database
    from mirsearch.search.audio_cascade import cascade_search_audio, cens_cascade, shingle_cascade
    from mirsearch.search.audio_query import AudioQuery
    from mirsearch.search.shingles import search_shingle_chroma

    method = METHODS[name]
    if method.index.get("reduction") == "EMBEDDING":
        if not embedding:
            raise SystemExit(f"{name}: needs --embedding DIR")
        method = dataclasses.replace(method, index={**method.index, "reduction": embedding})
    options, config = _options(method, top)
    t0 = time.perf_counter()
    if method.kind == "shingles":
        idx = options.index.open(coll, config=config)
        print(f"  {name}: index {idx.reduction.name}-{options.index.kind} of {len(idx)} shingles "
              f"({config.key}) ready in {time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
        rate = idx.config.frame_rate

        def run(C, y=None):
            regions, _ = search_shingle_chroma(idx, C, options)
            return [(g.recording_id, g.start / rate, g.end / rate) for g in regions]

        return run
    if options.verifier == "shingles":
        idx = options.index.open(coll, config=config)
        rate = idx.config.frame_rate

        def run_shingles(C, y=None):
            regions, _ = shingle_cascade(C, idx, options)
            return [(g.recording_id, g.start / rate, g.end / rate) for g in regions[:top]]

        return run_shingles
    if options.verifier == "passages":  # the passage search computes its own query chroma (its equalisation)

        def run_passages(C, y):
            found = cascade_search_audio(coll, AudioQuery.from_samples(y, SR), options)
            return [(m.recording_id, m.start, m.end) for m in found[:top]]

        return run_passages
    idx = options.index.open(coll, config=config) if method.kind == "cascade" else None
    db = audio_database(coll, idx.config.match() if idx is not None else options.match)

    def run_cascade(C, y=None):
        found = cens_cascade(C, db.Y, db.offsets, db.ids, shingle_index=idx, options=options)
        return [(rid, a / db.feature_rate, b / db.feature_rate) for rid, a, b, *_ in found[:top]]

    return run_cascade


def query_chroma(queries: list[dict], cache: Path) -> list[np.ndarray]:
    """Each query's 10 Hz chroma (the recipe of the stored chroma), cached in ``cache``; adds ``chroma_s``
    (the time of computing it, from the cache when it was written) to each query."""
    from mirsearch.features.audio_match import SHINGLE_MATCH
    from mirsearch.search.audio_query import AudioQuery
    from mirsearch.search.shingles import shingle_query_chroma

    keys = [f"{Path(q['track']).name}|{q['start']:.4f}|{q['variant']}" for q in queries]
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            row = {k: i for i, k in enumerate(z["keys"])}
            if all(k in row for k in keys):
                for q, k in zip(queries, keys, strict=True):
                    q["chroma_s"] = float(z["seconds"][row[k]])
                return [z[f"c{row[k]}"] for k in keys]
    out = []
    for q in queries:
        t0 = time.perf_counter()
        out.append(shingle_query_chroma(AudioQuery.from_samples(q["y"], SR), SHINGLE_MATCH))
        q["chroma_s"] = time.perf_counter() - t0
    seconds = np.array([q["chroma_s"] for q in queries])
    np.savez(cache, keys=np.array(keys), seconds=seconds, **{f"c{i}": c for i, c in enumerate(out)})
    return out


def evaluate(queries: list[dict], chroma: list[np.ndarray], run, name: str) -> list[dict]:
    rows = []
    for q, C in zip(queries, chroma, strict=True):
        t0 = time.perf_counter()
        ranked = run(C, q.get("y"))
        dt = time.perf_counter() - t0
        first = ranked[0] if ranked else None
        rows.append({
            "method": name, "kind": q["kind"], "variant": q["variant"], "track": "/".join(Path(q["track"]).parts[-2:]),
            "track_p1": float(first is not None and first[0] == q["rid"]),
            "p1": float(first is not None and is_hit(first[0], first[1], first[2], q["relevant"], set())),
            "s": dt,
        })  # fmt: skip
    return rows


def summarise(rows: list[dict], by: tuple[str, ...]) -> list[dict]:
    return summary_by(rows, by, {
        "track_p1": ("track_p1", "mean", 1, 4), "p1": ("p1", "mean", 1, 4),
        "mean_ms": ("s", "mean", 1000, 2), "median_ms": ("s", "median", 1000, 2),
    })  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=("tune", "test"), required=True)
    ap.add_argument("--methods", default="hnsw,exact_raw,cascade,exhaustive", help=f"of {', '.join(METHODS)}")
    ap.add_argument("--embedding", default=None, help="bundle directory of the *_embedding methods")
    ap.add_argument("--limit", type=int, default=0, help="first N excerpts only (x 5 degradations; 0: all)")
    ap.add_argument("--out", default=None, help="results name (default shingles_real_<split>)")
    args = ap.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    if unknown := [m for m in methods if m not in METHODS]:
        raise SystemExit(f"--methods: unknown {unknown}")
    import torch

    torch.set_num_threads(1)
    tracks = split_tracks(args.split)
    coll = build_collection(tracks, name=f"shingles_real_{args.split}.mirs", refresh=True)
    recs = coll.recordings()
    hours = sum(r.duration for r in recs) / 3600
    queries = make_queries(args.split, tracks, coll, per_track=PER_TRACK[args.split])
    silent = {(q["track"], q["start"]) for q in queries if float(np.sqrt(np.mean(q["y"] ** 2))) < 1e-4}
    queries = [q for q in queries if (q["track"], q["start"]) not in silent]
    if args.limit:
        keep = sorted({(q["track"], q["start"]) for q in queries})
        keep = set(keep[:: max(1, len(keep) // args.limit)][: args.limit])
        queries = [q for q in queries if (q["track"], q["start"]) in keep]
    print(f"{args.split}: {len(queries)} queries over {len(recs)} recordings ({hours:.2f} h)", flush=True)
    chroma = query_chroma(queries, DATA / f"shingles_real_{args.split}_chroma{'_part' if args.limit else ''}.npz")
    if not any(METHODS[m].cascade.get("verifier") == "passages" for m in methods):
        for q in queries:  # only the passage verifier needs the samples
            q.pop("y")
    rows = []
    for m in methods:
        rows += evaluate(queries, chroma, runner(coll, m, embedding=args.embedding), m)
        mine = [r for r in rows if r["method"] == m]
        print(f"  {m}: track@1 {np.mean([r['track_p1'] for r in mine]):.3f}", flush=True)
    overall = summarise(rows, ("method",))
    by_kind = summarise(rows, ("method", "kind"))
    print_table(overall, ["method", "queries", "track_p1", "p1", "mean_ms", "median_ms"])
    print_table(by_kind, ["method", "kind", "queries", "track_p1", "p1"])
    chroma_ms = round(1000 * float(np.mean([q["chroma_s"] for q in queries])), 1)
    print(f"query chroma: {chroma_ms} ms per query (not in the times above)")
    path = write_results(
        args.out or f"shingles_real_{args.split}",
        {
            "command": "python benchmarks/bench_shingles_real.py " + " ".join(sys.argv[1:]),
            "split": args.split,
            "collection": {"recordings": len(recs), "hours": round(hours, 3)},
            "query_chroma_ms": chroma_ms,
            "overall": overall,
            "by_kind": by_kind,
            "queries": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
