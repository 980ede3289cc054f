"""Reading a window's rows back from the batch blobs (no permission rules: the
callers, services and selectors, have already chosen what may be read)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from common.storage import cached_blob_path
from monitoring.models import LabelBatch, Monitor, PredictionBatch
from registry.models import ModelVersion, RegisteredModel

LABEL_CLOCK_SKEW = timedelta(days=1)
"""How much earlier than a prediction's timestamp its label batch may have been posted
(the two clocks differ: request timestamps come from the pipeline, ``created_at`` from
the server)."""


def window_batches(
    monitor: Monitor, start: datetime, end: datetime, *, version: ModelVersion | None = None
) -> list[PredictionBatch]:
    """The batches of a check's window, oldest first (of ``version``: by default the
    monitor's; a past check of a monitor that follows an alias names the one it judged).

    A time window holds the batches of the monitored version whose rows overlap
    [start, end). A row window (``monitor.window_rows``) holds the newest batches that
    began before ``end`` and together hold at least ``window_rows`` rows: whole batches,
    since a batch's summary cannot be split.
    """
    version = version or monitor.version
    if monitor.window_rows:
        return newest_batches(monitor, end, version=version)
    return list(
        PredictionBatch.objects.filter(
            version=version, last_at__gte=start, first_at__lt=end
        ).order_by("first_at", "pk")
    )


def newest_batches(
    monitor: Monitor, end: datetime, *, version: ModelVersion | None = None
) -> list[PredictionBatch]:
    """Newest batches first until ``monitor.window_rows`` rows, returned oldest first."""
    wanted = monitor.window_rows or 0
    chosen: list[PredictionBatch] = []
    held = 0
    candidates = PredictionBatch.objects.filter(
        version=version or monitor.version, first_at__lt=end
    )
    for batch in candidates.order_by("-last_at", "-pk").iterator(chunk_size=100):
        chosen.append(batch)
        held += batch.row_count
        if held >= wanted:
            break
    chosen.reverse()
    return chosen


def batch_rows(batches: list[PredictionBatch], columns: list[str]) -> pd.DataFrame:
    """The raw rows of ``batches`` (the listed columns that they hold), as pandas."""
    table = _read_batches([b.storage_key for b in batches], columns)
    return pd.DataFrame() if table is None else table.to_pandas()


def _read_batches(keys: list[str], columns: list[str]) -> pa.Table | None:
    tables = []
    for key in keys:
        with cached_blob_path(key) as path:
            names = pq.read_schema(path).names
            tables.append(pq.read_table(path, columns=[c for c in columns if c in names]))
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="default")


def _keep_last(table: pa.Table) -> pa.Table:
    """One row per request id, the last one in table order (Arrow hash aggregation)."""
    ids = table.column("request_id")
    if pc.count_distinct(ids).as_py() == len(ids):
        return table
    indexed = table.append_column("_row", pa.array(range(len(table)), pa.int64()))
    last = indexed.group_by("request_id").aggregate([("_row", "max")]).column("_row_max")
    return table.take(pc.take(last, pc.sort_indices(last)))


def labelled_rows(
    model: RegisteredModel,
    version: ModelVersion,
    batches: list[Any],
    *,
    columns: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Predictions of ``batches`` joined with the model's labels by request id.

    ``columns``: further columns of the prediction rows to keep (the features and
    ``timestamp``, for a retraining run's production rows); absent ones are skipped.

    Only label batches posted after the earliest prediction of ``batches`` (less
    ``LABEL_CLOCK_SKEW``) are read: a label cannot precede the request it labels, and a
    model's label history would otherwise be read whole by every check. A request id
    labelled (or predicted) twice keeps its latest row. The join is Arrow's hash join:
    a few million request ids take about a second.
    """
    empty = pd.DataFrame(columns=["request_id", "prediction", "probability", "label"])
    if not batches:
        return empty
    predictions = _read_batches(
        [b.storage_key for b in batches],
        list(dict.fromkeys(["request_id", "prediction", "probability", *columns])),
    )
    earliest = min(b.first_at for b in batches) - LABEL_CLOCK_SKEW
    label_keys = list(
        LabelBatch.objects.filter(registered_model=model, created_at__gte=earliest)
        .order_by("created_at", "pk")
        .values_list("storage_key", flat=True)
    )
    labels = _read_batches(label_keys, ["request_id", "label"])
    if predictions is None or labels is None:
        return empty
    joined = _keep_last(predictions).join(
        _keep_last(labels), keys="request_id", join_type="inner", use_threads=True
    )
    both_integers = pa.types.is_integer(joined["label"].type) and pa.types.is_integer(
        joined["prediction"].type
    )
    # Class labels compare as strings unless both sides are integers (much faster
    # in scikit-learn than object arrays).
    if model.task != "regression" and not both_integers:
        joined = joined.set_column(
            joined.schema.get_field_index("label"), "label", pc.cast(joined["label"], pa.string())
        )
        joined = joined.set_column(
            joined.schema.get_field_index("prediction"),
            "prediction",
            pc.cast(joined["prediction"], pa.string()),
        )
    return joined.to_pandas()
