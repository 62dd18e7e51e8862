"""Liveness is not readiness: ``/live`` keeps a pod that waits for its first champion alive
(Kubernetes' liveness probe), ``/health`` keeps traffic away from it (readiness). The app is
exercised in-process without its lifespan: no registry, store or model is needed for this."""

from __future__ import annotations

from fastapi.testclient import TestClient

from mlops.serving.app import create_app
from mlops.serving.config import ServingConfig
from mlops.settings import load_settings

TOKEN = "a-token-of-thirty-two-characters"


def test_live_while_the_poller_runs_even_without_a_champion(tmp_path):
    config = ServingConfig(token=TOKEN)
    app = create_app(load_settings({"MLOPS_DATA_ROOT": str(tmp_path)}), config)
    client = TestClient(app)  # not entered: the lifespan (store, first registry read) skipped
    holder = app.state.holder
    assert client.get("/live").status_code == 503  # nothing polls the registry yet

    holder.start(3600)  # the first poll would come in an hour: no registry is touched
    try:
        live = client.get("/live")
        health = client.get("/health", headers={"Authorization": f"Bearer {TOKEN}"})
        assert (live.status_code, live.json()) == (200, {"alive": True, "ready": False})
        assert health.status_code == 503 and health.json()["ready"] is False
    finally:
        holder.stop()
    assert client.get("/live").json() == {"alive": False, "ready": False}
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert 'endpoint="/live",status="200"' in metrics.text
