"""The prediction log: the one record of what was scored, by which version, and what answered.

One row per scored transaction (``LOG_COLUMNS``): request id, time, card, terminal, the 15
features, each variant's score and version, the variant that answered and its score, the
latency. Two writers feed it, in two separate places so that neither can erase the other:

- daily scoring replaces the day's **batch** partition as a whole (``replace_day``): a rerun
  gives the same rows, and the rollout judgement reads these partitions by data day;
- the model service **appends** its requests (``append``), through
  ``mlops.scoring.log_writer.BackgroundLog``.

Where: locally, Parquet under ``<data root>/predictions/{batch,service}/date=YYYY-MM-DD/``
(the day of the transaction, data time, not the wall clock); a batch partition is one
``data.parquet`` published atomically (``mlops.io.partitions``: a new version, then the
marker naming it), a service batch is one ``part-*.parquet`` written to a
temporary name and renamed. With ``MLOPS_PREDICTION_LOG_URL`` set (the production profile),
a PostgreSQL table ``prediction_log`` with the same columns, written in one transaction per
batch (a day's replacement is a DELETE and an INSERT in the same transaction).

**What can be lost.** A row is never written half: a file or a transaction is whole or
absent. The service's writer (``log_writer``) counts every row it could not write (queue
full, batch refused, shutdown deadline passed); only a killed process loses its unflushed
queue uncounted, at most a second or so of traffic.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any, Protocol

import pandas as pd

from mlops import zones
from mlops.features.names import FEATURES
from mlops.io import storage
from mlops.io.partitions import partition_files, publish_partition
from mlops.schema import partition_name

SOURCES = ("batch", "service")
TABLE = "prediction_log"
DATA_FILE = "data.parquet"
KEY_COLUMNS: tuple[str, ...] = (
    "request_id",
    "time",  # service: when the request arrived (UTC); batch: the transaction's time
    "source",
    "transaction_id",
    "tx_datetime",
    "customer_id",
    "terminal_id",
)
SCORE_COLUMNS: tuple[str, ...] = (
    "champion_version",
    "champion_score",
    "challenger_version",
    "challenger_score",
    "variant",  # the variant that answered
    "model_version",
    "score",
    "rollout_strategy",
    "challenger_error",
    "customer_status",  # current | quiet | missing (served with default features)
    "terminal_status",
    "latency_ms",  # service only: request in to response out
)
LOG_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *FEATURES, *SCORE_COLUMNS)
_STRINGS = {"request_id", "source", "champion_version", "challenger_version", "variant"}
_STRINGS |= {"model_version", "rollout_strategy", "challenger_error"}
_STRINGS |= {"customer_status", "terminal_status"}
_IDS = ("transaction_id", "customer_id", "terminal_id")
_TIMES = ("time", "tx_datetime")
Rows = Sequence[dict[str, Any]] | pd.DataFrame


def _checked_columns(names: set[str]) -> None:
    if names != set(LOG_COLUMNS):
        missing = sorted(set(LOG_COLUMNS) - names)
        extra = sorted(names - set(LOG_COLUMNS))
        raise ValueError(f"prediction log rows: missing {missing}, unexpected {extra}")


def log_records(records: Sequence[dict[str, Any]]) -> Sequence[dict[str, Any]]:
    """``records``, each checked to hold exactly ``LOG_COLUMNS`` (as ``log_frame`` checks a
    frame): the service's batches go to a sink without a DataFrame, which cost about 12 ms
    of every 200-row flush on the service's GIL."""
    for record in records:
        _checked_columns(set(record))
    return records


def _arrow_table(records: Sequence[dict[str, Any]]) -> Any:
    """``log_records`` as an Arrow table with the types ``log_frame`` gives (NaN as null)."""
    import pyarrow as pa

    types = {n: pa.int64() for n in _IDS} | {n: pa.timestamp("us") for n in _TIMES}
    types |= {n: pa.string() for n in _STRINGS}
    columns = {n: [r[n] for r in records] for n in LOG_COLUMNS}
    for name in _STRINGS:  # a version may come as a number; the log keeps text
        columns[name] = [v if v is None or isinstance(v, str) else str(v) for v in columns[name]]
    arrays = [pa.array(columns[n], types.get(n, pa.float64()), from_pandas=True) for n in columns]
    return pa.Table.from_arrays(arrays, names=list(LOG_COLUMNS))


def log_frame(records: Sequence[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """Records as a frame of exactly ``LOG_COLUMNS`` with stable types (a missing column or
    an extra one is an error: the log's schema must not drift silently)."""
    frame = pd.DataFrame(records) if not isinstance(records, pd.DataFrame) else records.copy()
    _checked_columns(set(frame.columns))
    frame = frame[list(LOG_COLUMNS)]
    for name in ("time", "tx_datetime"):
        frame[name] = pd.to_datetime(frame[name]).astype("datetime64[us]")
    for name in ("transaction_id", "customer_id", "terminal_id"):
        frame[name] = frame[name].astype("int64")
    for name in ("champion_score", "challenger_score", "score", "latency_ms"):
        frame[name] = frame[name].astype("float64")
    for name in _STRINGS:
        frame[name] = frame[name].astype("object").where(frame[name].notna(), None)
    return frame


class PredictionSink(Protocol):
    """Where log rows go: appended by the service, a day replaced by daily scoring."""

    def append(self, rows: Rows) -> None: ...

    def replace_day(self, source: str, day: date, frame: pd.DataFrame) -> None: ...

    def read_day(self, source: str, day: date) -> pd.DataFrame: ...


class ParquetSink:
    """Parquet partitions under ``root`` (a folder or an ``s3://`` URI)."""

    def __init__(self, root: str, storage_options: storage.StorageOptions | None = None) -> None:
        self.root = root
        self.storage_options = storage_options

    def partition(self, source: str, day: date) -> str:
        return storage.join(self.root, source, partition_name(day.isoformat()))

    def append(self, rows: Rows) -> None:
        if isinstance(rows, pd.DataFrame):
            rows = log_frame(rows).to_dict("records")
        by_day: dict[date, list[dict[str, Any]]] = {}
        for record in log_records(rows):
            by_day.setdefault(record["tx_datetime"].date(), []).append(record)
        for day, records in sorted(by_day.items()):
            name = f"part-{uuid.uuid4().hex}.parquet"  # unique per batch; order is in the rows
            uri = storage.join(self.partition("service", day), name)
            data = storage.arrow_parquet_bytes(_arrow_table(records))
            storage.write_bytes_atomic(uri, data, self.storage_options)

    def replace_day(self, source: str, day: date, frame: pd.DataFrame) -> None:
        data = storage.parquet_bytes(log_frame(frame))
        metadata = {"day": day.isoformat(), "rows": len(frame), "source": source}
        publish_partition(
            self.partition(source, day), {DATA_FILE: data}, metadata, self.storage_options
        )

    def read_day(self, source: str, day: date) -> pd.DataFrame:
        folder = self.partition(source, day)
        if source == "batch":  # a published partition: the files of its marker's version
            listed = partition_files(folder, self.storage_options)
        else:  # the service's appended parts, each whole or absent
            listed = storage.list_data_files(folder, self.storage_options)
        files = [f for f in listed if f.endswith(".parquet")]
        parts = [storage.read_parquet(f, self.storage_options) for f in sorted(files)]
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=LOG_COLUMNS)
        return log_frame(frame)


class PostgresSink:
    """The ``prediction_log`` table of a SQLAlchemy URL (``postgresql+psycopg2://...``)."""

    def __init__(self, url: str, table: str = TABLE) -> None:
        from sqlalchemy import create_engine

        # A stale pooled connection (PostgreSQL restarted) is replaced at the next checkout
        # (pre-ping), and a server that does not answer fails a connect within 10 s.
        connect_args = {"connect_timeout": 10} if url.startswith("postgresql") else {}
        self.engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        self.table = _table(table)
        self._created = False

    def _ensure_table(self) -> None:
        """Create the table on first use, not in ``__init__``: a service that starts while
        PostgreSQL is down must start, and log once it is back."""
        if not self._created:
            self.table.metadata.create_all(self.engine, checkfirst=True)
            self._created = True

    def append(self, rows: Rows) -> None:
        if isinstance(rows, pd.DataFrame):
            rows = _rows(log_frame(rows))
        else:  # NaN as NULL, as _rows makes it
            rows = [{n: None if v != v else v for n, v in r.items()} for r in log_records(rows)]
        self._ensure_table()
        with self.engine.begin() as connection:
            connection.execute(self.table.insert(), rows)

    def replace_day(self, source: str, day: date, frame: pd.DataFrame) -> None:
        from sqlalchemy import and_, func

        rows = _rows(log_frame(frame))
        column = self.table.c
        self._ensure_table()
        with self.engine.begin() as connection:
            connection.execute(
                self.table.delete().where(
                    and_(column.source == source, func.date(column.tx_datetime) == day)
                )
            )
            if rows:
                connection.execute(self.table.insert(), rows)

    def read_day(self, source: str, day: date) -> pd.DataFrame:
        from sqlalchemy import and_, func, select

        column = self.table.c
        query = select(self.table).where(
            and_(column.source == source, func.date(column.tx_datetime) == day)
        )
        self._ensure_table()
        with self.engine.connect() as connection:
            frame = pd.read_sql(query.order_by(column.transaction_id), connection)
        # SQLAlchemy names the columns with its quoted_name (a str subclass), which
        # scikit-learn does not take for feature names: rescoring logged rows would fail.
        frame.columns = [str(name) for name in frame.columns]
        return log_frame(frame)


def _table(name: str) -> Any:
    from sqlalchemy import BigInteger, Column, DateTime, Float, Index, MetaData, String, Table

    types = {n: BigInteger for n in ("transaction_id", "customer_id", "terminal_id")}
    types |= {n: DateTime for n in ("time", "tx_datetime")}
    types |= {n: String for n in _STRINGS}
    columns = [Column(n, types.get(n, Float), nullable=True) for n in LOG_COLUMNS]
    table = Table(name, MetaData(), *columns)
    Index(f"{name}_source_day", table.c.source, table.c.tx_datetime)
    return table


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    clean = frame.astype(object).where(frame.notna(), None)
    rows = clean.to_dict("records")
    for row in rows:
        for name in ("time", "tx_datetime"):
            row[name] = row[name].to_pydatetime() if row[name] is not None else None
    return rows


def prediction_sink(
    data_root: str,
    log_url: str | None = None,
    storage_options: storage.StorageOptions | None = None,
) -> PredictionSink:
    """PostgreSQL when ``log_url`` is set (production), else Parquet under the data root."""
    if log_url:
        return PostgresSink(log_url)
    return ParquetSink(storage.join(data_root, zones.PREDICTIONS), storage_options)


__all__ = [
    "LOG_COLUMNS",
    "ParquetSink",
    "PostgresSink",
    "PredictionSink",
    "log_frame",
    "prediction_sink",
]
