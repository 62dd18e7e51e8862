"""A person decides a rollout whose quality could not be judged by its deadline.

A canary is observed until its matured rows hold enough frauds to judge its average
precision against the champion's (``mlops.deployment.maturity``). When the data clock
reaches the request's ``quality_deadline_days`` first, a healthy challenger is judged
``REVIEW`` (``mlops.deployment.judge``): nothing promotes it without a person. model_deployment
then asks the rollout approvers (Airflow's HITL approval, ``mlops.deployment.approval``: the
same judgement of an answer, the requester's own Approve refused). An approval promotes the
challenger, the approver named on the ``promoted`` event; a rejection, a refused
self-approval or no answer in time rolls it back (challenger withdrawn, the champion kept).
The answer is one history event (``approved``, ``rejected``, ``approval_refused``,
``approval_timed_out``, with ``details.stage = "quality"`` and the observation), the end of
the rollout another, and the evidence in ``reports/deployments/`` gets the decision.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from mlops.deployment.approval import Decision, decision_event
from mlops.deployment.judge import PROMOTE, REVIEW, ROLLBACK, Judgement
from mlops.deployment.plan import DeploymentPlan
from mlops.deployment.run import Approval, DeploymentStep, evidence_uri, finish, judged_plan
from mlops.io import storage
from mlops.registry import aliases
from mlops.registry.history import record_event
from mlops.settings import Settings

QUALITY = "quality"  # the history events' details["stage"]


def quality_body(plan: DeploymentPlan, judgement: Judgement) -> str:
    """The question put to the approvers (markdown): what was observed, and why it is
    theirs to decide."""
    seen = judgement.checks.get("observation") or {}
    quality = judgement.checks.get("quality") or {}
    request = plan.request
    return "\n".join(
        [
            f"The {plan.strategy} of **v{request.version}** against champion "
            f"v{plan.aliases.champion}, started on {request.day}, reached its deadline "
            f"({seen.get('deadline_day')}) without enough matured frauds to judge its average "
            "precision against the champion's.",
            "",
            f"- observed data days: {len(seen.get('observed_days') or [])}, up to "
            f"{seen.get('judge_day')}",
            f"- matured rows: {quality.get('rows', 0)}, frauds among them: "
            f"{quality.get('frauds', 0)} (at least {seen.get('min_frauds')} needed)",
            *(f"- {reason}" for reason in judgement.reasons),
            "",
            f"Approve: v{request.version} is promoted to champion without a quality judgement. "
            f"Reject, or no answer in time: it is rolled back; v{plan.aliases.champion} stays.",
        ]
    )


def record_quality_decision(
    settings: Settings,
    plan: DeploymentPlan,
    judgement: Judgement,
    decision: Decision,
    options: storage.StorageOptions | None = None,
    *,
    recorded_at: str | None = None,
) -> DeploymentStep:
    """The answer as a history event, then the rollout ended by it: promoted on an approval,
    rolled back otherwise (each idempotent: a retried task records and moves once)."""
    if judgement.verdict != REVIEW:
        raise ValueError(f"a {judgement.verdict!r} judgement needs no person")
    judged = judged_plan(settings, plan, judgement)
    request = plan.request
    record_event(
        settings,
        decision_event(
            decision,
            day=str(judged.judge_day),
            version=str(request.version),
            aliases=aliases.alias_state(settings.mlflow_tracking_uri).to_dict(),
            actor=request.actor,
            strategy=plan.strategy,
            run_id=request.run_id,
            recorded_at=recorded_at,
            details={
                "stage": QUALITY,
                "judgement_reasons": list(judgement.reasons),
                "observation": judgement.checks.get("observation"),
            },
        ),
        options,
    )
    verdict = PROMOTE if decision.proceeds else ROLLBACK
    decided: dict[str, Any] = {"outcome": decision.outcome, "why": decision.why}
    decided |= {"responded_by": decision.responded_by, "responded_at": decision.responded_at}
    ended = replace(
        judgement,
        verdict=verdict,
        reasons=(*judgement.reasons[:-1], f"quality not judged by the deadline; {decision.why}"),
        checks={**judgement.checks, "decision": decided},
    )
    approval = Approval(decision.responded_by, decision.responded_at, decision.comment)
    evidence = {"plan": plan.to_xcom(), "judgement": ended.to_dict(), "decision": asdict(decision)}
    storage.write_json_atomic(evidence_uri(settings, plan), evidence, options)
    return finish(
        settings,
        plan,
        ended,
        options,
        approval=approval if decision.proceeds else Approval(),
        recorded_at=recorded_at,
    )


__all__ = ["QUALITY", "quality_body", "record_quality_decision"]
