"""Theme-chroma training data of other music: a melody over an accompaniment (issue 14).

The shipped theme chroma was trained on renderings of the music21 corpus (mostly chorales) and misses
melodies over an accompaniment (a folk tune over chords, a song over a piano part). This builder makes
training recordings of that kind from Mutopia pieces that are *not* in the evaluation sets (their work
folders and piece ids are excluded, also ids that differ only by digits: the other movements of a
series), rendered with the training SoundFonts only (:data:`TRAIN_FONTS`; the evaluation's
MuseScore_General_Lite is never used here):

- a melody-only piece (folk tune) gets a generated chord-and-bass backing
  (:func:`mirsearch.datasets.mutopia_themes.backing`), placed at random in a low or a middle register
  (sometimes inside the melody's register);
- a piece with several parts keeps its own parts; in one version the melody part moves to a melody
  instrument and the others to accompaniment instruments, in the other all parts keep their programs;
- every version has its own key change (-5..+6), tempo factor (0.8-1.2), melody level against the
  accompaniment (-8..+4 dB), melody octave, SoundFont, room, filter and noise.

The labels are the pitch classes of the melody (the top voice of the melody part): every version is cut
into windows of 6-14 consecutive melody notes (2-10 s), one training segment each.

Layout under the output directory (resumable per piece; atomic writes; seeded by the piece)::

    pieces/<piece id>/v<k>.flac, piece.json (or FAILED)
    segments.json   every segment: recording, audio, start, end (s), labels, pitches (the notes' sounding MIDI
                    pitches; :func:`add_pitches` adds them to a set built before they were stored), group (the
                    Mutopia work)
"""

from __future__ import annotations

import io
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
from mirsearch.datasets import mutopia_themes as mt
from mirsearch.datasets.performance import RecordingParams, stable_seed
from mirsearch.datasets.themes import estimate_key
from mirsearch.errors import InputError, MirsearchError

logger = logging.getLogger(__name__)

#: SoundFonts of training (never the evaluation's MuseScore_General_Lite)
TRAIN_FONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2")
SEGMENTS_FILE = "segments.json"
#: accompaniment programs for the non-melody parts of a re-orchestrated piece
ACCOMP_PROGRAMS = (0, 1, 4, 6, 19, 24, 25, 46, 48, 49, 52, 88, 89)
#: at most this many pieces per composer (``Traditional``: all)
PER_COMPOSER = 4
#: with ``piano_samples``: the share of versions with keyboard instruments rendered with the samples
PIANO_SAMPLE_SHARE = 0.5


@dataclass(frozen=True)
class MutopiaTrainOptions:
    """What to build.

    Attributes
    ----------
    mutopia_git, out : str
        The Mutopia Project's bare git directory; the folder to build into.
    exclude : tuple of str
        Directories of evaluation sets built by :mod:`mirsearch.datasets.mutopia_themes`: their Mutopia
        works (``manifest.json``) and piece ids (``pieces/*``) are left out.
    n_pieces : int
        Pieces to build (folk tunes first, then others).
    versions : int
        Renderings per piece.
    max_seconds : float
        Each version is cut after this many seconds of the piece (at its notated tempo).
    time_limit : float
        Wall-clock seconds of one call; a later call continues where it stopped.
    piano_samples : str, optional
        Folder of piano samples (:func:`mirsearch.datasets.samples.fetch_salamander`). When set, a version
        with keyboard instruments (GM programs 0-7) has them rendered with the samples with probability
        :data:`PIANO_SAMPLE_SHARE` (the other instruments with FluidSynth); each version's row then says its
        ``renderer``. Unset: no such key and the build as before.
    """

    mutopia_git: str
    out: str
    exclude: tuple[str, ...] = ()
    n_pieces: int = 150
    versions: int = 2
    max_seconds: float = 45.0
    time_limit: float = 3600.0
    piano_samples: str | None = None


def excluded(dirs: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """(Mutopia works ``composer/work``, piece ids) of evaluation sets built by ``mutopia_themes``."""
    works, ids = set(), set()
    for d in dirs:
        manifest = Path(d) / "manifest.json"
        if manifest.is_file():
            data = json.loads(manifest.read_text(encoding="utf-8"))
            works |= {w["mutopia_work"] for w in data.get("works", []) if "mutopia_work" in w}
        ids |= {p.name for p in (Path(d) / "pieces").glob("*")}
    return works, ids


#: a piece id without digits, case and punctuation: pieces of one series share it
related_name = mt.name_key


def piece_id_of(path: str) -> str:
    """The piece id of a Mutopia source path (as :mod:`mirsearch.datasets.mutopia_themes` names it)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", Path(path).stem)


def melody_windows(
    melody: list[tuple[int, float, float]], *, rng: np.random.Generator, min_span: float = 2.0, max_span: float = 10.0
) -> list[list[tuple[int, float, float]]]:
    """Consecutive windows of 6-14 melody notes spanning ``min_span``-``max_span`` s with >= 3 pitch classes.

    Parameters
    ----------
    melody : list of (pitch, onset s, duration s)
        Sorted by onset.
    rng : np.random.Generator
        Draws each window's length.

    Returns
    -------
    list of lists of (pitch, onset s, duration s)
        Non-overlapping; a window whose notes do not fit the limits is skipped (the next starts one
        note later).
    """
    out, k = [], 0
    while k + 6 <= len(melody):
        n = int(rng.integers(6, 15))
        win = melody[k : k + n]
        span = win[-1][1] + win[-1][2] - win[0][1]
        while len(win) > 6 and span > max_span:
            win = win[:-1]
            span = win[-1][1] + win[-1][2] - win[0][1]
        if len(win) >= 6 and min_span <= span <= max_span and len({p % 12 for p, _, _ in win}) >= 3:
            out.append(win)
            k += len(win)
        else:
            k += 1
    return out


def _recording(rng: np.random.Generator) -> RecordingParams:
    """A random room, filter and noise (as the evaluation sets have, with wider ranges)."""
    return RecordingParams(
        reverb_rt60=float(rng.uniform(0.1, 1.4)),
        reverb_wet=float(rng.uniform(0.02, 0.4)),
        reverb_predelay_ms=10.0,
        lowpass_hz=None if rng.random() < 0.5 else float(rng.uniform(3500, 9000)),
        highpass_hz=float(rng.uniform(30, 150)),
        noise=None if rng.random() < 0.5 else str(rng.choice(["pink", "white", "brown"])),
        snr_db=float(rng.uniform(15, 40)),
        level_db=float(rng.uniform(-26, -16)),
        encoding="flac",
        quality=0.0,
    )


def arrange(pm, *, version: int, rng: np.random.Generator, max_seconds: float) -> tuple[object, list, dict]:
    """One performed version of a piece: (PrettyMIDI, melody notes as performed, description).

    The melody notes are ``(pitch, onset s, duration s)`` of the top voice of the melody part, sounding (after
    the key change and the melody's octave shift) and in the performed time.
    """
    import pretty_midi

    parts = mt.parts_of(pm)
    if not parts:
        raise InputError("no notes")
    start0 = min(n[1] for p in parts for n in p)
    end = min(max(n[2] for p in parts for n in p), start0 + max_seconds)
    mel_index = mt.melody_part(parts)
    mel = [m for m in mt.skyline(parts[mel_index]) if m[1] < end]
    folk = len(parts) == 1 and len(mel) >= 0.9 * len(parts[0])
    transpose, tempo = int(rng.integers(-5, 7)), float(rng.uniform(0.8, 1.2))
    mel_gain = 10 ** (float(rng.uniform(-8, 4)) / 20)
    programs = [inst.program for inst in pm.instruments if not inst.is_drum and inst.notes]
    voices: dict[int, list] = {0: list(parts[mel_index])}
    mel_shift = 0
    if folk:
        mean = float(np.mean([p for p, _, _ in mel]))
        mel_shift = int(rng.choice([0, 0, -12 if mean > 70 else 12]))
        up = 12 * int(rng.integers(0, 2))  # chords at 48-60 or 60-72 (inside the melody's register)
        for p, s, e, _v, voice in mt.backing(mel, mt.bar_lines(pm, end), key=estimate_key(mel), rng=rng):
            voices.setdefault(voice, []).append((p + (up if voice == 1 else 0), s, e, int(rng.uniform(45, 95))))
        progs = {
            0: int(rng.choice(mt.MELODY_PROGRAMS)),
            1: int(rng.choice(mt.BACKING_PROGRAMS)),
            2: 32 + int(rng.integers(0, 4)),
        }
    else:
        others = [i for i in range(len(parts)) if i != mel_index]
        voices |= {k + 1: list(parts[i]) for k, i in enumerate(others)}
        progs = {k + 1: programs[i] if i < len(programs) else 0 for k, i in enumerate(others)}
        progs[0] = programs[mel_index] if mel_index < len(programs) else 0
        if version % 2 == 1:  # re-orchestrated: melody instrument over accompaniment instruments
            progs = {k: int(rng.choice(ACCOMP_PROGRAMS)) for k in progs} | {0: int(rng.choice(mt.MELODY_PROGRAMS))}
        else:
            mel_gain = 1.0
    out = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    for index, notes in voices.items():
        inst = pretty_midi.Instrument(program=progs.get(index, 0))
        shift = transpose + (mel_shift if index == 0 else 0)
        gain = mel_gain if index == 0 else 1.0
        for p, s, e, v in notes:
            a, b = (s - start0) / tempo, (min(e, end) - start0) / tempo
            if s < end and 0 <= p + shift < 128 and b - a >= 0.03:
                vel = int(np.clip(v * gain, 1, 127))
                inst.notes.append(pretty_midi.Note(velocity=vel, pitch=int(p + shift), start=a, end=b))
        out.instruments.append(inst)
    performed = [(p + transpose + mel_shift, (o - start0) / tempo, d / tempo) for p, o, d in mel]
    desc = {"kind": "folk tune with backing" if folk else "piece", "transposition": transpose, "tempo_factor": tempo}
    desc |= {"melody_gain_db": round(20 * np.log10(mel_gain), 2), "programs": [progs.get(i, 0) for i in voices]}
    return out, performed, desc


def _render(pm, path: Path, *, soundfont: str, seed: int) -> float:
    """Render with FluidSynth, apply a random recording chain, write FLAC; returns seconds."""
    recording = _recording(np.random.default_rng(seed))
    return mt.render_flac(pm, path, soundfont=soundfont, recording=recording, seed=seed)


def uses_samples(pm, *, piece: str, version: int) -> bool:
    """Whether a version with ``piano_samples`` set renders its keyboard instruments with the samples: it has
    some, and a draw seeded by the piece and version (apart from the arrangement's) falls below
    :data:`PIANO_SAMPLE_SHARE`."""
    from mirsearch.datasets.samples import KEYBOARD_PROGRAMS

    if not any(i.program in KEYBOARD_PROGRAMS and not i.is_drum and i.notes for i in pm.instruments):
        return False
    return bool(np.random.default_rng(stable_seed("mutopia-train-piano", piece, version)).random() < PIANO_SAMPLE_SHARE)


def _render_sampled(pm, path: Path, *, soundfont: str, seed: int, samples: str) -> float:
    """Render keyboard instruments with the piano samples and the others with FluidSynth (summed at
    :data:`mirsearch.datasets.mutopia_themes.SR`), apply the random recording chain of :func:`_render`, write
    FLAC; returns seconds."""
    import pretty_midi

    from mirsearch.datasets.render import apply_recording, encode, render_midi
    from mirsearch.datasets.samples import KEYBOARD_PROGRAMS, piano

    keys = [i for i in pm.instruments if i.program in KEYBOARD_PROGRAMS and not i.is_drum]
    others = [i for i in pm.instruments if i not in keys and i.notes]
    sampler = piano(str(samples), mt.SR)
    parts = [sampler.render(i, sr=mt.SR) for i in keys]
    if others:
        rest = pretty_midi.PrettyMIDI(initial_tempo=120.0)
        rest.instruments = others
        with tempfile.TemporaryDirectory(prefix="mirsearch-mt-") as tmp:
            rest.write(str(Path(tmp) / "p.mid"))
            parts.append(render_midi(Path(tmp) / "p.mid", soundfont=soundfont, sr=mt.SR, timeout=300.0))
    y = np.zeros(max(len(p) for p in parts), dtype=np.float32)
    for p in parts:
        y[: len(p)] += p
    y = apply_recording(y, sr=mt.SR, recording=_recording(np.random.default_rng(seed)), seed=seed)
    encode(y, path, sr=mt.SR, encoding="flac")
    return len(y) / mt.SR


def build_piece(piece_dir: Path, git_dir: str, path: str, *, options: MutopiaTrainOptions) -> dict | None:
    """Compile, arrange, render and cut one piece (unless done); its ``piece.json`` row, or None."""

    def midi() -> bytes:
        text = mt.source_text(git_dir, path)
        if not mt.source_ok(path, text):
            raise InputError("not a usable source")
        return mt.lilypond_midi(text)

    return build_midi_piece(piece_dir, midi, source=path, work="/".join(path.split("/")[1:3]), options=options)


def build_midi_piece(piece_dir: Path, midi, *, source: str, work: str, options: MutopiaTrainOptions) -> dict | None:
    """Arrange, render and cut the piece whose MIDI ``midi()`` returns (unless done); its row, or None."""
    import pretty_midi

    if (piece_dir / mt.FAILED_FILE).is_file():
        return None
    done = piece_dir / mt.PIECE_FILE
    if done.is_file():
        return json.loads(done.read_text(encoding="utf-8"))
    row: dict = {"id": piece_dir.name, "source": source, "work": work, "versions": []}
    try:
        pm = pretty_midi.PrettyMIDI(io.BytesIO(midi()))
        piece_dir.mkdir(parents=True, exist_ok=True)
        for k in range(options.versions):
            seed = stable_seed("mutopia-train", piece_dir.name, k)
            rng = np.random.default_rng(seed)
            arranged, melody, desc = arrange(pm, version=k, rng=rng, max_seconds=options.max_seconds)
            windows = melody_windows(melody, rng=rng)
            if not windows:
                raise InputError("no melody window")
            font = TRAIN_FONTS[(seed >> 3) % len(TRAIN_FONTS)]
            sampled = options.piano_samples is not None and uses_samples(arranged, piece=piece_dir.name, version=k)
            if sampled:
                duration = _render_sampled(
                    arranged, piece_dir / f"v{k}", soundfont=font, seed=seed, samples=options.piano_samples
                )
            else:
                duration = _render(arranged, piece_dir / f"v{k}", soundfont=font, seed=seed)
            segs = [
                {"start": round(w[0][1], 4), "end": round(min(w[-1][1] + w[-1][2], duration), 4)}
                | {"labels": [int(p) % 12 for p, _, _ in w], "pitches": [int(p) for p, _, _ in w]}
                for w in windows
                if w[0][1] < duration - 1.0
            ]
            version = {"audio": f"v{k}.flac", "soundfont": Path(font).stem, **desc, "segments": segs}
            if options.piano_samples is not None:
                version["renderer"] = "samples" if sampled else "fluidsynth"
            row["versions"].append(version)
    except (MirsearchError, subprocess.TimeoutExpired, ValueError, OSError, IndexError, KeyError, EOFError) as exc:
        logger.info("%s: skipped (%s)", source, exc)
        piece_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(piece_dir / mt.FAILED_FILE, f"{type(exc).__name__}: {exc}\n")
        return None
    text = json.dumps(row, indent=1, default=lambda x: x.item() if isinstance(x, np.generic) else str(x))
    atomic_write_text(done, text)
    return json.loads(text)


def piece_pitches(row: dict, midi: bytes, *, max_seconds: float) -> int:
    """Add the melody notes' sounding MIDI pitches (``pitches``) to the segments of a built piece's ``row`` (in
    place) that lack them, from its source ``midi``: each version's arrangement and windows are drawn again with
    the build's seeds (no rendering) and matched to the stored segments by start and labels. Returns how many
    segments got pitches (a segment that matches no window keeps none)."""
    import pretty_midi

    pm, added = pretty_midi.PrettyMIDI(io.BytesIO(midi)), 0
    for k, version in enumerate(row["versions"]):
        if all("pitches" in seg for seg in version["segments"]):
            continue
        rng = np.random.default_rng(stable_seed("mutopia-train", row["id"], k))
        _, melody, _ = arrange(pm, version=k, rng=rng, max_seconds=max_seconds)
        found = {(round(w[0][1], 4), tuple(int(p) % 12 for p, _, _ in w)): [int(p) for p, _, _ in w]
                 for w in melody_windows(melody, rng=rng)}  # fmt: skip
        for seg in version["segments"]:
            pitches = found.get((seg["start"], tuple(seg["labels"])))
            if "pitches" not in seg and pitches is not None:
                seg["pitches"] = pitches
                added += 1
    return added


def add_pitches(out: str | Path, sources, *, max_seconds: float) -> tuple[int, int]:
    """:func:`piece_pitches` for every built piece under ``out`` (``sources(row)`` returns the piece's MIDI bytes),
    each ``piece.json`` rewritten atomically, then ``segments.json`` (resumable). Returns ``(segments with pitches,
    segments)``."""
    out = Path(out)
    rows = []
    for done in sorted(out.glob(f"pieces/*/{mt.PIECE_FILE}")):
        row = json.loads(done.read_text(encoding="utf-8"))
        if any("pitches" not in seg for v in row["versions"] for seg in v["segments"]):
            try:
                if piece_pitches(row, sources(row), max_seconds=max_seconds):
                    atomic_write_text(done, json.dumps(row, indent=1))
            except (MirsearchError, subprocess.TimeoutExpired, ValueError, OSError, KeyError, EOFError) as exc:
                logger.warning("%s: no pitches (%s)", done.parent.name, exc)
        rows.append(row)
    by_key = {(f"{r['id']}_v{k}", seg["start"]): seg for r in rows for k, v in enumerate(r["versions"])
              for seg in v["segments"]}  # fmt: skip
    table = json.loads((out / SEGMENTS_FILE).read_text(encoding="utf-8"))
    for seg in table:
        known = by_key.get((seg["recording"], seg["start"]), {})
        if "pitches" in known and known["labels"] == seg["labels"]:
            seg["pitches"] = known["pitches"]
    atomic_write_text(out / SEGMENTS_FILE, json.dumps(table))
    return sum("pitches" in seg for seg in table), len(table)


def build_folk(options: MutopiaTrainOptions, *, collections: tuple[str, ...]) -> list[dict]:
    """Training recordings of ``options.n_pieces`` folk tunes of the music21 corpus's ABC folders
    ``collections`` (:func:`mirsearch.datasets.mutopia_themes.folk_tunes`) over a generated backing, as
    :func:`build` makes them of Mutopia's folk tunes; returns the segment table (``OUT/segments.json``)."""
    out = Path(options.out)
    rows, t0 = [], time.monotonic()
    for tune_id, text in mt.folk_tunes(collections):
        if len(rows) >= options.n_pieces or time.monotonic() - t0 > options.time_limit:
            break
        pid = re.sub(r"[^A-Za-z0-9_-]+", "_", tune_id)
        row = build_midi_piece(out / "pieces" / pid, lambda text=text: mt.abc_midi(text), source=tune_id,
                               work=tune_id, options=options)  # fmt: skip
        if row is not None:
            rows.append(row)
            logger.info("%d / %d %s", len(rows), options.n_pieces, tune_id)
            if len(rows) % 10 == 0:
                atomic_write_text(out / SEGMENTS_FILE, json.dumps(segments_table(rows)))
    table = segments_table(rows)
    atomic_write_text(out / SEGMENTS_FILE, json.dumps(table))
    return table


def segments_table(rows: list[dict]) -> list[dict]:
    """Every segment of built pieces: ``recording``, ``audio`` (relative), ``start``, ``end``, ``labels``, ``group``."""
    out = []
    for r in rows:
        for k, v in enumerate(r["versions"]):
            for s in v["segments"]:
                rec = f"{r['id']}_v{k}"
                out.append({"recording": rec, "audio": f"pieces/{r['id']}/{v['audio']}", **s, "group": r["work"]})
    return out


def build(options: MutopiaTrainOptions) -> list[dict]:
    """Build (or resume) the training set; returns the segment table written to ``OUT/segments.json``.

    Folk tunes (the ``Traditional`` folder) come first, then other pieces in a stable hashed order, at
    most :data:`PER_COMPOSER` per composer; sources of 1.5-40 kB.
    """
    out = Path(options.out)
    held_works, held_ids = excluded(options.exclude)
    held_names = {related_name(i) for i in held_ids}
    order = sorted(mt.candidates(options.mutopia_git), key=lambda ps: ps[0].split("/")[1] != "Traditional")
    per_composer: dict[str, int] = {}
    rows, t0 = [], time.monotonic()
    for path, size in order:
        if len(rows) >= options.n_pieces or time.monotonic() - t0 > options.time_limit:
            break
        composer, work, pid = path.split("/")[1], "/".join(path.split("/")[1:3]), piece_id_of(path)
        if work in held_works or related_name(pid) in held_names or not 1500 <= size <= 40000:
            continue
        if composer != "Traditional" and per_composer.get(composer, 0) >= PER_COMPOSER:
            continue
        row = build_piece(out / "pieces" / pid, options.mutopia_git, path, options=options)
        if row is None:
            continue
        rows.append(row)
        per_composer[composer] = per_composer.get(composer, 0) + 1
        n_seg = sum(len(v["segments"]) for v in row["versions"])
        logger.info("%d / %d %s (%s): %d segments", len(rows), options.n_pieces, pid, row["versions"][0]["kind"], n_seg)
        atomic_write_text(out / SEGMENTS_FILE, json.dumps(segments_table(rows)))
    table = segments_table(rows)
    atomic_write_text(out / SEGMENTS_FILE, json.dumps(table))
    return table
