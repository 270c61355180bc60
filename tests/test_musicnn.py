"""musicnn: the checkpoint reader and the torch network against TensorFlow's outputs, the front end, the stored
block of the timbre kind."""

from pathlib import Path

import numpy as np
import pytest

from mirsearch.errors import InputError, ParameterError
from mirsearch.features import musicnn
from mirsearch.features.musicnn import PATCH_FRAMES, POOL_DIM, log_mel, musicnn_model, patch_starts, read_checkpoint

DATA = Path(__file__).parent / "data"
needs_wheel = pytest.mark.skipif(musicnn_model() is None, reason="the musicnn wheel is not installed")


@needs_wheel
@pytest.mark.parametrize("checkpoint", musicnn.CHECKPOINTS)
def test_the_network_equals_tensorflow_running_the_wheels_graph(checkpoint):
    # outputs of TensorFlow 2.15 running musicnn's own graph and checkpoint on the same two random patches
    ref = np.load(DATA / f"musicnn_{checkpoint[:3].lower()}_tf215.npz")
    X = (np.random.default_rng(int(ref["seed"])).random((2, PATCH_FRAMES, 96)) * 3).astype(np.float32)
    for got, name in zip(musicnn_model(checkpoint)(X), ("logits", "pen", "mean", "mx"), strict=True):
        np.testing.assert_allclose(got, ref[name], atol=5e-4, rtol=1e-5)
    assert ref["mx"].shape == (2, POOL_DIM)


@needs_wheel
def test_the_mtt_labels_are_the_wheels_and_unknown_checkpoints_are_refused():
    import importlib.util
    import re

    conf = (Path(importlib.util.find_spec("musicnn").origin).parent / "configuration.py").read_text()
    wheel = re.search(r"MTT_LABELS = \[(.*?)\]", conf).group(1)
    assert musicnn.MTT_LABELS == tuple(re.findall(r"'([^']*)'", wheel))
    with pytest.raises(ParameterError, match="checkpoint"):
        musicnn_model("MTT_vgg")


@needs_wheel
def test_the_checkpoint_reader_reads_shapes_and_refuses_other_files(tmp_path):
    import importlib.util

    prefix = str(Path(importlib.util.find_spec("musicnn").origin).parent / "MSD_musicnn") + "/"
    ck = read_checkpoint(prefix)
    assert ck["conv2d/kernel"].shape == (7, 38, 1, 204) and ck["dense_1/kernel"].shape == (200, 50)
    assert ck["conv2d/kernel"].dtype == np.float32
    (tmp_path / "x.index").write_bytes(b"\0" * 64)
    (tmp_path / "x.data-00000-of-00001").write_bytes(b"")
    with pytest.raises(InputError, match="tensor bundle"):
        read_checkpoint(tmp_path / "x")
    with pytest.raises(InputError, match="unreadable"):
        read_checkpoint(tmp_path / "missing")


def test_the_front_end_equals_librosa():
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(1)
    y = (0.1 * rng.standard_normal(44100 * 4)).astype(np.float32)
    got = log_mel(y, sr=44100)
    y16 = musicnn._resampled(y, 44100, 16000)
    S = librosa.feature.melspectrogram(y=y16, sr=16000, hop_length=256, n_fft=512, n_mels=96).T
    want = np.log10(10000 * S.astype(np.float16).astype(np.float32) + 1)
    assert got.shape == want.shape == (1 + len(y16) // 256, 96)
    # librosa pads the centred frames with zeros, so the first and last frames may differ a little
    np.testing.assert_allclose(got[2:-2], want[2:-2], atol=2e-3)


def test_patches_are_evenly_spread_and_bounded():
    assert list(patch_starts(100, 8)) == [0]  # shorter than a patch: one (padded by the caller)
    s = patch_starts(10 * PATCH_FRAMES + 5, 8)
    assert len(s) == 8 and s[0] == 0 and s[-1] == 9 * PATCH_FRAMES and np.all(np.diff(s) >= PATCH_FRAMES)
    assert list(patch_starts(3 * PATCH_FRAMES, 8)) == [0, PATCH_FRAMES, 2 * PATCH_FRAMES]
    with pytest.raises(ParameterError):
        patch_starts(1000, 0)


@needs_wheel
def test_the_stored_block_is_the_mean_over_the_analysed_patches():
    from mirsearch.features.tag_features import yamnet_available
    from mirsearch.features.timbre_stats import MUSICNN_PATCHES, extract_timbre, musicnn_block, timbre_config

    if not yamnet_available():
        pytest.skip("the musicnn block comes after the YAMNet block")
    sr = 22050
    t = np.arange(int(sr * 31.0)) / sr
    y = (0.2 * np.sin(2 * np.pi * 220 * t * (1 + 0.2 * np.sin(0.3 * t)))).astype(np.float32)
    assert "musicnn" in timbre_config()["extras"]
    X, _ = extract_timbre(y, sr=sr)
    L = log_mel(y, sr=sr)
    starts = patch_starts(len(L), MUSICNN_PATCHES)
    want = musicnn_model()(np.stack([L[s : s + PATCH_FRAMES] for s in starts]))[3].astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(musicnn_block(X), want, rtol=1e-4, atol=1e-4)
    assert musicnn_block(X[:-1]) is None  # no musicnn block
