"""An "other music" theme benchmark: Mutopia pieces and folk tunes with generated backing, unseen SoundFonts.

Every mirsearch theme benchmark so far renders the music21 corpus, the kind of music the learned
chroma was trained on. This set measures the domain gap: pieces of the Mutopia Project (LilyPond
sources compiled to MIDI: piano, guitar, chamber music, songs) and monophonic folk tunes of its
``Traditional`` folder with a generated chord-and-bass backing, rendered with SoundFonts that no training
run heard (:data:`UNSEEN_FONTS`; training used FluidR3_GM and TimGM6mb), a key change, a tempo factor and
a small room. The theme of a piece is the opening of its melody (the top voice of its highest part).

Layout under the output directory (resumable: a piece with ``piece.json`` or ``FAILED`` is not redone;
every file is written atomically; choices are seeded by the piece, so a rebuild is identical)::

    pieces/<piece id>/piece.json, performed.mid, audio.flac
    manifest.json   a mirsearch dataset manifest (splits ``validation`` and ``test``, by work)

so that ``benchmarks/bench_learned_chroma.py --dataset OUT --split validation|test`` runs on it.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_write_text
from mirsearch.datasets.manifest import FORMAT, FORMAT_VERSION, MANIFEST_NAME, write_json_atomic
from mirsearch.datasets.performance import RecordingParams, stable_seed
from mirsearch.datasets.themes import Key, estimate_key
from mirsearch.errors import InputError, MirsearchError

logger = logging.getLogger(__name__)

#: SoundFonts of the project's allowed data that no theme-chroma model trained on (training used FluidR3_GM and
#: TimGM6mb; Debian's MuseScore_General.sf3 is a link to the Lite font); a piece gets one of them by a stable hash
UNSEEN_FONTS = ("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3",)
SR = 22050
PIECE_FILE = "piece.json"
FAILED_FILE = "FAILED"
#: composers whose music is in mirsearch's training corpus (music21): left out
EXCLUDED = ("MonteverdiC", "PalestrinaG")
_VERSION = re.compile(r'\\version\s+"(\d+)\.(\d+)')
#: General MIDI programs for a folk melody and for its backing
MELODY_PROGRAMS = (73, 40, 68, 71, 56, 65, 21, 22, 74, 110, 11, 0, 24, 52)
BACKING_PROGRAMS = (0, 24, 25, 46, 48, 21, 4, 19)


#: at most this many pieces per composer (``Traditional``: 4 times as many)
PER_COMPOSER = 2
#: size range of a LilyPond source in bytes (short to moderate pieces)
SOURCE_BYTES = (1500, 30000)


@dataclass(frozen=True)
class MutopiaThemesOptions:
    """What to build.

    Attributes
    ----------
    mutopia_git : str
        Bare git directory of the Mutopia Project repository.
    out : str
        Output directory.
    n_per_split : int
        Pieces (= themes) per split (``validation``, ``test``).
    max_seconds : float
        Pieces are cut after this many seconds (at their notated tempo).
    time_limit : float
        Seconds per run (a later run resumes).
    exclude_works : frozenset of str
        Mutopia works (``composer/work``) to pass over, e.g. those of another evaluation or training set.
    exclude_names : frozenset of str
        Piece ids to pass over, compared by ``name_key`` (digits, case and punctuation removed), so that the other
        pieces of a series are passed over too.
    """

    mutopia_git: str
    out: str
    n_per_split: int = 50
    max_seconds: float = 75.0
    time_limit: float = 3600.0
    exclude_works: frozenset = frozenset()
    exclude_names: frozenset = frozenset()


# --------------------------------------------------------------------------------------------------
# sources


def candidates(git_dir: str) -> list[tuple[str, int]]:
    """(path, size) of every ``.ly`` file that is alone in its folder, in a stable hashed order."""
    proc = subprocess.run(
        ["git", "--git-dir", git_dir, "ls-tree", "-r", "-l", "HEAD", "ftp"], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise InputError(f"{git_dir}: not a readable git directory")
    by_dir: dict[str, list[tuple[str, int]]] = {}
    for row in proc.stdout.splitlines():
        _mode, _kind, _sha, size, path = row.split(None, 4)
        by_dir.setdefault(path.rsplit("/", 1)[0], []).append((path, int(size) if size != "-" else 0))
    out = []
    for files in by_dir.values():
        sources = [(p, s) for p, s in files if p.endswith((".ly", ".ily", ".lyi"))]
        if len(sources) == 1 and sources[0][0].endswith(".ly"):
            out.append(sources[0])
    return sorted(out, key=lambda ps: stable_seed("mutopia-themes", ps[0]))


def source_ok(path: str, text: str) -> bool:
    """A ``\\midi`` block, LilyPond >= 2.10 (convert-ly updates it), no chorale, no composer of the training corpus."""
    version = _VERSION.search(text)
    return (
        "\\midi" in text
        and version is not None
        and (int(version[1]), int(version[2])) >= (2, 10)
        and "choral" not in path.lower()
        and path.split("/")[1] not in EXCLUDED
    )


def lilypond_midi(source: str, *, timeout: float = 120.0) -> bytes:
    """MIDI of a LilyPond source (updated with ``convert-ly`` first; no pages are printed)."""
    from mirsearch.datasets.sheets import lilypond_binary

    binary = lilypond_binary()
    with tempfile.TemporaryDirectory(prefix="mirsearch-lymidi-") as tmp:
        ly = Path(tmp) / "p.ly"
        ly.write_text(source, encoding="utf-8")
        subprocess.run(
            [str(binary.with_name("convert-ly")), "-e", ly.name], cwd=tmp, capture_output=True, timeout=timeout
        )
        proc = subprocess.run(
            [str(binary), "-dno-print-pages", "-o", "p", ly.name], cwd=tmp, capture_output=True, timeout=timeout
        )
        midis = sorted(Path(tmp).glob("p*.mid*"))
        if proc.returncode != 0 or not midis:
            raise InputError("lilypond: no MIDI written")
        return midis[0].read_bytes()


# --------------------------------------------------------------------------------------------------
# melody, theme, backing


def parts_of(pm) -> list[list[tuple[int, float, float, int]]]:
    """Pitched notes ``(pitch, start s, end s, velocity)`` of every non-drum instrument (empty ones dropped)."""
    parts = []
    for inst in pm.instruments:
        notes = [(n.pitch, n.start, n.end, n.velocity) for n in inst.notes if n.end > n.start]
        if not inst.is_drum and notes:
            parts.append(sorted(notes, key=lambda n: (n[1], -n[0])))
    return parts


def skyline(notes: list[tuple[int, float, float, int]], *, tol: float = 0.03) -> list[tuple[int, float, float]]:
    """Top voice: the highest note per onset (onsets within ``tol`` s are one), cut at the next onset.

    Returns
    -------
    list of (pitch, onset s, duration s)
    """
    tops: list[list] = []
    for pitch, start, end, _vel in sorted(notes, key=lambda n: n[1]):
        if tops and start - tops[-1][1] <= tol:
            if pitch > tops[-1][0]:
                tops[-1][0], tops[-1][2] = pitch, end
            continue
        tops.append([pitch, start, end])
    out = []
    for k, (pitch, start, end) in enumerate(tops):
        if k + 1 < len(tops):
            end = min(end, tops[k + 1][1])
        if end - start > 0.02:
            out.append((int(pitch), float(start), float(end - start)))
    return out


def melody_part(parts: list[list]) -> int:
    """Index of the melody part: the highest (mean pitch) of the parts with >= 30 % of the busiest's notes."""
    most = max(len(p) for p in parts)
    keep = [i for i, p in enumerate(parts) if len(p) >= 0.3 * most]
    return max(keep, key=lambda i: (np.mean([n[0] for n in parts[i]]), -i))


def opening_theme(
    melody: list[tuple[int, float, float]],
    *,
    min_notes: int = 8,
    max_notes: int = 20,
    min_span: float = 4.0,
    max_span: float = 10.0,
) -> list[tuple[int, float, float]] | None:
    """The opening of a melody: notes from the first until ``min_notes`` notes spanning ``min_span`` s
    (at most ``max_notes`` notes and ``max_span`` s); None if fewer than ``min_notes`` notes fit or they
    have fewer than 4 distinct pitches."""
    if not melody:
        return None
    t0 = melody[0][1]
    theme = []
    for note in melody[:max_notes]:
        if note[1] + note[2] - t0 > max_span:
            break
        theme.append(note)
        if len(theme) >= min_notes and note[1] + note[2] - t0 >= min_span:
            break
    if len(theme) < min_notes or len({p for p, _, _ in theme}) < 4:
        return None
    return theme


#: diatonic triads (pitch classes over the tonic, root first): I ii IV V vi / i iv V VI III VII
TRIADS = {
    "major": ((0, 4, 7), (2, 5, 9), (5, 9, 0), (7, 11, 2), (9, 0, 4)),
    "minor": ((0, 3, 7), (5, 8, 0), (7, 11, 2), (8, 0, 3), (3, 7, 10), (10, 2, 5)),
}


def _triads(key: Key) -> list[tuple[int, ...]]:
    """The diatonic triads of :data:`TRIADS` in a key (pitch classes, root first)."""
    return [tuple((key.tonic + pc) % 12 for pc in t) for t in TRIADS[key.mode]]


def backing(
    melody: list[tuple[int, float, float]], bars: np.ndarray, *, key: Key, rng: np.random.Generator
) -> list[tuple[int, float, float, int, int]]:
    """A chord-and-bass accompaniment: per bar the diatonic triad that holds most of the melody's duration.

    Parameters
    ----------
    melody : list of (pitch, onset s, duration s)
    bars : np.ndarray, shape (n_bars + 1,)
        Bar boundaries in seconds (the last one is the end).
    key : Key
    rng : np.random.Generator
        Chooses the pattern (block chords on every beat or broken chords).

    Returns
    -------
    list of (pitch, start s, end s, velocity, voice)
        ``voice`` 1 = chords, 2 = bass.
    """
    triads = _triads(key)
    broken = bool(rng.integers(2))
    notes = []
    for a, b in zip(bars[:-1], bars[1:], strict=True):
        weight = np.zeros(12)
        for p, o, d in melody:
            weight[p % 12] += max(0.0, min(o + d, b) - max(o, a))
        scores = [sum(weight[pc] for pc in t) + (0.01 if i in (0, 3) else 0.0) for i, t in enumerate(triads)]
        chord = triads[int(np.argmax(scores))]
        notes.append((36 + (chord[0] - 36) % 12, a, b, 70, 2))
        voicing = sorted(48 + (pc - 48) % 12 + (12 if (pc - 48) % 12 < 4 else 0) for pc in chord)
        beats = np.linspace(a, b, 4 if b - a > 1.2 else 3)[:-1] if broken else np.array([a, (a + b) / 2])
        step = beats[1] - beats[0] if len(beats) > 1 else b - a
        for k, t in enumerate(beats):
            for j, p in enumerate(voicing):
                if broken and j != k % len(voicing):
                    continue
                notes.append((int(p), float(t), float(t + step), 55, 1))
    return notes


# --------------------------------------------------------------------------------------------------
# one piece


def bar_lines(pm, end: float) -> np.ndarray:
    """Bar boundaries (s) of a PrettyMIDI up to ``end`` (its downbeats, else every 2 s), ending with ``end``."""
    downbeats = [t for t in pm.get_downbeats() if t < end]
    bars = np.asarray(downbeats if len(downbeats) >= 2 else np.arange(0.0, end, 2.0), dtype=float)
    return np.r_[bars, end]


def perform(midi: bytes, piece_id: str, *, max_seconds: float) -> tuple[object, dict]:
    """The performed MIDI of one piece and its description (theme, key, rendering choices).

    Raises :class:`InputError` when the piece has no usable opening theme.
    """
    import io

    import pretty_midi

    pm = pretty_midi.PrettyMIDI(io.BytesIO(midi))
    parts = parts_of(pm)
    if not parts:
        raise InputError(f"{piece_id}: no notes")
    start0 = min(n[1] for p in parts for n in p)
    mel_index = melody_part(parts)
    mel = skyline(parts[mel_index])
    theme = opening_theme(mel)
    if theme is None:
        raise InputError(f"{piece_id}: no opening theme")
    end = min(max(n[2] for p in parts for n in p), start0 + max_seconds)
    key = estimate_key([(p, o, d) for p, o, d in mel if o < end])
    rng = np.random.default_rng(stable_seed("mutopia-themes", piece_id))
    folk = len(parts) == 1 and len(mel) >= 0.9 * len(parts[0])
    transpose = int(rng.integers(-3, 4))
    tempo = float(np.round(rng.uniform(0.85, 1.18), 3))
    out = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    voices = {0: [(p, s, e, v) for p, s, e, v in parts[mel_index]]} if folk else dict(enumerate(parts))
    programs = {i: inst.program for i, inst in enumerate(i for i in pm.instruments if not i.is_drum and i.notes)}
    kind = "piece"
    if folk:
        kind = "folk tune with backing"
        programs = {0: int(rng.choice(MELODY_PROGRAMS)), 1: int(rng.choice(BACKING_PROGRAMS)), 2: 32}
        for p, s, e, v, voice in backing(mel, bar_lines(pm, end), key=key, rng=rng):
            voices.setdefault(voice, []).append((p, s, e, v))
        voices[0] = [(p, s, e, min(127, int(v * 1.1))) for p, s, e, v in voices[0]]
    for index, notes in voices.items():
        inst = pretty_midi.Instrument(program=programs.get(index, 0))
        for p, s, e, v in notes:
            if s < end and 0 <= p + transpose < 128:
                a, b = (s - start0) / tempo, (min(e, end) - start0) / tempo
                if b - a < 0.03:  # a note-off on the note-on's tick can be read first: a stuck note
                    continue
                inst.notes.append(pretty_midi.Note(velocity=int(v), pitch=int(p + transpose), start=a, end=b))
        out.instruments.append(inst)
    onsets = [(o - start0) / tempo for _, o, _ in theme]
    desc = {
        "kind": kind,
        "key": key.name,
        "shift_to_c": key.shift_to_c,
        "transposition": transpose,
        "tempo_factor": tempo,
        "programs": [programs.get(i, 0) for i in voices],
        "score_duration": round(end - start0, 4),
        "theme": [[p + key.shift_to_c, round(o - theme[0][1], 4), round(d, 4)] for p, o, d in theme],
        "onsets": [round(t, 4) for t in onsets],
        "score_start": round(theme[0][1] - start0, 4),
        "theme_end": round((theme[-1][1] + theme[-1][2] - start0) / tempo, 4),
    }
    return out, desc


def render_piece(piece_dir: Path, pm, desc: dict) -> float:
    """Render the performed MIDI with the piece's unseen SoundFont and a small room; returns seconds."""
    seed = stable_seed("mutopia-themes-render", piece_dir.name)
    rng = np.random.default_rng(seed)
    recording = RecordingParams(
        reverb_rt60=float(rng.uniform(0.2, 1.0)),
        reverb_wet=float(rng.uniform(0.05, 0.3)),
        reverb_predelay_ms=10.0,
        lowpass_hz=None if rng.random() < 0.5 else float(rng.uniform(5000, 9000)),
        highpass_hz=40.0,
        noise=None if rng.random() < 0.6 else "pink",
        snr_db=float(rng.uniform(25, 40)),
        level_db=-20.0,
        encoding="flac",
        quality=0.0,
    )
    return render_flac(pm, piece_dir / "audio", soundfont=desc["soundfont"], recording=recording, seed=seed)


def render_flac(pm, path: Path, *, soundfont: str, recording: RecordingParams, seed: int) -> float:
    """Render a PrettyMIDI with FluidSynth at :data:`SR`, apply ``recording``, write ``path.flac``; returns seconds."""
    from mirsearch.datasets.render import apply_recording, encode, render_midi

    with tempfile.TemporaryDirectory(prefix="mirsearch-mt-") as tmp:
        midi = Path(tmp) / "p.mid"
        pm.write(str(midi))
        y = render_midi(midi, soundfont=soundfont, sr=SR, timeout=300.0)
    y = apply_recording(y, sr=SR, recording=recording, seed=seed)
    encode(y, path, sr=SR, encoding="flac")
    return len(y) / SR


def source_text(git_dir: str, path: str) -> str:
    """The text of a file at ``HEAD`` of a bare git directory (empty if absent)."""
    return subprocess.run(
        ["git", "--git-dir", git_dir, "show", f"HEAD:{path}"], capture_output=True, text=True, errors="replace"
    ).stdout


def build_piece(piece_dir: Path, git_dir: str, path: str, *, max_seconds: float) -> dict | None:
    """Compile, perform and render one Mutopia piece (unless done); its ``piece.json`` row, or None."""
    composer, work = path.split("/")[1], "/".join(path.split("/")[1:3])

    def midi() -> bytes:
        text = source_text(git_dir, path)
        if not source_ok(path, text):
            raise InputError("not a usable source")
        return lilypond_midi(text)

    return build_midi_piece(piece_dir, midi, source=path, composer=composer, work=work, max_seconds=max_seconds)


def build_midi_piece(
    piece_dir: Path, midi, *, source: str, composer: str, work: str, max_seconds: float
) -> dict | None:
    """Perform and render one piece whose MIDI ``midi()`` returns (unless done); its ``piece.json`` row, or None."""
    if (piece_dir / FAILED_FILE).is_file():
        return None
    done = piece_dir / PIECE_FILE
    if done.is_file():
        return json.loads(done.read_text(encoding="utf-8"))
    try:
        pm, desc = perform(midi(), piece_dir.name, max_seconds=max_seconds)
        desc["soundfont"] = UNSEEN_FONTS[stable_seed("mutopia-themes-font", piece_dir.name) % len(UNSEEN_FONTS)]
        piece_dir.mkdir(parents=True, exist_ok=True)
        desc["duration"] = round(render_piece(piece_dir, pm, desc), 4)
        pm.write(str(piece_dir / "performed.mid"))
    except (MirsearchError, subprocess.TimeoutExpired, ValueError, OSError, IndexError, KeyError, EOFError) as exc:
        logger.info("%s: skipped (%s)", source, exc)
        piece_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(piece_dir / FAILED_FILE, f"{type(exc).__name__}: {exc}\n")
        return None
    row = {"id": piece_dir.name, "source": source, "composer": composer, "work": work, **desc}
    text = json.dumps(row, indent=1, default=_plain)
    atomic_write_text(done, text)
    return json.loads(text)


# --------------------------------------------------------------------------------------------------
# folk tunes of the music21 corpus (ABC): melodies to put over a generated backing


def folk_tunes(collections: tuple[str, ...]) -> list[tuple[str, str]]:
    """Every tune of the music21 corpus's ABC folders ``collections`` (e.g. ``essenFolksong``), as
    ``(tune id, ABC text)`` in a stable hashed order; the id is ``<folder>/<file stem>/<X number>``."""
    from music21 import corpus

    out = []
    for path in corpus.getPaths(fileExtensions=("abc",)):
        if path.parent.name not in collections:
            continue
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        head, *tunes = re.split(r"(?m)^(?=X:)", text)
        for tune in tunes:
            number = tune.split("\n", 1)[0][2:].strip()
            out.append((f"{path.parent.name}/{Path(path).stem}/{number}", tune))
    return sorted(out, key=lambda t: stable_seed("folk-tunes", t[0]))


def abc_midi(tune: str) -> bytes:
    """MIDI bytes of one ABC tune (music21; chord symbols are not sounded)."""
    from music21 import converter, midi

    try:
        score = converter.parse(tune, format="abc")
        return midi.translate.music21ObjectToMidiFile(score).writestr()
    except Exception as exc:  # music21 raises many kinds on malformed or unusual ABC
        raise InputError(f"ABC not converted: {type(exc).__name__}") from None


def build_folk(out: str | Path, *, collections: tuple[str, ...], n: int, max_seconds: float = 75.0) -> dict:
    """A theme set of ``n`` folk tunes of the music21 corpus with a generated backing (as the folk tunes of
    :func:`build`), all in the ``validation`` split; returns the manifest written to ``OUT/manifest.json``."""
    out = Path(out)
    rows = []
    opts = MutopiaThemesOptions(mutopia_git="", out=str(out), n_per_split=n, max_seconds=max_seconds)
    for tune_id, text in folk_tunes(collections):
        if len(rows) >= n:
            break
        piece_id = re.sub(r"[^A-Za-z0-9_-]+", "_", tune_id)
        row = build_midi_piece(
            out / "pieces" / piece_id,
            lambda text=text: abc_midi(text),
            source=tune_id,
            composer=tune_id.split("/")[0],
            work=tune_id,
            max_seconds=max_seconds,
        )
        if row is not None and row["kind"] == "folk tune with backing":
            rows.append(row)
            logger.info("%s: %d / %d", tune_id, len(rows), n)
    data = manifest(rows, options=opts)
    for w in data["works"] + data["versions"]:
        w["split"] = "validation"
    data["splits"] = {"validation": [w["id"] for w in data["works"]], "test": []}
    data["rendered_splits"] = ["validation"]
    data["name"] = "folk_themes"
    write_json_atomic(out / MANIFEST_NAME, data)
    return data


def _plain(x):
    """JSON for numpy scalars."""
    return x.item() if isinstance(x, np.generic) else str(x)


def name_key(piece_id: str) -> str:
    """A piece id without digits, case and punctuation: pieces of one series share it
    (``Ave_Maris_Stella-2e_verset`` and ``-3e_verset``, ``Chop-28-3`` and ``Chop-28-5``)."""
    return re.sub(r"[^a-z]+", "", piece_id.lower())


def split_of(work: str) -> str:
    """``validation`` or ``test`` by a stable hash of the work (Mutopia folder)."""
    return "validation" if stable_seed("mutopia-themes-split", work) % 2 == 0 else "test"


# --------------------------------------------------------------------------------------------------
# manifest and builder


def manifest(rows: list[dict], *, options: MutopiaThemesOptions) -> dict:
    """A mirsearch dataset manifest of built pieces: one work, one theme and one version per piece."""
    works, themes, versions = [], [], []
    for r in rows:
        split, wid = split_of(r["work"]), r["id"]
        works.append(
            {"id": wid, "title": r["source"], "composer": r["composer"], "source": r["source"], "category": r["kind"]}
            | {"split": split, "family": wid, "themes": [f"{wid}_t0"], "versions": [f"{wid}_v0"], "tempo_bpm": 60.0}
            | {"duration_q": r["score_duration"], "mutopia_work": r["work"]}
        )
        themes.append(
            {"id": f"{wid}_t0", "work": wid, "kind": "opening", "name": f"{wid} opening", "key": r["key"]}
            | {"shift_to_c": r["shift_to_c"], "measure": 1, "tempo_bpm": 60.0, "notes": r["theme"]}
        )
        occ = {"theme": f"{wid}_t0", "start": r["onsets"][0], "end": r["theme_end"], "onsets": r["onsets"]}
        occ |= {"transposition": r["transposition"] - r["shift_to_c"], "score_start": r["score_start"]}
        occ["score_end"] = r["score_start"] + r["theme"][-1][1] + r["theme"][-1][2]
        d = r["score_duration"]
        versions.append(
            {"id": f"{wid}_v0", "work": wid, "split": split, "audio": f"pieces/{wid}/audio.flac"}
            | {"midi": f"pieces/{wid}/performed.mid", "duration": r["duration"], "sample_rate": SR}
            | {"soundfont": Path(r["soundfont"]).stem, "ensemble": r["kind"], "programs": r["programs"]}
            | {"transposition": r["transposition"], "tuning_cents": 0.0, "tempo_factor": r["tempo_factor"]}
            | {"tempo_map": {"score": [0.0, d], "audio": [0.0, d / r["tempo_factor"]]}, "occurrences": [occ]}
        )
    splits = {s: [w["id"] for w in works if w["split"] == s] for s in ("validation", "test")}
    generation = {"builder": "mirsearch.datasets.mutopia_themes", "soundfonts": list(UNSEEN_FONTS)}
    generation |= {"n_per_split": options.n_per_split, "max_seconds": options.max_seconds}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": "mutopia_themes",
        "seed": 0,
        "sample_rate": SR,
        "generation": generation | {"per_composer": PER_COMPOSER, "source_bytes": list(SOURCE_BYTES)},
        "splits": splits,
        "rendered_splits": list(splits),
        "works": works,
        "themes": themes,
        "versions": versions,
    }


def build(options: MutopiaThemesOptions) -> dict:
    """Build (or resume) the set; returns the manifest written to ``OUT/manifest.json``."""
    out = Path(options.out)
    counts = {"validation": 0, "test": 0}
    per_composer: dict[str, int] = {}
    rows, t0 = [], time.monotonic()
    for path, size in candidates(options.mutopia_git):
        if min(counts.values()) >= options.n_per_split or time.monotonic() - t0 > options.time_limit:
            break
        composer, split = path.split("/")[1], split_of("/".join(path.split("/")[1:3]))
        cap = PER_COMPOSER * (4 if composer == "Traditional" else 1)
        if counts[split] >= options.n_per_split or per_composer.get(composer, 0) >= cap:
            continue
        if not SOURCE_BYTES[0] <= size <= SOURCE_BYTES[1]:
            continue
        piece_id = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(path).stem)
        if "/".join(path.split("/")[1:3]) in options.exclude_works or name_key(piece_id) in options.exclude_names:
            continue
        row = build_piece(out / "pieces" / piece_id, options.mutopia_git, path, max_seconds=options.max_seconds)
        if row is None:
            continue
        rows.append(row)
        counts[split] += 1
        per_composer[composer] = per_composer.get(composer, 0) + 1
        logger.info("%s %s (%s): %d / %d", split, piece_id, row["kind"], counts[split], options.n_per_split)
        write_json_atomic(out / MANIFEST_NAME, manifest(rows, options=options))
    data = manifest(rows, options=options)
    write_json_atomic(out / MANIFEST_NAME, data)
    return data
