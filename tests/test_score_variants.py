"""Varied occurrences of a theme in a piano roll: tonal answer, other mode, changed rhythm (score_variants)."""

from __future__ import annotations

import numpy as np
import pytest

from mirsearch.errors import ParameterError
from mirsearch.index.score_store import NOTE_DTYPE, TICKS_PER_QUARTER, ScoreEntry, make_pack
from mirsearch.scores import Note, Theme
from mirsearch.search.score_search import ScoreSearchOptions, search_scores
from mirsearch.search.score_variants import VariantOptions, align, search_variants

TPQ = TICKS_PER_QUARTER
#: a minor subject: C D Eb F G Ab G F Eb D C (quarters, the last a half note)
SUBJECT = [(60, 0, 1), (62, 1, 1), (63, 2, 1), (65, 3, 1), (67, 4, 1), (68, 5, 1), (67, 6, 1), (65, 7, 1), (63, 8, 1),
           (62, 9, 1), (60, 10, 2)]  # fmt: skip


def _theme(notes) -> Theme:
    return Theme(tuple(Note(p, float(t), float(d)) for p, t, d in notes))


def _rows(notes, part: int, at: float, shift: int = 0) -> list[tuple]:
    return [(round((t + at) * TPQ), round(d * TPQ), p + shift, part) for p, t, d in notes]


def _pack(scores: list[list[tuple]]):
    arrays, entries = [], []
    for i, rows in enumerate(scores):
        a = np.zeros(len(rows), NOTE_DTYPE)
        a["tick"], a["dur"], a["pitch"], a["part"] = np.array(rows).T
        a["onset"], a["offset"] = a["tick"] / TPQ * 0.5, (a["tick"] + a["dur"]) / TPQ * 0.5
        a = a[np.lexsort((a["pitch"], a["tick"]))]
        arrays.append(a)
        entries.append(ScoreEntry(i + 1, f"s{i}.mid", 0, 0, "x", "", a.size, ["rh", "lh"], 0.5))
    return make_pack(arrays, entries)


def _varied():
    tonal = [(p + (2 if i == 1 else 0), t, d) for i, (p, t, d) in enumerate(SUBJECT)]  # 2nd note a step higher
    major = [(p + (1 if p % 12 in (3, 8) else 0), t, d) for p, t, d in SUBJECT]  # Eb -> E, Ab -> A
    dotted = [(p, t + (0.5 if i == 3 else 0), d) for i, (p, t, d) in enumerate(SUBJECT)]  # F comes half a beat late
    split = SUBJECT[:4] + [(67, 4, 0.5), (67, 4.5, 0.5)] + SUBJECT[5:]  # G split into two repeated eighths
    return {"tonal": tonal, "major": major, "dotted": dotted, "split": split}


@pytest.fixture(scope="module")
def fugue():
    """A two-staff piano roll: the subject twice exactly, then four varied entries, a free bass throughout; and a
    second score with unrelated scales only."""
    rng = np.random.default_rng(3)
    right = _rows(SUBJECT, 0, 0) + _rows(SUBJECT, 0, 16, 7)
    starts = {"tonal": 32, "major": 48, "dotted": 64, "split": 80}
    shifts = {"tonal": 7, "major": 0, "dotted": -5, "split": 2}
    for name, notes in _varied().items():
        right += _rows(notes, 0, starts[name], shifts[name])
    left = [(t * TPQ, TPQ, int(rng.integers(36, 52)), 1) for t in range(96)]
    other = [(t * TPQ // 2, TPQ // 2, 60 + (t * 5) % 24, 0) for t in range(200)]
    return _pack([right + left, other]), starts, shifts


def test_exact_point_set_search_misses_what_the_variant_search_finds(fugue):
    packed, starts, shifts = fugue
    theme = _theme(SUBJECT)
    exact = {round(m.start_quarter) for m in search_scores(packed, theme, ScoreSearchOptions(min_share=1.0))}
    assert exact == {0, 16, starts["split"]}  # a split note keeps every onset: the point set is there
    found = search_variants(packed, theme)
    got = {(m.recording_id, round(m.start_quarter), m.extra["semitones"]) for m in found}
    want = {(1, 0, 0), (1, 16, 7)} | {(1, starts[k], shifts[k]) for k in starts}
    assert got == want
    assert all(m.part == "rh" for m in found)
    scores = {round(m.start_quarter): m.score for m in found}
    assert scores[0] == scores[16] == 1.0 and all(scores[starts[k]] < 1.0 for k in ("tonal", "major", "dotted"))


def test_a_varied_entry_needs_the_theme_stated_exactly_in_its_score():
    stated, alone = _rows(SUBJECT, 0, 0), _rows(_varied()["major"], 0, 4)
    packed = _pack([stated, alone])
    assert {m.recording_id for m in search_variants(packed, _theme(SUBJECT))} == {1}
    assert {m.recording_id for m in search_variants(packed, _theme(SUBJECT), VariantOptions(context_count=0))} == {1, 2}


def test_alignment_cost_of_a_dotted_pair_is_its_ratios_in_octaves():
    # query: three quarters C D E; score: C dotted quarter, D eighth, E
    packed = _pack([[(0, 720, 60, 0), (720, 240, 62, 0), (960, 480, 64, 0)]])
    t, p = np.array([0, 480, 960]), np.array([60, 62, 64])
    opts = VariantOptions(rhythm_weight=0.5)
    cost, rows = align(packed, np.array([0]), np.array([0]), np.array([0]), np.array([0]), t, p, opts)
    assert cost[0] == pytest.approx(0.5 * (np.log2(1.5) + abs(np.log2(0.5))))
    assert rows[0].tolist() == [0, 1, 2]
    # a note a semitone off costs pitch_costs[1]; a missing note skip_cost
    packed = _pack([[(0, 480, 60, 0), (480, 480, 63, 0), (960, 480, 64, 0)]])
    cost, _ = align(packed, np.array([0]), np.array([0]), np.array([0]), np.array([0]), t, p, opts)
    assert cost[0] == pytest.approx(opts.pitch_costs[1])
    packed = _pack([[(0, 480, 60, 0), (960, 480, 64, 0), (1500, 10, 90, 0)]])
    cost, rows = align(packed, np.array([0]), np.array([0]), np.array([0]), np.array([0]), t, p, opts)
    assert cost[0] == pytest.approx(opts.skip_cost) and rows[0].tolist() == [0, -1, 1]


@pytest.mark.parametrize("bad", [{"min_score": 0}, {"max_ratio": 1.0}, {"pitch_costs": (0, 1)}, {"skip_cost": 0},
                                 {"time_scales": ()}, {"context_score": 1.5}])  # fmt: skip
def test_options_refuse_bad_values(bad):
    with pytest.raises(ParameterError):
        VariantOptions(**bad)


def test_threshold_is_stricter_for_short_themes():
    o = VariantOptions()
    assert o.threshold(6) > o.threshold(10) >= o.threshold(30) == pytest.approx(o.min_score)


def test_an_entry_crossing_the_staves_is_found_when_parts_may_change():
    # the first notes in the left hand, the rest in the right (the seed's part must hold most of the entry)
    rows = _rows(SUBJECT, 0, 0) + _rows(SUBJECT[:3], 1, 20) + _rows(SUBJECT[3:], 0, 20)
    packed = _pack([rows])
    crossing = {round(m.start_quarter) for m in search_variants(packed, _theme(SUBJECT))}
    one_part = {round(m.start_quarter) for m in search_variants(packed, _theme(SUBJECT), VariantOptions(
        part_change_cost=None))}  # fmt: skip
    assert crossing == {0, 20} and one_part == {0}


def test_a_theme_typed_with_a_slip_still_finds_its_best_matches(fugue):
    packed, _, _ = fugue
    slip = [(p + (1 if i == 4 else 0), t, d) for i, (p, t, d) in enumerate(SUBJECT)]  # a wrong note: no exact one
    found = {round(m.start_quarter) for m in search_variants(packed, _theme(slip))}
    assert {0, 16} <= found
