"""The service layer: requests validate once, the CLI is derived from them, presets are one table."""

from __future__ import annotations

import argparse

import pytest

from mirsearch.cli.options import add_request_options, request_from_args
from mirsearch.errors import ParameterError
from mirsearch.scores import parse_note_string
from mirsearch.search.query import ThemeQuery
from mirsearch.service import load_tasks
from mirsearch.service.core import param_specs
from mirsearch.service.theme import CASCADE_CHOICES, ThemeRequest

QUERY = ThemeQuery.from_text("C D E F G A B C5")


def test_every_task_is_registered_with_a_request_and_a_summary():
    tasks = load_tasks()
    assert {"theme"} <= set(tasks)
    for name, task in tasks.items():
        assert task.name == name and task.summary and task.area
        for spec in task.params:
            assert spec.help, f"{name}.{spec.name} has no help"


@pytest.mark.parametrize(
    "bad",
    [{"top": 0}, {"top": 10**6}, {"features": "mfcc"}, {"cascade": "fast"}, {"tempo_factors": ()},
     {"tempo_factors": (0.0,)}, {"tempo": "fast"}, {"per_recording": True}],
)  # fmt: skip
def test_requests_refuse_bad_values_naming_the_parameter(bad):
    name = next(iter(bad))
    with pytest.raises(ParameterError, match=name):
        ThemeRequest(query=QUERY, **bad)


def test_cli_options_are_derived_from_the_request_with_the_same_defaults():
    parser = argparse.ArgumentParser()
    add_request_options(parser, ThemeRequest)
    args = parser.parse_args([])
    assert request_from_args(ThemeRequest, args, query=QUERY) == ThemeRequest(query=QUERY)
    args = parser.parse_args(["--top", "3", "--tempo-factors", "0.5,1,2", "--no-transpose", "--cascade", "coarse"])
    request = request_from_args(ThemeRequest, args, query=QUERY)
    assert (request.top, request.tempo_factors, request.transpose, request.cascade) == (3, (0.5, 1.0, 2.0), False,
                                                                                        "coarse")  # fmt: skip
    flags = {a.dest for a in parser._actions} - {"help"}
    assert flags == {s.name for s in param_specs(ThemeRequest)}
    with pytest.raises(SystemExit):
        parser.parse_args(["--tempo-factors", "abc"])


def test_cascade_choices_name_the_preset_table():
    from mirsearch.search.cascade import THEME_PRESETS

    assert set(CASCADE_CHOICES) == {"auto", "exhaustive", *THEME_PRESETS}


def test_cascade_from_spec_sets_options_on_the_stages_and_refuses_unknown_keys():
    from mirsearch.search.cascade import CoarseProposer, NoteAlignProposer, NoteIndexProposer, cascade_from_spec

    c = cascade_from_spec({"proposal": "notes", "candidates": 5, "note_regions": 2, "fallback": "exhaustive"})
    assert [type(p) for p in c.proposers] == [NoteIndexProposer, NoteAlignProposer]
    assert c.proposers[0].per_recording == 2 and all(p.candidates == 5 for p in c.proposers)
    assert c.fallback == "exhaustive" and c.fallback_cost == pytest.approx(0.1)
    assert [type(p) for p in cascade_from_spec({"proposal": "notes", "align": False}).proposers] == [NoteIndexProposer]
    assert cascade_from_spec({"coarse_factor": 4}).proposers == (CoarseProposer(factor=4),)
    with pytest.raises(ParameterError, match="unknown"):
        cascade_from_spec({"proposal": "coarse", "candidate": 3})
    with pytest.raises(ParameterError):
        cascade_from_spec({"proposal": "coarse", "coarse_factor": 1})


def test_theme_query_warns_about_uninformative_themes():
    assert ThemeQuery.of(parse_note_string("C D E F G A")).warnings() == []
    assert any("notes" in w for w in ThemeQuery.from_text("C").warnings())
    assert (
        any("interval" in w for w in ThemeQuery.from_text("C D E F G A B C5 D5".replace("D5", "D5")).warnings())
        is False
    )
    assert any("interval" in w for w in ThemeQuery.from_text("C C C C C C").warnings())


def test_transpositions_are_signed_semitones_of_the_recording_relative_to_the_query():
    from mirsearch.search.results import Match, signed_semitones

    assert [signed_semitones(s) for s in range(12)] == [0, 1, 2, 3, 4, 5, -6, -5, -4, -3, -2, -1]
    assert signed_semitones(-1) == -1 and signed_semitones(14) == 2
    assert Match("r", 1, 0.0, 1.0, 0.1, transposition=11).to_dict()["transposition"] == -1
