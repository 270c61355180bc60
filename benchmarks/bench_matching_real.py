"""Audio matching on real recordings under the issue-14 degradations: tune on some packages, test on others.

Protocol (issue 14, "matching that generalises"):

- *tune* split: the game soundtracks of ``ufoai-music`` and ``singularity-music`` (``data/real/ufoai_ogg``,
  ``data/real/sing``); *test* split: the music of ``colobot-common-sounds`` and the backing tracks
  (``song.ogg``) of ``fretsonfire-songs-muldjord`` / ``-sectoid`` (``data/real/pkgs``). Parameters are chosen
  on *tune* only; *test* is measured once. Each split is its own collection (``data/bench_match/real_<split>.mirs``,
  stored chroma as ``mirsearch index`` makes it).
- Queries: ``--per-track`` excerpts of 15 s per track (uniform start, 5 s from either end), each under the
  five degradations: ``pitch`` (+-1 semitone, phase vocoder, sign at random), ``tempo`` (time stretch 0.9 or
  1.1), ``speed`` (resampling: +-5.9 %, tempo and pitch together), ``noise`` (white, 10 dB SNR), ``telephone``
  (300-3400 Hz band, 8 kHz). Degraded signals are cached (``data/bench_match/real_queries_<split>.npz``).
- Hit: the first match lies in the source track and overlaps the source span by at least half of it
  (``bench_matching.is_hit``). P@1 per degradation and per track. *repeat P@1* (a separate figure, for looped
  tracks) also counts a first match at another place of the source track whose clean passage repeats the source
  passage: the stored upper-register chroma of the source span matched against the match's place (+-3 s) by
  subsequence DTW at the second stage's 5 Hz CENS costs less than :data:`REPEAT_COST` (exact loops of the tune
  tracks cost 0.002-0.008 there, other passages of the same tracks 0.13-0.29).
- Rows: mirsearch's default passage search (``search_audio``, what ``mirsearch search --audio Q`` runs:
  multiple scaling over the stored upper-register chroma (``PassageOptions.upper``), all 12 transpositions,
  then the second stage that re-scores the best 20 candidates and the best 10 of a 1 Hz CENS search
  (``PassageOptions.refine``, ``PassageOptions.coarse``) at 5 Hz, with the query equalisation
  (``PassageOptions.max_gain_db``) and the query's chroma under three tuning hypotheses (its estimate and a quarter
  tone either side, ``PassageOptions.tuning_offsets``); the confidence filter of the service is not applied),
  ``one_tuning`` (the session-13 default: the estimated tuning only), ``tunings_third`` / ``tunings_half`` (other
  hypotheses: +-1/3 semitone; 0 and 1/2), ``s12`` (the
  session-12 default: best 10, no coarse candidates), ``no_coarse`` (best 20 without them),
  ``full_chroma`` (the session-11 default: the same on the full stored chroma), ``one_stage``
  (without the second stage), ``no_eq`` (without the equalisation), ``refine5`` (the session-10 default: best 5,
  no equalisation) and other variants (``--variants``), beside libfmp's
  CENS matching with 12 shifts (``baselines.libfmp_match``). ``--hold-out``: for each degradation kind, which
  variant is best on the other four kinds (the choice made without that kind) and its P@1 on the held-out kind.

    python benchmarks/bench_matching_real.py --split tune [--per-track 1] [--variants default,sdtw] [--skip-baseline]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_matching import DATA, REAL, SR, build_collection, is_hit  # noqa: E402

from _common import print_table, summary_by, write_results  # noqa: E402

QUERY_SECONDS = 15.0
KINDS = ("pitch", "tempo", "speed", "noise", "telephone")
#: stored kinds of the benchmark collections (the passage search matches on the upper-register chroma)
FEATURES = ("chroma", "chroma_upper")
PKGS = REAL / "pkgs"
#: largest 5 Hz CENS cost between the clean source passage and another place of its track counted as a repeat
REPEAT_COST = 0.02


def split_tracks(split: str) -> list[Path]:
    """Audio files of a split (sorted; tracks shorter than 25 s are dropped when the queries are cut)."""
    if split == "tune":
        return sorted((REAL / "ufoai_ogg").rglob("*.ogg")) + sorted((REAL / "sing").rglob("*.ogg"))
    colobot = sorted((PKGS / "colobot-common-sounds").rglob("music/*.ogg"))
    fof = sorted(PKGS.glob("fretsonfire-songs-*/usr/share/games/fretsonfire/data/songs/*/*/song.ogg"))
    return colobot + fof


def degrade(y: np.ndarray, kind: str, rng) -> tuple[np.ndarray, str]:
    """One issue-14 degradation of a clean excerpt; returns (signal, variant label)."""
    import librosa
    import scipy.signal
    import soxr

    if kind == "pitch":
        steps = int(rng.choice([-1, 1]))
        return librosa.effects.pitch_shift(y, sr=SR, n_steps=steps).astype(np.float32), f"pitch{steps:+d}"
    if kind == "tempo":
        rate = float(rng.choice([0.9, 1.1]))
        return librosa.effects.time_stretch(y, rate=rate).astype(np.float32), f"tempo{rate:g}"
    if kind == "speed":
        speed = float(rng.choice([1 / 1.059, 1.059]))
        # played `speed` times as fast: fewer samples at the same rate (pitch moves with it)
        z = soxr.resample(y, SR, SR / speed).astype(np.float32)
        return z, f"speed{speed:.3f}"
    if kind == "noise":
        p = float(np.mean(y**2))
        return (y + rng.normal(0, np.sqrt(p / 10.0), y.shape)).astype(np.float32), "noise10dB"
    if kind == "telephone":
        sos = scipy.signal.butter(4, [300, 3400], btype="bandpass", fs=SR, output="sos")
        z = scipy.signal.sosfilt(sos, y).astype(np.float32)
        return soxr.resample(soxr.resample(z, SR, 8000), 8000, SR).astype(np.float32), "telephone"
    raise ValueError(kind)


def make_queries(split: str, tracks: list[Path], coll, *, per_track: int) -> list[dict]:
    """Degraded excerpts (cached per split and ``per_track``): dicts with y, kind, variant, track, relevant."""
    from mirsearch.audio import load_audio

    id_of = {str(Path(r.path).resolve()): r.id for r in coll.recordings()}
    cache = DATA / f"real_queries_{split}_{per_track}.npz"
    meta_keys = ("kind", "variant", "track", "start")
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        meta = z["meta"]
        out = []
        for i, row in enumerate(meta):
            kind, variant, track, start = row
            s = float(start)
            rid = id_of[str(Path(track).resolve())]
            out.append(
                {"y": z[f"q{i}"], "kind": kind, "variant": variant, "track": track, "start": s, "rid": rid,
                 "relevant": {rid: (s, s + QUERY_SECONDS)}}
            )  # fmt: skip
        return out
    rng = np.random.default_rng({"tune": 11, "test": 12}[split])
    out = []
    for path in tracks:
        y, _ = load_audio(path, sr=SR)
        dur = y.size / SR
        if dur < QUERY_SECONDS + 10:
            continue
        rid = id_of[str(path.resolve())]
        for _ in range(per_track):
            s = float(rng.uniform(5.0, dur - QUERY_SECONDS - 5.0))
            clean = y[int(s * SR) : int((s + QUERY_SECONDS) * SR)]
            for kind in KINDS:
                z, variant = degrade(clean, kind, rng)
                out.append({"y": z, "kind": kind, "variant": variant, "track": str(path), "start": s, "rid": rid,
                            "relevant": {rid: (s, s + QUERY_SECONDS)}})  # fmt: skip
    meta = np.array([[q[k] if k != "start" else f"{q[k]:.4f}" for k in meta_keys] for q in out])
    np.savez(cache, meta=meta, **{f"q{i}": q["y"] for i, q in enumerate(out)})
    return out


# ---------------------------------------------------------------------------------------------- methods

#: variants of mirsearch's passage search: name -> (method, AudioMatchConfig changes, matching-chroma config or None,
#: PassageOptions changes); "default" is what the service runs (two stages: a collection is searched)
VARIANTS: dict[str, tuple[str, dict, dict | None, dict]] = {
    "default": ("scaling", {}, None, {}),
    "full_chroma": ("scaling", {}, None, {"upper": False, "tuning_offsets": (0.0,)}),
    "s12": ("scaling", {}, None, {"refine": 10, "coarse": 0, "tuning_offsets": (0.0,)}),
    "no_coarse": ("scaling", {}, None, {"coarse": 0}),
    "one_stage": ("scaling", {}, None, {"refine": 0}),
    "no_eq": ("scaling", {}, None, {"max_gain_db": 0.0}),
    "sdtw": ("sdtw", {}, None, {}),
    "sdtw_one_stage": ("sdtw", {}, None, {"refine": 0}),
    "refine5": ("scaling", {}, None, {"refine": 5, "max_gain_db": 0.0, "tuning_offsets": (0.0,)}),
    "dense_tempi": ("scaling", {"tempo_factors": (0.66, 0.73, 0.81, 0.9, 1.0, 1.1, 1.22, 1.35, 1.5)}, None, {}),
    "matching": ("scaling", {"features": "matching"}, None, {}),
    "matching_sdtw": ("sdtw", {"features": "matching"}, None, {}),
    "one_tuning": ("scaling", {}, None, {"tuning_offsets": (0.0,)}),
    "tunings_quarter": ("scaling", {}, None, {"tuning_offsets": (0.0, -0.25, 0.25)}),
    "tunings_third": ("scaling", {}, None, {"tuning_offsets": (0.0, -1 / 3, 1 / 3)}),
    "tunings_half": ("scaling", {}, None, {"tuning_offsets": (0.0, 0.5)}),
}


def _setup(coll, variant: str):
    """The source searched (the collection, so that the second stage has the stored chroma; a prepared database
    for the matching chroma) and the options of a variant."""
    from mirsearch.features.audio_match import ALL_KEYS, PASSAGE_MATCH
    from mirsearch.index.audio_database import prepare_database
    from mirsearch.search.audio import PassageOptions

    method, changes, matching, opts = VARIANTS[variant]
    match = PASSAGE_MATCH.replace(transpositions=ALL_KEYS, **changes)
    source = prepare_database(coll, match, matching=matching) if match.features == "matching" else coll
    return source, PassageOptions(top=1, method=method, match=match, **opts)


def mirsearch_runner(coll, variant: str):
    from mirsearch.search.audio import search_audio
    from mirsearch.search.audio_query import AudioQuery

    source, options = _setup(coll, variant)

    def run(q):
        m = search_audio(source, AudioQuery.from_samples(q["y"], SR), options).matches
        return [(m[0].recording_id, m[0].start, m[0].end)] if m else []

    return run


def diagnose(coll, queries: list[dict], rows: list[dict], variant: str) -> list[dict]:
    """For every query the variant missed: its cost at the true place (best shift and tempo) against the
    winner's, the shift found there and the query's estimated tuning (why it was missed)."""
    from mirsearch.features.chroma import estimate_tuning
    from mirsearch.search.audio import search_audio
    from mirsearch.search.audio_query import AudioQuery

    source, options = _setup(coll, variant)
    out = []
    for q, r in zip(queries, [r for r in rows if r["method"] == variant], strict=True):
        if r["p1"]:
            continue
        res = search_audio(source, AudioQuery.from_samples(q["y"], SR), options.replace(per_recording=1, curves=True))
        win = res.matches[0]
        curve = next(c for c in res.curves if c.recording_id == q["rid"])
        s = q["start"]
        lo, hi = int(max(0, (s - 3) * curve.feature_rate)), int((s + 3) * curve.feature_rate) + 1
        true_cost = float(np.min(curve.cost[lo:hi])) if hi > lo else float("nan")
        out.append({"variant": q["variant"], "track": Path(q["track"]).name[:28], "winner_cost": round(win.cost, 3),
                    "true_cost": round(true_cost, 3), "winner_same_track": win.recording_id == q["rid"],
                    "tuning": round(estimate_tuning(q["y"], sr=SR), 2)})  # fmt: skip
    return out


def libfmp_runner(coll, split: str):
    from baselines import libfmp_cens, libfmp_match
    from mirsearch.audio import load_audio

    recs = coll.recordings()
    cache = DATA / f"real_libfmp_{split}.npz"
    db = {}
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        db = {int(k[1:]): z[k] for k in z.files}
    if sorted(db) != sorted(r.id for r in recs):
        db = {r.id: libfmp_cens(load_audio(r.path, sr=SR)[0], SR)[0] for r in recs}
        np.savez(cache, **{f"r{k}": v for k, v in db.items()})
    ids = sorted(db)
    cens = [db[i] for i in ids]

    def run(q):
        X, rate = libfmp_cens(q["y"], SR)
        found = libfmp_match(X, cens, top=1)
        return [(ids[i], s / rate, (e + 1) / rate) for i, s, e, _ in found]

    return run


def is_repeat(coll, q: dict, start: float, end: float, memo: dict) -> bool:
    """Whether ``start``-``end`` of the query's source track repeats the source passage (module docstring)."""
    from mirsearch.matching.subsequence import subsequence_dtw_shifts
    from mirsearch.search.audio import REFINE_MATCH

    if q["rid"] not in memo:
        memo[q["rid"]] = coll.load_features(q["rid"], "chroma_upper")[0]
    R, rate = memo[q["rid"]], 10.0
    s = int(q["start"] * rate)
    X = REFINE_MATCH.cens(R[:, s : s + int(QUERY_SECONDS * rate)], feature_rate=rate)
    a, b = max(0, int((start - 3.0) * rate)), min(R.shape[1], int(np.ceil((end + 3.0) * rate)) + 1)
    Y = REFINE_MATCH.cens(R[:, a:b], feature_rate=rate)
    if X.shape[1] < 2 or Y.shape[1] < 2:
        return False
    return float(subsequence_dtw_shifts(X, Y, shifts=[0])[0].min()) < REPEAT_COST


def evaluate(queries: list[dict], run, name: str, coll=None) -> list[dict]:
    rows, memo = [], {}
    for q in queries:
        t0 = time.perf_counter()
        ranked = run(q)
        dt = time.perf_counter() - t0
        hit = bool(ranked) and is_hit(ranked[0][0], ranked[0][1], ranked[0][2], q["relevant"], set())
        track = bool(ranked) and ranked[0][0] == q["rid"]
        repeat = hit or (track and coll is not None and is_repeat(coll, q, ranked[0][1], ranked[0][2], memo))
        rows.append({"method": name, "kind": q["kind"], "variant": q["variant"],
                     "track": "/".join(Path(q["track"]).parts[-2:]), "p1": float(hit), "track_p1": float(track),
                     "repeat_p1": float(repeat), "s": dt})  # fmt: skip
    return rows


def summarise(rows: list[dict], by: tuple[str, ...]) -> list[dict]:
    return summary_by(rows, by, {
        "P_at_1": ("p1", "mean", 1, 4), "track_P_at_1": ("track_p1", "mean", 1, 4),
        "repeat_P_at_1": ("repeat_p1", "mean", 1, 4), "mean_query_s": ("s", "mean", 1, 3),
    })  # fmt: skip


def hold_out(rows: list[dict], variants: list[str]) -> list[dict]:
    """Per degradation kind: the variant best on the other kinds, and its P@1 on the held-out kind."""
    out = []
    for kind in KINDS:
        score = {v: np.mean([r["p1"] for r in rows if r["method"] == v and r["kind"] != kind]) for v in variants}
        best = max(variants, key=lambda v: (score[v], v == "default"))
        held = [r["p1"] for r in rows if r["method"] == best and r["kind"] == kind]
        out.append({"held_out": kind, "chosen": best, "P_at_1_others": round(float(score[best]), 4),
                    "P_at_1_held_out": round(float(np.mean(held)), 4) if held else None})  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=("tune", "test"), required=True)
    ap.add_argument("--per-track", type=int, default=1, help="15 s excerpts per track (each x 5 degradations)")
    ap.add_argument("--variants", default="default", help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--hold-out", action="store_true", help="leave-one-degradation-out choice among the variants")
    ap.add_argument("--diagnose", metavar="VARIANT", help="explain the misses of one of the variants")
    ap.add_argument("--out", default=None, help="results name (default matching_real_<split>)")
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    if unknown := [v for v in variants if v not in VARIANTS]:
        raise SystemExit(f"--variants: unknown {unknown}")
    tracks = split_tracks(args.split)
    coll = build_collection(tracks, name=f"real_{args.split}.mirs", refresh=True, features=FEATURES)
    recs = coll.recordings()
    hours = sum(r.duration for r in recs) / 3600
    queries = make_queries(args.split, tracks, coll, per_track=args.per_track)
    # an excerpt of a silent stretch is no query (the search refuses it): drop all its degradations
    silent = {(q["track"], q["start"]) for q in queries if float(np.sqrt(np.mean(q["y"] ** 2))) < 1e-4}
    queries = [q for q in queries if (q["track"], q["start"]) not in silent]
    if silent:
        print(f"  {len(silent)} silent excerpts dropped", flush=True)
    print(f"{args.split}: {len(queries)} queries over {len(recs)} recordings ({hours:.2f} h)", flush=True)
    rows = []
    for v in variants:
        rows += evaluate(queries, mirsearch_runner(coll, v), v, coll)
        print(f"  {v}: P@1 {np.mean([r['p1'] for r in rows if r['method'] == v]):.3f}", flush=True)
    if not args.skip_baseline:
        rows += evaluate(queries, libfmp_runner(coll, args.split), "libfmp", coll)
        print(f"  libfmp: P@1 {np.mean([r['p1'] for r in rows if r['method'] == 'libfmp']):.3f}", flush=True)
    overall = summarise(rows, ("method",))
    by_kind = summarise(rows, ("method", "kind"))
    by_variant = summarise(rows, ("method", "variant"))
    by_track = summarise(rows, ("method", "track"))
    print_table(overall, ["method", "queries", "P_at_1", "track_P_at_1", "repeat_P_at_1", "mean_query_s"])
    print_table(by_kind, ["method", "kind", "queries", "P_at_1", "track_P_at_1", "repeat_P_at_1"])
    print_table(by_variant, ["method", "variant", "queries", "P_at_1"])
    print_table([r for r in by_track if r["P_at_1"] < 1], ["method", "track", "queries", "P_at_1"])
    if args.diagnose:
        print_table(diagnose(coll, queries, rows, args.diagnose), ["variant", "track", "winner_cost", "true_cost",
                                                                   "winner_same_track", "tuning"])  # fmt: skip
    held = hold_out(rows, variants) if args.hold_out and len(variants) > 1 else []
    if held:
        print_table(held, ["held_out", "chosen", "P_at_1_others", "P_at_1_held_out"])
    path = write_results(
        args.out or f"matching_real_{args.split}",
        {
            "command": "python benchmarks/bench_matching_real.py " + " ".join(sys.argv[1:]),
            "split": args.split,
            "collection": {"recordings": len(recs), "hours": round(hours, 3)},
            "overall": overall,
            "by_kind": by_kind,
            "by_variant": by_variant,
            "by_track": by_track,
            "hold_out": held,
            "queries": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
