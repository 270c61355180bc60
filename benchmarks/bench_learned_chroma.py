"""Theme retrieval with learned chroma variants against standard chroma, CENS and basic-pitch (issue 5).

For a split of a dataset (default: test) every theme of the split is a query (notated in C, rendered to
chroma at its nominal tempo, matched in all 12 transpositions); the database is every version of the
split. Subsequence DTW (cosine cost) gives each version its best matching cost; the versions are ranked
by it. A query's rank is the rank of the first version in which the theme occurs.

    .venv/bin/python benchmarks/bench_learned_chroma.py --dataset data/bench --default \
        --bundle linear=data/runs/linear --bundle strong=data/runs/strong --bundle sdtw=data/runs/sdtw \
        --basic-pitch [--split test] [--max-works K] [--name learned_chroma_full]

Prints Top-1 / Top-5 / Top-10 / MRR per variant and writes ``benchmarks/results/NAME.json``.

``--peer DIR`` adds a row per published checkpoint ``DIR/model_*.pt`` of the peer's ThemeEnhancer
(:mod:`mirsearch.models.peer`, front end :mod:`mirsearch.features.peer_front_end`: its own HCQT at
24.6 Hz, computed once per version for all checkpoints, not cached); each row gets paired intervals
against the shipped default model (``--default``) on the same queries:

    nice -n 10 .venv/bin/python benchmarks/bench_learned_chroma.py --dataset data/bench --default \
        --peer ../shared/peer-models/themeenhancer-mtd --no-hcqt-cache --name learned_chroma_peer

Features are cached per variant under ``DATASET/cache/bench_features/SPLIT/``: standard chroma under a
key of its feature configuration and of the source of ``mirsearch/features/chroma.py`` (a changed
chroma is re-extracted), learned chroma under the bundle's ``model_id``. The HCQT of every version is
computed once and cached as float16 (``DATASET/cache/bench_hcqt/``) so that several bundles share it;
``--extract-only`` fills the caches without evaluating (to spread the work over processes).

Inference-time variants of a row (issue 14, session 14; features from the same caches): ``--fusion NAME=A+B``
(early cost fusion: subsequence DTW on ``w`` x the cosine cost of row A + (1 - ``w``) x row B's, per
``--fusion-weights`` value, :func:`fuse_features`; measured, not in the product), ``--late-fusion NAME=A+B``
(each row's per-version costs over their median, then weighted), ``--tta NAME=B[:K,...]`` (bundle B's class
probabilities averaged over the HCQT moved by K bins, :func:`tta_probs`; measured, not in the product), ``--upper``
(the stored upper-register chroma as a row), ``--per-version KEYS`` (each version's best cost over the median of
its matching function) and ``--power KEY=G,...`` (a row's chroma raised to a power):

    nice -n 10 .venv/bin/python benchmarks/bench_learned_chroma.py --dataset data/mutopia_themes --split validation \
        --default --tta tta=default --upper --fusion fc=default+chroma --late-fusion lc=default+chroma \
        --fusion-weights 0.4,0.5,0.6,0.7,0.8,0.9 --per-version default --name mutopia_themes_validation_s14

basic-pitch (Bittner et al., ICASSP 2022; ``make bench-setup`` installs it without TensorFlow) runs its
ONNX model ``nmp.onnx`` with basic-pitch's own windowing (2 s windows, 30 frames overlap, 86 Hz
output). Both posteriorgrams are cached at its frame rate as float16, (2, 88, n): the note posteriorgram
(88 piano keys, A0 first) and the contour posteriorgram (264 bins, 3 per semitone) max-pooled to
semitones. A row folds one of them to 12 pitch classes by summation, averages to 10 Hz and
l2-normalises per frame; ``>= 0.3`` rows first zero activations below 0.3, basic-pitch's own default
frame threshold for note creation (not tuned here): without it every frame also sums the small
activations of all other keys, which flatten the chroma.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, paired_columns, print_table, write_results  # noqa: E402

FEATURE_RATE = 10.0
#: lowest MIDI pitch of basic-pitch's outputs (A0)
BASIC_PITCH_MIDI_MIN = 21
#: basic-pitch's default frame threshold (``predict(frame_threshold=0.3)``)
BASIC_PITCH_THRESHOLD = 0.3
#: basic-pitch rows: key -> (posteriorgram, activation threshold)
BASIC_PITCH_ROWS = {
    "basic-pitch note": ("note", 0.0),
    "basic-pitch note>=0.3": ("note", BASIC_PITCH_THRESHOLD),
    "basic-pitch contour>=0.3": ("contour", BASIC_PITCH_THRESHOLD),
}
#: cache tag of the stored basic-pitch posteriorgrams
BASIC_PITCH_TAG = "basic_pitch-post"


def _vkey(version_id: str) -> str:
    return hashlib.sha1(version_id.encode()).hexdigest()[:16]


#: git revision whose chroma.py / registry.py compute the standard chroma (None: the working tree)
CHROMA_REV: str | None = None


def _module_at(rev: str, relpath: str, name: str):
    """Module ``relpath`` (under src/mirsearch) as it is in git revision ``rev``."""
    import importlib.util
    import tempfile

    src = _git("show", f"{rev}:src/mirsearch/{relpath}")
    if not src:
        raise SystemExit(f"--chroma-rev {rev}: src/mirsearch/{relpath} not found")
    d = Path(tempfile.gettempdir()) / f"mirsearch-bench-{_git('rev-parse', '--short', rev)}"
    d.mkdir(exist_ok=True)
    path = d / Path(relpath).name
    path.write_text(src + "\n")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def chroma_modules():
    """(chroma module, registry module) of :data:`CHROMA_REV` or of the working tree."""
    if CHROMA_REV is None:
        import mirsearch.features.chroma as chroma_mod
        import mirsearch.features.registry as registry_mod

        return chroma_mod, registry_mod
    return (
        _module_at(CHROMA_REV, "features/chroma.py", "bench_chroma_at_rev"),
        _module_at(CHROMA_REV, "features/registry.py", "bench_registry_at_rev"),
    )


def chroma_tag() -> str:
    """Cache tag of standard chroma: feature configuration and source of chroma.py."""
    chroma_mod, registry_mod = chroma_modules()
    src = hashlib.sha1(Path(chroma_mod.__file__).read_bytes().rstrip(b"\n") + b"\n").hexdigest()[:8]
    key = registry_mod.config_key(registry_mod.feature_config("chroma", feature_rate=FEATURE_RATE))
    return f"chroma-{key}-{src}"


def upper_tag() -> str:
    """Cache tag of the upper-register chroma (kind ``chroma_upper``): configuration and module source."""
    import mirsearch.features.matching_chroma as mc
    from mirsearch.features.registry import config_key

    src = hashlib.sha1(Path(mc.__file__).read_bytes().rstrip(b"\n") + b"\n").hexdigest()[:8]
    return f"chroma_upper-{config_key(mc.upper_config(feature_rate=FEATURE_RATE))}-{src}"


def fold_to_chroma(P: np.ndarray, *, midi_min: float, bins_per_semitone: int = 1) -> np.ndarray:
    """Sum the pitch bins of a posteriorgram into 12 pitch classes.

    Parameters
    ----------
    P : np.ndarray, shape (n_bins, n_frames)
        Non-negative activations; bin ``k`` has MIDI pitch ``midi_min + k / bins_per_semitone``.
    midi_min : float
        MIDI pitch of bin 0.
    bins_per_semitone : int
        Frequency resolution; every bin goes to the pitch class of its nearest semitone.

    Returns
    -------
    np.ndarray, shape (12, n_frames), float64
        Row 0 is C.
    """
    P = np.asarray(P, dtype=np.float64)
    pcs = np.round(midi_min + np.arange(P.shape[0]) / bins_per_semitone).astype(int) % 12
    C = np.zeros((12, P.shape[1]))
    np.add.at(C, pcs, P)
    return C


class BasicPitch:
    """basic-pitch's ONNX model on one thread, fed as basic-pitch's ``run_inference`` feeds it."""

    def __init__(self, *, batch: int = 8):
        import onnxruntime as ort
        from basic_pitch import FilenameSuffix, build_icassp_2022_model_path

        self.path = build_icassp_2022_model_path(FilenameSuffix.onnx)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
        self.batch = batch

    def posteriorgrams(self, y: np.ndarray, sr: int) -> tuple[dict[str, np.ndarray], float]:
        """``{"note": (88, n), "contour": (264, n)}`` and the frame rate (22050 / 256 Hz).

        The windowing of ``basic_pitch.inference.run_inference`` (not imported: it pulls resampy via
        ``note_creation``): half the overlap of zeros in front, windows of ``AUDIO_N_SAMPLES`` every
        ``AUDIO_N_SAMPLES - 30 * FFT_HOP`` samples (the last zero-padded), 15 frames dropped at both ends
        of every window's output, trimmed to ``floor(n_samples * 86.13 / 22050)`` frames.
        """
        import soxr
        from basic_pitch.constants import ANNOTATIONS_FPS, AUDIO_N_SAMPLES, AUDIO_SAMPLE_RATE, FFT_HOP

        if sr != AUDIO_SAMPLE_RATE:
            y = soxr.resample(y, sr, AUDIO_SAMPLE_RATE)
        y = np.asarray(y, dtype=np.float32)
        n_overlap = 30
        overlap_len = n_overlap * FFT_HOP
        hop = AUDIO_N_SAMPLES - overlap_len
        padded = np.concatenate([np.zeros(overlap_len // 2, dtype=np.float32), y])
        starts = range(0, len(padded), hop)
        windows = np.zeros((len(starts), AUDIO_N_SAMPLES, 1), dtype=np.float32)
        for i, s0 in enumerate(starts):
            w = padded[s0 : s0 + AUDIO_N_SAMPLES]
            windows[i, : len(w), 0] = w
        outs = {"note": [], "contour": []}
        for i in range(0, len(windows), self.batch):
            contour, note = self.session.run(
                ["StatefulPartitionedCall:0", "StatefulPartitionedCall:1"],
                {"serving_default_input_2:0": windows[i : i + self.batch]},
            )
            outs["note"].append(note)
            outs["contour"].append(contour)
        n_frames = int(np.floor(len(y) * (ANNOTATIONS_FPS / AUDIO_SAMPLE_RATE)))
        half = n_overlap // 2
        res = {}
        for k, v in outs.items():
            v = np.concatenate(v)[:, half:-half, :]
            res[k] = v.reshape(-1, v.shape[2])[:n_frames].T
        return res, AUDIO_SAMPLE_RATE / FFT_HOP


def semitone_pool(P: np.ndarray, *, bins_per_semitone: int = 3) -> np.ndarray:
    """Maximum over the bins of each semitone: (88 * bins_per_semitone, n) -> (88, n).

    Bin ``k`` belongs to the semitone nearest to it (as in :func:`fold_to_chroma`): with 3 bins per
    semitone and bin 0 on A0, semitone ``j`` takes bins ``3j - 1, 3j, 3j + 1``.
    """
    P = np.asarray(P)
    semis = np.round(np.arange(P.shape[0]) / bins_per_semitone).astype(int)
    out = np.zeros((semis.max() + 1, P.shape[1]), dtype=P.dtype)
    np.maximum.at(out, semis, P)
    return out[:88]


def basic_pitch_chroma(post: np.ndarray, *, kind: str, threshold: float, duration: float) -> np.ndarray:
    """Chroma at 10 Hz from cached posteriorgrams ``(2, 88, n)`` at basic-pitch's frame rate.

    Parameters
    ----------
    post : np.ndarray, shape (2, 88, n_frames)
        Note (index 0) and semitone-pooled contour (index 1) activations in [0, 1].
    kind : {"note", "contour"}
    threshold : float
        Activations below it are set to zero before folding.
    duration : float
        Seconds of audio (sets the number of output frames).
    """
    from basic_pitch.constants import ANNOTATIONS_FPS

    P = np.asarray(post[0 if kind == "note" else 1], dtype=np.float64)
    P = np.where(P >= threshold, P, 0.0)
    return _to_rate(fold_to_chroma(P, midi_min=BASIC_PITCH_MIDI_MIN), ANNOTATIONS_FPS, duration)


def _to_rate(P: np.ndarray, rate: float, duration: float) -> np.ndarray:
    from mirsearch.features.hcqt import _resample_frames
    from mirsearch.features.learned import normalize_chroma

    n_out = 1 + int(np.floor(duration * FEATURE_RATE + 1e-9))
    if P.shape[1] == 0:
        return normalize_chroma(np.zeros((12, n_out)))
    return normalize_chroma(_resample_frames(P, rate_in=rate, rate_out=FEATURE_RATE, n_out=n_out))


def _hcqt_key(bundle, tuned: bool) -> str:
    """Folder of the HCQT cache for a bundle's input parameters (``-tuned``: centred on the estimated tuning)."""
    key = hashlib.sha1(repr(sorted(bundle.input.items())).encode()).hexdigest()[:10]
    return f"{key}-tuned" if tuned else key


def network_input(y: np.ndarray, *, sr: int, bundle, tuned: bool, path: Path | None) -> tuple[np.ndarray, bool]:
    """The HCQT of ``y`` for ``bundle`` (centred on its estimated tuning when ``tuned``, else at A440), read from
    or written to the float16 cache file ``path``; returns it and whether it was computed."""
    from mirsearch.features.learned import bundle_hcqt, hcqt_tuning

    if path is not None and path.exists():
        return np.load(path).astype(np.float32), False
    tuning = hcqt_tuning(y, sr=sr) if tuned else 0.0
    H = bundle_hcqt(y, sr=sr, input_config=bundle.input, tuning=tuning)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, H.astype(np.float16))
    return H, True


def extract(
    versions,
    cache: Path,
    *,
    bundles: dict,
    basic_pitch: bool,
    hcqt_cache: Path | None,
    standard: bool = True,
    peers: dict | None = None,
    tta: dict | None = None,
    upper: bool = False,
    untuned: dict | None = None,
) -> dict:
    """Fill the feature caches; returns seconds of audio and of computation per stage. ``tta`` maps a row
    name to a bundle whose class probabilities are averaged over the HCQT moved by -1, 0, +1 bins. Bundle rows
    get the HCQT centred on the recording's estimated tuning (as the product), ``untuned`` rows (name -> bundle)
    the HCQT at A440 (the product until session 17)."""
    from mirsearch.audio import load_audio

    chroma = chroma_modules()[0].chroma
    tags = {"chroma": chroma_tag()} if standard else {}
    if upper:
        tags["chroma_upper"] = upper_tag()
    untuned = untuned or {}
    tags.update({name: f"learned-{b.model_id}-tuned" for name, b in bundles.items()})
    tags.update({name: f"learned-{b.model_id}" for name, b in untuned.items()})
    peers = peers or {}
    tags.update({name: f"peer-{m.model_id}" for name, m in peers.items()})
    tta = tta or {}
    tags.update(
        {
            name: f"learned-{b.model_id}-tuned-tta{_shifts_tag(sh)}" + (f"-cut{cut:g}" if cut is not None else "")
            for name, (b, sh, cut) in tta.items()
        }
    )
    if basic_pitch:
        tags.update({key: BASIC_PITCH_TAG for key in BASIC_PITCH_ROWS})
    for t in tags.values():
        (cache / t).mkdir(parents=True, exist_ok=True)
    timing: dict[str, float] = {}
    audio_s: dict[str, float] = {}
    bp = None

    def clock(stage: str, t0: float, dur: float) -> None:
        timing[stage] = timing.get(stage, 0.0) + time.perf_counter() - t0
        audio_s[stage] = audio_s.get(stage, 0.0) + dur

    n_done = 0
    for i, v in enumerate(versions):
        k = _vkey(v.version_id)
        missing = {n: t for n, t in tags.items() if not (cache / t / f"{k}.npy").exists()}
        if not missing:
            continue
        t0 = time.perf_counter()
        y, sr = load_audio(v.path, sr=22050)
        dur = len(y) / sr
        clock("load", t0, dur)
        if "chroma" in missing:
            t0 = time.perf_counter()
            X, _ = chroma(y, sr=sr, feature_rate=FEATURE_RATE)
            clock("chroma", t0, dur)
            np.save(cache / missing["chroma"] / f"{k}.npy", X)
        if "chroma_upper" in missing:
            from mirsearch.features.matching_chroma import upper_chroma, upper_config

            t0 = time.perf_counter()
            X, _ = upper_chroma(y, sr=sr, config=upper_config(feature_rate=FEATURE_RATE))
            clock("chroma_upper", t0, dur)
            np.save(cache / missing["chroma_upper"] / f"{k}.npy", X)
        learned = [n for n in missing if n in bundles]
        augmented = [n for n in missing if n in tta]
        plain = [n for n in missing if n in untuned]
        hcqts: dict[bool, np.ndarray] = {}  # tuned? -> the network input of this version
        for n in learned + plain + augmented:
            b = bundles[n] if n in bundles else untuned[n] if n in untuned else tta[n][0]
            tuned = n not in plain
            if tuned not in hcqts:
                t0 = time.perf_counter()
                path = None if hcqt_cache is None else hcqt_cache / _hcqt_key(b, tuned) / f"{k}.npy"
                hcqts[tuned], computed = network_input(y, sr=sr, bundle=b, tuned=tuned, path=path)
                if computed:
                    clock("hcqt (tuning estimated)" if tuned else "hcqt", t0, dur)
            H = hcqts[tuned]
            t0 = time.perf_counter()
            if n in tta:
                _, sh, cut = tta[n]
                P = tta_probs(H if cut is None else low_cut(H, cut, b.input), bundle=b, shifts=sh)
                clock(f"network {n} ({len(sh)} runs)", t0, dur)
            else:
                P = np.exp(b.predict(H, num_threads=1)[:12].astype(np.float64))
                clock(f"network {n}", t0, dur)
            np.save(cache / missing[n] / f"{k}.npy", _to_rate(P, b.output_rate, dur))
        if any(n in peers for n in missing):
            todo = {n: cache / missing[n] / f"{k}.npy" for n in missing if n in peers}
            extract_peers(y, sr, peers, todo, clock)
        if basic_pitch and BASIC_PITCH_TAG in missing.values():
            if bp is None:
                bp = BasicPitch()
            t0 = time.perf_counter()
            post, _ = bp.posteriorgrams(y, sr)
            clock("basic-pitch", t0, dur)
            stacked = np.stack([post["note"], semitone_pool(post["contour"])]).astype(np.float16)
            np.save(cache / BASIC_PITCH_TAG / f"{k}.npy", stacked)
        n_done += 1
        if n_done % 10 == 0:
            rt = ", ".join(f"{s} {audio_s[s] / max(timing[s], 1e-9):.0f}x" for s in timing)
            print(f"  [{i + 1}/{len(versions)}] {rt}", flush=True)
    return {
        "tags": tags,
        "seconds": timing,
        "audio_seconds": audio_s,
        "x_realtime": {s: audio_s[s] / timing[s] for s in timing if timing[s] > 0},
    }


def shift_bins(H: np.ndarray, k: int) -> np.ndarray:
    """The HCQT moved ``k`` frequency bins up (``k < 0``: down), the bins moved in set to 0.

    Parameters
    ----------
    H : np.ndarray, shape (n_harmonics, n_bins, n_frames)
        Network input (:func:`mirsearch.features.learned.bundle_hcqt`).
    k : int
        Bins to move; with 3 bins per semitone one bin is a third of a semitone.

    Returns
    -------
    np.ndarray
        A new array of ``H``'s shape and dtype.
    """
    k = int(k)
    out = np.zeros_like(H)
    if k == 0:
        out[...] = H
    elif k > 0:
        out[:, k:] = H[:, :-k]
    else:
        out[:, :k] = H[:, -k:]
    return out


def centre_frames(X: np.ndarray, *, amount: float) -> np.ndarray:
    """A chroma sequence minus ``amount`` times its mean frame (the recording's steady pitch-class profile: the key
    its accompaniment keeps sounding), clipped at 0, frames made unit length again (silent ones stay 0).

    Parameters
    ----------
    X : np.ndarray, shape (12, n)
        Chroma frames (10 Hz).
    amount : float >= 0

    Returns
    -------
    np.ndarray, shape (12, n), float32
    """
    X = np.asarray(X, np.float64)
    Y = np.maximum(X - amount * X.mean(axis=1, keepdims=True), 0.0)
    n = np.linalg.norm(Y, axis=0, keepdims=True)
    return (Y / np.where(n > 0, n, 1.0)).astype(np.float32)


def hold_frames(X: np.ndarray, *, decay: float) -> np.ndarray:
    """Per-class decaying peak hold of a chroma sequence, frames made unit length again.

    ``Y[:, t] = max(X[:, t], decay * Y[:, t - 1])``: a class that was strong stays present for a while (a CTC network
    marks a held melody note at its onset only, then the accompaniment's later onsets take the frames).

    Parameters
    ----------
    X : np.ndarray, shape (12, n)
        Unit-length chroma frames (10 Hz).
    decay : float in [0, 1)
        Factor per frame.

    Returns
    -------
    np.ndarray, shape (12, n), float32
    """
    Y = np.array(X, dtype=np.float32, copy=True)
    for t in range(1, Y.shape[1]):
        np.maximum(Y[:, t], decay * Y[:, t - 1], out=Y[:, t])
    norm = np.linalg.norm(Y, axis=0, keepdims=True)
    return (Y / np.maximum(norm, 1e-8)).astype(np.float32)


def tta_probs(H: np.ndarray, *, bundle, shifts=(-1, 0, 1), num_threads: int = 1) -> np.ndarray:
    """Test-time augmentation: the 12 chroma probabilities averaged over the HCQT moved by ``shifts`` bins.

    Parameters
    ----------
    H : np.ndarray, shape (n_harmonics, n_bins, n_frames)
        Network input (:func:`mirsearch.features.learned.bundle_hcqt`) of ``bundle``.
    bundle : ModelBundle
    shifts : sequence of int
        Frequency-bin offsets (:func:`shift_bins`); each one costs a network run.
    num_threads : int >= 1

    Returns
    -------
    np.ndarray, shape (12, n_out), float64
        Mean class probabilities (blank dropped) at ``bundle.output_rate``.
    """
    if not shifts:
        from mirsearch.errors import ParameterError

        raise ParameterError("tta_probs: shifts must not be empty")
    total = None
    for k in shifts:
        P = np.exp(bundle.predict(shift_bins(H, k), num_threads=num_threads)[:12].astype(np.float64))
        total = P if total is None else total + P
    return total / len(shifts)


def low_cut(H: np.ndarray, midi: float, input_config: dict) -> np.ndarray:
    """The HCQT with every bin whose (fundamental) pitch is below MIDI ``midi`` set to 0, in all harmonics."""
    k = int(np.ceil((midi - input_config["fmin_midi"]) * input_config["bins_per_semitone"] - 1e-9))
    out = H.copy()
    out[:, : max(k, 0)] = 0
    return out


def _shifts_tag(shifts) -> str:
    """Cache-tag part of a test-time augmentation's bin shifts (``1`` for the first set, -1, 0, +1)."""
    return "1" if tuple(shifts) == (-1, 0, 1) else "_".join(str(int(k)) for k in shifts)


def extract_peers(y: np.ndarray, sr: int, peers: dict, todo: dict, clock) -> None:
    """The peer's HCQT of one version once, then the checkpoints ``peers[name]`` of ``todo`` (name ->
    output .npy path) on it, saved as 10 Hz chroma; ``clock(stage, t0, audio seconds)`` records times."""
    from mirsearch.features.peer_front_end import peer_hcqt, peer_readout

    dur = len(y) / sr
    t0 = time.perf_counter()
    H = peer_hcqt(y, sr=sr)
    clock("peer hcqt (with tuning)", t0, dur)
    for name, path in todo.items():
        t0 = time.perf_counter()
        P = peers[name].predict(H, num_threads=1)
        clock(f"peer network {name}", t0, dur)
        np.save(path, peer_readout(P, duration=dur))


def load_peers(folder: str) -> dict:
    """``{"peer NAME": PeerModel}`` for every ``model_*.pt`` in ``folder`` (sorted by name)."""
    from mirsearch.models.peer import load_peer

    files = sorted(Path(folder).glob("model_*.pt"))
    if not files:
        raise SystemExit(f"--peer {folder}: no model_*.pt checkpoints there")
    models = [load_peer(f) for f in files]
    return {f"peer {m.name}": m for m in models}


def load_features(versions, cache: Path, tag: str, *, key: str | None = None) -> dict[str, np.ndarray]:
    """Chroma (12, n) at 10 Hz of every version; ``key`` of a basic-pitch row maps its posteriorgrams."""
    feats = {}
    for v in versions:
        X = np.load(cache / tag / f"{_vkey(v.version_id)}.npy")
        if key in BASIC_PITCH_ROWS:
            kind, threshold = BASIC_PITCH_ROWS[key]
            X = basic_pitch_chroma(X, kind=kind, threshold=threshold, duration=v.duration)
        feats[v.version_id] = X
    return feats


def _database(mats: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenated unit rows, offsets and the reset mask of a list of (n_i, K) matrices."""
    lengths = np.array([m.shape[0] for m in mats])
    offsets = np.r_[0, np.cumsum(lengths)]
    Y = np.concatenate(mats, axis=0)
    reset = np.zeros(Y.shape[0], dtype=np.bool_)
    reset[offsets[:-1]] = True
    return Y, offsets, reset


def theme_costs(ds, ids: list[str], Y, offsets, reset, query, *, shifts=range(12), per_version: bool = False) -> dict:
    """Best normalised subsequence-DTW cost of every theme of ``ds`` in every version ``ids``.

    ``query(theme)`` gives the theme's query as unit rows matching ``Y``'s columns; ``shifts`` are the cyclic
    shifts of the query's feature axis. Returns ``{theme_id: (relevant version ids, costs (n_versions,))}``.
    ``per_version``: each version's best cost divided by the median of its matching function (its background:
    a version that matches any theme cheaply is not ranked first for that alone).
    """
    from mirsearch.matching.subsequence import best_over_shifts

    out = {}
    for theme in ds.themes.values():
        relevant = ds.relevant_versions(theme.theme_id) & set(ids)
        if not relevant:
            continue
        cost, _, _ = best_over_shifts(query(theme.to_theme()), Y, shifts, reset=reset)
        cost = np.where(np.isfinite(cost), cost, np.inf)
        best = np.minimum.reduceat(cost, offsets[:-1])
        if per_version:
            med = np.array([np.median(c[np.isfinite(c)]) if np.isfinite(c).any() else np.inf
                            for c in np.split(cost, offsets[1:-1])])  # fmt: skip
            best = best / np.maximum(med, 1e-9)
        out[theme.theme_id] = (relevant, best)
    return out


def score_costs(ids: list[str], costs: dict) -> dict:
    """Top-k, MRR and per-query reciprocal ranks of the versions ranked by ``costs`` (:func:`theme_costs`)."""
    from mirsearch.evaluation import metrics

    rankings = [[ids[i] for i in np.argsort(c, kind="stable")] for _, c in costs.values()]
    relevants = [r for r, _ in costs.values()]
    scores = metrics.evaluate(rankings, relevants)
    rr = metrics.reciprocal_ranks(rankings, relevants)
    return {
        **{k: scores[k] for k in ("queries", "top1", "top5", "top10", "mrr")},
        "per_query_rr": {t: round(float(r), 6) for t, r in zip(costs, rr, strict=True)},
    }


def feature_costs(
    feats: dict[str, np.ndarray],
    ds,
    *,
    cens_smoothing: bool = False,
    harmonic_decay: float = 0.0,
    per_version=False,
    tail: tuple[float, float] | None = None,
):
    """(version ids, :func:`theme_costs`) of one feature kind (query overtone model ``harmonic_decay``)."""
    from mirsearch.matching.subsequence import unit_columns
    from mirsearch.search.theme import theme_query

    cens = chroma_modules()[0].cens
    ids = list(feats)
    mats = []
    for vid in ids:
        X = feats[vid]
        if cens_smoothing:
            from mirsearch.collection.collection import THEME_CENS

            X, _ = cens(X, feature_rate=FEATURE_RATE, **THEME_CENS)
        mats.append(unit_columns(X))
    Y, offsets, reset = _database(mats)
    kw = {"harmonic_decay": harmonic_decay} if harmonic_decay else {}

    def query(theme):
        return unit_columns(theme_query(theme, feature_rate=FEATURE_RATE, tail=tail, **kw))

    return ids, theme_costs(ds, ids, Y, offsets, reset, query, per_version=per_version)


def evaluate(
    feats: dict[str, np.ndarray],
    ds,
    *,
    cens_smoothing: bool = False,
    harmonic_decay: float = 0.0,
    per_version: bool = False,
    tail: tuple[float, float] | None = None,
) -> dict:
    """Top-k and MRR of all themes of ``ds`` over the versions in ``feats`` (query overtone model
    ``harmonic_decay``, see :func:`mirsearch.search.theme.theme_query`; ``per_version``: :func:`theme_costs`)."""
    t0 = time.perf_counter()
    ids, costs = feature_costs(
        feats, ds, cens_smoothing=cens_smoothing, harmonic_decay=harmonic_decay, per_version=per_version, tail=tail
    )
    return {**score_costs(ids, costs), "eval_seconds": round(time.perf_counter() - t0, 1)}


def fuse_features(A: np.ndarray, B: np.ndarray, *, weight: float) -> np.ndarray:
    """Two chroma kinds as one feature whose cosine cost is the weighted sum of theirs (cost fusion).

    Every frame of ``A`` and ``B`` is made unit length (:func:`unit_columns`; silent frames become the
    uniform vector), scaled by ``sqrt(weight)`` and ``sqrt(1 - weight)`` and interleaved (rows ``2k``: pitch
    class ``k`` of ``A``, rows ``2k + 1``: of ``B``). The result has unit frames, and for two fused frames
    ``1 - <f(a, b), f(q, r)> = weight (1 - cos(a, q)) + (1 - weight) (1 - cos(b, r))``: subsequence DTW with
    the cosine cost on fused features is DTW on the weighted sum of the two cost matrices. A cyclic shift
    by ``s`` semitones of both kinds is a shift by ``2 s`` of the fused axis (:func:`fused_shifts`).

    Parameters
    ----------
    A, B : np.ndarray, shape (12, n_frames)
        Chroma at the same frame rate; the longer one is cut to the shorter's length.
    weight : float in [0, 1]
        Weight of ``A``'s cost.

    Returns
    -------
    np.ndarray, shape (24, min(n_A, n_B)), float32
    """
    from mirsearch.errors import ParameterError
    from mirsearch.matching.subsequence import unit_columns

    if not 0.0 <= weight <= 1.0:
        raise ParameterError(f"weight={weight} must be in [0, 1]")
    if A.shape[0] != 12 or B.shape[0] != 12:
        raise ParameterError(f"fused features need two (12, n) chroma, got {A.shape} and {B.shape}")
    n = min(A.shape[1], B.shape[1])
    out = np.empty((24, n), dtype=np.float32)
    out[0::2] = np.sqrt(weight) * unit_columns(A[:, :n]).T
    out[1::2] = np.sqrt(1.0 - weight) * unit_columns(B[:, :n]).T
    return out


def fused_shifts(shifts) -> list[int]:
    """Cyclic shifts of the fused feature axis (:func:`fuse_features`) for semitone shifts ``shifts``."""
    return [2 * (int(s) % 12) for s in shifts]


def evaluate_fused(parts: list[dict[str, np.ndarray]], decays: list[float], weight: float, ds) -> dict:
    """Early fusion: subsequence DTW on the weighted sum of two cosine costs, ``weight`` x cost of
    ``parts[0]`` + (1 - ``weight``) x cost of ``parts[1]`` (each with its query overtone model ``decays[i]``),
    computed on fused features (:func:`fuse_features`)."""
    from mirsearch.search.theme import theme_query

    t0 = time.perf_counter()
    ids = [v for v in parts[0] if v in parts[1]]
    mats = [fuse_features(parts[0][v], parts[1][v], weight=weight).T for v in ids]
    Y, offsets, reset = _database([np.ascontiguousarray(m, dtype=np.float32) for m in mats])

    def query(theme):
        qa, qb = (theme_query(theme, feature_rate=FEATURE_RATE, harmonic_decay=d) for d in decays)
        return np.ascontiguousarray(fuse_features(qa, qb, weight=weight).T)

    costs = theme_costs(ds, ids, Y, offsets, reset, query, shifts=fused_shifts(range(12)))
    return {**score_costs(ids, costs), "eval_seconds": round(time.perf_counter() - t0, 1)}


def evaluate_late(parts: list[tuple[list[str], dict]], weight: float) -> dict:
    """Late fusion: per query, each part's per-version costs divided by their median over the versions,
    then ``weight`` x part 0 + (1 - ``weight``) x part 1 (``parts``: :func:`feature_costs` results)."""
    (ids, ca), (ids_b, cb) = parts
    if ids != ids_b:
        raise SystemExit("late fusion: the two parts rank different versions")
    costs = {}
    for t, (rel, a) in ca.items():
        b = cb[t][1]
        costs[t] = (rel, weight * a / max(np.median(a), 1e-9) + (1 - weight) * b / max(np.median(b), 1e-9))
    return score_costs(ids, costs)


def add_paired(rows: list[dict], *, reference: str) -> None:
    """Paired differences (Top-1, MRR) of every row against the row ``reference`` on the queries both
    answered (:func:`_common.paired_columns`); rows without per-query ranks are left as they are."""
    ref = next((r for r in rows if r["variant"] == reference and "per_query_rr" in r), None)
    if ref is None:
        return
    for r in rows:
        if r is ref or "per_query_rr" not in r:
            continue
        common = [t for t in ref["per_query_rr"] if t in r["per_query_rr"]]
        a = np.array([ref["per_query_rr"][t] for t in common])
        b = np.array([r["per_query_rr"][t] for t in common])
        r["vs"] = reference
        r.update(paired_columns((a == 1.0).astype(float), a, (b == 1.0).astype(float), b))


def speed(ds, *, seconds: float = 180.0, rounds: int = 3, peer=None) -> dict:
    """x realtime of HCQT, network (torch / onnxruntime, 1 and 2 threads) and ``learned_chroma`` on
    about ``seconds`` of the dataset's audio (whole versions concatenated); fastest of ``rounds``.
    With ``peer`` (a :class:`~mirsearch.models.peer.PeerModel`; all checkpoints share one network) also
    its front end, its network on one thread and the whole ``peer_chroma``."""
    import subprocess

    from mirsearch.audio import load_audio
    from mirsearch.features.learned import bundle_hcqt, hcqt_tuning, learned_chroma
    from mirsearch.models.bundle import load_bundle

    parts, total = [], 0.0
    for v in ds:
        y, sr = load_audio(v.path, sr=22050)
        parts.append(y)
        total += len(y) / sr
        if total >= seconds:
            break
    y = np.concatenate(parts)
    dur = len(y) / sr
    b = load_bundle()
    bundle_hcqt(y[: 5 * sr], sr=sr, input_config=b.input)  # warm-up (numba, filter bases)
    learned_chroma(y[: 5 * sr], sr=sr)
    stages = {
        "tuning estimate (hcqt_tuning)": lambda: hcqt_tuning(y, sr=sr),
        "hcqt": lambda: bundle_hcqt(y, sr=sr, input_config=b.input),
    }
    H = bundle_hcqt(y, sr=sr, input_config=b.input)
    stages["network torch 1 thread"] = lambda: b.predict(H, backend="torch", num_threads=1)
    stages["network torch 2 threads"] = lambda: b.predict(H, backend="torch", num_threads=2)
    stages["network onnx 1 thread"] = lambda: b.predict(H, backend="onnx", num_threads=1)
    stages["network onnx 2 threads"] = lambda: b.predict(H, backend="onnx", num_threads=2)
    stages["learned_chroma (tuning + hcqt + onnx 1 thread + post-processing)"] = lambda: learned_chroma(y, sr=sr)
    if peer is not None:
        stages.update(_peer_stages(y, sr, peer))
    out = {"audio_seconds": round(dur, 1), "versions": len(parts), "uptime_before": _uptime()}
    for name, fn in stages.items():
        wall, cpu = min(_timed(fn) for _ in range(rounds))
        out[name] = {
            "seconds": round(wall, 3),
            "x_realtime": round(dur / wall, 1),
            "cpu_seconds": round(cpu, 3),
            "x_realtime_per_cpu_second": round(dur / cpu, 1),
        }
        print(f"  {name}: {wall:.2f} s = {dur / wall:.0f}x realtime ({dur / cpu:.0f}x per CPU second)", flush=True)
    ref = b.predict(H, backend="torch")
    out["max_abs_diff_onnx_torch_log_probs"] = float(np.abs(b.predict(H, backend="onnx") - ref).max())
    out["uptime_after"] = _uptime()
    out["nproc"] = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return out


def _peer_stages(y: np.ndarray, sr: int, peer) -> dict:
    """Timed stages of the peer's chroma (front end with and without the tuning estimate, network)."""
    import librosa

    from mirsearch.features.peer_front_end import peer_chroma, peer_hcqt

    H = peer_hcqt(y, sr=sr)
    peer.predict(H[:, :64], backend="onnx")  # export / session outside the timing
    return {
        "peer tuning estimate (librosa.estimate_tuning)": lambda: librosa.estimate_tuning(
            y=y, sr=sr, bins_per_octave=36
        ),
        "peer hcqt (6 CQTs, tuning given)": lambda: peer_hcqt(y, sr=sr, tuning=0.0),
        "peer network torch 1 thread": lambda: peer.predict(H, backend="torch", num_threads=1),
        "peer network onnx 1 thread": lambda: peer.predict(H, backend="onnx", num_threads=1),
        "peer_chroma (tuning + hcqt + onnx 1 thread + read-out)": lambda: peer_chroma(y, sr=sr, model=peer),
    }


def _timed(fn) -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds of this process) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def _uptime() -> str:
    import subprocess

    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _git(*args: str) -> str:
    import subprocess

    root = Path(__file__).resolve().parents[1]
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=root).stdout.strip()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--bundle", action="append", default=[], help="NAME=DIR of a trained bundle (repeatable)")
    ap.add_argument("--default", action="store_true", help="also evaluate the packaged default bundle")
    ap.add_argument("--basic-pitch", action="store_true", help="also evaluate the basic-pitch baseline")
    ap.add_argument("--peer", default=None, metavar="DIR", help="also evaluate every peer checkpoint DIR/model_*.pt")
    ap.add_argument("--no-contour", action="store_true", help="basic-pitch: only the note posteriorgram row")
    ap.add_argument("--max-works", type=int, default=None, help="only the first K works of the split")
    ap.add_argument(
        "--every-nth-work", type=int, default=None, metavar="N", help="only works 0, N, 2N, ... of the split (a sample)"
    )
    ap.add_argument("--extract-only", action="store_true", help="fill the feature caches, do not evaluate")
    ap.add_argument("--no-standard", action="store_true", help="with --extract-only: skip standard chroma")
    ap.add_argument(
        "--untuned",
        action="append",
        default=[],
        metavar="NAME=BUNDLE",
        help="a row of BUNDLE (a --bundle name, 'default' or a directory) with the HCQT at A440 instead of "
        "centred on the estimated tuning (the product before session 17)",
    )
    ap.add_argument("--no-hcqt-cache", action="store_true", help="do not cache the HCQT (float16) on disk")
    ap.add_argument("--name", default="learned_chroma", help="results file name")
    ap.add_argument(
        "--chroma-rev", default=None, help="git revision of chroma.py/registry.py for standard chroma (default: tree)"
    )
    ap.add_argument(
        "--chroma-query-decay", type=float, default=0.0, help="query overtone model for the chroma and CENS rows"
    )
    ap.add_argument("--reuse-from", action="append", default=[], help="also keep rows of this results file")
    ap.add_argument(
        "--variants",
        default=None,
        help="evaluate only these (comma-separated: chroma, cens, bundle NAMEs, 'basic-pitch note', ...)",
    )
    ap.add_argument("--reuse", action="store_true", help="keep rows of NAME.json whose features are unchanged")
    ap.add_argument(
        "--ensemble",
        action="append",
        default=[],
        metavar="NAME=A+B",
        help="a row averaging the 12 class probabilities of bundles A and B (names of --bundle / 'default')",
    )
    ap.add_argument(
        "--fusion",
        action="append",
        default=[],
        metavar="NAME=A+B",
        help="rows of early cost fusion (weighted sum of the cosine costs of rows A and B: 'chroma', 'default', "
        "a --bundle, --ensemble or --tta name), one per --fusion-weights value (the weight of A)",
    )
    ap.add_argument(
        "--late-fusion",
        action="append",
        default=[],
        metavar="NAME=A+B",
        help="rows of late fusion (per-version costs of A and B, each over its median, weighted sum)",
    )
    ap.add_argument("--fusion-weights", default="0.5,0.6,0.7,0.8,0.9", help="weights of part A (comma-separated)")
    ap.add_argument(
        "--fusion-chroma-decay",
        type=float,
        default=0.3,
        help="query overtone model of a 'chroma' part of a fusion (the product's, QUERY_HARMONIC_DECAY)",
    )
    ap.add_argument(
        "--tta",
        action="append",
        default=[],
        metavar="NAME=B[:K1,K2,...][@MIDI]",
        help="a row of bundle B with test-time augmentation: class probabilities averaged over the HCQT "
        "shifted by K bins each (default -1,0,1: a third of a semitone; 36 bins = one octave); @MIDI: the bins "
        "below that pitch zeroed first (e.g. B:0@55: no input below G3)",
    )
    ap.add_argument(
        "--upper", action="store_true", help="also the upper-register chroma (stored kind chroma_upper, G3 up)"
    )
    ap.add_argument(
        "--per-version",
        default="",
        metavar="KEYS",
        help="extra rows of these keys (comma-separated) ranked by each version's best cost over its median",
    )
    ap.add_argument(
        "--power",
        action="append",
        default=[],
        metavar="KEY=G1,G2",
        help="rows of row KEY's 10 Hz chroma raised to the power G per element (sharpened G > 1, flattened G < 1)",
    )
    ap.add_argument(
        "--tail",
        action="append",
        default=[],
        metavar="KEY=BETA:TAU,...",
        help="rows of row KEY with a query whose held notes fade to uniform (floor BETA reached TAU s after onset)",
    )
    ap.add_argument(
        "--centre",
        action="append",
        default=[],
        metavar="KEY=A1,A2",
        help="rows of row KEY's recording chroma minus A times its mean frame over the recording (clipped at 0, "
        "frames made unit length again), tailed queries",
    )
    ap.add_argument(
        "--hold",
        action="append",
        default=[],
        metavar="KEY=G1,G2",
        help="rows of row KEY's recording chroma with a decaying peak hold (factor G per 10 Hz frame), tailed queries",
    )
    ap.add_argument("--speed-rounds", type=int, default=3, help="--speed: fastest of this many rounds")
    ap.add_argument("--speed", type=float, default=None, metavar="SECONDS", help="only measure inference speed")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    global CHROMA_REV
    CHROMA_REV = args.chroma_rev
    from mirsearch.datasets.manifest import Dataset
    from mirsearch.models.bundle import load_bundle

    ds = Dataset.load(args.dataset).split(args.split)
    if args.max_works is not None or args.every_nth_work is not None:
        keep = list(ds.works)[:: args.every_nth_work or 1][: args.max_works]
        manifest = dict(ds.manifest)
        manifest["works"] = [w for w in ds.manifest["works"] if w["id"] in keep]
        ds = Dataset(ds.root, manifest, splits=[args.split])
    versions = [v for v in ds if Path(v.path).exists()]
    if args.speed is not None:
        peer = next(iter(load_peers(args.peer).values())) if args.peer else None
        res = speed(versions, seconds=args.speed, rounds=args.speed_rounds, peer=peer)
        print(f"wrote {write_results(args.name, {'dataset': args.dataset, 'split': args.split, 'speed': res})}")
        return 0
    hours = sum(v.duration for v in versions) / 3600
    print(f"{args.dataset} {args.split}: {len(versions)} versions ({hours:.2f} h), {len(ds.themes)} themes", flush=True)
    cache = Path(args.dataset) / "cache" / "bench_features" / args.split
    hcqt_cache = None if args.no_hcqt_cache else Path(args.dataset) / "cache" / "bench_hcqt" / args.split
    named = [tuple(b.split("=", 1)) for b in args.bundle]
    if args.default:
        named.insert(0, ("default", None))
    bundles = {name: load_bundle(path) for name, path in named}
    untuned = {}
    for name, path in (u.split("=", 1) for u in args.untuned):
        untuned[name] = bundles[path] if path in bundles else load_bundle(None if path == "default" else path)
    tta = {}
    for name, spec in (t.split("=", 1) for t in args.tta):
        spec, _, cut = spec.partition("@")
        b, _, sh = spec.partition(":")
        shifts = tuple(int(k) for k in sh.split(",")) if sh else (-1, 0, 1)
        tta[name] = (bundles[b], shifts, float(cut) if cut else None)
    peers = load_peers(args.peer) if args.peer else {}
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    info = extract(
        versions,
        cache,
        bundles=bundles,
        basic_pitch=args.basic_pitch,
        hcqt_cache=hcqt_cache,
        standard=not (args.extract_only and args.no_standard),
        peers=peers,
        tta=tta,
        upper=args.upper,
        untuned=untuned,
    )
    print(f"features ready in {time.perf_counter() - t0:.0f} s; x realtime: {info['x_realtime']}", flush=True)
    if args.extract_only:
        return 0
    tags = info["tags"]
    previous = {}
    sources = ([RESULTS / f"{args.name}.json"] if args.reuse else []) + [Path(f) for f in args.reuse_from]
    for old in sources:
        import json

        if old.exists():
            d = json.loads(old.read_text())
            if (
                d.get("dataset") == args.dataset
                and d.get("split") == args.split
                and d.get("max_works") == args.max_works
                and d.get("every_nth_work") == args.every_nth_work
            ):
                previous.update({(r["variant"], r.get("tag")): r for r in d["rows"]})
    variants = [("standard chroma", "chroma", {}, False), ("CENS", "chroma", {}, True)]
    if args.upper:
        variants.append(("upper-register chroma (G3 up)", "chroma_upper", {}, False))
    for name, b in bundles.items():
        t = b.config.get("training", {})
        meta = {"loss": t.get("loss", "?"), "epoch": t.get("epochs"), "model_id": b.model_id}
        label = "learned (CTC, shipped default)" if name == "default" else f"learned ({name})"
        variants.append((label, name, meta, False))
    for name, b in untuned.items():
        variants.append((f"learned ({name}, HCQT at A440)", name, {"model_id": b.model_id, "tuning": 0.0}, False))
    ensembles = {name: parts.split("+") for name, parts in (e.split("=", 1) for e in args.ensemble)}
    for name, parts in ensembles.items():
        tags[name] = "ensemble-" + "+".join(tags[p].removeprefix("learned-") for p in parts)
        meta = {"ensemble": [bundles[p].model_id if p in bundles else tags[p] for p in parts]}
        variants.append((f"learned ({name})", name, meta, False))
    for name, (b, sh, cut) in tta.items():
        label = f"learned ({name}, HCQT {'/'.join(f'{k:+d}' if k else '0' for k in sh)} bins)"
        if cut is not None:
            label = label[:-1] + f", bins below MIDI {cut:g} zeroed)"
        variants.append((label, name, {"model_id": b.model_id, "tta": list(sh), "low_cut_midi": cut}, False))
    for name, m in peers.items():
        meta = {"checkpoint": m.path.name, "ctc": m.net.ctc, "model_id": m.model_id}
        variants.append((f"{name} (ThemeEnhancer, MTD)", name, meta, False))
    if args.basic_pitch:
        for key, (kind, threshold) in BASIC_PITCH_ROWS.items():
            if kind == "contour" and args.no_contour:
                continue
            label = f"basic-pitch ({kind} posteriorgram{f', >= {threshold:g}' if threshold else ''})"
            variants.append((label, key, {}, False))
    rows = []
    cols = ["variant", "queries", "top1", "top5", "top10", "mrr"]

    def save():
        return write_results(
            args.name,
            {
                "dataset": args.dataset,
                "split": args.split,
                "max_works": args.max_works,
                "every_nth_work": args.every_nth_work,
                "versions": len(versions),
                "hours": round(hours, 3),
                "chroma_commit": _git(
                    "log", "-1", "--format=%h %s", args.chroma_rev or "HEAD", "--", "src/mirsearch/features/chroma.py"
                ),
                "chroma_rev": args.chroma_rev or "working tree",
                "chroma_tag": tags["chroma"],
                "load_average_start": load0,
                "load_average_end": os.getloadavg(),
                "extraction": info,
                "rows": rows,
            },
        )

    if args.variants:  # select by key: chroma, cens, a bundle name, "basic-pitch note", ...
        keep = set(args.variants.split(","))
        variants = [v for v in variants if ("cens" if v[3] else v[1]) in keep]
    for variant, key, meta, smooth in variants:
        decay = args.chroma_query_decay if key in ("chroma", "chroma_upper") else 0.0
        tag = tags[key] + ("+cens" if smooth else "") + (f"+decay{decay:g}" if decay else "")
        if (variant, tag) in previous:
            rows.append(previous[(variant, tag)])
        else:
            if key in ensembles:
                parts = [load_features(versions, cache, tags[p]) for p in ensembles[key]]
                feats = {v: np.mean([f[v] for f in parts], axis=0) for v in parts[0]}
            else:
                feats = load_features(versions, cache, tags[key], key=key)
            res = evaluate(feats, ds, cens_smoothing=smooth, harmonic_decay=decay)
            rows.append({"variant": variant, **meta, "tag": tag, "query_harmonic_decay": decay, **res})
            save()  # after every row: a long run that is stopped keeps what it finished
        print_table(rows[-1:], cols)

    def part_features(key):
        if key in ensembles:
            parts = [load_features(versions, cache, tags[p]) for p in ensembles[key]]
            return {v: np.mean([f[v] for f in parts], axis=0) for v in parts[0]}
        return load_features(versions, cache, tags[key], key=key)

    weights = [float(w) for w in args.fusion_weights.split(",")]
    for kind, specs in (("early", args.fusion), ("late", args.late_fusion)):
        for name, pair in (f.split("=", 1) for f in specs):
            keys = pair.split("+")
            decays = [args.fusion_chroma_decay if k in ("chroma", "chroma_upper") else 0.0 for k in keys]
            feats = None
            late = None
            for w in weights:
                key = f"{name}@{w:g}"
                if args.variants and not ({name, key} & set(args.variants.split(","))):
                    continue
                variant = f"{kind} fusion {name} ({keys[0]} x {w:g} + {keys[1]} x {1 - w:g})"
                tag = f"{kind}:{tags[keys[0]]}+{tags[keys[1]]}@{w:g}:decay{decays[0]:g},{decays[1]:g}"
                meta = {"fusion": kind, "parts": keys, "weight": w, "query_harmonic_decays": decays}
                if (variant, tag) in previous:
                    rows.append(previous[(variant, tag)])
                else:
                    t0 = time.perf_counter()
                    if feats is None:
                        feats = [part_features(k) for k in keys]
                    if kind == "early":
                        res = evaluate_fused(feats, decays, w, ds)
                    else:
                        if late is None:
                            late = [feature_costs(f, ds, harmonic_decay=d) for f, d in zip(feats, decays, strict=True)]
                        res = {**evaluate_late(late, w), "eval_seconds": round(time.perf_counter() - t0, 1)}
                    rows.append({"variant": variant, **meta, "tag": tag, **res})
                    save()
                print_table(rows[-1:], cols)

    def derived_row(variant, tag, meta, compute):
        """A row kept from NAME.json when its variant and tag are there, else ``compute()``'s result."""
        if (variant, tag) in previous:
            rows.append(previous[(variant, tag)])
        else:
            rows.append({"variant": variant, "tag": tag, **meta, **compute()})
            save()
        print_table(rows[-1:], cols)

    def decay_of(key):
        return args.chroma_query_decay if key in ("chroma", "chroma_upper") else 0.0

    # rows of a transformed recording chroma: (option, specs, variant, tag suffix, transform, query tail)
    transforms = (
        (
            "power",
            args.power,
            "chroma to the power {g:g}",
            "+power{g:g}",
            lambda X, g: np.power(np.maximum(X, 0.0), g),
            None,
        ),
        (
            "centre",
            args.centre,
            "recording minus {g:g} x its mean frame, query tails 0.2:0.5",
            "+centre{g:g}+tail0.2:0.5",
            lambda X, g: centre_frames(X, amount=g),
            (0.2, 0.5),
        ),
        (
            "hold",
            args.hold,
            "recording held with decay {g:g} per frame, query tails 0.2:0.5",
            "+hold{g:g}+tail0.2:0.5",
            lambda X, g: hold_frames(X, decay=g),
            (0.2, 0.5),
        ),
    )
    for name, specs, label, suffix, transform, tail in transforms:
        for spec in specs:
            key, values = spec.split("=", 1)
            for g in (float(x) for x in values.split(",")):
                derived_row(
                    f"{key}, " + label.format(g=g),
                    tags[key] + suffix.format(g=g),
                    {name: g},
                    lambda key=key, g=g, transform=transform, tail=tail: evaluate(
                        {v: transform(X, g) for v, X in part_features(key).items()}, ds, tail=tail
                    ),
                )
    for spec in args.tail:
        key, settings = spec.split("=", 1)
        for beta, tau in (tuple(float(x) for x in st.split(":")) for st in settings.split(",")):
            decay = decay_of(key)
            derived_row(
                f"{key}, query tails floor {beta:g} after {tau:g} s",
                f"{tags[key]}+tail{beta:g}:{tau:g}" + (f"+decay{decay:g}" if decay else ""),
                {"tail": [beta, tau], "query_harmonic_decay": decay},
                lambda key=key, beta=beta, tau=tau, decay=decay: evaluate(
                    part_features(key), ds, tail=(beta, tau), harmonic_decay=decay
                ),
            )
    for key in [k for k in args.per_version.split(",") if k]:
        derived_row(
            f"{key}, each version's cost over its median",
            tags[key] + "+per-version-median",
            {"per_version": "median"},
            lambda key=key: evaluate(part_features(key), ds, per_version=True, harmonic_decay=decay_of(key)),
        )
    add_paired(rows, reference="learned (CTC, shipped default)")
    print_table(rows, cols + ["dTop-1", "lost/won", "dMRR"])
    out = save()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
