"""The serving data plane's pure parts (no Django): formats, validation, routing.

Request bodies are the MLflow scoring formats, so that a client written for
``mlflow models serve`` works unchanged:

    {"dataframe_split": {"columns": [...], "data": [[...], ...]}}   (``index`` ignored)
    {"dataframe_records": [{"col": value, ...}, ...]}
    {"instances": ...} or {"inputs": ...}: a list of records, a dict of columns,
        a list of rows (positional, in the signature's order), or one record
    text/csv with a header row

plus an optional ``"params"`` object (``{"details": true}`` asks for the
probabilities and the version in the body). Columns may come in any order and
extra columns are ignored; every input of the version's signature must be
there, with values of its type:

    float inputs   JSON numbers; null/NaN only where the model accepts missing
                   values (probed when the version is loaded), never infinities
    int inputs     integral JSON numbers, no missing values
    bool inputs    true/false (CSV: true/false/1/0)
    string inputs  strings (category inputs too), no missing values

A refusal is a ``ScoringError`` naming its code and, where there is one, the
column; the view turns it into the one error shape.

Routing: a request goes to the candidate when the stable hash of its request
id (and the environment, as salt) falls under the candidate's share, so the
same request id always gets the same version and raising the share only moves
requests from stable to candidate, never back.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_MISSING = object()


class ScoringError(Exception):
    def __init__(
        self, code: str, message: str, *, column: str = "", status: int = 400, **details: Any
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.column = column
        self.status = status
        self.details = {"column": column, **details} if column else details


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str  # "float" | "int" | "bool" | "str"
    dtype: str  # the signature's dtype
    nan_ok: bool = False


def kind_of(dtype: str) -> str:
    dtype = str(dtype)
    if dtype.startswith("float"):
        return "float"
    if dtype.startswith(("int", "uint")):
        return "int"
    if dtype == "bool":
        return "bool"
    return "str"


def column_specs(
    inputs: list[dict[str, str]], nan_ok: frozenset[str] = frozenset()
) -> list[ColumnSpec]:
    return [
        ColumnSpec(c["name"], kind_of(c["dtype"]), c["dtype"], c["name"] in nan_ok) for c in inputs
    ]


# --- parsing ---------------------------------------------------------------------------


@dataclass
class Parsed:
    columns: dict[str, list[Any]]  # every signature input, in the signature's order
    rows: int
    params: dict[str, Any]


def parse_body(body: bytes, content_type: str, specs: list[ColumnSpec], *, max_rows: int) -> Parsed:
    """Any accepted body → one list of raw values per signature input."""
    if not body or not body.strip():
        raise ScoringError("empty_body", "The request body is empty.")
    media = (content_type or "").split(";")[0].strip().lower()
    if media in ("text/csv", "application/csv"):
        columns, rows = _from_csv(body, specs)
        params: dict[str, Any] = {}
    elif media in ("application/json", "") or media.endswith("+json"):
        columns, rows, params = _from_json(body, specs)
    else:
        raise ScoringError(
            "unsupported_media_type",
            f"Send application/json (MLflow's scoring formats) or text/csv, not {media!r}.",
            status=415,
        )
    if rows == 0:
        raise ScoringError("no_rows", "The request holds no rows to score.")
    if rows > max_rows:
        raise ScoringError(
            "too_many_rows",
            f"A request scores at most {max_rows} rows; this one has {rows}.",
            status=413,
            limit=max_rows,
        )
    return Parsed(columns, rows, params)


def _from_json(body: bytes, specs: list[ColumnSpec]) -> tuple[dict[str, list], int, dict]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise ScoringError("malformed_request", f"The body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise ScoringError(
            "unknown_format",
            f"The body is a JSON object with one of {list(FORMATS)}.",
            formats=list(FORMATS),
        )
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise ScoringError("malformed_request", '"params" is a JSON object.')
    keys = [k for k in data if k != "params"]
    if len(keys) != 1 or keys[0] not in FORMATS:
        raise ScoringError(
            "unknown_format",
            f"The body holds exactly one of {list(FORMATS)} (and optionally params); "
            f"it has {sorted(keys)[:10]}.",
            formats=list(FORMATS),
        )
    fmt, payload = keys[0], data[keys[0]]
    if fmt == "dataframe_split":
        columns, rows = _from_split(payload, specs)
    elif fmt == "dataframe_records":
        if not isinstance(payload, list):
            raise ScoringError("malformed_request", '"dataframe_records" is a list of objects.')
        columns, rows = _from_records(payload, specs)
    else:
        columns, rows = _from_tensor_like(fmt, payload, specs)
    return columns, rows, params


def _from_split(payload: Any, specs: list[ColumnSpec]) -> tuple[dict[str, list], int]:
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise ScoringError(
            "malformed_request", '"dataframe_split" is {"columns": [...], "data": [[...], ...]}.'
        )
    names = payload.get("columns")
    rows = payload["data"]
    if names is None:
        return _from_rows(rows, specs, "dataframe_split")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ScoringError("malformed_request", '"columns" is a list of column names.')
    width = len(names)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            raise ScoringError(
                "malformed_request",
                f"Row {i} of dataframe_split has {len(row) if isinstance(row, list) else 'no'} "
                f"values for {width} columns.",
                row=i,
            )
    position = {name: i for i, name in enumerate(names)}
    columns = {}
    for spec in specs:
        at = position.get(spec.name)
        if at is None:
            raise _missing(spec.name)
        columns[spec.name] = [row[at] for row in rows]
    return columns, len(rows)


def _missing(name: str) -> ScoringError:
    return ScoringError(
        "missing_column", f"The input {name!r} of the version's signature is missing.", column=name
    )


def _from_records(records: list[Any], specs: list[ColumnSpec]) -> tuple[dict[str, list], int]:
    if not all(isinstance(r, dict) for r in records):
        raise ScoringError("malformed_request", "Records are JSON objects of column to value.")
    columns = {}
    for spec in specs:
        values = [r.get(spec.name, _MISSING) for r in records]
        if records and all(v is _MISSING for v in values):
            raise _missing(spec.name)
        columns[spec.name] = [None if v is _MISSING else v for v in values]
    return columns, len(records)


def _from_rows(rows: Any, specs: list[ColumnSpec], fmt: str) -> tuple[dict[str, list], int]:
    width = len(specs)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            raise ScoringError(
                "malformed_request",
                f"Row {i} of {fmt} needs {width} values, in the signature's order "
                f"({', '.join(s.name for s in specs[:10])}).",
                row=i,
            )
    return {spec.name: [row[i] for row in rows] for i, spec in enumerate(specs)}, len(rows)


def _from_tensor_like(fmt: str, payload: Any, specs: list[ColumnSpec]) -> tuple[dict, int]:
    if isinstance(payload, dict):
        if payload and all(isinstance(v, list) for v in payload.values()):
            lengths = {len(v) for v in payload.values()}
            if len(lengths) != 1:
                raise ScoringError(
                    "malformed_request", f"The columns of {fmt} have different lengths."
                )
            rows = lengths.pop()
            columns = {}
            for spec in specs:
                if spec.name not in payload:
                    raise _missing(spec.name)
                columns[spec.name] = payload[spec.name]
            return columns, rows
        return _from_records([payload], specs)  # one record
    if isinstance(payload, list):
        if all(isinstance(r, dict) for r in payload):
            return _from_records(payload, specs)
        if all(isinstance(r, list) for r in payload):
            return _from_rows(payload, specs, fmt)
        if len(specs) == 1:
            return {specs[0].name: payload}, len(payload)
    raise ScoringError(
        "malformed_request",
        f'"{fmt}" is a list of records, a dict of columns, a list of rows or one record.',
    )


def _from_csv(body: bytes, specs: list[ColumnSpec]) -> tuple[dict[str, list], int]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ScoringError("malformed_request", "The CSV body is not UTF-8.") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
        rows = [row for row in reader if row]
    except (csv.Error, StopIteration) as exc:
        raise ScoringError("malformed_request", f"The CSV body cannot be read: {exc}.") from None
    position = {name.strip(): i for i, name in enumerate(header)}
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ScoringError(
                "malformed_request",
                f"CSV row {i + 1} has {len(row)} fields for {len(header)} columns.",
                row=i,
            )
    columns = {}
    for spec in specs:
        at = position.get(spec.name)
        if at is None:
            raise _missing(spec.name)
        columns[spec.name] = [_csv_value(row[at], spec) for row in rows]
    return columns, len(rows)


_TRUE, _FALSE = {"true", "True", "TRUE", "1"}, {"false", "False", "FALSE", "0"}


def _csv_value(text: str, spec: ColumnSpec) -> Any:
    if spec.kind == "str":
        return text
    text = text.strip()
    if text == "" or text.lower() in ("nan", "null", "na"):
        return None
    if spec.kind == "bool":
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        return text  # refused by validation, naming the column
    try:
        number = float(text)
    except ValueError:
        return text
    if spec.kind == "int" and number.is_integer() and "." not in text and "e" not in text.lower():
        return int(text)
    return number


# --- validation ----------------------------------------------------------------------------


def _wrong_type(spec: ColumnSpec, value: Any, row: int) -> ScoringError:
    shown = "null" if value is None else type(value).__name__
    return ScoringError(
        "wrong_type",
        f"The input {spec.name!r} is {spec.dtype} in the signature; row {row} has a {shown} "
        f"({str(value)[:40]!r}).",
        column=spec.name,
        row=row,
        expected=spec.dtype,
    )


def _missing_value(spec: ColumnSpec, row: int) -> ScoringError:
    return ScoringError(
        "missing_value",
        f"The input {spec.name!r} has a missing value (null or NaN) in row {row}; "
        "the signature does not allow it there.",
        column=spec.name,
        row=row,
    )


def to_array(values: list[Any], spec: ColumnSpec) -> np.ndarray:
    """One column's raw values → a typed array, or ScoringError naming the column."""
    if spec.kind == "float":
        # The common case (all numbers, no bools) is checked at C speed.
        if all(type(v) is float or type(v) is int for v in values):
            array = np.array(values, dtype=np.float64)
        else:
            for i, v in enumerate(values):
                if v is not None and (type(v) is bool or not isinstance(v, int | float)):
                    raise _wrong_type(spec, v, i)
            array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        if not np.isfinite(array).all():
            bad = ~np.isfinite(array)
            nan = np.isnan(array)
            if (bad & ~nan).any():
                row = int(np.flatnonzero(bad & ~nan)[0])
                raise ScoringError(
                    "non_finite",
                    f"The input {spec.name!r} is infinite in row {row}.",
                    column=spec.name,
                    row=row,
                )
            if not spec.nan_ok:
                raise _missing_value(spec, int(np.flatnonzero(nan)[0]))
        return array
    if spec.kind == "int":
        out = []
        for i, v in enumerate(values):
            if type(v) is int:
                out.append(v)
            elif type(v) is float and math.isfinite(v) and v.is_integer():
                out.append(int(v))
            elif v is None or (type(v) is float and math.isnan(v)):
                raise _missing_value(spec, i)
            else:
                raise _wrong_type(spec, v, i)
        try:
            return np.array(out, dtype=spec.dtype if spec.dtype != "int" else "int64")
        except (OverflowError, TypeError):
            raise ScoringError(
                "wrong_type", f"The input {spec.name!r} has a value out of range.", column=spec.name
            ) from None
    if spec.kind == "bool":
        for i, v in enumerate(values):
            if v is None:
                raise _missing_value(spec, i)
            if type(v) is not bool:
                raise _wrong_type(spec, v, i)
        return np.array(values, dtype=bool)
    for i, v in enumerate(values):
        if type(v) is not str:
            if v is None or (type(v) is float and math.isnan(v)):
                raise _missing_value(spec, i)
            raise _wrong_type(spec, v, i)
    return np.array(values, dtype=object)


def validate(parsed: Parsed, specs: list[ColumnSpec]) -> dict[str, np.ndarray]:
    return {spec.name: to_array(parsed.columns[spec.name], spec) for spec in specs}


def to_frame(arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    """The model's input frame, from the typed arrays without copying them.

    Text stays ``object`` (a Series of that dtype): pandas 3 would otherwise turn
    it into Arrow-backed strings, which scikit-learn converts back on every call.
    Numeric arrays go in as they are, already typed, so pandas infers nothing.
    Pipelines that begin with a ColumnTransformer are mostly served without a
    frame at all (``lifecycle.pipeline_plan``).
    """
    return pd.DataFrame(
        {
            name: pd.Series(v, dtype=object, copy=False) if v.dtype == object else v
            for name, v in arrays.items()
        },
        copy=False,
    )


# --- routing ------------------------------------------------------------------------------


def bucket(request_id: str, salt: str) -> float:
    """A request id's place in [0, 1), the same in every process and on every machine."""
    digest = hashlib.blake2b(f"{salt}\x00{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def goes_to_candidate(request_id: str, salt: str, share: float) -> bool:
    return share > 0 and bucket(request_id, salt) < share


# --- answers ----------------------------------------------------------------------------


def plain(values: Any) -> list[Any]:
    """Predictions → JSON-ready values (numpy scalars become Python's)."""
    if isinstance(values, np.ndarray):
        return values.tolist()
    return [v.item() if isinstance(v, np.generic) else v for v in values]
