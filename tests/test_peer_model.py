"""The peer's ThemeEnhancer network (models.peer) and its front end (features.peer_front_end)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mirsearch.errors import InputError
from mirsearch.features.peer_front_end import PEER_HOP, PEER_RATE, PEER_SR, peer_chroma, peer_hcqt, peer_readout
from mirsearch.models.peer import (
    N_BINS,
    ThemeEnhancer,
    count_learned_parameters,
    is_ctc_checkpoint,
    load_peer,
)

#: the published checkpoints, beside the clone (CI runs with ../shared there)
PEER_DIR = Path(__file__).resolve().parents[2] / "shared" / "peer-models" / "themeenhancer-mtd"


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return ThemeEnhancer(ctc=True).eval()


def test_parameter_count_is_the_readmes(net):
    assert count_learned_parameters(net) == 72_970
    assert count_learned_parameters(ThemeEnhancer(ctc=False)) == 72_970


def test_shapes(net):
    x = torch.rand(2, 6, 37, N_BINS)
    with torch.inference_mode():
        chroma, blank = net(x)
        p = net.class_probabilities(x)
    assert chroma.shape == (2, 12, 37) and blank.shape == (2, 37) and p.shape == (2, 12, 37)
    assert torch.all(chroma >= 0) and torch.all(chroma <= 18)  # sums of 18 sigmoids


def test_fixed_pooling_equals_explicit_sums(net):
    s = torch.rand(1, 5, N_BINS)
    pooled = (s @ net.pool1) @ net.pool2  # (1, 5, 12)
    explicit = torch.zeros(1, 5, 12)
    for pc in range(12):
        for octave in range(6):
            semitone = 12 * octave + pc
            explicit[..., pc] += s[..., 3 * semitone : 3 * semitone + 3].sum(dim=-1)
    torch.testing.assert_close(pooled, explicit)


def test_forward_uses_the_pooling_of_the_salience(net):
    x = torch.rand(1, 6, 9, N_BINS)
    with torch.inference_mode():
        chroma, _ = net(x)
        s = net.salience(x)
    expected = s.reshape(1, 9, 72, 3).sum(-1).reshape(1, 9, 6, 12).sum(2).transpose(1, 2)
    torch.testing.assert_close(chroma, expected)


def test_class_probabilities_ctc_and_not():
    torch.manual_seed(1)
    x = torch.rand(1, 6, 11, N_BINS)
    plain, ctc = ThemeEnhancer(ctc=False).eval(), ThemeEnhancer(ctc=True).eval()
    ctc.load_state_dict(plain.state_dict())
    with torch.inference_mode():
        p12 = plain.class_probabilities(x)
        p13 = ctc.class_probabilities(x)
    torch.testing.assert_close(p12.sum(dim=1), torch.ones(1, 11))
    assert torch.all(p13.sum(dim=1) < 1)
    # dropping the blank keeps the ratios between the chroma classes
    torch.testing.assert_close(p13 / p13.sum(dim=1, keepdim=True), p12)


def test_input_frames_divided_by_their_squared_norm(net):
    x = torch.rand(1, 6, 7, N_BINS) + 0.1
    y = x / (x * x).sum(dim=-1, keepdim=True)  # normalising y gives x back
    with torch.inference_mode():
        h = x
        for conv in (net.conv1, net.conv2, net.conv3, net.conv4, net.conv5):
            h = torch.nn.functional.leaky_relu(conv(h), 0.01)
        manual = torch.sigmoid(net.conv6(h))[:, 0]
        torch.testing.assert_close(net.salience(y), manual, rtol=1e-4, atol=1e-5)


def test_readout_rows_unit_norm_at_10_hz():
    rng = np.random.default_rng(0)
    P = rng.random((12, 250)).astype(np.float32)
    P[:, 40:60] = 0.0  # silent stretch -> uniform unit vectors
    duration = 250 / PEER_RATE
    C = peer_readout(P, duration=duration, feature_rate=10.0)
    assert C.shape == (12, 1 + int(np.floor(duration * 10 + 1e-9)))
    np.testing.assert_allclose(np.linalg.norm(C, axis=0), 1.0, rtol=1e-5)


def test_readout_averages_frames():
    P = np.zeros((12, 100))
    P[3] = 1.0
    C = peer_readout(P, duration=100 / PEER_RATE)
    np.testing.assert_allclose(C[3], 1.0, rtol=1e-6)


def test_ctc_names():
    assert is_ctc_checkpoint("x/model_CTC-C-W_bestVal.pt")
    assert not is_ctc_checkpoint("model_SDTW-E-W_bestVal.pt") and not is_ctc_checkpoint("model_strong_bestVal.pt")


def test_bad_checkpoints(tmp_path):
    with pytest.raises(InputError, match="no weights"):
        load_peer(tmp_path / "missing.pt")
    bad = tmp_path / "model_strong_bestVal.pt"
    torch.save({"conv1.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(InputError, match="do not fit"):
        load_peer(bad)


def _tone(midi: float, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * PEER_SR)) / PEER_SR
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    return sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6)).astype(np.float32)


def test_hcqt_shape_and_tuning():
    y = _tone(69)
    H = peer_hcqt(y, sr=PEER_SR, tuning=0.0)
    assert H.shape == (6, 1 + len(y) // PEER_HOP, 216) and H.dtype == np.float32
    # A4 (MIDI 69) is 45 semitones above C1: the middle bin of group 45 of the fundamental channel
    frame = H[1, H.shape[1] // 2]
    assert int(np.argmax(frame)) == 3 * 45 + 1


def test_hcqt_channels_agree_in_length_one_sample_short_of_a_hop():
    # librosa's multi-rate CQT gives the harmonic-1 channel one frame more than harmonic 2 at this length
    # (n % 896 == 895; a Mutopia recording of 937215 samples failed so): every channel has the documented count
    y = np.random.default_rng(0).standard_normal(41 * PEER_HOP - 1).astype(np.float32) * 0.1
    H = peer_hcqt(y, sr=PEER_SR, tuning=0.0)
    assert H.shape == (6, 1 + len(y) // PEER_HOP, 216) and np.all(np.isfinite(H))
    assert np.all(H[:, -1].max(axis=-1) > 0)  # the last frame is computed, not padding


@pytest.mark.skipif(not PEER_DIR.is_dir(), reason=f"peer checkpoints not found at {PEER_DIR}")
@pytest.mark.parametrize("name", ["model_SDTW-E-W_bestVal.pt", "model_CTC-C-W_bestVal.pt"])
def test_checkpoint_loads_and_runs_on_two_seconds(name, tmp_path, monkeypatch):
    monkeypatch.setenv("MIRSEARCH_CACHE", str(tmp_path))
    m = load_peer(PEER_DIR / name)
    assert m.net.ctc == ("CTC" in name) and count_learned_parameters(m.net) == 72_970
    y = _tone(69)  # harmonic tone on A4
    C, rate = peer_chroma(y, sr=PEER_SR, model=m)
    assert rate == 10.0 and C.shape == (12, 21) and np.all(np.isfinite(C))
    np.testing.assert_allclose(np.linalg.norm(C, axis=0), 1.0, rtol=1e-5)
    assert int(np.argmax(C[:, 5:15].mean(axis=1))) == 9  # A
    H = peer_hcqt(y, sr=PEER_SR)
    np.testing.assert_allclose(m.predict(H, backend="onnx"), m.predict(H, backend="torch"), atol=1e-4)
