"""Load test of the HTTP server on loopback: concurrent clients, a realistic request mix, latencies.

    python benchmarks/bench_server.py --collection data/bench_server/coll.mirs \\
        [--clients 20] [--seconds 30] [--workers 2] [--pair A.flac B.flac]

Starts ``mirsearch serve`` as a subprocess on a free 127.0.0.1 port, warms it up (one request of each
kind: numba kernels, the collection's feature cache, the time map of ``--pair``), then runs ``--clients``
concurrent clients (asyncio + httpx) for ``--seconds``. Each client loops over a weighted mix:

======================  ======  ==========================================================================
kind                    weight  request
======================  ======  ==========================================================================
theme                   40      POST /api/search/theme, one of 24 random 6-12 note themes, 12 transpositions
audio_range             25      GET /api/recordings/{id}/audio with a random 256 kB ``Range``
recordings              10      GET /api/recordings
stats                   10      GET /api/stats
align                   8       GET /api/align?a=&b=&t= (the cached time map of ``--pair``)
chromagram              4       GET /api/recordings/{id}/chromagram.png (a few distinct spans: mostly cached)
audio_search            3       POST /api/search/audio, a 10 s excerpt (wav upload)
======================  ======  ==========================================================================

Loops are bounded (``--max-requests`` per client) and stop at the deadline; requests in flight then finish.
An error is any exception or non-2xx status. Clients and server share the machine's cores, so the
latencies include the load generator's own CPU use. Writes ``benchmarks/results/server_load.json`` and the
``## Server load`` section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _common import print_table, write_results

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
MIX = {
    "theme": 40,
    "audio_range": 25,
    "recordings": 10,
    "stats": 10,
    "align": 8,
    "chromagram": 4,
    "audio_search": 3,
}
NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_themes(n: int, seed: int = 0) -> list[str]:
    """``n`` note strings of 6-12 notes (a random walk, quarter and eighth notes)."""
    rng = random.Random(seed)
    themes = []
    for _ in range(n):
        pitch = rng.randrange(60, 72)
        notes = []
        for _ in range(rng.randrange(6, 13)):
            pitch = min(84, max(55, pitch + rng.choice((-4, -2, -1, 0, 1, 2, 3, 5))))
            value = rng.choice(("/4", "/4", "/8"))
            notes.append(f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}{value}")
        themes.append(" ".join(notes))
    return themes


def excerpt_wav(path: str, *, start: float, seconds: float) -> bytes:
    import soundfile as sf

    info = sf.info(path)
    start = max(0.0, min(start, info.duration - seconds))
    y, sr = sf.read(path, start=int(start * info.samplerate), frames=int(seconds * info.samplerate), dtype="float32")
    buf = io.BytesIO()
    sf.write(buf, y, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def with_files(recordings: list[dict], collection: str) -> list[dict]:
    """The API's recordings with ``path`` replaced by the file's path on this machine (from the catalogue)."""
    from mirsearch.collection import Collection

    with Collection.open(collection, readonly=True) as coll:
        files = {r.id: r.path for r in coll.recordings()}
    return [{**r, "path": files[r["id"]]} for r in recordings]


class Plan:
    """What the clients ask for, prepared before the run."""

    def __init__(self, recordings: list[dict], pair: tuple[int, int] | None, seed: int = 0):
        self.rng = random.Random(seed)
        self.recordings = recordings
        self.pair = pair
        self.themes = random_themes(24, seed)
        longest = max(recordings, key=lambda r: r["duration"])
        self.excerpt = excerpt_wav(longest["path"], start=longest["duration"] / 3, seconds=10.0)
        self.sizes = {r["id"]: os.path.getsize(r["path"]) for r in recordings}
        self.spans = [(r["id"], s) for r in recordings[:4] for s in (5.0, 20.0)]

    def request(self, kind: str, rng: random.Random) -> tuple[str, str, dict]:
        """(method, url, httpx keyword arguments) of one request of ``kind``."""
        if kind == "theme":
            return "POST", "/api/search/theme", {"json": {"notes": rng.choice(self.themes), "top": 10}}
        if kind == "audio_range":
            rec = rng.choice(self.recordings)
            size = self.sizes[rec["id"]]
            start = rng.randrange(0, max(1, size - 262_144))
            headers = {"Range": f"bytes={start}-{min(size, start + 262_144) - 1}"}
            return "GET", f"/api/recordings/{rec['id']}/audio", {"headers": headers}
        if kind == "recordings":
            return "GET", "/api/recordings", {}
        if kind == "stats":
            return "GET", "/api/stats", {}
        if kind == "align":
            a, b = self.pair
            return "GET", "/api/align", {"params": {"a": a, "b": b, "t": round(rng.uniform(0, 60), 2)}}
        if kind == "chromagram":
            rid, s = rng.choice(self.spans)
            return "GET", f"/api/recordings/{rid}/chromagram.png", {"params": {"start": s, "end": s + 5}}
        if kind == "audio_search":
            files = {"file": ("excerpt.wav", self.excerpt, "audio/wav")}
            return "POST", "/api/search/audio", {"files": files, "data": {"top": "5"}}
        raise ValueError(kind)


async def client_loop(http, plan: Plan, kinds, weights, *, deadline: float, max_requests: int, seed: int, out):
    rng = random.Random(seed)
    for _ in range(max_requests):
        if time.perf_counter() >= deadline:
            break
        kind = rng.choices(kinds, weights)[0]
        method, url, kwargs = plan.request(kind, rng)
        t0 = time.perf_counter()
        try:
            r = await http.request(method, url, **kwargs)
            ok = 200 <= r.status_code < 300
            status = r.status_code
            await r.aclose()
        except Exception as exc:  # a failed request is recorded, the client goes on
            ok, status = False, type(exc).__name__
        out.append((kind, time.perf_counter() - t0, ok, status))


async def run_load(base: str, plan: Plan, *, clients: int, seconds: float, max_requests: int) -> list[tuple]:
    import httpx

    mix = {k: w for k, w in MIX.items() if k != "align" or plan.pair is not None}
    kinds, weights = list(mix), list(mix.values())
    out: list[tuple] = []
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(base_url=base, timeout=60.0, limits=limits) as http:
        deadline = time.perf_counter() + seconds
        tasks = [
            client_loop(http, plan, kinds, weights, deadline=deadline, max_requests=max_requests, seed=i, out=out)
            for i in range(clients)
        ]
        await asyncio.gather(*tasks)
    return out


def summarise(samples: list[tuple], wall: float) -> tuple[list[dict], dict]:
    rows = []
    for kind in [*MIX, "all"]:
        sel = [s for s in samples if kind == "all" or s[0] == kind]
        if not sel:
            continue
        lat = np.array([s[1] for s in sel]) * 1000.0
        rows.append(
            {
                "kind": kind,
                "requests": len(sel),
                "errors": sum(1 for s in sel if not s[2]),
                "rps": round(len(sel) / wall, 2),
                "p50_ms": round(float(np.percentile(lat, 50)), 1),
                "p95_ms": round(float(np.percentile(lat, 95)), 1),
                "p99_ms": round(float(np.percentile(lat, 99)), 1),
                "max_ms": round(float(lat.max()), 1),
            }
        )
    errors = {}
    for s in samples:
        if not s[2]:
            errors[str(s[3])] = errors.get(str(s[3]), 0) + 1
    return rows, errors


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def update_docs(section: str) -> None:
    """Replace the body of ``## Server load`` in docs/benchmarks.md (other sections untouched)."""
    heading = "## Server load"
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    if heading not in text:
        text = text.rstrip("\n") + f"\n\n{heading}\n"
    head, rest = text.split(heading, 1)
    nxt = rest.find("\n## ")
    tail = rest[nxt:] if nxt >= 0 else ""
    DOCS.write_text(f"{head}{heading}\n\n{section.strip()}\n{tail}")


def docs_section(payload: dict, rows: list[dict]) -> str:
    cfg = payload["config"]
    coll = payload["collection"]
    lines = [
        f"`python benchmarks/bench_server.py --collection {cfg['collection']} --clients {cfg['clients']} "
        f"--seconds {cfg['seconds']:g} --workers {cfg['workers']}"
        + (f" --pair {' '.join(cfg['pair'])}" if cfg["pair"] else "")
        + "` (raw numbers: `benchmarks/results/server_load.json`).",
        "",
        f"`mirsearch serve` (uvicorn, one process, {cfg['workers']} search worker threads) on 127.0.0.1 with a "
        f"collection of {coll['recordings']} recordings ({coll['hours']:.2f} h, chroma at 10 Hz); "
        f"{cfg['clients']} concurrent clients (asyncio + httpx, same machine) for {cfg['seconds']:g} s, each "
        "looping over a request mix (weights in the script's docstring). Warm server: one request of each kind "
        "before the run (numba kernels, feature cache, the pair's time map).",
        "",
        "| request | n | errors | req/s | p50 ms | p95 ms | p99 ms | max ms | 1 client p50 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        name = "**all**" if r["kind"] == "all" else r["kind"]
        one = "" if r.get("one_client_p50_ms") is None else r["one_client_p50_ms"]
        lines.append(
            f"| {name} | {r['requests']} | {r['errors']} | {r['rps']} | {r['p50_ms']} | {r['p95_ms']} | "
            f"{r['p99_ms']} | {r['max_ms']} | {one} |"
        )
    total = rows[-1]
    warm = payload["warmup_s"]
    lines += [
        "",
        f"{total['requests']} requests, {total['errors']} errors, {total['rps']} requests/s overall; server RSS "
        f"{payload['server_rss_mb']} MB after the run; machine load average {payload['loadavg_before'][0]} before "
        f"and {payload['loadavg_after'][0]} after (other jobs shared the 2 cores). The last column is the median "
        "of 5 sequential requests by one client before the run. Warm-up (first request of each kind): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in warm.items())
        + ". "
        "Theme searches queue behind each other in the worker pool (2 threads on 2 cores), so their latency "
        "grows with the number of clients; streaming, listing and cached time maps stay fast because they "
        "do not wait for a search. Missing: a larger collection (hours of audio), several server processes, "
        "clients on another machine.",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--collection", required=True, type=Path)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-requests", type=int, default=5000, help="per client (bounds the loop)")
    ap.add_argument("--pair", nargs=2, metavar=("A", "B"), help="file names of two versions for time-map requests")
    ap.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    args = ap.parse_args()
    import httpx

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "mirsearch.cli.main",
        "serve",
        "--collection",
        str(args.collection),
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(base + "/api/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"server did not start: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.2)
        recordings = httpx.get(base + "/api/recordings").json()["recordings"]
        recordings = with_files(recordings, args.collection)  # the API shows relative paths
        pair = None
        if args.pair:
            by_name = {r["name"]: r["id"] for r in recordings}
            missing = [n for n in args.pair if n not in by_name]
            if missing:
                raise SystemExit(f"--pair: not in the collection: {missing}")
            pair = (by_name[args.pair[0]], by_name[args.pair[1]])
        plan = Plan(recordings, pair)
        warm = {}
        rng = random.Random(1)
        for kind in MIX:
            if kind == "align" and pair is None:
                continue
            method, url, kwargs = plan.request(kind, rng)
            t0 = time.perf_counter()
            r = httpx.request(method, base + url, timeout=600.0, **kwargs)
            warm[kind] = round(time.perf_counter() - t0, 3)
            if r.status_code >= 300:
                raise SystemExit(f"warm-up {kind}: {r.status_code} {r.text[:200]}")
        baseline = {}  # one client, sequential: the latency without queueing
        for kind in warm:
            times = []
            for _ in range(5):
                method, url, kwargs = plan.request(kind, rng)
                t1 = time.perf_counter()
                httpx.request(method, base + url, timeout=600.0, **kwargs).raise_for_status()
                times.append(time.perf_counter() - t1)
            baseline[kind] = round(float(np.median(times)) * 1000.0, 1)
        stats = httpx.get(base + "/api/stats").json()
        load_before = [round(x, 2) for x in os.getloadavg()]
        t0 = time.perf_counter()
        samples = asyncio.run(
            run_load(base, plan, clients=args.clients, seconds=args.seconds, max_requests=args.max_requests)
        )
        wall = time.perf_counter() - t0
        load_after = [round(x, 2) for x in os.getloadavg()]
        rss = rss_mb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    rows, errors = summarise(samples, wall)
    for r in rows:
        r["one_client_p50_ms"] = baseline.get(r["kind"])
    columns = ["kind", "requests", "errors", "rps", "p50_ms", "p95_ms", "p99_ms", "max_ms", "one_client_p50_ms"]
    print_table(rows, columns)
    print(f"load average before/after: {load_before} / {load_after}")
    payload = {
        "config": {
            "collection": str(args.collection),
            "clients": args.clients,
            "seconds": args.seconds,
            "workers": args.workers,
            "max_requests": args.max_requests,
            "pair": list(args.pair) if args.pair else None,
            "mix": MIX,
        },
        "collection": {"recordings": stats["recordings"], "hours": stats["hours"]},
        "wall_s": round(wall, 2),
        "warmup_s": warm,
        "one_client_p50_ms": baseline,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "server_rss_mb": rss,
        "errors_by_status": errors,
        "rows": rows,
    }
    path = write_results("server_load", payload)
    print(f"wrote {path}")
    if errors:
        print(f"errors: {errors}")
    if not args.no_docs:
        update_docs(docs_section(payload, rows))
        print(f"updated {DOCS.relative_to(ROOT)} (## Server load)")
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
