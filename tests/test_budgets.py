"""Time and memory budgets: a file that stalls indexing, a search that runs past the server's budget."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

from mirsearch.collection import extract
from mirsearch.features import registry


@pytest.fixture
def tone(tmp_path):
    sr = 22050
    t = np.arange(3 * sr) / sr
    path = tmp_path / "tone.wav"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    return path


def _chords(path, seconds: float, root: int = 60):
    sr = 22050
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * 440 * 2 ** ((root + d - 69) / 12) * t) for d in (0, 4, 7)) * 0.2
    y = y * (0.6 + 0.4 * np.sign(np.sin(2 * np.pi * 0.5 * t)))  # some change over time
    sf.write(path, y.astype(np.float32), sr)
    return path


@pytest.fixture(scope="module")
def small_collection(tmp_path_factory):
    from mirsearch.collection import Collection

    folder = tmp_path_factory.mktemp("budgets")
    files = [_chords(folder / f"rec{i}.wav", 4.0, root=60 + i) for i in range(3)]
    with Collection.create(folder / "c.mirs") as coll:
        coll.add(files)
    return folder / "c.mirs"


def _configs():
    return [registry.feature_config("chroma", feature_rate=10.0)]


def test_a_file_over_its_time_budget_is_that_files_failure(tone, monkeypatch):
    monkeypatch.setenv("MIRSEARCH_FILE_SECONDS", "0.001")
    monkeypatch.setattr(extract, "SECONDS_PER_AUDIO_SECOND", 0.0)
    time.sleep(0.01)
    result = extract.process_file(str(tone), frozenset(), _configs())
    assert result.status == "error"
    assert result.error.startswith("tone.wav: analysis stopped after")


def test_the_worker_timer_interrupts_a_stalled_extractor(tone, monkeypatch):
    def stalled(y, *, sr, config):
        for _ in range(500):  # Python code that never checks the budget
            time.sleep(0.01)
        raise AssertionError("not interrupted")

    monkeypatch.setenv("MIRSEARCH_FILE_SECONDS", "0.3")
    monkeypatch.setattr(extract, "SECONDS_PER_AUDIO_SECOND", 0.0)
    monkeypatch.setattr(extract, "_IN_WORKER", True)
    monkeypatch.setattr(registry, "extract", stalled)
    t0 = time.monotonic()
    result = extract.process_file(str(tone), frozenset(), _configs())
    assert time.monotonic() - t0 < 2.0
    assert result.status == "error" and "analysis stopped after" in result.error


def test_the_budget_grows_with_the_audio_decoded(tone, monkeypatch):
    monkeypatch.setenv("MIRSEARCH_FILE_SECONDS", "30")
    result = extract.process_file(str(tone), frozenset(), _configs())
    assert result.status == "ok", result.error
    budget = extract.FileBudget("x", seconds=10, per_audio_second=0.5)
    budget.decoded(100.0)
    assert budget.limit == pytest.approx(60.0)
    assert extract.FileBudget("x", seconds=0, per_audio_second=1).check() is None  # 0: off


def test_versions_of_a_query_longer_than_every_recording_names_the_query(small_collection, tmp_path):
    from mirsearch.collection import Collection
    from mirsearch.errors import InputError
    from mirsearch.search.audio_query import AudioQuery
    from mirsearch.search.versions import VersionOptions, identify_versions

    query = AudioQuery.from_file(_chords(tmp_path / "long query.wav", 30.0))
    with Collection.open(small_collection, readonly=True) as coll, pytest.raises(InputError) as err:
        identify_versions(coll, query, VersionOptions())
    assert str(err.value).startswith("long query.wav: no recording of the collection is long enough")
    assert "pieces of 20 s; the longest recording has 4.0 s" in str(err.value)
