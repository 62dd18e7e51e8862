"""The two snapshot rows of a transaction read straight from Feast's Redis online store.

Through Feast, a lookup costs about 1 ms of the service's CPU (protobuf entity keys, the
feature service's projection, a response object) around two ``HMGET`` calls. This reads the
same hashes in one round trip: Feast's ``RedisOnlineStore`` keeps one hash per entity, keyed
by ``serialize_entity_key`` (version 3) followed by the project's name, with one field per
feature named by the murmur3 hash of ``<view>:<feature>`` and holding a serialized
``ValueProto`` (decoded by ``mlops.features.online_sqlite.decode_value``). What comes back is
what ``get_online_features`` gives through ``fraud_model_v1``: every feature of the view,
None for an entity the store does not hold. Tests compare the two on every card and
terminal of a materialised day. Every call is bounded by ``MLOPS_REDIS_TIMEOUT_S`` with no
retry of redis-py's own (the caller's client retries after a 503), and a failure is an
``OnlineStoreUnavailable`` naming the store without its password (``redis_reachable``, as
for Feast's own calls).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from mlops.features.online import redis_reachable
from mlops.features.online_sqlite import COLUMNS, VIEWS, decode_value, entity_key
from mlops.features.sql_day import ENTITY_KEYS
from mlops.features.store import PROJECT, online_store_type, redacted

if TYPE_CHECKING:
    from mlops.settings import Settings


def field_name(view: str, feature: str) -> bytes:
    """The hash field Feast writes a feature under: murmur3 (32 bits, unsigned) of
    ``<view>:<feature>``, little-endian."""
    import mmh3

    return struct.pack("<I", mmh3.hash(f"{view}:{feature}", signed=False))


class RedisOnlineReader:
    """Reads a card's and a terminal's snapshot rows from Redis in one round trip."""

    local = False  # a network store: the service reads it off its event loop

    def __init__(self, url: str, timeout_s: float) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.label = f"Redis {redacted(url)}"  # as store_label names it
        self.timeout_s = timeout_s
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._project = PROJECT.encode()
        self._fields = {
            entity: [field_name(VIEWS[entity], name) for name in COLUMNS[entity]]
            for entity in VIEWS
        }

    def rows(self, customer_id: int, terminal_id: int) -> dict[str, dict[str, Any]]:
        """Per entity, every feature of its view (None each when the store lacks it)."""
        pipe = self._client.pipeline(transaction=False)
        for entity, ident in (("customer", customer_id), ("terminal", terminal_id)):
            key = entity_key(ENTITY_KEYS[entity], int(ident)) + self._project
            pipe.hmget(key, self._fields[entity])
        with redis_reachable(self.label, f"{self.timeout_s:g}", "reading features"):
            customer, terminal = pipe.execute()
        found = {"customer": customer, "terminal": terminal}
        return {
            entity: {
                name: None if value is None else decode_value(value)
                for name, value in zip(COLUMNS[entity], found[entity], strict=True)
            }
            for entity in VIEWS
        }


def redis_reader(settings: Settings, store: Any) -> RedisOnlineReader | None:
    """The direct reader of the settings' Redis online store, once ``store`` (Feast's, opened
    on the same settings) shows the layout this reads: Redis, entity keys of version 3, no
    online versioning of views, this project, and views holding exactly ``COLUMNS``.
    None otherwise: read through Feast."""
    config = store.config
    registry = getattr(config, "registry", None)
    if getattr(registry, "enable_online_feature_view_versioning", False):
        return None
    if online_store_type(settings) != "redis" or config.online_store.type != "redis":
        return None
    if config.entity_key_serialization_version != 3 or config.project != PROJECT:
        return None
    for entity, view in VIEWS.items():
        names = {f.name for f in store.get_feature_view(view).features}
        if names != set(COLUMNS[entity]):
            return None
    return RedisOnlineReader(settings.redis_url, settings.redis_timeout_s)


__all__ = ["RedisOnlineReader", "field_name", "redis_reader"]
