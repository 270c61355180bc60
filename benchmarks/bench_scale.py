"""Sharded search at scale (issue 23): query latency, throughput and memory per worker on a Dask LocalCluster.

Synthetic feature stores: random unit chroma at 10 Hz (theme search) and unit CENS at 2 Hz (passage search,
the default audio-matching configuration), in recordings of 4 minutes, built directly in each worker's memory
as its shard (``hours / workers`` each), so that no audio is needed and the client does not hold the store.
Queries run exactly as ``--dask`` runs them: the local search function on every shard
(:func:`mirsearch.cluster.search._theme_task`, ``_passages_task``), the per-shard top results merged
(:func:`mirsearch.cluster.search.merge_matches`). The time a query spends does not depend on the data (the
kernels visit every frame), so random features measure it well; what they do not show is result quality.

Measured per (hours, workers): the latency of one query (median of ``--queries`` in a row), the slowest shard's
compute time, throughput (:data:`THROUGHPUT_QUERIES` queries at once), the resident memory of every worker, and the
scatter time of a shard built in the client (what a real collection costs once per generation). Rows are merged
into results/scale.json (existing rows are kept unless measured again); the 10,000-hour case is modelled from
the per-hour shard times and bytes (docs/scale.md).

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_scale.py --hours 100 --workers 1 2 4 8
    nice -n 10 .venv/bin/python benchmarks/bench_scale.py --hours 1000 --workers 2 --queries 1
    nice -n 10 .venv/bin/python benchmarks/bench_scale.py --model-only      # the table and the model from the JSON
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, print_table, write_results  # noqa: E402

MINUTES = 4.0  # length of a synthetic recording
CHROMA_RATE = 10.0
THEME = "G G G Eb F F F D"
TOP, PER_RECORDING = 25, 3  # what the theme task asks of a search with top=10 (10 + 5 x 3 background)
TARGET_HOURS = 10_000
THROUGHPUT_QUERIES = 4  # queries submitted at once for the throughput (each fans out to every shard)


def _unit_rows(n: int, seed: int) -> np.ndarray:
    """``n`` random unit rows of 12 (built in blocks: no temporary of the whole size)."""
    rng = np.random.default_rng(seed)
    Y = np.empty((n, 12), np.float32)
    for i in range(0, n, 1 << 20):
        b = rng.random((min(1 << 20, n - i), 12), dtype=np.float32)
        b **= 4
        b /= np.linalg.norm(b, axis=1, keepdims=True)
        Y[i : i + b.shape[0]] = b
    return Y


def _recordings(n: int, seconds: float, seed: int) -> list:
    from mirsearch.collection.catalog import Recording

    return [Recording(seed * 10_000_000 + i + 1, f"synthetic/{seed}/{i}.wav", "", 0, 0.0, seconds) for i in range(n)]


def theme_shard(hours: float, seed: int):
    """A theme-search shard of ``hours`` of 10 Hz chroma (runs on a worker)."""
    from mirsearch.cluster.shards import ThemeShard

    per = int(MINUTES * 60 * CHROMA_RATE)
    n = max(1, int(round(hours * 60 / MINUTES)))
    offsets = np.arange(n + 1, dtype=np.int64) * per
    return ThemeShard("chroma", _unit_rows(n * per, seed), offsets, _recordings(n, MINUTES * 60, seed), CHROMA_RATE)


def audio_shard(hours: float, seed: int):
    """A passage-search shard of ``hours`` of CENS at the default audio-matching rate (runs on a worker)."""
    from mirsearch.features.audio_match import PASSAGE_MATCH
    from mirsearch.features.registry import feature_config
    from mirsearch.index.audio_database import AudioDatabase

    rate = PASSAGE_MATCH.frame_rate(CHROMA_RATE)
    per = int(MINUTES * 60 * rate)
    n = max(1, int(round(hours * 60 / MINUTES)))
    offsets = np.arange(n + 1, dtype=np.int64) * per
    db = AudioDatabase(
        _unit_rows(n * per, seed + 1), offsets, _recordings(n, MINUTES * 60, seed), rate, CHROMA_RATE, PASSAGE_MATCH,
        feature_config("chroma", feature_rate=CHROMA_RATE),
    )  # fmt: skip
    db.spectrum()  # held with the shard, as after a first query
    return db


def timed(task, shard, *args):
    """``(task(shard, *args), wall seconds, CPU seconds of the worker process)`` on the worker (the CPU time does not
    grow when other processes compete for the cores)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = task(shard, *args)
    return out, time.perf_counter() - t0, time.process_time() - c0


def held_bytes(kind: str, dask_worker=None) -> int:
    """Bytes of the shards of ``kind`` a worker holds (features, and the CENS spectrum of passage shards)."""
    name = "ThemeShard" if kind == "theme" else "AudioDatabase"
    total = 0
    for v in dask_worker.data.values():
        if type(v).__name__ == name:
            spectrum = getattr(v, "_spectrum", None)
            total += v.Y.nbytes + v.offsets.nbytes + (0 if spectrum is None else spectrum.nbytes)
    return total


def worker_rss(client) -> list[float]:
    import psutil

    return sorted(v / 1e6 for v in client.run(lambda: psutil.Process().memory_info().rss).values())


def _queries():
    from mirsearch.search.audio import PassageOptions
    from mirsearch.search.audio_query import AudioQuery
    from mirsearch.search.query import ThemeQuery

    rng = np.random.default_rng(7)
    audio = AudioQuery.from_chroma(rng.random((12, 150)).astype(np.float32), feature_rate=CHROMA_RATE, name="q")
    theme_options = {"features": "chroma", "top": TOP, "per_recording": PER_RECORDING}
    return {
        "theme": (ThemeQuery.from_text(THEME).theme, theme_options),
        "passages": (audio, PassageOptions(top=10, curves=False)),
    }


def _one_query(client, shards, kind, query, options):
    """Fan a query out, merge; returns (wall seconds, slowest shard, mean shard, slowest shard CPU, mean shard
    CPU seconds)."""
    from mirsearch.cluster.search import _passages_task, _theme_task, merge_matches

    task = _theme_task if kind == "theme" else _passages_task
    t0 = time.perf_counter()
    parts = client.gather([client.submit(timed, task, s, query, options, pure=False) for s in shards])
    results = [p[0] for p in parts]
    merge_matches(results if kind == "theme" else [r.matches for r in results], 10)
    wall = time.perf_counter() - t0
    shard_s, cpu_s = [p[1] for p in parts], [p[2] for p in parts]
    return wall, max(shard_s), statistics.fmean(shard_s), max(cpu_s), statistics.fmean(cpu_s)


def _throughput(client, shards, kind, query, options, n: int) -> float:
    from mirsearch.cluster.search import _passages_task, _theme_task

    task = _theme_task if kind == "theme" else _passages_task
    t0 = time.perf_counter()
    futures = [client.submit(task, s, query, options, pure=False) for _ in range(n) for s in shards]
    client.gather(futures)
    return n / (time.perf_counter() - t0)


def measure(hours: float, workers: int, *, kinds, queries: int) -> list[dict]:
    from distributed import Client, LocalCluster, wait

    rows = []
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                     silence_logs=logging.ERROR) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        client.wait_for_workers(workers)
        addresses = sorted(client.scheduler_info(n_workers=-1)["workers"])
        base = worker_rss(client)
        qs = _queries()
        for kind in kinds:
            make = theme_shard if kind == "theme" else audio_shard
            t0 = time.perf_counter()
            shards = [
                client.submit(make, hours / workers, 100 * i, workers=[a], pure=False) for i, a in enumerate(addresses)
            ]
            wait(shards)
            build_s = time.perf_counter() - t0
            nbytes = sum(client.run(held_bytes, kind).values())
            query, options = qs[kind]
            if queries > 1:  # warm-up (numba kernels load in each worker: about a second, nothing at 1,000 h)
                _one_query(client, shards, kind, query, options)
            runs = [_one_query(client, shards, kind, query, options) for _ in range(queries)]
            qps = _throughput(client, shards, kind, query, options, THROUGHPUT_QUERIES) if queries > 1 else None
            rss = worker_rss(client)
            rows.append({
                "kind": kind, "hours": hours, "workers": workers,
                "latency_s": round(statistics.median(r[0] for r in runs), 3),
                "slowest_shard_s": round(statistics.median(r[1] for r in runs), 3),
                "mean_shard_s": round(statistics.median(r[2] for r in runs), 3),
                "slowest_shard_cpu_s": round(statistics.median(r[3] for r in runs), 3),
                "mean_shard_cpu_s": round(statistics.median(r[4] for r in runs), 3),
                "load_avg_1min": round(os.getloadavg()[0], 2),
                "queries_per_s": None if qps is None else round(qps, 4),
                "worker_rss_mb": [round(v) for v in rss], "worker_base_mb": [round(v) for v in base],
                "store_mb": round(nbytes / 1e6, 1), "build_s": round(build_s, 2), "queries": queries,
            })  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
            del shards
            time.sleep(1.0)
    return rows


def scatter_time(hours: float) -> dict:
    """Seconds to scatter a theme shard of ``hours`` built in the client to one worker (once per generation)."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                     silence_logs=logging.ERROR) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        shard = theme_shard(hours, 1)
        t0 = time.perf_counter()
        future = client.scatter(shard, hash=False)
        future.result()
        seconds = time.perf_counter() - t0
    return {"hours": hours, "mb": round(shard.nbytes / 1e6, 1), "scatter_s": round(seconds, 3)}


def model(rows: list[dict]) -> list[dict]:
    """The 10,000-hour archive from measured per-hour shard times and bytes (one core per worker)."""
    out = []
    for kind in ("theme", "passages"):
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            continue
        big = max(mine, key=lambda r: (r["hours"], -r["workers"]))  # the largest shard measured
        cpu = big.get("mean_shard_cpu_s", big["mean_shard_s"])  # CPU time: what a core of its own would take
        s_per_hour = cpu / (big["hours"] / big["workers"])
        mb_per_hour = big["store_mb"] / big["hours"]
        overhead = statistics.median(max(0.0, r["latency_s"] - r["slowest_shard_s"]) for r in mine)
        base = statistics.median(max(r["worker_rss_mb"]) - r["store_mb"] / r["workers"] for r in mine)  # Python, numba,
        # Dask and a query's working memory beside the shard
        for w in (8, 16, 32, 64):
            h = TARGET_HOURS / w
            out.append({
                "kind": kind, "hours": TARGET_HOURS, "workers": w,
                "modelled_latency_s": round(s_per_hour * h + overhead, 2),
                "worker_store_mb": round(mb_per_hour * h), "worker_mb": round(mb_per_hour * h + base),
                "from": f"{big['hours']:g} h on {big['workers']} workers: {s_per_hour:.3f} CPU s and {mb_per_hour:.1f} "
                f"MB per hour of a shard; fan-out overhead {overhead:.3f} s",
            })  # fmt: skip
    return out


def _save(rows: list[dict], scatter: list[dict]) -> None:
    write_results("scale", {"rows": rows, "scatter": scatter, "model": model(rows), "cores": os.cpu_count()})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hours", type=float, nargs="+", default=[100.0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--kinds", nargs="+", default=["theme", "passages"], choices=["theme", "passages"])
    p.add_argument("--queries", type=int, default=3, help="queries in a row per setting (latency: their median)")
    p.add_argument("--scatter-hours", type=float, default=None, help="also time scattering a shard of these hours")
    p.add_argument("--model-only", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".cache" / "numba"))
    path = RESULTS / "scale.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    rows = old.get("rows", [])
    scatter = old.get("scatter", [])
    if not args.model_only:
        for hours in args.hours:
            for workers in args.workers:
                new = measure(hours, workers, kinds=args.kinds, queries=args.queries)
                done = {(r["kind"], r["hours"], r["workers"]) for r in new}
                rows = [r for r in rows if (r["kind"], r["hours"], r["workers"]) not in done] + new
                _save(rows, scatter)
        if args.scatter_hours:
            scatter = [s for s in scatter if s["hours"] != args.scatter_hours] + [scatter_time(args.scatter_hours)]
    rows.sort(key=lambda r: (r["kind"], r["hours"], r["workers"]))
    _save(rows, scatter)
    for r in rows:
        r["rss_mb_max"] = max(r["worker_rss_mb"])
    print_table(rows, ["kind", "hours", "workers", "latency_s", "slowest_shard_s", "slowest_shard_cpu_s",
                       "queries_per_s", "store_mb", "rss_mb_max", "load_avg_1min"])  # fmt: skip
    print()
    print_table(model(rows), ["kind", "hours", "workers", "modelled_latency_s", "worker_store_mb", "worker_mb"])
    for s in scatter:
        print(f"scatter of a {s['hours']:g} h theme shard ({s['mb']} MB) from the client: {s['scatter_s']} s")


if __name__ == "__main__":
    main()
