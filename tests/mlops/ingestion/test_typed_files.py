"""A typed landing file whose columns arrive with the wrong type is refused whole."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops.ingestion.landing import LandingFileError, ingest_partition, read_raw_partition
from mlops.schema import TRANSACTION_DTYPES
from mlops.settings import load_settings
from tests.support.landing_files import day_frame
from tests.support.published import published

DAY = "2018-04-01"


@pytest.fixture
def zones(tmp_path):
    return {name: tmp_path / name for name in ("landing", "raw", "quarantine")}


def ingest(zones):
    return ingest_partition(load_settings({"MLOPS_DATA_ROOT": str(zones["raw"].parent)}), DAY)


def land_table(zones, table: pa.Table, name: str = "t.parquet"):
    folder = zones["landing"] / f"date={DAY}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / name)
    (folder / "_SUCCESS").write_bytes(b"")
    return folder / name


def with_column(column: str, array: pa.Array) -> pa.Table:
    table = pa.Table.from_pandas(day_frame(rows=3), preserve_index=False)
    return table.set_column(table.column_names.index(column), column, array)


WRONG = {
    "amount as text with a thousands separator": (
        "TX_AMOUNT",
        pa.array(["1,234.56", "12.50", "3.00"]),
        "string",
        "float64",
    ),
    "fraud flag as double": ("TX_FRAUD", pa.array([0.0, 1.0, 0.0]), "double", "int64"),
    "customer id as text": ("CUSTOMER_ID", pa.array(["1", "2", "3"]), "string", "int64"),
    "transaction id as float": ("TRANSACTION_ID", pa.array([1.0, 2.0, 3.0]), "double", "int64"),
    "datetime as text": (
        "TX_DATETIME",
        pa.array(["2018-04-01 00:00:00"] * 3),
        "string",
        "datetime64[us]",
    ),
    "datetime as a date": (
        "TX_DATETIME",
        pa.array([dt.date(2018, 4, 1)] * 3),
        "date32",
        "datetime64",
    ),
    "terminal id as bool": ("TERMINAL_ID", pa.array([True, False, True]), "bool", "int64"),
}


@pytest.mark.parametrize("case", WRONG, ids=list(WRONG))
def test_a_typed_column_of_the_wrong_type_refuses_the_file(zones, case):
    column, array, found, expected = WRONG[case]
    path = land_table(zones, with_column(column, array))
    with pytest.raises(LandingFileError, match=re.escape(f"{column} is {found}")) as err:
        ingest(zones)
    message = str(err.value)
    assert str(path) in message and "column_types" in message and f"expected {expected}" in message
    assert not (zones["raw"] / f"date={DAY}").exists()
    reasons = json.loads(
        (published(zones["quarantine"] / f"date={DAY}") / "reasons.json").read_text()
    )
    assert reasons["rule"] == "column_types"


def test_every_wrong_column_is_named_at_once(zones):
    table = with_column("TX_AMOUNT", pa.array(["1", "2", "3"]))
    table = table.set_column(table.column_names.index("TX_FRAUD"), "TX_FRAUD", pa.array([0.5] * 3))
    land_table(zones, table)
    with pytest.raises(LandingFileError, match="TX_AMOUNT is string.*; TX_FRAUD is double"):
        ingest(zones)


def test_an_integer_that_overflows_int64_is_refused(zones):
    land_table(zones, with_column("CUSTOMER_ID", pa.array([1, 2, 2**63], pa.uint64())))
    with pytest.raises(LandingFileError, match="CUSTOMER_ID is uint64 with values outside int64"):
        ingest(zones)


LOSSLESS = {
    "int32 ids": ("CUSTOMER_ID", pa.array([1, 2, 3], pa.int32()), [1, 2, 3]),
    "uint8 flag": ("TX_FRAUD", pa.array([0, 1, 0], pa.uint8()), [0, 1, 0]),
    "float32 amount": ("TX_AMOUNT", pa.array([1.5, 2.25, 3.0], pa.float32()), [1.5, 2.25, 3.0]),
    "integer amount": ("TX_AMOUNT", pa.array([1, 2, 3]), [1.0, 2.0, 3.0]),
    "decimal amount": (
        "TX_AMOUNT",
        pa.array([decimal.Decimal("1234.56")] * 3, pa.decimal128(10, 2)),
        [1234.56] * 3,
    ),
    "all-null column": ("TERMINAL_ID", pa.nulls(3), [None] * 3),
}


@pytest.mark.parametrize("case", LOSSLESS, ids=list(LOSSLESS))
def test_a_lossless_type_is_taken_and_cast_to_the_schema(zones, case):
    column, array, values = LOSSLESS[case]
    land_table(zones, with_column(column, array))
    rows, _ = read_raw_partition(ingest(zones).raw_uri)
    got = rows[column].astype(object)
    assert got.where(rows[column].notna(), None).tolist() == values
    if values[0] is not None:
        assert str(rows[column].dtype) == TRANSACTION_DTYPES[column]


def test_timestamps_of_any_unit_and_zone_become_naive_utc_microseconds(zones):
    utc = [dt.datetime(2018, 4, 1, 10, 0, 0, 123456), dt.datetime(2018, 4, 1, 23, 59, 59)] * 2
    array = pa.array(utc[:3], pa.timestamp("ns", tz="UTC")).cast(pa.timestamp("ns", "Asia/Tokyo"))
    land_table(zones, with_column("TX_DATETIME", array))
    rows, _ = read_raw_partition(ingest(zones).raw_uri)
    assert str(rows["TX_DATETIME"].dtype) == "datetime64[us]"
    assert rows["TX_DATETIME"].tolist() == [pd.Timestamp(t) for t in utc[:3]]
