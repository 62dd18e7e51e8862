"""The service started for real with nothing to serve yet, and with versions that cannot serve.

It starts without a champion and without a Feast registry (a fresh deployment): alive, not
ready with the reasons, and ready as soon as both appear, without a restart. A challenger or
``previous`` that cannot load (its artifacts deleted) or cannot warm up (raises on predict)
is left out and reported in ``/health`` and a metric, and the champion's moves still apply.
A new champion the registry does not vouch for (a pickle registered by hand with forged
tags) is never unpickled: the last champion serves on, and the refused one is reported.
"""

from __future__ import annotations

import httpx
import pytest

from mlops.features.names import FEATURE_SERVICE
from mlops.features.store import apply_definitions
from mlops.rollout.live import registry_client
from mlops.rollout.state import RolloutState, clear_rollout, write_rollout
from mlops.serving.process import ServiceProcess, request_body
from mlops.settings import load_settings
from tests.support.feature_store import fresh_root
from tests.support.prometheus_tools import wait_for
from tests.support.serving_world import (
    SERVED,
    register_forged_pickle,
    served_transactions,
    set_alias,
)

MODEL = "fraud_model"
POLL_S = 0.3


def health(service) -> tuple[int, dict]:
    response = httpx.get(f"{service.url}/health", headers=service.headers, timeout=10)
    return response.status_code, response.json()


def reported(service) -> tuple[int, dict] | None:
    """``/health`` once it reports a version left out."""
    status, body = health(service)
    return (status, body) if body["failed"] else None


def serving_champion_1(service) -> bool:
    status, body = health(service)
    return status == 200 and body["champion"] == "1" and not body.get("failed")


@pytest.fixture(scope="module")
def bare(serving_world, tmp_path_factory):
    """The serving world's partitions with a Feast registry of its own, not yet applied, and
    a registry without aliases; the service started on them (alive, not ready)."""
    root = fresh_root(serving_world.root, tmp_path_factory.mktemp("bare") / "root")
    env = {**serving_world.env, "MLOPS_DATA_ROOT": str(root)}
    client = registry_client(serving_world.settings.mlflow_tracking_uri)
    for alias in ("champion", "challenger", "previous"):
        if alias in client.get_registered_model(MODEL).aliases:
            client.delete_registered_model_alias(MODEL, alias)
    clear_rollout(client, MODEL)
    service = ServiceProcess(env, poll_s=POLL_S).start(ready=503)
    service.settings = load_settings(env)
    yield service
    service.stop()


def test_it_starts_without_champion_or_features_and_gets_ready_without_a_restart(
    serving_world, bare
):
    pid = bare.process.pid
    assert httpx.get(f"{bare.url}/live", headers=bare.headers).status_code == 200
    status, body = health(bare)
    assert status == 503 and body["ready"] is False
    assert any("no champion" in reason for reason in body["reasons"]), body
    assert any(FEATURE_SERVICE in reason for reason in body["reasons"]), body
    body = request_body(served_transactions(serving_world.root).head(2))
    refused = httpx.post(f"{bare.url}/predict", headers=bare.headers, json=body)
    assert refused.status_code == 503 and "no champion" in refused.text

    apply_definitions(bare.settings)  # the feature service appears
    wait_for(lambda: health(bare)[1]["reasons"] == [f"no champion alias on {MODEL} yet"], 30)
    set_alias(serving_world.settings.mlflow_tracking_uri, "champion", "1")
    wait_for(lambda: health(bare)[0] == 200, 60)
    answered = httpx.post(f"{bare.url}/predict", headers=bare.headers, json=body, timeout=60)
    assert answered.status_code == 200, answered.text
    assert bare.process.pid == pid and bare.process.poll() is None  # the same process


@pytest.fixture(scope="module")
def service(serving_world):
    """The service on the serving world (features applied), champion v1."""
    set_alias(serving_world.settings.mlflow_tracking_uri, "champion", "1")
    service = ServiceProcess(serving_world.env, poll_s=POLL_S).start()
    yield service
    service.stop()


@pytest.fixture
def registry(serving_world, service):
    """Champion v1, no previous, no rollout, as the service sees it."""
    uri = serving_world.settings.mlflow_tracking_uri
    client = registry_client(uri)
    if "previous" in client.get_registered_model(MODEL).aliases:
        client.delete_registered_model_alias(MODEL, "previous")
    clear_rollout(client, MODEL)
    set_alias(uri, "champion", "1")
    wait_for(lambda: serving_champion_1(service), 60)
    return client


@pytest.mark.parametrize(("kind", "why"), [("unloadable", "failed to load"), ("raising", "Value")])
def test_a_challenger_that_cannot_serve_is_left_out_and_the_champion_still_moves(
    serving_world, service, registry, bad_versions, kind, why
):
    bad = bad_versions[kind]
    write_rollout(registry, MODEL, RolloutState("canary", bad, 0.5, SERVED.isoformat(), "1"))
    set_alias(serving_world.settings.mlflow_tracking_uri, "champion", "2")
    wait_for(lambda: health(service)[1]["champion"] == "2", 20)  # a poll and v2's load
    rows = served_transactions(serving_world.root).head(20)
    answered = httpx.post(
        f"{service.url}/predict", headers=service.headers, json=request_body(rows), timeout=60
    )
    assert answered.status_code == 200, answered.text
    versions = {(p["variant"], p["model_version"]) for p in answered.json()["predictions"]}
    assert versions == {("champion", "2")}

    status, body = wait_for(lambda: reported(service), 30)
    assert status == 200 and body["reasons"] == [] and body["challenger"] == bad
    assert f"challenger v{bad}" in body["failed"]["challenger"]
    assert why in body["failed"]["challenger"]
    metrics = httpx.get(f"{service.url}/metrics", headers=service.headers).text
    assert f'fraud_model_load_failed{{model_version="{bad}",variant="challenger"}} 1.0' in metrics

    clear_rollout(registry, MODEL)  # the rollout withdrawn: nothing is left out any more
    wait_for(lambda: health(service)[1]["failed"] == {}, 30)
    assert (
        "fraud_model_load_failed{"
        not in httpx.get(f"{service.url}/metrics", headers=service.headers).text
    )


def test_a_previous_that_cannot_load_is_reported_and_serving_goes_on(
    serving_world, service, registry, bad_versions
):
    bad = bad_versions["unloadable"]
    set_alias(serving_world.settings.mlflow_tracking_uri, "previous", bad)
    status, body = wait_for(lambda: reported(service), 60)
    assert status == 200 and list(body["failed"]) == ["previous"]
    assert f"previous v{bad} failed to load" in body["failed"]["previous"]
    metrics = httpx.get(f"{service.url}/metrics", headers=service.headers).text
    assert f'fraud_model_load_failed{{model_version="{bad}",variant="previous"}} 1.0' in metrics


def test_a_forged_champion_is_refused_and_the_last_one_serves_on(
    serving_world, service, registry, tmp_path
):
    uri = serving_world.settings.mlflow_tracking_uri
    marker = tmp_path / "unpickled"
    forged = register_forged_pickle(uri, serving_world.root, marker)
    set_alias(uri, "champion", forged)
    status, body = wait_for(lambda: reported(service), 60)
    assert status == 200 and body["champion"] == "1" and list(body["failed"]) == ["champion"]
    reason = body["failed"]["champion"]
    assert reason.startswith(f"champion v{forged} failed to load: UntrustedModel: ")
    assert "only skops loads" in reason and "sqlite" not in reason and "/" not in reason
    rows = served_transactions(serving_world.root).head(5)
    body = request_body(rows)
    answered = httpx.post(f"{service.url}/predict", headers=service.headers, json=body, timeout=60)
    assert answered.status_code == 200, answered.text
    assert {p["model_version"] for p in answered.json()["predictions"]} == {"1"}
    metrics = httpx.get(f"{service.url}/metrics", headers=service.headers).text
    assert f'fraud_model_load_failed{{model_version="{forged}",variant="champion"}} 1.0' in metrics
    assert not marker.exists()

    set_alias(uri, "champion", "1")  # the alias put back: nothing is left out any more
    wait_for(lambda: health(service)[1]["failed"] == {}, 30)
    metrics = httpx.get(f"{service.url}/metrics", headers=service.headers).text
    assert "fraud_model_load_failed{" not in metrics
    assert not marker.exists()
