"""The page's tags: the vocabulary in the tag filter, and a line of tags under the player (headless Chromium)."""

from __future__ import annotations

from mirsearch.describe.tag_vocabulary import FAMILIES
from server_support import open_page
from test_browser import browser, live  # noqa: F401 - fixtures


def test_tag_filter_lists_the_vocabulary_and_the_player_line_answers(live, browser):  # noqa: F811
    page, errors = open_page(browser, live.url)
    page.wait_for_selector("#tag-select option[value='piano']", state="attached")
    values = page.evaluate("[...document.querySelectorAll('#tag-select option')].map(o => o.value)")
    assert values[1:11] == list(FAMILIES)
    rid = page.evaluate("[...window.mirsearch.recordings.keys()][0]")
    page.evaluate(f"play({rid}, 0, {{autoplay: false}})")
    # the test collection stores no tags: the line says so in one sentence instead of failing
    page.wait_for_function("() => document.querySelector('#tags').textContent.startsWith('tags not available')")
    page.select_option("#tag-select", "piano")
    page.wait_for_function("() => document.querySelector('#tag-status').textContent.includes('not available')")
    assert not errors, errors
    page.close()
