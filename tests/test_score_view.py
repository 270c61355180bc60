"""The score view: verovio engraving with timed note ids, the synthesiser, the tasks and their endpoints."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mirsearch.datasets.synth import synthesize_notes, wav_bytes
from mirsearch.errors import InputError, ParameterError
from mirsearch.index.score_store import TICKS_PER_QUARTER, read_score
from mirsearch.viz.score_view import engrave_score


@pytest.fixture(scope="module")
def chorale(tmp_path_factory) -> Path:
    import music21

    out = tmp_path_factory.mktemp("score-view") / "chorale.mxl"
    shutil.copy(Path(music21.__file__).parent / "corpus" / "bach" / "bwv66.6.mxl", out)
    return out


def test_engraved_notes_are_the_notes_the_score_store_reads(chorale):
    e = engrave_score(chorale)
    assert e.pages and all(p.lstrip().startswith("<svg") or "<svg" in p[:200] for p in e.pages)
    assert all(f'id="{i}"' in "".join(e.pages) for i in e.ids[:20])
    assert engrave_score(chorale).ids == e.ids  # the same ids every time
    notes, _, _ = read_score(chorale)
    stored = sorted(zip((notes["tick"] / TICKS_PER_QUARTER).round(3).tolist(), notes["pitch"].tolist(), strict=True))
    engraved = sorted(zip(e.quarter.round(3).tolist(), e.pitch.tolist(), strict=True))
    # every stored note is engraved at its position; verovio also lists the second note of a tie
    assert set(stored) <= set(engraved) and len(engraved) - len(stored) <= 0.03 * len(stored)
    assert np.all(np.diff(e.onset) >= 0) and np.all(e.offset > e.onset)
    # seconds are quarters at one tempo (this chorale has one)
    spq = (e.offset - e.onset) / e.duration_quarter
    assert np.allclose(spq, np.median(spq), atol=2e-3)


def test_engraving_refuses_unreadable_files(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<not-a-score/>")
    with pytest.raises(InputError, match="bad.xml"):
        engrave_score(bad)


def test_synthesised_note_is_silent_before_its_onset_and_has_its_pitch():
    sr = 16000
    y = synthesize_notes([69], [0.5], [1.5], sr=sr)
    assert np.abs(y[: int(0.49 * sr)]).max() == 0
    body = y[int(0.6 * sr) : int(1.4 * sr)]
    spectrum = np.abs(np.fft.rfft(body * np.hanning(body.size)))
    assert np.fft.rfftfreq(body.size, 1 / sr)[spectrum.argmax()] == pytest.approx(440, abs=2)
    assert np.abs(y).max() == pytest.approx(0.8, abs=1e-6)
    back, sr_back = sf.read(io.BytesIO(wav_bytes(y, sr=sr)))
    assert sr_back == sr and back.size == y.size
    with pytest.raises(ParameterError, match="sr"):
        synthesize_notes([60], [0], [1], sr=0)


@pytest.fixture(scope="module")
def collection(chorale, tmp_path_factory):
    from mirsearch.collection import Collection
    from mirsearch.service.scores import index_scores

    root = tmp_path_factory.mktemp("score-coll") / "c.mirs"
    with Collection.create(root, features=["chroma"]) as coll:
        assert index_scores(coll, [chorale]).scores == 1
    return root


def test_tasks_engrave_and_synthesise_a_score_of_the_collection(collection):
    from mirsearch.collection import Collection
    from mirsearch.service import run
    from mirsearch.service.score_view import ScoreAudioRequest, ScoreViewRequest

    with Collection.open(collection, readonly=True) as coll:
        view = run("score-view", ScoreViewRequest(score=1), collection=coll).to_dict()
        audio = run("score-audio", ScoreAudioRequest(score=1, sr=16000), collection=coll)
        with pytest.raises(ParameterError, match="score=7"):
            run("score-view", ScoreViewRequest(score=7), collection=coll)
    assert view["name"] == "chorale.mxl" and view["notes"][0]["onset"] == 0
    y, sr = sf.read(io.BytesIO(audio.wav))
    assert sr == 16000 and y.size / sr == pytest.approx(view["duration"], abs=0.1)
    # the audio starts where the notes start: energy in the first note, silence after the release
    first = view["notes"][0]
    assert np.abs(y[int(first["onset"] * sr) : int(first["offset"] * sr)]).max() > 0.05


def test_endpoints_list_search_engrave_and_stream_with_ranges(collection):
    from fastapi.testclient import TestClient

    from mirsearch.server import create_app

    with TestClient(create_app(collection), base_url="http://127.0.0.1:8000") as client:
        scores = client.get("/api/scores").json()["scores"]
        assert [s["name"] for s in scores] == ["chorale.mxl"]
        found = client.post("/api/scores/search", json={"notes": "A4/2 B4/2 C#5/4", "top": 5})
        assert found.status_code == 200, found.text
        assert all("/" not in m["recording"] for m in found.json()["matches"])
        view = client.get("/api/scores/1/view")
        assert view.status_code == 200 and view.json()["pages"]
        part = client.get("/api/scores/1/audio.wav", headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and len(part.content) == 100
        assert client.get("/api/scores/5/view").status_code == 400
        assert client.get("/api/scores/0/view").status_code == 422


def test_score_theme_with_variants_finds_the_theme_in_the_collection(collection, chorale):
    from mirsearch.collection import Collection
    from mirsearch.search.query import ThemeQuery
    from mirsearch.service import run
    from mirsearch.service.scores import ScoreThemeRequest

    notes, _, _ = read_score(chorale)
    top = notes[notes["part"] == 0][:8]
    q = (top["tick"] - top["tick"][0]) / TICKS_PER_QUARTER
    from mirsearch.scores import Note, Theme

    theme = Theme(tuple(Note(int(p), float(a), float(d) / TICKS_PER_QUARTER)
                        for p, a, d in zip(top["pitch"], q, top["dur"], strict=True)))  # fmt: skip
    with Collection.open(collection, readonly=True) as coll:
        exact = run("score-theme", ScoreThemeRequest(query=ThemeQuery.of(theme), min_share=1.0), collection=coll)
        varied = run("score-theme", ScoreThemeRequest(query=ThemeQuery.of(theme), variants=True), collection=coll)
    first = lambda r: min((m.start_quarter, m.extra["semitones"]) for m in r.matches)  # noqa: E731
    assert first(varied) == first(exact) == (0.0, 0)
    assert varied.to_dict()["query"]["variants"] is True


def test_a_score_aligned_to_a_recording_is_kept_and_not_aligned_again(chorale, tmp_path, monkeypatch):
    from mirsearch.collection import Collection
    from mirsearch.service import core, run
    from mirsearch.service.score_view import ScoreViewRequest, run_score_view
    from mirsearch.service.scores import index_scores

    from conftest import render

    rendering = render("bach/bwv66.6", tmp_path)
    root = tmp_path / "c.mirs"
    with Collection.create(root, features=["chroma"]) as coll:
        assert not coll.add([rendering.path], jobs=1).failed
        assert index_scores(coll, [chorale]).scores == 1
        request = ScoreViewRequest(score=1, recording=1)
        first = run("score-view", request, collection=coll).to_dict()["notes"]
        assert len(list((root / "timemaps").glob("score-*.npz"))) == 1

        def no_alignment(*args, **kwargs):
            raise AssertionError("aligned again")

        monkeypatch.setattr(core, "run", no_alignment)  # the view's alignment goes through service.core.run
        second = run_score_view(core.Context(collection=coll), request).to_dict()["notes"]
    assert [n["onset"] for n in second] == [n["onset"] for n in first]
    onsets = np.array([n["onset"] for n in first])
    assert np.all(np.diff(onsets) >= 0) and onsets[-1] > 5  # on the recording's time axis, in order
