"""Test-time augmentation (TTA) of the packaged tagger: are the instrument families more robust to an unseen sound
when the tagger also hears a few altered copies of a clip and its probabilities are averaged?

    nice -n 10 .venv/bin/python benchmarks/tagger_tta.py --set tags-validation     # choose on these three
    nice -n 10 .venv/bin/python benchmarks/tagger_tta.py --set sample-stems
    nice -n 10 .venv/bin/python benchmarks/tagger_tta.py --set msg-stems
    nice -n 10 .venv/bin/python benchmarks/tagger_tta.py --set tags-test --chosen NAME   # once, the chosen set only
    nice -n 10 .venv/bin/python benchmarks/tagger_tta.py --speed                         # realtime factor per set

Every clip goes through the product's path, :func:`mirsearch.describe.tagger.analyse` (levelling, CNN on log-mel,
the ten families fused with the YAMNet head), once as it is (``none``) and once per variant of :data:`VARIANTS`
(waveform domain, at the product's 16 kHz):

- ``tilt-3`` / ``tilt+3``: a spectral tilt of -3 / +3 dB per octave about 1 kHz (zero-phase FFT-domain gain, flat
  below 62.5 Hz and above 8 kHz, so at most -+12 dB / +-9 dB);
- ``pitch-1`` / ``pitch+1``: one semitone down / up by resampling (the samples read at ``sr * 2 ** (s / 12)``;
  the tempo moves with the pitch, which leaves the tags' meaning alone);
- ``lowpass``: a mild low-pass, second-order Butterworth magnitude at 4 kHz (zero phase);
- ``highpass``: a mild high-pass, second-order Butterworth magnitude at 150 Hz (zero phase).

The level needs no variant: ``analyse`` scales every signal to the same active RMS.

Clip sets (``--set``): ``tags-validation`` / ``tags-test`` (``data/tags``: 10 s clips of unseen pieces; validation
FluidR3_GM and MuseScore General, test TimGM6mb only; 33 tags), ``sample-stems`` (``--mixtures`` seeded mixtures of
1-4 stems of distinct families of the *validation* stems of ``data/sample_stems``, played with real instrument
samples no model trained on: 9 families, no drums) and ``msg-stems`` (the same of the 300 MuseScore General
validation stems of ``data/tag_stems_msg``: 10 families). A mixture sums the stems' waveforms (each scaled to unit
standard deviation, then 0 to -10 dB), as sessions 17 and 18 did (``data/s17/fusion_w.py``).

Rows: ``none``; every variant alone (the clip replaced by it); and candidate sets of :data:`CANDIDATES`, each the
original plus variants, averaged over the set either as clip probabilities (``mean p``) or as clip logits
(``mean logit``; the mean logit goes back through a sigmoid). The averages are of the clip-level probabilities of
every tag (after the bundle's pooling over patches). Columns: ten-family (nine for ``sample-stems``) macro ROC-AUC
with the paired bootstrap interval of the difference to ``none`` (1,000 resamplings of the clips), the 33-tag macro
ROC-AUC (tags sets), the passes per clip and per-family ROC-AUC. The per-clip probabilities of every variant are
cached in ``data/tta19/<set>/<configuration key>/`` (resumable). The test set (``tags-test``) is scored only for
``none`` and the set named by ``--chosen``. Results: ``benchmarks/results/tagger_tta_<set>.json``.
"""

from __future__ import annotations

import argparse
import json
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

from mirsearch.describe.tag_vocabulary import FAMILIES, TAG_NAMES  # noqa: E402
from mirsearch.evaluation.tagging import macro_over, tag_metrics  # noqa: E402

from _common import print_table, write_results  # noqa: E402

log = logging.getLogger("tagger_tta")

#: the product's analysis rate (``mirsearch tag`` loads files at the tagger front end's rate)
SR = 16000
CACHE = ROOT / "data" / "tta19"


# ----------------------------------------------------------------------------------------------- variants
def spectral_gain(y: np.ndarray, sr: int, gain_db) -> np.ndarray:
    """``y`` with a zero-phase gain ``gain_db(f)`` (dB, ``f`` in Hz, vectorised) applied in the FFT domain."""
    n = len(y)
    Y = np.fft.rfft(np.asarray(y, np.float64))
    f = np.fft.rfftfreq(n, d=1.0 / sr)
    return np.fft.irfft(Y * 10 ** (gain_db(f) / 20), n=n).astype(np.float32)


def tilt(db_per_octave: float, *, low: float = 62.5, high: float = 8000.0, pivot: float = 1000.0):
    """A spectral tilt of ``db_per_octave`` about ``pivot`` Hz, flat outside ``[low, high]``."""

    def gain(f):
        return db_per_octave * np.log2(np.clip(f, low, high) / pivot)

    return lambda y, sr: (spectral_gain(y, sr, gain), sr)


def butterworth(cutoff: float, *, order: int = 2, kind: str = "low"):
    """Zero-phase Butterworth magnitude ``1 / sqrt(1 + (f / fc) ** 2n)`` (``kind="high"``: ``(fc / f)``)."""

    def gain(f):
        r = np.maximum(f, 1e-3) / cutoff
        r = r if kind == "low" else 1.0 / r
        return -10 * np.log10(1 + r ** (2 * order))

    return lambda y, sr: (spectral_gain(y, sr, gain), sr)


def pitch(semitones: float):
    """Pitch (and tempo) moved by ``semitones``: the same samples read at ``sr * 2 ** (semitones / 12)`` (the
    tagger's front end resamples them to its own rate; :func:`mirsearch.describe.tagger.pitch_shifted`)."""
    from mirsearch.describe.tagger import pitch_shifted

    return lambda y, sr: pitch_shifted(y, sr, semitones)


#: name -> function ``(y, sr) -> (y', sr')``
VARIANTS = {
    "none": lambda y, sr: (y, sr),
    "tilt-3": tilt(-3.0),
    "tilt+3": tilt(3.0),
    "pitch-1": pitch(-1.0),
    "pitch+1": pitch(1.0),
    "lowpass": butterworth(4000.0, kind="low"),
    "highpass": butterworth(150.0, kind="high"),
}
#: candidate sets (each with the original), fixed before any was measured
CANDIDATES = {
    "tilt": ("none", "tilt-3", "tilt+3"),
    "pitch": ("none", "pitch-1", "pitch+1"),
    "filters": ("none", "lowpass", "highpass"),
    "tilt+pitch": ("none", "tilt-3", "tilt+3", "pitch-1", "pitch+1"),
    "all": tuple(VARIANTS),
}


def _logit(p):
    q = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def average(P: np.ndarray, how: str) -> np.ndarray:
    """Average of clip probabilities ``P (n_variants, n_clips, K)`` over the variants: ``"p"`` the mean
    probability, ``"logit"`` the sigmoid of the mean logit."""
    if how == "p":
        return P.mean(axis=0)
    return 1.0 / (1.0 + np.exp(-_logit(P).mean(axis=0)))


# ----------------------------------------------------------------------------------------------- clip sets
def tag_clips(split: str) -> tuple[list, np.ndarray, list[str]]:
    """``data/tags`` clips of a split: loaders, labels ``(n, 33)`` and tag names."""
    from mirsearch.audio import load_audio
    from mirsearch.datasets.tags import label_matrix, load_manifest

    root = ROOT / "data" / "tags"
    records = [r for r in load_manifest(root) if r["split"] == split]
    loaders = [lambda r=r: load_audio(root / r["audio"], sr=SR)[0] for r in records]
    return loaders, label_matrix(records), list(TAG_NAMES)


def stem_mixtures(
    root: Path, n_mix: int, *, splits=("validation",), seed: int = 19
) -> tuple[list, np.ndarray, list[str]]:
    """Seeded mixtures of 1-4 stems (of ``splits``) of distinct families (waveforms, each at unit standard deviation
    then 0 to -10 dB): loaders, labels ``(n_mix, F)`` and the F families present in the stems."""
    from mirsearch.audio import load_audio

    recs = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines() if line.strip()]
    recs = [r for r in recs if r["split"] in splits and r["family"] in FAMILIES]
    by_family: dict[str, list[dict]] = {}
    for r in recs:
        by_family.setdefault(r["family"], []).append(r)
    fams = [f for f in FAMILIES if f in by_family]
    rng = np.random.default_rng(seed)
    plans, Y = [], np.zeros((n_mix, len(fams)), np.float32)
    for i in range(n_mix):
        k = int(rng.choice([1, 2, 3, 4], p=[0.25, 0.3, 0.25, 0.2]))
        chosen = rng.choice(fams, size=min(k, len(fams)), replace=False)
        stems = [by_family[f][int(rng.integers(len(by_family[f])))]["audio"] for f in chosen]
        gains = 10 ** (-rng.uniform(0, 10, size=len(stems)) / 20)
        plans.append((stems, gains))
        Y[i, [fams.index(f) for f in chosen]] = 1

    def mix(stems, gains):
        parts = [load_audio(root / a, sr=SR)[0] for a in stems]
        n = min(len(p) for p in parts)
        return sum(g * p[:n] / (np.std(p[:n]) + 1e-9) for g, p in zip(gains, parts, strict=True)).astype(np.float32)

    return [lambda p=p: mix(*p) for p in plans], Y, fams


def clip_set(name: str, n_mix: int, splits=("validation",)):
    if name == "tags-validation":
        return tag_clips("validation")
    if name == "tags-test":
        return tag_clips("test")
    if name == "sample-stems":
        return stem_mixtures(ROOT / "data" / "sample_stems", n_mix, splits=splits)
    if name == "msg-stems":
        return stem_mixtures(ROOT / "data" / "tag_stems_msg", n_mix, splits=splits)
    raise SystemExit(f"unknown set {name!r}")


# ----------------------------------------------------------------------------------------------- scoring
def variant_probs(name: str, loaders, variants, *, tag: str) -> dict[str, np.ndarray]:
    """Clip probabilities ``(n_clips, 33)`` of every variant (``analyse``, the product's path), cached per variant in
    ``data/tta19/<name>/<key>/<tag>-<variant>.npy`` (``key``: a hash of the stored "tags" kind's configuration, which
    names the bundle and the family fusion, so a changed tagger is not read from an older cache)."""
    from mirsearch.describe.tagger import analyse
    from mirsearch.features.registry import config_key
    from mirsearch.features.tag_features import tags_config

    folder = CACHE / name / config_key(tags_config())
    folder.mkdir(parents=True, exist_ok=True)
    out, todo = {}, []
    for v in variants:
        f = folder / f"{tag}-{v}.npy"
        if f.is_file():
            out[v] = np.load(f)
        else:
            todo.append(v)
    if not todo:
        return out
    acc = {v: [] for v in todo}
    t0 = time.time()
    for i, load in enumerate(loaders):
        y = load()
        for v in todo:
            yv, srv = VARIANTS[v](y, SR)
            acc[v].append(analyse(yv, srv).tags)
        if (i + 1) % 50 == 0:
            log.info("%s: %d / %d clips, %.0f s", name, i + 1, len(loaders), time.time() - t0)
    for v in todo:
        out[v] = np.asarray(acc[v], np.float32)
        np.save(folder / f"{tag}-{v}.npy", out[v])
    return out


def _auc_matrix(Y: np.ndarray, S: np.ndarray) -> np.ndarray:
    """ROC-AUC per column (NaN where a column has no positive or no negative); ties count half."""
    from scipy.stats import rankdata

    out = np.full(Y.shape[1], np.nan)
    for k in range(Y.shape[1]):
        pos = Y[:, k] > 0.5
        n1, n0 = int(pos.sum()), int((~pos).sum())
        if n1 and n0:
            r = rankdata(S[:, k])
            out[k] = (r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    return out


def paired_bootstrap(Y: np.ndarray, S0: np.ndarray, S1: np.ndarray, *, n: int = 1000, seed: int = 0) -> tuple:
    """95 % interval of ``macro AUC(S1) - macro AUC(S0)`` over clips resampled with replacement (same resample for
    both; a family without positives or negatives in a resample is left out of both)."""
    rng = np.random.default_rng(seed)
    d = []
    for _ in range(n):
        idx = rng.integers(0, len(Y), len(Y))
        a0, a1 = _auc_matrix(Y[idx], S0[idx]), _auc_matrix(Y[idx], S1[idx])
        d.append(np.nanmean(a1 - a0))
    return float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))


def evaluate(name: str, Y: np.ndarray, names: list[str], scores: dict[str, tuple[np.ndarray, int]]) -> dict:
    """Rows (families macro, its paired interval against ``none``, 33-tag macro, passes) and per-family AUCs."""
    fams = [f for f in FAMILIES if f in names]
    fcols = [names.index(f) for f in fams]
    rows, per_family, metrics = [], [], {}
    base = scores["none"][0]
    for method, (S, passes) in scores.items():
        S_ = S if len(names) == S.shape[1] else S[:, [TAG_NAMES.index(t) for t in names]]
        m = tag_metrics(Y, S_, names)
        metrics[method] = m
        fam = macro_over(m, fams)
        row = {"method": method, "passes": passes, "families ROC-AUC": round(fam, 4)}
        if method != "none":
            B_ = base if len(names) == base.shape[1] else base[:, [TAG_NAMES.index(t) for t in names]]
            d = fam - macro_over(metrics["none"], fams)
            lo, hi = paired_bootstrap(Y[:, fcols], B_[:, fcols], S_[:, fcols])
            row["d families"] = f"{d:+.4f} [{lo:+.4f}, {hi:+.4f}]"
        if len(names) > len(fams):
            row["macro ROC-AUC (all tags)"] = round(m["macro_roc_auc"], 4)
            row["families PR-AUC"] = round(macro_over(m, fams, "pr_auc"), 4)
        rows.append(row)
        per_family.append({"method": method, **{f: _r(m["tags"][f]["roc_auc"]) for f in fams}})
    return {"set": name, "items": int(len(Y)), "families": fams, "rows": rows, "per_family": per_family,
            "metrics": metrics}  # fmt: skip


def _r(x):
    return None if x is None else round(float(x), 4)


def score_set(name: str, n_mix: int, chosen: str | None, splits=("validation",)) -> dict:
    loaders, Y, names = clip_set(name, n_mix, splits)
    log.info("%s: %d clips", name, len(loaders))
    if name == "tags-test":
        if not chosen:
            raise SystemExit("tags-test: name the set chosen on validation with --chosen (scored once)")
        how, cand = _parse_chosen(chosen)
        variants = CANDIDATES[cand]
        P = variant_probs(name, loaders, variants, tag=str(len(loaders)))
        stack = np.stack([P[v] for v in variants])
        scores = {"none": (P["none"], 1), f"{cand} (mean {how})": (average(stack, how), len(variants))}
    else:
        tag = str(len(loaders)) if name.startswith("tags") else f"mix{n_mix}-{'+'.join(splits)}"
        P = variant_probs(name, loaders, list(VARIANTS), tag=tag)
        scores = {v: (P[v], 1) for v in VARIANTS}
        for cand, variants in CANDIDATES.items():
            stack = np.stack([P[v] for v in variants])
            for how in ("p", "logit"):
                scores[f"{cand} (mean {how})"] = (average(stack, how), len(variants))
    res = evaluate(name, Y, names, scores)
    if name.startswith("tags"):
        res["by_family_count"] = {m: _by_count(Y, S) for m, (S, _) in scores.items()
                                  if m == "none" or "(" in m}  # fmt: skip
    return res


def _parse_chosen(chosen: str) -> tuple[str, str]:
    """``"tilt:p"`` -> (``"p"``, ``"tilt"``); the averaging defaults to ``p``."""
    cand, _, how = chosen.partition(":")
    if cand not in CANDIDATES or (how or "p") not in ("p", "logit"):
        raise SystemExit(f"--chosen {chosen!r}: one of {list(CANDIDATES)}, optionally ':p' or ':logit'")
    return how or "p", cand


def _by_count(Y: np.ndarray, S: np.ndarray) -> dict:
    cols = [TAG_NAMES.index(f) for f in FAMILIES]
    n = Y[:, cols].sum(axis=1)
    out = {}
    for label, mask in (("1", n == 1), ("2-3", (n >= 2) & (n <= 3)), ("4+", n >= 4)):
        m = tag_metrics(Y[mask][:, cols], S[mask][:, cols], FAMILIES)
        out[label] = _r(macro_over(m, FAMILIES))
    return out


def speed(seconds: float = 60.0, repeats: int = 3) -> list[dict]:
    """Realtime factor of ``analyse`` on one thread with every candidate set (a synthetic 60 s signal at 16 kHz):
    the variants' transforms and analyses, summed; the best of ``repeats`` (CPU time of this process)."""
    from mirsearch.describe.tagger import analyse

    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    y = (0.1 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)
    analyse(y[:SR], SR)  # load the models
    per = {}
    for v, f in VARIANTS.items():
        best = np.inf
        for _ in range(repeats):
            c = time.process_time()
            analyse(*f(y, SR))
            best = min(best, time.process_time() - c)
        per[v] = best
    rows = [{"set": "none", "passes": 1, "cpu_seconds": round(per["none"], 3),
             "realtime_factor": round(seconds / per["none"], 1)}]  # fmt: skip
    for cand, variants in CANDIDATES.items():
        cpu = sum(per[v] for v in variants)
        rows.append({"set": cand, "passes": len(variants), "cpu_seconds": round(cpu, 3),
                     "realtime_factor": round(seconds / cpu, 1)})  # fmt: skip
    from mirsearch.describe.tagger import TTA_SEMITONES, analyse_tta

    best = np.inf
    for _ in range(repeats):
        c = time.process_time()
        analyse_tta(y, SR, semitones=TTA_SEMITONES)
        best = min(best, time.process_time() - c)
    rows.append({"set": f"library analyse_tta {TTA_SEMITONES}", "passes": 1 + len(TTA_SEMITONES),
                 "cpu_seconds": round(best, 3), "realtime_factor": round(seconds / best, 1)})  # fmt: skip
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", choices=("tags-validation", "sample-stems", "msg-stems", "tags-test"))
    p.add_argument("--mixtures", type=int, default=400, help="mixtures of the stem sets (default 400)")
    p.add_argument("--splits", default="validation", help="stem sets: splits of the stems mixed (default validation)")
    p.add_argument("--chosen", default=None, help="tags-test: the candidate chosen on validation, e.g. tilt:p")
    p.add_argument("--speed", action="store_true", help="realtime factor of every candidate set on one thread")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(1)
    if args.speed:
        rows = speed()
        print_table(rows, list(rows[0]))
        print(f"wrote {write_results('tagger_tta_speed', {'speed': rows})}")
        if not args.set:
            return 0
    if not args.set:
        p.error("--set or --speed")
    t0 = time.time()
    splits = tuple(args.splits.split(","))
    res = score_set(args.set, args.mixtures, args.chosen, splits)
    print(f"{res['set']}: {res['items']} clips, families {', '.join(res['families'])}")
    print_table(res["rows"], list(dict.fromkeys(k for r in res["rows"] for k in r)))
    print_table(res["per_family"], list(res["per_family"][0]))
    if "by_family_count" in res:
        rows = [{"method": m, **d} for m, d in res["by_family_count"].items()]
        print("families ROC-AUC within clips of 1 / 2-3 / 4+ families")
        print_table(rows, list(rows[0]))
    res.update(variants=list(VARIANTS), candidates={k: list(v) for k, v in CANDIDATES.items()}, averaged="clip "
               "probabilities of every tag after pooling: mean p, or sigmoid of the mean logit", chosen=args.chosen,
               wall_seconds=round(time.time() - t0, 1), utc=time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
               load_average=os.getloadavg())  # fmt: skip
    suffix = (
        ""
        if args.set.startswith("tags") or (args.mixtures, splits) == (400, ("validation",))
        else (f"_{args.mixtures}_{'+'.join(splits)}")
    )
    if not args.set.startswith("tags"):
        res["splits"] = list(splits)
    print(f"wrote {write_results(f'tagger_tta_{args.set}{suffix}', res)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
