"""The similarity embedding: pooling, bundle round trip, numpy inference equal to the torch network, mining."""

import numpy as np
import pytest

from mirsearch.errors import ParameterError
from mirsearch.models.similarity import load_model, pool, save_model
from mirsearch.training.similarity import (
    TripletOptions,
    mine_triplets,
    recording_oracle,
    recording_parts,
    soundtrack_oracle,
    tag_oracle,
)


def test_pooling_limits():
    H = np.array([[0.0, 1.0], [2.0, -1.0], [4.0, 0.0]])
    np.testing.assert_allclose(pool(H, pooling="mean"), [2.0, 0.0])
    np.testing.assert_allclose(pool(H, pooling="max"), [4.0, 1.0])
    np.testing.assert_allclose(pool(H, pooling="autopool", alpha=np.zeros(2)), [2.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(pool(H, pooling="autopool", alpha=np.array([50.0, 50.0])), [4.0, 1.0], atol=1e-4)
    with pytest.raises(ParameterError):
        pool(H, pooling="autopool")


def test_oracles_and_mining():
    S, same = soundtrack_oracle(["a", "a", "a", "b", "b", "c"], ["x", "x", "y", "z", "w", "v"])
    assert S[0].tolist() == [0, 0, 1, 0, 0, 0] and same[0, 1] and not same[0, 2]
    rng = np.random.default_rng(0)
    for strategy in ("neighbours", "random", "distance"):
        opts = TripletOptions(strategy=strategy, n_positives=3)
        E = rng.standard_normal((6, 4))
        T = mine_triplets(S, same, options=opts, rng=rng, E=E)
        assert len(T) == 5  # item 5 ("c") has no positive
        for a, p, n in T:
            assert S[a, p] > S[a, n] and not same[a, p] and a not in (p, n)
    C = tag_oracle(np.array([[1, 0, 1], [1, 0, 0], [0, 0, 0]]))
    assert C[0, 1] == pytest.approx(1 / np.sqrt(2)) and C[2, 0] == 0.0


def test_training_round_trip(tmp_path):
    pytest.importorskip("torch")
    from mirsearch.training.similarity import train_similarity

    rng = np.random.default_rng(1)
    centres = rng.standard_normal((3, 6)) * 2
    items, labels, tracks = [], [], []
    for c in range(3):
        for t in range(4):
            items.append((centres[c] + rng.standard_normal((12, 6))).astype(np.float32))
            labels.append(c)
            tracks.append(f"{c}-{t}")
    S, same = soundtrack_oracle(labels, tracks)
    opts = TripletOptions(hidden=16, dim=4, epochs=15, batch=8, crop=(4, 12))
    config, arrays = train_similarity(items, S, same, options=opts, input_kind="toy")
    model = save_model(tmp_path / "m", config, arrays)
    again = load_model(tmp_path / "m")
    assert again.model_id == model.model_id and len(model.model_id) == 16
    V = np.stack([again.embed(X) for X in items])
    np.testing.assert_allclose(np.linalg.norm(V, axis=1), 1.0, atol=1e-5)
    D = ((V[:, None] - V[None]) ** 2).sum(-1)
    same_label = np.equal.outer(labels, labels) & ~np.eye(len(labels), dtype=bool)
    assert D[same_label].mean() < D[~np.equal.outer(labels, labels)].mean()
    with pytest.raises(ParameterError):
        again.embed(np.zeros((3, 5), np.float32))


def test_recording_parts_and_oracle():
    X = np.arange(20.0)[:, None]
    parts = recording_parts(X, part_segments=8)
    assert [len(P) for P in parts] == [10, 10] and np.concatenate(parts).ravel().tolist() == list(range(20))
    assert [len(P) for P in recording_parts(X[:3], part_segments=8)] == [2, 1]  # two parts from two segments on
    assert len(recording_parts(X[:1], part_segments=8)) == 1
    assert [len(P) for P in recording_parts(X, part_segments=4)] == [4] * 5
    with pytest.raises(ParameterError):
        recording_parts(X, part_segments=0)
    S, exclude = recording_oracle([0, 0, 1, 1, 2])
    assert S.tolist()[0] == [0, 2, 0, 0, 0] and exclude.sum() == 5 and S[4].sum() == 0
    S, _ = recording_oracle([0, 0, 1, 1, 2], ["a", "a", "a", "b", "b"], weight=1.0)
    assert S[0].tolist() == [0, 3, 1, 0, 0] and S[3, 4] == 1
    rng = np.random.default_rng(0)
    T = mine_triplets(S, exclude, options=TripletOptions(strategy="random", n_positives=1), rng=rng, E=None)
    rec = [0, 0, 1, 1, 2]
    assert len(T) == 5 and all(S[a, n] < S[a, p] for a, p, n in T)
    assert all(rec[a] == rec[p] for a, p, _ in T[:4]) and T[4, 1] == 3  # the recording first, then the soundtrack
    with pytest.raises(ParameterError):
        recording_oracle([0, 1], ["a"])
