"""Candidate against champion on the same matured window: every number the gate needs.

Both models score exactly the same rows: the evaluation window's transactions minus the
cards already known to be compromised (frauds in the labelled history before the window,
or inside it once the label delay has passed), as the handbook's protocol prescribes.
The comparison is paired: the bootstrap resamples the same cards for both models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from mlops.evaluation.metrics import Metrics, eligible_mask, evaluate_scores, first_fraud_days
from mlops.features.names import LABEL
from mlops.gate.decision import GateDecision, decide
from mlops.gate.evidence import check_behaviour, measure_latency, paired_bootstrap, positive_scores
from mlops.gate.policy import GatePolicy


@dataclass(frozen=True)
class Evaluation:
    decision: GateDecision
    candidate: Metrics
    champion: Metrics | None
    rows: int
    frauds: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.decision.outcome,
            "reasons": list(self.decision.reasons),
            "rows": self.rows,
            "frauds": self.frauds,
            "candidate": self.candidate.to_dict(),
            "champion": None if self.champion is None else self.champion.to_dict(),
        }


def evaluate_against_champion(
    candidate: Any,
    champion: Any | None,
    window: pd.DataFrame,
    history: pd.DataFrame,
    policy: GatePolicy,
    *,
    delay_days: int = 7,
) -> Evaluation:
    """Score both models on ``window`` and let the policy decide.

    ``history`` is every labelled fraud from the start of the training period to the window
    (``mlops.evaluation.history.read_known_frauds``: the training days and the delay gap, not
    only the training set): its frauds tell which cards investigators already know on each
    day. ``champion`` is None for the first model.
    """
    known = first_fraud_days(history)
    eligible = eligible_mask(window, known, delay_days)
    rows = window.loc[eligible].reset_index(drop=True)

    def scores_and_metrics(model: Any) -> tuple[Any, Metrics]:
        # Metrics see the whole window, so they report how many rows the removal took.
        scores = positive_scores(model.predict_proba(window))
        metrics = evaluate_scores(
            window, scores, k=policy.k, known_compromised=known, delay_days=delay_days
        )
        return scores[eligible], metrics

    cand_scores, cand_metrics = scores_and_metrics(candidate)
    champ_metrics, bootstrap = None, None
    if champion is not None:
        champ_scores, champ_metrics = scores_and_metrics(champion)
        bootstrap = paired_bootstrap(
            rows,
            cand_scores,
            champ_scores,
            metric=policy.metric,
            unit=policy.unit,
            n=policy.n_resamples,
            seed=policy.seed,
            k=policy.k,
            confidence=policy.confidence,
            delay_days=delay_days,
        )
    behaviour = check_behaviour(candidate.predict_proba, rows, policy)
    latency = measure_latency(
        candidate.predict_proba,
        rows.iloc[[0]],
        n_calls=policy.latency_calls,
        budget_ms=policy.latency_budget_ms,
    )
    frauds = int(rows[LABEL].sum())
    decision = decide(cand_metrics, champ_metrics, bootstrap, behaviour, latency, policy, frauds)
    return Evaluation(decision, cand_metrics, champ_metrics, len(rows), frauds)
