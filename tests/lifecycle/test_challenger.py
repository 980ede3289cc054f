"""Champion/challenger (lifecycle/challenger.py, pure): the verdict and its figures, with the
metric values checked against scikit-learn on the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as hs
from sklearn import metrics
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.svm import LinearSVC

from lifecycle import challenger as ch


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(600, 3)), columns=["a", "b", "c"])
    y = pd.Series(np.where(X["a"] + 0.5 * rng.normal(size=600) > 0, "yes", "no"))
    return X, y


@pytest.fixture(scope="module")
def good(rows):
    return LogisticRegression().fit(*rows)


@pytest.fixture(scope="module")
def weak(rows):
    X, y = rows
    return LogisticRegression().fit(X[["c"]].assign(a=0.0, b=0.0)[["a", "b", "c"]], y)


def test_a_challenger_worse_by_more_than_the_tolerance_is_rejected_with_the_figures(
    rows, good, weak
):
    X, y = rows
    result = ch.compare(
        challenger=weak, champion=good, X=X, y=y, metric_name="accuracy", tolerance=0.01
    )
    champion_value = metrics.accuracy_score(y, good.predict(X))
    challenger_value = metrics.accuracy_score(y, weak.predict(X))
    assert result.verdict == "rejected_by_champion" and result.rejected
    assert result.champion == champion_value and result.challenger == challenger_value
    assert result.worse_by == pytest.approx(champion_value - challenger_value)
    assert f"{challenger_value:.4f}" in result.reason and f"{champion_value:.4f}" in result.reason
    assert "tolerance 0.01" in result.reason and "600 rows" in result.reason


def test_a_challenger_within_the_tolerance_holds(rows, good, weak):
    X, y = rows
    gap = metrics.accuracy_score(y, good.predict(X)) - metrics.accuracy_score(y, weak.predict(X))
    result = ch.compare(
        challenger=weak, champion=good, X=X, y=y, metric_name="accuracy", tolerance=gap + 0.001
    )
    assert result.verdict == "accepted"
    better = ch.compare(challenger=good, champion=weak, X=X, y=y, metric_name="f1", tolerance=0)
    assert better.verdict == "accepted" and better.worse_by < 0


def test_a_gap_equal_to_the_tolerance_is_not_more_than_it():
    assert ch.judge(0.9, 0.8, higher_is_better=True, tolerance=0.1) == "accepted"
    assert ch.judge(0.9, 0.79, higher_is_better=True, tolerance=0.1) == "rejected_by_champion"


def test_for_an_error_metric_lower_is_better():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(300, 2)), columns=["a", "b"])
    y = 2 * X["a"] + rng.normal(0, 0.1, 300)
    fitted = LinearRegression().fit(X, y)
    blind = LinearRegression().fit(X.assign(a=0.0), y)
    result = ch.compare(
        challenger=blind, champion=fitted, X=X, y=y, metric_name="rmse", tolerance=0.1
    )
    assert result.verdict == "rejected_by_champion"
    assert result.challenger == metrics.root_mean_squared_error(y, blind.predict(X))
    assert result.worse_by == pytest.approx(result.challenger - result.champion)
    assert "lower is better" in result.reason


def test_binary_metrics_use_the_second_class_as_positive_as_scikit_learn_orders_them(rows, good):
    X, y = rows
    proba = good.predict_proba(X)[:, 1]
    assert good.classes_.tolist() == ["no", "yes"]
    compute, higher = ch.metric("roc_auc")
    assert higher and compute(good, X, y) == metrics.roc_auc_score(y == "yes", proba)
    compute, _ = ch.metric("f1")
    assert compute(good, X, y) == metrics.f1_score(y, good.predict(X), pos_label="yes")
    compute, higher = ch.metric("log_loss")
    assert not higher
    assert compute(good, X, y) == metrics.log_loss(y, good.predict_proba(X))


def test_an_undefined_metric_is_never_an_acceptance(rows, good):
    X, y = rows
    only_yes = y == "yes"
    result = ch.compare(
        challenger=good,
        champion=good,
        X=X[only_yes],
        y=y[only_yes],
        metric_name="roc_auc",
        tolerance=0.5,
    )
    assert result.verdict == "not_comparable" and result.worse_by is None
    assert "undefined" in result.reason
    no_proba = LinearSVC().fit(X, y)
    assert ch.metric("roc_auc")[0](no_proba, X, y) is None


def test_without_a_champion_the_challenger_is_accepted_and_scored(rows, good):
    X, y = rows
    result = ch.compare(
        challenger=good, champion=None, X=X, y=y, metric_name="accuracy", tolerance=0
    )
    assert result.verdict == "accepted" and result.champion is None
    assert result.challenger == metrics.accuracy_score(y, good.predict(X))
    assert result.to_dict()["reason"].startswith("No champion")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric_name": "auc"}, "Unknown metric 'auc'"),
        ({"tolerance": -0.1}, "tolerance must be a number"),
        ({"tolerance": float("inf")}, "tolerance must be a number"),
        ({"tolerance": True}, "tolerance must be a number"),
    ],
)
def test_a_bad_metric_or_tolerance_is_refused(rows, good, kwargs, message):
    X, y = rows
    args = {"challenger": good, "champion": good, "X": X, "y": y, "metric_name": "accuracy"}
    with pytest.raises(ch.ChallengerError, match=message):
        ch.compare(**{**args, "tolerance": 0.0, **kwargs})


def test_a_multiclass_f1_is_the_macro_average():
    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.normal(size=(300, 2)), columns=["a", "b"])
    y = np.digitize(X["a"], [-0.5, 0.5])
    model = DummyClassifier(strategy="stratified", random_state=0).fit(X, y)
    value = ch.metric("f1")[0](model, X, y)
    assert value == metrics.f1_score(y, model.predict(X), average="macro")


@given(
    champion=hs.floats(min_value=0, max_value=1),
    challenger=hs.floats(min_value=0, max_value=1),
    tolerance=hs.floats(min_value=0, max_value=1),
    extra=hs.floats(min_value=0, max_value=1),
    higher=hs.booleans(),
)
def test_a_larger_tolerance_never_turns_an_acceptance_into_a_rejection(
    champion, challenger, tolerance, extra, higher
):
    verdict = ch.judge(champion, challenger, higher_is_better=higher, tolerance=tolerance)
    looser = ch.judge(champion, challenger, higher_is_better=higher, tolerance=tolerance + extra)
    if verdict == "accepted":
        assert looser == "accepted"
    # A challenger at least as good as the champion is always accepted.
    at_least_as_good = challenger >= champion if higher else challenger <= champion
    if at_least_as_good:
        assert verdict == "accepted"
