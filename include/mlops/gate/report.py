"""The gate's decision as a JSON record and a Markdown model card.

The record is for machines (attached to the MLflow run and model version, diffed between
runs); the card is for the person who reviews a ``needs_review`` decision or audits an
approval later. Both come from the same ``GateDecision``, so they can never disagree, and
both are deterministic (sorted keys, fixed number formats): a rerun with the same inputs
writes the same bytes, which keeps idempotent reruns visibly idempotent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlops.gate.decision import GateDecision

_HEADLINE = {
    "approve": "APPROVED: the candidate may become `challenger`",
    "reject": "REJECTED: the candidate must not be promoted",
    "needs_review": "NEEDS REVIEW: the evidence does not settle it; a person decides",
}
_METRICS = {
    "roc_auc": "ROC AUC",
    "average_precision": "average precision",
    "card_precision_at_k": "CP@{k}",
    "card_precision_oracle": "CP@{k} of a perfect ranking",
}


def decision_record(decision: GateDecision, metadata: Mapping[str, Any] | None = None) -> str:
    """The JSON decision record: outcome, reasons, every number, and the model's metadata."""
    record = {**decision.to_dict(), "metadata": dict(metadata or {})}
    return json.dumps(record, indent=2, sort_keys=True, default=str)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _plain(value: Any) -> str:
    """Settings and metadata as written (no rounding): strings bare, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines + [""]


def _metrics_section(evidence: Mapping[str, Any]) -> list[str]:
    candidate, champion = evidence["candidate"], evidence.get("champion") or {}
    k = candidate.get("k", 100)
    rows = [
        (label.format(k=k), candidate.get(name), champion.get(name))
        for name, label in _METRICS.items()
    ]
    rows += [("transactions", candidate["n_transactions"], champion.get("n_transactions"))]
    rows += [("frauds", candidate["n_frauds"], champion.get("n_frauds"))]
    removed = ("rows removed: cards already known", candidate.get("n_removed_known"))
    rows += [(*removed, champion.get("n_removed_known"))]
    days = candidate.get("days") or ["?"]
    out = ["## Metrics", "", f"Evaluation window {days[0]} to {days[-1]} ({len(days)} days).", ""]
    out += _table(("metric", "candidate", "champion"), rows)
    slices = [
        (s["name"], s["n"], s["frauds"], s["roc_auc"], s["average_precision"], s["mean_score"])
        for s in candidate.get("slices", [])
    ]
    if slices:
        out += ["### Slices (candidate)", ""]
        out += _table(("slice", "n", "frauds", "AUC", "AP", "mean score"), slices)
    return out


def _evidence_section(evidence: Mapping[str, Any]) -> list[str]:
    out = [
        "## Gate evidence",
        "",
        f"Rule: `{evidence['rule']}`; frauds: {evidence['n_frauds']}.",
        "",
    ]
    floors = [(n, f["value"], f["floor"], f["passed"]) for n, f in evidence["floors"].items()]
    out += _table(("floor", "value", "minimum", "passed"), floors)
    boot = evidence.get("bootstrap")
    if boot:
        out += [
            f"Paired bootstrap ({boot['n_resamples']} resamples of {boot['n_units']} "
            f"{boot['unit']}s, seed {boot['seed']}): {boot['metric']} candidate − champion "
            f"= {boot['observed_diff']:+.4f}, {boot['confidence']:.0%} CI "
            f"[{boot['lo']:+.4f}, {boot['hi']:+.4f}], margin "
            f"{evidence['policy']['margin']:g}.",
            "",
        ]
    checks = [(c["name"], c["passed"], c["detail"]) for c in evidence["behaviour"]["checks"]]
    out += _table(("behavioural check", "passed", "detail"), checks)
    lat = evidence["latency"]
    out += [
        f"Single-row latency: median {lat['median_ms']:.2f} ms, p95 {lat['p95_ms']:.2f} ms "
        f"over {lat['n_calls']} calls (budget {lat['budget_ms']:g} ms).",
        "",
    ]
    return out


def _features_section(features: Mapping[str, Any] | None) -> list[str]:
    """Whether the rows' feature windows were whole (``mlops.training.settled``)."""
    if not features:
        return []
    if features["settled"]:
        line = (
            f"Settled: every row is on or after {features['first_settled_day']}, so its "
            f"{features['lookback_days']}-day windows start after the history start "
            f"{features['history_start']}."
        )
    else:
        spans = ", ".join(f"{k} {a} to {b}" for k, (a, b) in features["unsettled"].items())
        line = (
            f"**UNSETTLED**: {spans} use windows truncated at the history start "
            f"{features['history_start']}; the first settled day is "
            f"{features['first_settled_day']}. Served features will not look like these."
        )
    return ["## Features", "", line, ""]


def render_model_card(decision: GateDecision, metadata: Mapping[str, Any] | None = None) -> str:
    """Markdown: the decision and its reasons first, then the model, metrics and evidence.

    ``metadata`` is free-form (model name and version, family, hyperparameters, training
    window, data digests, code version, Airflow run); it is shown as given, in key order.
    """
    meta = dict(metadata or {})
    title = meta.get("model_name", "fraud model")
    out = [f"# Model card: {title}", "", f"**{_HEADLINE[decision.outcome]}**", "", "## Reasons", ""]
    out += [f"- {reason}" for reason in decision.reasons] + [""]
    if meta:
        out += ["## Model", ""]
        rows = [(key, _plain(meta[key])) for key in sorted(meta)]
        out += _table(("field", "value"), rows)
    evidence = decision.evidence
    out += _features_section(evidence.get("features"))
    out += _metrics_section(evidence) + _evidence_section(evidence)
    policy = [(key, _plain(value)) for key, value in sorted(evidence["policy"].items())]
    out += ["## Policy", ""] + _table(("setting", "value"), policy)
    return "\n".join(out).rstrip() + "\n"
