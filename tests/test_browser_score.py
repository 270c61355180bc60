"""The score view in a real browser (headless Chromium): search a theme in the collection's scores, show the
score engraved with the match highlighted, and check that the cursor follows the synthesised audio: at every
position the marked notes are exactly those the view's time map says are sounding."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from mirsearch.server import create_app
from server_support import LiveServer, open_page
from test_browser import browser  # noqa: F401 - fixture

CHORALE = "bach/bwv66.6.mxl"


@pytest.fixture(scope="module")
def live_scores(tmp_path_factory):
    import music21

    from mirsearch.collection import Collection
    from mirsearch.service.scores import index_scores

    base = tmp_path_factory.mktemp("score-view")
    src = Path(music21.__file__).parent / "corpus" / CHORALE
    shutil.copy(src, base / "chorale.mxl")
    root = base / "coll.mirs"
    with Collection.create(root, features=["chroma"]) as coll:
        report = index_scores(coll, [base / "chorale.mxl"])
    assert report.scores == 1 and not report.failed
    server = LiveServer(create_app(root), warm=True).start()
    yield server
    server.stop()


def _sounding(notes: list[dict], t: float) -> list[str]:
    return [n["id"] for n in notes if n["onset"] <= t < n["offset"]]


def _soprano_theme(n: int) -> str:
    """The first ``n`` notes of the chorale's soprano as a note string."""
    import music21

    from mirsearch.index.score_store import TICKS_PER_QUARTER, read_score
    from mirsearch.scores import Note, Theme

    notes, _, _ = read_score(Path(music21.__file__).parent / "corpus" / CHORALE)
    top = notes[notes["part"] == 0][:n]
    ticks = top["tick"] - top["tick"][0]
    theme = Theme(tuple(Note(int(p), t / TICKS_PER_QUARTER, d / TICKS_PER_QUARTER)
                        for p, t, d in zip(top["pitch"], ticks, top["dur"], strict=True)))  # fmt: skip
    return theme.to_string()


def test_score_view_highlights_the_match_and_its_cursor_follows_the_audio(live_scores, browser):  # noqa: F811
    page, errors = open_page(browser, live_scores.url)
    page.wait_for_selector("#scores-card[data-ready='1']")
    assert page.evaluate("document.querySelectorAll('#score-select option').length") == 1

    # a theme from the soprano: its occurrence is listed; "show" engraves the score with its notes highlighted
    page.fill("#score-theme", _soprano_theme(6))
    page.click("#score-form-search button[type=submit]")
    page.wait_for_selector("#score-results li button")
    page.click("#score-results li:first-child button")
    page.wait_for_selector("#score-view[data-ready='1']")
    hits = page.evaluate("window.mirsearchScore.hits")
    assert len(hits) == 6
    assert page.evaluate("document.querySelectorAll('#score-view g.score-hit').length") == 6
    view = httpx.get(live_scores.url + "/api/scores/1/view", timeout=60).json()
    assert set(hits) <= {n["id"] for n in view["notes"]}

    # the cursor at chosen positions: exactly the notes sounding there
    page.wait_for_function("() => document.querySelector('#score-player').readyState >= 1")
    duration = page.evaluate("document.querySelector('#score-player').duration")
    assert duration == pytest.approx(view["duration"], abs=0.2)
    for t in (0.1, 3.3, 10.05, view["duration"] - 0.3):
        page.evaluate(f"document.querySelector('#score-player').currentTime = {t}")
        expected = " ".join(_sounding(view["notes"], t))
        assert expected
        page.wait_for_function(f"() => document.querySelector('#score-view').dataset.cursor === {expected!r}")
        marked = page.evaluate("[...document.querySelectorAll('#score-view g.score-now')].map(g => g.id).join(' ')")
        assert sorted(marked.split()) == sorted(expected.split())

    # playing: the cursor moves on with the audio and stays on the sounding notes
    page.evaluate("document.querySelector('#score-player').currentTime = 1.0")
    page.evaluate("document.querySelector('#score-player').play()")
    page.wait_for_function("() => document.querySelector('#score-player').currentTime > 2.5", timeout=20_000)
    page.evaluate("document.querySelector('#score-player').pause()")
    t = page.evaluate("document.querySelector('#score-player').currentTime")
    expected = " ".join(_sounding(view["notes"], t))
    page.wait_for_function(f"() => document.querySelector('#score-view').dataset.cursor === {expected!r}")

    # a click on a note plays from its onset
    last = view["notes"][-1]
    page.evaluate(f"document.getElementById({last['id']!r}).dispatchEvent(new MouseEvent('click', {{bubbles: true}}))")
    page.wait_for_function(f"() => document.querySelector('#score-player').currentTime >= {last['onset'] - 0.01}")
    assert not errors, errors
    page.close()


@pytest.fixture(scope="module")
def live_aligned(tmp_path_factory):
    """A collection with the chorale's score and two FluidSynth renderings of it (100 and 70 quarters per
    minute)."""
    import music21

    from mirsearch.collection import Collection
    from mirsearch.service.scores import index_scores

    from conftest import render

    base = tmp_path_factory.mktemp("score-aligned")
    shutil.copy(Path(music21.__file__).parent / "corpus" / CHORALE, base / "chorale.mxl")
    rendering, slow = render("bach/bwv66.6", base), render("bach/bwv66.6", base, speed=0.7)
    root = base / "coll.mirs"
    with Collection.create(root, features=["chroma"]) as coll:
        assert not coll.add([rendering.path, slow.path], jobs=1).failed
        assert index_scores(coll, [base / "chorale.mxl"]).scores == 1
    server = LiveServer(create_app(root), warm=True).start()
    yield server
    server.stop()


def test_score_view_follows_a_recording_aligned_to_the_score(live_aligned, browser):  # noqa: F811
    page, errors = open_page(browser, live_aligned.url)
    page.wait_for_selector("#score-source option[value='1']", state="attached")
    page.select_option("#score-source", "1")
    page.click("#scores-card .row button")
    page.wait_for_selector("#score-view[data-ready='1']", timeout=180_000)
    view = httpx.get(live_aligned.url + "/api/scores/1/view?recording=1", timeout=180).json()
    assert view["recording"] == 1
    # where the notes really are in the rendering: quarter * 0.6 s (100 quarters per minute)
    error = [abs(n["onset"] - n["quarter"] * 0.6) for n in view["notes"]]
    assert float(np.median(error)) < 0.1, np.median(error)
    assert page.evaluate("document.querySelector('#score-player').src").endswith("/api/recordings/1/audio")
    page.wait_for_function("() => document.querySelector('#score-player').readyState >= 1")
    for t in (2.0, 9.1, 15.3):
        page.evaluate(f"document.querySelector('#score-player').currentTime = {t}")
        expected = " ".join(_sounding(view["notes"], t))
        page.wait_for_function(f"() => document.querySelector('#score-view').dataset.cursor === {expected!r}")

    # switch to the slower recording at 6 s: playback goes on at the same place of the score (6 / 0.7 s there)
    page.evaluate("document.querySelector('#score-player').currentTime = 6.0")
    page.select_option("#score-source", "2")
    page.wait_for_function("() => window.mirsearchScore.switched && window.mirsearchScore.recording === 2",
                           timeout=180_000)  # fmt: skip
    switched = page.evaluate("window.mirsearchScore.switched")
    assert switched["from"] == pytest.approx(6.0, abs=0.05)
    assert switched["to"] == pytest.approx(6.0 / 0.7, abs=0.3)
    assert page.evaluate("document.querySelector('#score-player').src").endswith("/api/recordings/2/audio")
    assert not errors, errors
    page.close()
