"""The one error ingestion raises: a landing file that cannot be taken as the schema says."""

from __future__ import annotations

UNREADABLE_FILE = "unreadable_file"
# A typed column (Parquet) whose type is not the schema's: the whole file is refused.
COLUMN_TYPES = "column_types"
# Locale-formatted numbers in a CSV (``1,234.56``, ``12,50``): the whole file is refused.
NUMBER_FORMAT = "number_format"
# Bytes that are not the format the file's name declares (compressed, binary, UTF-16 without
# a byte-order mark, a header in another encoding): the whole file is refused.
FILE_FORMAT = "file_format"


class LandingFileError(ValueError):
    """A landing file or partition cannot be ingested; the message names the file and why,
    ``rule`` names the check it broke (recorded in the quarantine's ``reasons.json``)."""

    def __init__(self, message: str, rule: str = UNREADABLE_FILE) -> None:
        super().__init__(message)
        self.rule = rule
