"""Theme search on real renderings: transposition, tempo and polyphony, through the Collection API."""

from __future__ import annotations

import numpy as np
import pytest

from mirsearch.collection import Collection

from conftest import theme_of


@pytest.fixture(scope="module")
def collection(renderings, tmp_path_factory):
    root = tmp_path_factory.mktemp("coll") / "c.mirs"
    coll = Collection.create(root)
    report = coll.add([r.path for r in renderings.values()])
    assert not report.failed and len(report.added) == len(renderings)
    yield coll
    coll.close()


def _find(matches, path):
    return [m for m in matches if m.recording == str(path.resolve())]


@pytest.mark.parametrize("k", [0, 3, -5])
def test_transposed_theme_matches_at_shift_minus_k(collection, renderings, k):
    r = renderings["a"]
    theme, (t0, t1) = theme_of(r, 8, 12)
    matches = collection.search_theme(theme.transposed(k), top=3, per_recording=1)
    best = matches[0]
    assert best.recording == str(r.path.resolve()) or best.recording in {
        str(renderings[x].path.resolve()) for x in ("a_slow", "a_fast")
    }
    assert best.transposition == (-k) % 12


@pytest.mark.parametrize("key", ["a", "a_slow", "a_fast"])
def test_found_at_the_right_place_at_other_tempi(collection, renderings, key):
    r = renderings[key]
    theme, (t0, t1) = theme_of(renderings["a"], 8, 12)  # notated durations; the recording is faster/slower
    matches = collection.search_theme(theme, top=10, per_recording=3)
    hits = _find(matches, r.path)
    assert hits, f"{key} not among the matches"
    true_start, true_end = t0, t1
    if key != "a":
        true_start, true_end = r.soprano[8][1], r.soprano[19][2]
    assert any(abs(h.start - true_start) < 0.6 and abs(h.end - true_end) < 0.6 for h in hits), (
        key,
        [(h.start, h.end) for h in hits],
        (true_start, true_end),
    )


def test_transposed_recording_reports_its_key(collection, renderings):
    r = renderings["c"]  # rendered 2 semitones up; theme notated in the original key
    theme, (t0, t1) = theme_of(r, 0, 10)
    matches = collection.search_theme(theme, top=5, per_recording=2)
    hits = _find(matches, r.path)
    assert hits and hits[0].transposition == 2
    assert any(abs(h.start - t0) < 0.6 for h in hits)


def test_note_string_and_per_recording_limit(collection, renderings):
    theme, _ = theme_of(renderings["b"], 0, 8)
    text = theme.to_string()
    matches = collection.search_theme(text, top=20, per_recording=2)
    per_rec = {}
    for m in matches:
        per_rec[m.recording_id] = per_rec.get(m.recording_id, 0) + 1
    assert max(per_rec.values()) <= 2
    costs = [m.cost for m in matches]
    assert costs == sorted(costs)
    assert matches[0].recording == str(renderings["b"].path.resolve())
    d = matches[0].to_dict()
    assert set(d) >= {"recording", "recording_id", "start", "end", "cost", "transposition"}
    assert d["start"] < d["end"]


def test_database_is_unit_rows_with_offsets(collection):
    Y, offsets, recs, rate = collection.database("chroma")
    assert Y.shape[1] == 12 and offsets[-1] == Y.shape[0] and len(recs) == 5
    assert np.allclose(np.linalg.norm(Y, axis=1), 1.0, atol=1e-5)
