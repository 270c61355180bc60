"""Per-clip features of the soundtrack dataset for the similarity benchmark, cached (resumable) under
``data/soundtracks/features/``: YAMNet per-patch embeddings and class scores (the baseline), MFCCs, and the
YAMNet-preset log-mel spectrogram (input of the learned models) and the stored kind ``timbre`` (mirsearch's own
similarity features, as ``mirsearch index --features timbre`` stores them).

    nice -n 10 .venv/bin/python benchmarks/similarity_features.py      # after benchmarks/build_soundtracks.py
    nice -n 10 .venv/bin/python benchmarks/similarity_features.py --reference   # + models/bundles/similarity
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mirsearch.datasets.soundtracks import load_manifest  # noqa: E402

DATA = ROOT / "data" / "soundtracks"
log = logging.getLogger("similarity_features")


def feature_path(data: Path, clip_path: str) -> Path:
    return data / "features" / (clip_path.replace("/", "__").rsplit(".", 1)[0] + ".npz")


def compute(data: Path = DATA) -> int:
    """Compute the missing feature files; returns how many were written."""
    from mirsearch._util import atomic_path
    from mirsearch.audio import load_audio
    from mirsearch.features.logmel import YAMNET, log_mel
    from mirsearch.features.timbre_stats import TIMBRE_VERSION, extract_timbre, mfcc
    from mirsearch.features.yamnet import YamnetModel

    model = None
    written = 0
    clips = load_manifest(data)
    for i, clip in enumerate(clips):
        out = feature_path(data, clip.path)
        if out.exists():
            with np.load(out) as z:
                if "timbre" in z.files and int(z.get("timbre_version", 2)) == TIMBRE_VERSION:
                    continue
                old = {k: z[k] for k in z.files if k not in ("timbre", "timbre_version")}
            y, sr = load_audio(data / clip.path, min_duration=0.1)
            with atomic_path(out) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, **old, timbre=extract_timbre(y, sr=sr)[0], timbre_version=TIMBRE_VERSION)
            written += 1
            continue
        model = model or YamnetModel(threads=1)
        t0 = time.time()
        y, sr = load_audio(data / clip.path, min_duration=0.1)
        ym = model(y, sr=sr)
        M, _ = mfcc(y, sr=sr)
        L, _ = log_mel(y, sr=sr, config=YAMNET)
        with atomic_path(out) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, yamnet=ym.embeddings.astype(np.float16), scores=ym.scores.astype(np.float16),
                     mfcc=M, logmel=L.astype(np.float16), timbre=extract_timbre(y, sr=sr)[0],
                     timbre_version=TIMBRE_VERSION)  # fmt: skip
        written += 1
        log.info("%d/%d %s %.1f s", i + 1, len(clips), clip.path, time.time() - t0)
    return written


def write_reference(data: Path = DATA) -> Path:
    """The shipped reference standardisation of search by similarity (``models/bundles/similarity``, used by
    collections under 30 recordings): :func:`~mirsearch.describe.similarity_vector.view_statistics` of the
    ``train``-split clips' search vectors (per dimension mean and standard deviation, the YAMNet view made unit
    length; every block's mean distance, so that the views then weigh alike)."""
    import json

    from mirsearch.describe.similarity import SHIPPED
    from mirsearch.describe.similarity_vector import SEARCH_DIM, search_vector, view_statistics
    from mirsearch.features.timbre_stats import TIMBRE_VERSION

    clips, feats = load_features(data)
    V = np.stack([search_vector(f["timbre"]) for c, f in zip(clips, feats, strict=True) if c.split == "train"])
    if V.shape[1] != SEARCH_DIM:
        raise SystemExit(f"search vectors of {V.shape[1]} values, not {SEARCH_DIM}: are YAMNet and musicnn installed?")
    mean, std, dist, start = view_statistics(V.astype(np.float64))
    np.savez(SHIPPED / "reference.npz", mean=mean.astype(np.float32), std=std.astype(np.float32),
             block_distances=dist, cosine=start is not None)  # fmt: skip
    config = {"format": "mirsearch-similarity-reference", "format_version": 5, "timbre_version": TIMBRE_VERSION,
              "dim": int(V.shape[1]), "weighted": "every view (timbre, MFCC, YAMNet, musicnn) weighs alike; timbre and "
              "MFCC z-scored, L1; YAMNet and musicnn " + ("unit length, squared differences (cosine)" if start else
                                                          "z-scored, L1"),
              "source": "search vectors of the train-split clips of the six real soundtracks (datasets/soundtracks.py)",
              "clips": len(V)}  # fmt: skip
    (SHIPPED / "config.json").write_text(json.dumps(config, indent=1))
    return SHIPPED / "reference.npz"


def load_features(data: Path = DATA) -> tuple[list, list[dict]]:
    """The clips and their cached features (dicts of arrays), in manifest order."""
    clips = load_manifest(data)
    feats = []
    for clip in clips:
        with np.load(feature_path(data, clip.path)) as z:
            feats.append({k: z[k].astype(np.float32) for k in z.files})
    return clips, feats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--reference", action="store_true", help="then write the shipped reference statistics")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    print(f"{compute(Path(args.data))} feature files written")
    if args.reference:
        print(f"written {write_reference(Path(args.data))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
