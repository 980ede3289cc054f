"""Parsing and validation of prediction and label batches (pure: pyarrow, no Django).

A batch arrives as a JSON columnar object, a CSV file or a Parquet file and
leaves as one validated Arrow table with fixed column types, or as a
``BatchRejected`` listing the first problems. Nothing is stored here.

Prediction batch columns:
    request_id   required, string (numbers are accepted and turned into strings), unique, no nulls
    timestamp    optional, ISO 8601 string or timestamp (UTC assumed when naive), no nulls
    <features>   every input of the version's signature; numeric inputs must be numeric
                 (missing values allowed: the drift engine counts them), categorical
                 inputs are stored as strings
    prediction   required, no nulls (numeric for regression; label for classification)
    probability  optional, float in [0, 1]: probability of the positive class (for ROC AUC)
Label batch columns: request_id (unique, no nulls) and label (no nulls).
Unknown columns are refused, so a typo is never silently ignored.

The model's column rules (``monitoring.privacy.ColumnRules``) apply here, to the
validated table, so nothing the rules forbid reaches storage: dropped inputs are
not required and are removed, hashed inputs are replaced by their keyed hash
(strings, whatever the signature's dtype).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from monitoring.privacy import NO_RULES, ColumnRules, apply_rules

MAX_PROBLEMS = 10


class BatchRejected(Exception):
    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = (problems or [message])[:MAX_PROBLEMS]


@dataclass
class Problems:
    items: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(text)

    def raise_if_any(self, what: str) -> None:
        if self.items:
            raise BatchRejected(f"The {what} batch was refused: {self.items[0]}", self.items)


def _is_str(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def numeric_dtype(dtype: str) -> bool:
    return str(dtype).startswith(("float", "int", "uint", "bool"))


# --- reading -----------------------------------------------------------------------


def read_json_columns(columns: Any, *, max_columns: int, max_rows: int) -> pa.Table:
    """``{"col": [v, ...], ...}`` → Arrow table (equal lengths, bounded size)."""
    if not isinstance(columns, dict) or not columns:
        raise BatchRejected('"columns" must be a non-empty object of column name to list.')
    if len(columns) > max_columns:
        raise BatchRejected(f"The batch has {len(columns)} columns; the limit is {max_columns}.")
    lengths = set()
    for name, values in columns.items():
        if not isinstance(values, list):
            raise BatchRejected(f"Column {name!r} must be a list of values.")
        lengths.add(len(values))
    if len(lengths) != 1:
        raise BatchRejected(f"Columns have different lengths: {sorted(lengths)}.")
    if lengths.pop() > max_rows:
        raise BatchRejected(f"A JSON batch holds at most {max_rows} rows; upload a file instead.")
    arrays = {}
    for name, values in columns.items():
        try:
            arrays[str(name)] = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise BatchRejected(f"Column {name!r} mixes incompatible values: {exc}") from None
    return pa.table(arrays)


def read_file(path: str, head: bytes, *, max_columns: int) -> pa.Table:
    """A CSV or Parquet file (told apart by its magic bytes) → Arrow table."""
    try:
        if head.startswith(b"PAR1"):
            parquet = pq.ParquetFile(path)
            if len(parquet.schema_arrow) > max_columns:
                raise BatchRejected(
                    f"The batch has {len(parquet.schema_arrow)} columns; "
                    f"the limit is {max_columns}."
                )
            table = parquet.read()
            table.column_names  # noqa: B018  (names decode lazily: see below)
            return table
        # Count the CSV header's columns before parsing anything else.
        with open(path, "rb") as fh:
            header = fh.readline(1024 * 1024)
        if header.count(b",") + 1 > max_columns:
            raise BatchRejected(
                f"The batch has {header.count(b',') + 1} columns; the limit is {max_columns}."
            )
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types={"request_id": pa.string()}, strings_can_be_null=False
            ),
        )
        # Column names are decoded as UTF-8 only when first read: a binary file
        # (a PNG posted as CSV) must fail here, not later as a 500.
        table.column_names  # noqa: B018
        return table
    except BatchRejected:
        raise
    except UnicodeDecodeError:
        raise BatchRejected(
            "The file cannot be read as CSV or Parquet: it is not UTF-8 text."
        ) from None
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as exc:
        raise BatchRejected(f"The file cannot be read as CSV or Parquet: {exc}") from None


# --- validation ----------------------------------------------------------------------


def _column_names(table: pa.Table, problems: Problems) -> None:
    names = table.column_names
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.add(f"duplicate column names: {duplicates}")


def _nulls(table: pa.Table, name: str, problems: Problems, *, allow: bool) -> None:
    column = table.column(name)
    nulls = column.null_count
    if pa.types.is_floating(column.type):
        nulls += pc.sum(pc.is_nan(column)).as_py() or 0
    if nulls and not allow:
        problems.add(f"column {name!r} has {nulls} missing values (not allowed)")


def _request_ids(table: pa.Table, problems: Problems) -> pa.Array:
    column = table.column("request_id")
    if not (_is_str(column.type) or pa.types.is_integer(column.type)):
        problems.add(f"column 'request_id' must be strings or integers, not {column.type}")
        return column
    column = column.cast(pa.string())
    if column.null_count:
        problems.add(f"column 'request_id' has {column.null_count} missing values (not allowed)")
    elif pc.count_distinct(column).as_py() != len(column):
        problems.add("column 'request_id' has duplicate values within the batch")
    return column


def _timestamps(table: pa.Table, problems: Problems) -> pa.ChunkedArray | None:
    if "timestamp" not in table.column_names:
        return None
    column = table.column("timestamp")
    try:
        if _is_str(column.type):
            # ISO 8601 with an offset ("Z", "+02:00") is converted to UTC; without
            # one the time is taken as UTC. A batch mixing both is refused.
            try:
                column = column.cast(pa.timestamp("us", tz="UTC"))
            except pa.ArrowInvalid:
                column = column.cast(pa.timestamp("us"))
        if pa.types.is_timestamp(column.type):
            if column.type.tz is None:
                column = pc.assume_timezone(column, "UTC")
            column = column.cast(pa.timestamp("us", tz="UTC"))
        else:
            problems.add(f"column 'timestamp' must be ISO 8601 times, not {column.type}")
            return None
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        problems.add(f"column 'timestamp' has values that are not ISO 8601 times ({exc})")
        return None
    if column.null_count:
        problems.add(f"column 'timestamp' has {column.null_count} missing values (not allowed)")
    return column


def _numeric(table: pa.Table, name: str, problems: Problems) -> pa.ChunkedArray | None:
    column = table.column(name)
    kind = column.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
        if pa.types.is_null(kind):
            return pa.chunked_array([pa.nulls(len(column), pa.float64())])
        problems.add(f"column {name!r} must be numeric, not {kind}")
        return None
    return column.cast(pa.float64())


def validate_predictions(
    table: pa.Table,
    *,
    signature: list[dict[str, str]],
    task: str,
    rules: ColumnRules = NO_RULES,
) -> tuple[pa.Table, tuple[Any, Any] | None]:
    """The stored table and (first, last) timestamp, or BatchRejected with the problems.

    ``rules``: the model's dropped inputs are removed before validation, its hashed
    inputs hashed after it; the returned table is what may be stored.
    """
    problems = Problems()
    if table.num_rows == 0:
        raise BatchRejected("The prediction batch has no rows.")
    _column_names(table, problems)
    if rules.dropped:
        problems.raise_if_any("prediction")  # dropping by name needs unique names
        signature = [c for c in signature if c["name"] not in rules.dropped]
        table = table.drop_columns([c for c in table.column_names if c in rules.dropped])
    features = [c["name"] for c in signature]
    expected = {"request_id", "prediction", *features}
    allowed = expected | {"timestamp", "probability"}
    names = set(table.column_names)
    missing = sorted(expected - names)
    unknown = sorted(names - allowed)
    if missing:
        problems.add(f"missing columns: {missing}")
    if unknown:
        problems.add(f"unknown columns (not in the version's signature): {unknown[:20]}")
    problems.raise_if_any("prediction")

    out: dict[str, Any] = {"request_id": _request_ids(table, problems)}
    stamps = _timestamps(table, problems)
    if stamps is not None:
        out["timestamp"] = stamps
    for spec in signature:
        name = spec["name"]
        if numeric_dtype(spec.get("dtype", "float64")):
            column = _numeric(table, name, problems)
        else:
            column = table.column(name)
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            column = column.cast(pa.string())
        if column is not None:
            if pa.types.is_floating(column.type):
                _check_finite_or_missing(column, name, problems)
            out[name] = column
    if task == "regression":
        prediction = _numeric(table, "prediction", problems)
    else:
        prediction = table.column("prediction")
        if not (pa.types.is_integer(prediction.type) or _is_str(prediction.type)):
            if pa.types.is_boolean(prediction.type):
                prediction = prediction.cast(pa.int64())
            elif pa.types.is_floating(prediction.type):
                prediction = _integral_floats(prediction, "prediction", problems)
            else:
                problems.add(f"column 'prediction' must be class labels, not {prediction.type}")
    if prediction is not None:
        out["prediction"] = prediction
        _nulls(pa.table({"prediction": prediction}), "prediction", problems, allow=False)
    if "probability" in names and "probability" not in features:
        proba = _numeric(table, "probability", problems)
        if proba is not None:
            _nulls(pa.table({"probability": proba}), "probability", problems, allow=False)
            low, high = pc.min_max(proba).values()
            if low.as_py() is not None and (low.as_py() < 0 or high.as_py() > 1):
                problems.add("column 'probability' must hold probabilities in [0, 1]")
            out["probability"] = proba
    problems.raise_if_any("prediction")
    result = apply_rules(pa.table(out), rules, features=features)
    span = None
    if stamps is not None:
        bounds = pc.min_max(stamps)
        span = (bounds["min"].as_py(), bounds["max"].as_py())
    return result, span


def _integral_floats(column: Any, name: str, problems: Problems) -> Any:
    filled = pc.fill_null(column, 0.0)
    if not pc.all(pc.equal(pc.floor(filled), filled)).as_py():
        problems.add(f"column {name!r} must be class labels, not fractional numbers")
        return None
    return column.cast(pa.int64(), safe=False)


def _check_finite_or_missing(column: Any, name: str, problems: Problems) -> None:
    """Infinities are refused (NaN stands for missing and is counted by the drift engine)."""
    finite = pc.is_finite(column)
    nan = pc.is_nan(column)
    bad = pc.sum(pc.and_(pc.invert(finite), pc.invert(nan))).as_py() or 0
    if bad:
        problems.add(f"column {name!r} has {bad} infinite values")


def validate_labels(table: pa.Table, *, task: str) -> pa.Table:
    problems = Problems()
    if table.num_rows == 0:
        raise BatchRejected("The label batch has no rows.")
    _column_names(table, problems)
    names = set(table.column_names)
    if names != {"request_id", "label"}:
        problems.add(
            f"a label batch has exactly the columns ['label', 'request_id'], got {sorted(names)}"
        )
    problems.raise_if_any("label")
    out: dict[str, Any] = {"request_id": _request_ids(table, problems)}
    label = table.column("label")
    if task == "regression":
        label = _numeric(table, "label", problems)
    elif pa.types.is_boolean(label.type):
        label = label.cast(pa.int64())
    elif pa.types.is_floating(label.type):
        label = _integral_floats(label, "label", problems)
    elif not (pa.types.is_integer(label.type) or _is_str(label.type)):
        problems.add(f"column 'label' must be class labels, not {label.type}")
        label = None
    if label is not None:
        _nulls(pa.table({"label": label}), "label", problems, allow=False)
        out["label"] = label
    problems.raise_if_any("label")
    return pa.table(out)
