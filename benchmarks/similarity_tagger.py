"""Rows of the project's own tagger (issue 19) for benchmarks/bench_similarity.py, when its trained bundle is
packaged: the auto-tagger baseline of the seed (predicted tag probabilities, cosine oracle S) and the tagger's
recording embedding (L2-normalised mean of its patch embeddings). Cached per model id under
``data/soundtracks/tagger-<model_id>.npz``.

    nice -n 10 .venv/bin/python benchmarks/bench_similarity.py --tagger
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger("similarity_tagger")


def tagger_vectors(clips, data: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """Tag probabilities (n, K) and recording embeddings (n, D) of every clip, and the model id."""
    from mirsearch.audio import load_audio
    from mirsearch.describe.tagger import analyse
    from mirsearch.models.tagger import TaggerModel

    model = TaggerModel.load()
    model_id = str(model.config.get("model_id", "unknown"))
    cache = data / f"tagger-{model_id}.npz"
    if cache.exists():
        with np.load(cache) as z:
            return z["tags"], z["embeddings"], model_id
    tags, embeddings = [], []
    for i, clip in enumerate(clips):
        y, sr = load_audio(data / clip.path, min_duration=0.1)
        a = analyse(y, sr, model=model)
        tags.append(a.tags)
        embeddings.append(a.embedding)
        log.info("tagger %d/%d", i + 1, len(clips))
    T, E = np.stack(tags).astype(np.float32), np.stack(embeddings).astype(np.float32)
    np.savez(cache, tags=T, embeddings=E)
    return T, E, model_id
