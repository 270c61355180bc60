"""``mirsearch align``: synchronise two recordings, or a score with a recording."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mirsearch.cli.common import print_json


def register(sub) -> None:
    p = sub.add_parser(
        "align",
        help="align two recordings (or a score and a recording) of the same piece",
        description=(
            "Music synchronisation with chroma + onset (DLNCO) features and multiresolution DTW. "
            "A B: time map between two recordings. SCORE AUDIO (MIDI, MusicXML, MEI, kern first): "
            "each note's time in the recording."
        ),
    )
    p.add_argument("a", metavar="A", help="first recording, or a score file")
    p.add_argument("b", metavar="B", help="second recording")
    p.add_argument(
        "--out",
        "-o",
        metavar="FILE",
        help="write the time map (or the notes table for a score) as CSV, or JSON if FILE ends in .json",
    )
    p.add_argument("--plot", metavar="PNG", help="write chromagrams and the cost matrix with the warping path")
    p.add_argument(
        "--at",
        metavar="SECONDS",
        action="append",
        default=[],
        help="print the position in B of this time in A (repeatable, or comma-separated)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-transpose", action="store_true", help="do not search the 12 chroma shifts (same key)")
    p.add_argument("--no-onsets", action="store_true", help="chroma only (no DLNCO onset features)")
    p.add_argument("--force", action="store_true", help="align even when the two do not seem to be the same piece")
    p.add_argument(
        "--step",
        type=float,
        default=0.0,
        metavar="S",
        help="resample the time map every S seconds of A in the output (default: all points)",
    )
    p.add_argument("--bpm", type=float, help="nominal tempo of a notated score (only a starting point)")
    p.add_argument("--repeats", action="store_true", help="expand the score's repeats")
    p.set_defaults(func=run)


def _times(values: list[str]) -> list[float]:
    from mirsearch.errors import ParameterError

    out = []
    for v in values:
        for x in v.split(","):
            if x.strip():
                try:
                    out.append(float(x))
                except ValueError:
                    raise ParameterError(f"--at {x!r} is not a time in seconds") from None
    return out


def run(args: argparse.Namespace) -> int:
    from mirsearch.scores import FULL_SCORE_EXTENSIONS
    from mirsearch.sync import align_audio, align_score

    at = _times(args.at)
    common = {
        "transpose": not args.no_transpose,
        "onsets": not args.no_onsets,
        "return_details": True,
    }
    if args.force:
        common["max_cost_ratio"] = None
    is_score = Path(args.a).suffix.lower() in FULL_SCORE_EXTENSIONS
    if is_score:
        result, details = align_score(args.a, args.b, bpm=args.bpm, expand_repeats=args.repeats, **common)
        tmap = result.time_map
    else:
        result = None
        tmap, details = align_audio(args.a, args.b, **common)
    out_map = tmap.resample(args.step) if args.step > 0 else tmap
    mapped = [{"a": t, "b": round(tmap.map(t), 3)} for t in at]

    if args.out:
        out = Path(args.out)
        if out.suffix.lower() == ".json":
            import json

            payload = result.to_dict() if is_score else out_map.to_dict()
            out.write_text(json.dumps(payload, indent=1))
        elif is_score:
            result.to_csv(out)
        else:
            out_map.to_csv(out)
    if args.plot:
        from mirsearch.matching.sync import smooth_downsample
        from mirsearch.viz.figures import plot_alignment

        f = max(1, int(round(details.feature_rate / 5.0)))  # 5 Hz smoothed chroma reads better
        plot_alignment(
            smooth_downsample(details.chroma_a, f),
            smooth_downsample(details.chroma_b, f),
            feature_rate=details.feature_rate / f,
            path=details.sync.path,
            path_rate=details.feature_rate,
            names=(tmap.name_a, tmap.name_b),
            out=args.plot,
        )
    if args.json:
        payload = {
            "a": tmap.name_a,
            "b": tmap.name_b,
            "duration_a": round(tmap.duration_a, 3),
            "duration_b": round(tmap.duration_b, 3),
            "meta": tmap.meta,
            "at": mapped,
        }
        if is_score:
            payload["notes"] = result.rows()
        else:
            payload["time_map"] = {"time_a": out_map.to_dict()["time_a"], "time_b": out_map.to_dict()["time_b"]}
        print_json(payload)
        return 0
    meta = tmap.meta
    print(
        f"aligned {tmap.name_a} ({tmap.duration_a:.1f} s) -> {tmap.name_b} ({tmap.duration_b:.1f} s): "
        f"{len(tmap)} points, cost ratio {meta.get('cost_ratio')}, transposition {meta.get('transposition')}"
    )
    for m in mapped:
        print(f"{m['a']:.3f} s in {tmap.name_a} -> {m['b']:.3f} s in {tmap.name_b}")
    if is_score and not args.out:
        sys.stdout.write(result.to_csv())
    if args.out:
        print(f"wrote {args.out}")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0
