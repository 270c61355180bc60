"""An ONNX tagger bundle (e.g. the packaged one) back as a torch training run, so ``python -m
mirsearch.training.tagger --init`` can fine-tune it (``--import-bundle``).

The exporter folds batch norms into the convolutions before them; :func:`run_from_bundle` rebuilds them from
the folded weights and a calibration batch (:func:`import_bundle_run` takes it from a tags dataset). The result
gives the bundle's outputs to float precision in eval mode (tests/test_sample_stems.py checks against onnxruntime).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mirsearch.training.tagger import FRONTEND, TrainOptions, build_net, compute_features

log = logging.getLogger(__name__)

__all__ = ["import_bundle_run", "run_from_bundle"]


def run_from_bundle(bundle: str | Path, run: str | Path, *, calib: np.ndarray | None = None) -> Path:
    """Torch weights of an ONNX tagger bundle (e.g. the packaged one) as a run folder that ``--init`` starts from.

    The bundle's ONNX initializers are named like the network's state dict (``inner.<key>``), except where the
    exporter folded a batch norm into the convolution before it (the top conv, residual blocks): such a conv gets
    the folded weight and its batch norm is rebuilt so that eval mode gives the same output and training mode (batch
    statistics) about the same: running mean ``m`` and variance ``s**2`` of the folded conv's output on ``calib``,
    scale ``s`` and shift ``bias + m``. Conv nodes of the graph are matched to the network's convolutions in order.
    The autopool alphas and the input normalisation come from ``config.json``; the prototypical-episode scale,
    which the graph does not hold, starts at its default (10).

    Parameters
    ----------
    bundle : path
        Tagger bundle folder (``config.json``, ``model.onnx``).
    run : path
        Run folder to write ``best.pt`` into (created).
    calib : np.ndarray, shape (batch, 1, n_mels, n_frames), optional
        Normalised network input for the rebuilt batch-norm statistics (default: 8 crops of standard normal noise).

    Returns
    -------
    Path
        ``<run>/best.pt`` (epoch 0; ``imported_from``: the bundle's model id).

    Raises
    ------
    ValueError
        The graph's initializers do not fit the network its config describes.
    """
    import onnx
    import torch
    from onnx import numpy_helper
    from torch import nn

    from mirsearch.describe.tag_vocabulary import TAG_NAMES
    from mirsearch.models import bundle_format
    from mirsearch.models.tagger import FORMAT, FORMAT_VERSION, ONNX_FILE

    bundle, run = Path(bundle), Path(run)
    config = bundle_format.read_config(bundle, format=FORMAT, version=FORMAT_VERSION, what="tagger bundle")
    opts = TrainOptions.from_json(config["training"]["options"])
    net = build_net(len(TAG_NAMES), opts.net)
    net.eval()
    graph = onnx.load(str(bundle / ONNX_FILE)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    state = {k: v.clone() for k, v in net.state_dict().items()}
    for name, value in inits.items():
        if name.startswith("inner.") and name[6:] in state:
            if tuple(state[name[6:]].shape) != value.shape:
                raise ValueError(
                    f"{bundle}: {name} has shape {value.shape}, the network {tuple(state[name[6:]].shape)}"
                )
            state[name[6:]] = torch.from_numpy(np.array(value))
    convs = [(n, m) for n, m in net.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    nodes = [n for n in graph.node if n.op_type == "Conv"]
    if len(nodes) != len(convs):
        raise ValueError(f"{bundle}: {len(nodes)} Conv nodes, the network has {len(convs)} convolutions")
    after: dict[str, str] = {}  # conv name -> the batch norm right after it in a Sequential
    for seq_name, seq in net.named_modules():
        if isinstance(seq, nn.Sequential):
            kids = list(seq.named_children())
            for (a, ma), (b, mb) in zip(kids, kids[1:], strict=False):
                if isinstance(ma, nn.Conv2d) and isinstance(mb, nn.BatchNorm2d):
                    after[f"{seq_name}.{a}"] = f"{seq_name}.{b}"
    folded: list[tuple[str, str, np.ndarray]] = []
    for (name, module), node in zip(convs, nodes, strict=True):
        w = inits.get(node.input[1])
        if w is None or w.shape != tuple(module.weight.shape):
            raise ValueError(f"{bundle}: Conv node {node.name} does not fit {name}")
        state[f"{name}.weight"] = torch.from_numpy(np.array(w))
        bias = inits.get(node.input[2]) if len(node.input) > 2 else None
        if module.bias is not None:
            if bias is None:
                raise ValueError(f"{bundle}: {name} has a bias, its Conv node none")
            state[f"{name}.bias"] = torch.from_numpy(np.array(bias))
        elif bias is not None:
            if name not in after:
                raise ValueError(f"{bundle}: {name} has no bias and no batch norm after it, the graph a bias")
            folded.append((name, after[name], np.array(bias)))
    for _, bn, bias in folded:  # identity first; statistics below
        eps = dict(net.named_modules())[bn].eps
        state[f"{bn}.weight"] = torch.ones(len(bias))
        state[f"{bn}.bias"] = torch.from_numpy(bias)
        state[f"{bn}.running_mean"] = torch.zeros(len(bias))
        state[f"{bn}.running_var"] = torch.full((len(bias),), 1.0 - eps)
    state["alpha"] = torch.tensor(
        np.asarray(config["pooling"].get("alpha") or np.zeros(len(TAG_NAMES))), dtype=torch.float32
    )
    net.load_state_dict(state)
    if folded:
        if calib is None:
            calib = np.random.default_rng(0).standard_normal((8, 1, FRONTEND["n_mels"], 256)).astype(np.float32)
        modules, outs = dict(net.named_modules()), {}
        hooks = [modules[c].register_forward_hook(lambda m, i, o, c=c: outs.__setitem__(c, o.detach()))
                 for c, _, _ in folded]  # fmt: skip
        with torch.no_grad():
            net(torch.from_numpy(np.asarray(calib, np.float32)))
        for h in hooks:
            h.remove()
        for conv, bn, bias in folded:
            y = outs[conv]
            m, s = y.mean(dim=(0, 2, 3)), y.std(dim=(0, 2, 3)).clamp(min=1e-3)
            eps = modules[bn].eps
            state[f"{bn}.running_mean"], state[f"{bn}.running_var"] = m, s**2 - eps
            state[f"{bn}.weight"], state[f"{bn}.bias"] = s, torch.from_numpy(bias) + m
        net.load_state_dict(state)
    fe = config["frontend"]
    norm = [np.asarray(fe["mean"], np.float32)[:, None], np.asarray(fe["std"], np.float32)[:, None]]
    run.mkdir(parents=True, exist_ok=True)
    training = config.get("training", {})
    torch.save({"net": net.state_dict(), "norm": norm, "opts": asdict(opts), "epoch": 0,
                "val_macro_auc": float(training.get("val_macro_auc") or 0.0), "validation": training.get("validation"),
                "imported_from": config.get("model_id")}, run / "best.pt")  # fmt: skip
    log.info(
        "%s: imported %s into %s (%d folded batch norms rebuilt)", bundle, config.get("model_id"), run, len(folded)
    )
    return run / "best.pt"


def import_bundle_run(bundle: str | Path, run: str | Path, *, data: str | Path, n_clips: int = 64) -> Path:
    """:func:`run_from_bundle` with the rebuilt batch norms calibrated on the first ``n_clips`` train clips of
    ``data`` (their first 256 log-mel frames, normalised as the bundle does)."""
    from mirsearch.datasets.tags import load_manifest
    from mirsearch.models import bundle_format
    from mirsearch.models.tagger import FORMAT, FORMAT_VERSION

    records = load_manifest(data)
    X = compute_features(Path(data), records)
    idx = [i for i, r in enumerate(records) if r["split"] == "train"][:n_clips]
    fe = bundle_format.read_config(Path(bundle), format=FORMAT, version=FORMAT_VERSION, what="tagger bundle")[
        "frontend"
    ]
    mean, std = np.asarray(fe["mean"], np.float32)[:, None], np.asarray(fe["std"], np.float32)[:, None]
    calib = ((np.asarray(X[idx][:, :, :256], np.float32) - mean) / std)[:, None]
    return run_from_bundle(bundle, run, calib=calib)
