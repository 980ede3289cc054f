"""McNemar's test and agreement by segment for a shadow (pure), checked against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lifecycle import rollout_analysis as ra


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_mcnemar_equals_the_exact_binomial_test_and_the_corrected_chi_square(seed):
    rng = np.random.default_rng(seed)
    n = 300
    labels = rng.integers(0, 2, n)
    stable = np.where(rng.random(n) < 0.8, labels, 1 - labels)
    candidate = np.where(rng.random(n) < 0.7 + 0.05 * seed, labels, 1 - labels)
    got = ra.mcnemar(labels.tolist(), stable.tolist(), candidate.tolist())
    b = int(((stable == labels) & (candidate != labels)).sum())
    c = int(((stable != labels) & (candidate == labels)).sum())
    assert (got["stable_only_right"], got["candidate_only_right"]) == (b, c)
    assert got["p_value"] == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-12)
    statistic = (abs(b - c) - 1) ** 2 / (b + c)
    assert got["statistic"] == pytest.approx(statistic)
    assert got["stable_accuracy"] == pytest.approx((stable == labels).mean())


def test_mcnemar_with_no_discordant_rows_is_p_one_and_rows_must_match():
    assert ra.mcnemar([1, 0], [1, 0], [1, 0])["p_value"] == 1.0
    with pytest.raises(ValueError):
        ra.mcnemar([1], [1, 0], [1, 0])


def test_agreement_by_segment_is_the_share_of_equal_predictions_per_value():
    segments = {"region": ["n", "n", "s", "s", "s", None]}
    got = ra.agreement_by_segment(segments, [1, 0, 1, 1, 0, 1], [1, 1, 1, 0, 0, 1])
    assert got["region"] == [
        {"value": "s", "rows": 3, "agreement": pytest.approx(2 / 3)},
        {"value": "n", "rows": 2, "agreement": 0.5},
        {"value": "(missing)", "rows": 1, "agreement": 1.0},
    ]
