"""Audit of the server's budgets: every kind of request the API accepts, small but hostile, answers in time.

The routes come from the app's own OpenAPI schema, so a new endpoint is audited too (with a request built
from its parameters when no hostile case below names it). The budgets are scaled down (1.5 s per request, per
upload reader) so that the expensive cases really overrun them on a small collection: each answer must come
within its budget plus a little slack, never as a server error, and a worker that overran must be killed
(its process gone) and replaced. Alignments are jobs: ``/api/align`` answers at once. With ``serve --dask``
a search on the cluster obeys the same budget (its futures are cancelled).
"""

from __future__ import annotations

import asyncio
import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from fuzz_corpus import make_corpus
from mirsearch.server import create_app
from mirsearch.server.state import MIN_TASK_SECONDS, request_started
from server_support import process_alive

#: scaled-down budgets of the audit (s): a search, an upload's reader
SECONDS = 1.5
#: seconds an answer may come after its budgets ran out (the kill, the reply, a loaded machine)
SLACK = 4.0
#: statuses a hostile request may get (never 500)
ALLOWED = {200, 202, 206, 400, 401, 403, 404, 409, 413, 416, 422, 501, 503, 504}


def _chords(seconds: float, root: int, sr: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(root)
    steps = rng.integers(0, 12, size=int(seconds) + 1)[(t).astype(int)]
    f = 440 * 2 ** ((root + steps - 69) / 12)
    y = 0.2 * (np.sin(2 * np.pi * np.cumsum(f) / sr) + 0.5 * np.sin(2 * np.pi * np.cumsum(1.26 * f) / sr))
    return (y * (0.6 + 0.4 * (np.mod(t, 0.5) < 0.3))).astype(np.float32)


def _wav(y: np.ndarray, sr: int = 8000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from mirsearch.collection import Collection

    folder = tmp_path_factory.mktemp("audit")
    files = []
    for i in range(4):
        path = folder / f"rec{i}.wav"
        sf.write(path, _chords(40.0, 55 + i), 8000)
        files.append(path)
    with Collection.create(folder / "c.mirs", features=["chroma"]) as coll:
        report = coll.add(files, jobs=1)
    assert len(report.added) == 4
    cases = make_corpus(folder / "fuzz", seed=7, n_mutations=0)
    return folder / "c.mirs", {c.name: c for c in cases}


def _hostile_cases(scores: dict, ids: list[int]) -> dict[tuple[str, str], list]:
    """(method, route) -> requests (keyword arguments of ``TestClient.request`` plus ``url``), each under 1 MB."""
    a, b = ids[0], ids[1]
    notes = " ".join("CDEFGFED"[i % 8] + ("/16" if i % 3 else "") for i in range(400))
    theme = {"notes": notes, "cascade": "exhaustive", "features": "chroma", "tempo": 10, "top": 1000,
             "per_recording": 100, "show_all": True, "tempo_factors": [0.5 + 0.05 * i for i in range(32)]}  # fmt: skip
    excerpt = _wav(_chords(30.0, 57))  # 480 kB
    long_wav = _wav(_chords(60.0, 58))  # 960 kB
    names = ("many-notes.musicxml", "kern-huge-rational.krn", "bomb.mxl", "deep.musicxml", "huge-delta.mid",
             "entities.musicxml")  # fmt: skip
    score = {n: Path(scores[n].path).read_bytes() for n in names}
    assert all(len(v) < 1_000_000 for v in score.values())

    def upload(name, data, **form):
        return {"files": {"file": (name, data)}, "data": form}

    rid = "/api/recordings/{recording_id}"
    return {
        ("GET", f"{rid}"): [{"url": f"/api/recordings/{2**62}"}, {"url": f"/api/recordings/{a}"}],
        ("GET", f"{rid}/audio"): [{"url": f"/api/recordings/{a}/audio",
                                   "headers": {"range": "bytes=" + ",".join(f"{i}-{i}" for i in range(2000))}}],
        ("POST", "/api/search/theme"): [{"json": theme}, {"json": {"notes": "C# " * 666, "top": 1000}}],
        ("POST", "/api/search/theme-file"): [upload(n, d) for n, d in score.items()],
        ("POST", "/api/search/audio"): [upload("x.wav", excerpt, method="sdtw", features="matching", top="1000"),
                                        upload("y.wav", excerpt, top="1000")],
        ("POST", "/api/versions"): [upload("long.wav", long_wav, shingle="2", top="1000")],
        ("GET", f"{rid}/versions"): [{"url": f"/api/recordings/{a}/versions", "params": {"shingle": 2, "top": 1000}}],
        ("GET", f"{rid}/segments"): [{"url": f"/api/recordings/{a}/segments", "params": {"min_segment": 0}}],
        ("POST", "/api/segment"): [upload("long.wav", long_wav)],
        ("GET", f"{rid}/chromagram.png"): [{"url": f"/api/recordings/{a}/chromagram.png",
                                            "params": {"start": 0, "end": 1e6, "context": 3600, "width": 2400,
                                                       "notes": notes[:900], "transposition": 5}}],
        ("GET", "/api/queries/{query_id}/curve.png"): [{"url": "/api/queries/deadbeef/curve.png",
                                                       "params": {"recording_id": a, "width": 2400}}],
        ("GET", "/api/align"): [{"url": "/api/align", "params": {"a": a, "b": b, "wait": 5}},
                                {"url": "/api/align", "params": {"a": b, "b": a, "t": 1e6}}],
        ("GET", "/api/align/jobs/{job}"): [{"url": "/api/align/jobs/" + "f" * 64}],
        ("POST", "/api/index"): [{"json": {"sources": list(range(1000))}}],
        ("GET", "/api/tags/{tag}/recordings"): [{"url": "/api/tags/" + "x" * 200 + "/recordings",
                                                 "params": {"top": 1000}}],
        ("GET", f"{rid}/tags"): [{"url": f"/api/recordings/{a}/tags"}],
        ("GET", f"{rid}/similar"): [{"url": f"/api/recordings/{a}/similar", "params": {"top": 1000}}],
    }  # fmt: skip


def _from_schema(method: str, path: str, op: dict, rec: int) -> dict:
    """A request for a route without a hostile case: every parameter at its largest allowed value."""
    url, params = path, {}
    for p in op.get("parameters", []):
        schema = p.get("schema", {})
        kinds = {s.get("type") for s in schema.get("anyOf", [schema])}
        value = schema.get("maximum", rec) if kinds & {"integer", "number"} else "C D E F G " * 20
        if "boolean" in kinds:
            value = True
        if p["in"] == "path":
            url = url.replace("{" + p["name"] + "}", str(rec if kinds & {"integer", "number"} else "x"))
        else:
            params[p["name"]] = value
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        return {"url": url, "params": params, "json": {"notes": "C D E F G " * 100, "top": 1000}}
    if content:
        return {"url": url, "params": params, "files": {"file": ("x.wav", _wav(_chords(20.0, 60)))}}
    return {"url": url, "params": params}


def _descendants(pid: int | None = None) -> set[int]:
    """Live processes under this one (its workers, their forkserver, upload readers)."""
    out: set[int] = set()
    for task in Path(f"/proc/{pid or os.getpid()}/task").glob("*/children"):
        for child in map(int, task.read_text().split()):
            if process_alive(child):
                out |= {child} | _descendants(child)
    return out


def test_every_route_answers_within_its_budget(setup):
    root, scores = setup
    app = create_app(root, workers=1, request_seconds=SECONDS, parse_seconds=SECONDS, align_seconds=30,
                     task_memory_mb=400, parse_memory_mb=400)  # fmt: skip
    server = app.state.server
    workers = (server.tasks, server.slow.processes)
    rows, stopped = [], []
    with TestClient(app, base_url="http://localhost") as client:
        ids = [r["id"] for r in client.get("/api/recordings").json()["recordings"]]
        cases = _hostile_cases(scores, ids)
        paths = client.get("/api/openapi.json").json()["paths"]
        routes = [(m.upper(), p, op) for p, ops in paths.items() for m, op in ops.items()]
        assert len(routes) >= 20 and not set(cases) - {(m, p) for m, p, _ in routes}  # every case is a route
        for method, path, op in routes:
            for request in cases.get((method, path)) or [_from_schema(method, path, op, ids[0])]:
                for w in workers:
                    w.start(wait=True)  # a replaced worker warms up outside any budget
                before = [p for w in workers for p in w.pids()]
                processes = _descendants()
                upload = "files" in request
                t0 = time.monotonic()
                r = client.request(method, **{"url": path, **request})
                seconds = time.monotonic() - t0
                rows.append((method, path, r.status_code, round(seconds, 2), r.text[:100]))
                assert r.status_code in ALLOWED, rows[-1]
                assert seconds < SECONDS + MIN_TASK_SECONDS * upload + SLACK, rows[-1]  # reading counts too
                new = _descendants() - processes - {p for w in (*workers, server.aligner) for p in w.pids()}
                assert not new, f"processes left behind: {new} {rows[-1]}"  # readers end with their request
                if r.status_code == 504:
                    stopped.append(rows[-1])
                    gone = [p for p in before if not process_alive(p)]  # a worker killed, or the upload's reader
                    assert gone or "reading the file" in r.text, f"over its budget, its worker not killed: {rows[-1]}"
        job = client.get("/api/align", params={"a": ids[0], "b": ids[1]})
        assert job.status_code in (200, 202, 400), job.text
    print("\n".join(map(str, rows)))
    assert stopped, "no case overran its budget: the audit proves nothing about stopping"
    assert {p for _, p, *_ in stopped} & {"/api/search/theme", "/api/search/audio", "/api/versions"}, stopped


def test_alignment_requests_answer_at_once_and_the_job_keeps_its_budget(setup):
    root, _ = setup
    app = create_app(root, workers=1, request_seconds=SECONDS, align_seconds=0.5, task_memory_mb=400)
    server = app.state.server
    with TestClient(app, base_url="http://localhost") as client:
        a, b = [r["id"] for r in client.get("/api/recordings").json()["recordings"]][2:4]
        t0 = time.monotonic()
        r = client.get("/api/align", params={"a": a, "b": b})
        assert r.status_code == 202 and time.monotonic() - t0 < 2.0, r.text
        job = r.json()
        assert set(job) >= {"job", "state", "fraction", "elapsed", "estimate_seconds", "status_url", "result_url"}
        again = client.get("/api/align", params={"a": b, "b": a}).json()  # the same pair: the same job
        assert again["job"] == job["job"]
        deadline = time.monotonic() + 60
        while (status := client.get(job["status_url"]).json())["state"] in ("queued", "running"):
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        # 0.5 s cannot decode and align two 40-s files (with the worker's start): stopped, and said so
        assert status["state"] == "failed" and "time budget" in status["error"], status
        r = client.get("/api/align", params={"a": a, "b": b})
        assert r.status_code == 504 and "time budget" in r.json()["error"]  # not tried again at once
        assert server.tasks.pids() == [] or all(process_alive(p) for p in server.tasks.pids())  # no search worker used


def test_alignment_jobs_are_shared_per_pair_and_started_again_when_their_map_is_gone():
    from types import SimpleNamespace

    from mirsearch.server import jobs

    calls = []

    class Maps:
        def time_map_for(self, rec_a, rec_b, *, compute):
            calls.append((rec_a.id, rec_b.id, compute))
            time.sleep(0.2)

    align_jobs = jobs.AlignJobs(Maps(), max_pending=4)
    a = SimpleNamespace(id=1, sha1="aa", duration=60.0)
    b = SimpleNamespace(id=2, sha1="bb", duration=120.0)
    try:
        first = align_jobs.start(a, b)
        assert align_jobs.start(b, a) is first and align_jobs.get(first.id) is first  # either order: one job
        assert first.done_event.wait(10) and first.state == "done" and calls == [(1, 2, True)]
        assert first.to_dict()["fraction"] == 1.0 and first.estimate == pytest.approx(jobs.align_estimate(60, 120))
        assert align_jobs.start(a, b) is first  # done just now: the request reads the cached map
        first.finished -= jobs.DONE_SECONDS + 1  # long ago, and the map is not cached any more
        again = align_jobs.start(a, b)
        assert again is not first and again.done_event.wait(10) and len(calls) == 2
    finally:
        align_jobs.close()


def sleepy(coll, seconds: float) -> str:
    """A call that holds its worker (as a numba kernel would)."""
    time.sleep(seconds)
    return "woke"


def test_a_search_after_a_slow_upload_gets_what_is_left_of_the_request(setup):
    from mirsearch.server.sandbox import OverBudget

    root, _ = setup
    app = create_app(root, workers=1, request_seconds=3.0, task_memory_mb=300)
    server = app.state.server

    async def scenario():
        request_started()
        await asyncio.sleep(2.0)  # reading the upload took 2 s of the request's 3
        t0 = time.monotonic()
        with pytest.raises(OverBudget, match="reading the upload included"):
            await server.task(sleepy, 30)
        stopped = time.monotonic() - t0
        request_started()  # a new request: its whole budget
        return stopped, await server.task(sleepy, 2.0)

    try:
        server.tasks.start(wait=True)
        stopped, answer = asyncio.run(scenario())
        assert stopped < 2.0 and answer == "woke"  # 1 s left, not 3
    finally:
        server.close()


def slow_on_cluster(coll, seconds: float, settings: dict) -> str:
    """A call whose work runs on the cluster and takes ``seconds`` there (a sharded search that is too slow;
    ``settings``: those of an exhaustive theme search, which the server sends to the cluster)."""
    from mirsearch.cluster import connect
    from mirsearch.cluster.search import gather_within_budget

    client = connect(SPEC)
    gather_within_budget(client, [client.submit(time.sleep, seconds, pure=False)])
    return "done"


slow_on_cluster.fans_out = True
SPEC = "local:1"
EXHAUSTIVE = {"cascade": "exhaustive", "features": "chroma"}
#: the budget of the Dask test (s): a theme search on a warm cluster takes well under it
DASK_SECONDS = 3.0


def _sleeping(dask_scheduler) -> int:
    return sum(str(key).startswith("sleep") for key in dask_scheduler.tasks)


def test_serve_dask_cancels_cluster_work_past_the_budget(setup):
    from mirsearch.cluster import connect
    from mirsearch.server.sandbox import OverBudget

    root, _ = setup
    from mirsearch.server.routers.search import _theme_from_text

    app = create_app(root, workers=1, request_seconds=DASK_SECONDS, dask=SPEC)
    server = app.state.server
    with TestClient(app, base_url="http://localhost") as c:
        _theme_from_text(server.coll, "G A B C D", {"top": 2})  # shards scattered, kernels loaded: no budget
        assert asyncio.run(server.task(slow_on_cluster, 0.1, EXHAUSTIVE)) == "done"
        t0 = time.monotonic()
        with pytest.raises(OverBudget, match="cluster tasks were cancelled"):
            asyncio.run(server.task(slow_on_cluster, DASK_SECONDS + 2, EXHAUSTIVE))
        assert time.monotonic() - t0 < DASK_SECONDS + 2
        client = connect(SPEC)
        deadline = time.monotonic() + 10
        while client.run_on_scheduler(_sleeping):  # the cancelled task is released (the shards stay)
            assert time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(2)  # a task that had started runs to its end on its Dask worker (threads are not interrupted)
        r = c.post("/api/search/theme", json={"notes": "G A B C D", "top": 2})  # the API still answers
        assert r.status_code == 200, r.text
        assert r.json()["query"]["dask"] == SPEC
        # a cascade is not sharded: it runs in a search worker process (killable), not in a server thread
        assert server.tasks.pids() == []
        r = c.post("/api/search/theme", json={"notes": "G A B C D", "top": 2, "cascade": "coarse"})
        assert r.status_code == 200, r.text
        assert r.json()["query"]["dask"] is None and len(server.tasks.pids()) == 1
