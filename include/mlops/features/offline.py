"""Feature partitions from the validated zone: one day at a time, a range at once, or all.

The run for day D reads only the validated partitions its windows can reach, days
``[D - (delay + 30), D]``, and publishes ``<features>/date=D`` atomically with a manifest that
names every input partition and the sha256 of its files. A partition missing inside that
range stops the run with the missing days named: a window over a silent gap would be wrong
without any sign of it. Only days before ``history_start`` (the first day of the data set)
may be absent. A range of days is one query over the union of their inputs, which is how a
backfill stays close to the one-pass cost; each day's partition and manifest are the same
bytes as its own daily run would write.

Serving decision. The handbook's customer windows end at the transaction and include it,
and its terminal windows end exactly ``delay`` days before it; an online store filled once
a day knows neither the same day's earlier transactions nor the labels that matured since
midnight. So the model trains on, and is served with, the ``daily`` definition (see
``mlops.features.sql``): whole calendar days before the transaction's day, plus the
transaction itself for the customer windows. The online store holds the snapshot as of the
end of the previous day (``build_snapshot_partitions``: counts and integer cents per
customer, final counts and risks per terminal), and ``mlops.features.serving`` adds the
request's own transaction. Integer cents make the two sides equal to the bit. The
``handbook`` definition stays available, exact to the book's windows, for comparison with
the published results.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pyarrow as pa

from mlops.features.inputs import (
    INPUT,
    DayLike,
    InputPartition,
    MissingPartitionError,
    as_date,
    day_range,
    input_partitions,
    parquet_bytes,
    published_days,
    query_partitions,
    split_by_day,
)
from mlops.features.sql import (
    OUTPUT_COLUMNS,
    WINDOWS,
    Definition,
    check_definition,
    day_number,
    feature_sql,
    lookback_days,
)
from mlops.features.sql_day import day_feature_sql
from mlops.io import storage
from mlops.io.partitions import publish_partition
from mlops.schema import partition_name

DATA_FILE = "data.parquet"
ONE_DAY = timedelta(days=1)
PUBLISH_THREADS = 8

__all__ = [
    "DATA_FILE",
    "FeatureResult",
    "MissingPartitionError",
    "build_feature_partition",
    "build_feature_partitions",
    "compute_features_all",
]


@dataclass(frozen=True)
class FeatureResult:
    """What a run published, small enough for XCom: where, how many rows, from which days."""

    day: str
    uri: str
    rows: int
    definition: Definition
    delay_days: int
    input_days: tuple[str, ...]
    sha256: str

    def to_xcom(self) -> dict[str, Any]:
        return {**self.__dict__, "input_days": list(self.input_days)}


def _inputs(
    first: date,
    last: date,
    validated_uri: str,
    definition: Definition,
    delay_days: int,
    history_start: DayLike | None,
    storage_options: storage.StorageOptions | None,
) -> list[InputPartition]:
    check_definition(definition, delay_days)
    start = as_date(history_start) if history_start is not None else None
    if last < first or (start is not None and first < start):
        raise ValueError(f"bad day range {first}..{last} (history starts {start})")
    return input_partitions(
        validated_uri,
        day_range(first - timedelta(days=lookback_days(delay_days)), last),
        history_start=start,
        needed_for=f"the features of {first}" + (f"..{last}" if last != first else ""),
        storage_options=storage_options,
    )


def build_feature_partition(
    day: DayLike,
    validated_uri: str,
    features_uri: str,
    *,
    delay_days: int = 7,
    definition: Definition = "daily",
    history_start: DayLike | None = None,
    storage_options: storage.StorageOptions | None = None,
) -> FeatureResult:
    """The daily run: publish ``<features_uri>/date=day`` from the partitions it needs.

    It computes the windows of the day's own transactions only (``features_sql_day``), not
    every window of the 38 days it reads, which a window query would.
    """
    day = as_date(day)
    partitions = _inputs(
        day, day, validated_uri, definition, delay_days, history_start, storage_options
    )
    (table,) = query_partitions(
        partitions,
        day_feature_sql(INPUT, day_number(day), definition=definition, delay_days=delay_days),
        storage_options=storage_options,
    )
    return _publish(day, table, partitions, features_uri, definition, delay_days, storage_options)


def build_feature_partitions(
    first: DayLike,
    last: DayLike,
    validated_uri: str,
    features_uri: str,
    *,
    delay_days: int = 7,
    definition: Definition = "daily",
    history_start: DayLike | None = None,
    storage_options: storage.StorageOptions | None = None,
) -> tuple[FeatureResult, ...]:
    """A backfill: the days ``[first, last]`` from one window query over their inputs.

    Each day's partition and manifest are byte for byte what its daily run writes; the
    query costs about the one-pass price of the range plus its 37-day lead-in.
    """
    first, last = as_date(first), as_date(last)
    partitions = _inputs(
        first, last, validated_uri, definition, delay_days, history_start, storage_options
    )
    where = f"TX_DATETIME >= TIMESTAMP '{first}' AND TX_DATETIME < TIMESTAMP '{last + ONE_DAY}'"
    (table,) = query_partitions(
        partitions,
        feature_sql(INPUT, definition=definition, delay_days=delay_days, where=where),
        storage_options=storage_options,
    )
    lookback = timedelta(days=lookback_days(delay_days))

    def publish(day: date, rows: pa.Table) -> FeatureResult:
        inputs = [p for p in partitions if day - lookback <= p.day <= day]
        return _publish(day, rows, inputs, features_uri, definition, delay_days, storage_options)

    # Publishing is file writes and fsyncs, which release the GIL: overlap them.
    days = split_by_day(table, day_range(first, last))
    with ThreadPoolExecutor(max_workers=PUBLISH_THREADS) as pool:
        return tuple(pool.map(publish, days.keys(), days.values()))


def _publish(
    day: date,
    rows: pa.Table,
    inputs: Sequence[InputPartition],
    features_uri: str,
    definition: Definition,
    delay_days: int,
    storage_options: storage.StorageOptions | None,
) -> FeatureResult:
    uri = storage.join(features_uri, partition_name(day.isoformat()))
    data = parquet_bytes(rows)
    metadata = {
        "day": day.isoformat(),
        "definition": definition,
        "delay_days": delay_days,
        "windows": list(WINDOWS),
        "rows": rows.num_rows,
        "columns": list(OUTPUT_COLUMNS),
        "inputs": {partition_name(p.day.isoformat()): p.sha256 for p in inputs},
    }
    publish_partition(uri, {DATA_FILE: data}, metadata, storage_options)
    return FeatureResult(
        day=day.isoformat(),
        uri=uri,
        rows=rows.num_rows,
        definition=definition,
        delay_days=delay_days,
        input_days=tuple(p.day.isoformat() for p in inputs),
        sha256=storage.sha256(data),
    )


def compute_features_all(
    validated_uri: str,
    *,
    delay_days: int = 7,
    definition: Definition = "daily",
    history_start: DayLike | None = None,
    storage_options: storage.StorageOptions | None = None,
) -> pa.Table:
    """Every published day's features in one query (the cross-check and the bench baseline).

    The days from ``history_start`` (default: the first published day) to the last published
    day must all be there, as for the daily runs.
    """
    check_definition(definition, delay_days)
    days = published_days(validated_uri, storage_options)
    if not days:
        raise FileNotFoundError(f"no validated partition under {validated_uri}")
    start = as_date(history_start) if history_start is not None else days[0]
    partitions = input_partitions(
        validated_uri,
        day_range(start, days[-1]),
        history_start=start,
        needed_for=f"features of {start}..{days[-1]}",
        storage_options=storage_options,
    )
    (table,) = query_partitions(
        partitions,
        feature_sql(INPUT, definition=definition, delay_days=delay_days),
        storage_options=storage_options,
    )
    return table
