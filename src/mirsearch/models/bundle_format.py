"""The one on-disk layout of every model bundle (chroma networks, shingle reductions).

A bundle is a directory with

- ``config.json``: ``format`` (which kind of bundle: ``mirsearch-chroma-bundle``,
  ``mirsearch-shingle-reduction``), ``format_version``, ``model_id`` and whatever the kind needs to run
  the model (input features, network hyper-parameters, training summary);
- the parameters: ``weights.pt``, a plain ``state_dict`` written by :func:`torch.save` and read with
  ``torch.load(..., weights_only=True)`` (tensors only, no pickled code), or an ``.npz`` of arrays read
  with ``np.load(allow_pickle=False)``.

``model_id`` is the first 16 hex digits of the SHA-256 of the parameter files followed by the JSON of the
config sections that define the model (:func:`content_id`): anything that stores features computed by a
model keys them by it and re-extracts when it changes. Every file is written atomically
(:mod:`mirsearch._util`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mirsearch._util import atomic_path, atomic_write_text
from mirsearch.errors import InputError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"


def content_id(files: Sequence[Path], config: dict, keys: Sequence[str]) -> str:
    """``model_id``: SHA-256 of the bytes of ``files`` then of the JSON of ``config``'s ``keys`` (16 hex)."""
    h = hashlib.sha256()
    for f in files:
        h.update(Path(f).read_bytes())
    h.update(json.dumps({k: config.get(k) for k in keys}, sort_keys=True).encode())
    return h.hexdigest()[:16]


def read_config(path: str | os.PathLike, *, format: str, version: int | None, what: str = "model bundle") -> dict:
    """Read ``config.json`` of the bundle directory ``path`` and check its ``format`` and version
    (``format_version``; not checked when ``version`` is None).

    Raises
    ------
    InputError
        No or unreadable config, or another format / version.
    """
    cfg_path = Path(path) / CONFIG_FILE
    try:
        config = json.loads(cfg_path.read_text())
    except FileNotFoundError:
        raise InputError(f"{cfg_path}: {what} has no config.json") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{cfg_path}: cannot read bundle config ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != format:
        raise InputError(f"{cfg_path}: not a {format}{'' if version is None else f' version {version}'} config")
    if version is None:
        return config
    try:
        same_version = int(config.get("format_version", 0)) == version
    except (TypeError, ValueError):
        same_version = False
    if not same_version:
        raise InputError(f"{cfg_path}: not a {format} version {version} config")
    return config


def write_config(path: str | os.PathLike, config: dict) -> None:
    """Write ``config`` as ``path/config.json`` (sorted keys, indented) atomically."""
    atomic_write_text(Path(path) / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True) + "\n")


def save_state_dict(state: dict, path: str | os.PathLike, *, archive: str | None = None) -> Path:
    """Write a torch ``state_dict`` to ``path`` atomically; returns ``path``.

    Parameters
    ----------
    state : dict
        Tensors by name.
    path : path-like
        Target file.
    archive : str, optional
        Name of the folder inside the zip file (:func:`torch.save` takes the stem of the file it writes
        to; default ``path``'s stem). It is part of the bytes, hence of ``model_id``: a bundle kind keeps
        the name its files were first written with so that saving the same weights again gives the same id.
    """
    import torch

    path = Path(path)
    with atomic_path(path) as tmp, tempfile.TemporaryDirectory(dir=path.parent, prefix=".tmp-") as folder:
        named = Path(folder) / f"{archive or path.stem}.pt"
        torch.save(state, named)
        os.replace(named, tmp)
    return path


def load_state_dict(path: str | os.PathLike, *, what: str = "model bundle") -> dict:
    """Read a ``state_dict`` with ``torch.load(weights_only=True)`` (tensors only, no pickled code).

    Raises
    ------
    InputError
        Missing or unreadable file.
    """
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{path}: {what} has no weights") from None
    except Exception as exc:  # torch raises several kinds for corrupt files
        raise InputError(f"{path}: cannot load weights ({type(exc).__name__})") from None


def load_weights(model, path: str | os.PathLike, *, what: str = "model bundle"):
    """Load the ``state_dict`` at ``path`` into ``model`` (a torch module); returns ``model``.

    Raises
    ------
    InputError
        Missing or unreadable file, or weights that do not fit the network.
    """
    state = load_state_dict(path, what=what)
    try:
        model.load_state_dict(state)
    except RuntimeError:
        raise InputError(f"{path}: weights do not fit the network in config.json") from None
    return model
