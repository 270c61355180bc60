"""Training the shingle embedding network with a triplet loss.

Data
----
A :class:`TrainingVersion` is one rendering or recording of a work: its 10 Hz chroma and a *tempo map*
(piecewise-linear, common score time -> audio seconds). Two versions of the same work are aligned
through the score time: audio time ``t`` in version A corresponds to ``B(A^-1(t))`` in version B.
Each version's CENS is precomputed at the tempo factors of :data:`TEMPO_GRID` (the same
multiple-scaling the search applies to a query, see :func:`mirsearch.features.shingles.scale_tempo`).

Triplets
--------
- *Anchor*: a shingle of version A at its own tempo (the database side), at a random position.
- *Positive*: the shingle of version B covering the same score span, taken from B's CENS at the grid
  tempo factor closest to the local tempo ratio of the two versions (the query side: at search time the
  query is scaled by every factor of the grid and the closest one wins). Residual tempo differences of up
  to half a grid step remain, as at search time.
- Both get the same random cyclic chroma shift (transposition augmentation: more distinct material, and
  the network cannot use absolute key to separate works).
- *Negatives*: mined in the batch. A batch holds ``batch_size`` (anchor, positive) pairs from distinct
  works where the split has enough works. Every one of the ``2 * batch_size`` embeddings serves as an
  anchor with its partner as positive; its candidate negatives are all embeddings of *other works*
  (shingles of the same work at other positions are neither positives nor negatives: a repeat of a
  theme elsewhere in the work is not an error for version retrieval). **Semi-hard mining** (FaceNet):
  the negative is the closest one that is farther than the positive (``d_ap < d_an``); when it lies
  within the margin it contributes ``d_ap - d_an + margin``, otherwise the anchor is already satisfied
  (loss 0). When no negative is farther than the positive, the farthest of the hard negatives is used
  (the least hard one: taking the hardest from the start tends to collapse the embedding).

Loss ``max(0, d(a, p) - d(a, n) + margin)`` with Euclidean ``d`` on unit-length outputs, Adam, a fixed
number of batches per epoch. After every epoch: validation on a fixed set of pairs from held-out works
(loss and *top-1 accuracy*: share of anchors whose nearest positive among all validation pairs belongs to
their own work), a checkpoint (``checkpoints/last.pt``: model, optimiser, epoch, history; resumable), and
the best model so far (highest validation top-1, then lowest loss) written as a bundle to the output
directory.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirsearch.errors import InputError, ParameterError
from mirsearch.features.shingles import DEFAULT_CONFIG, ShingleConfig, cens_of
from mirsearch.training.checkpoint import checkpoint_path, load_training_state, save_training_state, write_history

log = logging.getLogger(__name__)

#: tempo factors the positives are drawn at: the default query scalings of the search
#: (:data:`mirsearch.search.shingles.TEMPO_FACTORS`, 0.6 .. 1.67 in steps of about 11 %)
TEMPO_GRID = (0.6, 0.665, 0.736, 0.815, 0.903, 1.0, 1.108, 1.227, 1.359, 1.505, 1.667)


@dataclass
class TrainingVersion:
    """One version of a work with its tempo map.

    Attributes
    ----------
    work : str
        Work identifier (versions of one work are positives of each other).
    name : str
        Version identifier (for messages).
    chroma : np.ndarray, shape (12, n_frames)
        Chroma at 10 Hz.
    score_time : np.ndarray, shape (K,)
        Increasing positions on the work's common time axis (e.g. quarter notes).
    audio_time : np.ndarray, shape (K,)
        Increasing audio times (seconds) of those positions in this version.
    transposition : int
        Semitones this version sounds above the score (key change); positives are rolled to the
        anchor's key, so the network is trained key-specific (search tries transpositions instead).
    """

    work: str
    name: str
    chroma: np.ndarray
    score_time: np.ndarray
    audio_time: np.ndarray
    transposition: int = 0
    cens: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.score_time = np.asarray(self.score_time, dtype=np.float64)
        self.audio_time = np.asarray(self.audio_time, dtype=np.float64)
        if self.score_time.shape != self.audio_time.shape or self.score_time.size < 2:
            raise ParameterError(f"{self.name}: tempo map needs >= 2 matching score/audio times")
        if np.any(np.diff(self.score_time) <= 0) or np.any(np.diff(self.audio_time) < 0):
            raise ParameterError(f"{self.name}: tempo map must increase")

    def to_score(self, t):
        return np.interp(t, self.audio_time, self.score_time)

    def to_audio(self, s):
        return np.interp(s, self.score_time, self.audio_time)

    def prepare(self, *, config: ShingleConfig = DEFAULT_CONFIG, grid: Sequence[float] = TEMPO_GRID) -> None:
        """Compute the CENS at every grid factor (and 1.0)."""
        for f in sorted({1.0, *grid}):
            if f not in self.cens:
                self.cens[f] = np.ascontiguousarray(cens_of(self.chroma, config=config, tempo_factor=f).T)


def _shingle(frames: np.ndarray, start: int, length: int, shift: int) -> np.ndarray:
    """Unit-length time-major shingle from CENS frames (n, 12), rolled by ``shift`` chroma bands."""
    s = np.roll(frames[start : start + length], shift, axis=1).reshape(-1)
    return s / max(float(np.linalg.norm(s)), 1e-12)


class PairSampler:
    """Draws (anchor, positive) shingle pairs of corresponding passages; see the module docstring.

    Parameters
    ----------
    versions : sequence of TrainingVersion
        At least two works with at least two versions each.
    config : ShingleConfig
    grid : sequence of float
        Tempo factors for the positives.
    transpose : bool
        Random common cyclic chroma shift per pair.
    """

    def __init__(
        self,
        versions: Sequence[TrainingVersion],
        *,
        config: ShingleConfig = DEFAULT_CONFIG,
        grid: Sequence[float] = TEMPO_GRID,
        transpose: bool = True,
    ):
        self.config, self.grid, self.transpose = config, tuple(sorted(grid)), transpose
        works: dict[str, list[TrainingVersion]] = {}
        for v in versions:
            v.prepare(config=config, grid=self.grid)
            if v.cens[1.0].shape[0] >= config.length:
                works.setdefault(v.work, []).append(v)
        self.works = {w: vs for w, vs in works.items() if len(vs) >= 2}
        if len(self.works) < 2:
            raise InputError(
                f"need >= 2 works with >= 2 versions of >= {config.length} s for triplets, got {len(self.works)}"
            )
        self.work_names = sorted(self.works)
        self._log_grid = np.log(np.asarray(self.grid))

    def pair(self, rng: np.random.Generator, work: str, *, tries: int = 20):
        """One pair from ``work``: (anchor (dim,), positive (dim,)), or None when no position fits."""
        L = self.config.length
        for _ in range(tries):
            a_v, b_v = (self.works[work][i] for i in rng.choice(len(self.works[work]), 2, replace=False))
            A = a_v.cens[1.0]
            a0 = int(rng.integers(0, A.shape[0] - L + 1))
            rate = self.config.frame_rate
            s0, s1 = a_v.to_score([a0 / rate, (a0 + L) / rate])
            if s1 <= s0:
                continue
            b0, b1 = b_v.to_audio([s0, s1])
            needed = (b1 - b0) * rate / L  # B must play this many times as fast to fit L frames
            if not needed > 0:
                continue
            f = self.grid[int(np.argmin(np.abs(self._log_grid - math.log(needed))))]
            if abs(math.log(needed / f)) > 0.15:  # tempo ratio outside the grid: skip
                continue
            B = b_v.cens[f]
            centre = b_v.to_audio(0.5 * (s0 + s1)) * rate / f
            j0 = int(round(centre - L / 2))
            if j0 < 0 or j0 + L > B.shape[0]:
                continue
            shift = int(rng.integers(12)) if self.transpose else 0
            key = a_v.transposition - b_v.transposition  # B rolled into A's key
            return _shingle(A, a0, L, shift), _shingle(B, j0, L, shift + key)
        return None

    def batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``size`` pairs from distinct works when possible.

        Returns
        -------
        anchors, positives : np.ndarray, shape (size, dim), float32
        works : np.ndarray, shape (size,), int64
            Work index of each pair.
        """
        n_w = len(self.work_names)
        picks = rng.permutation(n_w)[:size] if size <= n_w else rng.integers(0, n_w, size)
        A, P, W = [], [], []
        for w in picks:
            p = self.pair(rng, self.work_names[int(w)])
            if p is not None:
                A.append(p[0])
                P.append(p[1])
                W.append(int(w))
        if not A:
            raise InputError("no training pair could be drawn (tempo maps or durations unusable)")
        return np.asarray(A, np.float32), np.asarray(P, np.float32), np.asarray(W, np.int64)


def triplet_loss(E, works, *, margin: float = 0.2):
    """Batch triplet loss with semi-hard negative mining (see the module docstring).

    Parameters
    ----------
    E : torch.Tensor, shape (2 * n, dim)
        Embeddings of the anchors (rows ``0 .. n-1``) followed by their positives.
    works : torch.Tensor, shape (n,), int64
        Work of each pair.
    margin : float > 0

    Returns
    -------
    loss : torch.Tensor, scalar
        Mean over all ``2n`` anchors.
    stats : dict
        ``active`` (share of anchors with positive loss), ``accuracy`` (share whose positive is closer
        than every negative), ``d_ap`` and ``d_an`` (means).
    """
    import torch

    n = E.shape[0] // 2
    w = torch.cat([works, works])
    D = torch.cdist(E, E)
    idx = torch.arange(2 * n)
    partner = torch.cat([idx[n:], idx[:n]])
    d_ap = D[idx, partner]
    neg = w[:, None] != w[None, :]
    has_neg = neg.any(dim=1)
    inf = torch.tensor(float("inf"), dtype=D.dtype)
    dd = D.detach()
    farther = neg & (dd > d_ap.detach()[:, None])
    semi = torch.where(farther, dd, inf).min(dim=1)
    hard = torch.where(neg & ~farther, dd, -inf).max(dim=1)
    choice = torch.where(farther.any(dim=1), semi.indices, hard.indices)
    d_an = D[idx, choice]
    per = torch.relu(d_ap - d_an + margin)[has_neg]
    loss = per.mean() if per.numel() else E.sum() * 0.0
    closest_neg = torch.where(neg, dd, inf).min(dim=1).values
    stats = {
        "active": float((per > 0).float().mean()) if per.numel() else 0.0,
        "accuracy": float((d_ap.detach() < closest_neg)[has_neg].float().mean()) if per.numel() else 0.0,
        "d_ap": float(d_ap.detach().mean()),
        "d_an": float(d_an.detach()[has_neg].mean()) if per.numel() else 0.0,
    }
    return loss, stats


def validation_pairs(sampler: PairSampler, *, n: int, seed: int = 12345):
    """A fixed set of validation pairs (``n`` per pass over the works, drawn with ``seed``)."""
    rng = np.random.default_rng(seed)
    A, P, W = [], [], []
    while sum(len(a) for a in A) < n:
        a, p, w = sampler.batch(rng, min(len(sampler.work_names), n))
        A.append(a)
        P.append(p)
        W.append(w)
    return np.concatenate(A)[:n], np.concatenate(P)[:n], np.concatenate(W)[:n]


def evaluate(model, pairs, *, margin: float) -> dict:
    """Validation loss (batch-mined over all pairs) and top-1 work accuracy of the nearest positive."""
    import torch

    A, P, W = pairs
    model.eval()
    with torch.inference_mode():
        Ea = model(torch.from_numpy(A))
        Ep = model(torch.from_numpy(P))
        loss, stats = triplet_loss(torch.cat([Ea, Ep]), torch.from_numpy(W), margin=margin)
        D = torch.cdist(Ea, Ep)
        nearest = D.argmin(dim=1).numpy()
    top1 = float(np.mean(W[nearest] == W))
    return {"val_loss": float(loss), "val_top1": top1, "val_accuracy": stats["accuracy"]}


@dataclass(frozen=True)
class EmbeddingTrainOptions:
    """Settings of :func:`train_embedding`.

    Attributes
    ----------
    dim : int
        Embedding dimension (6, 12, 30 in the reference).
    epochs, steps_per_epoch, batch_size : int
        Training length: ``epochs * steps_per_epoch`` batches of ``batch_size`` pairs.
    lr : float
        Adam learning rate (decays with a cosine to lr / 20 over the epochs).
    margin : float
        Triplet margin (unit-length embeddings: distances in [0, 2]).
    n_val : int
        Validation pairs.
    seed : int
        Seeds weights and sampling (epoch ``e`` samples with ``seed + e``: a resumed run draws the same).
    resume : bool
        Continue from ``out/checkpoints/last.pt`` when present.
    threads : int
        Torch threads (keep 1-2 on a shared machine).
    max_minutes : float, optional
        Stop after the epoch that passes this wall time.
    progress : bool
        tqdm progress bar per epoch (stderr).
    network : dict, optional
        Overrides of :func:`~mirsearch.models.embedding.default_network_config`.
    shingles : ShingleConfig
        The shingles trained on (stored in the bundle; the index uses the bundle only on shingles of
        this configuration).
    training_info : dict, optional
        Stored in the bundle config (data set, split).
    """

    dim: int = 12
    epochs: int = 30
    steps_per_epoch: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    margin: float = 0.2
    n_val: int = 512
    seed: int = 0
    resume: bool = False
    threads: int = 1
    max_minutes: float | None = None
    progress: bool = False
    network: dict | None = None
    shingles: ShingleConfig = DEFAULT_CONFIG
    training_info: dict | None = None

    def lr_at(self, epoch: int) -> float:
        """Learning rate of epoch ``epoch`` (1-based): cosine decay from ``lr`` to ``lr / 20``."""
        return self.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / max(1, self.epochs))))


def parse_shingles(text: str | None) -> ShingleConfig:
    """``"WINDOW/DOWNSAMPLE/LENGTH/HOP"`` (e.g. ``"21/5/20/2"``) as a :class:`ShingleConfig`; None: the default."""
    if text is None:
        return DEFAULT_CONFIG
    try:
        window, downsample, length, hop = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise ParameterError(f"shingles={text!r}: expected WINDOW/DOWNSAMPLE/LENGTH/HOP, e.g. 21/5/20/2") from None
    return ShingleConfig(length=length, hop=hop, window=window, downsample=downsample)


def _better(entry: dict, best: dict | None) -> bool:
    """Whether ``entry`` beats ``best``: higher validation top-1, then lower validation loss."""
    return best is None or (entry["val_top1"], -entry["val_loss"]) > (best["val_top1"], -best["val_loss"])


def _embedding_epoch(model, optimizer, sampler: PairSampler, opts: EmbeddingTrainOptions, epoch: int) -> dict:
    """One epoch of triplet training: mean loss, in-batch accuracy and share of active triplets."""
    import torch

    for g in optimizer.param_groups:
        g["lr"] = opts.lr_at(epoch)
    rng = np.random.default_rng(opts.seed * 1000 + epoch)
    model.train()
    losses, accs, actives = [], [], []
    bar = None
    if opts.progress:
        from tqdm import tqdm

        bar = tqdm(total=opts.steps_per_epoch, desc=f"epoch {epoch}/{opts.epochs}", unit="batch", dynamic_ncols=True)
    for _ in range(opts.steps_per_epoch):
        A, P, W = sampler.batch(rng, opts.batch_size)
        E = model(torch.from_numpy(np.concatenate([A, P])))
        loss, stats = triplet_loss(E, torch.from_numpy(W), margin=opts.margin)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        accs.append(stats["accuracy"])
        actives.append(stats["active"])
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}", acc=f"{np.mean(accs[-20:]):.3f}")
    if bar is not None:
        bar.close()
    return {
        "train_loss": float(np.mean(losses)),
        "train_accuracy": float(np.mean(accs)),
        "train_active": float(np.mean(actives)),
    }


def train_embedding(
    train_versions: Sequence[TrainingVersion],
    val_versions: Sequence[TrainingVersion],
    *,
    out,
    options: EmbeddingTrainOptions | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    **overrides,
) -> dict:
    """Train an embedding network and write the best model as a bundle to ``out``.

    Parameters
    ----------
    train_versions, val_versions : sequence of TrainingVersion
        Versions of disjoint sets of works.
    out : path-like
        Output directory: the bundle (``config.json``, ``weights.pt``), ``history.json``,
        ``checkpoints/last.pt``.
    options : EmbeddingTrainOptions, optional
        Dimension, schedule, seeds (default :class:`EmbeddingTrainOptions`).
    on_epoch : callable, optional
        Called with each history entry.
    **overrides
        Fields of :class:`EmbeddingTrainOptions` replacing those of ``options``.

    Returns
    -------
    dict
        ``bundle`` (path), ``best_epoch``, ``best`` (its validation figures), ``history``.
    """
    import torch

    from mirsearch.models.bundle import torch_threads
    from mirsearch.models.embedding import EmbeddingReduction, default_network_config, new_network

    opts = dataclasses.replace(options or EmbeddingTrainOptions(), **overrides)
    if opts.epochs < 1 or opts.steps_per_epoch < 1 or opts.batch_size < 2:
        raise ParameterError(
            f"epochs={opts.epochs}, steps_per_epoch={opts.steps_per_epoch} >= 1 and batch_size={opts.batch_size} >= 2"
        )
    out = Path(out)
    ckpt_path = checkpoint_path(out)
    net_cfg = {**default_network_config(opts.dim), **(opts.network or {}), "dim": int(opts.dim)}
    net_cfg["length"] = opts.shingles.length
    t_start = time.perf_counter()
    sampler = PairSampler(train_versions, config=opts.shingles)
    val_sampler = PairSampler(val_versions, config=opts.shingles)
    val = validation_pairs(val_sampler, n=opts.n_val)
    log.info(
        "triplet training: %d train works, %d validation works, %d validation pairs (prepared in %.1f s)",
        len(sampler.works),
        len(val_sampler.works),
        len(val[0]),
        time.perf_counter() - t_start,
    )
    torch.manual_seed(opts.seed)
    model = new_network(net_cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=opts.lr)
    state = load_training_state(ckpt_path, model, optimizer, resume=opts.resume)
    history, best, start_epoch = [], None, 1
    if state is not None:
        history, best, start_epoch = state.history, json.loads(state.best) if state.best else None, state.epoch + 1
    info = {
        **(opts.training_info or {}),
        "margin": opts.margin,
        "batch_size": opts.batch_size,
        "mining": "semi-hard in batch, negatives from other works",
        "tempo_grid": list(TEMPO_GRID),
        "train_works": len(sampler.works),
        "val_works": len(val_sampler.works),
        "seed": opts.seed,
    }
    with torch_threads(opts.threads):
        for epoch in range(start_epoch, opts.epochs + 1):
            t0 = time.perf_counter()
            entry = {
                "epoch": epoch,
                "lr": opts.lr_at(epoch),
                **_embedding_epoch(model, optimizer, sampler, opts, epoch),
                **evaluate(model, val, margin=opts.margin),
                "seconds": round(time.perf_counter() - t0, 2),
            }
            history.append(entry)
            if _better(entry, best):
                best = dict(entry)
                scores = {k: entry[k] for k in ("epoch", "val_top1", "val_loss")}
                bundle = {"network": net_cfg, "shingles": opts.shingles.to_dict(), "training": {**info, **scores}}
                EmbeddingReduction(model, bundle).save(out)
                model.train()
            save_training_state(ckpt_path, model, optimizer, epoch=epoch, history=history, best=json.dumps(best))
            write_history(out, history)
            if on_epoch is not None:
                on_epoch(entry)
            if opts.max_minutes is not None and time.perf_counter() - t_start > 60 * opts.max_minutes:
                log.info("stopping after epoch %d: --max-minutes %.1f reached", epoch, opts.max_minutes)
                break
    if best is None:  # resumed after the last epoch
        best = max(history, key=lambda e: (e["val_top1"], -e["val_loss"])) if history else {}
    return {"bundle": str(out), "best_epoch": best.get("epoch"), "best": best, "history": history}


def dataset_collection(dataset_root, split: str, *, directory=None, jobs: int = 1, progress: bool = False):
    """A collection holding the audio of one split of a dataset (created and indexed on first use).

    Parameters
    ----------
    dataset_root : path-like
        Dataset folder (``manifest.json``, see :mod:`mirsearch.datasets.manifest`).
    split : {"train", "validation", "test"}
    directory : path-like, optional
        Collection folder (default ``<dataset>/collections/chroma-<split>.mirs``, the one
        ``mirsearch bench theme`` uses, so the chroma is extracted once).
    jobs : int
        Indexing processes.
    progress : bool

    Returns
    -------
    collection : Collection
        Opened for writing (close it when done).
    view : Dataset
        The split's view of the dataset.
    """
    from mirsearch.collection import Collection
    from mirsearch.datasets.manifest import Dataset

    view = Dataset.load(dataset_root).split(split)
    if not len(view):
        raise InputError(f"{dataset_root}: split {split!r} has no rendered versions")
    if directory is None:
        directory = Path(dataset_root) / "collections" / f"chroma-{split}.mirs"
    coll = Collection.create(directory, features=["chroma"])
    missing = [str(v.path) for v in view if not v.path.is_file()]
    if missing:
        raise InputError(f"{missing[0]}: audio of split {split!r} missing ({len(missing)} files)")
    # new files and files whose stored features have another configuration (e.g. a new chroma version)
    # are (re-)extracted; when every file is current, add() (and its write lock) is not needed
    todo = [str(v.path.resolve()) for v in view if not _is_current(coll, v.path.resolve())]
    if todo:
        report = coll.add(todo, jobs=jobs, progress=progress)
        if report.failed:
            log.warning("%d files of split %s failed to index: %s", len(report.failed), split, report.failed[0][1])
    return coll, view


def _is_current(coll, path: Path) -> bool:
    """Whether ``path`` is catalogued, unchanged on disk and has features of the current configuration."""
    from mirsearch.features import registry

    rec = coll.catalog.by_path(str(path))
    if rec is None:
        return False
    keys = {c["kind"]: registry.config_key(c) for c in coll.configs()}
    st = path.stat()
    return coll.catalog.feature_keys(rec.id) == keys and rec.size == st.st_size and rec.mtime == st.st_mtime


def load_training_versions(
    dataset_root, split: str, *, directory=None, jobs: int = 1, progress: bool = False
) -> list[TrainingVersion]:
    """:class:`TrainingVersion` of every version of a dataset split (chroma from :func:`dataset_collection`)."""
    coll, view = dataset_collection(dataset_root, split, directory=directory, jobs=jobs, progress=progress)
    try:
        by_path = {r.path: r.id for r in coll.recordings()}
        out = []
        for v in view:
            rid = by_path.get(str(v.path.resolve()))
            if rid is None:
                continue
            C, _ = coll.load_features(rid, "chroma")
            out.append(
                TrainingVersion(
                    work=v.work_id,
                    name=v.version_id,
                    chroma=np.asarray(C, dtype=np.float32),
                    score_time=v.tempo_score,
                    audio_time=v.tempo_audio,
                    transposition=v.transposition,
                )
            )
    finally:
        coll.close()
    return out


__all__ = [
    "TEMPO_GRID",
    "PairSampler",
    "TrainingVersion",
    "dataset_collection",
    "evaluate",
    "load_training_versions",
    "parse_shingles",
    "train_embedding",
    "triplet_loss",
    "validation_pairs",
]
