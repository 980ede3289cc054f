"""Tabular files: CSV/Parquet in, normalised Parquet out (pure: no Django).

Conversion streams record batches from the upload to the Parquet writer, so a
large file is never held in memory whole. Any parse problem becomes a
``TableRejected`` with a message for the uploader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

BLOCK_SIZE = 8 * 1024 * 1024


class TableRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TableInfo:
    schema: list[dict[str, str]]
    row_count: int


def dtype_name(arrow_type: pa.DataType) -> str:
    if pa.types.is_dictionary(arrow_type):
        return "category"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "datetime"
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return str(arrow_type.to_pandas_dtype().__name__)
    return str(arrow_type)


def describe_schema(schema: pa.Schema) -> list[dict[str, str]]:
    return [{"name": f.name, "dtype": dtype_name(f.type)} for f in schema]


def _check_columns(schema: pa.Schema, max_columns: int) -> None:
    names = schema.names
    if not names:
        raise TableRejected("The table has no columns.")
    if len(names) > max_columns:
        raise TableRejected(f"The table has {len(names)} columns; the limit is {max_columns}.")
    if any(not str(n).strip() for n in names):
        raise TableRejected("The table has a column with an empty name.")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise TableRejected(f"The table has duplicate column names: {duplicates}.")


def _plain(exc: Exception) -> str:
    """An exception's message without the bytes of the file that caused it."""
    if isinstance(exc, UnicodeDecodeError):
        return f"the file is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at {exc.start})"
    return str(exc)


def _batches(path: str, fmt: str) -> tuple[pa.Schema, Any]:
    if fmt == "csv":
        try:
            reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=BLOCK_SIZE))
            # Column names are decoded as UTF-8 only when first read: a binary
            # file (a PNG posted as CSV) fails here, not later as a 500.
            reader.schema.names  # noqa: B018
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as exc:
            raise TableRejected(f"The CSV cannot be parsed: {_plain(exc)}") from None
        return reader.schema, reader
    if fmt == "parquet":
        try:
            parquet = pq.ParquetFile(path)
            parquet.schema_arrow.names  # noqa: B018  (as above)
        except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
            raise TableRejected(f"The Parquet file cannot be read: {_plain(exc)}") from None
        return parquet.schema_arrow, parquet.iter_batches(batch_size=65536)
    raise TableRejected(f"Unsupported format {fmt!r}: use csv or parquet.")


def sniff_format(head: bytes, filename: str) -> str:
    if head.startswith(b"PAR1"):
        return "parquet"
    if filename.lower().endswith(".parquet"):
        raise TableRejected("The file is named .parquet but is not a Parquet file.")
    return "csv"


def convert_to_parquet(src: str, fmt: str, dest: str, *, max_columns: int) -> TableInfo:
    """Stream ``src`` (csv|parquet) into a Parquet file at ``dest``."""
    schema, batches = _batches(src, fmt)
    _check_columns(schema, max_columns)
    rows = 0
    try:
        with pq.ParquetWriter(dest, schema, compression="zstd") as writer:
            for batch in batches:
                writer.write_batch(batch)
                rows += batch.num_rows
    except (
        pa.ArrowInvalid,
        pa.ArrowTypeError,
        pa.ArrowNotImplementedError,
        OSError,
        UnicodeDecodeError,
    ) as exc:
        raise TableRejected(f"The {fmt.upper()} file cannot be read: {_plain(exc)}") from None
    if rows == 0:
        raise TableRejected("The table has no rows.")
    return TableInfo(schema=describe_schema(schema), row_count=rows)


def read_head(path: str, rows: int, columns: list[str] | None = None) -> Any:
    """The first ``rows`` rows as a pandas DataFrame."""
    parquet = pq.ParquetFile(path)
    batch = next(parquet.iter_batches(batch_size=rows, columns=columns), None)
    if batch is None:
        return pa.table({}).to_pandas()
    return pa.Table.from_batches([batch]).to_pandas()


def read_table(path: str, columns: list[str] | None = None) -> Any:
    return pq.read_table(path, columns=columns).to_pandas()
