r"""Training losses for the chroma network, one per kind of supervision.

All take the network output ``log_probs`` of shape ``(batch, 13, n_frames)`` (log-probabilities over
12 chroma classes and the blank at :data:`~mirsearch.models.network.BLANK`), zero-padded in time, and
the valid length of every item in frames.

``ctc``
    Weakly aligned pairs: only the label sequence of the segment is known
    (:class:`torch.nn.CTCLoss`, see :mod:`mirsearch.training.ctc` for what it computes).
``linear``
    Linear scaling: the notes of the score, with their notated durations, are stretched linearly over
    the segment (equal durations if none are given), giving one chroma label per frame; frame-wise
    cross-entropy. The blank is never a target.
``strong``
    Strong alignment: each note lasts from its annotated audio onset to the next onset (the last one
    to the end of the segment); frames before the first onset are ignored; frame-wise cross-entropy.
``sdtw``
    Soft-DTW (weakly aligned): the cost of aligning output frame ``n`` with label ``m`` is that
    frame's cross-entropy for the label, :math:`C(n, m) = -\log p_n(\ell_m)`, so soft-DTW is a
    frame-wise cross-entropy under a soft (expected) alignment of the label sequence to the frames,
    i.e. the linear-scaling loss with the alignment learned instead of fixed. The value is divided by
    the number of frames. (A squared Euclidean cost between the output probabilities and one-hot
    labels, the other common choice, trained to a validation chroma accuracy of only 0.29 in two
    epochs: its gradient vanishes through the softmax once a frame is confidently wrong.)

``distill`` (:func:`distill_loss`, not in :data:`LOSSES`: it needs a teacher, not labels)
    Knowledge distillation from a teacher's chroma probabilities (e.g. the peer's real-data model on
    unlabelled real recordings): per frame KL(teacher || student) between the teacher's 12 pitch-class
    probabilities and the student's chroma distribution with the blank dropped (renormalised over the
    12 classes), weighted by the teacher's confidence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from mirsearch.errors import ParameterError
from mirsearch.models.network import BLANK
from mirsearch.training.softdtw import soft_dtw

#: loss names understood by :func:`compute_loss`
LOSSES = ("ctc", "linear", "strong", "sdtw")
#: target value of frames that do not count (``ignore_index`` of the frame-wise loss)
IGNORE = -100


def linear_frame_targets(
    labels: Sequence[int], n_frames: int, *, durations: Sequence[float] | None = None
) -> np.ndarray:
    """One label per frame by stretching the notes linearly over ``n_frames`` frames.

    Parameters
    ----------
    labels : sequence of int, length L
        Pitch classes of the notes.
    n_frames : int
        Frames in the segment.
    durations : sequence of float > 0, length L, optional
        Notated durations (any unit); equal durations if omitted.

    Returns
    -------
    np.ndarray, shape (n_frames,), int64
        Frame ``j`` gets the label of the note sounding at relative time ``(j + 0.5) / n_frames``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return np.full(n_frames, IGNORE, dtype=np.int64)
    d = np.ones(len(labels)) if durations is None else np.asarray(durations, dtype=np.float64)
    if d.shape != labels.shape or np.any(d <= 0):
        raise ParameterError("durations must be positive and as many as the labels")
    bounds = np.cumsum(d) / d.sum()
    t = (np.arange(n_frames) + 0.5) / n_frames
    idx = np.minimum(np.searchsorted(bounds, t, side="right"), len(labels) - 1)
    return labels[idx]


def strong_frame_targets(
    labels: Sequence[int], onsets: Sequence[float], n_frames: int, *, feature_rate: float
) -> np.ndarray:
    """One label per frame from annotated note onsets.

    Parameters
    ----------
    labels : sequence of int, length L
    onsets : sequence of float, length L
        Onset of each note in seconds relative to the start of the segment (non-decreasing).
    n_frames : int
    feature_rate : float
        Frame rate of the targets in Hz (frame ``j`` is at ``j / feature_rate`` seconds).

    Returns
    -------
    np.ndarray, shape (n_frames,), int64
        Label of the latest note whose onset is at or before the frame; :data:`IGNORE` before the first.
    """
    labels = np.asarray(labels, dtype=np.int64)
    onsets = np.asarray(onsets, dtype=np.float64)
    if onsets.shape != labels.shape:
        raise ParameterError("onsets must be as many as the labels")
    t = np.arange(n_frames) / feature_rate
    idx = np.searchsorted(onsets, t + 1e-9, side="right") - 1
    out = np.full(n_frames, IGNORE, dtype=np.int64)
    out[idx >= 0] = labels[idx[idx >= 0]]
    return out


def ctc_loss(
    log_probs: torch.Tensor, labels: Sequence[Sequence[int]], lengths: torch.Tensor, *, blank: int = BLANK
) -> torch.Tensor:
    """Mean CTC loss per label over the batch (``torch.nn.CTCLoss(reduction="mean")``); ``blank`` the index of the
    blank class (the chroma network's :data:`BLANK`, or the last class of its pitch view).

    Items with no valid alignment (too few frames) contribute zero (``zero_infinity=True``).
    """
    targets = torch.as_tensor(np.concatenate([np.asarray(lab, dtype=np.int64) for lab in labels]))
    target_lengths = torch.as_tensor([len(lab) for lab in labels], dtype=torch.long)
    lp = log_probs.permute(2, 0, 1)  # (T, B, C) as CTCLoss wants
    return F.ctc_loss(lp, targets, lengths.long(), target_lengths, blank=blank, reduction="mean", zero_infinity=True)


def framewise_loss(log_probs: torch.Tensor, frame_targets: torch.Tensor) -> torch.Tensor:
    """Frame-wise cross-entropy (NLL of ``log_probs``) over frames whose target is not :data:`IGNORE`."""
    return F.nll_loss(log_probs, frame_targets.long(), ignore_index=IGNORE)


def sdtw_loss(
    log_probs: torch.Tensor, labels: Sequence[Sequence[int]], lengths: torch.Tensor, *, gamma: float = 0.1
) -> torch.Tensor:
    r"""Mean over the batch of soft-DTW between the frames and the label sequence, per frame.

    The local cost is the cross-entropy :math:`C(n, m) = -\log p_n(\ell_m)`, shape ``(n_frames, L)``.
    """
    total = log_probs.new_zeros(())
    for i, lab in enumerate(labels):
        n = int(lengths[i])
        target = torch.as_tensor(np.asarray(lab, dtype=np.int64))
        C = -log_probs[i, target, :n].T  # (n, L)
        total = total + soft_dtw(C, gamma=gamma) / n
    return total / len(labels)


def compute_loss(
    kind: str,
    log_probs: torch.Tensor,
    *,
    labels: Sequence[Sequence[int]],
    lengths: torch.Tensor,
    frame_targets: torch.Tensor | None = None,
    gamma: float = 0.1,
) -> torch.Tensor:
    """Dispatch to the loss ``kind`` (one of :data:`LOSSES`).

    Parameters
    ----------
    kind : str
    log_probs : torch.Tensor, shape (batch, 13, n_frames)
    labels : list of label sequences (for ``ctc`` and ``sdtw``)
    lengths : torch.Tensor, shape (batch,)
        Valid frames of every item.
    frame_targets : torch.Tensor, shape (batch, n_frames), optional
        Per-frame labels with :data:`IGNORE` for padding (for ``linear`` and ``strong``).
    gamma : float
        Soft-DTW temperature.
    """
    if kind == "ctc":
        return ctc_loss(log_probs, labels, lengths)
    if kind == "sdtw":
        return sdtw_loss(log_probs, labels, lengths, gamma=gamma)
    if kind in ("linear", "strong"):
        if frame_targets is None:
            raise ParameterError(f"loss={kind!r} needs frame_targets")
        return framewise_loss(log_probs, frame_targets)
    raise ParameterError(f"loss={kind!r} must be one of {', '.join(LOSSES)}")


def distill_loss(log_probs: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    r"""Confidence-weighted KL(teacher || student) over the 12 pitch classes, blank dropped.

    Parameters
    ----------
    log_probs : torch.Tensor, shape (batch, 13, n_frames)
        The student's log-probabilities (12 chroma classes and the blank).
    targets : torch.Tensor, shape (batch, 12, n_frames)
        The teacher's pitch-class probabilities (each valid frame sums to 1; padding is ignored).
    lengths : torch.Tensor, shape (batch,)
        Valid frames of every item.

    Returns
    -------
    torch.Tensor, scalar
        :math:`\sum_n w_n \mathrm{KL}(t_n \| s_n) / \sum_n w_n` over the valid frames, with the
        student's chroma :math:`s_n = \mathrm{softmax}(\log p_n[0..11])` and the teacher's confidence
        :math:`w_n = (\max_k t_{n,k} - 1/12) / (11/12)` (0 for a flat teacher frame, 1 for a certain one).
    """
    if targets.shape[0] != log_probs.shape[0] or targets.shape[1] != BLANK or targets.shape[2] != log_probs.shape[2]:
        raise ParameterError(f"targets of shape {tuple(targets.shape)} do not fit log_probs {tuple(log_probs.shape)}")
    t = targets.clamp_min(0.0)
    t = t / t.sum(dim=1, keepdim=True).clamp_min(1e-8)
    student = torch.log_softmax(log_probs[:, :BLANK], dim=1)
    kl = (t * (torch.log(t.clamp_min(1e-8)) - student)).sum(dim=1)  # (batch, n_frames)
    valid = torch.arange(log_probs.shape[2])[None, :] < lengths[:, None]
    w = ((t.max(dim=1).values - 1.0 / BLANK) / (1.0 - 1.0 / BLANK)).clamp(0.0, 1.0) * valid
    return (w * kl).sum() / w.sum().clamp_min(1e-8)
