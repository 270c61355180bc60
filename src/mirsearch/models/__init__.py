"""Trained models: the chroma network, its losses (CTC, linear scaling, strong alignment, soft-DTW),
the training loop and model bundles.

Submodules are imported explicitly (``from mirsearch.models.bundle import load_bundle``) so that
importing this package does not import torch.
"""
