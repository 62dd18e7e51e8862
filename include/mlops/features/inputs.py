"""Finding and reading the validated partitions that a feature window reaches.

Inputs are taken only from published partitions (those with a manifest) and only as the
manifest lists them, so a half-written or withdrawn partition is never read, and the
sha256 recorded there becomes the lineage of every partition computed from it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlops.features.sql import INPUT_COLUMNS, lookback_days
from mlops.io import storage
from mlops.io.partitions import read_partitions
from mlops.schema import SUCCESS_MARKER, partition_name

DayLike = date | str
INPUT = "validated_rows"  # the relation the feature queries read


class MissingPartitionError(FileNotFoundError):
    """Validated partitions that a feature window needs are not published (yet)."""

    def __init__(self, missing: Sequence[date], needed_for: str) -> None:
        self.missing = tuple(missing)
        days = ", ".join(d.isoformat() for d in self.missing)
        super().__init__(
            f"validated partition(s) missing for {days}: {needed_for} reads these days and "
            "will not compute windows over a gap; publish them, or pass history_start if "
            "the data set starts later"
        )


class PartitionDayMismatch(ValueError):
    """A validated partition holds rows of another day, which would break incrementality."""


@dataclass(frozen=True)
class InputPartition:
    """A published validated partition, with the file hashes its manifest vouches for."""

    day: date
    uri: str
    sha256: dict[str, str]  # file name -> sha256, as the partition's manifest records it
    folder: str = ""  # where the files of the version read are (the marker's), else ``uri``

    def file(self, name: str) -> str:
        return storage.join(self.folder or self.uri, name)


def as_date(day: DayLike) -> date:
    return day if isinstance(day, date) else date.fromisoformat(day)


def day_range(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def earlier_input_days(
    day: DayLike, delay_days: int, history_start: date | None = None
) -> list[date]:
    """The days before ``day`` whose validated partitions its features read (none before
    ``history_start``): what a day's feature run must wait for."""
    day = as_date(day)
    first = day - timedelta(days=lookback_days(delay_days))
    if history_start is not None:
        first = max(first, history_start)
    return day_range(first, day - timedelta(days=1))


def input_partitions(
    validated_uri: str,
    days: Sequence[date],
    *,
    history_start: date | None,
    needed_for: str,
    storage_options: storage.StorageOptions | None = None,
) -> list[InputPartition]:
    """The published partitions of ``days`` (before ``history_start`` skipped), or raise."""
    wanted = [d for d in days if history_start is None or d >= history_start]
    uris = {day: storage.join(validated_uri, partition_name(day.isoformat())) for day in wanted}
    published = read_partitions(list(uris.values()), storage_options)
    found, missing = [], []
    for day, uri in uris.items():
        partition = published[uri]
        if partition is None:
            missing.append(day)
            continue
        files = partition.manifest.get("files", {})
        sha = {n: files[n]["sha256"] for n in sorted(files)}
        found.append(InputPartition(day, uri, sha, partition.folder))
    if missing:
        raise MissingPartitionError(missing, needed_for)
    return found


def published_days(
    validated_uri: str, storage_options: storage.StorageOptions | None = None
) -> list[date]:
    """Days with a published partition (a marker), sorted."""
    fs, path = storage.fresh_filesystem(validated_uri, storage_options)
    days = []
    for marker in fs.glob(f"{path.rstrip('/')}/date=*/{SUCCESS_MARKER}"):
        days.append(date.fromisoformat(marker.rsplit("/", 2)[-2].removeprefix("date=")))
    return sorted(days)


def query_partitions(
    partitions: Sequence[InputPartition],
    *queries: str,
    storage_options: storage.StorageOptions | None = None,
) -> list[pa.Table]:
    """Run ``queries`` in a fresh DuckDB where ``INPUT`` holds the rows of ``partitions``.

    The rows are read once into a temporary table: the partition-day check and every query
    then share one scan. A row dated outside its partition's day is refused (validation's
    ``tx_datetime_in_partition_day`` rule already quarantines such rows): a daily run would
    miss it where the one-pass query does not, and the two would silently disagree.
    """
    if not partitions:
        raise ValueError("no input partitions")
    files = [p.file(name) for p in partitions for name in p.sha256]
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        if storage.is_remote(files[0]):
            con.register("input_files", _fetched(partitions, storage_options))
            source = "input_files"
        else:
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            source = (
                f"(SELECT *, date AS _partition FROM read_parquet([{listed}], "
                "hive_partitioning = true, hive_types = {'date': DATE, 'v': VARCHAR}, "
                "union_by_name = true))"
            )
        con.execute(
            f"CREATE TEMP TABLE {INPUT} AS SELECT {', '.join(INPUT_COLUMNS)}, _partition "
            f"FROM {source}"
        )
        strays = con.sql(
            f"SELECT DISTINCT _partition FROM {INPUT} "
            "WHERE CAST(TX_DATETIME AS DATE) <> _partition ORDER BY 1"
        ).fetchall()
        if strays:
            raise PartitionDayMismatch(
                "validated partition(s) hold rows dated outside their day: "
                + ", ".join(str(row[0]) for row in strays)
            )
        return [con.sql(query).to_arrow_table() for query in queries]
    finally:
        con.close()


def _fetched(
    partitions: Sequence[InputPartition], storage_options: storage.StorageOptions | None
) -> pa.Table:
    """The partitions' files from object storage in one concurrent batch, as one table with
    the partition's day beside each row (what hive partitioning gives on local files)."""
    named = [(p.file(name), p.day) for p in partitions for name in p.sha256]
    blobs = storage.read_many([uri for uri, _ in named], storage_options)
    tables = []
    for uri, day in named:
        if uri not in blobs:
            raise FileNotFoundError(f"{uri}: listed in its partition's manifest, not found")
        table = pq.read_table(io.BytesIO(blobs[uri]))
        day_column = pa.array([day] * table.num_rows, type=pa.date32())
        tables.append(table.append_column("_partition", day_column))
    return pa.concat_tables(tables, promote_options="default")


def parquet_bytes(table: pa.Table) -> bytes:
    """Deterministic Parquet: one chunk per column, so a rerun writes the same bytes."""
    sink = io.BytesIO()
    pq.write_table(table.combine_chunks(), sink)
    return sink.getvalue()


def split_by_day(table: pa.Table, days: Sequence[date]) -> dict[date, pa.Table]:
    """Slices of a table sorted by TX_DATETIME, one per day (empty days included)."""
    stamps = table.column("TX_DATETIME").to_numpy().astype("datetime64[D]")
    out = {}
    for day in days:
        lo, hi = np.searchsorted(stamps, [np.datetime64(day), np.datetime64(day + timedelta(1))])
        out[day] = table.slice(int(lo), int(hi - lo))
    return out
