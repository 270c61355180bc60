"""Synchronisation accuracy, runtime and memory: mirsearch against synctoolbox's MrMsDTW on the same pairs.

Data: the test split of the benchmark dataset (``mirsearch dataset build``, ``data/bench``; first two
versions of each work, works in a seeded order, ``--max-pairs``), whose versions carry their tempo maps;
without it, our own renderings (``benchmarks/synth.py``: works of four Bach chorales, two versions per work
that differ in ensemble, SoundFont, tempo, tempo curve, lead-in, noise and some in key). Ground truth:
the time of every distinct score onset in each version.

- audio-audio: each pair aligned by ``mirsearch.sync.align_audio`` and by synctoolbox (chroma + DLNCO,
  MrMsDTW, ``compute_optimal_chroma_shift``; ``baselines.synctoolbox_sync``);
- score-audio: a deadpan MIDI of the work (100 bpm) aligned to the second version by
  ``mirsearch.sync.align_score`` and by synctoolbox's symbolic features (``df_to_pitch_features``,
  ``df_to_pitch_onset_features``) on the same fitted score timeline;
- long pair: two ~20-minute versions, each method in its own subprocess (wall time, peak RSS, and the
  tracemalloc peak of the DTW stage).

Errors are absolute differences between mapped and true onset times (ms), pooled over all onsets.

    python benchmarks/bench_sync.py [--dataset data/bench] [--max-pairs 16] [--long-minutes 20] [--skip-long]
                                    [--skip-baseline] [--works 6 (own renderings when there is no dataset)]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from synth import (  # noqa: E402
    TempoMap,
    build_versions,
    chorale_works,
    concat_notes,
    corpus_notes,
    render,
    write_midi,
)

from _common import print_table, write_results  # noqa: E402

DATA = HERE.parent / "data" / "bench_sync"


def stats(err_ms: np.ndarray) -> dict:
    e = np.abs(np.asarray(err_ms, dtype=np.float64))
    return {
        "n": int(e.size),
        "mean_ms": float(e.mean()),
        "median_ms": float(np.median(e)),
        "p95_ms": float(np.percentile(e, 95)),
        "within_50": float(np.mean(e <= 50)),
        "within_100": float(np.mean(e <= 100)),
    }


def path_map(wp: np.ndarray, rate: float):
    """Strictly monotonic map from a (2, L) synctoolbox path."""
    from mirsearch.sync.timemap import _strictly_monotonic

    a, b = _strictly_monotonic(wp[0] / rate, wp[1] / rate)
    return lambda t: np.interp(t, a, b)


# ------------------------------------------------------------------------------------------------ pairs


def own_pairs(n_works: int):
    """Pairs and score pairs from our own renderings (``synth.build_versions``)."""
    from bench_data import ScorePair, SyncPair

    works = chorale_works(n_works, 4)
    print(f"rendering {n_works} works x 2 versions into {DATA}", flush=True)
    versions = build_versions(DATA / "versions", works, n_versions=2, seed=1)
    by_work = {}
    for v in versions:
        by_work.setdefault(v.work, []).append(v)
    pairs, spairs = [], []
    for work, (a, b) in sorted(by_work.items()):
        pairs.append(
            SyncPair(
                name=f"{work} {a.ensemble}->{b.ensemble}",
                a=a.path,
                b=b.path,
                ta=a.times,
                tb=b.times,
                transposition=(b.transpose - a.transpose) % 12,
                duration=max(a.duration, b.duration),
            )
        )
        notes = concat_notes([corpus_notes(n) for n in works[work]], gap=2.0)
        spairs.append(
            ScorePair(
                name=f"{work} score->{b.ensemble}",
                pitch=notes.pitch,
                onset_q=notes.onset,
                duration_q=notes.duration,
                part=notes.part,
                bpm=100.0,
                audio=b.path,
                q=b.quarters,
                truth=b.times,
                transposition=b.transpose % 12,
            )
        )
    return pairs, spairs, works


def run_audio_pairs(pairs, *, baseline: bool):
    from baselines import synctoolbox_sync
    from mirsearch.audio import load_audio
    from mirsearch.sync import align_audio

    rows, errs = [], {"mirsearch": [], "synctoolbox": []}
    for p in pairs:
        t0 = time.perf_counter()
        tm = align_audio(p.a, p.b, max_cost_ratio=None)  # every pair is aligned; the check is reported
        t_mir = time.perf_counter() - t0
        e_mir = (tm.map(p.ta) - p.tb) * 1000
        errs["mirsearch"].append(e_mir)
        row = {
            "pair": p.name,
            "dur_s": round(p.duration, 1),
            "transp": p.transposition,
            "found": tm.meta["transposition"],
            "ratio": tm.meta["cost_ratio"],
            "mir_mean": float(np.abs(e_mir).mean()),
            "mir_p95": float(np.percentile(np.abs(e_mir), 95)),
            "mir_s": t_mir,
        }
        if baseline:
            ya, sr = load_audio(p.a)
            yb, _ = load_audio(p.b)
            wp, timing = synctoolbox_sync(ya, yb, sr)
            e_st = (path_map(wp, 50.0)(p.ta) - p.tb) * 1000
            errs["synctoolbox"].append(e_st)
            row.update(
                st_mean=float(np.abs(e_st).mean()),
                st_p95=float(np.percentile(np.abs(e_st), 95)),
                st_s=timing["total_s"],
                st_shift=(-timing["shift"]) % 12,
                speedup=timing["total_s"] / t_mir,
            )
        rows.append(row)
        print(f"  {row['pair']}: mirsearch {row['mir_mean']:.1f} ms in {t_mir:.1f} s", flush=True)
    return rows, errs


def run_score_pairs(spairs, *, baseline: bool):
    from bench_data import score_notes
    from mirsearch.audio import load_audio
    from mirsearch.sync import active_span, align_score

    rows, errs = [], {"mirsearch": [], "synctoolbox": []}
    for sp in spairs:
        notes = score_notes(sp)
        t0 = time.perf_counter()
        res = align_score(notes, sp.audio, transpose=True, max_cost_ratio=None)
        t_mir = time.perf_counter() - t0
        # fitted score time of each distinct onset position
        uq, idx = np.unique(res.notes.onset_quarter, return_index=True)
        s_of_q = np.interp(sp.q, uq, res.notes.onset[idx])
        e_mir = (res.time_map.map(s_of_q) - sp.truth) * 1000
        errs["mirsearch"].append(e_mir)
        row = {
            "pair": sp.name,
            "transp": sp.transposition,
            "found": res.meta["transposition"],
            "ratio": res.meta["cost_ratio"],
            "mir_mean": float(np.abs(e_mir).mean()),
            "mir_p95": float(np.percentile(np.abs(e_mir), 95)),
            "mir_s": t_mir,
        }
        if baseline:
            y, sr = load_audio(sp.audio)
            t0 = time.perf_counter()
            fmap = synctoolbox_score_sync(res.notes, y, sr, active=active_span(y, sr=sr))
            t_st = time.perf_counter() - t0
            e_st = (fmap(s_of_q) - sp.truth) * 1000
            errs["synctoolbox"].append(e_st)
            row.update(
                st_mean=float(np.abs(e_st).mean()),
                st_p95=float(np.percentile(np.abs(e_st), 95)),
                st_s=t_st,
                speedup=t_st / t_mir,
            )
        rows.append(row)
        print(f"  {row['pair']}: mirsearch {row['mir_mean']:.1f} ms in {t_mir:.1f} s", flush=True)
    return rows, errs


def synctoolbox_score_sync(notes, y, sr, *, active):
    """synctoolbox score-to-audio on the fitted score timeline (its own symbolic features)."""
    import contextlib
    import io

    import pandas as pd
    from synctoolbox.dtw.mrmsdtw import sync_via_mrmsdtw
    from synctoolbox.dtw.utils import compute_optimal_chroma_shift, make_path_strictly_monotonic
    from synctoolbox.feature.chroma import pitch_to_chroma, quantize_chroma, quantized_chroma_to_CENS
    from synctoolbox.feature.csv_tools import df_to_pitch_features, df_to_pitch_onset_features
    from synctoolbox.feature.dlnco import pitch_onset_features_to_DLNCO
    from synctoolbox.feature.utils import shift_chroma_vectors

    from baselines import synctoolbox_features

    df = pd.DataFrame(
        {
            "start": notes.onset,
            "duration": notes.offset - notes.onset,
            "pitch": notes.pitch,
            "velocity": np.full(len(notes), 80),
            "instrument": ["piano"] * len(notes),
        }
    )
    with contextlib.redirect_stdout(io.StringIO()):
        c_audio, d_audio = synctoolbox_features(y, sr)
        f_pitch = df_to_pitch_features(df, feature_rate=50)
        c_score = quantize_chroma(pitch_to_chroma(f_pitch=f_pitch))
        peaks = df_to_pitch_onset_features(df)
        d_score = pitch_onset_features_to_DLNCO(
            f_peaks=peaks, feature_rate=50, feature_sequence_length=c_score.shape[1]
        )
        shift = compute_optimal_chroma_shift(
            quantized_chroma_to_CENS(c_score, 201, 50, 50)[0], quantized_chroma_to_CENS(c_audio, 201, 50, 50)[0]
        )
        c_audio = shift_chroma_vectors(c_audio, shift)
        d_audio = shift_chroma_vectors(d_audio, shift)
        wp = sync_via_mrmsdtw(
            f_chroma1=c_score,
            f_onset1=d_score,
            f_chroma2=c_audio,
            f_onset2=d_audio,
            input_feature_rate=50,
            step_weights=np.array([1.5, 1.5, 2.0]),
            threshold_rec=10**6,
        )
        wp = make_path_strictly_monotonic(wp)
    return path_map(wp, 50.0)


# ------------------------------------------------------------------------------------------------ long pair


def build_long_pair(minutes: float) -> dict:
    """Two renderings of ~``minutes`` of chorales (piano vs strings, different tempo curves)."""
    out = DATA / "long"
    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / "long.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("minutes") == minutes and all(Path(meta[k]).is_file() for k in ("a", "b")):
            return meta
    n = int(minutes * 60 / 25) + 1  # a chorale lasts about 25 s
    names = [n_ for names in chorale_works(n, 1, offset=200).values() for n_ in names]
    notes = concat_notes([corpus_notes(x) for x in names], gap=2.0, name="long")
    rng = np.random.default_rng(7)
    ta = TempoMap.random(notes.length, base_bpm=95.0, variation=0.1, rng=rng)
    tb = TempoMap.random(notes.length, base_bpm=88.0, variation=0.15, rng=rng)
    write_midi(notes, ta, out / "a.mid", programs=0, rng=rng, velocity_jitter=12)
    write_midi(notes, tb, out / "b.mid", programs=48, rng=rng, velocity_jitter=12)
    render(out / "a.mid", out / "a.flac", soundfont="fluid")
    render(out / "b.mid", out / "b.flac", soundfont="timgm")
    q = np.unique(notes.onset)
    meta = {
        "minutes": minutes,
        "a": str(out / "a.flac"),
        "b": str(out / "b.flac"),
        "chorales": len(names),
        "ta": ta.time(q).tolist(),
        "tb": tb.time(q).tolist(),
    }
    meta_path.write_text(json.dumps(meta))
    return meta


def long_worker(method: str, a: str, b: str, out: str) -> None:
    """Run one method on the long pair in this (fresh) process; write timings and memory as JSON."""
    import resource
    import tracemalloc

    from mirsearch.audio import load_audio

    ya, sr = load_audio(a)
    yb, _ = load_audio(b)
    res = {"method": method, "duration_a": ya.size / sr, "duration_b": yb.size / sr}
    t0 = time.perf_counter()
    if method == "mirsearch":
        from mirsearch.features.onset import sync_features
        from mirsearch.matching.sync import sync_dtw

        Ca, Da, rate = sync_features(ya, sr=sr)
        Cb, Db, _ = sync_features(yb, sr=sr)
        t1 = time.perf_counter()
        tracemalloc.start()
        r = sync_dtw(Ca, Cb, feature_rate=rate, U=Da, V=Db, w_onset=2.0, shifts=range(12))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        path = r.path.T
        res["levels"] = r.levels
        res["band_cells"] = r.peak_cells
    else:
        from baselines import synctoolbox_features, synctoolbox_sync_features

        c1, d1 = synctoolbox_features(ya, sr)
        c2, d2 = synctoolbox_features(yb, sr)
        t1 = time.perf_counter()
        tracemalloc.start()
        path = synctoolbox_sync_features(c1, d1, c2, d2)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    t2 = time.perf_counter()
    res.update(
        features_s=t1 - t0,
        dtw_s=t2 - t1,
        total_s=t2 - t0,
        dtw_peak_mb=peak / 1e6,
        max_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        full_matrix_cells=int(np.ceil(ya.size / sr * 50) * np.ceil(yb.size / sr * 50)),
        path=np.asarray(path).tolist(),
    )
    Path(out).write_text(json.dumps(res))


def run_long(minutes: float, *, baseline: bool) -> list[dict]:
    meta = build_long_pair(minutes)
    rows = []
    for method in ["mirsearch"] + (["synctoolbox"] if baseline else []):
        out = DATA / "long" / f"result_{method}.json"
        subprocess.run([sys.executable, __file__, "--long-worker", method, meta["a"], meta["b"], str(out)], check=True)
        r = json.loads(out.read_text())
        wp = np.asarray(r.pop("path"))
        fmap = path_map(wp, 50.0)
        e = (fmap(np.asarray(meta["ta"])) - np.asarray(meta["tb"])) * 1000
        r.update({f"err_{k}": v for k, v in stats(e).items()})
        rows.append(r)
        print(f"  long pair {method}: {r['total_s']:.1f} s, RSS {r['max_rss_mb']:.0f} MB", flush=True)
    return rows


# ------------------------------------------------------------------------------------------------ main


def warm_up() -> None:
    """Load numba caches and librosa once so that per-pair times measure the work, not imports."""
    from mirsearch.sync import align_audio

    rng = np.random.default_rng(0)
    t = np.arange(22050 * 6) / 22050
    y = (np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) + 0.01 * rng.standard_normal(t.size)).astype(
        np.float32
    )
    align_audio((y, 22050), (y, 22050), max_cost_ratio=None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=str(HERE.parent / "data" / "bench"), help="benchmark dataset folder")
    ap.add_argument("--split", default="test")
    ap.add_argument("--max-pairs", type=int, default=16, help="pairs taken from the dataset (works in seeded order)")
    ap.add_argument("--works", type=int, default=6, help="own renderings when there is no dataset")
    ap.add_argument("--long-minutes", type=float, default=20.0)
    ap.add_argument("--skip-long", action="store_true")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--out", default="sync", help="results name (benchmarks/results/NAME.json)")
    ap.add_argument("--long-worker", nargs=4, metavar=("METHOD", "A", "B", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.long_worker:
        long_worker(*args.long_worker)
        return
    baseline = not args.skip_baseline
    dataset = Path(args.dataset) if args.dataset else None
    if dataset is not None and (dataset / "manifest.json").is_file():
        import bench_data

        ds = bench_data.load(dataset, args.split)
        pairs = bench_data.sync_pairs(ds, max_pairs=args.max_pairs)
        spairs = bench_data.score_pairs(ds, max_pairs=args.max_pairs)
        source = {"dataset": str(dataset), "split": args.split, "works": len(ds.works), "hours": ds.hours}
    else:
        pairs, spairs, works = own_pairs(args.works)
        source = {"own_renderings": works}
    print(f"{len(pairs)} audio pairs, {len(spairs)} score pairs", flush=True)
    warm_up()
    print("audio-audio pairs", flush=True)
    audio_rows, audio_err = run_audio_pairs(pairs, baseline=baseline)
    print("score-audio pairs", flush=True)
    score_rows, score_err = run_score_pairs(spairs, baseline=baseline)
    summary = []
    for task, errs, rows in (("audio-audio", audio_err, audio_rows), ("score-audio", score_err, score_rows)):
        for method, key in (("mirsearch", "mir_s"), ("synctoolbox", "st_s")):
            if not errs[method]:
                continue
            s = stats(np.concatenate(errs[method]))
            s.update(task=task, method=method, mean_runtime_s=float(np.mean([r[key] for r in rows])))
            summary.append(s)
    long_rows = [] if args.skip_long else run_long(args.long_minutes, baseline=baseline)

    print("\nper pair (mean / p95 error in ms, runtime in s)")
    print_table(
        audio_rows + score_rows,
        ["pair", "transp", "found", "ratio", "mir_mean", "mir_p95", "mir_s", "st_mean", "st_p95", "st_s", "speedup"],
    )
    print("\npooled over all onsets")
    print_table(
        summary, ["task", "method", "n", "mean_ms", "median_ms", "p95_ms", "within_50", "within_100", "mean_runtime_s"]
    )
    if long_rows:
        print(f"\nlong pair (two ~{args.long_minutes:g}-minute versions, fresh process per method)")
        print_table(
            long_rows,
            [
                "method",
                "duration_a",
                "duration_b",
                "features_s",
                "dtw_s",
                "total_s",
                "dtw_peak_mb",
                "max_rss_mb",
                "err_mean_ms",
                "err_p95_ms",
            ],
        )
    path = write_results(
        args.out,
        {
            "command": "python benchmarks/bench_sync.py " + " ".join(sys.argv[1:]),
            "source": source,
            "pairs": audio_rows,
            "score_pairs": score_rows,
            "summary": summary,
            "long_pair": long_rows,
        },
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
