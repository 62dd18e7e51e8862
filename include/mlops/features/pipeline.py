"""The nightly feature steps of ``transactions_daily``, one call per task.

``build_day_features`` publishes the day's feature partition (``daily`` definition, the one
trained and served) and the day-end snapshots the online store is filled from; both read
the validated partitions of the 38 days their windows reach and stop, naming the days,
when one is missing. ``materialize_day_features`` applies the Feast definitions (a no-op
when the registry already holds them) and materialises the day's snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops.features.inputs import DayLike, as_date
from mlops.features.offline import build_feature_partition
from mlops.features.online import MaterializationResult, materialize_day
from mlops.features.snapshots import build_snapshot_partitions
from mlops.features.store import apply_definitions, feature_store
from mlops.io import storage
from mlops.settings import Settings
from mlops.zones import DAILY_FEATURES, SNAPSHOTS, VALIDATED


@dataclass(frozen=True)
class DayFeatures:
    """The partitions one night published for a day."""

    day: str
    features_uri: str
    rows: int
    sha256: str
    customer_snapshot_uri: str
    terminal_snapshot_uri: str
    customers: int
    terminals: int
    input_days: int

    def to_xcom(self) -> dict[str, Any]:
        return dict(self.__dict__)


def build_day_features(
    settings: Settings, day: DayLike, storage_options: storage.StorageOptions | None = None
) -> DayFeatures:
    """The feature partition and the two snapshots of ``day``."""
    day = as_date(day)
    common = {
        "delay_days": settings.label_delay_days,
        "history_start": settings.history_start,
        "storage_options": storage_options,
    }
    features = build_feature_partition(
        day, settings.zone(VALIDATED), settings.zone(DAILY_FEATURES), definition="daily", **common
    )
    snapshots = build_snapshot_partitions(
        day, settings.zone(VALIDATED), settings.zone(SNAPSHOTS), **common
    )
    return DayFeatures(
        day=day.isoformat(),
        features_uri=features.uri,
        rows=features.rows,
        sha256=features.sha256,
        customer_snapshot_uri=snapshots.customer_uri,
        terminal_snapshot_uri=snapshots.terminal_uri,
        customers=snapshots.customers,
        terminals=snapshots.terminals,
        input_days=len(features.input_days),
    )


@dataclass(frozen=True)
class DayOnline:
    """What one night's materialisation did: the definitions it applied, the rows it wrote."""

    materialized: MaterializationResult
    definitions_changed: tuple[str, ...]

    def to_xcom(self) -> dict[str, Any]:
        return {
            **self.materialized.to_xcom(),
            "definitions_changed": list(self.definitions_changed),
        }


def materialize_day_features(
    settings: Settings, day: DayLike, storage_options: storage.StorageOptions | None = None
) -> DayOnline:
    """Apply the definitions if they changed, then load the day's snapshots online."""
    store = feature_store(settings)
    applied = apply_definitions(settings, store)
    result = materialize_day(settings, day, store=store, storage_options=storage_options)
    return DayOnline(materialized=result, definitions_changed=tuple(applied.changes))
