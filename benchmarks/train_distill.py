"""Distillation fine-tune of the shipped theme-chroma model from the peer's real-data model (issue 14).

Two steps, both resumable (run with ``nice -n 10``; one torch thread):

    # 1. pools under data/distill/: labelled CTC segments of data/bench's train split (student HCQT +
    #    labels; the first --rendered of them also get teacher targets; --dataset D --exclude data/bench:
    #    the train split of D without data/bench's validation and test works) and unlabelled excerpts of real
    #    game music (ufoai-music, singularity-music, colobot-common-sounds) with teacher targets
    .venv/bin/python benchmarks/train_distill.py pool \\
        --peer ../shared/peer-models/themeenhancer-mtd/model_SDTW-E-W_bestVal.pt
    # 2. fine-tune the shipped bundle: CTC + LAM x KL(teacher || student); a bundle per epoch
    .venv/bin/python benchmarks/train_distill.py train --lam 0.3 --out data/runs/distill_0.3 --minutes 30

Choose among ``OUT/epoch-<k>`` with ``bench_learned_chroma.py --bundle NAME=OUT/epoch-<k>`` on validation data.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import io
import logging
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "data" / "real" / "pkgs"
POOL = ROOT / "data" / "distill"


def real_tracks(n_ufoai: int) -> list[tuple[str, object]]:
    """(name, opener returning (data, sr)) of the music tracks of singularity-music and colobot-common-sounds
    and of the first ``n_ufoai`` of ufoai-music (by name)."""
    import soundfile as sf

    out = []
    for pkg in ("singularity-music", "colobot-common-sounds"):
        for f in sorted(glob.glob(str(REAL / pkg / "**" / "*.ogg"), recursive=True)):
            out.append((f"{pkg}/{Path(f).name}", lambda f=f: sf.read(f, always_2d=True)))
    pk3 = REAL / "ufoai-music" / "usr" / "share" / "games" / "ufoai" / "base" / "0music.pk3"
    with zipfile.ZipFile(pk3) as z:
        names = sorted(n for n in z.namelist() if n.endswith(".ogg"))[:n_ufoai]

    def read(n):
        with zipfile.ZipFile(pk3) as z:
            return sf.read(io.BytesIO(z.read(n)), always_2d=True)

    out.extend((f"ufoai-music/{Path(n).name}", lambda n=n: read(n)) for n in names)
    return out


def _store(path: Path, y: np.ndarray, *, bundle, peer, labels=()) -> None:
    """Student HCQT and (with ``peer``) teacher targets of 22050 Hz audio ``y`` into a pool item."""
    from mirsearch.features.learned import bundle_hcqt
    from mirsearch.features.peer_front_end import PEER_RATE, peer_hcqt
    from mirsearch.training.distill import save_item, teacher_target

    H = bundle_hcqt(y, sr=22050, input_config=bundle.input)
    target = None
    if peer is not None:
        n_out = H.shape[-1] // bundle.model.time_pool
        P = peer.predict(peer_hcqt(y, sr=22050), num_threads=1)
        target = teacher_target(P, rate_in=PEER_RATE, rate_out=bundle.output_rate, n_out=n_out)
    save_item(path, H, labels=labels, target=target)


def _segment_audio(path: str, start: float, end: float) -> np.ndarray:
    """Mono 22050 Hz audio of ``path`` from ``start`` to ``end`` seconds (read by seeking)."""
    import soundfile as sf
    import soxr

    sr = sf.info(path).samplerate
    data, _ = sf.read(path, start=int(start * sr), stop=int(end * sr), always_2d=True, dtype="float32")
    y = data.mean(axis=1)
    return soxr.resample(y, sr, 22050).astype(np.float32) if sr != 22050 else y


def build_pools(args) -> None:
    import soxr

    from mirsearch.models.bundle import load_bundle
    from mirsearch.models.peer import load_peer
    from mirsearch.training.data import load_segments

    bundle, peer = load_bundle(), load_peer(args.peer)
    out = POOL / peer.model_id
    for sub in ("labelled", "real"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    for name, opener in real_tracks(args.ufoai):
        key = hashlib.sha1(name.encode()).hexdigest()[:12]
        todo = [out / "real" / f"{key}-{k}.npz" for k in range(args.per_track)]
        if all(p.exists() for p in todo):
            continue
        data, sr = opener()
        y = soxr.resample(data.mean(axis=1), sr, 22050).astype(np.float32) if sr != 22050 else data.mean(axis=1)
        dur = len(y) / 22050
        if dur < args.excerpt + 4:
            continue
        rng = np.random.default_rng(int(key, 16) % 2**32)
        for p in todo:
            a = rng.uniform(0.05 * dur, max(0.05 * dur, 0.95 * dur - args.excerpt))
            _store(p, y[int(a * 22050) : int((a + args.excerpt) * 22050)], bundle=bundle, peer=peer)
        logging.info("real %s (%.0f s) done, %.0f s", name, dur, time.monotonic() - t0)
    segments = load_segments(args.dataset, split="train")
    if args.exclude:  # works that are validation / test material of another dataset (e.g. data/bench)
        from mirsearch.datasets.manifest import Dataset

        held = {w for s in ("validation", "test") for w in Dataset.load(args.exclude).split(s).works}
        segments = [s for s in segments if s.group not in held]
    logging.info("%d labelled train segments", len(segments))
    rng = np.random.default_rng(0)
    pick = rng.choice(len(segments), size=min(args.labelled, len(segments)), replace=False)
    for rank, i in enumerate(pick):
        s = segments[i]
        p = out / "labelled" / f"{rank:04d}-{hashlib.sha1(repr(s).encode()).hexdigest()[:10]}.npz"
        if p.exists():
            continue
        y = _segment_audio(s.audio_path, s.start, s.end)
        _store(p, y, bundle=bundle, peer=peer if rank < args.rendered else None, labels=s.labels)
        if rank % 50 == 0:
            logging.info("labelled %d / %d, %.0f s", rank, len(pick), time.monotonic() - t0)


def train(args) -> None:
    from mirsearch.models.bundle import load_bundle
    from mirsearch.training.distill import DistillOptions, finetune, load_pool

    pool = POOL / args.pool
    labelled = load_pool(pool / "labelled")
    unlabelled = load_pool(pool / "real") + [it for it in labelled if it.target is not None]
    logging.info("%d labelled, %d with teacher targets", len(labelled), len(unlabelled))
    opts = DistillOptions(lam=args.lam, lr=args.lr, max_minutes=args.minutes, steps_per_epoch=args.steps)
    res = finetune(load_bundle(), labelled, unlabelled, out=args.out, options=opts)
    logging.info("done: %d epochs in %s", res["epochs"], res["out"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pool")
    p.add_argument("--peer", required=True, help="teacher checkpoint (model_*.pt)")
    p.add_argument("--dataset", default=str(ROOT / "data" / "bench"))
    p.add_argument("--exclude", default=None, help="leave out the validation and test works of this dataset")
    p.add_argument("--per-track", type=int, default=2, help="real excerpts per track")
    p.add_argument("--ufoai", type=int, default=30, help="ufoai-music tracks (the first N by name)")
    p.add_argument("--excerpt", type=float, default=20.0, help="seconds per real excerpt")
    p.add_argument("--labelled", type=int, default=800, help="labelled train segments")
    p.add_argument("--rendered", type=int, default=200, help="of which with teacher targets")
    t = sub.add_parser("train")
    t.add_argument("--pool", default="fe8c4245e921acd7", help="pool folder under data/distill (the teacher's id)")
    t.add_argument("--lam", type=float, required=True)
    t.add_argument("--lr", type=float, default=3e-4)
    t.add_argument("--minutes", type=float, default=30.0)
    t.add_argument("--steps", type=int, default=40, help="steps per epoch (a bundle per epoch)")
    t.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    build_pools(args) if args.cmd == "pool" else train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
