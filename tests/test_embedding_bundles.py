"""The shipped shingle embeddings: every selectable dimension loads from plain tensors and embeds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mirsearch.features.shingles import chroma_shingles
from mirsearch.models.embedding import load_reduction, packaged_bundle


@pytest.mark.parametrize("dim", [6, 12, 30])
def test_shipped_embedding_of_each_dimension(dim):
    import torch

    path = packaged_bundle(dim)
    state = torch.load(path / "weights.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    config = json.loads((path / "config.json").read_text())
    red = load_reduction("embedding", dim=dim)
    assert red.dim == dim == config["network"]["dim"] and red.model_id == config["model_id"]
    C = np.random.default_rng(dim).random((12, 300)).astype(np.float32)
    S = chroma_shingles(C)[0]
    Z = red.transform(S)
    assert Z.shape == (len(S), dim) and np.isfinite(Z).all()
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)
    # a transposed excerpt is another point: the embedding is not transposition invariant by construction
    Zt = red.transform(chroma_shingles(np.roll(C, 5, axis=0))[0])
    assert np.abs(Zt - Z).max() > 1e-3
