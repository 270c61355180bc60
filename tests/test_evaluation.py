"""Tests of the retrieval metrics and of the theme benchmark (mirsearch.evaluation)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from mirsearch.errors import ParameterError
from mirsearch.evaluation import metrics

RANKINGS = [["a", "b", "c", "d"], ["x", "y", "z"], ["p", "q"]]
RELEVANT = [{"b", "d"}, {"x"}, {"r"}]


def test_metrics_by_hand():
    # first relevant ranks: 2, 1, none
    assert metrics.top_k(RANKINGS, RELEVANT, k=1) == pytest.approx(1 / 3)
    assert metrics.top_k(RANKINGS, RELEVANT, k=2) == pytest.approx(2 / 3)
    assert metrics.mean_reciprocal_rank(RANKINGS, RELEVANT) == pytest.approx((1 / 2 + 1 + 0) / 3)
    # P@2: 1/2, 1/2, 0
    assert metrics.precision_at_k(RANKINGS, RELEVANT, k=2) == pytest.approx(1 / 3)
    # AP: (1/2 + 2/4) / 2 = 0.5; 1.0; 0 (r never retrieved)
    assert metrics.average_precision(RANKINGS[0], RELEVANT[0]) == pytest.approx(0.5)
    assert metrics.mean_average_precision(RANKINGS, RELEVANT) == pytest.approx(0.5)
    out = metrics.evaluate(RANKINGS, RELEVANT)
    assert out["queries"] == 3 and out["top10"] == pytest.approx(2 / 3)
    assert set(out) == {"queries", "top1", "top5", "top10", "mrr", "p@1", "p@5", "p@10", "map"}


def test_per_query_scores_from_ranks_agree_with_the_ranking_metrics():
    ranks = [2, 1, None]  # first relevant ranks of RANKINGS
    rr = [metrics.reciprocal_rank(r) for r in ranks]
    np.testing.assert_allclose(rr, metrics.reciprocal_ranks(RANKINGS, RELEVANT))
    for k in (1, 2, 5):
        hits = [metrics.hit_at_k(r, k=k) for r in ranks]
        assert np.mean(hits) == pytest.approx(metrics.top_k(RANKINGS, RELEVANT, k=k))
    assert metrics.reciprocal_rank(0) == 0.0 and metrics.reciprocal_rank(4) == 0.25
    with pytest.raises(ParameterError):
        metrics.reciprocal_rank(1.5)
    with pytest.raises(ParameterError):
        metrics.hit_at_k(1, k=0)


def test_metrics_empty_input_and_validation():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = metrics.evaluate([], [])
    assert out["queries"] == 0 and out["top1"] == 0.0 and out["mrr"] == 0.0 and out["map"] == 0.0
    with pytest.warns(UserWarning):
        assert metrics.top_k([["a"]], [set()], k=1) == 0.0
    with pytest.raises(ParameterError):
        metrics.top_k([["a", "a"]], [{"a"}])
    with pytest.raises(ParameterError):
        metrics.mean_reciprocal_rank([["a"]], [])
    with pytest.raises(ParameterError):
        metrics.top_k([["a"]], [{"a"}], k=0)


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory):
    from mirsearch.datasets import build_fixture
    from mirsearch.datasets.render import fluidsynth_available

    if not fluidsynth_available():
        pytest.fail("fluidsynth is required (make setup installs it)")
    out = tmp_path_factory.mktemp("bench") / "ds"
    build_fixture(out, seed=0, jobs=2)
    return out


def test_theme_benchmark_on_the_fixture(fixture_dir, tmp_path):
    from mirsearch.cli.main import main
    from mirsearch.datasets import Dataset
    from mirsearch.evaluation.theme_bench import run_theme_benchmark

    result = run_theme_benchmark(fixture_dir, features="chroma", split="train", jobs=1)
    train = Dataset.load(fixture_dir).split("train")
    assert result["queries"] == len(train.themes) and result["recordings"] == len(train.versions)
    m = result["metrics"]
    assert 0.0 <= m["top1"] <= m["top5"] <= m["top10"] <= 1.0
    # two short, clearly different works: every theme finds a version of its own work first
    assert m["top1"] == 1.0 and m["mrr"] == 1.0
    assert result["timing"]["mean_ms"] > 0
    # the CLI writes the results file (and reuses the cached collection)
    assert (
        main(
            [
                "bench",
                "theme",
                "--dataset",
                str(fixture_dir),
                "--split",
                "train",
                "--results-dir",
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 0
    )
    saved = json.loads((tmp_path / "theme_chroma_train.json").read_text())
    assert saved["metrics"] == result["metrics"]
    assert saved["index"]["unchanged"] == result["recordings"]


def test_paired_difference_counts_and_sign_test():
    from scipy.stats import binomtest

    from mirsearch.evaluation.paired import paired_difference

    a = np.array([1, 1, 1, 0, 1, 0, 1, 1, 0, 1], float)
    b = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 0], float)
    d = paired_difference(a, b, n_boot=2000)
    assert (d.lost, d.won, d.n) == (3, 1, 10)
    assert d.mean == pytest.approx(-0.2)
    # McNemar's exact test is the binomial test on the discordant pairs
    assert d.p_value == pytest.approx(binomtest(3, 4, 0.5).pvalue)
    assert d.low <= d.mean <= d.high and d.high - d.low > 0
    # deterministic for a seed
    assert paired_difference(a, b, n_boot=2000) == d


def test_paired_difference_identical_and_clear_loss():
    from mirsearch.evaluation.paired import paired_difference

    rng = np.random.default_rng(1)
    a = rng.random(200)
    same = paired_difference(a, a.copy())
    assert (same.mean, same.low, same.high, same.lost, same.won, same.p_value) == (0, 0, 0, 0, 0, 1.0)
    worse = paired_difference(a, a - 0.1 * (rng.random(200) > 0.3))
    assert worse.high < 0 and worse.p_value < 1e-6 and worse.won == 0


def test_paired_difference_bad_input():
    from mirsearch.evaluation.paired import paired_difference

    with pytest.raises(ParameterError, match="one length"):
        paired_difference([1, 0], [1])
    with pytest.raises(ParameterError, match="confidence"):
        paired_difference([1], [1], confidence=1.5)
    with pytest.raises(ParameterError, match="finite"):
        paired_difference([1, np.nan], [1, 0])
    assert paired_difference([], []).n == 0
