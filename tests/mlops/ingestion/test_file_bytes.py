"""Landing files whose bytes are not what their name declares: refused whole, naming the
file and what the bytes are, kept in quarantine; a real ``.csv.gz`` is read as CSV."""

from __future__ import annotations

import gzip
import io
import json
import re
import zipfile

import numpy as np
import pandas as pd
import pytest

from mlops.ingestion.landing import LandingFileError, ingest_partition, read_raw_partition
from mlops.schema import SOURCE_FILE, TRANSACTION_DTYPES
from mlops.settings import load_settings
from tests.support.landing_files import HEADER, day_frame, land, snapshot, visible_temporaries
from tests.support.published import published

DAY = "2018-04-01"


def csv_text(rows: int = 20) -> str:
    return day_frame(rows=rows).to_csv(index=False, lineterminator="\n")


def zipped() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("transactions.csv", csv_text())
    return buffer.getvalue()


def parquet() -> bytes:
    buffer = io.BytesIO()
    day_frame(rows=20).to_parquet(buffer, index=False)
    return buffer.getvalue()


REFUSED = {
    "gzip named .csv": (
        "t.csv",
        lambda: gzip.compress(csv_text().encode()),
        "the bytes are gzip-compressed, not CSV text (name it .csv.gz",
    ),
    "UTF-16 without a byte-order mark": (
        "t.csv",
        lambda: csv_text().encode("utf-16-le"),
        "NUL bytes in the header (the first at byte 1): UTF-16 text without a byte-order mark",
    ),
    "header in cp1252": (
        "t.csv",
        lambda: csv_text().replace("TX_AMOUNT", "TX_AMOUNT_\u20ac", 1).encode("cp1252"),
        "the header line is not text: byte 0x80 is not UTF-8",
    ),
    "random binary": (
        "t.csv",
        lambda: np.random.default_rng(16).bytes(4096),
        "file_format: ",
    ),
    "a zip archive named .csv": ("t.csv", zipped, "the bytes are a zip archive, not CSV text"),
    "Parquet named .csv": ("t.csv", parquet, "the bytes are Parquet, not CSV text"),
    "gzip named .parquet": (
        "t.parquet",
        lambda: gzip.compress(parquet()),
        "the bytes are gzip-compressed, not Parquet",
    ),
    ".csv.gz that is plain text": (
        "t.csv.gz",
        lambda: csv_text().encode(),
        "named .gz but the bytes are not gzip-compressed",
    ),
    ".csv.gz cut short": (
        "t.csv.gz",
        lambda: gzip.compress(csv_text(500).encode())[:-200],
        "not a readable gzip file",
    ),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_bytes_that_are_not_the_declared_format_are_refused_and_kept(tmp_path, case):
    name, content, reason = REFUSED[case]
    data = content()
    path = land(tmp_path / "landing", DAY, name, data)
    before = snapshot(tmp_path / "landing")
    settings = load_settings({"MLOPS_DATA_ROOT": str(tmp_path)})
    with pytest.raises(LandingFileError, match=re.escape(reason)) as err:
        ingest_partition(settings, DAY)
    assert str(path) in str(err.value) and err.value.rule == "file_format"
    kept = published(tmp_path / "quarantine" / f"date={DAY}")
    assert (kept / f"landing-{name}").read_bytes() == data  # the bytes as landed
    reasons = json.loads((kept / "reasons.json").read_text())
    assert reasons["rules"] == ["file_format"] and reason in reasons["errors"][0]
    assert not (tmp_path / "raw" / f"date={DAY}").exists()
    assert snapshot(tmp_path / "landing") == before
    assert visible_temporaries(tmp_path) == []


def test_a_gzip_compressed_csv_is_read_as_what_it_is_and_kept_compressed(tmp_path):
    data = gzip.compress(csv_text(30).encode())
    path = land(tmp_path / "landing", DAY, "transactions.csv.gz", data)
    land(tmp_path / "landing", DAY, "more.csv", day_frame(rows=5, first_id=30))
    result = ingest_partition(load_settings({"MLOPS_DATA_ROOT": str(tmp_path)}), DAY)
    rows, unparsed = read_raw_partition(result.raw_uri)
    assert (result.rows, len(unparsed)) == (35, 0)
    from_gz = rows[rows[SOURCE_FILE] == str(path)]
    columns = list(TRANSACTION_DTYPES)
    expected = day_frame(rows=30)[columns].astype(TRANSACTION_DTYPES)
    pd.testing.assert_frame_equal(from_gz[columns].reset_index(drop=True), expected)
    raw = published(tmp_path / "raw" / f"date={DAY}")
    assert (raw / "landing-transactions.csv.gz").read_bytes() == data


def test_a_nul_byte_after_the_header_is_a_bad_line_not_a_bad_file(tmp_path):
    text = HEADER + "\n" + csv_text(3).split("\n", 1)[1]
    land(tmp_path / "landing", DAY, "t.csv", text.encode() + b"\x00\x00garbage\n")
    result = ingest_partition(load_settings({"MLOPS_DATA_ROOT": str(tmp_path)}), DAY)
    assert (result.rows, result.unparsed_lines) == (3, 1)
