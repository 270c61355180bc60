"""HCQT, chroma network, losses, training loop, bundles and learned_chroma."""

import json

import numpy as np
import pytest
import torch

from mirsearch.errors import InputError, ParameterError
from mirsearch.features.hcqt import hcqt
from mirsearch.models.bundle import load_bundle, new_bundle
from mirsearch.models.network import BLANK, ChromaNet, fold_pitches
from mirsearch.training.losses import (
    IGNORE,
    compute_loss,
    linear_frame_targets,
    strong_frame_targets,
)

SR = 22050


@pytest.fixture(autouse=True)
def _onnx_cache(tmp_path, monkeypatch):
    # ONNX exports of the test models go to a temporary cache, not ~/.cache/mirsearch
    monkeypatch.setenv("MIRSEARCH_CACHE", str(tmp_path / "mirsearch-cache"))
    monkeypatch.delenv("MIRSEARCH_INFERENCE", raising=False)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # two threads on a busy 2-core machine are often many times slower than one
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _sine(freq, seconds=1.0, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_hcqt_shape_and_harmonic_channels():
    y = _sine(440.0, 1.0)
    H, rate = hcqt(y, sr=SR, feature_rate=SR / 512)
    assert H.dtype == np.float32 and H.shape == (6, 216, 1 + SR // 512)
    assert rate == SR / 512
    assert H.min() >= 0.0 and H.max() == pytest.approx(1.0)
    mid = H[:, :, H.shape[2] // 2]
    # bin k of every channel is the fundamental 24 + k / 3 (MIDI); channel h shows h * f_k = 440 Hz
    for ch, h in enumerate((0.5, 1, 2, 3, 4, 5)):
        midi_fundamental = 69 - 12 * np.log2(h)
        expected = int(round((midi_fundamental - 24) * 3))
        assert abs(int(np.argmax(mid[ch])) - expected) <= 1, (h, np.argmax(mid[ch]), expected)
    # the models' input: groups of 3 bins centred on semitones; A4 (and 40 cents off) in group 45
    for cents in (0, 40, -40):
        f = 440.0 * 2 ** (cents / 1200)
        Hm, _ = hcqt(_sine(f, 0.5), sr=SR, feature_rate=SR / 512, fmin_midi=24 - 1 / 3)
        k = int(np.argmax(Hm[1, :, Hm.shape[2] // 2]))
        assert k // 3 == 69 - 24, (cents, k)


def test_hcqt_other_feature_rate_and_errors():
    y = _sine(220.0, 2.0)
    H, rate = hcqt(y, sr=SR, feature_rate=10.0)
    assert rate == 10.0 and H.shape == (6, 216, 21)
    with pytest.raises(ParameterError, match="feature_rate"):
        hcqt(y, sr=SR, feature_rate=0)
    with pytest.raises(ParameterError, match="Nyquist"):
        hcqt(y, sr=8000, feature_rate=10.0)
    with pytest.raises(InputError):
        hcqt(np.zeros((2, 10)), sr=SR, feature_rate=10.0)


def test_hcqt_equals_float64_reference_and_filter_memo_is_scoped():
    import librosa
    import librosa.core.constantq as cq

    orig = cq.__dict__["__vqt_filter_fft"]
    y = 0.4 * _sine(330.0, 1.5) + 0.2 * _sine(97.0, 1.5)
    kw = dict(sr=SR, feature_rate=SR / 512, fmin_midi=24 - 1 / 3)
    H1, _ = hcqt(y, **kw)
    H2, _ = hcqt(y, **kw)  # filter bases from the memo
    assert cq.__dict__["__vqt_filter_fft"] is orig  # librosa is left as it was
    np.testing.assert_array_equal(H1, H2)
    # reference: librosa's CQT (3 bins per semitone from half the fundamental), harmonic channels by
    # linear interpolation at bin offsets 36 log2(2 h), dB relative to the maximum, 80 dB range, float64
    fmin = librosa.midi_to_hz(24 - 1 / 3) * 0.5
    C = np.abs(librosa.cqt(y, sr=SR, hop_length=512, fmin=fmin, n_bins=336, bins_per_octave=36, tuning=0.0))
    C = C.astype(np.float64)
    chans = []
    for h in (0.5, 1, 2, 3, 4, 5):
        s = 36 * np.log2(h / 0.5)
        lo = int(np.floor(s))
        f = s - lo
        chans.append((1 - f) * C[lo : lo + 216] + f * C[lo + 1 : lo + 217])
    R = np.stack(chans)
    ref = R.max()
    R = (20 * np.log10(np.maximum(R, ref * 1e-4) / ref) + 80) / 80
    np.testing.assert_allclose(H1, R, atol=1e-5)


def test_network_output_shape_and_normalisation():
    torch.manual_seed(0)
    net = ChromaNet().eval()
    x = torch.rand(2, 6, 216, 50)
    out = net(x)
    assert out.shape == (2, 13, 25)
    np.testing.assert_allclose(out.exp().sum(dim=1).detach().numpy(), 1.0, rtol=1e-5)


def test_pitch_log_probs_fold_to_the_chroma_output_and_shift_with_the_input():
    torch.manual_seed(3)
    net = ChromaNet().eval()
    x = torch.zeros(2, 6, 216, 30)
    x[:, :, 60:120, :] = torch.rand(2, 6, 60, 30)
    with torch.no_grad():
        P = net.pitch_log_probs(x)
        assert P.shape == (2, 73, 15)
        np.testing.assert_allclose(P.exp().sum(dim=1).numpy(), 1.0, rtol=1e-5)
        np.testing.assert_allclose(fold_pitches(P).numpy(), net(x).numpy(), atol=1e-5)
        # an octave up in the input (36 bins) is an octave up in the pitch classes (12 semitones), not a fold
        Q = net.pitch_log_probs(torch.roll(x, 36, dims=2))
    assert torch.allclose(P[:, 20:50], Q[:, 32:62], atol=2e-2)
    assert not torch.allclose(P[:, 20:50], Q[:, 20:50], atol=2e-2)


def test_network_is_transposition_equivariant():
    # shifting the input by one octave keeps the chroma output (away from the frequency edges)
    torch.manual_seed(1)
    net = ChromaNet().eval()
    x = torch.zeros(1, 6, 216, 40)
    x[:, :, 60:100, :] = torch.rand(1, 6, 40, 40)
    shifted = torch.roll(x, 36, dims=2)
    a, b = net(x), net(shifted)
    assert torch.allclose(a, b, atol=2e-2)
    # and shifting by a semitone (3 bins) rotates the chroma classes by one (roughly: edges differ)
    c = net(torch.roll(x, 3, dims=2))
    assert torch.allclose(torch.roll(a[:, :12], 1, dims=1), c[:, :12], atol=5e-2)


def test_frame_targets():
    np.testing.assert_array_equal(linear_frame_targets([4, 2], 4), [4, 4, 2, 2])
    np.testing.assert_array_equal(linear_frame_targets([4, 2], 6, durations=[2, 1]), [4, 4, 4, 4, 2, 2])
    np.testing.assert_array_equal(
        strong_frame_targets([7, 9], [0.15, 0.31], 5, feature_rate=10.0), [IGNORE, IGNORE, 7, 7, 9]
    )
    with pytest.raises(ParameterError):
        linear_frame_targets([1, 2], 4, durations=[1.0])


@pytest.mark.parametrize("kind", ["ctc", "linear", "strong", "sdtw"])
def test_few_optimisation_steps_reduce_loss(kind):
    torch.manual_seed(0)
    net = ChromaNet(channels=16)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    x = torch.rand(2, 6, 216, 32)
    labels = [np.array([0, 4, 7, 7]), np.array([2, 2, 9])]
    lengths = torch.tensor([16, 12])
    ft = torch.full((2, 16), IGNORE, dtype=torch.long)
    ft[0] = torch.as_tensor(linear_frame_targets(labels[0], 16))
    ft[1, :12] = torch.as_tensor(linear_frame_targets(labels[1], 12))
    losses = []
    for _ in range(12):
        value = compute_loss(kind, net(x), labels=labels, lengths=lengths, frame_targets=ft)
        opt.zero_grad()
        value.backward()
        opt.step()
        losses.append(value.item())
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.8 * losses[0], losses


def test_ctc_loss_equals_numpy_reference():
    from mirsearch.training.ctc import ctc_loss as np_ctc

    torch.manual_seed(2)
    lp = torch.log_softmax(torch.randn(1, 13, 20, dtype=torch.float64), dim=1)
    labels = [np.array([1, 1, 5])]
    value = compute_loss("ctc", lp, labels=labels, lengths=torch.tensor([20]))
    # reduction "mean" divides by the target length
    assert float(value) == pytest.approx(np_ctc(lp[0].T.numpy(), labels[0], blank=BLANK) / 3, rel=1e-9)


def test_sdtw_loss_is_dtw_of_frame_cross_entropy():
    """At a small temperature the soft-DTW loss is librosa's DTW cost over -log p(label), per frame."""
    import librosa

    torch.manual_seed(3)
    lp = torch.log_softmax(torch.randn(1, 13, 9, dtype=torch.float64), dim=1)
    labels = [np.array([3, 3, 8, 1])]
    value = compute_loss("sdtw", lp, labels=labels, lengths=torch.tensor([7]), gamma=1e-4)
    C = -lp[0, labels[0], :7].T.numpy()  # (frames, labels)
    D = librosa.sequence.dtw(C=C, backtrack=False)
    assert float(value) == pytest.approx(D[-1, -1] / 7, abs=1e-3)


def test_unknown_loss():
    with pytest.raises(ParameterError, match="loss"):
        compute_loss("mse", torch.zeros(1, 13, 4), labels=[[1]], lengths=torch.tensor([4]))


def test_bundle_round_trip(tmp_path):
    torch.manual_seed(3)
    b = new_bundle(training={"loss": "ctc"})
    with torch.no_grad():  # make BatchNorm statistics non-trivial
        for m in b.model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    b.save(tmp_path / "bundle")
    cfg = json.loads((tmp_path / "bundle" / "config.json").read_text())
    assert cfg["input"]["features"] == "hcqt" and cfg["training"]["loss"] == "ctc"
    assert len(cfg["model_id"]) == 16
    loaded = load_bundle(tmp_path / "bundle")
    assert loaded.model_id == cfg["model_id"]
    H = np.random.default_rng(0).uniform(0, 1, (6, 216, 100)).astype(np.float32)
    np.testing.assert_array_equal(b.predict(H, backend="torch"), loaded.predict(H, backend="torch"))
    # blockwise prediction equals one pass over the whole input
    whole = loaded.model(torch.from_numpy(H)[None])[0].detach().numpy()
    np.testing.assert_allclose(loaded.predict(H, block_frames=130, backend="torch"), whole, atol=1e-5)
    # another model gets another id
    b2 = new_bundle()
    b2.save(tmp_path / "other")
    assert b2.model_id != loaded.model_id


def test_load_bundle_errors(tmp_path):
    with pytest.raises(InputError, match="config.json"):
        load_bundle(tmp_path)
    b = new_bundle()
    b.save(tmp_path / "b")
    (tmp_path / "b" / "weights.pt").write_bytes(b"garbage")
    with pytest.raises(InputError, match="weights"):
        load_bundle(tmp_path / "b")


def test_learned_chroma_shape_and_normalisation(tmp_path):
    from mirsearch.features.learned import learned_chroma

    torch.manual_seed(4)
    b = new_bundle()
    b.save(tmp_path / "bundle")
    y = _sine(261.63, 2.0, sr=16000)  # other sampling rate: resampled
    C, rate = learned_chroma(y, sr=16000, feature_rate=10.0, bundle=tmp_path / "bundle")
    assert rate == 10.0 and C.dtype == np.float32 and C.shape == (12, 21)
    np.testing.assert_allclose(np.linalg.norm(C, axis=0), 1.0, rtol=1e-5)
    assert (C >= 0).all()
    with pytest.raises(InputError):
        learned_chroma(y, sr=16000, bundle=tmp_path / "missing")


def test_default_bundle_if_shipped():
    from mirsearch.features.learned import learned_chroma
    from mirsearch.models.bundle import BUNDLES_DIR, DEFAULT_BUNDLE

    assert (BUNDLES_DIR / DEFAULT_BUNDLE / "config.json").exists(), "the default bundle must ship"
    # a C major scale of harmonic tones: the model should mostly find the played pitch class
    notes = [60, 62, 64, 65, 67, 69, 71, 72]
    y = np.concatenate(
        [sum(0.5**k * _sine(440 * 2 ** ((p - 69) / 12) * (k + 1), 0.5) for k in range(4)) for p in notes]
    )
    C, rate = learned_chroma(y, sr=SR, feature_rate=10.0)
    assert C.shape == (12, 41)
    hits = sum(int(np.argmax(C[:, 5 * i + 2])) == p % 12 for i, p in enumerate(notes))
    assert hits >= 6, hits


def _scale(cents, notes=(60, 62, 64, 65, 67, 69, 71, 72), seconds=0.5):
    f = [440 * 2 ** ((p - 69) / 12 + cents / 1200) for p in notes]
    return np.concatenate([sum(0.5**k * _sine(fp * (k + 1), seconds) for k in range(4)) for fp in f])


def test_hcqt_tuning_centres_a_detuned_recording():
    from mirsearch.features.learned import bundle_hcqt, hcqt_tuning

    b = load_bundle()
    for cents in (-35, 0, 30):
        assert hcqt_tuning(_scale(cents), sr=SR) == pytest.approx(cents / 100, abs=0.04)
    # the bins move with the tuning: the detuned scale's HCQT centred on its tuning is the in-tune one's
    ref = bundle_hcqt(_scale(0), sr=SR, input_config=b.input)
    plain = bundle_hcqt(_scale(40), sr=SR, input_config=b.input)
    tuned = bundle_hcqt(_scale(40), sr=SR, input_config=b.input, tuning=0.4)
    peak = [np.argmax(H[1], axis=0)[10:-10] for H in (ref, plain, tuned)]  # fundamental channel, per frame
    assert np.mean(peak[2] == peak[0]) > 0.9 and np.mean(peak[1] == peak[0]) < 0.1


def test_learned_chroma_reads_a_detuned_scale_as_the_in_tune_one(monkeypatch):
    import mirsearch.features.learned as learned

    def readings(cents):
        C, _ = learned.learned_chroma(_scale(cents), sr=SR)
        return np.array([int(np.argmax(C[:, 5 * i + 2])) for i in range(8)])

    ref = readings(0)
    for cents in (-45, -30, 30, 45):  # centred on the estimated tuning: the in-tune readings
        assert np.sum(readings(cents) == ref) >= 6, (cents, readings(cents), ref)
    monkeypatch.setattr(learned, "ESTIMATE_TUNING", False)
    for cents in (30, 45):  # at A440 the network reads these a semitone up
        assert np.sum(readings(cents) == ref) <= 2, (cents, readings(cents), ref)
    C, _ = learned.learned_log_probs(_scale(45), sr=SR, tuning=0.45)  # an explicit tuning overrides the switch
    assert C.shape[0] == 13


def _perturbed_bundle(seed):
    torch.manual_seed(seed)
    b = new_bundle()
    with torch.no_grad():
        for m in b.model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
    return b


def test_onnx_export_at_first_use_agrees_with_torch(tmp_path):
    from mirsearch.models.bundle import ONNX_FILE, cache_dir

    b = _perturbed_bundle(6)
    H = np.random.default_rng(1).uniform(0, 1, (6, 216, 700)).astype(np.float32)
    assert b.onnx_path() is None  # never saved: no model_id to key an export by
    with pytest.raises(ParameterError, match="ONNX"):
        b.predict(H, backend="onnx")
    b.save(tmp_path / "b")
    loaded = load_bundle(tmp_path / "b")
    ref = loaded.predict(H, backend="torch", block_frames=256)
    out = loaded.predict(H, backend="onnx", block_frames=256)
    cached = cache_dir() / "onnx" / f"{loaded.model_id}.onnx"
    assert loaded.onnx_path() == cached and cached.exists()
    assert out.shape == ref.shape == (13, 350)
    assert np.abs(out - ref).max() < 1e-4
    assert np.abs(loaded.predict(H)).max() > 0  # "auto" runs
    np.testing.assert_array_equal(loaded.predict(H, block_frames=256), out)  # auto = onnx here
    # the bundle's own export is preferred once written; re-saving other weights drops it
    loaded.write_onnx()
    again = load_bundle(tmp_path / "b")
    assert again.onnx_path() == tmp_path / "b" / ONNX_FILE
    assert json.loads((tmp_path / "b" / "config.json").read_text())["onnx"]["model_id"] == again.model_id
    np.testing.assert_allclose(again.predict(H, backend="onnx", block_frames=256), out, atol=1e-6)
    with torch.no_grad():
        again.model.pitch.bias.add_(1.0)
    again.save(tmp_path / "b")
    assert not (tmp_path / "b" / ONNX_FILE).exists() and "onnx" not in again.config
    with pytest.raises(ParameterError, match="backend"):
        again.predict(H, backend="tensorflow")


def test_default_bundle_ships_current_onnx_and_learned_chroma_uses_it(monkeypatch):
    from mirsearch.features.learned import bundle_hcqt, learned_chroma
    from mirsearch.models.bundle import ONNX_FILE

    b = load_bundle()
    # the shipped model.onnx was exported from the shipped weights (config records the model_id)
    assert b.onnx_path(export=False) == b.path / ONNX_FILE
    notes = [60, 64, 67, 72, 71, 69, 65, 62]
    y = np.concatenate(
        [sum(0.5**k * _sine(440 * 2 ** ((p - 69) / 12) * (k + 1), 1.0) for k in range(4)) for p in notes]
    )
    H = bundle_hcqt(y, sr=SR, input_config=b.input)
    ref = b.predict(H, backend="torch", block_frames=128)
    out = b.predict(H, backend="onnx", block_frames=128)
    assert np.abs(out - ref).max() < 1e-4
    C_onnx, _ = learned_chroma(y, sr=SR)
    monkeypatch.setenv("MIRSEARCH_INFERENCE", "torch")
    C_torch, _ = learned_chroma(y, sr=SR)
    assert np.abs(C_onnx - C_torch).max() < 1e-4


def _bench_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_learned_chroma.py"
    spec = importlib.util.spec_from_file_location("bench_learned_chroma", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_basic_pitch_fold_to_chroma():
    fold = _bench_module().fold_to_chroma
    P = np.zeros((88, 3))
    P[39, 0] = 1.0  # key 39 = MIDI 60 = C4
    P[48, 1] = 0.5  # MIDI 69 = A4
    P[48 + 12, 1] = 0.25  # A5 adds to A
    C = fold(P, midi_min=21)
    expected = np.zeros((12, 3))
    expected[0, 0] = 1.0
    expected[9, 1] = 0.75
    np.testing.assert_allclose(C, expected)
    Pc = np.zeros((264, 3))
    Pc[3 * 48, 0] = 1.0  # contour bins: 3 per semitone, bin 0 on A0
    Pc[3 * 48 + 1, 1] = 1.0  # a third of a semitone above A4: still A
    Pc[3 * 48 + 2, 2] = 1.0  # two thirds above: nearest semitone A#
    np.testing.assert_allclose(fold(Pc, midi_min=21, bins_per_semitone=3)[[9, 10]], [[1, 1, 0], [0, 0, 1]])
    # semitone pooling assigns bins to the same nearest semitone as the fold
    pooled = _bench_module().semitone_pool(Pc)
    assert pooled.shape == (88, 3)
    np.testing.assert_allclose(fold(pooled, midi_min=21), fold(Pc, midi_min=21, bins_per_semitone=3))


def test_basic_pitch_chroma_threshold_removes_the_floor():
    from basic_pitch.constants import ANNOTATIONS_FPS

    bench = _bench_module()
    n = int(2 * ANNOTATIONS_FPS)
    post = np.full((2, 88, n), 0.05)  # a floor of small activations on every key ...
    post[0, 39] = 0.9  # ... and one confident note, C4
    raw = bench.basic_pitch_chroma(post, kind="note", threshold=0.0, duration=2.0)
    clean = bench.basic_pitch_chroma(post, kind="note", threshold=0.3, duration=2.0)
    assert raw.shape == clean.shape == (12, 21)
    np.testing.assert_allclose(clean[:, 5], np.eye(12)[0], atol=1e-9)
    assert raw[0, 5] < 0.9  # the floor of 87 other keys flattens the unthresholded chroma


def test_basic_pitch_posteriorgrams_equal_run_inference(tmp_path, monkeypatch):
    import sys
    import types

    import soundfile as sf

    bench = _bench_module()
    # basic_pitch.inference imports note_creation, which imports resampy (only for sonification)
    monkeypatch.setitem(sys.modules, "resampy", sys.modules.get("resampy") or types.ModuleType("resampy"))
    from basic_pitch import FilenameSuffix, build_icassp_2022_model_path
    from basic_pitch.inference import Model, run_inference

    y = 0.3 * _sine(440.0, 5.3) + 0.2 * _sine(261.63, 5.3)
    sf.write(tmp_path / "x.wav", y, SR, subtype="FLOAT")
    ref = run_inference(tmp_path / "x.wav", Model(build_icassp_2022_model_path(FilenameSuffix.onnx)))
    post, rate = bench.BasicPitch(batch=4).posteriorgrams(y, SR)
    assert rate == pytest.approx(22050 / 256)
    for k in ("note", "contour"):
        np.testing.assert_allclose(post[k], ref[k].T, atol=1e-5)
    C = bench.fold_to_chroma(post["note"], midi_min=21).mean(axis=1)
    assert set(np.argsort(C)[-2:]) == {0, 9}  # C and A


def test_centred_hcqt_cache_reads_a_sharp_render_as_the_in_tune_one(tmp_path):
    import soundfile as sf

    from mirsearch.models.bundle import default_input_config
    from mirsearch.training.chroma import HCQTCache

    cfg = default_input_config()
    for cents in (0, 40):
        sf.write(tmp_path / f"c{cents}.wav", _scale(cents), SR, subtype="FLOAT")
    centred = HCQTCache(tmp_path / "cache", cfg, centred=True)
    plain = HCQTCache(tmp_path / "cache", cfg)
    assert centred.directory != plain.directory and centred.directory.name.endswith("-tuned")
    for cache in (centred, plain):
        for cents in (0, 40):
            cache.compute(f"c{cents}", str(tmp_path / f"c{cents}.wav"))
    assert len(list(centred.directory.iterdir())) == len(list(plain.directory.iterdir())) == 2
    assert not set(centred.directory.iterdir()) & set(plain.directory.iterdir())
    assert centred.tunings["c40"] == pytest.approx(0.4, abs=0.04) and abs(centred.tunings["c0"]) < 0.04
    assert plain.tunings == {}

    def peaks(cache, rec):  # most active bin of the fundamental channel per frame (uint8 -> float)
        return np.argmax(np.asarray(cache.get(rec), dtype=np.float32)[1], axis=0)[10:-10]

    # centred: the sharp render's notes in the in-tune render's bins; at A440 they are a third of a semitone up
    assert np.mean(peaks(centred, "c40") == peaks(centred, "c0")) > 0.9
    assert np.mean(peaks(plain, "c40") == peaks(plain, "c0")) < 0.1

    def loud_difference(cache):  # mean |difference| where either render is above half scale (the notes)
        a, b = (np.asarray(cache.get(rec), dtype=float) / 255.0 for rec in ("c40", "c0"))
        return np.abs(a - b)[(a > 0.5) | (b > 0.5)].mean()

    assert loud_difference(centred) < 0.06 and loud_difference(plain) > 0.1, (
        loud_difference(centred),
        loud_difference(plain),
    )
    # the in-tune render (estimated within a few cents of A440) reads the same either way
    assert np.mean(peaks(centred, "c0") == peaks(plain, "c0")) > 0.9


def test_training_resume_equals_uninterrupted(tmp_path):
    from mirsearch.models.bundle import default_input_config
    from mirsearch.training.chroma import HCQTCache, Segment, train

    cfg = default_input_config()
    cache = HCQTCache(tmp_path / "cache", cfg)
    rng = np.random.default_rng(0)
    cache.directory.mkdir(parents=True)
    segs = []
    for r in range(3):
        H = rng.integers(0, 256, (6, 216, 200), dtype=np.uint8)
        np.save(cache.path(f"r{r}"), H)
        for k in range(2):
            segs.append(
                Segment(
                    recording=f"r{r}",
                    audio_path="unused",
                    start=k * 2.0,
                    end=k * 2.0 + 1.5,
                    labels=tuple(int(v) for v in rng.integers(0, 12, 4)),
                    group=f"w{r}",
                )
            )
    kw = dict(cache=cache, loss="ctc", lr=1e-3, max_frames=300, seed=5, progress=False, network={"channels": 8})
    full = train(segs[:4], segs[4:], out=tmp_path / "full", epochs=2, **kw)
    train(segs[:4], segs[4:], out=tmp_path / "part", epochs=1, **kw)
    resumed = train(segs[:4], segs[4:], out=tmp_path / "part", epochs=2, resume=True, **kw)
    assert len(resumed["history"]) == 2
    for a, b in zip(full["history"], resumed["history"], strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
    assert (tmp_path / "full" / "config.json").exists() and (tmp_path / "full" / "history.json").exists()


def test_cli_plot_and_curves(tmp_path):
    import soundfile as sf

    from mirsearch.cli.main import main

    audio = tmp_path / "a.wav"
    sf.write(audio, _sine(330.0, 3.0), SR)
    b = new_bundle()
    b.save(tmp_path / "bundle")
    out = tmp_path / "fig.png"
    assert main(["train", "plot", "--bundle", str(tmp_path / "bundle"), "--audio", str(audio), "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    run = tmp_path / "run"
    run.mkdir()
    hist = [{"epoch": 1, "train_loss": 2.0, "val_loss": 2.5, "val_ctc": 2.5, "val_chroma_accuracy": 0.3}]
    (run / "history.json").write_text(json.dumps(hist))
    assert main(["train", "curves", str(run), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").exists()
    assert main(["train", "curves", str(tmp_path / "nothing"), "--out", str(tmp_path / "d.png")]) == 1


def test_soup_weights_is_the_mean_of_the_tuned_bundles_interpolated_with_the_base():
    from mirsearch.training.distill import interpolate_weights, soup_weights

    torch.manual_seed(0)
    base, t1, t2 = new_bundle(), new_bundle(), new_bundle()
    s0 = {k: v.clone() for k, v in base.model.state_dict().items()}
    s1, s2 = t1.model.state_dict(), t2.model.state_dict()
    soup = soup_weights(base, [t1, t2], alpha=0.6)
    for k, v in soup.model.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(v, 0.4 * s0[k] + 0.3 * (s1[k] + s2[k]), atol=1e-6)
        else:
            assert torch.equal(v, s0[k])
    assert soup.config["training"]["interpolated"]["tuned"] == [t1.model_id, t2.model_id]
    # one tuned bundle: the same weights as interpolate_weights
    a, b = new_bundle(), new_bundle()
    a.model.load_state_dict(s0)
    b.model.load_state_dict(s0)
    one = soup_weights(a, [t1], alpha=0.3).model.state_dict()
    two = interpolate_weights(b, t1, alpha=0.3).model.state_dict()
    assert all(torch.equal(one[k], two[k]) for k in one)
    with pytest.raises(ParameterError):
        soup_weights(new_bundle(), [], alpha=0.5)
    with pytest.raises(ParameterError):
        soup_weights(new_bundle(), [t1, new_bundle(network={"channels": 16})], alpha=0.5)


def test_shift_bins_and_tta_probs_average_the_shifted_inputs():
    from mirsearch.errors import ParameterError

    bench = _bench_module()
    shift_bins, tta_probs = bench.shift_bins, bench.tta_probs

    H = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)
    up, down = shift_bins(H, 1), shift_bins(H, -2)
    np.testing.assert_array_equal(up[:, 1:], H[:, :-1])
    assert not up[:, 0].any()
    np.testing.assert_array_equal(down[:, :3], H[:, 2:])
    assert not down[:, 3:].any()
    np.testing.assert_array_equal(shift_bins(H, 0), H)
    assert shift_bins(H, 0) is not H

    class Stub:  # log-probabilities that depend on the input's mean
        def predict(self, X, num_threads=1):
            p = np.full((13, X.shape[2]), X.mean() / 100.0)
            return np.log(p)

    got = tta_probs(H, bundle=Stub(), shifts=(-1, 0, 1))
    expected = np.mean([shift_bins(H, k).mean() / 100.0 for k in (-1, 0, 1)])
    assert got.shape == (12, 3)
    np.testing.assert_allclose(got, expected)
    with pytest.raises(ParameterError, match="shifts"):
        tta_probs(H, bundle=Stub(), shifts=())


def test_bench_fusion_rows_reduce_to_their_parts_and_per_version_normalises():
    from types import SimpleNamespace

    from mirsearch.scores import parse_note_string

    bench = _bench_module()
    rng = np.random.default_rng(2)
    melodies = {"t1": "C4 D4 E4 F4 G4 E4 C4 D4", "t2": "G4 G4 A4 B4 D5 C5 A4 G4"}
    themes = {t: parse_note_string(m, name=t) for t, m in melodies.items()}
    from mirsearch.features.symbolic import notes_to_chroma

    feats_a, feats_b = {}, {}
    for i, v in enumerate(["v1", "v2", "v3", "v4"]):
        A, B = rng.random((12, 80)) ** 4, rng.random((12, 81)) ** 4
        if i < 2:  # v1 holds t1, v2 holds t2 (in A only: B is noise)
            Q = notes_to_chroma(themes[f"t{i + 1}"], feature_rate=10.0, tempo_bpm=100.0)
            A[:, 10 : 10 + Q.shape[1]] = Q + 0.02
        feats_a[v], feats_b[v] = A, B
    ds = SimpleNamespace(
        themes={t: SimpleNamespace(theme_id=t, to_theme=lambda th=th: th) for t, th in themes.items()},
        relevant_versions=lambda t: {"t1": {"v1"}, "t2": {"v2"}}[t],
    )
    alone = bench.evaluate(feats_a, ds)
    assert alone["top1"] == 1.0
    fused = bench.evaluate_fused([feats_a, feats_b], [0.0, 0.3], 1.0, ds)
    assert fused["per_query_rr"] == alone["per_query_rr"]
    noise = bench.evaluate(feats_b, ds, harmonic_decay=0.3)
    assert bench.evaluate_fused([feats_a, feats_b], [0.0, 0.3], 0.0, ds)["per_query_rr"] == noise["per_query_rr"]
    parts = [bench.feature_costs(f, ds, harmonic_decay=d) for f, d in ((feats_a, 0.0), (feats_b, 0.3))]
    assert bench.evaluate_late(parts, 1.0)["per_query_rr"] == alone["per_query_rr"]
    ids, costs = bench.feature_costs(feats_a, ds)
    _, normed = bench.feature_costs(feats_a, ds, per_version=True)
    for t in costs:  # each version's best cost over the median of its own matching function (<= 1 here)
        assert np.all(normed[t][1] >= costs[t][1])
        assert np.argmin(normed[t][1]) == np.argmin(costs[t][1])
    from mirsearch.matching.subsequence import best_over_shifts, unit_columns
    from mirsearch.search.theme import theme_query

    c, _, _ = best_over_shifts(
        unit_columns(theme_query(themes["t1"], feature_rate=10.0)), unit_columns(feats_a["v3"]), range(12)
    )
    finite = c[np.isfinite(c)]  # the first frames cannot end a path of the whole query
    assert normed["t1"][1][ids.index("v3")] == pytest.approx(finite.min() / np.median(finite), rel=1e-6)


def test_time_context_blocks_start_near_the_trained_network_and_export(tmp_path):
    from mirsearch.models.bundle import ModelBundle
    from mirsearch.models.network import add_time_context, count_parameters

    b = _perturbed_bundle(8)
    H = np.random.default_rng(3).uniform(0, 1, (6, 216, 400)).astype(np.float32)
    net = add_time_context(b.model, [4, 8], gain=0.01)
    assert len(net.context) == 2 and count_parameters(net) > count_parameters(b.model)
    with torch.no_grad():
        ref, out = b.model(torch.from_numpy(H[None])), net(torch.from_numpy(H[None]))
    assert 0 < (out - ref).abs().max() < 0.05  # near the trained output, but the blocks are alive
    # the blocks see far: an impulse moves the output 8 frames away only with the context blocks
    x = torch.zeros(1, 6, 216, 120)
    x[:, :, 100:130, 60] = 1.0
    with torch.no_grad():
        for block in net.context:
            block[1].weight.fill_(1.0)
        far = (net(x) - net(torch.zeros_like(x))).abs()[0, :, 30 + 12]
        near_only = (b.model(x) - b.model(torch.zeros_like(x))).abs()[0, :, 30 + 12]
    assert far.max() > 1e-4 and near_only.max() < 1e-6
    with pytest.raises(ValueError, match="already"):
        add_time_context(net, [2])
    # a bundle with blocks saves, loads (the config carries the dilations) and runs the same in onnxruntime
    config = {**b.config, "network": {**b.config["network"], "time_context": [4, 8]}}
    ModelBundle(config=config, model=net).save(tmp_path / "ctx")
    loaded = load_bundle(tmp_path / "ctx")
    assert loaded.config["network"]["time_context"] == [4, 8] and loaded.model_id != b.model_id
    np.testing.assert_allclose(loaded.predict(H, backend="onnx"), loaded.predict(H, backend="torch"), atol=1e-4)
