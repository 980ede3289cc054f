"""common.metrics: the vocabulary, scikit-learn's numbers for the positive class
``classes[1]``, and direction-aware comparisons."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from common import metrics as mx

LABEL_SETS = {
    "integers 2 and 10": [2, 10],
    "integers 1 and 2": [1, 2],
    "strings no and yes": ["no", "yes"],
    "booleans": [False, True],
}


def binary_data(classes: list, n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.35
    score = np.clip(truth * 0.3 + rng.random(n) * 0.7, 0, 1)
    predicted = score > 0.45
    labels = np.asarray(classes)
    return labels[truth.astype(int)], labels[predicted.astype(int)], score


# --------------------------------------------------------------------------- vocabulary


def test_the_vocabulary_keeps_todays_names_and_their_directions() -> None:
    assert mx.names("classification") == (
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "log_loss",
        "brier",
    )
    assert mx.names("regression") == ("rmse", "mae", "r2")
    lower = {name for name, m in mx.METRICS.items() if not m.higher_is_better}
    assert lower == {"log_loss", "brier", "rmse", "mae"}
    assert {n for n, m in mx.METRICS.items() if m.needs_scores} == {"roc_auc", "log_loss", "brier"}
    with pytest.raises(mx.UnknownMetric, match="auc"):
        mx.get("auc")


@pytest.mark.django_db
def test_every_seeded_policy_threshold_names_a_metric_of_its_task() -> None:
    from governance.models import ApprovalPolicy

    bounded = 0
    for policy in ApprovalPolicy.objects.all():
        for kind, thresholds in policy.thresholds.items():
            if kind.startswith("evaluation_report:"):
                task = kind.split(":", 1)[1]
                assert set(thresholds) <= set(mx.names(task)), (policy, kind)
                bounded += len(thresholds)
    assert bounded  # roc_auc floors exist


# --------------------------------------------------------------------------- the positive class


def test_the_positive_class_is_the_second_of_the_versions_classes() -> None:
    assert mx.positive_class([2, 10]) == 10
    assert mx.positive_class([1, 2]) == 2
    assert mx.positive_class(["no", "yes"]) == "yes"
    assert mx.positive_class([False, True]) is True
    assert mx.positive_class(np.array(["a", "b"])) == "b"
    for none in (None, [], [0, 1, 2], [[0, 1], [0, 1]]):
        assert mx.positive_class(none) is None


@pytest.mark.parametrize("case", list(LABEL_SETS))
def test_binary_metrics_equal_scikit_learn_with_pos_label_classes_1(case: str) -> None:
    classes = LABEL_SETS[case]
    y, predicted, score = binary_data(classes)
    pos = classes[1]
    proba = np.column_stack([1 - score, score])
    got = mx.compute_all("classification", y, predicted, classes=classes, scores=proba)
    expected = {
        "accuracy": skm.accuracy_score(y, predicted),
        "precision": skm.precision_score(y, predicted, pos_label=pos),
        "recall": skm.recall_score(y, predicted, pos_label=pos),
        "f1": skm.f1_score(y, predicted, pos_label=pos),
        "roc_auc": skm.roc_auc_score(y == pos, score),
        "log_loss": skm.log_loss(y, proba, labels=classes),
        "brier": skm.brier_score_loss(y, score, pos_label=pos),
    }
    assert got == pytest.approx(expected, abs=1e-12)
    # The other class really scores differently: the rule matters.
    assert got["precision"] != pytest.approx(
        skm.precision_score(y, predicted, pos_label=classes[0])
    )
    # The positive-class score alone gives the same numbers as predict_proba.
    alone = mx.compute_all("classification", y, predicted, classes=classes, scores=score)
    assert alone == pytest.approx(got, abs=1e-12)
    # An estimator's classes_ (a numpy array) works as well as the recorded list.
    as_array = mx.compute_all(
        "classification", y, predicted, classes=np.asarray(classes), scores=proba
    )
    assert as_array == pytest.approx(got, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    case=st.sampled_from(sorted(LABEL_SETS)),
    truth=st.lists(st.booleans(), min_size=2, max_size=60),
    data=st.data(),
)
def test_precision_and_recall_follow_classes_1_on_any_labels(case, truth, data) -> None:
    classes = LABEL_SETS[case]
    predicted_bits = data.draw(st.lists(st.booleans(), min_size=len(truth), max_size=len(truth)))
    labels = np.asarray(classes)
    y = labels[np.asarray(truth, dtype=int)]
    predicted = labels[np.asarray(predicted_bits, dtype=int)]
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score)):
        expected = fn(y, predicted, pos_label=classes[1], zero_division=np.nan)
        got = mx.compute(name, y, predicted, classes=classes)
        if math.isnan(expected):
            assert got is None
        else:
            assert got == pytest.approx(expected)


def test_multiclass_uses_macro_averages_and_one_vs_rest_auc() -> None:
    rng = np.random.default_rng(1)
    classes = ["high", "low", "mid"]
    y = rng.choice(classes, 300)
    predicted = np.where(rng.random(300) < 0.6, y, rng.choice(classes, 300))
    proba = rng.dirichlet([1, 1, 1], 300)
    got = mx.compute_all("classification", y, predicted, classes=classes, scores=proba)
    assert got["precision"] == pytest.approx(skm.precision_score(y, predicted, average="macro"))
    assert got["f1"] == pytest.approx(skm.f1_score(y, predicted, average="macro"))
    assert got["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes)
    )
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=classes))
    assert got["brier"] is None  # binary only


def test_undefined_values_are_none_never_a_made_up_zero() -> None:
    classes = [2, 10]
    y = np.array([2, 10, 2, 10])
    none_predicted = np.array([2, 2, 2, 2])
    assert mx.compute("precision", y, none_predicted, classes=classes) is None
    assert mx.compute("recall", y, none_predicted, classes=classes) == 0.0
    one_class = np.array([10, 10, 10])
    score = np.array([0.2, 0.7, 0.9])
    assert mx.compute("roc_auc", one_class, one_class, classes=classes, scores=score) is None
    assert mx.compute("roc_auc", y, y, classes=classes) is None  # no scores
    assert mx.compute("r2", [1.0], [1.5]) is None
    assert mx.compute("accuracy", [], [], classes=classes) is None


def test_without_the_versions_classes_only_accuracy_is_computed() -> None:
    """The labels seen never stand in for the classes: "10" sorts before "2"."""
    y = np.array(["2", "10", "10", "2"])
    predicted = np.array(["2", "10", "2", "2"])
    got = mx.compute_all("classification", y, predicted, classes=None, scores=np.ones(4) / 2)
    assert got["accuracy"] == 0.75
    assert {k for k, v in got.items() if v is not None} == {"accuracy"}


def test_a_label_outside_the_classes_counts_as_negative() -> None:
    y = np.array(["yes", "no", "maybe", "yes"])
    predicted = np.array(["yes", "yes", "yes", "no"])
    # "yes" vs the rest: TP 1, FP 2 (the "no" and the "maybe" row), FN 1.
    assert mx.compute("precision", y, predicted, classes=["no", "yes"]) == pytest.approx(1 / 3)
    assert mx.compute("recall", y, predicted, classes=["no", "yes"]) == pytest.approx(1 / 2)


def test_regression_metrics_equal_scikit_learn() -> None:
    rng = np.random.default_rng(2)
    y, predicted = rng.normal(size=200), rng.normal(size=200)
    assert mx.compute_all("regression", y, predicted) == pytest.approx(
        {
            "rmse": skm.root_mean_squared_error(y, predicted),
            "mae": skm.mean_absolute_error(y, predicted),
            "r2": skm.r2_score(y, predicted),
        }
    )


# --------------------------------------------------------------------------- comparisons


def test_comparisons_know_each_metrics_direction_and_scale() -> None:
    assert mx.improvement("accuracy", 0.80, 0.85) == pytest.approx(0.05)
    assert mx.improvement("log_loss", 0.30, 0.35) == pytest.approx(-0.05)
    # RMSE and MAE are in the target's units: relative to the baseline.
    assert mx.improvement("rmse", 10.0, 11.0) == pytest.approx(-0.1)
    assert mx.improvement("mae", 2.0, 1.0) == pytest.approx(0.5)
    assert mx.improvement("rmse", 0.0, 0.5) == -math.inf
    assert mx.improvement("rmse", 0.0, 0.0) == 0.0
    assert mx.is_better("roc_auc", 0.75, 0.70, tolerance=0.01)
    assert not mx.is_better("roc_auc", 0.705, 0.70, tolerance=0.01)
    assert mx.is_better("rmse", 9.0, 10.0, tolerance=0.05)  # 10 % lower
    assert not mx.is_better("rmse", 9.8, 10.0, tolerance=0.05)  # 2 % lower
    assert mx.better("brier", 0.1, 0.2) is True
    assert mx.better("r2", 0.1, 0.2) is False
    assert mx.better("f1", 0.5, 0.5) is None


# --------------------------------------------------------------------------- purity


def test_the_module_is_pure() -> None:
    tree = ast.parse(Path(mx.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    allowed = {"__future__", "collections", "dataclasses", "math", "types", "typing", "warnings"}
    assert imported <= allowed | {"numpy", "sklearn"}, imported - allowed
