"""A rollback against the real registry while a canary is observed: the champion goes back,
the canary is withdrawn and its waiting run gets an abort mark; a retry after a crash
finishes the moves and records each once; nothing to roll back is said, not done."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mlops.deployment.plan import DeploymentRequest
from mlops.deployment.rollback import (
    RollbackPlan,
    abort_mark_uri,
    aborted_rollout,
    plan_rollback,
    roll_back_preempting,
    rollback_request,
)
from mlops.deployment.run import evidence_uri, plan, start
from mlops.io import storage
from mlops.registry import aliases
from mlops.registry.aliases import alias_state
from mlops.registry.history import read_history, served_on
from mlops.registry.versions import MODEL_NAME
from mlops.rollout.live import registry_client
from mlops.rollout.state import read_rollout
from tests.support.deployment_world import START, reset_registry

CANARY_RUN = "manual__canary"
BACK = START + timedelta(days=1)


def with_canary(world):
    """better serves (good is previous), and a canary of garbage, started by CANARY_RUN,
    is observed; returns the canary's plan."""
    versions = world.versions
    reset_registry(world.settings, champion=versions.better, previous=versions.good)
    request = DeploymentRequest(
        day=START,
        version=versions.garbage,
        observation_days=2,
        wait_for_labels=False,
        run_id=CANARY_RUN,
    )
    canary = plan(world.settings, request)
    start(world.settings, canary)
    return canary


def rollback_plan(world, **params) -> RollbackPlan:
    request = rollback_request(
        {"day": BACK.isoformat(), "reason": "probation failed", **params},
        fallback_day=START,
        actor="model_rollback/manual",
        run_id="manual__rollback",
    )
    return plan_rollback(world.settings, request)


def test_a_rollback_puts_previous_back_and_aborts_the_observed_canary(deployment_world):
    world, versions = deployment_world, deployment_world.versions
    canary = with_canary(world)
    planned = rollback_plan(world, version=versions.better)
    assert planned.deployment.path == "rollback"
    assert planned.rollout.run_id == CANARY_RUN  # the rollout names the run that waits
    assert RollbackPlan.from_xcom(planned.to_xcom()) == planned

    result = roll_back_preempting(world.settings, planned, recorded_at="t")

    state = alias_state(world.settings.mlflow_tracking_uri)
    assert (state.champion, state.challenger, state.previous) == (versions.good, None, None)
    client = registry_client(world.settings.mlflow_tracking_uri)
    assert not read_rollout(client, MODEL_NAME).active
    tags = client.get_model_version(MODEL_NAME, versions.garbage).tags
    assert tags["mlops.rolled_back"] == "true"
    assert result.aborted.version == versions.garbage and result.aborted.changed
    events = read_history(world.settings)
    assert [e.action for e in events] == ["rollout_started", "rolled_back", "rollout_aborted"]
    back, aborted = events[1:]
    assert (back.version, back.before["champion"], back.after["champion"]) == (
        versions.better,
        versions.better,
        versions.good,
    )
    assert aborted.details["aborted_run_id"] == CANARY_RUN
    assert "preempted by the rollback of v" in aborted.reason
    assert served_on(world.settings, BACK + timedelta(days=1)).version == versions.good

    assert result.abort_mark == abort_mark_uri(world.settings, CANARY_RUN)
    mark = aborted_rollout(world.settings, canary, CANARY_RUN)
    assert (mark["run_id"], mark["aborted_by"]) == (CANARY_RUN, "manual__rollback")
    evidence = storage.read_json(evidence_uri(world.settings, canary))
    assert (evidence["judgement"], evidence["aborted"]) == (None, mark)
    assert aborted_rollout(world.settings, canary, "manual__another_run") is None


class Crash(RuntimeError):
    """The task process dying half-way."""


def test_a_retry_after_a_crash_finishes_the_moves_and_records_each_once(
    deployment_world, monkeypatch
):
    world, versions = deployment_world, deployment_world.versions
    with_canary(world)
    planned = rollback_plan(world)  # the bad champion: the current one
    original = aliases.withdraw_challenger

    def crash_after_the_rollback(*args, **kwargs):
        raise Crash("died after the champion moved back")

    monkeypatch.setattr(aliases, "withdraw_challenger", crash_after_the_rollback)
    with pytest.raises(Crash, match="died after the champion moved back"):
        roll_back_preempting(world.settings, planned)
    assert alias_state(world.settings.mlflow_tracking_uri).champion == versions.good
    found = read_history(world.settings, intended=True)
    assert [(e.action, e.status) for e in found] == [
        ("rollout_started", "confirmed"),
        ("rolled_back", "confirmed"),
        ("rollout_aborted", "intended"),
    ]

    monkeypatch.setattr(aliases, "withdraw_challenger", original)
    retried = roll_back_preempting(world.settings, planned)  # Airflow's retry, same plan
    again = roll_back_preempting(world.settings, planned)  # a rerun moves nothing

    state = alias_state(world.settings.mlflow_tracking_uri)
    assert (state.champion, state.challenger, state.previous) == (versions.good, None, None)
    events = read_history(world.settings)
    assert [e.action for e in events] == ["rollout_started", "rolled_back", "rollout_aborted"]
    assert events[1].before["champion"] == versions.better  # the first try's view
    assert events[2].before["challenger"] == versions.garbage
    assert retried.to_xcom() == again.to_xcom()


def test_without_previous_nothing_is_rolled_back(deployment_world):
    world = deployment_world
    reset_registry(world.settings, champion=world.versions.good)
    planned = rollback_plan(world)
    assert (planned.deployment.path, planned.deployment.why) == (
        "nothing",
        "no previous version to roll back to",
    )
    with pytest.raises(ValueError, match="nothing to roll back: no previous version"):
        roll_back_preempting(world.settings, planned)
    assert read_history(world.settings) == []
