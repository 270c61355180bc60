"""Time and memory budgets: a file that stalls indexing, a search that runs past the server's budget."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

from mirsearch.collection import extract
from mirsearch.features import registry
from server_support import process_alive


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
    with Collection.create(folder / "c.mirs", features=["chroma"]) as coll:
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


# -- the server: searches run in worker processes with a time and a memory budget ------------------------------


def sleepy(coll, seconds: float) -> str:
    """A call that holds its worker (as a long numba kernel would: not interruptible from a thread)."""
    time.sleep(seconds)
    return "woke"


def hog(coll, n_bytes: int) -> int:
    return int(np.ones(n_bytes, dtype=np.uint8).sum())


def recordings(coll) -> int:
    return len(coll.recordings())


def test_a_call_over_its_time_budget_is_stopped_and_its_worker_replaced(small_collection):
    from mirsearch.server.sandbox import OverBudget
    from mirsearch.server.workers import TaskWorkers

    workers = TaskWorkers(small_collection, workers=1, seconds=1.0, memory_mb=200, warm=False)
    try:
        assert workers.call(recordings) == 3
        (pid,) = workers.pids()
        t0 = time.monotonic()
        with pytest.raises(OverBudget, match="time budget"):
            workers.call(sleepy, 60)
        assert time.monotonic() - t0 < 3.0
        assert not process_alive(pid)  # killed, not merely abandoned
        assert workers.call(sleepy, 0.01) == "woke"  # a fresh worker took over
        assert workers.pids() != [pid]
    finally:
        workers.close()


def test_a_call_over_its_memory_budget_is_refused_and_the_worker_goes_on(small_collection):
    from mirsearch.errors import ParameterError
    from mirsearch.server.workers import OverMemory, TaskWorkers

    workers = TaskWorkers(small_collection, workers=1, seconds=30, memory_mb=100, warm=False)
    try:
        assert workers.call(hog, 50_000_000) == 50_000_000  # 50 MB: within the budget
        with pytest.raises(OverMemory, match="100 MB"):
            workers.call(hog, 400_000_000)  # 400 MB
        assert workers.call(hog, 50_000_000) == 50_000_000
        with pytest.raises(ParameterError):  # errors come back with their type and message
            workers.call(_bad_parameter)
    finally:
        workers.close()


def _bad_parameter(coll):
    from mirsearch.errors import ParameterError

    raise ParameterError("top=0 must be >= 1")


# -- alignment of long files: decoded block by block -----------------------------------------------------------


def _piece(path, seconds: float, sr: int = 22050, speed: float = 1.0):
    rng = np.random.default_rng(3)
    roots = rng.integers(48, 72, size=int(seconds / 2) + 2)
    t = np.arange(int(seconds / speed * sr)) / sr
    idx = np.minimum((t * speed / 2).astype(int), roots.size - 1)
    f = 440 * 2 ** ((roots[idx] - 69) / 12)
    y = 0.2 * (np.sin(2 * np.pi * np.cumsum(f) / sr) + 0.5 * np.sin(4 * np.pi * np.cumsum(f) / sr))
    y *= 0.5 + 0.5 * (np.mod(t * speed, 0.5) < 0.35)  # note attacks
    sf.write(path, y.astype(np.float32), sr)
    return path


@pytest.mark.parametrize("block", [600, 20])
def test_streamed_sync_features_equal_those_of_the_whole_signal(tmp_path, monkeypatch, block):
    from mirsearch.audio import SR, load_audio
    from mirsearch.sync import audio as sync_audio
    from mirsearch.sync.audio import AlignOptions, file_sync_features, signal_sync_features

    monkeypatch.setattr(sync_audio, "WINDOW_SECONDS", block)  # 20: a 70 s file in four windows
    path = _piece(tmp_path / "p.wav", 70.0)
    F, rate, duration, name = file_sync_features(path, AlignOptions())
    y, _ = load_audio(path, sr=SR)
    F0 = signal_sync_features(y, sr=SR, feature_rate=50.0)
    assert (name, rate) == ("p.wav", 50.0)
    assert duration == pytest.approx(70.0)
    for X, X0 in zip(F[:3], F0[:3], strict=True):  # chroma, DLNCO (at the audio recipe) and sharp chroma
        assert X.shape == X0.shape
        np.testing.assert_allclose(X, X0, atol=1e-4)
    assert F.attack == pytest.approx(F0.attack, abs=1e-4)  # the attack time of the onsets (s)


def test_aligning_files_streams_them_and_maps_times(tmp_path):
    from mirsearch.sync import align_audio

    a = _piece(tmp_path / "a.wav", 40.0)
    b = _piece(tmp_path / "b.wav", 40.0, speed=1.25)  # the same notes, 25 % faster: 32 s
    tmap = align_audio(a, b)
    assert tmap.duration_b == pytest.approx(32.0, abs=0.05)
    np.testing.assert_allclose(tmap.map(np.array([8.0, 20.0, 32.0])), [6.4, 16.0, 25.6], atol=0.25)


def test_the_server_stops_searches_at_their_budget_and_keeps_answering(small_collection):
    import asyncio

    import httpx

    from mirsearch.server import create_app

    app = create_app(small_collection, workers=1, request_seconds=1.5, task_memory_mb=100)
    server = app.state.server
    server.tasks.start(wait=True)
    pids = server.tasks.pids()

    async def scenario():
        hung = [asyncio.create_task(server.task(sleepy, 60))]  # the worker held
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as ac:
            await asyncio.sleep(0.3)
            health = await ac.get("/api/health")
            stopped = await asyncio.gather(*hung, return_exceptions=True)
            t0 = time.monotonic()
            search = await ac.post("/api/search/theme", json={"notes": "C E G C5", "top": 2})
            return health, stopped, search, time.monotonic() - t0

    try:
        t0 = time.monotonic()
        health, stopped, search, search_seconds = asyncio.run(scenario())
        assert health.status_code == 200
        assert all(type(s).__name__ == "OverBudget" for s in stopped), stopped
        assert time.monotonic() - t0 < 30  # not the 60 s the calls wanted
        assert search.status_code == 200, search.text  # new workers took over
        assert not any(process_alive(p) for p in pids)
        with pytest.raises(Exception) as err:
            asyncio.run(server.task(hog, 400_000_000))
        assert type(err.value).__name__ == "OverMemory"
    finally:
        server.close()
