"""A fitted pipeline's column step run on the serving process's typed columns, without pandas.

Most tabular models arrive as ``Pipeline([("prep", ColumnTransformer([...])), ..., model])``
fitted on a DataFrame. Given one, scikit-learn spends most of a small prediction on
pandas, not on the model: the ColumnTransformer selects each transformer's columns
from the frame by name (pandas indexing), re-validates the frame's feature names
and dtypes (narwhals, pandas), and each transformer checks its slice again. For one
row that is about three quarters of the whole call.

The serving process already holds each input as a typed numpy array (validated
against the signature), so a ``ColumnPlan`` does the column step itself: it hands
each fitted transformer its columns as one numpy block (the same values, in the
same order, that ``ColumnTransformer`` would give it), stacks the outputs as
``ColumnTransformer`` does (``np.hstack``, dense), and calls the rest of the
pipeline on that array. The transformers and the model are the fitted objects
themselves, called through their public ``transform``/``predict``/``predict_proba``.

A plan is made only where that is the same computation:

- the first step is a fitted ``ColumnTransformer`` that selected its columns by
  name, whose output was dense and plain numpy (no ``set_output(pandas)``);
- every transformer in it is one of the column-wise ones below (or a Pipeline of
  them), ``passthrough`` or ``drop``, and every column it reads is an input of the
  version's signature;

and a version gets one only if its answers on the rows it is checked on (the
training data's first rows, see ``lifecycle.serving.load_version``) are
identical, bit for bit, to the whole pipeline's on the same rows as a DataFrame.
Anything else is predicted by the pipeline on a DataFrame, as before.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

# Transformers whose ``transform`` is defined column-wise on a 2-D array and does
# the same on a numpy block as on a DataFrame slice of the same values.
_COLUMNWISE = frozenset(
    {
        "StandardScaler",
        "MinMaxScaler",
        "MaxAbsScaler",
        "RobustScaler",
        "OneHotEncoder",
        "OrdinalEncoder",
        "SimpleImputer",
    }
)
# Given a numpy block, a transformer fitted on a DataFrame warns that the block has
# no column names; the block is the same columns in the fitted order (that is the
# plan's point), so the warning says nothing here.
_NO_NAMES = "X does not have valid feature names"


def _standard_scaler(scaler: Any) -> Any:
    """StandardScaler.transform on a dense block, without re-validating it: the block is
    the validated request's columns. The same arithmetic (in place, on a float copy)."""
    mean = scaler.mean_ if scaler.with_mean else None
    scale = scaler.scale_ if scaler.with_std else None
    if (mean is not None and mean.dtype != np.float64) or (
        scale is not None and scale.dtype != np.float64
    ):
        return None

    def transform(block: np.ndarray) -> np.ndarray:
        out = np.array(block, dtype=block.dtype if block.dtype.kind == "f" else np.float64)
        if mean is not None:
            out -= mean.astype(out.dtype, copy=False)
        if scale is not None:
            out /= scale.astype(out.dtype, copy=False)
        return out

    return transform


def _one_hot(encoder: Any) -> Any:
    """OneHotEncoder.transform, dense, for the plain case: text categories, nothing
    dropped, no infrequent categories, unknown values ignored (a row of zeros) or
    refused. A dictionary lookup per value instead of sorting and searching arrays."""
    if (
        encoder.drop is not None
        or getattr(encoder, "_infrequent_enabled", True)
        or encoder.handle_unknown not in ("ignore", "error")
    ):
        return None
    lookups = []
    for categories in encoder.categories_:
        if categories.dtype != object or not all(type(c) is str for c in categories):
            return None
        lookups.append({c: i for i, c in enumerate(categories.tolist())})
    offsets = np.cumsum([0] + [len(c) for c in encoder.categories_])
    width, dtype, refuse = int(offsets[-1]), encoder.dtype, encoder.handle_unknown == "error"

    def transform(block: np.ndarray) -> np.ndarray:
        out = np.zeros((block.shape[0], width), dtype=dtype)
        for j, lookup in enumerate(lookups):
            for i, value in enumerate(block[:, j].tolist()):
                at = lookup.get(value) if type(value) is str else None
                if at is not None:
                    out[i, offsets[j] + at] = 1
                elif refuse:
                    raise ValueError(
                        f"Found unknown categories [{value!r}] in column {j} during transform"
                    )
        return out

    return transform


def _fast(transformer: Any) -> Any:
    """A transformer's ``transform`` (on a dense block, dense out), done directly
    where the transformer is one of the two above in its plain form; None: passthrough."""
    if _passthrough(transformer):
        return None
    kind = type(transformer).__name__
    fast = None
    if kind == "StandardScaler":
        fast = _standard_scaler(transformer)
    elif kind == "OneHotEncoder":
        fast = _one_hot(transformer)
    if fast is not None:
        return fast

    def transform(block: np.ndarray) -> np.ndarray:
        out = transformer.transform(block)
        return out.toarray() if sparse.issparse(out) else out

    return transform


def _passthrough(transformer: Any) -> bool:
    """``passthrough``: fitted, ColumnTransformer holds it as an identity FunctionTransformer."""
    if isinstance(transformer, str):
        return transformer == "passthrough"
    return (
        type(transformer).__name__ == "FunctionTransformer"
        and transformer.func is None
        and not transformer.validate
    )


def _columnwise(transformer: Any) -> bool:
    if isinstance(transformer, str):
        return transformer in ("passthrough", "drop")
    if _passthrough(transformer):
        return True
    steps = getattr(transformer, "steps", None)
    if steps is not None and type(transformer).__name__ == "Pipeline":
        return all(_columnwise(step) for _, step in steps)
    return type(transformer).__name__ in _COLUMNWISE


@dataclass(frozen=True)
class ColumnPlan:
    # (transform, or None for passthrough; the columns it reads)
    parts: tuple[tuple[Any, tuple[str, ...]], ...]
    rest: Any  # the pipeline after the ColumnTransformer: a Pipeline or the final estimator

    def features(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """The ColumnTransformer's output for these columns."""
        blocks = []
        for transformer, names in self.parts:
            if len(names) == 1:
                block = arrays[names[0]].reshape(-1, 1)
            else:
                block = np.column_stack([arrays[name] for name in names])
            if transformer is not None:
                block = transformer(block)
            blocks.append(block)
        return np.hstack(blocks)

    def predict(self, arrays: dict[str, np.ndarray]) -> Any:
        return self.rest.predict(self.features(arrays))

    def predict_proba(self, arrays: dict[str, np.ndarray]) -> Any:
        return self.rest.predict_proba(self.features(arrays))


def column_plan(estimator: Any, inputs: list[str]) -> ColumnPlan | None:
    """The plan for ``estimator`` (None: it is not a pipeline of this shape)."""
    steps = getattr(estimator, "steps", None)
    if type(estimator).__name__ != "Pipeline" or not steps or len(steps) < 2:
        return None
    first = steps[0][1]
    if type(first).__name__ != "ColumnTransformer" or not hasattr(first, "transformers_"):
        return None
    if getattr(first, "sparse_output_", True):
        return None
    output = getattr(first, "_sklearn_output_config", {}).get("transform", "default")
    if output not in (None, "default"):
        return None
    known = set(inputs)
    parts = []
    for _name, transformer, columns in first.transformers_:
        if isinstance(columns, str):
            columns = [columns]
        if not isinstance(columns, list | tuple) or not all(isinstance(c, str) for c in columns):
            return None  # by position, by mask, by callable: not by name
        if not _columnwise(transformer):
            return None
        if transformer == "drop" or not columns:
            continue  # ColumnTransformer skips these too
        if not set(columns) <= known:
            return None
        parts.append((_fast(transformer), tuple(columns)))
    if not parts:
        return None
    rest = estimator[1:] if len(steps) > 2 else steps[-1][1]
    if hasattr(steps[1][1], "feature_names_in_"):
        return None  # the next step was fitted on a frame: give it one
    warnings.filterwarnings("ignore", message=_NO_NAMES, category=UserWarning)
    return ColumnPlan(tuple(parts), rest)


def _answer(call: Any, source: Any) -> tuple[bool, Any]:
    try:
        return True, np.asarray(call(source))
    except Exception as exc:
        return False, type(exc)


def same_answers(
    plan: ColumnPlan, estimator: Any, arrays: dict[str, np.ndarray], frame: Any
) -> bool:
    """Whether the plan answers exactly as the whole pipeline on ``frame`` (the same rows):
    equal arrays, bit for bit, or both refuse."""
    methods = ["predict_proba", "predict"] if hasattr(estimator, "predict_proba") else ["predict"]
    for method in methods:
        ok, mine = _answer(getattr(plan, method), arrays)
        theirs_ok, theirs = _answer(getattr(estimator, method), frame)
        if ok != theirs_ok:
            return False
        if ok and (mine.dtype != theirs.dtype or not np.array_equal(mine, theirs)):
            return False
    return True
