"""Detection metrics against scikit-learn and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from mirsearch.errors import ParameterError
from mirsearch.evaluation.detection import rates_at, roc_auc


def test_roc_auc_equals_scikit_learn_with_ties():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    pos = np.round(rng.normal(1.0, 1.0, 200), 1)  # rounding makes ties
    neg = np.round(rng.normal(0.0, 1.0, 300), 1)
    y = np.r_[np.ones(200), np.zeros(300)]
    assert roc_auc(pos, neg) == pytest.approx(sklearn_metrics.roc_auc_score(y, np.r_[pos, neg]), abs=1e-12)


def test_roc_auc_textbook_cases_and_bad_input():
    assert roc_auc([3, 4], [1, 2]) == 1.0 and roc_auc([1], [2]) == 0.0 and roc_auc([1], [1]) == 0.5
    assert roc_auc([2, 0], [1]) == 0.5
    with pytest.raises(ParameterError):
        roc_auc([], [1])
    with pytest.raises(ParameterError):
        roc_auc([np.nan], [1])
    r = rates_at(0.5, [0.9, 0.6, 0.4], [0.1, 0.7])
    assert r["positives_kept"] == pytest.approx(2 / 3) and r["negatives_rejected"] == 0.5
