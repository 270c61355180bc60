"""The shingle-index tasks of the service (build, search, info, remove) and the CLI that calls them."""

from __future__ import annotations

import argparse
import json

import pytest

from mirsearch.cli.main import main
from mirsearch.cli.options import add_request_options, request_from_args
from mirsearch.errors import ParameterError
from mirsearch.service.core import param_specs
from mirsearch.service.shingles import ShingleBuildRequest, ShingleSearchRequest


def test_build_request_passes_hnsw_parameters_only_to_hnsw():
    assert ShingleBuildRequest(M=4, ef=8).index_params() == {"M": 4, "ef": 8}
    assert ShingleBuildRequest(index="exact", M=4).index_params() == {}
    with pytest.raises(ParameterError, match="index"):
        ShingleBuildRequest(index="annoy")
    with pytest.raises(ParameterError, match="ef"):
        ShingleBuildRequest(ef=0)


def test_search_options_are_derived_from_the_request():
    parser = argparse.ArgumentParser()
    add_request_options(parser, ShingleSearchRequest)
    assert {a.dest for a in parser._actions} - {"help"} == {s.name for s in param_specs(ShingleSearchRequest)}
    args = parser.parse_args(["--tempo-factors", "1,1.2", "--no-update", "--M", "6", "--top", "3"])
    request = request_from_args(ShingleSearchRequest, args, query=None)
    assert (request.tempo_factors, request.update, request.M, request.top) == ((1.0, 1.2), False, 6, 3)


def test_cli_builds_searches_lists_and_removes_the_index(renderings, tmp_path, capsys):
    root = str(tmp_path / "c.mirs")
    paths = [str(renderings[k].path) for k in ("a", "b", "c")]
    assert main(["index", *paths, "--collection", root, "--no-progress", "-j", "1", "--features", "chroma"]) == 0
    exact = ["--reduction", "none", "--index", "exact"]
    capsys.readouterr()
    assert main(["shingles", "build", "-c", root, *exact, "--no-progress", "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["kind"] == "exact" and built["rebuilt"] and built["shingles"] == built["added"] > 0
    assert built["query"]["reduction"] == "none" and "mirsearch" in built["query"]

    assert main(["shingles", "info", "-c", root, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [i["index"] for i in info["indexes"]] == ["none240-exact"]
    assert info["stores"][0]["recordings"] == 3

    query = ["--audio", str(renderings["a_slow"].path), "--start", "5", "--end", "35"]
    assert main(["shingles", "search", "-c", root, *exact, *query, "--tempo-factors", "1,1.2,1.43,1.7", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["matches"][0]["recording"] == str(renderings["a"].path.resolve())
    assert found["query"]["tempo_factors"] == [1.0, 1.2, 1.43, 1.7]

    assert main(["shingles", "remove", "-c", root]) == 0
    assert capsys.readouterr().out.startswith("removed 2 ")  # the store and the ANN index (no PCA fitted)
    assert main(["shingles", "info", "-c", root]) == 0
    assert "no shingle index" in capsys.readouterr().out
