"""Per-prediction explanations: how much each feature moved one row's score (pure: no Django).

Two methods, chosen by the estimator:

- ``linear``: the final step is a linear model (``coef_``, ``intercept_``) after
  transforms only (a ``Pipeline`` of scalers, encoders, a ``ColumnTransformer``).
  The contribution of a transformed column is its coefficient times the row's
  transformed value, so the contributions plus the intercept equal the model's
  ``decision_function`` (log-odds for a logistic regression; ``predict`` for a
  linear regression) exactly. Transformed columns are added up per input
  feature (a one-hot encoded ``sex`` is one feature) when the pipeline says which
  input each output came from; otherwise they stay under their transformed names.
- ``baseline_replacement`` (any other model): the change in the score
  (``predict_proba`` of the positive class, or ``predict``) when one feature of the
  row is replaced by its reference value (median of the numeric column, most
  frequent value of another), all else kept. It is an occlusion method: local,
  model-agnostic and cheap (one prediction per row and feature), but the
  contributions need not add up to the score minus the baseline's score when
  features interact; the report gives both so the reader can see the gap.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

LINEAR = "linear"
BASELINE_REPLACEMENT = "baseline_replacement"


class ExplanationInputError(ValueError):
    """The rows cannot be explained (missing columns, a model that cannot score them)."""


def _final_and_transform(estimator: Any) -> tuple[Any, Any]:
    """(final estimator, preprocessing or None) of a Pipeline or a bare estimator."""
    steps = getattr(estimator, "steps", None)
    if steps:
        final = steps[-1][1]
        return final, (estimator[:-1] if len(steps) > 1 else None)
    return estimator, None


def is_linear(estimator: Any) -> bool:
    final, pre = _final_and_transform(estimator)
    if not (hasattr(final, "coef_") and hasattr(final, "intercept_")):
        return False
    return pre is None or hasattr(pre, "transform")


def _dense(matrix: Any) -> np.ndarray:
    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, dtype=float)


def _output_owners(pre: Any, features: list[str], n_out: int) -> list[str] | None:
    """For each transformed column, the input feature it came from (None if unknown).

    Known: no preprocessing; a chain of one-to-one transforms (scalers, imputers
    without indicators); a ``ColumnTransformer`` whose each transformer either takes
    one column, or keeps its width (one-to-one), or is a one-hot encoder (its
    ``categories_`` widths, less a dropped category).
    """
    if pre is None:
        return list(features) if n_out == len(features) else None
    last = pre[-1] if hasattr(pre, "steps") else pre
    if hasattr(pre, "steps") and len(pre.steps) > 1:
        # Only a ColumnTransformer (or one-to-one steps) in front of the last step is handled.
        widths = [getattr(step, "n_features_in_", None) for _, step in pre.steps[1:]]
        if any(w is not None and w != n_out for w in widths):
            return None
        last = pre.steps[0][1]
    transformers = getattr(last, "transformers_", None)
    if transformers is None:
        return list(features) if n_out == len(features) else None
    slices = getattr(last, "output_indices_", {})
    owners: list[str | None] = [None] * n_out
    for name, transformer, columns in transformers:
        part = slices.get(name)
        if part is None or part.stop == part.start:
            continue
        width = part.stop - part.start
        cols = [features[c] if isinstance(c, int | np.integer) else str(c) for c in columns]
        if transformer == "passthrough" or width == len(cols):
            mapped = cols if width == len(cols) else None
        elif len(cols) == 1:
            mapped = cols * width
        elif hasattr(getattr(transformer, "steps", [[None, transformer]])[-1][1], "categories_"):
            transformer = getattr(transformer, "steps", [[None, transformer]])[-1][1]
            mapped = []
            drop = getattr(transformer, "drop_idx_", None)
            for i, (col, cats) in enumerate(zip(cols, transformer.categories_, strict=False)):
                dropped = drop is not None and drop[i] is not None
                mapped.extend([col] * (len(cats) - (1 if dropped else 0)))
            mapped = mapped if len(mapped) == width else None
        else:
            mapped = None
        if mapped is None:
            return None
        owners[part.start : part.stop] = mapped
    return None if any(o is None for o in owners) else [str(o) for o in owners]


def _transformed_names(pre: Any, n_out: int) -> list[str]:
    # Names are a courtesy; positions always work (a step without names raises).
    with contextlib.suppress(Exception):
        names = [str(n) for n in pre.get_feature_names_out()]
        if len(names) == n_out:
            return names
    return [f"x{i}" for i in range(n_out)]


def linear_contributions(
    estimator: Any, X: pd.DataFrame, *, features: list[str], classes: Sequence[Any] | None = None
) -> dict[str, Any]:
    """coefficient times transformed value per column, summed per input feature.

    For a binary classifier the score is the decision function of ``classes[1]``;
    for a multiclass one, that of the class predicted for each row.
    """
    final, pre = _final_and_transform(estimator)
    Xt = _dense(pre.transform(X) if pre is not None else X.to_numpy(dtype=float))
    coef = np.atleast_2d(np.asarray(final.coef_, dtype=float))
    intercept = np.atleast_1d(np.asarray(final.intercept_, dtype=float))
    if coef.shape[0] == 1:
        rows_coef = np.repeat(coef, len(Xt), axis=0)
        rows_intercept = np.repeat(intercept[:1], len(Xt))
    else:  # multiclass: the predicted class's row
        predicted = np.asarray(final.predict(Xt))
        index = {c: i for i, c in enumerate(final.classes_)}
        picks = np.array([index[p] for p in predicted])
        rows_coef, rows_intercept = coef[picks], intercept[picks]
    per_column = rows_coef * Xt
    owners = _output_owners(pre, features, Xt.shape[1])
    names = (
        owners
        if owners is not None
        else (list(features) if pre is None else _transformed_names(pre, Xt.shape[1]))
    )
    ordered = list(dict.fromkeys(names))
    per_feature = np.zeros((len(Xt), len(ordered)))
    for j, name in enumerate(names):
        per_feature[:, ordered.index(name)] += per_column[:, j]
    scores = (
        np.asarray(estimator.decision_function(X), dtype=float)
        if hasattr(estimator, "decision_function")
        else np.asarray(estimator.predict(X), dtype=float)
    )
    if scores.ndim == 2:  # multiclass decision function: the explained class's column
        scores = scores[np.arange(len(scores)), picks]
    return {
        "method": LINEAR,
        "score": "decision_function" if hasattr(estimator, "decision_function") else "prediction",
        "names": ordered,
        "grouped_by_input": owners is not None,
        "contributions": per_feature,
        "base": rows_intercept,
        "scores": scores,
    }


def reference_values(frame: pd.DataFrame, features: list[str]) -> dict[str, Any]:
    """The baseline of each feature: the median of a numeric column, else its mode."""
    out: dict[str, Any] = {}
    for name in features:
        column = frame[name].dropna()
        if column.empty:
            out[name] = None
        elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            out[name] = column.median()
        else:
            out[name] = column.mode().iloc[0]
    return out


def _score_fn(estimator: Any, classes: Sequence[Any] | None) -> tuple[Any, str]:
    if hasattr(estimator, "predict_proba") and classes is not None and len(classes) == 2:
        column = list(getattr(estimator, "classes_", classes)).index(classes[1])
        return (lambda X: np.asarray(estimator.predict_proba(X))[:, column]), (
            f"probability of {classes[1]}"
        )
    return (lambda X: np.asarray(estimator.predict(X), dtype=float)), "prediction"


def baseline_replacement(
    estimator: Any,
    X: pd.DataFrame,
    *,
    features: list[str],
    reference: dict[str, Any],
    classes: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """score(row) - score(row with feature j set to its reference value), per feature."""
    score, label = _score_fn(estimator, classes)
    scores = score(X)
    contributions = np.zeros((len(X), len(features)))
    for j, name in enumerate(features):
        replaced = X.copy()
        replaced[name] = pd.Series([reference[name]] * len(X), index=X.index).astype(
            X[name].dtype, errors="ignore"
        )
        contributions[:, j] = scores - score(replaced)
    baseline_row = pd.DataFrame([{n: reference[n] for n in features}]).astype(
        X.dtypes.to_dict(), errors="ignore"
    )
    base = float(score(baseline_row)[0])
    return {
        "method": BASELINE_REPLACEMENT,
        "score": label,
        "names": list(features),
        "grouped_by_input": True,
        "contributions": contributions,
        "base": np.full(len(X), base),
        "scores": scores,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def explain(
    estimator: Any,
    rows: pd.DataFrame,
    *,
    features: list[str],
    reference: pd.DataFrame,
    classes: Sequence[Any] | None = None,
    top: int = 8,
) -> dict[str, Any]:
    """Explain each of ``rows``; ``reference`` gives the baselines of the model-agnostic method.

    Returns plain JSON: the method, what the score is, and per row its inputs, the
    score, the base (intercept or the reference row's score), each feature's
    contribution (largest first, at most ``top`` named, the rest summed) and, for
    the linear method, the largest gap between base + contributions and the score.
    """
    missing = [c for c in features if c not in rows.columns]
    if missing:
        raise ExplanationInputError(f"The rows have no column(s) {missing}.")
    if rows.empty:
        raise ExplanationInputError("There are no rows to explain.")
    X = rows[features]
    try:
        if is_linear(estimator):
            result = linear_contributions(estimator, X, features=features, classes=classes)
        else:
            result = baseline_replacement(
                estimator,
                X,
                features=features,
                reference=reference_values(reference, features),
                classes=classes,
            )
        predictions = np.asarray(estimator.predict(X))
    except ExplanationInputError:
        raise
    except Exception as exc:
        raise ExplanationInputError(f"The model cannot score these rows: {exc}") from None
    names = result["names"]
    out_rows = []
    gap = 0.0
    for i in range(len(X)):
        values = result["contributions"][i]
        order = np.argsort(-np.abs(values))
        shown = [
            {"feature": names[j], "contribution": _plain(float(values[j]))} for j in order[:top]
        ]
        rest = float(values[order[top:]].sum()) if len(order) > top else 0.0
        total = float(values.sum())
        gap = max(gap, abs(result["base"][i] + total - result["scores"][i]))
        out_rows.append(
            {
                "inputs": {name: _plain(X.iloc[i][name]) for name in features},
                "prediction": _plain(predictions[i]),
                "score": _plain(float(result["scores"][i])),
                "base": _plain(float(result["base"][i])),
                "contributions": shown,
                "rest": _plain(rest),
                "total": _plain(total),
            }
        )
    return {
        "method": result["method"],
        "score": result["score"],
        "grouped_by_input": result["grouped_by_input"],
        "rows": out_rows,
        "additivity_gap": _plain(gap) if result["method"] == LINEAR else None,
    }
