"""Accountable approvals: a human's answer to a rollout, judged and written to the history.

The answer is Airflow's human-in-the-loop response (``chosen_options``, ``responded_by_user``
``{"id", "name"}``, ``responded_at``, ``params_input``, and ``timedout`` when the scheduler
applied the default because nobody answered in time). The requester of a rollout (the user
who triggered the run) cannot approve it: their Approve is refused, recorded as such, and
the rollout does not go ahead. Every outcome (approved, rejected, timed out, refused) is one
history event naming the responder; the aliases do not move with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops.deployment.plan import DeploymentPlan
from mlops.io import storage
from mlops.registry.history import DeploymentEvent, record_event
from mlops.registry.versions import MODEL_NAME
from mlops.settings import Settings

APPROVE = "Approve"
APPROVED, REJECTED = "approved", "rejected"
TIMED_OUT, REFUSED = "approval_timed_out", "approval_refused"


@dataclass(frozen=True)
class Decision:
    """What an answer to a rollout amounts to, and who gave it."""

    outcome: str  # approved | rejected | approval_timed_out | approval_refused
    responded_by: str | None  # the responder's name (None: nobody answered)
    responder_id: str | None
    responded_at: str | None
    requester: str | None
    comment: str | None
    why: str

    @property
    def proceeds(self) -> bool:
        return self.outcome == APPROVED


def decide(response: Mapping[str, Any], requester: str | None) -> Decision:
    """The outcome of ``response`` to a rollout that ``requester`` asked for (None: no user
    asked, e.g. an asset-triggered run)."""
    user = response.get("responded_by_user") or {}
    name, user_id = user.get("name"), user.get("id")
    at = response.get("responded_at")
    at = at.isoformat() if hasattr(at, "isoformat") else at
    comment = (response.get("params_input") or {}).get("comment")
    chosen = list(response.get("chosen_options") or [])
    if response.get("timedout") or not user:
        outcome, why = TIMED_OUT, f"nobody answered in time; the default {chosen} applied"
    elif chosen != [APPROVE]:
        outcome, why = REJECTED, f"{name} answered {chosen}"
    elif requester and requester in (name, user_id):
        outcome = REFUSED
        why = f"{name} requested this rollout and cannot approve it; another approver must"
    else:
        outcome, why = APPROVED, f"{name} approved"
    return Decision(outcome, name, user_id, at, requester, comment, why)


def decision_event(
    decision: Decision,
    *,
    day: str,
    version: str,
    aliases: dict[str, str | None],
    actor: str,
    strategy: str,
    run_id: str | None,
    recorded_at: str | None,
    details: Mapping[str, Any],
) -> DeploymentEvent:
    """The history event of ``decision`` about ``version`` (nothing moves: ``aliases`` are
    both its before and its after)."""
    return DeploymentEvent(
        day=day,
        action=decision.outcome,
        model_name=MODEL_NAME,
        version=str(version),
        before=aliases,
        after=aliases,
        reason=decision.why,
        actor=actor,
        strategy=strategy,
        approved_by=decision.responded_by if decision.proceeds else None,
        approved_at=decision.responded_at if decision.proceeds else None,
        responded_by=decision.responded_by,
        run_id=run_id,
        recorded_at=recorded_at,
        details={
            "responder_id": decision.responder_id,
            "responded_at": decision.responded_at,
            "requester": decision.requester,
            "comment": decision.comment,
            **details,
        },
    )


def record_decision(
    settings: Settings,
    plan: DeploymentPlan,
    decision: Decision,
    options: storage.StorageOptions | None = None,
    *,
    recorded_at: str | None = None,
) -> str:
    """The decision as a history event of the plan's day and run (idempotent); its URI."""
    request = plan.request
    event = decision_event(
        decision,
        day=request.day.isoformat(),
        version=str(request.version),
        aliases=plan.aliases.to_dict(),
        actor=request.actor,
        strategy=plan.strategy,
        run_id=request.run_id,
        recorded_at=recorded_at,
        details={"request_reason": request.reason},
    )
    return record_event(settings, event, options)


__all__ = [
    "APPROVED",
    "REFUSED",
    "REJECTED",
    "TIMED_OUT",
    "Decision",
    "decide",
    "decision_event",
    "record_decision",
]
