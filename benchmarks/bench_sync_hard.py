"""Synchronisation on hard pairs: the "not the same piece" check and the alignment error outside the chorales.

Pieces (music21 corpus, not the benchmark dataset's chorales; each cut to ``--quarters`` quarter notes):
folk tunes (one line), madrigals and trecento pieces (sparse polyphony), piano and chamber music, melody-only
parts of quartets (sparse textures), the corpus' triad exercises and seeded block-chord exercises (I-IV-V
progressions repeated: the harmony of the reversed piece is as plausible as the piece itself). Each piece is
rendered twice (``synth.render``): other ensemble, other SoundFont, other tempo (0.75-1.35 of 100 bpm) and
tempo curve, other lead-in, and, for 9 in 10 pieces, transposed by 1-5 semitones. Ground truth: the time
of every distinct onset in both renderings.

- *same-piece pairs*: the two renderings of each piece, aligned by ``align_audio`` (``max_cost_ratio=None``;
  the criterion is evaluated afterwards) and, with ``--baseline``, by synctoolbox MrMsDTW;
- *different-piece pairs*: rendering A of piece i against rendering B of pieces i+1 and i+3 (durations
  within the 3x ratio that ``align_audio`` refuses first).

Reported: per pair the cost ratio and its parts, the transposition found, the errors (mean / median / p95 ms);
false refusals of same-piece pairs and passes of different-piece pairs at ``MAX_COST_RATIO``; pooled errors.

``--set validation``: 26 other corpus works of the same kinds and three other chord exercises, rendered with other
seeds (``data/bench_sync_hard/validation``); sync parameters are chosen there, the default set is measured once.

    python benchmarks/bench_sync_hard.py [--set validation] [--quarters 64] [--baseline] [--out sync_hard]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_sync import path_map, stats  # noqa: E402
from synth import ENSEMBLE_PROGRAMS, ScoreNotes, TempoMap, corpus_notes, render, write_midi  # noqa: E402

from _common import print_table, write_results  # noqa: E402

DATA = HERE.parent / "data" / "bench_sync_hard"

#: (corpus name, parts kept, label)
PIECES = [
    ("theoryExercises/TriadExercise.mxl", 8, "triad exercise"),
    ("demos/chord_realization_exercise.mxl", 8, "chord realisation"),
    ("ryansMammoth/7thRegimentReel.abc", 1, "reel (one line)"),
    ("ryansMammoth/AWillieWeHaveMissdYouStrathspey.abc", 1, "strathspey (one line)"),
    ("essenFolksong/altdeu10.abc", 1, "folk song (one line)"),
    ("trecento/PMFC_01-Rex quem metrorum.xml", 8, "trecento"),
    ("trecento/Fava_Dicant_nunc_iudei.xml", 8, "trecento"),
    ("monteverdi/madrigal.3.1.mxl", 8, "madrigal"),
    ("monteverdi/madrigal.3.10.mxl", 8, "madrigal"),
    ("josquin/adieuMesAmours.abc", 8, "chanson"),
    ("palestrina/Agnus_01.krn", 8, "mass"),
    ("joplin/maple_leaf_rag.mxl", 8, "rag (piano)"),
    ("schumann_robert/dichterliebe_no2.xml", 8, "song"),
    ("chopin/mazurka06-2.krn", 8, "mazurka (piano)"),
    ("schubert/Lindenbaum.xml", 8, "song"),
    ("handel/rinaldo/Lascia_chio_pianga.mxl", 8, "aria"),
    ("verdi/laDonnaEMobile.mxl", 8, "aria"),
    ("cpebach/h186.mxl", 8, "keyboard"),
    ("corelli/opus3no1/1grave.xml", 8, "trio sonata"),
    ("beach/prayer_of_a_tired_child.musicxml", 8, "song"),
    ("schumann_clara/polonaise_op1n1.mxl", 8, "polonaise (piano)"),
    ("haydn/opus1no1/movement1.mxl", 8, "quartet"),
    ("haydn/opus1no1/movement1.mxl", 1, "quartet melody only"),
    ("mozart/k155/movement1.mxl", 8, "quartet"),
    ("mozart/k155/movement1.mxl", 1, "quartet melody only"),
    ("beethoven/opus18no1/movement1.mxl", 2, "quartet two voices"),
]
#: validation pieces (other works of the same kinds; choices are made here, ``PIECES`` is the test set)
VALIDATION_PIECES = [
    ("ryansMammoth/AcaciaReel.abc", 1, "reel (one line)"),
    ("ryansMammoth/42dHighlandRegimentStrathspey.abc", 1, "strathspey (one line)"),
    ("essenFolksong/altdeu20.abc", 1, "folk song (one line)"),
    ("essenFolksong/ballad10.abc", 1, "ballad (one line)"),
    ("trecento/PMFC_04-Cara mi donna.xml", 8, "trecento"),
    ("trecento/PMFC_01-Lugentium siccentur.xml", 8, "trecento"),
    ("monteverdi/madrigal.3.2.mxl", 8, "madrigal"),
    ("monteverdi/madrigal.3.11.mxl", 8, "madrigal"),
    ("josquin/milleRegrets.abc", 8, "chanson"),
    ("palestrina/Agnus_02.krn", 8, "mass"),
    ("ciconia/quod_jactatur.xml", 8, "canon"),
    ("luca/gloria.xml", 8, "mass"),
    ("mozart/k545/movement1_exposition.mxl", 8, "sonata (piano)"),
    ("schumann_clara/polonaise_op1n2.mxl", 8, "polonaise (piano)"),
    ("liliuokalani/aloha_oe.mxl", 8, "song"),
    ("johnson_j_r/lift_every_voice.mxl", 8, "song"),
    ("schumann_robert/opus48no2.mxl", 8, "song"),
    ("weber/concertino_clarinet.mxl", 8, "concertino"),
    ("beethoven/opus18no3.mxl", 8, "quartet"),
    ("beethoven/opus18no4.mxl", 1, "quartet melody only"),
    ("mozart/k80/movement1.mxl", 8, "quartet"),
    ("mozart/k458/movement1.mxl", 1, "quartet melody only"),
    ("haydn/opus74no1/movement1.mxl", 8, "quartet"),
    ("schumann_robert/opus41no1/movement1.mxl", 2, "quartet two voices"),
    ("josquin/laPlusDesPlus.abc", 8, "chanson"),
    ("palestrina/Agnus_05.krn", 8, "mass"),
]
#: seeded block-chord exercises (triads of a major key in whole notes); seeds per set
N_CHORD_EXERCISES = 3
CHORD_SEEDS = {"test": range(N_CHORD_EXERCISES), "validation": range(10, 10 + N_CHORD_EXERCISES)}


def chord_exercise(seed: int, *, quarters: float) -> ScoreNotes:
    """Block triads of C major, four quarters each, a random walk over I, IV, V, vi, ii (I at both ends)."""
    rng = np.random.default_rng(seed)
    triads = {1: (60, 64, 67), 4: (60, 65, 69), 5: (59, 62, 67), 6: (60, 64, 69), 2: (62, 65, 69)}
    degrees = [1] + [int(rng.choice(list(triads))) for _ in range(int(quarters // 4) - 2)] + [1]
    rows = []
    for i, d in enumerate(degrees):
        bass = {1: 48, 4: 53, 5: 55, 6: 57, 2: 50}[d]
        for p in (bass, *triads[d]):
            rows.append((p, 4.0 * i, 4.0, 0))
    a = np.array(rows, dtype=np.float64)
    return ScoreNotes(f"chords{seed}", a[:, 0].astype(int), a[:, 1], a[:, 2], a[:, 3].astype(int))


def pieces(quarters: float, which: str = "test") -> list[tuple[str, ScoreNotes]]:
    out = []
    for name, parts, label in PIECES if which == "test" else VALIDATION_PIECES:
        try:
            notes = corpus_notes(name, max_parts=parts, max_quarters=quarters)
        except Exception as exc:  # unparsable corpus file (format support varies by music21 version)
            print(f"  skipped {name}: {exc}", flush=True)
            continue
        start = notes.onset.min()
        notes = ScoreNotes(notes.name, notes.pitch, notes.onset - start, notes.duration, notes.part)
        out.append((f"{label}: {name.rsplit('.', 1)[0]}" + (" (1 part)" if parts == 1 else ""), notes))
    for seed in CHORD_SEEDS[which]:
        out.append((f"chord exercise {seed}", chord_exercise(seed, quarters=quarters)))
    return out


def render_pair(i: int, name: str, notes: ScoreNotes, which: str = "test") -> dict:
    """Two renderings of one piece (cached by index and name); their paths and true onset times.
    The validation set lives in ``DATA / "validation"`` and draws its ensembles and tempi from other seeds."""
    root = DATA if which == "test" else DATA / which
    root.mkdir(parents=True, exist_ok=True)
    meta_path = root / f"p{i:02d}.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta["name"] == name and all(Path(meta[k]).is_file() for k in ("a", "b")):
            return meta
    rng = np.random.default_rng([7, i] if which == "test" else [8, i])
    ensembles = list(ENSEMBLE_PROGRAMS)
    ens = rng.choice(len(ensembles), size=2, replace=False)
    q = np.unique(notes.onset)
    meta = {"name": name, "transposition": 0}
    for side, ei, font in (("a", ens[0], "fluid"), ("b", ens[1], "timgm")):
        bpm = 100.0 * float(rng.uniform(0.75, 1.35))
        tmap = TempoMap.random(notes.length, base_bpm=bpm, variation=0.15, rng=rng)
        lead = float(rng.uniform(0.2, 2.0))
        tmap = TempoMap(tmap.q, tmap.t + lead)
        transpose = 0
        if side == "b" and rng.random() < 0.9:
            transpose = int(rng.integers(1, 6) * rng.choice([-1, 1]))
            meta["transposition"] = transpose % 12
        mid = root / f"p{i:02d}{side}.mid"
        write_midi(notes, tmap, mid, programs=ENSEMBLE_PROGRAMS[ensembles[ei]], transpose=transpose, rng=rng,
                   velocity_jitter=12)  # fmt: skip
        render(mid, root / f"p{i:02d}{side}.flac", soundfont=font)
        meta[side] = str(root / f"p{i:02d}{side}.flac")
        meta[f"ensemble_{side}"] = ensembles[ei]
        meta[f"t{side}"] = tmap.time(q).tolist()
    meta_path.write_text(json.dumps(meta))
    return meta


def align(a: str, b: str) -> tuple[object, dict]:
    from mirsearch.sync import align_audio

    t0 = time.perf_counter()
    tmap, details = align_audio(a, b, max_cost_ratio=None, return_details=True)
    r = details.sync
    row = {
        "ratio": round(float(r.cost_ratio), 4),
        "path_cost": round(float(r.coarse_path_cost), 4),
        "reverse_cost": round(float(r.coarse_reverse_cost), 4),
        "mean_cost": round(float(r.coarse_mean_cost), 4),
        "mean_ratio": round(float(r.coarse_path_cost / max(r.coarse_mean_cost, 1e-9)), 4),
        "found": tmap.meta["transposition"],
        "s": round(time.perf_counter() - t0, 2),
    }
    return tmap, row


def _source(name: str) -> str:
    """The corpus work a pair name stands for (the full texture and its melody-only part are one work)."""
    if ": " not in name:  # a generated exercise ("chord exercise 1") or a dataset pair ("bwv1.6 a->b")
        return name
    return name.split(": ")[-1].replace(" (1 part)", "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quarters", type=float, default=64.0, help="each piece cut to this many quarter notes")
    ap.add_argument("--baseline", action="store_true", help="also synctoolbox MrMsDTW on the same-piece pairs")
    ap.add_argument(
        "--set",
        default="test",
        choices=("test", "validation"),
        help="rendered pieces: the test list or the validation list (other works; choices are made there)",
    )
    ap.add_argument("--dataset", help="pairs of versions of the benchmark dataset instead of the rendered pieces")
    ap.add_argument("--split", default="validation")
    ap.add_argument("--max-pairs", type=int, default=30)
    ap.add_argument("--out", default="sync_hard")
    args = ap.parse_args()
    from mirsearch.sync.audio import MAX_COST_RATIO, MAX_MEAN_COST_RATIO

    if args.dataset:
        import bench_data

        ds = bench_data.load(Path(args.dataset), args.split)
        metas = [{"name": p.name, "a": p.a, "b": p.b, "ta": p.ta, "tb": p.tb, "transposition": p.transposition}
                 for p in bench_data.sync_pairs(ds, max_pairs=args.max_pairs)]  # fmt: skip
    else:
        todo = enumerate(pieces(args.quarters, args.set))
        metas = [render_pair(i, name, notes, args.set) for i, (name, notes) in todo]
    print(f"{len(metas)} pieces rendered twice", flush=True)
    same, errs, errs_st = [], [], []
    for m in metas:
        tmap, row = align(m["a"], m["b"])
        e = (tmap.map(np.asarray(m["ta"])) - np.asarray(m["tb"])) * 1000
        errs.append(e)
        row = {"pair": m["name"], "transp": m["transposition"], **row, **{f"err_{k}": round(v, 1) for k, v in
               stats(e).items() if k.endswith("ms")}}  # fmt: skip
        if args.baseline:
            from baselines import synctoolbox_sync
            from mirsearch.audio import load_audio

            wp, _ = synctoolbox_sync(load_audio(m["a"])[0], load_audio(m["b"])[0], 22050)
            e_st = (path_map(wp, 50.0)(np.asarray(m["ta"])) - np.asarray(m["tb"])) * 1000
            errs_st.append(e_st)
            row["st_mean_ms"] = round(float(np.abs(e_st).mean()), 1)
        same.append(row)
        print(f"  {row['pair']}: ratio {row['ratio']:.2f}, error {row['err_mean_ms']:.0f} ms", flush=True)
    different = []
    for i, m in enumerate(metas):
        for k in (1, 3):
            o = metas[(i + k) % len(metas)]
            if _source(o["name"]) == _source(m["name"]):  # a quartet and its own melody: not different pieces
                continue
            da, db = np.max(m["ta"]), np.max(o["tb"])
            if max(da, db) > 2.5 * min(da, db):
                continue
            _, row = align(m["a"], o["b"])
            different.append({"pair": f"{m['name']} / {o['name']}", **row})
    summary = [{"method": "mirsearch", **stats(np.concatenate(errs))}]
    if errs_st:
        summary.append({"method": "synctoolbox", **stats(np.concatenate(errs_st))})

    def refuse(r: dict, mean_rule: bool) -> bool:
        return r["ratio"] > MAX_COST_RATIO and (not mean_rule or r["mean_ratio"] > MAX_MEAN_COST_RATIO)

    criteria = [
        {"criterion": name, "same_refused": sum(refuse(r, rule) for r in same), "same": len(same),
         "different_passed": sum(not refuse(r, rule) for r in different), "different": len(different)}
        for name, rule in ((f"ratio > {MAX_COST_RATIO}", False),
                           (f"ratio > {MAX_COST_RATIO} and mean_ratio > {MAX_MEAN_COST_RATIO}", True))
    ]  # fmt: skip
    refused = [r["pair"] for r in same if refuse(r, True)]
    passed = [r["pair"] for r in different if not refuse(r, True)]
    print_table(same, ["pair", "transp", "found", "ratio", "mean_ratio", "path_cost", "reverse_cost", "mean_cost",
                       "err_mean_ms", "err_median_ms", "err_p95_ms", "st_mean_ms"])  # fmt: skip
    print_table(different, ["pair", "ratio", "mean_ratio", "path_cost", "reverse_cost", "mean_cost"])
    print_table(summary, ["method", "n", "mean_ms", "median_ms", "p95_ms", "within_50", "within_100"])
    print_table(criteria, ["criterion", "same_refused", "same", "different_passed", "different"])
    path = write_results(
        args.out,
        {
            "command": "python benchmarks/bench_sync_hard.py " + " ".join(sys.argv[1:]),
            "max_cost_ratio": MAX_COST_RATIO,
            "max_mean_cost_ratio": MAX_MEAN_COST_RATIO,
            "criteria": criteria,
            "same_piece": same,
            "different_piece": different,
            "summary": summary,
            "same_refused": refused,
            "different_passed": passed,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
