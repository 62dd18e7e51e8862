"""Publishing simulated days to the landing zone, one complete partition per day.

A partition is ``<landing>/date=YYYY-MM-DD/`` with the data file, ``_scenario.json`` (how the
day was produced) and, last, the empty ``_SUCCESS`` marker that the ingestion sensor waits
for. Each file is written atomically, and a marker left by an earlier run is removed before
anything is rewritten, so the marker is never present next to a half-replaced partition.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from mlops.io.storage import StorageOptions, filesystem, join, write_bytes_atomic, write_json_atomic
from mlops.schema import SUCCESS_MARKER, TRANSACTION_COLUMNS, partition_name
from mlops.simulator.config import SimulationConfig

FORMATS: tuple[str, ...] = ("parquet", "csv")
SCENARIO_FILE = "_scenario.json"
DATA_FILE_STEM = "transactions"
CSV_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


def encode(frame: pd.DataFrame, fmt: str) -> bytes:
    """File bytes of one day; parquet keeps microsecond timestamps (no nanosecond coercion)."""
    if fmt == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False, engine="pyarrow", coerce_timestamps="us")
        return buffer.getvalue()
    if fmt == "csv":
        return frame.to_csv(index=False, date_format=CSV_DATETIME_FORMAT).encode()
    raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")


def day_indices(frame: pd.DataFrame, config: SimulationConfig) -> np.ndarray:
    """0-based simulation day of every row, from its timestamp."""
    start = np.datetime64(config.start_date.isoformat(), "us")
    elapsed = frame["TX_DATETIME"].to_numpy(dtype="datetime64[us]") - start
    return (elapsed // np.timedelta64(1, "D")).astype(np.int64)


def scenario_record(frame: pd.DataFrame, config: SimulationConfig, day: int) -> dict[str, Any]:
    """What a reader needs to trust and interpret the partition without the simulator."""
    return {
        "config": config.to_dict(),
        "day": config.day(day).isoformat(),
        "day_index": day,
        "rows": len(frame),
        "frauds": int(frame["TX_FRAUD"].sum()),
        "drift_active": config.drift != "none" and day >= config.drift_start_day,
    }


def _remove_marker(marker_uri: str, options: StorageOptions | None) -> None:
    fs, path = filesystem(marker_uri, options)
    if fs.exists(path):
        fs.rm(path)


def _selected_days(days: Iterable[int] | None, config: SimulationConfig) -> list[int]:
    selected = list(range(config.n_days)) if days is None else sorted(set(days))
    outside = [d for d in selected if not 0 <= d < config.n_days]
    if outside:
        raise ValueError(f"days {outside} are outside the simulated range 0..{config.n_days - 1}")
    return selected


def write_landing(
    df: pd.DataFrame,
    landing_uri: str,
    config: SimulationConfig,
    fmt: str = "parquet",
    storage_options: StorageOptions | None = None,
    days: Iterable[int] | None = None,
) -> list[str]:
    """Write each selected day (0-based indices; all by default) and return partition URIs.

    A selected day without transactions still gets a partition with a header-only file, so
    the downstream sensor never waits forever for a quiet day.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    selected = _selected_days(days, config)
    frame = df.loc[:, list(TRANSACTION_COLUMNS)]
    positions = pd.Series(np.arange(len(frame))).groupby(day_indices(frame, config)).indices
    written = []
    for day in selected:
        part = frame.iloc[positions.get(day, np.empty(0, dtype=np.int64))]
        partition = join(landing_uri, partition_name(config.day(day).isoformat()))
        marker = join(partition, SUCCESS_MARKER)
        _remove_marker(marker, storage_options)
        write_bytes_atomic(
            join(partition, f"{DATA_FILE_STEM}.{fmt}"), encode(part, fmt), storage_options
        )
        write_json_atomic(
            join(partition, SCENARIO_FILE), scenario_record(part, config, day), storage_options
        )
        write_bytes_atomic(marker, b"", storage_options)
        written.append(partition)
    return written
