"""A deployment step that crashes and is retried still tells the truth: a crash before the
alias move, inside it, between the move and its history event, or after both, then a rerun
of the same run, and ``served_on`` names the move that put the champion there and who
approved it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from mlops.deployment.judge import PROMOTE, Judgement
from mlops.deployment.plan import DeploymentRequest
from mlops.deployment.run import Approval, finish, plan, roll_back, start
from mlops.registry import aliases
from mlops.registry.history import read_history, served_on
from tests.support.deployment_world import START, reset_registry

POINTS = ("before_move", "inside_the_move", "between_move_and_record", "after_record")


class Crash(RuntimeError):
    """The task process dying at the injected point."""


def crash_at(monkeypatch, point: str, name: str) -> None:
    """Make the next call of ``aliases.<name>`` crash before or after it moved the alias, or
    inside it: the champion moved, the alias it replaces (challenger, previous) not removed."""
    if point == "inside_the_move":
        import mlflow

        def crashing_delete(*args, **kwargs):
            monkeypatch.undo()  # the retry runs the real client
            raise Crash(point)

        monkeypatch.setattr(mlflow.MlflowClient, "delete_registered_model_alias", crashing_delete)
        return
    original = getattr(aliases, name)

    def crashing(*args, **kwargs):
        monkeypatch.setattr(aliases, name, original)  # the retry runs the real move
        if point == "before_move":
            raise Crash(point)
        original(*args, **kwargs)
        raise Crash(point)

    monkeypatch.setattr(aliases, name, crashing)


def retried(monkeypatch, point: str, name: str, step) -> None:
    """``step`` crashed at ``point`` and retried, as Airflow retries the task."""
    if point == "after_record":
        step()  # done and recorded, then the process died before reporting success
    else:
        crash_at(monkeypatch, point, name)
        with pytest.raises(Crash, match=point):
            step()
    step()


def deploy(world, run_id: str):
    """A direct deployment's start, planned once (a retried task reads its plan from XCom)."""
    request = DeploymentRequest(
        day=START, version=world.versions.better, strategy="direct", run_id=run_id
    )
    planned = plan(world.settings, request)
    return lambda: start(world.settings, planned, approval=Approval(by="alice", at="t"))


def check(world, day: date, version: str, action: str, run_id: str, before: str, by) -> None:
    served = served_on(world.settings, day)
    assert (served.version, served.since.action, served.since.run_id) == (version, action, run_id)
    assert (served.since.before["champion"], served.approved_by) == (before, by)
    events = [e for e in read_history(world.settings) if e.run_id == run_id]
    assert [e.action for e in events].count(action) == 1


@pytest.mark.parametrize("point", POINTS)
def test_a_direct_deployment_retried_after_a_crash(deployment_world, monkeypatch, point):
    world = deployment_world
    reset_registry(world.settings, champion=world.versions.good)
    retried(monkeypatch, point, "promote_challenger", deploy(world, "deploy"))
    day_after = START + timedelta(days=1)
    check(
        world, day_after, world.versions.better, "deployed", "deploy", world.versions.good, "alice"
    )


@pytest.mark.parametrize("point", POINTS)
def test_a_promotion_retried_after_a_crash(deployment_world, monkeypatch, point):
    world = deployment_world
    reset_registry(world.settings, champion=world.versions.good)
    request = DeploymentRequest(
        day=START,
        version=world.versions.better,
        observation_days=3,
        wait_for_labels=False,
        run_id="canary",
    )
    planned = plan(world.settings, request)
    start(world.settings, planned, approval=Approval(by="alice", at="t"))
    judgement = Judgement(PROMOTE, ("observed and judged",), 0)
    retried(
        monkeypatch,
        point,
        "promote_challenger",
        lambda: finish(world.settings, planned, judgement),
    )
    day_after = date.fromisoformat(planned.judge_day) + timedelta(days=1)
    check(world, day_after, world.versions.better, "promoted", "canary", world.versions.good, None)
    assert aliases.alias_state(world.settings.mlflow_tracking_uri).previous == world.versions.good


@pytest.mark.parametrize("point", POINTS)
def test_a_rollback_retried_after_a_crash(deployment_world, monkeypatch, point):
    world = deployment_world
    reset_registry(world.settings, champion=world.versions.good)
    deploy(world, "deploy")()
    back = DeploymentRequest(
        day=START + timedelta(days=2), action="rollback", reason="probation", run_id="back"
    )
    planned = plan(world.settings, back)
    retried(monkeypatch, point, "rollback", lambda: roll_back(world.settings, planned))
    day_after = START + timedelta(days=3)
    check(world, day_after, world.versions.good, "rolled_back", "back", world.versions.better, None)
    assert served_on(world.settings, day_after).since.reason == "probation"
