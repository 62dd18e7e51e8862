"""The same service on the production online store: Redis (a real server; CI must have it)."""

from __future__ import annotations

import httpx
import pytest

from mlops.features.names import FEATURES
from mlops.rollout.live import load_version, registry_client
from mlops.rollout.state import clear_rollout
from mlops.serving.process import ServiceProcess, request_body
from tests.support.serving_world import (
    served_transactions,
    set_alias,
    with_redis_online_store,
)

pytestmark = pytest.mark.integration


def test_predictions_through_the_redis_online_store(serving_world, redis_db):
    env = with_redis_online_store(serving_world, redis_db)
    uri = serving_world.settings.mlflow_tracking_uri
    set_alias(uri, "champion", "1")
    clear_rollout(registry_client(uri), "fraud_model")
    rows = served_transactions(serving_world.root).head(40)
    with ServiceProcess(env) as service:
        response = httpx.post(
            f"{service.url}/predict", headers=service.headers, json=request_body(rows), timeout=60
        )
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    model = load_version(uri, "fraud_model", "1")
    expected = model.predict_proba(rows[list(FEATURES)])[:, 1]
    assert [a["score"] for a in answers] == pytest.approx(expected.tolist(), rel=1e-9)
    assert {a["variant"] for a in answers} == {"champion"}
