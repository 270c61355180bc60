"""Other-music training data (issue 14): melody windows, arrangement, exclusion, segment table; no LilyPond run."""

from __future__ import annotations

import json

import numpy as np
import pretty_midi
import pytest

from mirsearch.datasets.mutopia_train import (
    TRAIN_FONTS,
    arrange,
    excluded,
    melody_windows,
    piece_id_of,
    related_name,
)
from mirsearch.errors import ParameterError
from mirsearch.training.data import load_segment_table

SCALE = [60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 60, 64, 65, 67, 69, 71]


def _pm(parts):
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    for program, notes in parts:
        inst = pretty_midi.Instrument(program=program)
        inst.notes = [pretty_midi.Note(velocity=80, pitch=p, start=s, end=e) for p, s, e in notes]
        pm.instruments.append(inst)
    return pm


def test_melody_windows_are_consecutive_disjoint_and_within_limits():
    melody = [(p, 0.5 * k, 0.5) for k, p in enumerate(SCALE * 3)]
    wins = melody_windows(melody, rng=np.random.default_rng(0))
    assert len(wins) >= 3
    flat = [n for w in wins for n in w]
    assert len(flat) == len(set(flat))  # disjoint
    for w in wins:
        span = w[-1][1] + w[-1][2] - w[0][1]
        assert 6 <= len(w) <= 14 and 2.0 <= span <= 10.0
        assert w == melody[melody.index(w[0]) : melody.index(w[0]) + len(w)]  # consecutive notes
    # one slow note every 3 s: no window of 6 notes fits in 10 s; a monotone melody has < 3 pitch classes
    assert melody_windows([(60 + k, 3.0 * k, 3.0) for k in range(12)], rng=np.random.default_rng(0)) == []
    assert melody_windows([(60, 0.5 * k, 0.5) for k in range(20)], rng=np.random.default_rng(0)) == []


def test_arrange_folk_tune_backing_and_labels_follow_the_key_change():
    pm = _pm([(0, [(p, 0.5 * k, 0.5 * k + 0.5) for k, p in enumerate(SCALE)])])
    out, melody, desc = arrange(pm, version=0, rng=np.random.default_rng(3), max_seconds=45.0)
    assert desc["kind"] == "folk tune with backing" and len(out.instruments) == 3  # melody, chords, bass
    t, f = desc["transposition"], desc["tempo_factor"]
    np.testing.assert_allclose([o for _, o, _ in melody], [0.5 * k / f for k in range(len(SCALE))], atol=1e-9)
    mel_notes = out.instruments[0].notes
    assert {(n.pitch - p - t) % 12 for n, p in zip(mel_notes, SCALE, strict=True)} == {0}  # octave shift only
    assert [p for p, _, _ in melody] == [n.pitch for n in mel_notes]  # the melody's pitches are the sounding ones
    shifted = [arrange(pm, version=0, rng=np.random.default_rng(seed), max_seconds=45.0) for seed in range(12)]
    assert {m[0][0] - SCALE[0] - d["transposition"] for _, m, d in shifted} == {0, 12}  # a low tune: up or not


def test_arrange_piece_keeps_programs_in_version_0_and_reorchestrates_version_1():
    top = [(p + 12, 0.5 * k, 0.5 * k + 0.5) for k, p in enumerate(SCALE)]
    low = [(48 + (k % 3) * 4, 0.5 * k, 0.5 * k + 0.5) for k in range(len(SCALE))]
    pm = _pm([(40, top), (0, low)])
    out0, mel0, d0 = arrange(pm, version=0, rng=np.random.default_rng(1), max_seconds=45.0)
    assert d0["kind"] == "piece" and d0["programs"] == [40, 0] and d0["melody_gain_db"] == 0.0
    assert [p - d0["transposition"] for p, _, _ in mel0] == [p for p, _, _ in top]
    out1, _, d1 = arrange(pm, version=1, rng=np.random.default_rng(1), max_seconds=45.0)
    assert len(out1.instruments) == 2 and -8.0 <= d1["melody_gain_db"] <= 4.0
    assert all("MuseScore" not in f for f in TRAIN_FONTS)  # the evaluation's font is never used in training


def test_excluded_reads_works_and_piece_ids(tmp_path):
    (tmp_path / "pieces" / "Gavotte").mkdir(parents=True)
    (tmp_path / "pieces" / "Failed_one").mkdir()
    works = [{"id": "Gavotte", "mutopia_work": "BachJS/BWV1068"}]
    (tmp_path / "manifest.json").write_text(json.dumps({"works": works}))
    assert excluded((str(tmp_path),)) == ({"BachJS/BWV1068"}, {"Gavotte", "Failed_one"})
    assert piece_id_of("ftp/Traditional/x/my tune.v2.ly") == "my_tune_v2"
    assert related_name("Ave_Maris_Stella-2e_verset") == related_name("Ave_Maris_Stella-3e_verset")
    assert related_name("Chop-28-3") == related_name("chop_28_5") != related_name("Chopin-Op10")


def test_segment_table_loads_and_skips_missing_audio(tmp_path):
    (tmp_path / "a.flac").write_bytes(b"")
    rows = [
        {"recording": "a_v0", "audio": "a.flac", "start": 1.0, "end": 3.0, "labels": [0, 14, 7], "group": "W/a"},
        {"recording": "b_v0", "audio": "b.flac", "start": 1.0, "end": 3.0, "labels": [0, 2, 7], "group": "W/b"},
        {"recording": "a_v0", "audio": "a.flac", "start": 4.0, "end": 5.0, "labels": [5], "group": "W/a"},
    ]
    (tmp_path / "segments.json").write_text(json.dumps(rows))
    segs = load_segment_table(tmp_path)
    assert len(segs) == 1 and segs[0].labels == (0, 2, 7) and segs[0].group == "W/a" and segs[0].start == 1.0
    with pytest.raises(ParameterError):
        load_segment_table(tmp_path / "nothing")


def test_build_midi_piece_marks_failures_and_reuses_done_pieces(tmp_path):
    from mirsearch.datasets.mutopia_train import MutopiaTrainOptions, build_midi_piece
    from mirsearch.errors import InputError

    opts = MutopiaTrainOptions(mutopia_git="", out=str(tmp_path))

    def bad() -> bytes:
        raise InputError("ABC not converted")

    assert build_midi_piece(tmp_path / "p1", bad, source="x/1", work="x/1", options=opts) is None
    assert (tmp_path / "p1" / "FAILED").read_text().startswith("InputError")
    calls = []
    assert build_midi_piece(tmp_path / "p1", lambda: calls.append(1), source="x/1", work="x/1", options=opts) is None
    (tmp_path / "p2").mkdir()
    row = {"id": "p2", "source": "x/2", "work": "x/2", "versions": []}
    (tmp_path / "p2" / "piece.json").write_text(json.dumps(row))
    assert build_midi_piece(tmp_path / "p2", lambda: calls.append(1), source="x/2", work="x/2", options=opts) == row
    assert not calls  # neither a failed nor a finished piece is redone


def test_add_pitches_recovers_the_sounding_melody_notes_of_a_built_piece(tmp_path):
    import io

    from mirsearch.datasets.mutopia_train import add_pitches
    from mirsearch.datasets.performance import stable_seed

    pm = _pm([(0, [(p, 0.5 * k, 0.5 * k + 0.5) for k, p in enumerate(SCALE * 3)])])
    buf = io.BytesIO()
    pm.write(buf)
    midi = buf.getvalue()
    row = {"id": "p1", "source": "x/p1", "work": "x/p1", "versions": []}
    want = {}
    for k in range(2):  # as build_midi_piece draws them (no rendering)
        rng = np.random.default_rng(stable_seed("mutopia-train", "p1", k))
        arranged, melody, _ = arrange(pretty_midi.PrettyMIDI(io.BytesIO(midi)), version=k, rng=rng, max_seconds=45.0)
        sounding = sorted((round(n.start, 4), n.pitch) for n in arranged.instruments[0].notes)
        segs = []
        for w in melody_windows(melody, rng=rng):
            segs.append({"start": round(w[0][1], 4), "end": round(w[-1][1] + w[-1][2], 4),
                         "labels": [int(p) % 12 for p, _, _ in w]})  # fmt: skip
            first = [i for i, (t, _) in enumerate(sounding) if abs(t - w[0][1]) < 1e-3][0]
            want[(f"p1_v{k}", segs[-1]["start"])] = [p for _, p in sounding[first : first + len(w)]]
        row["versions"].append({"audio": f"v{k}.flac", "segments": segs})
    row["versions"][0]["segments"].append({"start": 99.0, "end": 101.0, "labels": [0, 2, 4, 5, 7, 9]})  # no match
    (tmp_path / "pieces" / "p1").mkdir(parents=True)
    (tmp_path / "pieces" / "p1" / "piece.json").write_text(json.dumps(row))
    table = [{"recording": f"p1_v{k}", "audio": f"pieces/p1/v{k}.flac", **s, "group": "x/p1"}
             for k, v in enumerate(row["versions"]) for s in v["segments"]]  # fmt: skip
    (tmp_path / "segments.json").write_text(json.dumps(table))
    calls = []
    done, total = add_pitches(tmp_path, lambda r: calls.append(r["id"]) or midi, max_seconds=45.0)
    assert (done, total) == (len(want), len(want) + 1) and calls == ["p1"]
    got = {(s["recording"], s["start"]): s.get("pitches") for s in json.loads((tmp_path / "segments.json").read_text())}
    assert got.pop(("p1_v0", 99.0)) is None and got == want
    for k in range(2):
        (tmp_path / "pieces" / "p1" / f"v{k}.flac").write_bytes(b"")
    segs = load_segment_table(tmp_path)
    assert all(s.pitches is not None and tuple(p % 12 for p in s.pitches) == s.labels for s in segs if s.start < 99)
    assert add_pitches(tmp_path, lambda r: calls.append(r["id"]) or midi, max_seconds=45.0)[0] == done
    assert calls == ["p1", "p1"]  # the unmatched segment is tried again; matched ones are kept
