"""Audio -> sheet music: the page and system of printed music a few seconds of audio correspond to.

The query's log mel spectrogram (``mirsearch.features.sheet_audio``) is cut into overlapping excerpts
(``sub_seconds`` long every ``hop_seconds``; the whole query is one more) and each is embedded by the
audio branch of the sheet model. Each excerpt looks up its ``k`` nearest sheet windows in the store's
HNSW index and gives every system among them its best cosine similarity; a system's score is the mean of
these votes over the excerpts (0 for an excerpt that did not reach it). The best systems are the matches;
their box is the detected system box in page pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirsearch.errors import ParameterError


@dataclass(frozen=True)
class SheetSearchOptions:
    """Excerpt length and hop (seconds), neighbours per excerpt and number of matches."""

    #: voting excerpts of the query: length and step (seconds)
    sub_seconds: float = 4.0
    hop_seconds: float = 1.0
    #: neighbours per excerpt; systems returned
    k: int = 200
    top: int = 10


@dataclass(frozen=True)
class SheetMatch:
    """A system of a page: ``box`` ``[x0, y0, x1, y1]`` in pixels of the page image (PDFs at 150 dpi)."""

    #: the page image or PDF and its item number in the sheet store
    recording: str
    recording_id: int
    #: page number (1-based) and system (0-based, top to bottom) on it
    page: int
    system: int
    box: tuple[int, int, int, int]
    #: mean best cosine similarity of the query's excerpts (0-1)
    score: float

    def to_dict(self) -> dict:
        return {"recording": self.recording, "recording_id": self.recording_id, "page": self.page,
                "system": self.system, "box": list(self.box), "score": round(self.score, 4)}  # fmt: skip


def query_excerpts(spec: np.ndarray, *, feature_rate: float, options: SheetSearchOptions) -> list[np.ndarray]:
    """The whole spectrogram and its sub-excerpts (``(n_bands, frames)`` each)."""
    if options.sub_seconds <= 0 or options.hop_seconds <= 0:
        raise ParameterError("sub_seconds and hop_seconds must be > 0")
    n = spec.shape[1]
    length = int(round(options.sub_seconds * feature_rate))
    hop = max(int(round(options.hop_seconds * feature_rate)), 1)
    parts = [spec]
    if n > length:
        parts.extend(spec[:, s : s + length] for s in range(0, n - length + 1, hop))
    return parts


def vote(sims: np.ndarray, labels: np.ndarray, windows: np.ndarray) -> dict[tuple[int, int, int], float]:
    """Mean over excerpts of each system's best similarity among the excerpt's neighbours.

    ``sims``, ``labels``: ``(n_excerpts, k)``; ``windows``: ``(n_windows, 4)`` item, page, system, x.
    """
    totals: dict[tuple[int, int, int], float] = {}
    for row_s, row_l in zip(sims, labels, strict=False):
        best: dict[tuple[int, int, int], float] = {}
        for s, lab in zip(row_s, row_l, strict=False):
            if lab < 0:
                continue
            key = (int(windows[lab, 0]), int(windows[lab, 1]), int(windows[lab, 2]))
            if s > best.get(key, -np.inf):
                best[key] = float(s)
        for key, s in best.items():
            totals[key] = totals.get(key, 0.0) + max(s, 0.0)
    return {key: v / max(len(sims), 1) for key, v in totals.items()}


def search_sheets(store, bundle, samples: np.ndarray, sr: int, options: SheetSearchOptions) -> list[SheetMatch]:
    """The best systems for an audio query (mono samples at ``sr`` = 22050 Hz) in a sheet store."""
    from mirsearch.features.sheet_audio import sheet_spectrogram

    if len(store.windows()) == 0:
        return []
    spec, rate = sheet_spectrogram(samples, sr=sr)
    parts = query_excerpts(spec, feature_rate=rate, options=options)
    A = np.concatenate([bundle.embed_audio(p[None]) for p in parts])
    _, labels = store.ann().search(A, k=options.k)
    vectors = store.ann().vectors
    sims = np.einsum("qkd,qd->qk", vectors[np.maximum(labels, 0)], A)
    scores = vote(sims, labels, store.windows())
    items = store.items()
    out = []
    for (item, page, system), score in sorted(scores.items(), key=lambda kv: -kv[1])[: options.top]:
        it = items[item]
        box = tuple(int(v) for v in it["pages"][page]["systems"][system])
        out.append(SheetMatch(it["path"], int(it["number"]), page + 1, system, box, float(score)))
    return out
