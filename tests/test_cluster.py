"""Indexing and search on a Dask cluster: a LocalCluster of 2 worker processes started in the test.

Indexing with a worker killed mid-way must store every file once, with the features of a local run; a
sharded search must return the local ranking (recording ids, positions, costs), for themes and passages; an
identification and a search by similarity the local answer bit for bit.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

import numpy as np
import pytest

from mirsearch.cluster import parse_spec
from mirsearch.cluster.shards import balance
from mirsearch.errors import CollectionError, ParameterError

from conftest import theme_of

SPEC = "local:2"


def test_parse_spec():
    assert parse_spec("local:3").local == 3
    assert parse_spec("tcp://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"
    for bad in ("local:0", "local", "8786", "http://sched:8786", "tcp://sched"):
        with pytest.raises(ParameterError, match="dask="):
            parse_spec(bad)


def test_balance_splits_by_duration():
    rng = np.random.default_rng(1)
    d = rng.exponential(200.0, 101)
    groups = balance(d, 4)
    assert sorted(np.concatenate(groups).tolist()) == list(range(101))
    loads = [d[g].sum() for g in groups]
    assert max(loads) <= d.sum() / 4 + d.max()
    assert balance([5.0], 3)[1].size == 0  # fewer items than shards: empty groups
    with pytest.raises(ParameterError):
        balance([1.0], 0)


def test_a_file_whose_task_kills_its_workers_is_a_failure_line():
    from distributed import KilledWorker

    from mirsearch.cluster.indexing import _result_of

    class Lost:
        def result(self):
            raise KilledWorker("index-1", None, 3)

    result = _result_of(Lost(), "/music/bad.wav")
    assert (result.status, result.path) == ("error", "/music/bad.wav")
    assert result.error.startswith("bad.wav: the decoder crashed")


@pytest.fixture(scope="module")
def client():
    from mirsearch.cluster import close, connect

    yield connect(SPEC)
    close(SPEC)


@pytest.fixture(scope="module")
def audio_dir(renderings, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster_audio")
    for name in ("a", "b", "c"):
        shutil.copy(renderings[name].path, folder)
    (folder / "broken.wav").write_bytes(b"RIFF0000WAVEfmt this is not audio")
    return folder


def _kill_a_busy_worker(client) -> int:
    """SIGKILL a worker process that is running a task; returns its pid (0 if none was busy)."""
    pids = client.run(os.getpid)
    for address, keys in client.processing().items():
        if keys and address in pids:
            os.kill(pids[address], signal.SIGKILL)
            return pids[address]
    return 0


KINDS = ("chroma", "chroma_upper", "fingerprint", "timbre")


def _stored(coll) -> dict:
    out = {}
    for rec in coll.recordings():
        for kind in KINDS:
            X, rate = coll.load_features(rec.id, kind)
            out[os.path.basename(rec.path), kind] = (rec.sha1, round(rec.duration, 6), X, rate)
    return out


@pytest.fixture(scope="module")
def indexed(client, audio_dir, tmp_path_factory):
    """The folder indexed locally (one process) and on the cluster with a worker killed mid-way."""
    from mirsearch.cluster import dask_producer
    from mirsearch.collection import Collection

    root = tmp_path_factory.mktemp("cluster_colls")
    with Collection.create(root / "local.mirs", features=KINDS) as coll:
        local_report = coll.add([audio_dir], jobs=1)
    killed = []

    def on_result(status, path, message):
        if not killed:
            killed.append(_kill_a_busy_worker(client))

    with Collection.create(root / "dask.mirs", features=KINDS) as coll:
        report = coll.add([audio_dir], producer=dask_producer(client), on_result=on_result)
    return root, local_report, report, killed[0]


def test_index_with_a_worker_killed_matches_a_local_run(indexed):
    from mirsearch.collection import Collection

    root, local_report, report, killed = indexed
    assert killed, "no worker was busy when the first result came in"
    with pytest.raises(ProcessLookupError):  # the killed worker is gone (the nanny started a new one)
        os.kill(killed, 0)
    assert sorted(report.added) == sorted(local_report.added) and len(report.added) == 3
    assert [os.path.basename(p) for p, _ in report.failed] == ["broken.wav"]
    with Collection.open(root / "local.mirs", readonly=True) as a, Collection.open(root / "dask.mirs") as b:
        ref, got = _stored(a), _stored(b)
        assert len(b.recordings()) == len({r.path for r in b.recordings()}) == 3  # each file exactly once
        assert [os.path.basename(p) for p, _ in b.catalog.failures()] == ["broken.wav"]
    assert ref.keys() == got.keys()
    for name, (sha1, duration, X, rate) in ref.items():
        assert got[name][:2] == (sha1, duration) and got[name][3] == rate
        np.testing.assert_array_equal(got[name][2], X)


def test_a_second_run_on_the_cluster_has_nothing_to_do(indexed, audio_dir, client):
    from mirsearch.cluster import dask_producer
    from mirsearch.collection import Collection

    with Collection.open(indexed[0] / "dask.mirs") as coll:
        again = coll.add([audio_dir], producer=dask_producer(client))
    assert (len(again.unchanged), len(again.known_failures), again.added, again.failed) == (3, 1, [], [])


def _same_matches(got, ref):
    """The same matches, bit for bit (recording, transposition, start, end, cost)."""
    assert len(got) == len(ref) > 0
    key = [(m.recording_id, m.transposition, m.start, m.end, m.cost) for m in ref]
    assert [(m.recording_id, m.transposition, m.start, m.end, m.cost) for m in got] == key


def test_theme_search_on_shards_equals_local(indexed, renderings, client):
    from mirsearch.collection import Collection
    from mirsearch.search.query import ThemeQuery
    from mirsearch.service import run
    from mirsearch.service.theme import ThemeRequest

    root = indexed[0]
    theme, _ = theme_of(renderings["a"], 0, 8)
    with Collection.open(root / "local.mirs", readonly=True) as coll:
        for top, per in ((10, 3), (3, 1)):
            options = {"query": ThemeQuery.of(theme), "top": top, "per_recording": per, "show_all": True}
            ref = run("theme", ThemeRequest(**options), collection=coll)
            got = run("theme", ThemeRequest(**options, dask=SPEC), collection=coll)
            _same_matches(got.matches, ref.matches)
            assert [m.extra["confidence"] for m in got.matches] == [m.extra["confidence"] for m in ref.matches]
        assert got.query["dask"] == SPEC and got.query["cascade"] == "exhaustive"
        # a cascade is not sharded: it runs in this process and answers exactly as without --dask
        options = {"query": ThemeQuery.of(theme), "cascade": "coarse", "show_all": True}
        ref = run("theme", ThemeRequest(**options), collection=coll)
        got = run("theme", ThemeRequest(**options, dask=SPEC), collection=coll)
        _same_matches(got.matches, ref.matches)
        assert got.query["dask"] is None and got.query["cascade"] == "coarse"


def _excerpt(rendering, t0: float, t1: float):
    from mirsearch.audio import SR, load_audio
    from mirsearch.search.audio_query import AudioQuery

    y, sr = load_audio(rendering.path, sr=SR)
    return AudioQuery.from_samples(y[int(t0 * sr) : int(t1 * sr)], sr, name="excerpt")


def test_passage_search_on_shards_equals_local(indexed, renderings, client):
    from mirsearch.collection import Collection
    from mirsearch.service import run
    from mirsearch.service.audio import PassagesRequest

    root = indexed[0]
    query = _excerpt(renderings["a"], 5.0, 20.0)
    with Collection.open(root / "local.mirs", readonly=True) as coll:
        for method in ("scaling",):
            ref = run("passages", PassagesRequest(query=query, top=6, method=method), collection=coll)
            got = run("passages", PassagesRequest(query=query, top=6, method=method, dask=SPEC), collection=coll)
            _same_matches(got.matches, ref.matches)
            assert [m.extra["rank"] for m in got.matches] == list(range(1, len(ref.matches) + 1))
            assert [c.recording_id for c in got.curves] == [c.recording_id for c in ref.curves]
            for g, r in zip(got.curves, ref.curves, strict=True):
                np.testing.assert_array_equal(g.cost, r.cost)


def test_a_shard_lost_with_its_worker_is_scattered_again(indexed, renderings, client):
    from mirsearch.cluster import sharded
    from mirsearch.collection import Collection

    root = indexed[0]
    theme, _ = theme_of(renderings["b"], 2, 8)
    search = sharded(SPEC)
    with Collection.open(root / "local.mirs", readonly=True) as coll:
        first = search.theme(coll, theme, features="chroma", top=5, per_recording=2)
        pids = client.run(os.getpid)
        os.kill(pids[sorted(pids)[0]], signal.SIGKILL)
        time.sleep(0.5)
        again = search.theme(coll, theme, features="chroma", top=5, per_recording=2)
    _same_matches(again, first)


def test_identify_on_shards_equals_local(indexed, renderings, client):
    from mirsearch.collection import Collection
    from mirsearch.service import run
    from mirsearch.service.identify import IdentifyRequest, ScanRequest

    root = indexed[0]
    query = _excerpt(renderings["b"], 12.0, 20.0)
    long_query = _excerpt(renderings["c"], 0.0, 30.0)
    with Collection.open(root / "local.mirs", readonly=True) as coll:
        ref = run("identify", IdentifyRequest(query=query), collection=coll)
        got = run("identify", IdentifyRequest(query=query, dask=SPEC), collection=coll)
        scan_ref = run("identify-scan", ScanRequest(query=long_query), collection=coll)
        scan_got = run("identify-scan", ScanRequest(query=long_query, dask=SPEC), collection=coll)
    assert ref.matches and ref.matches[0].recording.endswith(renderings["b"].path.name)
    assert ref.stats["hashes"] == got.stats["hashes"]
    assert got.matches == ref.matches  # recordings, offsets, speeds, pitch shifts and scores, bit for bit
    assert scan_got.stretches == scan_ref.stretches and len(scan_ref.stretches) > 0


def test_fingerprint_shards_give_the_local_lookup_in_its_order():
    """In-process: the shards' entries merged by their rows in the whole index are the whole index's lookup bit
    for bit, in its order (which the line fit of the verification depends on), also after an incremental
    update (a bucket is then not in recording order) and with too common hashes skipped."""
    from dataclasses import fields

    from mirsearch.cluster.identify import _bucket_task, _lookup_task, merge_placed, shard_of
    from mirsearch.features import fingerprint as fp
    from mirsearch.index.fingerprints import FingerprintIndex

    def peaks(seed):
        r = np.random.default_rng(seed)
        t, f, m = np.sort(r.uniform(0, 3000, 3000)), r.uniform(0, 200, 3000), r.uniform(0, 1, 3000)
        return np.stack([t, f, m]).astype(np.float32)

    lists = {i: peaks(1 + i % 4) for i in range(1, 9)}  # recordings i and i + 4 alike: buckets span shards
    whole = FingerprintIndex.from_peaks({i: lists[i] for i in (5, 6, 7, 8)}, peak_config=fp.fingerprint_config())
    whole = whole.updated({i: lists[i] for i in (3, 1, 2, 4)}, dict.fromkeys(range(1, 9), ""))
    query = lists[3][:, 500:900].copy()
    query[0] -= query[0, 0]
    hashes, source = fp.query_hashes(fp.triplets(query, hconfig=whole.hconfig, query=True), hconfig=whole.hconfig)
    shards = [shard_of(whole, g + 1) for g in balance(np.ones(8), 3)]
    assert 3 in shards[2].recordings and 7 in shards[0].recordings  # the query's two recordings: two shards
    for max_bucket in (400, 2, 1):  # 1: every hash is too common (all are shared by two recordings)
        ref = whole.lookup(hashes, source, max_bucket=max_bucket)
        keep = sum(_bucket_task(s, hashes) for s in shards) <= max_bucket
        got = merge_placed([_lookup_task(s, hashes[keep], source[keep]) for s in shards])
        assert (ref.query.size > 0) == (max_bucket > 1)
        for f in fields(ref):
            a, b = getattr(ref, f.name), getattr(got, f.name)
            assert a.dtype == b.dtype and np.array_equal(a, b), f.name
    assert shard_of(whole, [99]) is None


def test_similarity_shards_rank_as_the_local_index():
    """In-process, 2,500 clustered vectors (the local search goes through HNSW): the shards' exact answers,
    merged, equal the exact index's bit for bit, and here also the local HNSW answer."""
    from mirsearch.cluster.similar import SimilarityPlan, _nearest_task, merge_nearest
    from mirsearch.describe.similarity import Normaliser, SimilarityIndex

    n, rng = 2500, np.random.default_rng(7)
    centres = 2.0 * rng.standard_normal((40, 406))
    V = centres[rng.integers(0, 40, n)] + rng.standard_normal((n, 406)) * rng.uniform(0.5, 3.0, 406)
    V = (V * rng.uniform(0.1, 10.0, 406)).astype(np.float32)
    ids = 2 * np.arange(n) + 5
    local, exact = SimilarityIndex(ids, V), SimilarityIndex(ids, V, kind="exact")
    assert local.kind == "hnsw" and local.normaliser.source == "collection"
    plan = SimilarityPlan(ids, V, Normaliser.fit(V))
    shards = [plan.shard(ids[g]) for g in balance(np.ones(n), 3)]
    for rid in ids[rng.choice(n, 25, replace=False)]:
        v = plan.vector(rid)
        assert np.array_equal(v, local.vector(rid))
        got = merge_nearest([_nearest_task(s, v, 20, int(rid)) for s in shards], 20)
        assert got == exact.search(v, top=20, exclude=int(rid)) == local.search(v, top=20, exclude=int(rid))
    with pytest.raises(CollectionError, match="recording_id=4"):
        plan.vector(4)


def test_similar_on_shards_equals_local(indexed, renderings, client, monkeypatch):
    from mirsearch.collection import Collection
    from mirsearch.describe import similarity
    from mirsearch.service import run
    from mirsearch.service.similar import SimilarAudioRequest, SimilarRequest

    query = _excerpt(renderings["c"], 0.0, 1e4)  # the whole file: its own vector
    for min_collection, normalised in ((30, "reference"), (2, "collection")):  # 3 recordings: both rules
        monkeypatch.setattr(similarity, "MIN_COLLECTION", min_collection)
        with Collection.open(indexed[0] / "local.mirs", readonly=True) as coll:
            for rec in coll.recordings():
                ref = run("similar", SimilarRequest(recording=rec.id, top=5), collection=coll)
                got = run("similar", SimilarRequest(recording=rec.id, top=5, dask=SPEC), collection=coll)
                assert got.matches == ref.matches and len(ref.matches) == 2  # ids and distances, bit for bit
                assert (got.query["normalised"], got.query["dask"], got.stats["index"]) == (
                    normalised, SPEC, "exact-sharded")  # fmt: skip
            ref = run("similar-audio", SimilarAudioRequest(query=query, top=3), collection=coll)
            got = run("similar-audio", SimilarAudioRequest(query=query, top=3, dask=SPEC), collection=coll)
            assert got.matches == ref.matches and len(ref.matches) == 3
            assert ref.matches[0].recording.endswith(renderings["c"].path.name) and ref.matches[0].distance < 1e-3


def test_the_server_fans_searches_out(indexed, client):
    from fastapi.testclient import TestClient

    from mirsearch.collection import Collection
    from mirsearch.search.query import ThemeQuery
    from mirsearch.server.app import create_app
    from mirsearch.service import run
    from mirsearch.service.similar import SimilarRequest
    from mirsearch.service.theme import ThemeRequest

    root = indexed[0] / "local.mirs"
    notes = "G A B C D C B A"
    with Collection.open(root, readonly=True) as coll:
        ref = run("theme", ThemeRequest(query=ThemeQuery.from_text(notes), top=5, show_all=True), collection=coll)
        alike = run("similar", SimilarRequest(recording=1, top=2), collection=coll)
    with TestClient(create_app(root, dask=SPEC), base_url="http://localhost") as c:
        answer = c.post("/api/search/theme", json={"notes": notes, "top": 5, "show_all": True}).json()
        refused = c.post("/api/search/theme", json={"notes": notes, "dask": "local:8"})
        similar = c.get("/api/recordings/1/similar", params={"top": 2}).json()
        refused_too = c.get("/api/recordings/1/similar", params={"top": 2, "dask": "local:8"})
    assert answer["query"]["dask"] == SPEC
    assert [(m["recording_id"], m["start"]) for m in answer["matches"]] == [
        (m.recording_id, round(m.start, 3)) for m in ref.matches
    ]
    assert refused.status_code == 422  # the cluster is the server's choice, not a client's
    assert (similar["query"]["dask"], similar["stats"]["index"]) == (SPEC, "exact-sharded")
    assert [(m["recording_id"], m["distance"]) for m in similar["matches"]] == [
        (m.recording_id, round(m.distance, 5)) for m in alike.matches
    ]
    assert refused_too.status_code == 422
