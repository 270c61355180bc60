"""How far mirsearch's shipped theme-chroma model and the peer's real-data model (a possible teacher)
agree on real recordings compared with rendered ones (issue 14, "Training that generalises").

For excerpts of real game music (singularity-music, ufoai-music; unlabelled) both models' chroma is
computed at 10 Hz (l2 per frame); per frame the cosine similarity and whether the top pitch class is
the same. The same figures on the rendered test sample come from bench_learned_chroma's feature cache
(``--every-nth-work 4`` run). The teacher's chroma probabilities at the student's output rate (21.5 Hz)
are saved as float16 under ``data/teacher/<peer model_id>/`` as soft targets for a later distillation run.

    nice -n 10 .venv/bin/python benchmarks/teacher_agreement.py --peer \\
        ../shared/peer-models/themeenhancer-mtd/model_SDTW-E-W_bestVal.pt --excerpt 60 --ufoai 12
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import io
import os
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "data" / "real" / "pkgs"


def _excerpts(args):
    """(name, mono 22050 Hz audio) of the real excerpts: from ``--start`` s, ``--excerpt`` s long."""
    import soundfile as sf
    import soxr

    def cut(data, sr):
        y = data.mean(axis=1) if data.ndim == 2 else data
        y = y[int(args.start * sr) : int((args.start + args.excerpt) * sr)].astype(np.float32)
        return soxr.resample(y, sr, 22050).astype(np.float32) if sr != 22050 else y

    for f in sorted(glob.glob(str(REAL / "singularity-music" / "**" / "*.ogg"), recursive=True)):
        yield "singularity/" + Path(f).name, cut(*sf.read(f, always_2d=True))
    pk3 = REAL / "ufoai-music" / "usr" / "share" / "games" / "ufoai" / "base" / "0music.pk3"
    with zipfile.ZipFile(pk3) as z:
        names = sorted(n for n in z.namelist() if n.endswith(".ogg"))[: args.ufoai]
        for n in names:
            yield "ufoai/" + Path(n).name, cut(*sf.read(io.BytesIO(z.read(n)), always_2d=True))


def _agreement(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame cosine and top-class agreement of two unit-norm chroma matrices (12, n)."""
    n = min(A.shape[1], B.shape[1])
    A, B = A[:, :n], B[:, :n]
    return (A * B).sum(axis=0), (A.argmax(axis=0) == B.argmax(axis=0))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer", required=True, help="peer checkpoint (model_*.pt)")
    ap.add_argument("--excerpt", type=float, default=60.0, help="seconds per real track")
    ap.add_argument("--start", type=float, default=30.0, help="excerpt start (s)")
    ap.add_argument("--ufoai", type=int, default=12, help="ufoai tracks (first N by name)")
    ap.add_argument("--dataset", default=str(ROOT / "data" / "bench"))
    ap.add_argument("--name", default="teacher_agreement")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from mirsearch.features.hcqt import _resample_frames
    from mirsearch.features.learned import get_bundle, learned_chroma, learned_log_probs
    from mirsearch.features.peer_front_end import PEER_RATE, peer_hcqt, peer_readout
    from mirsearch.models.peer import load_peer

    peer = load_peer(args.peer)
    student = get_bundle(None)
    out_dir = ROOT / "data" / "teacher" / peer.model_id
    out_dir.mkdir(parents=True, exist_ok=True)
    load0, t0 = os.getloadavg(), time.perf_counter()
    per_track, cos_all, agree_all, seconds = [], [], [], 0.0
    for name, y in _excerpts(args):
        dur = len(y) / 22050
        P = peer.predict(peer_hcqt(y, sr=22050))
        T = peer_readout(P, duration=dur)
        S, _ = learned_chroma(y, sr=22050)
        lp, rate = learned_log_probs(y, sr=22050, bundle=student)
        target = _resample_frames(P.astype(np.float64), rate_in=PEER_RATE, rate_out=rate, n_out=lp.shape[1])
        key = hashlib.sha1(name.encode()).hexdigest()[:16]
        np.save(out_dir / f"{key}.npy", target.astype(np.float16))
        c, a = _agreement(S, T)
        cos_all.append(c)
        agree_all.append(a)
        seconds += dur
        blank = float(np.exp(lp[12]).mean())
        per_track.append(
            {
                "track": name,
                "seconds": round(dur, 1),
                "cosine": float(c.mean()),
                "top_agree": float(a.mean()),
                "student_mean_blank": round(blank, 3),
            }
        )
        print(f"{name}: cosine {c.mean():.3f}, same top class {a.mean():.3f}", flush=True)
    real = {
        "frames": int(sum(len(c) for c in cos_all)),
        "seconds": round(seconds, 1),
        "cosine": float(np.concatenate(cos_all).mean()),
        "top_agree": float(np.concatenate(agree_all).mean()),
    }
    rendered = _rendered(Path(args.dataset), peer.model_id, student.model_id)
    print(f"real: {real}\nrendered test sample: {rendered}")
    write_results(
        args.name,
        {
            "peer": peer.path.name,
            "peer_model_id": peer.model_id,
            "student_model_id": student.model_id,
            "excerpt_seconds": args.excerpt,
            "start": args.start,
            "real": real,
            "rendered": rendered,
            "tracks": per_track,
            "load_average_start": load0,
            "load_average_end": os.getloadavg(),
            "seconds": round(time.perf_counter() - t0, 1),
            "targets": str(out_dir.relative_to(ROOT)),
        },
    )
    return 0


def _rendered(dataset: Path, peer_id: str, student_id: str) -> dict:
    """The same agreement on the versions of the test split that bench_learned_chroma cached for both."""
    cache = dataset / "cache" / "bench_features" / "test"
    a_dir, b_dir = cache / f"learned-{student_id}", cache / f"peer-{peer_id}"
    cos, agree = [], []
    for f in sorted(b_dir.glob("*.npy")):
        if (a_dir / f.name).exists():
            c, a = _agreement(np.load(a_dir / f.name), np.load(f))
            cos.append(c)
            agree.append(a)
    if not cos:
        return {"versions": 0}
    return {
        "versions": len(cos),
        "frames": int(sum(len(c) for c in cos)),
        "cosine": float(np.concatenate(cos).mean()),
        "top_agree": float(np.concatenate(agree).mean()),
    }


if __name__ == "__main__":
    sys.exit(main())
