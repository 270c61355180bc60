"""The command line: help texts, index / search / info with JSON output, and error messages."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mirsearch.cli.main import build_parser, main
from mirsearch.scores import save_midi
from mirsearch.service.core import param_specs
from mirsearch.service.theme import ThemeRequest

from conftest import theme_of

#: every match, confident or not (the confidence threshold is tested with the theme task)
SHOW_ALL = ["--all"] if "show_all" in {s.name for s in param_specs(ThemeRequest)} else []


def test_every_command_has_help(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"index", "search", "info"} <= set(sub.choices)
    for name, p in sub.choices.items():
        text = p.format_help()
        assert "usage: mirsearch " + name in text and len(text) > 100


def test_help_is_fast():
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mirsearch.cli.main", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "theme" in out.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert not imported & {"torch", "librosa", "numba", "music21", "fastapi"}, "heavy imports in --help"


@pytest.fixture(scope="module")
def indexed(renderings, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "c.mirs"
    paths = [str(renderings[k].path) for k in ("a", "b", "c")]
    assert main(["index", *paths, "--collection", str(root), "--no-progress", "-j", "1"]) == 0
    return root


def test_search_json_schema(indexed, renderings, capsys, tmp_path):
    theme, (t0, _) = theme_of(renderings["b"], 0, 8)
    capsys.readouterr()
    assert main(["search", "-c", str(indexed), "--theme", theme.to_string(), "--top", "3", "--json", *SHOW_ALL]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data)[:4] == ["matches", "query", "warnings", "stats"] and len(data["matches"]) == 3
    # the settings used: "auto" resolved to the best this collection has (a new collection stores chroma and learned
    # chroma: learned, with the note-index cascade)
    assert data["query"]["features"] == "learned" and data["query"]["cascade"] == "notes"
    assert data["query"]["top"] == 3 and "mirsearch" in data["query"]
    best = data["matches"][0]
    assert best["recording"] == str(renderings["b"].path.resolve())
    assert {"recording_id", "start", "end", "cost", "transposition"} <= set(best)
    assert abs(best["start"] - t0) < 0.6
    save_midi(theme, tmp_path / "q.mid")
    assert main(["search", "-c", str(indexed), "--theme-file", str(tmp_path / "q.mid"), "--top", "1", *SHOW_ALL]) == 0
    table = capsys.readouterr().out
    assert renderings["b"].path.name in table and "transp." in table


def test_info_json(indexed, capsys):
    capsys.readouterr()
    assert main(["info", "-c", str(indexed), "--json", "--recordings"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["recordings"] == 3 and len(info["recording_list"]) == 3
    assert info["features"]["chroma"]["config"]["feature_rate"] == 10.0
    assert set(info["features"]) == {"chroma", "learned", "chroma_upper"}  # the default kinds of a new collection


@pytest.mark.parametrize(
    "args, message",
    [
        (["search", "--theme", "C D Q"], "cannot read note 3 'Q'"),
        (["search", "--theme-file", "missing.mid"], "missing.mid: no such file"),
    ],
)
def test_errors_are_one_line(indexed, capsys, args, message):
    args = [args[0], "-c", str(indexed), *args[1:]]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_not_a_collection(tmp_path, capsys):
    assert main(["info", "-c", str(tmp_path / "nope")]) == 1
    assert "not a mirsearch collection" in capsys.readouterr().err


def test_index_reports_failures_and_goes_on(indexed, tmp_path, capsys):
    bad = tmp_path / "bad.ogg"
    bad.write_bytes(b"OggS but not really")
    code = main(["index", str(bad), "-c", str(indexed), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 3 and report["failed"][0]["error"].startswith("bad.ogg: unreadable audio")


# ------------------------------------------------------------------------------------------ one definition, scripting


def _command(name: str):
    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices[name]


@pytest.mark.parametrize(
    "command, request_type, own",
    [
        ("versions", "mirsearch.service.audio:VersionsRequest", {"collection", "audio", "format", "plot"}),
        ("align", "mirsearch.service.sync:AlignRequest", {"a", "b", "out", "plot", "format"}),
        ("index", "mirsearch.service.collection:IndexRequest", {"paths", "collection", "json"}),
        ("info", "mirsearch.service.collection:InfoRequest", {"collection", "json"}),
        (
            "serve",
            "mirsearch.server.state:ServerOptions",
            {"collection", "host", "port", "allowed_host", "token", "index_source", "log_level"},
        ),
    ],
)
def test_command_options_are_the_request_fields_with_its_defaults(command, request_type, own):
    import importlib

    module, name = request_type.split(":")
    request = getattr(importlib.import_module(module), name)
    parser = _command(command)
    dests = {a.dest for a in parser._actions} - {"help", "verbose", "func"}
    assert dests - own == {s.name for s in param_specs(request)}
    for spec in param_specs(request):
        action = next(a for a in parser._actions if a.dest == spec.name)
        assert action.default == spec.default and spec.cli_flag in action.option_strings
        assert (action.choices is None) == (spec.choices is None or spec.is_tuple)


def test_search_options_are_the_union_of_theme_and_passages_with_each_default(indexed, renderings):
    from mirsearch.cli.common import request_for
    from mirsearch.cli.search import MODES
    from mirsearch.search.query import ThemeQuery
    from mirsearch.service.audio import AudioQuery, PassagesRequest

    parser = _command("search")
    dests = {a.dest for a in parser._actions}
    assert {s.name for t in MODES.values() for s in param_specs(t)} <= dests
    args = parser.parse_args(["-c", "x", "--theme", "C D E F G"])
    theme = ThemeQuery.from_text("C D E F G")
    assert request_for(MODES, "--theme", args, query=theme) == ThemeRequest(query=theme)
    args = parser.parse_args(["-c", "x", "--audio", "q.wav"])
    audio = AudioQuery.from_chroma(np.ones((12, 50)))
    request = request_for(MODES, "--audio", args, query=audio)
    defaults = PassagesRequest(query=audio)
    assert request.params() == defaults.params()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--theme", "C D E F G", "--plot", "x.png"], "--plot does not apply to --theme"),
        (["--theme", "C D E F G", "--index", "hnsw"], "--index does not apply to --theme"),
        (["--theme", "C D E F G", "--method", "sdtw"], "--method does not apply to --theme"),
        (["--audio", "AUDIO", "--features", "learned"], "features='learned' must be one of"),
        (["--audio", "AUDIO", "--cascade", "notes"], "--cascade does not apply to --audio"),
        (["--audio", "AUDIO", "--part", "1"], "--part does not apply to --audio"),
        (["--theme", "C D E F G", "--part", "1"], "--part does not apply to --theme"),
    ],
)
def test_options_of_another_task_are_refused_in_one_line(indexed, renderings, capsys, extra, message):
    extra = [str(renderings["a"].path) if x == "AUDIO" else x for x in extra]
    assert main(["search", "-c", str(indexed), *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_python_m_exit_codes_verbose_after_command_and_broken_pipe(indexed):
    out = subprocess.run([sys.executable, "-m", "mirsearch", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "exit codes:" in out.stdout and "THIS run" in out.stdout
    assert main(["info", "-c", str(indexed), "-v"]) == 0
    # the reader stops after one byte: no BrokenPipeError traceback
    cmd = f"{sys.executable} -m mirsearch info -c {indexed} --json --recordings | head -c 1"
    piped = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    assert piped.stdout == "{" and "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr


def test_debug_output_keeps_third_party_loggers_quiet(indexed):
    cmd = [sys.executable, "-m", "mirsearch", "-vv", "search", "-c", str(indexed), "--theme", "C D E F G A"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert any(line.startswith("DEBUG mirsearch") for line in lines)
    assert not [line for line in lines if line.split(" ", 2)[1:2] and not line.split(" ")[1].startswith("mirsearch")
                and line.startswith(("DEBUG", "INFO"))]  # fmt: skip


# ------------------------------------------------------------------------------------------ exports


def test_search_exports_csv_audacity_and_svl(indexed, renderings, capsys):
    import csv
    import io
    import xml.etree.ElementTree as ET

    theme, (t0, _) = theme_of(renderings["b"], 0, 8)
    base = ["search", "-c", str(indexed), "--theme", theme.to_string(), "--top", "3", *SHOW_ALL]
    capsys.readouterr()
    assert main([*base, "--json"]) == 0
    matches = json.loads(capsys.readouterr().out)["matches"]
    assert main([*base, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [int(r["rank"]) for r in rows] == [1, 2, 3]
    assert [float(r["start"]) for r in rows] == [m["start"] for m in matches]
    assert rows[0]["recording"] == matches[0]["recording"]
    assert main([*base, "--format", "audacity"]) == 0
    labels = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert len(labels) == 3 and all(len(f) == 3 for f in labels)
    assert float(labels[0][0]) == pytest.approx(matches[0]["start"]) and float(labels[0][1]) == pytest.approx(
        matches[0]["end"]
    )
    assert labels[0][2].startswith("#1 " + renderings["b"].path.name)
    assert main([*base, "--format", "svl"]) == 0
    root = ET.fromstring(capsys.readouterr().out.split("\n", 2)[2])  # after the XML and DOCTYPE lines
    points = root.findall("./data/dataset/point")
    assert len(points) == 3 and root.find("./display/layer").get("type") == "regions"
    rate = float(root.find("./data/model").get("sampleRate"))
    assert int(points[0].get("frame")) / rate == pytest.approx(matches[0]["start"], abs=1e-4)
    assert int(points[0].get("duration")) / rate == pytest.approx(matches[0]["end"] - matches[0]["start"], abs=1e-4)


def test_time_map_exports():
    import xml.etree.ElementTree as ET

    from mirsearch.service.export import timemap_as

    ta, tb = [0.0, 1.0, 2.0, 4.0], [0.0, 1.5, 3.0, 6.0]
    assert timemap_as("csv", ta, tb).splitlines()[:2] == ["time_a,time_b", "0.000000,0.000000"]
    labels = [line.split("\t") for line in timemap_as("audacity", ta, tb).splitlines()]
    assert len(labels) == 5 and labels[3][0] == "3.000000" and labels[3][2] == "B 4.500 s"  # interpolated
    root = ET.fromstring(timemap_as("svl", ta, tb).split("\n", 2)[2])
    values = [float(p.get("value")) for p in root.findall("./data/dataset/point")]
    assert values == tb and root.find("./display/layer").get("type") == "timevalues"


def test_table_says_no_confident_match_and_shows_confidence(indexed, renderings, capsys):
    theme, _ = theme_of(renderings["b"], 0, 8)
    capsys.readouterr()
    assert main(["search", "-c", str(indexed), "--theme", theme.to_string(), "--top", "2", "--all"]) == 0
    table = capsys.readouterr().out
    assert "conf." in table and renderings["b"].path.name in table
    # a threshold above every match's confidence: every match is rejected, and the table says so
    query = ["search", "-c", str(indexed), "--theme", theme.to_string(), "--top", "2"]
    assert main([*query, "--json", "--all"]) == 0
    best = max(m["confidence"] for m in json.loads(capsys.readouterr().out)["matches"])
    if best < 1.0:
        assert main([*query, "--min-confidence", str(min(1.0, best + 1e-4))]) == 0
        out = capsys.readouterr().out
        assert out.startswith("no confident match") and renderings["b"].path.name in out
