"""Column plans: a fitted ColumnTransformer pipeline run on typed columns answers exactly
as scikit-learn's own pipeline on a DataFrame, or no plan is made."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)

from demo import samples
from lifecycle import pipeline_plan, scoring

NUMERIC = ["income", "debt_ratio", "credit_history_years", "open_accounts", "late_payments"]
TRAIN = samples.credit_data(1500, seed=11)
X, Y = TRAIN[samples.CREDIT_FEATURES], TRAIN[samples.CREDIT_TARGET]
SPECS = [
    scoring.ColumnSpec(c, scoring.kind_of(str(X[c].dtype)), str(X[c].dtype)) for c in X.columns
]


def request_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """``frame``'s rows as the serving process holds them after validation."""
    columns = {s.name: frame[s.name].tolist() for s in SPECS}
    return scoring.validate(scoring.Parsed(columns, len(frame), {}), SPECS)


def held_out(n: int = 400) -> pd.DataFrame:
    rows = samples.credit_data(n, seed=12)[samples.CREDIT_FEATURES].copy()
    rows.loc[rows.index[::7], "employment"] = "astronaut"  # never seen in training
    return rows


def answers(call, source) -> tuple[str, object]:
    try:
        return "ok", np.asarray(call(source))
    except ValueError:
        return "refused", None


def assert_identical(plan, pipeline, frame: pd.DataFrame) -> None:
    arrays = request_columns(frame)
    for method in (
        ("predict_proba", "predict") if hasattr(pipeline, "predict_proba") else ("predict",)
    ):
        mine = answers(getattr(plan, method), arrays)
        theirs = answers(getattr(pipeline, method), scoring.to_frame(arrays))
        assert mine[0] == theirs[0]
        if mine[0] == "ok":
            assert mine[1].dtype == theirs[1].dtype
            np.testing.assert_array_equal(mine[1], theirs[1])  # bit for bit, not close


def credit(estimator, **encoder):
    prep = ColumnTransformer(
        [("num", StandardScaler(), NUMERIC), ("cat", OneHotEncoder(**encoder), ["employment"])]
    )
    return Pipeline([("prep", prep), ("model", estimator)]).fit(X, Y)


PLANNED = {
    "demo credit pipeline, gradient boosting": lambda: samples.credit_pipeline(
        HistGradientBoostingClassifier(max_iter=40, random_state=0)
    ).fit(X, Y),
    "demo credit pipeline, logistic regression": lambda: samples.credit_pipeline(
        LogisticRegression(max_iter=500)
    ).fit(X, Y),
    "unknown categories refused": lambda: credit(
        LogisticRegression(max_iter=500), handle_unknown="error"
    ),
    "first category dropped (the encoder's own transform)": lambda: credit(
        LogisticRegression(max_iter=500), handle_unknown="ignore", drop="first"
    ),
    "infrequent categories (the encoder's own transform)": lambda: credit(
        LogisticRegression(max_iter=500), handle_unknown="infrequent_if_exist", min_frequency=400
    ),
    "dense encoder, no mean": lambda: Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(with_mean=False), NUMERIC[:3]),
                        ("cat", OneHotEncoder(sparse_output=False), ["employment"]),
                    ]
                ),
            ),
            ("model", LogisticRegression(max_iter=500)),
        ]
    ).fit(X, Y),
    "passthrough, min-max, ordinal, imputer pipeline, remainder dropped": lambda: Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("raw", "passthrough", ["open_accounts", "late_payments"]),
                        ("mm", MinMaxScaler(), ["income"]),
                        ("ord", OrdinalEncoder(), ["employment"]),
                        ("imp", make_pipeline(SimpleImputer(), StandardScaler()), ["debt_ratio"]),
                    ]
                ),
            ),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(max_iter=500)),
        ]
    ).fit(X, Y),
    "regression, remainder passed through": lambda: Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("cat", OneHotEncoder(handle_unknown="ignore"), ["employment"])],
                    remainder="passthrough",
                ),
            ),
            ("model", RandomForestRegressor(n_estimators=5, random_state=0)),
        ]
    ).fit(X, TRAIN["income"]),
}


@pytest.mark.parametrize("make", PLANNED.values(), ids=PLANNED.keys())
def test_a_plan_answers_bit_for_bit_as_the_pipeline_on_a_frame(make):
    pipeline = make()
    plan = pipeline_plan.column_plan(pipeline, [s.name for s in SPECS])
    assert plan is not None
    with warnings.catch_warnings():
        # No warning on the plan's path either, but the one it silences for the process:
        # a transformer fitted on a frame given the same columns as a block.
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=pipeline_plan._NO_NAMES)
        # scikit-learn's own, on both paths, where a dropping encoder meets a new category
        warnings.filterwarnings("ignore", message="Found unknown categories")
        assert_identical(plan, pipeline, held_out())
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            assert_identical(plan, pipeline, held_out())
            assert_identical(plan, pipeline, held_out().head(1))


def test_the_fast_encoder_and_scaler_are_the_ones_used_on_the_demo_pipeline():
    pipeline = samples.credit_pipeline(LogisticRegression(max_iter=500)).fit(X, Y)
    plan = pipeline_plan.column_plan(pipeline, [s.name for s in SPECS])
    # Direct numpy code for both parts, not the transformers' transform methods.
    assert all(
        part.__qualname__.startswith(("_standard_scaler", "_one_hot")) for part, _ in plan.parts
    )


def test_an_unknown_category_is_refused_by_the_plan_where_the_encoder_refuses_it():
    pipeline = credit(LogisticRegression(max_iter=500), handle_unknown="error")
    plan = pipeline_plan.column_plan(pipeline, [s.name for s in SPECS])
    rows = held_out(5)
    with pytest.raises(ValueError, match="unknown categor"):
        pipeline.predict(rows)
    with pytest.raises(ValueError, match="unknown categor"):
        plan.predict(request_columns(rows))


NOT_PLANNED = {
    "not a pipeline": lambda: LogisticRegression(max_iter=500).fit(X[NUMERIC], Y),
    "no column transformer first": lambda: make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=500)
    ).fit(X[NUMERIC], Y),
    "columns by position": lambda: Pipeline(
        [
            ("prep", ColumnTransformer([("num", StandardScaler(), [0, 1, 2])])),
            ("model", LogisticRegression(max_iter=500)),
        ]
    ).fit(X[NUMERIC].to_numpy(), Y),
    "a function transformer": lambda: Pipeline(
        [
            ("prep", ColumnTransformer([("log", FunctionTransformer(np.log1p), ["income"])])),
            ("model", LinearRegression()),
        ]
    ).fit(X, Y),
    "sparse output": lambda: Pipeline(
        [
            (
                "prep",
                ColumnTransformer([("cat", OneHotEncoder(), ["employment"])], sparse_threshold=1.0),
            ),
            ("model", LogisticRegression(max_iter=500)),
        ]
    ).fit(X, Y),
    "pandas output": lambda: Pipeline(
        [
            (
                "prep",
                ColumnTransformer([("num", StandardScaler(), NUMERIC)]).set_output(
                    transform="pandas"
                ),
            ),
            ("model", LogisticRegression(max_iter=500)),
        ]
    ).fit(X, Y),
}


@pytest.mark.parametrize("make", NOT_PLANNED.values(), ids=NOT_PLANNED.keys())
def test_other_shapes_get_no_plan(make):
    assert pipeline_plan.column_plan(make(), [s.name for s in SPECS]) is None


def test_a_column_outside_the_signature_gets_no_plan():
    pipeline = samples.credit_pipeline(LogisticRegression(max_iter=500)).fit(X, Y)
    assert pipeline_plan.column_plan(pipeline, NUMERIC) is None
