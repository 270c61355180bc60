"""``mirsearch train embedding`` (and ``mirsearch shingles train``): the triplet shingle embedding.

::

    mirsearch train embedding --dataset data/bench --dim 12 [--out runs/embedding-12] [--epochs 30]
                              [--steps 100] [--batch 128] [--resume] [--max-minutes 60] [--threads 1]
                              [--real DIR ...] [--real-validation DIR ...] [--shingles W/D/L/H]

``--real``: recordings whose passages, augmented (pitch shift, time stretch, speed, noise, band limiting,
MP3), join the training works (:mod:`mirsearch.training.embedding_audio`; cached under OUT/real-cache).

The ``train`` command group calls :func:`register_train` with its sub-parsers; the ``shingles`` group adds
the same sub-command as ``shingles train`` through :func:`add_arguments`.
"""

from __future__ import annotations

import argparse

from mirsearch.cli.common import add_training_options, pick

AUDIO_SUFFIXES = (".ogg", ".wav", ".flac", ".mp3", ".oga", ".aiff", ".aif")
HELP = "train the shingle embedding (triplet loss) for the shingle index"
DESCRIPTION = (
    "Train the network that reduces 240-dim CENS shingles to DIM dimensions, with a triplet loss on "
    "corresponding passages of two versions of a work (negatives: other works, semi-hard in batch). "
    "The best epoch (validation top-1) is written as a bundle to OUT."
)
EPILOG = "example: mirsearch train embedding --dataset data/bench --dim 12"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the embedding training command."""
    add_training_options(p, epochs=30)
    p.add_argument("--dim", type=int, default=12, help="embedding dimension (reference: 6, 12, 30; default 12)")
    p.add_argument("--out", default=None, help="output directory (default runs/embedding-DIM)")
    p.add_argument("--arch", choices=("cnn", "mlp"), default="cnn", help="network (default cnn; mlp is ~10x faster)")
    p.add_argument("--steps", type=int, default=100, help="batches per epoch (default 100)")
    p.add_argument("--batch", type=int, default=128, help="(anchor, positive) pairs per batch (default 128)")
    p.add_argument("--margin", type=float, default=0.2, help="triplet margin (default 0.2)")
    p.add_argument("--jobs", type=int, default=1, help="processes for indexing the splits' audio (first run)")
    p.add_argument(
        "--real",
        action="append",
        default=[],
        metavar="PATH",
        help="audio files or folders: their passages, augmented, are training works too (repeatable)",
    )
    p.add_argument(
        "--real-validation",
        action="append",
        default=[],
        metavar="PATH",
        help="audio files or folders whose augmented passages join the validation works",
    )
    p.add_argument("--passages", type=int, default=3, help="passages per real recording (default 3)")
    p.add_argument("--versions", type=int, default=3, help="augmented copies per passage (default 3)")
    p.add_argument(
        "--shingles",
        default=None,
        metavar="W/D/L/H",
        help="CENS window / downsampling / shingle frames / hop (default: the index's, 21/5/20/2)",
    )
    p.set_defaults(func=run)


def _audio_files(paths: list[str]) -> list:
    from pathlib import Path

    out = []
    for p in map(Path, paths):
        out += sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES) if p.is_dir() else [p]
    return out


def _real_versions(paths: list[str], args, out, *, seed: int) -> list:
    from mirsearch.training.embedding_audio import AugmentOptions, augmented_versions

    if not paths:
        return []
    files = _audio_files(paths)
    print(f"augmenting passages of {len(files)} real recordings (cached in {out / 'real-cache'}) ...", flush=True)
    options = AugmentOptions(passages=args.passages, versions=args.versions, seed=seed)
    return augmented_versions(files, cache=out / "real-cache", options=options, progress=not args.no_progress)


def register_train(train_subparsers) -> None:
    """Add ``embedding`` to the sub-parsers of ``mirsearch train``."""
    p = train_subparsers.add_parser("embedding", help=HELP, description=DESCRIPTION, epilog=EPILOG)
    add_arguments(p)


def run(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    from mirsearch.training.embedding import (
        EmbeddingTrainOptions,
        load_training_versions,
        parse_shingles,
        train_embedding,
    )

    logging.getLogger("mirsearch").setLevel(min(logging.getLogger().level, logging.INFO))
    out = Path(args.out or f"runs/embedding-{args.dim}")
    progress = not args.no_progress
    train, val = [], []
    if not args.no_corpus:
        print(f"preparing chroma of the train and validation splits of {args.dataset} ...", flush=True)
        train = load_training_versions(args.dataset, "train", jobs=args.jobs, progress=progress)
        val = load_training_versions(args.dataset, "validation", jobs=args.jobs, progress=progress)
    train += _real_versions(args.real, args, out, seed=args.seed)
    val += _real_versions(args.real_validation, args, out, seed=args.seed + 1)
    print(
        f"{len(train)} training versions ({len({v.work for v in train})} works), "
        f"{len(val)} validation versions ({len({v.work for v in val})} works)",
        flush=True,
    )

    def report(e: dict) -> None:
        print(
            f"epoch {e['epoch']:3d}  train {e['train_loss']:.4f} (acc {e['train_accuracy']:.3f})  "
            f"val {e['val_loss']:.4f}  val top-1 {e['val_top1']:.3f}  ({e['seconds']:.0f} s)",
            flush=True,
        )

    res = train_embedding(
        train,
        val,
        out=out,
        options=EmbeddingTrainOptions(
            **pick(args, "dim", "epochs", "lr", "margin", "seed", "resume", "threads", "max_minutes"),
            steps_per_epoch=args.steps,
            batch_size=args.batch,
            progress=progress,
            network={"arch": args.arch},
            shingles=parse_shingles(args.shingles),
            training_info={
                "dataset": str(args.dataset),
                "real": [str(p) for p in args.real],
                "real_validation": [str(p) for p in args.real_validation],
                "passages": args.passages,
                "versions": args.versions,
            },  # fmt: skip
        ),
        on_epoch=report,
    )
    best = res["best"] or {}
    top1 = best.get("val_top1", float("nan"))
    print(f"best epoch {res['best_epoch']} (val top-1 {top1:.3f}); bundle in {res['bundle']}")
    return 0
