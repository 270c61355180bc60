"""Training the chroma network on (audio segment, theme label sequence) pairs.

Pipeline
--------
1. :class:`Segment` describes one training pair: a recording, the start and end of a theme occurrence
   in it (seconds: the weak alignment), the theme's pitch classes (already transposed to the
   recording), the notated durations (for linear scaling) and, if known, the audio onset of every note
   (strong alignment).
2. :class:`HCQTCache` computes the HCQT of every recording once and keeps it on disk as ``uint8``
   ``.npy`` files (the HCQT lies in ``[0, 1]``; 1/255 steps are 0.3 dB for 80 dB range), memory-mapped
   while training. The cache key includes the HCQT parameters and whether the HCQT is centred on the
   recording's estimated tuning (``centred=True``, as inference reads it) or at A440.
3. :func:`train` runs the loop: fixed seeds, ``torch.set_num_threads(2)``, Adam, batches of segments
   of similar length, a progress bar, validation after every epoch, a checkpoint after every epoch
   (``checkpoints/last.pt``, resumable), the best model (lowest validation loss) as a bundle in the
   output directory, and ``history.json`` with the curves.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mirsearch._util import atomic_save_npy
from mirsearch.errors import InputError, ParameterError
from mirsearch.models.bundle import ModelBundle, new_bundle
from mirsearch.models.network import BLANK
from mirsearch.training.checkpoint import HISTORY_FILE as HISTORY_FILE  # re-exported (the train CLI reads it)
from mirsearch.training.checkpoint import checkpoint_path, load_training_state, save_training_state, write_history
from mirsearch.training.losses import IGNORE, LOSSES, compute_loss, linear_frame_targets, strong_frame_targets

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Segment:
    """One weakly (and possibly strongly) aligned training pair.

    Attributes
    ----------
    recording : str
        Key of the recording (unique within the data set).
    audio_path : str
        Audio file of the recording.
    start, end : float
        The theme occurrence in seconds.
    labels : tuple of int
        Pitch classes (0 = C) of the theme's notes, transposed to the recording.
    durations : tuple of float or None
        Notated durations of the notes (any unit), for linear scaling.
    onsets : tuple of float or None
        Audio onset of every note in seconds (absolute), for strong alignment.
    group : str
        Work identifier (train/validation splits must not share works).
    pitches : tuple of int or None
        Sounding MIDI pitches of the notes (their registers), where the data set knows them: the target of
        CTC over pitches (:attr:`mirsearch.training.distill.DistillOptions.pitch_ctc`).
    """

    recording: str
    audio_path: str
    start: float
    end: float
    labels: tuple[int, ...]
    durations: tuple[float, ...] | None = None
    onsets: tuple[float, ...] | None = None
    group: str = ""
    pitches: tuple[int, ...] | None = None


def set_seeds(seed: int) -> None:
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (legacy global state used by third-party code)
    torch.manual_seed(seed)


class HCQTCache:
    """HCQT of recordings on disk as ``uint8`` ``.npy`` (value ``round(255 * H)``).

    Parameters
    ----------
    directory : path
        Cache directory; a subdirectory named after a hash of ``input_config`` holds the files
        (``<hash>-tuned`` for a centred cache, so the two kinds never share files).
    input_config : dict
        The ``input`` section of a bundle config (HCQT parameters).
    centred : bool
        Centre every HCQT on the recording's estimated tuning
        (:func:`mirsearch.features.learned.hcqt_tuning`), as inference does when
        :data:`mirsearch.features.learned.ESTIMATE_TUNING`; False: bins at A440.

    Attributes
    ----------
    tunings : dict of str to float
        Estimated tuning (semitones) of every recording computed by this instance (centred only).
    """

    def __init__(self, directory: str | os.PathLike, input_config: dict, *, centred: bool = False):
        key = hashlib.sha256(json.dumps(input_config, sort_keys=True).encode()).hexdigest()[:12]
        self.centred = bool(centred)
        self.directory = Path(directory) / (f"{key}-tuned" if self.centred else key)
        self.input_config = dict(input_config)
        self.tunings: dict[str, float] = {}
        self._open: dict[str, np.ndarray] = {}

    def path(self, recording: str) -> Path:
        safe = hashlib.sha1(recording.encode()).hexdigest()[:16]
        return self.directory / f"{safe}.npy"

    def compute(self, recording: str, audio_path: str) -> Path:
        """Compute and store the HCQT of one recording unless already cached."""
        out = self.path(recording)
        if out.exists():
            return out
        from mirsearch.audio import load_audio
        from mirsearch.features.learned import bundle_hcqt, hcqt_tuning

        y, sr = load_audio(audio_path, sr=self.input_config["sr"])
        tuning = hcqt_tuning(y, sr=sr) if self.centred else 0.0
        if self.centred:
            self.tunings[recording] = tuning
            logger.debug("%s: tuning %+.3f semitone", recording, tuning)
        H = bundle_hcqt(y, sr=sr, input_config=self.input_config, tuning=tuning)
        atomic_save_npy(out, np.round(H * 255.0).astype(np.uint8))
        return out

    def compute_all(self, segments: Sequence[Segment], *, progress: bool = False) -> None:
        """Make sure every recording of ``segments`` is cached."""
        todo = {}
        for s in segments:
            if not self.path(s.recording).exists():
                todo[s.recording] = s.audio_path
        if not todo:
            return
        logger.info("computing HCQT of %d recordings into %s", len(todo), self.directory)
        items = list(todo.items())
        if progress:
            from tqdm import tqdm

            items = tqdm(items, desc="HCQT", unit="rec")
        for rec, audio in items:
            self.compute(rec, audio)

    def get(self, recording: str) -> np.ndarray:
        """Memory-mapped uint8 HCQT (n_harmonics, n_bins, n_frames) of a cached recording."""
        arr = self._open.get(recording)
        if arr is None:
            path = self.path(recording)
            if not path.exists():
                raise InputError(f"{path}: HCQT of {recording!r} not cached")
            arr = np.load(path, mmap_mode="r")
            self._open[recording] = arr
        return arr


@dataclass
class Batch:
    """A padded batch: ``x`` (B, harmonics, bins, T_in) float32, ``lengths`` (B,) output frames,
    ``labels`` list of label arrays, ``frame_targets`` (B, T_out) int64 (or None)."""

    x: torch.Tensor
    lengths: torch.Tensor
    labels: list[np.ndarray]
    frame_targets: torch.Tensor | None


def make_batch(segments: Sequence[Segment], cache: HCQTCache, *, time_pool: int, loss: str) -> Batch:
    """Cut the segments out of the cached HCQTs, pad them and build the targets for ``loss``."""
    rate_in = cache.input_config["feature_rate"]
    rate_out = rate_in / time_pool
    crops, lens = [], []
    for s in segments:
        H = cache.get(s.recording)
        a = max(0, int(round(s.start * rate_in)) // time_pool * time_pool)
        b = min(H.shape[-1], int(round(s.end * rate_in)))
        n = max(1, (b - a) // time_pool)
        crop = np.zeros(H.shape[:2] + (n * time_pool,), dtype=np.float32)
        part = np.asarray(H[:, :, a : a + n * time_pool], dtype=np.float32) / 255.0
        crop[:, :, : part.shape[-1]] = part
        crops.append((crop, a))
        lens.append(n)
    t_max = max(lens)
    x = np.zeros((len(segments),) + crops[0][0].shape[:2] + (t_max * time_pool,), dtype=np.float32)
    for i, (crop, _) in enumerate(crops):
        x[i, :, :, : crop.shape[-1]] = crop
    frame_targets = None
    if loss in ("linear", "strong"):
        ft = np.full((len(segments), t_max), IGNORE, dtype=np.int64)
        for i, s in enumerate(segments):
            n = lens[i]
            if loss == "linear":
                ft[i, :n] = linear_frame_targets(s.labels, n, durations=s.durations)
            else:
                if s.onsets is None:
                    raise ParameterError(f"loss='strong' needs note onsets; segment of {s.recording} has none")
                t0 = crops[i][1] / rate_in
                ft[i, :n] = strong_frame_targets(s.labels, np.asarray(s.onsets) - t0, n, feature_rate=rate_out)
        frame_targets = torch.from_numpy(ft)
    return Batch(
        x=torch.from_numpy(x),
        lengths=torch.as_tensor(lens, dtype=torch.long),
        labels=[np.asarray(s.labels, dtype=np.int64) for s in segments],
        frame_targets=frame_targets,
    )


def make_batches(
    segments: Sequence[Segment], *, max_frames: int, rate: float, rng: np.random.Generator | None
) -> list[list[int]]:
    """Group segment indices into batches of similar duration with at most ``max_frames`` padded
    input frames each; shuffled (batches and order within length buckets) if ``rng`` is given."""
    durations = np.array([s.end - s.start for s in segments])
    order = np.argsort(durations + (rng.uniform(0, 1.0, len(durations)) if rng is not None else 0.0))
    batches, cur, cur_max = [], [], 0.0
    for i in order:
        n = durations[i] * rate
        if cur and max(cur_max, n) * (len(cur) + 1) > max_frames:
            batches.append(cur)
            cur, cur_max = [], 0.0
        cur.append(int(i))
        cur_max = max(cur_max, n)
    if cur:
        batches.append(cur)
    if rng is not None:
        rng.shuffle(batches)
    return batches


def _frame_accuracy(log_probs: torch.Tensor, batch: Batch, cache: HCQTCache, segments, time_pool) -> tuple:
    """Chroma accuracy (argmax over the 12 chroma classes) against strong targets, if onsets exist."""
    if any(s.onsets is None for s in segments):
        return 0, 0
    tb = make_batch(segments, cache, time_pool=time_pool, loss="strong").frame_targets
    pred = log_probs[:, :BLANK].argmax(dim=1)
    valid = tb != IGNORE
    return int(((pred == tb) & valid).sum()), int(valid.sum())


def evaluate(bundle: ModelBundle, segments: Sequence[Segment], cache: HCQTCache, *, loss: str, max_frames: int) -> dict:
    """Validation: mean loss of kind ``loss``, mean CTC loss, and chroma frame accuracy (strong targets)."""
    model = bundle.model
    model.eval()
    pool = model.time_pool
    batches = make_batches(segments, max_frames=max_frames, rate=cache.input_config["feature_rate"], rng=None)
    tot, tot_ctc, n, correct, count = 0.0, 0.0, 0, 0, 0
    with torch.no_grad():
        for idx in batches:
            segs = [segments[i] for i in idx]
            b = make_batch(segs, cache, time_pool=pool, loss=loss)
            lp = model(b.x)
            tot += float(
                compute_loss(loss, lp, labels=b.labels, lengths=b.lengths, frame_targets=b.frame_targets)
            ) * len(idx)
            tot_ctc += float(compute_loss("ctc", lp, labels=b.labels, lengths=b.lengths)) * len(idx)
            c, k = _frame_accuracy(lp, b, cache, segs, pool)
            correct += c
            count += k
            n += len(idx)
    return {
        "loss": tot / max(n, 1),
        "ctc": tot_ctc / max(n, 1),
        "chroma_accuracy": correct / count if count else None,
    }


@dataclass(frozen=True)
class TrainOptions:
    """Settings of :func:`train`.

    Attributes
    ----------
    loss : {"ctc", "linear", "strong", "sdtw"}
    epochs : int > 0
    lr : float > 0
        Adam learning rate (halved when the validation loss has not improved for 2 epochs).
    max_frames : int > 0
        Padded input frames per batch (batch size adapts to segment length).
    seed : int
        Seed of initialisation and shuffling; epoch ``e`` shuffles with ``(seed, e)`` so that a resumed
        run sees the same batches as an uninterrupted one.
    resume : bool
        Continue from ``out/checkpoints/last.pt`` if it exists.
    max_minutes : float, optional
        Stop after the epoch during which this much wall time has passed.
    progress : bool
        Show a tqdm progress bar.
    num_threads : {1, 2}
        Torch intra-op threads (on a shared 2-core machine one thread is often faster than two).
    segments_per_epoch : int, optional
        Train on a random subset of this many segments per epoch (drawn with ``(seed, epoch)``), so
        that a large data set gives more frequent validation and checkpoints.
    network : dict, optional
        Overrides of the network hyper-parameters.
    training_info : dict, optional
        Extra entries for the ``training`` section of the bundle config (e.g. the data set).
    """

    loss: str = "ctc"
    epochs: int = 20
    lr: float = 1e-3
    max_frames: int = 6000
    seed: int = 0
    resume: bool = False
    max_minutes: float | None = None
    progress: bool = True
    num_threads: int = 1
    segments_per_epoch: int | None = None
    network: dict | None = None
    training_info: dict | None = None

    def check(self) -> None:
        """Raise :class:`ParameterError` for a value out of range."""
        if self.loss not in LOSSES:
            raise ParameterError(f"loss={self.loss!r} must be one of {', '.join(LOSSES)}")
        if self.epochs <= 0:
            raise ParameterError(f"epochs={self.epochs!r} must be > 0")
        if self.num_threads not in (1, 2):
            raise ParameterError(f"num_threads={self.num_threads!r} must be 1 or 2")


def _train_epoch(model, optimizer, segments: Sequence[Segment], cache: HCQTCache, opts: TrainOptions, epoch: int):
    """One epoch of training; returns ``(mean training loss, seconds)``."""
    model.train()
    rng = np.random.default_rng([opts.seed, epoch])
    torch.manual_seed(opts.seed * 1000 + epoch)
    epoch_segments = list(segments)
    if opts.segments_per_epoch is not None and opts.segments_per_epoch < len(epoch_segments):
        pick = rng.choice(len(epoch_segments), size=opts.segments_per_epoch, replace=False)
        epoch_segments = [epoch_segments[i] for i in np.sort(pick)]
    rate = cache.input_config["feature_rate"]
    batches = make_batches(epoch_segments, max_frames=opts.max_frames, rate=rate, rng=rng)
    bar = None
    if opts.progress:
        from tqdm import tqdm

        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{opts.epochs}", unit="batch", leave=False)
    t0, tot, n = time.monotonic(), 0.0, 0
    for idx in bar if bar is not None else batches:
        b = make_batch([epoch_segments[i] for i in idx], cache, time_pool=model.time_pool, loss=opts.loss)
        lp = model(b.x)
        value = compute_loss(opts.loss, lp, labels=b.labels, lengths=b.lengths, frame_targets=b.frame_targets)
        optimizer.zero_grad()
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        tot += value.item() * len(idx)
        n += len(idx)
        if bar is not None:
            bar.set_postfix(loss=f"{tot / n:.3f}")
    if bar is not None:
        bar.close()
    return tot / max(n, 1), time.monotonic() - t0


def train(
    train_segments: Sequence[Segment],
    val_segments: Sequence[Segment],
    *,
    cache: HCQTCache,
    out: str | os.PathLike,
    options: TrainOptions | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    **overrides,
) -> dict:
    """Train a chroma network and write the best one as a bundle into ``out``.

    Parameters
    ----------
    train_segments, val_segments : sequence of Segment
        Training and validation pairs (from different works).
    cache : HCQTCache
        HCQT cache (missing recordings are computed first).
    out : path
        Output directory: bundle of the best epoch (``config.json``, ``weights.pt``),
        ``history.json``, ``checkpoints/last.pt``.
    options : TrainOptions, optional
        Loss, schedule, seeds (default :class:`TrainOptions`).
    on_epoch : callable, optional
        Called with each epoch's history entry.
    **overrides
        Fields of :class:`TrainOptions` replacing those of ``options`` (``train(..., loss="sdtw")``).

    Returns
    -------
    dict
        ``{"history": [...], "best_epoch": int, "best_val_loss": float, "bundle": str}``.
    """
    opts = dataclasses.replace(options or TrainOptions(), **overrides)
    opts.check()
    if not train_segments:
        raise ParameterError("no training segments")
    torch.set_num_threads(opts.num_threads)
    set_seeds(opts.seed)
    out = Path(out)
    ckpt_path = checkpoint_path(out)
    cache.compute_all(list(train_segments) + list(val_segments), progress=opts.progress)

    bundle = new_bundle(network=opts.network, input=cache.input_config)
    model = bundle.model
    optimizer = torch.optim.Adam(model.parameters(), lr=opts.lr)
    state = load_training_state(ckpt_path, model, optimizer, resume=opts.resume)
    history, best, start_epoch = [], math.inf, 0
    if state is not None:
        history, best, start_epoch = state.history, float(state.best), state.epoch + 1
    t_start = time.monotonic()
    info = {
        "loss": opts.loss,
        "seed": opts.seed,
        "lr": opts.lr,
        "max_frames": opts.max_frames,
        "n_train": len(train_segments),
        "n_val": len(val_segments),
        **(opts.training_info or {}),
    }
    for epoch in range(start_epoch, opts.epochs):
        train_loss, seconds = _train_epoch(model, optimizer, train_segments, cache, opts, epoch)
        val = evaluate(bundle, val_segments, cache, loss=opts.loss, max_frames=opts.max_frames) if val_segments else {}
        entry = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "val_loss": val.get("loss"),
            "val_ctc": val.get("ctc"),
            "val_chroma_accuracy": val.get("chroma_accuracy"),
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": seconds,
        }
        history.append(entry)
        logger.info("epoch %d: %s", epoch + 1, entry)
        if on_epoch is not None:
            on_epoch(entry)
        score = entry["val_loss"] if entry["val_loss"] is not None else entry["train_loss"]
        if score < best:
            best = score
            bundle.config["training"] = {**info, "epochs": epoch + 1, "history": history}
            bundle.save(out)
        elif len(history) >= 3 and all(h["val_loss"] is not None and h["val_loss"] > best for h in history[-2:]):
            for g in optimizer.param_groups:
                g["lr"] = g["lr"] * 0.5
        save_training_state(ckpt_path, model, optimizer, epoch=epoch, history=history, best=best)
        write_history(out, history)
        if opts.max_minutes is not None and (time.monotonic() - t_start) / 60.0 > opts.max_minutes:
            logger.info("stopping after epoch %d: %.1f minutes passed", epoch + 1, opts.max_minutes)
            break
    best_epoch = 0
    if history:
        scores = [h["val_loss"] if h["val_loss"] is not None else h["train_loss"] for h in history]
        best_epoch = int(np.argmin(scores)) + 1
    return {"history": history, "best_epoch": best_epoch, "best_val_loss": best, "bundle": str(out)}
