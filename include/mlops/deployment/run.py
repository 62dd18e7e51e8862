"""The deployment stage: plan, start a rollout, judge it, promote or roll back; each move
recorded in the deployment history.

Every entry re-reads the registry and acts only when it still looks as the plan saw it, so an
Airflow retry after a crash finishes the move instead of doing it twice, and a rollout that
was replaced meanwhile is left alone. Each move and its history event are one step
(``mlops.registry.history.recorded_move``): intended, moved, confirmed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any

from mlops import zones
from mlops.deployment.judge import PROMOTE, ROLLBACK, Judgement, RolloutPolicy, judge
from mlops.deployment.maturity import observation_markers, observe, observed_rows
from mlops.deployment.plan import (
    DeploymentPlan,
    DeploymentRequest,
    DeploymentRequestError,
    extended,
    plan_deployment,
)
from mlops.deployment.replay import replay_unseen
from mlops.io import storage
from mlops.registry import aliases as moves
from mlops.registry import trust
from mlops.registry.history import DeploymentEvent, recorded_move
from mlops.registry.versions import MODEL_NAME, tracking_scope
from mlops.rollout.state import RolloutState, clear_rollout, read_rollout, write_rollout
from mlops.settings import Settings


@dataclass(frozen=True)
class Approval:
    """Who let the rollout go ahead (a HITL response), if anyone was asked."""

    by: str | None = None
    at: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class DeploymentStep:
    """What one entry did: the alias move, the event recorded, the judgement behind it."""

    action: str
    version: str | None
    changed: bool
    reason: str
    aliases: dict[str, str | None]
    event: str | None = None
    judgement: dict[str, Any] | None = None

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)


def plan(settings: Settings, request: DeploymentRequest) -> DeploymentPlan:
    state, data_end = moves.alias_state(settings.mlflow_tracking_uri), None
    if request.action == "deploy":
        with tracking_scope(settings.mlflow_tracking_uri) as client:
            found = client.get_model_version(MODEL_NAME, str(request.version))  # raises if absent
            data_end = _data_end(client, found.run_id)
        _require_loadable(request, found.tags)
    return plan_deployment(request, state, settings.label_delay_days, data_end)


def _data_end(client: Any, run_id: str | None) -> date | None:
    """The first day after the version's training and evaluation data (its run's
    ``eval_end``), if the run says."""
    found = client.get_run(run_id).data.params.get("eval_end") if run_id else None
    return date.fromisoformat(found) if found else None


def _require_loadable(request: DeploymentRequest, tags: dict[str, str]) -> None:
    """Refuse to roll out a version that nothing would load (``mlops.registry.trust``): one the
    gate did not approve, unless it asked for a review and this rollout asks a person."""
    why = trust.approval_refusal(tags)
    review = tags.get(trust.TAG_GATE_OUTCOME) == "needs_review"
    if why is not None and not (review and request.require_approval):
        hint = "; deploy it with require_approval for a person to approve it" if review else ""
        raise DeploymentRequestError(f"v{request.version} cannot serve: {why}{hint}")


def _reviewed(tracking_uri: str, version: str) -> Approval:
    """The approval a version carries from its review, if any (for the history's record)."""
    with tracking_scope(tracking_uri) as client:
        tags = client.get_model_version(MODEL_NAME, version).tags
    found = trust.human_approver(tags)
    return Approval(by=found[0], at=found[1]) if found else Approval()


def _moved(
    settings: Settings,
    plan: DeploymentPlan,
    action: str,
    move: Callable[[], moves.AliasState],
    options: storage.StorageOptions | None,
    *,
    reason: str,
    approval: Approval = Approval(),
    evidence: str | None = None,
    recorded_at: str | None = None,
) -> DeploymentStep:
    """``move`` and its history event as one step (``history.recorded_move``): a retry after
    a crash anywhere in it finishes the move and records what the first attempt found."""
    request = plan.request
    intent = DeploymentEvent(
        # a rollout's end is decided on its judgement day; every other move on the request's
        day=str(plan.judge_day)
        if action in ("promoted", "rollout_aborted")
        else request.day.isoformat(),
        action=action,
        model_name=MODEL_NAME,
        version=str(request.version),
        before=moves.alias_state(settings.mlflow_tracking_uri).to_dict(),
        after={},
        reason=reason,
        actor=request.actor,
        strategy=plan.strategy,
        approved_by=approval.by,
        approved_at=approval.at,
        evidence=evidence,
        run_id=request.run_id,
        recorded_at=recorded_at,
        details={
            "request_reason": request.reason,
            "approval_comment": approval.comment,
            # the queued events this run chose against (mlops.deployment.events)
            **({"superseded": list(request.superseded)} if request.superseded else {}),
        },
    )
    event, uri = recorded_move(settings, intent, lambda: move().to_dict(), options)
    changed = event.before != event.after
    return DeploymentStep(action, event.version, changed, reason, event.after, uri)


def start(
    settings: Settings,
    plan: DeploymentPlan,
    options: storage.StorageOptions | None = None,
    *,
    approval: Approval = Approval(),
    recorded_at: str | None = None,
) -> DeploymentStep:
    """Direct: the version becomes champion now. Shadow/canary: it becomes the challenger
    and the rollout tag routes traffic to it from the next scored day on; the days it never
    saw are scored by replay for its judgement (``mlops.deployment.replay``)."""
    if plan.path != "start":
        raise ValueError(f"a {plan.path!r} plan does not start a rollout ({plan.why})")
    uri, version = settings.mlflow_tracking_uri, str(plan.request.version)
    if approval.by:  # on the version: one under review may now load (mlops.registry.trust)
        trust.record_human_approval(uri, MODEL_NAME, version, approval.by, approval.at)
    else:  # a person who reviewed it in model_training (mlops.deployment.review) approved it
        approval = _reviewed(uri, version)

    def move() -> moves.AliasState:
        after = moves.set_challenger(uri, version).after
        if plan.strategy == "direct":
            return moves.promote_challenger(uri, expected_version=version).after
        state = RolloutState(
            strategy=plan.strategy,
            challenger_version=version,
            canary_share=plan.request.canary_share if plan.strategy == "canary" else 0.0,
            start_day=plan.request.day.isoformat(),
            champion_version=plan.aliases.champion,
            run_id=plan.request.run_id,
        )
        with tracking_scope(uri) as client:
            write_rollout(client, MODEL_NAME, state)
        return after

    if plan.strategy == "direct":
        action, reason = "deployed", plan.why
    else:
        action = "rollout_started"
        reason = f"{plan.why}, observed on {len(plan.observed_days)} days"
    step = _moved(
        settings,
        plan,
        action,
        move,
        options,
        reason=reason,
        approval=approval,
        recorded_at=recorded_at,
    )
    if plan.observes:  # the days it never saw, scored for its quality judgement
        replay_unseen(settings, plan, options)
    return step


def evidence_uri(settings: Settings, plan: DeploymentPlan) -> str:
    name = f"{MODEL_NAME}-v{plan.request.version}-{plan.request.day.isoformat()}.json"
    return storage.join(settings.zone(zones.DEPLOYMENT_REPORTS), name)


def judge_rollout(
    settings: Settings,
    plan: DeploymentPlan,
    options: storage.StorageOptions | None = None,
    policy: RolloutPolicy | None = None,
) -> Judgement:
    """Judge the rollout where its observation concluded (``mlops.deployment.maturity``):
    on quality once its matured rows hold enough frauds, on its window when it fails there,
    or, at the deadline without enough frauds, on health alone for a person to decide
    (``REVIEW``). The evidence (the observation:
    days, matured rows and frauds; the judgement: each check, the bootstrap's AP of both
    variants and its interval) is written beside the history."""
    policy = policy or RolloutPolicy()
    seen = observe(settings, plan, options, policy)
    if not seen.concluded:
        raise RuntimeError(
            f"the rollout of v{plan.request.version} is still observed: "
            f"{', '.join(seen.missing)} missing (wait_for_observed_days ends when they are in)"
        )
    rows, labelled = observed_rows(settings, seen.plan, options)
    judgement = judge(rows, labelled, policy, require_quality=plan.request.judge_quality)
    judgement = replace(judgement, checks={**judgement.checks, "observation": seen.to_dict()})
    evidence = {"plan": plan.to_xcom(), "judgement": judgement.to_dict()}
    storage.write_json_atomic(evidence_uri(settings, plan), evidence, options)
    return judgement


def judged_plan(settings: Settings, plan: DeploymentPlan, judgement: Judgement) -> DeploymentPlan:
    """``plan`` as it was observed until ``judgement`` (its extra days)."""
    extra = (judgement.checks.get("observation") or {}).get("extra_days", 0)
    return extended(plan, int(extra), settings.label_delay_days)


def finish(
    settings: Settings,
    plan: DeploymentPlan,
    judgement: Judgement,
    options: storage.StorageOptions | None = None,
    *,
    approval: Approval = Approval(),
    recorded_at: str | None = None,
) -> DeploymentStep:
    """Promote (champion moves, the old one becomes ``previous``) or roll back (challenger
    alias and rollout cleared, champion untouched), as the judgement says; on the day the
    rollout was judged at. A ``REVIEW`` is a person's to decide (``quality_review``)."""
    if judgement.verdict not in (PROMOTE, ROLLBACK):
        raise ValueError(f"a {judgement.verdict!r} judgement is decided by a person, not here")
    uri, version = settings.mlflow_tracking_uri, str(plan.request.version)
    plan = judged_plan(settings, plan, judgement)

    def move() -> moves.AliasState:
        if judgement.verdict == PROMOTE:
            after = moves.promote_challenger(uri, expected_version=version).after
        else:
            after = moves.withdraw_challenger(uri, expected_version=version).after
        with tracking_scope(uri) as client:
            if read_rollout(client, MODEL_NAME).challenger_version == version:
                clear_rollout(client, MODEL_NAME)
        return after

    action = "promoted" if judgement.verdict == PROMOTE else "rollout_aborted"
    step = _moved(
        settings,
        plan,
        action,
        move,
        options,
        reason="; ".join(judgement.reasons),
        approval=approval,
        evidence=evidence_uri(settings, plan),
        recorded_at=recorded_at,
    )
    return replace(step, judgement=judgement.to_dict())


def roll_back(
    settings: Settings,
    plan: DeploymentPlan,
    options: storage.StorageOptions | None = None,
    *,
    recorded_at: str | None = None,
) -> DeploymentStep:
    """``previous`` becomes champion again (the bad version is tagged rolled back)."""

    def move() -> moves.AliasState:
        return moves.rollback(settings.mlflow_tracking_uri, expected_champion=version).after

    version = plan.request.version
    reason = plan.request.reason or plan.why
    return _moved(
        settings, plan, "rolled_back", move, options, reason=reason, recorded_at=recorded_at
    )


__all__ = [
    "Approval",
    "DeploymentStep",
    "evidence_uri",
    "finish",
    "judge_rollout",
    "judged_plan",
    "observation_markers",
    "observed_rows",
    "plan",
    "roll_back",
    "start",
]
