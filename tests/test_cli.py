"""The command line: help texts, index / search / info with JSON output, and error messages."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mirsearch.cli.main import build_parser, main
from mirsearch.scores import save_midi

from conftest import theme_of


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
    assert main(["search", "-c", str(indexed), "--theme", theme.to_string(), "--top", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["matches", "query", "warnings", "stats"] and len(data["matches"]) == 3
    # the settings used: "auto" resolved to what this collection has (chroma only: exhaustive DTW)
    assert data["query"]["features"] == "chroma" and data["query"]["cascade"] == "exhaustive"
    assert data["query"]["top"] == 3 and "mirsearch" in data["query"]
    best = data["matches"][0]
    assert best["recording"] == str(renderings["b"].path.resolve())
    assert {"recording_id", "start", "end", "cost", "transposition"} <= set(best)
    assert abs(best["start"] - t0) < 0.6
    save_midi(theme, tmp_path / "q.mid")
    assert main(["search", "-c", str(indexed), "--theme-file", str(tmp_path / "q.mid"), "--top", "1"]) == 0
    table = capsys.readouterr().out
    assert renderings["b"].path.name in table and "transp." in table


def test_info_json(indexed, capsys):
    capsys.readouterr()
    assert main(["info", "-c", str(indexed), "--json", "--recordings"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["recordings"] == 3 and len(info["recording_list"]) == 3
    assert info["features"]["chroma"]["config"]["feature_rate"] == 10.0


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
