"""Confidence of theme matches on collections the model never saw: can a search say "nothing good here"?

Protocol. The works of a dataset split are split in two halves by *family* (works sharing a tune stay
together), and each half is a collection of its own (``build``: the features are copied from the dataset's
feature cache or from an indexed collection of the split, never recomputed). Every theme of the split is then
searched, with the default search (auto features, auto cascade), in both halves (``collect``): in the half
that holds a version where it occurs it is *present*, in the other it is *absent* (a theme whose tune occurs in
both halves is present in both). An absent theme whose pitch-class steps occur literally in some part of a work
of that collection (:class:`LiteralCheck`) is not counted as a negative (a row counts them anyway). Each
search's matches, its statistics and the per-query null (:func:`mirsearch.search.confidence.null_costs`) are
cached per theme as JSON under ``DATASET/cache/confidence/``, so runs resume and refits are instant.

Positives are present searches whose top-1 recording holds the theme; negatives are the top-1 of absent searches.
``fit`` fits the confidence model (:mod:`mirsearch.search.confidence`; for the kinds in ``--standout`` with the
match's standouts over the query's background and over its best null theme) on the validation split and evaluates it on
the test split (both halves reported): ROC-AUC, and at the default threshold the share of absent themes
answered "no confident match" and of the present top-1 hits still shown. ``--split test+validation`` adds the
validation recordings to both halves (larger collections); ``--whole`` builds and searches one collection of every
work (present themes only); ``latency`` times the search and the confidence of every 10th theme.
``--query-tail``: the searches' query tail (default: the service's, :func:`mirsearch.search.theme.default_query_tail`;
``off``; or ``BETA,TAU``), whose caches are kept apart.

    nice -n 10 .venv/bin/python benchmarks/bench_confidence.py build --dataset data/bench --split validation
    nice -n 10 .venv/bin/python benchmarks/bench_confidence.py build --dataset data/bench --split test \\
        --source data/bench/collections/learned-test.mirs
    nice -n 10 .venv/bin/python benchmarks/bench_confidence.py collect --dataset data/bench --split validation
    nice -n 10 .venv/bin/python benchmarks/bench_confidence.py collect --dataset data/bench --split test
    .venv/bin/python benchmarks/bench_confidence.py fit --dataset data/bench [--refit --write-model]
    .venv/bin/python benchmarks/bench_confidence.py fit --dataset data/bench --features chroma --refit --keep 0.90 \
        --write-model --name confidence_chroma_fit    # chroma's model (with the standouts, --standout chroma)
    .venv/bin/python benchmarks/bench_confidence.py latency --dataset data/bench --split test --features learned
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mirsearch._util import atomic_write_text  # noqa: E402
from mirsearch.collection import Collection  # noqa: E402
from mirsearch.datasets.manifest import Dataset  # noqa: E402

log = logging.getLogger("bench_confidence")

HALVES = ("a", "b")
WHOLE = ("all",)  # --whole: one collection of every work (every theme present)
#: the service's options (mirsearch.service.theme): shown matches plus the background recordings
TOP, PER_RECORDING = 10, 3
#: version of the null's protocol (region, themes): cached rows of another are given a new null
NULL_PROTOCOL = 4
#: suffix of the collections and caches of a candidate learned-chroma bundle (``--bundle``; "" for the shipped one)
TAG = ""
#: the query tail of the searches (``--query-tail``): "default" (the service's per feature kind), "off" or (beta, tau)
QUERY_TAIL: str | tuple[float, float] = "default"


def use_bundle(path: str | None) -> None:
    """Make the bundle at ``path`` this process's default learned chroma (a candidate, before it ships)."""
    global TAG
    if path:
        import mirsearch.models.bundle as bundle_mod
        from mirsearch.features.learned import default_bundle_id

        bundle_mod.DEFAULT_BUNDLE = str(Path(path).resolve())  # BUNDLES_DIR / absolute path = the path
        TAG = f"-m{default_bundle_id()}"


def query_tail(features: str) -> tuple[float, float] | None:
    """The query tail the searches on ``features`` use (:data:`QUERY_TAIL`)."""
    from mirsearch.search.theme import default_query_tail

    if QUERY_TAIL == "default":
        return default_query_tail(features)
    return None if QUERY_TAIL == "off" else QUERY_TAIL


def _tail_tag(features: str) -> str:
    """Suffix of the caches of searches with a query tail ("" without)."""
    tail = query_tail(features)
    return "" if tail is None else f"-tail{tail[0]:g}-{tail[1]:g}"


# -- collections ----------------------------------------------------------------------------------------------
def family_halves(view: Dataset, seed: int) -> dict[str, str]:
    """Work id -> half ("a" or "b"): families (works sharing a tune) shuffled and dealt alternately."""
    families = sorted({w.family for w in view.works.values()})
    order = np.random.default_rng(seed).permutation(len(families))
    half_of = {families[j]: HALVES[k % 2] for k, j in enumerate(order)}
    return {wid: half_of[w.family] for wid, w in view.works.items()}


def views(dataset: str, split: str) -> tuple[Dataset, Dataset, list[str]]:
    """``split`` ("test", or "test+validation": the validation split's works added to both halves as distractors):
    the view of its first split, the view of all its splits and the works of the added splits."""
    main, *extra = split.split("+")
    ds = Dataset.load(dataset)
    view = ds.split(main)
    full = Dataset(ds.root, ds.manifest, splits=[main, *extra]) if extra else view
    return view, full, [w for w in full.works if w not in view.works]


def _seed_tag(seed: int) -> str:
    """Suffix of the collections and caches of the family halves drawn with ``seed`` ("" for seed 0)."""
    return f"-s{seed}" if seed else ""


def collection_path(dataset: str, split: str, half: str, seed: int = 0) -> Path:
    return Path(dataset) / "collections" / f"confidence-{split}-{half}{TAG}{_seed_tag(seed)}.mirs"


def _feature_source(dataset: str, split: str, source: str | None):
    """``features(version, kind) -> array``: from an indexed collection of the split, else the feature cache.

    With a candidate bundle (``--bundle``) learned chroma always comes from the feature cache
    (``bench_learned_chroma.py --bundle`` fills it); standard chroma is the current one if the cache has it."""
    from bench_learned_chroma import _vkey, chroma_tag

    cache = Path(dataset) / "cache" / "bench_features" / split
    from mirsearch.features import registry

    def folder(kind: str) -> Path:
        config = registry.feature_config(kind, feature_rate=10.0)
        key = config["model"] if kind == "learned" else registry.config_key(config)
        found = sorted(cache.glob(f"{kind}-{key}*"))
        if (cache / f"{kind}-{key}").is_dir():  # the exact folder, not a variant's (e.g. "-tta1")
            found = [cache / f"{kind}-{key}"]
        if kind == "chroma" and (cache / chroma_tag()).is_dir():
            found = [cache / chroma_tag()]
        if len(found) != 1:
            raise SystemExit(f"{cache}: expected one {kind}-{key}* folder, found {len(found)}")
        return found[0]

    from_cache = {"learned"} if TAG else set()
    if source:
        coll = Collection.open(source, readonly=True)
        by_path = {str(Path(r.path).resolve()): r.id for r in coll.recordings()}
        tags = {kind: folder(kind) for kind in from_cache}

        def read(v, kind):
            if kind in tags:
                return np.load(tags[kind] / f"{_vkey(v.version_id)}.npy")
            return coll.load_features(by_path[str(Path(v.path).resolve())], kind)[0]

        return read
    tags = {kind: folder(kind) for kind in ("chroma", "learned")}
    return lambda v, kind: np.load(tags[kind] / f"{_vkey(v.version_id)}.npy")


def build(args) -> None:
    from mirsearch.collection.extract import FileResult, sha1_of

    view, full, extra = views(args.dataset, args.split)
    halves = {**family_halves(view, args.seed), **{w: "both" for w in extra}}
    if args.whole:
        halves = dict.fromkeys(halves, "both")
    sources = {s: _feature_source(args.dataset, s, args.source if s == view.split_names[0] else None)
               for s in full.split_names}  # fmt: skip
    for half in WHOLE if args.whole else HALVES:
        versions = {str(v.path.resolve()): v for v in full if halves[v.work_id] in (half, "both") and v.path.is_file()}

        def produce(todo, configs, versions=versions):
            for path, _ in todo:
                v = versions[str(Path(path).resolve())]
                feats = [(np.ascontiguousarray(sources[v.split](v, c["kind"]), dtype=np.float32), 10.0)
                         for c in configs]  # fmt: skip
                yield FileResult("ok", path, sha1_of(path), float(v.duration), feats)

        path = collection_path(args.dataset, args.split, half, args.seed)
        with Collection.create(path, features=["chroma", "learned"]) as coll:
            report = coll.add(sorted(versions), producer=produce)
            print(f"{path}: {len(report.added)} added, {len(report.unchanged)} unchanged, "
                  f"{len(report.failed)} failed; {len(coll.recordings())} recordings")  # fmt: skip


# -- searches -------------------------------------------------------------------------------------------------
def cache_dir(dataset: str, split: str, half: str, features: str, seed: int = 0) -> Path:
    return (
        Path(dataset) / "cache" / "confidence" / f"{split}-{half}{TAG}{_seed_tag(seed)}{_tail_tag(features)}" / features
    )


def _search(coll, theme, features: str) -> tuple[list, dict]:
    """The default search's matches and statistics (as :func:`mirsearch.service.theme.run_theme` runs it)."""
    from mirsearch.search.cascade import THEME_PRESETS, cascade_search_theme
    from mirsearch.search.confidence import BACKGROUND
    from mirsearch.search.theme import search_theme
    from mirsearch.service.theme import resolve_cascade

    cascade = resolve_cascade("auto", features)
    options = {"top": TOP + BACKGROUND * PER_RECORDING, "per_recording": PER_RECORDING, "features": features,
               "query_tail": query_tail(features)}  # fmt: skip
    stats: dict = {}
    if cascade == "exhaustive":
        return search_theme(coll, theme, **options), stats
    preset = THEME_PRESETS[cascade].with_candidates(32)
    return cascade_search_theme(coll, theme, cascade=preset, stats=stats, **options), stats


def _one(coll, view, theme_info, features: str) -> dict:
    theme = theme_info.to_theme()
    t0 = time.perf_counter()
    matches, stats = _search(coll, theme, features)
    t1 = time.perf_counter()
    vid_of = {r.id: Path(r.path).stem for r in coll.recordings()}
    relevant = view.relevant_versions(theme_info.theme_id)
    row = {
        "theme": theme_info.theme_id, "work": theme_info.work_id, "notes": len(theme.notes),
        "present": bool(relevant & set(vid_of.values())),
        "relevant_ids": sorted(rid for rid, vid in vid_of.items() if vid in relevant),
        "matches": [[m.recording_id, m.cost, m.start, m.end, m.transposition, m.extra.get("tempo_factor", 1.0)]
                    for m in matches],
        "fallback": stats.get("fallback"), "candidates": stats.get("candidates"),
        "search_ms": (t1 - t0) * 1000, "n_recordings": len(vid_of),
    }  # fmt: skip
    _add_null(coll, theme, features, row)
    return row


def _add_null(coll, theme, features: str, row: dict) -> None:
    """The product's null (:func:`null_costs` in the region of the best match) and its time, into ``row``."""
    from mirsearch.search.confidence import null_costs
    from mirsearch.search.results import Match

    row["null_protocol"] = NULL_PROTOCOL
    if not row["matches"]:
        row["null_region"], row["null_ms"] = [], 0.0
        return
    rid, cost, start, end, shift, *factor = row["matches"][0]
    best = Match("", rid, start, end, cost, shift, extra={"tempo_factor": factor[0] if factor else 1.0})
    t0 = time.perf_counter()
    row["null_region"] = null_costs(coll, theme, best, features=features, query_tail=query_tail(features)).tolist()
    row["null_ms"] = (time.perf_counter() - t0) * 1000


def collect(args) -> None:
    view, full, _ = views(args.dataset, args.split)
    themes = sorted(view.themes.values(), key=lambda t: t.theme_id)[: args.limit]
    for features in args.features.split(","):
        for half in WHOLE if args.whole else HALVES:
            out = cache_dir(args.dataset, args.split, half, features, args.seed)
            out.mkdir(parents=True, exist_ok=True)
            with Collection.open(collection_path(args.dataset, args.split, half, args.seed), readonly=True) as coll:
                t0, done = time.perf_counter(), 0
                for theme in themes:
                    path = out / f"{theme.theme_id.replace(':', '_')}.json"
                    if path.exists():
                        row = json.loads(path.read_text())
                        if row.get("null_protocol") == NULL_PROTOCOL:
                            continue
                        _add_null(coll, theme.to_theme(), features, row)  # rows of an earlier protocol
                    else:
                        row = _one(coll, full, theme, features)
                    atomic_write_text(path, json.dumps(row))
                    done += 1
                    if done % 20 == 0:
                        log.info("%s %s %s: %d themes in %.0f s", args.split, half, features, done,
                                 time.perf_counter() - t0)  # fmt: skip
            log.info("%s %s %s: done", args.split, half, features)


def load_rows(dataset: str, split: str, features: str, halves=HALVES, seed: int = 0) -> list[dict]:
    rows = []
    for half in halves:
        for path in sorted(cache_dir(dataset, split, half, features, seed).glob("*.json")):
            row = json.loads(path.read_text())
            row["half"] = half
            rows.append(row)
    return rows


# -- "absent" checked: a theme's tune may occur in another work ---------------------------------------------------
def _intervals(pitches) -> tuple[int, ...]:
    """Pitch-class steps of a pitch sequence, repeated notes merged (what a chroma match cannot tell apart)."""
    merged = [int(p) for i, p in enumerate(pitches) if i == 0 or int(p) != int(pitches[i - 1])]
    return tuple((b - a) % 12 for a, b in zip(merged, merged[1:], strict=False))


def _midi_lines(path: Path) -> list[tuple[int, ...]]:
    """Each track's top line (and bottom line where it has chords) as pitch-class steps."""
    import mido

    lines = []
    for track in mido.MidiFile(str(path)).tracks:
        t, onsets = 0, {}
        for msg in track:
            t += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                onsets.setdefault(t, []).append(msg.note)
        chords = [onsets[k] for k in sorted(onsets)]
        if chords:
            lines.append(_intervals([max(c) for c in chords]))
        if any(len(c) > 1 for c in chords):
            lines.append(_intervals([min(c) for c in chords]))
    return lines


class LiteralCheck:
    """Works of a split in whose score (any part, any transposition) a theme's pitch-class steps occur literally."""

    def __init__(self, view: Dataset):
        self.view = view
        self._lines: dict[str, list] = {}

    def lines(self, work_id: str) -> list:
        if work_id not in self._lines:
            version = self.view.versions_of(work_id)[0]
            self._lines[work_id] = _midi_lines(version.midi_path)
        return self._lines[work_id]

    def occurs_in(self, theme_id: str, work_ids) -> list[str]:
        pat = _intervals(self.view.themes[theme_id].pitches)
        n = len(pat)
        return [w for w in work_ids
                if any(line[i : i + n] == pat for line in self.lines(w) for i in range(len(line) - n + 1))]  # fmt: skip


# -- fit and evaluation -------------------------------------------------------------------------------------------
def examples(dataset: str, split: str, features: str, seed: int, collections=HALVES) -> list[dict]:
    """Per search: label (1 present and right at rank 1, 0 absent, None otherwise), top-1 cost, notes, null."""
    from mirsearch.search.confidence import theme_background, theme_notes

    view, full, extra = views(dataset, split)
    halves, check = family_halves(view, seed), LiteralCheck(full)
    out = []
    for row in load_rows(dataset, split, features, collections, seed):
        if not row["matches"]:
            continue
        label = None
        literal = []
        if row["present"]:
            label = 1 if row["matches"][0][0] in row["relevant_ids"] else None
        else:
            literal = check.occurs_in(row["theme"], [w for w, h in halves.items() if h == row["half"]] + extra)
            label = 0
        null = row.get("null_region", [])
        background = theme_background([m[0] for m in row["matches"]], [m[1] for m in row["matches"]], null)
        out.append({"theme": row["theme"], "half": row["half"], "label": label, "literal": literal,
                    "cost": row["matches"][0][1], "notes": theme_notes(view.themes[row["theme"]].to_theme()),
                    "null": null, "background": background, "search_ms": row["search_ms"],
                    "null_ms": row.get("null_ms")})  # fmt: skip
    return out


def _design(model_eps: float, notes_range, rows, standout: bool) -> np.ndarray:
    n = np.clip([r["notes"] for r in rows], *notes_range)
    cost = np.log(np.asarray([r["cost"] for r in rows]) + model_eps)
    X = np.c_[cost, np.log(n)]
    if standout:  # the match's cost over the query's background (theme_background) and over its best null theme
        X = np.c_[X, cost - np.log(np.asarray([r["background"] for r in rows]) + model_eps),
                  cost - np.log(np.asarray([min(r["null"]) for r in rows]) + model_eps)]  # fmt: skip
    return X


def fit_model(rows: list[dict], *, eps: float, keep: float, standout: bool = False):
    """Logistic model on the labelled rows (with the standouts over the background and the null if ``standout``);
    threshold keeping ``keep`` of their positives."""
    from sklearn.linear_model import LogisticRegression

    from mirsearch.search.confidence import ConfidenceModel

    used = [r for r in rows if r["label"] is not None and not r["literal"]]
    notes = [r["notes"] for r in used]
    notes_range = (1, int(max(notes)))  # fewer notes than seen: extrapolated (lower); more: clipped
    y = np.asarray([r["label"] for r in used])
    lr = LogisticRegression(C=10.0, max_iter=1000).fit(_design(eps, notes_range, used, standout), y)
    model = ConfidenceModel(bias=float(lr.intercept_[0]), w_cost=float(lr.coef_[0, 0]), w_notes=float(lr.coef_[0, 1]),
                            eps=eps, notes_range=notes_range, threshold=0.0,
                            w_standout=float(lr.coef_[0, 2]) if standout else 0.0,
                            w_null=float(lr.coef_[0, 3]) if standout else 0.0)  # fmt: skip
    pos = np.sort(confidences(model, [r for r in used if r["label"] == 1]))
    threshold = float(np.floor(pos[int(np.floor((1 - keep) * len(pos)))] * 100) / 100)
    return ConfidenceModel(**{**model.__dict__, "threshold": threshold})


def confidences(model, rows) -> np.ndarray:
    from mirsearch.search.confidence import null_chance

    return np.asarray([float(model.probability(r["cost"], r["notes"], r["background"], min(r["null"], default=np.nan))
                             * (1 - null_chance([r["cost"]], r["null"])[0])) for r in rows])  # fmt: skip


def evaluate(model, rows: list[dict], *, literal: bool = False) -> dict:
    """ROC-AUC and rates at the model's threshold; ``literal``: absent themes occurring in another work kept."""
    from mirsearch.evaluation.detection import rates_at, roc_auc

    pos = confidences(model, [r for r in rows if r["label"] == 1])
    neg = confidences(model, [r for r in rows if r["label"] == 0 and (literal or not r["literal"])])
    rates = rates_at(model.threshold, pos, neg)
    auc = roc_auc(pos, neg) if len(pos) and len(neg) else float("nan")

    def num(x: float):  # None (JSON null) where a set is empty
        return None if np.isnan(x) else round(float(x), 4)

    return {"positives": len(pos), "negatives": len(neg), "roc_auc": num(auc),
            "absent_no_confident_match": num(rates["negatives_rejected"]),
            "present_top1_hits_shown": num(rates["positives_kept"])}  # fmt: skip


def fit(args) -> None:
    from mirsearch.search.confidence import load_models

    from _common import print_table, write_results

    table, models, info = [], {}, {}
    for features in args.features.split(","):
        calib = [r for s in args.fit_seeds.split(",") for r in examples(args.dataset, args.fit_split, features, int(s))]
        test = examples(args.dataset, args.eval_split, features, args.seed)
        standout = features in args.standout.split(",")
        model = (
            fit_model(calib, eps=args.eps, keep=args.keep, standout=standout) if args.refit else load_models()[features]
        )
        models[features] = model.to_dict()
        for name, rows, split in (("calibration", calib, args.fit_split), ("evaluation", test, args.eval_split)):
            parts = [("both halves", rows)] + [(f"half {h}", [r for r in rows if r["half"] == h]) for h in HALVES]
            for part, sub in parts:
                table.append({"features": features, "split": split, "set": f"{name}, {part}", **evaluate(model, sub)})
            table.append({"features": features, "split": split, "set": f"{name}, literal repeats as absent",
                          **evaluate(model, rows, literal=True)})  # fmt: skip
        whole = examples(args.dataset, args.eval_split, features, args.seed, WHOLE)
        if whole:  # built with --whole: every theme present
            table.append({"features": features, "split": args.eval_split, "set": "whole collection (present only)",
                          **evaluate(model, whole)})  # fmt: skip
        info[features] = {
            "absent_with_literal_occurrence": {s: sum(1 for r in rows if r["label"] == 0 and r["literal"])
                                               for s, rows in ((args.fit_split, calib), (args.eval_split, test))},
            "absent": {s: sum(1 for r in rows if r["label"] == 0) for s, rows in ((args.fit_split, calib),
                                                                                   (args.eval_split, test))},
            "search_ms_median": round(float(np.median([r["search_ms"] for r in test])), 1),
            "null_ms_median": round(float(np.median([r["null_ms"] for r in test if r["null_ms"] is not None])), 1),
        }  # fmt: skip
    print_table(table, ["features", "split", "set", "positives", "negatives", "roc_auc", "absent_no_confident_match",
                        "present_top1_hits_shown"])  # fmt: skip
    print(json.dumps(info, indent=1))
    if args.write_model:
        path = Path(__file__).resolve().parents[1] / "src/mirsearch/models/bundles/confidence/models.json"
        shipped = json.loads(path.read_text())
        shipped["models"].update(models)  # the kinds not fitted now stay as they were
        shipped["fitted"] = {
            **shipped.get("fitted", {}),
            **{k: f"bench_confidence.py fit, {args.fit_split} split, {time.strftime('%Y-%m-%d')}" for k in models},
        }
        atomic_write_text(path, json.dumps(shipped, indent=1) + "\n")  # fmt: skip
        print(f"wrote {path}")
    write_results(args.name, {"args": vars(args), "models": models, "rows": table, "info": info})


def latency(args) -> None:
    """Search and confidence times of every ``--every``-th theme, one after the other in this process."""
    from mirsearch.search.confidence import search_confidences

    from _common import write_results

    view, _, _ = views(args.dataset, args.split)
    themes = [t.to_theme() for t in sorted(view.themes.values(), key=lambda t: t.theme_id)[:: args.every]]
    search_ms, conf_ms = [], []
    with Collection.open(collection_path(args.dataset, args.split, args.half, args.seed), readonly=True) as coll:
        features = args.features
        for k, theme in enumerate([themes[0], *themes]):  # the first: warm-up (numba, views)
            t0 = time.perf_counter()
            matches, _ = _search(coll, theme, features)
            t1 = time.perf_counter()
            search_confidences(coll, theme, matches, features=features, query_tail=query_tail(features))
            if k:
                search_ms.append((t1 - t0) * 1000)
                conf_ms.append((time.perf_counter() - t1) * 1000)
    row = {"split": args.split, "half": args.half, "features": features, "themes": len(themes),
           "search_ms_median": round(float(np.median(search_ms)), 1),
           "confidence_ms_median": round(float(np.median(conf_ms)), 1),
           "confidence_ms_p90": round(float(np.percentile(conf_ms, 90)), 1),
           "confidence_over_search": round(sum(conf_ms) / sum(search_ms), 3)}  # fmt: skip
    print(json.dumps(row))
    write_results(args.name, {"args": vars(args), **row})


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("build", "collect", "fit", "latency"):
        p = sub.add_parser(name)
        p.add_argument("--dataset", required=True)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--bundle", default=None, help="a candidate learned-chroma bundle as the default (own caches)")
        p.add_argument(
            "--query-tail",
            default="default",
            help="query tail of the searches: default (the service's), off, or BETA,TAU (own caches)",
        )
        if name != "fit":
            p.add_argument("--split", required=True)
        if name in ("build", "collect"):
            p.add_argument("--whole", action="store_true", help="one collection of every work (present only)")
    lat = sub.choices["latency"]
    lat.add_argument("--half", default="a", choices=HALVES)
    lat.add_argument("--every", type=int, default=10, help="every N-th theme of the split")
    lat.add_argument("--features", default="learned", choices=("learned", "chroma"))
    lat.add_argument("--name", default="confidence_latency")
    sub.choices["build"].add_argument("--source", help="an indexed collection of the split (else the feature cache)")
    c = sub.choices["collect"]
    c.add_argument("--features", default="learned,chroma")
    c.add_argument("--limit", type=int, default=None, help="first N themes only")
    f = sub.choices["fit"]
    f.add_argument("--features", default="learned,chroma")
    f.add_argument("--fit-split", default="validation")
    f.add_argument("--eval-split", default="test")
    f.add_argument(
        "--fit-seeds",
        default="0",
        help="fit on the rows of the family halves of each of these seeds (each built and collected with --seed S)",
    )
    f.add_argument("--refit", action="store_true", help="fit the models (else evaluate the shipped ones)")
    f.add_argument("--write-model", action="store_true", help="write the fitted models into the package")
    f.add_argument("--eps", type=float, default=0.005, help="added to the cost before its logarithm")
    f.add_argument("--keep", type=float, default=0.95, help="share of calibration hits the threshold keeps")
    f.add_argument(
        "--standout",
        default="chroma",
        help="feature kinds whose model uses the standouts over the "
        "query's background (the median best cost of the next recordings) and over its best null theme",
    )
    f.add_argument("--name", default="confidence")
    args = ap.parse_args()
    use_bundle(args.bundle)
    global QUERY_TAIL
    if args.query_tail not in ("default", "off"):
        beta, tau = (float(v) for v in args.query_tail.split(","))
        QUERY_TAIL = (beta, tau)
    else:
        QUERY_TAIL = args.query_tail
    {"build": build, "collect": collect, "fit": fit, "latency": latency}[args.command](args)


if __name__ == "__main__":
    main()
