"""Day-end snapshots into the online store, and the served features read back from it.

``materialize_day(D)`` loads exactly the snapshot of day D: its rows carry
``event_timestamp`` = D + 1 00:00 UTC and Feast's ``materialize`` is asked for that one
instant (both bounds are inclusive), so a rerun or a backfill of D writes the same rows,
whatever else the offline tables hold. The online store keeps one row per entity, the
latest written, so days must not overwrite a later day: a day older than one already
materialised (the registry records the intervals) is skipped and says so. Otherwise rows are
written even when their timestamp equals the stored one, so a corrected rerun replaces them.

``online_features`` reads both snapshots through the ``fraud_model_v1`` service and hands
them to ``mlops.features.serving.request_features``, which adds the transaction being
scored and refuses a stale or future row: Feast does not apply the TTL to online reads.
A Redis that cannot be reached, or does not answer within ``MLOPS_REDIS_TIMEOUT_S``, is
reported with its URL (password hidden) as ``OnlineStoreUnavailable``, a
``ConnectionError``: transient, worth a retry.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mlops.features.inputs import DayLike, as_date
from mlops.features.names import FEATURE_SERVICE, FEATURES
from mlops.features.serving import request_features, transaction_time
from mlops.features.snapshots import published_snapshots
from mlops.features.sql_day import ENTITY_KEYS, SNAPSHOT_DAY
from mlops.features.store import (
    CUSTOMER_VIEW,
    ENTITY_VIEWS,
    FEATURE_VIEWS,
    REGISTRY_CACHE_TTL_S,
    TERMINAL_VIEW,
    feature_store,
    online_store_type,
)
from mlops.io import storage
from mlops.io.duckdb_s3 import enable_feast_s3_reads
from mlops.schema import partition_name
from mlops.settings import Settings
from mlops.zones import SNAPSHOTS

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore

    from mlops.features.online_sqlite import SqliteOnlineReader

# Per store: (when read, the feature service). Resolving a service from the registry costs
# about 4 ms (protobuf and type checks), several times the online read itself, so it is
# reused for as long as Feast keeps the registry itself cached.
_SERVICES: weakref.WeakKeyDictionary[Any, tuple[float, FeatureService]] = (
    weakref.WeakKeyDictionary()
)


class OnlineStoreUnavailable(ConnectionError):
    """The online store could not be reached; the message names it. Retrying may help."""


@dataclass(frozen=True)
class MaterializationResult:
    """What one day's materialisation did, small enough for XCom."""

    day: str
    snapshot_time: str
    online_store: str
    views: tuple[str, ...]  # the views written (none when a later day is already online)
    customers: int
    terminals: int
    seconds: float
    skipped_reason: str = ""

    def to_xcom(self) -> dict[str, Any]:
        return {**asdict(self), "views": list(self.views)}


@dataclass(frozen=True)
class OnlineFeatures:
    """The 15 model inputs of one transaction, and where their snapshots came from.

    ``status`` per entity: ``current`` (the previous day's snapshot), ``missing`` (the store
    has no row: no history) or ``quiet`` (an older row of zeros: no recent history)."""

    features: dict[str, int | float]
    status: dict[str, str]
    snapshot_days: dict[str, str | None]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def snapshot_time(day: DayLike) -> datetime:
    """The instant the snapshot of ``day`` becomes true: the start of the next day, UTC."""
    day = as_date(day)
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def store_label(store: FeatureStore) -> str:
    """The online store as an error message should name it (no password)."""
    online = store.config.online_store
    if online.type == "redis":
        address, *fields = online.connection_string.split(",")
        params = dict(field.split("=", 1) for field in fields if "=" in field)
        scheme = "rediss" if str(params.get("ssl")).lower() == "true" else "redis"
        return f"Redis {scheme}://{address}/{params.get('db', 0)}"
    return f"{online.type} at {getattr(online, 'path', '?')}"


def _timeout_s(store: FeatureStore) -> str:
    fields = store.config.online_store.connection_string.split(",")[1:]
    return dict(f.split("=", 1) for f in fields if "=" in f).get("socket_timeout", "?")


@contextmanager
def redis_reachable(label: str, timeout_s: str, doing: str) -> Iterator[None]:
    """Redis's timeout and connection errors as ``OnlineStoreUnavailable`` naming the store
    (``label``, no password), its timeout and what was being done."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    try:
        yield
    except RedisTimeoutError as err:
        raise OnlineStoreUnavailable(
            f"online store {label} did not answer within {timeout_s} s "
            f"(MLOPS_REDIS_TIMEOUT_S) while {doing} ({err}); check that Redis is up and "
            "responsive, then retry"
        ) from err
    except RedisConnectionError as err:
        raise OnlineStoreUnavailable(
            f"online store unreachable while {doing}: {label} ({err}); "
            "check that Redis is up and MLOPS_REDIS_URL points at it, then retry"
        ) from err


@contextmanager
def _reachable(store: FeatureStore, doing: str) -> Iterator[None]:
    if store.config.online_store.type != "redis":
        yield
        return
    with redis_reachable(store_label(store), _timeout_s(store), doing):
        yield


def _later_materialised(store: FeatureStore, view: str, instant: datetime) -> datetime | None:
    ends = [end for _, end in store.get_feature_view(view).materialization_intervals]
    latest = max(ends, default=None)
    return latest if latest is not None and latest > instant else None


def materialize_day(
    settings: Settings,
    day: DayLike,
    *,
    store: FeatureStore | None = None,
    storage_options: storage.StorageOptions | None = None,
) -> MaterializationResult:
    """Write the snapshots of ``day`` to the online store (the definitions must be applied)."""
    day = as_date(day)
    manifests = published_snapshots(
        settings.zone(SNAPSHOTS),
        [day],
        history_start=None,
        needed_for=f"materialising {day}",
        storage_options=storage_options,
    )
    rows = {
        entity: int(manifests[storage.join(settings.zone(SNAPSHOTS), entity, name)]["rows"])
        for entity, name in ((e, partition_name(day.isoformat())) for e in ENTITY_KEYS)
    }
    store = store or feature_store(settings)
    instant = snapshot_time(day)
    later = {view: _later_materialised(store, view, instant) for view in FEATURE_VIEWS}
    views = tuple(view for view in FEATURE_VIEWS if later[view] is None)
    skipped = "; ".join(
        f"{view} already holds the snapshot of {(at - timedelta(days=1)).date()}"
        for view, at in later.items()
        if at is not None
    )
    began = time.perf_counter()
    if views:
        enable_feast_s3_reads(settings.zone(SNAPSHOTS), storage_options)
        with _reachable(store, f"materialising {day}"):
            store.materialize(instant, instant, feature_views=list(views))
    return MaterializationResult(
        day=day.isoformat(),
        snapshot_time=instant.isoformat(),
        online_store=online_store_type(settings),
        views=views,
        customers=rows["customer"] if CUSTOMER_VIEW in views else 0,
        terminals=rows["terminal"] if TERMINAL_VIEW in views else 0,
        seconds=round(time.perf_counter() - began, 3),
        skipped_reason=skipped,
    )


def _status(row: Mapping[str, Any], tx_day: date) -> tuple[str, str | None]:
    value = row.get(SNAPSHOT_DAY)
    if value is None or value != value:  # None or NaN: the store has never seen the entity
        return "missing", None
    day = str(value)[:10]
    return ("current" if day == (tx_day - timedelta(days=1)).isoformat() else "quiet"), day


def _service(store: FeatureStore) -> FeatureService:
    cached = _SERVICES.get(store)
    if cached is None or time.monotonic() - cached[0] > REGISTRY_CACHE_TTL_S:
        cached = (time.monotonic(), store.get_feature_service(FEATURE_SERVICE, allow_cache=True))
        _SERVICES[store] = cached
    return cached[1]


def online_features(
    source: Settings | FeatureStore,
    customer_id: int,
    terminal_id: int,
    tx: Mapping[str, Any],
    *,
    reader: SqliteOnlineReader | None = None,
) -> OnlineFeatures:
    """The served features of ``tx`` (``TX_DATETIME``, ``TX_AMOUNT``) for a card and terminal.

    Raises ``StaleSnapshotError`` when a stored row cannot be trusted for the transaction's
    day. Pass a ``FeatureStore`` when calling often: building one costs a registry read;
    and its ``sqlite_reader`` (``mlops.features.online_sqlite``) to read the same rows
    without Feast's per-call overhead."""
    if reader is not None:
        return _served(reader.rows(customer_id, terminal_id), tx)
    store = feature_store(source) if isinstance(source, Settings) else source
    entity = {ENTITY_KEYS["customer"]: int(customer_id), ENTITY_KEYS["terminal"]: int(terminal_id)}
    with _reachable(store, f"reading the features of {entity}"):
        response = store.get_online_features(
            features=_service(store),
            entity_rows=[entity],
            full_feature_names=True,
        ).to_dict()
    rows: dict[str, dict[str, Any]] = {name: {} for name in ENTITY_VIEWS}
    for entity_name, view in ENTITY_VIEWS.items():
        prefix = f"{view}__"
        for name, values in response.items():
            if name.startswith(prefix):
                rows[entity_name][name.removeprefix(prefix)] = values[0]
    return _served(rows, tx)


def _served(rows: Mapping[str, Mapping[str, Any]], tx: Mapping[str, Any]) -> OnlineFeatures:
    features = request_features(rows["customer"], rows["terminal"], tx)
    tx_day = transaction_time(tx).date()
    found = {name: _status(row, tx_day) for name, row in rows.items()}
    return OnlineFeatures(
        features={name: features[name] for name in FEATURES},
        status={name: status for name, (status, _) in found.items()},
        snapshot_days={name: day for name, (_, day) in found.items()},
    )


__all__ = [
    "MaterializationResult",
    "OnlineFeatures",
    "OnlineStoreUnavailable",
    "materialize_day",
    "online_features",
    "snapshot_time",
]
