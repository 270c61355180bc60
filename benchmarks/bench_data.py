"""Pairs, queries and ground truth from the benchmark dataset (``mirsearch dataset build``, ``data/bench``).

A version of the dataset carries its tempo map (score quarter notes -> audio seconds) and key change;
the work's score is the parse the builder cached (``ScoreData``), so score positions agree with the
tempo maps. Truth at a score position ``q`` in a version is ``version.score_to_audio(q)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class SyncPair:
    """Two recordings of one work and the true times of the work's distinct onsets in both."""

    name: str
    a: str
    b: str
    ta: np.ndarray
    tb: np.ndarray
    transposition: int  # semitones b is above a
    duration: float


@dataclass
class ScorePair:
    """A score (notes in quarter notes) and a recording of it, with the true time of each onset."""

    name: str
    pitch: np.ndarray
    onset_q: np.ndarray
    duration_q: np.ndarray
    part: np.ndarray
    bpm: float
    audio: str
    q: np.ndarray  # distinct onset positions
    truth: np.ndarray  # their audio times
    transposition: int


def load(root: str | Path, split: str = "test"):
    from mirsearch.datasets.manifest import Dataset

    return Dataset.load(root).split(split)


def score_data(ds, work):
    """The cached parse of a work (truncated like the build did)."""
    from mirsearch.datasets.corpus import load_cached, parse_source

    sd = load_cached(ds.root / "cache", work.source)
    if sd is None or not hasattr(sd, "parts"):
        sd = parse_source(work.source, work_id=work.work_id, time_limit=60.0)
    if not hasattr(sd, "parts"):
        raise RuntimeError(f"{work.source}: {sd.reason}")
    measures = ds.generation.get("measures")
    return sd.truncated(int(measures)) if measures else sd


def notes_of(sd) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rows = [(p, o, d, i) for i, part in enumerate(sd.parts) for (p, o, d, _f) in part.notes if d > 0]
    a = np.array(rows, dtype=np.float64)
    a = a[np.lexsort((a[:, 0], a[:, 1]))]
    return a[:, 0].astype(int), a[:, 1], a[:, 2], a[:, 3].astype(int)


def sync_pairs(ds, *, max_pairs: int, seed: int = 0) -> list[SyncPair]:
    """First two versions of each work (works in a seeded random order), at most ``max_pairs``."""
    rng = np.random.default_rng(seed)
    works = sorted(ds.works)
    rng.shuffle(works)
    pairs = []
    for wid in works:
        vs = sorted(ds.versions_of(wid), key=lambda v: v.version_id)
        if len(vs) < 2:
            continue
        try:
            sd = score_data(ds, ds.works[wid])
        except RuntimeError:
            continue
        q = np.unique(notes_of(sd)[1])
        a, b = vs[0], vs[1]
        pairs.append(
            SyncPair(
                name=f"{wid} {a.ensemble}->{b.ensemble}",
                a=str(a.path),
                b=str(b.path),
                ta=np.asarray(a.score_to_audio(q)),
                tb=np.asarray(b.score_to_audio(q)),
                transposition=(b.transposition - a.transposition) % 12,
                duration=max(a.duration, b.duration),
            )
        )
        if len(pairs) >= max_pairs:
            break
    return pairs


def score_pairs(ds, *, max_pairs: int, seed: int = 0) -> list[ScorePair]:
    """The score of each work against its second version (same works as :func:`sync_pairs`)."""
    rng = np.random.default_rng(seed)
    works = sorted(ds.works)
    rng.shuffle(works)
    out = []
    for wid in works:
        vs = sorted(ds.versions_of(wid), key=lambda v: v.version_id)
        if len(vs) < 2:
            continue
        try:
            sd = score_data(ds, ds.works[wid])
        except RuntimeError:
            continue
        pitch, onset, dur, part = notes_of(sd)
        q = np.unique(onset)
        v = vs[1]
        out.append(
            ScorePair(
                name=f"{wid} score->{v.ensemble}",
                pitch=pitch,
                onset_q=onset,
                duration_q=dur,
                part=part,
                bpm=float(sd.tempo_bpm),
                audio=str(v.path),
                q=q,
                truth=np.asarray(v.score_to_audio(q)),
                transposition=int(v.transposition) % 12,
            )
        )
        if len(out) >= max_pairs:
            break
    return out


def score_notes(sp: ScorePair):
    """The pair's notes as :class:`mirsearch.scores.ScoreNotes` at the score's nominal tempo."""
    from mirsearch.scores import ScoreNotes

    spq = 60.0 / sp.bpm
    return ScoreNotes(
        pitch=sp.pitch,
        onset=sp.onset_q * spq,
        offset=(sp.onset_q + sp.duration_q) * spq,
        onset_quarter=sp.onset_q,
        duration_quarter=sp.duration_q,
        part=sp.part,
        velocity=np.full(sp.pitch.size, 80),
        seconds_per_quarter=spq,
    )


def match_queries(
    ds, *, per_version: int, seconds: float, seed: int = 0, max_versions: int | None = None
) -> list[dict]:
    """Audio-matching queries cut from dataset versions, with their relevant spans in the other versions.

    Returns dicts: ``path`` (source audio), ``start`` (s), ``version`` (id), ``relevant`` ({audio path:
    (start, end)} in every other version of the work, through the tempo maps) and ``ignore`` (audio paths
    of versions of other works of the same family, e.g. another harmonisation of the same tune: matches
    there are neither right nor wrong and are dropped from the ranking).
    """
    rng = np.random.default_rng(seed)
    versions = sorted(ds.versions.values(), key=lambda v: v.version_id)
    if max_versions is not None and len(versions) > max_versions:
        keep = rng.choice(len(versions), size=max_versions, replace=False)
        versions = [versions[i] for i in sorted(keep)]
    family_of = {wid: w.family for wid, w in ds.works.items()}
    out = []
    for v in versions:
        t0, t1 = float(v.tempo_audio[0]), float(min(v.tempo_audio[-1], v.duration))
        if t1 - t0 < seconds + 1.0:
            continue
        others = [w for w in ds.versions_of(v.work_id) if w.version_id != v.version_id]
        same_family = [
            str(w.path)
            for w in ds.versions.values()
            if w.work_id != v.work_id and family_of.get(w.work_id) == family_of.get(v.work_id)
        ]
        for _ in range(per_version):
            s = float(rng.uniform(t0, t1 - seconds))
            q0, q1 = v.audio_to_score(np.array([s, s + seconds]))
            relevant = {str(w.path): tuple(float(x) for x in w.score_to_audio(np.array([q0, q1]))) for w in others}
            out.append(
                {"path": str(v.path), "start": s, "version": v.version_id, "relevant": relevant, "ignore": same_family}
            )
    return out
