"""Retraining strategies (lifecycle/strategies.py, pure): each one on generated data with a
known shift, the state each one keeps or continues, the seeds, and every refusal.

The shift: before it, y = [x0 + x1 > 0]; after it, the inputs move by +0.5 and
y = [x0 - x1 > 0] (5% label noise either side). A model of the old concept is
about as good as a coin on post-shift rows.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics
from sklearn.base import clone
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, SGDClassifier, SGDRegressor
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lifecycle import strategies as st
from lifecycle.strategies import StrategyError
from lifecycle.training_data import frame_digest

COLUMNS = ["x0", "x1", "x2", "x3"]
SEED = 7


def stream(n: int, seed: int, *, shifted: bool) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)) + (0.5 if shifted else 0.0)
    score = X[:, 0] - X[:, 1] if shifted else X[:, 0] + X[:, 1]
    y = (score > 0).astype(int)
    flip = rng.random(n) < 0.05
    y[flip] = 1 - y[flip]
    return pd.DataFrame(X, columns=COLUMNS), pd.Series(y, name="y")


def regression_stream(n: int, seed: int, *, shifted: bool) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)) + (0.5 if shifted else 0.0)
    y = (3 * X[:, 0] - 2 * X[:, 1] + 2) if shifted else (3 * X[:, 0] + X[:, 1])
    return pd.DataFrame(X, columns=COLUMNS), pd.Series(y + rng.normal(0, 0.3, n), name="y")


@pytest.fixture(scope="module")
def old():
    return stream(3000, 0, shifted=False)


@pytest.fixture(scope="module")
def new():
    return stream(2000, 1, shifted=True)


@pytest.fixture(scope="module")
def post():
    return stream(2000, 2, shifted=True)


def fitted(estimator, data):
    return clone(estimator).fit(*data)


def accuracy(model, data) -> float:
    X, y = data
    return metrics.accuracy_score(y, model.predict(X))


# --------------------------------------------------------------------------- vocabulary


def test_the_vocabulary_names_every_strategy_with_its_parameters():
    described = {s["name"]: s for s in st.describe()}
    assert list(described) == [
        "refit",
        "warm_start",
        "online",
        "augmentation",
        "fairness_mitigation",
    ]
    assert described["refit"]["params"] == []
    chunk = described["online"]["params"][0]
    assert chunk == {
        "name": "chunk_size",
        "type": "int",
        "default": 250,
        "required": False,
        "help": chunk["help"],
        "minimum": 10,
        "maximum": 100_000,
    }
    assert [p["name"] for p in described["fairness_mitigation"]["params"]] == [
        "method",
        "constraint",
        "sensitive_columns",
    ]


def test_mitigation_choices_are_governances_own():
    from governance.choices import Constraint, MitigationMethod

    assert tuple(MitigationMethod.values) == st.MITIGATION_METHODS
    assert tuple(Constraint.values) == st.MITIGATION_CONSTRAINTS


def test_an_unknown_strategy_is_refused_with_the_list_of_strategies():
    with pytest.raises(StrategyError, match="Unknown strategy 'retune'.*refit, warm_start") as e:
        st.validate_params("retune", {})
    assert e.value.field == "strategy"


def test_an_unknown_parameter_is_refused_by_name():
    with pytest.raises(StrategyError, match="Unknown parameter 'chunks' for online") as e:
        st.validate_params("online", {"chunks": 3})
    assert e.value.field == "chunks"
    with pytest.raises(StrategyError, match="its parameters: none"):
        st.validate_params("refit", {"epochs": 3})


@pytest.mark.parametrize(
    ("strategy", "params", "field"),
    [
        ("online", {"chunk_size": 5}, "chunk_size"),
        ("online", {"chunk_size": "250"}, "chunk_size"),
        ("online", {"chunk_size": True}, "chunk_size"),
        ("online", {"chunk_size": 250.5}, "chunk_size"),
        ("warm_start", {"add_estimators": 0}, "add_estimators"),
        ("augmentation", {"jitter_scale": 1.5}, "jitter_scale"),
        ("augmentation", {"jitter_scale": float("nan")}, "jitter_scale"),
        ("augmentation", {"rebalance": "yes"}, "rebalance"),
        ("augmentation", {"jitter_fraction": 0.5, "jitter_scale": 0}, "jitter_scale"),
        ("fairness_mitigation", {"sensitive_columns": ["sex"], "method": "magic"}, "method"),
        ("fairness_mitigation", {"sensitive_columns": []}, "sensitive_columns"),
        ("fairness_mitigation", {"sensitive_columns": ["a", "a"]}, "sensitive_columns"),
        ("fairness_mitigation", {"sensitive_columns": list("abcde")}, "sensitive_columns"),
        ("fairness_mitigation", {}, "sensitive_columns"),
    ],
)
def test_an_invalid_parameter_is_refused_naming_it(strategy, params, field):
    with pytest.raises(StrategyError) as e:
        st.validate_params(strategy, params)
    assert e.value.field == field
    assert field in e.value.reason


def test_defaults_are_filled_in():
    assert st.validate_params("online", None) == {"chunk_size": 250}
    assert st.validate_params("augmentation", {"jitter_scale": 0}) == {
        "rebalance": True,
        "jitter_scale": 0.0,
        "jitter_fraction": 0.0,
    }
    assert st.validate_params("fairness_mitigation", {"sensitive_columns": ["sex"]}) == {
        "method": "threshold_optimizer",
        "constraint": "demographic_parity",
        "sensitive_columns": ["sex"],
    }


# --------------------------------------------------------------------------- capabilities


def test_warm_start_on_an_estimator_without_it_is_refused_with_the_alternatives(old):
    reason = st.supports("warm_start", fitted(KNeighborsClassifier(), old))
    assert reason.startswith("KNeighborsClassifier cannot warm start")
    assert "RandomForestClassifier" in reason and "Use refit" in reason


def test_online_on_an_estimator_without_partial_fit_is_refused(old):
    reason = st.supports("online", fitted(RandomForestClassifier(5), old))
    assert "RandomForestClassifier has no partial_fit" in reason and "SGDClassifier" in reason


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_online_on_an_lbfgs_mlp_says_which_solvers_have_partial_fit(old):
    reason = st.supports(
        "online", MLPClassifier((4,), solver="lbfgs", max_iter=5).fit(old[0][:200], old[1][:200])
    )
    assert "solver 'sgd' or 'adam'" in reason


def test_warm_start_on_hist_gradient_boosting_is_refused_with_the_binning_reason(old):
    reason = st.supports("warm_start", fitted(HistGradientBoostingClassifier(max_iter=5), old))
    assert "re-bins" in reason and "Use refit" in reason


def test_warm_start_on_liblinear_logistic_regression_is_refused(old):
    reason = st.supports("warm_start", fitted(LogisticRegression(solver="liblinear"), old))
    assert "liblinear" in reason


def test_an_unfitted_parent_is_refused():
    assert "not fitted" in st.supports("refit", RandomForestClassifier())


def test_the_capability_looks_through_a_pipeline_at_its_final_step(old):
    pipeline = fitted(make_pipeline(StandardScaler(), SGDClassifier()), old)
    assert st.supports("online", pipeline) is None
    assert st.supports("warm_start", pipeline) is None
    forest = fitted(make_pipeline(StandardScaler(), RandomForestClassifier(5)), old)
    assert "RandomForestClassifier has no partial_fit" in st.supports("online", forest)


def test_the_growth_parameter_must_match_how_the_estimator_grows(old):
    forest = fitted(RandomForestClassifier(5), old)
    with pytest.raises(StrategyError, match="grows by trees: give add_estimators") as e:
        st.check("warm_start", forest, {"add_iterations": 10})
    assert e.value.field == "add_iterations"
    assert st.check("warm_start", forest, {}) == {"add_estimators": 50}
    linear = fitted(LogisticRegression(), old)
    assert st.check("warm_start", linear, {}) == {"add_iterations": 100}


def test_exponentiated_gradient_needs_a_fit_with_sample_weight(old):
    pipeline = fitted(make_pipeline(StandardScaler(), LogisticRegression()), old)
    with pytest.raises(StrategyError, match="takes no sample_weight") as e:
        st.check(
            "fairness_mitigation",
            pipeline,
            {"sensitive_columns": ["x3"], "method": "exponentiated_gradient"},
        )
    assert e.value.field == "method"


def test_augmentation_of_a_regressor_does_not_rebalance_and_refuses_to_be_told_to():
    regressor = fitted(SGDRegressor(), regression_stream(200, 0, shifted=False))
    assert st.check("augmentation", regressor, {"jitter_fraction": 0.5})["rebalance"] is False
    with pytest.raises(StrategyError, match="parent is a regressor"):
        st.check("augmentation", regressor, {"rebalance": True, "jitter_fraction": 0.5})
    with pytest.raises(StrategyError, match="adds no rows"):
        st.check("augmentation", regressor, {})


def test_a_mitigated_candidate_cannot_be_refitted(old):
    from governance.estimators import mitigated_estimator

    X, y = old
    frame = X.assign(y=y, group=np.where(X["x2"] > 0, "a", "b"))
    base = fitted(LogisticRegression(), old)
    candidate = mitigated_estimator(
        base,
        frame,
        features=COLUMNS,
        target="y",
        sensitive=["group"],
        method="threshold_optimizer",
        constraint="demographic_parity",
        random_state=0,
    )
    assert "ThresholdOptimizer candidate" in st.supports("refit", candidate)


# --------------------------------------------------------------------------- the rows


def test_a_missing_column_is_named_before_any_fit(old, new, monkeypatch):
    parent = fitted(RandomForestClassifier(5, random_state=0), old)
    calls = []
    monkeypatch.setattr(RandomForestClassifier, "fit", lambda *a, **k: calls.append(a))
    X, y = new
    with pytest.raises(StrategyError, match="no column 'x2'"):
        st.train("refit", parent, X.drop(columns="x2"), y, seed=SEED)
    assert calls == []


def test_a_missing_target_value_is_refused(old, new):
    parent = fitted(LogisticRegression(), old)
    X, y = new
    with pytest.raises(StrategyError, match="target has 1 missing"):
        st.train("refit", parent, X, y.astype(float).where(y.index != 3), seed=SEED)


def test_rows_that_would_lose_a_class_are_refused(old, new):
    parent = fitted(LogisticRegression(), old)
    X, y = new
    only_ones = y == 1
    with pytest.raises(StrategyError, match=r"no row of class\(es\) \[0\]"):
        st.train("refit", parent, X[only_ones], y[only_ones], seed=SEED)


def test_the_versions_classes_must_be_the_parents(old, new):
    parent = fitted(LogisticRegression(), old)
    with pytest.raises(StrategyError, match="differ from the parent's fitted classes"):
        st.train("refit", parent, *new, seed=SEED, classes=["0", "1"])


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, "7"])
def test_a_bad_seed_is_refused(old, new, seed):
    parent = fitted(LogisticRegression(), old)
    with pytest.raises(StrategyError, match="seed"):
        st.train("refit", parent, *new, seed=seed)


# --------------------------------------------------------------------------- the known shift


CLASSIFICATION_CASES = [
    ("refit", RandomForestClassifier(50, random_state=0), {}),
    ("warm_start", RandomForestClassifier(30, random_state=0), {"add_estimators": 90}),
    ("warm_start", GradientBoostingClassifier(n_estimators=40, random_state=0), {}),
    ("warm_start", make_pipeline(StandardScaler(), LogisticRegression()), {}),
    ("warm_start", MLPClassifier((16,), max_iter=300, random_state=0), {"add_iterations": 150}),
    ("online", SGDClassifier(loss="log_loss", random_state=0), {}),
    ("online", make_pipeline(StandardScaler(), SGDClassifier(random_state=0)), {}),
    ("online", GaussianNB(), {"chunk_size": 100}),
    ("augmentation", LogisticRegression(), {"jitter_fraction": 0.5}),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    ("strategy", "estimator", "params"),
    CLASSIFICATION_CASES,
    ids=[f"{s}-{type(e).__name__}" for s, e, _ in CLASSIFICATION_CASES],
)
def test_the_retrained_model_beats_the_stale_one_after_a_shift(
    old, new, post, strategy, estimator, params
):
    parent = fitted(estimator, old)
    fingerprint = joblib.hash(parent)
    result = st.train(strategy, parent, *new, params, seed=SEED)
    stale, retrained = accuracy(parent, post), accuracy(result.estimator, post)
    assert stale < 0.6
    assert retrained > stale + 0.1, (stale, retrained)
    assert joblib.hash(parent) == fingerprint  # the parent is never touched
    assert result.estimator is not parent
    assert result.record["strategy"] == strategy and result.record["seed"] == SEED
    assert result.record["classes_before"] == result.record["classes_after"] == [0, 1]
    assert result.record["fit_seconds"] > 0


@pytest.mark.parametrize(
    ("strategy", "estimator", "params"),
    [
        ("refit", RandomForestRegressor(30, random_state=0), {}),
        ("warm_start", RandomForestRegressor(20, random_state=0), {"add_estimators": 80}),
        ("online", SGDRegressor(random_state=0), {}),
        ("augmentation", RandomForestRegressor(30, random_state=0), {"jitter_fraction": 0.3}),
    ],
)
def test_a_retrained_regressor_beats_the_stale_one_after_a_shift(strategy, estimator, params):
    parent = fitted(estimator, regression_stream(2000, 0, shifted=False))
    X_post, y_post = regression_stream(1000, 2, shifted=True)
    result = st.train(strategy, parent, *regression_stream(2000, 1, shifted=True), params, seed=3)
    stale = metrics.mean_absolute_error(y_post, parent.predict(X_post))
    retrained = metrics.mean_absolute_error(y_post, result.estimator.predict(X_post))
    assert retrained < stale / 2, (stale, retrained)


# --------------------------------------------------------------------------- refit


def test_refit_keeps_the_hyperparameters_and_seeds_an_unset_random_state(old, new):
    parent = fitted(RandomForestClassifier(20, max_depth=4, random_state=None), old)
    first = st.train("refit", parent, *new, seed=SEED)
    second = st.train("refit", parent, *new, seed=SEED)
    assert first.record["seeded_params"] == {"random_state": SEED}
    expected = {**parent.get_params(), "random_state": SEED}
    assert first.estimator.get_params() == expected
    assert np.array_equal(
        first.estimator.predict_proba(new[0]), second.estimator.predict_proba(new[0])
    )
    assert parent.random_state is None


def test_refit_leaves_a_set_random_state_alone(old, new):
    parent = fitted(RandomForestClassifier(5, random_state=11), old)
    result = st.train("refit", parent, *new, seed=SEED)
    assert result.record["seeded_params"] == {}
    assert result.estimator.random_state == 11


def test_refit_of_a_pipeline_refits_every_step(old, new):
    parent = fitted(make_pipeline(StandardScaler(), LogisticRegression()), old)
    result = st.train("refit", parent, *new, seed=SEED)
    scaler = result.estimator[0]
    assert np.allclose(scaler.mean_, new[0].mean().to_numpy())
    assert result.record["parent"] == {
        "estimator": "Pipeline",
        "final_step": "LogisticRegression",
        "pipeline_steps": ["StandardScaler"],
    }


# --------------------------------------------------------------------------- warm start


def _tree_arrays(tree):
    return tree.tree_.feature, tree.tree_.threshold, tree.tree_.value


def test_a_warm_started_forest_has_more_trees_and_keeps_the_parents(old, new):
    parent = fitted(RandomForestClassifier(30, random_state=0), old)
    result = st.train("warm_start", parent, *new, {"add_estimators": 20}, seed=SEED)
    model = result.estimator
    assert len(model.estimators_) == 50 and len(parent.estimators_) == 30
    for kept, original in zip(model.estimators_[:30], parent.estimators_, strict=True):
        for a, b in zip(_tree_arrays(kept), _tree_arrays(original), strict=True):
            assert np.array_equal(a, b)
    assert result.record["warm_start"] == {
        "grows": "n_estimators",
        "unit": "trees",
        "requested": 20,
        "n_estimators": 50,
        "parent": 30,
        "added": 20,
        "total": 50,
    }
    # The flag goes back to the parent's; the continued state stays.
    assert model.warm_start is False and model.n_estimators == 50


def test_a_warm_started_boosting_model_continues_from_the_parents_stages(old, new):
    parent = fitted(GradientBoostingClassifier(n_estimators=25, random_state=0), old)
    result = st.train("warm_start", parent, *new, {"add_estimators": 15}, seed=SEED)
    model = result.estimator
    assert model.n_estimators_ == 40
    X = new[0]
    stage_25 = list(model.staged_decision_function(X))[24]
    assert np.allclose(stage_25.ravel(), parent.decision_function(X))
    assert result.record["warm_start"]["total"] > result.record["warm_start"]["parent"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_warm_started_pipeline_keeps_its_scaler_and_continues_its_coefficients(old, new):
    parent = fitted(make_pipeline(StandardScaler(), LogisticRegression()), old)
    result = st.train("warm_start", parent, *new, {"add_iterations": 1}, seed=SEED)
    model = result.estimator
    assert np.array_equal(model[0].mean_, parent[0].mean_)  # the scaler is the parent's
    X, y = new
    by_hand = copy.deepcopy(parent[-1]).set_params(warm_start=True, max_iter=1)
    by_hand.fit(parent[0].transform(X), y)
    assert np.array_equal(model[-1].coef_, by_hand.coef_)
    cold = LogisticRegression(max_iter=1).fit(parent[0].transform(X), y)
    assert not np.allclose(model[-1].coef_, cold.coef_)
    assert any(w.startswith("ConvergenceWarning") for w in result.record["warnings"])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_continued_mlp_is_not_stopped_by_the_parents_best_loss(old, new):
    parent = fitted(MLPClassifier((16,), max_iter=300, random_state=0), old)
    result = st.train("warm_start", parent, *new, {"add_iterations": 60}, seed=SEED)
    assert result.record["warm_start"]["added"] == 60
    assert result.record["warm_start"]["total"] > result.record["warm_start"]["parent"]
    # scikit-learn alone compares the new rows' loss with the parent's best on its own
    # rows and stops after n_iter_no_change epochs.
    plain = copy.deepcopy(parent).set_params(warm_start=True, max_iter=60).fit(*new)
    assert plain.n_iter_ == parent.n_iter_no_change + 1


def test_warm_start_cannot_add_a_class(old, new):
    parent = fitted(RandomForestClassifier(5, random_state=0), old)
    X, y = new
    with pytest.raises(StrategyError, match=r"label\(s\) \[2\].*cannot add a class. Use refit"):
        st.train("warm_start", parent, X, y.where(y.index != 0, 2), seed=SEED)


# --------------------------------------------------------------------------- online


def _chunks(X, y, size):
    for start in range(0, len(y), size):
        yield X.iloc[start : start + size], y.iloc[start : start + size]


def test_partial_fit_continues_from_the_parents_coefficients(old, new):
    parent = fitted(SGDClassifier(random_state=0), old)
    X, y = new[0].iloc[:300], new[1].iloc[:300]
    result = st.train("online", parent, X, y, {"chunk_size": 100}, seed=SEED)
    by_hand = copy.deepcopy(parent)
    fresh = clone(parent)
    for X_chunk, y_chunk in _chunks(X, y, 100):
        by_hand.partial_fit(X_chunk, y_chunk, classes=[0, 1])
        fresh.partial_fit(X_chunk, y_chunk, classes=[0, 1])
    coef = result.estimator.coef_
    assert np.array_equal(coef, by_hand.coef_)
    assert not np.allclose(coef, parent.coef_)  # it moved ...
    assert not np.allclose(coef, fresh.coef_)  # ... from the parent's, not from zero
    assert result.record["online"]["chunks"] == 3
    assert result.record["online"]["rows_learned"] == 300


def test_a_chunk_without_a_class_cannot_shrink_the_model():
    X_old, y3 = stream(1500, 0, shifted=False)
    y3 = pd.Series(np.digitize(X_old["x0"], [-0.5, 0.5]), name="y")  # three classes
    parent = SGDClassifier(random_state=0).fit(X_old, y3)
    X_new, _ = stream(300, 1, shifted=True)
    only_zero = pd.Series(np.zeros(300, dtype=int))
    result = st.train("online", parent, X_new, only_zero, {"chunk_size": 100}, seed=SEED)
    assert result.estimator.classes_.tolist() == [0, 1, 2]
    assert result.estimator.coef_.shape == parent.coef_.shape == (3, 4)


class RecordingSGD(SGDClassifier):
    """An SGDClassifier that notes the classes passed to each partial_fit call."""

    calls: list = []

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        RecordingSGD.calls.append((sorted(set(y)), None if classes is None else list(classes)))
        return super().partial_fit(X, y, classes=classes, sample_weight=sample_weight)


def test_every_partial_fit_call_is_given_the_parents_classes(old, new):
    parent = RecordingSGD(random_state=0).fit(*old)
    X, y = new[0].iloc[:300], new[1].iloc[:300]
    y = y.where(np.arange(300) >= 100, 1)  # the first chunk holds one class only
    RecordingSGD.calls.clear()
    st.train("online", parent, X, y, {"chunk_size": 100}, seed=SEED)
    assert RecordingSGD.calls == [([1], [0, 1]), ([0, 1], [0, 1]), ([0, 1], [0, 1])]


def test_progressive_validation_scores_each_chunk_before_learning_it(old, new):
    parent = fitted(SGDClassifier(random_state=0), old)
    X, y = new[0].iloc[:1050], new[1].iloc[:1050]
    result = st.train("online", parent, X, y, {"chunk_size": 250}, seed=SEED)
    model = copy.deepcopy(parent)
    per_chunk, seen_true, seen_pred = [], [], []
    running = []
    for X_chunk, y_chunk in _chunks(X, y, 250):
        guess = model.predict(X_chunk)
        per_chunk.append({"rows": len(y_chunk), "value": metrics.accuracy_score(y_chunk, guess)})
        seen_true.extend(y_chunk)
        seen_pred.extend(guess)
        running.append(metrics.accuracy_score(seen_true, seen_pred))
        model.partial_fit(X_chunk, y_chunk, classes=[0, 1])
    progressive = result.record["online"]["progressive_validation"]
    assert progressive["metric"] == "accuracy"
    assert progressive["chunks"] == per_chunk
    assert [c["rows"] for c in per_chunk] == [250, 250, 250, 250, 50]
    assert progressive["running"] == running
    assert progressive["final"] == running[-1]
    # The model adapts as it goes: the last chunk is predicted better than the first.
    assert per_chunk[-1]["value"] > per_chunk[0]["value"] + 0.2


def test_an_online_pipeline_keeps_its_scaler_and_partial_fits_the_last_step(old, new):
    parent = fitted(make_pipeline(StandardScaler(), SGDClassifier(random_state=0)), old)
    X, y = new[0].iloc[:400], new[1].iloc[:400]
    result = st.train("online", parent, X, y, {"chunk_size": 200}, seed=SEED)
    assert np.array_equal(result.estimator[0].mean_, parent[0].mean_)
    by_hand = copy.deepcopy(parent[-1])
    for X_chunk, y_chunk in _chunks(X, y, 200):
        by_hand.partial_fit(parent[0].transform(X_chunk), y_chunk, classes=[0, 1])
    assert np.array_equal(result.estimator[-1].coef_, by_hand.coef_)


def test_online_regression_scores_chunks_by_mean_absolute_error():
    parent = fitted(SGDRegressor(random_state=0), regression_stream(1000, 0, shifted=False))
    X, y = regression_stream(500, 1, shifted=True)
    result = st.train("online", parent, X, y, {"chunk_size": 250}, seed=SEED)
    progressive = result.record["online"]["progressive_validation"]
    first = metrics.mean_absolute_error(y.iloc[:250], parent.predict(X.iloc[:250]))
    assert progressive["metric"] == "mae"
    assert progressive["chunks"][0]["value"] == pytest.approx(first)


def test_online_refuses_a_label_the_parent_never_saw(old, new):
    parent = fitted(SGDClassifier(random_state=0), old)
    X, y = new
    with pytest.raises(StrategyError, match="not among the parent's classes"):
        st.train("online", parent, X, y.replace({1: 5}), seed=SEED)


# --------------------------------------------------------------------------- augmentation


@pytest.fixture(scope="module")
def imbalanced(new):
    X, y = new
    keep = (y == 1) | (np.arange(len(y)) % 5 == 0)  # about one 0 for four 1s
    return X[keep].reset_index(drop=True), y[keep].reset_index(drop=True)


def test_augmentation_is_reproducible_from_its_seed(old, imbalanced):
    parent = fitted(LogisticRegression(), old)
    params = {"jitter_fraction": 0.2}
    first = st.train("augmentation", parent, *imbalanced, params, seed=SEED)
    again = st.train("augmentation", parent, *imbalanced, params, seed=SEED)
    other = st.train("augmentation", parent, *imbalanced, params, seed=SEED + 1)
    assert first.record == {**again.record, "fit_seconds": first.record["fit_seconds"]}
    assert np.array_equal(first.estimator.coef_, again.estimator.coef_)
    assert first.record["augmentation"]["sha256"] != other.record["augmentation"]["sha256"]
    assert not np.array_equal(first.estimator.coef_, other.estimator.coef_)

    rows, target, record = st.augment(
        *imbalanced, seed=SEED, rebalance=True, jitter_scale=0.05, jitter_fraction=0.2
    )
    same_rows, same_target, _ = st.augment(
        *imbalanced, seed=SEED, rebalance=True, jitter_scale=0.05, jitter_fraction=0.2
    )
    pd.testing.assert_frame_equal(rows, same_rows)
    assert np.array_equal(target, same_target)
    assert record["sha256"] == frame_digest(rows.assign(__target__=target))
    assert record == first.record["augmentation"]


def test_rebalancing_oversamples_the_minority_up_to_the_majority(imbalanced):
    X, y = imbalanced
    counts = y.value_counts()
    rows, target, record = st.augment(
        X, y, seed=SEED, rebalance=True, jitter_scale=0.0, jitter_fraction=0.0
    )
    assert np.bincount(target).tolist() == [counts[1], counts[1]]
    assert record["added_by_class"] == {"0": int(counts[1] - counts[0])}
    assert record["rows_added"] == counts[1] - counts[0] == len(rows) - len(X)
    # Without jitter the added rows are copies of minority rows; the originals come first.
    pd.testing.assert_frame_equal(rows.iloc[: len(X)], X)
    minority = {tuple(r) for r in X[y == 0].itertuples(index=False)}
    assert all(tuple(r) in minority for r in rows.iloc[len(X) :].itertuples(index=False))


def test_jitter_moves_float_features_by_the_set_fraction_of_their_spread(imbalanced):
    X, y = imbalanced
    X = X.assign(count=np.arange(len(X)) % 7)  # an integer column is copied, never jittered
    rows, _, record = st.augment(
        X, y, seed=SEED, rebalance=False, jitter_scale=0.1, jitter_fraction=3.0
    )
    assert record["jitter_copies"] == 3 * len(X)
    assert record["jittered_columns"] == COLUMNS
    added = rows.iloc[len(X) :]
    assert set(added["count"]) <= set(range(7))
    # Each added row is a drawn row plus N(0, (0.1 * std)^2) noise: re-draw the sources.
    rng = np.random.default_rng(SEED)
    sources = X.iloc[rng.choice(len(X), size=3 * len(X), replace=True)]
    for column in COLUMNS:
        noise = added[column].to_numpy() - sources[column].to_numpy()
        assert record["column_std"][column] == pytest.approx(X[column].std(ddof=0))
        assert noise.std() == pytest.approx(0.1 * X[column].std(ddof=0), rel=0.05)


# --------------------------------------------------------------------------- fairness mitigation


def test_fairness_mitigation_builds_governances_mitigated_candidate(old):
    from governance.estimators import mitigated_estimator

    X, y = old
    rows = X.assign(group=np.where(X["x2"] > 0, "a", "b"))
    parent = fitted(LogisticRegression(), old)
    params = {"sensitive_columns": ["group"], "constraint": "equalized_odds"}
    result = st.train("fairness_mitigation", parent, rows, y, params, seed=SEED)
    expected = mitigated_estimator(
        parent,
        rows.assign(y=y),
        features=COLUMNS,
        target="y",
        sensitive=["group"],
        method="threshold_optimizer",
        constraint="equalized_odds",
        random_state=SEED,
    )
    assert np.array_equal(result.estimator.predict(rows), expected.predict(rows))
    assert result.record["params"]["method"] == "threshold_optimizer"
    assert result.record["seeded_params"] == {"random_state": SEED}


def test_fairness_mitigation_names_a_missing_sensitive_column(old):
    parent = fitted(LogisticRegression(), old)
    with pytest.raises(StrategyError, match="no sensitive column 'group'"):
        st.train("fairness_mitigation", parent, *old, {"sensitive_columns": ["group"]}, seed=1)


# --------------------------------------------------------------------------- purity


def test_the_pure_modules_import_no_django():
    code = (
        "import sys; import lifecycle.strategies, lifecycle.training_data, "
        "lifecycle.challenger, governance.estimators; "
        "loaded = [m for m in sys.modules if m == 'django' or m.startswith('django.')]; "
        "assert not loaded, loaded"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=root, env={"PYTHONPATH": str(root)}
    )
