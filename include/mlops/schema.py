"""The transactions table: column names and the types every zone after landing holds."""

from __future__ import annotations

TRANSACTION_DTYPES: dict[str, str] = {
    "TRANSACTION_ID": "int64",
    "TX_DATETIME": "datetime64[us]",
    "CUSTOMER_ID": "int64",
    "TERMINAL_ID": "int64",
    "TX_AMOUNT": "float64",
    "TX_FRAUD": "int64",
    "TX_FRAUD_SCENARIO": "int64",
}
TRANSACTION_COLUMNS: tuple[str, ...] = tuple(TRANSACTION_DTYPES)

# Lineage columns added at ingestion so that every error can name the file and the row.
SOURCE_FILE = "_source_file"
SOURCE_ROW = "_source_row"
FAILED_RULES = "_failed_rules"

SUCCESS_MARKER = "_SUCCESS"
MANIFEST = "_manifest.json"


def partition_name(day: str) -> str:
    """Hive-style folder name of a daily partition; ``day`` is ``YYYY-MM-DD``."""
    return f"date={day}"
