"""Symbolic input: note strings, MIDI, MusicXML and Humdrum kern -> monophonic note lists.

A theme is a short monophonic melody. Files may be polyphonic: then the part with the highest mean
pitch (or the part the user names) is taken and reduced to its top line (at each onset the highest note,
the "skyline").

Units: pitches are MIDI numbers, onsets and durations are in quarter notes.

Full scores (every note of every part, for score-to-audio alignment) are read by :func:`load_score_notes`
into :class:`ScoreNotes`: MIDI with pretty_midi (the file's own times), notated scores (MusicXML, MEI,
kern) with partitura (times at a nominal tempo).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirsearch._util.inputs import check_structured_file, exception_reason
from mirsearch.errors import InputError, ParameterError, check_positive

log = logging.getLogger(__name__)

MIDI_EXTENSIONS = (".mid", ".midi")
MUSICXML_EXTENSIONS = (".xml", ".mxl", ".musicxml")
KERN_EXTENSIONS = (".krn", ".kern")
SCORE_EXTENSIONS = MIDI_EXTENSIONS + MUSICXML_EXTENSIONS + KERN_EXTENSIONS
#: notated formats :func:`load_score_notes` reads (with partitura)
NOTATED_EXTENSIONS = (".musicxml", ".xml", ".mxl", ".mei", ".krn", ".kern")
#: every format :func:`load_score_notes` reads
FULL_SCORE_EXTENSIONS = MIDI_EXTENSIONS + NOTATED_EXTENSIONS
#: nominal tempo (quarter notes per minute) of notated scores without a metronome mark
DEFAULT_BPM = 100.0

# -- limits, checked before and after parsing (a 400-byte file must not ask for hours of work) -------------
#: largest score file read (bytes; for .mxl the compressed size)
MAX_SCORE_BYTES = 32 * 1024 * 1024
#: largest total decompressed size of an .mxl archive (bytes)
MAX_MXL_BYTES = 64 * 1024 * 1024
#: deepest XML element nesting accepted (MusicXML needs about 10)
MAX_XML_DEPTH = 100
#: most notes and longest span (quarter notes) of a theme
MAX_THEME_NOTES, MAX_THEME_QUARTERS = 5_000, 4_000.0
#: most notes and longest span (quarter notes) of a full score (8 h at 100 quarters per minute)
MAX_SCORE_NOTES, MAX_SCORE_QUARTERS = 500_000, 48_000.0

_STEP_TO_PC = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_ACCIDENTALS = {"": 0, "#": 1, "##": 2, "x": 2, "♯": 1, "b": -1, "bb": -2, "♭": -1, "-": -1, "--": -2}
_TOKEN = re.compile(
    r"""^(?P<step>[A-Ga-g])(?P<acc>\#\#|\#|x|♯|bb|b|♭|--|-)?(?P<octave>-?\d)?
        (?:/(?P<den>\d+)(?P<dots>\.*))?$""",
    re.VERBOSE,
)
_REST = re.compile(r"^[Rr](?:/(?P<den>\d+)(?P<dots>\.*))?$")


@dataclass(frozen=True)
class Note:
    """One note of a melody.

    Attributes
    ----------
    pitch : int
        MIDI pitch number (60 = C4).
    onset : float
        Onset in quarter notes from the start of the theme.
    duration : float
        Duration in quarter notes (> 0).
    """

    pitch: int
    onset: float
    duration: float


@dataclass(frozen=True)
class Theme:
    """A monophonic melody used as a query.

    Attributes
    ----------
    notes : tuple of Note
        Notes sorted by onset, non-overlapping.
    tempo_bpm : float or None
        Tempo in quarter notes per minute if the source says so (MIDI tempo, metronome mark).
    name : str
        Label for messages and results.
    """

    notes: tuple[Note, ...]
    tempo_bpm: float | None = None
    name: str = "theme"
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def pitches(self) -> np.ndarray:
        """MIDI pitches, shape (n_notes,)."""
        return np.array([n.pitch for n in self.notes], dtype=np.int64)

    @property
    def duration(self) -> float:
        """Length in quarter notes from the first onset to the last offset."""
        return max(n.onset + n.duration for n in self.notes) - self.notes[0].onset

    def transposed(self, semitones: int) -> Theme:
        """The same theme shifted by ``semitones``."""
        notes = tuple(Note(n.pitch + semitones, n.onset, n.duration) for n in self.notes)
        return Theme(notes, self.tempo_bpm, self.name)

    def to_string(self) -> str:
        """Note-string form (``"E5/8 D#5/8"``) that :func:`parse_note_string` reads back."""
        names = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
        tokens = []
        cursor = self.notes[0].onset
        for n in self.notes:
            if n.onset > cursor + 1e-6:
                tokens.append("R/" + _duration_token(n.onset - cursor))
            octave = n.pitch // 12 - 1
            tokens.append(f"{names[n.pitch % 12]}{octave}/{_duration_token(n.duration)}")
            cursor = n.onset + n.duration
        return " ".join(tokens)


def _duration_token(quarters: float) -> str:
    """The note value nearest to ``quarters`` (in log ratio): unquantised MIDI durations are written, not refused."""
    if not quarters > 0:
        raise ParameterError(f"duration={quarters} quarter notes cannot be written as a note value")
    values = [(4.0 / den * factor, f"{den}{'.' * dots}") for den in (1, 2, 4, 8, 16, 32, 64)
              for dots, factor in ((0, 1.0), (1, 1.5), (2, 1.75))]  # fmt: skip
    return min(values, key=lambda v: abs(np.log(quarters / v[0])))[1]


def parse_note_string(text: str, *, name: str = "theme") -> Theme:
    """Parse a note string into a :class:`Theme`.

    Tokens are separated by spaces or commas. A note is a letter ``A``-``G``, an optional accidental
    (``#``, ``##``, ``b``, ``bb``, ``-``, ``x``, ``♯``, ``♭``), an optional octave (``C4`` = MIDI 60) and an
    optional note value after a slash (``/4`` quarter, ``/8`` eighth, ``/2.`` dotted half). A rest is ``R``
    with an optional value. Without an octave a note takes the octave closest to the previous note
    (the first one octave 4); without a value it keeps the previous value (first: a quarter).

    Examples
    --------
    >>> [n.pitch for n in parse_note_string("G G G Eb").notes]
    [67, 67, 67, 63]
    >>> [n.duration for n in parse_note_string("E5/8 D#5/8 E5/4").notes]
    [0.5, 0.5, 1.0]
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{name}: empty note string")
    notes: list[Note] = []
    onset = 0.0
    duration = 1.0
    previous: int | None = None
    tokens = re.split(r"[\s,]+", text.strip())
    if len(tokens) > MAX_THEME_NOTES:
        raise InputError(f"{name}: {len(tokens)} tokens (a theme has at most {MAX_THEME_NOTES} notes)")
    for position, token in enumerate(tokens, start=1):
        rest = _REST.match(token)
        if rest:
            if rest["den"]:
                duration = _note_value(rest["den"], rest["dots"], token, name)
            onset += duration
            continue
        m = _TOKEN.match(token)
        if not m:
            raise InputError(f"{name}: cannot read note {position} {token!r} (expected e.g. 'Eb', 'F#5/8')")
        pc = _STEP_TO_PC[m["step"].lower()] + _ACCIDENTALS[m["acc"] or ""]
        if m["octave"] is not None:
            pitch = 12 * (int(m["octave"]) + 1) + pc
        else:
            ref = previous if previous is not None else 66  # closest to F#4 -> octave 4 for C..B
            pitch = pc + 12 * round((ref - pc) / 12)
        if not 0 <= pitch <= 127:
            raise InputError(f"{name}: note {position} {token!r} is outside the MIDI range")
        if m["den"]:
            duration = _note_value(m["den"], m["dots"], token, name)
        notes.append(Note(int(pitch), onset, duration))
        onset += duration
        previous = pitch
    if not notes:
        raise InputError(f"{name}: no notes found")
    check_notes(name, onsets=[n.onset for n in notes], durations=[n.duration for n in notes], theme=True)
    return Theme(tuple(notes), None, name)


def _note_value(den: str, dots: str, token: str, name: str) -> float:
    d = int(den)
    if d <= 0 or d & (d - 1) or d > 1024:
        raise InputError(f"{name}: note value in {token!r} must be a power of two (1, 2, 4, ..., 1024)")
    value = 4.0 / d
    return value * (2.0 - 0.5 ** len(dots))


def load_theme(path: str | os.PathLike, *, part: str | int | None = None) -> Theme:
    """Read a theme from a MIDI, MusicXML (.xml, .mxl, .musicxml) or Humdrum kern file.

    Parameters
    ----------
    path : path-like
        The score file.
    part : str or int, optional
        Part (MusicXML/kern) or instrument (MIDI) to use: its name or its 0-based index. By default the
        part with the highest mean pitch.

    Returns
    -------
    Theme
        The top line of the chosen part.

    Raises
    ------
    InputError
        Unknown extension, unreadable or malformed file, no notes, unknown part.
    """
    path = Path(path)
    check_score_file(path)
    ext = path.suffix.lower()
    if ext in MIDI_EXTENSIONS:
        parts = _midi_parts(path)
    elif ext in MUSICXML_EXTENSIONS or ext in KERN_EXTENSIONS:
        parts = _music21_parts(path)
    else:
        raise InputError(f"{path.name}: unknown score format {ext!r} (use {', '.join(SCORE_EXTENSIONS)})")
    events, tempo = parts
    if not events or not any(len(ev) for _, ev in events):
        raise InputError(f"{path.name}: no notes found")
    every = [e for _, ev in events for e in ev]
    check_notes(path.name, onsets=[e[0] for e in every], durations=[e[1] for e in every], theme=False)
    chosen = _choose_part(events, part, path.name)
    notes = _skyline(chosen)
    if not notes:
        raise InputError(f"{path.name}: no notes found in the chosen part")
    check_notes(path.name, onsets=[n.onset for n in notes], durations=[n.duration for n in notes], theme=True)
    if tempo is not None and not (np.isfinite(tempo) and 1.0 <= tempo <= 2000.0):
        tempo = None  # an absurd metronome mark is no tempo
    return Theme(tuple(notes), tempo, path.stem)


def _choose_part(events: list[tuple[str, list[tuple[float, float, int]]]], part, name: str):
    if part is None:
        nonempty = [(label, ev) for label, ev in events if ev]
        return max(nonempty, key=lambda item: np.mean([p for _, _, p in item[1]]))[1]
    if isinstance(part, int) or (isinstance(part, str) and part.isdigit()):
        index = int(part)
        if not 0 <= index < len(events):
            raise InputError(f"{name}: part {index} does not exist (the file has {len(events)} parts)")
        return events[index][1]
    for label, ev in events:
        if label.lower() == str(part).lower():
            return ev
    labels = ", ".join(repr(label) for label, _ in events)
    raise InputError(f"{name}: no part named {part!r} (parts: {labels})")


#: A gap before the next onset shorter than this (quarter notes, a 32nd note) is articulation, not a rest: the note
#: is held to the next onset (sequencers and played MIDI leave a tick or a few milliseconds between legato notes).
ARTICULATION_GAP = 0.125


def _skyline(events: list[tuple[float, float, int]]) -> list[Note]:
    """Highest note at each onset; a note is cut where the next onset starts and held over a gap < ARTICULATION_GAP."""
    by_onset: dict[float, tuple[float, int]] = {}
    for onset, duration, pitch in events:
        key = round(onset, 6)
        if key not in by_onset or pitch > by_onset[key][1]:
            by_onset[key] = (duration, pitch)
    onsets = sorted(by_onset)
    if not onsets:
        return []
    origin = onsets[0]
    notes = []
    for i, onset in enumerate(onsets):
        duration, pitch = by_onset[onset]
        if i + 1 < len(onsets):
            to_next = onsets[i + 1] - onset
            duration = to_next if to_next - duration < ARTICULATION_GAP else min(duration, to_next)
        if duration > 1e-6:
            notes.append(Note(int(pitch), onset - origin, float(duration)))
    return notes


def _midi_parts(path: Path):
    import pretty_midi

    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:
        raise InputError(f"{path.name}: malformed MIDI file ({exception_reason(exc)})") from None
    times, tempi = pm.get_tempo_changes()
    tempo = round(float(tempi[0]), 3) if len(tempi) else 120.0  # MIDI stores microseconds per quarter
    # express times in quarter notes through the file's own beat grid
    beats = pm.get_beats()
    if len(beats) < 2:
        beats = np.array([0.0, 60.0 / tempo])

    def to_quarters(t: float) -> float:
        spb = 60.0 / tempo
        if t <= beats[-1]:
            return float(np.interp(t, beats, np.arange(len(beats))))
        return len(beats) - 1 + (t - beats[-1]) / spb

    parts = []
    for i, inst in enumerate(pm.instruments):
        if inst.is_drum:
            continue
        label = inst.name.strip() or f"instrument {i}"
        ev = [
            (to_quarters(n.start), to_quarters(n.end) - to_quarters(n.start), int(n.pitch))
            for n in inst.notes
            if n.end > n.start
        ]
        parts.append((label, ev))
    # pretty_midi reports 120 bpm when a file has no tempo event; treat a lone default as "unknown"
    return parts, tempo


def _music21_parts(path: Path):
    import music21

    try:
        score = music21.converter.parse(str(path))
    except Exception as exc:
        raise InputError(f"{path.name}: malformed score ({exception_reason(exc)})") from None
    tempo = None
    marks = list(score.recurse().getElementsByClass(music21.tempo.MetronomeMark))
    if marks and marks[0].number:
        tempo = float(marks[0].getQuarterBPM() or marks[0].number)
    containers = list(getattr(score, "parts", [])) or [score]
    parts = []
    for i, p in enumerate(containers):
        label = (p.partName or p.id or f"part {i}") if hasattr(p, "partName") else f"part {i}"
        ev = []
        try:
            flat = p.stripTies().flatten()  # tied notes (across barlines) become one note
        except Exception:  # music21 rejects some irregular tie chains; keep the notes as written
            flat = p.flatten()
        for n in flat.notes:
            if n.duration.isGrace:
                continue
            pitches = [x.midi for x in n.pitches]
            if pitches:
                ev.append((float(n.getOffsetInHierarchy(flat)), float(n.quarterLength), int(max(pitches))))
        parts.append((str(label), ev))
    return parts, tempo


def read_theme(source: str | os.PathLike | Theme, *, part: str | int | None = None) -> Theme:
    """A theme from a :class:`Theme`, a score file path or a note string (in that order of checks)."""
    if isinstance(source, Theme):
        return source
    if isinstance(source, os.PathLike) or (isinstance(source, str) and Path(source).suffix.lower() in SCORE_EXTENSIONS):
        return load_theme(source, part=part)
    if isinstance(source, str):
        return parse_note_string(source)
    raise ParameterError(f"theme={source!r} must be a note string, a score path or a Theme")


def save_midi(theme: Theme, path: str | os.PathLike, *, tempo_bpm: float = 120.0, program: int = 0) -> None:
    """Write a theme as a one-track MIDI file (for round trips and rendering)."""
    import pretty_midi

    bpm = theme.tempo_bpm or tempo_bpm
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    inst = pretty_midi.Instrument(program=program, name=theme.name)
    spq = 60.0 / bpm
    for n in theme.notes:
        inst.notes.append(pretty_midi.Note(90, n.pitch, n.onset * spq, (n.onset + n.duration) * spq))
    pm.instruments.append(inst)
    pm.write(str(path))


def save_musicxml(theme: Theme, path: str | os.PathLike) -> None:
    """Write a theme as a MusicXML file with music21."""
    import music21

    stream = music21.stream.Part()
    if theme.tempo_bpm:
        stream.insert(0, music21.tempo.MetronomeMark(number=theme.tempo_bpm))
    for n in theme.notes:
        note = music21.note.Note(n.pitch)
        note.quarterLength = n.duration
        stream.insert(n.onset, note)
    stream.makeRests(fillGaps=True, inPlace=True)
    music21.stream.Score([stream]).write("musicxml", fp=str(path))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def check_score_file(path: Path) -> None:
    """Check a score file before parsing it (size, .mxl decompressed size, XML nesting); see
    :func:`mirsearch._util.inputs.check_structured_file`."""
    check_structured_file(
        path, max_bytes=MAX_SCORE_BYTES, max_unzipped=MAX_MXL_BYTES, max_depth=MAX_XML_DEPTH, kind="score"
    )


def check_notes(name: str, *, onsets, durations, theme: bool) -> None:
    """Check parsed notes against the limits (count, finite values, total span in quarter notes).

    Parameters
    ----------
    name : str
        File or query name for messages.
    onsets, durations : sequence of float
        In quarter notes.
    theme : bool
        Theme limits (:data:`MAX_THEME_NOTES`, :data:`MAX_THEME_QUARTERS`) or full-score limits.
    """
    max_notes, max_quarters = (MAX_THEME_NOTES, MAX_THEME_QUARTERS) if theme else (MAX_SCORE_NOTES, MAX_SCORE_QUARTERS)
    n = len(onsets)
    if n > max_notes:
        raise InputError(f"{name}: {n} notes (at most {max_notes} accepted)")
    if n == 0:
        return
    on = np.asarray(onsets, dtype=np.float64)
    du = np.asarray(durations, dtype=np.float64)
    if not (np.all(np.isfinite(on)) and np.all(np.isfinite(du))):
        raise InputError(f"{name}: note times or durations are not finite numbers")
    span = float(np.max(on + du) - np.min(on))
    if span > max_quarters:
        raise InputError(f"{name}: the notes span {span:.4g} quarter notes (at most {max_quarters:g} accepted)")


# -- full scores (all notes of all parts) ------------------------------------------------------------------


@dataclass
class ScoreNotes:
    """Notes of a full (polyphonic) score on one timeline.

    Attributes
    ----------
    pitch : np.ndarray, shape (n,), int
    onset, offset : np.ndarray, shape (n,), float
        In seconds at the score's nominal tempo (MIDI: the file's own times).
    onset_quarter, duration_quarter : np.ndarray, shape (n,), float
        Score position and length in quarter notes (NaN for MIDI files without a usable grid).
    part : np.ndarray, shape (n,), int
        Part (instrument) index.
    velocity : np.ndarray, shape (n,), int
    seconds_per_quarter : float
        Nominal tempo used for ``onset`` (NaN for MIDI).
    """

    pitch: np.ndarray
    onset: np.ndarray
    offset: np.ndarray
    onset_quarter: np.ndarray
    duration_quarter: np.ndarray
    part: np.ndarray
    velocity: np.ndarray
    seconds_per_quarter: float = float("nan")

    def __len__(self) -> int:
        return int(self.pitch.size)

    def shifted(self, seconds: float) -> ScoreNotes:
        """The same notes with all times moved by ``seconds`` (onsets stay >= 0)."""
        seconds = max(float(seconds), -float(self.onset.min()))
        return ScoreNotes(
            self.pitch,
            self.onset + seconds,
            self.offset + seconds,
            self.onset_quarter,
            self.duration_quarter,
            self.part,
            self.velocity,
            self.seconds_per_quarter,
        )

    def scaled(self, factor: float) -> ScoreNotes:
        """The same notes with all times multiplied by ``factor`` (a global tempo change)."""
        return ScoreNotes(
            self.pitch,
            self.onset * factor,
            self.offset * factor,
            self.onset_quarter,
            self.duration_quarter,
            self.part,
            self.velocity,
            self.seconds_per_quarter * factor,
        )


def load_score_notes(path: str | os.PathLike, *, bpm: float | None = None, expand_repeats: bool = False) -> ScoreNotes:
    """Read all notes of a score file (MIDI, MusicXML, MEI, kern).

    Parameters
    ----------
    path : path-like
        ``.mid/.midi`` (read with pretty_midi: times in seconds as in the file) or a notated score
        (``.musicxml/.xml/.mxl/.mei/.krn``, read with partitura).
    bpm : float > 0, optional
        Quarter notes per minute for notated scores; default the score's first metronome mark, else
        :data:`DEFAULT_BPM`.
    expand_repeats : bool
        Unfold repeats (partitura's maximal unfolding) for notated scores.

    Raises
    ------
    InputError
        Missing or unreadable file, or no notes.
    """
    path = Path(path)
    check_score_file(path)
    suffix = path.suffix.lower()
    if suffix in MIDI_EXTENSIONS:
        notes = _midi_notes(path)
    elif suffix in NOTATED_EXTENSIONS:
        notes = _partitura_notes(path, bpm=bpm, expand_repeats=expand_repeats)
    else:
        notes = None
    if notes is not None:
        spq = notes.seconds_per_quarter if np.isfinite(notes.seconds_per_quarter) else 0.5
        check_notes(path.name, onsets=notes.onset / spq, durations=(notes.offset - notes.onset) / spq, theme=False)
        return notes
    raise InputError(f"{path.name}: unsupported score format '{suffix}' (MIDI, MusicXML, MEI or kern)")


def _midi_notes(path: Path) -> ScoreNotes:
    import pretty_midi

    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # mido/pretty_midi raise many types
        raise InputError(f"{path.name}: unreadable MIDI file ({exception_reason(exc)})") from None
    rows = []
    for i, inst in enumerate(pm.instruments):
        if inst.is_drum:
            continue
        for n in inst.notes:
            if n.end > n.start:
                rows.append((n.pitch, n.start, n.end, i, n.velocity))
    if not rows:
        raise InputError(f"{path.name}: no notes found")
    a = np.array(rows, dtype=np.float64)
    a = a[np.lexsort((a[:, 0], a[:, 1]))]
    beats = pm.get_beats()
    if beats.size >= 2:  # quarter positions from the file's beat grid (beats = quarter notes for x/4)
        q_on = np.interp(a[:, 1], beats, np.arange(beats.size), right=np.nan)
        q_off = np.interp(a[:, 2], beats, np.arange(beats.size), right=np.nan)
        q_dur = q_off - q_on
    else:
        q_on = q_dur = np.full(a.shape[0], np.nan)
    return ScoreNotes(
        pitch=a[:, 0].astype(np.int64),
        onset=a[:, 1],
        offset=a[:, 2],
        onset_quarter=q_on,
        duration_quarter=q_dur,
        part=a[:, 3].astype(np.int64),
        velocity=a[:, 4].astype(np.int64),
    )


def _partitura_notes(path: Path, *, bpm: float | None, expand_repeats: bool) -> ScoreNotes:
    import partitura as pt

    try:
        score = pt.load_score(str(path))
        if expand_repeats:
            score = pt.score.unfold_part_maximal(score)
    except Exception as exc:  # partitura raises many types for bad files
        raise InputError(f"{path.name}: unreadable score ({exception_reason(exc)})") from None
    rows = []
    first_bpm = None
    for i, part in enumerate(score.parts):
        if first_bpm is None:
            for tempo in part.iter_all(pt.score.Tempo):
                try:
                    first_bpm = float(tempo.bpm) * _quarters_per_beat_unit(getattr(tempo, "unit", None))
                except (TypeError, ValueError):
                    first_bpm = None
                break
        na = part.note_array()
        for r in na:
            if r["duration_quarter"] > 0:
                rows.append((r["pitch"], r["onset_quarter"], r["duration_quarter"], i))
    if not rows:
        raise InputError(f"{path.name}: no notes found")
    a = np.array(rows, dtype=np.float64)
    a = a[np.lexsort((a[:, 0], a[:, 1]))]
    a[:, 1] -= a[:, 1].min()  # anacrusis: the first note starts at 0
    bpm = bpm or first_bpm or DEFAULT_BPM
    check_positive("bpm", bpm)
    spq = 60.0 / bpm
    return ScoreNotes(
        pitch=a[:, 0].astype(np.int64),
        onset=a[:, 1] * spq,
        offset=(a[:, 1] + a[:, 2]) * spq,
        onset_quarter=a[:, 1],
        duration_quarter=a[:, 2],
        part=a[:, 3].astype(np.int64),
        velocity=np.full(a.shape[0], 80, dtype=np.int64),
        seconds_per_quarter=spq,
    )


def _quarters_per_beat_unit(unit) -> float:
    """Metronome unit -> quarter notes ("h" -> 2, "e" -> 0.5, dotted adds half)."""
    if not unit:
        return 1.0
    u = str(unit).lower()
    base = {"w": 4.0, "h": 2.0, "q": 1.0, "e": 0.5, "s": 0.25}
    for key, names in (
        ("w", ("w", "whole")),
        ("h", ("h", "half")),
        ("q", ("q", "quarter")),
        ("e", ("e", "eighth")),
        ("s", ("s", "16th")),
    ):
        if u.rstrip(".").startswith(names):
            v = base[key]
            return v * 1.5 if u.endswith(".") else v
    return 1.0
