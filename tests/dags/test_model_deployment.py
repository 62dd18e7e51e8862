"""model_deployment run by ``dag.test()`` against a real MLflow registry: a first model goes
direct; a canary is observed on data days that daily scoring fills while the sensor waits,
then promoted; an approval is answered through Airflow's REST API by real users (only an
approver other than the requester can let it go on; every answer, and no answer, is in the
history); a rollback is refused (model_rollback does it). The history records each move."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from mlops.registry.aliases import alias_state
from mlops.registry.history import read_history, served_on
from mlops.registry.versions import MODEL_NAME
from mlops.rollout.live import registry_client
from mlops.rollout.state import read_rollout
from tests.support.deployment_world import START, observed, reset_registry, score_days
from tests.support.hitl import REQUESTER, answer_hitl, time_out_hitl
from tests.support.threads import helper_thread

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture
def world(deployment_world, monkeypatch, airflow_db):
    for name, value in {**deployment_world.env, "MLOPS_SENSOR_POKE_S": "1"}.items():
        monkeypatch.setenv(name, value)
    return deployment_world


def run(conf: dict) -> tuple[object, dict[str, str]]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    result = bag.dags["model_deployment"].test(run_conf=conf)
    return result, {ti.task_id: str(ti.state) for ti in result.get_task_instances()}


def aliases(world):
    state = alias_state(world.settings.mlflow_tracking_uri)
    return state.champion, state.challenger, state.previous


def test_a_first_model_goes_direct(world):
    reset_registry(world.settings)
    good = world.versions.good
    _, states = run({"version": good, "day": str(START), "strategy": "canary"})
    assert states["start_rollout"] == "success"
    assert states["wait_for_observed_days"] == "skipped"
    assert aliases(world) == (good, None, None)
    (event,) = read_history(world.settings)
    assert (event.action, event.strategy, event.version) == ("deployed", "direct", good)
    assert "first model" in event.reason


def score_when_the_rollout_starts(world, days) -> Callable[[], None]:
    """transactions_daily's part: once the rollout is in the registry, score the days."""
    client = registry_client(world.settings.mlflow_tracking_uri)

    def score_observed_days() -> None:
        deadline = time.monotonic() + 300
        while not read_rollout(client, MODEL_NAME).active:
            assert time.monotonic() < deadline, "the rollout never started"
            time.sleep(0.5)
        score_days(world.settings, days)

    return score_observed_days


def canary(world, version: str, scored: int = 8, **conf) -> tuple[dict[str, str], list]:
    """A canary observed 2 days at least; the days up to START+``scored`` are scored as it
    waits (the labels of START+1 are known on START+8)."""
    reset_registry(world.settings, champion=world.versions.good)
    days = observed(START, scored)
    conf = {"version": version, "day": str(START), "observation_days": 2, **conf}
    with helper_thread(score_when_the_rollout_starts(world, days)):
        _, states = run(
            {**conf, "wait_for_labels": False, "canary_share": 0.5, "reason": "weekly retrain"}
        )
    return states, days


def test_a_canary_waits_until_its_matured_rows_can_judge_it_then_is_promoted(world):
    good, better = world.versions.good, world.versions.better
    states, days = canary(world, better)
    assert states["wait_for_observed_days"] == "success"
    assert states["finish_rollout"] == "success"
    assert states["decide_quality"] == "skipped"
    assert aliases(world) == (better, None, good)
    events = read_history(world.settings)
    assert [e.action for e in events] == ["rollout_started", "promoted"]
    assert events[0].details["request_reason"] == "weekly retrain"
    assert "matured AP non-inferior" in events[1].reason
    assert events[1].day == str(days[-1])  # judged on the day the labels of START+1 are known
    assert served_on(world.settings, days[-1]).version == good
    assert served_on(world.settings, days[-1] + timedelta(days=1)).version == better


def test_a_canary_that_raises_is_rolled_back_without_having_answered(world):
    from mlops.scoring.log import prediction_sink

    good, broken = world.versions.good, world.versions.broken
    states, days = canary(world, broken, scored=2)  # failing: no wait for its labels
    assert states["finish_rollout"] == "success"
    assert aliases(world) == (good, None, None)
    events = read_history(world.settings)
    assert [e.action for e in events] == ["rollout_started", "rollout_aborted"]
    assert "challenger raised" in events[-1].reason
    sink = prediction_sink(world.settings.data_root)
    for day in days:
        logged = sink.read_day("batch", day)
        assert len(logged) and (logged["variant"] == "champion").all()
        assert logged["challenger_error"].notna().all()


def answer_approval(user: str, choice: str, outsider: str | None = None) -> Callable[[], None]:
    return answer_hitl("model_deployment", "approve_rollout", user, choice, outsider)


time_out_approval = time_out_hitl("approve_rollout")


@pytest.fixture
def approvers(world, monkeypatch):
    """Real users, no all-admins: only the listed approvers may answer."""
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    monkeypatch.setenv("MLOPS_ROLLOUT_APPROVERS", f"carol,{REQUESTER}")
    reset_registry(world.settings, champion=world.versions.good)
    return world


def approval_run(world, answer: Callable[[], None]) -> dict[str, str]:
    conf = {"version": world.versions.better, "day": str(START), "strategy": "direct"}
    with helper_thread(answer):
        _, states = run({**conf, "require_approval": True, "reason": "weekly retrain"})
    assert states["approve_rollout"] == "success"
    return states


def by_action(world) -> dict[str, object]:
    return {event.action: event for event in read_history(world.settings)}


def test_an_approval_by_another_approver_is_recorded_with_their_name(approvers):
    world = approvers
    good, better = world.versions.good, world.versions.better
    states = approval_run(world, answer_approval("carol", "Approve", outsider="mallory"))
    assert states["start_rollout"] == "success"
    assert aliases(world) == (better, None, good)
    events = by_action(world)
    assert sorted(events) == ["approved", "deployed"]
    assert (events["approved"].responded_by, events["approved"].details["requester"]) == (
        "carol",
        REQUESTER,
    )
    assert events["deployed"].approved_by == "carol"
    assert events["deployed"].details["approval_comment"] == "checked the model card"


def test_the_requesters_own_approval_is_refused_and_nothing_moves(approvers):
    world = approvers
    states = approval_run(world, answer_approval(REQUESTER, "Approve"))
    assert states["start_rollout"] == "skipped"
    assert aliases(world) == (world.versions.good, None, None)
    (event,) = read_history(world.settings)
    assert (event.action, event.responded_by, event.approved_by) == (
        "approval_refused",
        REQUESTER,
        None,
    )


def test_a_rejection_is_recorded_with_its_responder(approvers):
    world = approvers
    states = approval_run(world, answer_approval("carol", "Reject"))
    assert states["start_rollout"] == "skipped"
    assert aliases(world) == (world.versions.good, None, None)
    (event,) = read_history(world.settings)
    assert (event.action, event.responded_by) == ("rejected", "carol")


def test_no_answer_in_time_is_recorded_as_a_timeout(approvers):
    world = approvers
    states = approval_run(world, time_out_approval)
    assert states["start_rollout"] == "skipped"
    assert aliases(world) == (world.versions.good, None, None)
    (event,) = read_history(world.settings)
    assert (event.action, event.responded_by) == ("approval_timed_out", None)


def unjudged_canary(world, answer: Callable[[], None]) -> dict[str, str]:
    """A healthy canary whose deadline (START+3) comes before any label matures: a person
    decides, as ``answer`` does."""
    conf = {"quality_deadline_days": 3, "observation_days": 2}
    with helper_thread(answer):
        states, _ = canary(world, world.versions.better, scored=3, **conf)
    assert states["finish_rollout"] == "skipped"
    assert states["decide_quality"] == "success"
    return states


def test_a_canary_unjudged_by_its_deadline_is_promoted_by_an_approver(approvers):
    world = approvers
    unjudged_canary(world, answer_hitl("model_deployment", "decide_quality", "carol", "Approve"))
    assert aliases(world) == (world.versions.better, None, world.versions.good)
    events = by_action(world)
    assert sorted(events) == ["approved", "promoted", "rollout_started"]
    assert events["approved"].details["stage"] == "quality"
    assert events["promoted"].approved_by == "carol"


def test_a_canary_unjudged_by_its_deadline_is_rolled_back_when_nobody_answers(approvers):
    world = approvers
    unjudged_canary(world, time_out_hitl("decide_quality"))
    assert aliases(world) == (world.versions.good, None, None)
    events = by_action(world)
    assert sorted(events) == ["approval_timed_out", "rollout_aborted", "rollout_started"]
    assert events["approval_timed_out"].responded_by is None


def test_a_run_asking_for_a_rollback_is_refused_pointing_to_model_rollback(airflow_db):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.exceptions import ParamValidationError

    dag = DagBag(dag_folder=str(DAGS)).dags["model_deployment"]
    assert "roll_back_champion" not in dag.task_dict
    with pytest.raises(ParamValidationError, match="(?s)'rollback' is not one of.*model_rollback"):
        dag.test(run_conf={"action": "rollback", "reason": "probation failed"})


def test_the_defaults_an_asset_triggered_rollout_uses_come_from_the_installation(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("MLOPS_ROLLOUT_OBSERVATION_DAYS", "3")
    monkeypatch.setenv("MLOPS_ROLLOUT_WAIT_FOR_LABELS", "false")
    monkeypatch.setenv("MLOPS_ROLLOUT_STRATEGY", "shadow")
    params = DagBag(dag_folder=str(DAGS)).dags["model_deployment"].params
    assert (params["observation_days"], params["wait_for_labels"], params["strategy"]) == (
        3,
        False,
        "shadow",
    )


def test_candidates_queued_behind_a_rollout_deploy_the_newest_day_s_the_others_recorded(
    world, monkeypatch
):
    """The newest data day's candidate is deployed even though an older day's event came
    after it; the older one is superseded, named in the history record of the move."""
    from airflow.dag_processing.dagbag import DagBag

    from tests.support.asset_runs import asset_triggered

    good, better, garbage = world.versions.good, world.versions.better, world.versions.garbage
    reset_registry(world.settings, champion=good)
    monkeypatch.setenv("MLOPS_ROLLOUT_STRATEGY", "direct")  # the Params' default
    newest = {"model_version": better, "run_id": "b", "day": str(START)}
    older = {"model_version": garbage, "run_id": "g", "day": str(START - timedelta(days=7))}
    dag = DagBag(dag_folder=str(DAGS)).dags["model_deployment"]
    with asset_triggered("candidate_model", [newest, older]):
        result = dag.test(logical_date=None)
    states = {ti.task_id: str(ti.state) for ti in result.get_task_instances()}
    assert states["start_rollout"] == "success", states
    assert aliases(world) == (better, None, good)
    (deployed,) = read_history(world.settings)
    assert (deployed.action, deployed.version, deployed.day) == ("deployed", better, str(START))
    assert deployed.actor == "model_deployment/asset_triggered"
    (superseded,) = deployed.details["superseded"]
    assert (superseded["version"], superseded["day"]) == (garbage, older["day"])
