"""Feature-store checks shared by the SQLite tests and the Redis / S3 integration tests: a
data root with its own Feast state, what the online store holds, and the skew check."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd

from mlops import zones
from mlops.features.names import FEATURE_SERVICE, FEATURES
from mlops.features.online import materialize_day, online_features
from mlops.features.store import feature_store
from mlops.training.sets import build_training_set


def fresh_root(root: Path, folder: Path) -> Path:
    """A data root that shares the published partitions but has its own Feast state."""
    folder.mkdir()
    for zone in ("validated", "features"):
        (folder / zone).symlink_to(root / zone, target_is_directory=True)
    return folder


def online_rows(store, customers, terminals) -> pd.DataFrame:
    """What the online store holds for these entities, as Feast returns it."""
    rows = [
        {"CUSTOMER_ID": int(c), "TERMINAL_ID": int(t)}
        for c, t in zip(customers, terminals, strict=True)
    ]
    response = store.get_online_features(
        features=store.get_feature_service(FEATURE_SERVICE),
        entity_rows=rows,
        full_feature_names=True,
    )
    return response.to_df()


def check_skew(settings, materialised) -> int:
    """Materialise ``materialised``, then serve every transaction of the next day and assert
    that the served features equal its training row; returns the number of rows checked."""
    store = feature_store(settings)
    materialize_day(settings, materialised, store=store)
    next_day = materialised + timedelta(days=1)
    training = build_training_set(
        store,
        start=next_day,
        end=next_day + timedelta(days=1),
        validated_uri=settings.zone(zones.VALIDATED),
        snapshots_uri=settings.zone(zones.SNAPSHOTS),
    ).frame
    statuses = set()
    for tx in training.itertuples(index=False):
        served = online_features(
            store,
            tx.CUSTOMER_ID,
            tx.TERMINAL_ID,
            {"TX_DATETIME": tx.TX_DATETIME, "TX_AMOUNT": tx.TX_AMOUNT},
        )
        expected = {name: getattr(tx, name) for name in FEATURES}
        assert served.features == expected, (tx, served)
        assert [type(v) for v in served.features.values()] == [
            int if "NB_TX" in n or "DURING" in n else float for n in FEATURES
        ]
        statuses |= set(served.status.values())
    assert "current" in statuses and len(training) > 300
    return len(training)
