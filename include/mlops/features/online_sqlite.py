"""The two snapshot rows of a transaction read straight from Feast's SQLite online store.

Feast's ``get_online_features`` costs about 0.3 ms a call on one card and one terminal
(protobuf entity keys, the feature service's projection, a response object), several times
the two SQLite lookups it makes. The model service reads the same rows here: the tables
Feast's ``SqliteOnlineStore`` writes (``<project>_<view>``: one row per entity and feature,
``entity_key`` as ``serialize_entity_key`` version 3 makes it, ``value`` a serialized
``ValueProto``), decoded by hand for the three value kinds the views hold (int64, double,
string). What comes back is what ``get_online_features`` gives through ``fraud_model_v1``:
every feature of the view, None for an entity the store does not hold. Tests compare the
two on every card and terminal of a materialised day; a store of another kind (Redis) or a
layout this does not know is read through Feast (``sqlite_reader`` returns None).
``settings_reader`` opens it from the settings alone, so the service's start-up on SQLite
never imports Feast (about 8 s of a 20 s start on this host).
"""

from __future__ import annotations

import sqlite3
import struct
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.features.names import FEATURE_SERVICE
from mlops.features.sql_day import (
    CUSTOMER_SNAPSHOT_COLUMNS,
    ENTITY_KEYS,
    SNAPSHOT_DAY,
    TERMINAL_SNAPSHOT_COLUMNS,
)
from mlops.features.store import ENTITY_VIEWS, PROJECT, online_store_type, sqlite_path

if TYPE_CHECKING:
    from mlops.settings import Settings

VIEWS = ENTITY_VIEWS
COLUMNS = {
    "customer": (SNAPSHOT_DAY, *CUSTOMER_SNAPSHOT_COLUMNS),
    "terminal": (SNAPSHOT_DAY, *TERMINAL_SNAPSHOT_COLUMNS),
}
_INT64, _STRING = 4, 2  # Feast ValueType numbers used in the entity key


def entity_key(join_key: str, value: int) -> bytes:
    """``serialize_entity_key`` v3 of one int64 join key."""
    name = join_key.encode()
    return (
        struct.pack("<II", 1, _STRING)
        + struct.pack("<I", len(name))
        + name
        + struct.pack("<II", _INT64, 8)
        + struct.pack("<q", value)
    )


def _varint(data: bytes, at: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[at]
        result |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return result, at
        shift += 7


def decode_value(data: bytes) -> Any:
    """A ``ValueProto`` holding an int64 (field 4), a double (5) or a string (2); None when
    empty (Feast's null). Anything else raises ValueError."""
    if not data:
        return None
    tag, at = _varint(data, 0)
    field, wire = tag >> 3, tag & 7
    if field == 4 and wire == 0:
        value, _ = _varint(data, at)
        return value - (1 << 64) if value >= 1 << 63 else value
    if field == 5 and wire == 1:
        return struct.unpack_from("<d", data, at)[0]
    if field == 2 and wire == 2:
        length, at = _varint(data, at)
        return data[at : at + length].decode()
    raise ValueError(f"online store value of an unexpected kind (field {field}, wire {wire})")


class SqliteOnlineReader:
    """Reads a card's and a terminal's snapshot rows; one connection per thread."""

    local = True  # a file on this host: a read never waits on a network

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._queries = {
            entity: f'SELECT feature_name, value FROM "{PROJECT}_{view}" WHERE entity_key = ?'
            for entity, view in VIEWS.items()
        }

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            uri = Path(self.path).resolve().as_uri() + "?mode=ro"
            conn = self._local.conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        return conn

    def check(self) -> None:
        """Raise unless both tables exist (Feast creates them when the definitions are
        applied), naming the feature service they serve."""
        try:
            conn = self._connection()
            for view in VIEWS.values():
                conn.execute(f'SELECT 1 FROM "{PROJECT}_{view}" LIMIT 1').fetchall()
        except sqlite3.Error as err:
            raise LookupError(
                f"the online tables of {FEATURE_SERVICE} cannot be read in {self.path} ({err}):"
                " apply the feature definitions (make feast-apply)"
            ) from err

    def rows(self, customer_id: int, terminal_id: int) -> dict[str, dict[str, Any]]:
        """Per entity, every feature of its view (None each when the store lacks it)."""
        conn = self._connection()
        out = {}
        for entity, ident in (("customer", customer_id), ("terminal", terminal_id)):
            key = entity_key(ENTITY_KEYS[entity], int(ident))
            found = dict(conn.execute(self._queries[entity], (key,)).fetchall())
            out[entity] = {
                name: decode_value(found[name]) if name in found else None
                for name in COLUMNS[entity]
            }
        return out


def sqlite_reader(store: Any) -> SqliteOnlineReader | None:
    """The reader of a Feast store's SQLite online store, or None for any other layout."""
    config = store.config
    online = config.online_store
    versioning = getattr(
        getattr(config, "registry", None), "enable_online_feature_view_versioning", False
    )
    if online.type != "sqlite" or config.entity_key_serialization_version != 3 or versioning:
        return None
    if config.project != PROJECT:
        return None
    path = Path(online.path)
    if not path.is_absolute():
        path = Path(config.repo_path or ".") / path
    reader = SqliteOnlineReader(str(path))
    try:
        reader.check()
    except LookupError:  # no file or no tables yet: Feast's own path says what is wrong
        return None
    return reader


def settings_reader(settings: Settings) -> SqliteOnlineReader | None:
    """The reader of the settings' SQLite online store, without importing Feast (seconds of a
    service's start-up); None when the store is not SQLite. Raises ``LookupError`` until
    the definitions are applied. Same file, project and key version as ``repo_config``."""
    if online_store_type(settings) != "sqlite":
        return None
    reader = SqliteOnlineReader(sqlite_path(settings))
    reader.check()
    return reader


__all__ = ["SqliteOnlineReader", "decode_value", "entity_key", "settings_reader", "sqlite_reader"]
