from __future__ import annotations

import re

import pandas as pd
import pytest

from mlops.ingestion.landing import (
    INGEST_ERROR,
    LandingFileError,
    ingest_partition,
    read_raw_partition,
)
from mlops.schema import SOURCE_FILE, SOURCE_ROW, TRANSACTION_DTYPES
from mlops.settings import load_settings
from tests.support.landing_files import HEADER, day_frame, land, snapshot, visible_temporaries
from tests.support.published import published

DAY = "2018-04-01"


@pytest.fixture
def zones(tmp_path):
    return {name: tmp_path / name for name in ("landing", "raw", "quarantine")}


def ingest(zones):
    root = zones["landing"].parent  # the data root whose zones the fixture names
    return ingest_partition(load_settings({"MLOPS_DATA_ROOT": str(root)}), DAY)


def test_parquet_day_is_published_with_schema_types_and_lineage(zones):
    path = land(zones["landing"], DAY, "transactions.parquet", day_frame(rows=30))
    result = ingest(zones)
    rows, unparsed = read_raw_partition(result.raw_uri)
    assert result.rows == 30 and unparsed.empty
    for column, dtype in TRANSACTION_DTYPES.items():
        assert str(rows[column].dtype) == dtype, column
    assert set(rows[SOURCE_FILE]) == {str(path)}
    assert rows[SOURCE_ROW].tolist() == list(range(1, 31))
    raw_files = {p.name for p in published(zones["raw"] / f"date={DAY}").iterdir()}
    assert {"landing-transactions.parquet", "transactions.parquet", "_manifest.json"} <= raw_files


def test_timezone_aware_and_nanosecond_timestamps_become_naive_utc(zones):
    frame = day_frame(rows=3)
    frame["TX_DATETIME"] = (frame["TX_DATETIME"] + pd.Timedelta(hours=2)).dt.tz_localize(
        "Europe/Brussels"
    )
    land(zones["landing"], DAY, "transactions.parquet", frame)
    rows, _ = read_raw_partition(ingest(zones).raw_uri)
    assert rows["TX_DATETIME"].tolist() == day_frame(rows=3)["TX_DATETIME"].tolist()


def test_csv_garbage_lines_are_kept_with_their_line_number(zones):
    good = day_frame(rows=3).to_csv(index=False).splitlines()
    text = "\n".join([good[0], good[1], "garbage;;;", good[2], "1,2,3", good[3]]) + "\n"
    land(zones["landing"], DAY, "transactions.csv", text.encode())
    result = ingest(zones)
    rows, unparsed = read_raw_partition(result.raw_uri)
    assert rows[SOURCE_ROW].tolist() == [2, 4, 6]
    assert unparsed[SOURCE_ROW].tolist() == [3, 5]
    assert unparsed["line"].tolist() == ["garbage;;;", "1,2,3"]
    assert "fields where the header has 7" in unparsed["reason"].iloc[0]


def test_a_value_of_the_wrong_type_becomes_null_and_says_why(zones):
    text = f"{HEADER}\n1,2018-04-01 10:00:00,3,4,twelve,0,0\n2,not-a-date,3,4,5.0,0,0\n"
    land(zones["landing"], DAY, "transactions.csv", text.encode())
    rows, _ = read_raw_partition(ingest(zones).raw_uri)
    assert rows["TX_AMOUNT"].isna().tolist() == [True, False]
    assert rows["TX_DATETIME"].isna().tolist() == [False, True]
    assert rows[INGEST_ERROR].tolist() == [
        "TX_AMOUNT: twelve is not float64",
        "TX_DATETIME: not-a-date is not datetime64[us]",
    ]


def test_two_files_of_one_day_are_ingested_together(zones):
    land(zones["landing"], DAY, "a.parquet", day_frame(rows=10))
    land(zones["landing"], DAY, "b.csv", day_frame(rows=5, first_id=100))
    result = ingest(zones)
    rows, _ = read_raw_partition(result.raw_uri)
    assert result.rows == 15 and len(result.files) == 2
    assert str(rows["TRANSACTION_ID"].dtype) == "int64"
    assert rows.groupby(SOURCE_FILE).size().tolist() == [10, 5]


def test_missing_and_extra_columns_pass_through_for_validation_to_judge(zones):
    frame = day_frame(rows=4).drop(columns=["TX_FRAUD"]).assign(COUNTRY="BE")
    land(zones["landing"], DAY, "transactions.parquet", frame)
    rows, _ = read_raw_partition(ingest(zones).raw_uri)
    assert "TX_FRAUD" not in rows.columns and "COUNTRY" in rows.columns


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("transactions.parquet", b"", "empty file (0 bytes)"),
        ("transactions.csv", b"", "empty file (0 bytes)"),
        ("transactions.parquet", None, "not a readable Parquet file"),
        ("transactions.json", b"{}", "unsupported file type"),
    ],
)
def test_unreadable_file_fails_names_it_and_quarantines_a_copy(zones, name, content, expected):
    if content is None:  # a truncated upload: the first half of a real file
        whole = land(zones["landing"], DAY, "whole.parquet", day_frame()).read_bytes()
        (zones["landing"] / f"date={DAY}" / "whole.parquet").unlink()
        content = whole[: len(whole) // 2]
    path = land(zones["landing"], DAY, name, content)
    before = snapshot(zones["landing"])
    with pytest.raises(LandingFileError, match=re.escape(expected)) as err:
        ingest(zones)
    assert str(path) in str(err.value)
    assert snapshot(zones["landing"]) == before
    assert not (zones["raw"] / f"date={DAY}").exists()
    quarantined = published(zones["quarantine"] / f"date={DAY}")
    assert (quarantined / f"landing-{name}").read_bytes() == content
    assert expected in (quarantined / "reasons.json").read_text()
    assert visible_temporaries(zones["landing"].parent) == []

    path.unlink()  # the producer fixes the day
    land(zones["landing"], DAY, "fixed.parquet", day_frame(rows=12))
    assert ingest(zones).rows == 12


def test_rerun_after_the_file_is_fixed_replaces_the_raw_partition(zones):
    land(zones["landing"], DAY, "transactions.parquet", b"PAR1 not really")
    with pytest.raises(LandingFileError, match="transactions.parquet: not a readable Parquet file"):
        ingest(zones)
    land(zones["landing"], DAY, "transactions.parquet", day_frame(rows=12))
    assert ingest(zones).rows == 12
    assert [p.name for p in zones["raw"].iterdir()] == [f"date={DAY}"]  # no temporaries left


def test_rerun_of_the_same_landing_gives_identical_bytes(zones):
    land(zones["landing"], DAY, "transactions.csv", day_frame(rows=20))
    ingest(zones)
    first = snapshot(zones["raw"])
    ingest(zones)
    assert snapshot(zones["raw"]) == first


def test_missing_partition_names_the_folder(zones):
    with pytest.raises(LandingFileError, match=f"date={DAY}: no data files"):
        ingest(zones)
