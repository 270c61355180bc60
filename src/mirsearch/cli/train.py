"""``mirsearch train``: train learned chroma models and plot their output.

::

    mirsearch train chroma --dataset data/bench --loss ctc --out runs/ctc [--epochs 20] [--resume]
                           [--seed 0] [--max-minutes 60] [--plot]
    mirsearch train plot --bundle runs/ctc --audio rec.flac --out fig.png [--start 10 --end 30]
    mirsearch train curves runs/ctc runs/linear --out curves.png
    mirsearch train export-onnx --bundle runs/ctc
"""

from __future__ import annotations

import argparse

from mirsearch.cli.common import add_command_group, add_training_options, pick


def register(subparsers) -> None:
    """Add the ``train`` command group."""
    sub = add_command_group(subparsers, "train", help="train learned chroma models (CTC, linear, strong, soft-DTW)")

    c = sub.add_parser("chroma", help="train the theme chroma network on a data set")
    add_training_options(c, epochs=20)
    c.add_argument("--loss", choices=("ctc", "linear", "strong", "sdtw"), default="ctc")
    c.add_argument("--out", required=True, help="output directory (bundle, history, checkpoints)")
    c.add_argument("--max-frames", type=int, default=6000, help="padded input frames per batch")
    c.add_argument("--cache", default=None, help="HCQT cache directory (default DATASET/cache/hcqt)")
    c.add_argument("--plot", action="store_true", help="write curves.png and example output plots to OUT")
    c.add_argument("--segments-per-epoch", type=int, default=None, help="random subset per epoch")
    c.add_argument("--max-val", type=int, default=None, help="validate on a fixed random subset of this size")
    c.set_defaults(func=_chroma)

    q = sub.add_parser("plot", help="plot a model's output (chroma + blank, post-processed chroma)")
    q.add_argument("--bundle", default=None, help="bundle directory (default: the packaged model)")
    q.add_argument("--audio", required=True, help="audio file")
    q.add_argument("--out", required=True, help="image file to write")
    q.add_argument("--start", type=float, default=0.0, help="excerpt start (s)")
    q.add_argument("--end", type=float, default=None, help="excerpt end (s; default start + 20)")
    q.set_defaults(func=_plot)

    e = sub.add_parser("export-onnx", help="write model.onnx into a bundle (faster inference with onnxruntime)")
    e.add_argument("--bundle", required=True, help="bundle directory")
    e.set_defaults(func=_export_onnx)

    h = sub.add_parser("curves", help="plot training curves of one or more runs")
    h.add_argument("runs", nargs="+", help="output directories of training runs")
    h.add_argument("--out", required=True, help="image file to write")
    h.set_defaults(func=_curves)

    try:  # the shingle-embedding training (another module) joins this group as "train embedding"
        from mirsearch.cli.train_embedding import register_train
    except ModuleNotFoundError as exc:
        if exc.name != "mirsearch.cli.train_embedding":
            raise
    else:
        register_train(sub)


def _export_onnx(args: argparse.Namespace) -> int:
    from mirsearch.models.bundle import load_bundle

    b = load_bundle(args.bundle)
    out = b.write_onnx()
    print(f"wrote {out} (model_id {b.model_id})")
    return 0


def _chroma(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from mirsearch._util import atomic_write_text
    from mirsearch.models.bundle import default_input_config
    from mirsearch.training.chroma import HCQTCache, TrainOptions, train
    from mirsearch.training.data import load_segments

    root = Path(args.dataset)
    train_segs = load_segments(root, split="train")
    val_segs = load_segments(root, split="validation")
    if args.max_val is not None and args.max_val < len(val_segs):
        import random

        val_segs = random.Random(args.seed).sample(val_segs, args.max_val)
    print(
        f"{len(train_segs)} training and {len(val_segs)} validation segments "
        f"({sum(s.end - s.start for s in train_segs) / 3600:.2f} h / "
        f"{sum(s.end - s.start for s in val_segs) / 3600:.2f} h)"
    )
    cache = HCQTCache(Path(args.cache) if args.cache else root / "cache" / "hcqt", default_input_config())

    def report(entry: dict) -> None:
        acc = entry.get("val_chroma_accuracy")
        acc_s = f"  val acc {acc:.3f}" if acc is not None else ""
        val = entry.get("val_loss")
        val_s = f"  val {val:.4f}" if val is not None else ""
        print(
            f"epoch {entry['epoch']:3d}  train {entry['train_loss']:.4f}{val_s}  "
            f"val ctc {entry['val_ctc'] or float('nan'):.4f}{acc_s}  ({entry['seconds']:.0f} s)",
            flush=True,
        )

    res = train(
        train_segs,
        val_segs,
        cache=cache,
        out=args.out,
        options=TrainOptions(
            **pick(args, "loss", "epochs", "lr", "max_frames", "seed", "resume", "max_minutes", "segments_per_epoch"),
            progress=not args.no_progress,
            num_threads=args.threads,
            training_info={"dataset": str(root)},
        ),
        on_epoch=report,
    )
    print(f"best epoch {res['best_epoch']} (val loss {res['best_val_loss']:.4f}); bundle in {res['bundle']}")
    if args.plot:
        from mirsearch.audio import load_audio
        from mirsearch.models.bundle import load_bundle
        from mirsearch.viz.training import plot_history, plot_output

        out = Path(args.out)
        plot_history({args.loss: res["history"]}, out=out / "curves.png")
        bundle = load_bundle(out)
        for i, s in enumerate(val_segs[:3]):
            y, sr = load_audio(s.audio_path)
            a, b = max(0.0, s.start - 2.0), s.end + 2.0
            plot_output(
                y[int(a * sr) : int(b * sr)],
                sr=sr,
                bundle=bundle,
                offset=a,
                out=out / f"example_{i}.png",
                title=Path(s.audio_path).name,
                labels=s.labels,
            )
        print(f"plots in {out}")
    summary = json.dumps({k: res[k] for k in ("best_epoch", "best_val_loss")})
    atomic_write_text(Path(args.out) / "summary.json", summary)
    return 0


def _plot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mirsearch.audio import load_audio
    from mirsearch.errors import ParameterError
    from mirsearch.viz.training import plot_output

    y, sr = load_audio(args.audio)
    end = args.end if args.end is not None else args.start + 20.0
    if not end > args.start:
        raise ParameterError(f"--end={end} must be after --start={args.start}")
    excerpt = y[int(args.start * sr) : int(end * sr)]
    plot_output(excerpt, sr=sr, bundle=args.bundle, offset=args.start, out=args.out, title=Path(args.audio).name)
    print(f"wrote {args.out}")
    return 0


def _curves(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from mirsearch.errors import InputError
    from mirsearch.training.chroma import HISTORY_FILE
    from mirsearch.viz.training import plot_history

    histories = {}
    for run in args.runs:
        path = Path(run) / HISTORY_FILE
        if not path.exists():
            raise InputError(f"{path}: no training history")
        histories[Path(run).name] = json.loads(path.read_text())
    plot_history(histories, out=args.out)
    print(f"wrote {args.out}")
    return 0
