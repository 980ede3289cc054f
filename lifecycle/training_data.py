"""What a retraining run trains on, assembled and recorded (pure: pandas, no Django).

A run's data is explicit: the rows of a registered training dataset, optionally
plus the labelled production rows of a monitoring window (predictions joined
with their labels), capped, then split (seeded) into training rows and a
hold-out for the champion comparison. Everything that decides the rows is
recorded: the SHA-256 of each input and of each output frame, the row counts
per source, the cap, the split, the seeds, and the library versions.

Rules, decided once here:

- **Columns first.** Every input must hold the signature's features and the
  target (``label`` in production rows) before anything else happens; the
  error names the missing column and the input it is missing from. A feature
  that is numeric in one input and text in the other is refused by name too.
- **Row cap: newest production rows first.** A run retrains because
  production moved, so the newest labelled rows are the best picture of what
  the model faces: production rows are kept newest first (by ``timestamp``
  when the rows have one, else by their order), then the rest of the cap is a
  seeded uniform sample of the dataset's rows (a registered dataset has no
  time order). Kept rows stay in their original order: dataset rows, then
  production rows oldest to newest, so an online run sees them as they came.
- **Hold-out from production rows when there are any.** The champion was most
  likely trained on the registered dataset, so hold-out rows drawn from it
  would flatter the champion; production rows are rows neither model learned
  from. Without production rows the hold-out is drawn from the dataset (and
  the record says so). The split is stratified on the target for
  classification whenever every class has at least two rows and each side
  can hold every class, else a plain seeded split (the record says which).
- **Digests** are SHA-256 of a frame's canonical bytes (:func:`frame_digest`):
  column names and order, a dtype family per column and the values; not the
  index, nor the file format the rows came from.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

PRODUCTION_LABEL = "label"
PRODUCTION_TIME = "timestamp"
DATASET = "dataset"
PRODUCTION = "production"
DEFAULT_HOLDOUT_FRACTION = 0.2


class TrainingDataError(ValueError):
    """The run's data cannot be trained on; the message names the column or the rule."""


# --------------------------------------------------------------------------- columns


def required_columns(features: Sequence[str], target: str) -> list[str]:
    """The signature's features, then the target (once, in that order)."""
    return list(dict.fromkeys([*features, target]))


def missing_columns(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    present = {str(c) for c in frame.columns}
    return [c for c in columns if c not in present]


def check_columns(
    frame: pd.DataFrame, *, features: Sequence[str], target: str, source: str
) -> None:
    """Raise naming the first missing column of ``source`` (and how many are missing)."""
    missing = missing_columns(frame, required_columns(features, target))
    if missing:
        role = "target" if missing[0] == target else "feature"
        more = f" (and {len(missing) - 1} more: {missing[1:6]})" if len(missing) > 1 else ""
        raise TrainingDataError(
            f"The {role} column {missing[0]!r} is missing from the {source}{more}."
        )


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _check_kinds(dataset: pd.DataFrame, production: pd.DataFrame, features: Sequence[str]) -> None:
    for column in features:
        if _is_numeric(dataset[column]) != _is_numeric(production[column]):
            raise TrainingDataError(
                f"The feature {column!r} is {dataset[column].dtype} in the training dataset "
                f"but {production[column].dtype} in the production rows."
            )


def _check_target(frame: pd.DataFrame, target: str, source: str) -> None:
    missing = int(frame[target].isna().sum())
    if missing:
        raise TrainingDataError(
            f"The target {target!r} has {missing} missing values in the {source}."
        )


def _align_labels(labels: pd.Series, like: pd.Series | np.ndarray, task: str) -> pd.Series:
    """Production labels in the dtype of the dataset's target (or the parent's classes).

    Monitoring stores class labels as strings unless labels and predictions
    are both integers, so ``"1"`` must become ``1`` when the dataset's target
    is integer; a label that does not convert is refused, never dropped.
    """
    like_dtype = np.asarray(like).dtype
    if task != "classification" and not pd.api.types.is_numeric_dtype(labels):
        converted = pd.to_numeric(labels, errors="coerce")
        if converted.isna().any():
            bad = labels[converted.isna()].iloc[0]
            raise TrainingDataError(f"The production label {bad!r} is not a number.")
        return converted
    if like_dtype.kind in "iuf" and not pd.api.types.is_numeric_dtype(labels):
        converted = pd.to_numeric(labels, errors="coerce")
        unconvertible = converted.isna() | (
            (converted != np.round(converted)) if like_dtype.kind in "iu" else False
        )
        if unconvertible.any():
            bad = labels[unconvertible].iloc[0]
            raise TrainingDataError(
                f"The production label {bad!r} does not match the target's type ({like_dtype})."
            )
        return converted.astype(like_dtype)
    if like_dtype.kind in "OUT" and pd.api.types.is_numeric_dtype(labels):
        return labels.astype(str)
    return labels


# --------------------------------------------------------------------------- digests


def _column_bytes(series: pd.Series) -> tuple[str, bytes]:
    if pd.api.types.is_bool_dtype(series) and not series.isna().any():
        return "bool", series.to_numpy(dtype=np.uint8).tobytes()
    if pd.api.types.is_integer_dtype(series) and not series.isna().any():
        return "int", series.to_numpy(dtype="<i8").tobytes()
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.to_numpy(dtype="<f8", na_value=np.nan)
        # One NaN bit pattern, so a missing value always hashes the same.
        values = np.where(np.isnan(values), np.nan, values)
        return "float", values.tobytes()
    if pd.api.types.is_datetime64_any_dtype(series):
        text = [None if pd.isna(v) else pd.Timestamp(v).isoformat() for v in series]
        return "datetime", json.dumps(text).encode("utf-8")
    text = [None if pd.isna(v) else str(v) for v in series.astype(object)]
    return "text", json.dumps(text, ensure_ascii=False).encode("utf-8")


def frame_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's canonical bytes (see the module docstring).

    int32 and int64 columns of the same values hash the same (one ``int``
    family), as do float32 and float64 ones that hold the same float64 values;
    a value, a column name, the column order or the row order changes it.
    """
    digest = hashlib.sha256()
    kinds = []
    bodies = []
    for name in frame.columns:
        kind, body = _column_bytes(frame[name])
        kinds.append(kind)
        bodies.append(body)
    header = {"columns": [str(c) for c in frame.columns], "kinds": kinds, "rows": len(frame)}
    digest.update(json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    for body in bodies:
        digest.update(len(body).to_bytes(8, "little"))
        digest.update(body)
    return digest.hexdigest()


# --------------------------------------------------------------------------- cap and split


def _newest_first(production: pd.DataFrame, time_column: str) -> np.ndarray:
    """Positions of the production rows, newest first (stable for equal times)."""
    n = len(production)
    if time_column in production.columns:
        times = pd.to_datetime(production[time_column], utc=True)
        order = np.argsort(times.to_numpy(), kind="stable")
        # Reverse the stable ascending order, so ties keep "later row is newer".
        return order[::-1].copy()
    return np.arange(n)[::-1].copy()


def cap_rows(
    n_dataset: int,
    production: pd.DataFrame | None,
    *,
    max_rows: int | None,
    seed: int,
    time_column: str = PRODUCTION_TIME,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions kept from the dataset and from the production rows (each ascending).

    Production rows newest first up to ``max_rows``, then a seeded uniform
    sample of the dataset rows for the rest. No cap keeps everything.
    """
    n_production = 0 if production is None else len(production)
    if max_rows is None or n_dataset + n_production <= max_rows:
        return np.arange(n_dataset), np.arange(n_production)
    if production is not None and n_production:
        kept_production = np.sort(_newest_first(production, time_column)[:max_rows])
    else:
        kept_production = np.arange(0)
    room = max_rows - len(kept_production)
    rng = np.random.default_rng(seed)
    kept_dataset = np.sort(rng.choice(n_dataset, size=min(room, n_dataset), replace=False))
    return kept_dataset, kept_production


def holdout_size(n: int, fraction: float) -> int:
    """Rows held out of ``n`` (scikit-learn's rule: ``ceil(fraction * n)``)."""
    return math.ceil(fraction * n) if fraction > 0 else 0


def holdout_split(
    labels: pd.Series, *, fraction: float, seed: int, stratify: bool
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """(training positions, hold-out positions, why not stratified) of ``labels``'s rows.

    Both position arrays are ascending, disjoint and cover every row. The split
    is scikit-learn's ``train_test_split`` with ``random_state=seed``,
    stratified on the labels when asked and possible; when it is not, the third
    value says why (None when stratified or not asked).
    """
    from sklearn.model_selection import train_test_split

    n = len(labels)
    positions = np.arange(n)
    if fraction <= 0:
        return positions, np.arange(0), None
    n_test = holdout_size(n, fraction)
    if n_test >= n:
        raise TrainingDataError(
            f"A hold-out of {fraction:g} of {n} rows leaves no row to train on."
        )
    why_not: str | None = None
    strata = None
    if stratify:
        counts = labels.value_counts()
        if counts.min() < 2:
            why_not = f"class {_plain(counts.idxmin())!r} has a single row"
        elif n_test < len(counts) or n - n_test < len(counts):
            why_not = f"{n_test} hold-out rows cannot hold all {len(counts)} classes"
        else:
            strata = labels.to_numpy()
    train, test = train_test_split(
        positions, test_size=n_test, random_state=seed, shuffle=True, stratify=strata
    )
    return np.sort(train), np.sort(test), why_not


# --------------------------------------------------------------------------- assembly


@dataclass(frozen=True)
class TrainingData:
    """The rows a run trains on and holds out, with the record of how they were chosen.

    ``train`` and ``holdout`` hold the features, the carried columns, then the
    target; ``train_sources`` and ``holdout_sources`` say for each row whether it
    came from the dataset or from production (same order as the frames).
    """

    train: pd.DataFrame
    holdout: pd.DataFrame | None
    train_sources: np.ndarray
    holdout_sources: np.ndarray
    features: list[str]
    target: str
    record: dict[str, Any]

    @property
    def X_train(self) -> pd.DataFrame:
        return self.train[self.features]

    @property
    def y_train(self) -> pd.Series:
        return self.train[self.target]

    @property
    def X_holdout(self) -> pd.DataFrame | None:
        return None if self.holdout is None else self.holdout[self.features]

    @property
    def y_holdout(self) -> pd.Series | None:
        return None if self.holdout is None else self.holdout[self.target]

    def production_train(self) -> pd.DataFrame:
        """The training rows that came from production, oldest first (for online runs)."""
        return self.train[self.train_sources == PRODUCTION]


def _check_number(value: Any, name: str, *, low: float, high: float, integer: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TrainingDataError(f"{name} must be a number, not {value!r}.")
    if integer and not isinstance(value, numbers.Integral):
        raise TrainingDataError(f"{name} must be a whole number, not {value!r}.")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise TrainingDataError(f"{name} must be between {low:g} and {high:g}, not {value!r}.")


def assemble(
    *,
    features: Sequence[str],
    target: str,
    task: str,
    seed: int,
    dataset: pd.DataFrame | None = None,
    production: pd.DataFrame | None = None,
    label_column: str = PRODUCTION_LABEL,
    time_column: str = PRODUCTION_TIME,
    max_rows: int | None = None,
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
    classes: Sequence[Any] | None = None,
    carry: Sequence[str] = (),
) -> TrainingData:
    """Check, combine, cap and split a run's data (see the module docstring).

    ``carry`` names columns that ride along in the rows, never trained on (they are
    not ``features``): the sensitive columns a follow-up fairness audit of the
    candidate needs in its held-out rows. A column is carried only when every input
    holds it; the record lists what was carried and what could not be.

    ``dataset`` is the registered training dataset's frame; ``production`` the
    labelled production rows (the features, ``label_column`` and optionally
    ``time_column``). At least one of them. ``holdout_fraction`` is 0 when the
    run names an evaluation dataset. ``classes`` (the parent's ``classes_``)
    types the production labels when there is no dataset to take the type from.
    """
    features = [str(f) for f in features]
    if task not in ("classification", "regression"):
        raise TrainingDataError(f"Unknown task {task!r}.")
    if dataset is None and production is None:
        raise TrainingDataError("A run needs a training dataset, production rows, or both.")
    if max_rows is not None:
        _check_number(max_rows, "max_rows", low=2, high=10**9, integer=True)
    _check_number(holdout_fraction, "holdout_fraction", low=0, high=0.9, integer=False)
    _check_number(seed, "seed", low=0, high=2**32 - 1, integer=True)

    inputs: dict[str, Any] = {}
    if dataset is not None:
        check_columns(dataset, features=features, target=target, source="training dataset")
        _check_target(dataset, target, "training dataset")
        inputs[DATASET] = {"rows": len(dataset), "sha256": frame_digest(dataset)}
    prod = None
    if production is not None:
        check_columns(production, features=features, target=label_column, source="production rows")
        _check_target(production, label_column, "production rows")
        inputs[PRODUCTION] = {"rows": len(production), "sha256": frame_digest(production)}
        prod = production.reset_index(drop=True)
        if dataset is not None:
            _check_kinds(dataset, prod, features)

    given = [d for d in (dataset, production) if d is not None]
    wanted = [str(c) for c in dict.fromkeys(carry) if c not in features and c != target]
    carried = [c for c in wanted if all(c in frame.columns for frame in given)]
    data = dataset.reset_index(drop=True) if dataset is not None else None
    kept_data, kept_prod = cap_rows(
        0 if data is None else len(data),
        prod,
        max_rows=max_rows,
        seed=seed,
        time_column=time_column,
    )
    parts: list[pd.DataFrame] = []
    sources: list[np.ndarray] = []
    if data is not None:
        parts.append(data.iloc[kept_data][[*features, *carried, target]])
        sources.append(np.full(len(kept_data), DATASET, dtype=object))
    if prod is not None:
        chosen = prod.iloc[kept_prod]
        if time_column in chosen.columns:
            times = pd.to_datetime(chosen[time_column], utc=True).to_numpy()
            chosen = chosen.iloc[np.argsort(times, kind="stable")]
        rows = chosen[[*features, *carried]].copy()
        like = (
            data[target]
            if data is not None
            else (np.asarray(classes) if classes is not None else None)
        )
        labels = chosen[label_column]
        if like is not None:
            labels = _align_labels(labels, like, task)
        rows[target] = labels.to_numpy()
        parts.append(rows)
        sources.append(np.full(len(rows), PRODUCTION, dtype=object))
    combined = (
        pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    )
    origin = np.concatenate(sources)
    if len(combined) == 0:
        raise TrainingDataError("The run's data has no rows.")

    # Hold-out rows from production when there are any (see the module docstring).
    pool = (
        np.flatnonzero(origin == PRODUCTION)
        if (origin == PRODUCTION).any()
        else np.arange(len(origin))
    )
    pool_source = PRODUCTION if (origin == PRODUCTION).any() else DATASET
    held = np.arange(0)
    why_not = None
    if holdout_fraction > 0:
        if len(pool) < 2:
            raise TrainingDataError(
                f"A hold-out needs at least 2 rows; the {pool_source} rows hold {len(pool)}."
            )
        _, local_held, why_not = holdout_split(
            combined[target].iloc[pool].reset_index(drop=True),
            fraction=holdout_fraction,
            seed=seed,
            stratify=task == "classification",
        )
        held = pool[local_held]
    is_held = np.zeros(len(combined), dtype=bool)
    is_held[held] = True
    train = combined[~is_held].reset_index(drop=True)
    holdout = combined[is_held].reset_index(drop=True) if holdout_fraction > 0 else None
    if len(train) == 0:
        raise TrainingDataError("The hold-out leaves no row to train on.")

    def counts(mask: np.ndarray) -> dict[str, int]:
        return {source: int((origin[mask] == source).sum()) for source in (DATASET, PRODUCTION)}

    record: dict[str, Any] = {
        "features": features,
        "carried": carried,
        "not_carried": [c for c in wanted if c not in carried],
        "target": target,
        "task": task,
        "seed": seed,
        "inputs": inputs,
        "cap": {
            "max_rows": max_rows,
            "rule": "production rows newest first, then a seeded sample of the dataset rows",
            "kept": {DATASET: len(kept_data), PRODUCTION: len(kept_prod)},
        },
        "holdout": {
            "fraction": holdout_fraction,
            "from": pool_source if holdout_fraction > 0 else None,
            "stratified": bool(
                holdout_fraction > 0 and task == "classification" and why_not is None
            ),
            "not_stratified_because": why_not,
            "rows": counts(is_held),
            "sha256": frame_digest(holdout) if holdout is not None else None,
        },
        "train": {"rows": counts(~is_held), "sha256": frame_digest(train)},
    }
    if task == "classification":
        record["train"]["class_counts"] = _class_counts(train[target])
    return TrainingData(
        train=train,
        holdout=holdout,
        train_sources=origin[~is_held],
        holdout_sources=origin[is_held],
        features=features,
        target=target,
        record=record,
    )


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _class_counts(labels: pd.Series) -> dict[str, int]:
    counts = labels.value_counts()
    return {str(_plain(k)): int(v) for k, v in sorted(counts.items(), key=lambda kv: str(kv[0]))}


# --------------------------------------------------------------------------- environment


def environment(*, seeds: Mapping[str, int]) -> dict[str, Any]:
    """The library versions a run trained with, and every seed it used."""
    import scipy
    import sklearn

    return {
        "python": platform.python_version(),
        "scikit_learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
        "seeds": {str(k): int(v) for k, v in seeds.items()},
    }
