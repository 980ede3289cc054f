"""monitoring.performance: the version's classes in the form the label join stores them,
so a performance check and an A/B comparison score the version's positive class."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from monitoring import performance


def joined(labels, predictions, probability=None) -> pd.DataFrame:
    frame = pd.DataFrame({"label": labels, "prediction": predictions})
    if probability is not None:
        frame["probability"] = probability
    return frame


def test_classes_take_the_stored_form_of_the_label_join() -> None:
    ints = joined(np.array([0, 1]), np.array([1, 1]))
    text = joined(np.array(["0", "1"], dtype=object), np.array(["1", "1"], dtype=object))
    assert performance.stored_classes([2, 10], ints) == [2, 10]
    assert performance.stored_classes([2, 10], text) == ["2", "10"]
    assert performance.stored_classes([False, True], ints) == [0, 1]
    assert performance.stored_classes([False, True], text) == ["0", "1"]
    assert performance.stored_classes([0.0, 1.0], text) == ["0", "1"]
    assert performance.stored_classes(["no", "yes"], text) == ["no", "yes"]
    assert performance.stored_classes(None, text) is None


def test_integer_classes_stored_as_text_keep_their_positive_class() -> None:
    """``"10" < "2"`` as strings: the positive class is still 10, as the version says."""
    rng = np.random.default_rng(0)
    truth = rng.choice([2, 10], 500, p=[0.7, 0.3])
    predicted = np.where(rng.random(500) < 0.8, truth, 12 - truth)
    score = np.clip((truth == 10) * 0.3 + rng.random(500) * 0.7, 0, 1)
    frame = joined(truth.astype(str).astype(object), predicted.astype(str).astype(object), score)
    values = performance.compute_metrics("classification", frame, classes=[2, 10])
    assert values["precision"] == pytest.approx(skm.precision_score(truth, predicted, pos_label=10))
    assert values["recall"] == pytest.approx(skm.recall_score(truth, predicted, pos_label=10))
    assert values["roc_auc"] == pytest.approx(skm.roc_auc_score(truth == 10, score))
    assert values["brier"] == pytest.approx(skm.brier_score_loss(truth, score, pos_label=10))


def test_metrics_that_need_scores_use_the_rows_that_have_one() -> None:
    truth = np.array([0, 1, 0, 1, 1, 0])
    predicted = np.array([0, 1, 1, 1, 0, 0])
    score = np.array([0.1, 0.8, 0.6, np.nan, np.nan, 0.3])
    frame = joined(truth, predicted, score)
    values = performance.compute_metrics("classification", frame, classes=[0, 1])
    kept = ~np.isnan(score)
    assert values["roc_auc"] == pytest.approx(skm.roc_auc_score(truth[kept], score[kept]))
    assert values["precision"] == pytest.approx(skm.precision_score(truth, predicted))
    none_scored = joined(truth, predicted, np.full(6, np.nan))
    assert performance.metric_value("roc_auc", none_scored, classes=[0, 1]) is None


def test_a_b_comparison_scores_each_versions_positive_class() -> None:
    rng = np.random.default_rng(3)

    def arm(hit_rate: float) -> pd.DataFrame:
        truth = rng.choice(["no", "yes"], 400)
        hit = rng.random(400) < hit_rate
        flipped = np.where(truth == "yes", "no", "yes")
        return joined(truth.astype(object), np.where(hit, truth, flipped).astype(object))

    a, b = arm(0.6), arm(0.9)
    # (More rows than the arms hold are required: the values only, no bootstrap.)
    result = performance.ab_compare(
        "recall", a, b, classes_a=["no", "yes"], classes_b=["no", "yes"], min_rows=1000
    )
    for side, frame in (("a", a), ("b", b)):
        assert result[f"value_{side}"] == pytest.approx(
            skm.recall_score(frame["label"], frame["prediction"], pos_label="yes")
        )
    # Lower is better for MAE (and log loss, RMSE): a bigger B is a worse B.
    worse = performance.ab_compare(
        "mae",
        joined(np.zeros(200), np.full(200, 0.1)),
        joined(np.zeros(200), rng.normal(1.0, 0.1, 200)),
    )
    assert worse["winner"] == "a"


def test_a_performance_drop_is_signed_by_the_metrics_direction() -> None:
    assert performance.metric_drop("accuracy", 0.9, 0.8) == pytest.approx(0.1)
    assert performance.metric_drop("log_loss", 0.3, 0.4) == pytest.approx(0.1)
    assert performance.metric_drop("rmse", 2.0, 2.5) == pytest.approx(0.25)
    assert performance.metric_drop("mae", 0.0, 0.0) == 0.0
