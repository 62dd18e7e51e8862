"""Landing files of one day -> the day's raw partition, with types normalised and lineage kept.

The raw partition holds the landing files byte for byte (``landing-<name>``), the normalised
table (``transactions.parquet``, one row per parsed record, with the file and row it came
from) and the lines that could not be parsed at all (``unparsed_lines.parquet``). A file that
cannot be read as a whole (empty, truncated, not Parquet) stops the run: it is copied to the
day's quarantine with the reason and nothing is published to raw. Landing is never touched.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlops.io import storage
from mlops.schema import (
    SOURCE_FILE,
    SOURCE_ROW,
    TRANSACTION_DTYPES,
    partition_name,
)
from mlops.settings import Settings
from mlops.zones import QUARANTINE, RAW

INGEST_ERROR = "_ingest_error"
RAW_TABLE = "transactions.parquet"
UNPARSED_TABLE = "unparsed_lines.parquet"
UNPARSED_COLUMNS = [SOURCE_FILE, SOURCE_ROW, "line", "reason"]
READERS = (".parquet", ".csv")


class LandingFileError(ValueError):
    """A landing file or partition cannot be ingested; the message names the file and why."""


@dataclass(frozen=True)
class ParsedFile:
    frame: pd.DataFrame
    unparsed: pd.DataFrame


@dataclass(frozen=True)
class IngestResult:
    day: str
    raw_uri: str
    rows: int
    unparsed_lines: int
    files: tuple[str, ...]

    def to_xcom(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "raw_uri": self.raw_uri,
            "rows": self.rows,
            "unparsed_lines": self.unparsed_lines,
            "files": list(self.files),
        }


def read_landing_file(uri: str, data: bytes) -> ParsedFile:
    """Parse one landing file into typed columns; raise LandingFileError if it is unreadable."""
    if not data:
        raise LandingFileError(f"{uri}: empty file (0 bytes)")
    if uri.endswith(".parquet"):
        try:
            frame = pq.read_table(pa.BufferReader(data)).to_pandas()
        except (pa.ArrowException, OSError) as err:
            raise LandingFileError(f"{uri}: not a readable Parquet file ({err})") from None
        frame.insert(0, SOURCE_ROW, range(1, len(frame) + 1))
        unparsed = pd.DataFrame(columns=UNPARSED_COLUMNS)
    elif uri.endswith(".csv"):
        frame, unparsed = _read_csv(uri, data)
    else:
        raise LandingFileError(f"{uri}: unsupported file type; expected one of {READERS}")
    frame = normalise(frame)
    frame.insert(0, SOURCE_FILE, uri)
    unparsed[SOURCE_FILE] = uri
    return ParsedFile(frame=frame, unparsed=unparsed[UNPARSED_COLUMNS])


def _read_csv(uri: str, data: bytes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read CSV line by line so that a malformed line is kept with its number, not dropped."""
    lines = data.decode("utf-8", errors="replace").splitlines()
    rows = list(csv.reader(lines))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise LandingFileError(f"{uri}: no header line")
    header = [cell.strip() for cell in rows[0]]
    good, good_numbers, bad = [], [], []
    for number, (fields, text) in enumerate(zip(rows[1:], lines[1:], strict=False), start=2):
        if not fields:
            continue
        if len(fields) == len(header):
            good.append(fields)
            good_numbers.append(number)
        else:
            reason = f"{len(fields)} fields where the header has {len(header)}"
            bad.append({SOURCE_ROW: number, "line": text, "reason": reason})
    frame = pd.DataFrame(good, columns=header, dtype="string")
    frame.insert(0, SOURCE_ROW, good_numbers)
    return frame, pd.DataFrame(bad, columns=[SOURCE_ROW, "line", "reason"])


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Coerce known columns to the schema's types; a value that does not fit becomes null and
    the row records why in ``_ingest_error``. Unknown columns pass through for validation."""
    out = frame.copy()
    errors = pd.Series("", index=out.index, dtype="string")
    for column, dtype in TRANSACTION_DTYPES.items():
        if column not in out.columns:
            continue
        original = out[column]
        coerced = _coerce(original, dtype)
        failed = original.notna() & (original.astype("string").str.strip() != "") & coerced.isna()
        if failed.any():
            note = (
                column
                + ": "
                + original[failed].astype("string").str.slice(0, 40)
                + " is not "
                + dtype
            )
            errors[failed] = errors[failed].str.cat(note, sep="; ").str.lstrip("; ")
        out[column] = coerced
    out[INGEST_ERROR] = errors
    return out


def _coerce(values: pd.Series, dtype: str) -> pd.Series:
    if dtype.startswith("datetime"):
        if pd.api.types.is_datetime64_any_dtype(values):
            parsed = (
                values if values.dt.tz is None else values.dt.tz_convert("UTC").dt.tz_localize(None)
            )
        else:
            parsed = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
            parsed = parsed.dt.tz_localize(None)
        return parsed.astype("datetime64[us]")
    numbers = pd.to_numeric(values, errors="coerce")
    if dtype == "float64":
        return numbers.astype("float64")
    whole = numbers.where(numbers.isna() | (numbers == numbers.round()))
    return whole.astype("Int64") if whole.isna().any() else whole.astype("int64")


def ingest_partition(
    settings: Settings, day: str, storage_options: storage.StorageOptions | None = None
) -> IngestResult:
    """The ingestion stage: read every data file of the day's landing partition and publish
    the raw partition (unreadable files go to the quarantine zone)."""
    landing_uri = settings.landing_uri
    raw_uri, quarantine_uri = settings.zone(RAW), settings.zone(QUARANTINE)
    landing_part = storage.join(landing_uri, partition_name(day))
    uris = storage.list_data_files(landing_part, storage_options)
    if not uris:
        raise LandingFileError(
            f"{landing_part}: no data files ({', '.join(READERS)}) in the partition"
        )
    contents = {uri: storage.read_bytes(uri, storage_options) for uri in uris}
    parsed, problems = [], []
    for uri, data in contents.items():
        try:
            parsed.append(read_landing_file(uri, data))
        except LandingFileError as err:
            problems.append(str(err))
    raw_files = {f"landing-{_basename(uri)}": data for uri, data in contents.items()}
    lineage = {
        "day": day,
        "landing": {uri: storage.sha256(data) for uri, data in contents.items()},
    }
    if problems:
        reasons = {"day": day, "rule": "unreadable_file", "errors": problems}
        storage.publish_partition(
            storage.join(quarantine_uri, partition_name(day)),
            {**raw_files, "reasons.json": storage.json_bytes(reasons)},
            metadata={**lineage, "batch_failed": True, "rules": ["unreadable_file"]},
            options=storage_options,
        )
        raise LandingFileError("; ".join(problems) + " (file copied to quarantine; landing kept)")
    table = pd.concat([p.frame for p in parsed], ignore_index=True)
    for column, dtype in TRANSACTION_DTYPES.items():
        if column in table.columns:  # a column absent from one file turns to float in concat
            table[column] = _coerce(table[column], dtype)
    unparsed = pd.concat([p.unparsed for p in parsed], ignore_index=True)
    raw_part = storage.join(raw_uri, partition_name(day))
    storage.publish_partition(
        raw_part,
        {
            **raw_files,
            RAW_TABLE: storage.parquet_bytes(table),
            UNPARSED_TABLE: storage.parquet_bytes(unparsed),
        },
        metadata={**lineage, "rows": len(table), "unparsed_lines": len(unparsed)},
        options=storage_options,
    )
    return IngestResult(day, raw_part, len(table), len(unparsed), tuple(uris))


def read_raw_partition(
    raw_partition_uri: str, storage_options: storage.StorageOptions | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The normalised rows and the unparsed lines of a published raw partition."""
    if storage.read_manifest(raw_partition_uri, storage_options) is None:
        raise LandingFileError(f"{raw_partition_uri}: raw partition not published (no manifest)")
    rows, unparsed = (
        storage.read_parquet(storage.join(raw_partition_uri, name), storage_options)
        for name in (RAW_TABLE, UNPARSED_TABLE)
    )
    return rows, unparsed


def _basename(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]
