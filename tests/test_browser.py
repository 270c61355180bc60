"""End to end in a real browser: Debian's headless Chromium driven by Playwright against the live app.

Enter a theme, see the expected recording first, play it at the match, then use the interpretation
switcher: play one version, switch to another and check that playback continues at the time the time
map gives (and that this is where the music really is: the second version is the first at 0.7x speed).

The screenshot of the results page goes to ``docs/screenshot.png`` when ``MIRSEARCH_UPDATE_SCREENSHOT=1``
(so that an ordinary test run does not modify the repository), else to the test's temporary folder.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mirsearch.server import create_app
from server_support import LiveServer, server_collection

from conftest import theme_of

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS = Path(__file__).resolve().parent.parent / "docs"
#: seconds a played position may run ahead of the mapped position between the switch and the check
PLAY_SLACK = 1.5


@pytest.fixture(scope="module")
def live(tmp_path_factory, renderings):
    root = server_collection(tmp_path_factory, renderings)
    server = LiveServer(create_app(root), warm=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail("Debian's chromium is required at /usr/bin/chromium (make setup installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _position(page) -> float:
    return page.evaluate("document.querySelector('#player').currentTime")


def _ids(page) -> dict[str, int]:
    return page.evaluate("Object.fromEntries([...window.mirsearch.recordings.values()].map(r => [r.name, r.id]))")


def test_search_play_and_switch_interpretation(live, browser, renderings, tmp_path):
    import httpx

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(60_000)
    page.goto(live.url + "/")
    page.wait_for_selector("body[data-ready='1']")
    ids = _ids(page)
    a, a_slow, b = (ids[renderings[k].path.name] for k in ("a", "a_slow", "b"))

    # 1. a theme from chorale b: b comes first, with its match span drawn on the timeline
    theme, (t0, t1) = theme_of(renderings["b"], 0, 8)
    page.select_option("#opt-top", "5")
    page.fill("#theme-input", theme.to_string())
    page.click("#search-btn")
    page.wait_for_selector("#result-list .result")
    first = page.locator("#result-list .result").first
    assert int(first.get_attribute("data-recording-id")) == b
    start = float(first.get_attribute("data-start"))
    assert abs(start - t0) < 0.6
    assert first.locator(".timeline .span").count() == 1
    page.wait_for_function("() => document.querySelector('#chroma-fig').complete")
    assert page.evaluate("document.querySelector('#chroma-fig').naturalWidth") > 100

    # 2. play from the match start: the player loads b, seeks there, and time advances
    first.locator(".play-btn").click()
    page.wait_for_function(
        "(s) => { const p = document.querySelector('#player'); return !p.paused && p.currentTime > s + 0.3 }",
        arg=start,
    )
    assert page.evaluate("window.mirsearch.playing") == b
    assert start <= _position(page) < start + 5

    # 3. interpretation switcher: versions a and a_slow (0.7x speed), play a, switch to a_slow; the page asks
    # /api/align, which answers at once (202 and an alignment job the page polls, or the cached map)
    align_calls: list[tuple[str, int, float]] = []

    def finished(request):
        if "/api/align" in request.url:
            response = request.response()
            align_calls.append((request.url, response.status if response else 0, request.timing["responseEnd"]))

    page.on("requestfinished", finished)
    for rid in (a, a_slow):
        page.select_option("#switch-select", str(rid))
        page.click("#switch-add")
    page.wait_for_function(f"() => window.mirsearch.maps.has('{a}>{a_slow}')", timeout=90_000)
    page.click(f".version[data-recording-id='{a}'] .switch-btn")  # plays a
    page.wait_for_function(f"() => window.mirsearch.playing === {a} && !document.querySelector('#player').paused")
    page.evaluate("document.querySelector('#player').currentTime = 8.0")
    page.wait_for_function("() => document.querySelector('#player').currentTime > 8.5")
    page.click(f".version[data-recording-id='{a_slow}'] .switch-btn")
    page.wait_for_function(
        f"() => window.mirsearch.playing === {a_slow} && window.mirsearch.lastSwitch "
        "&& !document.querySelector('#player').paused"
    )
    switch = page.evaluate("window.mirsearch.lastSwitch")
    assert align_calls and all(status in (200, 202) and ms < 8000 for _, status, ms in align_calls), align_calls
    now = _position(page)
    assert switch["from"] == a and switch["to"] == a_slow
    assert 8.5 < switch["t_from"] < 8.5 + 10
    # the page mapped with the server's time map ...
    mapped = httpx.get(f"{live.url}/api/align", params={"a": a, "b": a_slow, "t": switch["t_from"]}).json()["mapped"]
    assert abs(switch["t_to"] - mapped) < 0.05
    # ... which is where the music is: a_slow is a at 0.7x speed
    assert abs(switch["t_to"] - switch["t_from"] / 0.7) < 0.4
    # and playback continues there, in a_slow
    assert switch["t_to"] - 0.1 <= now <= switch["t_to"] + PLAY_SLACK
    assert page.evaluate("document.querySelector('#player').currentSrc").endswith(f"/api/recordings/{a_slow}/audio")
    time.sleep(0.6)
    assert _position(page) > now
    assert page.locator(f".version.current[data-recording-id='{a_slow}']").count() == 1
    assert not errors, errors

    # 4. a screenshot of the results page for the README (small: CSS pixels, PNG)
    page.evaluate("document.querySelector('#player').pause()")
    page.evaluate("window.scrollTo(0, 0)")
    shot = tmp_path / "screenshot.png"
    page.screenshot(path=str(shot), scale="css")
    assert shot.stat().st_size > 10_000
    if os.environ.get("MIRSEARCH_UPDATE_SCREENSHOT") == "1":  # 256-colour PNG: a third of the size
        from PIL import Image

        with Image.open(shot) as img:
            img.convert("RGB").quantize(colors=256).save(DOCS / "screenshot.png", optimize=True)
    page.close()


def test_indexing_from_the_page_then_audio_query_with_curve(browser, renderings, tmp_path):
    import soundfile as sf

    from mirsearch.collection import Collection

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    b = renderings["b"].path
    (incoming / b.name).write_bytes(b.read_bytes())
    (incoming / "broken.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    Collection.create(tmp_path / "fresh.mirs").close()
    server = LiveServer(create_app(tmp_path / "fresh.mirs", index_sources=[incoming])).start()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_default_timeout(60_000)
        # as on a loaded server, the job status arrives late: a click must not come before the page knows it
        page.add_init_script(
            "const realFetch = window.fetch; window.fetch = (url, opts) => "
            "String(url).endsWith('/api/index') && !(opts && opts.method) "
            "? new Promise((ok) => setTimeout(ok, 1500)).then(() => realFetch(url, opts)) : realFetch(url, opts);"
        )
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready='1']")
        assert "0 recordings" in page.inner_text("#collection-summary")
        # start indexing from the page; progress ends with one file added and one failed
        page.click("#index-btn")
        page.wait_for_function(
            "() => document.querySelector('#index-status').textContent.startsWith('done')", timeout=180_000
        )
        status = page.inner_text("#index-status")
        assert "1 added" in status and "1 failed" in status
        assert page.evaluate("document.querySelector('#index-bar').style.width") == "100%"
        page.wait_for_function("() => window.mirsearch.recordings.size === 1")
        assert "1 recordings" in page.inner_text("#collection-summary")
        # an audio excerpt of the new recording: found there, with its matching curve
        y, sr = sf.read(str(b), dtype="float32")
        sf.write(tmp_path / "excerpt.wav", y[int(10 * sr) : int(22 * sr)], sr)
        page.click(".tab[data-tab='audio']")
        page.set_input_files("#audio-file", str(tmp_path / "excerpt.wav"))
        page.click("#audio-form button[data-mode='passages']")
        page.wait_for_selector("#result-list .result")
        first = page.locator("#result-list .result").first
        assert abs(float(first.get_attribute("data-start")) - 10.0) < 1.0
        page.wait_for_function(
            "() => { const i = document.querySelector('#curve-fig'); return i.complete && i.naturalWidth > 100 }"
        )
        assert page.is_visible("#curve-box")
        assert not errors, errors
        page.close()
    finally:
        server.stop()


def test_learned_fast_theme_search_from_the_page(browser, renderings, tmp_path):
    """A collection with learned chroma is searched with it and the notes cascade by default (as the CLI does)."""
    from mirsearch.collection import Collection

    from conftest import theme_of

    root = tmp_path / "learned.mirs"
    with Collection.create(root, features=["chroma", "learned"]) as coll:
        coll.add([str(renderings[k].path) for k in ("a", "b", "c")])
    server = LiveServer(create_app(root)).start()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_default_timeout(30_000)
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready='1']")
        theme, (t0, _t1) = theme_of(renderings["b"], 0, 10)
        page.fill("#theme-input", theme.to_string())
        with page.expect_response(lambda r: r.url.endswith("/api/search/theme"), timeout=90_000) as answer:
            page.click("#search-btn")
        sent = answer.value.request.post_data or ""
        used = answer.value.json()["query"]
        page.wait_for_selector("#result-list .result")
        first = page.locator("#result-list .result").first
        assert int(first.get_attribute("data-recording-id")) == _ids(page)[renderings["b"].path.name]
        assert abs(float(first.get_attribute("data-start")) - t0) < 1.5
        # the page leaves the choice to the server ("auto"), which takes the best the collection has
        assert '"features"' not in sent and '"cascade"' not in sent
        assert used["features"] == "learned" and used["cascade"] == "notes"
        assert "learned" in page.inner_text("#results-info")
        assert not errors, errors
    finally:
        server.stop()


def test_api_docs_render_offline(live, browser):
    """/api/docs renders Swagger UI with every request to another host blocked (an offline machine)."""
    context = browser.new_context()
    outside: list[str] = []

    def block(route):
        outside.append(route.request.url)
        route.abort()

    context.route(lambda url: not url.startswith(live.url), block)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live.url + "/api/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "mirsearch" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-tag-section", timeout=30_000)
    assert page.locator(".opblock").count() >= 10  # every endpoint is listed
    assert not outside and not errors, (outside, errors)
    context.close()


def test_share_loop_keys_and_phone_layout(live, browser, renderings):
    """A URL reproduces a note search; a match plays in a loop; space, arrows and timelines work by keyboard;
    the page fits a phone's width."""
    theme, (t0, t1) = theme_of(renderings["b"], 0, 8)
    from urllib.parse import urlencode

    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(30_000)
    # 1. the shared URL runs the search by itself
    page.goto(live.url + "/#" + urlencode({"notes": theme.to_string(), "top": "5", "transpose": "true"}))
    page.wait_for_selector("#result-list .result", timeout=120_000)  # the server's first search starts its workers
    assert page.input_value("#theme-input") == theme.to_string()
    first = page.locator("#result-list .result").first
    b = _ids(page)[renderings["b"].path.name]
    assert int(first.get_attribute("data-recording-id")) == b
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no horizontal scrolling
    # the URL of a typed search is shareable too
    page.fill("#theme-input", "C D E F G A")
    page.click("#search-btn")
    page.wait_for_function("() => location.hash.includes('notes=C+D+E+F+G+A')")
    # the engine's warnings reach the page: a one-note theme is flagged
    page.fill("#theme-input", "C")
    page.click("#search-btn")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('only 1 notes')")
    page.goto(live.url + "/#" + urlencode({"notes": theme.to_string(), "top": "5"}))
    page.reload()
    page.wait_for_selector("#result-list .result")
    first = page.locator("#result-list .result").first
    # 2. loop the matched span: playback jumps back to its start after its end
    start, end = float(first.get_attribute("data-start")), t1
    first.locator(".loop-btn").click()
    assert first.locator(".loop-btn").get_attribute("aria-pressed") == "true"
    page.wait_for_function(f"() => window.mirsearch.playing === {b} && !document.querySelector('#player').paused")
    page.evaluate(f"document.querySelector('#player').currentTime = {end - 0.3}")
    page.wait_for_function(
        f"() => {{ const t = document.querySelector('#player').currentTime; return t >= {start} && t < {start} + 1 }}",
        timeout=10_000,
    )
    # 3. keys: space pauses and resumes, the right arrow moves 5 s
    page.locator(".loop-btn").first.click()  # loop off
    page.locator("#results-title").click()  # focus away from buttons
    page.keyboard.press(" ")
    page.wait_for_function("() => document.querySelector('#player').paused")
    before = page.evaluate("document.querySelector('#player').currentTime")
    page.keyboard.press("ArrowRight")
    assert abs(page.evaluate("document.querySelector('#player').currentTime") - (before + 5)) < 0.5
    page.keyboard.press(" ")
    page.wait_for_function("() => !document.querySelector('#player').paused")
    # a timeline is reachable by keyboard: focused, Enter plays its recording from the match
    timeline = page.locator("#result-list .result .timeline").nth(1)
    timeline.focus()
    rec = int(page.locator("#result-list .result").nth(1).get_attribute("data-recording-id"))
    timeline.press("Enter")
    page.wait_for_function(f"() => window.mirsearch.playing === {rec}")
    # 4. the query can be played (synthesised) for an A/B comparison with the match
    assert page.is_visible("#query-play")
    page.click("#query-play")
    page.wait_for_function("() => window.mirsearch.synth && window.mirsearch.synthUntil > 0")
    assert not errors, errors
    page.close()
