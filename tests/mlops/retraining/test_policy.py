"""The retrain policy: every signal, every guard, probation, and a storm."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from mlops.retraining.policy import (
    NONE,
    QUALITY_METRICS,
    RETRAIN,
    ROLLBACK,
    RetrainPolicy,
    consecutive_breaches,
    decide,
)

D0 = date(2018, 8, 1)
EVALUATION = {"roc_auc": 0.9, "average_precision": 0.6, "card_precision_at_100": 0.3}
# the signal and guard tests ask at once; the wait for post-breach data has its own tests
QUICK = RetrainPolicy(consecutive_days=1, post_breach_days=None)
DEFAULT = RetrainPolicy(post_breach_days=None)


def summary(
    day=D0,
    *,
    drifted=(),
    weighted=0.0,
    score_drift=False,
    ap=0.6,
    cp=0.3,
    frauds=100,
    age=10,
    data_end="2018-07-20",
    previous=None,
    models=None,
    newest_rows=4000,
    version="3",
):
    newest = (day - timedelta(days=7)).isoformat()
    return {
        "day": day.isoformat(),
        "status": "monitored",
        "champion": {
            "version": version,
            "evaluation": EVALUATION,
            "age_days": age,
            "data_end": data_end,
        },
        "previous_version": previous,
        "drift": {"drifted": list(drifted), "weighted_share": weighted},
        "prediction_drift": {"psi": 0.3 if score_drift else 0.01, "drifted": score_drift},
        "quality": {
            "window": {"start": "2018-07-19", "end": newest},
            "served": {"average_precision": ap, "card_precision_at_100": cp, "n_frauds": frauds},
            "newest_day": {"day": newest, "n_transactions": newest_rows},
            "models": models or {},
        },
    }


def on(day_index: int, **kwargs):
    return summary(D0 + timedelta(days=day_index), **kwargs)


def run_days(days, make, *, policy=DEFAULT, history=None, **flags):
    history = list(history or [])
    for i in days:
        history.append(decide(make(i), history, policy=policy, **flags).to_dict())
    return history


def test_a_quiet_day_decides_nothing():
    decision = decide(summary(), [])
    assert decision.action == NONE and not decision.retrain and decision.reasons == ("no signal",)
    assert not decision.breach and decision.held_by is None


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"drifted": ["TX_AMOUNT"], "weighted": 0.5}, "data drift: TX_AMOUNT drifted, 50%"),
        ({"score_drift": True}, "prediction drift: score PSI 0.300"),
        ({"ap": 0.45}, "served average_precision 0.450"),
        ({"cp": 0.2}, "served card_precision_at_100 0.200"),
    ],
)
def test_each_breach_signal_requests_a_retrain_with_its_reason(kwargs, words):
    policy = RetrainPolicy(
        consecutive_days=1, judged_metrics=QUALITY_METRICS, post_breach_days=None
    )
    decision = decide(summary(**kwargs), [], policy=policy)
    assert decision.action == RETRAIN and decision.breach
    assert any(words in reason for reason in decision.reasons), decision.reasons


def test_card_precision_is_reported_not_judged_by_default():
    assert not decide(summary(cp=0.2), [], policy=QUICK).breach


def test_weighted_drift_below_the_threshold_is_no_breach():
    decision = decide(summary(drifted=["TX_DURING_NIGHT"], weighted=0.05), [], policy=QUICK)
    assert decision.action == NONE and not decision.breach


def test_quality_within_the_margin_or_with_few_frauds_is_no_breach():
    assert not decide(summary(ap=0.52), [], policy=QUICK).breach  # 0.6 * 0.85 = 0.51
    assert not decide(summary(ap=0.1, frauds=5), [], policy=QUICK).breach


def test_prediction_drift_can_be_switched_off():
    policy = RetrainPolicy(consecutive_days=1, use_prediction_drift=False)
    assert decide(summary(score_drift=True), [], policy=policy).action == NONE


def test_a_breach_must_hold_for_n_consecutive_days():
    history = run_days(range(3), lambda i: on(i, score_drift=True))
    assert [r["action"] for r in history] == [NONE, NONE, RETRAIN]
    assert "breach on 2 consecutive day(s), 3 needed" in history[1]["reasons"]
    assert history[2]["signals"]["consecutive_breaches"] == 3


def test_a_gap_or_a_quiet_day_breaks_the_streak():
    history = run_days([0, 1], lambda i: on(i, score_drift=True))
    assert decide(on(3, score_drift=True), history).action == NONE  # day 2 missing
    history = run_days([0, 1, 2, 3], lambda i: on(i, score_drift=i != 2))
    assert [r["action"] for r in history] == [NONE] * 4
    assert consecutive_breaches(history, D0 + timedelta(days=4)) == 1


def test_a_new_champion_starts_its_own_streak():
    history = run_days([0, 1], lambda i: on(i, score_drift=True, version="3"))
    assert decide(on(2, score_drift=True, version="4"), history, policy=DEFAULT).action == NONE
    assert decide(on(2, score_drift=True, version="3"), history, policy=DEFAULT).action == RETRAIN


def test_model_age_and_new_labelled_volume_request_without_a_streak():
    old = decide(summary(age=90), [])
    assert old.action == RETRAIN and "model age: trained 90 days ago" in old.reasons[0]
    policy = RetrainPolicy(max_new_labelled=10_000)
    history = run_days(range(2), lambda i: on(i, newest_rows=4000), policy=policy)
    assert [r["action"] for r in history] == [NONE, NONE]
    third = decide(on(2, newest_rows=4000), history, policy=policy)
    assert third.action == RETRAIN
    assert "new labelled data: 12000 transactions" in third.reasons[0]


def test_labelled_days_before_the_champion_data_end_do_not_count():
    policy = RetrainPolicy(max_new_labelled=8_000)
    history = run_days(range(2), lambda i: on(i, data_end="2018-07-26"), policy=policy)
    # matured days 07-25 (before data end) and 07-26, then 07-27: 8,000 counted on day 2
    assert [r["action"] for r in history] == [NONE, NONE]
    assert decide(on(2, data_end="2018-07-26"), history, policy=policy).action == RETRAIN


def test_an_active_training_run_holds_the_request():
    decision = decide(summary(age=100), [], training_active=True)
    assert decision.action == NONE and decision.held_by == "training_active"
    assert decision.reasons[-1] == "held: a training run is already active"


def test_cooldown_after_a_request():
    history = run_days(range(15), lambda i: on(i, age=100))
    assert [r["action"] for r in history] == [RETRAIN] + [NONE] * 14
    assert {r["held_by"] for r in history[1:]} == {"cooldown"}
    assert decide(on(15, age=100), history).action == RETRAIN


def test_the_budget_caps_requests_in_thirty_days():
    policy = RetrainPolicy(cooldown_days=0, budget=2)
    history = run_days(range(30), lambda i: on(i, age=100), policy=policy)
    assert [r["day"] for r in history if r["action"] == RETRAIN] == ["2018-08-01", "2018-08-02"]
    assert history[2]["held_by"] == "budget"
    assert decide(on(30, age=100), history, policy=policy).action == RETRAIN  # 08-01 left


def test_a_day_without_monitoring_is_recorded_as_nothing_to_decide():
    decision = decide({"day": "2018-08-01", "status": "skipped", "reason": "no log"}, [])
    assert decision.action == NONE and decision.reasons == ("not monitored: no log",)


def test_a_rerun_of_a_day_gives_the_same_decision_and_ignores_its_own_record():
    history = run_days(range(3), lambda i: on(i, score_drift=True))
    again = decide(on(2, score_drift=True), history, policy=DEFAULT)  # its own record is in history
    assert again.to_dict() == history[2]


def probation(day_index, champion_ap, previous_ap=0.6):
    models = {
        "champion": {
            "average_precision": champion_ap,
            "card_precision_at_100": 0.3,
            "n_frauds": 100,
        },
        "previous": {
            "average_precision": previous_ap,
            "card_precision_at_100": 0.3,
            "n_frauds": 100,
        },
    }
    return on(day_index, previous="2", models=models)


def test_a_new_champion_worse_than_previous_is_rolled_back_once():
    history = run_days(range(3), lambda i: probation(i, champion_ap=0.4))
    assert [r["action"] for r in history] == [ROLLBACK, NONE, NONE]
    assert history[0]["rollback_version"] == "3"
    assert "below previous v2's 0.600" in history[0]["reasons"][0]


def test_a_champion_within_the_margin_or_past_probation_stays():
    assert decide(probation(0, champion_ap=0.55), []).action == NONE
    served = [
        {"day": (D0 - timedelta(days=d)).isoformat(), "champion_version": "3", "action": NONE}
        for d in range(1, 15)
    ]
    assert decide(probation(0, champion_ap=0.4), served).action == NONE


def test_rollback_wins_over_a_retrain():
    worse = probation(0, champion_ap=0.4) | {"champion": summary(age=100)["champion"]}
    assert decide(worse, []).action == ROLLBACK


def test_impossible_policies_are_refused():
    with pytest.raises(ValueError, match="quality_margin must be within"):
        RetrainPolicy(quality_margin=1.5)
    with pytest.raises(ValueError, match="consecutive_days >= 1"):
        RetrainPolicy(consecutive_days=0)


def test_a_storm_of_breaches_and_repeated_requests_stays_within_cooldown_and_budget():
    policy = RetrainPolicy(consecutive_days=1, cooldown_days=7, budget=2, budget_days=30)
    history: list[dict] = []
    for i in range(90):
        today = on(i, score_drift=True, drifted=["TX_AMOUNT"], weighted=0.9, ap=0.1, age=200)
        for _ in range(3):  # the same day asked three times: one record, the same decision
            decision = decide(today, history, policy=policy).to_dict()
            history = [r for r in history if r["day"] != decision["day"]] + [decision]
    requests = [date.fromisoformat(r["day"]) for r in history if r["action"] == RETRAIN]
    gaps = [(b - a).days for a, b in zip(requests, requests[1:], strict=False)]
    assert requests and min(gaps) > policy.cooldown_days
    for day in requests:
        in_window = [d for d in requests if 0 <= (day - d).days < policy.budget_days]
        assert len(in_window) <= policy.budget
    assert len(requests) == 6  # two per 30 days over 90 days
    assert all(r["breach"] for r in history)


def skipped(day_index: int) -> dict:
    day = D0 + timedelta(days=day_index)
    return {"day": day.isoformat(), "status": "skipped", "reason": "no batch prediction log"}


def test_with_no_model_the_first_one_is_asked_for_once_its_window_has_settled():
    first = D0 + timedelta(days=3)
    history = run_days(range(20), skipped, first_model_day=first)
    actions = [(h["day"], h["action"]) for h in history]
    assert {a for _, a in actions[:3]} == {NONE}
    assert "settles on 2018-08-04" in history[0]["reasons"][0]
    assert actions[3] == ("2018-08-04", RETRAIN)
    assert "first model" in history[3]["reasons"][0]
    # a first training that produced nothing is retried after the cooldown, not daily
    requests = [d for d, a in actions if a == RETRAIN]
    assert requests == ["2018-08-04", "2018-08-19"]
    assert history[4]["held_by"] == "cooldown"


def test_the_first_model_waits_for_an_active_training_run():
    decision = decide(skipped(5), [], first_model_day=D0, training_active=True)
    assert (decision.action, decision.held_by) == (NONE, "training_active")


def with_newest(day_index: int, ap: float, **kwargs) -> dict:
    made = on(day_index, ap=ap, **kwargs)
    made["quality"]["newest_day"] |= {"average_precision": ap, "card_precision_at_100": 0.3}
    made["quality"]["newest_day"]["n_frauds"] = 40
    return made


def test_once_its_first_week_is_recorded_a_champion_is_judged_against_its_own_live_quality():
    # evaluated AP 0.6 (its gate window); it serves at 0.8: a fall to 0.62 is a 22 % drop
    # that the evaluated reference would never see
    history = run_days(range(7), lambda i: with_newest(i, 0.8))
    assert all(not h["breach"] for h in history)
    assert history[6]["signals"].get("baseline") is None  # six earlier records: not yet
    waits = RetrainPolicy()
    falls = run_days(range(7, 10), lambda i: with_newest(i, 0.62), history=history, policy=waits)
    assert falls[-1]["held_by"] == "post_breach_data"  # the fall began on the newest day
    falls = run_days(range(7, 10), lambda i: with_newest(i, 0.62), history=history, policy=DEFAULT)
    assert falls[7]["signals"]["baseline"]["average_precision"] == pytest.approx(0.8)
    assert falls[-1]["action"] == RETRAIN
    assert "live baseline 0.800" in falls[-1]["reasons"][0]


def test_a_new_champion_is_held_to_the_best_baseline_of_the_champions_before_it():
    history = run_days(range(7), lambda i: with_newest(i, 0.8))
    fresh = run_days(range(7, 9), lambda i: with_newest(i, 0.62, version="4"), history=history)
    assert "baseline" not in fresh[-1]["signals"]  # v3 never recorded one: evaluated 0.6
    assert not fresh[-1]["breach"]
    history = run_days(range(7, 9), lambda i: with_newest(i, 0.8), history=history)
    blind = run_days(range(9, 11), lambda i: with_newest(i, 0.62, version="4"), history=history)
    assert blind[-1]["signals"]["baseline"]["average_precision"] == pytest.approx(0.8)
    assert blind[-1]["breach"]
