"""The MLflow tracking server going down in the middle of a training and of a rollout: a real
``mlflow server`` on a fresh PostgreSQL database (one per module: its start is the cost),
behind a proxy that takes it down at one exact request (``tests.support.fault_proxy``).

What must hold: the client retries (MLflow's own, bounded: ``mlops.registry.mlflow_http``);
a server that stays down fails the step with an error naming it; no model version is left
half-registered, and no alias or rollout moves; the task's retry finishes the step, with one
version per training key and one history event per move. The retries' backoff is shortened
here (``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=0``); their number is the production one.
"""

from __future__ import annotations

from datetime import date

import pytest

from mlops.deployment import run
from mlops.deployment.plan import DeploymentRequest
from mlops.registry import aliases
from mlops.registry import versions as registry
from mlops.registry.history import read_history
from mlops.rollout.live import registry_client
from mlops.rollout.state import read_rollout
from mlops.settings import load_settings
from tests.support.fault_proxy import fault_proxy
from tests.support.logged_runs import train_and_log, versions_with_key
from tests.support.mlflow_server import ServerDidNotStart, mlflow_server, scratch_database
from tests.support.training_requests import publish_sets, run_request

pytestmark = pytest.mark.integration
CREATE_VERSION = b"POST /api/2.0/mlflow/model-versions/create"
SET_ALIAS = b"POST /api/2.0/mlflow/registered-models/alias"
GIVES_UP = "Max retries exceeded"


@pytest.fixture(scope="module")
def server(postgres_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow-faults")
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with scratch_database(postgres_url) as database:
        try:
            with mlflow_server(
                database, str(folder / "artifacts"), folder / "server.log", env
            ) as uri:
                yield uri
        except ServerDidNotStart as err:
            pytest.fail(str(err))


@pytest.fixture
def proxy(server, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0")
    with fault_proxy(server) as proxy:
        yield proxy


@pytest.fixture
def settings(proxy, tmp_path):
    return load_settings(
        {"MLOPS_DATA_ROOT": str(tmp_path / "data"), "MLOPS_MLFLOW_TRACKING_URI": proxy.url}
    )


def key_versions(uri: str, day: date) -> list[str]:
    return versions_with_key(registry_client(uri), f"model_training/{day}")


def test_server_down_at_registration_fails_clearly_then_the_retry_registers_once(proxy, settings):
    from mlflow.exceptions import MlflowException

    day, uri = date(2018, 8, 6), settings.mlflow_tracking_uri
    publish_sets(settings, day)
    before = aliases.alias_state(uri)
    fired = proxy.fail_at(CREATE_VERSION)
    with pytest.raises(MlflowException, match=GIVES_UP) as err:
        run_request(settings, day, "asset_triggered__1")
    assert fired.is_set() and proxy.url in str(err.value)
    proxy.up()
    assert key_versions(uri, day) == []  # nothing half-registered
    assert aliases.alias_state(uri) == before  # no alias moved

    retried = run_request(settings, day, "asset_triggered__1")  # the task's retry
    assert not retried.reused
    assert key_versions(uri, day) == [retried.model_version]
    if retried.outcome == "approve":
        assert aliases.alias_state(uri).challenger == retried.model_version


def test_an_answer_lost_after_the_version_was_created_leaves_one_version(proxy, settings):
    day, uri = date(2018, 8, 13), settings.mlflow_tracking_uri
    publish_sets(settings, day)
    fired = proxy.fail_at(CREATE_VERSION, forward=True, stay_down=False)
    outcome = run_request(settings, day, "asset_triggered__2")  # MLflow's client retried
    assert fired.is_set()
    assert key_versions(uri, day) == [outcome.model_version]  # the duplicate retired


def test_server_down_during_a_rollout_moves_nothing_then_the_retry_finishes_it(proxy, settings):
    from mlflow.exceptions import MlflowException

    uri = settings.mlflow_tracking_uri
    first = registry.register_candidate(uri, train_and_log(uri, "2018-08-20").logged.run_id)
    aliases.set_challenger(uri, first.version)
    aliases.promote_challenger(uri, expected_version=first.version)
    second = registry.register_candidate(uri, train_and_log(uri, "2018-08-27").logged.run_id)
    request = DeploymentRequest(
        day=date(2018, 8, 27), version=second.version, canary_share=0.2, run_id="deploy__1"
    )
    plan = run.plan(settings, request)
    before = aliases.alias_state(uri)
    rollout = read_rollout(registry_client(uri), registry.MODEL_NAME)

    fired = proxy.fail_at(SET_ALIAS)
    with pytest.raises(MlflowException, match=GIVES_UP):
        run.start(settings, plan)
    assert fired.is_set()
    proxy.up()
    assert aliases.alias_state(uri) == before  # no alias moved
    assert read_rollout(registry_client(uri), registry.MODEL_NAME) == rollout
    assert read_history(settings) == []  # nothing confirmed: only the intent
    assert [e.status for e in read_history(settings, intended=True)] == ["intended"]

    step = run.start(settings, plan)  # the task's retry
    assert step.changed and step.aliases["challenger"] == second.version
    state = read_rollout(registry_client(uri), registry.MODEL_NAME)
    assert (state.strategy, state.challenger_version, state.canary_share) == (
        "canary",
        second.version,
        0.2,
    )
    (event,) = read_history(settings)
    assert event.before == before.to_dict() and event.after["challenger"] == second.version
