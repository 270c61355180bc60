"""A detuned copy of a theme benchmark set: every recording resampled so that it sounds off A440.

Each rendered recording of the chosen splits is played faster or slower by the ratio of a tuning deviation drawn
per piece (uniform in ``[MIN, MAX]`` cents, random sign, seeded by the piece id): pitch and tempo move together, as
when a tape runs fast or a band tunes its own way. The manifest's versions get the new durations, the
``tuning_cents`` and their theme occurrences (start, end, onsets) scaled, so ``bench_learned_chroma.py --dataset
OUT`` runs on it unchanged. Resumable (a finished recording is not redone)::

    python benchmarks/detune_themes.py data/mutopia_themes2 data/s17/mutopia2_detune --max-cents 50 \\
        --splits validation,test
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from mirsearch.datasets.manifest import write_json_atomic
from mirsearch.datasets.performance import stable_seed


def detune_cents(piece_id: str, *, min_cents: float, max_cents: float) -> float:
    """The piece's tuning deviation in cents (seeded by its id)."""
    rng = np.random.default_rng(stable_seed("s17-detune", piece_id))
    return float(rng.uniform(min_cents, max_cents)) * (1 if rng.random() < 0.5 else -1)


def detune(y: np.ndarray, cents: float) -> np.ndarray:
    """``y`` played ``2 ** (cents / 1200)`` times as fast (resampled; float32)."""
    return resample_poly(y, 1000, int(round(1000 * 2 ** (cents / 1200)))).astype(np.float32)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path, help="a theme set (manifest.json, pieces/)")
    ap.add_argument("out", type=Path, help="output folder")
    ap.add_argument("--max-cents", type=float, default=50.0)
    ap.add_argument("--min-cents", type=float, default=0.0)
    ap.add_argument("--splits", default="validation", help="comma-separated splits to detune")
    args = ap.parse_args(argv)
    m = json.loads((args.src / "manifest.json").read_text())
    splits = set(args.splits.split(","))
    cents = {}
    for v in m["versions"]:
        if v["split"] not in splits or not (args.src / v["audio"]).exists():
            continue
        c = detune_cents(v["work"], min_cents=args.min_cents, max_cents=args.max_cents)
        dst = args.out / v["audio"]
        if not dst.exists():
            y, sr = sf.read(args.src / v["audio"], dtype="float32")
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(dst.stem + ".part" + dst.suffix)
            sf.write(tmp, detune(y, c), sr)
            tmp.replace(dst)
        k = 2 ** (c / 1200)
        v["duration"] = round(v["duration"] / k, 4)
        v["tuning_cents"] = round(v.get("tuning_cents", 0.0) + c, 2)
        for o in v["occurrences"]:
            o["start"], o["end"] = round(o["start"] / k, 4), round(o["end"] / k, 4)
            o["onsets"] = [round(t / k, 4) for t in o["onsets"]]
        cents[v["id"]] = round(c, 2)
    write_json_atomic(args.out / "manifest.json", m)
    lo, hi = min(cents.values(), default=0.0), max(cents.values(), default=0.0)
    print(f"{len(cents)} recordings detuned by {lo:+.0f} .. {hi:+.0f} cents")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
