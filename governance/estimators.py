"""Fairness-mitigated classifiers that a skops file can hold (pure: no Django).

A registered version must answer ``predict(X)`` on its signature's columns and
be stored as skops with allow-listed types. fairlearn's mitigators don't fit
that shape as they are: ``ThresholdOptimizer`` wants the sensitive features as
a separate argument and keeps pandas plotting data skops cannot store;
``ExponentiatedGradient`` keeps pandas Series and callables. These two
wrappers keep exactly what prediction needs and reproduce the mitigator's
output: for the same ``random_state`` their ``predict`` equals fairlearn's
(``tests/governance/test_mitigation.py`` checks it).

fairlearn's mitigators take labels 0 and 1 only: the mitigator is fitted on "is the
positive class" (``common.metrics.positive_class`` of the audited version's classes,
``classes[1]``, the column of ``predict_proba`` that ``ThresholdOptimizer`` reads),
and the wrappers answer in the audited version's own classes (``classes_``), so the
candidate is audited, evaluated and monitored against the same positive class.

Governance registers the wrappers' types (and fairlearn's two post-processing
types) as trusted with ``registry.artifacts.register_trusted_types``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import has_fit_parameter

from common.metrics import positive_class
from governance.fairness import FairnessInputError, fill_missing_groups

# What ThresholdOptimizer's per-group thresholds maximise under the fairness
# constraint. Balanced accuracy, not fairlearn's default (accuracy): on an
# imbalanced target (defaults are a minority) accuracy is best served by predicting
# the majority class for nearly everyone, which leaves a model that decides almost
# nothing and group rates too small to audit with any confidence.
THRESHOLD_OBJECTIVE = "balanced_accuracy_score"

TRUSTED_TYPES = (
    "governance.estimators.GroupThresholdClassifier",
    "governance.estimators.RandomizedEnsembleClassifier",
    "fairlearn.postprocessing._interpolated_thresholder.InterpolatedThresholder",
    "fairlearn.postprocessing._threshold_operation.ThresholdOperation",
)


class GroupThresholdClassifier(ClassifierMixin, BaseEstimator):
    """A fitted binary classifier with fairlearn's per-group randomized thresholds.

    Inputs are the model's ``features`` followed by the ``sensitive`` columns
    (the post-processing needs them at prediction time; they need not be model
    inputs). ``predict_proba`` is the probability of a positive decision;
    ``predict`` draws it with ``random_state``, as
    ``ThresholdOptimizer.predict(X, sensitive_features=..., random_state=...)``.
    """

    def __init__(
        self,
        thresholder: Any = None,
        features: tuple[str, ...] = (),
        sensitive: tuple[str, ...] = (),
        random_state: int = 0,
    ) -> None:
        self.thresholder = thresholder
        self.features = features
        self.sensitive = sensitive
        self.random_state = random_state

    @classmethod
    def from_optimizer(
        cls,
        optimizer: Any,
        *,
        features: list[str],
        sensitive: list[str],
        random_state: int,
        classes: Sequence[Any] = (0, 1),
    ) -> GroupThresholdClassifier:
        model = cls(
            thresholder=optimizer.interpolated_thresholder_,
            features=tuple(features),
            sensitive=tuple(sensitive),
            random_state=random_state,
        )
        columns = list(features) + [c for c in sensitive if c not in features]
        model.feature_names_in_ = np.asarray(columns, dtype=object)
        model.n_features_in_ = len(columns)
        model.classes_ = np.asarray(list(classes))
        return model

    def _split(self, X: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        return X[list(self.features)], fill_missing_groups(X[list(self.sensitive)])

    def fit(self, X: Any, y: Any = None) -> GroupThresholdClassifier:
        raise NotImplementedError("built from a fitted ThresholdOptimizer (from_optimizer)")

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        features, groups = self._split(X)
        return np.asarray(self.thresholder._pmf_predict(features, sensitive_features=groups))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        features, groups = self._split(X)
        decisions = self.thresholder.predict(
            features, sensitive_features=groups, random_state=self.random_state
        )
        return self.classes_[np.asarray(decisions, dtype=np.intp)]


class RandomizedEnsembleClassifier(ClassifierMixin, BaseEstimator):
    """ExponentiatedGradient's randomized mixture: predictor t with weight w_t.

    ``predict_proba`` = sum of w_t * predictor_t(X); ``predict`` draws with
    ``random_state``, as ``ExponentiatedGradient.predict(X, random_state=...)``.
    Sensitive features are used only to fit, so the inputs are the model's.
    """

    def __init__(
        self,
        predictors: tuple[Any, ...] = (),
        weights: tuple[float, ...] = (),
        features: tuple[str, ...] = (),
        random_state: int = 0,
    ) -> None:
        self.predictors = predictors
        self.weights = weights
        self.features = features
        self.random_state = random_state

    @classmethod
    def from_reduction(
        cls,
        reduction: Any,
        *,
        features: list[str],
        random_state: int,
        classes: Sequence[Any] = (0, 1),
    ) -> RandomizedEnsembleClassifier:
        index = list(reduction.weights_.index)
        model = cls(
            predictors=tuple(reduction.predictors_[i] for i in index),
            weights=tuple(float(reduction.weights_[i]) for i in index),
            features=tuple(features),
            random_state=random_state,
        )
        model.feature_names_in_ = np.asarray(features, dtype=object)
        model.n_features_in_ = len(features)
        model.classes_ = np.asarray(list(classes))
        return model

    def fit(self, X: Any, y: Any = None) -> RandomizedEnsembleClassifier:
        raise NotImplementedError("built from a fitted ExponentiatedGradient (from_reduction)")

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        rows = X[list(self.features)]
        positive = np.zeros(len(rows))
        for predictor, weight in zip(self.predictors, self.weights, strict=True):
            if weight:
                positive += weight * np.asarray(predictor.predict(rows), dtype=float)
        # The weights sum to 1 up to rounding (1.0000000000000036 is seen): a probability
        # above 1 would be refused by scikit-learn's log loss in the evaluation.
        positive = np.clip(positive, 0.0, 1.0)
        return np.column_stack([1 - positive, positive])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        positive = self.predict_proba(X)[:, 1]
        draws = check_random_state(self.random_state).rand(len(positive))
        return self.classes_[(positive >= draws).astype(np.intp)]


def mitigated_estimator(
    estimator: Any,
    frame: pd.DataFrame,
    *,
    features: list[str],
    target: str,
    sensitive: list[str],
    method: str,
    constraint: str,
    random_state: int,
    classes: Sequence[Any] | None = None,
) -> Any:
    """Fit ``method`` around the fitted ``estimator`` and return a storable classifier.

    ``classes``: the audited version's recorded classes (default: the estimator's
    ``classes_``); the mitigators see 1 for the positive class ``classes[1]``, 0 else.

    ThresholdOptimizer post-processes the estimator as it is (``prefit``): the
    candidate keeps the audited model and changes only its decision rule, with
    thresholds that maximise ``THRESHOLD_OBJECTIVE`` under the constraint.
    ExponentiatedGradient retrains clones of it with sample weights, so it
    needs an estimator whose ``fit`` takes ``sample_weight`` (not a Pipeline).
    """
    classes = list(getattr(estimator, "classes_", []) if classes is None else classes)
    pos = positive_class(classes)
    if pos is None:
        raise FairnessInputError(
            f"fairlearn's mitigators handle binary classifiers; the classes are {classes}"
        )
    X, y = frame[features], (frame[target] == pos).astype(np.int64)
    groups = fill_missing_groups(frame[sensitive])
    if method == "threshold_optimizer":
        from fairlearn.postprocessing import ThresholdOptimizer

        optimizer = ThresholdOptimizer(
            estimator=estimator,
            constraints=constraint,
            objective=THRESHOLD_OBJECTIVE,
            prefit=True,
            predict_method="auto",
        )
        optimizer.fit(X, y, sensitive_features=groups)
        return GroupThresholdClassifier.from_optimizer(
            optimizer,
            features=features,
            sensitive=sensitive,
            random_state=random_state,
            classes=classes,
        )
    if method == "exponentiated_gradient":
        from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient
        from sklearn.base import clone

        if not has_fit_parameter(estimator, "sample_weight"):
            raise FairnessInputError(
                f"{type(estimator).__name__}.fit takes no sample_weight, which "
                "ExponentiatedGradient needs; use threshold_optimizer for this model"
            )
        base = clone(estimator)
        if "random_state" in base.get_params(deep=False):
            base.set_params(random_state=random_state)
        moment = DemographicParity() if constraint == "demographic_parity" else EqualizedOdds()
        reduction = ExponentiatedGradient(base, constraints=moment)
        reduction.fit(X, y, sensitive_features=groups)
        return RandomizedEnsembleClassifier.from_reduction(
            reduction, features=features, random_state=random_state, classes=classes
        )
    raise FairnessInputError(f"unknown mitigation method {method!r}")
