"""``mirsearch dataset``: build and inspect benchmark / training collections."""

from __future__ import annotations

import argparse
import json
import sys

from mirsearch.cli.common import add_command_group, add_json_flag, add_run_options, pick, show_progress

HELP = "build and inspect benchmark / training collections (MTD-like)"
DESCRIPTION = "Build collections of rendered performances with themes and aligned ground truth."

BUILD_DESCRIPTION = (
    "Choose works (music21 corpus or --scores), extract themes, split by work, render several "
    "performances per work with FluidSynth, and write manifest.json. Re-running resumes."
)
PRESET_HELP = (
    "base settings (standard: the documented benchmark, >= 10 h, >= 300 test themes; tags: the auto-tagging clips, "
    "see mirsearch.datasets.tags; tag-stems: single-instrument stems mixed while training the tagger, "
    "see mirsearch.datasets.tag_stems)"
)
SOUNDFONTS_HELP = "SoundFonts (paths or file names in /usr/share/sounds/sf2|sf3); default FluidR3_GM.sf2 TimGM6mb.sf2"
REUSE_HELP = "take works and split assignment from an existing dataset"


def register(subparsers) -> None:
    """Add the ``dataset`` command group (``build``, ``info``)."""
    sub = add_command_group(subparsers, "dataset", help=HELP, description=DESCRIPTION)
    b = sub.add_parser("build", help="build (or resume) a dataset", description=BUILD_DESCRIPTION)
    b.add_argument("--out", required=True, help="dataset folder (created; an unfinished build is resumed)")
    b.add_argument(
        "--preset", choices=("custom", "standard", "fixture", "tags", "tag-stems"), default="custom", help=PRESET_HELP
    )
    b.add_argument("--hours", type=float, default=None, help="target hours of audio over all splits")
    b.add_argument("--versions", type=int, default=None, help="versions (performances) per work")
    b.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    b.add_argument("--scores", default=None, help="folder of MusicXML / MIDI / kern / ABC files to use instead")
    b.add_argument("--soundfonts", nargs="+", default=None, help=SOUNDFONTS_HELP)
    b.add_argument("--splits", default=None, help="comma-separated splits to render (default train,validation,test)")
    b.add_argument("--reuse-split", default=None, metavar="DIR", help=REUSE_HELP)
    b.add_argument("--time-limit", type=float, default=20.0, help="seconds allowed to parse one score")
    add_run_options(b, jobs=2, jobs_help="worker processes", json_help="print the build report as JSON")
    b.set_defaults(func=_build)

    i = sub.add_parser("info", help="summarise a dataset", description="Works, hours, themes per split.")
    i.add_argument("dir", help="dataset folder")
    add_json_flag(i, help="print JSON")
    i.set_defaults(func=_info)


def _build(args: argparse.Namespace) -> int:
    if args.preset in ("tags", "tag-stems"):
        return _build_tags(args)
    from mirsearch.datasets.build import build_dataset

    splits = [s.strip() for s in args.splits.split(",") if s.strip()] if args.splits else None
    options = pick(args, "preset", "hours", "versions", "seed", "scores", "soundfonts", "jobs", "time_limit")
    report = build_dataset(
        args.out, **options, splits=splits, reuse_split=args.reuse_split, progress=show_progress(args)
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


def _build_tags(args: argparse.Namespace) -> int:
    from mirsearch.datasets.tag_stems import build_tag_stems
    from mirsearch.datasets.tags import build_tags

    build = build_tag_stems if args.preset == "tag-stems" else build_tags
    report = build(args.out, seed=args.seed, jobs=args.jobs, time_limit=args.time_limit)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(f"{args.preset}: {report.root}: {report.works} works, clips {report.clips}, {report.failed} failed")
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
