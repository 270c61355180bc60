"""Build the real-soundtrack clips of :mod:`mirsearch.datasets.soundtracks` (data/soundtracks, git-ignored).

.venv/bin/python benchmarks/build_soundtracks.py            # resumable; writes data/soundtracks/manifest.json
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mirsearch.datasets.soundtracks import build_soundtracks  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pkgs", default=str(ROOT / "data" / "real" / "pkgs"))
    ap.add_argument("--out", default=str(ROOT / "data" / "soundtracks"))
    ap.add_argument("--clip-seconds", type=float, default=30.0)
    ap.add_argument("--clips-per-track", type=int, default=4)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    clips = build_soundtracks(args.pkgs, args.out, clip_seconds=args.clip_seconds,
                              clips_per_track=args.clips_per_track)  # fmt: skip
    counts = Counter((c.soundtrack, c.split) for c in clips)
    tracks = Counter((c.soundtrack, c.split) for c in {(c.soundtrack, c.track, c.split): c for c in clips}.values())
    for key in sorted(counts):
        print(f"{key[0]:24s} {key[1]:6s} tracks {tracks[key]:3d} clips {counts[key]:4d}")
    print(f"{len(clips)} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
