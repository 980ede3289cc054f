"""Retraining strategies: how a candidate is trained from its parent (pure: no Django).

There is no user code in a retraining run: the parent version's own fitted
estimator is the recipe. A strategy says what to do with it:

``refit``
    ``sklearn.base.clone`` of the parent (same hyperparameters), fitted on the
    run's training rows.
``warm_start``
    a copy of the parent continues from its fitted state on the run's rows:
    ensembles add trees (``add_estimators``), iterative estimators run more
    iterations from their current coefficients (``add_iterations``). Which
    estimator grows how is the table ``WARM_START_GROWTH``.
``online``
    ``partial_fit`` of a copy of the parent on the labelled production rows, in
    chunks of ``chunk_size`` rows, with the parent's ``classes_`` pinned (a
    chunk without some class cannot shrink the model). Each chunk is scored
    before the model learns from it (progressive validation, as River's
    ``progressive_val_score`` does), and the running score is recorded.
``augmentation``
    a refit on the training rows plus seeded added rows: minority classes
    oversampled up to the majority class (``rebalance``), and Gaussian jitter
    of float features by ``jitter_scale`` of each column's standard deviation
    on every added row; ``jitter_fraction`` adds further jittered copies.
``fairness_mitigation``
    fairlearn's ``ThresholdOptimizer`` or ``ExponentiatedGradient`` around the
    parent (``governance.estimators.mitigated_estimator``), so mitigated
    candidates come through the same door as every other retrained one.

Pipelines: ``refit`` and ``augmentation`` clone and fit the whole pipeline.
``warm_start`` and ``online`` continue the *final* estimator only and keep the
preprocessing steps exactly as the parent fitted them: the rows are passed
through the parent's fitted transformers, then the last step continues. Refitting
a scaler or an encoder on the new rows would move the input space under the
trees or coefficients being continued, so their earlier state would no longer
mean what it meant.

Nothing is fitted before every check has passed: the strategy name, the
parameters (:func:`validate_params`), the parent's ability
(:func:`supports`, which looks at the fitted parent only), the rows (the
parent's columns present, no missing target, the parent's classes present or
pinned). Every refusal is a :class:`StrategyError` whose message says what is
wrong and what would work. The parent is never mutated: strategies work on a
``clone`` or a ``copy.deepcopy``. A ``random_state`` left unset in the parent
is set to the run's seed (and recorded) so that a run can be replayed.
"""

from __future__ import annotations

import copy
import functools
import math
import numbers
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import ensemble, linear_model, neural_network
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from lifecycle.training_data import frame_digest

REFIT = "refit"
WARM_START = "warm_start"
ONLINE = "online"
AUGMENTATION = "augmentation"
FAIRNESS_MITIGATION = "fairness_mitigation"

ADD_ESTIMATORS = "add_estimators"
ADD_ITERATIONS = "add_iterations"

# Mirrors governance.models.MitigationMethod and Constraint (Django choices a pure
# module cannot import; tests/lifecycle/test_strategies.py checks they agree).
MITIGATION_METHODS = ("threshold_optimizer", "exponentiated_gradient")
MITIGATION_CONSTRAINTS = ("demographic_parity", "equalized_odds")
MAX_SENSITIVE_COLUMNS = 4
MAX_RECORDED_WARNINGS = 10


class StrategyError(ValueError):
    """A run that cannot be trained as asked; ``reason`` says why, ``field`` what."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


# --------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class Param:
    """One parameter of a strategy: its type, default, bounds and meaning."""

    name: str
    kind: str  # "int" | "float" | "bool" | "choice" | "columns"
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    required: bool = False

    def clean(self, value: Any) -> Any:
        fail = f"{self.name} must be {self._expected()}, not {value!r}."
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise StrategyError(fail, field=self.name)
            return value
        if self.kind == "choice":
            if value not in self.choices:
                raise StrategyError(fail, field=self.name)
            return value
        if self.kind == "columns":
            if (
                not isinstance(value, list | tuple)
                or not value
                or not all(isinstance(v, str) and v for v in value)
                or len(set(value)) != len(value)
                or (self.maximum is not None and len(value) > self.maximum)
            ):
                raise StrategyError(fail, field=self.name)
            return list(value)
        # Numbers: bool is an int to Python but never a count or a fraction here.
        integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        real = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if self.kind == "int" and not integral:
            raise StrategyError(fail, field=self.name)
        if self.kind == "float" and (not real or not math.isfinite(float(value))):
            raise StrategyError(fail, field=self.name)
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            raise StrategyError(fail, field=self.name)
        return int(value) if self.kind == "int" else float(value)

    def _expected(self) -> str:
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "columns":
            return f"a list of 1 to {self.maximum:g} distinct column names"
        what = "a whole number" if self.kind == "int" else "a number"
        return f"{what} from {self.minimum:g} to {self.maximum:g}"

    def describe(self) -> dict[str, Any]:
        described = {
            "name": self.name,
            "type": self.kind,
            "default": self.default,
            "required": self.required,
            "help": self.help,
        }
        if self.minimum is not None:
            described["minimum"] = self.minimum
        if self.maximum is not None:
            described["maximum"] = self.maximum
        if self.choices:
            described["choices"] = list(self.choices)
        return described


@dataclass(frozen=True)
class Strategy:
    name: str
    summary: str
    params: tuple[Param, ...] = ()

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "summary": self.summary,
            "params": [p.describe() for p in self.params],
        }


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy(REFIT, "Clone the parent (same hyperparameters) and fit it on the run's rows."),
        Strategy(
            WARM_START,
            "Continue the parent's fitted estimator: more trees, or more iterations "
            "from its current coefficients.",
            (
                Param(
                    ADD_ESTIMATORS,
                    "int",
                    50,
                    "Trees or boosting stages added to an ensemble.",
                    minimum=1,
                    maximum=5000,
                ),
                Param(
                    ADD_ITERATIONS,
                    "int",
                    100,
                    "Iterations (epochs, solver steps) run from the parent's coefficients.",
                    minimum=1,
                    maximum=100_000,
                ),
            ),
        ),
        Strategy(
            ONLINE,
            "partial_fit a copy of the parent on the labelled production rows, chunk by "
            "chunk, each chunk scored before it is learned.",
            (
                Param(
                    "chunk_size",
                    "int",
                    250,
                    "Rows per partial_fit call (and per progressive-validation score).",
                    minimum=10,
                    maximum=100_000,
                ),
            ),
        ),
        Strategy(
            AUGMENTATION,
            "Refit on the training rows plus seeded added rows: oversampled minority "
            "classes and Gaussian jitter of float features.",
            (
                Param(
                    "rebalance",
                    "bool",
                    True,
                    "Oversample every minority class up to the majority class "
                    "(classification only; off for regressors unless asked, refused then).",
                ),
                Param(
                    "jitter_scale",
                    "float",
                    0.05,
                    "Standard deviation of the noise added to float features of added rows, "
                    "as a fraction of each column's standard deviation (0: none).",
                    minimum=0.0,
                    maximum=1.0,
                ),
                Param(
                    "jitter_fraction",
                    "float",
                    0.0,
                    "Jittered copies of randomly drawn training rows to add, as a fraction "
                    "of the training rows.",
                    minimum=0.0,
                    maximum=5.0,
                ),
            ),
        ),
        Strategy(
            FAIRNESS_MITIGATION,
            "fairlearn's ThresholdOptimizer or ExponentiatedGradient around the parent "
            "(binary classifiers), after a failed fairness audit.",
            (
                Param(
                    "method",
                    "choice",
                    MITIGATION_METHODS[0],
                    "threshold_optimizer post-processes the parent as it is; "
                    "exponentiated_gradient retrains reweighted clones of it.",
                    choices=MITIGATION_METHODS,
                ),
                Param(
                    "constraint",
                    "choice",
                    MITIGATION_CONSTRAINTS[0],
                    "The fairness constraint to satisfy.",
                    choices=MITIGATION_CONSTRAINTS,
                ),
                Param(
                    "sensitive_columns",
                    "columns",
                    None,
                    "Columns of the run's rows holding the sensitive features.",
                    maximum=MAX_SENSITIVE_COLUMNS,
                    required=True,
                ),
            ),
        ),
    )
}


def describe() -> list[dict[str, Any]]:
    """The vocabulary as plain JSON (for the API schema and the UI form)."""
    return [s.describe() for s in STRATEGIES.values()]


def strategy(name: Any) -> Strategy:
    if not isinstance(name, str) or name not in STRATEGIES:
        raise StrategyError(
            f"Unknown strategy {name!r}; the strategies are {', '.join(STRATEGIES)}.",
            field="strategy",
        )
    return STRATEGIES[name]


def validate_params(name: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The strategy's parameters with defaults filled in; refuses unknown or bad ones.

    This is the check that needs no estimator; :func:`check` adds the ones that do.
    """
    spec = strategy(name)
    params = {} if params is None else params
    if not isinstance(params, Mapping):
        raise StrategyError("The parameters must be an object of name to value.", field="params")
    unknown = sorted(set(params) - {p.name for p in spec.params})
    if unknown:
        allowed = ", ".join(p.name for p in spec.params) or "none"
        raise StrategyError(
            f"Unknown parameter {unknown[0]!r} for {name} (its parameters: {allowed}).",
            field=str(unknown[0]),
        )
    cleaned = {}
    for p in spec.params:
        if p.name in params and params[p.name] is not None:
            cleaned[p.name] = p.clean(params[p.name])
        elif p.required:
            raise StrategyError(f"{name} needs the parameter {p.name!r}.", field=p.name)
        else:
            cleaned[p.name] = p.default
    if name == AUGMENTATION and cleaned["jitter_fraction"] > 0 and cleaned["jitter_scale"] == 0:
        raise StrategyError(
            "jitter_fraction adds copies of training rows but jitter_scale is 0: "
            "they would be exact duplicates.",
            field="jitter_scale",
        )
    return cleaned


# --------------------------------------------------------------------------- pipelines


def _split(estimator: Any) -> tuple[list[Any], Any]:
    """(fitted preprocessing steps in order, final estimator) of a possibly nested Pipeline."""
    steps: list[Any] = []
    while isinstance(estimator, Pipeline):
        steps.extend(s for _, s in estimator.steps[:-1] if s is not None and s != "passthrough")
        estimator = estimator.steps[-1][1]
    return steps, estimator


def _transform(steps: list[Any], X: Any) -> Any:
    for step in steps:
        X = step.transform(X)
    return X


def _name(estimator: Any) -> str:
    return type(estimator).__name__


def _qualname(estimator: Any) -> str:
    return f"{type(estimator).__module__}.{type(estimator).__qualname__}"


# --------------------------------------------------------------------------- warm start table


def _never(estimator: Any) -> str | None:
    return None


def _as_is(estimator: Any) -> None:
    return None


def _forget_best_score(estimator: Any) -> None:
    """Let a continued MLP's stopping rule measure the new rows, not the parent's best.

    scikit-learn keeps ``best_loss_`` (and, with early stopping,
    ``best_validation_score_``) across a warm-started fit: the continued fit then
    stops after ``n_iter_no_change`` epochs that fail to beat the parent's best on
    its own rows, and with early stopping it even restores the parent's weights.
    """
    if estimator.solver == "lbfgs":  # no epochs, no stopping rule carried over
        return
    if estimator.early_stopping:
        estimator.best_validation_score_ = -np.inf
    else:
        estimator.best_loss_ = np.inf


@dataclass(frozen=True)
class Growth:
    """How one estimator type continues with ``warm_start=True``.

    ``knob`` is the hyperparameter that sets how far ``fit`` goes. For
    ``total`` growth (ensembles) the knob is the size of the whole ensemble,
    so it becomes the fitted count plus the addition and ``fit`` adds only the
    missing members; otherwise (iterative solvers) the knob is the number of
    iterations of the next ``fit``, which starts from the current coefficients.
    """

    knob: str
    param: str
    unit: str
    count: Callable[[Any], int]
    total: bool
    refuse: Callable[[Any], str | None] = _never
    prepare: Callable[[Any], None] = _as_is


def _trees(estimator: Any) -> int:
    return len(estimator.estimators_)


def _stages(estimator: Any) -> int:
    return int(estimator.n_estimators_)


def _iterations(estimator: Any) -> int:
    return int(np.max(estimator.n_iter_))


def _hist_gradient_boosting(estimator: Any) -> str:
    return (
        f"{_name(estimator)} cannot warm start on new rows exactly: scikit-learn re-bins "
        "the new rows on every fit and then scores the parent's trees with the new bins, "
        "so the gradients the added iterations learn from are wrong whenever the data "
        "moved. Use refit."
    )


def _liblinear(estimator: Any) -> str | None:
    if estimator.solver == "liblinear":
        return (
            "LogisticRegression with solver='liblinear' ignores warm_start (it always starts "
            "from zero); use refit, or a parent trained with another solver."
        )
    return None


_TREES = Growth("n_estimators", ADD_ESTIMATORS, "trees", _trees, total=True)
_STAGES = Growth("n_estimators", ADD_ESTIMATORS, "boosting stages", _stages, total=True)
_HIST = Growth(
    "max_iter", ADD_ITERATIONS, "boosting iterations", _iterations, True, _hist_gradient_boosting
)
_EPOCHS = Growth("max_iter", ADD_ITERATIONS, "epochs", _iterations, total=False)
_MLP_EPOCHS = Growth(
    "max_iter", ADD_ITERATIONS, "epochs", _iterations, total=False, prepare=_forget_best_score
)
_SOLVER = Growth("max_iter", ADD_ITERATIONS, "solver iterations", _iterations, total=False)

WARM_START_GROWTH: dict[type, Growth] = {
    ensemble.RandomForestClassifier: _TREES,
    ensemble.RandomForestRegressor: _TREES,
    ensemble.ExtraTreesClassifier: _TREES,
    ensemble.ExtraTreesRegressor: _TREES,
    ensemble.BaggingClassifier: _TREES,
    ensemble.BaggingRegressor: _TREES,
    ensemble.GradientBoostingClassifier: _STAGES,
    ensemble.GradientBoostingRegressor: _STAGES,
    ensemble.HistGradientBoostingClassifier: _HIST,
    ensemble.HistGradientBoostingRegressor: _HIST,
    linear_model.LogisticRegression: Growth(
        "max_iter", ADD_ITERATIONS, "solver iterations", _iterations, False, _liblinear
    ),
    linear_model.SGDClassifier: _EPOCHS,
    linear_model.SGDRegressor: _EPOCHS,
    linear_model.Perceptron: _EPOCHS,
    neural_network.MLPClassifier: _MLP_EPOCHS,
    neural_network.MLPRegressor: _MLP_EPOCHS,
    linear_model.ElasticNet: _SOLVER,
    linear_model.Lasso: _SOLVER,
    linear_model.HuberRegressor: _SOLVER,
    linear_model.PoissonRegressor: _SOLVER,
    linear_model.GammaRegressor: _SOLVER,
    linear_model.TweedieRegressor: _SOLVER,
}
"""Estimator type (exact: a subclass may fit differently) → how it warm starts."""

# Mitigated candidates have no fit of their own: they are rebuilt from their
# base model by the fairness_mitigation strategy.
_NOT_REFITTABLE = {
    "governance.estimators.GroupThresholdClassifier": "a ThresholdOptimizer candidate",
    "governance.estimators.RandomizedEnsembleClassifier": "an ExponentiatedGradient candidate",
}


# --------------------------------------------------------------------------- capabilities


def _refit_reason(estimator: Any) -> str | None:
    for step in [*_split(estimator)[0], _split(estimator)[1], estimator]:
        what = _NOT_REFITTABLE.get(_qualname(step))
        if what:
            return (
                f"The parent is {what} ({_name(step)}), which has no fit of its own; "
                "retrain its base model, then mitigate again (fairness_mitigation)."
            )
    try:
        clone(estimator)
    except Exception as exc:  # clone refuses objects that are not scikit-learn estimators
        return f"The parent cannot be cloned, so it cannot be refitted: {exc}"
    return None


def _warm_start_reason(estimator: Any) -> str | None:
    _, final = _split(estimator)
    growth = WARM_START_GROWTH.get(type(final))
    if growth is None:
        known = ", ".join(sorted(t.__name__ for t in WARM_START_GROWTH))
        return (
            f"{_name(final)} cannot warm start: scikit-learn gives it no warm_start that "
            f"continues its fitted state. Warm start supports {known}. Use refit."
        )
    return growth.refuse(final)


def _online_reason(estimator: Any) -> str | None:
    _, final = _split(estimator)
    if not (is_classifier(final) or is_regressor(final)):
        return f"{_name(final)} is neither a classifier nor a regressor."
    if not hasattr(final, "partial_fit"):
        hint = ""
        if isinstance(final, neural_network.MLPClassifier | neural_network.MLPRegressor):
            hint = " (an MLP has partial_fit only with solver 'sgd' or 'adam')"
        return (
            f"{_name(final)} has no partial_fit{hint}, so it cannot learn online; online "
            "learning needs an estimator such as SGDClassifier, SGDRegressor, a naive Bayes "
            "model or an MLP. Use refit or warm_start."
        )
    return None


def _mitigation_reason(estimator: Any) -> str | None:
    if not is_classifier(estimator):
        return f"{_name(estimator)} is not a classifier; fairlearn's mitigators need one."
    classes = getattr(estimator, "classes_", None)
    if classes is None or len(classes) != 2:
        return "fairlearn's mitigators handle binary classification only."
    if getattr(estimator, "feature_names_in_", None) is None:
        return "The parent was fitted without column names, so its features cannot be chosen."
    return None


_CAPABILITY: dict[str, Callable[[Any], str | None]] = {
    REFIT: _refit_reason,
    WARM_START: _warm_start_reason,
    ONLINE: _online_reason,
    AUGMENTATION: _refit_reason,
    FAIRNESS_MITIGATION: _mitigation_reason,
}


def supports(name: str, estimator: Any) -> str | None:
    """Why the fitted ``estimator`` cannot be retrained by strategy ``name``, or None."""
    strategy(name)
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return (
            f"The parent {_name(estimator)} is not fitted; a strategy starts from a fitted model."
        )
    except TypeError as exc:
        return f"The parent is not a scikit-learn estimator: {exc}"
    return _CAPABILITY[name](estimator)


def check(name: str, estimator: Any, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Everything that can be checked before the rows: name, parameters, the parent.

    Returns the parameters as the run will use them (defaults filled in, the
    ones that do not apply to this parent resolved).
    """
    cleaned = validate_params(name, params)
    reason = supports(name, estimator)
    if reason:
        raise StrategyError(reason, field="strategy")
    given = set(params or {})
    if name == WARM_START:
        growth = WARM_START_GROWTH[type(_split(estimator)[1])]
        other = ADD_ITERATIONS if growth.param == ADD_ESTIMATORS else ADD_ESTIMATORS
        if other in given:
            raise StrategyError(
                f"{_name(_split(estimator)[1])} grows by {growth.unit}: give {growth.param}, "
                f"not {other}.",
                field=other,
            )
        cleaned = {growth.param: cleaned[growth.param]}
    if name == AUGMENTATION:
        if not is_classifier(estimator):
            if "rebalance" in given and cleaned["rebalance"]:
                raise StrategyError(
                    "rebalance oversamples classes; this parent is a regressor.",
                    field="rebalance",
                )
            cleaned["rebalance"] = False
        if not cleaned["rebalance"] and cleaned["jitter_fraction"] == 0:
            raise StrategyError(
                "This augmentation adds no rows: rebalance is off and jitter_fraction is 0.",
                field="jitter_fraction",
            )
    if (
        name == FAIRNESS_MITIGATION
        and cleaned["method"] == "exponentiated_gradient"
        and not has_fit_parameter(estimator, "sample_weight")
    ):
        raise StrategyError(
            f"{_name(estimator)}.fit takes no sample_weight, which ExponentiatedGradient "
            "needs; use method threshold_optimizer for this parent.",
            field="method",
        )
    return cleaned


# --------------------------------------------------------------------------- rows


def _check_seed(seed: Any) -> int:
    if (
        isinstance(seed, bool)
        or not isinstance(seed, numbers.Integral)
        or not 0 <= int(seed) < 2**32
    ):
        raise StrategyError(f"The seed must be a whole number from 0 to 2**32-1, not {seed!r}.")
    return int(seed)


def _rows(parent: Any, X: Any, y: Any, name: str) -> tuple[Any, np.ndarray]:
    """The rows in the parent's column order, and the target as an array; refuses bad ones."""
    if len(X) != len(y):
        raise StrategyError(f"The features have {len(X)} rows but the target has {len(y)}.")
    if len(X) == 0:
        raise StrategyError("There are no rows to train on.")
    target = np.asarray(y)
    if pd.isna(target).any():
        raise StrategyError(f"The target has {int(pd.isna(target).sum())} missing values.")
    columns = getattr(parent, "feature_names_in_", None)
    if columns is not None and isinstance(X, pd.DataFrame):
        missing = [c for c in columns if c not in X.columns]
        if missing:
            raise StrategyError(f"The rows have no column {missing[0]!r}, which the parent uses.")
        if name != FAIRNESS_MITIGATION:  # the mitigators also read the sensitive columns
            X = X[list(columns)]
    elif name in (AUGMENTATION, FAIRNESS_MITIGATION) and not isinstance(X, pd.DataFrame):
        raise StrategyError(f"{name} needs the rows as a table with column names.")
    return X, target


def _check_classes(name: str, parent: Any, y: np.ndarray, classes: Any) -> list[Any] | None:
    """The parent's classes (pinned); refuses rows that would lose or add a class."""
    if not is_classifier(parent) or name == FAIRNESS_MITIGATION:
        return None
    pinned = list(np.asarray(parent.classes_).tolist())
    if classes is not None and list(np.asarray(classes).tolist()) != pinned:
        raise StrategyError(
            f"The version's classes {list(np.asarray(classes).tolist())} differ from the "
            f"parent's fitted classes {pinned}."
        )
    present = pd.unique(pd.Series(y))
    new = [_plain(v) for v in present if v not in set(np.asarray(parent.classes_).tolist())]
    if new and name in (WARM_START, ONLINE):
        raise StrategyError(
            f"The rows hold label(s) {sorted(new, key=str)[:5]} that are not among the "
            f"parent's classes {pinned}; {name} cannot add a class. Use refit."
        )
    absent = [c for c in pinned if c not in set(present.tolist())]
    if absent and name != ONLINE:
        raise StrategyError(
            f"The training rows hold no row of class(es) {absent[:5]}; the retrained model "
            "would lose them."
        )
    return pinned


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _pin_seeds(estimator: Any, seed: int) -> dict[str, int]:
    """Set every unset ``random_state`` (None or a RandomState object) to the run's seed."""
    pinned = {}
    for key, value in estimator.get_params(deep=True).items():
        if (key == "random_state" or key.endswith("__random_state")) and (
            value is None or isinstance(value, np.random.RandomState)
        ):
            pinned[key] = seed
    if pinned:
        estimator.set_params(**pinned)
    return pinned


def _slice(X: Any, start: int, stop: int) -> Any:
    return X.iloc[start:stop] if isinstance(X, pd.DataFrame | pd.Series) else X[start:stop]


# --------------------------------------------------------------------------- trainers


@dataclass
class _Fit:
    """What a trainer hands back: the fitted model, its details, the bare fit's time."""

    estimator: Any
    details: dict[str, Any]
    seconds: float
    seeded: dict[str, int]


def _timed_fit(fit: Callable[[], Any], refuser: str = "scikit-learn") -> float:
    started = time.perf_counter()
    try:
        fit()
    except ValueError as exc:  # the library's own word on the rows (a dtype, a NaN, ...)
        raise StrategyError(f"{refuser} refused the training rows: {exc}") from None
    return time.perf_counter() - started


def _train_refit(
    parent: Any, X: Any, y: np.ndarray, params: dict[str, Any], seed: int, **_: Any
) -> _Fit:
    model = clone(parent)
    seeded = _pin_seeds(model, seed)
    seconds = _timed_fit(lambda: model.fit(X, y))
    return _Fit(model, {}, seconds, seeded)


def _train_warm_start(
    parent: Any, X: Any, y: np.ndarray, params: dict[str, Any], seed: int, **_: Any
) -> _Fit:
    model = copy.deepcopy(parent)
    seeded = _pin_seeds(model, seed)
    steps, final = _split(model)
    growth = WARM_START_GROWTH[type(final)]
    requested = params[growth.param]
    before = growth.count(final)
    warm_start_before = final.get_params()["warm_start"]
    knob = before + requested if growth.total else requested
    final.set_params(warm_start=True, **{growth.knob: knob})
    growth.prepare(final)
    Xt = _transform(steps, X)
    seconds = _timed_fit(lambda: final.fit(Xt, y))
    # The continued state stays; the flag goes back, so a later plain fit() of the
    # stored model starts afresh as the parent's would have.
    final.set_params(warm_start=warm_start_before)
    after = growth.count(final)
    details = {
        "grows": growth.knob,
        "unit": growth.unit,
        "requested": requested,
        growth.knob: knob,
        "parent": before,
    }
    if growth.total:
        details.update(added=after - before, total=after)
    else:
        # scikit-learn counts iterations per fit: "total" is the parent's last fit
        # plus this one (earlier generations are in the parent's own run record).
        details.update(added=after, total=before + after)
    return _Fit(model, details, seconds, seeded)


def _progressive_metric(final: Any) -> tuple[str, Callable[[np.ndarray, np.ndarray], float]]:
    from sklearn import metrics

    if is_classifier(final):
        return "accuracy", lambda t, p: float(metrics.accuracy_score(t, p))
    return "mae", lambda t, p: float(metrics.mean_absolute_error(t, p))


def _train_online(
    parent: Any,
    X: Any,
    y: np.ndarray,
    params: dict[str, Any],
    seed: int,
    classes: list[Any] | None = None,
    **_: Any,
) -> _Fit:
    model = copy.deepcopy(parent)
    seeded = _pin_seeds(model, seed)
    steps, final = _split(model)
    size = params["chunk_size"]
    Xt = _transform(steps, X)
    metric_name, metric = _progressive_metric(final)
    # Passing the parent's classes on every call pins them: scikit-learn checks they
    # equal classes_, and a chunk lacking a class leaves that class in the model.
    pin = {} if classes is None else {"classes": np.asarray(classes)}
    chunks, running, truth, predicted = [], [], [], []
    seconds = 0.0
    for start in range(0, len(y), size):
        X_chunk, y_chunk = _slice(Xt, start, start + size), y[start : start + size]
        # Progressive validation: predict the chunk with the model that has not seen it yet.
        guess = np.asarray(final.predict(X_chunk))
        truth.append(y_chunk)
        predicted.append(guess)
        chunks.append({"rows": len(y_chunk), "value": metric(y_chunk, guess)})
        running.append(metric(np.concatenate(truth), np.concatenate(predicted)))
        seconds += _timed_fit(functools.partial(final.partial_fit, X_chunk, y_chunk, **pin))
    details = {
        "chunks": len(chunks),
        "rows_learned": len(y),
        "progressive_validation": {
            "metric": metric_name,
            "chunks": chunks,
            "running": running,
            "final": running[-1],
        },
    }
    return _Fit(model, details, seconds, seeded)


def augment(
    X: pd.DataFrame,
    y: np.ndarray | pd.Series,
    *,
    seed: int,
    rebalance: bool,
    jitter_scale: float,
    jitter_fraction: float,
) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any]]:
    """The training rows plus the added rows (appended), and the record of what was added.

    Draw order is fixed (classes in sorted order, then the jitter copies, then
    the noise column by column), so one seed gives one set of rows.
    """
    rng = np.random.default_rng(seed)
    target = np.asarray(y)
    n = len(target)
    sources: list[np.ndarray] = []
    by_class: dict[str, int] = {}
    if rebalance:
        labels, counts = np.unique(target, return_counts=True)
        most = counts.max()
        for label, count in zip(labels, counts, strict=True):
            if count < most:
                positions = np.flatnonzero(target == label)
                sources.append(rng.choice(positions, size=most - count, replace=True))
                by_class[str(_plain(label))] = int(most - count)
    extra = round(jitter_fraction * n)
    if extra:
        sources.append(rng.choice(n, size=extra, replace=True))
    picked = np.concatenate(sources) if sources else np.arange(0)
    added = X.iloc[picked].reset_index(drop=True).copy()
    jittered = [
        str(c)
        for c in X.columns
        if pd.api.types.is_float_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])
    ]
    spread: dict[str, float] = {}
    if jitter_scale > 0 and len(picked):
        for column in jittered:
            std = float(np.nanstd(X[column].to_numpy(dtype=float)))
            spread[column] = std
            added[column] = added[column].to_numpy(dtype=float) + rng.normal(
                0.0, jitter_scale * std, size=len(picked)
            )
    rows = pd.concat([X.reset_index(drop=True), added], ignore_index=True)
    target_rows = np.concatenate([target, target[picked]])
    record = {
        "seed": seed,
        "rebalance": rebalance,
        "jitter_scale": jitter_scale,
        "jitter_fraction": jitter_fraction,
        "rows_before": n,
        "rows_added": len(picked),
        "rows_after": len(rows),
        "added_by_class": by_class,
        "jitter_copies": extra,
        "jittered_columns": jittered if jitter_scale > 0 else [],
        "column_std": spread,
        "sha256": frame_digest(rows.assign(__target__=target_rows)),
    }
    return rows, target_rows, record


def _train_augmentation(
    parent: Any, X: Any, y: np.ndarray, params: dict[str, Any], seed: int, **_: Any
) -> _Fit:
    rows, target, record = augment(
        X,
        y,
        seed=seed,
        rebalance=params["rebalance"],
        jitter_scale=params["jitter_scale"],
        jitter_fraction=params["jitter_fraction"],
    )
    model = clone(parent)
    seeded = _pin_seeds(model, seed)
    seconds = _timed_fit(lambda: model.fit(rows, target))
    return _Fit(model, record, seconds, seeded)


def _train_fairness_mitigation(
    parent: Any, X: Any, y: np.ndarray, params: dict[str, Any], seed: int, **_: Any
) -> _Fit:
    from governance.estimators import mitigated_estimator

    features = [str(c) for c in parent.feature_names_in_]
    missing = [c for c in params["sensitive_columns"] if c not in X.columns]
    if missing:
        raise StrategyError(f"The rows have no sensitive column {missing[0]!r}.")
    target = "__target__"
    frame = X.assign(**{target: y})
    built: list[Any] = []

    def fit() -> None:
        built.append(
            mitigated_estimator(
                copy.deepcopy(parent),
                frame,
                features=features,
                target=target,
                sensitive=params["sensitive_columns"],
                method=params["method"],
                constraint=params["constraint"],
                random_state=seed,
            )
        )

    seconds = _timed_fit(fit, "fairlearn")  # FairnessInputError is a ValueError
    return _Fit(built[0], {"features": features}, seconds, {"random_state": seed})


_TRAINERS: dict[str, Callable[..., _Fit]] = {
    REFIT: _train_refit,
    WARM_START: _train_warm_start,
    ONLINE: _train_online,
    AUGMENTATION: _train_augmentation,
    FAIRNESS_MITIGATION: _train_fairness_mitigation,
}


@dataclass
class TrainResult:
    """The new fitted estimator (never the parent) and the plain-JSON record of the run."""

    estimator: Any
    record: dict[str, Any]


def _classes_of(estimator: Any) -> list[Any] | None:
    classes = getattr(estimator, "classes_", None)
    return None if classes is None else list(np.asarray(classes).tolist())


def train(
    name: str,
    parent: Any,
    X: Any,
    y: Any,
    params: Mapping[str, Any] | None = None,
    *,
    seed: int,
    classes: Any = None,
) -> TrainResult:
    """Train a candidate from the fitted ``parent`` with strategy ``name``.

    ``X``/``y`` are the run's rows (for ``online``: the labelled production
    rows in arrival order). ``classes`` is the version's recorded classes,
    which must equal the parent's ``classes_``; they are what ``online`` pins.
    Every check runs before any fit; a refusal is a :class:`StrategyError`.
    """
    cleaned = check(name, parent, params)
    seed = _check_seed(seed)
    X, target = _rows(parent, X, y, name)
    pinned = _check_classes(name, parent, target, classes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _TRAINERS[name](parent, X, target, cleaned, seed, classes=pinned)
    steps, final = _split(parent)
    messages = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    record: dict[str, Any] = {
        "strategy": name,
        "params": cleaned,
        "seed": seed,
        "seeded_params": result.seeded,
        "parent": {
            "estimator": _name(parent),
            "final_step": _name(final),
            "pipeline_steps": [_name(s) for s in steps],
        },
        "rows": len(target),
        "classes_before": _classes_of(parent),
        "classes_after": _classes_of(result.estimator),
        "fit_seconds": result.seconds,
        "warnings": messages[:MAX_RECORDED_WARNINGS],
        **({name: result.details} if result.details else {}),
    }
    return TrainResult(result.estimator, record)
