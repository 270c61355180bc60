"""Score search benchmark: occurrences of themes in scores of the music21 corpus (issue 21).

Collection: the Bach chorales of the music21 corpus (BWV numbers of the reserved works left out) and Palestrina
mass movements (kern), read into a score store (:mod:`mirsearch.index.score_store`; resumable).

Queries (seeded), each a monophonic theme of 6-10 notes:

* ``exact``   consecutive notes of one part (its top line), transposed by -6..+5 semitones;
* ``changed`` the same with one note (not the first) moved by 1-2 semitones;
* ``voices``  the first half from one part, the rest from another part continuing after it.

Reference occurrences: every translation placing all notes of the *unchanged* theme on notes of a score, found
by brute force over every anchor note (no pair index). Found occurrences are compared by (score, onset,
transposition); precision and recall are pooled over queries (:mod:`mirsearch.evaluation.occurrences`).
Baselines: an exact interval string search (pitch interval and onset difference per note, Themefinder-style)
over each part's line, the same allowing two tokens to differ, and music21's ``search.noteNameRhythmicSearch``
(all 12 transpositions of the theme, notes re-spelled from MIDI numbers) on the first ``--music21-scores``
scores. Query time against collection size: subsets of the collection and copies of it (pitch-shifted).

    python benchmarks/bench_score_search.py --scores 700 --queries 60
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import time
from pathlib import Path

import numpy as np

from mirsearch.evaluation.occurrences import (
    occurrence_counts,
    pooled_precision_recall,
    span_matches,
    span_occurrence_counts,
)
from mirsearch.index.score_store import TICKS_PER_QUARTER as TPQ
from mirsearch.index.score_store import ScoreStore, make_pack
from mirsearch.scores import Note, Theme
from mirsearch.search.score_search import ScoreSearchOptions, query_points, search_scores
from mirsearch.search.score_variants import VariantOptions, search_variants

from _common import print_table, write_results

log = logging.getLogger("bench_score_search")
#: BWV numbers reserved for independent evaluation (WTC I, Art of Fugue, 898, 903, 904, 946-953): never used
RESERVED_BWV = set(range(846, 870)) | {898, 903, 904, 1080} | set(range(946, 954))
SHARES = (1.0, 0.9, 0.8)
#: (min_share, max_missing, partial_parts, changed_weight) of the point-set rows
SETTINGS = ((1.0, None, None, 0.0), (0.9, None, None, 0.0), (0.8, None, None, 0.0), (0.8, 0, None, 0.0),
            (0.9, None, 1, 0.0), (0.8, None, 1, 0.0), (0.8, 0, 1, 0.0), (0.7, 0, 1, 0.0),
            (0.9, None, 1, 0.5))  # fmt: skip


def corpus_files(n: int) -> list[Path]:
    """Chorales first (not reserved), then Palestrina movements, ``n`` at most."""
    import music21

    root = Path(music21.__file__).parent / "corpus"
    bach = []
    for p in sorted((root / "bach").glob("bwv*")):
        m = re.match(r"bwv(\d+)", p.name)
        if p.suffix in (".mxl", ".krn") and m and int(m.group(1)) not in RESERVED_BWV:
            bach.append(p)
    pal = sorted((root / "palestrina").glob("*.krn"))
    return (bach + pal)[:n]


def build_store(files: list[Path], directory: Path, batch: int = 50) -> tuple[ScoreStore, float]:
    """Read the files into a store in batches (an interrupted run resumes); seconds spent reading this run."""
    store = ScoreStore(directory)
    spent = 0.0
    for i in range(0, len(files), batch):
        report = store.update(files[i : i + batch])
        spent += report.seconds if report.added else 0.0
        log.info("store: %d/%d files, %d scores, %d failed", i + len(files[i : i + batch]), len(files),
                 report.scores, len(report.failed))  # fmt: skip
    return store, spent


# -- queries --------------------------------------------------------------------------------------------------
def _lines(packed):
    """Top line of every part of every score: list of (score, ticks, pitches)."""
    notes, out = packed.notes, []
    for s in range(len(packed)):
        rows = np.asarray(notes[packed.offsets[s] : packed.offsets[s + 1]])
        for part in np.unique(rows["part"]):
            r = rows[rows["part"] == part]
            last = np.r_[np.nonzero(np.diff(r["tick"]))[0], r.size - 1]  # highest note of each onset
            out.append((s, r["tick"][last].astype(np.int64), r["pitch"][last].astype(np.int64)))
    return out


def _theme(ticks, pitches, name="q") -> Theme | None:
    if np.any(np.diff(ticks) > 4 * TPQ) or np.any(np.diff(ticks) <= 0) or len(set(np.diff(pitches))) < 2:
        return None
    dur = np.r_[np.diff(ticks), TPQ]
    notes = tuple(Note(int(p), (t - ticks[0]) / TPQ, d / TPQ) for t, p, d in zip(ticks, pitches, dur, strict=True))
    return Theme(notes, None, name)


def sample_queries(packed, lines, n: int, rng) -> list[dict]:
    """``n`` queries of each kind (see the module docstring)."""
    by_score: dict[int, list] = {}
    for line in lines:
        by_score.setdefault(line[0], []).append(line)
    queries = []
    while len(queries) < 3 * n:
        s, ticks, pitches = lines[rng.integers(len(lines))]
        m = int(rng.integers(6, 11))
        if ticks.size < m + 1:
            continue
        i = int(rng.integers(ticks.size - m))
        k = int(rng.integers(-6, 6))
        theme = _theme(ticks[i : i + m], pitches[i : i + m] + k)
        other = [ln for ln in by_score[s] if ln is not (s, ticks, pitches) and not np.array_equal(ln[1], ticks)]
        if theme is None or not other:
            continue
        changed = list(theme.notes)
        j = int(rng.integers(1, m))
        delta = int(rng.choice([-2, -1, 1, 2]))
        changed[j] = Note(changed[j].pitch + delta, changed[j].onset, changed[j].duration)
        _, t2, p2 = other[rng.integers(len(other))]
        h = m // 2
        after = np.nonzero(t2 > ticks[i + h - 1])[0][: m - h]
        voices = None
        if after.size == m - h:
            voices = _theme(np.r_[ticks[i : i + h], t2[after]], np.r_[pitches[i : i + h], p2[after]] + k)
        if voices is None:
            continue
        source = (int(s), int(ticks[i]), -k)  # where the theme was taken from: a true occurrence
        queries.append({"kind": "exact", "theme": theme, "truth_theme": theme, "source": source})
        queries.append({"kind": "changed", "theme": Theme(tuple(changed)), "truth_theme": theme, "source": source})
        queries.append({"kind": "voices", "theme": voices, "truth_theme": voices, "source": source})
    return queries


def brute_force(packed, theme) -> set:
    """Every exact occurrence ``(score, dt, dp)``: each score note tried as the theme's first note."""
    t, p, _ = query_points(theme, ticks_per_quarter=TPQ)
    score, tick, pitch = packed.column("score"), packed.column("tick"), packed.column("pitch")
    keys = (score << 40) | (tick * 128 + pitch)
    dt, dp = tick - t[0], pitch - p[0]
    ok = np.ones(score.size, bool)
    for ti, pi in zip(t[1:], p[1:], strict=True):
        q = pi + dp
        want = (score << 40) | ((ti + dt) * 128 + np.clip(q, 0, 127))
        pos = np.clip(np.searchsorted(keys, want), 0, keys.size - 1)
        ok &= (keys[pos] == want) & (q >= 0) & (q < 128)
    return set(zip(score[ok].tolist(), dt[ok].tolist(), dp[ok].tolist(), strict=True))


# -- methods --------------------------------------------------------------------------------------------------
def run_ours(packed, queries, options: ScoreSearchOptions) -> tuple[dict, list]:
    index = {e.id: i for i, e in enumerate(packed.entries)}
    counts, times = {}, []
    for q in queries:
        t0 = time.perf_counter()
        matches = search_scores(packed, q["theme"], options)
        times.append(time.perf_counter() - t0)
        found = {(index[m.recording_id], round(m.start_quarter * TPQ), m.extra["semitones"]) for m in matches}
        counts.setdefault(q["kind"], []).append({**occurrence_counts(found, q["truth"]), "src": q["source"] in found})
    return counts, times


def _codes(ticks, pitches):
    return np.diff(ticks) * 256 + np.diff(pitches) + 128


def run_interval_strings(lines, queries, *, max_mismatch: int) -> tuple[dict, list]:
    """Interval string search over each part's line; up to ``max_mismatch`` differing tokens."""
    sep = np.array([-1], np.int64)
    codes = np.concatenate([x for s, t, p in lines for x in (_codes(t, p), sep)])
    starts = np.cumsum([0] + [t.size for _, t, _ in lines])  # token k of line j is codes[starts[j] + k]
    owner = np.repeat(np.arange(len(lines)), [t.size for _, t, _ in lines])
    counts, times = {}, []
    for q in queries:
        t, p, _ = query_points(q["theme"], ticks_per_quarter=TPQ)
        t0 = time.perf_counter()
        qc = _codes(t, p)
        win = np.lib.stride_tricks.sliding_window_view(codes, qc.size)
        bad = (win != qc).sum(axis=1)
        hits = np.nonzero((bad <= max_mismatch) & ~(win < 0).any(axis=1))[0]
        times.append(time.perf_counter() - t0)
        found = set()
        for h in hits:
            j = owner[h]
            s, lt, lp = lines[j]
            k = h - starts[j]
            found.add((s, int(lt[k] - t[0]), int(lp[k] - p[0])))
        counts.setdefault(q["kind"], []).append({**occurrence_counts(found, q["truth"]), "src": q["source"] in found})
    return counts, times


def run_music21(packed, queries, n_scores: int) -> dict:
    """music21's noteNameRhythmicSearch on the first ``n_scores`` scores, and ours on the same scores."""
    import music21
    from music21.search import WildcardDuration, noteNameRhythmicSearch

    arrays = [np.asarray(packed.notes[packed.offsets[s] : packed.offsets[s + 1]]) for s in range(n_scores)]
    sub = make_pack(arrays, packed.entries[:n_scores])
    parts = []
    for s in range(n_scores):
        score = music21.converter.parse(packed.entries[s].path)
        flats = [p.stripTies().flatten() for p in score.parts]
        first = min(float(n.getOffsetInHierarchy(f)) for f in flats for n in f.notes)
        for flat in flats:
            notes = [n for n in flat.notes if n.isNote and not n.duration.isGrace]
            respelled = [music21.note.Note(n.pitch.midi, quarterLength=n.quarterLength) for n in notes]
            stream = music21.stream.Part(respelled, givenElementsBehavior="append")
            ticks = [round((float(n.getOffsetInHierarchy(flat)) - first) * TPQ) for n in notes]
            parts.append((s, stream, np.array(ticks), [n.pitch.midi for n in notes]))
    rows = {"music21": ([], []), "ours (min_share 1.0)": ([], [])}
    for q in queries:
        truth = brute_force(sub, q["truth_theme"])
        t, p, _ = query_points(q["theme"], ticks_per_quarter=TPQ)
        t0 = time.perf_counter()
        found = set()
        for k in range(12):
            search = [music21.note.Note(n.pitch + k, quarterLength=n.duration) for n in q["theme"].notes]
            search[-1].duration = WildcardDuration()
            for s, notes, ticks, midi in parts:
                for h in noteNameRhythmicSearch(notes.recurse().notes, search):
                    found.add((s, int(ticks[h] - t[0]), int(midi[h] - p[0])))
        rows["music21"][1].append(time.perf_counter() - t0)
        rows["music21"][0].append(occurrence_counts(found, truth))
        t0 = time.perf_counter()
        matches = search_scores(sub, q["theme"], ScoreSearchOptions(min_share=1.0))
        rows["ours (min_share 1.0)"][1].append(time.perf_counter() - t0)
        ours = _reindex(sub, {(m.recording_id, round(m.start_quarter * TPQ), m.extra["semitones"]) for m in matches})
        rows["ours (min_share 1.0)"][0].append(occurrence_counts(ours, truth))
    return rows


def _reindex(packed, keys):
    index = {e.id: i for i, e in enumerate(packed.entries)}
    return {(index[rid], dt, dp) for rid, dt, dp in keys}


def scale_timing(packed, queries, *, sizes, copies) -> list[dict]:
    """Query time (ms) against collection size: subsets, then pitch-shifted copies of the whole collection."""
    arrays = [np.asarray(packed.notes[packed.offsets[s] : packed.offsets[s + 1]]) for s in range(len(packed))]
    rows = []
    plans = [(f"first {n}", arrays[:n], packed.entries[:n]) for n in sizes if n < len(arrays)]
    plans.append(("all", arrays, packed.entries))
    for c in copies:
        big = []
        for i in range(c):
            for a in arrays:
                b = a.copy()
                b["pitch"] = np.clip(b["pitch"] + (i % 7) - 3, 0, 127)
                big.append(b)
        plans.append((f"all x{c} (shifted copies)", big, packed.entries * c))
    for name, arr, entries in plans:
        t0 = time.perf_counter()
        pack = make_pack(arr, list(entries))
        build = time.perf_counter() - t0
        row = {"collection": name, "scores": len(arr), "notes": int(pack.offsets[-1]),
               "pairs": int(pack.postings.size), "index_s": round(build, 2)}  # fmt: skip
        for share in SHARES:
            times = []
            for q in queries:
                t0 = time.perf_counter()
                search_scores(pack, q["theme"], ScoreSearchOptions(min_share=share))
                times.append(time.perf_counter() - t0)
            row[f"ms@{share}"] = round(float(np.median(times)) * 1000, 2)
            row[f"p95ms@{share}"] = round(float(np.percentile(times, 95)) * 1000, 2)
        rows.append(row)
        log.info("%s", row)
        del pack
    return rows


def _accuracy_rows(name: str, counts: dict, times: list) -> list[dict]:
    rows = []
    for kind in ("exact", "changed", "voices", "all"):
        c = [x for k, v in counts.items() for x in v] if kind == "all" else counts.get(kind, [])
        if not c:
            continue
        r = pooled_precision_recall(c)
        rows.append({"method": name, "queries": kind, "n": len(c), "precision": round(r["precision"], 4),
                     "recall": round(r["recall"], 4), "tp": r["tp"], "fp": r["fp"], "fn": r["fn"]})  # fmt: skip
        if all("src" in x for x in c):
            rows[-1]["source_found"] = round(float(np.mean([x["src"] for x in c])), 4)
    rows[-1].update(median_ms=round(float(np.median(times)) * 1000, 2),
                    p95_ms=round(float(np.percentile(times, 95)) * 1000, 2))  # fmt: skip
    return rows


# -- fugues: hand-marked subject entries (benchmarks/build_fugues.py) -------------------------------------------
#: settings of the variant search compared (the default is VariantOptions()); the one reported is chosen on the
#: design fugues: the highest recall with precision >= TARGET_PRECISION
VARIANT_SETTINGS = (
    ("variants (default)", {}),
    ("variants, no context rule", {"context_count": 0}),
    ("variants, in one part only", {"part_change_cost": None}),
    ("variants, first setting (costs 0.4/0.8, one part)", {"pitch_costs": (0.0, 0.4, 0.8), "part_change_cost": None}),
    ("variants, context of 2 exact", {"context_count": 2}),
    ("variants, min_score 0.7", {"min_score": 0.7}),
    ("variants, min_score 0.8", {"min_score": 0.8}),
    ("variants, time scales 1,2", {"time_scales": (1.0, 2.0)}),
    ("variants, time scales 0.5,1,2", {"time_scales": (0.5, 1.0, 2.0)}),
)
TARGET_PRECISION = 0.9


def load_fugues(folder: Path) -> list[dict]:
    """Per fugue (``entries.json`` of build_fugues.py --mark): id, split, piano roll path, subject, entries."""
    out = []
    for entries in sorted(folder.glob("*/entries.json")):
        d = json.loads(entries.read_text())
        theme = Theme(tuple(Note(int(p), q, dur) for q, dur, p in d["subject"]), None, d["id"])
        marked = [c for c in d["candidates"] if c["accepted"]]
        truth = [(c["start_quarter"], c["end_quarter"], c["transposition"]) for c in marked]
        out.append({"id": d["id"], "split": d["split"], "path": str((entries.parent / "staff.mid").resolve()),
                    "theme": theme, "truth": truth, "kinds": [entry_kinds(c) for c in marked]})  # fmt: skip
    return out


def entry_kinds(c: dict) -> tuple[str, ...]:
    """What makes a marked entry differ from the subject: ``tonal`` (pitches changed in its first 3 notes),
    ``mode`` (notes a semitone off later), ``rhythm`` (onset ratios off the entry's own), ``partial`` (notes
    missing); none: ``exact``."""
    kinds = []
    if any(i < 3 for i, _ in c["pitch_changes"]):
        kinds.append("tonal")
    if any(i >= 3 and abs(x) == 1 for i, x in c["pitch_changes"]):
        kinds.append("mode")
    r = np.asarray(c["ioi_ratios"], dtype=np.float64)
    if r.size and np.any(np.abs(r / np.median(r) - 1) > 0.05):
        kinds.append("rhythm")
    if c["matched"] < c["notes"]:
        kinds.append("partial")
    return tuple(kinds) or ("exact",)


def _exact_elsewhere(packed, f: dict) -> list:
    """Exact occurrences of the subject within one part that are not marked entries: the theme itself, so
    neither right nor wrong (a generic subject also stands, note for note, in chorales and other voices)."""
    truth = [(f["path"], s, e, t) for s, e, t in f["truth"]]
    out = []
    for m in search_scores(packed, f["theme"], ScoreSearchOptions(min_share=1.0)):
        key = (m.recording, m.start_quarter, m.end_quarter, m.extra["semitones"])
        if len(m.extra["parts"]) == 1 and not span_occurrence_counts([key], truth)["tp"]:
            out.append(key)
    return out


def fugue_counts(packed, fugues, search) -> tuple[dict, list]:
    """Counts per split (one dict per fugue) and query times; ``search(packed, theme) -> matches``. A found
    occurrence on an exact occurrence of the subject that is not a marked entry is not counted."""
    counts: dict = {}
    times = []
    for f in fugues:
        if "exact" not in f:
            f["exact"] = _exact_elsewhere(packed, f)
        t0, c0 = time.perf_counter(), time.process_time()
        matches = search(packed, f["theme"])
        times.append((time.perf_counter() - t0, time.process_time() - c0))
        found = [(m.recording, m.start_quarter, m.end_quarter, m.extra["semitones"]) for m in matches]
        found = [k for k in found if not span_occurrence_counts([k], f["exact"])["tp"]]
        truth = [(f["path"], s, e, t) for s, e, t in f["truth"]]
        hits = span_matches(found, truth)
        by_kind = {}
        for hit, kinds in zip(hits, f["kinds"], strict=True):
            for k in kinds:
                by_kind.setdefault(k, [0, 0])[0] += int(hit)
                by_kind[k][1] += 1
        row = {**span_occurrence_counts(found, truth), "fugue": f["id"], "found_of_kind": by_kind}
        counts.setdefault(f["split"], []).append(row)
    return counts, times


def _fugue_rows(name: str, counts: dict, times: list) -> list[dict]:
    rows = []
    for split in [s for s in ("design", "test") if s in counts]:
        r = pooled_precision_recall(counts[split])
        kinds: dict = {}
        for c in counts[split]:
            for k, (hit, n) in c["found_of_kind"].items():
                kinds[k] = (kinds.get(k, (0, 0))[0] + hit, kinds.get(k, (0, 0))[1] + n)
        rows.append({"method": name, "split": split, "fugues": len(counts.get(split, [])),
                     "precision": round(r["precision"], 4), "recall": round(r["recall"], 4), "tp": r["tp"],
                     "fp": r["fp"], "fn": r["fn"]})  # fmt: skip
        rows[-1]["recall_by_kind"] = " ".join(f"{k} {h}/{n}" for k, (h, n) in sorted(kinds.items()))
    wall, cpu = np.asarray(times).T * 1000
    rows[-1].update(
        median_ms=round(float(np.median(wall)), 2),
        p95_ms=round(float(np.percentile(wall, 95)), 2),
        median_cpu_ms=round(float(np.median(cpu)), 2),
        max_cpu_ms=round(float(cpu.max()), 2),
    )
    return rows


def run_fugues(args) -> None:
    """The fugue benchmark: each fugue's subject searched in the piano rolls of every fugue and the corpus."""
    fugues = load_fugues(Path(args.fugues))
    store, _ = build_store([Path(f["path"]) for f in fugues] + corpus_files(args.scores), Path(args.store))
    packed = store.packed()
    fugues = [f for f in fugues if args.split in ("both", f["split"])]  # every fugue stays in the collection
    methods = [
        ("point-set exact (P1)", lambda pk, th: search_scores(pk, th, ScoreSearchOptions(min_share=1.0))),
        (
            "point-set, min_share 0.9 (P2)",
            lambda pk, th: search_scores(pk, th, ScoreSearchOptions(min_share=0.9, partial_parts=1)),
        ),
    ]
    for name, kw in VARIANT_SETTINGS:
        opts = VariantOptions(**kw)
        methods.append((name, lambda pk, th, o=opts: search_variants(pk, th, o)))
    search_variants(packed, fugues[0]["theme"])  # compile the kernels
    rows, per_fugue = [], {}
    for name, fn in methods:
        counts, times = fugue_counts(packed, fugues, fn)
        rows += _fugue_rows(name, counts, times)
        per_fugue[name] = counts
    design = [r for r in rows if r["split"] == "design" and r["method"].startswith("variants")]
    chosen = (
        next((r["method"] for r in design if r["precision"] >= TARGET_PRECISION), design[-1]["method"])
        if design
        else None
    )
    cols = ["method", "split", "fugues", "precision", "recall", "tp", "fp", "fn", "median_ms", "p95_ms",
            "median_cpu_ms", "max_cpu_ms", "recall_by_kind"]  # fmt: skip
    print_table(rows, cols)
    print(f"\nthreshold chosen on the design fugues (precision >= {TARGET_PRECISION}): {chosen}")
    payload = {
        "command": "python benchmarks/bench_score_search.py --fugues " + args.fugues + f" --scores {args.scores}"
        + f" --store {args.store} --split {args.split}",
        "collection": {"scores": len(packed), "notes": int(packed.offsets[-1]), "fugues": len(fugues)},
        "load_average_at_end": os.getloadavg(),
        "entries": {s: sum(len(f["truth"]) for f in fugues if f["split"] == s) for s in ("design", "test")},
        "fugues": {s: [f["id"] for f in fugues if f["split"] == s] for s in ("design", "test")},
        "chosen_on_design": chosen,
        "rows": rows,
        "per_fugue": per_fugue,
    }  # fmt: skip
    print(f"wrote {write_results(f'score_search_fugues_{args.split}', payload)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scores", type=int, default=700, help="score files from the music21 corpus")
    ap.add_argument("--queries", type=int, default=60, help="queries of each kind")
    ap.add_argument("--music21-scores", type=int, default=40, help="scores searched by the music21 baseline")
    ap.add_argument("--music21-queries", type=int, default=10, help="queries of each kind for music21")
    ap.add_argument("--copies", default="5,15", help="collection copies for the timing table")
    ap.add_argument("--store", default="data/bench_scores", help="where the score store is kept")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fugues", help="folder of build_fugues.py: run the fugue benchmark instead")
    ap.add_argument("--split", choices=("design", "test", "both"), default="both", help="fugues queried")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.fugues:
        return run_fugues(args)
    files = corpus_files(args.scores)
    store, read_s = build_store(files, Path(args.store))
    packed = store.packed()
    lines = _lines(packed)
    rng = np.random.default_rng(args.seed)
    queries = sample_queries(packed, lines, args.queries, rng)
    t0 = time.perf_counter()
    for q in queries:
        q["truth"] = brute_force(packed, q["truth_theme"])
    brute_ms = (time.perf_counter() - t0) / len(queries) * 1000
    search_scores(packed, queries[0]["theme"])  # compile / load the numba kernels
    accuracy = []
    for share, missing, parts, weight in SETTINGS:
        options = ScoreSearchOptions(min_share=share, max_missing=missing, partial_parts=parts, changed_weight=weight)
        name = f"point-set, min_share {share}" + ("" if missing is None else f", max_missing {missing}")
        name += ("" if parts is None else f", partial_parts {parts}") + (f", changed_weight {weight}" if weight else "")
        accuracy += _accuracy_rows(name, *run_ours(packed, queries, options))
    accuracy += _accuracy_rows("interval string, exact", *run_interval_strings(lines, queries, max_mismatch=0))
    accuracy += _accuracy_rows("interval string, 2 differ", *run_interval_strings(lines, queries, max_mismatch=2))
    kinds = ("exact", "changed", "voices")
    m21_queries = [q for k in kinds for q in [x for x in queries if x["kind"] == k][: args.music21_queries]]
    m21 = run_music21(packed, m21_queries, args.music21_scores)
    baseline = []
    for name, (counts, times) in m21.items():
        by_kind: dict = {}
        for q, c in zip(m21_queries, counts, strict=True):
            by_kind.setdefault(q["kind"], []).append(c)
        baseline += _accuracy_rows(name, by_kind, times)
    copies = [int(c) for c in args.copies.split(",") if c]
    timing = scale_timing(packed, queries[: 3 * 10], sizes=(100, 300), copies=copies)
    cols = ["method", "queries", "n", "precision", "recall", "source_found", "tp", "fp", "fn", "median_ms", "p95_ms"]
    print_table(accuracy, cols)
    print()
    print_table(baseline, cols)
    print()
    print_table(timing, list(timing[0]))
    payload = {
        "command": "python benchmarks/bench_score_search.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "collection": {"scores": len(packed), "notes": int(packed.offsets[-1]), "pairs": int(packed.postings.size),
                       "failed": len(store.failures()), "read_seconds_this_run": round(read_s, 1)},
        "queries": {k: sum(q["kind"] == k for q in queries) for k in kinds},
        "reference_occurrences": {k: sum(len(q["truth"]) for q in queries if q["kind"] == k) for k in kinds},
        "brute_force_ms_per_query": round(brute_ms, 2),
        "accuracy": accuracy,
        "music21_subset": {"scores": args.music21_scores, "rows": baseline},
        "timing": timing,
    }  # fmt: skip
    print(f"\nwrote {write_results('score_search', payload)}")


if __name__ == "__main__":
    main()
