"""A light optical reading of printed music: note heads, clefs and a pitch-class sequence per system.

No learning, so nothing here is tied to one engraver or music font; everything is measured in staff spaces
of the page (``mirsearch.features.staff``).

1. **Holes filled**: white regions enclosed by ink and smaller than a note head (the inside of half and
   whole notes) become ink, so hollow heads look like filled ones.
2. **Staff lines removed**: on each line of each detected staff, a column's ink is cleared where nothing
   touches the line from above or below (ink crossing the line, a head on the line, stays).
3. **Note heads**: a binary erosion with an ellipse of ``HEAD_HEIGHT`` x ``HEAD_WIDTH`` staff spaces keeps
   only places where a head-sized blob of ink fits (stems, beams, slurs, ledger lines, text, sharps and flats
   are thinner); each connected region of the erosion is one head, or ``n`` stacked heads when it is about
   ``n - 1`` staff spaces tall (a chord of thirds).
4. **Staff position** of a head: half staff spaces above the bottom line of the nearest staff of its system,
   in that staff's own line spacing (the page's staff space is a rounded estimate: a head four ledger lines
   out would be a step off).
5. **Clef** of each staff from the ink at its start: a treble clef reaches well above the top line and
   below the bottom line, a bass clef stays inside the staff. The clef gives the natural pitch class of a
   position (treble: bottom line E, bass: bottom line G); the key signature (:func:`key_signature`) raises
   or lowers it, and an accidental left of a head (:func:`accidental_at`) sets its staff position's class
   until the next bar line (:func:`bar_lines`, :func:`pitch_classes`). The pitch-class vector of a head puts
   ``NATURAL_WEIGHT`` on its class and ``NEIGHBOUR_WEIGHT`` on the semitones either side.
6. **Sequence**: heads of a system in x order; the features at two samples per staff space (``x`` from the
   system's left end) are the decayed sum of the heads' pitch-class vectors sounding up to there, plus
   (optionally) each staff's last chord held until its next (:func:`system_features`); beside them the same
   samples of the bass band only (the octave from clef and position: :func:`register_features`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mirsearch.errors import ParameterError
from mirsearch.features.staff import PageLayout, Staff, System, binarise

#: note-head erosion element, staff spaces (height, width); chosen on verovio pages (see docs/sheets.md)
HEAD_HEIGHT = 0.7
HEAD_WIDTH = 0.9
#: half the height of the erosion of one head (staff spaces)
SINGLE_REACH = 0.15
#: a stem is a vertical ink run at least this long (staff spaces)
STEM_SPACES = 3.0
#: the clef and key signature lie within this many staff spaces of a staff's start
KEY_ZONE = 14.0
#: erosion regions wider than this (staff spaces) are beams or blocks
CLUSTER_SPACES = 3.0
#: the first accidental of a key signature starts at most this far right of the clef (staff spaces; a bass
#: clef's dots lie between them)
FIRST_KEY_GAP = 2.2
#: heads closer than this (staff spaces, horizontally) sound together
CHORD_GAP = 0.9
#: ignore heads closer than this to the start of a staff (clef), staff spaces
CLEF_ZONE = 3.5
NATURAL_WEIGHT = 1.0
NEIGHBOUR_WEIGHT = 0.15
#: natural pitch class of staff position 0 (bottom line) and the pitch classes of the seven steps above C
BOTTOM_STEP = {"treble": 2, "bass": 4}  # diatonic step of the bottom line above C: E = 2, G = 4
NATURAL_PC = (0, 2, 4, 5, 7, 9, 11)
#: octave of the bottom line (treble: E4, bass: G2), for the MIDI pitch of a head (:func:`head_midi`)
BOTTOM_OCTAVE = {"treble": 4, "bass": 2}
#: the bass band of :func:`register_features` (MIDI): heads below its first pitch count fully, above its second
#: not at all, linearly between; the query's semitone bands are weighed alike (:func:`bass_gain`)
BASS_BAND = (56.0, 64.0)
#: weight of the bass-band samples against the full-range ones; band and weight chosen on verovio pages
BASS_WEIGHT = 0.7
#: rows of :func:`register_features`
N_FEATURES = 24
#: natural pitch classes raised by a key signature's sharps, lowered by its flats, in order
SHARPS = (5, 0, 7, 2, 9, 4, 11)
FLATS = (11, 4, 9, 2, 7, 0, 5)


@dataclass(frozen=True)
class Head:
    """A note head: page pixels ``x``, ``y``; its staff (index in the system) and position (half spaces
    above the bottom line)."""

    x: float
    y: float
    staff: int
    position: int
    #: accidental glyph just left of the head: ``"flat"``, ``"natural"``, ``"other"`` (a sharp, or a natural not
    #: told apart) or ``""``
    accidental: str = ""


@dataclass(frozen=True)
class SystemReading:
    """What was read on one system: its heads, the clef of each staff, and the page x range."""

    heads: tuple[Head, ...]
    clefs: tuple[str, ...]
    x0: int
    x1: int
    #: key signature: sharps (> 0) or flats (< 0)
    key: int = 0
    #: page x of the bar lines of each staff
    bars: tuple[tuple[float, ...], ...] = ()


def small_holes(ink: np.ndarray, *, space: float) -> np.ndarray:
    """Enclosed white regions of ``ink`` smaller than a note head's inside (hollow heads, letters)."""
    from scipy import ndimage

    labels, n = ndimage.label(~ink)
    if n == 0:
        return np.zeros_like(ink)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    small = sizes <= 0.8 * space * space
    small[0] = False
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        if small[k] and sl is not None:
            h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
            if h > 1.1 * space or w > 1.6 * space:
                small[k] = False
    return small[labels]


def _line_band(ink: np.ndarray, staff: Staff, y: float, thickness: float) -> tuple[int, int] | None:
    """First and last row of the staff line near row ``y``: rows more than half ink along the staff."""
    reach = int(np.ceil(thickness)) + 1
    lo, hi = max(int(round(y)) - reach, 1), min(int(round(y)) + reach, ink.shape[0] - 2)
    band = np.flatnonzero(ink[lo : hi + 1, staff.x0 : staff.x1].mean(axis=1) > 0.5) + lo
    return (int(band.min()), int(band.max())) if band.size else None


def refine_staff(ink: np.ndarray, staff: Staff, *, thickness: float) -> Staff:
    """``staff`` with each line row moved to the middle of the line's own ink rows."""
    lines = []
    for y in staff.lines:
        band = _line_band(ink, staff, y, thickness)
        lines.append(y if band is None else (band[0] + band[1]) / 2.0)
    return replace(staff, lines=tuple(lines))


def remove_staff_lines(ink: np.ndarray, staves, *, thickness: float) -> np.ndarray:
    """A copy of ``ink`` without the staff lines of ``staves`` (ink crossing or touching a line stays)."""
    out = ink.copy()
    for staff in staves:
        cols = slice(staff.x0, staff.x1)
        for y in staff.lines:
            band = _line_band(ink, staff, y, thickness)
            if band is None:
                continue
            r0, r1 = band
            free = ~ink[r0 - 1, cols] & ~ink[r1 + 1, cols]
            out[r0 : r1 + 1, cols] &= ~free[None, :]
    return out


def _ellipse(height: float, width: float) -> np.ndarray:
    """An ellipse of odd size (so that the erosion keeps centres in place)."""
    size = 2 * int(round(max(height, width) / 2.0)) + 1
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2.0
    se = (xx / max(width / 2.0, 0.5)) ** 2 + (yy / max(height / 2.0, 0.5)) ** 2 <= 1.0
    return se[np.ix_(se.any(axis=1), se.any(axis=0))]


def _stack(top: float, bottom: float, x: float, space: float) -> list[tuple[float, float]]:
    """Centres of the heads stacked in an erosion region from row ``top`` to ``bottom`` at column ``x``."""
    n_heads = 1 + int(round((bottom - top) / space))
    if n_heads == 1:
        return [(x, (top + bottom) / 2.0)]
    inset = min(SINGLE_REACH * space, (bottom - top) / 2.0)  # the reach of one head's erosion
    return [(x, float(y)) for y in np.linspace(top + inset, bottom - inset, n_heads)]


def head_centres(clean: np.ndarray, *, space: float) -> np.ndarray:
    """Note-head centres ``(n, 2)`` (x, y page pixels) in a line-free, hole-filled ink mask."""
    from scipy import ndimage

    eroded = ndimage.binary_erosion(clean, structure=_ellipse(HEAD_HEIGHT * space, HEAD_WIDTH * space))
    labels, n = ndimage.label(ndimage.binary_dilation(eroded, iterations=2))  # fragments of one head join
    out = []
    for sl in ndimage.find_objects(labels):
        if sl is None:
            continue
        ys, xs = sl
        width = xs.stop - xs.start
        if width > CLUSTER_SPACES * space:  # a beam or a block, not heads
            continue
        # heads side by side (a cluster of seconds): one column of heads per head width
        n_cols = 1 + int(round(max(width - 0.3 * space, 0) / (1.2 * space)))
        edges = np.linspace(xs.start, xs.stop, n_cols + 1)
        for c0, c1 in zip(edges[:-1], edges[1:], strict=False):
            rows = np.flatnonzero(eroded[ys, int(c0) : max(int(c1), int(c0) + 1)].any(axis=1))
            if rows.size:
                out.extend(_stack(ys.start + rows[0], ys.start + rows[-1], (c0 + c1 - 1) / 2.0, space))
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def staff_clef(clean: np.ndarray, staff: Staff, *, space: float) -> str:
    """``"treble"`` or ``"bass"`` from the vertical reach of the ink at the start of ``staff``."""
    x0, x1 = staff.x0 + int(0.3 * space), staff.x0 + int(CLEF_ZONE * space)
    y0, y1 = int(staff.top - 2.5 * space), int(staff.bottom + 2.5 * space)
    window = clean[max(y0, 0) : y1, x0:x1]
    rows = np.flatnonzero(window.sum(axis=1) >= 2) + max(y0, 0)
    if rows.size == 0:
        return "treble"
    below = rows.max() - staff.bottom
    return "treble" if below > 0.6 * space else "bass"


def _has_stem(clean: np.ndarray, x: float, y: float, space: float) -> bool:
    """A vertical run of ink of :data:`STEM_SPACES` beside or through the head at (x, y), up or down."""
    c0, c1 = max(int(x - 0.9 * space), 0), int(x + 0.9 * space) + 1
    reach = int(STEM_SPACES * space)
    up = clean[max(int(y) - reach, 0) : int(y), c0:c1]
    down = clean[int(y) + 1 : int(y) + 1 + reach, c0:c1]
    return any(part.shape[0] >= reach and bool((part.mean(axis=0) >= 0.9).any()) for part in (up, down))


def _row_run(clean: np.ndarray, x: float, y: float) -> int:
    """Length (pixels) of the horizontal ink run of ``clean`` through (``x``, ``y``)."""
    row = clean[int(y)]
    i = int(x)
    if not row[i]:
        return 0
    left = np.flatnonzero(~row[:i])
    right = np.flatnonzero(~row[i:])
    return (i + (int(right[0]) if right.size else len(row) - i)) - (int(left[-1]) + 1 if left.size else 0)


def _has_ledgers(ink: np.ndarray, staff: Staff, x: float, position: int, space: float) -> bool:
    """Ledger lines between ``staff`` and a head at ``position`` outside it (each one at least a head wide)."""
    if -2 < position < 10:
        return True
    c0, c1 = int(x - 0.6 * space), int(x + 0.6 * space) + 1
    ledgers = range(-2, position - 1, -2) if position <= -2 else range(10, position + 1, 2)
    for p in ledgers:
        y = staff.bottom - p * (staff.bottom - staff.top) / 8.0
        rows = ink[max(int(round(y - 0.2 * space)), 0) : int(round(y + 0.2 * space)) + 1, max(c0, 0) : c1]
        if rows.size == 0 or rows.all(axis=0).mean() < 0.7 and rows.any(axis=0).mean() < 0.9:
            return False
    return True


def key_signature(clean: np.ndarray, staff: Staff, *, space: float) -> int:
    """Sharps (> 0) or flats (< 0) of the key signature after the clef at the start of ``staff``.

    Components of the line-free ink meeting the staff, left to right from its start: the first one wider
    than 1.6 staff spaces is the clef (pieces of it, e.g. its tail cut off by the line removal, are passed
    over); the accidentals follow, the first at most :data:`FIRST_KEY_GAP` spaces right of the clef, each
    1.8-4.8 spaces high and 0.4-1.4 wide (``n`` touching ones: up to ``4 + 0.8 n`` high and ``1.4 n`` wide)
    with less than 1.6 spaces between them and none stacked over the next (time-signature digits). A flat
    has most of its ink in its lower half (the bowl; its upper half is one thin stroke), a sharp about as
    much above as below and is at least 2.4 spaces high (a common-time C or a digit is not); a glyph from
    the top line to the bottom line is a time signature and ends the key signature.
    """
    from scipy import ndimage

    y0, y1 = max(int(staff.top - 2 * space), 0), int(staff.bottom + 2 * space)
    x0, x1 = staff.x0, min(staff.x0 + int(KEY_ZONE * space), clean.shape[1])
    labels, n = ndimage.label(clean[y0:y1, x0:x1])
    boxes = sorted((sl for sl in ndimage.find_objects(labels) if sl is not None), key=lambda sl: sl[1].start)
    boxes = [sl for sl in boxes if (sl[0].stop - sl[0].start) > 0.6 * space]  # dots and specks
    clef = next((i for i, sl in enumerate(boxes) if sl[1].stop - sl[1].start > 1.6 * space), None)
    if clef is None:
        return 0
    kinds, last, gap = [], boxes[clef][1].stop, FIRST_KEY_GAP
    for i, sl in enumerate(boxes[clef + 1 :], start=clef + 1):
        if sl[1].start < boxes[clef][1].stop:
            continue  # a piece of the clef (its tail below the staff, cut off by the line removal)
        h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        n = max(int(round(w / space)), 1)  # touching sharps or flats form one component
        if not (1.8 * space <= h <= (4.0 + 0.8 * n) * space and 0.4 * space <= w <= 1.4 * n * space) or n > 3:
            break
        if sl[1].start - last > gap * space or (i + 1 < len(boxes) and boxes[i + 1][1].start < sl[1].stop - w // 2):
            break  # too far, or stacked over the next glyph (the digits of a time signature)
        gap = 1.6
        top, bottom = y0 + sl[0].start, y0 + sl[0].stop - 1
        if abs(top - staff.top) < 0.4 * space and abs(bottom - staff.bottom) < 0.4 * space:
            break  # exactly the staff's height: a time signature
        glyph = labels[sl] > 0
        upper, lower = glyph[: h // 2].sum(), glyph[h // 2 :].sum()
        if lower > 1.6 * upper:
            kinds.extend([-1] * n)
        elif h >= 2.4 * space and upper < 1.6 * lower:
            kinds.extend([1] * n)
        else:  # neither (a common-time C, a digit)
            break
        last = sl[1].stop
    if not kinds:
        return 0
    sign = 1 if sum(kinds) > 0 else -1
    return sign * min(len(kinds), 7)


def page_key(keys: list[int]) -> int:
    """One key signature for a page: the most frequent of its staves' keys; a tie goes to the key with more
    accidentals (an accidental of a key signature is missed more often than one is made up)."""
    if not keys:
        return 0
    counts = np.bincount(np.asarray(keys) + 7, minlength=15)
    best = np.flatnonzero(counts == counts.max()) - 7
    return int(best[np.argmax(np.abs(best))])


def read_system(ink: np.ndarray, clean: np.ndarray, holes: np.ndarray, system: System, heads: np.ndarray, *,
                space: float, glyphs: Glyphs | None = None) -> SystemReading:  # fmt: skip
    """The heads of ``heads`` (page x, y) that belong to ``system``, with staff positions and clefs.

    A head is kept when it lies on or near a staff of the system past its clef, has the ledger lines its
    position needs, and has a stem or is hollow (a whole note). With ``glyphs`` (of ``clean``), the
    accidentals left of the heads (:func:`accidental_at`) and the bar lines of each staff are read too.
    """
    staves = system.staves
    clefs = tuple(staff_clef(clean, s, space=space) for s in staves)
    mids = np.asarray([s.lines[2] for s in staves])
    out = []
    for x, y in heads:
        k = int(np.argmin(np.abs(mids - y)))
        staff = staves[k]
        if abs(y - mids[k]) > 5.5 * space or not (staff.x0 + CLEF_ZONE * space <= x <= staff.x1):
            continue
        half = (staff.bottom - staff.top) / 8.0  # the staff's own half space (the page's is rounded)
        position = int(round((staff.bottom - y) / half))
        if not _has_ledgers(ink, staff, x, position, space):
            continue
        if not (_has_stem(clean, x, y, space) or holes[int(y), int(x)] and _row_run(clean, x, y) >= 1.3 * space):
            continue  # neither a stem nor a whole note (as wide as 1.3 spaces: a filled sharp is narrower)
        if glyphs is not None and _inside_accidental(glyphs, x, y, space):
            continue
        accidental = (
            ""
            if glyphs is None
            else accidental_at(glyphs, x, y, space=space) or touching_accidental(glyphs, x, y, space=space)
        )
        out.append(Head(float(x), float(y), k, position, accidental))
    out = _without_accidental_fill(sorted(out, key=lambda h: h.x), space=space)
    bars = ()
    if glyphs is not None:
        bars = tuple(bar_lines(clean, s, np.asarray([h.x for h in out if h.staff == k]), space=space)
                     for k, s in enumerate(staves))  # fmt: skip
    x0, _, x1, _ = system.box
    return SystemReading(tuple(out), clefs, int(x0), int(x1), bars=bars)


def _without_accidental_fill(heads: list[Head], *, space: float) -> list[Head]:
    """``heads`` (in x order) without those read on the filled inside of an accidental touching its head: a head
    with no accidental of the same staff and position as a head with one, less than 1.6 staff spaces left of
    it (the erosion takes a touching flat's filled bowl, or a natural's filled middle, for part of the head)."""
    marked = [(h.staff, h.position, h.x) for h in heads if h.accidental]
    return [h for h in heads if h.accidental or not any(
        s == h.staff and p == h.position and 0 < x - h.x < 1.6 * space for s, p, x in marked)]  # fmt: skip


def read_page(page: np.ndarray, layout: PageLayout) -> list[SystemReading]:
    """Read every detected system of a grey page (``(height, width)``, 0-255 or 0-1)."""
    ink = binarise(page)
    space = layout.staff_space
    systems = [System(tuple(refine_staff(ink, s, thickness=layout.line_thickness) for s in system.staves))
               for system in layout.systems]  # fmt: skip
    staves = [s for system in systems for s in system.staves]
    holes = small_holes(ink, space=space)
    clean = remove_staff_lines(ink | holes, staves, thickness=layout.line_thickness)
    heads = head_centres(clean, space=space)
    keys = [key_signature(clean, s, space=space) for s in staves]
    key = page_key(keys)
    marks = glyphs(clean, holes)
    readings = [read_system(ink, clean, holes, system, heads, space=space, glyphs=marks) for system in systems]
    return [replace(r, key=key) for r in readings]


def head_pitch_class(position: int, clef: str, key: int = 0) -> int:
    """Pitch class (0 = C) of staff ``position`` (half spaces above the bottom line) under ``clef`` and a key
    signature of ``key`` sharps (> 0) or flats (< 0)."""
    if clef not in BOTTOM_STEP:
        raise ParameterError(f"clef={clef!r}: expected one of {sorted(BOTTOM_STEP)}")
    if not -7 <= key <= 7:
        raise ParameterError(f"key={key} must lie in -7..7")
    pc = NATURAL_PC[(BOTTOM_STEP[clef] + position) % 7]
    if pc in SHARPS[: max(key, 0)]:
        return (pc + 1) % 12
    if pc in FLATS[: max(-key, 0)]:
        return (pc - 1) % 12
    return pc


def pitch_class_vector(pc: int) -> np.ndarray:
    """12-d vector of a natural pitch class, tolerant to an unread sharp or flat."""
    v = np.zeros(12, np.float32)
    v[pc] = NATURAL_WEIGHT
    v[(pc + 1) % 12] += NEIGHBOUR_WEIGHT
    v[(pc - 1) % 12] += NEIGHBOUR_WEIGHT
    return v


def head_midi(position: int, clef: str, pc: int) -> int:
    """MIDI pitch of a head at staff ``position`` under ``clef`` whose pitch class was read as ``pc`` (the
    natural note of the position, moved by at most a semitone to ``pc``)."""
    step = 7 * BOTTOM_OCTAVE[clef] + BOTTOM_STEP[clef] + position
    natural = NATURAL_PC[step % 7]
    return 12 * (step // 7 + 1) + natural + (pc - natural + 6) % 12 - 6


def bass_gain(midi) -> np.ndarray:
    """Weight of MIDI pitches in the bass band :data:`BASS_BAND` (1 below it, 0 above, linear between)."""
    lo, hi = BASS_BAND
    return np.clip((hi - np.asarray(midi, np.float64)) / (hi - lo), 0.0, 1.0)


def register_features(reading: SystemReading, *, space: float, **options) -> np.ndarray:
    """Full-range and bass-band pitch-class samples of a system, ``(24, n_samples)`` float32.

    Rows 0-11: :func:`system_features` (``options`` are its keywords) with every sample scaled to unit
    length; rows 12-23: the same of the heads in the bass band only (:func:`bass_gain` of :func:`head_midi`;
    the clef and staff position give the octave), scaled to :data:`BASS_WEIGHT`. Silent samples are zero.
    Against the query's chroma and its bass-band chroma this tells apart music with the same pitch classes
    in other voicings.
    """
    heads, pcs = reading.heads, pitch_classes(reading)
    gains = bass_gain([head_midi(h.position, reading.clefs[h.staff], pc) for h, pc in zip(heads, pcs, strict=True)])
    full = system_features(reading, space=space, **options)
    bass = system_features(reading, space=space, head_gains=gains, **options)
    return np.concatenate([_unit(full), BASS_WEIGHT * _unit(bass)]).astype(np.float32)


def _unit(X: np.ndarray) -> np.ndarray:
    """Columns of ``X`` scaled to unit length (zero columns stay zero)."""
    return X / np.maximum(np.linalg.norm(X, axis=0, keepdims=True), 1e-9)


def system_features(
    reading: SystemReading,
    *,
    space: float,
    decay_spaces: float = 2.0,
    step_spaces: float = 0.5,
    hold_spaces: float | None = None,
    head_gains=None,
) -> np.ndarray:
    """Pitch-class features of a system sampled every ``step_spaces`` staff spaces along x.

    Each head adds its pitch-class vector from its column on, decaying by ``exp(-d / decay_spaces)`` with
    the distance ``d`` in staff spaces; a new chord column (heads within :data:`CHORD_GAP`) damps what came
    before by half. With ``hold_spaces``, each staff also holds its last chord until its next one, decaying
    by ``exp(-d / hold_spaces)`` (sustained notes: a held bass under a moving melody still sounds).
    ``head_gains`` (one per head, default 1) scales each head's vector.

    Returns
    -------
    np.ndarray, shape (12, n_samples), float32
        ``n_samples = ceil((x1 - x0) / (step_spaces * space))`` (at least 1); silent samples are zero.
    """
    if space <= 0 or decay_spaces <= 0 or step_spaces <= 0 or (hold_spaces is not None and hold_spaces <= 0):
        raise ParameterError(
            f"space={space}, decay_spaces={decay_spaces}, step_spaces={step_spaces}, hold_spaces={hold_spaces}: "
            "must be > 0"
        )
    step = step_spaces * space
    n = max(int(np.ceil((reading.x1 - reading.x0) / step)), 1)
    onsets = np.zeros((max(len(reading.clefs), 1), 12, n), np.float32)
    gains = np.ones(len(reading.heads)) if head_gains is None else np.asarray(head_gains, np.float64)
    for h, pc, g in zip(reading.heads, pitch_classes(reading), gains, strict=True):
        i = min(max(int((h.x - reading.x0) / step), 0), n - 1)
        onsets[h.staff, :, i] += np.float32(g) * pitch_class_vector(pc)
    out = _decayed(onsets.sum(axis=0), keep=float(np.exp(-step_spaces / decay_spaces)))
    if hold_spaces is not None:
        keep = float(np.exp(-step_spaces / hold_spaces))
        for staff_onsets in onsets:
            out += _held(staff_onsets, keep=keep, gap=max(int(CHORD_GAP / step_spaces) - 1, 1))
    return out


def music_span(reading: SystemReading, *, space: float, step_spaces: float = 0.5, tail_spaces: float = 4.0) -> slice:
    """The samples of :func:`system_features` from its first head to ``tail_spaces`` past its last head.

    The clef, key and time signature at a system's start and the space after its last note sound nothing:
    left in, a query crossing a system break would have to pass over them. A system without heads keeps all.
    """
    step = step_spaces * space
    n = max(int(np.ceil((reading.x1 - reading.x0) / step)), 1)
    if not reading.heads:
        return slice(0, n)
    first = min(max(int((reading.heads[0].x - reading.x0) / step), 0), n - 1)
    last = int((reading.heads[-1].x - reading.x0) / step) + 1 + int(round(tail_spaces / step_spaces))
    return slice(first, min(max(last, first + 1), n))


def _decayed(onsets: np.ndarray, *, keep: float) -> np.ndarray:
    """Onset vectors ``(12, n)`` summed forward, multiplied by ``keep`` a sample and halved at each onset."""
    out = np.zeros_like(onsets)
    state = np.zeros(12, np.float32)
    for i in range(onsets.shape[1]):
        if onsets[:, i].any():
            state = 0.5 * state + onsets[:, i]
        out[:, i] = state
        state = state * keep
    return out


def _held(onsets: np.ndarray, *, keep: float, gap: int) -> np.ndarray:
    """The last chord of one staff's onset vectors ``(12, n)`` held until the next (onsets within ``gap``
    samples form one chord), multiplied by ``keep`` a sample."""
    out = np.zeros_like(onsets)
    state = np.zeros(12, np.float32)
    last = -gap - 1
    for i in range(onsets.shape[1]):
        if onsets[:, i].any():
            state = state + onsets[:, i] if i - last <= gap else onsets[:, i].copy()
            last = i
        out[:, i] = state
        state = state * keep
    return out


# -- accidentals inside a bar ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Glyphs:
    """Connected components of line-free ink: ``labels`` (page shape) and ``boxes`` ``(n, 4)`` rows y0, y1,
    x0, x1 (stop exclusive) of label ``k + 1``."""

    labels: np.ndarray
    boxes: np.ndarray
    #: the filled holes of the mask (page shape; :func:`small_holes`), or None: strokes are counted without them
    holes: np.ndarray | None = None


def glyphs(clean: np.ndarray, holes: np.ndarray | None = None) -> Glyphs:
    """The connected components (8-neighbourhood) of a line-free ink mask whose ``holes`` were filled."""
    from scipy import ndimage

    labels, _ = ndimage.label(clean, structure=np.ones((3, 3), bool))
    rows = [(sl[0].start, sl[0].stop, sl[1].start, sl[1].stop) if sl else (0, 0, 0, 0)
            for sl in ndimage.find_objects(labels)]  # fmt: skip
    return Glyphs(labels, np.asarray(rows, np.int64).reshape(-1, 4), holes)


def accidental_at(g: Glyphs, x: float, y: float, *, space: float) -> str:
    """The accidental just left of a head at page (``x``, ``y``): ``"flat"``, ``"natural"``, ``"other"`` (a
    sharp) or ``""``.

    A separate glyph of 1.8-4 staff spaces high and 0.4-1.5 wide ending 0.3-2.2 spaces left of the head and
    spanning its row: a flat has one vertical stroke (1.3 spaces or longer) and most of its ink in its lower
    half, around the head; a sharp or a natural has two such strokes and is centred on the head, a natural's
    right stroke lower than its left (:func:`two_strokes`). Rests, dots, slurs and the stems of other notes
    have neither shape; an accidental touching its head is left to :func:`touching_accidental`.
    """
    y0, y1, x0, x1 = g.boxes.T
    h, w = y1 - y0, x1 - x0
    ok = (h >= 1.8 * space) & (h <= 4.0 * space) & (w >= 0.4 * space) & (w <= 1.5 * space)
    ok &= (x1 <= x - 0.3 * space) & (x1 >= x - 2.2 * space) & (y0 <= y) & (y1 > y)
    for k in sorted(np.flatnonzero(ok), key=lambda i: -x1[i]):
        glyph = g.labels[y0[k] : y1[k], x0[k] : x1[k]] == k + 1
        # strokes of the ink itself: the filled middle of a sharp or natural would join its two strokes
        top, bottom = _stroke_runs(glyph if g.holes is None else glyph & ~g.holes[y0[k] : y1[k], x0[k] : x1[k]])
        tall = bottom - top >= 1.3 * space
        n = len(_groups(tall))
        upper, lower = glyph[: h[k] // 2].sum(), glyph[h[k] // 2 :].sum()
        if n == 1 and lower > 1.4 * upper and y - y0[k] > 0.5 * h[k]:
            return "flat"
        if n == 2 and abs((y0[k] + y1[k]) / 2.0 - y) < 0.6 * space:
            return two_strokes(top, bottom, tall, space=space)
    return ""


def _groups(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of adjacent true columns of ``mask``: (first, stop) pairs."""
    edges = np.diff(np.r_[False, mask, False].astype(np.int8))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def two_strokes(top: np.ndarray, bottom: np.ndarray, tall: np.ndarray, *, space: float) -> str:
    """``"natural"`` when the right one of two strokes (columns ``tall``; their runs from ``top`` to ``bottom``)
    starts and ends at least half a staff space lower than the left one, else ``"other"`` (a sharp)."""
    (a0, a1), (b0, b1) = _groups(tall)[:2]
    lower_top = top[b0:b1].min() - top[a0:a1].min()
    lower_bottom = bottom[b0:b1].max() - bottom[a0:a1].max()
    return "natural" if lower_top >= 0.5 * space and lower_bottom >= 0.5 * space else "other"


def _stroke_runs(part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top and bottom row (exclusive) of the longest vertical ink run of each column of ``part``."""
    top = np.zeros(part.shape[1], np.int64)
    bottom = np.zeros(part.shape[1], np.int64)
    for j in range(part.shape[1]):
        col = np.r_[False, part[:, j], False].astype(np.int8)
        starts, stops = np.flatnonzero(np.diff(col) == 1), np.flatnonzero(np.diff(col) == -1)
        if starts.size:
            i = int(np.argmax(stops - starts))
            top[j], bottom[j] = starts[i], stops[i]
    return top, bottom


def touching_accidental(g: Glyphs, x: float, y: float, *, space: float) -> str:
    """An accidental touching the head at page (``x``, ``y``) (one glyph with it): ``"flat"``, ``"natural"``,
    ``"other"`` (a sharp) or ``""``.

    Left of the head (0.55-2.2 staff spaces), the head's own glyph without its filled holes is searched for
    vertical strokes 1.3-3.3 spaces long that reach above the head's middle (a stem going down from the head
    does not; a stem up to a beam is longer): two thin strokes (at most 0.4 spaces wide, 0.2-0.8 apart)
    around the head's row make a sharp or a natural (:func:`two_strokes`); otherwise a flat is read from one
    stroke and its bowl (:func:`_touching_flat`).
    """
    k = int(g.labels[int(y), int(x)])
    c0, c1 = max(int(x - 2.2 * space), 0), max(int(x - 0.55 * space), 0)
    r0, r1 = max(int(y - 2.6 * space), 0), int(y + 2.6 * space) + 1
    if k == 0 or c1 <= c0:
        return ""
    part = g.labels[r0:r1, c0:c1] == k
    if g.holes is not None:
        part &= ~g.holes[r0:r1, c0:c1]
    top, bottom = _stroke_runs(part)
    top, bottom = top + r0, bottom + r0
    length = bottom - top
    ok = (length >= 1.3 * space) & (length <= 3.3 * space) & (top <= y - 0.3 * space) & (bottom >= y - 0.5 * space)
    groups = _groups(ok)
    if len(groups) == 1 and g.holes is not None:
        return _touching_flat(g.holes[r0:r1, c0:c1], top - r0, bottom - r0, ok, x=x - c0, y=y - r0, space=space)
    if len(groups) != 2 or abs((top[ok].mean() + bottom[ok].mean()) / 2.0 - y) >= 0.7 * space:
        return ""
    (a0, a1), (b0, b1) = groups
    if max(a1 - a0, b1 - b0) > 0.4 * space or not 0.2 * space <= b0 - a1 <= 0.8 * space:
        return ""  # not two thin strokes close together
    return two_strokes(top, bottom, ok, space=space)


def _touching_flat(holes: np.ndarray, top: np.ndarray, bottom: np.ndarray, ok: np.ndarray, *, x: float, y: float,
                   space: float) -> str:  # fmt: skip
    """``"flat"`` when the one stroke (columns ``ok`` of a window left of a head at (``x``, ``y``), rows from
    ``top`` to ``bottom``; all in window pixels) is a flat's: it rises 1.2-2.2 staff spaces above the head's
    middle (a stem up to another head or a beam rises further), ends 0.3-0.9 below it (a stem going down
    ends further), stands at least 1 space left of the head's middle (a chord's stem beside the head is
    nearer), and its bowl follows it: filled ``holes`` (the bowl's inside and the white between the flat and
    its head) of at least 0.2 square spaces right of the stroke, from 0.9 above to 0.5 below the head's
    middle; else ``""``. Chosen on verovio pages (docs/sheets.md)."""
    ((a0, a1),) = _groups(ok)
    rise, fall = y - int(top[a0:a1].min()), int(bottom[a0:a1].max()) - y
    if not (1.2 * space <= rise <= 2.2 * space and 0.3 * space <= fall <= 0.9 * space and x - a1 >= space):
        return ""
    bowl = holes[max(int(y - 0.9 * space), 0) : int(y + 0.5 * space) + 1, a1:]
    return "flat" if bowl.sum() >= 0.2 * space * space else ""


def _inside_accidental(g: Glyphs, x: float, y: float, space: float) -> bool:
    """Whether (``x``, ``y``) lies on a glyph shaped like an accidental or a rest (at most 1.1 staff spaces
    wide, 1.6-3.4 high) rather than a note (a head with its stem is wider or taller): the filled holes of
    sharps, naturals and flats look like heads to the erosion."""
    k = int(g.labels[int(y), int(x)])
    if k == 0:
        return False
    y0, y1, x0, x1 = g.boxes[k - 1]
    return x1 - x0 <= 1.1 * space and 1.6 * space <= y1 - y0 <= 3.4 * space


def bar_lines(clean: np.ndarray, staff: Staff, head_x: np.ndarray, *, space: float) -> tuple[float, ...]:
    """Page x of the bar lines of ``staff``: columns inked from its top line to its bottom line, at most
    1.2 staff spaces wide, past the clef, with no head of the staff within 1.2 spaces (a stem)."""
    r0, r1 = int(round(staff.top)), int(round(staff.bottom))
    x0 = staff.x0 + int(CLEF_ZONE * space)
    full = np.r_[False, clean[r0 : r1 + 1, x0 : staff.x1].mean(axis=0) >= 0.95, False].astype(np.int8)
    starts, stops = np.flatnonzero(np.diff(full) == 1), np.flatnonzero(np.diff(full) == -1)
    out = []
    for a, b in zip(starts, stops, strict=True):
        centre = x0 + (a + b - 1) / 2.0
        if b - a <= 1.2 * space and not np.any(np.abs(head_x - centre) < 1.2 * space):
            out.append(float(centre))
    return tuple(out)


def altered_pitch_class(natural: int, key_pc: int, accidental: str) -> int:
    """Pitch class of a head with an accidental: a flat lowers its natural class, a natural sign gives it; a
    sharp (``"other"``: a two-stroke sign not told to be a natural) cancels the key signature's alteration
    of the note, or else raises it."""
    if accidental == "flat":
        return (natural - 1) % 12
    if accidental == "natural":
        return natural
    if accidental == "other":
        return natural if key_pc != natural else (natural + 1) % 12
    return key_pc


def pitch_classes(reading: SystemReading) -> list[int]:
    """Pitch class of every head of ``reading`` (same order): clef, key signature, and the accidentals read
    in the bar so far (an accidental holds for its staff position until the next bar line of the staff)."""
    out = [0] * len(reading.heads)
    bars = reading.bars or ((),) * len(reading.clefs)
    altered: dict[tuple[int, int], tuple[int, int]] = {}  # (staff, position) -> (bar number, pitch class)
    for i, h in enumerate(reading.heads):  # heads are in x order
        bar = int(np.searchsorted(bars[h.staff], h.x))
        key_pc = head_pitch_class(h.position, reading.clefs[h.staff], reading.key)
        if h.accidental:
            natural = NATURAL_PC[(BOTTOM_STEP[reading.clefs[h.staff]] + h.position) % 7]
            pc = altered_pitch_class(natural, key_pc, h.accidental)
            altered[(h.staff, h.position)] = (bar, pc)
        else:
            held = altered.get((h.staff, h.position))
            pc = held[1] if held is not None and held[0] == bar else key_pc
        out[i] = pc
    return out
