"""Training of the similarity embedding (:mod:`mirsearch.models.similarity`) with a triplet loss whose triplets are
mined from an oracle similarity ranking (Prétet, Richard & Peeters 2020; seed 004).

Oracle ``S`` (an ``(n, n)`` matrix over the training items, larger is more similar): here either *same soundtrack*
(1 for two clips of one soundtrack from different tracks, 0 otherwise) or the cosine of two items' tag vectors,
or a sum of both. Pairs marked in ``exclude`` (e.g. two clips of one track) are never used.

Mining, per anchor ``a``: its ranked list ``R(a)`` is every other item sorted by ``S(a, .)`` (ties in random
order, drawn again every epoch); a positive is drawn from the first ``n_positives`` items with ``S > 0``; a
negative among the items ``n`` with ``S(a, n) < S(a, p)``, by one of three strategies:

- ``neighbours``: one of the ``n_negatives`` candidates ranked right after the positive (for a graded ``S`` the
  hardest oracle negatives; for a binary ``S`` they are tied, so this is a random draw among them);
- ``random``: uniformly among all candidates;
- ``distance``: with probability proportional to ``exp(-d(a, n) / T)``, ``d`` the current squared embedding
  distance and ``T`` its median over the candidates (negatives the model now puts close are drawn more often).

Loss: ``max(|f(a) - f(p)|^2 - |f(a) - f(n)|^2 + margin, 0)`` on unit vectors. Training crops a random run of
patches from every item (a recording's vector must not depend on its length). ``torch.set_num_threads(1)``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from mirsearch.errors import ParameterError

log = logging.getLogger(__name__)

STRATEGIES = ("neighbours", "random", "distance")


@dataclass(frozen=True)
class TripletOptions:
    """Hyper-parameters of :func:`train_similarity`."""

    hidden: int = 128
    dim: int = 32
    pooling: str = "autopool"
    strategy: str = "distance"
    n_positives: int = 10
    n_negatives: int = 20
    margin: float = 0.2
    epochs: int = 40
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    dropout: float = 0.2
    crop: tuple[int, int] = (8, 40)
    seed: int = 0

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ParameterError(f"strategy={self.strategy!r} must be one of {STRATEGIES}")
        if self.pooling not in ("autopool", "mean", "max"):
            raise ParameterError(f"pooling={self.pooling!r} must be autopool, mean or max")
        if min(self.hidden, self.dim, self.n_positives, self.n_negatives, self.epochs, self.batch) < 1:
            raise ParameterError("hidden, dim, n_positives, n_negatives, epochs and batch must be >= 1")


def _network(d_in: int, options: TripletOptions):
    import torch
    from torch import nn

    class PatchEmbedding(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = nn.Linear(d_in, options.hidden)
            self.l2 = nn.Linear(options.hidden, options.dim)
            self.drop = nn.Dropout(options.dropout)
            self.alpha = nn.Parameter(torch.zeros(options.dim))

        def forward(self, x, mask):  # x (B, T, d_in), mask (B, T) bool
            h = self.l2(self.drop(torch.relu(self.l1(x))))
            if options.pooling == "mean":
                v = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            elif options.pooling == "max":
                v = h.masked_fill(~mask[..., None], -1e9).max(1).values
            else:
                z = (self.alpha * h).masked_fill(~mask[..., None], -1e9)
                v = (torch.softmax(z, dim=1) * h).sum(1)
            return torch.nn.functional.normalize(v, dim=-1)

    return PatchEmbedding()


def _batch(items: list[np.ndarray], idx: np.ndarray, rng: np.random.Generator, crop: tuple[int, int] | None):
    import torch

    chosen = []
    for i in idx:
        X = items[i]
        if crop is not None and len(X) > crop[0]:
            n = int(rng.integers(crop[0], min(crop[1], len(X)) + 1))
            s = int(rng.integers(0, len(X) - n + 1))
            X = X[s : s + n]
        chosen.append(X)
    T = max(len(x) for x in chosen)
    x = np.zeros((len(chosen), T, chosen[0].shape[1]), np.float32)
    mask = np.zeros((len(chosen), T), bool)
    for b, X in enumerate(chosen):
        x[b, : len(X)] = X
        mask[b, : len(X)] = True
    return torch.from_numpy(x), torch.from_numpy(mask)


def mine_triplets(
    S: np.ndarray, exclude: np.ndarray, *, options: TripletOptions, rng: np.random.Generator, E: np.ndarray | None
) -> np.ndarray:
    """One epoch of triplets ``(a, p, n)`` (module docstring); ``E`` (n, dim) the current embeddings (for
    ``distance``). Returns an int array of shape (n_triplets, 3); anchors without a positive are skipped."""
    n = len(S)
    out = []
    for a in range(n):
        s = S[a].astype(np.float64).copy()
        s[exclude[a]] = -np.inf
        s[a] = -np.inf
        order = np.lexsort((rng.random(n), -s))  # by S descending, ties random
        order = order[np.isfinite(s[order])]
        top = [j for j in order[: options.n_positives] if s[j] > 0]
        if not top:
            continue
        p = int(rng.choice(top))
        cand = order[s[order] < s[p]]
        if len(cand) == 0:
            continue
        if options.strategy == "neighbours":
            neg = int(rng.choice(cand[: options.n_negatives]))
        elif options.strategy == "random" or E is None:
            neg = int(rng.choice(cand))
        else:
            d = ((E[cand] - E[a]) ** 2).sum(axis=1)
            w = np.exp(-d / max(float(np.median(d)), 1e-6))
            neg = int(rng.choice(cand, p=w / w.sum()))
        out.append((a, p, neg))
    return np.array(out, dtype=np.int64).reshape(-1, 3)


def train_similarity(items: list[np.ndarray], S: np.ndarray, exclude: np.ndarray, *, options: TripletOptions,
                     input_kind: str) -> tuple[dict, dict]:  # fmt: skip
    """Train the embedding on per-item patch features.

    Parameters
    ----------
    items : list of np.ndarray, each shape (n_patches_i, d)
    S : np.ndarray, shape (n, n)
        Oracle similarity (module docstring).
    exclude : np.ndarray of bool, shape (n, n)
        Pairs never used (same track).
    options : TripletOptions
    input_kind : str
        Name of the per-patch features (kept in the bundle config).

    Returns
    -------
    config, arrays
        For :func:`mirsearch.models.similarity.save_model`.
    """
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    if len(items) != len(S) or S.shape != exclude.shape:
        raise ParameterError(f"{len(items)} items, S {S.shape} and exclude {exclude.shape} do not match")
    allX = np.concatenate(items)
    mean, scale = allX.mean(axis=0), allX.std(axis=0) + 1e-3
    items = [((X - mean) / scale).astype(np.float32) for X in items]
    net = _network(allX.shape[1], options)
    opt = torch.optim.AdamW(net.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    history = []
    for epoch in range(options.epochs):
        E = _embed_all(net, items) if options.strategy == "distance" else None
        triplets = mine_triplets(S, exclude, options=options, rng=rng, E=E)
        rng.shuffle(triplets)
        net.train()
        losses = []
        for start in range(0, len(triplets), options.batch):
            t = triplets[start : start + options.batch]
            x, m = _batch(items, t.reshape(-1), rng, options.crop)
            f = net(x, m).reshape(len(t), 3, -1)
            dp = ((f[:, 0] - f[:, 1]) ** 2).sum(-1)
            dn = ((f[:, 0] - f[:, 2]) ** 2).sum(-1)
            loss = torch.relu(dp - dn + options.margin).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        history.append(float(np.mean(losses)) if losses else 0.0)
        log.info("similarity epoch %d: %d triplets, loss %.4f", epoch + 1, len(triplets), history[-1])
    sd = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    arrays = {"mean": mean, "scale": scale, "w1": sd["l1.weight"].T, "b1": sd["l1.bias"], "w2": sd["l2.weight"].T,
              "b2": sd["l2.bias"], "alpha": sd["alpha"]}  # fmt: skip
    config = {"input": input_kind, "input_dim": int(allX.shape[1]), "hidden": options.hidden, "dim": options.dim,
              "pooling": options.pooling, "training": {**asdict(options), "items": len(items),
                                                       "final_loss": history[-1] if history else None}}  # fmt: skip
    return config, arrays


def _embed_all(net, items: list[np.ndarray]) -> np.ndarray:
    import torch

    net.eval()
    with torch.no_grad():
        out = [net(*_batch(items, np.arange(i, min(i + 64, len(items))), None, None)).numpy()
               for i in range(0, len(items), 64)]  # fmt: skip
    return np.concatenate(out)


def soundtrack_oracle(labels, tracks, *, graded: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Oracle ``S`` and ``exclude`` for item labels (soundtracks) and track names.

    ``graded`` False: ``S`` = same soundtrack and a different track (1/0), pairs of one track excluded.
    ``graded`` True: ``S`` = 2 for two clips of one track, 1 for one soundtrack, 0 otherwise; nothing excluded but
    the item itself (a ranked list with three levels: the track, its soundtrack, the rest).
    """
    labels = np.asarray(labels)
    tracks = np.asarray([f"{a}\x00{b}" for a, b in zip(labels, tracks, strict=True)])
    same_track = tracks[:, None] == tracks[None, :]
    same_soundtrack = labels[:, None] == labels[None, :]
    if graded:
        S = same_soundtrack.astype(np.float32) + same_track.astype(np.float32)
        return S, np.eye(len(labels), dtype=bool)
    return (same_soundtrack & ~same_track).astype(np.float32), same_track


def tag_oracle(tag_vectors: np.ndarray) -> np.ndarray:
    """Oracle ``S`` = cosine of tag vectors (0 where a vector is empty), shape (n, n)."""
    T = np.asarray(tag_vectors, dtype=np.float64)
    norms = np.linalg.norm(T, axis=1)
    U = T / np.maximum(norms, 1e-12)[:, None]
    return (U @ U.T).astype(np.float32)


def recording_parts(segments: np.ndarray, *, part_segments: int) -> list[np.ndarray]:
    """A recording's per-segment vectors (n, d) cut into consecutive parts of ``part_segments`` rows (the last
    part takes the remainder); at least two parts when ``n >= 2``, so that every recording gives a positive pair
    for :func:`recording_oracle`. Returns a list of (m_i, d) arrays."""
    if part_segments < 1:
        raise ParameterError(f"part_segments={part_segments} must be >= 1")
    X = np.asarray(segments)
    n = len(X)
    m = max(min(2, n), n // part_segments)
    edges = np.round(np.linspace(0, n, m + 1)).astype(int)
    return [X[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def recording_oracle(recordings, soundtracks=None, *, weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Self-supervised oracle over parts of recordings: ``S = 2`` for two parts of one recording, plus ``weight``
    for two parts of one soundtrack when ``soundtracks`` (labels per part) are given, else 0; ``exclude`` only
    the item itself. Without labels the embedding learns what stays the same within a recording and differs
    between recordings (any two stretches of one recording are a positive pair)."""
    rec = np.asarray(recordings)
    S = 2.0 * (rec[:, None] == rec[None, :])
    if soundtracks is not None:
        lab = np.asarray(soundtracks)
        if len(lab) != len(rec):
            raise ParameterError(f"{len(lab)} soundtrack labels for {len(rec)} parts")
        S = S + weight * (lab[:, None] == lab[None, :])
    np.fill_diagonal(S, 0.0)
    return S.astype(np.float32), np.eye(len(rec), dtype=bool)
