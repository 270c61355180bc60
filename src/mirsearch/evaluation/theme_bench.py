"""Theme retrieval benchmark on a mirsearch dataset (``mirsearch bench theme``).

The recordings (versions) of one split are indexed into a collection cached in the dataset folder
(``collections/<stored kind>-<split>.mirs``; CENS is derived from the stored chroma at query time).
Every theme of the split is a query: the theme as notated in C, at the work's nominal tempo (or a fixed
``tempo_bpm``). The relevant recordings of a theme are the versions in which it occurs (the versions of
its work, and of other works with the same tune). Each query ranks all recordings (best occurrence per
recording); the figures are Top-1/5/10, MRR, P@k, MAP (:mod:`mirsearch.evaluation.metrics`), how often
the best match lies on an annotated occurrence, and the query times (mean, p95).

``baseline="librosa"`` runs the plain librosa recipe on the same queries: ``chroma_stft`` at 10 Hz
(``n_fft=4096``, ``hop_length=sr/10``), columns l2-normalised (``librosa.util.normalize``), the same
query chroma, ``librosa.sequence.dtw(subseq=True, metric="cosine")`` with the same steps
``(2,1), (1,2), (1,1)`` and weights ``(2,1,1)`` against each recording for each of the 12 cyclic shifts,
ranking recordings by the minimum of ``D[-1, :] / N``.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_save_npy, atomic_write_text
from mirsearch.errors import InputError, ParameterError
from mirsearch.evaluation.metrics import evaluate

logger = logging.getLogger(__name__)

FEATURES = ("chroma", "cens", "learned")
BASELINES = ("librosa",)
STEPS = np.array([[2, 1], [1, 2], [1, 1]])
WEIGHTS = np.array([2.0, 1.0, 1.0])


def machine() -> dict:
    """CPU, cores, Python, date and git commit (recorded with every result)."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "commit": commit,
        "load_average": load,
    }


def _timing(seconds: Sequence[float]) -> dict:
    arr = np.asarray(seconds, dtype=float)
    if arr.size == 0:
        return {"mean_ms": 0.0, "p95_ms": 0.0, "max_ms": 0.0}
    return {
        "mean_ms": round(float(arr.mean() * 1000), 2),
        "p95_ms": round(float(np.percentile(arr, 95) * 1000), 2),
        "max_ms": round(float(arr.max() * 1000), 2),
    }


def _overlaps(start: float, end: float, occurrences) -> bool:
    return any(start < o.end and o.start < end for o in occurrences)


def run_theme_benchmark(
    dataset_dir: str | os.PathLike,
    *,
    features: str = "chroma",
    split: str = "test",
    baseline: str | None = None,
    baseline_queries: int | None = None,
    limit: int | None = None,
    tempo_bpm: float | None = None,
    jobs: int = 2,
    progress: bool = False,
) -> dict:
    """Index a split, run every theme as a query, and compute the retrieval figures.

    Parameters
    ----------
    dataset_dir : path
        A dataset built by ``mirsearch dataset build``.
    features : {"chroma", "cens", "learned"}
        Features of the collection search.
    split : str
        Split whose versions and themes are used (default ``"test"``).
    baseline : {"librosa"}, optional
        Also run the plain librosa recipe on the same queries.
    baseline_queries : int, optional
        Run the baseline on the first this many queries only (it is slow); default all.
    limit : int, optional
        Use only the first ``limit`` themes (sorted by id).
    tempo_bpm : float, optional
        Query tempo in quarter notes per minute; default each work's nominal tempo.
    jobs : int > 0
        Worker processes for indexing.
    progress : bool
        Progress bars for indexing and querying.

    Returns
    -------
    dict
        ``{"dataset", "split", "features", "recordings", "hours", "index", "metrics", "timing", ...,
        "baseline": {...}}`` (JSON-serialisable).
    """
    from mirsearch.collection import Collection

    if features not in FEATURES:
        raise ParameterError(f"features={features!r} is not one of {', '.join(FEATURES)}")
    if baseline is not None and baseline not in BASELINES:
        raise ParameterError(f"baseline={baseline!r} is not one of {', '.join(BASELINES)}")
    root = Path(dataset_dir)
    view, versions, vid_of, themes = _split_queries(root, split, limit=limit)
    available = set(vid_of.values())
    coll_path, add, index_seconds = _index_split(root, split, versions, features=features, jobs=jobs, progress=progress)
    coll = Collection.open(coll_path, readonly=True)
    try:
        runs, warmup = _run_queries(
            coll, themes, view, vid_of, available, features=features, tempo_bpm=tempo_bpm, progress=progress
        )
    finally:
        coll.close()
    rankings, relevant, seconds, localised = runs
    metrics = evaluate(rankings, relevant)
    metrics["top1_localised"] = float(np.mean(localised))
    result = {
        "dataset": str(root),
        "split": split,
        "features": features,
        "recordings": len(versions),
        "hours": round(sum(v.duration for v in versions) / 3600.0, 3),
        "queries": len(themes),
        "mean_relevant": round(float(np.mean([len(r) for r in relevant])), 3),
        "query_tempo": "nominal" if tempo_bpm is None else tempo_bpm,
        "index": {
            "collection": str(coll_path),
            "added": len(add.added),
            "unchanged": len(add.unchanged),
            "failed": len(add.failed),
            "seconds": round(index_seconds, 2),
        },
        "metrics": _rounded(metrics),
        "timing": {**_timing(seconds), "warmup_s": round(warmup, 3)},
        "machine": machine(),
    }
    if baseline == "librosa":
        n_base = len(themes) if baseline_queries is None else min(int(baseline_queries), len(themes))
        base = _librosa_baseline(
            root, split, versions, themes[:n_base], view, available, tempo_bpm=tempo_bpm, progress=progress
        )
        ours = _timing(seconds[:n_base])
        base["speed_ratio"] = round(base["timing"]["mean_ms"] / ours["mean_ms"], 2) if ours["mean_ms"] > 0 else None
        base["mirsearch_timing_same_queries"] = ours
        base["mirsearch_metrics_same_queries"] = _rounded(evaluate(rankings[:n_base], relevant[:n_base]))
        result["baseline"] = base
    return result


def _rounded(metrics: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()}


def _split_queries(root: Path, split: str, *, limit: int | None):
    """The split's view, its rendered versions, ``resolved audio path -> version id`` and its themes with a
    rendered occurrence (sorted by id, the first ``limit``)."""
    from mirsearch.datasets.manifest import Dataset

    view = Dataset.load(root).split(split)
    versions = [v for v in view if v.path.is_file()]
    if not versions:
        raise InputError(f"{root}: split {split!r} has no rendered versions")
    vid_of = {str(v.path.resolve()): v.version_id for v in versions}
    available = set(vid_of.values())
    themes = sorted(view.themes.values(), key=lambda t: t.theme_id)
    themes = [t for t in themes if view.relevant_versions(t.theme_id) & available]
    if limit is not None:
        themes = themes[: int(limit)]
    if not themes:
        raise InputError(f"{root}: split {split!r} has no themes with rendered occurrences")
    return view, versions, vid_of, themes


def _index_split(root: Path, split: str, versions, *, features: str, jobs: int, progress: bool):
    """Index the versions into ``<root>/collections/<stored>-<split>.mirs``; returns (path, add report, s)."""
    from mirsearch.collection import Collection

    stored = "learned" if features == "learned" else "chroma"
    coll_path = root / "collections" / f"{stored}-{split}.mirs"
    coll = Collection.create(coll_path, features=[stored])
    t0 = time.perf_counter()
    add = coll.add([str(v.path.resolve()) for v in versions], jobs=jobs, progress=progress)
    index_seconds = time.perf_counter() - t0
    if add.failed:
        logger.warning("%d recordings could not be indexed: %s", len(add.failed), add.failed[:3])
    coll.close()  # queries read only: release the write lock for other runs on the same collection
    return coll_path, add, index_seconds


def _run_queries(coll, themes, view, vid_of, available, *, features: str, tempo_bpm, progress: bool):
    """Every theme as a query: ``(rankings, relevant sets, seconds, top-1 localised flags)`` and the
    warm-up time (numba compilation, database assembly; not counted)."""
    from mirsearch.search.theme import search_theme

    t0 = time.perf_counter()
    search_theme(coll, themes[0].to_theme(), top=1, features=features, tempo_bpm=tempo_bpm)
    warmup = time.perf_counter() - t0
    rankings, relevant, seconds, localised = [], [], [], []
    n_recs = len(coll.recordings())
    iterator = themes
    if progress:
        from tqdm import tqdm

        iterator = tqdm(themes, desc=f"queries ({features})", unit="theme")
    for theme in iterator:
        t0 = time.perf_counter()
        matches = search_theme(
            coll, theme.to_theme(), top=n_recs, per_recording=1, features=features, tempo_bpm=tempo_bpm
        )
        seconds.append(time.perf_counter() - t0)
        ranking, seen, first = [], set(), None
        for m in matches:
            vid = vid_of.get(str(Path(m.recording).resolve()))
            if vid is None or vid in seen:
                continue
            seen.add(vid)
            ranking.append(vid)
            if first is None:
                first = (vid, m.start, m.end)
        rel = view.relevant_versions(theme.theme_id) & available
        rankings.append(ranking)
        relevant.append(rel)
        occs = [o for o in view.occurrences(theme.theme_id) if first and o.version_id == first[0]]
        localised.append(bool(first and first[0] in rel and _overlaps(first[1], first[2], occs)))
    return (rankings, relevant, seconds, localised), warmup


def _librosa_chroma(path: Path, cache: Path) -> np.ndarray:
    import librosa

    out = cache / (path.name + ".npy")
    if out.is_file():
        return np.load(out)
    y, sr = librosa.load(str(path), sr=22050)
    chroma = librosa.feature.chroma_stft(y=y, sr=sr, n_fft=4096, hop_length=sr // 10)
    chroma = librosa.util.normalize(chroma, norm=2, axis=0, fill=True).astype(np.float32)
    atomic_save_npy(out, chroma)
    return chroma


def _librosa_baseline(root, split, versions, themes, view, available, *, tempo_bpm, progress) -> dict:
    """The plain librosa recipe on the same queries (see the module docstring)."""
    import librosa

    from mirsearch.search.theme import theme_query

    cache = root / "cache" / "librosa_chroma" / split
    t0 = time.perf_counter()
    db = [(v.version_id, _librosa_chroma(v.path, cache)) for v in versions]
    feat_seconds = time.perf_counter() - t0
    # warm-up: numba compilation inside librosa
    q0 = theme_query(themes[0].to_theme(), feature_rate=10.0, tempo_bpm=tempo_bpm)
    librosa.sequence.dtw(
        X=q0, Y=db[0][1], metric="cosine", subseq=True, step_sizes_sigma=STEPS, weights_mul=WEIGHTS, backtrack=False
    )
    rankings, relevant, seconds = [], [], []
    iterator = themes
    if progress:
        from tqdm import tqdm

        iterator = tqdm(themes, desc="queries (librosa)", unit="theme")
    for theme in iterator:
        t0 = time.perf_counter()
        Q = theme_query(theme.to_theme(), feature_rate=10.0, tempo_bpm=tempo_bpm)
        Q = librosa.util.normalize(np.asarray(Q, dtype=np.float64), norm=2, axis=0, fill=True)
        n = Q.shape[1]
        costs = []
        for vid, Y in db:
            if Y.shape[1] < 2:
                costs.append((np.inf, vid))
                continue
            best = np.inf
            for shift in range(12):
                D = librosa.sequence.dtw(
                    X=np.roll(Q, shift, axis=0),
                    Y=Y,
                    metric="cosine",
                    subseq=True,
                    step_sizes_sigma=STEPS,
                    weights_mul=WEIGHTS,
                    backtrack=False,
                )
                best = min(best, float(np.min(D[-1, :])) / n)
            costs.append((best, vid))
        costs.sort()
        seconds.append(time.perf_counter() - t0)
        rankings.append([vid for _, vid in costs])
        relevant.append(view.relevant_versions(theme.theme_id) & available)
    metrics = evaluate(rankings, relevant)
    return {
        "name": "librosa",
        "recipe": "chroma_stft 10 Hz (n_fft 4096), l2; librosa.sequence.dtw subseq, cosine, steps (2,1),(1,2),(1,1) "
        "weights (2,1,1); min over 12 shifts",
        "queries": len(themes),
        "feature_seconds": round(feat_seconds, 2),
        "metrics": _rounded(metrics),
        "timing": _timing(seconds),
    }


def write_result(result: dict, results_dir: str | os.PathLike) -> Path:
    """Write ``theme_<features>_<split>.json`` atomically into ``results_dir``; returns its path."""
    path = Path(results_dir) / f"theme_{result['features']}_{result['split']}.json"
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    return path


def format_table(result: dict) -> str:
    """A small text table of the figures (mirsearch and the baseline if present)."""
    rows = [("mirsearch " + result["features"], result["metrics"], result["timing"])]
    if "baseline" in result:
        b = result["baseline"]
        rows.append(
            (
                f"mirsearch {result['features']} (same {b['queries']} queries)",
                b["mirsearch_metrics_same_queries"],
                b["mirsearch_timing_same_queries"],
            )
        )
        rows.append(("librosa baseline", b["metrics"], b["timing"]))
    head = (
        f"{'method':<44} {'queries':>7} {'Top-1':>6} {'Top-5':>6} {'Top-10':>6} {'MRR':>6} {'MAP':>6} "
        f"{'mean ms':>9} {'p95 ms':>9}"
    )
    lines = [head, "-" * len(head)]
    for name, m, t in rows:
        lines.append(
            f"{name:<44} {m['queries']:>7} {m['top1']:>6.3f} {m['top5']:>6.3f} {m['top10']:>6.3f} {m['mrr']:>6.3f} "
            f"{m['map']:>6.3f} {t['mean_ms']:>9.1f} {t['p95_ms']:>9.1f}"
        )
    return "\n".join(lines)
