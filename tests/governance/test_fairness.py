"""Tests for governance.fairness: checked against fairlearn and scikit-learn on the same data.

Plain pytest, no database. The data are generated here with a known bias.
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics as skm
from fairlearn import metrics as flm
from hypothesis import given, settings
from hypothesis import strategies as st

from governance import fairness
from governance.fairness import DEFAULT_THRESHOLDS, MISSING_GROUP, FairnessInputError, audit

TOL = 1e-9
DISPARITIES = {
    "demographic_parity_difference": flm.demographic_parity_difference,
    "demographic_parity_ratio": flm.demographic_parity_ratio,
    "equalized_odds_difference": flm.equalized_odds_difference,
    "equalized_odds_ratio": flm.equalized_odds_ratio,
    "equal_opportunity_difference": flm.equal_opportunity_difference,
}
# Per-group metrics as MetricFrame computes them with the scikit-learn / fairlearn functions.
# zero_division=np.nan: the audit reports an undefined value as None, never as sklearn's
# default 0.0 (see docs/fairness.md).
CLASSIFICATION_METRICS = {
    "count": flm.count,
    "selection_rate": flm.selection_rate,
    "accuracy": skm.accuracy_score,
    "tpr": functools.partial(skm.recall_score, zero_division=np.nan),
    "fpr": flm.false_positive_rate,
    "fnr": flm.false_negative_rate,
    "precision": functools.partial(skm.precision_score, zero_division=np.nan),
}
REGRESSION_METRICS = {
    "count": flm.count,
    "rmse": skm.root_mean_squared_error,
    "mae": skm.mean_absolute_error,
    "mean_prediction": flm.mean_prediction,
}


# --------------------------------------------------------------------------- data


def biased_classification(n: int = 4000, seed: int = 0, bias: float = 0.25) -> dict[str, Any]:
    """Labels, predictions favouring sex=M by ``bias``, and two sensitive columns."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], size=n)
    race = rng.choice(["A", "B", "C"], size=n, p=[0.5, 0.3, 0.2])
    y_true = (rng.random(n) < 0.4).astype(int)
    base = np.where(y_true == 1, 0.6, 0.2) + np.where(sex == "M", bias, 0.0)
    y_pred = (rng.random(n) < base + np.where(race == "C", -0.1, 0.0)).astype(int)
    score = np.clip(0.5 * y_pred + 0.3 * y_true + rng.normal(0, 0.2, n), 0, 1)
    return {
        "y_true": y_true,
        "y_pred": y_pred,
        "score": score,
        "sf": pd.DataFrame({"sex": sex, "race": race}),
    }


def fair_classification(n: int = 4000, seed: int = 1) -> dict[str, Any]:
    return biased_classification(n, seed, bias=0.0) | {
        "sf": pd.DataFrame({"sex": np.random.default_rng(seed + 100).choice(["F", "M"], size=n)})
    }


def run(data: dict[str, Any], sf: Any = None, **kwargs: Any) -> dict[str, Any]:
    options = {"task": "classification", "thresholds": {}, "min_group_size": 1} | kwargs
    return audit(data["y_true"], data["y_pred"], data["sf"] if sf is None else sf, **options)


def scope(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in result["scopes"] if s["name"] == name)


def group_key(group: dict[str, Any], features: list[str]) -> Any:
    key = tuple(group["group"][f] for f in features)
    return key if len(key) > 1 else key[0]


def fairlearn_by_group(metrics: dict[str, Any], y_true: Any, y_pred: Any, sf: Any) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = flm.MetricFrame(
            metrics=metrics, y_true=y_true, y_pred=y_pred, sensitive_features=sf
        ).by_group
    return frame.dropna(how="all")  # drop the empty combinations fairlearn adds


def assert_groups_match(result_scope: dict[str, Any], frame: pd.DataFrame) -> None:
    assert len(result_scope["groups"]) == len(frame)
    for group in result_scope["groups"]:
        row = frame.loc[group_key(group, result_scope["features"])]
        assert group["count"] == row["count"]
        for metric, ours in group["metrics"].items():
            if metric == "roc_auc":
                continue
            theirs = row[metric]
            if ours is None:
                assert np.isnan(theirs), (group["group"], metric)
            else:
                assert ours == pytest.approx(theirs, abs=TOL), (group["group"], metric)


def assert_disparities_match(
    result_scope: dict[str, Any], y_true: Any, y_pred: Any, sf: Any
) -> None:
    for name, fairlearn_fn in DISPARITIES.items():
        theirs = fairlearn_fn(y_true, y_pred, sensitive_features=sf)
        ours = result_scope["disparities"][name]["value"]
        if ours is None:
            assert np.isnan(theirs), name
        else:
            assert ours == pytest.approx(theirs, abs=TOL), name


def plain_json_types(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain_json_types(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain_json_types(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


# --------------------------------------------------------------------------- equality


def test_group_metrics_equal_metricframe_by_group_for_each_column_and_intersection() -> None:
    data = biased_classification()
    result = run(data)
    sf = data["sf"]
    assert [s["name"] for s in result["scopes"]] == ["sex", "race", "sex & race"]
    for name, features in [("sex", sf["sex"]), ("race", sf["race"]), ("sex & race", sf)]:
        frame = fairlearn_by_group(CLASSIFICATION_METRICS, data["y_true"], data["y_pred"], features)
        assert_groups_match(scope(result, name), frame)


def test_disparities_equal_fairlearn_for_each_column_and_intersection() -> None:
    data = biased_classification()
    result = run(data)
    sf = data["sf"]
    for name, features in [("sex", sf["sex"]), ("race", sf["race"]), ("sex & race", sf)]:
        assert_disparities_match(scope(result, name), data["y_true"], data["y_pred"], features)


def test_intersectional_groups_are_labelled_by_every_column() -> None:
    result = run(biased_classification())
    inter = scope(result, "sex & race")
    assert inter["features"] == ["sex", "race"]
    assert [g["group"] for g in inter["groups"]][:2] == [
        {"sex": "F", "race": "A"},
        {"sex": "F", "race": "B"},
    ]
    assert inter["n_groups"] == 6
    assert sum(g["count"] for g in inter["groups"]) == result["n_samples"]


def test_overall_metrics_equal_scikit_learn() -> None:
    data = biased_classification()
    overall = run(data, y_score=data["score"])["overall"]
    yt, yp = data["y_true"], data["y_pred"]
    assert overall["count"] == len(yt)
    expected = {
        "accuracy": skm.accuracy_score(yt, yp),
        "tpr": skm.recall_score(yt, yp),
        "precision": skm.precision_score(yt, yp),
        "selection_rate": yp.mean(),
        "roc_auc": skm.roc_auc_score(yt, data["score"]),
    }
    for metric, value in expected.items():
        assert overall["metrics"][metric] == pytest.approx(value, abs=TOL), metric


def test_per_group_roc_auc_equals_scikit_learn_and_is_none_for_a_single_class_group() -> None:
    data = biased_classification(n=3000)
    data["y_true"][data["sf"]["race"].to_numpy() == "C"] = 0
    result = run(data, y_score=data["score"])
    for group in scope(result, "race")["groups"]:
        rows = data["sf"]["race"].to_numpy() == group["group"]["race"]
        if group["group"]["race"] == "C":
            assert group["metrics"]["roc_auc"] is None
            assert "one class" in group["undefined"]["roc_auc"]
        else:
            expected = skm.roc_auc_score(data["y_true"][rows], data["score"][rows])
            assert group["metrics"]["roc_auc"] == pytest.approx(expected, abs=TOL)


def test_string_labels_with_explicit_pos_label_give_the_same_audit() -> None:
    data = biased_classification(n=2000)
    as_text = np.where(data["y_true"] == 1, "approve", "deny")
    pred_text = np.where(data["y_pred"] == 1, "approve", "deny")
    numeric = run(data)
    text = audit(
        as_text,
        pred_text,
        data["sf"],
        task="classification",
        thresholds={},
        min_group_size=1,
        pos_label="approve",
    )
    assert text["scopes"] == numeric["scopes"]
    assert text["pos_label"] == "approve"


# --------------------------------------------------------------------------- small groups


def test_tiny_groups_are_reported_excluded_and_disparities_match_fairlearn_on_the_rest() -> None:
    data = biased_classification(n=3000)
    race = data["sf"]["race"].to_numpy().copy()
    race[:12] = "D"  # a 12-row group
    sf = data["sf"].assign(race=race)
    result = run(data, sf=sf, min_group_size=40)

    race_scope = scope(result, "race")
    tiny = next(g for g in race_scope["groups"] if g["group"] == {"race": "D"})
    assert tiny["excluded"] is True and tiny["count"] == 12
    assert "12 rows < min_group_size 40" in tiny["excluded_reason"]
    assert tiny["metrics"]["selection_rate"] is not None  # still reported
    assert race_scope["n_included"] == race_scope["n_groups"] - 1
    kept = race != "D"
    assert_disparities_match(
        race_scope, data["y_true"][kept], data["y_pred"][kept], sf["race"][kept]
    )

    inter = scope(result, "sex & race")
    excluded = {(g["group"]["sex"], g["group"]["race"]) for g in inter["groups"] if g["excluded"]}
    assert excluded == {("F", "D"), ("M", "D")}
    kept = ~pd.Series(list(zip(sf["sex"], sf["race"], strict=True))).isin(excluded).to_numpy()
    assert_disparities_match(inter, data["y_true"][kept], data["y_pred"][kept], sf[kept])


def test_fewer_than_two_included_groups_is_not_computable_and_does_not_pass() -> None:
    data = fair_classification(n=1000)
    sex = np.where(np.arange(1000) < 980, "F", "M")
    result = run(data, sf=pd.Series(sex, name="sex"), min_group_size=100)
    assert result["passed"] is False
    assert result["status"] == "not_computable"
    for rule in result["rules"]:
        assert rule["status"] == "not_computable" and rule["passed"] is False
        assert rule["value"] is None
        assert "fewer than two groups" in rule["reason"]


# --------------------------------------------------------------------------- undefined values


def test_single_class_group_has_undefined_rates_with_reasons_like_scikit_learn() -> None:
    data = biased_classification(n=3000)
    is_c = data["sf"]["race"].to_numpy() == "C"
    data["y_true"][is_c] = 0  # race C: no positive labels
    result = run(data)
    group_c = next(g for g in scope(result, "race")["groups"] if g["group"] == {"race": "C"})
    assert group_c["metrics"]["tpr"] is None and group_c["metrics"]["fnr"] is None
    assert group_c["undefined"]["tpr"] == "no rows with y_true == pos_label in this group"
    assert group_c["metrics"]["fpr"] is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(
            skm.recall_score(data["y_true"][is_c], data["y_pred"][is_c], zero_division=np.nan)
        )
        # fairlearn's own rate functions turn the 0/0 into 0.0; the audit does not.
        assert flm.true_positive_rate(data["y_true"][is_c], data["y_pred"][is_c]) == 0.0
    # TPR disparities skip the undefined group, as MetricFrame.difference() skips NaN.
    tpr = flm.MetricFrame(
        metrics={"tpr": CLASSIFICATION_METRICS["tpr"]},
        y_true=data["y_true"],
        y_pred=data["y_pred"],
        sensitive_features=data["sf"]["race"],
    )
    value = scope(result, "race")["disparities"]["equal_opportunity_difference"]["value"]
    assert value == pytest.approx(tpr.difference()["tpr"], abs=TOL)


def test_precision_is_none_for_a_group_without_positive_predictions() -> None:
    data = biased_classification(n=2000)
    is_f = data["sf"]["sex"].to_numpy() == "F"
    data["y_pred"][is_f] = 0
    result = run(data)
    group_f = scope(result, "sex")["groups"][0]
    assert group_f["group"] == {"sex": "F"}
    assert group_f["metrics"]["precision"] is None
    assert group_f["metrics"]["selection_rate"] == 0.0
    assert "y_pred == pos_label" in group_f["undefined"]["precision"]
    frame = fairlearn_by_group(
        CLASSIFICATION_METRICS, data["y_true"], data["y_pred"], data["sf"]["sex"]
    )
    assert_groups_match(scope(result, "sex"), frame)
    # The four-fifths rule: selection-rate ratio 0 fails.
    dp = next(
        r
        for r in result["rules"]
        if r["rule"] == "demographic_parity_ratio_min" and r["scope"] == "sex"
    )
    assert dp["value"] == 0.0 and dp["status"] == "failed"


def test_equalized_odds_ratio_matches_fairlearn_when_no_group_has_false_positives() -> None:
    data = biased_classification(n=2000)
    data["y_pred"] = np.where(data["y_true"] == 0, 0, data["y_pred"])  # FPR 0 everywhere
    result = run(data)
    disparities = scope(result, "sex")["disparities"]
    expected = flm.equalized_odds_ratio(
        data["y_true"], data["y_pred"], sensitive_features=data["sf"]["sex"]
    )
    assert disparities["equalized_odds_ratio"]["value"] == pytest.approx(expected, abs=TOL)


def test_equalized_odds_ratio_is_undefined_like_fairlearns_when_no_group_has_true_positives() -> (
    None
):
    data = biased_classification(n=2000)
    data["y_pred"] = np.where(data["y_true"] == 1, 0, data["y_pred"])  # TPR 0 everywhere
    ratio = scope(run(data), "sex")["disparities"]["equalized_odds_ratio"]
    assert ratio["value"] is None
    assert ratio["reason"] == "every included group has TPR 0, so min/max is 0/0"
    expected = flm.equalized_odds_ratio(
        data["y_true"], data["y_pred"], sensitive_features=data["sf"]["sex"]
    )
    assert np.isnan(expected)


def test_a_model_that_never_selects_has_an_undefined_parity_ratio() -> None:
    data = biased_classification(n=1000)
    data["y_pred"] = np.zeros(1000, dtype=int)
    result = run(data)
    ratio = scope(result, "sex")["disparities"]["demographic_parity_ratio"]
    assert ratio["value"] is None and "0/0" in ratio["reason"]
    assert np.isnan(
        flm.demographic_parity_ratio(
            data["y_true"], data["y_pred"], sensitive_features=data["sf"]["sex"]
        )
    )
    assert result["passed"] is False


# --------------------------------------------------------------------------- rules


def test_four_fifths_rule_fails_on_biased_data() -> None:
    data = biased_classification(bias=0.3)
    result = run(data, min_group_size=30)
    rule = next(
        r
        for r in result["rules"]
        if r["rule"] == "demographic_parity_ratio_min" and r["scope"] == "sex"
    )
    assert rule["threshold"] == 0.8 and rule["value"] < 0.8
    assert rule["passed"] is False and rule["status"] == "failed"
    assert result["passed"] is False and result["status"] == "failed"


def test_four_fifths_rule_passes_on_fair_data() -> None:
    result = run(fair_classification(n=20000), min_group_size=30)
    assert [r["status"] for r in result["rules"]] == ["passed"] * 5
    assert result["passed"] is True and result["status"] == "passed"
    assert result["summary"] == {"passed": 5, "failed": 0, "not_computable": 0}


def test_missing_threshold_keys_fall_back_to_defaults_and_none_switches_a_rule_off() -> None:
    data = fair_classification()
    result = run(
        data, thresholds={"demographic_parity_ratio_min": 0.9, "equalized_odds_ratio_min": None}
    )
    assert result["thresholds"]["demographic_parity_ratio_min"] == 0.9
    assert (
        result["thresholds"]["equalized_odds_difference_max"]
        == (DEFAULT_THRESHOLDS["equalized_odds_difference_max"])
    )
    assert {r["rule"] for r in result["rules"]} == {
        "demographic_parity_ratio_min",
        "demographic_parity_difference_max",
        "equalized_odds_difference_max",
        "equal_opportunity_difference_max",
    }


@pytest.mark.parametrize(
    "thresholds, message",
    [
        ({"demographic_parity_ratio": 0.8}, "unknown threshold key"),
        ({"demographic_parity_ratio_min": "0.8"}, "finite number"),
        ({"demographic_parity_ratio_min": float("nan")}, "finite number"),
        ({k: None for k in DEFAULT_THRESHOLDS}, "no rule"),
    ],
)
def test_bad_thresholds_are_refused(thresholds: dict[str, Any], message: str) -> None:
    with pytest.raises(FairnessInputError, match=message):
        run(fair_classification(n=100), thresholds=thresholds)


# --------------------------------------------------------------------------- inputs


def test_nan_in_predictions_is_refused_with_the_count() -> None:
    data = biased_classification(n=200)
    y_pred = data["y_pred"].astype(float)
    y_pred[[3, 50, 120]] = np.nan
    with pytest.raises(FairnessInputError, match=r"y_pred contains 3 missing value"):
        run(data | {"y_pred": y_pred})
    assert issubclass(FairnessInputError, ValueError)


def test_nan_in_regression_predictions_is_refused() -> None:
    y = np.arange(10.0)
    with pytest.raises(FairnessInputError, match="y_pred contains 1 missing"):
        audit(
            y,
            np.where(y == 4, np.nan, y),
            ["a", "b"] * 5,
            task="regression",
            thresholds={},
            min_group_size=1,
        )


@pytest.mark.parametrize(
    "y_true, y_pred, sf, message",
    [
        ([0, 1, 1], [0, 1], ["a", "b", "a"], "3 rows but y_pred has 2"),
        ([], [], [], "empty"),
        ([0, 1, 2, 1], [0, 1, 1, 1], ["a", "b", "a", "b"], "binary"),
        (["yes", "no"], ["yes", "no"], ["a", "b"], "pos_label=1 is not one of the labels"),
        ([0, 1], [0, 1], ["a", "b", "c"], "sensitive feature 'sensitive_feature_0' has 3 rows"),
        ([0, 1, 0, 1], [0, 1, None, 1], ["a", "b", "a", "b"], "y_pred contains 1 missing"),
        ([0, 1, np.nan, 1], [0, 1, 0, 1], ["a", "b", "a", "b"], "y_true contains 1 missing"),
    ],
)
def test_bad_inputs_are_refused_with_a_clear_message(
    y_true: Any, y_pred: Any, sf: Any, message: str
) -> None:
    with pytest.raises(FairnessInputError, match=message):
        audit(y_true, y_pred, sf, task="classification", thresholds={}, min_group_size=1)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"task": "ranking"}, "task must be"),
        ({"min_group_size": 0}, "min_group_size must be an integer >= 1"),
        ({"bootstrap": -1}, "bootstrap must be an integer >= 0"),
        ({"random_state": None}, "random_state must be an integer >= 0"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(FairnessInputError, match=message):
        run(fair_classification(n=50), **options)


def test_string_and_integer_group_labels_give_the_same_disparities() -> None:
    data = biased_classification(n=3000)
    codes = {"A": 0, "B": 1, "C": 2}
    as_int = pd.Series(data["sf"]["race"].map(codes).to_numpy(), name="race")
    by_text, by_int = run(data, sf=data["sf"]["race"]), run(data, sf=as_int)
    assert [g["group"]["race"] for g in scope(by_int, "race")["groups"]] == [0, 1, 2]
    assert type(scope(by_int, "race")["groups"][0]["group"]["race"]) is int
    assert scope(by_text, "race")["disparities"] == scope(by_int, "race")["disparities"]
    frame = fairlearn_by_group(CLASSIFICATION_METRICS, data["y_true"], data["y_pred"], as_int)
    assert_groups_match(scope(by_int, "race"), frame)


def test_unnamed_inputs_are_named_like_fairlearn_and_2d_arrays_are_columns() -> None:
    data = biased_classification(n=500)
    arr = data["sf"].to_numpy()
    result = run(data, sf=arr)
    assert result["sensitive_features"] == ["sensitive_feature_0", "sensitive_feature_1"]
    assert scope(result, "sensitive_feature_0 & sensitive_feature_1")["n_groups"] == 6
    assert run(data, sf=list(arr[:, 0]))["sensitive_features"] == ["sensitive_feature_0"]


def test_missing_sensitive_values_become_an_explicit_group() -> None:
    data = biased_classification(n=3000)
    race = data["sf"]["race"].astype(object).to_numpy().copy()
    race[::7] = None
    race[1::11] = np.nan
    result = run(data, sf=pd.DataFrame({"sex": data["sf"]["sex"], "race": race}))
    race_scope = scope(result, "race")
    missing = race_scope["groups"][-1]
    assert missing["group"] == {"race": MISSING_GROUP}
    assert missing["count"] == int(pd.isna(race).sum())
    filled = pd.Series(np.where(pd.isna(race), MISSING_GROUP, race), name="race")
    frame = fairlearn_by_group(CLASSIFICATION_METRICS, data["y_true"], data["y_pred"], filled)
    assert_groups_match(race_scope, frame)
    assert_disparities_match(race_scope, data["y_true"], data["y_pred"], filled)
    assert {"sex": "M", "race": MISSING_GROUP} in [
        g["group"] for g in scope(result, "sex & race")["groups"]
    ]


def test_missing_values_in_a_nullable_string_column_are_their_own_group() -> None:
    race = pd.Series(["A", pd.NA, "B", "A", None, "B"], dtype="string", name="race")
    result = audit(
        [1, 0, 1, 0, 1, 1],
        [1, 0, 0, 0, 1, 1],
        race,
        task="classification",
        thresholds={},
        min_group_size=1,
    )
    assert [(g["group"]["race"], g["count"]) for g in result["scopes"][0]["groups"]] == [
        ("A", 2),
        ("B", 2),
        (MISSING_GROUP, 2),
    ]


def test_result_is_plain_json_without_nan_or_numpy_scalars() -> None:
    data = biased_classification(n=1500)
    data["y_true"][data["sf"]["race"].to_numpy() == "C"] = 0
    result = run(data, y_score=data["score"], bootstrap=20, min_group_size=300)
    json.dumps(result, allow_nan=False)
    assert plain_json_types(result)


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_deterministic_with_a_seed_and_brackets_the_estimate() -> None:
    data = biased_classification(n=3000)
    first = run(data, bootstrap=300, random_state=7)
    again = run(data, bootstrap=300, random_state=7)
    other = run(data, bootstrap=300, random_state=8)
    assert first == again
    assert first != other
    assert first["bootstrap"] == {
        "n_resamples": 300,
        "random_state": 7,
        "confidence_level": 0.95,
        "method": "percentile",
    }
    for name, disparity in scope(first, "sex")["disparities"].items():
        ci = disparity["ci"]
        assert ci["n_valid"] == 300
        assert ci["low"] <= disparity["value"] <= ci["high"], name


def test_bootstrap_interval_matches_plain_row_resampling() -> None:
    """Resampling rows is, in distribution, a multinomial draw over the count cells."""
    data = biased_classification(n=2000)
    ci = scope(run(data, bootstrap=2000, random_state=0), "sex")["disparities"]
    ci = ci["demographic_parity_difference"]["ci"]
    rng = np.random.default_rng(123)
    is_m = (data["sf"]["sex"].to_numpy() == "M").astype(int)
    diffs = []
    for _ in range(2000):
        idx = rng.integers(0, 2000, size=2000)
        rates = np.bincount(is_m[idx], weights=data["y_pred"][idx]) / np.bincount(is_m[idx])
        diffs.append(abs(rates[1] - rates[0]))
    low, high = np.percentile(diffs, [2.5, 97.5])
    assert ci["low"] == pytest.approx(low, abs=0.01)
    assert ci["high"] == pytest.approx(high, abs=0.01)


def test_without_bootstrap_there_is_no_interval() -> None:
    result = run(fair_classification(n=200))
    assert result["bootstrap"] is None
    assert "ci" not in result["scopes"][0]["disparities"]["demographic_parity_ratio"]


# --------------------------------------------------------------------------- regression


def regression_data(n: int = 3000, seed: int = 0, noise_b: float = 2.0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    region = rng.choice([10, 20], size=n)
    y_true = rng.normal(50, 10, n)
    y_pred = y_true + rng.normal(0, np.where(group == "b", noise_b, 1.0))
    return {
        "y_true": y_true,
        "y_pred": y_pred,
        "sf": pd.DataFrame({"group": group, "region": region}),
    }


def test_regression_group_metrics_equal_metricframe_and_ratio_is_max_over_min() -> None:
    data = regression_data()
    result = audit(
        data["y_true"],
        data["y_pred"],
        data["sf"],
        task="regression",
        thresholds={"rmse_difference_max": 1.0},
        min_group_size=1,
    )
    sf = data["sf"]
    for name, features in [
        ("group", sf["group"]),
        ("region", sf["region"]),
        ("group & region", sf),
    ]:
        frame = fairlearn_by_group(REGRESSION_METRICS, data["y_true"], data["y_pred"], features)
        result_scope = scope(result, name)
        assert_groups_match(result_scope, frame)
        metric_frame = flm.MetricFrame(
            metrics={"rmse": skm.root_mean_squared_error, "mae": skm.mean_absolute_error},
            y_true=data["y_true"],
            y_pred=data["y_pred"],
            sensitive_features=features,
        )
        disparities = result_scope["disparities"]
        for metric in ("rmse", "mae"):
            assert disparities[f"{metric}_ratio"]["value"] == pytest.approx(
                1 / metric_frame.ratio()[metric], abs=TOL
            )
            assert disparities[f"{metric}_difference"]["value"] == pytest.approx(
                metric_frame.difference()[metric], abs=TOL
            )
    rules = {(r["rule"], r["scope"]): r for r in result["rules"]}
    assert rules[("rmse_ratio_max", "group")]["status"] == "failed"  # b is twice as noisy
    assert rules[("rmse_ratio_max", "region")]["status"] == "passed"
    assert rules[("rmse_difference_max", "group")]["threshold"] == 1.0
    assert ("mae_difference_max", "group") not in rules  # default None: off


def test_regression_passes_when_errors_are_even_and_bootstraps_deterministically() -> None:
    data = regression_data(n=2000, noise_b=1.0)
    kwargs = {
        "task": "regression",
        "thresholds": {},
        "min_group_size": 30,
        "bootstrap": 50,
        "random_state": 3,
    }
    first = audit(data["y_true"], data["y_pred"], data["sf"]["group"], **kwargs)
    assert first["passed"] is True
    assert first == audit(data["y_true"], data["y_pred"], data["sf"]["group"], **kwargs)
    ci = first["scopes"][0]["disparities"]["rmse_ratio"]["ci"]
    assert 1.0 <= ci["low"] <= ci["high"]


def test_regression_ratio_is_unbounded_and_fails_when_one_group_is_perfect() -> None:
    y = np.arange(8.0)
    y_pred = y + np.array([0, 0, 0, 0, 1, -1, 1, -1])
    result = audit(
        y, y_pred, ["a"] * 4 + ["b"] * 4, task="regression", thresholds={}, min_group_size=1
    )
    rule = result["rules"][0]
    assert rule["rule"] == "rmse_ratio_max" and rule["value"] is None
    assert rule["status"] == "failed" and "unbounded" in rule["reason"]


def test_y_score_is_refused_for_regression() -> None:
    with pytest.raises(FairnessInputError, match="y_score"):
        audit(
            [1.0, 2.0],
            [1.0, 2.0],
            ["a", "b"],
            task="regression",
            thresholds={},
            min_group_size=1,
            y_score=[0.1, 0.2],
        )


# --------------------------------------------------------------------------- properties


@st.composite
def classification_cases(draw: Any) -> dict[str, Any]:
    """Small random audits over two sensitive columns (so three scopes)."""
    n = draw(st.integers(2, 60))
    column = functools.partial(st.lists, min_size=n, max_size=n)
    return {
        "y_true": np.array(draw(column(st.integers(0, 1)))),
        "y_pred": np.array(draw(column(st.integers(0, 1)))),
        "sf": pd.DataFrame(
            {
                "g": draw(column(st.sampled_from(["x", "y", "z"]))),
                "h": draw(column(st.sampled_from([1, 2]))),
            }
        ),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


def scope_features(case: dict[str, Any]) -> list[Any]:
    """What fairlearn gets as sensitive_features for each scope, in the audit's order."""
    return [case["sf"]["g"], case["sf"]["h"], case["sf"]]


@settings(max_examples=60, deadline=None)
@given(classification_cases())
def test_permuting_rows_does_not_change_the_audit(case: dict[str, Any]) -> None:
    order = np.random.default_rng(case["seed"]).permutation(len(case["sf"]))
    shuffled = {
        "y_true": case["y_true"][order],
        "y_pred": case["y_pred"][order],
        "sf": case["sf"].iloc[order],
    }
    a, b = run(case), run(shuffled)
    for scope_a, scope_b in zip(a["scopes"], b["scopes"], strict=True):
        assert scope_a["groups"] == scope_b["groups"]
        for x, y in zip(
            scope_a["disparities"].values(), scope_b["disparities"].values(), strict=True
        ):
            assert (x["value"] is None) == (y["value"] is None)
            if x["value"] is not None:
                assert x["value"] == pytest.approx(y["value"], abs=TOL)
    assert a["status"] == b["status"]


@settings(max_examples=60, deadline=None)
@given(classification_cases(), st.integers(1, 10))
def test_ratios_lie_in_unit_interval_and_differences_are_bounded(
    case: dict[str, Any], min_group_size: int
) -> None:
    result = run(case, min_group_size=min_group_size)
    for result_scope in result["scopes"]:
        disparities = result_scope["disparities"]
        for name, disparity in disparities.items():
            if disparity["value"] is None:
                assert disparity["reason"]
                continue
            assert 0.0 <= disparity["value"] <= 1.0, name
        eo = disparities["equalized_odds_difference"]["value"]
        if eo is not None:
            assert eo >= disparities["equal_opportunity_difference"]["value"]
    assert result["passed"] == all(r["status"] == "passed" for r in result["rules"])


@settings(max_examples=30, deadline=None)
@given(classification_cases())
def test_disparities_equal_fairlearn_whenever_every_rate_is_defined(case: dict[str, Any]) -> None:
    result = run(case)
    for result_scope, features in zip(result["scopes"], scope_features(case), strict=True):
        metrics = [g["metrics"] for g in result_scope["groups"]]
        if len(metrics) < 2 or any(m[k] is None for m in metrics for k in ("tpr", "fpr")):
            continue
        assert_disparities_match(result_scope, case["y_true"], case["y_pred"], features)


@settings(max_examples=30, deadline=None)
@given(classification_cases())
def test_renaming_groups_does_not_change_disparities(case: dict[str, Any]) -> None:
    renamed = case["sf"].assign(g=case["sf"]["g"].map({"x": "zz", "y": "aa", "z": "mm"}))
    a, b = run(case), run(case, sf=renamed)
    for scope_a, scope_b in zip(a["scopes"], b["scopes"], strict=True):
        assert scope_a["disparities"] == scope_b["disparities"]


# --------------------------------------------------------------------------- mitigation


def mitigation_data(n: int = 1200) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    rng = np.random.default_rng(5)
    sex = rng.choice(["F", "M"], size=n)
    x = rng.normal(size=(n, 3)) + (sex == "M")[:, None] * 0.8
    y = (x[:, 0] + rng.normal(0, 0.5, n) > 0.4).astype(int)
    return x, y, pd.Series(sex, name="sex")


def test_threshold_optimizer_reduces_disparity_and_its_skops_part_round_trips() -> None:
    skops_io = pytest.importorskip("skops.io")
    from sklearn.linear_model import LogisticRegression

    x, y, sex = mitigation_data()
    mitigator = fairness.mitigate(
        LogisticRegression(),
        x,
        y,
        sex,
        method="threshold_optimizer",
        constraint="demographic_parity",
    )
    before = LogisticRegression().fit(x, y).predict(x)
    after = mitigator.predict(
        x, sensitive_features=fairness.fill_missing_groups(sex), random_state=0
    )
    assert flm.demographic_parity_difference(y, after, sensitive_features=sex) < (
        flm.demographic_parity_difference(y, before, sensitive_features=sex)
    )

    with pytest.raises(TypeError):
        skops_io.dumps(mitigator)  # pandas trade-off curves inside
    blob = skops_io.dumps(fairness.skops_exportable(mitigator))
    loaded = skops_io.loads(blob, trusted=skops_io.get_untrusted_types(data=blob))
    again = loaded.predict(x, sensitive_features=fairness.fill_missing_groups(sex), random_state=0)
    np.testing.assert_array_equal(after, again)


def test_exponentiated_gradient_fits_but_has_no_skops_safe_form() -> None:
    from sklearn.linear_model import LogisticRegression

    x, y, sex = mitigation_data(n=600)
    mitigator = fairness.mitigate(
        LogisticRegression(),
        x,
        y,
        sex,
        method="exponentiated_gradient",
        constraint="equalized_odds",
    )
    assert mitigator.predict(x, random_state=0).shape == (600,)
    with pytest.raises(TypeError, match="cannot be stored as a skops file"):
        fairness.skops_exportable(mitigator)


def test_unknown_mitigation_method_is_refused() -> None:
    x, y, sex = mitigation_data(n=50)
    with pytest.raises(FairnessInputError, match="method"):
        fairness.mitigate(object(), x, y, sex, method="reweighing")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- purity


def test_module_imports_only_numpy_pandas_and_the_standard_library() -> None:
    source = Path(fairness.__file__).read_text()
    top_level = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.parse(source).body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert top_level <= {
        "__future__",
        "collections",
        "dataclasses",
        "types",
        "typing",
        "numpy",
        "pandas",
    }
    code = (
        "import sys, governance.fairness; "
        "print(sorted({'django', 'fairlearn', 'sklearn'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(fairness.__file__).parents[1],
    )
    assert out.stdout.strip() == "[]"
