"""Speech/music segmentation benchmark: the packaged CNN, the classic features with a simple classifier, and
silero-vad, side by side on the held-out test files of ``benchmarks/build_segment_data.py``.

    .venv/bin/python benchmarks/build_segment_data.py          # once (data/segment/, git-ignored)
    .venv/bin/python benchmarks/bench_segment.py               # writes benchmarks/results/segment.json
    .venv/bin/python benchmarks/bench_segment.py --choose-smoothing   # the validation grid of the smoothing

Per condition (clean, speech under louder music 0..-10 dB, short 1-3 s segments, telephone band, dialogue of two
voices over game music): frame F for speech presence and music presence (10 ms frames, pooled over files), boundary
precision / recall of each presence track within 0.5 s. Speed in x realtime on one core (decode + resample +
features + network + smoothing, per file), and the peak memory of segmenting a 3-hour file against a 10-minute one.
silero-vad gives speech presence only (its ONNX model from the PyPI wheel, run with onnxruntime, 512-sample chunks
at 16 kHz, with the post-processing of its ``get_speech_timestamps`` defaults).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from mirsearch.describe.segment import LABELS, SegmentOptions, labels_to_segments, segment_file, smooth  # noqa: E402
from mirsearch.evaluation import segmentation as M  # noqa: E402

from _common import RESULTS, machine, print_table  # noqa: E402

DATA = ROOT / "data" / "segment"
CONDITIONS = ("clean", "under_music", "short", "telephone", "dialogue")


def load_files(folder: Path, conditions=CONDITIONS, limit: int | None = None) -> list[dict]:
    out = []
    for cond in conditions:
        for wav in sorted((folder / cond).glob("*.wav"))[:limit]:
            ref = json.loads(wav.with_suffix(".json").read_text())
            # a cut from one track to the next is no music boundary: spans under 0.1 s apart are one
            ref["music"] = _merge(ref["music"], 0.1)
            out.append({"path": wav, "condition": cond, **ref})
    return out


def _merge(intervals: list, gap: float) -> list:
    out: list = []
    for a, b in sorted(intervals):
        if out and a - out[-1][1] < gap:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def tracks_from_segments(segments, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Speech and music presence per 10 ms frame from labelled segments."""
    sp = [[s.start, s.end] for s in segments if "speech" in s.label]
    mu = [[s.start, s.end] for s in segments if "music" in s.label]
    return M.intervals_to_frames(sp, duration), M.intervals_to_frames(mu, duration)


# ----------------------------------------------------------------------------------------------- methods
def timed(fn, *args):
    """``fn(*args)`` with its wall time and CPU time (one thread: CPU time is the time on a free core)."""
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - t, time.process_time() - c


def run_cnn(item: dict, options: SegmentOptions, model=None) -> dict:
    res, sec, cpu = timed(lambda: segment_file(item["path"], options=options, model=model))
    sp, mu = tracks_from_segments(res.segments, item["duration"])
    return {"speech": sp, "music": mu, "seconds": sec, "cpu": cpu}


class Classic:
    """The classic features (Scheirer & Slaney) with gradient-boosted trees, trained on the training shards."""

    def __init__(self, split: str = "train"):
        from mirsearch.training.segmenter import train_classic

        t = time.perf_counter()
        self.models = train_classic(DATA, split=split)
        self.train_seconds = time.perf_counter() - t

    def probabilities(self, path: Path) -> np.ndarray:
        from mirsearch.audio import load_audio
        from mirsearch.features.segment_features import ANALYSIS_SR, classic_features

        y, _ = load_audio(path, sr=ANALYSIS_SR)
        F = classic_features(y, sr=ANALYSIS_SR).T
        return np.stack([m.predict_proba(F)[:, 1] for m in self.models])

    def run(self, item: dict, options: SegmentOptions) -> dict:
        def go():
            P = self.probabilities(item["path"])
            labels = smooth(P, rate=100.0, options=options)
            return labels_to_segments(labels, rate=100.0, duration=item["duration"])

        segs, sec, cpu = timed(go)
        sp, mu = tracks_from_segments(segs, item["duration"])
        return {"speech": sp, "music": mu, "seconds": sec, "cpu": cpu}


class Silero:
    """silero-vad 6.2.3's ONNX model run directly with onnxruntime (speech presence only)."""

    CHUNK, CONTEXT, SR = 512, 64, 16000

    def __init__(self):
        import onnxruntime as ort
        import silero_vad

        path = Path(silero_vad.__file__).parent / "data" / "silero_vad.onnx"
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def probabilities(self, y: np.ndarray) -> np.ndarray:
        state = np.zeros((2, 1, 128), np.float32)
        context = np.zeros((1, self.CONTEXT), np.float32)
        sr = np.array(self.SR, dtype=np.int64)
        n = -(-len(y) // self.CHUNK)
        y = np.pad(y, (0, n * self.CHUNK - len(y)))
        probs = np.empty(n, np.float32)
        for i in range(n):
            x = np.concatenate([context, y[None, i * self.CHUNK : (i + 1) * self.CHUNK]], axis=1)
            out, state = self.session.run(None, {"input": x, "state": state, "sr": sr})
            probs[i] = out[0, 0]
            context = x[:, -self.CONTEXT :]
        return probs

    def speech_intervals(self, probs: np.ndarray, duration: float) -> list:
        """Hysteresis and minimum lengths of silero's get_speech_timestamps defaults (0.5 / 0.35, 250 ms speech,
        100 ms silence, 30 ms padding)."""
        step = self.CHUNK / self.SR
        out, start, low_since = [], None, None
        for i, p in enumerate(probs):
            t = i * step
            if start is None:
                if p >= 0.5:
                    start, low_since = t, None
            elif p < 0.35:
                low_since = t if low_since is None else low_since
                if t + step - low_since >= 0.1:
                    out.append([start, low_since])
                    start, low_since = None, None
            else:
                low_since = None
        if start is not None:
            out.append([start, duration])
        out = [[max(0.0, a - 0.03), min(duration, b + 0.03)] for a, b in out if b - a >= 0.25]
        return out

    def run(self, item: dict, options=None) -> dict:
        from mirsearch.audio import load_audio

        def go():
            y, _ = load_audio(item["path"], sr=self.SR)
            return self.speech_intervals(self.probabilities(y), item["duration"])

        iv, sec, cpu = timed(go)
        return {"speech": M.intervals_to_frames(iv, item["duration"]), "music": None, "seconds": sec, "cpu": cpu}


# ----------------------------------------------------------------------------------------------- scoring
def score(items: list[dict], outputs: list[dict]) -> dict:
    """Pooled frame and boundary scores of one method on files of one condition."""
    fs = {"speech": [], "music": []}
    bs = {"speech": [], "music": []}
    secs = cpu = audio = 0.0
    for item, out in zip(items, outputs, strict=True):
        d = item["duration"]
        secs += out["seconds"]
        cpu += out.get("cpu", out["seconds"])
        audio += d
        for track in ("speech", "music"):
            if out[track] is None:
                continue
            ref = M.intervals_to_frames(item[track], d)
            est = out[track][: len(ref)]
            fs[track].append(M.frame_scores(est, ref))
            eb = M.boundaries(M.frames_to_intervals(est), d)
            bs[track].append(M.boundary_counts(eb, M.boundaries(item[track], d)))
    row = {
        "x_realtime": round(audio / cpu, 1) if cpu else None,
        "x_realtime_wall": round(audio / secs, 1) if secs else None,
    }
    for track in ("speech", "music"):
        if fs[track]:
            row[f"{track}_f"] = round(M.pooled_f(fs[track])["f"], 4)
            b = M.pooled_boundary(bs[track])
            row[f"{track}_bnd_p"], row[f"{track}_bnd_r"] = round(b["precision"], 3), round(b["recall"], 3)
    return row


def evaluate(items, methods: dict, options: SegmentOptions) -> list[dict]:
    rows = []
    for fn in methods.values():  # warm up: model loading, numba compilation
        fn(items[0], options)
    for cond in CONDITIONS:
        sub = [it for it in items if it["condition"] == cond]
        if not sub:
            continue
        for name, fn in methods.items():
            outs = [fn(it, options) for it in sub]
            rows.append({"condition": cond, "method": name, "files": len(sub), **score(sub, outs)})
            print(f"  {cond:12s} {name:10s} {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def smoothing_grid() -> list[SegmentOptions]:
    """The smoothing options compared on the validation files."""
    grid = [SegmentOptions(smoothing="none", min_segment=0.0, threshold=t) for t in (0.4, 0.5, 0.6)]
    for ms in (0.25, 0.5, 1.0, 2.0):
        for t, tm in itertools.product((0.4, 0.5, 0.6), (None, 0.6, 0.7, 0.8)):
            grid += [
                SegmentOptions(smoothing="hmm", min_segment=ms, switch_penalty=p, threshold=t, music_threshold=tm)
                for p in (2.0, 4.0, 6.0, 9.0, 12.0)
            ]
        grid += [SegmentOptions(smoothing="median", min_segment=ms, median_window=w) for w in (0.5, 1.0, 2.0)]
    return grid


def choose_smoothing(model=None) -> list[dict]:
    """Grid of smoothing options on the validation files (speech / music F and boundary F averaged)."""
    from mirsearch.describe.segment import file_probabilities

    items = load_files(DATA / "val_files")
    probs = [file_probabilities(it["path"], model=model) for it in items]
    grid = smoothing_grid()
    rows = []
    for opt in grid:
        outs = []
        for it, (P, rate, dur) in zip(items, probs, strict=True):
            segs = labels_to_segments(smooth(P, rate=rate, options=opt), rate=rate, duration=dur)
            sp, mu = tracks_from_segments(segs, it["duration"])
            outs.append({"speech": sp, "music": mu, "seconds": 1.0, "cpu": 1.0})
        r = score(items, outs)
        bf = np.mean([_f(r["speech_bnd_p"], r["speech_bnd_r"]), _f(r["music_bnd_p"], r["music_bnd_r"])])
        obj = (r["speech_f"] + r["music_f"]) / 2 * 0.8 + 0.2 * bf
        rows.append(
            {
                "smoothing": opt.smoothing,
                "min_segment": opt.min_segment,
                "switch_penalty": opt.switch_penalty,
                "median_window": opt.median_window,
                "threshold": opt.threshold,
                "music_threshold": opt.music_threshold,
                **r,
                "boundary_f": round(float(bf), 3),
                "objective": round(float(obj), 4),
            }
        )
    return rows


def music_track_speech(model=None, *, seconds: float = 240.0) -> dict:
    """Share of each training / validation music track's frames (its first ``seconds``, alone) in which the speech
    probability is above 0.5: which music the network hears as speech (the weights of ``--hard-music``)."""
    from build_segment_data import SR, music_split
    from mirsearch.features.segment_features import frame_probabilities

    out = {}
    for split in ("train", "val"):
        for path in music_split(split):
            y = np.load(path, mmap_mode="r")[: int(SR * seconds)].astype(np.float32) / 32767.0
            P, _ = frame_probabilities(y, sr=SR, model=model)
            out.setdefault(split, {})[path.stem] = round(float(np.mean(P[0] > 0.5)), 3)
    return out


def validation_conditions(options: SegmentOptions, model=None) -> list[dict]:
    """Speech / music F per condition on the validation files with ``options``."""
    from mirsearch.describe.segment import file_probabilities

    items = load_files(DATA / "val_files")
    rows = []
    for cond in CONDITIONS:
        sub = [it for it in items if it["condition"] == cond]
        outs = []
        for it in sub:
            P, rate, dur = file_probabilities(it["path"], model=model)
            sp, mu = tracks_from_segments(labels_to_segments(smooth(P, rate=rate, options=options), rate=rate,
                                                             duration=dur), it["duration"])  # fmt: skip
            outs.append({"speech": sp, "music": mu, "seconds": 1.0, "cpu": 1.0})
        rows.append({"condition": cond, "files": len(sub), **score(sub, outs)})
    return rows


def _f(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


# ----------------------------------------------------------------------------------------------- speed / memory
def make_long_file(seconds: float, target: Path) -> Path:
    """A long 16 kHz wav made of the test files end to end (written block by block)."""
    import soundfile as sf

    if target.exists() and sf.info(str(target)).duration >= seconds - 1:
        return target
    files = [it["path"] for it in load_files(DATA / "test")]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part.wav")
    with sf.SoundFile(str(tmp), "w", samplerate=16000, channels=1, subtype="PCM_16") as out:
        written, i = 0, 0
        while written < seconds * 16000:
            y, _ = sf.read(str(files[i % len(files)]), dtype="float32")
            y = y[: int(seconds * 16000) - written]
            out.write(y)
            written += len(y)
            i += 1
    tmp.replace(target)
    return target


def measure_memory(path: Path) -> dict:
    """Peak RSS of a fresh process that segments ``path`` (and its CPU time: one thread)."""
    code = (
        "import resource, sys, time; sys.path.insert(0, {!r})\n"
        "from mirsearch.describe.segment import segment_file\n"
        "t = time.process_time(); r = segment_file({!r}); t = time.process_time() - t\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, t, r.duration, len(r.segments))"
    ).format(str(ROOT / "src"), str(path))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    rss_kb, sec, dur, nseg = out.stdout.split()
    return {
        "duration_s": float(dur),
        "peak_rss_mb": round(int(rss_kb) / 1024, 1),
        "seconds": round(float(sec), 1),
        "x_realtime": round(float(dur) / float(sec), 1),
        "segments": int(nseg),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--choose-smoothing", action="store_true", help="only the validation grid of the smoothing")
    ap.add_argument("--limit", type=int, default=None, help="files per condition (default all)")
    ap.add_argument("--no-memory", action="store_true", help="skip the 3-hour memory run")
    ap.add_argument("--out", default=str(RESULTS / "segment.json"))
    ap.add_argument("--train-split", default="train2", help="training shards of the classic baseline")
    ap.add_argument("--bundle", default=None, help="a segmenter bundle directory (default: the packaged one)")
    ap.add_argument("--smoothing-out", default=str(RESULTS / "segment_smoothing.json"))
    ap.add_argument("--cnn-only", action="store_true", help="only the CNN (no baselines, no memory run)")
    ap.add_argument("--threshold", type=float, default=None, help="speech (and music) threshold, as chosen")
    ap.add_argument("--music-threshold", type=float, default=None, help="music threshold, as chosen")
    ap.add_argument("--music-tracks", default=None, help="write {split: {track: speech share}} (music alone) here")
    ap.add_argument("--val-conditions", action="store_true", help="only F per condition on the validation files")
    args = ap.parse_args(argv)
    from mirsearch.models.segmenter import SegmenterModel

    model = SegmenterModel.load(args.bundle)
    chosen = {k: v for k, v in (("threshold", args.threshold), ("music_threshold", args.music_threshold)) if v}
    if args.music_tracks:
        tracks = music_track_speech(model)
        Path(args.music_tracks).write_text(json.dumps(tracks["train"], indent=1) + "\n")
        print(json.dumps({k: round(float(np.mean(list(v.values()))), 3) for k, v in tracks.items()}))
        return 0
    if args.val_conditions:
        rows = validation_conditions(SegmentOptions(**chosen), model)
        print_table(rows, ["condition", "files", "speech_f", "music_f", "speech_bnd_p", "music_bnd_p"])
        return 0
    if args.choose_smoothing:
        rows = choose_smoothing(model)
        print_table(sorted(rows, key=lambda r: -r["objective"])[:20], list(rows[0]))
        meta = {"machine": machine(), "model_id": model.model_id}
        Path(args.smoothing_out).write_text(json.dumps({**meta, "rows": rows}, indent=1) + "\n")
        return 0
    options = SegmentOptions(**chosen)
    items = load_files(DATA / "test", limit=args.limit)
    methods = {"cnn": lambda it, o: run_cnn(it, o, model)}
    if not args.cnn_only:
        classic, silero = Classic(args.train_split), Silero()
        methods.update({"classic": classic.run, "silero-vad": silero.run})
    rows = evaluate(items, methods, options)
    result = {
        "machine": machine(),
        "model_id": model.model_id,
        "options": options.__dict__,
        "labels": list(LABELS),
        "rows": rows,
    }
    if not args.cnn_only:
        result["classic_train_seconds"] = round(classic.train_seconds, 1)
    if not (args.no_memory or args.cnn_only):
        result["memory"] = {
            "10min": measure_memory(make_long_file(600, DATA / "long" / "10min.wav")),
            "3h": measure_memory(make_long_file(3 * 3600, DATA / "long" / "3h.wav")),
        }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    cols = [
        "condition",
        "method",
        "speech_f",
        "music_f",
        "speech_bnd_p",
        "speech_bnd_r",
        "music_bnd_p",
        "music_bnd_r",
        "x_realtime",
    ]
    print_table(rows, cols)
    if "memory" in result:
        print(json.dumps(result["memory"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
