"""The promotion gate: may this candidate replace the champion, and on what evidence?

A model must not reach production by luck, by a leaky split or by a silent failure, so the
gate combines four kinds of evidence and names every number it used:

* absolute floors on AUC, AP and CP@k (a model below them is useless whatever the champion);
* non-inferiority against the champion on the same rows, judged on a paired bootstrap
  confidence interval of ``candidate - champion`` (the same resampled units for both models,
  so the noise they share cancels out);
* behavioural checks, which catch what metrics average away (a model reading
  TRANSACTION_ID, a model blind to the scenario-1 amount rule, scores outside [0, 1]);
* a single-row latency budget, since the model serves one request at a time.

What the gate demands is ``mlops.gate.policy`` (a leaf both sides import); the evidence is
measured in ``mlops.gate.evidence``; ``decide`` turns it into approve / reject /
needs_review, and ``mlops.gate.report`` renders the decision record and the model card.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops.evaluation.metrics import Metrics
from mlops.gate.evidence import BehaviourResult, BootstrapResult, LatencyResult
from mlops.gate.policy import GatePolicy, Outcome


@dataclass(frozen=True)
class GateDecision:
    outcome: Outcome
    reasons: tuple[str, ...]
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reasons": list(self.reasons),
            "evidence": dict(self.evidence),
        }


def _floors(metrics: Metrics, policy: GatePolicy) -> dict[str, dict[str, Any]]:
    pairs = {
        "roc_auc": (metrics.roc_auc, policy.min_roc_auc),
        "average_precision": (metrics.average_precision, policy.min_average_precision),
        "card_precision_at_k": (metrics.card_precision_at_k, policy.min_card_precision_at_k),
    }
    return {
        name: {"value": value, "floor": floor, "passed": value is not None and value >= floor}
        for name, (value, floor) in pairs.items()
    }


def _rejections(
    floors: dict[str, dict[str, Any]], behaviour: BehaviourResult, latency: LatencyResult
) -> list[str]:
    reasons = [f"behaviour: {c.name} failed ({c.detail})" for c in behaviour.checks if not c.passed]
    if not latency.passed:
        reasons.append(
            f"latency: median single-row call {latency.median_ms:.2f} ms"
            f" > budget {latency.budget_ms:g} ms"
        )
    reasons += [
        f"floor: {name} {f['value']:.4f} < {f['floor']:g}"
        for name, f in floors.items()
        if f["value"] is not None and not f["passed"]
    ]
    return reasons


def _insufficient(
    floors: dict[str, dict[str, Any]], n_frauds: int, policy: GatePolicy
) -> list[str]:
    reasons = [
        f"evidence: {name} is undefined on this window (a single class)"
        for name, f in floors.items()
        if f["value"] is None
    ]
    if n_frauds < policy.min_frauds:
        reasons.append(f"evidence: {n_frauds} frauds in the window < {policy.min_frauds} required")
    return reasons


def _non_inferiority(bootstrap: BootstrapResult, policy: GatePolicy) -> tuple[Outcome, str]:
    ci = f"[{bootstrap.lo:+.4f}, {bootstrap.hi:+.4f}]"
    what = (
        f"{bootstrap.metric} candidate - champion = {bootstrap.observed_diff:+.4f},"
        f" {bootstrap.confidence:.0%} paired {bootstrap.unit} bootstrap CI {ci}"
    )
    if bootstrap.hi < -policy.margin:
        return "reject", f"non-inferiority: {what} lies entirely below -{policy.margin:g}"
    if bootstrap.lo >= -policy.margin:
        return "approve", f"non-inferiority: {what}, lower bound >= -{policy.margin:g}"
    return "needs_review", f"non-inferiority: {what} straddles -{policy.margin:g}"


def decide(
    candidate_metrics: Metrics,
    champion_metrics: Metrics | None,
    bootstrap: BootstrapResult | None,
    behaviour: BehaviourResult,
    latency: LatencyResult,
    policy: GatePolicy,
    n_frauds: int | None = None,
) -> GateDecision:
    """Approve, reject or ask a person, in this order of precedence.

    1. Reject on any behavioural failure, a latency over budget or a metric below its floor:
       these are properties of the candidate alone, more data would not change them.
    2. Needs review when the evidence is insufficient: fewer than ``policy.min_frauds``
       frauds in the window (``n_frauds``, default the candidate's count) or a metric that
       is undefined because the window has a single class.
    3. First model ever (no champion): approve. There is nothing to be non-inferior to, and
       the floors, the behaviour and enough evidence are exactly what rules 1-2 checked.
    4. Otherwise non-inferiority on ``policy.metric`` with the paired bootstrap CI of
       ``candidate - champion``: reject if the whole CI is below ``-margin``, approve if its
       lower bound is at or above ``-margin``, needs review if it straddles ``-margin``.
    """
    frauds = candidate_metrics.n_frauds if n_frauds is None else int(n_frauds)
    floors = _floors(candidate_metrics, policy)
    first = champion_metrics is None
    if not first and bootstrap is None:
        raise ValueError("a champion exists: the paired bootstrap result is required")
    if bootstrap is not None and bootstrap.metric != policy.metric:
        raise ValueError(f"bootstrap of {bootstrap.metric}, the policy judges {policy.metric}")
    evidence = {
        "rule": "first_model" if first else "non_inferiority",
        "n_frauds": frauds,
        "floors": floors,
        "candidate": candidate_metrics.to_dict(),
        "champion": None if first else champion_metrics.to_dict(),
        "bootstrap": None if bootstrap is None else bootstrap.to_dict(),
        "behaviour": behaviour.to_dict(),
        "latency": latency.to_dict(),
        "policy": policy.to_dict(),
    }
    if reasons := _rejections(floors, behaviour, latency):
        return GateDecision("reject", tuple(reasons), evidence)
    if reasons := _insufficient(floors, frauds, policy):
        return GateDecision("needs_review", tuple(reasons), evidence)
    if first:
        reason = (
            f"first model: no champion; floors, behaviour and latency pass"
            f" on {frauds} frauds (>= {policy.min_frauds})"
        )
        return GateDecision("approve", (reason,), evidence)
    outcome, reason = _non_inferiority(bootstrap, policy)
    return GateDecision(outcome, (reason,), evidence)
