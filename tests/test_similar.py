"""Search by similarity: the stored timbre kind, the index, the service tasks, the CLI and the server route."""

import json

import numpy as np
import pytest
import soundfile as sf

from mirsearch.describe.similarity import (
    VECTOR_DIM,
    Normaliser,
    SimilarityIndex,
    audio_vector,
    collection_normaliser,
    expanded_search,
    part_distances,
    part_vectors,
    reciprocal_distances,
    reciprocal_search,
    recording_vector,
    reference_normaliser,
    similar_search,
)
from mirsearch.describe.similarity_vector import (
    MFCC_DIM,
    MUSICNN_DIM,
    SEARCH_DIM,
    TIMBRE_SUBBLOCKS,
    TMY_DIM,
    YAMNET_DIM,
    block_groups,
    search_vector,
)
from mirsearch.errors import CollectionError, ParameterError
from mirsearch.features.logmel import log_mel
from mirsearch.features.tag_features import yamnet_available
from mirsearch.features.timbre_stats import (
    CORE_ROWS,
    MFCC_ROWS,
    YAMNET_ROWS,
    core_rows,
    extract_timbre,
    mfcc,
    mfcc_block,
    mfcc_statistics,
    patch_features,
    patch_rhythm,
    timbre_vector,
    yamnet_block,
)
from synth_timbre import SR
from synth_timbre import sound as _sound


def test_timbre_vector_equals_patch_statistics():
    y = _sound("tone", 13.0, 0)
    X, rate = extract_timbre(y, sr=SR)
    from mirsearch.features.timbre_stats import MUSICNN_ROWS, timbre_config

    rows = {"mfcc": MFCC_ROWS, "yamnet": YAMNET_ROWS, "musicnn": MUSICNN_ROWS}
    extras = sum(rows[e] for e in timbre_config()["extras"])
    assert X.shape == (CORE_ROWS + extras, 4) and CORE_ROWS == 583 and rate == 0.25 and X[582].sum() > 0
    P = patch_features(log_mel(y, sr=SR)[0])
    np.testing.assert_allclose(timbre_vector(core_rows(X)), np.r_[P.mean(0), P.std(0)], atol=1e-4)
    np.testing.assert_allclose(audio_vector(y, sr=SR), recording_vector(X))
    # the vector's blocks: band statistics (mean, std), rhythm (mean, std), cepstra and modulation (means)
    v, m, sd = recording_vector(X), P.mean(0), P.std(0)
    assert v.shape == (VECTOR_DIM,)
    np.testing.assert_allclose(v, np.r_[m[:192], sd[:192], m[192:203], sd[192:203], m[203:291]], atol=1e-4)
    with pytest.raises(ParameterError):  # a version-2 array (203 rows per patch)
        recording_vector(np.ones((407, 2), np.float32))
    # two segments' sufficient statistics concatenated = the whole
    X = core_rows(X)
    np.testing.assert_allclose(timbre_vector(np.concatenate([X[:, :2], X[:, 2:]], axis=1)), timbre_vector(X))
    with pytest.raises(ParameterError):
        timbre_vector(np.zeros((406, 3)))


def test_stored_mfcc_and_yamnet_blocks_equal_the_whole_recordings_statistics():
    y = _sound("tone", 9.5, 2) + 0.5 * _sound("noise", 9.5, 3)  # 3 segments of 4 s, the last one short
    X, _ = extract_timbre(y, sr=SR)
    # the MFCC block's sufficient statistics give exactly the statistics of all frames (population variance)
    np.testing.assert_allclose(mfcc_block(X), mfcc_statistics(mfcc(y, sr=SR)[0]), rtol=1e-4, atol=1e-3)
    v = search_vector(X)
    assert block_groups(len(v)) is not None
    np.testing.assert_allclose(v[:VECTOR_DIM], recording_vector(X))
    np.testing.assert_allclose(v[VECTOR_DIM : VECTOR_DIM + MFCC_DIM], mfcc_block(X))
    assert mfcc_block(core_rows(X)) is None and yamnet_block(core_rows(X)) is None  # version-3 arrays
    assert search_vector(core_rows(X)).shape == (VECTOR_DIM,)
    if not yamnet_available():
        assert len(v) == VECTOR_DIM + MFCC_DIM and yamnet_block(X) is None
        return
    from mirsearch.features.yamnet import YamnetModel

    assert len(v) in (TMY_DIM, SEARCH_DIM)  # with the musicnn view where its wheel is installed
    want = YamnetModel(threads=1)(y, sr=SR).embeddings.astype(np.float64).mean(axis=0)  # over every patch
    np.testing.assert_allclose(yamnet_block(X), want, atol=1e-5)
    np.testing.assert_allclose(v[TMY_DIM - YAMNET_DIM : TMY_DIM], want, atol=1e-5)


def test_rhythm_finds_the_beat():
    # clicks every 0.25 s (25 frames at 100 Hz): the autocorrelation peaks in the lag bin holding 25 frames
    y = np.zeros(SR * 4, np.float32)
    y[:: SR // 4] = 1.0
    R = patch_rhythm(log_mel(y, sr=SR)[0])
    assert R.shape[1] == 11
    assert int(np.argmax(R[1])) == 6  # bin 6: lags [19, 26) frames


def test_index_exact_and_hnsw_agree_and_leave_out():
    rng = np.random.default_rng(0)
    V = rng.standard_normal((300, 16)).astype(np.float32)
    ids = np.arange(1, 301) * 3
    exact = SimilarityIndex(ids, V, kind="exact")
    hnsw = SimilarityIndex(ids, V, kind="hnsw")
    assert exact.normaliser.source == "collection" and len(exact) == 300
    q = exact.vector(30)
    a = exact.search(q, top=5, exclude=30)
    b = hnsw.search(q, top=5, exclude=30)
    assert [r for r, _ in a] == [r for r, _ in b] and 30 not in [r for r, _ in a]
    assert all(d1 <= d2 for (_, d1), (_, d2) in zip(a, a[1:], strict=False))
    Z = exact.normaliser(V)
    assert a[0][1] == pytest.approx(np.sort(np.abs(Z - Z[9]).mean(axis=1))[1], rel=1e-4)
    with pytest.raises(CollectionError):
        exact.vector(2)
    for dim in (SEARCH_DIM, TMY_DIM, VECTOR_DIM + MFCC_DIM, VECTOR_DIM):  # the reference for every set of views
        small = SimilarityIndex(ids[:5], rng.standard_normal((5, dim)).astype(np.float32))
        assert small.normaliser.source == "reference" and small.normaliser.mean.shape == (dim,)
    ref = reference_normaliser()
    assert ref.mean.shape == (SEARCH_DIM,) and np.all(ref.scale > 0)
    with pytest.raises(ParameterError):
        reference_normaliser(VECTOR_DIM + 1)
    assert isinstance(Normaliser.fit(V), Normaliser)


def _view_distances(Z: np.ndarray, squared_from: int | None = None) -> np.ndarray:
    """Mean distance of two rows within each block of standardised search vectors: L1, squared Euclidean for the
    blocks from ``squared_from`` on."""
    from scipy.spatial.distance import cdist

    n, c0 = len(Z), Z.shape[1] if squared_from is None else squared_from
    return np.array([cdist(Z[:, c], Z[:, c], "sqeuclidean" if c.start >= c0 else "cityblock").sum()
                     / (n * (n - 1)) for c, _ in block_groups(Z.shape[1])])  # fmt: skip


@pytest.mark.parametrize("dim", [SEARCH_DIM, TMY_DIM, VECTOR_DIM + MFCC_DIM])
def test_views_weigh_the_same(dim):
    rng = np.random.default_rng(3)
    scale = np.exp(rng.normal(0, 2, dim))  # every dimension on its own scale
    V = (rng.standard_normal((60, dim)) * scale + 2).astype(np.float32)
    norm = collection_normaliser(V)
    assert norm.source == "collection"
    assert norm.cosine_from == (VECTOR_DIM + MFCC_DIM if dim in (SEARCH_DIM, TMY_DIM) else None)
    Z = norm(V).astype(np.float64)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-3)
    d = _view_distances(Z, norm.squared_from)
    t = len(TIMBRE_SUBBLOCKS)
    # the timbre vector's six sub-blocks alike, together as much as the MFCC block (and the YAMNet block)
    np.testing.assert_allclose(d[:t], d[0], rtol=1e-4)
    np.testing.assert_allclose(d[t:], d[:t].sum(), rtol=1e-4)
    # a typical pair is at distance 1 (the summed terms over the dimensions divided by the dimension)
    assert d.sum() / dim == pytest.approx(1.0, rel=1e-3)
    D = norm.pair_distances(Z, Z)
    assert D[~np.eye(len(Z), dtype=bool)].mean() == pytest.approx(1.0, rel=1e-3)
    # the reference standardisation of the same views weighs them alike on its own recordings too
    ref = reference_normaliser(dim)
    assert np.all(np.isfinite(ref.scale)) and ref.scale.shape == (dim,) and ref.cosine_from == norm.cosine_from
    # unknown layouts: plain z-scores
    W = rng.standard_normal((40, 7)) * 3
    np.testing.assert_allclose(collection_normaliser(W)(W).std(axis=0), 1, rtol=1e-3)


@pytest.mark.parametrize("dim", [TMY_DIM, SEARCH_DIM])
def test_the_yamnet_and_musicnn_views_are_cosine_distances(dim):
    rng = np.random.default_rng(8)
    V = rng.standard_normal((50, dim)).astype(np.float32)
    c = VECTOR_DIM + MFCC_DIM
    V[:, c:] = np.abs(V[:, c:]) * rng.uniform(0.1, 10, (50, 1))  # embeddings of any length
    norm = collection_normaliser(V)
    assert norm.cosine_from == c
    Z = norm(V).astype(np.float64)
    off = ~np.eye(50, dtype=bool)
    blocks = {"yamnet": slice(c, TMY_DIM), "musicnn": slice(TMY_DIM, dim)}
    from mirsearch.describe.similarity_vector import view_distances

    n_views = 3 if dim == TMY_DIM else 4
    for name, cols in blocks.items():
        if cols.start == cols.stop:
            continue
        E = V[:, cols].astype(np.float64)
        cos = (E @ E.T) / np.outer(np.linalg.norm(E, axis=1), np.linalg.norm(E, axis=1))
        D = np.stack([view_distances(Z, Z[i], squared_from=norm.squared_from)[name] for i in range(50)])
        k = D[off] / (2 * (1 - cos[off]))  # what the view adds: k * 2 (1 - cos)
        np.testing.assert_allclose(k, k[0], rtol=1e-3)
        assert np.mean(D[off]) == pytest.approx(1.0, rel=1e-3)  # a typical pair is at 1 in every view
    # a recording's cosine views do not depend on the embeddings' lengths
    W = V.copy()
    W[7, c:TMY_DIM] *= 5.0
    W[7, TMY_DIM:] *= 0.2
    np.testing.assert_allclose(norm(W)[7], norm(V)[7], rtol=1e-5, atol=1e-5)
    # the index ranks by the same distance
    index = SimilarityIndex(np.arange(50), V, kind="exact")
    got = index.search(index.vector(3), top=5, exclude=3)
    want = np.argsort(norm.pair_distances(Z[3], Z)[0], kind="stable")[1:6]
    assert [r for r, _ in got] == list(want)
    # what each view adds, by hand; their mean is the distance
    views = view_distances(Z, Z[9], squared_from=norm.squared_from)
    assert list(views) == ["timbre", "mfcc", "yamnet", "musicnn"][:n_views]
    t = VECTOR_DIM
    want_t = np.abs(Z[:, :t] - Z[9, :t]).sum(axis=1) * n_views / dim
    np.testing.assert_allclose(views["timbre"], want_t, rtol=1e-4)
    want_y = np.square(Z[:, c:TMY_DIM] - Z[9, c:TMY_DIM]).sum(axis=1) * n_views / dim
    np.testing.assert_allclose(views["yamnet"], want_y, rtol=1e-4)
    np.testing.assert_allclose(np.mean(list(views.values()), axis=0), norm.distances(Z, Z[9]), rtol=1e-4)
    assert view_distances(Z[:, :7], Z[9, :7]) == {}  # unknown layout
    # the distance of sessions 17-18 on request: every view z-scored, L1
    from mirsearch.describe.similarity_vector import balanced_normaliser

    old = balanced_normaliser(V, cosine=False)
    assert old.cosine_from is None and old.squared_from is None
    np.testing.assert_allclose(old.distances(old(V), old(V)[0]), np.abs(old(V) - old(V)[0]).mean(axis=1), rtol=1e-5)
    assert MUSICNN_DIM == dim - TMY_DIM or dim == TMY_DIM


def test_query_expansion_averages_the_nearest_others():
    rng = np.random.default_rng(4)
    V = rng.standard_normal((40, 8)).astype(np.float32)
    index = SimilarityIndex(np.arange(40), V, kind="exact")
    q = index.vector(7)
    first = index.search(q, top=2, exclude=7)
    expanded = (q + index.vector(first[0][0]) + index.vector(first[1][0])) / 3
    got, want = expanded_search(index, q, top=5, exclude=7, expand=2), index.search(expanded, top=5, exclude=7)
    assert [r for r, _ in got] == [r for r, _ in want]
    np.testing.assert_allclose([d for _, d in got], [d for _, d in want], rtol=1e-5)
    assert expanded_search(index, q, top=5, exclude=7, expand=0) == index.search(q, top=5, exclude=7)
    assert 7 not in [r for r, _ in expanded_search(index, q, top=39, exclude=7)]


def _reciprocal_by_loops(D, k1, k2, lam):
    """Zhong et al.'s k-reciprocal re-ranking written out item by item (the reference of the vectorised code)."""
    n = len(D)
    order = np.argsort(D, axis=1, kind="stable")
    Dn = D / D.max()

    def rset(i, k):
        return {int(j) for j in order[i, : k + 1] if i in order[j, : k + 1]}

    V = np.zeros((n, n))
    for i in range(n):
        r = rset(i, k1)
        wide = set(r) | {i}
        for j in r:
            c = rset(j, round(k1 / 2))
            if len(c & r) > 2 / 3 * len(c):
                wide |= c
        cols = sorted(wide)
        V[i, cols] = np.exp(-10 * Dn[i, cols]) / np.exp(-10 * Dn[i, cols]).sum()
    V = np.stack([V[order[i, :k2]].mean(axis=0) for i in range(n)])
    jac = np.array([1 - np.minimum(V[0], V[j]).sum() / np.maximum(V[0], V[j]).sum() for j in range(n)])
    return (1 - lam) * jac + lam * Dn[0]


def test_reciprocal_distances_equal_the_loops_of_the_paper():
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(5)
    X = rng.standard_normal((40, 3))
    X[:15] += 10.0  # two groups: the query's (item 0) and the rest
    D = cdist(X, X, "cityblock")
    for k1, k2, lam in ((12, 3, 0.3), (5, 1, 0.1), (8, 2, 1.0)):
        np.testing.assert_allclose(reciprocal_distances(D, k1=k1, k2=k2, lam=lam), _reciprocal_by_loops(D, k1, k2, lam),
                                   atol=1e-12)  # fmt: skip
    d = reciprocal_distances(D)
    assert set(np.argsort(d)[:15]) == set(range(15))  # the query's group first
    np.testing.assert_allclose(reciprocal_distances(D, lam=1.0), D[0] / D.max())  # lam 1: the original order
    with pytest.raises(ParameterError):
        reciprocal_distances(D[:3])
    with pytest.raises(ParameterError):
        reciprocal_distances(D, k1=0)


def test_reciprocal_search_ranks_the_pool_and_leaves_the_query_out():
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(6)
    V = rng.standard_normal((30, 8)).astype(np.float32)
    index = SimilarityIndex(np.arange(100, 130), V, kind="exact")
    q = index.vector(107)
    got = reciprocal_search(index, q, top=5, exclude=107)
    others = [r for r in index.ids if r != 107]
    P = np.vstack([q] + [index.vector(r) for r in others])
    d = reciprocal_distances(cdist(P, P, "cityblock") / P.shape[1])[1:]
    assert [r for r, _ in got] == [others[j] for j in np.argsort(d, kind="stable")[:5]]
    assert 107 not in [r for r, _ in reciprocal_search(index, q, top=29, exclude=107)]
    assert len(reciprocal_search(index, q, top=3, exclude=107, pool=10)) == 3
    # the tasks' ranking: expansion while RECIPROCAL is off
    assert similar_search(index, q, top=5, exclude=107) == expanded_search(index, q, top=5, exclude=107)


def test_part_vectors_split_the_stored_segments():
    X, _ = extract_timbre(_sound("tone", 13.0, 1), sr=SR)  # 4 stored segments
    P2 = part_vectors(X, parts=2)
    assert P2.shape == (2, VECTOR_DIM)
    np.testing.assert_allclose(P2[0], recording_vector(X[:, :2]))
    np.testing.assert_allclose(P2[1], recording_vector(X[:, 2:]))
    np.testing.assert_allclose(part_vectors(X, parts=1)[0], recording_vector(X))
    assert part_vectors(X, parts=8).shape == (4, VECTOR_DIM)  # at most one part per stored segment
    empty = np.concatenate([X, np.zeros((X.shape[0], 1), X.dtype)], axis=1)  # a segment without patches
    np.testing.assert_allclose(part_vectors(empty, parts=8), part_vectors(X, parts=8))
    with pytest.raises(ParameterError):
        part_vectors(X, parts=0)


def test_part_distances_by_hand():
    Q = np.array([[0.0, 0.0], [2.0, 2.0]])
    P = np.array([[0.0, 1.0], [4.0, 4.0], [1.0, 1.0], [2.0, 2.0], [9.0, 9.0]])
    # recording 0: parts 0-1; recording 1: parts 2-4. L1 / dim between the parts:
    #   Q0: 0.5 4 | 1 2 9    Q1: 1.5 2 | 1 0 7
    # rec 0: query -> rec (0.5 + 1.5) / 2 = 1.0; rec -> query (0.5 + 2) / 2 = 1.25; mean 1.125
    # rec 1: query -> rec (1 + 0) / 2 = 0.5; rec -> query (1 + 0 + 7) / 3 = 8 / 3; mean (0.5 + 8/3) / 2
    d = part_distances(Q, P, np.array([0, 2, 5]))
    np.testing.assert_allclose(d, [1.125, (0.5 + 8 / 3) / 2], rtol=1e-6)
    assert part_distances(Q, P, np.array([0])).shape == (0,)


def _parts_index(kind: str, n: int = 300, dim: int = 16):
    rng = np.random.default_rng(6)
    parts = [rng.standard_normal((int(rng.integers(1, 5)), dim)).astype(np.float32) + rng.standard_normal(dim)
             for _ in range(n)]  # fmt: skip
    V = np.stack([p.mean(axis=0) for p in parts])
    return SimilarityIndex(np.arange(n) + 10, V, kind=kind, parts=parts)


def test_search_parts_ranks_by_part_distances_with_expansion():
    exact, hnsw = _parts_index("exact"), _parts_index("hnsw")
    rid = 42
    v, Q = exact.vector(rid), exact.part_vectors(rid)
    P = exact.parts.astype(np.float32)
    d = part_distances(Q, P, exact.offsets)
    order = [int(exact.ids[j]) for j in np.argsort(d, kind="stable") if exact.ids[j] != rid]
    got = exact.search_parts(v, Q, top=5, exclude=rid, expand=0)
    assert [r for r, _ in got] == order[:5]
    np.testing.assert_allclose([x for _, x in got], np.sort(d)[1:6], rtol=1e-5)  # its own distance is the least
    # expansion: distances averaged with those of the 2 nearest others
    n1, n2 = (order[0] - 10), (order[1] - 10)
    avg = (d + sum(part_distances(exact.part_vectors(int(exact.ids[j])), P, exact.offsets) for j in (n1, n2))) / 3
    want = [int(exact.ids[j]) for j in np.argsort(avg, kind="stable") if exact.ids[j] != rid][:5]
    got = exact.search_parts(v, Q, top=5, exclude=rid, expand=2)
    assert [r for r, _ in got] == want
    assert expanded_search(exact, v, top=5, exclude=rid, expand=2, parts=Q) == got
    assert [r for r, _ in hnsw.search_parts(v, Q, top=5, exclude=rid, expand=2)] == want
    assert rid not in [r for r, _ in exact.search_parts(v, Q, top=299, exclude=rid)]
    with pytest.raises(ParameterError):
        SimilarityIndex(np.arange(3), np.zeros((3, 4)), parts=[np.zeros((1, 4))])


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    from mirsearch.collection import Collection

    root = tmp_path_factory.mktemp("similar")
    paths = []
    for i, kind in enumerate(["tone", "tone", "tone", "noise", "noise", "noise"]):
        p = root / f"{kind}{i}.wav"
        sf.write(p, _sound(kind, 6.0, i), SR)
        paths.append(str(p))
    with Collection.create(root / "c.mirs", features=["timbre"]) as coll:
        assert not coll.add(paths, jobs=1).failed
    return root


def test_service_and_cli(collection, capsys):
    from mirsearch.cli.main import main
    from mirsearch.collection import Collection
    from mirsearch.service import run
    from mirsearch.service.similar import SimilarRequest

    with Collection.open(collection / "c.mirs", readonly=True) as coll:
        recs = {r.id: r.path for r in coll.recordings()}
        tone = next(i for i, p in recs.items() if "tone0" in p)
        answer = run("similar", SimilarRequest(recording=tone, top=5), collection=coll).to_dict()
    names = [m["recording"].rsplit("/", 1)[-1] for m in answer["matches"]]
    assert len(names) == 5 and tone not in [m["recording_id"] for m in answer["matches"]]
    assert all(n.startswith("tone") for n in names[:2])  # the other tones first
    assert set(answer["matches"][0]) == {"recording", "recording_id", "distance", "views"}
    # each match's distance from the query itself per view, the mean over the views its distance to the query
    from mirsearch.describe.similarity import collection_index

    with Collection.open(collection / "c.mirs", readonly=True) as coll:
        index = collection_index(coll)
        v = index.vector(tone)
        for m in answer["matches"]:
            views = m["views"]
            assert set(views) <= {"timbre", "mfcc", "yamnet", "musicnn"} and {"timbre", "mfcc"} <= set(views)
            z = index.vector(m["recording_id"])
            want = index.normaliser.distances(z[None, :], v)[0]
            assert np.mean(list(views.values())) == pytest.approx(want, rel=1e-3, abs=1e-3)
    assert main(["similar", "-c", str(collection / "c.mirs"), "--audio", str(collection / "noise4.wav"),
                 "--top", "3", "--json"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert out["matches"][0]["recording"].endswith("noise4.wav")  # itself first (the query is expanded)
    assert [m["distance"] for m in out["matches"]] == sorted(m["distance"] for m in out["matches"])
    assert main(["similar", "-c", str(collection / "c.mirs"), "--recording", str(tone), "--top", "2"]) == 0
    assert "tone" in capsys.readouterr().out


def test_more_like_this_passage(tmp_path, capsys):
    from mirsearch.cli.main import main
    from mirsearch.collection import Collection
    from mirsearch.service import run
    from mirsearch.service.similar import SimilarRequest

    paths = []
    for i, kind in enumerate(["tone", "tone", "noise", "noise"]):
        sf.write(tmp_path / f"{kind}{i}.wav", _sound(kind, 8.0, i), SR)
        paths.append(str(tmp_path / f"{kind}{i}.wav"))
    sf.write(tmp_path / "both.wav", np.concatenate([_sound("tone", 8.0, 5), _sound("noise", 8.0, 6)]), SR)
    with Collection.create(tmp_path / "c.mirs", features=["timbre"]) as coll:
        assert not coll.add([*paths, str(tmp_path / "both.wav")], jobs=1).failed
    with Collection.open(tmp_path / "c.mirs", readonly=True) as coll:
        both = next(r.id for r in coll.recordings() if r.path.endswith("both.wav"))

        def nearest(**passage):
            answer = run("similar", SimilarRequest(recording=both, top=2, **passage), collection=coll)
            assert both not in [m.recording_id for m in answer.matches]
            return [m.recording.rsplit("/", 1)[-1][:4] for m in answer.matches], answer.query["passage"]

        assert nearest(start=0.0, end=8.0) == (["tone", "tone"], [0.0, 8.0])
        assert nearest(start=8.0) == (["nois", "nois"], [8.0, None])
        assert nearest()[1] is None  # the whole recording
        for bad in ({"start": 9.0, "end": 9.0}, {"start": 30.0}, {"start": 5.0, "end": 2.0}):
            with pytest.raises(ParameterError, match="passage|no sound"):
                run("similar", SimilarRequest(recording=both, **bad), collection=coll)
    c = str(tmp_path / "c.mirs")
    assert main(["similar", "-c", c, "--recording", str(both), "--end", "8", "--top", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["matches"][0]["recording"].rsplit("/", 1)[-1].startswith("tone")
    assert main(["similar", "-c", c, "--audio", paths[0], "--start", "2"]) != 0  # a passage is of --recording
    assert "--start" in capsys.readouterr().err


def test_rerank_by_parts_equals_the_index_with_parts(collection, monkeypatch):
    from mirsearch.collection import Collection
    from mirsearch.describe import similarity
    from mirsearch.describe.similarity import collection_index, normalised_collection, rerank_by_parts, stored_parts
    from mirsearch.service import run
    from mirsearch.service.similar import SimilarRequest

    with Collection.open(collection / "c.mirs", readonly=True) as coll:  # the default: whole recordings
        assert collection_index(coll).parts is None
        assert run("similar", SimilarRequest(recording=1, top=2), collection=coll).query["parts"] is None
    monkeypatch.setattr(similarity, "COMPARE_PARTS", True)
    with Collection.open(collection / "c.mirs", readonly=True) as coll:
        local = collection_index(coll)
        ids, V, _ = normalised_collection(coll)
        plain = SimilarityIndex(ids, V, normaliser=local.normaliser, kind="exact")  # as the Dask shards: no parts
        assert plain.parts is None and local.parts is not None
        for rid in ids:
            parts = stored_parts(coll, rid, local.normaliser)
            np.testing.assert_array_equal(parts, local.part_vectors(rid))
            want = expanded_search(local, local.vector(rid), top=4, exclude=int(rid), parts=parts)
            assert rerank_by_parts(plain, coll, plain.vector(rid), parts, top=4, exclude=int(rid)) == want
        answer = run("similar", SimilarRequest(recording=int(ids[0]), top=4), collection=coll)
        assert answer.query["parts"] >= 1 and [m.recording_id for m in answer.matches] == [
            r for r, _ in expanded_search(local, local.vector(ids[0]), top=4, exclude=int(ids[0]),
                                          parts=local.part_vectors(ids[0]))]  # fmt: skip


def test_server_route(collection):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from mirsearch.server.app import create_app

    app = create_app(str(collection / "c.mirs"))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        r = client.get("/api/recordings/1/similar", params={"top": 3})
        assert r.status_code == 200, r.text
        d = r.json()
        assert len(d["matches"]) == 3 and all(m["recording_id"] != 1 for m in d["matches"])
        assert all({"timbre", "mfcc"} <= set(m["views"]) for m in d["matches"])  # what the page shows
        assert client.get("/api/recordings/1/similar", params={"top": 0}).status_code == 422


def test_a_collection_with_and_without_the_yamnet_block_is_compared_on_the_common_views(caplog):
    from mirsearch.describe.similarity import normalised_collection

    full, _ = extract_timbre(_sound("tone", 9.0, 4), sr=SR)
    without = full[: CORE_ROWS + MFCC_ROWS]  # as stored where YAMNet did not load

    class Store:  # the two calls of a Collection that the similarity index reads
        class catalog:  # noqa: N801
            @staticmethod
            def features(kind):
                return {1, 2, 3}

        @staticmethod
        def load_features(rid, kind):
            return (without if rid == 2 else full), 0.25

    with caplog.at_level("WARNING"):
        ids, V, norm = normalised_collection(Store())
    assert list(ids) == [1, 2, 3] and V.shape == (3, VECTOR_DIM + MFCC_DIM)
    np.testing.assert_array_equal(V[0], V[2])
    assert "re-index" in caplog.text and norm.mean.shape == (VECTOR_DIM + MFCC_DIM,)


def test_audio_query_against_a_collection_indexed_without_yamnet(tmp_path, monkeypatch):
    from mirsearch.collection import Collection
    from mirsearch.features import tag_features
    from mirsearch.service import run
    from mirsearch.service.audio import AudioQuery
    from mirsearch.service.similar import SimilarAudioRequest

    paths = []
    for i, kind in enumerate(["tone", "noise", "tone"]):
        paths.append(tmp_path / f"{kind}{i}.wav")
        sf.write(paths[-1], _sound(kind, 5.0, i), SR)
    with monkeypatch.context() as m:  # indexed where YAMNet does not load: timbre + MFCC only
        m.setattr(tag_features, "yamnet_available", lambda: False)
        with Collection.create(tmp_path / "c.mirs", features=["timbre"]) as coll:
            assert not coll.add([str(p) for p in paths], jobs=1).failed
    with Collection.open(tmp_path / "c.mirs", readonly=True) as coll:
        query = AudioQuery.from_samples(_sound("tone", 5.0, 0), SR, name="q")
        answer = run("similar-audio", SimilarAudioRequest(query=query, top=3), collection=coll)
    assert answer.query["normalised"] == "reference" and len(answer.matches) == 3
    assert answer.query["textures"] is False  # a collection of 3 recordings has no codebook of textures
    assert answer.matches[0].recording.endswith("tone0.wav")  # the same sound first


def test_long_files_analysed_in_windows_give_the_whole_files_search_vector(tmp_path, monkeypatch):
    from mirsearch.collection import extract
    from mirsearch.features import registry

    rng = np.random.default_rng(3)
    y = np.concatenate([_sound("tone" if k % 2 else "noise", 2.0, int(rng.integers(9))) for k in range(35)])
    sf.write(tmp_path / "long.flac", y, SR)  # 70 s
    configs = [registry.feature_config("timbre")]
    ((X1, r1),) = extract.extract_features(tmp_path / "long.flac", configs)[1]
    monkeypatch.setattr(extract.windows, "__kwdefaults__", {"block": 20, "overlap": 4})  # 20-s windows, 4-s seams
    ((X2, r2),) = extract.extract_features(tmp_path / "long.flac", configs)[1]
    assert X1.shape == X2.shape and r1 == r2 and X1.shape[1] == 18
    v1, v2 = search_vector(X1), search_vector(X2)
    m = VECTOR_DIM + MFCC_DIM
    views = {"T": slice(0, VECTOR_DIM), "M": slice(VECTOR_DIM, m), "Y": slice(m, TMY_DIM)}
    for name, sl in views.items():  # the windows' patch and frame grids are shifted a little at the seams
        if v1[sl].size:  # (no YAMNet view where YAMNet does not load)
            assert np.abs(v1[sl] - v2[sl]).mean() <= 0.05 * np.abs(v1[sl]).mean(), name
    if len(v1) == SEARCH_DIM:  # musicnn: up to 8 patches per analysis window, so other patches; compared by cosine
        a, b = v1[TMY_DIM:].astype(np.float64), v2[TMY_DIM:].astype(np.float64)
        assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) >= 0.97
