"""The evidence the promotion gate weighs, each piece measured and recorded with its numbers.

* ``paired_bootstrap``: how sure are we that the candidate is not worse than the champion?
  Both models are scored on the same resampled units (cards or days), so the noise they
  share (an easy week, a few very visible compromised cards) cancels out of the difference.
* ``check_behaviour``: failures that aggregate metrics average away: a model that reads
  TRANSACTION_ID (a leak that may even help on one window), a model blind to the handbook's
  scenario-1 rule (every amount above 220 is fraud), scores outside [0, 1].
* ``measure_latency``: the model answers one request at a time in the model service.

The checks take a ``predict_proba``-like callable on a feature frame, so they test exactly
what will be served (a pipeline, a pyfunc wrapper, a remote call), not estimator internals.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlops.evaluation.metrics import (
    average_precision_batch,
    card_precision_per_day,
    roc_auc_batch,
    transaction_days,
)
from mlops.features.names import LABEL
from mlops.gate.policy import GATE_METRICS, UNITS, GatePolicy

PredictProba = Callable[[pd.DataFrame], Any]
_SATURATED = 1.0 - 1e-9


@dataclass(frozen=True)
class BootstrapResult:
    """Paired bootstrap of ``metric(candidate) - metric(champion)`` with its percentile CI."""

    metric: str
    unit: str
    n_resamples: int
    seed: int
    confidence: float
    n_units: int
    n_valid: int
    candidate: float
    champion: float
    observed_diff: float
    mean_diff: float
    lo: float
    hi: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _unit_codes(frame: pd.DataFrame, unit: str) -> np.ndarray:
    if unit == "card":
        key = frame["CUSTOMER_ID"].to_numpy()
    elif unit == "day":
        key = transaction_days(frame)
    else:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    return pd.factorize(key, sort=True)[0]


def _chunks(counts: np.ndarray, rows: int) -> list[np.ndarray]:
    size = max(1, 4_000_000 // max(rows, 1))
    return [counts[i : i + size] for i in range(0, len(counts), size)]


def _resampled_values(
    frame: pd.DataFrame,
    scores: np.ndarray,
    counts: np.ndarray,
    metric: str,
    codes: np.ndarray,
    k: int,
    delay_days: int,
) -> np.ndarray:
    if metric == "card_precision_at_k":
        _, per_day = card_precision_per_day(frame, scores, k, (), delay_days)
        return counts @ np.asarray(per_day) / counts.sum(axis=1)
    batch = average_precision_batch if metric == "average_precision" else roc_auc_batch
    labels = frame[LABEL].to_numpy()
    parts = [batch(labels, scores, c[:, codes]) for c in _chunks(counts, len(frame))]
    return np.concatenate(parts)


def paired_bootstrap(
    frame: pd.DataFrame,
    cand_scores: Any,
    champ_scores: Any,
    metric: str = "average_precision",
    unit: str = "card",
    n: int = 1000,
    seed: int = 0,
    *,
    k: int = 100,
    confidence: float = 0.95,
    delay_days: int = 7,
) -> BootstrapResult:
    """Resample units (cards or days) with replacement; score both models on each resample.

    ``frame`` holds the evaluation rows (known compromised cards already removed, see
    ``mlops.evaluation.metrics.eligible_mask``). CP@k is a per-day quantity, so it needs ``unit="day"``;
    its per-day values keep the detected-set carry-over of the real day sequence (and
    ``delay_days`` must be the one the rows were filtered with). Resamples with a single
    class (AP/AUC undefined) are dropped and counted out of ``n_valid``. ``k`` and
    ``confidence`` should come from the ``GatePolicy``.
    """
    if metric not in GATE_METRICS:
        raise ValueError(f"metric must be one of {GATE_METRICS}, got {metric!r}")
    if metric == "card_precision_at_k" and unit != "day":
        raise ValueError("card_precision_at_k is a per-day metric: bootstrap it with unit='day'")
    cand = np.asarray(cand_scores, "float64").reshape(-1)
    champ = np.asarray(champ_scores, "float64").reshape(-1)
    if not len(cand) == len(champ) == len(frame):
        raise ValueError(f"{len(cand)} and {len(champ)} scores for {len(frame)} rows")
    codes = _unit_codes(frame, unit)
    n_units = int(codes.max()) + 1 if len(codes) else 0
    if n_units == 0:
        raise ValueError("no rows to resample")
    draws = np.random.default_rng(seed).integers(0, n_units, size=(n, n_units))
    offsets = draws + n_units * np.arange(n)[:, None]
    counts = np.bincount(offsets.ravel(), minlength=n * n_units).reshape(n, n_units)
    ones = np.ones((1, n_units), dtype=counts.dtype)
    args = (metric, codes, k, delay_days)
    full = [_resampled_values(frame, s, ones, *args)[0] for s in (cand, champ)]
    resampled = [_resampled_values(frame, s, counts, *args) for s in (cand, champ)]
    diffs = resampled[0] - resampled[1]
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size == 0:
        raise ValueError(f"every resample has a single class: {metric} is undefined")
    alpha = 1.0 - confidence
    lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return BootstrapResult(
        metric=metric,
        unit=unit,
        n_resamples=n,
        seed=seed,
        confidence=confidence,
        n_units=n_units,
        n_valid=int(diffs.size),
        candidate=float(full[0]),
        champion=float(full[1]),
        observed_diff=float(full[0] - full[1]),
        mean_diff=float(diffs.mean()),
        lo=float(lo),
        hi=float(hi),
    )


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BehaviourResult:
    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [c.to_dict() for c in self.checks]}


def positive_scores(output: Any) -> np.ndarray:
    """P(fraud) from a ``predict_proba``-like output: (n, 2) takes column 1, (n,) as is."""
    values = np.asarray(output, dtype="float64")
    return values[:, 1] if values.ndim == 2 else values.reshape(-1)


def _invariance(predict: PredictProba, probe: pd.DataFrame) -> CheckResult:
    base = probe if "TRANSACTION_ID" in probe else probe.assign(TRANSACTION_ID=0)
    other = base.assign(TRANSACTION_ID=base["TRANSACTION_ID"].to_numpy()[::-1] * 7 + 10**12)
    # equal up to float noise: a threaded ensemble may add the same votes in another order
    same = np.allclose(
        positive_scores(predict(base)), positive_scores(predict(other)), rtol=0, atol=1e-12
    )
    detail = "unchanged" if same else "scores change with TRANSACTION_ID"
    return CheckResult("invariance_transaction_id", same, detail)


def _directional(predict: PredictProba, probe: pd.DataFrame, policy: GatePolicy) -> CheckResult:
    below = positive_scores(predict(probe.assign(TX_AMOUNT=policy.amount_below)))
    above = positive_scores(predict(probe.assign(TX_AMOUNT=policy.amount_above)))
    # a row already certain at both amounts says nothing about the amount rule
    informative = ~((below >= _SATURATED) & (above >= _SATURATED))
    if not informative.any():
        return CheckResult("directional_amount", False, "every probe row saturated at 1", 0.0)
    rate = float(np.mean(above[informative] > below[informative]))
    passed = rate >= policy.min_directional_rate
    detail = (
        f"{rate:.3f} of {int(informative.sum())} rows score higher at {policy.amount_above:g}"
        f" than at {policy.amount_below:g} (need {policy.min_directional_rate:g})"
    )
    return CheckResult("directional_amount", passed, detail, rate)


def _in_range(predict: PredictProba, probe: pd.DataFrame) -> CheckResult:
    scores = positive_scores(predict(probe))
    ok = bool(len(scores) == len(probe) and np.all(np.isfinite(scores)))
    ok = ok and bool(np.all((scores >= 0) & (scores <= 1)))
    detail = f"min {scores.min():.6g}, max {scores.max():.6g}" if scores.size else "no scores"
    return CheckResult("predictions_in_unit_interval", ok, detail)


def check_behaviour(
    predict: PredictProba, frame: pd.DataFrame, policy: GatePolicy
) -> BehaviourResult:
    """Run the behavioural checks on a seeded sample of ``frame`` (features + TRANSACTION_ID).

    A check that raises counts as failed with the error as its detail: a model that breaks
    on an extra column or a changed amount must not pass silently.
    """
    n = min(policy.probe_rows, len(frame))
    probe = frame.sample(n=n, random_state=policy.seed).reset_index(drop=True)
    checks = []
    runs: list[tuple[str, Callable[[], CheckResult]]] = [
        ("invariance_transaction_id", lambda: _invariance(predict, probe)),
        ("directional_amount", lambda: _directional(predict, probe, policy)),
        ("predictions_in_unit_interval", lambda: _in_range(predict, probe)),
    ]
    for name, run in runs:
        try:
            checks.append(run())
        except Exception as error:  # noqa: BLE001 - the failure itself is the evidence
            checks.append(CheckResult(name, False, f"raised {type(error).__name__}: {error}"))
    return BehaviourResult(tuple(checks))


@dataclass(frozen=True)
class LatencyResult:
    median_ms: float
    p95_ms: float
    max_ms: float
    n_calls: int
    budget_ms: float

    @property
    def passed(self) -> bool:
        return self.median_ms <= self.budget_ms

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def measure_latency(
    predict: PredictProba,
    row: pd.DataFrame,
    *,
    n_calls: int = 50,
    budget_ms: float = 50.0,
    clock: Callable[[], float] = time.perf_counter,
    warmup: int = 3,
) -> LatencyResult:
    """Median of ``n_calls`` single-row calls (seconds from ``clock``), after a warm-up.

    The median, not the mean: one garbage-collection pause must not fail a model. The calls
    run with one OpenMP/BLAS thread, as the model service runs them: a single row gains
    nothing from threads, and on a busy host their spin-waits multiplied HGB's median by 20.
    """
    from threadpoolctl import threadpool_limits

    one = row.iloc[:1]
    elapsed = []
    with threadpool_limits(limits=1):
        for _ in range(warmup):
            predict(one)
        for _ in range(n_calls):
            start = clock()
            predict(one)
            elapsed.append((clock() - start) * 1000.0)
    ms = np.asarray(elapsed)
    return LatencyResult(
        float(np.median(ms)), float(np.quantile(ms, 0.95)), float(ms.max()), n_calls, budget_ms
    )
