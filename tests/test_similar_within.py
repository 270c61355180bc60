"""Within-recording whitening of the similarity vectors (built, off by default): the transform, its fallbacks
and the index and tasks with it on."""

import numpy as np
import pytest

from mirsearch.describe import similarity as sim
from mirsearch.describe.similarity import (
    VECTOR_DIM,
    Normaliser,
    SimilarityIndex,
    collection_normaliser,
    part_vectors,
    similar_search,
    within_parts,
    within_transform,
)
from mirsearch.errors import ParameterError


def _recordings(rng, n=6, parts=4, dim=5):
    """Recordings whose parts vary a lot along dimension 0 (sections) and whose means differ along dimension 1."""
    out = []
    for i in range(n):
        P = 0.01 * rng.standard_normal((parts, dim))
        P[:, 0] += 5.0 * rng.standard_normal(parts)
        P[:, 1] += float(i)
        out.append(P)
    return out


def test_within_transform_whitens_the_within_recording_covariance():
    rng = np.random.default_rng(0)
    parts = _recordings(rng, n=40, parts=6)
    W = np.concatenate([P - P.mean(axis=0) for P in parts])
    e = np.linalg.eigvalsh(np.cov(W.T))
    for shrink in (1e-9, 0.1):  # U^T S_w U = diag(e): the map leaves e / (e + shrink mean(e))
        T = within_transform(parts, shrink=shrink).astype(np.float64)
        want = np.diag(e / (e + shrink * e.mean()))
        np.testing.assert_allclose(T.T @ np.cov(W.T) @ T, want, atol=1e-4)
    T = within_transform(parts, shrink=1e-9)
    # the direction in which sections vary shrinks against the one in which recordings differ
    scale = np.linalg.norm(T, axis=1)
    assert scale[0] < 0.05 * scale[1]


def test_within_transform_needs_two_recordings_with_parts():
    rng = np.random.default_rng(1)
    one = _recordings(rng, n=1)
    assert within_transform(one) is None
    assert within_transform([p[:1] for p in _recordings(rng)]) is None  # single parts carry no within variation
    with pytest.raises(ParameterError):
        within_transform(_recordings(rng), shrink=0.0)


def test_collection_normaliser_with_within_parts():
    rng = np.random.default_rng(2)
    V = rng.standard_normal((40, VECTOR_DIM)).astype(np.float32)
    within = [V[i] + 0.1 * rng.standard_normal((3, VECTOR_DIM)) for i in range(len(V))]
    plain, norm = collection_normaliser(V), collection_normaliser(V, within=within)
    assert plain.transform is None and norm.transform.shape == (VECTOR_DIM, VECTOR_DIM)
    np.testing.assert_allclose(norm(V), plain(V) @ norm.transform, rtol=1e-4, atol=1e-4)
    T = within_transform([plain(P) for P in within])
    np.testing.assert_allclose(norm.transform, T)
    short = [w[:1] for w in within]  # recordings too short for parts: the plain standardisation
    assert collection_normaliser(V, within=short).transform is None
    assert collection_normaliser(V[:5], within=within[:5]).source == "reference"  # small collections


def test_within_parts_need_long_recordings():
    from mirsearch.features.timbre_stats import extract_timbre

    t = np.arange(int(13.0 * 22050)) / 22050
    X, _ = extract_timbre((0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), sr=22050)  # 4 segments
    from mirsearch.describe.similarity_vector import search_vector

    np.testing.assert_allclose(within_parts(X), part_vectors(X, parts=1, vector=search_vector))
    np.testing.assert_allclose(within_parts(X)[0], search_vector(X))  # the search vector, as the index's
    long = np.concatenate([X] * 5, axis=1)  # 20 segments: 2 parts of >= 8
    assert within_parts(long).shape == (2, len(search_vector(X)))


def test_index_and_search_with_the_transform():
    rng = np.random.default_rng(3)
    V = rng.standard_normal((40, VECTOR_DIM)).astype(np.float32)
    within = [V[i] + 0.1 * rng.standard_normal((3, VECTOR_DIM)) for i in range(len(V))]
    norm = collection_normaliser(V, within=within)
    index = SimilarityIndex(np.arange(100, 140), V, normaliser=norm)
    np.testing.assert_allclose(index.vector(100), norm(V[:1])[0], rtol=1e-4, atol=1e-3)
    q = index.vector(105)
    found = similar_search(index, q, top=5, exclude=105)
    d = np.abs(np.asarray(index.index.vectors) - q).mean(axis=1)
    d[5] = np.inf
    assert [r for r, _ in found] == list(100 + np.argsort(d)[:5])  # expansion WITHIN_EXPAND = 0: exact L1
    assert sim.WITHIN is False  # off by default (docs/benchmarks.md, session 12)
    assert Normaliser(norm.mean, norm.scale, "x").transform is None


def test_collection_index_and_dask_plan_share_the_within_normaliser(tmp_path, monkeypatch):
    import soundfile as sf

    from mirsearch.cluster.similar import plan_of
    from mirsearch.collection import Collection
    from mirsearch.describe.similarity import collection_index, normalised_collection
    from mirsearch.service import run
    from mirsearch.service.similar import SimilarRequest

    sr, rng = 22050, np.random.default_rng(4)
    t = np.arange(int(66 * sr)) / sr  # 17 stored segments: two parts of >= 8
    paths = []
    for i in range(6):
        f = 110 * (1 + 0.15 * i) * (1 + 0.5 * (t > 33))  # the second half an octave up: sections differ
        y = np.sin(2 * np.pi * f * t) + (0.05 + 0.1 * (i % 2)) * rng.standard_normal(t.size)
        paths.append(tmp_path / f"r{i}.wav")
        sf.write(paths[-1], (0.2 * y / np.abs(y).max()).astype(np.float32), sr)
    monkeypatch.setattr(sim, "MIN_COLLECTION", 4)
    monkeypatch.setattr(sim, "WITHIN", True)
    with Collection.create(tmp_path / "c.mirs", features=["timbre"]) as coll:
        assert not coll.add([str(p) for p in paths], jobs=1).failed
    with Collection.open(tmp_path / "c.mirs", readonly=True) as coll:
        index = collection_index(coll)
        ids, V, norm = normalised_collection(coll)
        assert index.normaliser.transform is not None and index.normaliser.source.endswith("within-recording")
        np.testing.assert_array_equal(norm.transform, index.normaliser.transform)
        np.testing.assert_array_equal(plan_of(coll).normaliser.transform, index.normaliser.transform)
        answer = run("similar", SimilarRequest(recording=int(ids[0]), top=3), collection=coll)
        want = similar_search(index, index.vector(int(ids[0])), top=3, exclude=int(ids[0]))
        assert [m.recording_id for m in answer.matches] == [r for r, _ in want]
