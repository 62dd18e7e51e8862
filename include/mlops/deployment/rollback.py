"""A rollback that preempts: ``previous`` is champion again at once, and a rollout that is
being observed meanwhile is aborted rather than waited for.

A rollback is urgent, so it never queues behind a canary's observed days (model_rollback is a
DAG of its own, not a run of model_deployment). A rollout observed against the champion just
found bad has lost its baseline: its challenger is withdrawn, the rollout cleared, and an
abort mark written for the deployment run that waits on it (``abort_mark_uri``, keyed by the
run id the rollout state keeps). That run's sensor ends at the mark, skipped, and writes the
mark into the rollout's evidence (``aborted_rollout``).

Each move goes through the deployment history (``recorded_move``: intended, moved,
confirmed) with the rollback run's id, and what the rollback acts on is fixed when it is
planned (the bad champion, the rollout found in traffic), so a retry of the task finishes
what an earlier try began and records nothing twice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from mlops import zones
from mlops.deployment.plan import DeploymentPlan, DeploymentRequest
from mlops.deployment.run import DeploymentStep, evidence_uri, plan, roll_back
from mlops.io import storage
from mlops.registry import aliases as moves
from mlops.registry.history import DeploymentEvent, recorded_move
from mlops.registry.versions import MODEL_NAME, tracking_scope
from mlops.rollout.state import RolloutState, clear_rollout, read_rollout
from mlops.settings import Settings


@dataclass(frozen=True)
class RollbackPlan:
    """The rollback (path ``rollback``, or ``nothing`` with the reason) and the rollout found
    in traffic when it was planned (``NO_ROLLOUT`` when none)."""

    deployment: DeploymentPlan
    rollout: RolloutState

    def to_xcom(self) -> dict[str, Any]:
        return {"deployment": self.deployment.to_xcom(), "rollout": self.rollout.to_dict()}

    @classmethod
    def from_xcom(cls, data: dict[str, Any]) -> RollbackPlan:
        return cls(DeploymentPlan.from_xcom(data["deployment"]), RolloutState(**data["rollout"]))


@dataclass(frozen=True)
class RollbackResult:
    rolled_back: DeploymentStep
    aborted: DeploymentStep | None = None  # the rollout it aborted, if one was observed
    abort_mark: str | None = None

    def to_xcom(self) -> dict[str, Any]:
        return {
            "rolled_back": self.rolled_back.to_xcom(),
            "aborted": self.aborted.to_xcom() if self.aborted else None,
            "abort_mark": self.abort_mark,
        }


def rollback_request(
    params: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
    *,
    fallback_day: date,
    actor: str,
    run_id: str | None,
    superseded: tuple[dict[str, Any], ...] = (),
) -> DeploymentRequest:
    """A run's request: its Params win (``version``: the bad champion, default the current
    one; ``day``; ``reason``), then the ``extra`` of the ``rollback_request`` event it acts on
    (``mlops.deployment.events``: the newest day's), then ``fallback_day`` for the day.
    ``superseded``: the queued requests it does not act on, kept in its history record."""
    extra = extra or {}
    day = params.get("day") or extra.get("day")
    version = params.get("version") or extra.get("version")
    return DeploymentRequest(
        day=date.fromisoformat(str(day)[:10]) if day else fallback_day,
        action="rollback",
        version=str(version) if version else None,
        reason=params.get("reason") or extra.get("reason") or "",
        actor=actor,
        run_id=run_id,
        superseded=tuple(superseded),
    )


def plan_rollback(settings: Settings, request: DeploymentRequest) -> RollbackPlan:
    with tracking_scope(settings.mlflow_tracking_uri) as client:
        rollout = read_rollout(client, MODEL_NAME)
    return RollbackPlan(plan(settings, request), rollout)


def abort_mark_uri(settings: Settings, run_id: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", run_id)
    return storage.join(settings.zone(zones.ROLLOUT_ABORTS), f"{name}.json")


def roll_back_preempting(
    settings: Settings,
    planned: RollbackPlan,
    options: storage.StorageOptions | None = None,
    *,
    recorded_at: str | None = None,
) -> RollbackResult:
    """The champion goes back first (the urgent part), then the observed rollout is aborted."""
    if planned.deployment.path != "rollback":
        raise ValueError(f"nothing to roll back: {planned.deployment.why}")
    step = roll_back(settings, planned.deployment, options, recorded_at=recorded_at)
    if not planned.rollout.active:
        return RollbackResult(step)
    aborted, mark = _abort_rollout(settings, planned, options, recorded_at)
    return RollbackResult(step, aborted, mark)


def _abort_rollout(
    settings: Settings,
    planned: RollbackPlan,
    options: storage.StorageOptions | None,
    recorded_at: str | None,
) -> tuple[DeploymentStep, str | None]:
    rollout, request = planned.rollout, planned.deployment.request
    uri, version = settings.mlflow_tracking_uri, str(rollout.challenger_version)
    mark_uri = abort_mark_uri(settings, rollout.run_id) if rollout.run_id else None
    reason = f"preempted by the rollback of v{request.version}: {request.reason or 'requested'}"
    mark = {
        "run_id": rollout.run_id,
        "challenger_version": version,
        "rolled_back": request.version,
        "aborted_by": request.run_id,
        "actor": request.actor,
        "day": request.day.isoformat(),
        "reason": reason,
        "recorded_at": recorded_at,
    }

    def move() -> dict[str, str | None]:
        if mark_uri and not storage.exists(mark_uri, options):
            storage.write_json_atomic(mark_uri, mark, options)  # the waiting run stops here
        after = moves.withdraw_challenger(uri, expected_version=version).after
        with tracking_scope(uri) as client:
            if read_rollout(client, MODEL_NAME).challenger_version == version:
                clear_rollout(client, MODEL_NAME)
        return after.to_dict()

    intent = DeploymentEvent(
        day=request.day.isoformat(),
        action="rollout_aborted",
        model_name=MODEL_NAME,
        version=version,
        before=moves.alias_state(uri).to_dict(),
        after={},
        reason=reason,
        actor=request.actor,
        strategy=rollout.strategy,
        run_id=request.run_id,
        recorded_at=recorded_at,
        details={"aborted_run_id": rollout.run_id, "abort_mark": mark_uri},
    )
    event, event_uri = recorded_move(settings, intent, move, options)
    changed = event.before != event.after
    step = DeploymentStep("rollout_aborted", version, changed, reason, event.after, event_uri)
    return step, mark_uri


def aborted_rollout(
    settings: Settings,
    deployment: DeploymentPlan,
    run_id: str,
    options: storage.StorageOptions | None = None,
) -> dict[str, Any] | None:
    """The abort mark of the deployment run ``run_id`` (None while there is none); once found,
    it is kept in the rollout's evidence, in place of the judgement it will never get."""
    uri = abort_mark_uri(settings, run_id)
    if not storage.exists(uri, options):
        return None
    mark = storage.read_json(uri, options)
    evidence = {"plan": deployment.to_xcom(), "judgement": None, "aborted": mark}
    storage.write_json_atomic(evidence_uri(settings, deployment), evidence, options)
    return mark


__all__ = [
    "RollbackPlan",
    "RollbackResult",
    "abort_mark_uri",
    "aborted_rollout",
    "plan_rollback",
    "roll_back_preempting",
    "rollback_request",
]
