"""Staff and system detection on page images that come without any geometry, and normalised system strips.

Method (classical optical music recognition, no learning):

1. **Binarise** with Otsu's threshold on the grey levels (ink is dark).
2. **Staff space and line thickness** from vertical run lengths: over all columns, the most frequent
   length of ink runs is the staff-line thickness and the most frequent *sum* of an ink run and the white
   run after it is the staff-line distance ("staff space"), as in Fujinaga's and Cardoso's work.
3. **Staff lines**: a morphological opening with a horizontal line of ``4`` staff spaces removes note
   heads, stems, text and slanted beams; the row projection of what remains peaks at staff lines. Runs of
   rows covering at least 8 staff spaces and 10 % of the page width are merged into lines (a thin
   anti-aliased line split over two rows counts by the summed darkness of the pair).
4. **Staves**: five lines, each one staff space (within a quarter space and a pixel) below the last;
   lines between them (a horizontal beam) are passed over. A staff's horizontal extent is where its middle
   line survives the opening.
5. **Systems**: two neighbouring staves belong to one system when ink joins them at their common left
   edge (the system-start bar line or the brace that every engraver draws); on pages where no staff
   pair is joined that way and the gaps between staves differ by more than two staff spaces, staves are
   split into systems at gaps above the midpoint of the smallest and the largest gap.

A *system strip* is the region of a system rescaled so that one staff space spans ``px_per_space``
pixels and cut to ``height_spaces`` staff spaces around the system's vertical centre: the input of the
sheet branch of the audio-sheet model (``mirsearch.models.sheets``), the same for any engraver and
resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirsearch.errors import InputError, ParameterError

#: strip geometry shared by training and search
PX_PER_SPACE = 4.0
HEIGHT_SPACES = 24.0


@dataclass(frozen=True)
class Staff:
    """One five-line staff: line rows (pixels, top to bottom) and horizontal extent."""

    lines: tuple[float, float, float, float, float]
    x0: int
    x1: int

    @property
    def top(self) -> float:
        return self.lines[0]

    @property
    def bottom(self) -> float:
        return self.lines[4]


@dataclass(frozen=True)
class System:
    """A system: its staves and its box ``(x0, y0, x1, y1)`` from the top line to the bottom line."""

    staves: tuple[Staff, ...]

    @property
    def box(self) -> tuple[int, int, int, int]:
        x0 = min(s.x0 for s in self.staves)
        x1 = max(s.x1 for s in self.staves)
        return (x0, int(round(self.staves[0].top)), x1, int(round(self.staves[-1].bottom)))


@dataclass(frozen=True)
class PageLayout:
    """Detected layout of a page: staff space and line thickness (pixels), systems top to bottom."""

    staff_space: float
    line_thickness: float
    systems: tuple[System, ...]


def _as_grey(page: np.ndarray) -> np.ndarray:
    page = np.asarray(page)
    if page.ndim == 3:
        page = page[..., :3].mean(axis=2)
    if page.ndim != 2 or page.shape[0] < 32 or page.shape[1] < 32:
        raise InputError(f"page shape {page.shape}: expected a grey or colour image of at least 32 x 32")
    page = page.astype(np.float32)
    if page.max() > 1.5:
        page = page / 255.0
    return page


def binarise(page: np.ndarray) -> np.ndarray:
    """Ink mask (True = dark) of a grey page (values 0-1 or 0-255) with Otsu's threshold."""
    grey = _as_grey(page)
    hist, edges = np.histogram(grey, bins=256, range=(0.0, 1.0))
    p = hist / max(hist.sum(), 1)
    omega = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    between = (mu[-1] * omega - mu) ** 2 / np.maximum(omega * (1 - omega), 1e-12)
    threshold = edges[int(np.argmax(between)) + 1]
    return grey < min(threshold, 0.75)


def run_lengths(ink: np.ndarray) -> tuple[float, float]:
    """(line thickness, staff space) in pixels from the vertical run lengths of an ink mask."""
    padded = np.zeros((ink.shape[0] + 2, ink.shape[1]), dtype=np.int8)
    padded[1:-1] = ink
    d = np.diff(padded, axis=0)
    cols_start, rows_start = np.nonzero(d.T == 1)
    cols_end, rows_end = np.nonzero(d.T == -1)
    if rows_start.size < 10:
        raise InputError("page: too little ink to find staves")
    black = rows_end - rows_start
    # white run after each ink run in the same column: next start minus this end
    same_col = cols_start[1:] == cols_start[:-1]
    pair = (black[:-1] + (rows_start[1:] - rows_end[:-1]))[same_col]
    thickness = int(np.bincount(black).argmax())
    pair = pair[(pair > 2) & (pair < ink.shape[0] // 8)]
    if pair.size == 0:
        raise InputError("page: no repeated horizontal lines found")
    space = int(np.bincount(pair).argmax())
    return float(max(thickness, 1)), float(space)


def _line_rows(grey: np.ndarray, ink: np.ndarray, space: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres of staff-line rows and the opened mask that keeps long horizontal runs only.

    A thin anti-aliased line may fall half on each of two rows with neither dark enough for the ink
    threshold, so a row pair counts as ink for line finding when its summed darkness reaches it.
    """
    from scipy import ndimage

    dark = 1.0 - grey
    level = float(dark[ink].min()) if ink.any() else 0.5
    pair = np.zeros_like(ink)
    pair[:-1] = (dark[:-1] + dark[1:]) >= level
    lines = ink | pair
    length = max(int(round(12 * space)), 5)
    opened = ndimage.binary_opening(lines, structure=np.ones((1, length), dtype=bool))
    profile = opened.sum(axis=1).astype(np.float64)
    strong = profile >= max(12 * space, 0.1 * ink.shape[1])
    labels, n = ndimage.label(strong)
    if n == 0:
        return np.zeros(0), opened
    centres = ndimage.center_of_mass(profile, labels, np.arange(1, n + 1))
    return np.asarray([c[0] for c in centres]), opened


def find_staves(grey: np.ndarray, ink: np.ndarray, *, space: float) -> list[Staff]:
    """Staves: five line rows, each within a quarter staff space (plus a pixel) of one space below the last."""
    rows, opened = _line_rows(grey, ink, space)
    staves, used = [], np.zeros(rows.size, dtype=bool)
    tol = 0.25 * space + 1
    for i in range(rows.size):
        if used[i]:
            continue
        chosen = [i]
        for _ in range(4):
            near = np.flatnonzero(~used & (np.abs(rows - rows[chosen[-1]] - space) <= tol))
            if near.size == 0:
                break
            chosen.append(int(near[np.argmin(np.abs(rows[near] - rows[chosen[-1]] - space))]))
        if len(chosen) < 5:
            continue
        five = rows[chosen]
        cols = np.flatnonzero(opened[int(round(five[2]))] | opened[min(int(round(five[2])) + 1, opened.shape[0] - 1)])
        if cols.size:
            used[chosen] = True
            staves.append(Staff(tuple(float(v) for v in five), int(cols.min()), int(cols.max()) + 1))
    return staves


def _joined_at_left(ink: np.ndarray, upper: Staff, lower: Staff, space: float) -> bool:
    """True if a vertical ink run joins ``upper`` and ``lower`` near their common left edge."""
    x0 = min(upper.x0, lower.x0)
    lo, hi = int(round(upper.bottom)), int(round(lower.top)) + 1
    window = ink[lo:hi, max(x0 - int(2 * space), 0) : x0 + int(space) + 1]
    if window.size == 0:
        return False
    return bool(window.mean(axis=0).max() >= 0.9)


def group_systems(ink: np.ndarray, staves: list[Staff], *, space: float) -> list[System]:
    """Group staves (top to bottom) into systems (see the module docstring)."""
    if not staves:
        return []
    joined = [_joined_at_left(ink, a, b, space) for a, b in zip(staves[:-1], staves[1:], strict=False)]
    if not any(joined) and len(staves) > 2:
        gaps = np.asarray([b.top - a.bottom for a, b in zip(staves[:-1], staves[1:], strict=False)])
        middle = (gaps.min() + gaps.max()) / 2
        joined = list(gaps < middle) if np.ptp(gaps) > 2 * space else [False] * len(gaps)
    systems, current = [], [staves[0]]
    for link, staff in zip(joined, staves[1:], strict=False):
        if link:
            current.append(staff)
        else:
            systems.append(System(tuple(current)))
            current = [staff]
    systems.append(System(tuple(current)))
    return systems


def detect_layout(page: np.ndarray) -> PageLayout:
    """Staff space, line thickness and systems of a page image (grey or colour array).

    Parameters
    ----------
    page : np.ndarray, shape (height, width) or (height, width, channels)
        Grey levels 0-1 or 0-255, dark ink on a light background.
    """
    grey = _as_grey(page)
    ink = binarise(grey)
    thickness, space = run_lengths(ink)
    staves = find_staves(grey, ink, space=space)
    return PageLayout(space, thickness, tuple(group_systems(ink, staves, space=space)))


def system_strip(
    page: np.ndarray,
    system: System,
    *,
    staff_space: float,
    px_per_space: float = PX_PER_SPACE,
    height_spaces: float = HEIGHT_SPACES,
) -> tuple[np.ndarray, float]:
    """A system rescaled to ``px_per_space`` pixels per staff space, ``height_spaces`` spaces high.

    Returns
    -------
    strip : np.ndarray, shape (round(height_spaces * px_per_space), n_columns), float32
        Ink darkness 0 (white) to 1 (black); the columns cover the system's box ``x0 .. x1``.
    scale : float
        Strip pixels per page pixel; page column ``x`` is strip column ``(x - x0) * scale``.
    """
    from PIL import Image

    if staff_space <= 0 or px_per_space <= 0 or height_spaces <= 0:
        raise ParameterError(f"staff_space={staff_space}, px_per_space={px_per_space}: must be > 0")
    grey = _as_grey(page)
    x0, y0, x1, y1 = system.box
    scale = px_per_space / staff_space
    centre = (y0 + y1) / 2.0
    half = height_spaces * staff_space / 2.0
    top, bottom = int(np.floor(centre - half)), int(np.ceil(centre + half))
    region = np.ones((bottom - top, x1 - x0), dtype=np.float32)
    src_top, src_bottom = max(top, 0), min(bottom, grey.shape[0])
    region[src_top - top : src_bottom - top] = grey[src_top:src_bottom, x0:x1]
    height = int(round(height_spaces * px_per_space))
    width = max(int(round((x1 - x0) * scale)), 1)
    img = Image.fromarray(region).resize((width, height), Image.Resampling.BILINEAR)
    return 1.0 - np.asarray(img, dtype=np.float32), scale
