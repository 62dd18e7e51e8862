"""A Redis that stops answering fails the online store's calls within MLOPS_REDIS_TIMEOUT_S,
naming the store, instead of hanging the task or the service (no Redis server needed)."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from mlops.features.online import OnlineStoreUnavailable, online_features
from mlops.features.store import apply_definitions, feature_store
from mlops.settings import load_settings
from tests.support.black_hole import black_hole

TIMEOUT_S = 1
TX = {"TX_DATETIME": datetime(2018, 5, 1), "TX_AMOUNT": 3.0}


def test_an_online_read_from_a_silent_redis_fails_within_its_timeout_naming_it(tmp_path):
    with black_hole() as port:
        settings = load_settings(
            {
                "MLOPS_DATA_ROOT": str(tmp_path),
                "MLOPS_ONLINE_STORE": "redis",
                "MLOPS_REDIS_URL": f"redis://:hunter2@127.0.0.1:{port}/0",
                "MLOPS_REDIS_TIMEOUT_S": str(TIMEOUT_S),
            }
        )
        apply_definitions(settings)  # the registry is a local file: Redis is not asked
        store = feature_store(settings)
        with pytest.raises(OnlineStoreUnavailable, match="did not answer"):
            online_features(store, 1, 2, TX)  # the first call also imports Feast's read path
        began = time.perf_counter()
        with pytest.raises(OnlineStoreUnavailable, match="did not answer") as caught:
            online_features(store, 1, 2, TX)
        elapsed = time.perf_counter() - began
    message = str(caught.value)
    assert f"Redis redis://127.0.0.1:{port}/0 did not answer within {TIMEOUT_S} s" in message
    assert "MLOPS_REDIS_TIMEOUT_S" in message and "hunter2" not in message
    assert isinstance(caught.value, ConnectionError)  # transient: Airflow retries the task
    # one try of TIMEOUT_S, not redis-py's 3 retries with their backoff
    assert TIMEOUT_S <= elapsed < 2 * TIMEOUT_S
