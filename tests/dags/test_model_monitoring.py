"""model_monitoring run by ``dag.test()`` on a world with a champion and a prediction log."""

from __future__ import annotations

import json
from pathlib import Path

import pendulum
import pytest

from tests.support.monitoring_world import LOGGED, build_world

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAY = LOGGED[-1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("monitoring-dag"))


@pytest.fixture
def env(world, monkeypatch):
    for name, value in world.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLOPS_SENSOR_POKE_S", "1")
    return world.env


def load_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors
    return bag.dags["model_monitoring"]


def run_day(day):
    run = load_dag().test(
        logical_date=pendulum.datetime(day.year, day.month, day.day, tz="UTC").add(days=1),
        run_conf={"html_report": False},
    )
    return run, {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def asset_events(name: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = (
            select(AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == name)
            .order_by(AssetEvent.id)
        )
        return [dict(extra) for extra in session.scalars(query)]


def test_the_monitor_waits_for_the_day_log_and_routes_after_the_decision():
    upstream = {task.task_id: task.upstream_task_ids for task in load_dag().tasks}
    assert upstream == {
        "wait_for_predictions": set(),
        "decide": {"wait_for_predictions"},  # monitors, then decides
        "route_decision": {"decide"},
        "request_retraining": {"route_decision", "decide"},
        "request_rollback": {"route_decision", "decide"},
    }


def test_a_quiet_day_is_monitored_and_decided_without_a_request(airflow_db, env, world):
    run, states = run_day(DAY)
    assert str(run.state) == "success", states
    assert states["decide"] == "success"
    assert states["request_retraining"] == states["request_rollback"] == "skipped"
    summary = asset_events("model_monitoring")[-1]
    assert summary["day"] == DAY.isoformat() and summary["status"] == "monitored"
    assert summary["champion"]["version"] == "1" and summary["report"] is None
    decision = world.root / "monitoring" / "decisions" / f"date={DAY}.json"
    assert json.loads(decision.read_text())["action"] == "none"


def test_a_retrain_decision_emits_a_request_carrying_the_day_and_reasons(
    airflow_db, env, world, monkeypatch
):
    from mlops.retraining import decisions
    from mlops.retraining.policy import RetrainPolicy

    monkeypatch.setattr(
        decisions, "RetrainPolicy", lambda **kw: RetrainPolicy(max_age_days=1, **kw)
    )
    before = len(asset_events("retrain_request"))
    run, states = run_day(DAY)
    assert str(run.state) == "success", states
    assert states["request_retraining"] == "success" and states["request_rollback"] == "skipped"
    events = asset_events("retrain_request")
    assert len(events) == before + 1
    assert events[-1]["day"] == DAY.isoformat()
    assert events[-1]["reasons"][0].startswith("model age: trained")


def test_a_rollback_decision_emits_a_request_carrying_the_day_version_and_reason(
    airflow_db, env, monkeypatch
):
    """model_rollback is scheduled on the rollback_request asset (the asset graph shows the
    loop), not triggered by an operator."""
    from types import SimpleNamespace

    from mlops.retraining import decisions

    decision = {
        "day": DAY.isoformat(),
        "action": "rollback",
        "rollback_version": "7",
        "reasons": ["probation: champion v7 average_precision 0.400 is below previous v6's"],
    }
    monkeypatch.setattr(
        decisions, "decide_day", lambda *a, **kw: SimpleNamespace(to_xcom=lambda: decision)
    )
    before = len(asset_events("rollback_request"))
    run, states = run_day(DAY)
    assert str(run.state) == "success", states
    assert states["request_rollback"] == "success" and states["request_retraining"] == "skipped"
    events = asset_events("rollback_request")
    assert events[before:] == [
        {"day": DAY.isoformat(), "version": "7", "reason": decision["reasons"][0]}
    ]
    route = load_dag().get_task("route_decision").python_callable
    assert route(decision) == "request_rollback"
    assert route({"action": "retrain"}) == "request_retraining"
    assert route({"action": "none"}) is None


def test_a_day_that_never_gets_a_log_is_skipped_not_failed(airflow_db, env, monkeypatch):
    from datetime import timedelta

    monkeypatch.setenv("MLOPS_SENSOR_TIMEOUT_S", "0")  # dag.test runs triggers without it
    run, states = run_day(LOGGED[0] - timedelta(days=3))
    assert states["wait_for_predictions"] == "skipped"
    assert states["decide"] == "skipped", states
    assert str(run.state) == "success"
