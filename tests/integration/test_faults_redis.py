"""The production online store stopped half-way through a materialisation: a real Redis (a
private ``redis-server`` of the test, never the system one) goes away after the first feature
view of the day is written.

What must hold: the failure names the store; the retry leaves the online state a clean
materialisation leaves. (Redis stopped under the model service: test_faults_serving.py.)
"""

from __future__ import annotations

import time

import pytest

from mlops.features.online import OnlineStoreUnavailable, materialize_day
from mlops.features.store import apply_definitions, feature_store
from tests.support.feature_data import day, settings_for
from tests.support.feature_store import fresh_root, online_rows
from tests.support.redis_server import redis_server

pytestmark = pytest.mark.integration
TIMEOUT_S = 1


@pytest.fixture
def redis(redis_url, tmp_path):
    """A private redis-server (``redis_url`` only gates the test on Redis being available,
    so CI=true fails rather than skips without it)."""
    with redis_server(tmp_path) as server:
        yield server


def snapshot_entities(settings, snapshot_day):
    import pandas as pd

    folder = settings.zone("features/snapshots")
    customers = pd.read_parquet(f"{folder}/customer/date={snapshot_day}")["CUSTOMER_ID"]
    terminals = pd.read_parquet(f"{folder}/terminal/date={snapshot_day}")["TERMINAL_ID"]
    size = min(len(customers), len(terminals))
    return customers[:size], terminals[:size]


def test_redis_stopped_mid_materialisation_fails_naming_it_and_the_retry_is_complete(
    serving_world, redis, tmp_path, monkeypatch
):
    import redis as redis_client
    from feast.infra.online_stores.redis import RedisOnlineStore

    settings = settings_for(
        fresh_root(serving_world.root, tmp_path / "data"),
        ONLINE_STORE="redis",
        REDIS_URL=redis.url(0),
        REDIS_TIMEOUT_S=str(TIMEOUT_S),
    )
    apply_definitions(settings)
    materialize_day(settings, day(42))  # what the store held before

    written = []
    original = RedisOnlineStore.online_write_batch

    def write_then_stop(self, *args, **kwargs):
        original(self, *args, **kwargs)
        written.append(kwargs["table"].name)
        redis.stop()  # Redis goes away after the first view's rows are in

    monkeypatch.setattr(RedisOnlineStore, "online_write_batch", write_then_stop)
    began = time.perf_counter()
    with pytest.raises(OnlineStoreUnavailable, match="unreachable while materialising") as err:
        materialize_day(settings, day(43))
    assert time.perf_counter() - began < 30
    assert f"Redis redis://127.0.0.1:{redis.port}/0" in str(err.value)
    assert len(written) == 1  # half the day is online: one view of two
    monkeypatch.undo()

    redis.start()  # back (it saved on SIGTERM); Airflow's retry is a new process: a new store
    retried = materialize_day(settings, day(43), store=feature_store(settings))
    assert retried.views == ("customer_daily_spending", "terminal_daily_risk")
    store = feature_store(settings)
    entities = snapshot_entities(settings, day(43))
    after_retry = online_rows(store, *entities)
    assert after_retry["customer_daily_spending__SNAPSHOT_DAY"].notna().all()

    redis_client.Redis.from_url(redis.url(0)).flushdb()  # the same day on a clean store
    materialize_day(settings, day(43), store=store)
    assert online_rows(store, *entities).equals(after_retry)
