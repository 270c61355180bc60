"""The sheet-music store of a collection: page images, their detected systems and what a reader made of them.

``mirsearch index`` hands it the paths it was given; every ``.png`` / ``.jpg`` / ``.pdf`` below them is a
*sheet item* (a PDF is rendered page by page at :data:`PDF_DPI` with pypdfium2). For every page the staff
detector (``mirsearch.features.staff``) finds the systems, and a *reader* turns each system into vectors
along it:

- :class:`NotationReader` (the default): the optical reading of ``mirsearch.features.notation``, one
  24-dimensional sample (full-range and bass-band pitch classes) every half staff space along each system;
  all samples in reading order go to ``features.npy`` for the subsequence DTW of ``mirsearch.search.sheets``.
- :class:`LearnedReader`: a window of the audio-sheet model's snippet width slides along each system strip
  every :data:`STRIDE` strip pixels (2 staff spaces) and the sheet branch of the model bundle embeds it; the
  vectors go into an HNSW index (``mirsearch.index.ann``).

``windows.npy`` says, per vector, which item, page, system and page column it came from.

Layout under ``<collection>/sheets/``::

    items.json      reader id, and per item: path, size, mtime, pages (size, staff space, system boxes)
    windows.npy     (n, 4) float32: item number, page (0-based), system, page x of the sample
    features.npy    (n, 24) float32 pitch-class samples, full range and bass band (notation reader)
    ann/            the HNSW index of the (n, 32) unit vectors (learned reader)

Everything is rebuilt from ``items.json`` order on each update (cheap next to the reading, which is
cached per item in ``vectors/<item>.npy``); a change of reader re-reads every item.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_save_npy, atomic_write_text, directory_lock
from mirsearch.errors import InputError, MirsearchError

logger = logging.getLogger(__name__)

SHEET_EXTENSIONS = (".png", ".jpg", ".jpeg", ".pdf")
PDF_DPI = 150
#: window step along a system strip, in strip pixels (the strip has 4 pixels per staff space)
STRIDE = 8
#: pages larger than this many pixels are refused (a 600 dpi A3 scan is about 70 M)
MAX_PIXELS = 80_000_000
MAX_PDF_PAGES = 500
STORE_DIR = "sheets"


def is_sheet_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in SHEET_EXTENSIONS


def load_pages(path: str | os.PathLike) -> list[np.ndarray]:
    """Grey page images (uint8, ``(height, width)``) of an image file or of every page of a PDF at 150 dpi."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() == ".pdf":
        try:
            import pypdfium2 as pdfium
        except ImportError:
            raise MirsearchError(f"{path.name}: PDF pages need pypdfium2 (pip install pypdfium2)") from None
        try:
            pdf = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as exc:
            raise InputError(f"{path.name}: cannot read PDF ({exc})") from None
        if len(pdf) > MAX_PDF_PAGES:
            raise InputError(f"{path.name}: {len(pdf)} pages, more than {MAX_PDF_PAGES}")
        pages = []
        for page in pdf:
            w, h = page.get_size()
            if w * h * (PDF_DPI / 72) ** 2 > MAX_PIXELS:
                raise InputError(f"{path.name}: page too large")
            pages.append(np.asarray(page.render(scale=PDF_DPI / 72, grayscale=True).to_pil().convert("L")))
        return pages
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(path) as img:
            return [np.asarray(img.convert("L"))]
    except (OSError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path.name}: cannot read image ({type(exc).__name__})") from None


def _page_info(image: np.ndarray) -> dict:
    return {"width": int(image.shape[1]), "height": int(image.shape[0]), "staff_space": 0.0, "systems": []}


def notation_windows(
    image: np.ndarray,
    *,
    step_spaces: float = 0.5,
    decay_spaces: float = 2.0,
    hold_spaces: float | None = None,
    tail_spaces: float = 4.0,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Pitch-class samples of every detected system of a page (``mirsearch.features.notation``), one every
    ``step_spaces`` staff spaces (:func:`~mirsearch.features.notation.register_features`; ``decay_spaces`` and
    ``hold_spaces`` are its options), from a system's first head to ``tail_spaces`` past its last
    (:func:`~mirsearch.features.notation.music_span`).

    Returns
    -------
    vectors : np.ndarray, shape (n, 24), float32
        Samples along each system, systems top to bottom.
    where : np.ndarray, shape (n, 2), float32
        System index and page column of each sample.
    page : dict
        As :func:`page_windows`.
    """
    from mirsearch.features.notation import N_FEATURES, music_span, read_page, register_features
    from mirsearch.features.staff import detect_layout

    info = _page_info(image)
    try:
        layout = detect_layout(image)
    except InputError:
        return np.zeros((0, N_FEATURES), np.float32), np.zeros((0, 2), np.float32), info
    info["staff_space"] = layout.staff_space
    vectors, where = [], []
    for k, (system, reading) in enumerate(zip(layout.systems, read_page(image, layout), strict=True)):
        info["systems"].append(list(system.box))
        f = register_features(reading, space=layout.staff_space, step_spaces=step_spaces, decay_spaces=decay_spaces,
                            hold_spaces=hold_spaces)  # fmt: skip
        span = music_span(reading, space=layout.staff_space, step_spaces=step_spaces, tail_spaces=tail_spaces)
        vectors.append(f[:, span].T)
        x = reading.x0 + (np.arange(span.start, span.stop) + 0.5) * step_spaces * layout.staff_space
        where.append(np.column_stack([np.full(len(x), k), x]))
    if not vectors:
        return np.zeros((0, N_FEATURES), np.float32), np.zeros((0, 2), np.float32), info
    return np.concatenate(vectors).astype(np.float32), np.concatenate(where).astype(np.float32), info


@dataclass(frozen=True)
class NotationReader:
    """Reads pages optically into pitch-class samples (no model; the default)."""

    step_spaces: float = 0.5
    decay_spaces: float = 2.0
    #: sustained notes: each staff's last chord held with this decay (staff spaces; None: not held)
    hold_spaces: float | None = 8.0
    #: samples kept past a system's last head (staff spaces); the clef and key zone before the first is dropped
    tail_spaces: float = 4.0
    dim: int = 24
    ann: bool = False

    @property
    def model_id(self) -> str:
        """Changes with the reading (2: accidentals inside a bar; 3: key signatures; 4: sharps and naturals; 5:
        touching flats, staff positions in each staff's own spacing; 6: a bass-band half) and the sampling
        options."""
        return (f"notation-6-step{self.step_spaces:g}-decay{self.decay_spaces:g}-hold{self.hold_spaces}"
                f"-tail{self.tail_spaces:g}")  # fmt: skip

    def page_windows(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
        return notation_windows(image, step_spaces=self.step_spaces, decay_spaces=self.decay_spaces,
                                hold_spaces=self.hold_spaces, tail_spaces=self.tail_spaces)  # fmt: skip


@dataclass(frozen=True)
class LearnedReader:
    """Embeds snippet windows with the sheet branch of an audio-sheet model bundle."""

    bundle: object
    ann: bool = True

    @property
    def model_id(self) -> str:
        return self.bundle.model_id

    @property
    def dim(self) -> int:
        return self.bundle.config.dim

    def page_windows(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
        return page_windows(image, self.bundle)


def page_windows(image: np.ndarray, bundle, *, stride: int = STRIDE) -> tuple[np.ndarray, np.ndarray, dict]:
    """Embed the snippet windows of every detected system of a page.

    Returns
    -------
    vectors : np.ndarray, shape (n, dim), float32
    where : np.ndarray, shape (n, 2), float32
        System index and page column of each window centre.
    page : dict
        ``width``, ``height``, ``staff_space`` and ``systems`` (boxes ``[x0, y0, x1, y1]`` in page pixels).
    """
    from mirsearch.features.staff import detect_layout, system_strip

    cfg = bundle.config
    info = _page_info(image)
    try:
        layout = detect_layout(image)
    except InputError:
        return np.zeros((0, cfg.dim), np.float32), np.zeros((0, 2), np.float32), info
    info["staff_space"] = layout.staff_space
    snippets, where = [], []
    for k, system in enumerate(layout.systems):
        info["systems"].append(list(system.box))
        strip, scale = system_strip(image, system, staff_space=layout.staff_space, px_per_space=cfg.px_per_space)
        padded = np.pad(strip, ((0, 0), (cfg.snippet_width // 2, cfg.snippet_width // 2)))
        for c in range(0, strip.shape[1], stride):
            snippets.append(padded[:, c : c + cfg.snippet_width])
            where.append((k, system.box[0] + c / scale))
    if not snippets:
        return np.zeros((0, cfg.dim), np.float32), np.zeros((0, 2), np.float32), info
    return bundle.embed_sheet(np.stack(snippets)), np.asarray(where, np.float32), info


@dataclass
class SheetUpdateReport:
    """What an update did."""

    added: int = 0
    unchanged: int = 0
    pages: int = 0
    windows: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"added": self.added, "unchanged": self.unchanged, "pages": self.pages, "windows": self.windows,
                "failed": [m for _, m in self.failed]}  # fmt: skip


def scan_sheet_files(paths) -> list[Path]:
    """Sheet files under the given files and folders (recursive, sorted, unique)."""
    found: dict[Path, None] = {}
    for p in [paths] if isinstance(paths, str | os.PathLike) else paths:
        p = Path(p)
        try:
            kind = "file" if p.is_file() else "dir" if p.is_dir() else None
        except OSError:  # a name too long, a loop: the audio scan reports it; no sheet here
            continue
        if kind == "file" and is_sheet_file(p):
            found[p.resolve()] = None
        elif kind == "dir":
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if not name.startswith(".") and is_sheet_file(name):
                        found[(Path(dirpath) / name).resolve()] = None
    return list(found)


class SheetStore:
    """The sheet items of one collection (see the module docstring)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._ann = None
        self._items = None
        self._windows = None
        self._features = None

    @classmethod
    def for_collection(cls, collection_root: str | os.PathLike) -> SheetStore:
        return cls(Path(collection_root) / STORE_DIR)

    # -- reading -------------------------------------------------------------------------------------
    def items(self) -> list[dict]:
        if self._items is None:
            path = self.root / "items.json"
            self._items = json.loads(path.read_text())["items"] if path.is_file() else []
        return self._items

    def model_id(self) -> str | None:
        path = self.root / "items.json"
        return json.loads(path.read_text()).get("model_id") if path.is_file() else None

    def features(self) -> np.ndarray:
        """``(n, 24)`` samples of the notation reader (rows of :meth:`windows`)."""
        if self._features is None:
            path = self.root / "features.npy"
            self._features = np.load(path) if path.is_file() else np.zeros((0, 24), np.float32)
        return self._features

    def windows(self) -> np.ndarray:
        if self._windows is None:
            path = self.root / "windows.npy"
            self._windows = np.load(path) if path.is_file() else np.zeros((0, 4), np.float32)
        return self._windows

    def ann(self):
        from mirsearch.index.ann import load_index

        if self._ann is None:
            self._ann = load_index(self.root / "ann", mmap=False)
        return self._ann

    def __len__(self) -> int:
        return len(self.items())

    # -- writing -------------------------------------------------------------------------------------
    def update(self, paths, reader) -> SheetUpdateReport:
        """Add new and changed sheet files under ``paths``; rebuild the window index.

        ``reader``: :class:`NotationReader` or :class:`LearnedReader`.
        """
        report = SheetUpdateReport()
        files = scan_sheet_files(paths)
        if not files and not self.items():
            return report
        with directory_lock(self.root):
            same_model = self.model_id() == reader.model_id
            items = {it["path"]: it for it in self.items()} if same_model else {}
            for f in files:
                st = f.stat()
                old = items.get(str(f))
                if old and old["size"] == st.st_size and old["mtime"] == st.st_mtime:
                    report.unchanged += 1
                    continue
                try:
                    items[str(f)] = self._embed_item(f, st, reader, len(items) if old is None else old["number"])
                    report.added += 1
                except (InputError, MirsearchError) as exc:
                    report.failed.append((str(f), str(exc)))
            self._rebuild(list(items.values()), reader, report)
        return report

    def _embed_item(self, path: Path, st, reader, number: int) -> dict:
        pages, vectors, where = [], [], []
        for p, image in enumerate(load_pages(path)):
            v, w, info = reader.page_windows(image)
            pages.append(info)
            vectors.append(v)
            where.append(np.column_stack([np.full(len(w), p, np.float32), w]) if len(w) else np.zeros((0, 3)))
        (self.root / "vectors").mkdir(parents=True, exist_ok=True)
        atomic_save_npy(self.root / "vectors" / f"{number}.npy", np.concatenate(vectors).astype(np.float32))
        atomic_save_npy(self.root / "vectors" / f"{number}-where.npy", np.concatenate(where).astype(np.float32))
        return {"number": number, "path": str(path), "size": st.st_size, "mtime": st.st_mtime, "pages": pages}

    def _rebuild(self, items: list[dict], reader, report: SheetUpdateReport) -> None:
        from mirsearch.index.ann import build_index

        items = sorted(items, key=lambda it: it["number"])
        vectors, windows = [], []
        for i, it in enumerate(items):
            v = np.load(self.root / "vectors" / f"{it['number']}.npy")
            w = np.load(self.root / "vectors" / f"{it['number']}-where.npy")
            vectors.append(v)
            windows.append(np.column_stack([np.full(len(w), i, np.float32), w]))
            report.pages += len(it["pages"])
        V = np.concatenate(vectors) if vectors else np.zeros((0, reader.dim), np.float32)
        W = np.concatenate(windows) if windows else np.zeros((0, 4), np.float32)
        report.windows = len(V)
        if reader.ann and len(V):
            build_index("hnsw", V, ef=64).save(self.root / "ann")
        if not reader.ann:
            atomic_save_npy(self.root / "features.npy", V.astype(np.float32))
        atomic_save_npy(self.root / "windows.npy", W.astype(np.float32))
        atomic_write_text(self.root / "items.json", json.dumps({"model_id": reader.model_id, "items": items}))
        self._items, self._windows, self._ann, self._features = None, None, None, None
