"""Prediction and label drift: a model's outputs as drift-engine columns (pure, no Django).

Three columns, compared like features by ``monitoring.drift``:

    prediction   the model's prediction: class labels (categorical) for classification,
                 numbers for regression
    probability  the positive-class score of a binary classifier (numeric), when the
                 model has ``predict_proba``; only compared when batches send it
    label        the ground truth: the training target for the reference, the joined
                 labels of the window's requests for the current side

The reference is the version's own predictions on its training rows, next to that
dataset's target. Class labels are compared by their string form, with integral
floats and booleans first turned into integers, exactly as ingestion stores them
(``monitoring.ingest``): a class ``1.0`` in the training data and ``1`` in a batch are
the same category.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

PREDICTION = "prediction"
PROBABILITY = "probability"
LABEL = "label"
PREDICTED = (PREDICTION, PROBABILITY)


class OutputsUnavailable(Exception):
    """The reference outputs cannot be built; the message says why (stored, shown)."""


def class_labels(values: Any) -> pd.Series:
    """Class labels as a categorical Series (integral floats and booleans as integers).

    Categorical, so the drift engine factorizes the values once and compares the string
    form of the few distinct labels only (a million predictions take milliseconds).
    """
    array = np.asarray(values)
    if array.dtype.kind == "b":
        array = array.astype(np.int64)
    elif array.dtype.kind == "f":
        finite = np.isfinite(array)
        if finite.all() and np.array_equal(array, np.round(array)):
            array = array.astype(np.int64)
    return pd.Series(pd.Categorical(array))


def outputs_frame(task: str, columns: Mapping[str, Any]) -> pd.DataFrame:
    """The drift-engine frame of output columns (any of prediction, probability, label)."""
    frame: dict[str, pd.Series] = {}
    for name, values in columns.items():
        if name == PROBABILITY or task == "regression":
            frame[name] = pd.Series(np.asarray(values, dtype=np.float64))
        else:
            frame[name] = class_labels(values)
    return pd.DataFrame(frame)


def reference_outputs(
    estimator: Any, features: pd.DataFrame, target: pd.Series, *, task: str
) -> pd.DataFrame:
    """The model's predictions (and binary scores) on its training rows, with the target."""
    try:
        predicted = np.asarray(estimator.predict(features))
    except Exception as exc:  # the model's own code: any failure is a reason, not a crash
        raise OutputsUnavailable(f"the model cannot predict on its training data: {exc}") from None
    if predicted.shape != (len(features),):
        raise OutputsUnavailable(f"the model's predictions have shape {predicted.shape}")
    columns: dict[str, Any] = {PREDICTION: predicted}
    classes = getattr(estimator, "classes_", None)
    if (
        task != "regression"
        and classes is not None
        and len(classes) == 2
        and callable(getattr(estimator, "predict_proba", None))
    ):
        try:
            columns[PROBABILITY] = np.asarray(estimator.predict_proba(features))[:, 1]
        except Exception:  # scores are optional: prediction and label drift still work
            logger.warning("predict_proba failed on the training rows", exc_info=True)
    columns[LABEL] = target.to_numpy()
    return outputs_frame(task, columns)
