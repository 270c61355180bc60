"""Monophonic themes of works, notated in C major / A minor, and every place where they occur.

Like the themes of Barlow and Morgenstern's dictionary, a theme is a short melody of the top voice: the
opening phrase, and prominent phrases from inside the piece (6 to 25 notes). Phrases are found by
segmenting the top voice at fermatas, rests and long notes; a phrase is *prominent* when it recurs in the
piece, spans a reasonable range and is singable (not a fast run). Each theme is transposed to C major or
A minor using the key estimated around it (Krumhansl-Schmuckler), and then searched in the top voice of
every work: an occurrence is an exact match of the interval sequence and the inter-onset intervals, at
any pitch level (repeats, recapitulations, sequences, the same chorale tune in another harmonisation).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mirsearch.datasets.corpus import ScoreData
from mirsearch.errors import ParameterError

logger = logging.getLogger(__name__)

#: part names that mark the melody part, matched case-insensitively at the start of the name
MELODY_PART_NAMES = (
    "soprano",
    "sopran",
    "canto",
    "cantus",
    "superius",
    "discantus",
    "violin 1",
    "violin i",
    "violino i",
    "violino 1",
    "vl. 1",
    "vln. 1",
    "melody",
    "voice",
)

# Krumhansl-Kessler key profiles (C major / C minor)
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_PC_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

#: rounding (quarter notes) used when comparing onsets of two note sequences
_Q = 1e-3


@dataclass(frozen=True)
class MelodyNote:
    """A note of the top voice: ``pitch`` (MIDI), ``onset``/``duration`` (quarter notes), ``fermata``."""

    pitch: int
    onset: float
    duration: float
    fermata: bool = False


@dataclass(frozen=True)
class Key:
    """An estimated key: ``tonic`` pitch class (0 = C), ``mode`` ``"major"``/``"minor"``, correlation."""

    tonic: int
    mode: str
    strength: float

    @property
    def name(self) -> str:
        return f"{_PC_NAMES[self.tonic]} {self.mode}"

    @property
    def shift_to_c(self) -> int:
        """Semitones (in [-6, 5]) that move this key to C major or A minor."""
        target = 0 if self.mode == "major" else 9
        return (target - self.tonic + 6) % 12 - 6


@dataclass(frozen=True)
class ScoreOccurrence:
    """Where a theme occurs in the top voice of a work (score time).

    Attributes
    ----------
    work_id : str
        Work that contains the occurrence.
    onsets : tuple of float
        Onset of every theme note in quarter notes (score time of that work).
    end : float
        End of the last note in quarter notes.
    shift : int
        Semitones from the theme's C notation to the notated pitch of this occurrence.
    """

    work_id: str
    onsets: tuple[float, ...]
    end: float
    shift: int

    @property
    def start(self) -> float:
        return self.onsets[0]


@dataclass(frozen=True)
class ExtractedTheme:
    """A theme of a work, notated in C major / A minor, with its occurrences.

    Attributes
    ----------
    theme_id : str
        ``"<work_id>:t<k>"``.
    work_id : str
        Work the theme was taken from.
    kind : str
        ``"opening"`` or ``"phrase"``.
    notes : tuple of (int, float, float)
        ``(pitch, onset, duration)`` in C, onsets relative to the first note, in quarter notes.
    key : str
        Estimated key at the source position (``"G major"``).
    shift_to_c : int
        Semitones added to the source pitches to notate the theme in C.
    measure : int
        1-based measure number of the first note at the source position.
    tempo_bpm : float
        Nominal tempo of the work (quarter notes per minute).
    occurrences : tuple of ScoreOccurrence
        All occurrences, in any work, sorted by work and onset; includes the source position.
    """

    theme_id: str
    work_id: str
    kind: str
    notes: tuple[tuple[int, float, float], ...]
    key: str
    shift_to_c: int
    measure: int
    tempo_bpm: float
    occurrences: tuple[ScoreOccurrence, ...]

    @property
    def n_notes(self) -> int:
        return len(self.notes)


# --------------------------------------------------------------------------------------------------
# top voice and key


def top_part(score: ScoreData) -> int:
    """Index of the melody part: a part named like a melody part, else the highest one.

    Parts with fewer than 30 % of the notes of the busiest part are not considered for the highest one.
    """
    for i, part in enumerate(score.parts):
        name = part.name.strip().lower()
        if name.startswith(MELODY_PART_NAMES) and not name.startswith(("soprano 2", "soprano ii")):
            return i
    most = max(len(p.notes) for p in score.parts)
    candidates = [i for i, p in enumerate(score.parts) if len(p.notes) >= 0.3 * most]
    return max(candidates, key=lambda i: (score.parts[i].mean_pitch, -i))


def melody(score: ScoreData, *, part: int | None = None) -> list[MelodyNote]:
    """Top voice of one part as a monophonic note list (highest note per onset).

    Parameters
    ----------
    score : ScoreData
    part : int, optional
        Part index; default :func:`top_part`.

    Returns
    -------
    list of MelodyNote
        Sorted by onset; a note is cut where the next one starts.
    """
    index = top_part(score) if part is None else part
    by_onset: dict[float, tuple[int, float, float, bool]] = {}
    for note in score.parts[index].notes:
        cur = by_onset.get(note[1])
        if cur is None or note[0] > cur[0]:
            by_onset[note[1]] = note
    onsets = sorted(by_onset)
    out = []
    for k, onset in enumerate(onsets):
        pitch, _, dur, ferm = by_onset[onset]
        if k + 1 < len(onsets):
            dur = min(dur, onsets[k + 1] - onset)
        if dur > 0:
            out.append(MelodyNote(int(pitch), float(onset), float(dur), bool(ferm)))
    return out


def estimate_key(notes: Sequence[tuple[int, float, float]]) -> Key:
    """Krumhansl-Schmuckler key estimate from duration-weighted pitch classes.

    Parameters
    ----------
    notes : sequence of (pitch, onset, duration)
        Notes in any order; durations in quarter notes.

    Returns
    -------
    Key
        The best of the 24 major/minor keys (C major with strength 0 when there are no notes).
    """
    hist = np.zeros(12)
    for pitch, _, dur in notes:
        hist[int(pitch) % 12] += max(float(dur), 0.0)
    if hist.sum() <= 0 or np.allclose(hist, hist[0]):
        return Key(0, "major", 0.0)
    best = Key(0, "major", -2.0)
    for tonic in range(12):
        for mode, profile in (("major", _MAJOR), ("minor", _MINOR)):
            r = float(np.corrcoef(hist, np.roll(profile, tonic))[0, 1])
            if r > best.strength + 1e-12:
                best = Key(tonic, mode, r)
    return best


def local_key(score: ScoreData, start: float, end: float, *, context: float = 4.0, global_key: Key) -> Key:
    """Key around ``[start, end]`` (quarter notes) from all parts, preferring the global key.

    The local estimate (window widened by ``context`` quarter notes on each side) replaces the global key
    only when it fits the local notes clearly better (correlation higher by more than 0.1).
    """
    lo, hi = start - context, end + context
    notes = [
        (p, o, min(o + d, hi) - max(o, lo))
        for part in score.parts
        for (p, o, d, _) in part.notes
        if o < hi and o + d > lo
    ]
    loc = estimate_key(notes)
    hist = np.zeros(12)
    for pitch, _, dur in notes:
        hist[pitch % 12] += dur
    prof = _MAJOR if global_key.mode == "major" else _MINOR
    r_global = float(np.corrcoef(hist, np.roll(prof, global_key.tonic))[0, 1]) if hist.std() > 0 else -1.0
    return loc if loc.strength > r_global + 0.1 else Key(global_key.tonic, global_key.mode, r_global)


# --------------------------------------------------------------------------------------------------
# phrases


def _boundary_strength(mel: Sequence[MelodyNote], i: int) -> float:
    """How strongly a phrase ends after note ``i`` (0 = not at all)."""
    a, b = mel[i], mel[i + 1]
    ioi = b.onset - a.onset
    rest = b.onset - (a.onset + a.duration)
    prev = mel[i].onset - mel[i - 1].onset if i > 0 else ioi
    nxt = mel[i + 2].onset - b.onset if i + 2 < len(mel) else ioi
    s = ioi / max(0.5 * (prev + nxt), 1e-6)
    if rest > 1e-6:
        s += 1.0 + 2.0 * rest / max(ioi, 1e-6)
    if a.fermata:
        s += 10.0
    return s


def segment_phrases(
    mel: Sequence[MelodyNote], *, min_notes: int = 6, max_notes: int = 25, split_above: int = 18
) -> list[tuple[int, int]]:
    """Split a melody into phrases.

    Hard boundaries are fermatas, rests of at least half a quarter note, and gaps of more than two
    quarter notes; phrases longer than ``split_above`` notes are split recursively at their strongest
    inner boundary; phrases shorter than ``min_notes`` are joined to the following one when the result
    stays within ``max_notes``.

    Returns
    -------
    list of (int, int)
        ``(first, stop)`` note index ranges (stop exclusive), in order, all within the length limits.
    """
    n = len(mel)
    if n == 0:
        return []
    cuts = [0]
    for i in range(n - 1):
        rest = mel[i + 1].onset - (mel[i].onset + mel[i].duration)
        if mel[i].fermata or rest >= 0.5 - 1e-9 or mel[i + 1].onset - mel[i].onset > 2.0 + 1e-9:
            cuts.append(i + 1)
    cuts.append(n)
    segments = [(cuts[k], cuts[k + 1]) for k in range(len(cuts) - 1) if cuts[k + 1] > cuts[k]]

    def split(a: int, b: int) -> list[tuple[int, int]]:
        if b - a <= split_above:
            return [(a, b)]
        inner = range(a + min_notes - 1, b - min_notes)
        if not inner:
            return [(a, b)]
        best = max(inner, key=lambda i: (_boundary_strength(mel, i), -abs((a + b) / 2 - i)))
        return split(a, best + 1) + split(best + 1, b)

    phrases: list[tuple[int, int]] = []
    for a, b in segments:
        phrases.extend(split(a, b))
    merged: list[tuple[int, int]] = []
    k = 0
    while k < len(phrases):
        a, b = phrases[k]
        while b - a < min_notes and k + 1 < len(phrases) and phrases[k + 1][1] - a <= max_notes:
            k += 1
            b = phrases[k][1]
        merged.append((a, b))
        k += 1
    return [(a, b) for a, b in merged if min_notes <= b - a <= max_notes]


def _signature(mel: Sequence[MelodyNote], a: int, b: int) -> tuple:
    """Transposition-invariant signature: intervals and inter-onset intervals of notes a..b-1."""
    ints = tuple(mel[k + 1].pitch - mel[k].pitch for k in range(a, b - 1))
    iois = tuple(round((mel[k + 1].onset - mel[k].onset) / _Q) for k in range(a, b - 1))
    return ints, iois


class MelodyIndex:
    """Index of the top voices of many works, to find exact (transposed) repetitions of a phrase.

    Keys are the first ``k`` intervals and inter-onset intervals of every position.
    """

    def __init__(self, melodies: dict[str, list[MelodyNote]], *, k: int = 4) -> None:
        self.melodies = melodies
        self.k = k
        self._table: dict[tuple, list[tuple[str, int]]] = defaultdict(list)
        for wid, mel in melodies.items():
            for j in range(len(mel) - k):
                self._table[_signature(mel, j, j + k + 1)].append((wid, j))

    def find(self, notes: Sequence[MelodyNote]) -> list[tuple[str, int, int]]:
        """All ``(work_id, first_index, shift)`` where ``notes`` occur (shift: semitones added to ``notes``)."""
        n = len(notes)
        if n <= self.k:
            raise ParameterError(f"a phrase of {n} notes is too short to search (needs > {self.k})")
        query = list(notes)
        sig = _signature(query, 0, n)
        key = (sig[0][: self.k], sig[1][: self.k])
        out = []
        for wid, j in self._table.get(key, ()):
            mel = self.melodies[wid]
            if j + n <= len(mel) and _signature(mel, j, j + n) == sig:
                out.append((wid, j, mel[j].pitch - query[0].pitch))
        return sorted(out)


def _quality(mel: Sequence[MelodyNote], a: int, b: int, *, tempo_bpm: float, opening: bool) -> bool:
    """Whether notes a..b-1 make a usable theme (singable, not a run or a repeated-note figure)."""
    notes = mel[a:b]
    pitches = [m.pitch for m in notes]
    span_q = notes[-1].onset + notes[-1].duration - notes[0].onset
    seconds = span_q * 60.0 / tempo_bpm
    rate = (len(notes) - 1) / max((notes[-1].onset - notes[0].onset) * 60.0 / tempo_bpm, 1e-6)
    ints = np.diff(pitches)
    min_distinct, min_range = (3, 3) if opening else (4, 5)
    return (
        len(set(pitches)) >= min_distinct
        and max(pitches) - min(pitches) >= min_range
        and float(np.mean(ints == 0)) <= 0.4
        and 1.5 <= seconds <= 20.0
        and rate <= 7.0
        and int(np.max(np.abs(ints))) <= 16
    )


def extract_themes(
    scores: Sequence[ScoreData],
    *,
    max_themes: int | Mapping[str, int] = 4,
    min_notes: int = 6,
    max_notes: int = 25,
) -> dict[str, list[ExtractedTheme]]:
    """Themes of every work, with occurrences searched in all given works.

    Parameters
    ----------
    scores : sequence of ScoreData
        Works (unique ``work_id``).
    max_themes : int > 0 or mapping
        Themes per work at most (or ``work_id -> limit``): the opening (when usable) and the best
        inner phrases.
    min_notes, max_notes : int
        Length limits of a theme in notes (6 and 25 as in the dictionary).

    Returns
    -------
    dict
        ``work_id -> [ExtractedTheme, ...]`` in source order; works without a usable phrase map to ``[]``.

    Notes
    -----
    Works that start with the same opening phrase form a *family* (the same chorale tune in several
    harmonisations). A phrase that also occurs in a work outside its family is not used (an opening is
    first extended by the following phrase): such phrases (scale segments, cadence formulas) are too
    generic to be themes. Occurrences in other works are therefore only in the same family, and the
    builder keeps a family in one split.
    """
    limits = {s.work_id: (max_themes[s.work_id] if isinstance(max_themes, Mapping) else max_themes) for s in scores}
    if any(v <= 0 for v in limits.values()):
        raise ParameterError(f"max_themes={max_themes} must be > 0")
    if not 2 <= min_notes <= max_notes:
        raise ParameterError(f"min_notes={min_notes}, max_notes={max_notes}: need 2 <= min_notes <= max_notes")
    melodies = {s.work_id: melody(s) for s in scores}
    index = MelodyIndex(melodies, k=min(4, min_notes - 1))
    phrases = {
        s.work_id: segment_phrases(melodies[s.work_id], min_notes=min_notes, max_notes=max_notes) for s in scores
    }
    # families: works that contain each other's opening phrase
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for s in scores:
        ph = phrases[s.work_id]
        if ph and ph[0][0] == 0:
            for w, j, _ in index.find(melodies[s.work_id][ph[0][0] : ph[0][1]]):
                if j != 0:  # the same tune starts both works
                    continue
                a, b = find(s.work_id), find(w)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    families: dict[str, set[str]] = defaultdict(set)
    for wid in melodies:
        families[find(wid)].add(wid)
    out: dict[str, list[ExtractedTheme]] = {}
    for score in scores:
        wid = score.work_id
        out[wid] = _themes_of(score, melodies[wid], phrases[wid], index, families[find(wid)], limits[wid], max_notes)
    return out


def work_families(themes: dict[str, list[ExtractedTheme]]) -> dict[str, str]:
    """Map every work to a family representative: works linked by a theme occurrence share one."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for wid, ths in themes.items():
        for t in ths:
            for o in t.occurrences:
                if o.work_id in themes:
                    a, b = find(wid), find(o.work_id)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
    return {wid: find(wid) for wid in themes}


def _themes_of(
    score: ScoreData,
    mel: list[MelodyNote],
    phrases: list[tuple[int, int]],
    index: MelodyIndex,
    family: set[str],
    max_themes: int,
    max_notes: int = 25,
) -> list[ExtractedTheme]:
    wid = score.work_id
    if not phrases:
        return []
    all_notes = [(p, o, d) for part in score.parts for (p, o, d, _) in part.notes]
    global_key = estimate_key(all_notes)

    candidates = []  # (value, first, stop, matches, is_opening)
    seen = set()
    for k, (a, b) in enumerate(phrases):
        opening = k == 0 and a == 0
        sig = _signature(mel, a, b)
        if sig in seen or not _quality(mel, a, b, tempo_bpm=score.tempo_bpm, opening=opening):
            continue
        seen.add(sig)
        matches = index.find(mel[a:b])
        if opening and any(m[0] not in family for m in matches) and len(phrases) > 1:
            b2 = phrases[1][1]  # a generic opening: try it together with the next phrase
            if phrases[1][0] == b and b2 - a <= max_notes:
                b, matches = b2, index.find(mel[a:b2])
        if any(m[0] not in family for m in matches):
            continue
        own = [m for m in matches if m[0] == wid]
        pitches = [m.pitch for m in mel[a:b]]
        value = (
            1.0
            + 0.6 * min(len(own) - 1, 3)
            + 0.03 * (max(pitches) - min(pitches))
            + 0.1 * len(set(pitches))
            + (0.5 if 8 <= b - a <= 16 else 0.0)
        )
        candidates.append((100.0 if opening else value, a, b, matches, opening))
    candidates.sort(key=lambda c: (-c[0], c[1]))

    chosen = []
    taken: list[tuple[float, float]] = []  # occupied score intervals of this work
    for _, a, b, matches, opening in candidates:
        spans = [
            (index.melodies[w][j].onset, index.melodies[w][j + b - a - 1].onset) for w, j, _ in matches if w == wid
        ]
        if any(s0 <= t1 and t0 <= s1 for s0, s1 in spans for t0, t1 in taken):
            continue
        taken.extend(spans)
        chosen.append((a, b, matches, opening))
        if len(chosen) == max_themes:
            break
    chosen.sort(key=lambda c: c[0])

    themes = []
    for k, (a, b, matches, opening) in enumerate(chosen, start=1):
        notes = mel[a:b]
        start, end = notes[0].onset, notes[-1].onset + notes[-1].duration
        key = global_key if opening else local_key(score, start, end, global_key=global_key)
        shift = key.shift_to_c
        c_notes = tuple((m.pitch + shift, round(m.onset - start, 6), round(m.duration, 6)) for m in notes)
        occs = []
        for w, j, s in matches:
            other = index.melodies[w][j : j + len(notes)]
            occs.append(
                ScoreOccurrence(
                    work_id=w,
                    onsets=tuple(m.onset for m in other),
                    end=other[-1].onset + other[-1].duration,
                    shift=s - shift,
                )
            )
        measure = int(np.searchsorted(np.asarray(score.measure_starts), start + 1e-9, side="right"))
        themes.append(
            ExtractedTheme(
                theme_id=f"{wid}:t{k}",
                work_id=wid,
                kind="opening" if opening else "phrase",
                notes=c_notes,
                key=key.name,
                shift_to_c=shift,
                measure=max(measure, 1),
                tempo_bpm=score.tempo_bpm,
                occurrences=tuple(sorted(occs, key=lambda o: (o.work_id, o.start))),
            )
        )
    return themes
