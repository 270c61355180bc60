"""Instrument families from musicnn's MagnaTagATune tagger: two more terms of the tagger's family fusion.

musicnn (the ``MTT_musicnn`` checkpoint, :mod:`mirsearch.features.musicnn`, trained on real recordings) runs on
3-s patches of the levelled signal, one per :data:`EVERY_SECONDS` evenly spread over its non-overlapping 3-s grid
(a shorter signal gives one zero-padded patch; :func:`grid_patches`, :func:`musicnn_rows`). Each patch gives a row
of 1,756 values: the 50 MTT tag logits, the 200-d penultimate embedding and the 753-d mean and max pools of the
front and mid end. A tagger patch (3.2 s every 1.6 s) takes the mean of the rows of the musicnn patches whose centre
lies in it (none: the nearest; :func:`window_rows`). Two terms per family (:class:`MusicnnHead`, stored in the tagger
bundle as :data:`MUSICNN_HEAD_FILE`):

- a head: standardisation and one logistic regression per family on the rows (trained on the train clips of the
  tags data, labels of the clip; :func:`mirsearch.training.tag_head.fit_musicnn_head`), logit ``z``;
- a zero-shot score: per family the largest sigmoid of its MTT tags (:data:`MTT_FAMILY_TAGS`; organ, bass and brass
  have none and get no term), ``q``.

:func:`mirsearch.features.tag_features.fuse_families` adds ``u * z + v * logit(q)`` to the fused logit of the CNN
and the YAMNet head (``u``, ``v``: the head's ``head_weight`` and ``zero_shot_weight``). Without the ``musicnn``
wheel (``pip install --no-deps musicnn==0.1.0``) the terms are left out and a warning is logged once.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np

from mirsearch.errors import ParameterError

log = logging.getLogger(__name__)

#: file of the musicnn family head inside a tagger bundle
MUSICNN_HEAD_FILE = "musicnn_head.npz"
#: the checkpoint read (:data:`mirsearch.features.musicnn.CHECKPOINTS`)
CHECKPOINT = "MTT_musicnn"
#: values per musicnn row: 50 logits, 200 penultimate, 753 mean pool, 753 max pool
ROW_DIM = 1756
#: one analysed 3-s patch per this many seconds of the signal (:func:`grid_patches`). musicnn costs about 0.06 s of
#: CPU a patch (one or two at a time: larger batches cost twice as much a patch here): every patch of the signal made
#: the tagger 41x realtime on one core, one per 10 s keeps it at about 100x (the issue's floor) and keeps most of the
#: gain (session 20, validation, ten-family ROC-AUC over the fusion without musicnn, 10-s and 5-s clips: one patch
#: each; tags clips +0.012 against +0.016 with every patch, real-sample stem mixtures +0.009 / +0.009, MuseScore stems
#: +0.004 / +0.010; docs/benchmarks.md, auto-tagging, "Session 20")
EVERY_SECONDS = 10.0
#: patches run through the network at a time
BATCH = 2
_VOICE = ("vocal", "vocals", "singing", "voice", "female", "male", "woman", "man", "opera", "choir", "choral",
          "male vocal", "female vocal", "male voice", "female voice")  # fmt: skip
#: MTT tags per family (organ, bass and brass have none), fixed before any figure was seen (session 20)
MTT_FAMILY_TAGS = {
    "piano": ("piano", "harpsichord"),
    "guitar": ("guitar", "sitar"),
    "strings": ("strings", "violin", "cello", "harp"),
    "woodwinds": ("flute",),
    "voice": _VOICE,
    "drums": ("drums", "beat", "beats"),
    "synth": ("synth", "electronic", "techno"),
}


@dataclass(frozen=True)
class MusicnnHead:
    """A linear head on musicnn rows and the weights of the two musicnn terms of the family fusion.

    Attributes
    ----------
    tags : tuple of str
        The F families it scores.
    mean, scale : np.ndarray, shape (1756,)
        Standardisation of the rows.
    weight : np.ndarray, shape (1756, F)
    bias : np.ndarray, shape (F,)
    head_weight : float
        ``u``: weight of the head's logit in the fused logit.
    zero_shot_weight : float
        ``v``: weight of the logit of the MTT zero-shot score.
    head_id : str
        Identifies the head (named in the stored "tags" kind's configuration).
    """

    tags: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    head_weight: float
    zero_shot_weight: float
    head_id: str

    def logits(self, M: np.ndarray) -> np.ndarray:
        """Head logits ``(n, F)`` of rows ``M (n, 1756)``, float64."""
        return ((np.asarray(M, np.float64) - self.mean) / self.scale) @ self.weight + self.bias

    def terms(self, M: np.ndarray) -> np.ndarray:
        """``u * z + v * logit(q)`` ``(n, F)`` of rows ``(n, 1756)`` (families without MTT tags: ``u * z``)."""
        q = zero_shot(M, self.tags)
        zs = np.where(np.isnan(q), 0.0, _logit(np.nan_to_num(q, nan=0.5)))
        return self.head_weight * self.logits(M) + self.zero_shot_weight * zs

    def save(self, path) -> None:
        from mirsearch.features.tag_features import _save_head

        _save_head(path, self)

    @classmethod
    def load(cls, path) -> MusicnnHead:
        with np.load(path) as z:
            return cls(tuple(str(t) for t in z["tags"]), z["mean"], z["scale"], z["weight"], z["bias"],
                       float(z["head_weight"]), float(z["zero_shot_weight"]), str(z["head_id"]))  # fmt: skip


def _logit(p) -> np.ndarray:
    q = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def zero_shot(M: np.ndarray, tags) -> np.ndarray:
    """Per row the largest sigmoid of each family's MTT tags (:data:`MTT_FAMILY_TAGS`) ``(n, F)``; NaN for a family
    without MTT tags."""
    from mirsearch.features.musicnn import MTT_LABELS

    s = 1.0 / (1.0 + np.exp(-np.asarray(M, np.float64)[:, : len(MTT_LABELS)]))
    out = np.full((len(s), len(tags)), np.nan)
    for k, f in enumerate(tags):
        cols = [MTT_LABELS.index(t) for t in MTT_FAMILY_TAGS.get(f, ())]
        if cols:
            out[:, k] = s[:, cols].max(axis=1)
    return out


def grid_patches(n_frames: int, *, every: float = EVERY_SECONDS) -> np.ndarray:
    """First frames of the analysed patches of a log-mel of ``n_frames`` frames: of its non-overlapping 3-s patches
    (``K = n_frames // PATCH_FRAMES``, at least one) ``m = min(K, max(1, floor(seconds / every)))``, the middle one
    of each of ``m`` equal runs (``floor((j + 0.5) K / m)``), so one patch per ``every`` seconds, spread evenly."""
    from mirsearch.features.musicnn import MUSICNN, PATCH_FRAMES

    if not every > 0:
        raise ParameterError(f"every={every} must be > 0 s")
    k = max(1, n_frames // PATCH_FRAMES)
    m = min(k, max(1, int(n_frames * MUSICNN.hop_length / MUSICNN.sr // every)))
    return np.floor((np.arange(m) + 0.5) * k / m).astype(int) * PATCH_FRAMES


def musicnn_rows(y: np.ndarray, sr: int, *, net=None, every: float = EVERY_SECONDS) -> tuple[np.ndarray, np.ndarray]:
    """musicnn rows ``(n, 1756)`` float32 of the analysed 3-s patches of a mono signal (:func:`grid_patches`) and
    their centres ``(n,)`` (s) (see the module docstring; ``net``: default the shared ``MTT_musicnn`` network)."""
    from mirsearch.features.musicnn import PATCH_FRAMES, log_mel

    net = net or _musicnn()
    L = log_mel(np.asarray(y, np.float32), sr=int(sr))
    n = len(L)
    starts = grid_patches(n, every=every)
    if n < PATCH_FRAMES:  # shorter than a patch: one, zero-padded
        L = np.concatenate([L, np.zeros((PATCH_FRAMES - n, L.shape[1]), np.float32)])
    X = np.stack([L[s : s + PATCH_FRAMES] for s in starts])
    outs = [net(X[a : a + BATCH]) for a in range(0, len(X), BATCH)]
    logits, pen, mean, mx = (np.concatenate([o[k] for o in outs]) for k in range(4))
    centres = (np.asarray(starts) + PATCH_FRAMES / 2) / (16000 / 256)
    return np.concatenate([logits, pen, mean, mx], axis=1).astype(np.float32), centres


def window_rows(M: np.ndarray, centres: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Per span ``(T, 2)`` (s) the mean of the rows ``M (n, 1756)`` whose centre lies in it (none: the nearest)
    -> ``(T, 1756)`` float32."""
    from mirsearch.features.tag_features import span_members

    M = np.asarray(M, np.float32)
    return np.stack([M[m].mean(axis=0) for m in span_members(centres, spans)]).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _musicnn():
    """The ``MTT_musicnn`` network, or None with a warning (once) where the wheel is missing or does not load."""
    try:
        from mirsearch.features.musicnn import musicnn_model

        net = musicnn_model(CHECKPOINT)
    except Exception as exc:  # noqa: BLE001 - any failure to load falls back to the families without musicnn
        net, why = None, str(exc)
    else:
        why = "the musicnn wheel is not installed"
    if net is None:
        log.warning("musicnn unavailable (%s): instrument families without its terms "
                    "(install it with: pip install --no-deps musicnn==0.1.0)", why)  # fmt: skip
    return net


def musicnn_available() -> bool:
    """Whether the ``MTT_musicnn`` network loads here."""
    return _musicnn() is not None


@functools.lru_cache(maxsize=4)
def _head_of(path: str) -> MusicnnHead | None:
    from pathlib import Path

    f = Path(path) / MUSICNN_HEAD_FILE
    return MusicnnHead.load(f) if f.is_file() else None


def musicnn_head(model) -> MusicnnHead | None:
    """The musicnn family head of a tagger bundle (a :class:`mirsearch.models.tagger.TaggerModel`), or None."""
    return _head_of(str(model.path))


def family_terms(y: np.ndarray, sr: int, spans: np.ndarray, tags, *, model) -> np.ndarray | None:
    """The musicnn terms ``(T, F)`` of a (levelled) signal per tagger patch ``spans (T, 2)`` (s) for the families
    ``tags`` (in that order), or None when the bundle has no musicnn head or musicnn does not load."""
    head = musicnn_head(model)
    if head is None or _musicnn() is None:
        return None
    M, centres = musicnn_rows(y, sr)
    T = head.terms(window_rows(M, centres, spans))
    return T[:, [head.tags.index(t) for t in tags]]


__all__ = ["CHECKPOINT", "EVERY_SECONDS", "MTT_FAMILY_TAGS", "MUSICNN_HEAD_FILE", "MusicnnHead", "family_terms",
           "grid_patches", "musicnn_available", "musicnn_head", "musicnn_rows", "window_rows", "zero_shot"]  # fmt: skip
