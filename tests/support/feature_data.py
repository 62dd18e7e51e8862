"""A small simulated data root with everything the feature store reads: validated
partitions, the offline feature partitions and the day-end snapshots.

50 days of 300 cards and 600 terminals; snapshots from day 22 on, enough for training
windows that start on day 24 or later and for materialising any later day.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from mlops import zones
from mlops.features.offline import build_feature_partitions
from mlops.features.snapshots import build_snapshot_partitions
from mlops.settings import Settings, load_settings
from mlops.simulator import SimulationConfig, simulate
from mlops.training.sets import COLUMNS
from tests.support.published import published
from tests.support.reference_features import publish_validated

SAMPLE = SimulationConfig(n_customers=300, n_terminals=600, n_days=50, seed=11)
FIRST, LAST = SAMPLE.start_date, SAMPLE.day(SAMPLE.n_days - 1)
SNAPSHOT_DAYS = range(22, SAMPLE.n_days)


def day(index: int) -> date:
    return SAMPLE.day(index)


def settings_for(root: Path, **env: str) -> Settings:
    """Local-profile settings on ``root``; ``env`` adds MLOPS_* variables (without prefix)."""
    values = {"MLOPS_DATA_ROOT": str(root), "MLOPS_HISTORY_START": FIRST.isoformat()}
    return load_settings(values | {f"MLOPS_{k}": v for k, v in env.items()})


def transactions() -> pd.DataFrame:
    return simulate(SAMPLE)


def publish_all(root: Path, frame: pd.DataFrame, snapshot_days: range = SNAPSHOT_DAYS) -> Path:
    """Validated partitions of every day, feature partitions, and the snapshots of
    ``snapshot_days``, as transactions_daily would have left them."""
    validated = str(root / "validated")
    publish_validated(root / "validated", frame, FIRST, LAST)
    build_feature_partitions(
        FIRST, LAST, validated, str(root / zones.DAILY_FEATURES), history_start=FIRST
    )
    for index in snapshot_days:
        build_snapshot_partitions(
            day(index), validated, str(root / zones.SNAPSHOTS), history_start=FIRST
        )
    return root


def offline_rows(root: Path, first: date, end: date) -> pd.DataFrame:
    """The feature partitions of ``[first, end)`` in the training set's columns."""
    days = [first + timedelta(days=i) for i in range((end - first).days)]
    parts = [
        pq.read_table(
            published(root / zones.DAILY_FEATURES / f"date={d}") / "data.parquet"
        ).to_pandas()
        for d in days
    ]
    return pd.concat(parts, ignore_index=True)[list(COLUMNS)]
