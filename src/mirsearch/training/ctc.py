r"""Connectionist Temporal Classification (CTC), written out in numpy for reading and testing.

Training uses :class:`torch.nn.CTCLoss` (see :mod:`mirsearch.training.losses`); this module spells out
what it computes, following Graves et al. (ICML 2006) and the CTC lecture notes (reference 000), and
the tests check that both agree.

Setting
-------
The network sees ``N`` frames and outputs, for every frame ``n``, a probability distribution
:math:`y_n(a)` over the alphabet :math:`\mathbb{A}' = \mathbb{A} \cup \{\varepsilon\}`: the 12 chroma
labels plus the blank symbol :math:`\varepsilon`. The training target is only a label sequence
:math:`Y = (l_1, \dots, l_L)` (the theme's pitch classes), not its position in time: a *weakly
aligned* pair.

Alignments
----------
An alignment is a sequence :math:`A \in (\mathbb{A}')^N`, one symbol per frame. The collapse map
:math:`\kappa` first merges runs of equal symbols and then deletes the blanks, e.g.
``G ε G ε G E♭ E♭ F ε F ε F D D D`` -> ``G G G E♭ F F F D``; blanks are needed to keep repeated
labels apart. The valid alignments are :math:`\mathbb{K}_{X,Y} = \{A : \kappa(A) = Y\}` and

.. math::

    P(Y \mid X) = \sum_{A \in \mathbb{K}_{X,Y}} \prod_{n=1}^{N} y_n(a_n),
    \qquad L(X, Y) = -\log P(Y \mid X).

Forward (alpha) recursion
-------------------------
Summing over all alignments directly is exponential; a dynamic programme over the *extended* label
sequence :math:`Y' = (\varepsilon, l_1, \varepsilon, l_2, \dots, \varepsilon, l_L, \varepsilon)` of length
:math:`S = 2L + 1` does it in :math:`O(NS)`. :math:`\alpha_n(s)` is the total probability of all
prefixes of valid alignments that have emitted frames ``1..n`` and end in position ``s`` of ``Y'``:

.. math::

    \alpha_1(1) = y_1(\varepsilon), \quad \alpha_1(2) = y_1(l_1), \quad \alpha_1(s) = 0 \text{ for } s > 2,

    \alpha_n(s) = y_n(Y'_s) \cdot
    \begin{cases}
      \alpha_{n-1}(s) + \alpha_{n-1}(s-1)
        & \text{if } Y'_s = \varepsilon \text{ or } Y'_s = Y'_{s-2}, \\
      \alpha_{n-1}(s) + \alpha_{n-1}(s-1) + \alpha_{n-1}(s-2) & \text{otherwise,}
    \end{cases}

i.e. from position ``s`` one may stay, advance by one, or skip the blank between two *different*
labels (skipping the blank between two equal labels would merge them). Valid alignments end in the
last label or the final blank: :math:`P(Y \mid X) = \alpha_N(S) + \alpha_N(S-1)`. Here everything runs in
the log domain (``log alpha``) so that long sequences do not underflow. If ``N`` is smaller than
``L`` plus the number of repeated neighbours, there is no valid alignment and the loss is infinite.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mirsearch.errors import ParameterError


def extend_labels(labels: Sequence[int], *, blank: int) -> np.ndarray:
    """Extended label sequence ``(blank, l1, blank, l2, ..., lL, blank)``, shape ``(2 L + 1,)``."""
    labels = np.asarray(labels, dtype=np.int64)
    ext = np.full(2 * len(labels) + 1, blank, dtype=np.int64)
    ext[1::2] = labels
    return ext


def collapse(alignment: Sequence[int], *, blank: int) -> list[int]:
    """The collapse map kappa: merge runs of equal symbols, then delete blanks."""
    out: list[int] = []
    prev = None
    for a in alignment:
        a = int(a)
        if a != prev and a != blank:
            out.append(a)
        prev = a
    return out


def ctc_log_alpha(log_probs: np.ndarray, labels: Sequence[int], *, blank: int) -> np.ndarray:
    """Forward variables ``log alpha`` of the CTC recursion.

    Parameters
    ----------
    log_probs : np.ndarray, shape (n_frames, n_classes)
        Per-frame log-probabilities (natural log) over the alphabet including the blank.
    labels : sequence of int, length L
        Target labels, none equal to ``blank``.
    blank : int
        Index of the blank symbol.

    Returns
    -------
    log_alpha : np.ndarray, shape (n_frames, 2 L + 1), float64
        ``log_alpha[n, s]`` is :math:`\\log \\alpha_{n+1}(s+1)` (0-based indices); ``-inf`` where no
        prefix of a valid alignment reaches that cell.
    """
    log_probs = np.asarray(log_probs, dtype=np.float64)
    if log_probs.ndim != 2:
        raise ParameterError(f"log_probs: expected shape (n_frames, n_classes), got {log_probs.shape}")
    labels = np.asarray(labels, dtype=np.int64)
    if np.any(labels == blank):
        raise ParameterError(f"labels must not contain the blank symbol {blank}")
    ext = extend_labels(labels, blank=blank)
    n_frames, n_ext = log_probs.shape[0], len(ext)
    log_alpha = np.full((n_frames, n_ext), -np.inf)
    if n_frames == 0:
        return log_alpha
    # initialisation: start with a blank or with the first label
    log_alpha[0, 0] = log_probs[0, blank]
    if n_ext > 1:
        log_alpha[0, 1] = log_probs[0, ext[1]]
    for n in range(1, n_frames):
        prev = log_alpha[n - 1]
        for s in range(n_ext):
            total = prev[s]  # stay
            if s >= 1:
                total = np.logaddexp(total, prev[s - 1])  # advance by one
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                total = np.logaddexp(total, prev[s - 2])  # skip the blank between different labels
            log_alpha[n, s] = total + log_probs[n, ext[s]]
    return log_alpha


def ctc_loss(log_probs: np.ndarray, labels: Sequence[int], *, blank: int) -> float:
    """CTC loss ``-log P(Y | X)`` for one sequence.

    Parameters
    ----------
    log_probs : np.ndarray, shape (n_frames, n_classes)
        Per-frame log-probabilities over the alphabet including the blank.
    labels : sequence of int
        Target label sequence (without blanks).
    blank : int
        Index of the blank symbol.

    Returns
    -------
    float
        The negative log-likelihood; ``inf`` if no alignment is possible.
    """
    log_alpha = ctc_log_alpha(log_probs, labels, blank=blank)
    if log_alpha.shape[0] == 0:
        return float("inf")
    last = log_alpha[-1]
    log_p = np.logaddexp(last[-1], last[-2]) if len(last) > 1 else last[-1]
    return float(-log_p)


def best_path(log_probs: np.ndarray, *, blank: int) -> list[int]:
    """Greedy (best path) decoding: the collapsed sequence of the per-frame argmax symbols.

    Parameters
    ----------
    log_probs : np.ndarray, shape (n_frames, n_classes)
    blank : int

    Returns
    -------
    list of int
    """
    return collapse(np.argmax(np.asarray(log_probs), axis=1), blank=blank)
