"""Tags taught in the representation of search by similarity (describe/taught.py) and through a collection."""

import json

import numpy as np
import pytest
import soundfile as sf

from mirsearch.describe.taught import (
    LEARNED_BUNDLE,
    SHRINK_LEARNED,
    TimbreTag,
    block_weights,
    calibrate,
    fit_space_tag,
    fit_timbre_tag,
    fused_vector,
    learned_model,
    learned_vector,
)
from mirsearch.errors import ParameterError

SR = 16000


def _class_data(rng, n: int, dim: int = 30):
    """Background: standard normal; the class: dims 0-4 fixed near 2 (the shared trait), the rest like the
    background."""
    X = rng.standard_normal((n, dim))
    X[:, :5] = 2.0 + 0.1 * rng.standard_normal((n, 5))
    return X


def test_tag_finds_the_shared_trait_and_is_scale_free():
    rng = np.random.default_rng(0)
    ex, new, bg = _class_data(rng, 5), _class_data(rng, 20), rng.standard_normal((200, 30))
    tag = fit_timbre_tag("t", ex, bg, paths=["a.wav"])
    p_new, p_bg = tag.probability(new), tag.probability(bg)
    assert p_new.min() > np.quantile(p_bg, 0.95) and p_new.mean() > 0.5 > p_bg.mean()
    # the plain prototype distance, which weighs every dimension alike, does not separate them as well
    proto = np.abs(new - ex.mean(0)).sum(1), np.abs(bg - ex.mean(0)).sum(1)
    assert (tag.distance(new).max() < np.quantile(tag.distance(bg), 0.05)) and not (
        proto[0].max() < np.quantile(proto[1], 0.05)
    )
    # per-dimension units cancel: rescaling every vector's dimensions leaves the probabilities unchanged
    s = rng.uniform(0.1, 10, size=30)
    scaled = fit_timbre_tag("t", ex * s, bg * s)
    np.testing.assert_allclose(scaled.probability(new * s), p_new, rtol=1e-4, atol=1e-6)
    again = TimbreTag.from_json(json.loads(json.dumps(tag.to_json())))
    assert again.space == "timbre" and again.examples == ("a.wav",)
    np.testing.assert_allclose(again.probability(bg), p_bg, rtol=1e-4, atol=1e-6)


def test_distance_is_the_log_likelihood_ratio():
    mu, s2, m0, v0 = np.array([1.0, 0.0]), np.array([0.25, 1.0]), np.array([0.0, 0.0]), np.array([1.0, 4.0])
    tag = TimbreTag("t", mu, s2, m0, v0, -1.0, 0.0)
    v = np.array([[2.0, 1.0]])
    # -log N(v; mu, s2) + log N(v; m0, v0), per dimension
    nll = 0.5 * ((v - mu) ** 2 / s2 + np.log(2 * np.pi * s2)).sum()
    nll0 = 0.5 * ((v - m0) ** 2 / v0 + np.log(2 * np.pi * v0)).sum()
    assert tag.distance(v)[0] == pytest.approx((nll - nll0) / 2)


def test_bad_input_and_calibration():
    rng = np.random.default_rng(1)
    with pytest.raises(ParameterError):
        fit_timbre_tag("t", np.zeros((0, 4)), rng.standard_normal((5, 4)))
    with pytest.raises(ParameterError):
        fit_timbre_tag("t", rng.standard_normal((3, 4)), rng.standard_normal((1, 4)))
    with pytest.raises(ParameterError):
        fit_timbre_tag("t", rng.standard_normal((3, 4)), rng.standard_normal((5, 4)), shrink=0.0)
    tag = fit_timbre_tag("t", rng.standard_normal((3, 4)), rng.standard_normal((5, 4)))
    with pytest.raises(ParameterError):
        tag.probability(np.zeros((2, 5)))
    slope, _ = calibrate(np.array([0.1, 0.2]), np.array([1.0, 2.0, 3.0]))
    assert slope < 0
    assert calibrate(np.array([5.0]), np.array([0.0, 0.1]))[0] < 0  # never rewards distance


def test_block_weights_make_each_block_the_mean_of_its_dimensions():
    rng = np.random.default_rng(2)
    w = block_weights((6, 2))
    assert w.shape == (8,) and w.sum() == pytest.approx(1.0) and w[:6].sum() == pytest.approx(w[6:].sum())
    ex, bg = rng.standard_normal((5, 8)) + 1.0, rng.standard_normal((50, 8))
    tag = fit_timbre_tag("t", ex, bg, weights=w, space="embedding+timbre")
    a, b = fit_timbre_tag("a", ex[:, :6], bg[:, :6]), fit_timbre_tag("b", ex[:, 6:], bg[:, 6:])
    # the weighted distance is the mean of the two blocks' distances (each the mean over its dimensions)
    np.testing.assert_allclose(tag.distance(bg), (a.distance(bg[:, :6]) + b.distance(bg[:, 6:])) / 2, rtol=1e-10)
    again = TimbreTag.from_json(json.loads(json.dumps(tag.to_json())))
    assert again.space == "embedding+timbre"
    np.testing.assert_allclose(again.distance(bg), tag.distance(bg), rtol=1e-4)
    with pytest.raises(ParameterError):
        block_weights((3, 0))
    with pytest.raises(ParameterError):
        fit_timbre_tag("t", ex, bg, weights=np.ones(3))
    with pytest.raises(ParameterError):
        fit_timbre_tag("t", ex, bg, space="nowhere")


def test_fused_vector_and_space_tags():
    from mirsearch.features.timbre_stats import patch_blocks

    d = max(b.stop for b in patch_blocks().values())
    rng = np.random.default_rng(3)
    E, T = rng.standard_normal((4, 16)), rng.standard_normal((4, 2 * d))
    F = fused_vector(E, T)
    sl = patch_blocks()["cepstra"]
    np.testing.assert_array_equal(F[:, :16], E)
    np.testing.assert_array_equal(F[:, 16:], T[:, d + sl.start : d + sl.stop])  # the cepstra's spread over patches
    np.testing.assert_array_equal(fused_vector(E[0], T[0]), F[0])
    with pytest.raises(ParameterError):
        fused_vector(E, T[:3])
    bg = rng.standard_normal((60, F.shape[1]))
    ex = bg[:5] + 3.0
    tag = fit_space_tag("t", ex, bg, space="embedding+timbre")
    assert tag.space == "embedding+timbre" and tag.weights[:16].sum() == pytest.approx(0.5)
    assert fit_space_tag("t", ex[:, :16], bg[:, :16], space="embedding").weights is None
    with pytest.raises(ParameterError):
        fit_space_tag("t", ex[:, :10], bg[:, :10], space="embedding+timbre")


def test_learned_space_vectors_and_tags():
    from mirsearch.describe.similarity import part_vectors
    from mirsearch.features.timbre_stats import extract_timbre

    model = learned_model()
    assert model.model_id == json.loads((LEARNED_BUNDLE / "config.json").read_text())["model_id"]
    assert model.config["input"] == "timbre-segments" and model.config["input_dim"] == 494
    X = np.concatenate([extract_timbre(_sound(k, i), sr=SR)[0] for k, i in (("tone", 1), ("noise", 2))], axis=1)
    v = learned_vector(X)
    assert v.shape == (model.dim,) and np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)
    # segments without patches are left out; the vector is the network over the segments' own vectors
    empty = np.zeros((X.shape[0], 1), np.float32)
    np.testing.assert_allclose(learned_vector(np.concatenate([X, empty], axis=1)), v, atol=1e-6)
    np.testing.assert_allclose(v, model.embed(part_vectors(X, parts=X.shape[1])), atol=1e-6)
    # a recording of tones is nearer to another of tones than to noise
    tone = learned_vector(extract_timbre(_sound("tone", 3), sr=SR)[0])
    noise = learned_vector(extract_timbre(_sound("noise", 4), sr=SR)[0])
    t1 = learned_vector(extract_timbre(_sound("tone", 1), sr=SR)[0])
    assert np.linalg.norm(t1 - tone) < np.linalg.norm(t1 - noise)
    with pytest.raises(ParameterError):
        learned_vector(empty)
    rng = np.random.default_rng(5)
    bg = rng.standard_normal((40, model.dim))
    tag = fit_space_tag("t", bg[:5] + 2.0, bg[5:], space="learned")
    assert tag.space == "learned" and tag.weights is None
    np.testing.assert_allclose(tag.variance, (bg[:5] + 2.0).var(0) + SHRINK_LEARNED * (bg[5:].var(0) + 1e-12))
    assert TimbreTag.from_json(json.loads(json.dumps(tag.to_json()))).space == "learned"


def _sound(kind: str, i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    t = np.arange(int(4.0 * SR)) / SR
    if kind == "tone":
        y = sum(np.sin(2 * np.pi * 220 * (1 + 0.1 * i) * h * t) / h for h in range(1, 8))
    else:
        y = np.convolve(rng.standard_normal(t.size), np.ones(20) / 20, mode="same") * (np.sin(2 * np.pi * 3 * t) > 0)
    return (0.2 * y / np.max(np.abs(y))).astype(np.float32)


@pytest.mark.parametrize(("stored", "space"), [("timbre", "timbre"), ("tags", "embedding+timbre")])
def test_teach_in_a_collection(tmp_path, capsys, stored, space):
    from mirsearch.cli.main import main

    audio = tmp_path / "audio"
    audio.mkdir()
    for i, kind in enumerate(["tone"] * 4 + ["noise"] * 4):
        sf.write(audio / f"{kind}{i}.wav", _sound(kind, i), SR)
    coll = str(tmp_path / "c.mirs")
    assert main(["index", str(audio), "-c", coll, "--features", stored, "--jobs", "1"]) == 0
    examples = [str(audio / f"tone{i}.wav") for i in range(3)]
    assert main(["tags", "teach", "tonal", "-c", coll, "--examples", *examples]) == 0
    capsys.readouterr()
    assert main(["search", "-c", coll, "--tag", "tonal", "--top", "8", "--json"]) == 0
    ranked = [m["recording"].rsplit("/", 1)[-1] for m in json.loads(capsys.readouterr().out)["matches"]]
    assert set(ranked[:4]) == {f"tone{i}.wav" for i in range(4)}  # the three examples and the other tone
    assert set(ranked[-4:]) == {f"noise{i}.wav" for i in range(4, 8)}
    from mirsearch.collection import Collection
    from mirsearch.describe.tagger import load_taught

    with Collection.open(coll, readonly=True) as c:
        tag = load_taught(c)["tonal"]
    assert tag.space == space and len(tag.examples) == 3
    assert main(["tags", "teach", "piano", "-c", coll, "--examples", *examples]) == 1  # a model tag


def test_tags_bring_timbre_along():
    from mirsearch.service.collection import with_implied_kinds

    assert with_implied_kinds(("tags",)) == ["tags", "timbre"]
    assert with_implied_kinds(["chroma", "tags", "timbre"]) == ["chroma", "tags", "timbre"]
    assert with_implied_kinds(["chroma"]) == ["chroma"]
