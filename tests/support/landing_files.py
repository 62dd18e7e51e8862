"""Hand-made landing files for ingestion and validation tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

HEADER = "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD,TX_FRAUD_SCENARIO"


def day_frame(day: str = "2018-04-01", rows: int = 50, first_id: int = 0) -> pd.DataFrame:
    """A clean day of transactions, one every 10 minutes from midnight."""
    times = pd.Timestamp(day) + pd.to_timedelta(range(0, rows * 600, 600), unit="s")
    return pd.DataFrame(
        {
            "TRANSACTION_ID": range(first_id, first_id + rows),
            "TX_DATETIME": times.astype("datetime64[us]"),
            "CUSTOMER_ID": [i % 7 for i in range(rows)],
            "TERMINAL_ID": [i % 11 for i in range(rows)],
            "TX_AMOUNT": [round(10 + i * 1.5, 2) for i in range(rows)],
            "TX_FRAUD": [int(i % 10 == 0) for i in range(rows)],
            "TX_FRAUD_SCENARIO": [int(i % 10 == 0) for i in range(rows)],
        }
    )


def land(landing: Path, day: str, name: str, content: bytes | pd.DataFrame) -> Path:
    """Write one landing file and the day's _SUCCESS marker."""
    folder = landing / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(content, pd.DataFrame):
        if name.endswith(".csv"):
            content.to_csv(path, index=False)
        else:
            content.to_parquet(path, index=False, coerce_timestamps="us")
    else:
        path.write_bytes(content)
    (folder / "_SUCCESS").write_bytes(b"")
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes, to prove nothing was changed."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def visible_temporaries(root: Path) -> list[str]:
    """Temporary or replaced files a publication left visible under ``root`` (none should be)."""
    return [str(p) for p in root.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]
