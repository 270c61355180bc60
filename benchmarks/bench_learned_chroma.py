"""Theme retrieval with learned chroma variants against standard chroma and CENS (issue 5's table).

For a split of a dataset (default: test) every theme of the split is a query (notated in C, rendered to
chroma at its nominal tempo, matched in all 12 transpositions); the database is every version of the
split. Subsequence DTW (cosine cost) gives each version its best matching cost; the versions are ranked
by it. A query's rank is the rank of the first version in which the theme occurs.

    .venv/bin/python benchmarks/bench_learned_chroma.py --dataset data/bench \
        --bundle ctc=runs/ctc --bundle linear=runs/linear [--split test] [--name learned_chroma]

Prints Top-1 / Top-5 / Top-10 / MRR per variant and writes ``benchmarks/results/NAME.json``.
Features are cached per variant under ``DATASET/cache/bench_features/``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, write_results  # noqa: E402

FEATURE_RATE = 10.0


def _features(kind: str, bundle, versions, cache_dir: Path, tag: str) -> dict[str, np.ndarray]:
    from mirsearch.audio import load_audio
    from mirsearch.features.chroma import chroma
    from mirsearch.features.learned import learned_chroma

    out = {}
    d = cache_dir / tag
    d.mkdir(parents=True, exist_ok=True)
    t_audio, t_feat = 0.0, 0.0
    for v in versions:
        path = d / (hashlib.sha1(v.version_id.encode()).hexdigest()[:16] + ".npy")
        if path.exists():
            out[v.version_id] = np.load(path)
            continue
        y, sr = load_audio(v.path)
        t0 = time.perf_counter()
        if kind == "chroma":
            X, _ = chroma(y, sr=sr, feature_rate=FEATURE_RATE)
        else:
            X, _ = learned_chroma(y, sr=sr, feature_rate=FEATURE_RATE, bundle=bundle)
        t_feat += time.perf_counter() - t0
        t_audio += len(y) / sr
        np.save(path, X)
        out[v.version_id] = X
    if t_feat > 0:
        print(f"  {tag}: {t_audio / t_feat:.0f}x realtime feature extraction", flush=True)
    return out


def evaluate(feats: dict[str, np.ndarray], ds, *, cens_smoothing: bool = False) -> dict:
    """Top-k and MRR of all themes of ``ds`` over the versions in ``feats``."""
    from mirsearch.features.chroma import cens
    from mirsearch.matching.subsequence import best_over_shifts, unit_columns
    from mirsearch.search.theme import theme_query

    ids = list(feats)
    mats = []
    for vid in ids:
        X = feats[vid]
        if cens_smoothing:
            from mirsearch.collection.collection import THEME_CENS

            X, _ = cens(X, feature_rate=FEATURE_RATE, **THEME_CENS)
        mats.append(unit_columns(X))
    lengths = np.array([m.shape[0] for m in mats])
    offsets = np.r_[0, np.cumsum(lengths)]
    Y = np.concatenate(mats, axis=0)
    reset = np.zeros(Y.shape[0], dtype=np.bool_)
    reset[offsets[:-1]] = True
    ranks = []
    for theme in ds.themes.values():
        relevant = ds.relevant_versions(theme.theme_id) & set(ids)
        if not relevant:
            continue
        Q = unit_columns(theme_query(theme.to_theme(), feature_rate=FEATURE_RATE))
        cost, _, _ = best_over_shifts(Q, Y, range(12), reset=reset)
        per = np.minimum.reduceat(np.where(np.isfinite(cost), cost, np.inf), offsets[:-1])
        order = [ids[i] for i in np.argsort(per, kind="stable")]
        ranks.append(next(k for k, vid in enumerate(order, 1) if vid in relevant))
    r = np.array(ranks)
    return {
        "queries": len(r),
        "top1": float(np.mean(r <= 1)),
        "top5": float(np.mean(r <= 5)),
        "top10": float(np.mean(r <= 10)),
        "mrr": float(np.mean(1.0 / r)),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--bundle", action="append", default=[], help="NAME=DIR of a trained bundle (repeatable)")
    ap.add_argument("--default", action="store_true", help="also evaluate the packaged default bundle")
    ap.add_argument("--max-works", type=int, default=None, help="only the first K works of the split")
    ap.add_argument("--name", default="learned_chroma", help="results file name")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from mirsearch.datasets.manifest import Dataset
    from mirsearch.models.bundle import load_bundle

    ds = Dataset.load(args.dataset).split(args.split)
    if args.max_works is not None:
        from mirsearch.datasets.manifest import Dataset as _D

        keep = list(ds.works)[: args.max_works]
        manifest = dict(ds.manifest)
        manifest["works"] = [w for w in ds.manifest["works"] if w["id"] in keep]
        ds = _D(ds.root, manifest, splits=[args.split])
    versions = [v for v in ds if Path(v.path).exists()]
    print(
        f"{args.dataset} {args.split}: {len(versions)} versions ({sum(v.duration for v in versions) / 3600:.2f} h), "
        f"{len(ds.themes)} themes",
        flush=True,
    )
    cache = Path(args.dataset) / "cache" / "bench_features" / args.split
    rows = []
    std = _features("chroma", None, versions, cache, "chroma")
    rows.append({"variant": "standard chroma", **evaluate(std, ds)})
    rows.append({"variant": "CENS", **evaluate(std, ds, cens_smoothing=True)})
    bundles = [tuple(b.split("=", 1)) for b in args.bundle]
    if args.default:
        bundles.insert(0, ("default", None))
    for name, path in bundles:
        b = load_bundle(path)
        feats = _features("learned", b, versions, cache, f"learned-{b.model_id}")
        loss = b.config.get("training", {}).get("loss", "?")
        rows.append({"variant": f"learned ({name}, loss={loss})", "model_id": b.model_id, **evaluate(feats, ds)})
    print_table(rows, ["variant", "queries", "top1", "top5", "top10", "mrr"])
    out = write_results(
        args.name,
        {"dataset": args.dataset, "split": args.split, "max_works": args.max_works, "rows": rows},
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
