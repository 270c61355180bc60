"""Training of the speech/music segmenter: the folded numpy bundle against the torch network, the augmentation's
invariants, frame labels from intervals, validation scores against hand counts, and early stopping."""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mirsearch.features.segment_features import DB_FLOOR  # noqa: E402
from mirsearch.models.segmenter import SegmenterModel  # noqa: E402
from mirsearch.training import segmenter as T  # noqa: E402

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "numba"))

SMALL = T.TrainOptions(channels=(4, 8, 8), hidden=12, dilations=(1, 2), eq_db=6.0, mel_shift=1.5, freq_mask=4)


def test_folded_bundle_equals_torch_network(tmp_path):
    torch.manual_seed(0)
    net = T._net(40, SMALL)
    for m in net.modules():  # batch norm with statistics that are not the identity
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    net.eval()
    norm = {"offset_db": -40.0, "scale_db": 20.0}
    T.write_bundle(net, tmp_path, SMALL, norm, {})
    model = SegmenterModel.load(tmp_path)
    L = np.random.default_rng(1).uniform(-80, 0, (40, 200)).astype(np.float32)
    with torch.no_grad():
        ref = torch.sigmoid(net(torch.from_numpy((L - norm["offset_db"]) / norm["scale_db"])[None, None]))[0].numpy()
    np.testing.assert_allclose(model.predict(L), ref, atol=1e-5)


def test_augment_keeps_shape_floor_and_is_reproducible():
    x = np.random.default_rng(0).uniform(DB_FLOOR, 0, (5, 40, 64)).astype(np.float32)
    a = T._augment(x.copy(), np.random.default_rng(3), SMALL)
    b = T._augment(x.copy(), np.random.default_rng(3), SMALL)
    assert a.shape == x.shape and a.dtype == np.float32
    assert a.min() >= DB_FLOOR and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, x)


def test_interval_frames_and_merge():
    lab = T._interval_frames([[0.1, 0.2], [0.25, 0.3], [0.5, 0.6]], 70, merge=0.1)
    expected = np.zeros(70, bool)
    expected[10:30] = True  # the 0.05 s gap is filled
    expected[50:60] = True
    np.testing.assert_array_equal(lab, expected)


class _Constant(torch.nn.Module):
    """A 'network' that says speech everywhere and music nowhere (logits at 25 Hz)."""

    def forward(self, x):
        n = x.shape[-1] // 4
        return torch.stack([torch.full((n,), 9.0), torch.full((n,), -9.0)])[None]


def test_evaluate_files_against_hand_counts():
    ref_s = np.zeros(400, bool)
    ref_s[100:300] = True
    ref_m = np.zeros(400, bool)
    files = [{"condition": "clean", "logmel": np.zeros((40, 400), np.float16), "speech": ref_s, "music": ref_m}]
    out = T.evaluate_files(_Constant(), files, {"offset_db": 0.0, "scale_db": 1.0})
    assert out["clean_speech_f"] == pytest.approx(2 * 200 / (400 + 200), abs=1e-4)
    assert out["clean_music_f"] == 1.0  # nothing to find and nothing found
    assert out["files_f"] == pytest.approx((out["clean_speech_f"] + 1.0) / 2, abs=1e-4)


def test_stale_counts_epochs_since_the_best():
    assert not T._stale({"epoch": 5, "best": ({}, {}, 1)}, 0)
    assert not T._stale({"epoch": 4, "best": ({}, {}, 1)}, 3)
    assert T._stale({"epoch": 5, "best": ({}, {}, 1)}, 3)
    assert not T._stale({"epoch": 0, "best": None}, 3)


def test_loss_weights_emphasise_speech_output_on_music_alone():
    y = np.zeros((1, 2, 4), np.float32)
    y[0, 1, :2] = 1.0  # frames 0-1: music alone; frame 2: speech + music; frame 3: nothing
    y[0, :, 2] = 1.0
    w = T.loss_weights(y, 3.0)
    raw = np.ones((1, 2, 4))
    raw[0, 0, :2] = 3.0
    np.testing.assert_allclose(w, raw / raw.mean(), rtol=1e-6)
    assert w.mean() == pytest.approx(1.0)
    np.testing.assert_array_equal(T.loss_weights(y, 1.0), np.ones_like(y))


def test_wider_context_is_counted_and_runs_in_the_bundle(tmp_path):
    wide = T.TrainOptions(channels=(4, 8, 8), hidden=12, dilations=(1, 2, 4, 8, 16))
    assert T.context_frames(wide) >= 4 * 31 and T.context_frames(wide) % 4 == 0
    net = T._net(40, wide).eval()
    T.write_bundle(net, tmp_path, wide, {"offset_db": -40.0, "scale_db": 20.0}, {})
    model = SegmenterModel.load(tmp_path)
    L = np.random.default_rng(2).uniform(-80, 0, (40, 400)).astype(np.float32)
    with torch.no_grad():
        ref = torch.sigmoid(net(torch.from_numpy((L + 40.0) / 20.0)[None, None]))[0].numpy()
    np.testing.assert_allclose(model.predict(L), ref, atol=1e-5)


def _tiny_data(folder, rng):
    for split in ("tiny", "val"):
        (folder / split).mkdir(parents=True)
        audio = (rng.standard_normal((4, 16000)) * 3000).astype(np.int16)  # 2 s at 8 kHz
        lab = np.zeros((4, 200), np.uint8)
        lab[:2, 50:150] = 1
        np.savez(folder / split / "shard-000.npz", audio=audio, speech=lab, music=lab[::-1], condition=np.zeros(4))


def test_train_writes_the_best_or_the_last_epoch(tmp_path):
    import json

    _tiny_data(tmp_path, np.random.default_rng(0))
    opts = T.TrainOptions(epochs=3, batch_size=2, crop_frames=128, channels=(4, 8, 8), hidden=8, dilations=(1, 2),
                          train_split="tiny")  # fmt: skip
    T.train(tmp_path, tmp_path / "run", opts)
    training = json.loads((tmp_path / "run" / "config.json").read_text())["training"]
    best = training["best_epoch"]
    assert len(training["history"]) == 3 and training["validation"]["mean_f"] == training["history"][best]["mean_f"]
    weights_best = dict(np.load(tmp_path / "run" / "weights.npz"))
    T.train(tmp_path, tmp_path / "run", opts, finish=True, last=True)  # from the checkpoint, no more training
    training = json.loads((tmp_path / "run" / "config.json").read_text())["training"]
    assert training["last_epoch"] == 2 and len(training["history"]) == 3
    weights_last = dict(np.load(tmp_path / "run" / "weights.npz"))
    same = all(np.array_equal(weights_best[k], v) for k, v in weights_last.items())
    assert same == (best == 2)
