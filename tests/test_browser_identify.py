"""The page's "identify a clip": a file sent from the card is found in its recording at its offset, and a clip
from elsewhere answers "not found" (headless Chromium)."""

from __future__ import annotations

import pytest
import soundfile as sf

from mirsearch.server import create_app
from server_support import LiveServer, open_page
from test_browser import browser  # noqa: F401 - fixture
from test_identify import SR, synth


@pytest.fixture(scope="module")
def live_fingerprints(tmp_path_factory, renderings):
    from mirsearch.collection import Collection

    base = tmp_path_factory.mktemp("identify-page")
    root = base / "c.mirs"
    keep = [renderings[k].path for k in ("a", "b")]
    with Collection.create(root, features=["chroma", "fingerprint"]) as coll:
        assert not coll.add(keep, jobs=1).failed
        ids = {r.path.rsplit("/", 1)[-1]: r.id for r in coll.recordings()}
    y, sr = sf.read(str(renderings["a"].path), dtype="float32")
    sf.write(base / "clip.wav", y[int(4.0 * sr) : int(12.0 * sr)], sr)
    sf.write(base / "other.wav", synth(7, 8.0), SR)  # music that is not in the collection
    server = LiveServer(create_app(root), warm=True).start()
    yield server, base, ids[renderings["a"].path.name]
    server.stop()


def test_identify_a_clip_from_the_page(live_fingerprints, browser):  # noqa: F811
    server, base, a_id = live_fingerprints
    page, errors = open_page(browser, server.url)
    page.set_input_files("#identify-file", str(base / "clip.wav"))
    page.locator("#identify-form button[type=submit]").click()
    page.wait_for_selector("#identify-list li")
    first = page.locator("#identify-list li").first
    assert int(first.get_attribute("data-recording-id")) == a_id
    assert float(first.get_attribute("data-offset")) == pytest.approx(4.0, abs=0.1)
    page.set_input_files("#identify-file", str(base / "other.wav"))
    page.locator("#identify-form button[type=submit]").click()
    page.locator("#identify-status", has_text="not found").wait_for()
    assert page.locator("#identify-list li").count() == 0
    assert not errors, errors
    page.close()
