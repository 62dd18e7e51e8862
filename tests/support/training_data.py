"""A data root where model_training can run: validated partitions, day-end snapshots and the
Feast registry, as transactions_daily leaves them (built directly, without Airflow)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from mlops import zones
from mlops.features.snapshots import build_snapshot_partitions
from mlops.features.store import apply_definitions
from mlops.settings import load_settings
from mlops.simulator import SimulationConfig, simulate
from tests.support.reference_features import publish_validated

# ~4,000 transactions and ~35 frauds a day: a 7-day evaluation window holds enough frauds
# (policy.min_frauds = 100) for the gate to decide rather than ask for a review. 78 days: the
# windows of monday(0..2) start after the first settled day (FIRST + 37, 2018-05-08).
CONFIG = SimulationConfig(n_customers=2000, n_terminals=4000, n_days=78, seed=5)
FIRST = CONFIG.start_date
LAST = CONFIG.day(CONFIG.n_days - 1)


def environment(root: Path) -> dict[str, str]:
    return {
        "MLOPS_DATA_ROOT": str(root),
        "MLOPS_HISTORY_START": FIRST.isoformat(),
        "MLOPS_MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
    }


def build_data_root(root: Path) -> Path:
    frame = simulate(CONFIG)
    publish_validated(root / "validated", frame, FIRST, LAST)
    for offset in range((LAST - FIRST).days + 1):
        build_snapshot_partitions(
            FIRST + timedelta(days=offset),
            str(root / "validated"),
            str(root / zones.SNAPSHOTS),
            history_start=FIRST,
        )
    apply_definitions(load_settings(environment(root)))
    return root


def monday(week: int) -> date:
    """A Monday inside the data whose window (21 days + 7-day delay before it) has settled
    features: it starts on or after 2018-05-08, so model_training does not refuse it."""
    return date(2018, 6, 11) + timedelta(weeks=week)


UNSETTLED_MONDAY = date(2018, 5, 7)  # trains on 2018-04-09..15: windows truncated
