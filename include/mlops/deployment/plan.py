"""What a deployment run will do, decided before anything moves.

A request comes from the ``candidate_model`` asset event (a version the gate approved, and
the data day it was trained as of) or from a person (the DAG's Params). The plan fixes the
strategy (a first model, with no champion to compare against, always goes ``direct``), the
data days the rollout is observed on and the day it is judged: ``D+1 .. D+N`` for a rollout
started on data day ``D``, judged at ``D+N``, or, when the matured labels are wanted, at
``D+N+delay`` (the day the labels of ``D+N`` become known). Only data days enter the plan:
a backfill or a simulation advances them exactly as production does.

That window is the least a rollout is observed. By default (``judge_quality``) it is then
observed one more data day at a time (``extended``) until its matured rows hold enough frauds
to judge quality, or until ``quality_deadline_days`` after ``D``, when a person decides
(``mlops.deployment.maturity``).

Its quality is judged on more than the rows it served. The days after the candidate's own
data (the end of its evaluation window) up to ``D`` are days it never saw, trained on nor
was gated on: the champion served them, and the challenger scores them by replay when the
rollout starts (``mlops.deployment.replay``). Their labels mature a week before those of
``D+1``, so a candidate trained after a breach is judged on a week of the new data sooner
than its own traffic can be (``replayed_days``: at most ``REPLAY_LIMIT_DAYS``, the newest).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from typing import Any

from mlops.registry.aliases import AliasState
from mlops.rollout.state import STRATEGIES

ACTIONS = ("deploy", "rollback")
REPLAY_LIMIT_DAYS = 14
PATHS = ("start", "rollback", "nothing")


class DeploymentRequestError(ValueError):
    """A request that cannot be carried out; the message names the field."""


@dataclass(frozen=True)
class DeploymentRequest:
    day: date  # the data day the deployment happens at (D)
    action: str = "deploy"
    version: str | None = None  # deploy: the version to roll out; rollback: the bad champion
    strategy: str = "canary"
    canary_share: float = 0.1
    observation_days: int = 7
    wait_for_labels: bool = True
    require_approval: bool = False
    # judge matured AP against the champion before promoting; past the deadline, a person
    judge_quality: bool = True
    quality_deadline_days: int = 30  # data days after ``day``
    reason: str = ""
    actor: str = "model_deployment"
    run_id: str | None = None
    # the queued events the run did not act on (mlops.deployment.events), as recorded
    superseded: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise DeploymentRequestError(f"action must be one of {ACTIONS}, got {self.action!r}")
        if self.strategy not in STRATEGIES:
            raise DeploymentRequestError(
                f"strategy must be one of {STRATEGIES}, got {self.strategy!r}"
            )
        if self.action == "deploy" and not str(self.version or "").isdigit():
            raise DeploymentRequestError(f"version must be a version number, got {self.version!r}")
        share = self.canary_share
        if not (isinstance(share, int | float) and math.isfinite(share) and 0 < share <= 1):
            raise DeploymentRequestError(f"canary_share must be in (0, 1], got {share!r}")
        if not 1 <= self.observation_days <= 90:
            raise DeploymentRequestError(
                f"observation_days must be in 1..90, got {self.observation_days}"
            )
        if not 1 <= self.quality_deadline_days <= 365:
            raise DeploymentRequestError(
                f"quality_deadline_days must be in 1..365, got {self.quality_deadline_days}"
            )


@dataclass(frozen=True)
class DeploymentPlan:
    request: DeploymentRequest
    path: str  # start | rollback | nothing
    strategy: str  # the strategy actually used (a first model goes direct)
    aliases: AliasState  # as found when planning
    why: str
    observed_days: tuple[str, ...] = ()  # D+1 .. D+N
    judge_day: str | None = None  # the data day the rollout is judged at
    label_days: tuple[str, ...] = ()  # replayed and observed days matured at judge_day
    replayed_days: tuple[str, ...] = ()  # after the candidate's data, up to D (module doc)

    @property
    def observes(self) -> bool:
        return self.path == "start" and self.strategy != "direct"

    def to_xcom(self) -> dict[str, Any]:
        request = {**asdict(self.request), "day": self.request.day.isoformat()}
        return {**asdict(self), "request": request, "aliases": self.aliases.to_dict()}

    @classmethod
    def from_xcom(cls, data: dict[str, Any]) -> DeploymentPlan:
        request = dict(data["request"], day=date.fromisoformat(data["request"]["day"]))
        request["superseded"] = tuple(request.get("superseded") or ())
        return cls(
            **{
                **data,
                "request": DeploymentRequest(**request),
                "aliases": AliasState(**data["aliases"]),
                "observed_days": tuple(data["observed_days"]),
                "label_days": tuple(data["label_days"]),
                "replayed_days": tuple(data.get("replayed_days") or ()),
            }
        )


def deployment_request(
    params: Mapping[str, Any],
    extra: Mapping[str, Any],
    *,
    fallback_day: date,
    actor: str,
    run_id: str | None = None,
    superseded: tuple[dict[str, Any], ...] = (),
) -> DeploymentRequest:
    """A run's request: its Params win, then the ``extra`` of the ``candidate_model`` event
    it acts on (version, day; ``mlops.deployment.events.choose_event``), then
    ``fallback_day`` (the run's own date). ``superseded``: the events it does not act on."""
    day = params.get("day") or extra.get("day")
    version = params.get("version") or extra.get("model_version")
    return DeploymentRequest(
        day=date.fromisoformat(str(day)[:10]) if day else fallback_day,
        action=params["action"],
        version=str(version) if version is not None else None,
        strategy=params["strategy"],
        canary_share=float(params["canary_share"]),
        observation_days=int(params["observation_days"]),
        wait_for_labels=bool(params["wait_for_labels"]),
        require_approval=bool(params["require_approval"]),
        judge_quality=bool(params.get("judge_quality", True)),
        quality_deadline_days=int(params.get("quality_deadline_days") or 30),
        reason=params.get("reason") or extra.get("reason") or "",
        actor=actor,
        run_id=run_id,
        superseded=tuple(superseded),
    )


def unseen_days(data_end: date | None, day: date, limit: int = REPLAY_LIMIT_DAYS) -> list[date]:
    """The days from ``data_end`` (the first day after a candidate's data) to ``day``, the
    newest ``limit`` of them."""
    if data_end is None or limit < 1:
        return []
    first = max(data_end, day - timedelta(days=limit - 1))
    return [first + timedelta(days=i) for i in range((day - first).days + 1)]


def _window(
    request: DeploymentRequest,
    delay_days: int,
    extra_days: int = 0,
    replayed: tuple[str, ...] = (),
) -> dict[str, Any]:
    observed = request.observation_days + extra_days
    days = [request.day + timedelta(days=i) for i in range(1, observed + 1)]
    judge_day = days[-1] + timedelta(days=delay_days if request.wait_for_labels else 0)
    known = (judge_day - timedelta(days=delay_days)).isoformat()
    observed_days = tuple(d.isoformat() for d in days)
    return {
        "observed_days": observed_days,
        "judge_day": judge_day.isoformat(),
        "label_days": tuple(d for d in (*replayed, *observed_days) if d <= known),
        "replayed_days": replayed,
    }


def extended(plan: DeploymentPlan, extra_days: int, delay_days: int) -> DeploymentPlan:
    """``plan`` observed ``extra_days`` more data days: its observed days, judgement day and
    matured days all move on by as many (the request, as asked, is kept)."""
    if not plan.observes or extra_days == 0:
        return plan
    return replace(plan, **_window(plan.request, delay_days, extra_days, plan.replayed_days))


def plan_deployment(
    request: DeploymentRequest,
    aliases: AliasState,
    delay_days: int,
    data_end: date | None = None,
) -> DeploymentPlan:
    """The plan of ``request`` given the aliases as they are now (pure); ``data_end``: the
    first day after the version's training and evaluation data, when known."""
    if request.action == "rollback":
        if aliases.previous is None:
            why = "no previous version to roll back to"
            return DeploymentPlan(request, "nothing", "direct", aliases, why)
        bad = request.version or aliases.champion
        if bad is not None and str(bad) != aliases.champion:
            why = f"champion is v{aliases.champion}, not v{bad}: nothing to roll back"
            return DeploymentPlan(request, "nothing", "direct", aliases, why)
        request = replace(request, version=aliases.champion)
        why = f"roll back v{aliases.champion} to v{aliases.previous}"
        return DeploymentPlan(request, "rollback", "direct", aliases, why)
    version = str(request.version)
    if version == aliases.champion:
        return DeploymentPlan(request, "nothing", "direct", aliases, f"v{version} is champion")
    if aliases.champion is None:
        why = f"first model: v{version} goes direct (no champion to compare against)"
        return DeploymentPlan(request, "start", "direct", aliases, why)
    if request.strategy == "direct":
        why = f"v{version} replaces v{aliases.champion} at once; v{aliases.champion} kept warm"
        return DeploymentPlan(request, "start", "direct", aliases, why)
    why = f"{request.strategy} of v{version} against champion v{aliases.champion}"
    unseen = unseen_days(data_end, request.day) if request.judge_quality else []
    window = _window(request, delay_days, replayed=tuple(d.isoformat() for d in unseen))
    return DeploymentPlan(request, "start", request.strategy, aliases, why, **window)


__all__ = [
    "ACTIONS",
    "REPLAY_LIMIT_DAYS",
    "DeploymentPlan",
    "DeploymentRequest",
    "DeploymentRequestError",
    "deployment_request",
    "extended",
    "plan_deployment",
    "unseen_days",
]
