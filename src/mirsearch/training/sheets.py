"""Training data and loop of the audio-sheet model (``mirsearch.models.sheets``).

Data (cached per piece under ``<corpus>/cache/<engraver>/<piece>.npz``, built once)
    The pages of a piece go through the staff detector (``mirsearch.features.staff``), exactly as pages
    at search time; every note head is assigned to the detected system whose box (widened by two staff
    spaces) holds it, and its column in that system's strip is stored. Heads outside every detected
    system are dropped. Each rendering's log mel spectrogram is stored as float16 with its tempo factor
    (onsets in the rendering are ``onset / tempo``).
Pairs
    A note head and one rendering: the sheet snippet centred on the head's strip column, the audio
    excerpt centred on its onset frame. A batch takes :data:`PER_PIECE` pairs from each of its pieces.
    Augmentation: horizontal shift of up to 4 pixels, vertical shift
    of up to 3, one scale factor 0.9-1.1 per batch; excerpt length 2, 4 or 8 s per batch.
Loss
    Pairwise ranking loss with margin (Dorfer et al.): for every pair ``i`` and every other pair ``j`` of
    the batch, ``max(0, margin - cos(a_i, s_i) + cos(a_i, s_j))`` and the same with the roles swapped.
Loop
    Adam, ``torch.set_num_threads(1)``, a checkpoint every ``checkpoint_every`` steps (resumable), the best
    validation MRR saved as a bundle.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_path, atomic_write_text

logger = logging.getLogger(__name__)

#: audio excerpt lengths (frames at 20 Hz) drawn per batch: 2, 4 and 8 s
EXCERPT_FRAMES = (40, 80, 160)
#: pairs per piece in a batch, so that many negatives come from elsewhere in the same piece (the hard part:
#: where in the music, not which music)
PER_PIECE = 8


@dataclass(frozen=True)
class SheetTrainOptions:
    """Training run settings."""

    #: the corpus directory and this run's directory (checkpoint, state, best bundle)
    corpus: str
    run_dir: str
    #: optimisation: Adam steps, pairs per batch, learning rate, ranking margin (cosine units)
    steps: int = 6000
    batch: int = 48
    lr: float = 1e-3
    margin: float = 0.7
    seed: int = 0
    #: validation (audio 2 s -> sheet among ``val_pairs`` pairs) and checkpoint every this many steps
    checkpoint_every: int = 200
    val_pairs: int = 1000
    #: seconds per run (a later run resumes)
    time_limit: float = 3600.0


# ------------------------------------------------------------------------------------------ cache


def cache_piece(row: dict, cache_dir: Path) -> Path | None:
    """Detect systems on the pages of a corpus piece and store strips, head positions and spectrograms."""
    from PIL import Image

    from mirsearch.audio import load_audio
    from mirsearch.datasets.sheets import load_piece
    from mirsearch.features.sheet_audio import SR, sheet_spectrogram
    from mirsearch.features.staff import detect_layout, system_strip

    target = cache_dir / row["engraver"] / f"{row['id']}.npz"
    if target.is_file():
        return target
    piece = load_piece(row["dir"])
    strips, strip_page, heads = [], [], []
    notes = piece["notes"]
    page_of = np.asarray(notes["page"])
    for p, page in enumerate(piece["pages"]):
        image = np.asarray(Image.open(Path(row["dir"]) / page["image"]).convert("L"))
        layout = detect_layout(image)
        for system in layout.systems:
            x0, y0, x1, y1 = system.box
            strip, scale = system_strip(image, system, staff_space=layout.staff_space)
            k = len(strips)
            strips.append((strip * 255).astype(np.uint8))
            strip_page.append(p)
            pad = 2 * layout.staff_space
            for i in np.flatnonzero(page_of == p):
                x, y = notes["x"][i], notes["y"][i]
                if y0 - pad <= y <= y1 + pad and x0 <= x <= x1:
                    heads.append((k, (x - x0) * scale, notes["onset"][i], i))
    if not heads:
        return None
    arrays = {f"strip_{k}": s for k, s in enumerate(strips)}
    H = np.asarray(heads, dtype=np.float64)
    arrays.update(head_strip=H[:, 0].astype(np.int32), head_x=H[:, 1], head_onset=H[:, 2], head_note=H[:, 3])
    tempos = []
    for k, (_font, tempo, rel) in enumerate(row["renders"]):
        y, _ = load_audio(Path(row["dir"]) / rel, sr=SR)
        S, _ = sheet_spectrogram(y, sr=SR)
        arrays[f"spec_{k}"] = S.astype(np.float16)
        tempos.append(float(tempo))
    arrays.update(tempos=np.asarray(tempos), strip_page=np.asarray(strip_page, dtype=np.int32))
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    return target


@dataclass
class PieceData:
    """Cached arrays of one piece (see :func:`cache_piece`)."""

    id: str
    strips: list[np.ndarray]
    head_strip: np.ndarray
    head_x: np.ndarray
    head_onset: np.ndarray
    specs: list[np.ndarray]
    tempos: np.ndarray


def load_cached(path: Path, piece_id: str) -> PieceData:
    with np.load(path) as z:
        n_strips = sum(1 for k in z.files if k.startswith("strip_") and k[6:].isdigit())
        n_specs = sum(1 for k in z.files if k.startswith("spec_"))
        return PieceData(
            piece_id,
            [z[f"strip_{k}"] for k in range(n_strips)],
            z["head_strip"],
            z["head_x"],
            z["head_onset"],
            [z[f"spec_{k}"] for k in range(n_specs)],
            z["tempos"],
        )


# ------------------------------------------------------------------------------------------ pairs


def crop_columns(image: np.ndarray, centre: float, width: int) -> np.ndarray:
    """Columns ``centre - width/2 .. centre + width/2`` of a 2-D array, zero-padded outside."""
    start = int(round(centre - width / 2))
    out = np.zeros((image.shape[0], width), dtype=np.float32)
    lo, hi = max(start, 0), min(start + width, image.shape[1])
    if hi > lo:
        out[:, lo - start : hi - start] = image[:, lo:hi]
    return out


def sheet_snippet(strip: np.ndarray, x: float, *, width: int, dy: int = 0) -> np.ndarray:
    """Snippet of a strip (uint8 ink or float) centred on column ``x``, shifted ``dy`` rows, ink 0-1."""
    s = strip.astype(np.float32) / (255.0 if strip.dtype == np.uint8 else 1.0)
    if dy:
        s = np.roll(s, dy, axis=0)
    return crop_columns(s, x, width)


def audio_excerpt(spec: np.ndarray, t: float, *, frames: int, feature_rate: float) -> np.ndarray:
    """Spectrogram frames centred on time ``t`` (seconds), zero-padded at the edges."""
    return crop_columns(spec, t * feature_rate, frames)


def sample_pairs(pieces: list[PieceData], rng: np.random.Generator, n: int, *, frames: int, config) -> tuple:
    """``n`` random (sheet snippet, audio excerpt) pairs with augmentation; also their piece indices."""
    counts = np.asarray([len(p.head_x) for p in pieces], dtype=np.float64)
    groups = rng.choice(len(pieces), size=-(-n // PER_PIECE), p=counts / counts.sum())
    which = np.repeat(groups, PER_PIECE)[:n]  # several pairs per piece: negatives from the same music
    S = np.empty((n, config.snippet_height, config.snippet_width), np.float32)
    A = np.empty((n, config.n_bands, frames), np.float32)
    for b, k in enumerate(which):
        p = pieces[k]
        i = rng.integers(len(p.head_x))
        r = rng.integers(len(p.specs))
        x = p.head_x[i] + rng.uniform(-4, 4)
        S[b] = sheet_snippet(p.strips[p.head_strip[i]], x, width=config.snippet_width, dy=int(rng.integers(-3, 4)))
        t = p.head_onset[i] / p.tempos[r]
        A[b] = audio_excerpt(p.specs[r], t, frames=frames, feature_rate=config.feature_rate)
    return S, A, which


def fixed_pairs(pieces: list[PieceData], n: int, *, frames: int, config, seed: int = 1) -> tuple:
    """``n`` evaluation pairs without augmentation (deterministic)."""
    rng = np.random.default_rng(seed)
    S, A, which = [], [], []
    counts = np.asarray([len(p.head_x) for p in pieces], dtype=np.float64)
    for k in rng.choice(len(pieces), size=n, p=counts / counts.sum()):
        p = pieces[k]
        i, r = rng.integers(len(p.head_x)), rng.integers(len(p.specs))
        S.append(sheet_snippet(p.strips[p.head_strip[i]], p.head_x[i], width=config.snippet_width))
        A.append(
            audio_excerpt(p.specs[r], p.head_onset[i] / p.tempos[r], frames=frames, feature_rate=config.feature_rate)
        )
        which.append(k)
    return np.stack(S), np.stack(A), np.asarray(which)


# ------------------------------------------------------------------------------------------- loop


def ranking_loss(a, s, *, margin: float):
    """Pairwise ranking loss over a batch of unit vectors (torch), both directions."""
    import torch

    sim = a @ s.T
    pos = sim.diagonal()[:, None]
    off = ~torch.eye(len(a), dtype=torch.bool)
    cost_a = torch.clamp(margin - pos + sim, min=0)[off]
    cost_s = torch.clamp(margin - pos.T + sim, min=0)[off]
    return cost_a.mean() + cost_s.mean()


def _scale_batch(S, factor: float, config):
    """Rescale a batch of snippets by ``factor`` about their centre (crop or pad back to the input size)."""
    import torch
    import torch.nn.functional as F

    if abs(factor - 1.0) < 1e-3:
        return S
    h, w = config.snippet_height, config.snippet_width
    Z = F.interpolate(S, scale_factor=factor, mode="bilinear", align_corners=False)
    zh, zw = Z.shape[-2:]
    out = torch.zeros_like(S)
    ch, cw = min(h, zh), min(w, zw)
    out[..., (h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2 + cw] = Z[
        ..., (zh - ch) // 2 : (zh - ch) // 2 + ch, (zw - cw) // 2 : (zw - cw) // 2 + cw
    ]
    return out


def validate(model, pairs: tuple) -> dict:
    """R@1 / MRR of audio -> sheet retrieval among the given pairs."""
    import torch

    S, A, _ = pairs
    model.eval()
    with torch.no_grad():
        s = torch.cat([model.sheet(torch.from_numpy(S[i : i + 256])[:, None]) for i in range(0, len(S), 256)])
        a = torch.cat([model.audio(torch.from_numpy(A[i : i + 256])[:, None]) for i in range(0, len(A), 256)])
    model.train()
    sim = (a @ s.T).numpy()
    ranks = 1 + (sim > sim.diagonal()[:, None]).sum(axis=1)
    return {"r1": float(np.mean(ranks == 1)), "mrr": float(np.mean(1.0 / ranks))}


def train_sheet_model(options: SheetTrainOptions, train: list[PieceData], val: list[PieceData], config) -> dict:
    """Train (or resume) a model; returns the training summary. The best model is saved as a bundle."""
    import torch

    from mirsearch.models.bundle_format import load_state_dict, save_state_dict
    from mirsearch.models.sheets import SheetAudioModel, SheetBundle

    torch.set_num_threads(1)
    torch.manual_seed(options.seed)
    run = Path(options.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    model = SheetAudioModel(config)
    opt = torch.optim.Adam(model.parameters(), lr=options.lr)
    state = {"step": 0, "best_mrr": -1.0, "history": []}
    ckpt = run / "checkpoint.pt"
    if ckpt.is_file():
        saved = load_state_dict(ckpt, what="checkpoint")
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        state = json.loads((run / "state.json").read_text())
    rng = np.random.default_rng(options.seed + state["step"])
    val_pairs = fixed_pairs(val, options.val_pairs, frames=40, config=config)
    start, losses = time.monotonic(), []
    while state["step"] < options.steps and time.monotonic() - start < options.time_limit:
        frames = int(rng.choice(EXCERPT_FRAMES, p=[0.5, 0.25, 0.25]))
        S, A, _ = sample_pairs(train, rng, options.batch, frames=frames, config=config)
        s_in = _scale_batch(torch.from_numpy(S)[:, None], float(rng.uniform(0.9, 1.1)), config)
        loss = ranking_loss(model.audio(torch.from_numpy(A)[:, None]), model.sheet(s_in), margin=options.margin)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
        state["step"] += 1
        if state["step"] % options.checkpoint_every == 0 or state["step"] == options.steps:
            metrics = validate(model, val_pairs)
            entry = {"step": state["step"], "loss": float(np.mean(losses)), **metrics, "time": time.monotonic() - start}
            state["history"].append(entry)
            losses = []
            logger.info("step %(step)d loss %(loss).4f val R@1 %(r1).3f MRR %(mrr).3f", entry)
            if metrics["mrr"] > state["best_mrr"]:
                state["best_mrr"] = metrics["mrr"]
                best = SheetBundle(model)
                best.save(run / "best", training={**asdict(options), "step": state["step"], **metrics})
                model.train()
            save_state_dict({"model": model.state_dict(), "opt": opt.state_dict()}, ckpt)
            atomic_write_text(run / "state.json", json.dumps(state, indent=1))
    return state
