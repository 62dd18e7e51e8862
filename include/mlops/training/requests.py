"""What a run of model_training is asked: its Params, and the retrain requests that woke it.

An asset-triggered run has no logical date: the data day travels in the ``retrain_request``
events' extras (``{"day": D, "reasons": [...]}``, what model_monitoring emits), and so does
why the run was asked for, and, for a request that follows a breach, the first data day of
the breach (``"breach_since"``), which places the run's windows after it
(``mlops.training.windows``). The DAG's tasks and any other driver of the stage entries (the
in-process day loop of ``demo.day_loop``) read them through these functions, so both build
the same ``TrainingRequest`` from the same inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # job imports the gate and scikit-learn: the light tasks need none of it
    from mlops.training.job import TrainingRequest


def retrain_request(decision: Mapping[str, Any]) -> dict[str, Any]:
    """The extra of the ``retrain_request`` event that a retrain decision emits."""
    extra = {"day": decision["day"], "reasons": list(decision["reasons"])}
    if decision.get("breach_since"):
        extra["breach_since"] = decision["breach_since"]
    return extra


def requested_breach_since(extras: Sequence[Mapping[str, Any]]) -> date | None:
    """The ``breach_since`` of the newest request (the one whose day the run trains as of),
    if it carries one: a request without it (staleness, a manual one) keeps the routine
    windows even when an older event in the batch had it."""
    dated = [extra for extra in extras if extra.get("day")]
    if not dated:
        return None
    newest = max(dated, key=lambda extra: str(extra["day"])[:10])
    since = newest.get("breach_since")
    return date.fromisoformat(str(since)[:10]) if since else None


def requested_day(extras: Sequence[Mapping[str, Any]]) -> date | None:
    """The latest ``day`` the requests carry, if any: the day the run trains as of."""
    days = [str(extra["day"])[:10] for extra in extras if extra.get("day")]
    return date.fromisoformat(max(days)) if days else None


def requested_reason(extras: Sequence[Mapping[str, Any]]) -> str:
    """The requests' days and reasons, one line (kept in the decision record)."""
    parts = []
    for extra in extras:
        if extra.get("day") or extra.get("reasons"):
            reasons = "; ".join(str(r) for r in extra.get("reasons") or [])
            parts.append(f"retrain request of {extra.get('day')}: {reasons}".rstrip(": "))
    return " | ".join(parts)


def training_request(
    params: Mapping[str, Any],
    day: date,
    delay_days: int,
    requested_by: str = "",
    breach_since: date | None = None,
) -> TrainingRequest:
    """The run's validated Params as a request; without a ``reason`` Param, the reasons of
    the requests that woke the run are kept, and without a ``breach_since`` Param, the
    requests' own (``requested_breach_since``)."""
    from mlops.training.job import TrainingRequest

    return TrainingRequest(
        as_of=day,
        window_days=params["window_days"],
        eval_days=params["eval_days"],
        delay_days=delay_days,
        family=params["family"],
        params=dict(params["hyperparameters"] or {}),
        seed=params["seed"],
        force_review=params["force_review"],
        reason=params["reason"] or requested_by,
        allow_unsettled_features=bool(params.get("allow_unsettled_features", False)),
        breach_since=params.get("breach_since") or breach_since,
    )


def candidate_event(outcome: Mapping[str, Any], day: date) -> dict[str, Any]:
    """The extra of the ``candidate_model`` event of an approved candidate (``outcome`` is
    ``TrainingOutcome.to_xcom()``): its version and the data day model_deployment starts at."""
    return {
        "model_version": outcome["model_version"],
        "run_id": outcome["run_id"],
        "day": day.isoformat(),
    }


__all__ = [
    "candidate_event",
    "requested_breach_since",
    "requested_day",
    "requested_reason",
    "retrain_request",
    "training_request",
]
