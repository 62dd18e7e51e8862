"""model_rollback run by ``dag.test()`` against a real MLflow registry: while a canary of
model_deployment waits, deferred, on its observed days (in a process of its own), a rollback
puts the champion back within a minute, and the canary's run ends at once, its sensor
skipped, with the abort in the history and in the rollout's evidence; a rollback that keeps
failing is retried, then alerts once (a JSON alert and a webhook POST)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest

from mlops.registry.aliases import alias_state
from mlops.registry.history import read_history
from mlops.registry.versions import MODEL_NAME
from mlops.rollout.live import registry_client
from mlops.rollout.state import read_rollout
from tests.support.dag_process import start_dag_test, states_of
from tests.support.deployment_world import START, reset_registry
from tests.support.webhook import webhook

DAGS = Path(__file__).resolve().parents[2] / "dags"
BACK = START + timedelta(days=1)  # the data day the rollback is asked on


@pytest.fixture
def world(deployment_world, monkeypatch, airflow_db):
    for name, value in {**deployment_world.env, "MLOPS_SENSOR_POKE_S": "1"}.items():
        monkeypatch.setenv(name, value)
    return deployment_world


def run(dag_id: str, conf: dict) -> tuple[object, dict[str, str]]:
    from airflow.dag_processing.dagbag import DagBag

    result = DagBag(dag_folder=str(DAGS)).dags[dag_id].test(run_conf=conf)
    return result, {ti.task_id: str(ti.state) for ti in result.get_task_instances()}


def aliases(world):
    state = alias_state(world.settings.mlflow_tracking_uri)
    return state.champion, state.challenger, state.previous


def waiting_canary(world, canary, timeout_s: float = 240) -> str:
    """The canary's run id, once its wait_for_observed_days has deferred (its trigger runs)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    client = registry_client(world.settings.mlflow_tracking_uri)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert canary.poll() is None, "the canary's run ended before it waited"
        run_id = read_rollout(client, MODEL_NAME).run_id
        if run_id:
            with create_session() as session:
                deferred = session.scalar(
                    select(TaskInstance.next_method).where(
                        TaskInstance.dag_id == "model_deployment",
                        TaskInstance.run_id == run_id,
                        TaskInstance.task_id == "wait_for_observed_days",
                    )
                )
            if deferred == "execute_complete":
                return run_id
        time.sleep(0.5)
    raise AssertionError(f"the canary did not wait on its observed days within {timeout_s} s")


def test_a_rollback_preempts_a_waiting_canary(world, tmp_path):
    good, better, garbage = world.versions.good, world.versions.better, world.versions.garbage
    reset_registry(world.settings, champion=better, previous=good)
    conf = {"version": garbage, "day": str(START), "observation_days": 2, "wait_for_labels": False}
    with open(tmp_path / "canary.log", "w+") as log:
        canary = start_dag_test("model_deployment", conf, log)
        try:
            canary_run = waiting_canary(world, canary)
            asked = time.monotonic()
            back, states = run("model_rollback", {"day": str(BACK), "reason": "probation failed"})
            took = time.monotonic() - asked
            canary.wait(timeout=120)  # ends at the abort mark, not in 120 days
        finally:
            canary.kill()
            canary.wait()
        log.seek(0)
        output = log.read()
    assert canary.returncode == 0, output[-3000:]

    assert states == {"plan_rollback": "success", "roll_back": "success"}
    assert aliases(world) == (good, None, None)
    assert took < 60, f"the champion came back {took:.0f} s after the rollback was asked for"
    canary_states = states_of(output)
    assert canary_states["start_rollout"] == "success"
    assert canary_states["wait_for_observed_days"] == "skipped"
    assert canary_states["judge_rollout"] == canary_states["finish_rollout"] == "skipped"

    events = read_history(world.settings)
    assert [e.action for e in events] == ["rollout_started", "rolled_back", "rollout_aborted"]
    started, rolled_back, aborted = events
    assert started.run_id == canary_run and started.version == garbage
    assert (rolled_back.version, rolled_back.after["champion"]) == (better, good)
    assert rolled_back.run_id == aborted.run_id == back.run_id
    assert (aborted.version, aborted.details["aborted_run_id"]) == (garbage, canary_run)
    assert rolled_back.day == aborted.day == str(BACK)
    evidence = world.root / "reports" / "deployments" / f"{MODEL_NAME}-v{garbage}-{START}.json"
    assert json.loads(evidence.read_text())["aborted"]["aborted_by"] == back.run_id


def test_a_rollback_that_keeps_failing_is_retried_then_alerts(world, monkeypatch):
    from mlops.deployment import rollback

    good, better = world.versions.good, world.versions.better
    reset_registry(world.settings, champion=better, previous=good)
    tries = []

    def registry_down(*args, **kwargs):
        tries.append(time.monotonic())
        raise ConnectionError("registry down")

    monkeypatch.setattr(rollback, "roll_back_preempting", registry_down)
    monkeypatch.setenv("MLOPS_ROLLBACK_RETRY_DELAY_S", "0")
    with webhook() as hook:
        monkeypatch.setenv("MLOPS_ALERT_WEBHOOK_URL", hook.url)
        result, states = run("model_rollback", {"reason": "probation failed"})
    assert states["roll_back"] == "failed" and len(tries) == 4  # 1 + 3 retries
    assert aliases(world) == (better, None, good)
    # the last try alerts, the retries do not; then the failed run alerts
    alert, run_alert = hook.received
    assert (alert["kind"], alert["task_id"], alert["run_id"], alert["try_number"]) == (
        "task_failed",
        "roll_back",
        result.run_id,
        4,
    )
    assert "registry down" in alert["error"]
    assert (run_alert["kind"], run_alert["run_id"]) == ("run_failed", result.run_id)
    assert (run_alert["error"], run_alert["details"]["failed_task"]) == (
        "task_failure",
        "roll_back",
    )
    written = [json.loads(p.read_text()) for p in (world.root / "alerts").glob("*.json")]
    assert sorted(
        (a for a in written if a["run_id"] == result.run_id), key=lambda a: a["kind"]
    ) == [run_alert, alert]


def run_woken(requests: list[dict]) -> tuple[object, dict[str, str]]:
    """model_rollback as the scheduler runs it once ``requests`` queued as rollback_request
    events (model_monitoring's request_rollback emits them)."""
    from airflow.dag_processing.dagbag import DagBag

    from tests.support.asset_runs import asset_triggered

    with asset_triggered("rollback_request", requests):
        result = DagBag(dag_folder=str(DAGS)).dags["model_rollback"].test(logical_date=None)
    return result, {ti.task_id: str(ti.state) for ti in result.get_task_instances()}


def test_requests_that_queued_roll_back_once_at_the_newest_day_and_record_the_others(world):
    """Requests of two days queued (the newest one twice): one run acts on the newest day's
    newest event; the same day's request again, in a later run, rolls nothing back twice."""
    good, better = world.versions.good, world.versions.better
    reset_registry(world.settings, champion=better, previous=good)
    older = {"day": str(START), "version": better, "reason": "probation failed on day 1"}
    newest = {"day": str(BACK), "version": better, "reason": "probation failed"}
    again = {**newest, "reason": "probation failed (monitoring re-run)"}

    first, states = run_woken([newest, older, again])
    assert states == {"plan_rollback": "success", "roll_back": "success"}, states
    assert first.run_type == "asset_triggered" and first.logical_date is None
    assert aliases(world) == (good, None, None)
    second, states = run_woken([again])
    assert states == {"plan_rollback": "success", "roll_back": "skipped"}, states
    assert aliases(world) == (good, None, None)

    (rolled_back,) = read_history(world.settings)  # one move, by the first run
    assert (rolled_back.action, rolled_back.version, rolled_back.day) == (
        "rolled_back",
        better,
        str(BACK),
    )
    assert (rolled_back.run_id, rolled_back.actor) == (
        first.run_id,
        "model_rollback/asset_triggered",
    )
    assert rolled_back.reason == again["reason"]
    superseded = rolled_back.details["superseded"]
    assert [(s["day"], s["version"]) for s in superseded] == [
        (str(START), better),
        (str(BACK), better),
    ]
