"""Tagger training data: single-instrument stems (plan, parts, labels) and mixtures / augmentation of log-mel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mirsearch.datasets.corpus import PartData, ScoreData
from mirsearch.datasets.tag_stems import STEM_FONTS, plan_stems, stem_score
from mirsearch.datasets.tags import TEST_FONTS, split_of
from mirsearch.describe.tag_vocabulary import FAMILIES, TAG_NAMES
from mirsearch.features.logmel import LogMelConfig, log_mel
from mirsearch.training.tag_mixing import StemMixer, augment, band_centres, colour, dynamics, mix_logmel, smear, stretch
from mirsearch.training.tagger import FRONTEND

SR = 16000


def _score(work_id: str, pitches=((72, 74, 76), (48, 50, 52))) -> ScoreData:
    parts = tuple(PartData(f"p{i}", tuple((p, float(k), 1.0, False) for k, p in enumerate(ps)))
                  for i, ps in enumerate(pitches))  # fmt: skip
    return ScoreData(work_id, f"corpus:{work_id}.abc", "", "", "folk", parts, 100.0, "4/4", (0.0,), 3.0)


def _logmel(y: np.ndarray) -> np.ndarray:
    return log_mel(y, sr=SR, config=LogMelConfig(**FRONTEND))[0]


def test_stem_plan_covers_every_family_per_work_and_never_the_test_font_or_test_works():
    scores = [_score(f"w{i}") for i in range(40)]
    plan = plan_stems(scores, seed=0, root=Path("/nonexistent"), per_work=10)
    works = {j.score["work_id"] for j in plan}
    assert works and all(split_of(w, seed=0) != "test" for w in works)
    assert any(split_of(s.work_id, seed=0) == "test" for s in scores)  # some works were left out
    for w in works:
        assert sorted(j.family for j in plan if j.score["work_id"] == w) == sorted(FAMILIES)
    assert {j.soundfont for j in plan} <= {f for f, _ in STEM_FONTS}
    assert not {j.soundfont for j in plan} & set(TEST_FONTS)
    assert plan == plan_stems(scores, seed=0, root=Path("/nonexistent"), per_work=10)  # deterministic


def test_bass_stem_plays_the_lowest_part_an_octave_down_when_high():
    score = _score("w", pitches=((72, 74, 76), (60, 62, 64)))
    out, playing = stem_score(score, "bass", np.random.default_rng(0))
    assert playing == [1]
    assert [n[0] for n in out.parts[1].notes] == [48, 50, 52] and out.parts[0] == score.parts[0]
    low = _score("w", pitches=((72, 74, 76), (40, 43, 45)))  # lowest part already below C3: unchanged
    assert stem_score(low, "bass", np.random.default_rng(0))[0] == low
    assert stem_score(score, "drums", np.random.default_rng(0))[1] == []


def test_mixed_logmel_matches_the_logmel_of_the_summed_signal():
    t = np.arange(SR) / SR
    a = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    b = (0.1 * np.sin(2 * np.pi * 1760 * t)).astype(np.float32)
    La, Lb = _logmel(a), _logmel(b)
    for gain in (0.0, -20.0):
        ref = _logmel(a + np.float32(10 ** (gain / 20)) * b)
        mixed = mix_logmel([La, Lb], np.array([0.0, gain]))
        strong = ref > ref.max(axis=0) - 4.0  # the bands that carry the mixture (phases matter only in leakage)
        assert strong.sum() > 200
        assert np.max(np.abs(mixed[strong] - ref[strong])) < 0.4
        assert np.median(np.abs(mixed[strong] - ref[strong])) < 0.01
        assert np.percentile(np.abs(La[strong] - ref[strong]), 90) > 5.0  # without b: far off
    np.testing.assert_allclose(mix_logmel([La, Lb], np.array([0.0, -400.0])), La, atol=1e-4)


def test_augment_keeps_the_input_and_without_eq_only_adds_a_band_curve():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 50)).astype(np.float32)
    keep = x.copy()
    y = augment(x, np.random.default_rng(1), eq=False, max_shift=0)
    np.testing.assert_array_equal(x, keep)
    d = y - x  # gain + tilt: the same offset in every frame, linear across bands
    np.testing.assert_allclose(d, d[:, :1].repeat(50, axis=1), atol=1e-5)
    np.testing.assert_allclose(np.diff(d[:, 0], 2), 0.0, atol=1e-4)
    z = augment(x, np.random.default_rng(2), eq=True, max_shift=2)
    assert z.shape == x.shape and z.dtype == np.float32 and np.all(np.isfinite(z))
    assert z.min() >= min(x.min() - 4.0, np.log(1e-3))


def test_stem_mixtures_label_the_union_of_families_and_weight_only_what_they_know():
    K = len(TAG_NAMES)
    fam = [TAG_NAMES.index(f) for f in FAMILIES]
    S = np.full((10, 96, 60), np.log(1e-3), np.float32)
    Ys = np.zeros((10, K), np.float32)
    for i in range(10):
        S[i, 5 * i : 5 * i + 5] = 0.0  # stem i has energy in its own bands only
        Ys[i, fam[i]] = 1.0
    x, y, w = StemMixer(S, Ys).stems_only(30, 40, np.random.default_rng(0))
    assert x.shape == (30, 96, 40) and y.shape == w.shape == (30, K)
    for j in range(30):
        present = [i for i in range(10) if x[j, 5 * i : 5 * i + 5].max() > np.log(1e-3) + 1.0]
        assert sorted(np.flatnonzero(y[j, fam])) == present
        k = len(present)
        size = "solo" if k == 1 else ("duo" if k == 2 else "chamber")
        assert y[j, TAG_NAMES.index(size)] == 1.0 and y[j, TAG_NAMES.index("orchestra")] == 0.0
    weighted = set(np.flatnonzero(w.max(axis=0)))
    assert weighted == set(fam) | {TAG_NAMES.index(t) for t in ("solo", "duo", "chamber", "orchestra")}
    Yc = np.zeros((3, K), np.float32)
    Yc[:, TAG_NAMES.index("major")] = 1.0
    Yc[:, fam[0]] = 1.0
    xc, yc, wc = StemMixer(S, Ys).into_clips(S[:3], Yc, np.arange(3), 40, np.random.default_rng(1))
    assert np.all(yc[:, fam[0]] == 1.0) and np.all(yc[:, fam].sum(axis=1) >= 1)
    assert np.all(wc[:, TAG_NAMES.index("major")] == 0.0) and np.all(wc[:, fam] == 1.0)


@pytest.mark.parametrize("bad", [0, -1])
def test_build_refuses_bad_counts(tmp_path, bad):
    from mirsearch.datasets.tag_stems import build_tag_stems
    from mirsearch.errors import ParameterError

    with pytest.raises(ParameterError, match="per_work"):
        build_tag_stems(tmp_path, per_work=bad)


def test_smear_is_the_first_order_recursion_of_the_magnitudes():
    rng = np.random.default_rng(3)
    x = np.log(rng.uniform(0.0, 2.0, size=(4, 30)) + 1e-3).astype(np.float32)
    m = np.exp(x.astype(np.float64)) - 1e-3
    decay, wet = 0.8, 0.5
    tail, acc = np.zeros_like(m), np.zeros(4)
    for t in range(30):  # the textbook one-pole low-pass along time
        acc = decay * acc + (1 - decay) * m[:, t]
        tail[:, t] = acc
    np.testing.assert_allclose(smear(x, decay=decay, wet=wet), np.log(m + wet * tail + 1e-3), atol=1e-5)
    assert np.all(smear(x, decay=decay, wet=wet) >= x - 1e-6)  # a room only adds energy


def test_colour_without_eq_is_a_zero_mean_tilt():
    x = np.random.default_rng(0).normal(size=(96, 20)).astype(np.float32)
    d = colour(x, np.random.default_rng(4), eq=False, max_shift=0) - x
    np.testing.assert_allclose(d, d[:, :1].repeat(20, axis=1), atol=1e-5)
    assert abs(d[:, 0].mean()) < 1e-5 and np.ptp(d[:, 0]) > 0


def test_mixtures_of_up_to_five_coloured_stems_keep_honest_labels():
    K = len(TAG_NAMES)
    fam = [TAG_NAMES.index(f) for f in FAMILIES]
    S = np.full((10, 96, 60), np.log(1e-3), np.float32)
    Ys = np.zeros((10, K), np.float32)
    for i in range(10):
        S[i, 5 * i : 5 * i + 5] = 0.0  # below any low-pass cut (>= 55 % of the bands)
        Ys[i, fam[i]] = 1.0
    mixer = StemMixer(S, Ys, sizes=(0, 0, 0, 0, 1), stem_colour=True, stem_shift=0, stem_reverb=0.5)
    x, y, _ = mixer.stems_only(20, 40, np.random.default_rng(0))
    assert np.all(y[:, fam].sum(axis=1) == 5) and np.all(y[:, TAG_NAMES.index("chamber")] == 1.0)
    for j in range(20):
        present = [i for i in range(10) if x[j, 5 * i : 5 * i + 5].max() > np.log(1e-3) + 1.0]
        assert sorted(np.flatnonzero(y[j, fam])) == present


def test_residual_blocks_start_as_the_identity():
    import torch

    from mirsearch.training.tagger import NetOptions, build_net

    torch.set_num_threads(1)
    torch.manual_seed(0)
    small = build_net(len(TAG_NAMES), NetOptions(channels=(4, 8, 8, 8), top=8, embedding_dim=6))
    wide = build_net(len(TAG_NAMES), NetOptions(channels=(4, 8, 8, 8), top=8, embedding_dim=6, res_blocks=2))
    missing, unexpected = wide.load_state_dict(small.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("body.") for k in missing)
    small.eval(), wide.eval()
    x = torch.randn(2, 1, 96, 64)
    with torch.no_grad():
        for a, b in zip(small(x), wide(x), strict=True):
            torch.testing.assert_close(a, b)


def test_register_aware_pooling_sees_the_row_a_pattern_is_in_and_max_pooling_does_not():
    import torch

    from mirsearch.training.tagger import NetOptions, build_net, widened

    torch.set_num_threads(1)
    torch.manual_seed(0)
    opts = {"channels": (4, 8, 8, 8), "top": 8, "embedding_dim": 6}
    rows = 96 >> 4  # the top conv's frequency rows for the 96 mel bands
    low, high = torch.zeros(1, 8, rows, 5), torch.zeros(1, 8, rows, 5)
    low[:, :, 1], high[:, :, 4] = 1.0, 1.0  # the same activations, in another row of the top conv's output
    out = {}
    for pool in ("max", "max+flat"):
        net = build_net(len(TAG_NAMES), NetOptions(**opts, freq_pool=pool)).eval()
        assert net(torch.zeros(2, 1, 96, 64))[1].shape == (2, 6, 4)  # the whole network, 16x fewer frames
        net.body = torch.nn.Identity()  # the pooling alone, on a given top-conv output
        with torch.no_grad():
            (_, ea), (_, eb) = net(low), net(high)
        out[pool] = float((ea - eb).abs().max())
    assert out["max"] == 0.0 and out["max+flat"] > 1e-3
    small = build_net(len(TAG_NAMES), NetOptions(**opts)).eval()  # a max run, widened: the same outputs at first
    wide = build_net(len(TAG_NAMES), NetOptions(**opts, freq_pool="max+flat")).eval()
    wide.load_state_dict(widened(small.state_dict(), wide.state_dict()))
    x = torch.randn(2, 1, 96, 64)
    with torch.no_grad():
        for a, b in zip(small(x), wide(x), strict=True):
            torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="freq_pool"):
        build_net(len(TAG_NAMES), NetOptions(**opts, freq_pool="mean"))


def test_build_refuses_the_test_split_and_font(tmp_path):
    from mirsearch.datasets.tag_stems import build_tag_stems
    from mirsearch.errors import ParameterError

    with pytest.raises(ParameterError, match="test"):
        build_tag_stems(tmp_path, splits=("test",))
    with pytest.raises(ParameterError, match="test"):
        build_tag_stems(tmp_path, fonts=((TEST_FONTS[0], 1.0),), splits=("validation",))


def test_stretch_moves_a_tone_like_a_transposed_sample_and_zero_is_the_identity():
    t = np.arange(SR) / SR
    hz = band_centres(FRONTEND["n_mels"], fmin=FRONTEND["fmin"], fmax=FRONTEND["fmax"])
    low, high = (_logmel((0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)) for f in (1000.0, 2000.0))
    moved = stretch(low, 12.0, band_hz=hz)
    assert abs(int(np.argmax(moved.mean(axis=1))) - int(np.argmax(high.mean(axis=1)))) <= 1
    np.testing.assert_allclose(stretch(low, 0.0, band_hz=hz), low, atol=1e-5)
    down = stretch(high, -24.0, band_hz=hz)  # bands above fmax / 4 take the floor
    assert np.all(down[hz > FRONTEND["fmax"] / 4 * 1.01] == np.float32(np.log(FRONTEND["log_offset"])))


def test_dynamics_keeps_the_loudest_frame_and_silence_and_sharpens_the_contour():
    rng = np.random.default_rng(0)
    m = rng.uniform(0.0, 1.0, (96, 50)).astype(np.float32) * np.linspace(1.0, 0.05, 50, dtype=np.float32)
    m[:, -5:] = 0.0
    x = np.log(m + FRONTEND["log_offset"]).astype(np.float32)
    np.testing.assert_allclose(dynamics(x, 0.0), x, atol=1e-5)
    y = dynamics(x, 1.0)
    loudest = int(np.argmax(m.sum(axis=0)))
    np.testing.assert_allclose(y[:, loudest], x[:, loudest], atol=1e-5)
    np.testing.assert_allclose(y[:, -5:], x[:, -5:], atol=1e-6)
    energy = lambda z: (np.exp(z) - FRONTEND["log_offset"]).sum(axis=0)  # noqa: E731
    assert energy(y)[40] / energy(y)[loudest] < energy(x)[40] / energy(x)[loudest]
    assert energy(dynamics(x, -0.5))[40] / energy(x)[loudest] > energy(x)[40] / energy(x)[loudest]
