"""Distillation loss and fine-tuning loop (issue 14): against a hand-computed KL, invariances, round trips."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from mirsearch.errors import ParameterError
from mirsearch.training.distill import (
    DistillOptions,
    finetune,
    load_pool,
    pool_batch,
    save_item,
    teacher_target,
)
from mirsearch.training.losses import distill_loss


def _rand_log_probs(b, t, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(torch.randn(b, 13, t, generator=g), dim=1)


def test_distill_loss_matches_hand_computed_kl():
    lp = _rand_log_probs(1, 3)
    t = torch.softmax(torch.randn(1, 12, 3, generator=torch.Generator().manual_seed(1)) * 3, dim=1)
    got = float(distill_loss(lp, t, torch.tensor([3])))
    s = np.log(np.exp(lp[0, :12].numpy()) / np.exp(lp[0, :12].numpy()).sum(axis=0))
    tn = t[0].numpy()
    kl = (tn * (np.log(tn) - s)).sum(axis=0)
    w = (tn.max(axis=0) - 1 / 12) / (11 / 12)
    assert got == pytest.approx(float((w * kl).sum() / w.sum()), rel=1e-5)


def test_distill_loss_zero_when_student_equals_teacher_and_blank_ignored():
    chroma = torch.softmax(torch.randn(2, 12, 5) * 2, dim=1)
    for blank in (0.01, 0.9):  # the blank's share does not matter: the student is renormalised over 12
        probs = torch.cat([chroma * (1 - blank), torch.full((2, 1, 5), blank)], dim=1)
        assert float(distill_loss(torch.log(probs), chroma, torch.tensor([5, 5]))) == pytest.approx(0.0, abs=1e-5)


def test_distill_loss_ignores_padding_and_flat_teacher_frames():
    lp = _rand_log_probs(2, 6)
    t = torch.softmax(torch.randn(2, 12, 6) * 3, dim=1)
    base = float(distill_loss(lp, t, torch.tensor([4, 6])))
    t2 = t.clone()
    t2[0, :, 4:] = torch.eye(12)[:, :2]  # padding frames of item 0: confident but outside its length
    assert float(distill_loss(lp, t2, torch.tensor([4, 6]))) == pytest.approx(base, rel=1e-6)
    t3 = t.clone()
    t3[1, :, 0] = 1 / 12  # a flat teacher frame has weight 0
    lp3 = lp.clone()
    lp3[1, :, 0] = torch.log_softmax(torch.randn(13), 0)
    t4 = t3.clone()
    assert float(distill_loss(lp3, t4, torch.tensor([4, 6]))) == pytest.approx(
        float(distill_loss(lp, t3, torch.tensor([4, 6]))), rel=1e-6
    )


def test_distill_loss_gradient_moves_student_towards_teacher_and_bad_shape():
    lp = torch.zeros(1, 13, 4, requires_grad=True)
    t = torch.zeros(1, 12, 4)
    t[0, 3] = 1.0
    distill_loss(torch.log_softmax(lp, 1), t, torch.tensor([4])).backward()
    assert (lp.grad[0, 3] < 0).all()  # gradient descent raises the teacher's class
    with pytest.raises(ParameterError):
        distill_loss(torch.zeros(1, 13, 4), torch.zeros(1, 13, 4), torch.tensor([4]))


def test_teacher_target_resamples_and_normalises():
    P = np.zeros((12, 25))
    P[7] = 2.0
    T = teacher_target(P, rate_in=24.6, rate_out=21.5, n_out=22)
    assert T.shape == (12, 22)
    np.testing.assert_allclose(T.sum(axis=0), 1.0, atol=1e-6)
    assert (T.argmax(axis=0) == 7).all()


def test_pool_round_trip_and_batch(tmp_path):
    rng = np.random.default_rng(0)
    save_item(tmp_path / "a.npz", rng.uniform(0, 1, (6, 216, 20)), labels=[1, 2, 3])
    target = np.full((12, 5), 1 / 12)
    save_item(tmp_path / "b.npz", rng.uniform(0, 1, (6, 216, 11)), target=target)
    a, b = load_pool(tmp_path)
    assert a.h.dtype == np.uint8 and list(a.labels) == [1, 2, 3] and a.target is None
    assert b.target.shape == (12, 5) and len(b.labels) == 0
    x, lengths, labels, tg = pool_batch([a, b], time_pool=2, targets=False)
    assert x.shape == (2, 6, 216, 20) and lengths.tolist() == [10, 5] and tg is None
    np.testing.assert_allclose(x[0].numpy(), a.h / 255.0, atol=1e-7)


def test_finetune_runs_resumes_and_writes_bundles(tmp_path):
    from mirsearch.models.bundle import load_bundle, new_bundle

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    for k in range(3):
        save_item(tmp_path / "pool" / f"l{k}.npz", rng.uniform(0, 1, (6, 216, 40)), labels=[k, k + 2, k + 4])
        save_item(tmp_path / "pool" / f"u{k}.npz", rng.uniform(0, 1, (6, 216, 40)), target=np.eye(12)[:, :20] + 0.01)
    items = load_pool(tmp_path / "pool")
    lab = [it for it in items if it.key.startswith("l")]
    unl = [it for it in items if it.key.startswith("u")]
    bundle = new_bundle()
    before = [p.detach().clone() for p in bundle.model.parameters()]
    opts = DistillOptions(lam=1.0, max_minutes=0.0, steps_per_epoch=2, max_frames=100)
    res = finetune(bundle, lab, unl, out=tmp_path / "run", options=opts)
    assert res["epochs"] == 1 and (tmp_path / "run" / "epoch-1" / "config.json").is_file()
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert hist[0]["distill"] > 0 and hist[0]["ctc"] > 0
    res = finetune(new_bundle(), lab, unl, out=tmp_path / "run", options=opts)  # resumes after epoch 1
    assert res["epochs"] == 2
    b1, b2 = load_bundle(tmp_path / "run" / "epoch-1"), load_bundle(tmp_path / "run" / "epoch-2")
    assert b1.model_id != b2.model_id
    assert any(not torch.equal(a, b) for a, b in zip(before, b1.model.parameters(), strict=True))
    with pytest.raises(ParameterError):
        finetune(new_bundle(), lab, lab, out=tmp_path / "bad", options=opts)  # no teacher targets
    # with a schedule the run ends at its last epoch, whatever the time budget, and a resumed call trains no more
    sched = dataclasses.replace(opts, max_minutes=60.0, schedule_epochs=2, warmup_steps=1)
    assert finetune(new_bundle(), lab, unl, out=tmp_path / "sched", options=sched)["epochs"] == 2
    assert finetune(new_bundle(), lab, unl, out=tmp_path / "sched", options=sched)["epochs"] == 2
    assert not (tmp_path / "sched" / "epoch-3").exists()


def test_items_from_segments_cut_the_cached_recording(tmp_path):
    from mirsearch.training.chroma import HCQTCache, Segment
    from mirsearch.training.distill import items_from_segments

    cache = HCQTCache(tmp_path, {"feature_rate": 10.0})
    H = np.arange(2 * 3 * 50, dtype=np.uint8).reshape(2, 3, 50)
    cache.path("r").parent.mkdir(parents=True)
    np.save(cache.path("r"), H)
    segs = [Segment("r", "", 1.05, 2.0, (1, 2)), Segment("r", "", 4.9, 9.0, (3,)), Segment("r", "", 4.95, 5.0, (4,))]
    items = items_from_segments(segs, cache, time_pool=2)
    assert len(items) == 2  # the last is shorter than one output frame
    np.testing.assert_array_equal(items[0].h, H[:, :, 10:20])  # starts on a multiple of the time pool
    np.testing.assert_array_equal(items[1].h, H[:, :, 48:50])  # cut at the recording's end
    assert list(items[0].labels) == [1, 2] and items[0].target is None


def test_interpolate_weights_ends_midpoint_and_bad_input():
    from mirsearch.models.bundle import new_bundle
    from mirsearch.training.distill import interpolate_weights

    torch.manual_seed(0)
    a, b = new_bundle(), new_bundle()
    with torch.no_grad():
        for p in b.model.parameters():
            p.add_(1.0)
    sa = {k: v.clone() for k, v in a.model.state_dict().items()}
    sb = b.model.state_dict()
    mid = interpolate_weights(a, b, alpha=0.5)
    for k, v in mid.model.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(v, 0.5 * (sa[k] + sb[k]), atol=1e-6)
        else:
            assert torch.equal(v, sa[k])  # integer buffers keep the base's
    base = new_bundle()
    base.model.load_state_dict(sa)
    end = interpolate_weights(base, b, alpha=1.0)
    assert all(torch.allclose(end.model.state_dict()[k], sb[k]) for k in sb if sb[k].is_floating_point())
    assert end.config["training"]["interpolated"]["alpha"] == 1.0
    with pytest.raises(ParameterError):
        interpolate_weights(new_bundle(), b, alpha=1.5)
    with pytest.raises(ParameterError):
        interpolate_weights(new_bundle(), new_bundle(network={"channels": 16}), alpha=0.5)


def test_eq_augment_moves_a_notes_partials_consistently_and_keeps_the_floor(tmp_path):
    from mirsearch.models.bundle import default_input_config, new_bundle
    from mirsearch.training.distill import bin_pitches, eq_augment, random_eq_curves

    cfg = default_input_config()
    P = bin_pitches(cfg)
    assert P.shape == (6, 216)
    # channel h, bin b sees the pitch of bin b of the fundamental channel plus 12 log2(h) semitones
    np.testing.assert_allclose(P[1], cfg["fmin_midi"] + np.arange(216) / 3)
    np.testing.assert_allclose(P[3] - P[1], 12 * np.log2(3.0))
    rng = np.random.default_rng(0)
    m = np.linspace(0, 140, 1401)
    for curve in random_eq_curves(20, max_db=12.0, rng=rng):
        g = curve(m)
        assert np.all(np.abs(g) <= 6.0 + 12.0 / 96 * np.abs(m - 60) + 1e-9)  # cosines <= 6 dB, tilt <= 6 dB / 4 oct
        assert np.abs(np.diff(g)).max() < 0.5  # smooth: under half a dB per tenth of a semitone
    x = torch.from_numpy(np.random.default_rng(2).uniform(0.2, 0.8, (3, 6, 216, 8)).astype(np.float32))
    x[:, :, :10] = 0.0  # floor (and padding) stays; elsewhere no clipping (|gain| < 16 dB = 0.2 over the bins)
    y = eq_augment(x, pitches=P, max_db=12.0, top_db=80.0, rng=np.random.default_rng(1))
    assert torch.all(y[:, :, :10] == 0) and y.min() >= 0 and y.max() <= 1
    d = (y - x)[:, :, 10:, :] * 80.0  # dB
    assert torch.allclose(d, d[..., :1].expand_as(d), atol=1e-5)  # one curve for all frames
    # the same pitch in two channels gets the same gain: bin b + 36 of channel 1 (an octave up) = bin b of channel 2
    unclipped = (x[:, 2, 10:180] + (y - x)[:, 2, 10:180] > 0) & (x[:, 2, 10:180] + (y - x)[:, 2, 10:180] < 1)
    a, b = (y - x)[:, 2, 10:180], (y - x)[:, 1, 46:216]
    assert torch.allclose(a[unclipped], b[unclipped], atol=1e-5)
    assert d.abs().max() > 0.5  # it does something
    assert eq_augment(x, pitches=P, max_db=0.0, top_db=80.0, rng=rng) is x
    # a fine-tune with the augmentation runs
    rng = np.random.default_rng(0)
    for k in range(2):
        save_item(tmp_path / "pool" / f"l{k}.npz", rng.uniform(0, 1, (6, 216, 40)), labels=[k, k + 2, k + 4])
    lab = load_pool(tmp_path / "pool")
    opts = DistillOptions(lam=0.0, max_minutes=0.0, steps_per_epoch=2, max_frames=100, eq_db=12.0)
    assert finetune(new_bundle(), lab, [], out=tmp_path / "run", options=opts)["epochs"] == 1
    with pytest.raises(ParameterError):
        DistillOptions(eq_db=-1.0).check()


def test_scheduled_lr_warms_up_decays_by_cosine_and_checks_range():
    from mirsearch.training.distill import scheduled_lr

    const = DistillOptions(lr=1e-3, steps_per_epoch=10)
    assert scheduled_lr(0, const) == scheduled_lr(10_000, const) == 1e-3
    opts = DistillOptions(lr=1e-3, steps_per_epoch=10, schedule_epochs=5, warmup_steps=10, min_lr_ratio=0.1)
    lrs = np.array([scheduled_lr(k, opts) for k in range(80)])
    np.testing.assert_allclose(lrs[:10], 1e-3 * np.arange(1, 11) / 10)  # linear warm-up to the peak
    assert np.all(np.diff(lrs[10:50]) < 0)  # cosine decay over the remaining 40 steps
    assert lrs[30] == pytest.approx(1e-4 + 0.5 * 9e-4)  # half-way down: the mean of peak and floor
    np.testing.assert_allclose(lrs[50:], 1e-4)  # then the floor
    with pytest.raises(ParameterError):
        DistillOptions(schedule_epochs=-1).check()
    with pytest.raises(ParameterError):
        DistillOptions(min_lr_ratio=1.5).check()


def test_finetune_history_records_the_scheduled_rate(tmp_path):
    from mirsearch.models.bundle import new_bundle

    rng = np.random.default_rng(1)
    for k in range(2):
        save_item(tmp_path / "pool" / f"l{k}.npz", rng.uniform(0, 1, (6, 216, 40)), labels=[k, k + 3])
    lab = load_pool(tmp_path / "pool")
    opts = DistillOptions(lam=0.0, lr=1e-3, max_minutes=0.0, steps_per_epoch=2, max_frames=100, schedule_epochs=2)
    finetune(new_bundle(), lab, [], out=tmp_path / "run", options=opts)
    finetune(new_bundle(), lab, [], out=tmp_path / "run", options=opts)  # resumed: continues the curve
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    from mirsearch.training.distill import scheduled_lr

    assert [h["lr"] for h in hist] == pytest.approx([scheduled_lr(1, opts), scheduled_lr(3, opts)])
    low = 1e-3 * opts.min_lr_ratio  # the last step of 4 is three quarters down the cosine
    assert hist[1]["lr"] == pytest.approx(low + (1e-3 - low) * 0.5 * (1 + np.cos(0.75 * np.pi)))


def test_pitch_ctc_loss_is_ctc_over_pitches_for_known_registers_and_over_classes_otherwise():
    from mirsearch.models.network import ChromaNet, fold_pitches
    from mirsearch.training.distill import PoolItem, lowest_semitone, pitch_ctc_loss

    torch.manual_seed(0)
    net = ChromaNet(channels=16).eval()
    rng = np.random.default_rng(0)
    h = [rng.integers(0, 255, (6, 216, 40), dtype=np.uint8) for _ in range(3)]
    pitches = [np.array([60, 64, 67]), np.array([50, 62, 74]), None]  # the third has no registers
    items = [PoolItem(f"i{k}", h[k], (p if p is not None else np.array([2, 5])) % 12, None, p)
             for k, p in enumerate(pitches)]  # fmt: skip
    x, lengths, labels, _ = pool_batch(items, time_pool=2, targets=False)
    lowest = lowest_semitone({"bins_per_semitone": 3, "fmin_midi": 23 + 2 / 3})
    assert lowest == 24
    with torch.no_grad():
        got = float(pitch_ctc_loss(net, x, items, labels, lengths, lowest=lowest))
        P = net.pitch_log_probs(x)
        ctc = torch.nn.CTCLoss(blank=72, reduction="mean", zero_infinity=True)
        want_p = ctc(P[:2].permute(2, 0, 1), torch.as_tensor(np.concatenate(pitches[:2]) - 24), lengths[:2],
                     torch.tensor([3, 3]))  # fmt: skip
        want_c = torch.nn.CTCLoss(blank=12, reduction="mean", zero_infinity=True)(
            fold_pitches(P[2:]).permute(2, 0, 1), torch.tensor([2, 5]), lengths[2:], torch.tensor([2])
        )
    assert got == pytest.approx((2 * float(want_p) + float(want_c)) / 3, rel=1e-5)
    # the same pitch classes an octave off are another target: the loss changes
    moved = [dataclasses.replace(items[0], pitches=pitches[0] + 12), *items[1:]]
    with torch.no_grad():
        assert float(pitch_ctc_loss(net, x, moved, labels, lengths, lowest=lowest)) != pytest.approx(got, rel=1e-4)


def test_finetune_with_pitch_ctc_reduces_the_loss(tmp_path):
    from mirsearch.models.bundle import new_bundle
    from mirsearch.training.distill import PoolItem

    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    lab = [PoolItem(f"l{k}", rng.integers(0, 255, (6, 216, 40), dtype=np.uint8), np.array([k, k + 4]) % 12, None,
                    np.array([60 + k, 64 + k])) for k in range(3)]  # fmt: skip
    opts = DistillOptions(lam=0.0, max_minutes=60.0, steps_per_epoch=6, max_frames=200, lr=3e-3, pitch_ctc=True,
                          schedule_epochs=2)  # fmt: skip
    res = finetune(new_bundle(), lab, [], out=tmp_path / "run", options=opts)
    assert res["epochs"] == 2 and res["history"][1]["ctc"] < res["history"][0]["ctc"]
