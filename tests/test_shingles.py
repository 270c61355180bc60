"""Shingle index: shingles, ANN indexes, reductions, triplet training, cross-version search.

Real material: the FluidSynth renderings of tests/conftest.py (chorale "a" at 1x, 0.7x and 1.4x speed,
chorales "b" and "c").
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mirsearch.collection import Collection
from mirsearch.errors import CollectionError, InputError, ParameterError
from mirsearch.features.shingles import (
    DEFAULT_CONFIG,
    REFERENCE_CONFIG,
    ShingleConfig,
    chroma_shingles,
    scale_tempo,
    shingles,
)
from mirsearch.index.ann import build_index, load_index
from mirsearch.index.shingle_store import ShingleStore


# -- shingles ----------------------------------------------------------------------------------------------
def test_shingle_shapes_positions_and_layout():
    X = np.arange(12 * 30, dtype=np.float32).reshape(12, 30) + 1.0
    S, starts = shingles(X, length=20, hop=1)
    assert S.shape == (11, 240) and S.dtype == np.float32
    np.testing.assert_array_equal(starts, np.arange(11))
    np.testing.assert_allclose(np.linalg.norm(S, axis=1), 1.0, rtol=1e-6)
    for i in (0, 5, 10):  # time-major layout: S[i].reshape(20, 12) are frames i .. i+19
        block = X[:, i : i + 20].T
        np.testing.assert_allclose(S[i].reshape(20, 12), block / np.linalg.norm(block), rtol=1e-6)
    S3, starts3 = shingles(X, length=20, hop=3)
    np.testing.assert_array_equal(starts3, [0, 3, 6, 9])
    np.testing.assert_allclose(S3[1], S[3])
    S0, st0 = shingles(X[:, :19], length=20)
    assert S0.shape == (0, 240) and st0.shape == (0,)
    with pytest.raises(ParameterError):
        shingles(np.zeros((13, 40)), length=20)


def test_scale_tempo_resamples_time_axis():
    C = np.tile(np.arange(100, dtype=np.float32), (12, 1))
    fast = scale_tempo(C, tempo_factor=1.25)
    slow = scale_tempo(C, tempo_factor=0.8)
    assert fast.shape == (12, 80) and slow.shape == (12, 125)
    np.testing.assert_allclose(fast[0, :5], [0, 1.25, 2.5, 3.75, 5.0], atol=1e-5)
    np.testing.assert_allclose(slow[0, :3], [0, 0.8, 1.6], atol=1e-5)
    assert np.all(C[0] == np.arange(100))  # input untouched
    with pytest.raises(ParameterError):
        scale_tempo(C, tempo_factor=0)


def test_chroma_shingles_times_in_unscaled_seconds(rng):
    C = rng.random((12, 600)).astype(np.float32)  # 60 s at 10 Hz
    S, t = chroma_shingles(C, config=REFERENCE_CONFIG)
    assert S.shape == (41, 240)  # 60 CENS frames at 1 Hz -> 41 shingles
    np.testing.assert_allclose(t[:3], [0, 1, 2])
    S2, t2 = chroma_shingles(C, tempo_factor=1.5, config=REFERENCE_CONFIG)  # 40 s -> 21 shingles, 1.5 s apart
    assert S2.shape == (21, 240)
    np.testing.assert_allclose(t2[:3], [0, 1.5, 3.0])
    # the default: 20 frames of 2 Hz CENS (10 s) every 2 frames (1 s): 120 frames -> 51 shingles
    S3, t3 = chroma_shingles(C)
    assert S3.shape == (51, 240) and DEFAULT_CONFIG.frame_rate == 2.0
    np.testing.assert_allclose(t3[:3], [0, 1, 2])


# -- collections -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shingle_collection(renderings, tmp_path_factory):
    """A collection of chorales a, b, c and a at 1.4x speed (a_slow is kept out for queries)."""
    root = tmp_path_factory.mktemp("shingles") / "c.mirs"
    with Collection.create(root, features=["chroma", "chroma_upper"]) as coll:
        coll.add([str(renderings[k].path) for k in ("a", "b", "c", "a_fast")])
    return root


def _real_shingles(root, renderings) -> np.ndarray:
    """Real shingles of every recording at 7 tempo factors and 12 transpositions (~4.5 k vectors)."""
    out = []
    with Collection.open(root, readonly=True) as coll:
        for r in coll.recordings():
            C = np.asarray(coll.load_features(r.id)[0])
            for f in (0.6, 0.7, 0.8, 0.9, 1.0, 1.15, 1.3):
                for t in range(12):
                    out.append(chroma_shingles(np.roll(C, t, axis=0), tempo_factor=f)[0])
    return np.concatenate(out)


def test_store_incremental_and_rebuild(renderings, tmp_path):
    root = tmp_path / "inc.mirs"
    with Collection.create(root, features=["chroma"]) as coll:
        coll.add([str(renderings["a"].path), str(renderings["b"].path)])
        store = ShingleStore.for_collection(coll)
        rep = store.update(coll)
        assert rep.added == 2 and not rep.rebuilt
        gen, n2 = store.generation, len(store)
        rec_ids, starts = store.meta()
        for r in coll.recordings():  # positions: consecutive start frames per recording
            s = starts[rec_ids == r.id]
            np.testing.assert_array_equal(s, np.arange(len(s)) * store.config.hop)
            C = np.asarray(coll.load_features(r.id)[0])
            np.testing.assert_allclose(store.vectors()[rec_ids == r.id], chroma_shingles(C)[0], atol=1e-6)
        coll.add([str(renderings["c"].path)])
        rep = store.update(coll)
        assert rep.added == 1 and rep.rows_added == len(store) - n2 and store.generation == gen
        assert store.update(coll).added == 0  # nothing new
        # a removed recording forces a rebuild with a new generation
        coll.catalog.remove(coll.recordings()[0].id)
        rep = store.update(coll)
        assert rep.rebuilt and rep.removed == 1 and store.generation != gen
        assert set(store.meta()[0]) == {r.id for r in coll.recordings()}
        assert len(list(store.directory.glob("seg-*.npy"))) == 2  # old segments deleted


def test_index_incremental_add_matches_fresh_build(renderings, tmp_path):
    from mirsearch.index.shingle_index import ShingleIndex

    root = tmp_path / "inc2.mirs"
    with Collection.create(root, features=["chroma"]) as coll:
        coll.add([str(renderings["a"].path), str(renderings["b"].path)])
        idx = ShingleIndex.open(coll, reduction="none", index="hnsw")
        n_before = len(idx)
        coll.add([str(renderings["c"].path)])
        idx2 = ShingleIndex.open(coll, reduction="none", index="hnsw")
        assert not idx2.stats.rebuilt and idx2.stats.added == len(idx2) - n_before > 0
        idx3 = ShingleIndex.open(coll, reduction="none", index="hnsw", update=False)  # loaded from disk
        assert idx3.stats.added == 0 and not idx3.stats.rebuilt and len(idx3) == len(idx2)
        fresh = build_index("exact", idx2.store.vectors())
        Q = idx2.store.vectors()[::7]
        np.testing.assert_array_equal(idx3.ann.search(Q, k=1)[1], fresh.search(Q, k=1)[1])


# -- ANN indexes -------------------------------------------------------------------------------------------
def test_hnsw_and_kdtree_recall_against_exact_on_real_shingles(shingle_collection, renderings):
    from mirsearch.models.embedding import PCAReduction

    S = _real_shingles(shingle_collection, renderings)
    assert len(S) > 3000
    rng = np.random.default_rng(1)
    q = rng.choice(len(S), 200, replace=False)
    base = np.delete(np.arange(len(S)), q)
    X = PCAReduction.fit(S[base], dim=12).transform(S)
    exact = build_index("exact", X[base])
    _, truth = exact.search(X[q], k=10)
    for kind, params in (("kdtree", {}), ("hnsw", {"M": 16, "ef_construction": 100, "ef": 64})):
        index = build_index(kind, X[base], **params)
        _, found = index.search(X[q], k=10)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)])
        assert recall >= (1.0 if kind == "kdtree" else 0.95), (kind, recall)
    # a weak graph is measurably worse: the recall test can fail
    weak = build_index("hnsw", X[base], M=2, ef_construction=10, ef=10)
    _, found = weak.search(X[q], k=10)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)]) < 0.95


@pytest.mark.parametrize("kind", ["exact", "kdtree", "hnsw"])
def test_index_save_load_round_trip(kind, tmp_path, rng):
    X = rng.standard_normal((3000, 12)).astype(np.float32)
    index = build_index(kind, X[:2000])
    index.add(X[2000:])  # incremental add keeps labels consecutive
    Q = rng.standard_normal((20, 12)).astype(np.float32)
    D, L = index.search(Q, k=5)
    index.save(tmp_path / kind)
    loaded = load_index(tmp_path / kind)
    assert len(loaded) == 3000 and loaded.params == index.params
    assert isinstance(loaded.vectors, np.memmap)
    D2, L2 = loaded.search(Q, k=5)
    np.testing.assert_array_equal(L, L2)
    np.testing.assert_allclose(D, D2, rtol=1e-5)
    # exact Euclidean distances
    np.testing.assert_allclose(D[:, 0], np.linalg.norm(X[L[:, 0]] - Q, axis=1), rtol=1e-4)
    # more neighbours than vectors: padded with -1 / inf
    small = build_index(kind, X[:3])
    d, lab = small.search(Q[:1], k=5)
    assert list(lab[0, 3:]) == [-1, -1] and np.all(np.isinf(d[0, 3:]))
    # a config that disagrees with the files (interrupted save) is detected
    cfg = json.loads((tmp_path / kind / "config.json").read_text())
    cfg["count"] = 2999
    (tmp_path / kind / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CollectionError):
        load_index(tmp_path / kind)


def test_hnsw_defaults_depend_on_dimension(rng):
    from mirsearch.index.ann import HNSW_DEFAULTS, make_index

    low, high = make_index("hnsw", 12), make_index("hnsw", 240)
    assert (low.params["M"], low.params["ef_construction"], low.params["ef"]) == HNSW_DEFAULTS["low"] == (8, 64, 16)
    assert (high.params["M"], high.params["ef_construction"], high.params["ef"]) == HNSW_DEFAULTS["high"]
    assert make_index("hnsw", 12, M=24).params["M"] == 24
    # a search for more neighbours than ef still returns k of them
    index = build_index("hnsw", rng.standard_normal((500, 12)).astype(np.float32))
    _, labels = index.search(rng.standard_normal((3, 12)).astype(np.float32), k=40)
    assert labels.shape == (3, 40) and (labels >= 0).all()


def test_index_rejects_bad_input(rng):
    index = build_index("exact", rng.standard_normal((10, 4)).astype(np.float32))
    with pytest.raises(ParameterError):
        index.search(np.zeros((1, 5), np.float32))
    with pytest.raises(ParameterError):
        index.add(np.full((1, 4), np.nan, np.float32))
    with pytest.raises(ParameterError):
        build_index("balltree", np.zeros((2, 4), np.float32))
    with pytest.raises(ParameterError):
        build_index("hnsw", np.zeros((2, 4), np.float32), ef_search=10)  # typo is not swallowed


# -- reductions --------------------------------------------------------------------------------------------
def test_pca_dimensions_and_round_trip(shingle_collection, renderings, tmp_path):
    from mirsearch.models.embedding import PCAReduction, load_bundle

    S = _real_shingles(shingle_collection, renderings)[::5]
    explained = []
    for dim in (6, 12, 30):
        pca = PCAReduction.fit(S, dim=dim)
        Z = pca.transform(S)
        assert Z.shape == (len(S), dim) and Z.dtype == np.float32
        np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(dim), atol=1e-5)
        explained.append(pca.config["training"]["explained_variance"])
    assert explained[0] < explained[1] < explained[2] <= 1.0
    pca.save(tmp_path / "pca30")
    again = load_bundle(tmp_path / "pca30")
    np.testing.assert_allclose(again.transform(S[:50]), pca.transform(S[:50]), atol=1e-6)
    assert again.model_id == pca.model_id != "unsaved"
    with pytest.raises(ParameterError):
        PCAReduction.fit(S, dim=241)
    with pytest.raises(ParameterError):
        pca.transform(np.zeros((2, 12)))


def test_whitening_commutes_with_transposition_and_round_trips(shingle_collection, renderings, tmp_path):
    from mirsearch.models.embedding import WhitenReduction, load_bundle

    S = _real_shingles(shingle_collection, renderings)[::7]
    white = WhitenReduction.fit(S)
    Z = white.transform(S)
    assert Z.shape == S.shape and Z.dtype == np.float32 and white.name == "whiten240"
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(white.W, white.W.T, atol=1e-4)
    # fitted in all 12 keys: whitening a transposed shingle = transposing the whitened one
    roll = np.roll(S.reshape(len(S), -1, 12), 5, axis=2).reshape(len(S), -1)
    rolled = np.roll(Z.reshape(len(Z), -1, 12), 5, axis=2).reshape(len(Z), -1)
    np.testing.assert_allclose(white.transform(roll), rolled, atol=1e-4)
    # in all 12 keys the whitened shingles have the covariance's eigenvalues l / (l + eps mean(l)): at most 1
    keys = np.concatenate([np.roll(S.reshape(len(S), -1, 12), t, axis=2).reshape(len(S), -1) for t in range(12)])
    values = np.linalg.eigvalsh(np.cov((keys - white.mean) @ white.W, rowvar=False))
    raw = np.linalg.eigvalsh(np.cov(keys, rowvar=False))
    expected = np.sort(raw / (raw + 0.1 * raw.mean()))
    np.testing.assert_allclose(np.sort(values), expected, atol=1e-3)
    white.save(tmp_path / "w")
    again = load_bundle(tmp_path / "w")
    np.testing.assert_allclose(again.transform(S[:50]), Z[:50], atol=1e-6)
    assert again.model_id == white.model_id != "unsaved" and again.rows_fitted == len(S)
    with pytest.raises(ParameterError):
        WhitenReduction.fit(S, eps=0.0)


def test_default_index_is_whitened_and_refitted_as_the_collection_grows(renderings, tmp_path):
    from mirsearch.index.shingle_index import ShingleIndex

    root = tmp_path / "w.mirs"
    with Collection.create(root, features=["chroma"]) as coll:
        coll.add([str(renderings["a"].path)])
        idx = ShingleIndex.open(coll, index="exact")
        assert idx.reduction.type == "whiten" and idx.reduction.rows_fitted == len(idx) > 0
        first = idx.reduction.model_id
        assert ShingleIndex.open(coll, index="exact").reduction.model_id == first  # cached fit
        coll.add([str(renderings["b"].path), str(renderings["c"].path)])
        grown = ShingleIndex.open(coll, index="exact")
        assert grown.reduction.model_id != first and grown.reduction.rows_fitted == len(grown) > 2 * len(idx)
        assert grown.stats.rebuilt and len(grown.ann) == len(grown)


def _versions_for_training(shingle_collection):
    """Two works with versions: chorale a (1x and 1.4x renderings) and chorale b (+ a tempo-scaled copy)."""
    from mirsearch.training.embedding import TrainingVersion

    with Collection.open(shingle_collection, readonly=True) as coll:
        recs = {r.path.rsplit("/", 1)[-1]: r.id for r in coll.recordings()}
        C = {name: np.asarray(coll.load_features(rid)[0]) for name, rid in recs.items()}
    a = next(n for n in C if "bwv66.6_x1_" in n)
    a_fast = next(n for n in C if "x1.4" in n)
    b = next(n for n in C if "bwv269" in n)
    c = next(n for n in C if "bwv153" in n)
    spq = 0.6  # seconds per quarter at 100 bpm
    out = []
    for work, name, speed in (("a", a, 1.0), ("a", a_fast, 1.4), ("b", b, 1.0), ("c", c, 1.0)):
        dur = C[name].shape[1] / 10.0
        out.append(TrainingVersion(work, name, C[name], [0.0, dur * speed / spq], [0.0, dur]))
    for work, name in (("b", b), ("c", c)):  # second versions: the same rendering played 0.85x as fast
        Cs = scale_tempo(C[name], tempo_factor=0.85)
        dur = C[name].shape[1] / 10.0
        out.append(TrainingVersion(work, name + "-slow", Cs, [0.0, dur / spq], [0.0, dur / 0.85]))
    return out


def test_triplet_loss_decreases_on_a_tiny_batch(shingle_collection):
    import torch

    from mirsearch.models.bundle import torch_threads
    from mirsearch.models.embedding import new_network
    from mirsearch.training.embedding import PairSampler, triplet_loss

    torch.manual_seed(0)
    sampler = PairSampler(_versions_for_training(shingle_collection))
    A, P, W = [], [], []
    rng = np.random.default_rng(0)
    for _ in range(6):
        a, p, w = sampler.batch(rng, 3)
        A.append(a)
        P.append(p)
        W.append(w)
    A, P, W = np.concatenate(A), np.concatenate(P), np.concatenate(W)
    # positives correspond: closer to their anchor than a random shingle of another work on average
    assert np.mean(np.linalg.norm(A - P, axis=1)) < np.mean(np.linalg.norm(A - np.roll(P, 3, axis=0), axis=1))
    net = new_network({"dim": 6, "arch": "mlp"})  # the CNN's forward pass is tested with the shipped bundle
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    x, w = torch.from_numpy(np.concatenate([A, P])), torch.from_numpy(W)
    with torch_threads(1):  # two spinning threads on a busy 2-core machine are 100x slower
        with torch.no_grad():
            net.eval()
            first = float(triplet_loss(net(x), w, margin=0.5)[0])
        net.train()
        for _ in range(40):
            loss, _ = triplet_loss(net(x), w, margin=0.5)
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            last, stats = triplet_loss(net(x), w, margin=0.5)
    assert float(last) < 0.5 * first, (first, float(last))
    assert stats["accuracy"] > 0.9


def test_triplet_mining_semi_hard_choice():
    import torch

    from mirsearch.training.embedding import triplet_loss

    # anchors 0, 1 (works 0, 1); positives 2, 3. On a line: anchor 0 at 0, its positive at 0.3;
    # negatives of anchor 0: 1 (at 0.4, semi-hard), 3 (at 2.0, easy).
    E = torch.tensor([[0.0], [0.4], [0.3], [2.0]])
    loss, stats = triplet_loss(E, torch.tensor([0, 1]), margin=0.2)
    # anchor 0: d_ap .3, semi-hard neg .4 -> .1
    # anchor 1: d_ap 1.6, negatives .4 / .1 both closer -> the least hard, .4 -> 1.4
    # anchor 2: d_ap .3, negatives .1 (hard) and 1.7 -> the farther one, beyond the margin -> 0
    # anchor 3: d_ap 1.6, negatives 2.0 / 1.7 -> 1.7 -> .1
    assert float(loss) == pytest.approx((0.1 + 1.4 + 0.0 + 0.1) / 4, abs=1e-5)
    assert stats["accuracy"] == pytest.approx(0.5)


# -- search ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reduction", "dim", "index"),
    [("none", None, "exact"), ("whiten", None, "hnsw"), ("pca", 12, "hnsw"), ("embedding", 12, "hnsw")],
)
def test_search_finds_version_at_another_tempo(shingle_collection, renderings, reduction, dim, index):
    from mirsearch.features.audio_match import SHINGLE_MATCH
    from mirsearch.index.shingle_index import IndexSpec
    from mirsearch.search.audio_query import AudioQuery
    from mirsearch.search.shingles import ShingleSearchOptions, search_shingles

    # query: chorale a at 0.7x (35 s; not in the collection); its 1x version (24 s) must come first, at
    # the tempo factor 1/0.7; the 1.4x version (18 s) is shorter than one shingle and cannot be found
    factors = (1.0, 1.2, 1.43, 1.7, 2.0)
    with Collection.open(shingle_collection) as coll:
        options = ShingleSearchOptions(
            match=SHINGLE_MATCH.replace(tempo_factors=factors), index=IndexSpec(index, reduction, dim)
        )
        matches = search_shingles(coll, AudioQuery.from_file(renderings["a_slow"].path), options)
        assert len(matches) == 3  # a, b, c; a_fast has no shingles
        best = matches[0]
        assert "bwv66.6_x1_" in best.recording, [m.recording for m in matches]
        assert best.cost < 0.5 * matches[1].cost
        assert best.extra["tempo_factor"] == 1.43 and best.extra["votes"] >= 10
        assert abs(best.start) <= 2.0 and abs(best.end - 24.0) <= 3.0
        with pytest.raises(InputError):  # 5 s: shorter than one shingle
            exact = ShingleSearchOptions(index=IndexSpec("exact", "none", None))
            search_shingles(coll, AudioQuery.from_file(renderings["a_slow"].path, end=5.0), exact)


def test_score_regions_mean_needs_the_whole_query_min_one_shingle():
    from mirsearch.search.shingles import QueryShingles, score_regions

    # one variant, 3 query shingles (positions 0, 1, 2). Recording 7: all three hit at implied start 10,
    # distance 0.3 each. Recording 8: only shingle 0 hits (0.1); the k-th distance (1.0) bounds the rest.
    qs = QueryShingles(np.zeros((3, 4), np.float32), np.zeros(3, np.int64), np.arange(3), [(1.0, 0, 22)])
    rec_ids = np.array([7, 7, 7, 8, 9])
    starts = np.array([10, 11, 12, 40, 0])
    L = np.array([[3, 0, 4], [1, 4, 4], [2, 4, 4]])
    D = np.array([[0.1, 0.3, 1.0], [0.3, 1.0, 1.0], [0.3, 1.0, 1.0]], np.float32)
    mean = score_regions(qs, D, L, rec_ids, starts)
    assert [g.recording_id for g in mean][:2] == [7, 8]
    assert mean[0].cost == pytest.approx(0.3) and mean[0].start == 10 and mean[0].votes == 3
    assert mean[1].cost == pytest.approx((0.1 + 1.0 + 1.0) / 3)
    least = score_regions(qs, D, L, rec_ids, starts, aggregate="min")
    assert [g.recording_id for g in least][:2] == [8, 7]
    assert least[0].cost == pytest.approx(0.1) and least[1].cost == pytest.approx(0.3)
    with pytest.raises(ParameterError):
        score_regions(qs, D, L, rec_ids, starts, aggregate="max")


def test_shingle_config_validation():
    with pytest.raises(ParameterError):
        ShingleConfig(length=0)
    assert ShingleConfig().dim == 240 and ShingleConfig().key == "cens41-10-L20-h1"
    assert ShingleConfig.from_dict(ShingleConfig(length=6, downsample=5).to_dict()) == ShingleConfig(
        length=6, downsample=5
    )


def _cascade(coll, theme, *, stats=None, top=10, per_recording=3, features="chroma", **spec):
    """A theme cascade given as a benchmark-style spec (:func:`cascade_from_spec`)."""
    from mirsearch.search.cascade import cascade_from_spec, cascade_search_theme

    cascade = cascade_from_spec(spec)
    return cascade_search_theme(
        coll, theme, cascade=cascade, top=top, per_recording=per_recording, features=features, stats=stats
    )


def test_theme_cascade_agrees_with_exhaustive_search(shingle_collection, renderings):
    from mirsearch.scores import parse_note_string
    from mirsearch.search.theme import search_theme

    from conftest import theme_of

    theme, (t0, t1) = theme_of(renderings["b"], 0, 10)
    with Collection.open(shingle_collection) as coll:
        full = search_theme(coll, theme, top=3, per_recording=1)
        stats = {}
        cascade = _cascade(coll, theme, top=3, per_recording=1, candidates=2, stats=stats)
        assert stats["candidates"] == 2 and not stats["fallback"] and stats["frames_searched"] < stats["frames_total"]
        assert "bwv269" in cascade[0].recording and abs(cascade[0].start - t0) < 1.5
        # the candidates are re-ranked by the exhaustive search's own DTW: identical matches
        assert (cascade[0].recording, cascade[0].start, cascade[0].end) == (
            full[0].recording,
            full[0].start,
            full[0].end,
        )
        assert cascade[0].cost == pytest.approx(full[0].cost, abs=1e-6)
        stats = {}
        regional = _cascade(coll, theme, top=1, candidates=1, regions=True, stats=stats)
        assert regional[0].recording == full[0].recording and abs(regional[0].start - full[0].start) < 0.2
        assert stats["frames_searched"] < 0.5 * stats["frames_total"]
        stats = {}
        indexed = _cascade(coll, theme, top=1, candidates=2, proposal="index", stats=stats)
        assert indexed[0].recording == full[0].recording and not stats["fallback"]
        stats = {}  # two quarter notes (1.2 s): shorter than a proposal shingle even when slowed down
        _cascade(coll, parse_note_string("C D"), top=1, proposal="index", stats=stats)
        assert stats["fallback"]


def test_shipped_embedding_bundle_loads_without_pickle():
    import torch

    from mirsearch.models.embedding import load_reduction, packaged_bundle

    path = packaged_bundle(12)
    state = torch.load(path / "weights.pt", weights_only=True)  # plain tensors only
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    red = load_reduction("embedding", dim=12)
    assert red.dim == 12 and red.model_id == json.loads((path / "config.json").read_text())["model_id"]
    S = chroma_shingles(np.random.default_rng(0).random((12, 400)).astype(np.float32))[0]
    Z = red.transform(S)
    assert Z.shape == (len(S), 12)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(InputError):
        load_reduction("embedding", dim=7)


def test_audio_cascade_reranks_proposals_with_dtw(shingle_collection, renderings):
    from mirsearch.features.audio_match import SHINGLE_MATCH
    from mirsearch.index.shingle_index import IndexSpec
    from mirsearch.search.audio_cascade import AudioCascadeOptions, cascade_search_audio
    from mirsearch.search.audio_query import AudioQuery

    query = AudioQuery.from_file(renderings["a_slow"].path)
    options = AudioCascadeOptions(
        match=SHINGLE_MATCH.replace(tempo_factors=(1.0, 1.2, 1.43, 1.7)),
        index=IndexSpec("exact", "none", None),
        verifier="cens",
    )
    with Collection.open(shingle_collection) as coll:
        stats = {}
        matches = cascade_search_audio(coll, query, options.replace(candidates=2), stats=stats)
        assert stats["candidates"] == 2 and len(matches) == 2
        assert "bwv66.6_x1_" in matches[0].recording and matches[0].cost < 0.5 * matches[1].cost
        assert matches[0].extra["tempo_factor"] == 1.43 and abs(matches[0].start) <= 2.0
        # the exhaustive stage 2 over every whole recording finds the same best match at the same cost
        full = cascade_search_audio(coll, query, options.replace(proposal="none", index=IndexSpec()), stats=stats)
        assert stats["candidates"] == len(coll.recordings()) and stats["frames_searched"] == stats["frames_total"]
        assert full[0].recording_id == matches[0].recording_id
        assert full[0].cost == pytest.approx(matches[0].cost, abs=1e-5)
        with pytest.raises(ParameterError):
            cascade_search_audio(coll, query, AudioCascadeOptions(proposal="coarse"))


def test_audio_cascade_passage_verifier_is_the_passage_search_on_the_candidates(shingle_collection, renderings):
    from mirsearch.audio import load_audio
    from mirsearch.features.audio_match import ALL_KEYS, PASSAGE_MATCH, SHINGLE_MATCH
    from mirsearch.index.shingle_index import IndexSpec
    from mirsearch.search.audio import PassageOptions, search_audio
    from mirsearch.search.audio_cascade import AudioCascadeOptions, cascade_search_audio
    from mirsearch.search.audio_query import AudioQuery

    y, sr = load_audio(renderings["a_slow"].path)
    query = AudioQuery.from_samples(y[: 15 * sr], sr)
    options = AudioCascadeOptions(
        top=3,
        match=SHINGLE_MATCH.replace(transpositions=ALL_KEYS),
        index=IndexSpec("exact", "none", None),
        verifier="passages",
    )
    with Collection.open(shingle_collection) as coll:
        ids = {r.id: r.path for r in coll.recordings()}
        full = search_audio(coll, query, PassageOptions(top=3, per_recording=1, match=PASSAGE_MATCH.replace(
            transpositions=ALL_KEYS))).matches  # fmt: skip
        stats = {}
        every = cascade_search_audio(coll, query, options.replace(proposal="none"), stats=stats)
        assert stats["candidates"] == len(ids)
        assert [(m.recording_id, m.start, m.end, m.cost) for m in every] == [
            (m.recording_id, m.start, m.end, m.cost) for m in full
        ]
        two = cascade_search_audio(coll, query, options.replace(candidates=2), stats=stats)
        assert stats["candidates"] == 2 and len(two) == 2 and two[0].extra["proposal_rank"] in (1, 2)
        assert "bwv66.6_x1_" in two[0].recording
        assert (two[0].recording_id, two[0].start, two[0].cost) == (full[0].recording_id, full[0].start, full[0].cost)
        rest = cascade_search_audio(coll, query, options.replace(exclude=(two[0].recording_id,)), stats=stats)
        # the other two recordings with shingles (a_fast is shorter than one shingle)
        assert two[0].recording_id not in {m.recording_id for m in rest} and stats["candidates"] == 2
        with pytest.raises(ParameterError):
            AudioCascadeOptions(verifier="dtw")


def test_audio_cascade_shingle_verifier_equals_exact_search_on_the_candidates(shingle_collection, renderings):
    from mirsearch.features.audio_match import SHINGLE_MATCH
    from mirsearch.index.shingle_index import IndexSpec
    from mirsearch.search.audio_cascade import AudioCascadeOptions, cascade_search_audio
    from mirsearch.search.audio_query import AudioQuery
    from mirsearch.search.shingles import ShingleSearchOptions, search_shingles

    query = AudioQuery.from_file(renderings["a_slow"].path)
    match = SHINGLE_MATCH.replace(tempo_factors=(1.0, 1.2, 1.43, 1.7))
    options = AudioCascadeOptions(top=3, match=match)  # whitened shingles, HNSW proposals, exact verification
    with Collection.open(shingle_collection) as coll:
        exact = search_shingles(coll, query, ShingleSearchOptions(top=3, match=match, index=IndexSpec("exact")))
        stats = {}
        every = cascade_search_audio(coll, query, options.replace(proposal="none"), stats=stats)
        assert stats["candidates"] == 3  # every recording with shingles (a_fast is shorter than one)
        got = [(m.recording_id, m.start, m.end, round(m.cost, 5)) for m in every]
        assert got == [(m.recording_id, m.start, m.end, round(m.cost, 5)) for m in exact]
        one = cascade_search_audio(coll, query, options.replace(candidates=1), stats=stats)
        assert stats["candidates"] == 1 and len(one) == 1 and "bwv66.6_x1_" in one[0].recording
        assert one[0].extra["tempo_factor"] == 1.43 and stats["rows_searched"] < len(coll.recordings()) * 40
        rest = cascade_search_audio(coll, query, options.replace(exclude=(one[0].recording_id,)), stats=stats)
        assert one[0].recording_id not in {m.recording_id for m in rest} and stats["candidates"] == 2


# -- note index (theme cascade on learned chroma) -----------------------------------------------------------
def _one_hot_rows(labels, *, low=()) -> np.ndarray:
    """Unit chroma rows, one-hot at ``labels`` (-1: flat row); frames in ``low`` get a weak peak (max 0.5)."""
    Y = np.full((len(labels), 12), 1 / np.sqrt(12), np.float32)
    for t, p in enumerate(labels):
        if p >= 0:
            Y[t] = 0.0
            Y[t, p] = 1.0
    for t in low:
        Y[t] = 0.3
        Y[t, labels[t]] = 0.5
        Y[t] /= np.linalg.norm(Y[t])
    return Y


def test_chroma_notes_drops_short_and_weak_runs_and_merges_repeats():
    from mirsearch.index.notes import chroma_notes, theme_pitch_classes
    from mirsearch.scores import parse_note_string

    # C x4, D x1 (too short), C x3 (merges with the first C), flat x2, E x3 (the first two weak), G x4
    labels = [0] * 4 + [2] + [0] * 3 + [-1] * 2 + [4] * 3 + [7] * 4
    pc, start, end = chroma_notes(_one_hot_rows(labels, low=(10, 11)), threshold=0.8, min_frames=2)
    assert pc.tolist() == [0, 7]  # the E run keeps one confident frame: too short
    assert start.tolist() == [0, 13] and end.tolist() == [8, 17]
    pc, start, end = chroma_notes(_one_hot_rows(labels), threshold=0.8, min_frames=2)
    assert pc.tolist() == [0, 4, 7] and start.tolist() == [0, 10, 13] and end.tolist() == [8, 13, 17]
    assert theme_pitch_classes(parse_note_string("G G G Eb F F F D")).tolist() == [7, 3, 5, 2]
    with pytest.raises(ParameterError, match="threshold"):
        chroma_notes(_one_hot_rows(labels), threshold=0.0)
    with pytest.raises(ParameterError, match="shape"):
        chroma_notes(np.zeros((12, 5), np.float32))


def test_interval_keys_are_transposition_invariant_and_skip_one_note():
    from mirsearch.index.notes import interval_keys, skip_interval_keys

    pc = np.array([7, 3, 5, 2, 0])
    k = interval_keys(pc, 3)
    assert k.tolist() == [8 * 144 + 2 * 12 + 9, 2 * 144 + 9 * 12 + 10]
    np.testing.assert_array_equal(interval_keys((pc + 5) % 12, 3), k)
    assert len(interval_keys(pc[:3], 3)) == 0
    # inserting a note (11) after the second one: a skip window of the longer sequence has the plain key
    k2, first = skip_interval_keys(np.array([7, 3, 11, 5, 2]), 3)
    assert k[0] in k2 and first[k2.tolist().index(k[0])] == 0


def test_note_index_finds_transposed_theme_with_an_inserted_note(rng):
    from mirsearch.index.notes import NoteIndex

    theme = np.array([7, 3, 5, 2, 0, 2, 3, 7, 5])
    planted = ((theme + 5) % 12).tolist()
    planted = planted[:3] + [(planted[2] + 6) % 12] + planted[3:]  # an extra note after the third one
    recs, offsets, span = [], [0], None
    for r in range(6):
        seq = [int(rng.integers(12))]
        while len(seq) < 120:  # random notes, no repetition
            seq.append(int((seq[-1] + rng.integers(1, 12)) % 12))
        if r == 4:  # the theme 5 semitones up at note 50 (neighbours differ from its ends)
            seq[50 : 50 + len(planted)] = planted
            seq[49], seq[50 + len(planted)] = (planted[0] + 1) % 12, (planted[-1] + 1) % 12
        durations = rng.integers(2, 6, len(seq))
        frames = np.concatenate([[0], np.cumsum(durations)])
        if r == 4:
            span = (frames[50], frames[50 + len(planted)])
        recs.append(_one_hot_rows(np.repeat(seq, durations)))
        offsets.append(offsets[-1] + int(frames[-1]))
    Y, offsets = np.concatenate(recs), np.array(offsets)
    plain = NoteIndex(Y, offsets, n=3, skips=False)
    index = NoteIndex(Y, offsets, n=3, skips=True)
    assert len(index) > len(plain)
    best = index.propose(theme, candidates=2, per_recording=1)[0]
    assert best.recording == 4 and best.transposition == 5
    assert index.start[best.first_note] <= span[0] and span[1] <= index.end[best.last_note]
    assert best.votes > plain.propose(theme, candidates=2)[0].votes  # the skip windows bridge the insert
    props = index.propose(theme, candidates=3, per_recording=2)
    assert len({p.recording for p in props}) <= 3 and all(p.first_note <= p.last_note for p in props)
    with pytest.raises(ParameterError, match="candidates"):
        index.propose(theme, candidates=0)


def test_align_notes_bridges_two_inserted_notes(rng):
    from mirsearch.index.notes import NoteIndex, align_notes

    theme = np.array([7, 3, 5, 2, 0, 2, 3, 7, 5])
    planted = ((theme + 3) % 12).tolist()
    planted = planted[:4] + [(planted[3] + 6) % 12, (planted[3] + 1) % 12] + planted[4:]  # two notes of a 2nd voice
    recs, offsets = [], [0]
    for r in range(5):
        seq = [int(rng.integers(12))]
        while len(seq) < 100:
            seq.append(int((seq[-1] + rng.integers(1, 12)) % 12))
        if r == 2:
            seq[40 : 40 + len(planted)] = planted
            seq[39], seq[40 + len(planted)] = (planted[0] + 1) % 12, (planted[-1] + 1) % 12
        labels = np.repeat(seq, 3)
        recs.append(_one_hot_rows(labels))
        offsets.append(offsets[-1] + len(labels))
    index = NoteIndex(np.concatenate(recs), np.array(offsets))
    score, first, last, shift = align_notes(theme, index)
    assert int(np.argmax(score)) == 2 and shift[2] == 3
    assert score[2] == pytest.approx(2.0 * len(theme) - 2 * 0.5)  # every note matched, two skipped
    base = index.note_offsets[2]
    assert (first[2] - base, last[2] - base) == (40, 40 + len(planted) - 1)
    # the interval keys cannot bridge two inserted notes as well: fewer windows agree
    assert index.propose(theme, candidates=1)[0].votes < len(theme) - 3
    assert align_notes(theme, index, transpositions=[0])[3][2] == 0  # only the allowed transposition
    with pytest.raises(ParameterError, match="match"):
        align_notes(theme, index, match=0.0)


def _smith_waterman(q, db, *, match=2.0, mismatch=-1.0, gap=0.5) -> float:
    """Textbook local alignment score (full matrix), the reference for :func:`align_notes`."""
    H = np.zeros((len(q) + 1, len(db) + 1))
    for i in range(1, len(q) + 1):
        for j in range(1, len(db) + 1):
            s = match if q[i - 1] == db[j - 1] else mismatch
            H[i, j] = max(0.0, H[i - 1, j - 1] + s, H[i - 1, j] - gap, H[i, j - 1] - gap)
    return float(H.max())


def test_align_notes_equals_textbook_smith_waterman(rng):
    from mirsearch.index.notes import NoteIndex, align_notes

    recs, offsets = [], [0]
    for _ in range(4):
        seq = [int(rng.integers(12))]
        while len(seq) < int(rng.integers(5, 40)):
            seq.append(int((seq[-1] + rng.integers(1, 12)) % 12))
        labels = np.repeat(seq, 2)
        recs.append(_one_hot_rows(labels))
        offsets.append(offsets[-1] + len(labels))
    index = NoteIndex(np.concatenate(recs), np.array(offsets))
    for trial in range(6):
        theme = rng.integers(0, 12, size=int(rng.integers(3, 12)))
        theme = theme[np.r_[True, theme[1:] != theme[:-1]]]
        shifts = [0, 4, 9] if trial % 2 else list(range(12))
        score, first, last, shift = align_notes(theme, index, transpositions=shifts)
        for r in range(4):
            notes = index.pc[index.note_offsets[r] : index.note_offsets[r + 1]]
            by_shift = [_smith_waterman((theme + t) % 12, notes) for t in shifts]
            assert score[r] == pytest.approx(max(by_shift))
            if score[r] > 0:
                assert by_shift[shifts.index(int(shift[r]))] == pytest.approx(score[r])
                assert index.note_offsets[r] <= first[r] <= last[r] < index.note_offsets[r + 1]


def _two_voice_rows(upper, lower, *, weak: float = 0.55) -> np.ndarray:
    """Unit chroma rows of two voices (-1: rest): the upper voice loud, the lower one at ``weak`` of it."""
    Y = np.full((len(upper), 12), 0.02, np.float32)
    for t, (u, v) in enumerate(zip(upper, lower, strict=True)):
        if u >= 0:
            Y[t, u] = 1.0
        if v >= 0:
            Y[t, v] = max(Y[t, v], weak if u >= 0 else 1.0)
    return Y / np.linalg.norm(Y, axis=1, keepdims=True)


def test_second_voice_notes_follow_the_weaker_voice_and_the_only_one():
    from mirsearch.index.notes import chroma_notes, second_voice_notes

    upper = [0] * 6 + [-1] * 6 + [5] * 6 + [7] * 6  # C, rest, F, G
    lower = [4] * 4 + [9] * 8 + [2] * 6 + [11] * 6  # E, A (alone while the upper voice rests), D, B
    Y = _two_voice_rows(upper, lower)
    assert chroma_notes(Y)[0].tolist() == [0, 9, 5, 7]  # the loud voice (and A where it is alone)
    pc, start, end = second_voice_notes(Y, second=0.4)
    assert pc.tolist() == [4, 9, 2, 11] and start.tolist() == [0, 4, 12, 18] and end.tolist() == [4, 12, 18, 24]
    assert second_voice_notes(Y, second=0.6)[0].tolist() == chroma_notes(Y)[0].tolist()  # no second voice that loud
    with pytest.raises(ParameterError, match="second"):
        second_voice_notes(Y, second=0.0)


def test_note_index_second_voice_proposes_a_theme_in_the_inner_voice(rng):
    from mirsearch.index.notes import NoteIndex, align_notes

    theme = np.array([7, 3, 5, 2, 0, 2, 3, 7, 5])
    recs, offsets = [], [0]
    for r in range(5):
        upper = [int(rng.integers(12))]
        while len(upper) < 80:
            upper.append(int((upper[-1] + rng.integers(1, 12)) % 12))
        lower = [(p + int(rng.integers(3, 9))) % 12 for p in upper]  # a random accompanying voice
        if r == 3:  # the theme (2 semitones up) in the lower voice, under notes of other pitch classes
            planted = ((theme + 2) % 12).tolist()
            lower[30 : 30 + len(planted)] = planted
            for i, p in enumerate(planted):
                if upper[30 + i] == p:
                    upper[30 + i] = (p + 6) % 12
        rows = _two_voice_rows(np.repeat(upper, 3), np.repeat(lower, 3))
        recs.append(rows)
        offsets.append(offsets[-1] + len(rows))
    Y, offsets = np.concatenate(recs), np.array(offsets)
    plain = NoteIndex(Y, offsets)
    both = NoteIndex(Y, offsets, second=0.4)
    assert 3 not in {p.recording for p in plain.propose(theme, candidates=2)}
    best = both.propose(theme, candidates=1, per_recording=1)[0]
    assert best.recording == 3 and best.transposition == 2 and best.votes == len(theme) - 3
    assert both.note_segment[best.first_note] == both.note_segment[best.last_note]  # within the second stream
    assert 30 * 3 >= both.start[best.first_note] and both.end[best.last_note] >= (30 + len(theme)) * 3
    assert len(both.pc) > len(plain.pc) and np.all(np.diff(both.segment_offsets) >= 0)
    score, *_ = align_notes(theme, both)
    assert int(np.argmax(score)) == 3 and score[3] == pytest.approx(2.0 * len(theme))
    with pytest.raises(ParameterError, match="second"):
        NoteIndex(Y, offsets, second=1.5)


def test_note_index_ranks_by_local_alignment():
    from mirsearch.index.notes import NoteIndex

    theme = [7, 3, 5, 2, 0, 2, 3, 7, 5, 0]
    filler = [11, 1, 4, 6, 8, 10, 1, 4, 6, 9, 11, 1, 6, 8, 10, 4, 9]
    # recording 0: the theme with two wrong notes (the 5th and the 10th); recording 1: its first six notes
    played = theme[:4] + [9] + theme[5:9] + [10]
    seqs = [filler + played + filler, filler + theme[:6] + filler + filler]
    Y = np.concatenate([_one_hot_rows(np.repeat(seq, 3)) for seq in seqs])
    offsets = np.array([0, 3 * len(seqs[0]), 3 * (len(seqs[0]) + len(seqs[1]))])
    index = NoteIndex(Y, offsets, skips=False)
    by_align = index.propose(np.array(theme), candidates=2, weighting="align")
    assert [p.recording for p in by_align] == [0, 1]
    assert [p.score for p in by_align] == pytest.approx([2.0 * 8 - 1.0, 2.0 * 6])  # 8 notes and a wrong one; 6
    # intact windows alone prefer the fragment: three windows against two
    by_idf = index.propose(np.array(theme), candidates=2, weighting="idf")
    assert [p.recording for p in by_idf] == [1, 0] and [p.votes for p in by_idf] == [3, 2]
    with pytest.raises(ParameterError, match="weighting"):
        index.propose(np.array(theme), weighting="dtw")


@pytest.fixture(scope="module")
def learned_collection(renderings, tmp_path_factory):
    """Chorales a, b, c and a at 1.4x speed with learned chroma (the packaged model)."""
    root = tmp_path_factory.mktemp("learned") / "learned.mirs"
    with Collection.create(root, features=["learned"]) as coll:
        coll.add([str(renderings[k].path) for k in ("a", "b", "c", "a_fast")])
    return root


def test_notes_cascade_matches_exhaustive_learned_search(learned_collection, renderings):
    from mirsearch.scores import parse_note_string
    from mirsearch.search.theme import search_theme

    from conftest import theme_of

    theme, (t0, _t1) = theme_of(renderings["b"], 0, 10)
    with Collection.open(learned_collection, readonly=True) as coll:
        full = search_theme(coll, theme, top=3, per_recording=1, features="learned")
        stats = {}
        options = {"features": "learned", "proposal": "notes", "candidates": 2, "note_regions": 1, "margin": 0.5}
        cascade = _cascade(coll, theme, top=3, per_recording=1, stats=stats, align=False, **options)
        assert not stats["fallback"] and stats["frames_searched"] < stats["frames_total"]
        assert full[0].recording_id in stats["candidate_ids"]
        assert "bwv269" in cascade[0].recording and abs(cascade[0].start - t0) < 1.5
        got = (cascade[0].recording_id, cascade[0].start, cascade[0].end, cascade[0].transposition)
        assert got == (full[0].recording_id, full[0].start, full[0].end, full[0].transposition)
        assert cascade[0].cost == pytest.approx(full[0].cost, abs=1e-6)
        every = _cascade(coll, theme, top=1, features="learned", proposal="notes", dtw_shifts="all")
        assert every[0].recording_id == full[0].recording_id
        stats = {}
        aligned = _cascade(coll, theme, top=1, features="learned", proposal="align", stats=stats)
        assert aligned[0].recording_id == full[0].recording_id and full[0].recording_id in stats["proposed_ids"]
        both = _cascade(coll, theme, top=1, **options)  # note index + alignment, the default
        assert both[0].cost == pytest.approx(full[0].cost, abs=1e-6)
        stats = {}  # a cost bound no match meets: the exhaustive search answers
        bounded = _cascade(
            coll, theme, top=3, per_recording=1, fallback_cost=0.0, fallback="exhaustive", stats=stats, **options
        )
        assert stats["fallback"] == "cost" and stats["candidates"] == len(coll.recordings())
        assert [(m.recording_id, m.start, m.cost) for m in bounded] == [(m.recording_id, m.start, m.cost) for m in full]
        stats = {}  # by default the coarse cascade answers: a few candidates, the exhaustive costs there
        coarse = _cascade(coll, theme, top=3, per_recording=1, fallback_cost=0.0, stats=stats, **options)
        assert stats["fallback"] == "cost" and stats["candidates"] <= 2
        assert stats["frames_searched"] < stats["frames_total"]
        assert (coarse[0].recording_id, coarse[0].start) == (full[0].recording_id, full[0].start)
        assert coarse[0].cost == pytest.approx(full[0].cost, abs=1e-6)
        stats = {}  # three pitch changes are too few for 3-interval keys: exhaustive search
        short = _cascade(coll, parse_note_string("C D E"), top=1, features="learned", proposal="notes", stats=stats)
        assert stats["fallback"] and len(short) == 1
        bad_options = ({"dtw_shifts": "some"}, {"tolerance": -1}, {"ngram": 0}, {"margin": -1.0}, {"proposal": "x"})
        for bad in (*bad_options, {"fallback_cost": -0.1}, {"fallback": "nothing"}):
            with pytest.raises(ParameterError):
                _cascade(coll, theme, features="learned", **{"proposal": "notes", **bad})


def test_search_cli_cascade_option(learned_collection, renderings, capsys):
    from mirsearch.cli.main import main

    from conftest import theme_of

    theme, _ = theme_of(renderings["b"], 0, 10)
    notes = " ".join(f"{'C C# D D# E F F# G G# A A# B'.split()[n.pitch % 12]}{n.pitch // 12 - 1}" for n in theme.notes)
    base = ["search", "-c", str(learned_collection), "--theme", notes, "--features", "learned", "--top", "2", "--json"]
    base.append("--all")  # every match, confident or not
    assert main([*base, "--cascade", "exhaustive"]) == 0
    full = json.loads(capsys.readouterr().out)["matches"]
    assert main([*base, "--cascade", "notes", "--candidates", "2"]) == 0
    cascade = json.loads(capsys.readouterr().out)["matches"]
    assert cascade[0]["recording"] == full[0]["recording"] and cascade[0]["start"] == full[0]["start"]
    assert main([*base, "--cascade", "notes-only", "--candidates", "2"]) == 0
    both = json.loads(capsys.readouterr().out)["matches"]
    assert both[0]["recording"] == full[0]["recording"] and both[0]["start"] == full[0]["start"]
    assert main([*base, "--cascade", "notes", "--candidates", "0"]) != 0
