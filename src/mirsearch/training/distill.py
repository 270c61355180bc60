"""Fine-tuning the theme-chroma network with CTC plus distillation from a teacher (issue 14).

The teacher (the peer's real-data model, :mod:`mirsearch.models.peer`) gives pitch-class probabilities
for audio that has no labels: real recordings and rendered training audio. The student (a chroma
bundle, :mod:`mirsearch.models.bundle`) is fine-tuned on mixed steps: a CTC batch of labelled theme
segments plus ``lam`` times the distillation loss (:func:`mirsearch.training.losses.distill_loss`) on a
batch of teacher-labelled segments.

A *pool item* is one audio segment stored as ``.npz`` (resumable, atomic): the student's HCQT of the
segment as ``uint8`` (``h``, shape (harmonics, bins, frames)), its CTC labels (``labels``, may be empty)
and the teacher's probabilities at the student's output rate (``target``, float16 (12, n), may be
absent). The HCQT of a segment is computed from the segment alone (its dB reference is the segment's
maximum, not the whole recording's).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mirsearch._util import atomic_write_bytes
from mirsearch.errors import ParameterError
from mirsearch.models.bundle import ModelBundle
from mirsearch.training.checkpoint import checkpoint_path, load_training_state, save_training_state, write_history
from mirsearch.training.losses import ctc_loss, distill_loss

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolItem:
    """One stored segment: ``h`` (harmonics, bins, frames) uint8, ``labels`` (L,) int, ``target`` (12, n) or None;
    ``pitches`` (L,) the notes' sounding MIDI pitches where known (CTC over pitches), else None."""

    key: str
    h: np.ndarray
    labels: np.ndarray
    target: np.ndarray | None
    pitches: np.ndarray | None = None


def save_item(path: str | os.PathLike, h: np.ndarray, *, labels=(), target: np.ndarray | None = None) -> None:
    """Write a pool item atomically (``h`` in [0, 1] float or uint8; ``target`` (12, n) probabilities)."""
    h = np.asarray(h)
    if h.dtype != np.uint8:
        h = np.round(np.clip(h, 0.0, 1.0) * 255.0).astype(np.uint8)
    arrays = {"h": h, "labels": np.asarray(labels, dtype=np.int64)}
    if target is not None:
        arrays["target"] = np.asarray(target, dtype=np.float16)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_pool(directory: str | os.PathLike) -> list[PoolItem]:
    """Every ``*.npz`` item of a pool directory, sorted by name."""
    items = []
    for f in sorted(Path(directory).glob("*.npz")):
        with np.load(f) as z:
            target = z["target"].astype(np.float32) if "target" in z.files else None
            items.append(PoolItem(f.stem, z["h"], z["labels"], target))
    return items


def items_from_segments(segments: Sequence, cache, *, time_pool: int) -> list[PoolItem]:
    """Pool items (no teacher targets) cut from the cached HCQT of whole recordings.

    Parameters
    ----------
    segments : sequence of :class:`mirsearch.training.chroma.Segment`
    cache : :class:`mirsearch.training.chroma.HCQTCache`
        Holds every segment's recording (``cache.compute_all(segments)`` first). The HCQT of the whole
        recording is used, as at inference (its dB reference is the recording's maximum).
    time_pool : int
        The network's time pooling: a segment starts on a multiple of it.

    Returns
    -------
    list of PoolItem
        ``h`` is a read-only view into the memory-mapped cache file.
    """
    rate = cache.input_config["feature_rate"]
    items = []
    for k, s in enumerate(segments):
        H = cache.get(s.recording)
        a = int(round(s.start * rate)) // time_pool * time_pool
        b = min(H.shape[-1], int(round(s.end * rate)))
        if b - a < time_pool:
            continue
        pitches = None if s.pitches is None else np.asarray(s.pitches, dtype=np.int64)
        items.append(PoolItem(f"{s.recording}-{k}", H[:, :, a:b], np.asarray(s.labels, dtype=np.int64), None, pitches))
    return items


def teacher_target(P: np.ndarray, *, rate_in: float, rate_out: float, n_out: int) -> np.ndarray:
    """Teacher probabilities (12, n) at ``rate_in`` resampled to ``n_out`` frames at ``rate_out``,
    renormalised per frame. Returns float32 (12, n_out)."""
    from mirsearch.features.hcqt import _resample_frames

    T = _resample_frames(np.asarray(P, dtype=np.float64), rate_in=rate_in, rate_out=rate_out, n_out=n_out)
    T = np.clip(T, 0.0, None)
    return (T / np.maximum(T.sum(axis=0, keepdims=True), 1e-8)).astype(np.float32)


def pool_batch(items: Sequence[PoolItem], *, time_pool: int, targets: bool) -> tuple:
    """``(x (B, H, F, T_in) float32, lengths (B,), labels list, targets (B, 12, T_out) or None)``, zero-padded."""
    lens = [max(1, it.h.shape[-1] // time_pool) for it in items]
    t_max = max(lens)
    x = np.zeros((len(items),) + items[0].h.shape[:2] + (t_max * time_pool,), dtype=np.float32)
    tg = np.zeros((len(items), 12, t_max), dtype=np.float32) if targets else None
    for i, it in enumerate(items):
        n = lens[i] * time_pool
        part = it.h[:, :, :n].astype(np.float32) / 255.0
        x[i, :, :, : part.shape[-1]] = part
        if tg is not None:
            m = min(lens[i], it.target.shape[1])
            tg[i, :, :m] = it.target[:, :m]
            lens[i] = m
    labels = [np.asarray(it.labels, dtype=np.int64) for it in items]
    return (
        torch.from_numpy(x),
        torch.as_tensor(lens, dtype=torch.long),
        labels,
        None if tg is None else torch.from_numpy(tg),
    )


def bin_pitches(input_config: dict) -> np.ndarray:
    """MIDI pitch of every HCQT bin of every harmonic channel, shape (n_harmonics, n_bins)."""
    bps = int(input_config["bins_per_semitone"])
    n_bins = 12 * bps * int(input_config["n_octaves"])
    base = float(input_config["fmin_midi"]) + np.arange(n_bins) / bps
    return base[None, :] + 12.0 * np.log2(np.asarray(input_config["harmonics"], dtype=float))[:, None]


def random_eq_curves(n: int, *, max_db: float, rng: np.random.Generator, n_terms: int = 3) -> list:
    """``n`` random smooth equaliser curves over MIDI pitch (functions ``pitch -> dB``).

    Each is a tilt of up to ``max_db / 2`` dB per 4 octaves plus ``n_terms`` cosines with periods of 1-4 octaves
    whose amplitudes add up to at most ``max_db / 2``: a different instrument's balance of partials, a different
    microphone or room colouring."""
    curves = []
    for _ in range(n):
        tilt = rng.uniform(-0.5, 0.5) * max_db / 48.0  # dB per semitone
        amps = rng.dirichlet(np.ones(n_terms)) * rng.uniform(0, max_db / 2)
        periods = rng.uniform(12.0, 48.0, n_terms)
        phases = rng.uniform(0, 2 * np.pi, n_terms)

        def curve(m, tilt=tilt, amps=amps, periods=periods, phases=phases):
            waves = amps[:, None] * np.cos(2 * np.pi * m.reshape(1, -1) / periods[:, None] + phases[:, None])
            return (tilt * (m.reshape(-1) - 60.0) + waves.sum(axis=0)).reshape(m.shape)

        curves.append(curve)
    return curves


def eq_augment(x: torch.Tensor, *, pitches: np.ndarray, max_db: float, top_db: float, rng: np.random.Generator):
    """HCQT batch with a random equaliser per item (training augmentation; the input is unit dB).

    Parameters
    ----------
    x : torch.Tensor, shape (B, n_harmonics, n_bins, T)
        HCQT in ``(dB + top_db) / top_db`` units, 0 = at or below the floor (padding included).
    pitches : np.ndarray, shape (n_harmonics, n_bins)
        MIDI pitch of each bin (:func:`bin_pitches`): channel ``h`` sees the partial ``h`` of a bin's note, so
        one curve over frequency changes the balance of a note's partials consistently across channels.
    max_db : float
        Peak-to-peak range of the curves (dB); 0 returns ``x`` unchanged.
    top_db : float
        Dynamic range of the input (dB).
    rng : np.random.Generator

    Returns
    -------
    torch.Tensor
        Same shape; bins at the floor stay at the floor, the rest is clipped to [0, 1].
    """
    if max_db <= 0:
        return x
    gains = np.stack([c(pitches) for c in random_eq_curves(x.shape[0], max_db=max_db, rng=rng)]) / top_db
    g = torch.from_numpy(gains.astype(np.float32))[:, :, :, None]
    return torch.where(x > 0, torch.clamp(x + g, 0.0, 1.0), x)


def _batches(items: Sequence[PoolItem], *, max_frames: int, rng: np.random.Generator) -> list[list[int]]:
    """Shuffled batches of similar length, at most ``max_frames`` padded input frames each."""
    n = np.array([it.h.shape[-1] for it in items], dtype=float)
    order = np.argsort(n + rng.uniform(0, n.mean() * 0.3, len(n)))
    out, cur, cur_max = [], [], 0.0
    for i in order:
        if cur and max(cur_max, n[i]) * (len(cur) + 1) > max_frames:
            out.append(cur)
            cur, cur_max = [], 0.0
        cur.append(int(i))
        cur_max = max(cur_max, n[i])
    if cur:
        out.append(cur)
    rng.shuffle(out)
    return out


@dataclass(frozen=True)
class DistillOptions:
    """Settings of :func:`finetune`.

    Attributes
    ----------
    lam : float >= 0
        Weight of the distillation loss.
    lr : float > 0
        Adam learning rate (fine-tuning: smaller than from scratch).
    max_frames : int > 0
        Padded input frames per batch (each step has one CTC and one distillation batch).
    max_minutes : float
        Wall-clock budget of this call: no epoch starts after it (at least one runs; a resumed run
        continues the epoch count). With a schedule the run also ends at its last epoch.
    steps_per_epoch : int
        Steps between checkpoints (and saved bundles ``epoch-<k>/``); epoch ``k`` shuffles with seed ``k``.
    eq_db : float >= 0
        Random equaliser on the labelled batches (:func:`eq_augment`, peak-to-peak dB); 0: none.
    schedule_epochs : int >= 0
        0: the learning rate stays ``lr``. Otherwise a linear warm-up over ``warmup_steps`` and a cosine
        decay from ``lr`` to ``min_lr_ratio * lr`` over ``schedule_epochs`` epochs (then constant), a
        function of the global step, so a resumed run continues on the same curve (:func:`scheduled_lr`).
    warmup_steps : int >= 0
        Steps of linear warm-up (with a schedule).
    min_lr_ratio : float in [0, 1]
        Final learning rate of the schedule as a share of ``lr``.
    pitch_ctc : bool
        Items whose notes' MIDI pitches are known (and inside the input's range) are trained with CTC over
        pitches (:meth:`~mirsearch.models.network.ChromaNet.pitch_log_probs`: the target carries each note's
        register), the others with CTC over pitch classes; False: pitch classes for all.
    """

    lam: float = 1.0
    lr: float = 3e-4
    max_frames: int = 6000
    max_minutes: float = 30.0
    steps_per_epoch: int = 40
    eq_db: float = 0.0
    schedule_epochs: int = 0
    warmup_steps: int = 0
    min_lr_ratio: float = 0.02
    pitch_ctc: bool = False

    def check(self) -> None:
        """Raise :class:`ParameterError` for a value out of range."""
        bad = self.lam < 0 or self.lr <= 0 or self.max_frames <= 0 or self.steps_per_epoch <= 0 or self.eq_db < 0
        bad = bad or self.schedule_epochs < 0 or self.warmup_steps < 0 or not 0.0 <= self.min_lr_ratio <= 1.0
        if bad:
            raise ParameterError(f"DistillOptions out of range: {self}")


def scheduled_lr(step: int, opts: DistillOptions) -> float:
    """Learning rate at global ``step`` (0-based): ``opts.lr`` without a schedule, else linear warm-up
    then cosine decay to ``opts.min_lr_ratio * opts.lr`` at step ``schedule_epochs * steps_per_epoch``."""
    if opts.schedule_epochs <= 0:
        return opts.lr
    if step < opts.warmup_steps:
        return opts.lr * (step + 1) / opts.warmup_steps
    total = max(1, opts.schedule_epochs * opts.steps_per_epoch - opts.warmup_steps)
    t = min(1.0, (step - opts.warmup_steps) / total)
    low = opts.min_lr_ratio * opts.lr
    return low + (opts.lr - low) * 0.5 * (1.0 + math.cos(math.pi * t))


def lowest_semitone(input_config: dict) -> int:
    """MIDI pitch of the network's first semitone (the centre of the input's first ``bins_per_semitone`` bins)."""
    bps = int(input_config["bins_per_semitone"])
    return round(float(input_config["fmin_midi"]) + (bps - 1) / (2 * bps))


def pitch_ctc_loss(
    model, x: torch.Tensor, items: Sequence[PoolItem], labels, lengths: torch.Tensor, *, lowest: int
) -> torch.Tensor:
    """Mean CTC loss per label over a batch ``x`` of ``items``: over pitches (the network's
    :meth:`~mirsearch.models.network.ChromaNet.pitch_log_probs`, semitone ``k`` = MIDI ``lowest + k``,
    :func:`lowest_semitone`) for the items whose ``pitches`` are known and inside the input's range, over pitch
    classes (``labels``, the same output folded by octave) for the others; the two means weighted by their numbers of
    items."""
    from mirsearch.models.network import fold_pitches

    P = model.pitch_log_probs(x)
    n_pitches = P.shape[1] - 1
    known = [
        i for i, it in enumerate(items)
        if it.pitches is not None and len(it.pitches) == len(labels[i])
        and int(np.min(it.pitches)) >= lowest and int(np.max(it.pitches)) < lowest + n_pitches
    ]  # fmt: skip
    other = sorted(set(range(len(items))) - set(known))
    total = P.new_zeros(())
    if known:
        k = torch.as_tensor(known)
        total = total + len(known) * ctc_loss(
            P[k], [items[i].pitches - lowest for i in known], lengths[k], blank=n_pitches
        )
    if other:
        o = torch.as_tensor(other)
        total = total + len(other) * ctc_loss(fold_pitches(P[o]), [labels[i] for i in other], lengths[o])
    return total / len(items)


def _step(
    model, optimizer, labelled, unlabelled, opts: DistillOptions, augment=None, *, lowest: int = 24
) -> tuple[float, float]:
    """One mixed step: CTC on ``labelled`` (through ``augment`` if given) plus ``lam`` x distillation on
    ``unlabelled``."""
    pool = model.time_pool
    x, lengths, labels, _ = pool_batch(labelled, time_pool=pool, targets=False)
    if augment is not None:
        x = augment(x)
    if opts.pitch_ctc:
        ctc = pitch_ctc_loss(model, x, labelled, labels, lengths, lowest=lowest)
    else:
        ctc = ctc_loss(model(x), labels, lengths)
    kd = ctc.new_zeros(())
    if opts.lam > 0 and unlabelled:
        xu, lu, _, tu = pool_batch(unlabelled, time_pool=pool, targets=True)
        kd = distill_loss(model(xu), tu, lu)
    value = ctc + opts.lam * kd
    optimizer.zero_grad()
    value.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    optimizer.step()
    return float(ctc.detach()), float(kd.detach())


def finetune(
    bundle: ModelBundle,
    labelled: Sequence[PoolItem],
    unlabelled: Sequence[PoolItem],
    *,
    out: str | os.PathLike,
    options: DistillOptions | None = None,
    **overrides,
) -> dict:
    """Fine-tune ``bundle`` (modified in place) with CTC + ``lam`` x distillation; resumable.

    Every ``steps_per_epoch`` steps the state goes to ``out/checkpoints/last.pt`` and the model is saved
    as a bundle ``out/epoch-<k>/`` (choose among them on validation data); ``out/history.json`` holds
    the mean CTC and distillation losses per epoch. Returns ``{"history", "epochs", "out"}``.
    """
    opts = dataclasses.replace(options or DistillOptions(), **overrides)
    opts.check()
    if not labelled or any(it.target is None for it in unlabelled):
        raise ParameterError("finetune needs labelled items and teacher targets on every unlabelled item")
    out = Path(out)
    model = bundle.model
    optimizer = torch.optim.Adam(model.parameters(), lr=opts.lr)
    state = load_training_state(checkpoint_path(out), model, optimizer, resume=True)
    history = state.history if state is not None else []
    epoch = len(history)
    info = {"loss": f"ctc + {opts.lam:g} x distill", "finetuned_from": bundle.model_id, **dataclasses.asdict(opts)}
    t0, lowest = time.monotonic(), lowest_semitone(bundle.input)
    if 0 < opts.schedule_epochs <= epoch:
        logger.info("the schedule's %d epochs are done in %s: nothing to train", opts.schedule_epochs, out)
        return {"history": history, "epochs": epoch, "out": str(out)}
    while True:  # at least one epoch per call
        model.train()
        rng = np.random.default_rng(epoch)
        lab = _batches(labelled, max_frames=opts.max_frames, rng=rng)
        unl = _batches(unlabelled, max_frames=opts.max_frames, rng=rng) if unlabelled else [[]]
        sums, t_epoch = np.zeros(2), time.monotonic()
        augment = None
        if opts.eq_db > 0:
            aug_rng, pitches = np.random.default_rng(10_000 + epoch), bin_pitches(bundle.input)

            def augment(x, aug_rng=aug_rng, pitches=pitches):
                return eq_augment(x, pitches=pitches, max_db=opts.eq_db, top_db=bundle.input["top_db"], rng=aug_rng)

        for k in range(opts.steps_per_epoch):
            for group in optimizer.param_groups:
                group["lr"] = scheduled_lr(epoch * opts.steps_per_epoch + k, opts)
            a = [labelled[i] for i in lab[k % len(lab)]]
            b = [unlabelled[i] for i in unl[k % len(unl)]]
            sums += _step(model, optimizer, a, b, opts, augment, lowest=lowest)
        epoch += 1
        entry = {"epoch": epoch, "ctc": sums[0] / opts.steps_per_epoch, "distill": sums[1] / opts.steps_per_epoch}
        entry["seconds"] = time.monotonic() - t_epoch
        entry["lr"] = optimizer.param_groups[0]["lr"]
        history.append(entry)
        logger.info("epoch %d: %s", epoch, entry)
        model.eval()
        bundle.config["training"] = {**bundle.config.get("training", {}), **info, "finetune_epochs": epoch}
        bundle.save(out / f"epoch-{epoch}")
        save_training_state(checkpoint_path(out), model, optimizer, epoch=epoch, history=history, best=0.0)
        write_history(out, history)
        if (time.monotonic() - t0) / 60.0 >= opts.max_minutes or 0 < opts.schedule_epochs <= epoch:
            break
    return {"history": history, "epochs": epoch, "out": str(out)}


def interpolate_weights(base: ModelBundle, tuned: ModelBundle, *, alpha: float) -> ModelBundle:
    """``base`` with every floating-point tensor set to ``(1 - alpha) base + alpha tuned`` (in place).

    Interpolating a fine-tuned network with the one it started from (Wortsman et al., "Robust
    fine-tuning of zero-shot models", CVPR 2022) keeps more of what the base model knew; ``alpha = 0``
    is ``base``, ``alpha = 1`` is ``tuned``. Integer buffers (BatchNorm's step counter) keep ``base``'s.
    Both bundles must have the same network configuration.
    """
    return soup_weights(base, [tuned], alpha=alpha)


def soup_weights(base: ModelBundle, tuned: Sequence[ModelBundle], *, alpha: float) -> ModelBundle:
    """``base`` with every floating-point tensor set to ``(1 - alpha) base + alpha mean(tuned)`` (in place).

    A "model soup" (Wortsman et al., ICML 2022): the uniform average of several fine-tuned networks that
    share their start (epochs or runs fine-tuned from ``base`` or from each other), interpolated with
    ``base`` as in :func:`interpolate_weights` (one ``tuned`` bundle: that function). Integer buffers keep
    ``base``'s. Every bundle must have ``base``'s network configuration.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ParameterError(f"alpha must lie in [0, 1], got {alpha}")
    if not tuned:
        raise ParameterError("soup_weights: no tuned bundle given")
    if any(base.config.get("network") != t.config.get("network") for t in tuned):
        raise ParameterError("soup_weights: the bundles have different networks")
    a = base.model.state_dict()
    states = [t.model.state_dict() for t in tuned]
    mixed = {
        k: (1.0 - alpha) * v + alpha * torch.stack([s[k] for s in states]).mean(dim=0) if v.is_floating_point() else v
        for k, v in a.items()
    }
    base.model.load_state_dict(mixed)
    ids = [t.model_id for t in tuned]
    info = {"interpolated": {"base": base.model_id, "tuned": ids[0] if len(ids) == 1 else ids, "alpha": alpha}}
    base.config["training"] = {**tuned[-1].config.get("training", {}), **info}
    return base
