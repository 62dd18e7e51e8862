"""The retrain policy: today's monitoring summary and the past decisions in, one decision out.

Pure: no I/O, no clock, no model; the same summary, history and flags give the same
decision, so a rerun or a backfill of a day decides what the first run decided.

Signals (each named in the reasons when it fires):

- **breach signals**, noisy from day to day, so they must hold ``consecutive_days`` in a row:
  importance-weighted feature drift (the importances of the drifted features, as a share of
  all judged features'), prediction drift (PSI of the champion's scores), and matured
  quality of what was served below the champion's own evaluation (its gate metrics) by the
  relative ``quality_margin``, judged only with ``min_frauds`` matured frauds;
- **staleness signals**, certain once true: the model's age since the day it was trained as
  of, and the volume of labelled transactions matured since its data window ended.

A breach is not asked about until a run as of the day could learn from it
(``mlops.retraining.onset``): each breach period records its first data day,
``breach_since``; a retrain asked for after a breach trains right up to its held-out week
(``mlops.training.windows``) and its request carries that day. Until such a run would hold
``post_breach_days`` days of the new data, the wanted request is held
(``held_by="post_breach_data"``), the day it will be asked named in the reasons: asked
earlier, it would train a candidate blind to the change that the gate cannot approve, and
spend the cooldown and budget the useful request needs (the demo's drift waited 30 days for
a model that knew it). Staleness alone asks at once, with the routine windows.

Storm guards, in this order, each named as ``held_by`` when it holds a request back: a
training run already active, the cooldown after the last request, the budget of requests per
30 days. An earlier request that learnt nothing of a breach (``onset.days_learnt``) does not
hold the breach's request by its cooldown; the budget counts it. Probation: while a champion that has a ``previous`` is in its first
``probation_days`` days, matured quality below ``previous``'s on the same rows by the margin
gives ``rollback`` (once per version), which wins over a retrain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from mlops.retraining.baseline import QUALITY_METRICS, expected_quality
from mlops.retraining.onset import breach_start, days_learnt, post_breach_hold

NONE, RETRAIN, ROLLBACK = "none", "retrain", "rollback"


@dataclass(frozen=True)
class RetrainPolicy:
    weighted_drift: float = 0.3
    use_prediction_drift: bool = True
    # relative: served AP 0.51 against an evaluated 0.60 breaches. Calibrated at the default
    # scale (5,000 cards): over 77 stable days a model's served AP stayed >= 0.89 of its
    # evaluated AP (CP@100 >= 0.92); new_fraud_pattern took it to 0.77 eleven days after the
    # drift started and to about 0.5 after three weeks.
    quality_margin: float = 0.15
    min_frauds: int = 30
    consecutive_days: int = 3
    max_age_days: int = 90
    max_new_labelled: int = 600_000  # about two months of simulated traffic
    cooldown_days: int = 14
    budget_days: int = 30
    budget: int = 2
    probation_days: int = 14
    baseline_days: int = 7  # the champion's first matured days that set its live baseline
    # CP@100 is reported, not judged, by default: with 2,000 cards (about 30 fraud cards a
    # day) its 7-day window fell 17 % below the live baseline on stable days of the demo.
    judged_metrics: tuple[str, ...] = ("average_precision",)
    rollback_margin: float = 0.15
    # A breach asks once a run as of the day trains on this many days of it (None: at once).
    # The run it asks for holds out the latest eval_days matured days (delay_days late), as
    # model_training's Params and MLOPS_LABEL_DELAY_DAYS do; 3 days make the request 17 days
    # after the change began, a promotion about 21 days after it.
    post_breach_days: int | None = 3
    eval_days: int = 7
    delay_days: int = 7

    def __post_init__(self) -> None:
        if self.consecutive_days < 1 or self.budget < 0 or self.cooldown_days < 0:
            raise ValueError("consecutive_days >= 1, budget >= 0 and cooldown_days >= 0 needed")
        if self.post_breach_days is not None and self.post_breach_days < 1:
            raise ValueError("post_breach_days must be >= 1 (or None: ask at once)")
        for name in ("quality_margin", "rollback_margin", "weighted_drift"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """One day's decision. ``held_by`` names the guard that stopped a wanted request."""

    day: str
    action: str
    reasons: tuple[str, ...]
    breach: bool = False
    held_by: str | None = None
    champion_version: str | None = None
    rollback_version: str | None = None
    breach_since: str | None = None  # the breach period's first data day (module doc)
    signals: dict[str, Any] = field(default_factory=dict)

    @property
    def retrain(self) -> bool:
        return self.action == RETRAIN

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reasons": list(self.reasons), "retrain": self.retrain}


def _past(history: Sequence[Mapping[str, Any]], day: date) -> list[Mapping[str, Any]]:
    """Only the records of earlier days count: a rerun of D must not see its own record."""
    return sorted(
        (r for r in history if date.fromisoformat(r["day"]) < day), key=lambda r: r["day"]
    )


def consecutive_breaches(
    history: Sequence[Mapping[str, Any]], day: date, champion: str | None = None
) -> int:
    """Breaching days in an unbroken run of calendar days right before ``day``, of the same
    champion when one is given (a new champion starts its own count)."""
    by_day = {r["day"]: r for r in history}
    count, cursor = 0, day - timedelta(days=1)
    while (
        (record := by_day.get(cursor.isoformat())) is not None
        and record.get("breach")
        and (champion is None or record.get("champion_version") == champion)
    ):
        count += 1
        cursor -= timedelta(days=1)
    return count


def _quality_breaches(
    summary: Mapping[str, Any], policy: RetrainPolicy, baseline: Mapping[str, float] | None = None
) -> list[str]:
    quality = summary.get("quality") or {}
    served = quality.get("served") or {}
    evaluation = (summary.get("champion") or {}).get("evaluation") or {}
    references, source = (baseline, "live baseline") if baseline else (evaluation, "evaluated")
    if (served.get("n_frauds") or 0) < policy.min_frauds:
        return []
    reasons = []
    for metric in policy.judged_metrics:
        value, reference = served.get(metric), references.get(metric)
        if value is None or reference is None:
            continue
        if value < reference * (1 - policy.quality_margin):
            reasons.append(
                f"quality: served {metric} {value:.3f} on matured days "
                f"{quality['window']['start']}..{quality['window']['end']} is below the "
                f"champion's {source} {reference:.3f} by more than {policy.quality_margin:.0%}"
            )
    return reasons


def breach_reasons(
    summary: Mapping[str, Any],
    policy: RetrainPolicy,
    baseline: Mapping[str, float] | None = None,
) -> list[str]:
    """Today's breach signals (drift, prediction drift, quality), as reasons."""
    if summary.get("status") != "monitored":
        return []
    reasons = []
    drift = summary.get("drift") or {}
    if drift.get("weighted_share", 0.0) >= policy.weighted_drift:
        reasons.append(
            f"data drift: {', '.join(drift['drifted'])} drifted, "
            f"{drift['weighted_share']:.0%} of the feature importance "
            f"(threshold {policy.weighted_drift:.0%})"
        )
    prediction = summary.get("prediction_drift") or {}
    if policy.use_prediction_drift and prediction.get("drifted"):
        reasons.append(f"prediction drift: score PSI {prediction['psi']:.3f}")
    return reasons + _quality_breaches(summary, policy, baseline)


def new_labelled(
    summary: Mapping[str, Any], history: Sequence[Mapping[str, Any]]
) -> tuple[str | None, int]:
    """(newest matured day, labelled rows matured since the champion's data window ended)."""
    data_end = (summary.get("champion") or {}).get("data_end") or ""
    newest = ((summary.get("quality") or {}).get("newest_day")) or {}
    records = [(r.get("signals") or {}).get("matured") for r in history]
    matured = {m["day"]: m["rows"] for m in records if m}
    if newest.get("day"):
        matured[newest["day"]] = newest.get("n_transactions", 0)
    rows = sum(n for d, n in matured.items() if data_end and d >= data_end)
    return newest.get("day"), rows


def staleness_reasons(
    summary: Mapping[str, Any], history: Sequence[Mapping[str, Any]], policy: RetrainPolicy
) -> list[str]:
    if summary.get("status") != "monitored":
        return []
    reasons = []
    age = (summary.get("champion") or {}).get("age_days")
    if age is not None and age >= policy.max_age_days:
        reasons.append(f"model age: trained {age} days ago (limit {policy.max_age_days})")
    _, rows = new_labelled(summary, history)
    if rows >= policy.max_new_labelled:
        reasons.append(
            f"new labelled data: {rows} transactions matured since the champion's data "
            f"(limit {policy.max_new_labelled})"
        )
    return reasons


def probation_rollback(
    summary: Mapping[str, Any], past: Sequence[Mapping[str, Any]], policy: RetrainPolicy
) -> str | None:
    """The reason to roll the champion back, or None."""
    champion = (summary.get("champion") or {}).get("version")
    previous = summary.get("previous_version")
    models = (summary.get("quality") or {}).get("models") or {}
    if not champion or not previous or "previous" not in models or "champion" not in models:
        return None
    served_days = 1 + sum(1 for r in past if r.get("champion_version") == champion)
    if served_days > policy.probation_days:
        return None
    if any(r.get("action") == ROLLBACK and r.get("rollback_version") == champion for r in past):
        return None  # asked once already: the deployment DAG owns it from there
    mine, theirs = models["champion"], models["previous"]
    if (mine.get("n_frauds") or 0) < policy.min_frauds:
        return None
    for metric in QUALITY_METRICS:
        a, b = mine.get(metric), theirs.get(metric)
        if a is not None and b is not None and a < b * (1 - policy.rollback_margin):
            return (
                f"probation: champion v{champion} {metric} {a:.3f} is below previous "
                f"v{previous}'s {b:.3f} on the same matured rows by more than "
                f"{policy.rollback_margin:.0%} (day {served_days} of {policy.probation_days})"
            )
    return None


def _guard(
    past: Sequence[Mapping[str, Any]],
    day: date,
    policy: RetrainPolicy,
    training_active: bool,
    since: date | None = None,
) -> tuple[str | None, str]:
    """The storm guard holding a request back, if any. For a breach's request (``since``),
    an earlier request that learnt nothing of the breach starts no cooldown (module doc)."""
    if training_active:
        return "training_active", "a training run is already active"
    asked = [r for r in past if r.get("action") == RETRAIN]
    requests = [date.fromisoformat(r["day"]) for r in asked]
    learnt = (policy.eval_days, policy.delay_days)
    spent = [
        date.fromisoformat(r["day"])
        for r in asked
        if since is None or days_learnt(r, since, *learnt) >= (policy.post_breach_days or 1)
    ]
    if spent and (day - spent[-1]).days <= policy.cooldown_days:
        last = spent[-1].isoformat()
        return "cooldown", f"cooldown: last request {last}, {policy.cooldown_days} days"
    recent = [d for d in requests if (day - d).days < policy.budget_days]
    if len(recent) >= policy.budget:
        return "budget", f"budget: {len(recent)} requests in {policy.budget_days} days"
    return None, ""


def first_model(
    day: date,
    past: Sequence[Mapping[str, Any]],
    first_model_day: date,
    policy: RetrainPolicy,
    training_active: bool,
) -> Decision:
    """Cold start: nothing serves yet. Once a training window of settled data exists, ask
    for the first model (under the same guards, so a failed first training is retried
    after the cooldown, not every day)."""
    if day < first_model_day:
        reason = f"no model yet; the first training window settles on {first_model_day}"
        return Decision(day.isoformat(), NONE, (reason,))
    wanted = "no model serves yet and a settled training window exists: first model"
    held_by, why = _guard(past, day, policy, training_active)
    if held_by:
        return Decision(day.isoformat(), NONE, (wanted, f"held: {why}"), held_by=held_by)
    return Decision(day.isoformat(), RETRAIN, (wanted,))


def decide(
    summary: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    *,
    training_active: bool = False,
    policy: RetrainPolicy = RetrainPolicy(),
    first_model_day: date | None = None,
) -> Decision:
    """The decision of ``summary["day"]`` given the decisions of earlier days.

    ``first_model_day`` is given while the deployment history shows no model serving (data
    time): a day that went unmonitored for that reason asks, from then on, for the first
    model. A monitored day has a serving champion by definition and is decided as usual."""
    day = date.fromisoformat(summary["day"])
    past = _past(history, day)
    if first_model_day is not None and summary.get("status") != "monitored":
        return first_model(day, past, first_model_day, policy, training_active)
    champion = (summary.get("champion") or {}).get("version")
    baseline = expected_quality(past, champion, policy.baseline_days)
    breaches = breach_reasons(summary, policy, baseline)
    stale = staleness_reasons(summary, past, policy)
    run = consecutive_breaches(past, day, champion) + 1 if breaches else 0
    expected = (baseline or (summary.get("champion") or {}).get("evaluation") or {}).get(
        "average_precision"
    )
    since = breach_start(summary, past, day, breaches, expected, policy.quality_margin)
    matured_day, _ = new_labelled(summary, [])
    newest = ((summary.get("quality") or {}).get("newest_day")) or {}
    signals = {
        "breach_reasons": breaches,
        "staleness_reasons": stale,
        "consecutive_breaches": run,
        "training_active": training_active,
    }
    common = {"breach": bool(breaches), "champion_version": champion, "signals": signals}
    common["breach_since"] = since.isoformat() if since else None
    if matured_day:
        signals["matured"] = {"day": matured_day, "rows": newest.get("n_transactions", 0)}
        if (newest.get("n_frauds") or 0) > 0:
            signals["newest"] = {m: newest.get(m) for m in (*QUALITY_METRICS, "n_frauds")}
    if baseline:
        signals["baseline"] = baseline
    if summary.get("status") != "monitored":
        reason = summary.get("reason") or "nothing monitored"
        return Decision(day.isoformat(), NONE, (f"not monitored: {reason}",), **common)
    if rollback := probation_rollback(summary, past, policy):
        return Decision(day.isoformat(), ROLLBACK, (rollback,), rollback_version=champion, **common)
    wanted, after_breach = list(stale), breaches and run >= policy.consecutive_days
    if after_breach:
        wanted += breaches
    if not wanted:
        reasons = breaches and [
            *breaches,
            f"breach on {run} consecutive day(s), {policy.consecutive_days} needed",
        ]
        return Decision(day.isoformat(), NONE, tuple(reasons or ["no signal"]), **common)
    return _request(day, wanted, bool(after_breach), since, past, policy, training_active, common)


def _request(
    day: date,
    wanted: Sequence[str],
    after_breach: bool,
    since: date | None,
    past: Sequence[Mapping[str, Any]],
    policy: RetrainPolicy,
    training_active: bool,
    common: dict[str, Any],
) -> Decision:
    """A wanted request, unless its data or a storm guard holds it back."""
    wait = (policy.post_breach_days, policy.eval_days, policy.delay_days)
    if after_breach and (why := post_breach_hold(day, since, *wait)):
        held = (*wanted, f"held: {why}")
        return Decision(day.isoformat(), NONE, held, held_by="post_breach_data", **common)
    held_by, why = _guard(past, day, policy, training_active, since if after_breach else None)
    if held_by:
        return Decision(day.isoformat(), NONE, (*wanted, f"held: {why}"), held_by=held_by, **common)
    if not after_breach:  # staleness alone: the routine windows
        common = {**common, "breach_since": None}
    return Decision(day.isoformat(), RETRAIN, tuple(wanted), **common)
