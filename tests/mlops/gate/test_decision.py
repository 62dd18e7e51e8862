"""The gate: paired bootstrap, behavioural and latency checks, outcomes, record and card."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from mlops.evaluation.metrics import Metrics
from mlops.features.names import FEATURES
from mlops.gate.decision import decide
from mlops.gate.evidence import (
    BehaviourResult,
    BootstrapResult,
    CheckResult,
    LatencyResult,
    check_behaviour,
    measure_latency,
    paired_bootstrap,
)
from mlops.gate.policy import GatePolicy
from mlops.gate.report import decision_record, render_model_card

POLICY = GatePolicy()  # margin 0.02 on AP, floors AUC 0.70 / AP 0.20 / CP 0.02, 100 frauds


# --- paired bootstrap ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def window() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """7 days x 300 cards x 2 transactions, 5 % fraud; a good and a noisier model."""
    rng = np.random.default_rng(42)
    n = 7 * 300 * 2
    day = np.repeat(np.arange(7), 600)
    frame = pd.DataFrame(
        {
            "TX_DATETIME": [datetime(2018, 8, 8) + timedelta(days=int(d)) for d in day],
            "CUSTOMER_ID": np.tile(np.arange(300), 14),
            "TX_FRAUD": (rng.random(n) < 0.05).astype(int),
        }
    )
    good = frame.TX_FRAUD * 0.6 + rng.random(n)
    worse = frame.TX_FRAUD * 0.3 + rng.random(n)
    return frame, good.to_numpy(), worse.to_numpy()


@pytest.mark.parametrize(
    ("metric", "unit"),
    [("average_precision", "card"), ("roc_auc", "day"), ("card_precision_at_k", "day")],
)
def test_identical_models_give_exactly_zero(window, metric: str, unit: str) -> None:
    frame, good, _ = window
    result = paired_bootstrap(frame, good, good.copy(), metric, unit, n=200, seed=3, k=10)
    assert (result.lo, result.hi, result.mean_diff, result.observed_diff) == (0.0, 0.0, 0.0, 0.0)


def test_bootstrap_is_seeded_and_deterministic(window) -> None:
    frame, good, worse = window
    first = paired_bootstrap(frame, good, worse, n=300, seed=7)
    assert paired_bootstrap(frame, good, worse, n=300, seed=7) == first
    other = paired_bootstrap(frame, good, worse, n=300, seed=8)
    assert (other.lo, other.hi) != (first.lo, first.hi)
    assert other.observed_diff == first.observed_diff  # the point estimate needs no seed


def test_bootstrap_numbers(window) -> None:
    frame, good, worse = window
    result = paired_bootstrap(frame, good, worse, "average_precision", "card", n=300, seed=0)
    expected = average_precision_score(frame.TX_FRAUD, good) - average_precision_score(
        frame.TX_FRAUD, worse
    )
    assert result.observed_diff == pytest.approx(expected)
    assert 0 < result.lo <= result.mean_diff <= result.hi  # clearly better
    assert (result.n_units, result.n_valid, result.n_resamples) == (300, 300, 300)
    by_day = paired_bootstrap(frame, good, worse, "card_precision_at_k", "day", n=100, k=10)
    assert by_day.n_units == 7 and by_day.lo <= by_day.observed_diff <= by_day.hi
    assert json.loads(json.dumps(result.to_dict()))["metric"] == "average_precision"


def test_bootstrap_rejects_bad_arguments(window) -> None:
    frame, good, worse = window
    with pytest.raises(ValueError, match="per-day"):
        paired_bootstrap(frame, good, worse, "card_precision_at_k", "card")
    with pytest.raises(ValueError, match="metric"):
        paired_bootstrap(frame, good, worse, "accuracy", "card")
    with pytest.raises(ValueError, match="unit"):
        paired_bootstrap(frame, good, worse, "roc_auc", "terminal")
    with pytest.raises(ValueError, match="scores for"):
        paired_bootstrap(frame, good[:-1], worse)


# --- behavioural checks and latency -------------------------------------------------------


@pytest.fixture(scope="module")
def probe() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((300, len(FEATURES))), columns=list(FEATURES))
    return frame.assign(TRANSACTION_ID=np.arange(300), TX_AMOUNT=rng.uniform(1, 150, 300))


def proba(p: np.ndarray) -> np.ndarray:
    return np.column_stack([1 - p, p])


def good_model(frame: pd.DataFrame) -> np.ndarray:
    risk = frame["TERMINAL_ID_RISK_7DAY_WINDOW"].to_numpy()
    return proba(np.clip(frame["TX_AMOUNT"].to_numpy() / 400 + 0.2 * risk, 0, 1))


def leaky_model(frame: pd.DataFrame) -> np.ndarray:
    return proba(good_model(frame)[:, 1] * 0.5 + 0.5 * (frame["TRANSACTION_ID"] % 2))


def blind_model(frame: pd.DataFrame) -> np.ndarray:
    return proba(1 - frame["TX_AMOUNT"].to_numpy() / 400)


def unbounded_model(frame: pd.DataFrame) -> np.ndarray:
    return frame["TX_AMOUNT"].to_numpy() / 400 - 0.3  # (n,) is read as P(fraud); < 0 here


def strict_model(frame: pd.DataFrame) -> np.ndarray:
    if "TRANSACTION_ID" in frame:
        raise KeyError("unexpected column TRANSACTION_ID")
    return good_model(frame)


def failed(result: BehaviourResult) -> set[str]:
    return {c.name for c in result.checks if not c.passed}


def test_a_sound_model_passes_every_check(probe) -> None:
    result = check_behaviour(good_model, probe, POLICY)
    assert result.passed and len(result.checks) == 3
    assert result.to_dict()["passed"] is True


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (leaky_model, {"invariance_transaction_id"}),
        (blind_model, {"directional_amount"}),
        (unbounded_model, {"predictions_in_unit_interval"}),
        (
            strict_model,
            {"invariance_transaction_id", "directional_amount", "predictions_in_unit_interval"},
        ),
        (lambda f: proba(np.ones(len(f))), {"directional_amount"}),  # saturated: no evidence
    ],
)
def test_each_behavioural_failure_is_caught(probe, model, expected: set[str]) -> None:
    assert failed(check_behaviour(model, probe, POLICY)) == expected


def test_a_raising_check_records_the_error(probe) -> None:
    details = [c.detail for c in check_behaviour(strict_model, probe, POLICY).checks]
    assert all(d.startswith("raised KeyError") for d in details)


def test_rows_saturated_at_both_amounts_are_left_out(probe) -> None:
    def half_certain(frame: pd.DataFrame) -> np.ndarray:
        p = good_model(frame)[:, 1]
        return proba(np.where(frame["TX_DURING_NIGHT"].to_numpy() > 0.5, 1.0, p))

    check = {c.name: c for c in check_behaviour(half_certain, probe, POLICY).checks}
    assert check["directional_amount"].passed and check["directional_amount"].value == 1.0


def fake_clock(seconds_per_call: float):
    now = [0.0]

    def predict(frame: pd.DataFrame) -> np.ndarray:
        now[0] += seconds_per_call
        return good_model(frame)

    return predict, lambda: now[0]


def test_latency_is_the_median_of_timed_single_row_calls(probe) -> None:
    predict, clock = fake_clock(0.004)
    result = measure_latency(predict, probe, n_calls=20, budget_ms=50, clock=clock)
    assert result.median_ms == pytest.approx(4.0) and result.n_calls == 20 and result.passed
    predict, clock = fake_clock(0.080)
    assert not measure_latency(predict, probe, budget_ms=50, clock=clock).passed


def test_latency_ignores_the_warm_up_and_one_pause(probe) -> None:
    cold, timed_ms = [1.0] * 3, [*range(1, 10), 500]  # a slow first load, then one 500 ms pause
    durations = iter(cold + [ms / 1000 for ms in timed_ms])
    now = [0.0]

    def predict(frame: pd.DataFrame) -> np.ndarray:
        assert len(frame) == 1  # one request at a time, as served
        now[0] += next(durations)
        return good_model(frame)

    result = measure_latency(predict, probe, n_calls=10, budget_ms=50, clock=lambda: now[0])
    assert result.median_ms == pytest.approx(5.5) and result.passed  # median of 1..9 and 500
    assert result.p95_ms == pytest.approx(np.quantile(timed_ms, 0.95))
    assert result.max_ms == pytest.approx(500.0)  # the pause is measured, the warm-up is not


def test_latency_on_the_real_clock_is_in_milliseconds(probe) -> None:
    def two_ms(frame: pd.DataFrame) -> np.ndarray:
        time.sleep(0.002)
        return good_model(frame)

    result = measure_latency(two_ms, probe, n_calls=5)
    assert 2.0 <= result.median_ms <= result.p95_ms <= result.max_ms


# --- decisions ----------------------------------------------------------------------------


def metrics(auc: float | None = 0.88, ap: float | None = 0.62, cp: float = 0.3, frauds: int = 450) -> Metrics:  # fmt: skip
    return Metrics(
        roc_auc=auc,
        average_precision=ap,
        card_precision_at_k=cp,
        k=100,
        n_transactions=58_000,
        n_frauds=frauds,
        n_cards=4_300,
        n_removed_known=900,
        days=("2018-08-08", "2018-08-14"),
        card_precision_per_day=(cp, cp),
        card_precision_oracle=0.48,
    )


def boot(lo: float, hi: float) -> BootstrapResult:
    mid = (lo + hi) / 2
    return BootstrapResult(
        "average_precision", "card", 1000, 0, 0.95, 4300, 1000, 0.6 + mid, 0.6, mid, mid, lo, hi
    )


BEHAVIOUR_OK = BehaviourResult((CheckResult("invariance_transaction_id", True, "unchanged"),))
FAST = LatencyResult(3.0, 4.0, 9.0, 50, 50.0)


def run(candidate=None, champion=None, bootstrap=None, behaviour=BEHAVIOUR_OK, latency=FAST, n_frauds=None):  # fmt: skip
    return decide(candidate or metrics(), champion, bootstrap, behaviour, latency, POLICY, n_frauds)


def test_first_model_is_approved_when_floors_behaviour_and_evidence_hold() -> None:
    decision = run()
    assert decision.outcome == "approve"
    assert decision.reasons[0].startswith("first model")
    assert decision.evidence["rule"] == "first_model" and decision.evidence["champion"] is None


@pytest.mark.parametrize(
    ("kwargs", "outcome", "reason"),
    [
        ({"candidate": metrics(ap=0.1)}, "reject", "floor: average_precision 0.1000 < 0.2"),
        ({"candidate": metrics(auc=0.5)}, "reject", "floor: roc_auc"),
        ({"candidate": metrics(cp=0.01)}, "reject", "floor: card_precision_at_k"),
        ({"candidate": metrics(frauds=50)}, "needs_review", "evidence: 50 frauds"),
        ({"n_frauds": 99}, "needs_review", "evidence: 99 frauds in the window < 100"),
        (
            {"candidate": metrics(auc=None, ap=None)},
            "needs_review",
            "evidence: roc_auc is undefined",
        ),
        (
            {"behaviour": BehaviourResult((CheckResult("directional_amount", False, "0.4"),))},
            "reject",
            "behaviour: directional_amount failed (0.4)",
        ),
        ({"latency": LatencyResult(80.0, 90, 99, 50, 50.0)}, "reject", "latency: median"),
        # a candidate failing a floor is rejected even when the evidence is thin
        ({"candidate": metrics(ap=0.1, frauds=10)}, "reject", "floor: average_precision"),
    ],
)
def test_first_model_failures(kwargs: dict, outcome: str, reason: str) -> None:
    decision = run(**kwargs)
    assert decision.outcome == outcome
    assert any(r.startswith(reason) for r in decision.reasons), decision.reasons


@pytest.mark.parametrize(
    ("lo", "hi", "outcome", "word"),
    [
        (-0.05, -0.03, "reject", "entirely below"),
        (-0.08, -0.0201, "reject", "entirely below"),
        (-0.03, 0.01, "needs_review", "straddles"),
        (-0.04, -0.02, "needs_review", "straddles"),  # upper bound on the margin: not below
        (-0.02, 0.03, "approve", "lower bound"),  # lower bound on the margin: non-inferior
        (0.01, 0.05, "approve", "lower bound"),
    ],
)
def test_against_a_champion_the_ci_decides(lo: float, hi: float, outcome: str, word: str) -> None:
    decision = run(champion=metrics(), bootstrap=boot(lo, hi))
    assert decision.outcome == outcome and word in decision.reasons[0]
    assert decision.evidence["rule"] == "non_inferiority"


def test_behaviour_and_floors_outrank_a_good_ci() -> None:
    decision = run(candidate=metrics(ap=0.1), champion=metrics(), bootstrap=boot(0.01, 0.05))
    assert decision.outcome == "reject"


def test_inconsistent_inputs_raise() -> None:
    with pytest.raises(ValueError, match="bootstrap result is required"):
        run(champion=metrics())
    with pytest.raises(ValueError, match="policy judges"):
        run(champion=metrics(), bootstrap=replace(boot(0, 0.1), metric="roc_auc"))


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="metric"):
        GatePolicy(metric="accuracy")
    with pytest.raises(ValueError, match="per-day"):
        GatePolicy(metric="card_precision_at_k", unit="card")
    with pytest.raises(ValueError, match="220"):
        GatePolicy(amount_below=230)
    assert GatePolicy(metric="card_precision_at_k", unit="day").to_dict()["unit"] == "day"


# --- record and model card ----------------------------------------------------------------


def test_decision_record_holds_every_number_and_is_deterministic() -> None:
    decision = run(champion=metrics(ap=0.6), bootstrap=boot(-0.03, 0.01))
    record = json.loads(decision_record(decision, {"model_version": "3"}))
    assert record["outcome"] == "needs_review" and record["reasons"] == list(decision.reasons)
    evidence = record["evidence"]
    assert evidence["bootstrap"]["lo"] == -0.03 and evidence["champion"]["average_precision"] == 0.6
    assert evidence["floors"]["roc_auc"] == {"value": 0.88, "floor": 0.7, "passed": True}
    assert evidence["policy"]["margin"] == 0.02 and evidence["latency"]["passed"] is True
    assert record["metadata"] == {"model_version": "3"}
    assert decision_record(decision, {"model_version": "3"}) == decision_record(
        run(champion=metrics(ap=0.6), bootstrap=boot(-0.03, 0.01)), {"model_version": "3"}
    )


def test_model_card_shows_decision_reasons_metrics_and_evidence() -> None:
    decision = run(champion=metrics(ap=0.6), bootstrap=boot(-0.01, 0.04))
    meta = {
        "model_name": "fraud-clf",
        "family": "hist_gradient_boosting",
        "params": {"max_iter": 100},
    }
    card = render_model_card(decision, meta)
    assert card.startswith("# Model card: fraud-clf\n")
    assert "**APPROVED" in card and decision.reasons[0] in card
    assert "| CP@100 | 0.3000 | 0.3000 |" in card
    assert "Paired bootstrap (1000 resamples of 4300 cards, seed 0)" in card
    assert '| params | {"max_iter": 100} |' in card
    assert "| invariance_transaction_id | yes | unchanged |" in card
    rejected = render_model_card(run(candidate=metrics(ap=0.1)))
    assert "**REJECTED" in rejected and "Paired bootstrap" not in rejected
