"""The "other music" theme benchmark builder (issue 14): melody, theme, backing, manifest; no LilyPond run."""

from __future__ import annotations

import io

import numpy as np
import pretty_midi
import pytest

from mirsearch.datasets.manifest import Dataset
from mirsearch.datasets.mutopia_themes import (
    TRIADS,
    MutopiaThemesOptions,
    backing,
    manifest,
    melody_part,
    opening_theme,
    parts_of,
    perform,
    skyline,
    source_ok,
    split_of,
)
from mirsearch.datasets.themes import Key
from mirsearch.errors import InputError


def _midi(parts, *, tempo=120.0) -> bytes:
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    for program, notes in parts:
        inst = pretty_midi.Instrument(program=program)
        inst.notes = [pretty_midi.Note(velocity=80, pitch=p, start=s, end=e) for p, s, e in notes]
        pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


SCALE = [60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 60, 64]


def test_skyline_keeps_highest_note_per_onset_and_cuts_at_next():
    notes = [(48, 0.0, 2.0, 80), (64, 0.01, 1.0, 80), (60, 0.0, 1.0, 80), (67, 0.5, 1.5, 80)]
    assert skyline(notes) == [(64, 0.0, pytest.approx(0.5)), (67, 0.5, pytest.approx(1.0))]


def test_melody_part_is_highest_busy_part():
    low = [(40 + k % 5, k * 0.5, k * 0.5 + 0.5, 80) for k in range(20)]
    high = [(70 + k % 5, k * 0.5, k * 0.5 + 0.5, 80) for k in range(20)]
    sparse_top = [(90, 0.0, 1.0, 80)]
    assert melody_part([low, high, sparse_top]) == 1


def test_opening_theme_spans_and_rejects_monotone():
    mel = [(p, 0.5 * k, 0.5) for k, p in enumerate(SCALE)]
    theme = opening_theme(mel)
    assert len(theme) == 8 and theme[0] == mel[0]  # 8 notes already span 4 s
    assert opening_theme([(60, 0.5 * k, 0.5) for k in range(16)]) is None
    assert opening_theme([(p, 3.0 * k, 3.0) for k, p in enumerate(SCALE)]) is None  # only 3 notes in 10 s


def test_backing_chords_are_diatonic_and_follow_the_melody():
    key = Key(7, "major", 1.0)  # G major
    mel = [(67, 0.0, 1.0), (71, 1.0, 1.0), (74, 2.0, 1.0), (62, 2.0, 0.01)]  # a G major arpeggio
    notes = backing(mel, np.array([0.0, 4.0]), key=key, rng=np.random.default_rng(0))
    bass = [n for n in notes if n[4] == 2]
    chords = {n[0] % 12 for n in notes if n[4] == 1}
    assert [b[0] % 12 for b in bass] == [7] and chords == {7, 11, 2}
    diatonic = {(7 + pc) % 12 for t in TRIADS["major"] for pc in t}
    assert all(n[0] % 12 in diatonic for n in notes)


def test_perform_folk_tune_gets_backing_and_theme_in_c():
    mel = [(p + 2, 1.0 + 0.5 * k, 1.0 + 0.5 * k + 0.45) for k, p in enumerate(SCALE * 2)]  # D major tune
    pm, desc = perform(_midi([(73, mel)]), "tune", max_seconds=60.0)
    assert desc["kind"] == "folk tune with backing" and len(pm.instruments) == 3
    assert desc["key"] == "D major" and desc["shift_to_c"] == -2
    assert [n[0] for n in desc["theme"]] == SCALE[: len(desc["theme"])]
    t = desc["tempo_factor"]
    assert desc["onsets"][0] == pytest.approx(0.0) and desc["onsets"][1] == pytest.approx(0.5 / t, abs=1e-3)
    played = sorted(n.pitch for n in pm.instruments[0].notes)[:1]
    assert played == [SCALE[0] + 2 + desc["transposition"]]
    with pytest.raises(InputError):
        perform(_midi([(0, [(60, 0.0, 1.0)])]), "short", max_seconds=60.0)


def test_parts_drop_drums_and_source_filter():
    pm = pretty_midi.PrettyMIDI(io.BytesIO(_midi([(0, [(60, 0.0, 1.0)])])))
    drum = pretty_midi.Instrument(program=0, is_drum=True)
    drum.notes.append(pretty_midi.Note(velocity=80, pitch=36, start=0.0, end=0.1))
    pm.instruments.append(drum)
    assert len(parts_of(pm)) == 1
    ok = '\\version "2.18.2"\n\\score { \\new Staff { c4 } \\midi { } }'
    assert source_ok("ftp/X/Y/y.ly", ok)
    assert not source_ok("ftp/X/Y/y.ly", ok.replace("\\midi { }", ""))
    assert not source_ok("ftp/X/Chorales/y.ly", ok) and not source_ok("ftp/MonteverdiC/Y/y.ly", ok)
    assert not source_ok("ftp/X/Y/y.ly", ok.replace("2.18.2", "2.8.0"))


def test_manifest_loads_as_dataset_with_both_splits(tmp_path):
    rows = []
    for k in range(6):
        rows.append(
            {
                "id": f"p{k}",
                "source": f"ftp/C{k}/W{k}/p{k}.ly",
                "composer": f"C{k}",
                "work": f"C{k}/W{k}",
                "kind": "piece",
                "key": "C major",
                "shift_to_c": 0,
                "transposition": 2,
                "tempo_factor": 1.1,
                "programs": [0],
                "score_duration": 30.0,
                "theme": [[60, 0.0, 0.5], [62, 0.5, 0.5]],
                "onsets": [0.0, 0.4545],
                "score_start": 0.0,
                "theme_end": 0.909,
                "soundfont": "/x/MuseScore_General_Lite.sf3",
                "duration": 28.0,
            }
        )
    data = manifest(rows, options=MutopiaThemesOptions(mutopia_git="g", out=str(tmp_path)))
    from mirsearch.datasets.manifest import write_json_atomic

    write_json_atomic(tmp_path / "manifest.json", data)
    ds = Dataset.load(tmp_path)
    splits = {split_of(r["work"]) for r in rows}
    assert set(ds.manifest["splits"]) == {"validation", "test"} and splits <= {"validation", "test"}
    total = sum(len(ds.split(s).themes) for s in ("validation", "test"))
    assert total == 6
    v = ds.versions["p0_v0"]
    assert v.occurrences[0].transposition == 2 and v.score_to_audio(11.0) == pytest.approx(10.0)
    assert ds.relevant_versions("p0_t0") == {"p0_v0"}


def test_abc_midi_sounds_the_tune_and_rejects_garbage():
    from mirsearch.datasets.mutopia_themes import abc_midi

    tune = "X:1\nT:scale\nM:4/4\nL:1/4\nK:C\nC D E F | G A B c |]\n"
    pm = pretty_midi.PrettyMIDI(io.BytesIO(abc_midi(tune)))
    notes = sorted((n.start, n.pitch) for inst in pm.instruments for n in inst.notes)
    assert [p for _, p in notes] == [60, 62, 64, 65, 67, 69, 71, 72]
    with pytest.raises(InputError):
        abc_midi("X:1\nK:notakey\n|||::::[[[\n")


def test_folk_tunes_are_split_per_tune_in_a_stable_order():
    from mirsearch.datasets.mutopia_themes import folk_tunes

    tunes = folk_tunes(("airdsAirs",))
    assert len(tunes) > 50 and len({t for t, _ in tunes}) == len(tunes)
    assert all(text.startswith("X:") and t.startswith("airdsAirs/") for t, text in tunes)
    assert folk_tunes(("airdsAirs",)) == tunes


def test_build_passes_over_excluded_works_and_series(tmp_path, monkeypatch):
    import importlib.util
    import json
    from pathlib import Path

    from mirsearch.datasets import mutopia_themes as mt

    paths = [
        ("ftp/ComposerA/op1/Sonata-1.ly", 5000),  # excluded by its series (Sonata-2 was built elsewhere)
        ("ftp/ComposerA/op2/Dance.ly", 5000),  # excluded by its work
        ("ftp/ComposerB/op3/Waltz.ly", 5000),
        ("ftp/ComposerC/op4/Air.ly", 5000),
    ]
    built = []

    def fake_build_piece(piece_dir, git, path, *, max_seconds):
        built.append(piece_dir.name)
        work = "/".join(path.split("/")[1:3])
        return {"id": piece_dir.name, "source": path, "composer": path.split("/")[1], "work": work, "kind": "piece"}

    monkeypatch.setattr(mt, "candidates", lambda git: paths)
    monkeypatch.setattr(mt, "build_piece", fake_build_piece)
    monkeypatch.setattr(mt, "manifest", lambda rows, options: {"rows": [r["id"] for r in rows]})
    # the benchmark script reads the exclusions from a built set: a training set with piece.json rows
    other = tmp_path / "train" / "pieces"
    (other / "Sonata-2").mkdir(parents=True)
    (other / "Sonata-2" / "piece.json").write_text(json.dumps({"work": "ComposerZ/op9"}))
    (other / "Dance").mkdir()
    (other / "Dance" / "piece.json").write_text(json.dumps({"work": "ComposerA/op2"}))
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "build_mutopia_themes.py"
    spec = importlib.util.spec_from_file_location("build_mutopia_themes", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    excl = mod.excluded_sets([str(tmp_path / "train")])
    assert excl["exclude_works"] == {"ComposerZ/op9", "ComposerA/op2"}
    assert mt.name_key("Sonata-1") == mt.name_key("Sonata-2") == "sonata"
    opts = MutopiaThemesOptions(mutopia_git="g", out=str(tmp_path / "out"), n_per_split=10, **excl)
    mt.build(opts)
    assert built == ["Waltz", "Air"]
    mt.build(MutopiaThemesOptions(mutopia_git="g", out=str(tmp_path / "out2"), n_per_split=10))
    assert built[2:] == ["Sonata-1", "Dance", "Waltz", "Air"]  # nothing excluded by default
    with pytest.raises(SystemExit, match="not a directory"):
        mod.excluded_sets([str(tmp_path / "missing")])
