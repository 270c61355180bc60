"""Score search: geometric point-set matching (P1 / P2) against a brute-force reference, invariances, the score
store, the ``score-theme`` task and a point of imitation in a real score of the music21 corpus."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from mirsearch.errors import ParameterError
from mirsearch.index.score_store import NOTE_DTYPE, TICKS_PER_QUARTER, ScoreEntry, ScoreStore, make_pack
from mirsearch.scores import Note, Theme, parse_note_string
from mirsearch.search.score_search import ScoreSearchOptions, occurrences, query_points, search_scores

TPQ = TICKS_PER_QUARTER


def _notes(tick, pitch, part=None) -> np.ndarray:
    a = np.zeros(len(tick), NOTE_DTYPE)
    a["tick"], a["pitch"] = tick, pitch
    a["dur"] = TPQ // 2
    a["part"] = 0 if part is None else part
    a["measure"] = np.asarray(tick) // (4 * TPQ) + 1
    a["onset"] = np.asarray(tick) / TPQ * 0.5
    a["offset"] = a["onset"] + 0.25
    return a[np.lexsort((a["pitch"], a["tick"]))]


def _pack(scores: list[np.ndarray]):
    entries = [ScoreEntry(i + 1, f"s{i}.mid", 0, 0, "", "", int(a.size), ["upper", "lower"], 0.5)
               for i, a in enumerate(scores)]  # fmt: skip
    return make_pack(scores, entries)


def _brute_force(score: np.ndarray, t, p, need: int, transpose: bool) -> set:
    points = set(zip(score["tick"].tolist(), score["pitch"].tolist(), strict=True))
    out = set()
    for (st, sp), (qt, qp) in itertools.product(points, zip(t.tolist(), p.tolist(), strict=True)):
        dt, dp = st - qt, sp - qp
        if not transpose and dp != 0:
            continue
        count = sum((a + dt, b + dp) in points for a, b in zip(t.tolist(), p.tolist(), strict=True))
        if count >= need:
            out.add((dt, dp, count))
    return out


def _theme(pairs) -> Theme:
    """A theme from (onset in quarters, pitch) pairs, eighth notes."""
    return Theme(tuple(Note(int(p), float(o), 0.5) for o, p in pairs))


@pytest.mark.parametrize("seed", range(8))
def test_occurrences_equal_brute_force(seed):
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(3):  # dense random polyphony on a coarse grid, so partial occurrences abound
        n = 120
        scores.append(_notes(rng.integers(0, 60, n) * (TPQ // 2), rng.integers(55, 70, n)))
    packed = _pack(scores)
    qt = np.sort(rng.choice(12, size=6, replace=False)) * (TPQ // 2)
    qt -= qt[0]
    qp = rng.integers(58, 66, 6)
    for need, transpose in ((6, True), (5, True), (4, True), (3, False), (2, True)):
        s, dt, dp, count, rows = occurrences(packed, qt, qp, need=need, transpose=transpose)
        for k, score in enumerate(scores):
            got = {(int(a), int(b), int(c)) for a, b, c, si in zip(dt, dp, count, s, strict=True) if si == k}
            assert got == _brute_force(score, qt, qp, need, transpose), (need, transpose, k)
        found = rows >= 0
        assert np.array_equal(found.sum(axis=1), count)


def test_far_apart_query_notes_fall_back_to_exhaustive_proposals():
    # consecutive notes 6 quarter notes and 30 semitones apart: no pair of the index holds them
    score = _notes([0, 6 * TPQ, 12 * TPQ, 13 * TPQ], [40, 70, 41, 99])
    packed = _pack([score])
    t, p = np.array([0, 6 * TPQ]), np.array([50, 80])
    s, dt, dp, count, _ = occurrences(packed, t, p, need=2)
    assert {(int(a), int(b)) for a, b in zip(dt, dp, strict=True)} == {(0, -10)}


def test_transposed_and_polyphonic_occurrences_found():
    rng = np.random.default_rng(7)
    theme = parse_note_string("G4/8 A4/8 B4/8 C5/4 D5/8 C5/8 B4/4")
    t, p, _ = query_points(theme, ticks_per_quarter=TPQ)
    noise_t = rng.integers(0, 64, 150) * (TPQ // 4)
    noise = _notes(noise_t, rng.integers(36, 48, 150), np.ones(150, int))  # low noise cannot imitate the theme
    # a transposed copy (+3) at quarter 8, its notes alternating between the two parts
    parts = np.arange(t.size) % 2
    planted = _notes(t + 8 * TPQ, p + 3, parts)
    both = np.concatenate([noise, planted])
    packed = _pack([both[np.lexsort((both["pitch"], both["tick"]))]])
    matches = search_scores(packed, theme, ScoreSearchOptions(min_share=1.0))
    assert len(matches) == 1
    m = matches[0]
    assert (m.start_quarter, m.transposition, m.score, m.measure) == (8.0, 3, 1.0, 3)
    assert m.end_quarter == 8.0 + theme.duration
    assert sorted(m.extra["parts"]) == ["lower", "upper"]
    assert m.start == pytest.approx(4.0)
    # invariance: transposing the query moves the reported transposition, nothing else
    m2 = search_scores(packed, theme.transposed(-5), ScoreSearchOptions())[0]
    assert (m2.start_quarter, m2.extra["semitones"], m2.score) == (8.0, 8, 1.0)
    assert search_scores(packed, theme, ScoreSearchOptions(transpose=False)) == []
    assert len(search_scores(packed, theme.transposed(3), ScoreSearchOptions(transpose=False))) == 1


def test_changed_note_time_scale_and_inversion():
    theme = _theme([(0, 60), (0.5, 62), (1, 64), (1.5, 65), (2, 67), (3, 64), (3.5, 60), (4, 62), (5, 59), (6, 60)])
    t, p, _ = query_points(theme, ticks_per_quarter=TPQ)
    changed = p.copy()
    changed[4] += 1
    augmented = _notes(2 * t + 40 * TPQ, p - 2)
    inverted = _notes(t + 80 * TPQ, 2 * p[0] - p)
    score = np.concatenate([_notes(t, changed), augmented, inverted])
    packed = _pack([score[np.lexsort((score["pitch"], score["tick"]))]])
    exact = search_scores(packed, theme, ScoreSearchOptions(min_share=1.0))
    assert exact == []
    partial = search_scores(packed, theme, ScoreSearchOptions(min_share=0.9))
    assert [(m.start_quarter, m.score) for m in partial] == [(0.0, 0.9)]
    scaled = search_scores(packed, theme, ScoreSearchOptions(max_errors=1, time_scales=(1.0, 2.0)))
    got = sorted((m.start_quarter, m.extra["time_scale"], m.score) for m in scaled)
    assert got == [(0.0, 1.0, 0.9), (40.0, 2.0, 1.0)]
    inv = search_scores(packed, theme, ScoreSearchOptions(inversion=True))
    assert [(m.start_quarter, m.extra["inverted"]) for m in inv] == [(80.0, True)]


def test_partial_occurrences_filtered_by_holes_and_parts():
    theme = _theme([(0, 60), (0.5, 62), (1, 64), (1.5, 65), (2, 67), (3, 64), (3.5, 60), (4, 62), (5, 59), (6, 60)])
    t, p, _ = query_points(theme, ticks_per_quarter=TPQ)
    changed = p.copy()
    changed[3] -= 1  # a changed pitch (substitution)
    keep = np.arange(t.size) != 3  # a hole
    split = np.where(np.arange(t.size) < 5, 0, 1)[keep]
    copies = [_notes(t, changed), _notes(t[keep] + 20 * TPQ, p[keep]), _notes(t[keep] + 40 * TPQ, p[keep], split)]
    score = np.concatenate(copies)
    packed = _pack([score[np.lexsort((score["pitch"], score["tick"]))]])

    def starts(**kw):
        return sorted(m.start_quarter for m in search_scores(packed, theme, ScoreSearchOptions(min_share=0.9, **kw)))

    assert starts() == [0.0, 20.0, 40.0]
    assert starts(max_missing=0) == [0.0]
    assert starts(max_missing=0, pitch_tolerance=0) == []
    assert starts(partial_parts=1) == [0.0, 20.0]
    assert starts(max_missing=1, partial_parts=1) == [0.0, 20.0]
    # a changed pitch counts half a note: 9.5 / 10 reaches 0.95, a hole (9 / 10) does not
    weighted = search_scores(packed, theme, ScoreSearchOptions(min_share=0.95, changed_weight=0.5))
    assert [(m.start_quarter, m.score, m.extra["changed"]) for m in weighted] == [(0.0, 0.95, 1)]


def test_duplicates_of_one_occurrence_are_dropped():
    # a scale: shifted by one step the query still matches all but one note; that is the same passage
    theme = _theme([(i * 0.5, 60 + 2 * i) for i in range(8)])
    t, p, _ = query_points(theme, ticks_per_quarter=TPQ)
    long = _notes(np.arange(12) * (TPQ // 2), 60 + 2 * np.arange(12))
    packed = _pack([long])
    matches = search_scores(packed, theme, ScoreSearchOptions(min_share=0.5))
    assert len(matches) == 2  # notes 0-7 (exact); notes 8-11 start another, disjoint occurrence
    assert matches[0].score == 1.0 and matches[0].start_quarter == 0.0


def test_bad_input():
    packed = _pack([_notes([0, TPQ], [60, 62])])
    with pytest.raises(ParameterError):
        ScoreSearchOptions(min_share=0.0)
    with pytest.raises(ParameterError):
        ScoreSearchOptions(time_scales=(0.0,))
    with pytest.raises(ParameterError):
        search_scores(packed, _theme([(0, 60)]))
    with pytest.raises(ParameterError):
        occurrences(packed, np.array([0, TPQ]), np.array([60, 62]), need=3)
    assert ScoreSearchOptions(min_share=0.1).need(10) == 2  # one matched note is no occurrence


def _write_midi(path: Path, pitches, *, start: float = 0.0) -> None:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    for k, part in enumerate(pitches):
        inst = pretty_midi.Instrument(0, name=f"voice {k}")
        for i, pitch in enumerate(part):
            inst.notes.append(pretty_midi.Note(80, int(pitch), start + i * 0.25, start + (i + 1) * 0.25))
        pm.instruments.append(inst)
    pm.write(str(path))


def test_store_updates_incrementally_and_the_task_finds_the_theme(tmp_path):
    from mirsearch.collection import Collection
    from mirsearch.search.query import ThemeQuery
    from mirsearch.service import run
    from mirsearch.service.scores import ScoreThemeRequest, index_scores

    folder = tmp_path / "scores"
    folder.mkdir()
    theme = [67, 69, 71, 72, 74, 72, 71]
    _write_midi(folder / "a.mid", [[60, 62, 64] + [p + 2 for p in theme], [48] * 10])
    _write_midi(folder / "b.mid", [[50, 52, 53, 55, 57, 59, 60, 62]])
    (folder / "bad.mid").write_bytes(b"MThd not a midi file")
    (folder / "notes.txt").write_text("not a score")
    with Collection.create(tmp_path / "c.mirs", features=["chroma"]) as coll:
        report = index_scores(coll, [folder])
        assert (len(report.added), len(report.failed), report.scores) == (2, 1, 2)
        assert "bad.mid" in report.failed[0][1]
        store = ScoreStore.for_collection(coll.root)
        gen = store.generation()
        again = index_scores(coll, [folder])
        assert (len(again.added), len(again.unchanged), store.generation()) == (0, 2, gen)
        _write_midi(folder / "b.mid", [[p - 5 for p in theme]])  # b.mid now holds the theme 5 semitones lower
        third = index_scores(coll, [folder])
        assert len(third.updated) == 1 and store.generation() != gen
        query = ThemeQuery.of(" ".join(f"{n}/8" for n in ("G4", "A4", "B4", "C5", "D5", "C5", "B4")))
        result = run("score-theme", ScoreThemeRequest(query=query, min_share=1.0), collection=coll)
        got = sorted((Path(m.recording).name, m.start_quarter, m.transposition, m.part) for m in result.matches)
        assert got == [("a.mid", 1.5, 2, "voice 0"), ("b.mid", 0.0, -5, "voice 0")]
        d = result.to_dict()["matches"][0]
        keys = "recording recording_id kind start_quarter end_quarter measure part start end transposition score"
        assert set(keys.split()) <= set(d) and d["kind"] == "score"
        (folder / "a.mid").unlink()
        assert store.rebuild().scores == 1


def test_point_of_imitation_in_a_palestrina_mass():
    """Palestrina, Missa 'Ave Maria' (1594), Kyrie (music21 corpus, palestrina/Kyrie_07.krn): the opening point of
    imitation enters in all four voices (soprano m. 1 on C5, alto m. 2 a fifth lower, tenor m. 5 an octave lower,
    bass m. 7 a twelfth lower; read off the score with music21). The exact search finds these four entries."""
    music21 = pytest.importorskip("music21")
    path = Path(music21.__file__).parent / "corpus" / "palestrina" / "Kyrie_07.krn"
    if not path.is_file():
        pytest.skip("music21 corpus without Palestrina")
    from mirsearch.index.score_store import read_score

    notes, layout, spq = read_score(path)
    entries = [ScoreEntry(1, str(path), 0, 0, "", "", int(notes.size), list(layout.parts), spq)]
    packed = make_pack([notes], entries)
    theme = parse_note_string("C5/1 G4/2 G4/2 A4/4 B4/4 C5/4")
    matches = search_scores(packed, theme, ScoreSearchOptions(min_share=1.0))
    got = sorted((m.measure, m.part, m.extra["semitones"]) for m in matches)
    assert got == [(1, "part 0", 0), (2, "part 1", -7), (5, "part 2", -12), (7, "part 3", -19)]


def test_occurrence_precision_recall_counts():
    from mirsearch.evaluation.occurrences import occurrence_counts, pooled_precision_recall

    a = occurrence_counts({(0, 1, 0), (0, 2, 0)}, {(0, 1, 0), (1, 5, 3)})
    assert a == {"tp": 1, "fp": 1, "fn": 1}
    b = occurrence_counts(set(), set())
    r = pooled_precision_recall([a, b])
    assert (r["precision"], r["recall"], r["f1"]) == (0.5, 0.5, 0.5)
    assert pooled_precision_recall([b])["precision"] == 1.0


def test_cli_indexes_score_files_and_searches_them(tmp_path, capsys):
    import json

    from mirsearch.cli.main import main

    folder = tmp_path / "in"
    folder.mkdir()
    _write_midi(folder / "a.mid", [[60, 62, 64, 65, 67, 69, 71, 72], [48, 50, 52, 53, 55, 57, 59, 60]])
    coll = str(tmp_path / "c.mirs")
    assert main(["index", str(folder), "-c", coll, "--no-progress", "-j", "1", "--features", "chroma"]) == 0
    assert "scores: 1 added" in capsys.readouterr().out
    args = ["search", "-c", coll, "--theme", "D4/8 E4/8 F4/8 G4/8 A4/8", "--scores", "--min-share", "1"]
    assert main([*args, "--json"]) == 0
    matches = json.loads(capsys.readouterr().out)["matches"]
    assert sorted((m["start_quarter"], m["semitones"]) for m in matches) == [(0.5, -12), (0.5, 0)]
    assert main(args) == 0
    assert "a.mid" in capsys.readouterr().out
    assert main([*args, "--format", "audacity"]) == 0
    assert "a.mid, cost 0.0000" in capsys.readouterr().out
    assert main(["search", "-c", coll, "--theme", "C D E F G", "--min-share", "1"]) != 0  # an option of --scores only


def test_scan_reports_unusable_paths_instead_of_raising(tmp_path):
    from mirsearch.index.score_store import scan_scores

    (tmp_path / "a.krn").write_text("**kern\n4c\n*-\n")
    files, missing = scan_scores([tmp_path, tmp_path / ("x" * 5000), tmp_path / "gone"])
    assert [f.name for f in files] == ["a.krn"]
    assert [m[1].split(": ")[1] for m in missing] == ["cannot read (File name too long)", "no such file or folder"]
