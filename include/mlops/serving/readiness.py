"""What the service waits for before it is ready, other than its models: the feature store.

The service starts whether or not Feast's registry holds the ``fraud_model_v1`` feature
service yet (a fresh deployment, before the first ``feast apply``): it stays alive, answers
``/health`` 503 with the reason, and the registry poller calls ``check`` until the
definitions appear; then it is ready without a restart. An online store that is down is
not a reason to wait: its requests get 503 each, and it needs no restart when it is back.
On SQLite the service reads the online tables directly (``mlops.features.online_sqlite``)
and waits for those tables, which ``feast apply`` creates: Feast itself is never imported.
On Redis it waits for Feast's registry to hold the feature service, then reads the hashes
directly (``mlops.features.online_redis``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from mlops.features.online import OnlineStoreUnavailable, online_features
from mlops.features.serving import StaleSnapshotError
from mlops.scoring.score import ServingModels
from mlops.serving.holder import ModelHolder
from mlops.settings import Settings

log = logging.getLogger(__name__)


def warm_up(store: Any) -> None:
    """One lookup before the service says it is ready: the first imports Feast's online
    path and reads its registry (seconds), which no client request should pay for. Raises
    when the feature service cannot be read (not applied yet)."""
    tx = {"TX_DATETIME": datetime(2000, 1, 2), "TX_AMOUNT": 1.0}
    try:
        online_features(store, 0, 0, tx)
    except StaleSnapshotError:
        pass  # a row newer than the made-up time: the path is warm all the same
    except OnlineStoreUnavailable:  # /predict answers 503 until it is back; no restart needed
        log.warning("online store unavailable at start-up", exc_info=True)


class FeatureSource:
    """The Feast store the service reads, once its feature service can be read."""

    def __init__(self, settings: Settings, store: Any = None) -> None:
        self._settings = settings
        self._given = store
        self.store: Any = None
        self.reader: Any = None  # mlops.features.online_sqlite's reader of the same store
        self.problem: str | None = "the feature store has not been opened yet"

    @property
    def local(self) -> bool:
        """Whether reads stay on this host (the direct SQLite reader): no network wait."""
        return bool(getattr(self.reader, "local", False))

    def check(self) -> bool:
        """Open the store and warm it up unless that is done; True when usable. A failed
        try is made again with a fresh store: an open one caches the registry it read."""
        if self.problem is None:
            return True
        from mlops.features.online_redis import redis_reader
        from mlops.features.online_sqlite import settings_reader, sqlite_reader
        from mlops.features.store import feature_store

        try:
            # SQLite: read directly, Feast never imported; Redis: Feast's registry read and
            # its path warmed up, then the hashes read directly (Feast for another layout)
            reader = None if self._given else settings_reader(self._settings)
            store = None
            if reader is None:
                store = self._given or feature_store(self._settings)
                warm_up(store)
                reader = sqlite_reader(store) or redis_reader(self._settings, store)
        except Exception as err:
            problem = f"feature store not usable: {type(err).__name__}: {err}"[:500]
            if problem != self.problem:
                log.warning("not ready: %s", problem)
            self.problem = problem
            return False
        self.reader = reader  # None: read through Feast
        self.store, self.problem = store, None
        how = f"direct reads, {type(reader).__name__}" if reader else "through Feast"
        log.info("feature store ready (%s)", how)
        return True


def not_ready_because(
    serving: ServingModels, holder: ModelHolder, features: FeatureSource
) -> list[str]:
    """Why ``serving`` (a snapshot of ``holder``) cannot answer; empty when it can."""
    reasons = []
    if not serving.ready:
        refused = serving.failed.get("champion")
        reasons.append(holder.error or refused or f"no champion alias on {holder.model_name} yet")
    if features.problem is not None:
        reasons.append(features.problem)
    return reasons


__all__ = ["FeatureSource", "not_ready_because", "warm_up"]
