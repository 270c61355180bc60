"""Note strings, MIDI, MusicXML and kern: parsing, round trips and errors."""

from __future__ import annotations

import numpy as np
import pytest

from mirsearch.errors import InputError, ParameterError
from mirsearch.features.symbolic import notes_to_chroma
from mirsearch.scores import Note, Theme, load_theme, parse_note_string, read_theme, save_midi, save_musicxml


def test_note_string_pitches_and_durations():
    t = parse_note_string("E5/8 D#5/8 E5/4 Bb4/2. r/4 C")
    assert [n.pitch for n in t.notes] == [76, 75, 76, 70, 72]
    assert [n.duration for n in t.notes] == [0.5, 0.5, 1.0, 3.0, 1.0]
    assert [n.onset for n in t.notes] == [0.0, 0.5, 1.0, 2.0, 6.0]


def test_note_string_octave_follows_previous_note_and_flats_equal_sharps():
    assert [n.pitch for n in parse_note_string("G G G Eb F F F D").notes] == [67, 67, 67, 63, 65, 65, 65, 62]
    assert parse_note_string("B C").pitches.tolist() == [71, 72]  # C closest to B4 is C5
    assert parse_note_string("Db4 E-4").pitches.tolist() == parse_note_string("C#4 D#4").pitches.tolist()


@pytest.mark.parametrize("bad", ["", "H4", "C4/3", "E D# X", "C12"])
def test_note_string_errors(bad):
    with pytest.raises(InputError):
        parse_note_string(bad)


def test_to_string_round_trip():
    t = parse_note_string("E5/8 D#5/8 E5/4 R/8 B4/8. C5/16 A4/2")
    assert parse_note_string(t.to_string()) == t


def _theme():
    return parse_note_string("C5/4 E5/8 G5/8 C6/2 B5/4. A5/8 G5/1")


def test_midi_round_trip(tmp_path):
    t = _theme()
    save_midi(t, tmp_path / "t.mid", tempo_bpm=90)
    back = load_theme(tmp_path / "t.mid")
    assert back.pitches.tolist() == t.pitches.tolist()
    np.testing.assert_allclose([n.onset for n in back.notes], [n.onset for n in t.notes], atol=1e-3)
    np.testing.assert_allclose([n.duration for n in back.notes], [n.duration for n in t.notes], atol=1e-3)
    assert back.tempo_bpm == pytest.approx(90)


@pytest.mark.parametrize("ext", [".musicxml", ".xml"])
def test_musicxml_round_trip(tmp_path, ext):
    t = _theme()
    save_musicxml(t, tmp_path / f"t{ext}")
    back = load_theme(tmp_path / f"t{ext}")
    assert back.pitches.tolist() == t.pitches.tolist()
    assert [n.duration for n in back.notes] == [n.duration for n in t.notes]


def test_polyphonic_score_takes_highest_part_or_named_part(tmp_path):
    import music21

    score = music21.corpus.parse("bach/bwv66.6")
    path = tmp_path / "chorale.musicxml"
    score.write("musicxml", fp=str(path))
    soprano = load_theme(path)
    bass = load_theme(path, part="Bass")
    assert np.mean(soprano.pitches) > np.mean(bass.pitches) + 12
    first = [p.midi for p in score.parts[0].flatten().notes[0].pitches]
    assert soprano.notes[0].pitch == max(first)
    with pytest.raises(InputError, match="no part named"):
        load_theme(path, part="Trumpet")


def test_kern_file(tmp_path):
    path = tmp_path / "t.krn"
    path.write_text("**kern\n*M4/4\n=1\n4c\n8e\n8g\n2cc\n=2\n1g\n*-\n")
    t = load_theme(path)
    assert t.pitches.tolist() == [60, 64, 67, 72, 67]
    assert [n.duration for n in t.notes] == [1.0, 0.5, 0.5, 2.0, 4.0]


def test_skyline_of_chords_in_midi(tmp_path):
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(0)
    for t, chord in enumerate([(60, 64, 67), (62, 65, 69)]):
        for p in chord:
            inst.notes.append(pretty_midi.Note(80, p, t * 0.5, t * 0.5 + 0.5))
    pm.instruments.append(inst)
    pm.write(str(tmp_path / "c.mid"))
    assert load_theme(tmp_path / "c.mid").pitches.tolist() == [67, 69]


def test_sequencer_gaps_are_articulation_not_rests(tmp_path):
    """Notes that stop a tick before the next onset are held to it; a real rest (an eighth here) stays a rest."""
    import mido

    tpb = 480
    mid = mido.MidiFile(ticks_per_beat=tpb)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    for k, pitch in enumerate([60, 62, 64, 65]):
        rest = tpb // 2 if k == 3 else 1  # one tick of gap, then an eighth rest before the last note
        track.append(mido.Message("note_on", note=pitch, velocity=80, time=rest if k else 0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=tpb - 1))
    mid.save(tmp_path / "seq.mid")
    theme = load_theme(tmp_path / "seq.mid")
    assert [n.duration for n in theme.notes[:2]] == pytest.approx([1.0, 1.0])
    assert theme.to_string().split() == ["C4/4", "D4/4", "E4/4", "R/8", "F4/4"]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.mid", b"not a midi file", "malformed MIDI"),
        ("bad.musicxml", b"<score-partwise><part>", "malformed score"),
        ("empty.krn", b"**kern\n*-\n", "no notes"),
        ("theme.txt", b"C D E", "unknown score format"),
    ],
)
def test_malformed_files_name_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        load_theme(path)
    assert name in str(info.value)


def test_missing_file():
    with pytest.raises(InputError, match="no such file"):
        read_theme("does/not/exist.mid")


def test_notes_to_chroma_frames_and_transposition():
    t = Theme((Note(60, 0, 1), Note(62, 1, 0.5), Note(71, 1.5, 0.25)), None, "t")
    X = notes_to_chroma(t, feature_rate=10, tempo_bpm=60)
    assert X.shape == (12, 10 + 5 + 3)  # 0.25 quarter at 60 bpm = 2.5 frames, rounded with carry
    assert X[:, :10].argmax(0).tolist() == [0] * 10
    assert X[:, 10:15].argmax(0).tolist() == [2] * 5
    Xt = notes_to_chroma(t, feature_rate=10, tempo_bpm=60, transpose=3)
    np.testing.assert_array_equal(Xt, np.roll(X, 3, axis=0))


def test_harmonic_template_by_hand_and_query_with_overtones():
    from mirsearch.features.symbolic import harmonic_template

    d = 0.5
    T = harmonic_template(d)
    # partials 1, 2, 4 are the pitch class itself, 3 and 6 the fifth, 5 the major third
    expected = np.zeros(12)
    expected[0], expected[7], expected[4] = 1 + d + d**3, d**2 + d**5, d**4
    np.testing.assert_allclose(T[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(T[:, 5], np.roll(expected, 5), rtol=1e-6)
    np.testing.assert_array_equal(harmonic_template(0.0), np.eye(12))
    with pytest.raises(ParameterError):
        harmonic_template(1.5)
    t = parse_note_string("C4/4 E4/4 G4/2")
    plain = notes_to_chroma(t, feature_rate=10, tempo_bpm=60)
    X = notes_to_chroma(t, feature_rate=10, tempo_bpm=60, harmonic_decay=d)
    assert X.shape == plain.shape
    np.testing.assert_allclose(np.linalg.norm(X, axis=0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(X, (T @ plain) / np.linalg.norm(T @ plain, axis=0), rtol=1e-6)
    assert np.array_equal(X.argmax(0), plain.argmax(0))


def _xml(notes: str) -> str:
    return (
        '<?xml version="1.0"?><score-partwise version="3.1"><part-list><score-part id="P1"><part-name>M</part-name>'
        '</score-part></part-list><part id="P1"><measure number="1"><attributes><divisions>1</divisions>'
        f"</attributes>{notes}</measure></part></score-partwise>"
    )


def _note(duration: int) -> str:
    return f"<note><pitch><step>C</step><octave>4</octave></pitch><duration>{duration}</duration></note>"


def test_score_limits_give_one_line_errors(tmp_path):
    import zipfile

    from mirsearch.scores import load_score_notes

    (tmp_path / "long.musicxml").write_text(_xml(_note(200000)))
    for reader in (load_theme, load_score_notes):
        with pytest.raises(InputError, match="long.musicxml: the notes span 2e\\+05 quarter notes"):
            reader(tmp_path / "long.musicxml")
    (tmp_path / "deep.musicxml").write_text(_xml("<a>" * 500 + "</a>" * 500))
    with pytest.raises(InputError, match="deep.musicxml: XML nested more than"):
        load_theme(tmp_path / "deep.musicxml")
    with zipfile.ZipFile(tmp_path / "bomb.mxl", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("score.xml", _xml(_note(1)) + " " * (80 * 1024 * 1024))
    assert (tmp_path / "bomb.mxl").stat().st_size < 1_000_000
    with pytest.raises(InputError, match="bomb.mxl: archive expands to 84 MB"):
        load_theme(tmp_path / "bomb.mxl")
    with pytest.raises(InputError, match="tokens"):
        parse_note_string("C " * 6000)
    with pytest.raises(InputError, match="power of two"):
        parse_note_string("C/4096")
