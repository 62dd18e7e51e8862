"""A CSV landing file: text as real producers write it, typed to the schema row by row.

Encodings: UTF-8, with or without a byte-order mark (Excel's "CSV UTF-8" writes one), and
UTF-16 when a BOM says so; line ends ``\\n``, ``\\r\\n`` or ``\\r``; quoted fields (a quoted
comma or line break stays in its field); empty lines, trailing ones included, are skipped.
A line with bytes that are not UTF-8 (a Latin-1 export, a torn write) cannot be read
reliably, so it is kept unparsed with its line number and the offending byte, like a line
with the wrong number of fields; too many such lines reject the day (bad-row tolerance).
A header that is not text (another encoding, binary) refuses the file (rule ``file_format``,
``mlops.ingestion.file_bytes``, which also refuses compressed or binary bytes up front).

Numbers must be plain (``1234.56``). A number written the way a locale prints it
(``1,234.56``, ``12,50``, ``1 234,5``, ``1'234.50``) refuses the whole file (rule
``number_format``) rather than its rows: ``1,234`` is 1234 in one locale and 1.234 in
another, so parsing would guess, and only the large amounts carry a separator, so
quarantining those rows one by one would quietly remove the scenario-1 frauds. Any other
value that does not fit its column (``twelve``) becomes null and its row says why in
``_ingest_error``; validation then quarantines it (``<column>_not_null``).
"""

from __future__ import annotations

import codecs
import csv
import re

import pandas as pd

from mlops.ingestion.errors import NUMBER_FORMAT, LandingFileError
from mlops.ingestion.file_bytes import refuse_header
from mlops.schema import SOURCE_ROW, TRANSACTION_DTYPES

INGEST_ERROR = "_ingest_error"
_LINE_END = re.compile(r"\r\n|\r|\n")
_LOCALE_NUMBER = re.compile(r"^[+-]?\d{1,3}(?:[,.' \u00a0\u202f]\d{3})*(?:[,.]\d+)?$")
_UNDECODED = re.compile("[\udc80-\udcff]")
_EXAMPLES = 3


def decode(data: bytes) -> tuple[str, bool]:
    """The file's text and whether it was clean UTF-8/UTF-16; undecodable bytes are kept as
    lone surrogates (``surrogateescape``) so that their line can be named."""
    for bom, codec in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom) and not data.startswith(codecs.BOM_UTF32_LE):
            return data[len(bom) :].decode(codec, errors="surrogateescape"), True
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="surrogateescape"), False


def read_csv(uri: str, data: bytes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(typed rows with their line numbers and ``_ingest_error``, unparsed lines).

    A line number is the file's physical line where the record starts (header = line 1).
    """
    text, clean = decode(data)
    reader = csv.reader(line + "\n" for line in _LINE_END.split(text))
    header = [cell.strip() for cell in next(reader, [])]
    if not any(header):
        raise LandingFileError(f"{uri}: no header line")
    refuse_header(uri, header)
    good, good_numbers, bad = [], [], []
    consumed = reader.line_num
    for fields in reader:
        number, consumed = consumed + 1, reader.line_num
        if not fields:  # an empty line, e.g. the last one
            continue
        reason = None if clean else _undecoded(fields)
        if reason is None and len(fields) != len(header):
            reason = f"{len(fields)} fields where the header has {len(header)}"
        if reason is None:
            good.append(fields)
            good_numbers.append(number)
        else:
            line = ",".join(fields).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            bad.append({SOURCE_ROW: number, "line": line, "reason": reason})
    frame = pd.DataFrame(good, columns=header, dtype="string")
    frame.insert(0, SOURCE_ROW, pd.array(good_numbers, dtype="int64"))
    return normalise(uri, frame), pd.DataFrame(bad, columns=[SOURCE_ROW, "line", "reason"])


def _undecoded(fields: list[str]) -> str | None:
    for field in fields:
        found = _UNDECODED.search(field)
        if found:
            byte = ord(found.group()) - 0xDC00
            return f"byte 0x{byte:02x} is not UTF-8 (the file must be UTF-8; Latin-1 export?)"
    return None


def normalise(uri: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Type the schema's columns; a value that does not fit becomes null and its row says
    why in ``_ingest_error``; locale-formatted numbers refuse the file (module docstring)."""
    out = frame.copy()
    errors = pd.Series(pd.NA, index=out.index, dtype="string")
    for column, dtype in TRANSACTION_DTYPES.items():
        if column not in out.columns:
            continue
        text = out[column].str.strip()
        typed = _parse(text, dtype)
        failed = text.notna() & (text != "") & typed.isna()
        if failed.any():
            if dtype != "datetime64[us]":
                _refuse_locale_numbers(uri, column, text[failed], out.loc[failed, SOURCE_ROW])
            note = column + ": " + text[failed].str.slice(0, 40) + " is not " + dtype
            errors[failed] = errors[failed].str.cat(note, sep="; ", na_rep="").str.lstrip("; ")
        out[column] = typed
    out[INGEST_ERROR] = errors
    return out


def _parse(text: pd.Series, dtype: str) -> pd.Series:
    if dtype.startswith("datetime"):
        parsed = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
        return parsed.dt.tz_localize(None).astype("datetime64[us]")
    numbers = pd.to_numeric(text, errors="coerce")
    if dtype == "float64":
        return numbers.astype("float64")
    whole = numbers.where(numbers.isna() | (numbers == numbers.round()))
    return whole.astype("Int64") if whole.isna().any() else whole.astype("int64")


def _refuse_locale_numbers(uri: str, column: str, values: pd.Series, rows: pd.Series) -> None:
    locale = values.str.fullmatch(_LOCALE_NUMBER).fillna(False).to_numpy(dtype=bool)
    if not locale.any():
        return
    examples = ", ".join(
        f"{v!r} (line {r})"
        for v, r in zip(values[locale][:_EXAMPLES], rows[locale][:_EXAMPLES], strict=True)
    )
    raise LandingFileError(
        f"{uri}: {NUMBER_FORMAT}: {column} has {int(locale.sum()):,} locale-formatted "
        f"number(s), e.g. {examples}; write plain numbers (1234.56): digit grouping and "
        "decimal commas are ambiguous, and the file is refused whole because only large "
        "values carry them",
        rule=NUMBER_FORMAT,
    )
