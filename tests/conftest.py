"""Shared fixtures: small real renderings of music21 corpus chorales with FluidSynth.

The renderings are built once per test session into a temporary folder (a few seconds); nothing is
committed. The melody (soprano) is played by a violin and the other voices by a piano, as a melody with
accompaniment; times of every soprano note are known exactly from the MIDI.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


@dataclass
class Rendering:
    path: Path
    speed: float  # 1.4 = played 1.4 times as fast
    transpose: int
    soprano: list[tuple[int, float, float]]  # (pitch, start s, end s)


def _chorale_midi(name: str, *, speed: float, transpose: int, out: Path):
    import music21
    import pretty_midi

    score = music21.corpus.parse(name)
    pm = pretty_midi.PrettyMIDI(initial_tempo=100.0 * speed)
    spq = 60.0 / (100.0 * speed)
    soprano = []
    for i, part in enumerate(score.parts[:4]):
        inst = pretty_midi.Instrument(program=40 if i == 0 else 0, name=part.partName or f"p{i}")
        for n in part.flatten().notes:
            for p in n.pitches:
                t0 = float(n.getOffsetInHierarchy(part)) * spq
                t1 = t0 + float(n.quarterLength) * spq
                vel = 100 if i == 0 else 55
                inst.notes.append(pretty_midi.Note(vel, p.midi + transpose, t0, t1))
                if i == 0:
                    soprano.append((p.midi + transpose, t0, t1))
        pm.instruments.append(inst)
    pm.write(str(out))
    return sorted(soprano, key=lambda x: x[1])


def render(name: str, out_dir: Path, *, speed: float = 1.0, transpose: int = 0, fmt: str = "flac") -> Rendering:
    """Render a corpus piece to audio with FluidSynth; returns the rendering and its soprano notes."""
    import soundfile as sf

    stem = f"{name.replace('/', '_')}_x{speed:g}_t{transpose}"
    mid = out_dir / f"{stem}.mid"
    wav = out_dir / f"{stem}.wav"
    soprano = _chorale_midi(name, speed=speed, transpose=transpose, out=mid)
    subprocess.run(
        ["fluidsynth", "-ni", "-q", "-g", "0.6", "-F", str(wav), "-r", "22050", str(SOUNDFONT), str(mid)],
        check=True,
        capture_output=True,
    )
    path = wav
    if fmt != "wav":
        y, sr = sf.read(wav)
        path = out_dir / f"{stem}.{fmt}"
        sf.write(path, y, sr)
        wav.unlink()
    return Rendering(path, speed, transpose, soprano)


@pytest.fixture(scope="session")
def renderings(tmp_path_factory) -> dict[str, Rendering]:
    """Three chorales, one of them also at 0.7x and 1.4x speed; ~2 min of audio."""
    if shutil.which("fluidsynth") is None or not SOUNDFONT.is_file():
        pytest.fail("FluidSynth and fluid-soundfont-gm are required (make setup installs them)")
    out = tmp_path_factory.mktemp("renderings")
    r = {
        "a": render("bach/bwv66.6", out),
        "a_slow": render("bach/bwv66.6", out, speed=0.7),
        "a_fast": render("bach/bwv66.6", out, speed=1.4, fmt="ogg"),
        "b": render("bach/bwv269", out),
        "c": render("bach/bwv153.1", out, transpose=2),
    }
    return r


def theme_of(rendering: Rendering, first: int, count: int):
    """The soprano notes ``first .. first+count-1`` as a Theme (quarter notes) and their true span (s)."""
    from mirsearch.scores import Note, Theme

    notes = rendering.soprano[first : first + count]
    spq = 60.0 / (100.0 * rendering.speed)
    t0 = notes[0][1]
    theme = Theme(
        tuple(Note(p - rendering.transpose, (s - t0) / spq, (e - s) / spq) for p, s, e in notes), None, "theme"
    )
    return theme, (notes[0][1], notes[-1][2])


@pytest.fixture
def rng():
    return np.random.default_rng(0)
