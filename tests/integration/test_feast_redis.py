"""The Redis online store for real (the production profile's store): materialisation, lookup
and the skew test, an unreachable Redis, and a retry that ends in the same online state.

Runs on the ``redis_url`` fixture's database (15), flushed before and after each test, so
it never touches the Feast (0) or Celery (1) databases of a developer's Redis.
"""

from __future__ import annotations

import socket

import pytest

from mlops.features.online import OnlineStoreUnavailable, materialize_day
from mlops.features.store import apply_definitions, feature_store
from tests.support.feature_data import day, publish_all, settings_for, transactions
from tests.support.feature_store import check_skew, fresh_root, online_rows
from tests.support.published import published

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return publish_all(tmp_path_factory.mktemp("redis"), transactions())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def settings(root, redis_db, tmp_path):
    settings = settings_for(
        fresh_root(root, tmp_path / "data"), ONLINE_STORE="redis", REDIS_URL=redis_db
    )
    apply_definitions(settings)
    return settings


def snapshot_entities(settings, snapshot_day):
    import pandas as pd

    folder = f"{settings.zone('features/snapshots')}"
    customers = pd.read_parquet(published(f"{folder}/customer/date={snapshot_day}"))["CUSTOMER_ID"]
    terminals = pd.read_parquet(published(f"{folder}/terminal/date={snapshot_day}"))["TERMINAL_ID"]
    size = min(len(customers), len(terminals))
    return customers[:size], terminals[:size]


def test_materialise_and_serve_from_redis_equal_the_training_rows(settings):
    assert check_skew(settings, day(44)) > 300


def test_materialising_a_day_twice_gives_the_same_online_values(settings, redis_db):
    import redis

    store = feature_store(settings)
    first = materialize_day(settings, day(42), store=store)
    assert first.customers > 0 and first.online_store == "redis"
    entities = snapshot_entities(settings, day(42))
    before = online_rows(store, *entities)
    keys = redis.Redis.from_url(redis_db).dbsize()
    materialize_day(settings, day(42), store=store)
    assert online_rows(store, *entities).equals(before)
    assert redis.Redis.from_url(redis_db).dbsize() == keys


def test_unreachable_redis_fails_clearly_and_a_retry_gives_the_same_state(settings, redis_db):
    import pandas as pd
    import redis

    down = settings.with_overrides(redis_url=f"redis://:hunter2@127.0.0.1:{closed_port()}/15")
    with pytest.raises(OnlineStoreUnavailable, match="unreachable while materialising") as caught:
        materialize_day(down, day(43))
    message = str(caught.value)
    assert f"redis://127.0.0.1:{down.redis_url.rsplit(':', 1)[1]}" in message
    assert "hunter2" not in message and "materialising" in message
    assert isinstance(caught.value, ConnectionError)  # transient: Airflow retries the task

    store = feature_store(settings)
    retried = materialize_day(settings, day(43), store=store)  # Redis is back
    assert retried.views == ("customer_daily_spending", "terminal_daily_risk")
    entities = snapshot_entities(settings, day(43))
    after_retry = online_rows(store, *entities)
    snapshot = pd.read_parquet(
        published(f"{settings.zone('features/snapshots')}/customer/date={day(43)}")
    )
    column = "CUSTOMER_ID_PREV_CENTS_30DAY"
    assert after_retry[f"customer_daily_spending__{column}"].tolist() == (
        snapshot[column][: len(after_retry)].tolist()
    )
    redis.Redis.from_url(redis_db).flushdb()  # the same day, written once on a clean store
    materialize_day(settings, day(43), store=store)
    assert online_rows(store, *entities).equals(after_retry)
