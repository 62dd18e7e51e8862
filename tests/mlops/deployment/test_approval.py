"""Accountable approvals: the requester cannot approve their own rollout, and every answer
(approved, rejected, timed out, refused) is a history event naming the responder, which
never changes who served a day."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mlops.deployment.approval import (
    APPROVED,
    REFUSED,
    REJECTED,
    TIMED_OUT,
    decide,
    record_decision,
)
from mlops.deployment.plan import DeploymentRequest, plan_deployment
from mlops.registry.aliases import AliasState
from mlops.registry.history import read_history, served_on
from mlops.settings import load_settings

AT = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def response(choice: str, user: str | None, **extra) -> dict:
    by = {"id": user, "name": user} if user else None
    return {
        "chosen_options": [choice],
        "params_input": {"comment": "checked"},
        "responded_at": AT,
        "responded_by_user": by,
        **extra,
    }


def test_another_users_approve_is_an_approval_by_them():
    decision = decide(response("Approve", "carol"), requester="bob")
    assert (decision.outcome, decision.responded_by, decision.proceeds) == (APPROVED, "carol", True)
    assert (decision.responded_at, decision.comment) == (AT.isoformat(), "checked")


def test_the_requesters_own_approve_is_refused():
    decision = decide(response("Approve", "bob"), requester="bob")
    assert (decision.outcome, decision.proceeds) == (REFUSED, False)
    assert "bob requested this rollout and cannot approve it" in decision.why


def test_a_requester_matched_by_user_id_is_refused_too():
    answer = response("Approve", "bob") | {"responded_by_user": {"id": "bob", "name": "Bob B"}}
    assert decide(answer, requester="bob").outcome == REFUSED


def test_without_a_requester_any_approver_may_approve():
    assert decide(response("Approve", "bob"), requester=None).outcome == APPROVED


def test_a_reject_is_a_rejection_by_the_responder_even_from_the_requester():
    decision = decide(response("Reject", "bob"), requester="bob")
    assert (decision.outcome, decision.responded_by, decision.proceeds) == (REJECTED, "bob", False)


def test_no_answer_in_time_is_a_timeout_by_nobody():
    decision = decide(response("Reject", None, timedout=True), requester="bob")
    assert (decision.outcome, decision.responded_by, decision.proceeds) == (TIMED_OUT, None, False)


@pytest.fixture
def settings(tmp_path):
    return load_settings({"MLOPS_DATA_ROOT": str(tmp_path)})


def plan():
    request = DeploymentRequest(day=date(2018, 6, 1), version="4", run_id="manual__1", actor="t")
    return plan_deployment(request, AliasState(champion="3", previous="2"), 7)


@pytest.mark.parametrize(
    ("answer", "outcome", "by"),
    [
        (response("Approve", "carol"), APPROVED, "carol"),
        (response("Approve", "bob"), REFUSED, "bob"),
        (response("Reject", "carol"), REJECTED, "carol"),
        (response("Reject", None, timedout=True), TIMED_OUT, None),
    ],
)
def test_every_answer_is_recorded_with_its_responder(settings, answer, outcome, by):
    record_decision(settings, plan(), decide(answer, requester="bob"), recorded_at="t")
    (event,) = read_history(settings)
    assert (event.action, event.responded_by, event.version) == (outcome, by, "4")
    assert event.details["requester"] == "bob"
    assert event.before == event.after == {"champion": "3", "challenger": None, "previous": "2"}
    assert event.approved_by == (by if outcome == APPROVED else None)
    assert served_on(settings, "2018-06-02").version is None  # a decision moves nothing


def test_a_retried_approval_task_records_its_decision_once(settings):
    decision = decide(response("Reject", "carol"), requester="bob")
    first = record_decision(settings, plan(), decision, recorded_at="t1")
    assert record_decision(settings, plan(), decision, recorded_at="t2") == first
    assert [e.recorded_at for e in read_history(settings)] == ["t1"]
