"""Choose the chroma variant for theme search on the *validation* split of a benchmark dataset.

The semitone-band energies (88 bands, tuning-corrected, 43 Hz) of every validation recording are
computed once and cached; each variant turns them into 10 Hz chroma, and every validation theme is
run as a query against all validation recordings (12 shifts, subsequence DTW, nominal tempo). The
table gives Top-1 / Top-10 / MRR per variant, next to the plain librosa ``chroma_stft`` recipe on the
same queries. The test split is never touched here.

    python benchmarks/tune_chroma.py --dataset data/bench [--split validation] [--variants NAME ...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from mirsearch.audio import load_audio
from mirsearch.datasets.manifest import Dataset
from mirsearch.evaluation.metrics import evaluate
from mirsearch.evaluation.theme_bench import _librosa_chroma
from mirsearch.features.chroma import chroma_from_pitch, pitch_features
from mirsearch.matching.subsequence import best_over_shifts, unit_columns
from mirsearch.search.theme import theme_query

from _common import print_table, write_results

RATE = 10.0


def variant(P: np.ndarray, rate: float, *, gamma: float, centre: float | None, width: float = 1.0) -> np.ndarray:
    """10 Hz chroma from band power ``P`` (88, n) at ``rate`` Hz: the library's own computation."""
    return chroma_from_pitch(
        P, frame_rate=rate, feature_rate=RATE, gamma=gamma, register_centre=centre, register_width=width
    )


# name -> (gamma, register centre (MIDI) or None, register width (octaves), query harmonic decay)
VARIANTS = {
    "session-1 default: log g10": (10.0, None, 1.0, 0.0),
    "linear": (0.0, None, 1.0, 0.0),
    "g1": (1.0, None, 1.0, 0.0),
    "g100": (100.0, None, 1.0, 0.0),
    "g1000": (1000.0, None, 1.0, 0.0),
    "g10 reg(C5,2)": (10.0, 72.0, 2.0, 0.0),
    "g10 reg(C5,1.5)": (10.0, 72.0, 1.5, 0.0),
    "g10 reg(C5,1)": (10.0, 72.0, 1.0, 0.0),
    "g1 reg(C5,1.5)": (1.0, 72.0, 1.5, 0.0),
    "g100 reg(C5,1.5)": (100.0, 72.0, 1.5, 0.0),
    "lin reg(C5,2)": (0.0, 72.0, 2.0, 0.0),
    "lin reg(C5,1)": (0.0, 72.0, 1.0, 0.0),
    "lin reg(C5,0.75)": (0.0, 72.0, 0.75, 0.0),
    "lin reg(C5,0.5)": (0.0, 72.0, 0.5, 0.0),
    "lin reg(G4,1)": (0.0, 67.0, 1.0, 0.0),
    "lin reg(E5,1)": (0.0, 76.0, 1.0, 0.0),
    "lin reg(E5,0.75)": (0.0, 76.0, 0.75, 0.0),
    "g1 reg(C5,1)": (1.0, 72.0, 1.0, 0.0),
    "lin reg(C5,1) query harmonics 0.3": (0.0, 72.0, 1.0, 0.3),
    "lin query harmonics 0.3": (0.0, None, 1.0, 0.3),
    "g10 query harmonics 0.3": (10.0, None, 1.0, 0.3),
}


def band_power(path: Path, cache: Path) -> tuple[np.ndarray, float]:
    out = cache / (path.name + ".npy")
    if out.is_file():
        return np.load(out), 22050 / 512
    y, sr = load_audio(path)
    P, rate = pitch_features(y, sr=sr)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(out, P.astype(np.float16 if P.max() < 6e4 else np.float32))
    return P, rate


def harmonic_template(decay: float, n_harmonics: int = 6) -> np.ndarray:
    """(12, 12) map from a one-hot pitch class to the chroma of a tone whose h-th partial has ``decay**(h-1)``."""
    T = np.zeros((12, 12), dtype=np.float32)
    for h in range(1, n_harmonics + 1):
        k = int(round(12 * np.log2(h))) % 12
        T += decay ** (h - 1) * np.roll(np.eye(12, dtype=np.float32), k, axis=0)
    return T


def rank(db: list[np.ndarray], themes, *, shifts=range(12), query_decay: float = 0.0) -> list[list[int]]:
    """Recording indices ranked by their best subsequence-DTW cost, per theme."""
    T = harmonic_template(query_decay) if query_decay > 0 else None
    Y = np.ascontiguousarray(np.concatenate([unit_columns(C) for C in db]))
    offsets = np.cumsum([0] + [C.shape[1] for C in db])
    reset = np.zeros(Y.shape[0], dtype=np.bool_)
    reset[offsets[:-1]] = True
    rankings = []
    for th in themes:
        Q = theme_query(th.to_theme(), feature_rate=RATE)
        Q = unit_columns(Q if T is None else T @ Q)
        cost, _, _ = best_over_shifts(Q, Y, list(shifts), reset=reset)
        per_rec = np.minimum.reduceat(np.where(np.isfinite(cost), cost, np.inf), offsets[:-1])
        rankings.append(list(np.argsort(per_rec, kind="stable")))
    return rankings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="data/bench")
    ap.add_argument("--split", default="validation")
    ap.add_argument("--variants", nargs="*", default=None, help=f"subset of {', '.join(VARIANTS)}")
    ap.add_argument("--no-librosa", action="store_true")
    args = ap.parse_args()
    root = Path(args.dataset)
    view = Dataset.load(root).split(args.split)
    versions = [v for v in view if v.path.is_file()]
    vids = [v.version_id for v in versions]
    themes = sorted(view.themes.values(), key=lambda t: t.theme_id)
    themes = [t for t in themes if view.relevant_versions(t.theme_id) & set(vids)]
    relevant = [{vids.index(v) for v in view.relevant_versions(t.theme_id) if v in vids} for t in themes]
    hours = sum(v.duration for v in versions) / 3600
    print(f"{args.split}: {len(versions)} recordings, {hours:.2f} h, {len(themes)} themes")
    cache = root / "cache" / "band_power" / args.split
    t0 = time.perf_counter()
    bands = [band_power(v.path, cache) for v in versions]
    print(f"band power: {time.perf_counter() - t0:.1f} s")
    rows = []
    names = args.variants or list(VARIANTS)
    for name in names:
        gamma, centre, width, decay = VARIANTS[name]
        db = [variant(P.astype(np.float32), r, gamma=gamma, centre=centre, width=width) for P, r in bands]
        m = evaluate(rank(db, themes, query_decay=decay), relevant)
        rows.append({"variant": name, "top1": m["top1"], "top10": m["top10"], "mrr": m["mrr"]})
        print_table([rows[-1]], list(rows[-1]))
    if not args.no_librosa:
        lib_cache = root / "cache" / "librosa_chroma" / args.split
        db = [_librosa_chroma(v.path, lib_cache) for v in versions]
        m = evaluate(rank(db, themes), relevant)
        rows.append({"variant": "librosa chroma_stft", "top1": m["top1"], "top10": m["top10"], "mrr": m["mrr"]})
    print()
    print_table(rows, ["variant", "top1", "top10", "mrr"])
    name = f"tune_chroma_{args.split}"
    previous = Path(__file__).parent / "results" / f"{name}.json"
    if previous.is_file():  # runs of other variants are kept; a variant run again is replaced
        done = {r["variant"] for r in rows}
        rows = [r for r in json.loads(previous.read_text())["rows"] if r["variant"] not in done] + rows
    meta = {"split": args.split, "recordings": len(versions), "hours": hours, "themes": len(themes)}
    path = write_results(name, {**meta, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
