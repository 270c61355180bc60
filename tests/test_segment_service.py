"""Segments of a collection's recordings: the ``recording-segments`` task, its CLI form and the HTTP endpoints.

A recording indexed with the stored ``segments`` kind must answer exactly what segmenting its file answers.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile as sf

from mirsearch.describe import segment as S

SR = 16000


def _programme(rng) -> np.ndarray:
    """6 s: a noise burst, a chord, silence (enough for a few segments of the packaged model)."""
    t = np.arange(2 * SR) / SR
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) * 0.1
    return np.concatenate([rng.standard_normal(2 * SR) * 0.05, chord, np.zeros(2 * SR)]).astype(np.float32)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from mirsearch.collection import Collection

    base = tmp_path_factory.mktemp("segcoll")
    audio = base / "audio"
    audio.mkdir()
    rng = np.random.default_rng(3)
    for name in ("p1", "p2"):
        sf.write(audio / f"{name}.wav", _programme(rng), SR)
    stored, plain = base / "stored.mirs", base / "plain.mirs"
    paths = sorted(audio.glob("*.wav"))
    with Collection.create(stored, features=["chroma", "segments"]) as coll:
        assert not coll.add(paths, jobs=1).failed
    with Collection.create(plain, features=["chroma"]) as coll:
        assert not coll.add(paths, jobs=1).failed
    return {"stored": stored, "plain": plain, "paths": paths}


def _ids(root) -> dict[str, int]:
    from mirsearch.collection import Collection

    with Collection.open(root, readonly=True) as coll:
        return {r.path.rsplit("/", 1)[-1]: r.id for r in coll.recordings()}


def test_stored_and_file_segments_agree(setup):
    from mirsearch.service import Archive, run
    from mirsearch.service.segment import RecordingSegmentsRequest, SegmentRequest

    for which in ("stored", "plain"):
        ids = _ids(setup[which])
        with Archive.open(setup[which], readonly=True) as arch:
            for path in setup["paths"]:
                rid = ids[path.name]
                got = run("recording-segments", RecordingSegmentsRequest(recording=rid), collection=arch.collection)
                ref = run("segment", SegmentRequest(path=str(path)))
                assert got.recording_id == rid and got.duration == pytest.approx(ref.duration, abs=1e-3)
                assert [s.label for s in got.segments] == [s.label for s in ref.segments]
                assert np.allclose([s.end for s in got.segments], [s.end for s in ref.segments], atol=0.05)
                assert got.to_dict()["recording_id"] == rid and "recording_id" not in ref.to_dict()
                assert got.segments[0].start == 0 and got.segments[-1].end == pytest.approx(got.duration, abs=1e-3)


def test_unknown_recording_and_no_collection(setup):
    from mirsearch.errors import MirsearchError, ParameterError
    from mirsearch.service import Archive, run
    from mirsearch.service.segment import RecordingSegmentsRequest

    with pytest.raises(ParameterError, match="collection"):
        run("recording-segments", RecordingSegmentsRequest(recording=1))
    with Archive.open(setup["plain"], readonly=True) as arch, pytest.raises(MirsearchError, match="999"):
        run("recording-segments", RecordingSegmentsRequest(recording=999), collection=arch.collection)


def test_cli_recording_option(setup, capsys):
    from mirsearch.cli.main import main

    ids = _ids(setup["stored"])
    rid = ids["p1.wav"]
    assert main(["segment", "-c", str(setup["stored"]), "--recording", str(rid), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["recording_id"] == rid and d["segments"] and set(s["label"] for s in d["segments"]) <= set(S.LABELS)
    # a file and two recordings, one of them unknown: the others are answered, one error line, exit code 3
    args = ["segment", str(setup["paths"][1]), "-c", str(setup["stored"]), "--recording", str(rid)]
    assert main([*args, "--recording", "999", "--json"]) == 3
    out = capsys.readouterr()
    assert len(json.loads(out.out)["files"]) == 2 and len(out.err.strip().splitlines()) == 1 and "999" in out.err
    assert main(["segment", "--recording", str(rid)]) == 1
    assert "--collection" in capsys.readouterr().err
    assert main(["segment"]) == 1
    assert "FILE" in capsys.readouterr().err


def test_http_endpoints(setup):
    from fastapi.testclient import TestClient

    from mirsearch.server import create_app

    ids = _ids(setup["stored"])
    with TestClient(create_app(setup["stored"], max_upload_mb=5), base_url="http://localhost") as client:
        r = client.get(f"/api/recordings/{ids['p2.wav']}/segments", params={"min_segment": 0.25})
        assert r.status_code == 200, r.text
        d = r.json()
        assert d["stored"] is True and d["recording_id"] == ids["p2.wav"] and d["path"] == "p2.wav"
        assert d["segments"][-1]["end"] == pytest.approx(d["duration"], abs=1e-3)
        assert client.get("/api/recordings/999/segments").status_code == 404
        assert client.get(f"/api/recordings/{ids['p2.wav']}/segments", params={"smoothing": "x"}).status_code == 422
        buf = io.BytesIO()
        sf.write(buf, _programme(np.random.default_rng(4)), SR, format="WAV", subtype="PCM_16")
        r = client.post("/api/segment", files={"file": ("up.wav", buf.getvalue(), "audio/wav")})
        assert r.status_code == 200, r.text
        up = r.json()
        assert up["path"] == "up.wav" and up["duration"] == pytest.approx(6.0) and up["segments"]
        r = client.post("/api/segment", files={"file": ("bad.wav", b"RIFF1234WAVE", "audio/wav")})
        assert r.status_code == 400 and "bad.wav" in r.json()["error"]
