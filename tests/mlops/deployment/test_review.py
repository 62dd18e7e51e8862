"""A person's review of a needs_review candidate: an approval vouches for the version, makes
it the challenger and lets model_deployment plan it without asking again (naming the
reviewer in the deployment); any other answer moves nothing. Every answer is one history
event of the review stage."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mlops.deployment.approval import APPROVED, REFUSED, REJECTED, TIMED_OUT, decide
from mlops.deployment.plan import DeploymentRequest, DeploymentRequestError
from mlops.deployment.review import (
    REVIEW,
    CandidateReview,
    needs_review,
    record_review,
    review_body,
)
from mlops.registry.aliases import alias_state
from mlops.registry.history import read_history
from mlops.registry.trust import (
    TAG_GATE_OUTCOME,
    TAG_HUMAN_APPROVAL,
    approval_refusal,
    human_approver,
)
from mlops.registry.versions import MODEL_NAME
from mlops.settings import load_settings
from tests.support.hitl import hitl_response

AT = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
DAY = date(2018, 7, 9)
OUTCOME = {
    "outcome": "needs_review",
    "reasons": ["paired bootstrap straddles the margin", "force_review: asked"],
    "run_id": "abc123",
    "model_version": "2",
    "metrics": {
        "candidate": {"average_precision": 0.51234, "roc_auc": 0.9, "n_frauds": 120},
        "champion": {"average_precision": 0.5, "roc_auc": None, "n_frauds": 120},
    },
}


def answer(choice: str, user: str | None, **extra) -> dict:
    return hitl_response(choice, user, at=AT, comment="read the card", **extra)


@pytest.fixture
def settings(tmp_path):
    """A data root and a registry holding v1 (champion, approved) and v2 (needs_review)."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(MODEL_NAME)
    for version, outcome in (("1", "approve"), ("2", "needs_review")):
        client.create_model_version(MODEL_NAME, source=str(tmp_path / f"v{version}"))
        client.set_model_version_tag(MODEL_NAME, version, TAG_GATE_OUTCOME, outcome)
    client.set_registered_model_alias(MODEL_NAME, "champion", "1")
    return load_settings(
        {"MLOPS_DATA_ROOT": str(tmp_path / "data"), "MLOPS_MLFLOW_TRACKING_URI": uri}
    )


def review() -> CandidateReview:
    return CandidateReview.from_outcome(
        OUTCOME, DAY, actor="model_training/manual", run_id="manual__1"
    )


def tags(settings) -> dict[str, str]:
    import mlflow

    uri = settings.mlflow_tracking_uri
    return (
        mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        .get_model_version(MODEL_NAME, "2")
        .tags
    )


def test_only_a_needs_review_this_run_decided_asks_a_person():
    assert needs_review(OUTCOME)
    assert not needs_review({**OUTCOME, "reused": True})  # the deciding run asked
    assert not needs_review({**OUTCOME, "outcome": "approve"})
    assert not needs_review({**OUTCOME, "outcome": "reject"})


def test_the_question_names_the_version_the_reasons_and_the_metrics():
    body = review_body(OUTCOME, DAY)
    assert "**v2**, trained as of 2018-07-09" in body and "`abc123`" in body
    assert "- paired bootstrap straddles the margin" in body
    assert "candidate: average_precision 0.5123, roc_auc 0.9000, n_frauds 120" in body
    assert "champion: average_precision 0.5000, n_frauds 120" in body


def test_an_approval_vouches_for_the_version_and_makes_it_the_challenger(settings):
    decision = decide(answer("Approve", "carol"), requester=None)
    record_review(settings, review(), decision, recorded_at="t1")
    found = tags(settings)
    assert found[TAG_HUMAN_APPROVAL] == f"approved by carol at {AT.isoformat()}"
    assert approval_refusal(found) is None  # it may load now
    assert human_approver(found) == ("carol", AT.isoformat())
    assert (alias_state(settings.mlflow_tracking_uri).challenger) == "2"
    (event,) = read_history(settings)
    assert (event.action, event.version, event.day) == (APPROVED, "2", "2018-07-09")
    assert (event.responded_by, event.approved_by, event.approved_at) == (
        "carol",
        "carol",
        AT.isoformat(),
    )
    assert (event.actor, event.run_id) == ("model_training/manual", "manual__1")
    assert event.details["stage"] == REVIEW and event.details["comment"] == "read the card"
    assert event.details["gate_reasons"] == OUTCOME["reasons"]
    assert event.details["mlflow_run_id"] == "abc123"


@pytest.mark.parametrize(
    ("response", "outcome", "by"),
    [
        (answer("Reject", "carol"), REJECTED, "carol"),
        (answer("Approve", "bob"), REFUSED, "bob"),  # bob asked for the run
        (answer("Reject", None, timedout=True), TIMED_OUT, None),
    ],
)
def test_any_other_answer_is_recorded_and_moves_nothing(settings, response, outcome, by):
    record_review(settings, review(), decide(response, requester="bob"), recorded_at="t1")
    assert TAG_HUMAN_APPROVAL not in tags(settings)
    state = alias_state(settings.mlflow_tracking_uri)
    assert (state.champion, state.challenger) == ("1", None)
    (event,) = read_history(settings)
    assert (event.action, event.responded_by, event.approved_by) == (outcome, by, None)
    assert event.details["stage"] == REVIEW and event.details["requester"] == "bob"
    assert event.before == event.after


def test_a_retried_review_records_its_answer_once(settings):
    decision = decide(answer("Approve", "carol"), requester=None)
    first = record_review(settings, review(), decision, recorded_at="t1")
    assert record_review(settings, review(), decision, recorded_at="t2") == first
    assert [e.recorded_at for e in read_history(settings)] == ["t1"]
    assert alias_state(settings.mlflow_tracking_uri).challenger == "2"


def test_a_reviewed_version_is_deployed_without_a_second_approval_naming_its_reviewer(settings):
    from mlops.deployment.run import plan, start

    request = DeploymentRequest(day=DAY, version="2", strategy="direct", run_id="asset__1")
    with pytest.raises(DeploymentRequestError, match="asked for a review"):
        plan(settings, request)  # not reviewed yet: nothing would load it
    record_review(settings, review(), decide(answer("Approve", "carol"), requester=None))
    step = start(settings, plan(settings, request), recorded_at="t2")
    assert (step.action, step.aliases["champion"]) == ("deployed", "2")
    deployed = [e for e in read_history(settings) if e.action == "deployed"]
    assert (deployed[0].approved_by, deployed[0].approved_at) == ("carol", AT.isoformat())
