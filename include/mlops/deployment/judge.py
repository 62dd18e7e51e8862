"""The rollout judgement: promote the challenger or roll it back, from what the log shows.

Every logged row of a rollout carries both variants' scores for the same transaction (the
champion scores every row, the challenger every row in shadow and canary alike), so the
comparison is paired. Three questions, in the order a failure is most certain:

1. **Health**: did the challenger fail (raise, return garbage; those rows were answered by
   the champion and the error logged), and is it fast enough where the service timed it?
2. **Alert volume**: would the challenger flood the investigators? The share of rows it
   scores at or above the alert threshold may not exceed three times the champion's share on
   the same rows, nor the champion's share plus two points. Score PSI and the rank
   correlation are reported, not judged: under a concept drift an honest retrain on the new
   data ranks the bulk of legitimate traffic differently (Spearman 0.19 against the stale
   champion in the closed-loop demo, PSI 0.15), and two honest models fitted on the same
   data differ by a PSI of 1.5 (15 against 30 boosting iterations).
3. **Matured quality**, when the labels of enough observed days are known at judgement time:
   the gate's paired bootstrap of average precision, challenger minus champion, by card;
   rolled back when a regression larger than the gate's margin cannot be excluded (the
   gate's own non-inferiority rule, now on live traffic). With fewer frauds than
   ``min_frauds`` the quality is reported but not judged: that few is noise. A rollout
   observed until it had enough (``mlops.deployment.maturity``) requires the judgement
   (``require_quality``): without it, a healthy challenger is neither promoted nor rolled
   back but goes to a person (``REVIEW``, ``mlops.deployment.quality_review``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops.features.names import LABEL
from mlops.gate.evidence import paired_bootstrap

PROMOTE, ROLLBACK, REVIEW = "promote", "rollback", "review"


@dataclass(frozen=True)
class RolloutPolicy:
    """Thresholds of the judgement. Any challenger error rolls back: the router already kept
    it from answering, and a model that fails on live rows is not one to promote."""

    max_error_rate: float = 0.0
    max_p99_latency_ms: float = 50.0
    min_timed_rows: int = 100  # a p99 of fewer answers is their maximum, not a percentile
    alert_threshold: float = 0.5
    max_alert_ratio: float = 3.0  # an honest retrain under drift: 2.0 (6.4 % against 3.1 %)
    max_alert_excess: float = 0.02
    min_rows: int = 200
    margin: float = 0.02
    min_frauds: int = 30
    n_resamples: int = 500
    confidence: float = 0.95
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Judgement:
    verdict: str  # promote | rollback | review (a person decides)
    reasons: tuple[str, ...]
    rows: int
    checks: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Judgement:
        return cls(**{**data, "reasons": tuple(data["reasons"])})


def score_psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI of ``current`` against ``reference`` over the reference's quantile bins."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:  # a constant reference: any spread in current is a shift
        return 0.0 if np.allclose(current, reference[0]) else float("inf")
    inner = edges[1:-1]
    ref = np.bincount(np.searchsorted(inner, reference, "right"), minlength=len(edges) - 1)
    cur = np.bincount(np.searchsorted(inner, current, "right"), minlength=len(edges) - 1)
    ref_share = np.clip(ref / ref.sum(), 1e-4, None)
    cur_share = np.clip(cur / cur.sum(), 1e-4, None)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def _health(rows: pd.DataFrame, policy: RolloutPolicy) -> tuple[dict[str, Any], list[str]]:
    errors = rows["challenger_error"].notna() | rows["challenger_score"].isna()
    rate = float(errors.mean()) if len(rows) else 0.0
    timed = rows.loc[rows["latency_ms"].notna() & (rows["variant"] == "challenger")]
    p99 = float(np.quantile(timed["latency_ms"], 0.99)) if len(timed) else None
    check = {
        "error_rate": rate,
        "errors": int(errors.sum()),
        "p99_latency_ms": p99,
        # live answers and the day's batch, read from the one log
        "rows_by_source": {str(k): int(v) for k, v in rows["source"].value_counts().items()},
    }
    first = rows.loc[rows["challenger_error"].notna(), "challenger_error"].head(1).tolist()
    check["first_error"] = first[0] if first else None
    failures = []
    if rate > policy.max_error_rate:
        failures.append(f"challenger failed on {int(errors.sum())} rows ({rate:.1%}): {first}")
    check["timed_rows"] = len(timed)
    if p99 is not None and len(timed) < policy.min_timed_rows:
        check["latency_note"] = (
            f"{len(timed)} live answers of the challenger (< {policy.min_timed_rows}): "
            "latency reported, not judged"
        )
    elif p99 is not None and p99 > policy.max_p99_latency_ms:
        failures.append(f"challenger p99 latency {p99:.1f} ms > {policy.max_p99_latency_ms} ms")
    return check, failures


def _shift(rows: pd.DataFrame, policy: RolloutPolicy) -> tuple[dict[str, Any], list[str]]:
    scored = rows.loc[rows["challenger_score"].notna()]
    champion = scored["champion_score"].to_numpy(dtype="float64")
    challenger = scored["challenger_score"].to_numpy(dtype="float64")
    constant = np.ptp(champion) == 0 or np.ptp(challenger) == 0  # ranks say nothing
    correlation = (
        None
        if constant
        else float(pd.Series(champion).corr(pd.Series(challenger), method="spearman"))
    )
    alerts = {
        "champion": float((champion >= policy.alert_threshold).mean()),
        "challenger": float((challenger >= policy.alert_threshold).mean()),
    }
    check = {
        "alert_rate": alerts,
        "score_psi": score_psi(champion, challenger),
        "rank_correlation": correlation,
        "champion_mean_score": float(champion.mean()),
        "challenger_mean_score": float(challenger.mean()),
    }
    limit = max(
        alerts["champion"] * policy.max_alert_ratio, alerts["champion"] + policy.max_alert_excess
    )
    if alerts["challenger"] > limit:
        return check, [
            f"challenger alerts on {alerts['challenger']:.1%} of the rows against the "
            f"champion's {alerts['champion']:.1%} (limit {limit:.1%}, score >= "
            f"{policy.alert_threshold})"
        ]
    return check, []


def _served_ap(rows: pd.DataFrame) -> dict[str, float | None]:
    from sklearn.metrics import average_precision_score

    out: dict[str, float | None] = {}
    for variant, part in rows.groupby("variant"):
        labels = part[LABEL].to_numpy()
        out[str(variant)] = (
            float(average_precision_score(labels, part["score"])) if 0 < labels.sum() else None
        )
    return out


def _quality(labelled: pd.DataFrame, policy: RolloutPolicy) -> tuple[dict[str, Any], list[str]]:
    frauds = int(labelled[LABEL].sum()) if len(labelled) else 0
    check: dict[str, Any] = {"rows": len(labelled), "frauds": frauds, "judged": False}
    if "replayed" in labelled:  # rows of days the challenger never saw (deployment.replay)
        check["replayed_rows"] = int(labelled["replayed"].sum())
    if frauds < policy.min_frauds or frauds == len(labelled):
        check["note"] = f"{frauds} frauds among matured rows (< {policy.min_frauds}): not judged"
        return check, []
    frame = labelled.rename(columns={"customer_id": "CUSTOMER_ID", "tx_datetime": "TX_DATETIME"})
    result = paired_bootstrap(
        frame,
        frame["challenger_score"],
        frame["champion_score"],
        metric="average_precision",
        unit="card",
        n=policy.n_resamples,
        seed=policy.seed,
        confidence=policy.confidence,
    )
    check |= {"judged": True, "bootstrap": result.to_dict(), "served_ap": _served_ap(labelled)}
    if result.lo < -policy.margin:
        return check, [
            f"matured AP challenger {result.candidate:.3f} vs champion {result.champion:.3f}: "
            f"CI of the difference [{result.lo:.3f}, {result.hi:.3f}] reaches below "
            f"-{policy.margin}"
        ]
    return check, []


def _non_inferior(quality: dict[str, Any]) -> str:
    found, replayed = quality["bootstrap"], quality.get("replayed_rows")
    rows = f"{quality['rows']} rows" + (f" ({replayed} replayed)" if replayed else "")
    return (
        f"matured AP non-inferior: challenger {found['candidate']:.3f} vs champion "
        f"{found['champion']:.3f} on {rows} with {quality['frauds']} frauds, "
        f"CI of the difference [{found['lo']:.3f}, {found['hi']:.3f}]"
    )


def judge(
    rows: pd.DataFrame,
    labelled: pd.DataFrame,
    policy: RolloutPolicy | None = None,
    *,
    require_quality: bool = False,
) -> Judgement:
    """Judge a rollout from its logged ``rows`` (prediction log columns, challenger version
    already selected) and the subset whose labels have matured (``labelled``, with TX_FRAUD).
    With ``require_quality``, a healthy challenger whose quality could not be judged is
    ``REVIEW``: neither promoted nor rolled back without a person."""
    policy = policy or RolloutPolicy()
    if len(rows) < policy.min_rows:
        reason = f"only {len(rows)} rows scored by the challenger (< {policy.min_rows})"
        return Judgement(ROLLBACK, (reason,), len(rows), {"policy": policy.to_dict()})
    health, failures = _health(rows, policy)
    checks: dict[str, Any] = {"policy": policy.to_dict(), "health": health}
    if not failures:
        checks["score_shift"], failures = _shift(rows, policy)
    if not failures:
        checks["quality"], failures = _quality(labelled, policy)
    if failures:
        return Judgement(ROLLBACK, tuple(failures), len(rows), checks)
    reasons = ["no challenger error", "alert volume within limits"]
    quality = checks["quality"]
    if require_quality and not quality["judged"]:
        reasons += [quality["note"], "quality not judged: a person decides"]
        return Judgement(REVIEW, tuple(reasons), len(rows), checks)
    reasons.append(_non_inferior(quality) if quality["judged"] else quality["note"])
    return Judgement(PROMOTE, tuple(reasons), len(rows), checks)


__all__ = ["PROMOTE", "REVIEW", "ROLLBACK", "Judgement", "RolloutPolicy", "judge", "score_psi"]
