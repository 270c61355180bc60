"""The page's speech / music band: playing a recording draws its segments under the player (headless Chromium)."""

from __future__ import annotations

import httpx

from server_support import open_page
from test_browser import browser, live  # noqa: F401 - fixtures


def test_segments_band_follows_the_player(live, browser):  # noqa: F811
    page, errors = open_page(browser, live.url)
    rid = page.evaluate("[...window.mirsearch.recordings.keys()][0]")
    page.evaluate(f"play({rid}, 0, {{autoplay: false}})")  # the page's player (app.js)
    page.wait_for_selector("#segments .segbar .seg")
    want = httpx.get(f"{live.url}/api/recordings/{rid}/segments").json()
    labels = page.evaluate("[...document.querySelectorAll('#segments .seg')].map(n => n.dataset.label)")
    assert labels == [s["label"] for s in want["segments"]]
    widths = page.evaluate("[...document.querySelectorAll('#segments .seg')].map(n => parseFloat(n.style.width))")
    assert abs(sum(widths) - 100) < 0.5  # the segments cover the whole recording
    # a click on the last band seeks the player there
    page.locator("#segments .seg").last.click()
    page.wait_for_function(
        "(t) => document.querySelector('#player').currentTime >= t - 0.05", arg=want["segments"][-1]["start"]
    )
    assert not errors, errors
    page.close()
