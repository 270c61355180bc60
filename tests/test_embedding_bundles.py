"""The shipped shingle embeddings: every selectable dimension loads from plain tensors and embeds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mirsearch.errors import InputError
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


def test_bundles_share_one_format_and_ids_are_reproducible(tmp_path):
    """Both bundle kinds read and write through models.bundle_format; saving the shipped bundles again
    reproduces their model_id (the id collections key stored features by)."""
    from mirsearch.features.shingles import REFERENCE_CONFIG
    from mirsearch.models import bundle_format
    from mirsearch.models.bundle import load_bundle
    from mirsearch.models.embedding import DEFAULT_SHINGLES, PCAReduction
    from mirsearch.models.embedding import load_bundle as load_reduction_bundle

    assert DEFAULT_SHINGLES == REFERENCE_CONFIG.to_dict()  # the shingles of reductions saved without any
    chroma = load_bundle()
    shipped_id = chroma.model_id
    chroma.config = {k: v for k, v in chroma.config.items() if k != "onnx"}
    chroma.save(tmp_path / "chroma")
    assert chroma.model_id == shipped_id
    red = load_reduction("embedding", dim=12)
    shipped_id = red.model_id
    red.save(tmp_path / "embedding")
    assert red.model_id == shipped_id
    again = load_reduction_bundle(tmp_path / "embedding")
    assert again.model_id == shipped_id
    S = chroma_shingles(np.random.default_rng(1).random((12, 300)).astype(np.float32))[0]
    np.testing.assert_array_equal(again.transform(S), red.transform(S))
    pca = PCAReduction.fit(S, dim=4)
    pca.save(tmp_path / "pca")
    back = load_reduction_bundle(tmp_path / "pca")
    assert back.model_id == pca.model_id and back.config["shingles"] == DEFAULT_SHINGLES
    np.testing.assert_allclose(back.transform(S), pca.transform(S), atol=1e-6)
    (tmp_path / "pca" / "config.json").write_text('{"format": "mirsearch-chroma-bundle", "format_version": 1}')
    with pytest.raises(InputError, match="not a mirsearch-shingle-reduction version 1 config"):
        load_reduction_bundle(tmp_path / "pca")
    (tmp_path / "chroma" / bundle_format.WEIGHTS_FILE).write_bytes(b"not torch")
    with pytest.raises(InputError, match="cannot load weights"):
        load_bundle(tmp_path / "chroma")
