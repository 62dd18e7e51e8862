"""The direct Redis read gives what Feast's ``get_online_features`` gives (a real Redis; CI
must have it): on every card and terminal of a materialised day, on every served
transaction, for unknown entities; and a Redis that is gone is a 503-worthy error naming it."""

from __future__ import annotations

import socket

import pytest

from mlops.features.online import OnlineStoreUnavailable, online_features
from mlops.features.online_redis import RedisOnlineReader, field_name, redis_reader
from mlops.features.online_sqlite import COLUMNS
from mlops.features.store import feature_store
from mlops.settings import load_settings
from tests.support.serving_world import (
    build_world,
    every_card_and_terminal,
    feast_online_rows,
    served_transactions,
    with_redis_online_store,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("online-redis"))


@pytest.fixture
def redis_settings(world, redis_db):
    return load_settings(with_redis_online_store(world, redis_db))


def test_every_card_and_terminal_reads_as_feast_reads_it(redis_settings):
    store = feature_store(redis_settings)
    reader = redis_reader(redis_settings, store)
    assert isinstance(reader, RedisOnlineReader)
    customers, terminals = every_card_and_terminal()
    expected = feast_online_rows(store, customers, terminals)
    got = [reader.rows(c, t) for c, t in zip(customers, terminals, strict=True)]
    assert got == expected
    assert got[-1]["terminal"] == dict.fromkeys(COLUMNS["terminal"])  # unknown: all None
    assert sum(row["customer"]["SNAPSHOT_DAY"] is not None for row in got) > 250


def test_every_served_transaction_gets_the_same_features(world, redis_settings):
    store = feature_store(redis_settings)
    reader = redis_reader(redis_settings, store)
    rows = served_transactions(world.root)
    for r in rows.itertuples(index=False):
        tx = {"TX_DATETIME": r.TX_DATETIME, "TX_AMOUNT": r.TX_AMOUNT}
        direct = online_features(store, r.CUSTOMER_ID, r.TERMINAL_ID, tx, reader=reader)
        assert direct == online_features(store, r.CUSTOMER_ID, r.TERMINAL_ID, tx)


def test_the_fields_are_feasts():
    from feast.infra.online_stores.helpers import _mmh3

    for name in (
        "customer_daily_spending:SNAPSHOT_DAY",
        "terminal_daily_risk:TERMINAL_ID_RISK_7DAY_WINDOW",
    ):
        view, feature = name.split(":")
        assert field_name(view, feature) == _mmh3(name)


def test_a_silent_redis_fails_within_its_timeout_naming_it_without_its_password():
    with socket.socket() as server:  # accepts connections, never answers
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        reader = RedisOnlineReader(f"redis://:hunter2@127.0.0.1:{port}/0", timeout_s=0.3)
        with pytest.raises(OnlineStoreUnavailable, match="did not answer within 0.3 s") as err:
            reader.rows(1, 2)
    assert "hunter2" not in str(err.value) and f"127.0.0.1:{port}" in str(err.value)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(OnlineStoreUnavailable, match="unreachable"):
        RedisOnlineReader(f"redis://127.0.0.1:{closed}/0", timeout_s=0.3).rows(1, 2)
