"""Speed of the stored "timbre" kind (search by similarity) with and without its extra blocks, in one process.

    nice -n 10 .venv/bin/python benchmarks/bench_timbre_extraction.py AUDIO_FOLDER [--limit 20]

Every file of the folder (the first ``--limit``) is decoded once; then :func:`extract_timbre` runs on it with
the core rows only (the kind up to version 3), with the MFCC block, with the MFCC and YAMNet blocks (version
4), and with the musicnn block too (version 5, the default where both networks load; musicnn analyses at most 8
3-s patches per signal, so its cost per file is bounded). Reported: audio seconds per CPU second (process time,
one thread) and the stored bytes per audio hour (float32).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _common import print_table, write_results  # noqa: E402

CONFIGS = {"core (version 3)": [], "core + MFCC": ["mfcc"], "core + MFCC + YAMNet (version 4)": ["mfcc", "yamnet"],
           "core + MFCC + YAMNet + musicnn (version 5)": ["mfcc", "yamnet", "musicnn"]}  # fmt: skip


def main(argv=None) -> int:
    from mirsearch.audio import is_audio_file, load_audio
    from mirsearch.features.musicnn import musicnn_model
    from mirsearch.features.tag_features import yamnet_model
    from mirsearch.features.timbre_stats import extract_timbre, timbre_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("--limit", type=int, default=20)
    args = ap.parse_args(argv)
    files = sorted(p for p in Path(args.folder).rglob("*") if is_audio_file(p))[: args.limit]
    if not files:
        raise SystemExit(f"{args.folder}: no audio files")
    signals = [load_audio(f, sr=22050) for f in files]
    audio = sum(len(y) / sr for y, sr in signals)
    yamnet_model(), musicnn_model()  # loaded once, outside the timing
    extract_timbre(signals[0][0][:22050], sr=22050)  # warm-up
    rows = []
    for name, extras in CONFIGS.items():
        config = timbre_config() | {"extras": extras}
        t0, n_rows, n_seg = time.process_time(), 0, 0
        for y, sr in signals:
            X, _ = extract_timbre(y, sr=sr, config=config)
            n_rows, n_seg = X.shape[0], n_seg + X.shape[1]
        cpu = time.process_time() - t0
        rows.append({"extraction": name, "x realtime per CPU second": round(audio / cpu, 1), "rows": n_rows,
                     "MB per audio hour": round(n_rows * 4 * n_seg / audio * 3600 / 1e6, 2)})  # fmt: skip
    print_table(rows, list(rows[0]))
    out = write_results("timbre_extraction", {"files": len(files), "audio_seconds": round(audio, 1), "rows": rows})
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
