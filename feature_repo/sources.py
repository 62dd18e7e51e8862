"""Where the feature views read from: the day-end snapshots that transactions_daily writes.

``<data root>/features/snapshots/{customer,terminal}/date=D/data.parquet`` hold one row per
entity as of the end of day D, stamped ``event_timestamp`` = D + 1 at 00:00 UTC (see
``mlops.features_snapshot``). A glob over the day partitions is one source for DuckDB
(``read_parquet`` expands it), so a new day needs no new definition.

Feast definitions are static, so the data root comes from the environment when this file
is imported, with the same defaults as ``mlops.settings`` (a test holds them equal).
"""

from __future__ import annotations

import os
from pathlib import Path

from entities import OWNER
from feast import FileSource


def data_root() -> str:
    root = os.environ.get("MLOPS_DATA_ROOT")
    if root:
        return root
    if os.environ.get("MLOPS_PROFILE") == "production":
        return "s3://mlops-fraud/data"
    return str(Path.home() / "mlops-data")


SNAPSHOTS = f"{data_root().rstrip('/')}/features/snapshots"


def snapshot_glob(entity: str) -> str:
    return f"{SNAPSHOTS}/{entity}/date=*/data.parquet"


customer_snapshots = FileSource(
    name="customer_snapshots",
    path=snapshot_glob("customer"),
    timestamp_field="event_timestamp",
    description="Per card, counts and integer cents of the whole days before the next day.",
    tags={"layout": "date-partitioned", "writer": "transactions_daily"},
    owner=OWNER,
)

terminal_snapshots = FileSource(
    name="terminal_snapshots",
    path=snapshot_glob("terminal"),
    timestamp_field="event_timestamp",
    description="Per terminal, transaction counts and fraud rates of matured whole days.",
    tags={"layout": "date-partitioned", "writer": "transactions_daily"},
    owner=OWNER,
)
