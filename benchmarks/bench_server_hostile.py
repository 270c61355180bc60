"""The HTTP server under hostile requests: do /api/health and ordinary searches stay fast?

    python benchmarks/bench_server_hostile.py --collection data/bench/collections/learned-test.mirs \\
        --corpus data/fuzz/corpus [--seconds 20]

Starts ``mirsearch serve`` on a free 127.0.0.1 port, measures a probe (``GET /api/health`` and a theme search
with the defaults) alone, then again while attackers run for ``--seconds``: two clients uploading slow scores
in a loop (``many-notes.musicxml``, ``kern-huge-rational.krn`` of the fuzz corpus), one 12.9 MB JSON body,
one 8-channel 192 kHz FLAC of 300 s (``8ch-192k-300s.flac``, made by ``benchmarks/fuzz.py --heavy``). Records
each request's status and time, the probe's latencies and the server's peak resident memory (its own, and
the largest reader child's). Writes ``benchmarks/results/server_hostile.json``.

With ``--expensive DIR`` it then sends, one at a time, the most expensive requests under 1 MB we could
construct (``DIR`` holds ``excerpt-60s.opus`` and ``versions-1100s.opus``; the collection should hold long
recordings): a 400-note theme at 10 bpm with 16 tempo factors, exhaustive, top 1000; a 60 s excerpt with
subsequence DTW on the matching chroma (computed from every recording's audio); a 1100 s upload (973 kB)
for versions with 2 s shingles; the versions of the longest recording; the alignment of the two longest (a
background job: the first answer is 202 at once, the job is polled every second until it ends).
For each: the answer's status and time, the largest growth of one server process's resident memory while it
ran, and a probe (health, an ordinary theme search) sent while it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THEME = {"notes": "G G G Eb F F F D", "top": 10}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        out += [int(x) for x in task.read_text().split()]
    return out + [g for c in out for g in children(c)]


async def watch_memory(pid: int, stop: asyncio.Event, peak: dict) -> None:
    while not stop.is_set():
        peak["server_mb"] = max(peak["server_mb"], rss_mb(pid))
        peak["child_mb"] = max([peak["child_mb"], *(rss_mb(c) for c in children(pid))])
        await asyncio.sleep(0.1)


async def probe(client, stop: asyncio.Event | None, rounds: int = 5) -> dict:
    """Health and theme-search latencies (s): ``rounds`` of each, or until ``stop``."""
    out = {"health": [], "theme": [], "errors": 0}
    n = 0
    while (stop is None and n < rounds) or (stop is not None and not stop.is_set()):
        for kind, call in (("health", lambda: client.get("/api/health")),
                           ("theme", lambda: client.post("/api/search/theme", json=THEME))):  # fmt: skip
            t0 = time.perf_counter()
            r = await call()
            out[kind].append(time.perf_counter() - t0)
            out["errors"] += r.status_code != 200
        n += 1
        await asyncio.sleep(0.3)
    return out


async def attack(client, name: str, request, stop: asyncio.Event, log: list, loop: bool) -> None:
    while True:
        t0 = time.perf_counter()
        try:
            r = await request()
            status, text = r.status_code, r.text[:160]
        except Exception as exc:  # a dropped connection counts too
            status, text = 0, type(exc).__name__
        log.append({"attack": name, "status": status, "seconds": round(time.perf_counter() - t0, 3), "answer": text})
        if not loop or stop.is_set():
            return


def summary(lat: dict) -> dict:
    return {k: {"median_ms": round(1000 * statistics.median(v), 1), "max_ms": round(1000 * max(v), 1), "n": len(v)}
            for k, v in lat.items() if k != "errors" and v} | {"errors": lat["errors"]}  # fmt: skip


async def scenario(url: str, corpus: Path, seconds: float, pid: int) -> dict:
    import httpx

    scores, audio = corpus / "scores", corpus / "audio"
    uploads = [(scores / n).read_bytes() for n in ("many-notes.musicxml", "kern-huge-rational.krn")]
    names = ["many-notes.musicxml", "kern-huge-rational.krn"]
    flac = (audio / "8ch-192k-300s.flac").read_bytes()
    big_json = b'{"notes": "' + b"C " * 6_450_000 + b'"}'  # 12.9 MB
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        await asyncio.gather(*(client.post("/api/search/theme", json=THEME) for _ in range(2)))  # both workers warm
        alone = await probe(client, None)
        stop, log, peak = asyncio.Event(), [], {"server_mb": rss_mb(pid), "child_mb": 0.0}
        tasks = [asyncio.create_task(watch_memory(pid, stop, peak))]
        for data, name in zip(uploads, names, strict=True):

            def upload(d=data, n=name):
                return client.post("/api/search/theme-file", files={"file": (n, d)})

            tasks.append(asyncio.create_task(attack(client, name, upload, stop, log, loop=True)))
        tasks.append(asyncio.create_task(attack(
            client, "12.9 MB JSON", lambda: client.post("/api/search/theme", content=big_json,
                                                        headers={"content-type": "application/json"}),
            stop, log, loop=False)))  # fmt: skip
        tasks.append(asyncio.create_task(attack(
            client, "8ch-192k-300s.flac",
            lambda: client.post("/api/search/audio", files={"file": ("8ch-192k-300s.flac", flac)}), stop, log,
            loop=False)))  # fmt: skip
        probe_task = asyncio.create_task(probe(client, stop))
        await asyncio.sleep(seconds)
        stop.set()
        under_attack = await probe_task
        await asyncio.gather(*tasks)
    return {"alone": summary(alone), "under_attack": summary(under_attack), "attacks": log, "peak": peak}


def tree(pid: int) -> dict[int, float]:
    """Resident memory (MB) of the server and each of its descendants."""
    return {p: rss_mb(p) for p in [pid, *children(pid)]}


async def measured(client, name: str, request, pid: int) -> dict:
    """One expensive request with a concurrent probe; the largest growth of one process's memory while it ran."""
    before = tree(pid)
    existing = set(before)
    peak: dict[int, float] = dict(before)
    stop = asyncio.Event()

    async def watch():
        while not stop.is_set():
            for p, mb in tree(pid).items():
                before.setdefault(p, mb)  # a new process: from its first sample (what it inherited at the fork)
                peak[p] = max(peak.get(p, 0.0), mb)
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    t0 = time.perf_counter()
    probe_task = asyncio.create_task(probe(client, None, rounds=2))
    try:
        r = await request()
        status, text = r.status_code, r.text[:200]
    except Exception as exc:  # noqa: BLE001 - a dropped connection counts too
        status, text = 0, type(exc).__name__
    seconds = time.perf_counter() - t0
    stop.set()
    await watcher
    side = await probe_task
    growth = {p: peak[p] - before.get(p, 0.0) for p in peak}
    worst = max(growth, key=growth.get)
    return {"request": name, "status": status, "seconds": round(seconds, 2), "answer": text,
            "max_growth_mb": round(growth[worst], 1), "new_process": worst not in existing,
            "server_mb_before": round(sum(before[p] for p in existing), 1), "probe": summary(side)}  # fmt: skip


async def align_job(client, params: dict, out: dict):
    """``/api/align`` as the page calls it: the first answer (202 and a job, at once), then the job polled every
    second until it ends, then the map; ``out`` gets each request's status and time (the longest one held)."""
    t0 = time.perf_counter()
    r = await client.get("/api/align", params=params)
    out.update(first_status=r.status_code, first_seconds=round(time.perf_counter() - t0, 3), polls=0,
               longest_request_seconds=round(time.perf_counter() - t0, 3))  # fmt: skip
    while r.status_code == 202:
        await asyncio.sleep(1.0)
        t1 = time.perf_counter()
        status = (await client.get(r.json()["status_url"])).json()
        if status["state"] in ("done", "failed"):
            r = await client.get("/api/align", params=params)
        out["polls"] += 1
        out["longest_request_seconds"] = max(out["longest_request_seconds"], round(time.perf_counter() - t1, 3))
        out["job"] = {k: status[k] for k in ("state", "elapsed", "estimate_seconds", "error")}
    return r


async def expensive(url: str, folder: Path, pid: int) -> list[dict]:
    import httpx

    excerpt = (folder / "excerpt-60s.opus").read_bytes()
    upload = (folder / "versions-1100s.opus").read_bytes()
    notes = " ".join("CDEFGFED"[i % 8] + ("/16" if i % 3 else "") for i in range(400))  # up and down: in range
    theme = {"notes": notes, "cascade": "exhaustive", "features": "chroma", "tempo": 10, "top": 1000,
             "per_recording": 100, "show_all": True, "tempo_factors": [0.5 + 0.1 * i for i in range(16)]}  # fmt: skip
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        await asyncio.gather(*(client.post("/api/search/theme", json=THEME) for _ in range(2)))  # warm-up
        job: dict = {}
        recs = sorted((await client.get("/api/recordings")).json()["recordings"], key=lambda r: -r["duration"])
        longest, second = recs[0]["id"], recs[1]["id"]
        cases = [
            (f"theme: 400 notes, {len(json.dumps(theme))} B JSON",
             lambda: client.post("/api/search/theme", json=theme)),
            ("passages: 60 s excerpt, sdtw, matching chroma", lambda: client.post(
                "/api/search/audio", files={"file": ("excerpt-60s.opus", excerpt)},
                data={"method": "sdtw", "features": "matching", "top": "1000"})),
            (f"versions: 1100 s upload ({len(upload)} B), 2 s shingles", lambda: client.post(
                "/api/versions", files={"file": ("versions-1100s.opus", upload)},
                data={"shingle": "2", "top": "1000"})),
            (f"versions of the longest recording ({recs[0]['duration']:.0f} s), 2 s shingles",
             lambda: client.get(f"/api/recordings/{longest}/versions", params={"shingle": 2, "top": 1000})),
            (f"align the two longest ({recs[0]['duration']:.0f} s, {recs[1]['duration']:.0f} s)",
             lambda: align_job(client, {"a": longest, "b": second}, job)),
        ]  # fmt: skip
        rows = []
        for name, request in cases:
            job.clear()
            rows.append(await measured(client, name, request, pid) | job)
            print(json.dumps(rows[-1]), flush=True)
            await asyncio.sleep(8.0)  # a replaced worker warms up
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--collection", required=True)
    ap.add_argument("--corpus", default=str(ROOT / "data" / "fuzz" / "corpus"))
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "server_hostile.json"))
    ap.add_argument("--expensive", metavar="DIR", help="then the expensive small requests (files in DIR)")
    ap.add_argument("--skip-hostile", action="store_true", help="only the expensive requests")
    args = ap.parse_args(argv)
    port = free_port()
    cmd = [sys.executable, "-m", "mirsearch", "serve", "-c", args.collection, "--port", str(port), "--log-level",
           "warning"]  # fmt: skip
    server = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        result = {} if args.skip_hostile else asyncio.run(scenario(url, Path(args.corpus), args.seconds, server.pid))
        if args.expensive:
            result["expensive"] = asyncio.run(expensive(url, Path(args.expensive), server.pid))
    finally:
        server.terminate()
        server.wait(30)
    from mirsearch._util import atomic_write_text

    result["machine"] = {"cpus": os.cpu_count(), "load_1min": os.getloadavg()[0]}
    result["command"] = " ".join(sys.argv)
    atomic_write_text(args.out, json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("alone", "under_attack", "peak") if k in result}, indent=1))
    counts: dict = {}
    for row in result.get("attacks", []):
        key = (row["attack"], row["status"])
        counts.setdefault(key, []).append(row["seconds"])
    for (name, status), secs in sorted(counts.items()):
        print(f"{name:24s} HTTP {status}: {len(secs)} x, max {max(secs):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
