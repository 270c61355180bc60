"""Build the sheet-music corpus: music21 corpus works through verovio, Mutopia keyboard pieces through LilyPond.

Layout under the output directory (resumable: a piece whose ``piece.json`` and audio files exist, or
that failed once (``FAILED``), is skipped; every file is written atomically)::

    pieces/<engraver>/<piece id>/page-NN.png, score.mid, piece.json, audio/<font>-<tempo>.flac
    manifest-<engraver>.json   one row per piece: id, engraver, work, split, directory, renders

Training data is engraved by verovio (fast: seconds per work) from keyboard-style reductions of music21
corpus works (:data:`VEROVIO_SOURCES`: chorales, Palestrina, Monteverdi, trecento, quartets, fiddle
tunes), each with one of four music fonts; works go 90 / 10 % to train / val by a stable hash of the work.
Every LilyPond (Mutopia keyboard) piece is test: an engraver, pieces and a SoundFont never used in
training. Train and val audio use :data:`TRAIN_FONTS`; test audio uses :data:`TEST_FONT` only.
Each piece is rendered twice: at the tempo of its MIDI file and at a tempo factor drawn from 0.75-1.3
(stable per piece).
"""

from __future__ import annotations

import copy
import json
import logging
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from mirsearch._util import atomic_write_text
from mirsearch.datasets.performance import stable_seed
from mirsearch.datasets.sheets import (
    MIDI_FILE,
    PIECE_FILE,
    compile_lilypond,
    lilypond_engraving,
    verovio_engraving,
    write_piece,
)
from mirsearch.errors import MirsearchError

logger = logging.getLogger(__name__)

TRAIN_FONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2")
TEST_FONT = "/usr/share/sounds/sf3/MuseScore_General.sf3"
SR = 22050
MANIFEST = "manifest-{engraver}.json"
#: marks a piece that could not be engraved (later runs pass over it)
FAILED_FILE = "FAILED"
_INSTRUMENT = re.compile(r'instrument\s*=\s*"(piano|harpsichord|clavier|keyboard)"', re.I)
_VERSION = re.compile(r'\\version\s+"(\d+)\.(\d+)')


@dataclass(frozen=True)
class SheetBuildOptions:
    """What to build: at most ``n_mutopia`` LilyPond pieces and ``n_verovio`` verovio works."""

    #: the Mutopia sources (a bare git directory) and the output directory
    mutopia_git: str
    out: str
    #: pieces per engraver
    n_mutopia: int = 60
    n_verovio: int = 500
    #: size range of a Mutopia source file (bytes): short to moderate pieces
    min_bytes: int = 2000
    max_bytes: int = 20000
    #: seconds per run (a later run resumes)
    time_limit: float = 6 * 3600.0


def _git(git_dir: str, *args: str) -> str:
    proc = subprocess.run(["git", "--git-dir", git_dir, *args], capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        raise MirsearchError(f"{git_dir}: git {' '.join(args[:2])} failed")
    return proc.stdout


def mutopia_candidates(git_dir: str, *, min_bytes: int, max_bytes: int) -> list[str]:
    """Keyboard pieces of a Mutopia checkout that are one ``.ly`` file in their folder with a ``\\midi`` block.

    Ordered by a stable hash of the path (a deterministic, composer-mixed sample when cut short).
    """
    rows = [r.split(None, 4) for r in _git(git_dir, "ls-tree", "-r", "-l", "HEAD", "ftp").splitlines()]
    by_dir: dict[str, list[tuple[str, int]]] = {}
    for _mode, _kind, _sha, size, path in rows:
        by_dir.setdefault(path.rsplit("/", 1)[0], []).append((path, int(size) if size != "-" else 0))
    picked = []
    for folder, files in by_dir.items():
        sources = [(p, s) for p, s in files if p.endswith((".ly", ".ily", ".lyi"))]
        if len(sources) != 1 or not sources[0][0].endswith(".ly") or not min_bytes <= sources[0][1] <= max_bytes:
            continue
        if "chorale" in folder.lower():
            continue  # chorales are verovio training data
        picked.append(sources[0][0])
    return sorted(picked, key=lambda p: stable_seed("mutopia", p))


def mutopia_source_ok(text: str) -> bool:
    """A keyboard instrument, LilyPond >= 2.14 syntax and a ``\\midi`` block."""
    version = _VERSION.search(text)
    return (
        bool(_INSTRUMENT.search(text))
        and "\\midi" in text
        and version is not None
        and (int(version[1]), int(version[2])) >= (2, 14)
    )


def split_of(work: str, engraver: str) -> str:
    """train / val / test of a work: every LilyPond work is test (the unseen engraver); verovio works go
    90 / 10 % to train / val."""
    if engraver == "lilypond":
        return "test"
    return "val" if stable_seed("sheets-split", work) % 10 == 0 else "train"


def renders_for(piece_id: str, split: str) -> list[tuple[str, float]]:
    """(SoundFont, tempo factor) pairs rendered for a piece."""
    factor = round(0.75 + (stable_seed("sheets-tempo", piece_id) % 1000) / 1000 * 0.55, 3)
    if split == "test":
        return [(TEST_FONT, 1.0), (TEST_FONT, factor)]
    first, second = TRAIN_FONTS if stable_seed("sheets-font", piece_id) % 2 else TRAIN_FONTS[::-1]
    return [(first, 1.0), (second, factor)]


def render_name(font: str, tempo: float) -> str:
    """File name of one rendering: ``audio/<font stem>-<tempo>.flac``."""
    return f"audio/{Path(font).stem}-{tempo:.3f}.flac"


def render_audio(piece_dir: Path, renders: list[tuple[str, float]]) -> None:
    """Render ``score.mid`` with FluidSynth per (SoundFont, tempo factor); onsets scale by 1 / tempo."""
    import tempfile

    import pretty_midi

    from mirsearch.datasets.render import encode, render_midi

    for font, tempo in renders:
        target = piece_dir / render_name(font, tempo)
        if target.is_file():
            continue
        target.parent.mkdir(exist_ok=True)
        pm = pretty_midi.PrettyMIDI(str(piece_dir / MIDI_FILE))
        end = pm.get_end_time() + 1.0
        pm.adjust_times([0.0, end], [0.0, end / tempo])
        with tempfile.TemporaryDirectory(prefix="mirsearch-sheets-") as tmp:
            midi = Path(tmp) / "t.mid"
            pm.write(str(midi))
            y = render_midi(midi, soundfont=font, sr=SR)
        peak = float(abs(y).max()) or 1.0
        encode(y / peak * 0.7, target.with_suffix(""), sr=SR, encoding="flac")


#: music21 corpus folders engraved with verovio for training, with the number of works taken from each
VEROVIO_SOURCES = {
    "bach": 220,
    "palestrina": 60,
    "monteverdi": 40,
    "trecento": 30,
    "beethoven": 26,
    "mozart": 16,
    "haydn": 9,
    "schumann_robert": 7,
    "schumann_clara": 5,
    "josquin": 8,
    "ryansMammoth": 40,
}
#: verovio music fonts, one per piece (engraving variants)
VEROVIO_FONTS = ("Leipzig", "Bravura", "Gootville", "Leland")
#: longer works are cut to their first measures
MAX_MEASURES = 48


def reduction_musicxml(path: str) -> str | None:
    """A keyboard-style reduction of a music21 corpus work as MusicXML text (first :data:`MAX_MEASURES`).

    One part stays one staff; otherwise the upper half of the parts is chordified onto a treble staff and
    the lower half onto a bass staff. None for works that cannot be reduced (no measures, opus files).
    """
    from music21 import clef, corpus, stream
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    score = corpus.parse(path)
    if not isinstance(score, stream.Score) or not score.parts:
        return None
    parts = list(score.parts)
    groups = [parts] if len(parts) == 1 else [parts[: (len(parts) + 1) // 2], parts[(len(parts) + 1) // 2 :]]
    staves = []
    for group, new_clef in zip(groups, (clef.TrebleClef(), clef.BassClef()), strict=False):
        both = stream.Score([copy.deepcopy(p) for p in group])
        part = stream.Part()
        for measure in both.chordify().getElementsByClass("Measure")[:MAX_MEASURES]:
            part.append(measure)
        measures = part.getElementsByClass("Measure")
        if not measures:
            return None
        if len(groups) == 2:
            for old in measures[0].getElementsByClass("Clef"):
                measures[0].remove(old)
            measures[0].insert(0, new_clef)
        staves.append(part)
    return GeneralObjectExporter(stream.Score(staves)).parse().decode("utf-8")


def _build_one(piece_dir: Path, engrave, meta: dict) -> dict | None:
    """Engrave (unless done) and render one piece; None if it cannot be engraved."""
    if (piece_dir / FAILED_FILE).is_file():
        return None
    if not (piece_dir / PIECE_FILE).is_file():
        try:
            write_piece(engrave(), piece_dir, meta=meta)
        except (MirsearchError, subprocess.TimeoutExpired, ValueError, KeyError, IndexError) as exc:
            logger.warning("%s: skipped (%s)", meta["id"], exc)
            piece_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(piece_dir / FAILED_FILE, f"{type(exc).__name__}: {exc}\n")  # not retried
            return None
    renders = renders_for(meta["id"], meta["split"])
    render_audio(piece_dir, renders)
    return {**meta, "dir": str(piece_dir), "renders": [[Path(f).stem, t, render_name(f, t)] for f, t in renders]}


class _Manifest:
    """The rows of one engraver's manifest, written after every piece; a piece count and time budget."""

    def __init__(self, out: Path, engraver: str):
        self.path, self.engraver = out / MANIFEST.format(engraver=engraver), engraver
        self.rows: list[dict] = []
        self.start = time.monotonic()

    def full(self, n: int, time_limit: float) -> bool:
        return len(self.rows) >= n or time.monotonic() - self.start > time_limit

    def __call__(self, row: dict | None) -> None:
        if row:
            self.rows.append(row)
            self.done()
            elapsed = time.monotonic() - self.start
            logger.info("%d %s pieces (%s, %.0f s)", len(self.rows), self.engraver, row["id"], elapsed)

    def done(self) -> list[dict]:
        atomic_write_text(self.path, json.dumps({"sr": SR, "pieces": self.rows}, indent=1))
        return self.rows


def verovio_candidates() -> list[tuple[str, str]]:
    """(folder, path) of the music21 corpus works to engrave, per :data:`VEROVIO_SOURCES`, in a stable order."""
    from music21 import corpus

    picked = []
    for folder, n in VEROVIO_SOURCES.items():
        paths = [str(p) for p in corpus.getPaths() if f"/corpus/{folder}/" in str(p) and "Analyses" not in str(p)]
        picked.extend((folder, p) for p in sorted(paths, key=lambda p: stable_seed("m21", p))[:n])
    return sorted(picked, key=lambda fp: stable_seed("m21-order", fp[1]))


def build_verovio(options: SheetBuildOptions) -> list[dict]:
    """Engrave up to ``n_verovio`` music21 corpus works with verovio and render them (``manifest-verovio.json``)."""
    out, keep = Path(options.out), _Manifest(Path(options.out), "verovio")
    for _folder, path in verovio_candidates():
        if keep.full(options.n_verovio, options.time_limit):
            break
        rel = path.split("/corpus/", 1)[1].rsplit(".", 1)[0]
        work = "/".join(rel.split("/")[:2]).split(".")[0]
        piece_id = re.sub(r"[^A-Za-z0-9_-]+", "_", rel.replace("/", "-"))
        font = VEROVIO_FONTS[stable_seed("font", piece_id) % len(VEROVIO_FONTS)]
        meta = {"id": piece_id, "engraver": "verovio", "work": work, "source": path, "font": font}
        meta["split"] = split_of(work, "verovio")
        piece_dir = out / "pieces/verovio" / piece_id
        xml = None
        if not (piece_dir / PIECE_FILE).is_file():
            try:
                xml = reduction_musicxml(path)
            except Exception as exc:  # music21 raises many kinds on odd corpus files
                logger.warning("%s: not reduced (%s)", piece_id, type(exc).__name__)
            if xml is None:
                continue
        keep(_build_one(piece_dir, lambda x=xml, f=font: verovio_engraving(x, font=f), meta))
    return keep.done()


def build_mutopia(options: SheetBuildOptions) -> list[dict]:
    """Engrave up to ``n_mutopia`` Mutopia pieces with LilyPond and render them; writes ``manifest-lilypond.json``."""
    out, keep = Path(options.out), _Manifest(Path(options.out), "lilypond")
    for path in mutopia_candidates(options.mutopia_git, min_bytes=options.min_bytes, max_bytes=options.max_bytes):
        if keep.full(options.n_mutopia, options.time_limit):
            break
        piece_id = Path(path).stem
        piece_dir = out / "pieces/lilypond" / piece_id
        text = ""
        if not (piece_dir / PIECE_FILE).is_file():
            text = _git(options.mutopia_git, "show", f"HEAD:{path}")
            if not mutopia_source_ok(text):
                continue
        work = "/".join(path.split("/")[1:3])
        meta = {
            "id": piece_id,
            "engraver": "lilypond",
            "work": work,
            "source": path,
            "split": split_of(work, "lilypond"),
        }
        keep(_build_one(piece_dir, lambda t=text: lilypond_engraving(*compile_lilypond(t, name="piece")), meta))
    return keep.done()


def load_manifest(root: str | Path) -> list[dict]:
    """Rows of every ``manifest-*.json`` under a corpus directory."""
    rows = []
    for path in sorted(Path(root).glob("manifest-*.json")):
        rows.extend(json.loads(path.read_text(encoding="utf-8"))["pieces"])
    return rows
