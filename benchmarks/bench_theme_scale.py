"""Theme cascade against the exhaustive search as the collection grows (learned chroma, real distractors).

The database is the learned theme chroma of one split of ``--dataset`` (``--split``, default test) plus
*distractors*: every recording of the ``--distractors`` collections (other works: e.g. the other splits
of the benchmark and a build of further corpus works; recordings of the queried split are left out),
concatenated in memory (independent music, not transposed copies). Each collection must hold learned
features (``mirsearch index ... --features learned``).

Queries: the split's themes (every ``--theme-step``-th; the validation split for choosing parameters),
relevant: the split's recordings in which the manifest annotates the theme. Per theme the exhaustive
:func:`mirsearch.search.theme.search_theme` and the :func:`mirsearch.search.cascade.cascade_search_theme`
variants run on the same database (top 10, one match per recording), as a user of that collection
would call them. The table gives Top-1 / MRR, the time per theme and the paired difference to the
exhaustive search (95 % bootstrap intervals, themes lost
/ won, exact sign test). Writes ``benchmarks/results/<--name>.json``.

    python benchmarks/bench_theme_scale.py --dataset data/bench \\
        --distractors data/bench/collections/learned-train-validation.mirs,data/distract/learned.mirs
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirsearch.evaluation.metrics import hit_at_k, reciprocal_rank

from _common import accuracy_row, paired_columns, print_table, write_results


@dataclass
class _Recording:
    id: int
    path: str
    duration: float


class MemoryCollection:
    """Learned-chroma database of several collections in memory, behind the Collection interface the searches use."""

    def __init__(self, parts):
        Ys, recs, rate = [], [], None
        for Y, offsets, rlist, r in parts:
            rate = r if rate is None else rate
            if abs(r - rate) > 1e-9:
                raise SystemExit(f"feature rates differ: {r} vs {rate}")
            for i, rec in enumerate(rlist):
                Ys.append(Y[offsets[i] : offsets[i + 1]])
                recs.append(_Recording(len(recs) + 1, rec.path, (offsets[i + 1] - offsets[i]) / r))
        self.Y = np.ascontiguousarray(np.concatenate(Ys))
        self.offsets = np.concatenate([[0], np.cumsum([len(y) for y in Ys])]).astype(np.int64)
        self.recs, self.rate = recs, float(rate)

    def database(self, kind: str = "learned"):
        if kind != "learned":
            raise ValueError(f"this benchmark database holds learned chroma, not {kind!r}")
        return self.Y, self.offsets, self.recs, self.rate

    def generation(self) -> int:
        return 0

    def recordings(self):
        return self.recs


def load_parts(args):
    """(Y, offsets, recordings, rate) of the test collection and of every distractor collection."""
    from mirsearch.collection import Collection

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_shingles import _learned_collection

    coll, view = _learned_collection(args.dataset, args.split, jobs=args.jobs)
    parts = [coll.database("learned")]
    split_paths = {r.path for r in parts[0][2]}
    themes = []
    by_path = {r.path: r for r in parts[0][2]}
    path_of_version = {v.version_id: str(v.path.resolve()) for v in view}
    for tid, th in sorted(view.themes.items()):
        rel = {path_of_version[v] for v in view.relevant_versions(tid) if path_of_version.get(v) in by_path}
        if rel:
            themes.append((th.to_theme(), rel))
    coll.close()
    for path in [p for p in args.distractors.split(",") if p]:
        with Collection.open(path, readonly=True) as dc:
            Y, offsets, recs, rate = dc.database("learned")
            keep = [i for i, r in enumerate(recs) if r.path not in split_paths]  # the query split's are in already
            Yk = np.concatenate([Y[offsets[i] : offsets[i + 1]] for i in keep])
            off = np.concatenate([[0], np.cumsum([offsets[i + 1] - offsets[i] for i in keep])]).astype(np.int64)
            parts.append((Yk, off, [recs[i] for i in keep], rate))
            print(f"distractors {path}: {len(keep)} recordings, {off[-1] / rate / 3600:.1f} h", flush=True)
    return parts, themes[:: args.theme_step], split_paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="data/bench")
    parser.add_argument("--split", default="test", help="split whose themes are queried (validation: choices)")
    parser.add_argument("--distractors", default="", help="comma-separated collections with learned features")
    parser.add_argument("--theme-step", type=int, default=1, help="every n-th test theme")
    parser.add_argument(
        "--cascades",
        default="notes-only,notes",
        help="cascade variants: notes (note index + alignment, the default) | notes-only | align, each with "
        "optional ':candidates' (default 32), ':fallback' (exhaustive | coarse) and ':threshold' (of the notes)",
    )
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--name", default="theme_scale")
    args = parser.parse_args()

    from mirsearch.index.notes import note_index
    from mirsearch.search.cascade import cascade_from_spec, cascade_search_theme
    from mirsearch.search.theme import search_theme

    load_start = [round(x, 2) for x in os.getloadavg()]
    parts, themes, split_paths = load_parts(args)
    t0 = time.perf_counter()
    coll = MemoryCollection(parts)
    hours = coll.offsets[-1] / coll.rate / 3600
    t1 = time.perf_counter()
    nidx = note_index(coll, features="learned")
    note_index_s = time.perf_counter() - t1
    print(
        f"{len(coll.recs)} recordings, {hours:.1f} h ({len(split_paths)} of the {args.split} split), "
        f"{len(nidx.pc)} notes, {len(nidx)} index windows ({note_index_s:.1f} s); {len(themes)} themes",
        flush=True,
    )
    variants: list[tuple[str, dict | None]] = [("exhaustive", None)]
    for spec in [s for s in args.cascades.split(",") if s]:
        kind, cand, fallback, threshold = (spec.split(":") + ["", "", ""])[:4]
        if kind not in ("notes", "notes-only", "align"):
            raise SystemExit(f"unknown cascade {kind!r}: notes, notes-only or align")
        opts = {"proposal": "align" if kind == "align" else "notes", "candidates": int(cand or 32)}
        if kind == "notes-only":
            opts["align"] = False
        if fallback:
            opts["fallback"] = fallback
        if threshold:  # note extraction threshold of the note index (mirsearch.index.notes.NOTE_THRESHOLD)
            opts["note_options"] = {"threshold": float(threshold)}
        name = f"{kind}-{opts['candidates']}" + (f"-{fallback}" if fallback else "")
        variants.append((name + (f"-t{threshold}" if threshold else ""), opts))
    rows, per_query = [], {}
    for name, opts in variants:

        def search(theme, opts=opts, stats=None):
            if opts is None:
                return search_theme(coll, theme, top=10, per_recording=1, features="learned")
            cascade = cascade_from_spec(opts)
            return cascade_search_theme(
                coll, theme, cascade=cascade, top=10, per_recording=1, features="learned", stats=stats
            )

        search(themes[0][0])  # compile / warm up
        top1, rr, times, firsts, fallbacks, prop_ms = [], [], [], [], [], []
        for theme, rel in themes:
            stats: dict = {}
            t = time.perf_counter()
            matches = search(theme, stats=stats)
            times.append(time.perf_counter() - t)
            ranked = list(dict.fromkeys(m.recording for m in matches))
            firsts.append(ranked[0] if ranked else None)
            rank = next((i for i, p in enumerate(ranked, 1) if p in rel), None)
            top1.append(float(hit_at_k(rank)))
            rr.append(reciprocal_rank(rank))
            fallbacks.append(bool(stats.get("fallback")))
            if "proposal_ms" in stats:
                prop_ms.append(stats["proposal_ms"])
        per_query[name] = (top1, rr, firsts)
        row = {
            **accuracy_row(name, top1, rr, times),
            "proposal_ms": round(float(np.mean(prop_ms)), 2) if prop_ms else None,
            "fallback_share": round(float(np.mean(fallbacks)), 4),
        }
        rows.append(row)
        print_table([row], list(row))
        print(flush=True)
    ref_top1, ref_rr, ref_first = per_query["exhaustive"]
    for row in rows:
        top1, rr, firsts = per_query[row["method"]]
        row["speedup"] = round(rows[0]["mean_ms"] / row["mean_ms"], 1)
        row["same_top1"] = round(float(np.mean([a == b for a, b in zip(firsts, ref_first, strict=True)])), 4)
        row.update(paired_columns(ref_top1, ref_rr, top1, rr))
    cols = ["method", "Top-1", "MRR", "mean_ms", "median_ms", "speedup", "fallback_share", "same_top1"]
    print_table(rows, [*cols, "dTop-1", "lost/won", "p_sign", "dMRR"])
    path = write_results(
        args.name,
        {
            "command": "python benchmarks/bench_theme_scale.py " + " ".join(sys.argv[1:]),
            "load_average_start": load_start,
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "hours": round(float(hours), 2),
            "split": args.split,
            "split_recordings": len(split_paths),
            "recordings": len(coll.recs),
            "notes": int(len(nidx.pc)),
            "note_index_windows": int(len(nidx)),
            "note_index_s": round(note_index_s, 2),
            "database_s": round(t1 - t0, 2),
            "themes": len(themes),
            "rows": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
