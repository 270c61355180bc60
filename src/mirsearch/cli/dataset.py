"""``mirsearch dataset``: build and inspect benchmark / training collections."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    """Add the ``dataset`` command group (``build``, ``info``)."""
    parser = subparsers.add_parser(
        "dataset",
        help="build and inspect benchmark / training collections (MTD-like)",
        description="Build collections of rendered performances with themes and aligned ground truth.",
    )
    sub = parser.add_subparsers(dest="dataset_command", metavar="<subcommand>")

    b = sub.add_parser(
        "build",
        help="build (or resume) a dataset",
        description=(
            "Choose works (music21 corpus or --scores), extract themes, split by work, render several "
            "performances per work with FluidSynth, and write manifest.json. Re-running resumes."
        ),
    )
    b.add_argument("--out", required=True, help="dataset folder (created; an unfinished build is resumed)")
    b.add_argument(
        "--preset",
        choices=("custom", "standard", "fixture"),
        default="custom",
        help="base settings (standard: the documented benchmark, >= 10 h, >= 300 test themes)",
    )
    b.add_argument("--hours", type=float, default=None, help="target hours of audio over all splits")
    b.add_argument("--versions", type=int, default=None, help="versions (performances) per work")
    b.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    b.add_argument("--scores", default=None, help="folder of MusicXML / MIDI / kern / ABC files to use instead")
    b.add_argument(
        "--soundfonts",
        nargs="+",
        default=None,
        help="SoundFonts (paths or file names in /usr/share/sounds/sf2|sf3); default FluidR3_GM.sf2 TimGM6mb.sf2",
    )
    b.add_argument("--splits", default=None, help="comma-separated splits to render (default train,validation,test)")
    b.add_argument(
        "--reuse-split", default=None, metavar="DIR", help="take works and split assignment from an existing dataset"
    )
    b.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    b.add_argument("--time-limit", type=float, default=20.0, help="seconds allowed to parse one score")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.add_argument("--json", action="store_true", help="print the build report as JSON")
    b.set_defaults(func=_build)

    i = sub.add_parser("info", help="summarise a dataset", description="Works, hours, themes per split.")
    i.add_argument("dir", help="dataset folder")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=_info)

    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _build(args: argparse.Namespace) -> int:
    from mirsearch.datasets.build import build_dataset

    splits = [s.strip() for s in args.splits.split(",") if s.strip()] if args.splits else None
    report = build_dataset(
        args.out,
        preset=args.preset,
        hours=args.hours,
        versions=args.versions,
        seed=args.seed,
        scores=args.scores,
        soundfonts=args.soundfonts,
        splits=splits,
        jobs=args.jobs,
        progress=not args.no_progress and sys.stderr.isatty(),
        time_limit=args.time_limit,
        reuse_split=args.reuse_split,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0 if report.failed == 0 else 1
    print(f"dataset: {report.root}")
    print(f"works: {report.works}   built in {report.seconds:.0f} s")
    print(f"versions: {report.rendered} rendered, {report.reused} reused from an earlier run, {report.failed} failed")
    for split, h in report.hours.items():
        print(f"  {split:<11} {h:7.2f} h   {report.themes.get(split, 0):5d} themes")
    if report.skipped_scores:
        print(f"skipped scores: {len(report.skipped_scores)}")
        for src, reason in report.skipped_scores[:10]:
            print(f"  {src}: {reason}")
        if len(report.skipped_scores) > 10:
            print(f"  ... (all in {report.root / 'build_info.json'})")
    if report.unused_scores:
        print(f"parsed but not used (length out of range, no usable theme): {len(report.unused_scores)}")
    for vid, reason in report.render_failures[:10]:
        print(f"failed: {vid}: {reason}", file=sys.stderr)
    return 0 if report.failed == 0 else 1


def _info(args: argparse.Namespace) -> int:
    from mirsearch.datasets.manifest import Dataset

    ds = Dataset.load(args.dir)
    summary = ds.summary()
    gen = ds.generation
    if args.json:
        print(json.dumps({"name": ds.name, "seed": ds.seed, "generation": gen, "splits": summary}, indent=2))
        return 0
    print(
        f"dataset: {ds.root}  (preset {gen.get('preset')}, seed {ds.seed}, "
        f"{gen.get('versions_per_work')} versions per work, SoundFonts {', '.join(gen.get('soundfonts', []))})"
    )
    print(f"{'split':<11} {'works':>6} {'versions':>9} {'hours':>7} {'themes':>7} {'occurrences':>12}")
    total = {"works": 0, "versions": 0, "hours": 0.0, "themes": 0, "occurrences": 0}
    for name, row in summary.items():
        print(
            f"{name:<11} {row['works']:>6} {row['versions']:>9} {row['hours']:>7.2f} {row['themes']:>7} "
            f"{row['occurrences']:>12}"
        )
        for k in total:
            total[k] += row[k]
    print(
        f"{'total':<11} {total['works']:>6} {total['versions']:>9} {total['hours']:>7.2f} {total['themes']:>7} "
        f"{total['occurrences']:>12}"
    )
    return 0
