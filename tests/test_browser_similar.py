"""The page's "more like this": a button under the player lists the recordings the API ranks nearest
(headless Chromium)."""

from __future__ import annotations

import httpx
import pytest

from mirsearch.server import create_app
from server_support import LiveServer, open_page
from test_browser import browser  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def live_timbre(tmp_path_factory, renderings):
    from mirsearch.collection import Collection

    root = tmp_path_factory.mktemp("similar-page") / "c.mirs"
    with Collection.create(root, features=["chroma", "timbre"]) as coll:
        assert not coll.add([r.path for r in renderings.values()], jobs=1).failed
    server = LiveServer(create_app(root), warm=True).start()
    yield server
    server.stop()


def test_more_like_this(live_timbre, browser):  # noqa: F811
    page, errors = open_page(browser, live_timbre.url)
    rid = page.evaluate("[...window.mirsearch.recordings.keys()][0]")
    page.evaluate(f"play({rid}, 0, {{autoplay: false}})")
    page.locator("#similar-playing .similar-btn").click()
    page.wait_for_selector("#similar-list li")
    shown = page.evaluate("[...document.querySelectorAll('#similar-list li')].map(n => Number(n.dataset.recordingId))")
    want = httpx.get(f"{live_timbre.url}/api/recordings/{rid}/similar", params={"top": 10}).json()
    assert shown == [m["recording_id"] for m in want["matches"]] and rid not in shown and len(shown) == 4
    assert page.locator("#recording-list .similar-btn").count() == 5  # one per recording of the list
    # the passage around the playing position (not playing: the first 20 s)
    page.locator("#similar-playing .similar-passage-btn").click()
    page.wait_for_function("document.querySelector('#similar-status').textContent.includes('0:00-0:20')")
    page.wait_for_selector("#similar-list li")
    shown = page.evaluate("[...document.querySelectorAll('#similar-list li')].map(n => Number(n.dataset.recordingId))")
    params = {"top": 10, "start": 0, "end": 20}
    want = httpx.get(f"{live_timbre.url}/api/recordings/{rid}/similar", params=params).json()
    assert want["query"]["passage"] == [0.0, 20.0]
    assert shown == [m["recording_id"] for m in want["matches"]] and rid not in shown
    assert not errors, errors
    page.close()
