"""Liveness is not readiness: ``/live`` keeps a pod that waits for its first champion alive
(Kubernetes' liveness probe), ``/health`` keeps traffic away from it (readiness). The app is
exercised in-process without its lifespan: no registry, store or model is needed for this."""

from __future__ import annotations

from fastapi.testclient import TestClient

from mlops.serving.api import create_app
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


def test_the_entry_point_checks_the_token_once_before_serving(tmp_path, monkeypatch):
    """``main`` builds the guard before the server listens, and the guard's check is the only
    one: uvicorn gets an app whose middleware is built (Starlette builds it on the first call
    otherwise, which would check the token a second time)."""
    import uvicorn

    from mlops.serving import app as service
    from mlops.serving import guard, startup

    checked: list[str] = []

    def counting(token: str) -> str:
        checked.append(token)
        return require_token(token)

    def run(app, **_) -> None:  # what Starlette does on its first call
        if app.middleware_stack is None:
            app.middleware_stack = app.build_middleware_stack()

    require_token = guard.require_token
    monkeypatch.setattr(guard, "require_token", counting)
    monkeypatch.setattr(uvicorn, "run", run)
    for name in ("cap_native_threads", "tune_interpreter", "in_memory_metrics"):
        monkeypatch.setattr(startup, name, lambda *_: None)  # process-wide: not in a test
    monkeypatch.setenv("MLOPS_DATA_ROOT", str(tmp_path))
    monkeypatch.setenv("MLOPS_SERVE_TOKEN", TOKEN)
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")  # restored after
    service.main()
    assert checked == [TOKEN]
