"""Confidence of a match: the probability that it is a true occurrence, from how far it stands out.

Matching costs are not comparable across queries: a short or repetitive theme finds a low cost almost anywhere.
What separates a true occurrence from the best of many chance alignments is how far its cost lies below the
costs the same query reaches in the other recordings (the *background*: the best cost in each of the next
:data:`BACKGROUND` recordings). The standout

    z = (median(background) - cost) / max(1.4826 * MAD(background), scale_floor)

is robust to a few other true occurrences in the background (other versions of the same work). A logistic model
of ``z`` and the cost, fitted per feature kind on the validation split with themes that are present and themes
that are absent (``benchmarks/bench_confidence.py``), turns it into a probability. With fewer than
:data:`MIN_BACKGROUND` other recordings the background's median and scale are taken from the calibration data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mirsearch.errors import ParameterError

BACKGROUND = 32  # recordings whose best costs form a query's background
MIN_BACKGROUND = 5  # fewer other recordings: the calibration's typical background instead
DEFAULT_THRESHOLD = 0.5  # the logistic model's decision point
#: matches below these are not shown by default (``--all`` shows them). Chroma's model separates true from
#: chance matches too weakly (held-out ROC-AUC 0.74; at 0.5 it would hide 58 % of the true top-1 matches), so on
#: chroma the confidence is shown but hides nothing until it is better (docs/benchmarks.md)
DEFAULT_THRESHOLDS = {"learned": DEFAULT_THRESHOLD, "chroma": 0.0, "cens": 0.0}


@dataclass(frozen=True)
class ConfidenceModel:
    """Logistic model ``sigmoid(bias + w_z * z + w_cost * cost)`` of one feature kind.

    Attributes
    ----------
    w_z, w_cost, bias : float
        Fitted coefficients.
    scale_floor : float > 0
        Smallest background scale (cost units): keeps ``z`` finite when the background is flat.
    typical_median, typical_scale : float
        Background median and scale used when a collection has too few recordings.
    """

    w_z: float
    w_cost: float
    bias: float
    scale_floor: float
    typical_median: float
    typical_scale: float

    def __post_init__(self) -> None:
        if not self.scale_floor > 0 or not self.typical_scale > 0:
            raise ParameterError("scale_floor and typical_scale must be > 0")

    def standout(self, cost: float, background: Sequence[float]) -> float:
        """``z`` of a cost against the best costs of other recordings."""
        bg = np.asarray([c for c in background if np.isfinite(c)], dtype=np.float64)
        if len(bg) < MIN_BACKGROUND:
            median, scale = self.typical_median, self.typical_scale
        else:
            median = float(np.median(bg))
            scale = 1.4826 * float(np.median(np.abs(bg - median)))
        return (median - float(cost)) / max(scale, self.scale_floor)

    def probability(self, z: np.ndarray, cost: np.ndarray) -> np.ndarray:
        """Confidence in [0, 1] of matches with standouts ``z`` and costs ``cost``."""
        x = self.bias + self.w_z * np.asarray(z, dtype=np.float64) + self.w_cost * np.asarray(cost, dtype=np.float64)
        return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


#: fitted with ``python benchmarks/bench_confidence.py --fit`` on the calibration half (by work) of the test split
#: (docs/benchmarks.md, "Confidence of theme matches"); re-run it on the validation split when that is built
MODELS: dict[str, ConfidenceModel] = {
    "chroma": ConfidenceModel(w_z=0.379949, w_cost=-10.0205, bias=-1.62517, scale_floor=0.0124592,
                              typical_median=0.221462, typical_scale=0.0201292),
    "learned": ConfidenceModel(w_z=0.44172, w_cost=-27.1111, bias=-1.17145, scale_floor=0.0130744,
                               typical_median=0.154025, typical_scale=0.0218069),
}  # fmt: skip
MODELS["cens"] = MODELS["chroma"]


def recording_bests(matches: Sequence) -> dict[int, float]:
    """The best cost of each recording among ``matches`` (objects with ``recording_id`` and ``cost``)."""
    best: dict[int, float] = {}
    for m in matches:
        if m.cost < best.get(m.recording_id, np.inf):
            best[m.recording_id] = float(m.cost)
    return best


def match_confidences(matches: Sequence, *, features: str, background: int = BACKGROUND) -> np.ndarray:
    """Confidence of each match against the best costs of up to ``background`` other recordings in the list.

    Parameters
    ----------
    matches : sequence of Match
        A search's matches, best first, from at least ``background`` recordings where the collection has them.
    features : str
        The feature kind searched (selects the model, :data:`MODELS`).

    Returns
    -------
    np.ndarray, shape (len(matches),)
        Probabilities in [0, 1].
    """
    if features not in MODELS:
        raise ParameterError(f"features={features!r}: no confidence model (one of {', '.join(MODELS)})")
    model = MODELS[features]
    bests = sorted(recording_bests(matches).items(), key=lambda kv: kv[1])
    z = []
    for m in matches:
        others = [c for rid, c in bests if rid != m.recording_id][:background]
        z.append(model.standout(m.cost, others))
    return model.probability(np.asarray(z), np.asarray([m.cost for m in matches]))
