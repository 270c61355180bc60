"""Confidence of a theme match: the probability that it is a true occurrence of the theme.

Two pieces of evidence, both independent of the collection's size and of what else it holds:

- the match's *cost* (cosine subsequence DTW cost per path step) and the theme's *length in notes* (with
  repeated pitch classes merged, :func:`theme_notes`): a true occurrence costs little, and a long theme reaches
  a low cost by chance less easily than a short one. A logistic model of ``log(cost + eps)`` and ``log(notes)``
  per feature kind (:class:`ConfidenceModel`), fitted on
  the validation split with present and absent themes (``benchmarks/bench_confidence.py``), turns them into a
  probability;
- a per-query *null*: :data:`NULL_THEMES` versions of the theme with the same rhythm and its pitch classes
  randomly permuted (:func:`null_themes`) are matched, in every transposition, in the region of the best match
  (:func:`null_costs`). The share of them that reach a match's cost or lower is the chance that a melody of
  this rhythm and pitch-set size matches there as well; the probability is multiplied by one minus it. Real
  themes almost never tie with their nulls (validation: 1 % of the true matches), while a query with too little
  information does: a single note, whose nulls are the same note transposed, gets confidence 0.

The models and their default thresholds are data (``mirsearch/models/bundles/confidence/models.json``), fitted and
written by ``python benchmarks/bench_confidence.py fit --write-model``.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources

import numpy as np

from mirsearch.errors import ParameterError

#: extra recordings a search returns beyond those shown (their matches fill the ``rejected`` list)
BACKGROUND = 32
#: null themes per query (pitch classes permuted, rhythm kept)
NULL_THEMES = 6
#: the region searched by the null themes: the best match widened by this many theme lengths on each side, or
#: wider while the null's DTW stays within :data:`NULL_CELLS` cells (short themes: a wider region, same cost)
NULL_MARGIN = 0.25
NULL_CELLS = 1_000_000
#: a null theme "reaches" a cost when its own is at most this much higher (equal up to rounding)
NULL_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ConfidenceModel:
    """Logistic model ``sigmoid(bias + w_cost * log(cost + eps) + w_notes * log(clip(notes, *notes_range)))``.

    Attributes
    ----------
    bias, w_cost, w_notes : float
        Fitted coefficients.
    eps : float > 0
        Added to the cost before the logarithm (cost units).
    notes_range : (int, int)
        Note counts (:func:`theme_notes`) outside it are clipped to it.
    threshold : float in [0, 1]
        Default decision point: matches below it are not shown (chosen on the validation split).
    """

    bias: float
    w_cost: float
    w_notes: float
    eps: float
    notes_range: tuple[int, int]
    threshold: float

    def __post_init__(self) -> None:
        if not self.eps > 0 or not 0 <= self.threshold <= 1 or not 1 <= self.notes_range[0] <= self.notes_range[1]:
            raise ParameterError(f"confidence model {self}: eps must be > 0, threshold in [0, 1], notes_range valid")

    def probability(self, cost, notes: int) -> np.ndarray:
        """Probability (before the null) that matches of cost ``cost`` of a ``notes``-note theme are true."""
        n = float(np.clip(notes, *self.notes_range))
        x = self.bias + self.w_cost * np.log(np.asarray(cost, dtype=np.float64) + self.eps) + self.w_notes * np.log(n)
        return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))

    def to_dict(self) -> dict:
        return {**asdict(self), "notes_range": list(self.notes_range)}

    @classmethod
    def from_dict(cls, d: dict) -> ConfidenceModel:
        return cls(**{**d, "notes_range": tuple(int(v) for v in d["notes_range"])})


@cache
def load_models() -> dict[str, ConfidenceModel]:
    """The fitted model of each feature kind (``models.json`` shipped in :mod:`mirsearch.models`)."""
    text = (resources.files("mirsearch.models") / "bundles" / "confidence" / "models.json").read_text()
    models = {kind: ConfidenceModel.from_dict(d) for kind, d in json.loads(text)["models"].items()}
    models.setdefault("cens", models["chroma"])
    return models


#: matches below these are not shown by default (``--all`` shows them; ``--min-confidence`` replaces them)
DEFAULT_THRESHOLDS = {kind: m.threshold for kind, m in load_models().items()}


def theme_notes(theme) -> int:
    """Notes of a theme with repeated pitch classes merged (what a chroma match can tell apart)."""
    from mirsearch.index.notes import theme_pitch_classes

    return len(theme_pitch_classes(theme))


def null_themes(theme, n: int = NULL_THEMES):
    """``n`` versions of ``theme`` with its pitch classes permuted at random (rhythm and octaves kept).

    The seed is the theme's own pitches, so the same query always gets the same nulls.
    """
    from mirsearch.scores import Note, Theme

    pitches = np.asarray([nt.pitch for nt in theme.notes], dtype=np.int64)
    rng = np.random.default_rng(zlib.crc32(pitches.tobytes()))
    out = []
    for _ in range(n):
        perm = rng.permutation(12)
        new = pitches - pitches % 12 + perm[pitches % 12]
        notes = tuple(Note(int(p), nt.onset, nt.duration) for p, nt in zip(new, theme.notes, strict=True))
        out.append(Theme(notes, theme.tempo_bpm, theme.name))
    return out


def null_costs(collection, theme, match, *, features: str, tempo_bpm: float | None = None,
               transpositions: Sequence[int] = range(12), n: int = NULL_THEMES) -> np.ndarray:  # fmt: skip
    """Best cost of each null theme (:func:`null_themes`) in the region of ``match``, shape (n,).

    The region is centred on the match: its span widened by :data:`NULL_MARGIN` theme lengths on each side, or
    wider as long as the null's DTW (all themes, all transpositions) stays within :data:`NULL_CELLS` cells. The
    null themes are played at the match's tempo factor and tried in ``transpositions``.
    """
    from mirsearch.matching.subsequence import SERIAL_CELLS, best_over_shifts, unit_columns
    from mirsearch.search.theme import QUERY_HARMONIC_DECAY, theme_query

    Y, offsets, recs, rate = collection.database(features)
    i = next(k for k, r in enumerate(recs) if r.id == match.recording_id)
    factor = float(match.extra.get("tempo_factor", 1.0))
    queries = [
        unit_columns(theme_query(t, feature_rate=rate, tempo_bpm=tempo_bpm, tempo_factor=factor,
                                 harmonic_decay=QUERY_HARMONIC_DECAY.get(features, 0.0)))
        for t in null_themes(theme, n)
    ]  # fmt: skip
    shifts = sorted({int(s) % 12 for s in transpositions})
    length = max(len(Q) for Q in queries)
    width = max((1 + 2 * NULL_MARGIN) * length, NULL_CELLS / (length * len(shifts) * n))
    centre = offsets[i] + (match.start + match.end) / 2 * rate
    lo = max(int(offsets[i]), int(centre - width / 2))
    hi = min(int(offsets[i + 1]), int(centre + width / 2) + 1)
    Ys = np.ascontiguousarray(Y[lo:hi])
    # groups of shifts small enough to run on this thread: waking the kernel's thread pool for a few hundred
    # thousand cells costs more than the cells (10x under load)
    per_call = max(1, SERIAL_CELLS // (length * len(Ys)))
    groups = [shifts[k : k + per_call] for k in range(0, len(shifts), per_call)]
    return np.asarray([min(best_over_shifts(Q, Ys, g)[0].min() for g in groups) for Q in queries])


def match_confidences(costs, *, features: str, notes: int, null=()) -> np.ndarray:
    """Confidence of matches of one query from their costs, the theme's note count and the query's null costs.

    Parameters
    ----------
    costs : array-like, shape (n_matches,)
        Match costs.
    features : str
        The feature kind searched (selects the model, :func:`load_models`).
    notes : int >= 1
        Notes in the theme, repeated pitch classes merged (:func:`theme_notes`).
    null : array-like, shape (n_null,)
        Costs of the null themes (:func:`null_costs`); empty: no null factor.

    Returns
    -------
    np.ndarray, shape (n_matches,)
        Probabilities in [0, 1].
    """
    models = load_models()
    if features not in models:
        raise ParameterError(f"features={features!r}: no confidence model (one of {', '.join(models)})")
    costs = np.asarray(costs, dtype=np.float64).reshape(-1)
    return models[features].probability(costs, notes) * (1.0 - null_chance(costs, null))


def null_chance(costs, null) -> np.ndarray:
    """Share of the null costs that reach each cost (within :data:`NULL_TOLERANCE`); 0 without a null."""
    costs = np.asarray(costs, dtype=np.float64).reshape(-1)
    null = np.asarray(null, dtype=np.float64).reshape(-1)
    if not len(null):
        return np.zeros(len(costs))
    return (null[None, :] <= costs[:, None] + NULL_TOLERANCE).mean(axis=1)


def search_confidences(collection, theme, matches: Sequence, *, features: str, tempo_bpm: float | None = None,
                       transpositions: Sequence[int] = range(12)) -> np.ndarray:  # fmt: skip
    """Confidence of each of a search's matches (best first): :func:`match_confidences` with the null of the best."""
    if not matches:
        return np.zeros(0)
    best = min(matches, key=lambda m: m.cost)
    null = null_costs(collection, theme, best, features=features, tempo_bpm=tempo_bpm, transpositions=transpositions)
    return match_confidences([m.cost for m in matches], features=features, notes=theme_notes(theme), null=null)
