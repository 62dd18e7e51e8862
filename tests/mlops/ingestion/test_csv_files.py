"""CSV as real producers write it: encodings, line ends, quoting, locale numbers."""

from __future__ import annotations

import codecs
import json
import re

import pandas as pd
import pytest

from mlops.ingestion.landing import LandingFileError, ingest_partition, read_raw_partition
from mlops.schema import SOURCE_ROW, TRANSACTION_COLUMNS, TRANSACTION_DTYPES
from mlops.settings import load_settings
from tests.support.landing_files import HEADER, day_frame, land
from tests.support.published import published

DAY = "2018-04-01"
ROWS = 5


@pytest.fixture
def zones(tmp_path):
    return {name: tmp_path / name for name in ("landing", "raw", "quarantine")}


def ingest(zones):
    return ingest_partition(load_settings({"MLOPS_DATA_ROOT": str(zones["raw"].parent)}), DAY)


def plain_text() -> str:
    return day_frame(rows=ROWS).to_csv(index=False, lineterminator="\n")


def expected() -> pd.DataFrame:
    return day_frame(rows=ROWS)


def quoted(text: str) -> str:
    return "\n".join(
        ",".join(f'"{cell}"' for cell in line.split(",")) for line in text.splitlines()
    )


ENCODINGS = {
    "utf-8 with BOM": lambda: codecs.BOM_UTF8 + plain_text().encode(),
    "CRLF line ends": lambda: plain_text().replace("\n", "\r\n").encode(),
    "old Mac CR line ends": lambda: plain_text().replace("\n", "\r").encode(),
    "BOM and CRLF (Excel CSV UTF-8)": lambda: (
        codecs.BOM_UTF8 + plain_text().replace("\n", "\r\n").encode()
    ),
    "every field quoted, header too": lambda: quoted(plain_text()).encode(),
    "trailing empty lines": lambda: (plain_text() + "\n\n").encode(),
    "no final line end": lambda: plain_text().rstrip("\n").encode(),
    "utf-16 with BOM": lambda: plain_text().encode("utf-16"),
    "blank lines between records": lambda: plain_text().replace("\n", "\n\n", 2).encode(),
}


@pytest.mark.parametrize("case", ENCODINGS, ids=list(ENCODINGS))
def test_common_csv_encodings_are_read_as_what_they_are(zones, case):
    land(zones["landing"], DAY, "t.csv", ENCODINGS[case]())
    rows, unparsed = read_raw_partition(ingest(zones).raw_uri)
    assert unparsed.empty
    assert list(rows.columns[2:9]) == list(TRANSACTION_COLUMNS)
    assert rows[list(TRANSACTION_COLUMNS)].astype(TRANSACTION_DTYPES).equals(expected())
    assert rows["_ingest_error"].isna().all()


def test_line_numbers_are_the_files_own_after_blank_and_multiline_records(zones):
    lines = plain_text().splitlines()
    text = "\n".join([lines[0], lines[1], "", lines[2], '"garbage\nover two lines"', lines[3]])
    land(zones["landing"], DAY, "t.csv", (text + "\n").encode())
    rows, unparsed = read_raw_partition(ingest(zones).raw_uri)
    assert rows[SOURCE_ROW].tolist() == [2, 4, 7]
    assert unparsed[SOURCE_ROW].tolist() == [5]


def test_a_line_with_latin1_bytes_is_unparsed_naming_the_byte_and_line(zones):
    lines = plain_text().splitlines()
    latin1 = f"{lines[2]},Caf\xe9".encode("latin-1")
    data = b"\n".join([lines[0].encode(), lines[1].encode(), latin1, lines[3].encode()]) + b"\n"
    land(zones["landing"], DAY, "t.csv", data)
    rows, unparsed = read_raw_partition(ingest(zones).raw_uri)
    assert rows[SOURCE_ROW].tolist() == [2, 4]
    assert unparsed[SOURCE_ROW].tolist() == [3]
    assert "byte 0xe9 is not UTF-8" in unparsed["reason"].iloc[0]
    assert unparsed["_source_file"].iloc[0].endswith("date=2018-04-01/t.csv")


LOCALE = {
    "thousands separator": "1,234.56",
    "decimal comma": "12,50",
    "german grouping": "1.234,56",
    "space grouping": "1 234.56",
    "swiss grouping": "1'234.56",
}


@pytest.mark.parametrize("case", LOCALE, ids=list(LOCALE))
def test_locale_formatted_numbers_refuse_the_file_naming_column_value_and_line(zones, case):
    value = LOCALE[case]
    lines = plain_text().splitlines()
    fields = lines[3].split(",")
    fields[4] = f'"{value}"'
    text = "\n".join([*lines[:3], ",".join(fields), *lines[4:]]) + "\n"
    path = land(zones["landing"], DAY, "t.csv", text.encode())
    with pytest.raises(LandingFileError, match=re.escape(f"{value!r} (line 4)")) as err:
        ingest(zones)
    message = str(err.value)
    assert str(path) in message and "number_format" in message and "TX_AMOUNT" in message
    assert not (zones["raw"] / f"date={DAY}").exists()
    reasons = json.loads(
        (published(zones["quarantine"] / f"date={DAY}") / "reasons.json").read_text()
    )
    assert reasons["rule"] == "number_format"


def test_locale_numbers_in_an_id_column_refuse_the_file_too(zones):
    text = f'{HEADER}\n1,2018-04-01T10:00:00,"1,024",4,5.0,0,0\n'
    land(zones["landing"], DAY, "t.csv", text.encode())
    with pytest.raises(LandingFileError, match=r"number_format: CUSTOMER_ID has 1 locale"):
        ingest(zones)


def test_a_word_where_a_number_belongs_stays_a_row_problem(zones):
    text = f"{HEADER}\n1,2018-04-01T10:00:00,3,4,twelve,0,0\n2,2018-04-01T11:00:00,3,4,5.5,0,0\n"
    land(zones["landing"], DAY, "t.csv", text.encode())
    rows, _ = read_raw_partition(ingest(zones).raw_uri)
    assert rows["TX_AMOUNT"].isna().tolist() == [True, False]
    assert rows["_ingest_error"].tolist()[0] == "TX_AMOUNT: twelve is not float64"
