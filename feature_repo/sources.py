"""Where the feature views read from: the day-end snapshots that transactions_daily writes.

``<data root>/features/snapshots/{customer,terminal}/date=D/v=<version>/data.parquet`` hold
one row per entity as of the end of day D, stamped ``event_timestamp`` = D + 1 at 00:00 UTC
(see ``mlops.features.snapshots``). A glob over the day partitions is one source for DuckDB
(``read_parquet`` expands it), so a new day needs no new definition.

The glob reaches every version folder of a day, where other readers follow the day's
``_SUCCESS`` marker to one version (``mlops.io.partitions``): a registered source is one
static path, which cannot follow a marker. A publish removes the versions its marker no
longer names right after switching it, and the code that calls Feast on these sources
(``materialize_day``, the training sets) first checks that each day it needs holds exactly
its marker's version (``mlops.features.snapshots.published_snapshots``).

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


def snapshot_source(entity: str, description: str) -> FileSource:
    """The day-end snapshots of one entity, every published day at once."""
    return FileSource(
        name=f"{entity}_snapshots",
        path=f"{SNAPSHOTS}/{entity}/date=*/v=*/data.parquet",
        timestamp_field="event_timestamp",
        description=description,
        tags={"layout": "date-partitioned", "writer": "transactions_daily"},
        owner=OWNER,
    )


customer_snapshots = snapshot_source(
    "customer", "Per card, counts and integer cents of the whole days before the next day."
)
terminal_snapshots = snapshot_source(
    "terminal", "Per terminal, transaction counts and fraud rates of matured whole days."
)
