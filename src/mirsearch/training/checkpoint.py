"""The resumable state of a training run, written after every epoch and read back by ``resume``.

A run's folder holds ``checkpoints/last.pt`` (model and optimiser state dicts, the last finished epoch, the
history as JSON text and the best score so far) and ``history.json``. torch is imported only when a checkpoint is
read or written.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from mirsearch._util import atomic_path, atomic_write_text

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
HISTORY_FILE = "history.json"


@dataclass
class TrainingState:
    """What a checkpoint holds besides the weights.

    Attributes
    ----------
    epoch : int
        The last finished epoch, as the loop counted it.
    history : list of dict
        One entry per finished epoch.
    best : object
        The best score so far, as the loop stored it (a float or JSON text).
    """

    epoch: int
    history: list
    best: object


def checkpoint_path(out: str | os.PathLike) -> Path:
    """``<out>/checkpoints/last.pt``; the folder is created."""
    directory = Path(out) / CHECKPOINT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    return directory / "last.pt"


def save_training_state(path: Path, model, optimizer, *, epoch: int, history: list, best) -> None:
    """Write model, optimiser, ``epoch``, ``history`` (as JSON text) and ``best`` to ``path`` atomically."""
    import torch

    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "history": json.dumps(history),
        "best": best,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_training_state(path: Path, model, optimizer, *, resume: bool) -> TrainingState | None:
    """Load ``path`` into ``model`` and ``optimizer`` when resuming and it exists; None for a fresh start."""
    if resume and path.is_file():
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        log.info("resuming from %s after epoch %d", path, int(state["epoch"]))
        return TrainingState(int(state["epoch"]), json.loads(state["history"]), state["best"])
    if resume:
        log.info("no checkpoint in %s: starting from scratch", path.parent)
    return None


def write_history(out: str | os.PathLike, history: list) -> None:
    """``<out>/history.json``, written atomically."""
    atomic_write_text(Path(out) / HISTORY_FILE, json.dumps(history, indent=2) + "\n")


__all__ = [
    "CHECKPOINT_DIR",
    "HISTORY_FILE",
    "TrainingState",
    "checkpoint_path",
    "load_training_state",
    "save_training_state",
    "write_history",
]
