"""A person's review of a candidate the gate could not approve alone (``needs_review``).

model_training asks the approvers of rollouts (``mlops.deployment.approval``: the same
judgement of an answer, the requester's own Approve refused). An approval lets the candidate
go on as if the gate had approved it: the version carries the human approval
(``mlops.registry.trust.TAG_HUMAN_APPROVAL``, so it may load and model_deployment plans it
without asking again) and becomes the ``challenger``, and the run announces it. A rejection,
a refused self-approval or no answer in time moves nothing. Every answer is one event of the
deployment history (``approved``, ``rejected``, ``approval_refused``,
``approval_timed_out``), with ``details.stage = "review"`` and the gate's reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from mlops.deployment.approval import Decision, decision_event
from mlops.io import storage
from mlops.registry import aliases, trust
from mlops.registry.history import record_event
from mlops.registry.versions import MODEL_NAME
from mlops.settings import Settings

REVIEW = "review"  # the history events' details["stage"]


@dataclass(frozen=True)
class CandidateReview:
    """What was reviewed: the gate's outcome of one training run (``TrainingOutcome``)."""

    day: date  # the data day the candidate was trained as of
    version: str
    mlflow_run_id: str
    reasons: tuple[str, ...]
    actor: str  # model_training/<run type>
    run_id: str | None = None  # the Airflow run

    @classmethod
    def from_outcome(
        cls, outcome: Mapping[str, Any], day: date, *, actor: str, run_id: str | None
    ) -> CandidateReview:
        return cls(
            day=day,
            version=str(outcome["model_version"]),
            mlflow_run_id=outcome["run_id"],
            reasons=tuple(outcome["reasons"]),
            actor=actor,
            run_id=run_id,
        )


def needs_review(outcome: Mapping[str, Any]) -> bool:
    """Whether a training outcome asks a person: the gate said ``needs_review`` and this run
    decided it (a ``reused`` decision was reviewed by the run that made it)."""
    return outcome["outcome"] == "needs_review" and not outcome.get("reused")


def review_body(outcome: Mapping[str, Any], day: date) -> str:
    """The question put to the reviewer (markdown): the version, the gate's reasons, the
    metrics it compared."""
    metrics = outcome.get("metrics") or {}
    lines = [
        f"The gate asks a person about **v{outcome['model_version']}**, trained as of {day} "
        f"(MLflow run `{outcome['run_id']}`; decision record and model card attached there).",
        "",
        "Gate reasons:",
        *(f"- {reason}" for reason in outcome["reasons"]),
    ]
    for role in ("candidate", "champion"):
        found = metrics.get(role) or {}
        shown = [
            f"{k} {found[k]:.4f}" if isinstance(found[k], float) else f"{k} {found[k]}"
            for k in ("average_precision", "card_precision_at_k", "roc_auc", "n_frauds")
            if found.get(k) is not None
        ]
        if shown:
            lines.append(f"\n{role}: " + ", ".join(shown))
    lines.append(
        "\nApprove: the version goes to model_deployment as if the gate had approved it. "
        "Reject, or no answer in time: nothing moves."
    )
    return "\n".join(lines)


def record_review(
    settings: Settings,
    review: CandidateReview,
    decision: Decision,
    options: storage.StorageOptions | None = None,
    *,
    recorded_at: str | None = None,
) -> str:
    """The answer as a history event (idempotent); an approval also vouches for the version
    and makes it the challenger. The event's URI."""
    uri = settings.mlflow_tracking_uri
    event = decision_event(
        decision,
        day=review.day.isoformat(),
        version=review.version,
        aliases=aliases.alias_state(uri).to_dict(),
        actor=review.actor,
        strategy="review",
        run_id=review.run_id,
        recorded_at=recorded_at,
        details={
            "stage": REVIEW,
            "gate_outcome": "needs_review",
            "gate_reasons": list(review.reasons),
            "mlflow_run_id": review.mlflow_run_id,
        },
    )
    recorded = record_event(settings, event, options)
    if decision.proceeds:
        by = decision.responded_by or decision.responder_id or "unknown"
        trust.record_human_approval(uri, MODEL_NAME, review.version, by, decision.responded_at)
        aliases.set_challenger(uri, review.version)
    return recorded


__all__ = ["REVIEW", "CandidateReview", "needs_review", "record_review", "review_body"]
