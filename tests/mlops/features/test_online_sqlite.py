"""The direct SQLite read gives what Feast's ``get_online_features`` gives: on every card and
terminal of a materialised day, on every served transaction, and for unknown entities."""

from __future__ import annotations

import sqlite3

import pytest

from mlops.features.online import online_features
from mlops.features.online_sqlite import (
    COLUMNS,
    SqliteOnlineReader,
    decode_value,
    entity_key,
    settings_reader,
    sqlite_reader,
)
from mlops.features.store import feature_store
from tests.support.serving_world import (
    build_world,
    every_card_and_terminal,
    feast_online_rows,
    served_transactions,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("online-sqlite"))


def test_every_card_and_terminal_reads_as_feast_reads_it(world):
    store = feature_store(world.settings)
    reader = sqlite_reader(store)
    assert isinstance(reader, SqliteOnlineReader)
    assert settings_reader(world.settings).path == reader.path  # the same file, no Feast
    customers, terminals = every_card_and_terminal()
    expected = feast_online_rows(store, customers, terminals)
    got = [reader.rows(c, t) for c, t in zip(customers, terminals, strict=True)]
    assert got == expected
    assert got[-1]["terminal"] == dict.fromkeys(COLUMNS["terminal"])  # unknown: all None
    assert sum(row["customer"]["SNAPSHOT_DAY"] is not None for row in got) > 250


def test_every_served_transaction_gets_the_same_features(world):
    store = feature_store(world.settings)
    reader = sqlite_reader(store)
    rows = served_transactions(world.root)
    assert len(rows) > 300
    for r in rows.itertuples(index=False):
        tx = {"TX_DATETIME": r.TX_DATETIME, "TX_AMOUNT": r.TX_AMOUNT}
        direct = online_features(store, r.CUSTOMER_ID, r.TERMINAL_ID, tx, reader=reader)
        assert direct == online_features(store, r.CUSTOMER_ID, r.TERMINAL_ID, tx)


def test_values_and_keys_decode_as_feast_encodes_them():
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    for value in (0, 1, 127, 128, 2**40, -1, -(2**63), 2**63 - 1):
        assert decode_value(Value(int64_val=value).SerializeToString()) == value
        key = EntityKey(join_keys=["CUSTOMER_ID"], entity_values=[Value(int64_val=value)])
        assert entity_key("CUSTOMER_ID", value) == serialize_entity_key(key, 3)
    for value in (0.0, 0.717391304347826, -1e300, 5e-324):
        assert decode_value(Value(double_val=value).SerializeToString()) == value
    assert decode_value(Value(string_val="2018-05-15").SerializeToString()) == "2018-05-15"
    assert decode_value(b"") is None
    with pytest.raises(ValueError, match="unexpected kind"):
        decode_value(Value(float_val=1.5).SerializeToString())


def test_a_store_without_tables_or_of_another_kind_is_read_through_feast(tmp_path):
    class Config:
        project = "fraud"
        entity_key_serialization_version = 3
        repo_path = None

        class online_store:  # noqa: N801 (stands in for Feast's config object)
            type = "sqlite"
            path = str(tmp_path / "online.db")

    class Store:
        config = Config

    sqlite3.connect(tmp_path / "online.db").close()  # a file, no tables yet
    assert sqlite_reader(Store) is None
    with pytest.raises(LookupError, match="online tables of fraud_model_v1 cannot be read"):
        SqliteOnlineReader(str(tmp_path / "online.db")).check()
    Config.online_store.type = "redis"
    assert sqlite_reader(Store) is None
