"""A canary whose quality could not be judged by its deadline goes to a person
(``mlops.deployment.quality_review``): an approval promotes it, naming the approver; a
rejection, the requester's own approval or no answer rolls it back; each answer and the
move recorded, the evidence with the decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mlops.deployment.approval import APPROVED, REFUSED, REJECTED, TIMED_OUT, decide
from mlops.deployment.judge import REVIEW
from mlops.deployment.plan import DeploymentRequest
from mlops.deployment.quality_review import QUALITY, quality_body, record_quality_decision
from mlops.deployment.run import evidence_uri, judge_rollout, plan, start
from mlops.io import storage
from mlops.registry.aliases import alias_state
from mlops.registry.history import read_history
from tests.support.deployment_world import START, observed, reset_registry, score_days
from tests.support.hitl import hitl_response

AT = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
DEADLINE_DAYS = 5  # START+5: the labels of START+1 are not known before START+8


def answer(choice: str, user: str | None, **extra) -> dict:
    return hitl_response(choice, user, at=AT, comment="too few frauds, but it looks fine", **extra)


@pytest.fixture
def unjudged(deployment_world):
    """A healthy canary (the better version) started on START whose deadline passed at
    START+5 without a matured label: judged ``review``."""
    world = deployment_world
    reset_registry(world.settings, champion=world.versions.good)
    request = DeploymentRequest(
        day=START,
        version=world.versions.better,
        observation_days=3,
        wait_for_labels=False,
        quality_deadline_days=DEADLINE_DAYS,
        run_id="canary-unjudged",
        actor="model_deployment/asset_triggered",
    )
    planned = plan(world.settings, request)
    start(world.settings, planned)
    score_days(world.settings, observed(START, DEADLINE_DAYS))
    return world, planned, judge_rollout(world.settings, planned)


def aliases(world) -> tuple[str | None, str | None, str | None]:
    state = alias_state(world.settings.mlflow_tracking_uri)
    return state.champion, state.challenger, state.previous


def test_a_healthy_canary_unjudged_at_its_deadline_is_a_person_s_to_decide(unjudged):
    world, planned, judgement = unjudged
    assert judgement.verdict == REVIEW, judgement.reasons
    seen = judgement.checks["observation"]
    deadline = str(START + timedelta(days=DEADLINE_DAYS))
    assert (seen["status"], seen["judge_day"], seen["deadline_day"]) == (
        "deadline",
        deadline,
        deadline,
    )
    assert seen["frauds"] == 0 and not judgement.checks["quality"]["judged"]
    body = quality_body(planned, judgement)
    assert f"**v{world.versions.better}** against champion v{world.versions.good}" in body
    assert f"reached its deadline ({deadline})" in body
    assert "frauds among them: 0 (at least 30 needed)" in body
    assert aliases(world) == (world.versions.good, world.versions.better, None)  # untouched


def test_an_approval_promotes_it_naming_the_approver(unjudged):
    world, planned, judgement = unjudged
    decision = decide(answer("Approve", "carol"), requester=None)
    step = record_quality_decision(world.settings, planned, judgement, decision, recorded_at="t1")
    assert step.action == "promoted"
    assert aliases(world) == (world.versions.better, None, world.versions.good)
    events = [e for e in read_history(world.settings) if e.run_id == planned.request.run_id]
    assert [e.action for e in events] == ["rollout_started", APPROVED, "promoted"]
    asked, promoted = events[1], events[2]
    assert asked.details["stage"] == QUALITY and asked.responded_by == "carol"
    assert asked.details["observation"]["status"] == "deadline"
    assert asked.day == promoted.day == str(START + timedelta(days=DEADLINE_DAYS))
    assert (promoted.approved_by, promoted.approved_at) == ("carol", AT.isoformat())
    assert "quality not judged by the deadline; carol approved" in promoted.reason
    evidence = storage.read_json(evidence_uri(world.settings, planned))
    assert evidence["judgement"]["verdict"] == "promote"
    assert evidence["judgement"]["checks"]["decision"]["outcome"] == APPROVED
    assert evidence["decision"]["responded_by"] == "carol"
    again = record_quality_decision(world.settings, planned, judgement, decision, recorded_at="t2")
    assert again.event == step.event  # a retried task records and moves once
    assert len([e for e in read_history(world.settings) if e.run_id == "canary-unjudged"]) == 3


@pytest.mark.parametrize(
    ("response", "outcome", "by"),
    [
        (answer("Reject", "carol"), REJECTED, "carol"),
        (answer("Approve", "bob"), REFUSED, "bob"),  # bob asked for the rollout
        (answer("Reject", None, timedout=True), TIMED_OUT, None),
    ],
)
def test_any_other_answer_rolls_it_back_and_keeps_the_champion(unjudged, response, outcome, by):
    world, planned, judgement = unjudged
    decision = decide(response, requester="bob")
    step = record_quality_decision(world.settings, planned, judgement, decision, recorded_at="t1")
    assert step.action == "rollout_aborted"
    assert aliases(world) == (world.versions.good, None, None)
    events = [e for e in read_history(world.settings) if e.run_id == planned.request.run_id]
    assert [e.action for e in events] == ["rollout_started", outcome, "rollout_aborted"]
    assert (events[1].responded_by, events[1].details["stage"]) == (by, QUALITY)
    assert events[2].approved_by is None
    evidence = storage.read_json(evidence_uri(world.settings, planned))
    assert evidence["judgement"]["verdict"] == "rollback"


def test_a_judged_rollout_is_not_put_to_a_person(unjudged):
    from dataclasses import replace

    world, planned, judgement = unjudged
    decision = decide(answer("Approve", "carol"), requester=None)
    with pytest.raises(ValueError, match="needs no person"):
        record_quality_decision(
            world.settings, planned, replace(judgement, verdict="promote"), decision
        )
