"""Learned similarity variants for benchmarks/bench_similarity.py, trained leave-one-soundtrack-out.

A variant is ``INPUT:POOLING:STRATEGY[:z]``: INPUT ``timbre`` (log-mel patch statistics, what mirsearch computes
itself), ``yamnet`` (YAMNet patch embeddings; a measurement only, YAMNet is no run-time dependency) or
``timbre+yamnet``; POOLING autopool / mean / max; STRATEGY neighbours / random / distance; ``z``: the recording
vectors z-scored over the collection searched (collection-relative normalisation) before the distances.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from mirsearch.features.timbre_stats import patch_statistics
from mirsearch.models.similarity import SimilarityModel
from mirsearch.training.similarity import TripletOptions, soundtrack_oracle, train_similarity

log = logging.getLogger("similarity_models")


def _train_split() -> str:
    """The half of the tracks learned models train on (the other half is evaluated; set by bench_similarity)."""
    return os.environ.get("MIRSEARCH_SIMILARITY_TRAIN_SPLIT", "train")


def patch_inputs(feats: list[dict], kind: str) -> list[np.ndarray]:
    out = []
    for f in feats:
        parts = []
        if "timbre" in kind:
            parts.append(patch_statistics(f["logmel"]))
        if "yamnet" in kind:
            parts.append(f["yamnet"])
        n = min(len(p) for p in parts)
        out.append(np.concatenate([p[:n] for p in parts], axis=1))
    return out


def _distances(V: np.ndarray) -> np.ndarray:
    d = (V**2).sum(1)[:, None] + (V**2).sum(1)[None, :] - 2 * V @ V.T
    return np.sqrt(np.maximum(d, 0.0))


def _normalised(V: np.ndarray, z: bool) -> np.ndarray:
    if not z:
        return V
    Z = (V - V.mean(axis=0)) / (V.std(axis=0) + 1e-6)
    return Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)


#: variant flags -> TripletOptions fields
FLAG_OPTIONS = {"e15": {"epochs": 15}, "e80": {"epochs": 80}, "h64": {"hidden": 64}, "d16": {"dim": 16},
                "m05": {"margin": 0.5}, "drop5": {"dropout": 0.5}, "p3": {"n_positives": 3}}  # fmt: skip


def train_fold(kind: str, pooling: str, strategy: str, clips, inputs, held_out: str, flags=()) -> SimilarityModel:
    train = [i for i, c in enumerate(clips) if c.split == _train_split() and c.soundtrack != held_out]
    S, same_track = soundtrack_oracle([clips[i].soundtrack for i in train], [clips[i].track for i in train],
                                      graded="graded" in flags)  # fmt: skip
    extra = {k: v for f in flags for k, v in FLAG_OPTIONS.get(f, {}).items()}
    options = TripletOptions(pooling=pooling, strategy=strategy, **extra)
    config, arrays = train_similarity([inputs[i] for i in train], S, same_track, options=options, input_kind=kind)
    return SimilarityModel(config=config, arrays={k: np.asarray(v, np.float32) for k, v in arrays.items()})


def run_variants(names, clips, feats, eval_idx, fs_idx, fs_targets):
    """Distances per fold on the evaluation items, and few-shot vectors per target soundtrack, of every variant."""
    soundtracks = sorted({clips[i].soundtrack for i in eval_idx})
    learned, few = {}, {}
    cache: dict = {}
    for name in names:
        kind, pooling, strategy, *flags = name.split(":")
        z = "z" in flags
        if kind not in cache:
            cache[kind] = patch_inputs(feats, kind)
        inputs = cache[kind]
        learned[name], few[name] = {}, {}
        for s in soundtracks:
            model = train_fold(kind, pooling, strategy, clips, inputs, s, flags)
            V = np.stack([model.embed(inputs[i]) for i in eval_idx])
            learned[name][s] = _distances(_normalised(V, z))
            if s in fs_targets:
                W = np.stack([model.embed(inputs[i]) for i in fs_idx])
                few[name][s] = _normalised(W, z)
            log.info("%s: fold %s done", name, s)
    return learned, few


def wccn_vectors(train_V: np.ndarray, train_labels, V: np.ndarray, *, shrink: float = 0.5) -> np.ndarray:
    """Within-class covariance normalisation: z-score with the training statistics, then whiten by the pooled
    within-class covariance of the training classes (shrunk towards the identity by ``shrink``)."""
    mu, sd = train_V.mean(axis=0), train_V.std(axis=0) + 1e-6
    Z = (train_V - mu) / sd
    labels = np.asarray(train_labels)
    W = np.zeros((Z.shape[1], Z.shape[1]))
    for c in np.unique(labels):
        X = Z[labels == c] - Z[labels == c].mean(axis=0)
        W += X.T @ X
    W /= len(Z)
    W = (1 - shrink) * W + shrink * np.eye(len(W)) * np.trace(W) / len(W)
    vals, vecs = np.linalg.eigh(W)
    P = vecs @ np.diag(1.0 / np.sqrt(np.maximum(vals, 1e-9))) @ vecs.T
    return ((V - mu) / sd) @ P


def run_linear(names, clips, feats, eval_idx, fs_idx, fs_targets):
    """``lin:INPUT:SHRINK``: mean patch statistics (timbre) or MFCC statistics (mfcc), WCCN by soundtrack."""
    from mirsearch.features.timbre_stats import mfcc_statistics

    soundtracks = sorted({clips[i].soundtrack for i in eval_idx})
    learned, few = {}, {}
    for name in names:
        _, kind, shrink = name.split(":")
        parts = []
        if "timbre" in kind:
            parts.append(np.stack([patch_statistics(f["logmel"]).mean(axis=0) for f in feats]))
        if "mfcc" in kind:
            parts.append(np.stack([mfcc_statistics(f["mfcc"]) for f in feats]))
        if "yamnet" in kind:
            parts.append(np.stack([f["yamnet"].mean(axis=0) for f in feats]))
        V = np.concatenate(parts, axis=1)
        learned[name], few[name] = {}, {}
        for s in soundtracks:
            train = [i for i, c in enumerate(clips) if c.split == _train_split() and c.soundtrack != s]
            labels = [clips[i].soundtrack for i in train]
            E = wccn_vectors(V[train], labels, V[eval_idx], shrink=float(shrink))
            learned[name][s] = _distances(E)
            if s in fs_targets:
                few[name][s] = wccn_vectors(V[train], labels, V[fs_idx], shrink=float(shrink))
    return learned, few
