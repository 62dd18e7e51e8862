"""What a landing file's bytes are, checked before they are read as what its name says.

Upstream slips are common: a gzip-compressed export named ``.csv``, a zip archive, a
Parquet file with the wrong suffix, binary junk, a UTF-16 file without its byte-order mark.
Read as text, such bytes give garbage column names (or a crash deep in pyarrow); so a file
whose bytes are not the declared format is refused whole (rule ``file_format``), naming the
file and what its bytes are, and ingestion keeps it in the day's quarantine like any other
refused file. ``.csv.gz`` is a declared format: gzip is undone here and the text read as
CSV; the raw zone keeps the compressed bytes as landed.
"""

from __future__ import annotations

import codecs
import gzip
import re
import zlib

from mlops.ingestion.errors import FILE_FORMAT, LandingFileError

CSV, PARQUET = "csv", "parquet"
SUFFIXES = {".parquet": PARQUET, ".csv": CSV, ".csv.gz": CSV}
_NAMES = {CSV: "CSV text", PARQUET: "Parquet"}
# Leading bytes of formats that are never CSV text (and never Parquet, but for PAR1).
MAGIC: tuple[tuple[re.Pattern[bytes], str], ...] = tuple(
    (re.compile(pattern, re.DOTALL), what)
    for pattern, what in (
        (rb"\x1f\x8b", "gzip-compressed"),
        (rb"PK\x03\x04|PK\x05\x06", "a zip archive"),
        (rb"BZh[1-9]1AY&SY", "bzip2-compressed"),
        (rb"\xfd7zXZ\x00", "xz-compressed"),
        (rb"\x28\xb5\x2f\xfd", "zstd-compressed"),
        (rb"7z\xbc\xaf\x27\x1c", "a 7z archive"),
        (rb"PAR1", "Parquet"),
    )
)
_SNIFF = 64 * 1024  # a header line is shorter than this
_LINE_END = re.compile(rb"\r|\n")


def declared_format(uri: str, data: bytes) -> tuple[str, bytes]:
    """(``csv`` or ``parquet``, the bytes to read as that); raise LandingFileError (rule
    ``file_format``) when the bytes are something else, ``unreadable_file`` when the type
    is not one ingestion reads."""
    kind = next((k for suffix, k in SUFFIXES.items() if uri.endswith(suffix)), None)
    if kind is None:
        raise LandingFileError(f"{uri}: unsupported file type; expected one of {tuple(SUFFIXES)}")
    if uri.endswith(".gz"):
        data = _gunzip(uri, data)
    found = _magic(data)
    if found is not None and not (kind == PARQUET and found == "Parquet"):
        raise _refused(uri, f"the bytes are {found}, not {_NAMES[kind]}{_hint(found, uri)}")
    if kind == CSV:
        _refuse_binary(uri, data)
    return kind, data


def _magic(data: bytes) -> str | None:
    return next((what for pattern, what in MAGIC if pattern.match(data)), None)


def _hint(found: str, uri: str) -> str:
    if found == "gzip-compressed" and uri.endswith(".csv"):
        return " (name it .csv.gz to have it read as compressed CSV)"
    return ""


def _gunzip(uri: str, data: bytes) -> bytes:
    if not data.startswith(b"\x1f\x8b"):
        raise _refused(uri, "named .gz but the bytes are not gzip-compressed")
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise _refused(uri, f"not a readable gzip file ({err})") from None


def _refuse_binary(uri: str, data: bytes) -> None:
    """The header line of text has no NUL byte; UTF-16 or UTF-32 without a byte-order mark,
    and binary, do. Only the header is judged: a NUL in a later line is a torn or garbled
    line, kept unparsed with its number (``mlops.ingestion.csv_files``)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not data.startswith(
        codecs.BOM_UTF32_LE
    ):
        return  # UTF-16 with its BOM is read as what it is (mlops.ingestion.csv_files)
    head = _LINE_END.split(data[:_SNIFF], maxsplit=1)[0]
    if 0 not in head:
        return
    even, odd = (_share_of_nuls(head[start::2]) for start in (0, 1))
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        what = "UTF-32 text"
    elif max(even, odd) > 0.4 and min(even, odd) < 0.1:  # ASCII in UTF-16: every other byte
        what = "UTF-16 text without a byte-order mark"
    else:
        what = "binary data, not text"
    at = head.index(0)
    raise _refused(uri, f"NUL bytes in the header (the first at byte {at}): {what}; write UTF-8")


def _share_of_nuls(data: bytes) -> float:
    return data.count(0) / max(1, len(data))


def _refused(uri: str, reason: str) -> LandingFileError:
    return LandingFileError(f"{uri}: {FILE_FORMAT}: {reason}", rule=FILE_FORMAT)


def refuse_header(uri: str, header: list[str]) -> None:
    """A header that is not clean text names no column: refuse the file (the bytes were
    another encoding, or binary that happened to hold no NUL)."""
    for cell in header:
        bad = re.search("[\udc80-\udcff]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", cell)
        if bad is None:
            continue
        char = bad.group()
        if "\udc80" <= char <= "\udcff":
            reason = f"byte 0x{ord(char) - 0xDC00:02x} is not UTF-8 (another encoding?)"
        else:
            reason = f"control character 0x{ord(char):02x} (binary data?)"
        raise _refused(uri, f"the header line is not text: {reason}")


__all__ = ["CSV", "PARQUET", "SUFFIXES", "declared_format", "refuse_header"]
