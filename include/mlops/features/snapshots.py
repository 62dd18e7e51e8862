"""Day-end snapshots per customer and per terminal: what the online store serves from.

The snapshot of day A is everything the ``daily`` features of a day-(A + 1) transaction
need except the transaction itself, computed from the same validated partitions and the
same integer arithmetic as the offline features, so the two sides cannot drift apart.
Each row carries ``event_timestamp`` = the start of day A + 1 (the moment the snapshot
becomes true, which is what a point-in-time join matches a day-(A + 1) transaction to)
and ``SNAPSHOT_DAY`` = A (so request-time code can refuse a stale row).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pyarrow as pa

from mlops.features.inputs import (
    INPUT,
    DayLike,
    InputPartition,
    as_date,
    day_range,
    input_partitions,
    parquet_bytes,
    query_partitions,
)
from mlops.features.sql import day_number, lookback_days
from mlops.features.sql_day import ENTITY_KEYS, snapshot_sql
from mlops.io import storage
from mlops.io.partitions import publish_partition, read_partitions, version_folders
from mlops.schema import partition_name

SNAPSHOT_FILE = "data.parquet"


class SnapshotMissingError(FileNotFoundError):
    """Snapshot partitions that a materialisation or a training set needs are not published."""

    def __init__(self, missing: Sequence[str], needed_for: str) -> None:
        self.missing = tuple(missing)
        super().__init__(
            f"snapshot partition(s) missing: {', '.join(self.missing)}; {needed_for} needs "
            "them and will not read a gap as empty history; run the features of those days "
            "(transactions_daily materialize_features) first"
        )


class SnapshotVersionsError(RuntimeError):
    """Snapshot days hold a version besides the one their marker names (a publish under way,
    or a crashed one not retried yet): Feast's glob would read both. Retrying helps."""

    def __init__(self, mixed: Sequence[str], needed_for: str) -> None:
        self.mixed = tuple(mixed)
        super().__init__(
            f"snapshot partition(s) hold more than their published version: {'; '.join(mixed)}; "
            f"{needed_for} reads them through Feast, which would see every version; retry "
            "once the publish under way ends, else rerun materialize_features of those days"
        )


@dataclass(frozen=True)
class SnapshotResult:
    """Where the two snapshots of a day went; the materialisation task reads these URIs."""

    day: str
    customer_uri: str
    terminal_uri: str
    customers: int
    terminals: int
    input_days: tuple[str, ...]

    def to_xcom(self) -> dict[str, Any]:
        return {**self.__dict__, "input_days": list(self.input_days)}


def compute_snapshots(
    day: DayLike,
    validated_uri: str,
    *,
    delay_days: int = 7,
    history_start: DayLike | None = None,
    storage_options: storage.StorageOptions | None = None,
) -> tuple[dict[str, pa.Table], list[InputPartition]]:
    """The customer and terminal snapshots as of the end of ``day``, and their inputs."""
    day = as_date(day)
    start = as_date(history_start) if history_start is not None else None
    if start is not None and day < start:
        raise ValueError(f"{day} is before the history start {start}")
    partitions = input_partitions(
        validated_uri,
        day_range(day - timedelta(days=lookback_days(delay_days)), day),
        history_start=start,
        needed_for=f"the snapshot of {day}",
        storage_options=storage_options,
    )
    queries = [snapshot_sql(INPUT, e, day_number(day), delay_days=delay_days) for e in ENTITY_KEYS]
    results = query_partitions(partitions, *queries, storage_options=storage_options)
    tables = dict(zip(ENTITY_KEYS, results, strict=True))
    return tables, partitions


def build_snapshot_partitions(
    day: DayLike,
    validated_uri: str,
    snapshots_uri: str,
    *,
    delay_days: int = 7,
    history_start: DayLike | None = None,
    storage_options: storage.StorageOptions | None = None,
) -> SnapshotResult:
    """Publish ``<snapshots_uri>/{customer,terminal}/date=day`` atomically, with lineage."""
    tables, partitions = compute_snapshots(
        day,
        validated_uri,
        delay_days=delay_days,
        history_start=history_start,
        storage_options=storage_options,
    )
    day = as_date(day)
    uris = {}
    for entity, table in tables.items():
        uris[entity] = storage.join(snapshots_uri, entity, partition_name(day.isoformat()))
        metadata = {
            "day": day.isoformat(),
            "entity": entity,
            "definition": "daily",
            "delay_days": delay_days,
            "rows": table.num_rows,
            "inputs": {partition_name(p.day.isoformat()): p.sha256 for p in partitions},
        }
        publish_partition(
            uris[entity], {SNAPSHOT_FILE: parquet_bytes(table)}, metadata, storage_options
        )
    return SnapshotResult(
        day=day.isoformat(),
        customer_uri=uris["customer"],
        terminal_uri=uris["terminal"],
        customers=tables["customer"].num_rows,
        terminals=tables["terminal"].num_rows,
        input_days=tuple(p.day.isoformat() for p in partitions),
    )


def published_snapshots(
    snapshots_uri: str,
    days: Sequence[date],
    *,
    history_start: date | None,
    needed_for: str,
    storage_options: storage.StorageOptions | None = None,
) -> dict[str, dict[str, Any]]:
    """The manifests of both entities' snapshots of ``days``, by partition URI, or raise.

    Days before ``history_start`` have no snapshot (there was no history) and are skipped;
    any other absent day is an error, never an empty history. Feast reads the snapshots
    through a glob over every version folder (``feature_repo/sources.py``), not through the
    markers, so a day must also hold exactly the version its marker names
    (``SnapshotVersionsError`` otherwise)."""
    wanted = [d for d in days if history_start is None or d >= history_start]
    uris = {
        (entity, day): storage.join(snapshots_uri, entity, partition_name(day.isoformat()))
        for day in wanted
        for entity in ENTITY_KEYS
    }
    published = read_partitions(list(uris.values()), storage_options)
    missing = [uri for uri in uris.values() if published[uri] is None]
    if missing:
        raise SnapshotMissingError(missing, needed_for)
    mixed = []
    for entity in ENTITY_KEYS:
        present = version_folders(storage.join(snapshots_uri, entity), storage_options)
        for (of, day), uri in uris.items():
            version = published[uri].version
            seen = present.get(partition_name(day.isoformat()), set())
            if of == entity and seen != {version}:
                mixed.append(f"{uri} (marker: {version or 'unversioned'}; present: {sorted(seen)})")
    if mixed:
        raise SnapshotVersionsError(mixed, needed_for)
    return {uri: published[uri].manifest for uri in uris.values()}
