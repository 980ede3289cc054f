"""Evaluation reports equal scikit-learn's numbers on the same data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics
from sklearn.calibration import calibration_curve
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.tree import DecisionTreeClassifier

from lifecycle import evaluation as ev
from tests.conftest import FEATURES, training_frame


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return training_frame(1500, seed=3)


@pytest.fixture(scope="module")
def classifier(frame):
    return LogisticRegression(max_iter=500).fit(frame[FEATURES], frame["label"])


def test_binary_classification_metrics_equal_sklearn(frame, classifier):
    report = ev.evaluate(
        classifier, frame, features=FEATURES, target="label", task="classification"
    )
    X, y = frame[FEATURES], frame["label"]
    predicted, proba = classifier.predict(X), classifier.predict_proba(X)[:, 1]
    expected = {
        "accuracy": metrics.accuracy_score(y, predicted),
        "precision": metrics.precision_score(y, predicted),
        "recall": metrics.recall_score(y, predicted),
        "f1": metrics.f1_score(y, predicted),
        "roc_auc": metrics.roc_auc_score(y, proba),
        "log_loss": metrics.log_loss(y, classifier.predict_proba(X)),
        "brier": metrics.brier_score_loss(y, proba),
    }
    for name, value in expected.items():
        assert report["metrics"][name] == pytest.approx(value, abs=1e-12), name
    assert report["confusion_matrix"] == metrics.confusion_matrix(y, predicted).tolist()
    prob_true, prob_pred = calibration_curve(y, proba, n_bins=10)
    assert report["calibration"]["prob_true"] == pytest.approx(prob_true.tolist())
    assert report["calibration"]["prob_pred"] == pytest.approx(prob_pred.tolist())
    assert report["positive_class"] == 1 and report["rows"] == 1500


def test_multiclass_uses_macro_averages_and_one_vs_rest_auc(frame):
    y = pd.cut(frame["score"], [-1, 0.33, 0.66, 2], labels=["low", "mid", "high"]).astype(str)
    data = frame.assign(band=y)
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(data[FEATURES], data["band"])
    report = ev.evaluate(model, data, features=FEATURES, target="band", task="classification")
    predicted = model.predict(data[FEATURES])
    assert report["metrics"]["f1"] == pytest.approx(
        metrics.f1_score(data["band"], predicted, average="macro")
    )
    assert report["metrics"]["roc_auc"] == pytest.approx(
        metrics.roc_auc_score(data["band"], model.predict_proba(data[FEATURES]), multi_class="ovr")
    )
    assert "calibration" not in report and report["positive_class"] is None


def test_a_single_class_dataset_reports_auc_as_undefined(frame, classifier):
    only_ones = frame[frame["label"] == 1]
    report = ev.evaluate(
        classifier, only_ones, features=FEATURES, target="label", task="classification"
    )
    assert report["metrics"]["roc_auc"] is None
    assert any("one class" in note for note in report["notes"])


def test_regression_metrics_equal_sklearn(frame):
    model = Ridge().fit(frame[FEATURES], frame["income"])
    data = frame.assign(target=frame["income"])
    report = ev.evaluate(model, data, features=FEATURES, target="target", task="regression")
    predicted = model.predict(frame[FEATURES])
    assert report["metrics"]["rmse"] == pytest.approx(
        metrics.root_mean_squared_error(data["target"], predicted)
    )
    assert report["metrics"]["mae"] == pytest.approx(
        metrics.mean_absolute_error(data["target"], predicted)
    )
    assert report["metrics"]["r2"] == pytest.approx(metrics.r2_score(data["target"], predicted))


def test_permutation_importance_is_sklearns_with_the_same_seed(frame, classifier):
    report = ev.permutation_importance_report(
        classifier, frame, features=FEATURES, target="label", task="classification", n_repeats=3
    )
    expected = permutation_importance(
        classifier, frame[FEATURES], frame["label"], scoring="accuracy", n_repeats=3, random_state=0
    )
    by_feature = {row["feature"]: row["mean"] for row in report["features"]}
    for i, name in enumerate(FEATURES):
        assert by_feature[name] == pytest.approx(expected.importances_mean[i])
    means = [row["mean"] for row in report["features"]]
    assert means == sorted(means, reverse=True)


def test_bad_data_is_refused_with_its_reason(frame, classifier):
    with pytest.raises(ev.EvaluationInputError, match="no column"):
        ev.evaluate(
            classifier,
            frame.drop(columns=["age"]),
            features=FEATURES,
            target="label",
            task="classification",
        )
    with pytest.raises(ev.EvaluationInputError, match="missing values"):
        ev.evaluate(
            classifier,
            frame.assign(label=np.nan),
            features=FEATURES,
            target="label",
            task="classification",
        )
    with pytest.raises(ev.EvaluationInputError, match="fails to predict"):
        ev.evaluate(
            classifier,
            frame.assign(age="x"),
            features=FEATURES,
            target="label",
            task="classification",
        )


def test_comparison_knows_which_direction_is_better():
    rows = ev.compare_reports(
        {"metrics": {"accuracy": 0.9, "log_loss": 0.3, "roc_auc": None}},
        {"metrics": {"accuracy": 0.8, "log_loss": 0.2, "roc_auc": 0.7}},
    )
    assert rows["accuracy"]["better"] is True and rows["accuracy"]["delta"] == pytest.approx(0.1)
    assert rows["log_loss"]["better"] is False
    assert rows["roc_auc"]["delta"] is None
