"""Trained models for inference: the chroma network and the shingle reductions, saved as bundles.

- :mod:`mirsearch.models.network`: the chroma network (:class:`~mirsearch.models.network.ChromaNet`);
- :mod:`mirsearch.models.bundle`: chroma-network bundles (load, save, ONNX, inference on a given HCQT);
- :mod:`mirsearch.models.embedding`: shingle reductions (none, PCA, the triplet embedding);
- :mod:`mirsearch.models.bundle_format`: the one bundle layout both use (``config.json`` + weights).

Training is in :mod:`mirsearch.training`; the network's input (HCQT) is computed by
:mod:`mirsearch.features.learned`. Submodules are imported explicitly (``from mirsearch.models.bundle
import load_bundle``) so that importing this package does not import torch.
"""
