"""decide_day: one recorded decision a day, from the day's summary and earlier records."""

from __future__ import annotations

import json
from datetime import date

from mlops.registry.history import DeploymentEvent, record_event
from mlops.retraining.decisions import decide_day, decision_uri, first_model_day, read_history
from mlops.retraining.policy import RetrainPolicy
from mlops.settings import load_settings

D = date(2018, 8, 10)


def serving(root, version: str = "4") -> object:
    """Settings of ``root`` where ``version`` went live on 2018-07-01 (deployment history)."""
    settings = load_settings({"MLOPS_DATA_ROOT": str(root)})
    event = DeploymentEvent(
        day="2018-07-01",
        action="deployed",
        model_name="fraud_model",
        version=version,
        before={"champion": None},
        after={"champion": version},
        reason="first model",
        actor="test",
    )
    record_event(settings, event)
    return settings


def write_summary(root, day: date, **extra) -> None:
    folder = root / "monitoring" / "reports" / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    summary = {
        "day": day.isoformat(),
        "status": "monitored",
        "champion": {"version": "4", "age_days": 120, "evaluation": {}, "data_end": ""},
        **extra,
    }
    (folder / "summary.json").write_text(json.dumps(summary))


def test_each_day_is_recorded_and_a_rerun_rewrites_the_same_decision(tmp_path):
    settings = serving(tmp_path)
    for offset in range(3):
        write_summary(tmp_path, date(2018, 8, 10 + offset))
    decisions = [decide_day(settings, date(2018, 8, 10 + i)) for i in range(3)]
    assert [d.decision.action for d in decisions] == ["retrain", "none", "none"]
    assert decisions[1].decision.held_by == "cooldown"
    first = (tmp_path / "monitoring" / "decisions" / "date=2018-08-11.json").read_text()
    again = decide_day(settings, date(2018, 8, 11))
    assert again.to_xcom() == decisions[1].to_xcom()
    assert decision_uri(settings, date(2018, 8, 11)).endswith("date=2018-08-11.json")
    assert (tmp_path / "monitoring" / "decisions" / "date=2018-08-11.json").read_text() == first
    history = read_history(settings, date(2018, 8, 12))
    assert [r["day"] for r in history] == ["2018-08-10", "2018-08-11"]


def test_a_missing_summary_is_recorded_as_not_monitored(tmp_path):
    settings = serving(tmp_path)
    result = decide_day(settings, D, policy=RetrainPolicy())
    assert result.decision.action == "none"
    assert result.decision.reasons == ("not monitored: no summary written",)


def test_an_active_training_holds_the_request(tmp_path):
    settings = serving(tmp_path)
    write_summary(tmp_path, D)
    result = decide_day(settings, D, training_active=True)
    assert result.decision.held_by == "training_active" and not result.decision.retrain


def test_while_no_model_serves_the_first_one_is_asked_for_once_its_window_settles(tmp_path):
    settings = load_settings(
        {"MLOPS_DATA_ROOT": str(tmp_path), "MLOPS_HISTORY_START": "2018-04-01"}
    )
    first = first_model_day(settings)
    assert first == date(2018, 6, 5)  # 37 days of feature windows, then a 28-day training window
    early = decide_day(settings, first.replace(day=4))
    assert early.decision.action == "none" and "settles on 2018-06-05" in early.decision.reasons[0]
    on_time = decide_day(settings, first)
    assert on_time.decision.retrain and "first model" in on_time.decision.reasons[0]
