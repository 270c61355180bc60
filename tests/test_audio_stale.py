"""A stored upper-register chroma from another recipe is not matched on, and ``index`` re-extracts it."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf

from mirsearch.errors import InputError

SR = 22050


def _chords(path, seed: int, seconds: float = 12.0):
    """Random triads (0.5 s each) of sine tones between C3 and C6: a quick file with chroma in both registers."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.5 * SR)) / SR
    parts = []
    for _ in range(int(seconds / 0.5)):
        root = int(rng.integers(48, 72))
        parts.append(sum(np.sin(2 * np.pi * 440.0 * 2 ** ((p - 69) / 12) * t) for p in (root, root + 4, root + 19)))
    sf.write(path, (0.2 * np.concatenate(parts)).astype(np.float32), SR)
    return str(path)


@pytest.fixture()
def upper_collection(tmp_path):
    from mirsearch.collection import Collection

    files = [_chords(tmp_path / f"r{i}.wav", seed=i) for i in range(2)]
    coll = Collection.create(tmp_path / "u.mirs", features=["chroma", "chroma_upper"])
    coll.add(files)
    yield coll, files
    coll.close()


def test_stale_upper_chroma_is_not_matched_and_index_re_extracts_it(upper_collection, monkeypatch, caplog):
    import mirsearch.features.matching_chroma as mc
    from mirsearch.index.audio_database import prepare_database, stored_is_current
    from mirsearch.search.audio import UPPER_KIND, PassageOptions, resolve_kind

    coll, files = upper_collection
    options = PassageOptions(top=1)
    assert stored_is_current(coll, UPPER_KIND)
    assert resolve_kind(coll, options).match.features == UPPER_KIND
    before = {r.id: coll.load_features(r.id, UPPER_KIND)[0].copy() for r in coll.recordings()}

    monkeypatch.setattr(mc, "UPPER_MIDI_LOW", mc.UPPER_MIDI_LOW + 5)  # the recipe changed since indexing
    coll.views.clear()
    assert not stored_is_current(coll, UPPER_KIND)
    with caplog.at_level(logging.WARNING, logger="mirsearch.search.audio"):
        assert resolve_kind(coll, options).match.features == "chroma"
    assert any("another recipe" in r.getMessage() and "mirsearch index" in r.getMessage() for r in caplog.records)
    with pytest.raises(InputError, match="chroma_upper .* another chroma configuration"):
        prepare_database(coll, options.match.replace(features=UPPER_KIND))

    report = coll.add(files)  # what 'mirsearch index' runs: the changed configuration key re-extracts
    assert len(report.updated) == 2 and not report.unchanged
    assert stored_is_current(coll, UPPER_KIND)
    assert resolve_kind(coll, options).match.features == UPPER_KIND
    for r in coll.recordings():
        after = coll.load_features(r.id, UPPER_KIND)[0]
        assert after.shape == before[r.id].shape and not np.allclose(after, before[r.id])
