"""Audio -> sheet music benchmark (issue 22): system detection, page + system search, snippet retrieval.

    nice -n 10 .venv/bin/python benchmarks/bench_sheets.py --out benchmarks/results/sheets_notation.json
    nice -n 10 .venv/bin/python benchmarks/bench_sheets.py --method learned --out benchmarks/results/sheets.json

Test material: the LilyPond (Mutopia) pieces of data/sheets, an engraver, pieces and a SoundFont
(MuseScore General) never used in training or tuning (the model is trained on verovio engravings of music21
works with FluidR3_GM and TimGM6mb; the optical reading's constants were chosen on verovio pages).

``--method notation`` (the served method): the optical reading of ``mirsearch.features.notation`` matched to
the query's chroma (``mirsearch.search.sheets.search_sheets_notation``); tables 1 and 3.
``--method learned``: the two-branch model; tables 1-3.

1. **Staff / system detection** on every test page against the system boxes of the engraving: a true system
   is found when a detected system overlaps it vertically by more than half of the union; boundary error in
   staff spaces.
2. **Snippet pairs** (the seed's table): ``--pairs`` (note head, rendering) pairs drawn without replacement;
   each audio excerpt (2, 4, 8 s centred on the onset) ranks all sheet snippets of the pool; R@1, R@5, R@25,
   MRR, median rank.
3. **Page + system search** over whole pages: every test page in one sheet store (detected systems, sliding
   windows, HNSW), ``--queries`` excerpts of 2, 4 and 8 s at random times of the test renderings; correct when
   the first match is the right page and its box is the system holding the note sounding at the excerpt's
   middle.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from mirsearch.datasets.sheets import load_piece
from mirsearch.datasets.sheets_build import load_manifest
from mirsearch.evaluation.metrics import hit_at_k, reciprocal_rank
from mirsearch.models.sheets import DEFAULT_BUNDLE, SheetBundle
from mirsearch.training.sheets import audio_excerpt, sheet_snippet

log = logging.getLogger("bench_sheets")
SEED_TABLE = {  # Dorfer et al. (TISMIR 2018) on MSMD, 10,000 snippet pairs (seed 003)
    "CNN 2 s (seed)": {"r1": 0.489, "mrr": 0.57},
    "CNN 8 s + attention (seed)": {"r1": 0.667, "r5": 0.844, "r25": 0.912, "mrr": 0.75},
}
LENGTHS = (2.0, 4.0, 8.0)


def _overlap(a, b) -> float:
    """Vertical intersection over union of two boxes (x0, y0, x1, y1)."""
    inter = min(a[3], b[3]) - max(a[1], b[1])
    union = max(a[3], b[3]) - min(a[1], b[1])
    return max(inter, 0) / max(union, 1e-9)


def bench_detection(pieces: list[dict]) -> dict:
    from PIL import Image

    from mirsearch.features.staff import detect_layout

    found = n_true = n_detected = 0
    errors = []
    for piece in pieces:
        for page in piece["pages"]:
            layout = detect_layout(np.asarray(Image.open(Path(piece["root"]) / page["image"]).convert("L")))
            boxes = [s.box for s in layout.systems]
            n_true += len(page["systems"])
            n_detected += len(boxes)
            for truth in page["systems"]:
                best = max(boxes, key=lambda b, t=truth: _overlap(b, t), default=None)
                if best is not None and _overlap(best, truth) > 0.5:
                    found += 1
                    errors.append(max(abs(best[1] - truth[1]), abs(best[3] - truth[3])) / layout.staff_space)
    return {
        "pages": sum(len(p["pages"]) for p in pieces),
        "true_systems": n_true,
        "detected_systems": n_detected,
        "recall": found / max(n_true, 1),
        "precision": found / max(n_detected, 1),
        "median_boundary_error_spaces": float(np.median(errors)) if errors else None,
        "p95_boundary_error_spaces": float(np.percentile(errors, 95)) if errors else None,
    }


def _rank_metrics(ranks: np.ndarray) -> dict:
    return {
        "n": int(len(ranks)),
        "r1": float(np.mean([hit_at_k(int(r), k=1) for r in ranks])),
        "r5": float(np.mean([hit_at_k(int(r), k=5) for r in ranks])),
        "r25": float(np.mean([hit_at_k(int(r), k=25) for r in ranks])),
        "mrr": float(np.mean([reciprocal_rank(int(r)) for r in ranks])),
        "median_rank": float(np.median(ranks)),
    }


def _ranks(a: np.ndarray, s: np.ndarray, offset: int) -> np.ndarray:
    """1-based rank of sheet ``offset + i`` for audio row ``i`` among all sheets (ties count against)."""
    sim = a @ s.T
    own = sim[np.arange(len(a)), offset + np.arange(len(a))]
    return 1 + (sim > own[:, None]).sum(axis=1)


def bench_pairs(cached: list, bundle: SheetBundle, n_pairs: int, seed: int = 0) -> dict:
    """Snippet-pair retrieval for each audio length (the seed's protocol)."""
    cfg = bundle.config
    combos = [(k, i, r) for k, p in enumerate(cached) for i in range(len(p.head_x)) for r in range(len(p.specs))]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(combos), size=min(n_pairs, len(combos)), replace=False)
    chosen = [combos[j] for j in pick]
    S = np.stack([sheet_snippet(cached[k].strips[cached[k].head_strip[i]], cached[k].head_x[i], width=cfg.snippet_width)
                  for k, i, _ in chosen])  # fmt: skip
    s = bundle.embed_sheet(S)
    out = {}
    for seconds in LENGTHS:
        frames = int(round(seconds * cfg.feature_rate))
        A = np.stack([audio_excerpt(cached[k].specs[r], cached[k].head_onset[i] / cached[k].tempos[r], frames=frames,
                                    feature_rate=cfg.feature_rate) for k, i, r in chosen])  # fmt: skip
        a = bundle.embed_audio(A)
        ranks = np.concatenate([_ranks(a[b : b + 500], s, b) for b in range(0, len(a), 500)])
        out[f"{seconds:g}s"] = _rank_metrics(ranks)
        log.info("pairs %gs: %s", seconds, out[f"{seconds:g}s"])
    return out


def _truth_system(piece: dict, t_score: float) -> tuple[int, int]:
    """(page, system) of the note whose onset (score time) is nearest ``t_score``."""
    onsets = np.asarray(piece["notes"]["onset"])
    i = int(np.argmin(np.abs(onsets - t_score)))
    return int(piece["notes"]["page"][i]), int(piece["notes"]["system"][i])


def bench_search(rows: list[dict], pieces: list[dict], reader, search, n_queries: int, seed: int = 0) -> dict:
    """Page + system accuracy of the search over all pages of ``pieces`` (one sheet store read by ``reader``).

    ``search(store, samples, sr)`` returns the matches. Correct: the first match is on the page and its box
    overlaps (vertical IoU > 0.5) the system of the note whose onset is nearest the excerpt's middle.
    """
    from mirsearch.audio import load_audio
    from mirsearch.index.sheets import SheetStore

    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="bench-sheets-") as tmp:
        store = SheetStore(Path(tmp) / "store")
        t0 = time.monotonic()
        report = store.update([Path(p["root"]) for p in pieces], reader)
        build = {"pages": report.pages, "windows": report.windows, "seconds": round(time.monotonic() - t0, 1)}
        log.info("store: %s", build)
        page_file = {(Path(it["path"]).parent.name, Path(it["path"]).name): it["number"] for it in store.items()}
        out = {"store": build}
        audio = {}
        for seconds in LENGTHS:
            hits, page_hits, n, elapsed = 0, 0, 0, []
            for _ in range(n_queries):
                k = int(rng.integers(len(pieces)))
                piece, row = pieces[k], rows[k]
                font, tempo, rel = row["renders"][int(rng.integers(len(row["renders"])))]
                if (k, rel) not in audio:
                    audio[(k, rel)] = load_audio(Path(row["dir"]) / rel, sr=22050)[0]
                y = audio[(k, rel)]
                start = rng.uniform(0, max(len(y) / 22050 - seconds - 1.0, 0.01))
                excerpt = y[int(start * 22050) : int((start + seconds) * 22050)]
                page, system = _truth_system(piece, (start + seconds / 2) * tempo)
                truth_box = piece["pages"][page]["systems"][system]
                t1 = time.perf_counter()
                matches = search(store, excerpt, 22050)
                elapsed.append(time.perf_counter() - t1)
                n += 1
                if not matches:
                    continue
                m = matches[0]
                same_page = m.recording_id == page_file[(Path(row["dir"]).name, piece["pages"][page]["image"])]
                page_hits += same_page
                hits += same_page and _overlap(m.box, truth_box) > 0.5
            out[f"{seconds:g}s"] = {"queries": n, "page_system_r1": hits / n, "page_r1": page_hits / n,
                                    "median_ms": round(1e3 * float(np.median(elapsed)), 1)}  # fmt: skip
            log.info("search %gs: %s", seconds, out[f"{seconds:g}s"])
    return out


def _learned(args, rows, pieces, result) -> None:
    """The two-branch model: snippet pairs and the voting search (``--method learned``)."""
    from mirsearch.index.sheets import LearnedReader
    from mirsearch.search.sheets import SheetSearchOptions, search_sheets
    from mirsearch.training.sheets import cache_piece, load_cached

    bundle = SheetBundle.load(args.bundle)
    result.update({"bundle": bundle.model_id, "training": bundle.info, "seed_table": SEED_TABLE})
    cache_dir = Path(args.corpus) / "cache"
    cached = [load_cached(p, r["id"]) for r in rows if (p := cache_piece(r, cache_dir)) is not None]
    result["pairs"] = bench_pairs(cached, bundle, args.pairs)
    if not args.pairs_only:

        def search(store, y, sr):
            return search_sheets(store, bundle, y, sr, SheetSearchOptions(top=1))

        result["search"] = bench_search(rows, pieces, LearnedReader(bundle), search, args.queries)


def _notation(args, rows, pieces, result) -> None:
    """The optical reading matched by subsequence DTW (``--method notation``, the served method)."""
    from mirsearch.index.sheets import NotationReader
    from mirsearch.search.sheets import NotationSearchOptions, search_sheets_notation

    options, reader = NotationSearchOptions(top=1), NotationReader()
    result["options"] = {"rates": list(options.rates), "gamma": options.gamma, "reader": reader.model_id,
                         "hold_spaces": reader.hold_spaces}  # fmt: skip

    def search(store, y, sr):
        return search_sheets_notation(store, y, sr, options)

    result["search"] = bench_search(rows, pieces, reader, search, args.queries)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="data/sheets")
    ap.add_argument("--method", default="notation", choices=("notation", "learned"))
    ap.add_argument("--bundle", default=str(DEFAULT_BUNDLE), help="learned: the model bundle")
    ap.add_argument("--pairs", type=int, default=10000, help="learned: snippet pairs")
    ap.add_argument("--queries", type=int, default=300, help="search queries per excerpt length")
    ap.add_argument("--split", default="test", choices=("test", "val", "train"),
                    help="test: LilyPond + MuseScore General; val/train: verovio works")  # fmt: skip
    ap.add_argument("--pairs-only", action="store_true", help="learned: only the snippet-pair table")
    ap.add_argument("--no-detection", action="store_true",
                    help="skip the staff-detection accuracy table (the search always reads detected systems, as "
                         "mirsearch index does: no engraving geometry)")  # fmt: skip
    ap.add_argument("--out", default="benchmarks/results/sheets.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    import torch

    torch.set_num_threads(1)
    rows = [r for r in load_manifest(args.corpus) if r["split"] == args.split]
    pieces = [load_piece(r["dir"]) for r in rows]
    result = {"method": args.method, "split": args.split, "test_pieces": len(rows)}
    if not (args.pairs_only or args.no_detection):
        result["detection"] = bench_detection(pieces)
        log.info("detection: %s", result["detection"])
    (_learned if args.method == "learned" else _notation)(args, rows, pieces, result)
    Path(args.out).write_text(json.dumps(result, indent=1))
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
