"""HTTP API on a small real collection: search, streaming with ranges, time maps, figures, limits, safety."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from mirsearch.collection import Collection
from mirsearch.scores import save_midi
from mirsearch.server import create_app
from mirsearch.service.core import param_specs
from mirsearch.service.theme import ThemeRequest
from server_support import server_collection

from conftest import theme_of

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def root(tmp_path_factory, renderings) -> Path:
    return server_collection(tmp_path_factory, renderings)


#: every match, confident or not (the theme task's confidence threshold is tested elsewhere)
SHOW_ALL = {"show_all": True} if "show_all" in {s.name for s in param_specs(ThemeRequest)} else {}
#: the Host the tests send (any loopback name is accepted; other hosts are refused)
LOCAL = "http://localhost"


@pytest.fixture(scope="module")
def client(root):
    app = create_app(root, max_upload_mb=5, max_query_seconds=30, request_seconds=60)  # budgets: test_budgets.py
    with TestClient(app, base_url=LOCAL) as c:
        yield c


@pytest.fixture(scope="module")
def ids(client, renderings) -> dict[str, int]:
    recs = client.get("/api/recordings").json()["recordings"]
    by_path = {r["path"]: r["id"] for r in recs}
    return {k: by_path[renderings[k].path.name] for k in ("a", "a_slow", "b")}  # relative to the audio folder


def _error(response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    return body["error"]


def _wav_bytes(y: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y.astype(np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ reading


def test_recordings_stats_and_openapi(client, renderings, ids):
    recs = client.get("/api/recordings").json()["recordings"]
    assert len(recs) == 3
    a = next(r for r in recs if r["id"] == ids["a"])
    assert a["name"] == renderings["a"].path.name and a["format"] == "flac"
    assert abs(a["duration"] - sf.info(str(renderings["a"].path)).duration) < 0.01
    assert client.get(f"/api/recordings/{ids['b']}").json()["name"] == renderings["b"].path.name
    stats = client.get("/api/stats").json()
    assert stats["recordings"] == 3 and stats["features"]["chroma"]["recordings"] == 3
    assert stats["server"]["max_upload_mb"] == 5 and stats["server"]["max_query_seconds"] == 30
    paths = client.get("/api/openapi.json").json()["paths"]
    for p in (
        "/api/search/theme",
        "/api/search/audio",
        "/api/versions",
        "/api/align",
        "/api/recordings/{recording_id}/audio",
    ):
        assert p in paths
    page = client.get("/")
    assert page.status_code == 200 and "mirsearch" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200


# ------------------------------------------------------------------------------------------ search


def test_theme_search_ranks_the_right_recording_first(client, renderings, ids):
    theme, (t0, t1) = theme_of(renderings["b"], 0, 8)
    r = client.post("/api/search/theme", json={"notes": theme.to_string(), "top": 5, **SHOW_ALL})
    assert r.status_code == 200, r.text
    best = r.json()["matches"][0]
    assert best["recording_id"] == ids["b"] and best["transposition"] == 0
    assert abs(best["start"] - t0) < 0.6 and abs(best["end"] - t1) < 0.6
    assert best["name"] == renderings["b"].path.name and best["duration"] > best["end"]
    # three semitones up: found at shift 9; and not at all when transpositions are off
    up = theme.transposed(3).to_string()
    best = client.post("/api/search/theme", json={"notes": up, "top": 3, **SHOW_ALL}).json()["matches"][0]
    assert best["recording_id"] == ids["b"] and best["transposition"] == -3
    fixed = client.post("/api/search/theme", json={"notes": up, "top": 3, "transpose": False, **SHOW_ALL}).json()
    assert all(m["transposition"] == 0 for m in fixed["matches"])


def test_theme_search_cascade_matches_the_exhaustive_search(client, renderings, ids):
    theme, _ = theme_of(renderings["b"], 0, 8)
    body = {"notes": theme.to_string(), "top": 3, "per_recording": 1, **SHOW_ALL}
    full = client.post("/api/search/theme", json=body).json()["matches"]
    r = client.post("/api/search/theme", json={**body, "cascade": "coarse"})
    assert r.status_code == 200, r.text
    staged = r.json()["matches"]
    assert staged[0]["recording_id"] == full[0]["recording_id"] == ids["b"]
    assert staged[0]["start"] == full[0]["start"] and staged[0]["cost"] == pytest.approx(full[0]["cost"], abs=1e-6)
    assert "cascade" in _error(client.post("/api/search/theme", json={**body, "cascade": "fast"}), 422)


def test_theme_file_upload(client, renderings, ids, tmp_path):
    theme, (t0, _) = theme_of(renderings["a"], 8, 12)
    save_midi(theme, tmp_path / "q.mid", tempo_bpm=100.0)
    data = (tmp_path / "q.mid").read_bytes()
    r = client.post(
        "/api/search/theme-file", files={"file": ("q.mid", data, "audio/midi")}, data={"top": "5", **SHOW_ALL}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"]["file"] == "q.mid" and body["query"]["n_notes"] == 12
    assert body["matches"][0]["recording_id"] in (ids["a"], ids["a_slow"])
    hits = [m for m in body["matches"] if m["recording_id"] == ids["a"]]
    assert any(abs(m["start"] - t0) < 0.6 for m in hits)


def test_audio_search_and_matching_curve(client, renderings, ids, tmp_path):
    y, sr = sf.read(str(renderings["a"].path), dtype="float32")
    excerpt = _wav_bytes(y[int(6 * sr) : int(18 * sr)], sr)
    r = client.post("/api/search/audio", files={"file": ("excerpt.wav", excerpt, "audio/wav")}, data={"top": "3"})
    assert r.status_code == 200, r.text
    body = r.json()
    best = body["matches"][0]
    assert best["recording_id"] == ids["a"] and abs(best["start"] - 6.0) < 1.0
    query = body["query"]["id"]
    png = client.get(f"/api/queries/{query}/curve.png", params={"recording_id": ids["a"]})
    assert png.status_code == 200 and png.content.startswith(PNG)
    view = {"recording_id": ids["a"], "start": best["start"], "end": best["end"], "context": 20}
    zoomed = client.get(f"/api/queries/{query}/curve.png", params=view)  # the chromagram's time span
    assert zoomed.status_code == 200 and zoomed.content.startswith(PNG) and zoomed.content != png.content
    _error(client.get("/api/queries/doesnotexist1/curve.png", params={"recording_id": ids["a"]}), 404)
    if ids["b"] not in {m["recording_id"] for m in body["matches"]}:
        _error(client.get(f"/api/queries/{query}/curve.png", params={"recording_id": ids["b"]}), 404)


def test_versions_of_a_recording(client, ids):
    r = client.get(f"/api/recordings/{ids['a']}/versions", params={"top": 2})
    assert r.status_code == 200, r.text
    ranked = [m["recording_id"] for m in r.json()["matches"]]
    assert ranked[0] == ids["a_slow"] and ids["a"] not in ranked


def test_concurrent_searches_run_in_the_pool(client, renderings):
    """Six theme searches at once through the ASGI app: all succeed with the same answer."""
    app = client.app
    theme, _ = theme_of(renderings["b"], 0, 8)

    async def many():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as ac:
            body = {"notes": theme.to_string(), "top": 3, **SHOW_ALL}
            calls = [ac.post("/api/search/theme", json=body) for _ in range(6)]
            return await asyncio.gather(*calls)

    responses = asyncio.run(many())
    assert all(r.status_code == 200 for r in responses)
    assert len({json.dumps(r.json()["matches"]) for r in responses}) == 1


def test_full_queue_answers_503(root):
    app = create_app(root, workers=1, max_pending=1)
    server = app.state.server

    async def scenario():
        release = threading.Event()
        blocker = asyncio.create_task(server.run(release.wait, 10))
        await asyncio.sleep(0.05)
        transport = httpx.ASGITransport(app=app)
        search = {"notes": "C D E F G"}
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as ac:
            busy = await ac.post("/api/search/theme", json=search)
            listing = await ac.get("/api/recordings")  # catalogue reads do not wait for the workers
        release.set()
        await blocker
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as ac:
            fine = await ac.post("/api/search/theme", json=search)
        return busy, listing, fine

    try:
        busy, listing, fine = asyncio.run(scenario())
        assert "busy" in _error(busy, 503)
        assert listing.status_code == 200 and fine.status_code == 200
    finally:
        server.close()


# ------------------------------------------------------------------------------------------ audio streaming


def test_audio_stream_supports_range_requests(client, renderings, ids):
    data = renderings["a"].path.read_bytes()
    url = f"/api/recordings/{ids['a']}/audio"
    full = client.get(url)
    assert full.status_code == 200 and full.content == data
    assert full.headers["content-type"] == "audio/flac" and full.headers["accept-ranges"] == "bytes"
    part = client.get(url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    tail = client.get(url, headers={"Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.content == data[-500:]
    rest = client.get(url, headers={"Range": f"bytes={len(data) - 10}-"})
    assert rest.status_code == 206 and rest.content == data[-10:]
    assert client.get(url, headers={"Range": f"bytes={len(data) + 10}-"}).status_code == 416
    head = client.head(url)
    assert head.status_code == 200 and head.headers["accept-ranges"] == "bytes" and not head.content


def test_only_collection_files_can_be_read(client, ids, renderings, tmp_path):
    secret = "/etc/passwd"
    for url in (
        "/api/recordings/..%2F..%2F..%2Fetc%2Fpasswd/audio",
        "/api/recordings/%2Fetc%2Fpasswd/audio",
        "/api/recordings/1%2F..%2F..%2Fetc%2Fpasswd/audio",
        "/api/recordings/0/audio",
        "/api/recordings/-1/audio",
        "/static/..%2F..%2Fserver%2Fapp.py",
        "/static/%2e%2e/app.py",
    ):
        r = client.get(url)
        assert r.status_code in (404, 422), (url, r.status_code)
        assert "root:" not in r.text and "create_app" not in r.text
    r = client.get("/api/align", params={"a": secret, "b": ids["a"]})
    _error(r, 422)
    # a "note string" that looks like a score path is parsed as notes, never opened
    msg = _error(client.post("/api/search/theme", json={"notes": "/etc/hosts.mid"}), 400)
    assert "no such file" not in msg and "note" in msg
    # an upload's file name cannot place the file elsewhere
    theme, _ = theme_of(renderings["b"], 0, 6)
    save_midi(theme, tmp_path / "q.mid")
    target = Path("/tmp") / f"mirsearch-evil-{uuid.uuid4().hex}.mid"
    evil = f"../../../../../..{target}"
    r = client.post("/api/search/theme-file", files={"file": (evil, (tmp_path / "q.mid").read_bytes())})
    assert r.status_code == 200, r.text
    assert not target.exists()
    assert r.json()["query"]["file"] == target.name
    server_tmp = client.app.state.server.tmp
    assert not any(server_tmp.rglob("*.mid"))  # uploads are removed after the search


# ------------------------------------------------------------------------------------------ bad input


def test_bad_input_gives_clear_4xx_json(client, ids, tmp_path):
    assert "note" in _error(client.post("/api/search/theme", json={"notes": "H H H"}), 400)
    assert "top" in _error(client.post("/api/search/theme", json={"notes": "C D E", "top": 0}), 422)
    assert "bogus" in _error(client.post("/api/search/theme", json={"notes": "C D E", "bogus": 1}), 422)
    assert "notes" in _error(client.post("/api/search/theme", json={}), 422)
    _error(client.post("/api/search/theme", content=b"{not json", headers={"content-type": "application/json"}), 422)
    _error(client.post("/api/search/theme", json={"notes": "C " * 1001}), 422)
    assert "not in the collection" in _error(client.get("/api/recordings/999/audio"), 404)
    _error(client.get("/api/recordings/999"), 404)
    _error(client.get(f"/api/recordings/{ids['a']}/chromagram.png", params={"start": 5}), 400)
    _error(client.get(f"/api/recordings/{ids['a']}/chromagram.png", params={"start": 5, "end": 2}), 400)
    _error(client.get("/api/align", params={"a": ids["a"], "b": ids["a"]}), 400)
    _error(client.get("/api/nothing"), 404)
    # malformed uploads
    _error(client.post("/api/search/theme-file", files={"file": ("q.mid", b"MThd garbage")}), 400)
    _error(client.post("/api/search/theme-file", files={"file": ("q.musicxml", b"<score-partwise><oops")}), 400)
    assert "not a score file" in _error(client.post("/api/search/theme-file", files={"file": ("q.exe", b"MZ")}), 400)
    _error(client.post("/api/search/theme-file", files={"file": ("q.mid", b"")}), 400)
    assert "file" in _error(client.post("/api/search/theme-file", data={"top": "3"}), 422)
    assert "unreadable" in _error(client.post("/api/search/audio", files={"file": ("x.wav", b"RIFF0000WAVEjunk")}), 400)
    silent = _wav_bytes(np.zeros(22050 * 4), 22050)
    assert "silent" in _error(client.post("/api/search/audio", files={"file": ("quiet.wav", silent)}), 400)
    assert "not a audio file" in _error(client.post("/api/search/audio", files={"file": ("x.txt", b"hello")}), 400)
    theme_mid = tmp_path / "t.mid"
    save_midi(theme_of_scale(), theme_mid)
    files = {"file": ("t.mid", theme_mid.read_bytes())}
    r = client.post("/api/search/theme-file", files=files, data={"part": "../../etc/passwd"})
    assert "no part" in _error(r, 400)


def theme_of_scale():
    from mirsearch.scores import parse_note_string

    return parse_note_string("C4 D4 E4 F4 G4 A4")


def test_upload_limits(root):
    app = create_app(root, max_upload_mb=0.2, max_query_seconds=3)
    with TestClient(app, base_url=LOCAL) as c:
        big = b"\0" * 300_000  # refused from Content-Length, before the body is read
        assert "request body too large" in _error(c.post("/api/search/audio", files={"file": ("big.wav", big)}), 413)
        just_over = b"\0" * 230_000  # within the multipart slack: the file itself is over the limit
        assert "big.wav: file too large" in _error(
            c.post("/api/search/audio", files={"file": ("big.wav", just_over)}), 413
        )

        def chunks():  # no Content-Length: counted while it arrives
            yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
            for _ in range(40):
                yield b"\0" * 10_000

        r = c.post("/api/search/audio", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
        assert "request body too large" in _error(r, 413)
        sr = 8000
        t = np.arange(5 * sr) / sr
        long = _wav_bytes(0.3 * np.sin(2 * np.pi * 440 * t), sr)  # 80 kB but 5 s > 3 s
        assert "too long" in _error(c.post("/api/search/audio", files={"file": ("long.wav", long)}), 413)
        assert c.get("/api/health").status_code == 200  # still alive


# ------------------------------------------------------------------------------------------ synchronisation, figures


def _aligned(client, params: dict, *, limit: float = 120.0):
    """``/api/align`` as the page calls it: a 202 names the alignment job, polled until it ends; then the map."""
    t0 = time.monotonic()
    r = client.get("/api/align", params=params)
    assert time.monotonic() - t0 < 2.0  # answered at once: the alignment runs as a job
    while r.status_code == 202:
        job = r.json()
        assert job["state"] in ("queued", "running", "done") and 0 <= job["fraction"] <= 1, job
        assert job["estimate_seconds"] > 0 and job["result_url"].startswith("/api/align?")
        assert time.monotonic() - t0 < limit, job
        time.sleep(0.2)
        status = client.get(job["status_url"]).json()
        assert status["job"] == job["job"]
        if status["state"] in ("done", "failed"):
            r = client.get("/api/align", params=params)
            assert r.status_code != 202 or status["state"] != "done", r.text
    return r


def test_time_map_between_versions(client, root, ids):
    r = _aligned(client, {"a": ids["a"], "b": ids["a_slow"], "t": 10.0})
    assert r.status_code == 200, r.text
    d = r.json()
    assert abs(d["mapped"] - 10.0 / 0.7) < 0.35
    assert d["query"]["task"] == "align" and "mirsearch" in d["query"]
    assert len(d["time_a"]) == len(d["time_b"]) > 10
    assert np.all(np.diff(d["time_a"]) > 0) and np.all(np.diff(d["time_b"]) > 0)
    assert abs(d["duration_b"] - client.get(f"/api/recordings/{ids['a_slow']}").json()["duration"]) < 0.05
    assert len(list((root / "timemaps").glob("*.json"))) >= 1  # cached on disk
    t0 = time.perf_counter()
    back = client.get("/api/align", params={"a": ids["a_slow"], "b": ids["a"], "t": d["mapped"]}).json()
    assert time.perf_counter() - t0 < 2.0  # the inverse of the cached map, no new alignment
    assert abs(back["mapped"] - 10.0) < 0.05
    msg = _error(_aligned(client, {"a": ids["a"], "b": ids["b"]}), 400)
    assert "same piece" in msg
    assert "same piece" in _error(client.get("/api/align", params={"a": ids["b"], "b": ids["a"]}), 400)  # kept
    _error(client.get("/api/align/jobs/0123abcd"), 404)


def test_chromagram_figure(client, ids):
    r = client.get(f"/api/recordings/{ids['a']}/chromagram.png", params={"start": 3.0, "end": 8.5, "width": 600})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content.startswith(PNG)
    zoom = client.get(f"/api/recordings/{ids['a']}/chromagram.png", params={"start": 3.0, "end": 8.5, "context": 4})
    assert zoom.status_code == 200 and zoom.content != r.content
    # the query's notes drawn over the match, in the recording's key
    span = {"start": 3.0, "end": 8.5, "context": 4}
    notes = client.get(f"/api/recordings/{ids['a']}/chromagram.png", params={**span, "notes": "C D E F G"})
    up = client.get(
        f"/api/recordings/{ids['a']}/chromagram.png", params={**span, "notes": "C D E F G", "transposition": 2}
    )
    assert notes.status_code == up.status_code == 200 and len({zoom.content, notes.content, up.content}) == 3
    assert "note" in _error(
        client.get(f"/api/recordings/{ids['a']}/chromagram.png", params={**span, "notes": "H"}), 400
    )
    _error(client.get(f"/api/recordings/{ids['a']}/chromagram.png", params={**span, "transposition": 7}), 422)


# ------------------------------------------------------------------------------------------ indexing, CLI


def test_indexing_job_from_the_page(tmp_path, root):
    sources = tmp_path / "incoming"
    sources.mkdir()
    sr = 22050
    t = np.arange(3 * sr) / sr
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) * 0.2
    sf.write(sources / "chord.wav", chord.astype(np.float32), sr)
    (sources / "broken.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    Collection.create(tmp_path / "new.mirs", features=["chroma"]).close()
    app = create_app(tmp_path / "new.mirs", index_sources=[sources])
    with TestClient(app, base_url=LOCAL) as c:
        assert c.get("/api/index").json() == {"sources": [sources.name], "job": None}
        assert "no recordings" in _error(c.post("/api/search/theme", json={"notes": "C E G"}), 409)
        r = c.post("/api/index", json={})
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 60
        job = r.json()["job"]
        while job["state"] in ("starting", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
            job = c.get("/api/index").json()["job"]
        assert job["state"] == "done", job
        assert job["total"] == 2 and job["done"] == 2 and job["fraction"] == 1.0
        assert job["counts"]["added"] == 1 and job["counts"]["failed"] == 1
        assert "broken.wav" in job["failures"][0]
        assert [r["name"] for r in c.get("/api/recordings").json()["recordings"]] == ["chord.wav"]
        assert c.get("/api/stats").json()["recordings"] == 1
        _error(c.post("/api/index", json={"sources": [5]}), 400)
        # the server's audio-matching database (a view of its read-only handle) follows the catalogue
        from mirsearch.index.audio_database import audio_database

        coll = app.state.server.coll
        assert len(audio_database(coll).recordings) == 1
        sf.write(sources / "chord2.wav", chord[::-1].astype(np.float32), sr)
        assert c.post("/api/index", json={"sources": [0]}).status_code == 202
        app.state.server.jobs.join(timeout=60)
        assert c.get("/api/index").json()["job"]["counts"]["added"] == 1
        assert len(audio_database(coll).recordings) == 2
    with TestClient(create_app(root), base_url=LOCAL) as c:
        assert "--index-source" in _error(c.post("/api/index", json={}), 403)


def test_serve_listens_on_localhost_unless_told():
    from mirsearch.cli.main import build_parser

    args = build_parser().parse_args(["serve", "--collection", "x.mirs"])
    assert args.host == "127.0.0.1" and args.port == 8000
    args = build_parser().parse_args(["serve", "--collection", "x.mirs", "--host", "0.0.0.0"])
    assert args.host == "0.0.0.0"


def test_serve_requires_a_token_off_loopback(monkeypatch, capsys):
    from mirsearch.cli.main import main
    from mirsearch.cli.serve import allowed_hosts, resolve_token

    monkeypatch.delenv("MIRSEARCH_TOKEN", raising=False)
    assert main(["serve", "-c", "x.mirs", "--host", "0.0.0.0"]) == 1
    assert "--token" in capsys.readouterr().err
    assert resolve_token("127.0.0.1", None) is None
    assert len(resolve_token("192.168.1.5", "auto")) >= 24
    monkeypatch.setenv("MIRSEARCH_TOKEN", "from-the-environment")
    assert resolve_token("192.168.1.5", None) == "from-the-environment"
    assert allowed_hosts("192.168.1.5", ["archive.lan"]) == ("archive.lan", "192.168.1.5")
    assert allowed_hosts("127.0.0.1", []) == ()


# ------------------------------------------------------------------------------------------ one definition


def test_api_request_models_are_the_tasks_parameters(client):
    """Each endpoint's request schema has the task's parameter names, defaults, choices and limits."""
    from mirsearch.service.audio import PassagesRequest, VersionsRequest

    schemas = client.get("/api/openapi.json").json()["components"]["schemas"]
    for model, request, extra in (
        ("ThemeSearch", ThemeRequest, {"notes"}),
        ("ThemeFileSearch", ThemeRequest, {"file", "part"}),
        ("AudioSearch", PassagesRequest, {"file"}),
        ("VersionsSearch", VersionsRequest, {"file"}),
    ):
        props = schemas[model]["properties"]
        specs = {s.name: s for s in param_specs(request) if s.name not in ("exclude", "dask")}
        assert set(props) == set(specs) | extra, model
        for name, spec in specs.items():
            prop = props[name]
            default = list(spec.default) if spec.is_tuple and spec.default is not None else spec.default
            assert prop.get("default") == default, (model, name)
            assert prop.get("description") == spec.help
            inner = prop.get("items", prop) if spec.is_tuple else prop
            options = [inner, *inner.get("anyOf", [])]
            if spec.choices is not None:
                assert any(o.get("enum") == list(spec.choices) for o in options), (model, name)
            if spec.minimum is not None:
                assert any(o.get("minimum") == spec.minimum for o in options), (model, name)
            if spec.maximum is not None:
                assert any(o.get("maximum") == spec.maximum for o in options), (model, name)


def test_paths_are_relative_to_the_audio_folder(client, ids):
    recs = client.get("/api/recordings").json()["recordings"]
    assert all(not r["path"].startswith("/") and ".." not in r["path"] for r in recs)
    r = client.post("/api/search/theme", json={"notes": "C D E F G A B C5", "top": 3, **SHOW_ALL}).json()
    rows = r["matches"] + r.get("rejected", [])
    assert rows and all(not m["recording"].startswith("/") for m in rows)
    assert not client.get("/api/stats").json()["path"].startswith("/")


# ------------------------------------------------------------------------------------------ access


def test_host_header_must_name_this_server(root):
    app = create_app(root, allowed_hosts=("archive.lan",))
    with TestClient(app, base_url=LOCAL) as c:
        for host in ("evil.example:8000", "evil.example", "127.0.0.1.evil.example", ""):
            assert "not served here" in _error(c.get("/api/recordings", headers={"host": host}), 400), host
        assert "not served here" in _error(c.get("/api/health", headers={"host": "evil.example"}), 400)
        for host in ("127.0.0.1:8000", "localhost", "[::1]:8000", "archive.lan", "ARCHIVE.lan:80"):
            assert c.get("/api/recordings", headers={"host": host}).status_code == 200, host


def test_token_is_required_when_set(root):
    token = "correct-horse-battery"
    app = create_app(root, token=token)
    with TestClient(app, base_url=LOCAL) as c:
        assert c.get("/api/health").status_code == 200  # liveness needs no token
        assert c.get("/static/app.js").status_code == 200
        assert "token" in _error(c.get("/api/recordings"), 401)
        assert "token" in _error(c.get("/"), 401)
        _error(c.get("/api/recordings", headers={"Authorization": "Bearer wrong-token-here"}), 401)
        assert c.get("/api/recordings", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        _error(c.get("/?token=wrong-token-here", follow_redirects=False), 401)
        first = c.get(f"/?token={token}", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/"
        assert "HttpOnly" in first.headers["set-cookie"] and "SameSite=Strict" in first.headers["set-cookie"]
        assert c.get("/").status_code == 200  # the cookie carries it now
        assert c.get("/api/recordings").status_code == 200


# ------------------------------------------------------------------------------------------ budgets


def test_json_body_limit_before_parsing(root):
    app = create_app(root, max_json_kb=16)
    with TestClient(app, base_url=LOCAL) as c:
        big = json.dumps({"notes": "C " * 20_000})
        r = c.post("/api/search/theme", content=big, headers={"content-type": "application/json"})
        assert "request body too large" in _error(r, 413)
        assert c.get("/api/health").status_code == 200


def test_time_budget_answers_504_and_frees_the_queue(root):
    app = create_app(root, request_seconds=0.05)
    server = app.state.server

    async def scenario():
        t0 = time.perf_counter()
        with pytest.raises(Exception, match="time budget") as info:
            await server.search.run(time.sleep, 1.0)
        late = time.perf_counter() - t0
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as ac:
            health = await ac.get("/api/health")
        return info.value, late, health

    try:
        exc, late, health = asyncio.run(scenario())
        assert type(exc).__name__ == "OverBudget" and late < 0.5 and health.status_code == 200
        deadline = time.monotonic() + 5
        while server.search._pending and time.monotonic() < deadline:  # the overrunning call ends by itself
            time.sleep(0.05)
        assert server.search._pending == 0
    finally:
        server.close()


def test_slow_uploads_cannot_starve_health_and_searches(root):
    """Two readers that hang (in child processes) do not hold the search threads; both are killed."""
    app = create_app(root, workers=2, parse_seconds=2.0)
    server = app.state.server
    server.tasks.start(wait=True)  # search workers started and warm (a first search would wait for them)

    async def scenario():
        hung = [asyncio.create_task(server.sandbox.run(time.sleep, 30, name="slow.mid")) for _ in range(2)]
        await asyncio.sleep(0.3)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as ac:
            t0 = time.perf_counter()
            health = await ac.get("/api/health")
            search = await ac.post("/api/search/theme", json={"notes": "C D E F G A", "top": 2})
            fast = time.perf_counter() - t0
        results = await asyncio.gather(*hung, return_exceptions=True)
        return health, search, fast, results, time.perf_counter() - t0

    try:
        health, search, fast, results, total = asyncio.run(scenario())
        assert health.status_code == 200 and search.status_code == 200, search.text
        assert fast < 1.7  # answered while both readers were still running
        assert all(type(r).__name__ == "OverBudget" and "slow.mid" in str(r) for r in results), results
        assert total < 4.0  # the readers were stopped at their budget, not after 30 s
    finally:
        server.close()


def test_waiting_readers_are_bounded():
    from mirsearch.server.sandbox import Sandbox

    async def scenario():
        sandbox = Sandbox(parallel=1, seconds=5, max_waiting=2)
        first = [asyncio.create_task(sandbox.run(time.sleep, 0.5)) for _ in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(Exception, match="busy") as info:
            await sandbox.run(time.sleep, 0.1)
        await asyncio.gather(*first)
        await sandbox.run(time.sleep, 0.01)  # room again
        return info.value

    assert type(asyncio.run(scenario())).__name__ == "ReadersBusy"


def test_reader_memory_is_bounded():
    from mirsearch.server.sandbox import Sandbox

    async def scenario():
        sandbox = Sandbox(seconds=20, memory_mb=200)
        with pytest.raises(Exception, match="memory") as info:
            await sandbox.run(np.ones, 10**9, name="bomb.mxl")  # 8 GB
        return info.value, await sandbox.run(np.arange, 3)

    exc, small = asyncio.run(scenario())
    assert "bomb.mxl" in str(exc) and list(small) == [0, 1, 2]


# ------------------------------------------------------------------------------------------ page


def test_unquantised_midi_theme_upload(client, renderings, ids, tmp_path):
    """A MIDI whose durations are a hair off the note values (as sequencers write them) is accepted."""
    import mido

    theme, (t0, _) = theme_of(renderings["b"], 0, 8)
    tpb = 30_000
    mid = mido.MidiFile(ticks_per_beat=tpb)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=600_000))
    for n in theme.notes:
        length = int(n.duration * tpb) - 1  # 1.999999 quarters instead of 2
        track.append(mido.Message("note_on", note=n.pitch, velocity=80, time=1))
        track.append(mido.Message("note_off", note=n.pitch, velocity=0, time=length))
    mid.save(tmp_path / "sequencer.mid")
    files = {"file": ("sequencer.mid", (tmp_path / "sequencer.mid").read_bytes(), "audio/midi")}
    r = client.post("/api/search/theme-file", files=files, data={"top": "3", **SHOW_ALL})
    assert r.status_code == 200, r.text
    assert r.json()["query"]["n_notes"] == len(theme.notes)
    assert r.json()["matches"][0]["recording_id"] == ids["b"]


def test_api_docs_are_served_locally(client):
    page = client.get("/api/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        r = client.get(f"/api/docs/assets/{asset}")
        assert r.status_code == 200 and len(r.content) > 10_000
    assert client.get("/static/api-docs.js").status_code == 200
    _error(client.get("/api/docs/assets/..%2F..%2Fapp.py"), 404)


# ------------------------------------------------------------------------------------------ hostile uploads


#: the corpus files sent to the server (the whole corpus runs against the library in test_fuzz.py)
HOSTILE = {"8ch-192k.flac", "unknown-length.flac", "huge-1e30.wav", "nan.wav", "riff-huge.wav", "zero-rate.wav",
           "random.mp3", "mut000.ogg", "header-only.wav", "bomb.mxl", "deep.musicxml", "external-entity.musicxml",
           "kern-huge-rational.krn", "long-note.musicxml", "many-notes.musicxml", "huge-delta.mid", "good.mid",
           "good.musicxml", "good.krn"}  # fmt: skip


def test_hostile_uploads_give_json_answers_and_never_break_the_server(root, tmp_path):
    """Malformed audio and score files of the project's seeded corpus are answered with one JSON line (4xx, or 504
    for a reader stopped at its time budget) or searched (the good ones); never a 500; the server stays healthy."""
    from fuzz_corpus import make_corpus

    cases = [
        c for c in make_corpus(tmp_path / "corpus", seed=1, n_mutations=1) if c.path and Path(c.path).name in HOSTILE
    ]
    assert len(cases) == len(HOSTILE)
    app = create_app(root, parse_seconds=4, max_query_seconds=30)
    answers = {}
    with TestClient(app, base_url=LOCAL) as c:
        for case in cases:
            url = "/api/search/audio" if case.kind == "audio" else "/api/search/theme-file"
            name = Path(case.path).name
            r = c.post(url, files={"file": (name, Path(case.path).read_bytes())}, data={"top": "2"})
            stopped = r.status_code == 504 and "stopped" in r.text  # a reader over its time budget was killed
            assert r.status_code < 500 or stopped, (case.name, r.status_code, r.text)
            if r.status_code != 200:
                assert set(r.json()) == {"error"} and "\n" not in r.json()["error"], (case.name, r.text)
            answers[name] = r
        assert c.get("/api/health").status_code == 200
    assert answers["good.mid"].status_code == answers["good.musicxml"].status_code == 200
    assert "too long" not in answers["unknown-length.flac"].text  # a stream of unknown length is decoded
    assert answers["8ch-192k.flac"].status_code in (200, 400)  # 1 s of 8 x 192 kHz: within the sample limit
