"""Audio -> sheet music: the page and system of printed music a few seconds of audio correspond to.

Two methods, one per reader of the sheet store (``mirsearch.index.sheets``):

**Notation** (the default, :func:`search_sheets_notation`): the store holds a pitch-class sample every half
staff space along every system, read optically (``mirsearch.features.notation``), full range and bass band.
The query's chroma and bass-band chroma (tuning estimated, log-compressed) at each of a few frame rates
is matched against all samples by subsequence DTW (steps (2, 1), (1, 2), (1, 1): half to twice the
query's frames per sample, so each rate covers a factor four of staff spaces per second); the systems of
one item follow each other without a break, so a query may cross a system break. Each rate's matching
function is made relative to its spread over the collection; a system's cost is the lowest relative cost
of a match whose middle lies in it, over all rates; the best systems' matches are then placed by the
sample their warping path aligns with the query's middle frame.

**Learned** (:func:`search_sheets`, the two-branch model of ``mirsearch.models.sheets``; kept for the
benchmark, not served): the query's log mel spectrogram (``mirsearch.features.sheet_audio``) is cut into
overlapping excerpts (``sub_seconds`` long every ``hop_seconds``; the whole query is one more) and each is
embedded by the audio branch of the sheet model. Each excerpt looks up its ``k`` nearest sheet windows in the store's
HNSW index and gives every system among them its best cosine similarity; a system's score is the mean of
these votes over the excerpts (0 for an excerpt that did not reach it). The best systems are the matches;
their box is the detected system box in page pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirsearch.errors import InputError, ParameterError


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
    #: notation search: minus the relative cost (mirsearch.search.sheets.system_costs; higher is better);
    #: learned search: mean best cosine similarity of the query's excerpts (0-1)
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


# -- the optical reading (mirsearch.features.notation): pitch classes read on the page against audio chroma --


@dataclass(frozen=True)
class NotationSearchOptions:
    """Audio chroma rates tried against the page's pitch-class samples, and number of matches.

    The subsequence DTW steps let one sheet sample take half to two audio frames, so each rate covers
    a factor four of "staff spaces per second"; against two samples per staff space (the notation reader's
    default) the default rates cover about 2 to 32.
    """

    rates: tuple[float, ...] = (8.0, 16.0, 32.0)
    #: logarithmic compression of the chroma band energies (``mirsearch.features.chroma.chroma``)
    gamma: float = 10.0
    top: int = 10


def query_chroma(samples: np.ndarray, sr: int, *, rates: tuple[float, ...], gamma: float = 0.0) -> list[np.ndarray]:
    """Chroma and bass-band chroma of the query at each of ``rates`` (Hz), ``(24, n_frames)`` each, as the
    notation reader's samples (:func:`mirsearch.features.notation.register_features`): rows 0-11 the chroma,
    rows 12-23 the chroma of the semitone bands weighed by :func:`~mirsearch.features.notation.bass_gain`
    (no register weighting), each frame of each half scaled to unit length, the bass half to
    :data:`~mirsearch.features.notation.BASS_WEIGHT`; band energies compressed with ``log(1 + gamma *
    energy)`` (0: none)."""
    from mirsearch.features import chroma as ch
    from mirsearch.features.notation import BASS_WEIGHT, bass_gain

    if not rates or min(rates) <= 0:
        raise ParameterError(f"rates={rates}: need at least one rate > 0")
    top = max(rates)
    P, frame_rate = ch.pitch_features(samples, sr=sr)
    gain = bass_gain(np.arange(ch.MIDI_MIN, ch.MIDI_MAX + 1)).astype(np.float32)[:, None]
    full = ch.chroma_from_pitch(P, frame_rate=frame_rate, feature_rate=top, gamma=gamma, normalize=False)
    bass = ch.chroma_from_pitch(P * gain, frame_rate=frame_rate, feature_rate=top, gamma=gamma,
                                register_centre=None, normalize=False)  # fmt: skip
    out = []
    for r in rates:
        half = [ch.normalize_frames(C if r == top else ch.resample_frames(C, frame_rate=top, feature_rate=r))
                for C in (full, bass)]  # fmt: skip
        out.append(np.concatenate([half[0], BASS_WEIGHT * half[1]]))
    return out


def system_costs(features: np.ndarray, where: np.ndarray, queries: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Best relative match cost of each system for the query chroma at every rate.

    The matching function of each rate is made relative to its own spread over the collection,
    ``(cost - median) / (median - 5th percentile)``, so that the rates compete fairly (a short, smooth query
    at a low rate has lower raw costs everywhere); chosen on verovio pages (docs/sheets.md).

    Parameters
    ----------
    features : np.ndarray, shape (n, d)
        Samples of every system (d = 24: :func:`query_chroma`), systems of one item after each other in reading
        order.
    where : np.ndarray, shape (n, 4)
        Item, page, system and page x of each sample.
    queries : list of np.ndarray, shape (d, n_frames)

    Returns
    -------
    keys : np.ndarray, shape (n_systems, 3), int64
        Item, page and system.
    cost : np.ndarray, shape (n_systems,)
        Lowest relative cost of a match whose middle lies in the system (-1: at the rate's 5th percentile;
        lower is better; ``inf`` where no match fits).
    """
    keys, cost, _, _ = _best_matches(features, where, queries)
    return keys, cost


def _best_matches(features, where, queries) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`system_costs`, and per system its best match ``(n_systems, 3)`` (query index, first and last
    sample; -1 where none) and the system of every sample ``(n,)``."""
    from mirsearch.matching.subsequence import subsequence_dtw_shifts

    keys, system_of = np.unique(where[:, :3].astype(np.int64), axis=0, return_inverse=True)
    system_of = system_of.ravel()
    cost = np.full(len(keys), np.inf)
    best = np.full((len(keys), 3), -1, np.int64)
    item = where[:, 0]
    starts = np.flatnonzero(np.r_[True, item[1:] != item[:-1]])
    for r, Q in enumerate(queries):
        if Q.shape[1] < 2:
            continue
        mf, start = subsequence_dtw_shifts(Q, features.T, shifts=[0], sequence_starts=starts)
        ends = np.flatnonzero(np.isfinite(mf[0]))
        if ends.size == 0:
            continue
        values = mf[0][ends]
        median, low = np.percentile(values, [50, 5])
        relative = (values - median) / max(median - low, 1e-6)
        first = start[0][ends]
        system = system_of[(first + ends) // 2]
        order = np.lexsort((relative, system))  # each system's best match of this rate first
        lead = order[np.r_[True, system[order][1:] != system[order][:-1]]]
        better = relative[lead] < cost[system[lead]]
        lead = lead[better]
        cost[system[lead]] = relative[lead]
        best[system[lead]] = np.column_stack([np.full(len(lead), r), first[lead], ends[lead]])
    return keys, cost, best, system_of


def middle_systems(features: np.ndarray, where: np.ndarray, queries: list[np.ndarray], *, top: int = 5):
    """:func:`system_costs` with the best ``top`` systems' matches moved to the system of the sample aligned
    with the query's middle frame (the warping path of the match), not the middle sample of the match.

    A match across a system break puts its middle sample where the sheet is denser, not where the music
    of the query's middle is; the path says where that is. A match moved to another system gives it its cost
    (if lower) and leaves its first system just behind it. Chosen on verovio pages (docs/sheets.md).
    """
    from mirsearch.matching.subsequence import subsequence_dtw

    keys, cost, best, system_of = _best_matches(features, where, queries)
    out = cost.copy()
    for k in np.argsort(cost, kind="stable")[:top]:
        r, a, e = (int(v) for v in best[k])
        if r < 0:
            continue
        Q = queries[r]
        path = subsequence_dtw(Q, features[a : e + 1].T, return_path=True).path
        gap = np.abs(path[:, 0] - Q.shape[1] // 2)
        moved = int(system_of[a + int(np.median(path[gap == gap.min(), 1]))])
        if moved != k:
            out[moved] = min(out[moved], cost[k])
            out[k] = cost[k] + 1e-3
    return keys, out


def search_sheets_notation(store, samples: np.ndarray, sr: int, options: NotationSearchOptions) -> list[SheetMatch]:
    """The best systems for an audio query (mono samples at ``sr``) in a sheet store read by the notation reader.

    A system's score is minus its relative cost (:func:`system_costs`): how far its best alignment lies below
    the query's typical cost over the collection, in units of the median minus the 5th percentile (1: at
    the 5th percentile; higher is better).
    """
    features, where = store.features(), store.windows()
    if len(features) == 0:
        return []
    queries = query_chroma(samples, sr, rates=options.rates, gamma=options.gamma)
    if features.shape[1] != queries[0].shape[0]:
        raise InputError(f"sheet store: {features.shape[1]}-d samples of an older reader; run mirsearch index again")
    keys, cost = middle_systems(features, where, queries, top=max(options.top, 5))
    order = [i for i in np.argsort(cost, kind="stable")[: options.top] if np.isfinite(cost[i])]
    items = store.items()
    out = []
    for i in order:
        item, page, system = (int(v) for v in keys[i])
        it = items[item]
        box = tuple(int(v) for v in it["pages"][page]["systems"][system])
        out.append(SheetMatch(it["path"], int(it["number"]), page + 1, system, box, float(-cost[i])))
    return out
