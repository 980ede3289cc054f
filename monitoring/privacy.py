"""Column privacy of logged predictions (pure: pyarrow and numpy, no Django).

A model's data policy names feature columns to *drop* (never stored) and columns
to *hash*: each value is replaced, before the batch's Parquet file and summary
are written, by the first 16 hex characters of

    HMAC-SHA256(key, "<column>\\x1f<value as text>")

with the key from ``MONITORING_HASH_KEY``. The column name is part of the message,
so one value hashes differently in two columns; without the key the hashes cannot
be recomputed from guesses. Text of a value: a string as it is; a number (inputs
declared numeric are validated and held as float64) as ``repr(float(v))``, so
``35``, ``35.0`` and ``True`` → ``"35.0"``/``"1.0"``; missing values (null, NaN)
stay missing. A hashed column is therefore always stored as strings, whatever the
signature says.

Drift keeps working on a hashed column because it is compared with a *view* of the
version's reference profile in which the same column is hashed the same way
(``profile_view``): categories are relabelled by their hash, and a numeric column
becomes categorical, its categories the hashes of the reference's values (the
profile keeps every sorted reference value, so no data is re-read). Sixteen hex
characters are 64 bits: two categories of one column collide with probability
about n²/2⁶⁵, negligible for any real cardinality.

Summaries carry the fingerprint of the profile they were made on; a batch
summarized under other column rules (a rule or the key changed since) has another
fingerprint, and ``summarized_on`` leaves it out of a window instead of mixing
incomparable counts.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitoring import drift

HASH_HEX_CHARS = 16
RESERVED = frozenset({"request_id", "timestamp", "prediction", "probability"})


@dataclass(frozen=True)
class ColumnRules:
    """The column rules in force for one model's prediction batches."""

    dropped: frozenset[str] = field(default_factory=frozenset)
    hashed: frozenset[str] = field(default_factory=frozenset)
    key: bytes | None = None

    @property
    def missing_key(self) -> bool:
        """Hashing is asked for but no key is configured: nothing may be stored."""
        return bool(self.hashed) and not self.key


NO_RULES = ColumnRules()


def value_text(value: Any) -> str:
    """The text a value is hashed as (see the module docstring)."""
    if isinstance(value, bool | int | float | np.number):
        return repr(float(value))
    return str(value)


def keyed_hash(key: bytes, column: str, text: str) -> str:
    message = column.encode("utf-8") + b"\x1f" + text.encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:HASH_HEX_CHARS]


def hash_column(column: pa.ChunkedArray | pa.Array, *, name: str, key: bytes) -> pa.Array:
    """Hash every value of one column (each distinct value once); missing stays missing."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_floating(column.type):
        column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    encoded = column.dictionary_encode()
    hashed = pa.array(
        [keyed_hash(key, name, value_text(v)) for v in encoded.dictionary.to_pylist()],
        pa.string(),
    )
    return pa.DictionaryArray.from_arrays(encoded.indices, hashed).cast(pa.string())


def apply_rules(
    table: pa.Table, rules: ColumnRules, *, features: Iterable[str] | None = None
) -> pa.Table:
    """Drop and hash ``rules``' columns of ``table`` (only among ``features`` if given)."""
    allowed = set(table.column_names) if features is None else set(features)
    dropped = [c for c in table.column_names if c in rules.dropped and c in allowed]
    if dropped:
        table = table.drop_columns(dropped)
    for name in table.column_names:
        if name in rules.hashed and name in allowed:
            if rules.key is None:
                raise ValueError("hashing needs a key")
            index = table.schema.get_field_index(name)
            table = table.set_column(
                index, name, hash_column(table.column(name), name=name, key=rules.key)
            )
    return table


# --- drift on hashed columns --------------------------------------------------------------

_view_cache: dict[tuple[str, tuple[str, ...], str], drift.Profile] = {}


def profile_view(profile: drift.Profile, rules: ColumnRules) -> drift.Profile:
    """``profile`` with ``rules``' hashed columns hashed as batches store them.

    Dropped columns stay in the view: batches lack them, so they are reported as
    missing, like any column a batch did not send. Without a key a hashed column
    cannot be compared and becomes unsupported (ingestion refuses batches then).
    """
    names = tuple(sorted(rules.hashed & set(profile.columns)))
    if not names:
        return profile
    key_id = hashlib.sha256(rules.key).hexdigest() if rules.key else ""
    cache_key = (profile.fingerprint, names, key_id)
    cached = _view_cache.get(cache_key)
    if cached is not None:
        return cached
    columns = dict(profile.columns)
    for name in names:
        columns[name] = _hashed_column_profile(name, columns[name], rules.key)
    view = drift.Profile(columns=columns, bins=profile.bins, rows=profile.rows)
    if len(_view_cache) > 32:
        _view_cache.clear()
    _view_cache[cache_key] = view
    return view


def _hashed_column_profile(
    name: str, column: drift.ColumnProfile, key: bytes | None
) -> drift.ColumnProfile:
    if key is None:
        return drift.UnsupportedProfile(
            reason="hashed at ingestion, but MONITORING_HASH_KEY is not set", rows=column.rows
        )
    if isinstance(column, drift.CategoricalProfile):
        values, counts, missing = column.labels, column.counts, column.nan_count
    elif isinstance(column, drift.NumericProfile):
        values, counts = np.unique(column.values, return_counts=True)
        missing = column.nan_count + column.inf_count
    else:
        return column
    hashed = np.array([keyed_hash(key, name, value_text(v)) for v in values.tolist()], dtype=str)
    labels, inverse = np.unique(hashed, return_inverse=True)
    merged = np.zeros(labels.size, dtype=np.int64)
    np.add.at(merged, inverse, np.asarray(counts, dtype=np.int64))
    return drift.CategoricalProfile(
        labels=labels.astype(str), counts=merged, rows=column.rows, nan_count=int(missing)
    )


class _Summarized(Protocol):
    summary: dict[str, Any]


B = TypeVar("B", bound=_Summarized)


def summarized_on(batches: Sequence[B], profile: drift.Profile) -> list[B]:
    """The batches whose summary was made on ``profile`` (or that have none).

    A batch summarized on another view of the reference (other column rules, another
    key) holds incomparable counts and raw rows in another form: it is left out.
    """
    fingerprint = profile.fingerprint
    return [
        b for b in batches if not b.summary or b.summary.get("profile_fingerprint") == fingerprint
    ]
