"""Confidence of a match: the probability that it is a true occurrence of the query.

**Theme matches.** Three pieces of evidence, none of which depends on what else a collection holds beyond the
query's own background:

- the match's *cost* (cosine subsequence DTW cost per path step) and the theme's *length in notes* (with
  repeated pitch classes merged, :func:`theme_notes`): a true occurrence costs little, and a long theme reaches
  a low cost by chance less easily than a short one;
- the match's *standout* over the query's background (:func:`theme_background`): the median best cost of the
  next :data:`BACKGROUND` recordings, i.e. what this theme costs by chance in this collection (used where it
  helps: plain chroma, whose costs of true and chance matches overlap more; the learned chroma's model ignores
  it, and its cascade's other candidates are the note index's nearest recordings, not a background).
  A logistic model of ``log(cost + eps)``, ``log(notes)`` and the standout per feature kind
  (:class:`ConfidenceModel`), fitted on the validation split with present and absent themes
  (``benchmarks/bench_confidence.py``), turns them into a probability;
- a per-query *null*: :data:`NULL_THEMES` versions of the theme with the same rhythm and its pitch classes
  randomly permuted (:func:`null_themes`) are matched, in every transposition, in the region of the best match
  (:func:`null_costs`). The share of them that reach a match's cost or lower is the chance that a melody of
  this rhythm and pitch-set size matches there as well; the probability is multiplied by one minus it. Real
  themes almost never tie with their nulls (validation: 1 % of the true matches), while a query with too little
  information does: a single note, whose nulls are the same note transposed, gets confidence 0.

**Audio-query matches** (:func:`audio_confidences`): a logistic model (:class:`AudioConfidenceModel`) of the
match's cost and its standout over the median of the query's matching curves over the whole collection
(:func:`audio_background`), fitted on excerpts of real recordings present in and absent from a collection
(``benchmarks/bench_audio_confidence.py``).

The models and their default thresholds are data (``mirsearch/models/bundles/confidence/models.json``), fitted and
written by ``bench_confidence.py fit --write-model`` and ``bench_audio_confidence.py fit --refit --write-model``.
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

#: extra recordings a search returns beyond those shown (their matches fill the ``rejected`` list); the best
#: costs of as many other recordings are the query's background (:func:`theme_background`)
BACKGROUND = 32
#: fewest other recordings a background is estimated from (fewer: the null themes' costs stand in)
MIN_BACKGROUND = 8
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
    """Logistic model ``sigmoid(bias + w_cost * log(cost + eps) + w_notes * log(clip(notes, *notes_range))
    + w_standout * (log(cost + eps) - log(background + eps)) + w_null * (log(cost + eps) - log(null_best + eps)))``,
    ``background`` from :func:`theme_background`, ``null_best`` the lowest cost of the query's null themes.

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
    w_standout : float
        Weight of the match's standout over the query's background (0: not used).
    w_null : float
        Weight of the match's standout over the best of its null themes (:func:`null_costs`; 0: not used).
    """

    bias: float
    w_cost: float
    w_notes: float
    eps: float
    notes_range: tuple[int, int]
    threshold: float
    w_standout: float = 0.0
    w_null: float = 0.0

    def __post_init__(self) -> None:
        if not self.eps > 0 or not 0 <= self.threshold <= 1 or not 1 <= self.notes_range[0] <= self.notes_range[1]:
            raise ParameterError(f"confidence model {self}: eps must be > 0, threshold in [0, 1], notes_range valid")

    def probability(self, cost, notes: int, background: float = np.nan, null_best: float = np.nan) -> np.ndarray:
        """Probability (before the null factor) that matches of cost ``cost`` of a ``notes``-note theme are true;
        ``background``: the query's chance cost (:func:`theme_background`), ``null_best``: the lowest null theme
        cost (each needed when its weight is not 0)."""
        n = float(np.clip(notes, *self.notes_range))
        c = np.log(np.asarray(cost, dtype=np.float64) + self.eps)
        x = self.bias + self.w_cost * c + self.w_notes * np.log(n)
        for weight, reference, name in ((self.w_standout, background, "background"), (self.w_null, null_best, "null")):
            if weight:
                if not np.isfinite(reference):
                    raise ParameterError(f"confidence: this model needs the query's {name} cost")
                x = x + weight * (c - np.log(reference + self.eps))
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
               transpositions: Sequence[int] = range(12), n: int = NULL_THEMES,
               query_tail: tuple[float, float] | None = None) -> np.ndarray:  # fmt: skip
    """Best cost of each null theme (:func:`null_themes`) in the region of ``match``, shape (n,).

    The null themes' queries are built as the search's (``query_tail``: its tail,
    :func:`mirsearch.search.theme.theme_query`).

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
                                 harmonic_decay=QUERY_HARMONIC_DECAY.get(features, 0.0), tail=query_tail))
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


def match_confidences(costs, *, features: str, notes: int, null=(), background: float = np.nan) -> np.ndarray:
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
    background : float
        The query's chance cost (:func:`theme_background`), for the models that use it.

    Returns
    -------
    np.ndarray, shape (n_matches,)
        Probabilities in [0, 1].
    """
    models = load_models()
    if features not in models:
        raise ParameterError(f"features={features!r}: no confidence model (one of {', '.join(models)})")
    costs = np.asarray(costs, dtype=np.float64).reshape(-1)
    null = np.asarray(null, dtype=np.float64).reshape(-1)
    null_best = float(null.min()) if null.size else np.nan
    return models[features].probability(costs, notes, background, null_best) * (1.0 - null_chance(costs, null))


def theme_background(recording_ids: Sequence[int], costs: Sequence[float], null=()) -> float:
    """The query's chance cost: the median best cost of the :data:`BACKGROUND` best recordings other than the
    best match's; with fewer than :data:`MIN_BACKGROUND` of them (a small collection), the median null cost.

    Parameters
    ----------
    recording_ids, costs : sequence, shape (n_matches,)
        The search's matches (any order), their recordings and costs.
    null : array-like, shape (n_null,)
        The null themes' costs (:func:`null_costs`).
    """
    costs = np.asarray(costs, dtype=np.float64).reshape(-1)
    best: dict[int, float] = {}
    for rid, c in zip(recording_ids, costs, strict=True):
        best[int(rid)] = min(best.get(int(rid), np.inf), float(c))
    others = np.sort(list(best.values()))[1 : 1 + BACKGROUND]
    if len(others) >= MIN_BACKGROUND:
        return float(np.median(others))
    null = np.asarray(null, dtype=np.float64).reshape(-1)
    return float(np.median(null)) if null.size else np.nan


def null_chance(costs, null) -> np.ndarray:
    """Share of the null costs that reach each cost (within :data:`NULL_TOLERANCE`); 0 without a null."""
    costs = np.asarray(costs, dtype=np.float64).reshape(-1)
    null = np.asarray(null, dtype=np.float64).reshape(-1)
    if not len(null):
        return np.zeros(len(costs))
    return (null[None, :] <= costs[:, None] + NULL_TOLERANCE).mean(axis=1)


def search_confidences(collection, theme, matches: Sequence, *, features: str, tempo_bpm: float | None = None,
                       transpositions: Sequence[int] = range(12),
                       query_tail: tuple[float, float] | None = None) -> np.ndarray:  # fmt: skip
    """Confidence of each of a search's matches (best first): :func:`match_confidences` with the null of the best
    and the query's background (:func:`theme_background`); ``query_tail``: the search's (:func:`null_costs`)."""
    if not matches:
        return np.zeros(0)
    best = min(matches, key=lambda m: m.cost)
    null = null_costs(collection, theme, best, features=features, tempo_bpm=tempo_bpm, transpositions=transpositions,
                      query_tail=query_tail)  # fmt: skip
    background = theme_background([m.recording_id for m in matches], [m.cost for m in matches], null)
    return match_confidences([m.cost for m in matches], features=features, notes=theme_notes(theme), null=null,
                             background=background)  # fmt: skip


# -- audio-query matches --------------------------------------------------------------------------------------
#: fewest matching-curve frames a background is estimated from (fewer: the model's fitted background is used)
MIN_BACKGROUND_FRAMES = 200


@dataclass(frozen=True)
class AudioBackground:
    """What an audio query's chance matches cost over the collection: statistics of its matching curves.

    The best match's own neighbourhood (its span and as long again before it) is left out, so that in a small
    collection the true match does not make its own background.

    Attributes
    ----------
    median : float
        Median cost over every start frame of every recording (finite values).
    q01 : float
        Its 1 % quantile: what the best chance matches of this query cost (the model's reference).
    recordings_median : float
        Median of the other recordings' best costs (``nan`` when the collection has no other recording).
    frames : int
        Finite curve frames the statistics come from.
    """

    median: float
    q01: float
    recordings_median: float
    frames: int

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in asdict(self).items()}


def audio_background(curves: Sequence, best) -> AudioBackground:
    """The background (:class:`AudioBackground`) of an audio search from its matching curves.

    Parameters
    ----------
    curves : sequence of MatchingCurve
        One per searched recording (``PassageOptions(curves=True)``), costs indexed by start frame.
    best : Match
        The search's best match (its neighbourhood is left out; its recording is left out of
        ``recordings_median``).
    """
    finite, others = [], []
    for c in curves:
        cost = np.asarray(c.cost, dtype=np.float64)
        if c.recording_id == best.recording_id:
            t = np.arange(cost.size) / c.feature_rate
            cost = cost[(t < 2 * best.start - best.end) | (t > best.end)]
        f = cost[np.isfinite(cost)]
        finite.append(f)
        if f.size and c.recording_id != best.recording_id:
            others.append(float(f.min()))
    frames = np.concatenate(finite) if finite else np.zeros(0)
    if not frames.size:
        return AudioBackground(np.nan, np.nan, np.nan, 0)
    return AudioBackground(
        median=float(np.median(frames)),
        q01=float(np.quantile(frames, 0.01)),
        recordings_median=float(np.median(others)) if others else np.nan,
        frames=int(frames.size),
    )


@dataclass(frozen=True)
class AudioConfidenceModel:
    """Logistic model ``sigmoid(bias + w_cost * log(cost + eps) + w_standout * (log(cost + eps) - log(q01 + eps)))``
    of an audio match, ``q01`` the query's background (:attr:`AudioBackground.q01`: what its best chance matches
    cost).

    Attributes
    ----------
    bias, w_cost, w_standout, eps, threshold
        As in :class:`ConfidenceModel` (the threshold chosen on the fit tracks of the audio benchmark).
    background : float > 0
        Used when a search has too few curve frames (:data:`MIN_BACKGROUND_FRAMES`) or none: the median
        background of the fit excerpts.
    """

    bias: float
    w_cost: float
    w_standout: float
    eps: float
    threshold: float
    background: float = 0.2

    def __post_init__(self) -> None:
        if not self.eps > 0 or not 0 <= self.threshold <= 1 or not self.background > 0:
            raise ParameterError(f"audio confidence model {self}: eps and background must be > 0, threshold in [0, 1]")

    def design(self, cost, background) -> np.ndarray:
        """Model inputs, shape (n, 2): ``log(cost + eps)`` and the standout ``log(cost + eps) - log(background +
        eps)`` (a background that is not finite: :attr:`background`)."""
        c = np.log(np.asarray(cost, dtype=np.float64).reshape(-1) + self.eps)
        b = np.asarray(background, dtype=np.float64).reshape(-1)
        b = np.where(np.isfinite(b), b, self.background)
        return np.c_[c, c - np.log(b + self.eps)]

    def probability(self, cost, background) -> np.ndarray:
        """Probability, shape (n,), that matches of cost ``cost`` with the query's background ``background``
        (:attr:`AudioBackground.q01`) are true."""
        x = self.bias + self.design(cost, background) @ np.asarray([self.w_cost, self.w_standout])
        return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))

    def to_dict(self) -> dict:
        return asdict(self)


@cache
def load_audio_model() -> AudioConfidenceModel:
    """The fitted model of audio-query matches (``models.json``, key ``audio``)."""
    text = (resources.files("mirsearch.models") / "bundles" / "confidence" / "models.json").read_text()
    return AudioConfidenceModel(**json.loads(text)["audio"])


def audio_confidences(matches: Sequence, curves: Sequence) -> np.ndarray:
    """Confidence of each match of an audio search, shape (n_matches,), from the matching curves' background.

    ``matches`` come from the exhaustive CENS search (:func:`mirsearch.search.audio.search_audio`: the model is
    fitted on its costs). Without curves or with fewer than :data:`MIN_BACKGROUND_FRAMES` finite frames, the
    model's fitted background stands in.
    """
    if not matches:
        return np.zeros(0)
    model = load_audio_model()
    background = audio_background(curves, min(matches, key=lambda m: m.cost)) if curves else None
    q01 = background.q01 if background and background.frames >= MIN_BACKGROUND_FRAMES else np.nan
    return model.probability([m.cost for m in matches], q01)


def split_by_confidence(matches: list, confidence, *, threshold: float, show_all: bool, top: int):
    """``(shown, rejected)``: each at most ``top`` matches, best first, with ``extra["confidence"]`` set on every
    match; ``shown`` holds those at or above ``threshold`` (all of them with ``show_all``)."""
    for m, c in zip(matches, confidence, strict=True):
        m.extra["confidence"] = round(float(c), 4)
    keep = [show_all or c >= threshold for c in confidence]
    shown = [m for m, k in zip(matches, keep, strict=True) if k][:top]
    rejected = [m for m, k in zip(matches, keep, strict=True) if not k][:top]
    return shown, rejected
