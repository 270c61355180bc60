"""Shared helpers of the benchmark scripts: machine description, tables and result files."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from mirsearch._util import atomic_write_text
from mirsearch.evaluation.theme_bench import machine  # noqa: F401  (re-exported: benchmarks import it from here)

RESULTS = Path(__file__).resolve().parent / "results"


def print_table(rows: list[dict], columns: list[str]) -> None:
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths, strict=True)))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def write_results(name: str, payload: dict) -> Path:
    """Write ``results/<name>.json`` (the machine description first) atomically; returns its path."""
    path = RESULTS / f"{name}.json"
    atomic_write_text(path, json.dumps({"machine": machine(), **payload}, indent=2, default=str))
    return path


def accuracy_row(name: str, top1, rr, times) -> dict:
    """Top-1 and MRR over queries (0/1 hits, reciprocal ranks) and the time per query (s -> ms)."""
    import numpy as np

    return {
        "method": name,
        "Top-1": round(float(np.mean(top1)), 4),
        "MRR": round(float(np.mean(rr)), 4),
        "mean_ms": round(float(np.mean(times)) * 1000, 2),
        "median_ms": round(float(np.median(times)) * 1000, 2),
        "p95_ms": round(float(np.percentile(times, 95)) * 1000, 2),
    }


def paired_columns(ref_top1, ref_rr, top1, rr) -> dict:
    """How a method's per-query Top-1 / reciprocal ranks differ from a reference's on the same queries.

    Mean differences with 95 % bootstrap intervals, queries lost / won and the exact sign test on them
    (:func:`mirsearch.evaluation.paired.paired_difference`).
    """
    from mirsearch.evaluation.paired import paired_difference

    d1, dr = paired_difference(ref_top1, top1), paired_difference(ref_rr, rr)
    return {
        "dTop-1": f"{d1.mean:+.4f} [{d1.low:+.4f}, {d1.high:+.4f}]",
        "lost/won": f"{d1.lost}/{d1.won}",
        "p_sign": round(d1.p_value, 3),
        "dMRR": f"{dr.mean:+.4f} [{dr.low:+.4f}, {dr.high:+.4f}]",
        "paired": {"top1": d1.to_dict(), "mrr": dr.to_dict()},
    }


def grouped(rows: list[dict], by: tuple[str, ...]) -> list[tuple[dict, list[dict]]]:
    """Rows grouped by the values of the keys ``by``, in sorted order: ``[({key: value, ...}, rows), ...]``."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in by), []).append(r)
    return [(dict(zip(by, key, strict=True)), rs) for key, rs in sorted(groups.items())]


def summary_by(rows: list[dict], by: tuple[str, ...], columns: dict) -> list[dict]:
    """One row per group of ``rows`` (:func:`grouped`): the group's keys, ``queries`` and, for each
    ``out_key: (row_key, statistic, scale, digits)`` of ``columns``, ``round(scale * statistic(values), digits)``
    (``digits`` ``None``: not rounded); ``statistic`` is ``"mean"`` or ``"median"``."""
    import numpy as np

    out = []
    for d, rs in grouped(rows, by):
        d["queries"] = len(rs)
        for key, (field, statistic, scale, digits) in columns.items():
            value = scale * float(getattr(np, statistic)([r[field] for r in rs]))
            d[key] = value if digits is None else round(value, digits)
        out.append(d)
    return out


def half_arguments(doc: str, data: Path, argv=None) -> argparse.Namespace:
    """``--data`` (default ``data``) and ``--half train|test`` of the similarity benchmarks, parsed from ``argv``;
    logging set up at INFO."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--data", default=str(data))
    ap.add_argument("--half", choices=("train", "test"), default="train")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return args
