"""Auto-tagging: tag probabilities of a recording, per patch over time, an embedding, and tags taught from examples.

:func:`analyse` (from :mod:`mirsearch.features.tag_features`) runs the packaged CNN: tag probabilities (K,) of
the vocabulary (:mod:`mirsearch.describe.tag_vocabulary`), probabilities per patch (3.2 s every 1.6 s) and a
128-d embedding per patch. This module adds the files (:func:`tag_file`), the tags a collection was taught and
the ranking of a collection's recordings by a tag (:func:`rank_by_tag`).

Taught tags (:class:`TaughtTag`) are prototypes in that embedding space (seed 004: prototypical networks): the
mean embedding of a few example recordings. A recording's probability for a taught tag is a logistic function of
its squared distance to the prototype, fitted so that the examples (each measured against the prototype of the
others) and the collection's other recordings (the background) are told apart with equal weight.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from mirsearch.errors import ParameterError
from mirsearch.features.tag_features import TagAnalysis, analyse, recording_embedding, split_stored

log = logging.getLogger(__name__)

__all__ = ["TagAnalysis", "TagResult", "TaughtTag", "analyse", "collection_tags", "load_taught", "recording_tags",
           "recording_embedding", "tag_file", "tag_scores", "teach", "teach_collection", "vocabulary"]  # fmt: skip


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


def _calibrate(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """Logistic regression of ``label ~ distance`` with equal weight for the two classes."""
    if len(neg) == 0:
        return -8.0, 8.0 * float(max(pos.max(), 0.1)) + 2.0
    from sklearn.linear_model import LogisticRegression

    d = np.concatenate([pos, neg])[:, None]
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    lr = LogisticRegression(class_weight="balanced", C=10.0).fit(d, y)
    slope = float(lr.coef_[0, 0])
    if slope >= 0:  # examples no closer than the background: nothing to learn
        slope = -1e-3
    return slope, float(lr.intercept_[0])


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


def tag_signal(y: np.ndarray, sr: int, *, path: str = "", over_time: bool = False, taught=None,
               model=None) -> TagResult:  # fmt: skip
    """Tags of a signal, with the taught tags of ``taught`` (name -> :class:`TaughtTag`) added."""
    a = analyse(y, sr, model=model)
    tags = dict(zip(a.names, a.tags.tolist(), strict=True))
    taught = taught or {}
    for name, t in taught.items():
        tags[name] = float(t.probability(a.embedding)[0])
    segments = None
    if over_time:
        segments = []
        for i, (s, e) in enumerate(a.times):
            seg = dict(zip(a.names, a.patch_probs[i].tolist(), strict=True))
            for name, t in taught.items():
                seg[name] = float(t.probability(recording_embedding(a.embeddings[i : i + 1]))[0])
            segments.append({"start": float(s), "end": float(e), "tags": seg})
        segments = tuple(segments)
    return TagResult(path, len(y) / sr, tags, segments)


def tag_file(path, *, over_time: bool = False, taught=None, model=None) -> TagResult:
    """Tags of an audio file (see :func:`tag_signal`)."""
    from mirsearch.audio import load_audio

    y, sr = load_audio(path, sr=_rate(model))
    return tag_signal(y, sr, path=str(path), over_time=over_time, taught=taught, model=model)


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


def load_taught(collection) -> dict[str, TaughtTag]:
    """The tags taught to a collection, by name."""
    data = collection.catalog.get_json(TAUGHT_KEY, {}) or {}
    return {name: TaughtTag.from_json(d) for name, d in data.items()}


def store_taught(collection, tag: TaughtTag) -> None:
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


def teach_collection(collection, name: str, examples, *, model=None) -> TaughtTag:
    """Teach ``name`` from example files; the background is the collection's recordings that are not examples."""
    from pathlib import Path

    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ParameterError(f"name={name!r} must be letters, digits, '-' or '_'")
    ct = collection_tags(collection, model=model)
    if name in ct.names:
        raise ParameterError(f"name={name!r} is a tag of the model already")
    ex = np.stack([file_embedding(p, model=model) for p in examples])
    resolved = {str(Path(p).resolve()) for p in examples}
    keep = [i for i, p in enumerate(ct.paths) if str(Path(p).resolve()) not in resolved]
    tag = teach(name, ex, ct.embeddings[keep], paths=[str(p) for p in examples])
    store_taught(collection, tag)
    return tag


def tag_scores(collection, tag: str, *, model=None) -> tuple[CollectionTags, np.ndarray]:
    """Every recording's probability of ``tag`` (a model tag or a taught one)."""
    ct = collection_tags(collection, model=model)
    if tag in ct.names:
        return ct, ct.probs[:, ct.names.index(tag)]
    taught = load_taught(collection)
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
    for name, t in load_taught(collection).items():
        tags[name] = float(t.probability(emb)[0])
    return tags
