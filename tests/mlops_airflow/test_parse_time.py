"""Parse-time knobs read from the environment (``mlops_airflow.parse_time``)."""

from __future__ import annotations

from datetime import timedelta

import pytest


def test_retry_delay_is_the_dags_own_unless_the_environment_sets_one(monkeypatch):
    from mlops_airflow.parse_time import retry_delay

    monkeypatch.delenv("MLOPS_RETRY_DELAY_S", raising=False)
    assert retry_delay(timedelta(minutes=2)) == timedelta(minutes=2)
    monkeypatch.setenv("MLOPS_RETRY_DELAY_S", "2.5")
    assert retry_delay(timedelta(minutes=5)) == timedelta(seconds=2.5)


def test_rollout_approvers_are_a_comma_separated_list(monkeypatch):
    from mlops_airflow.parse_time import rollout_approvers

    monkeypatch.setenv("MLOPS_ROLLOUT_APPROVERS", " alice, role:Approver ,,")
    assert rollout_approvers() == ["alice", "role:Approver"]
    monkeypatch.delenv("MLOPS_ROLLOUT_APPROVERS")
    assert rollout_approvers() == []


def test_deadlines_are_hours_after_the_run_is_queued_unless_the_environment_sets_them(
    monkeypatch,
):
    from mlops_airflow.parse_time import features_deadline, monitoring_deadline

    monkeypatch.delenv("MLOPS_FEATURES_DEADLINE_H", raising=False)
    monkeypatch.delenv("MLOPS_MONITORING_DEADLINE_H", raising=False)
    assert (features_deadline(), monitoring_deadline()) == (timedelta(hours=8), timedelta(days=1))
    monkeypatch.setenv("MLOPS_FEATURES_DEADLINE_H", "off")
    monkeypatch.setenv("MLOPS_MONITORING_DEADLINE_H", "0")
    assert (features_deadline(), monitoring_deadline()) == (None, None)
    monkeypatch.setenv("MLOPS_FEATURES_DEADLINE_H", "0.5")
    monkeypatch.setenv("MLOPS_MONITORING_DEADLINE_H", "36")
    assert (features_deadline(), monitoring_deadline()) == (
        timedelta(minutes=30),
        timedelta(hours=36),
    )


def test_a_review_waits_a_day_unless_the_environment_says_how_many_hours(monkeypatch):
    from mlops_airflow.parse_time import review_timeout, training_run_timeout

    monkeypatch.delenv("MLOPS_REVIEW_TIMEOUT_H", raising=False)
    assert review_timeout() == timedelta(hours=24)
    long_run = training_run_timeout()
    monkeypatch.setenv("MLOPS_REVIEW_TIMEOUT_H", "0.01")
    assert review_timeout() == timedelta(seconds=36)
    assert training_run_timeout() == long_run - timedelta(hours=24) + timedelta(seconds=36)
    for wrong in ("0", "-1"):
        monkeypatch.setenv("MLOPS_REVIEW_TIMEOUT_H", wrong)
        with pytest.raises(ValueError, match="MLOPS_REVIEW_TIMEOUT_H must be a positive number"):
            review_timeout()


def test_a_decision_on_an_unjudged_canary_waits_two_days_unless_told_otherwise(monkeypatch):
    from mlops_airflow.parse_time import deployment_run_timeout, rollout_decision_timeout

    monkeypatch.delenv("MLOPS_ROLLOUT_DECISION_TIMEOUT_H", raising=False)
    assert rollout_decision_timeout() == timedelta(days=2)
    long_run = deployment_run_timeout()
    monkeypatch.setenv("MLOPS_ROLLOUT_DECISION_TIMEOUT_H", "0.01")
    assert rollout_decision_timeout() == timedelta(seconds=36)
    assert deployment_run_timeout() == long_run - timedelta(days=2) + timedelta(seconds=36)
    monkeypatch.setenv("MLOPS_ROLLOUT_DECISION_TIMEOUT_H", "0")
    with pytest.raises(ValueError, match="MLOPS_ROLLOUT_DECISION_TIMEOUT_H must be a positive"):
        rollout_decision_timeout()


def test_a_partitioned_daily_dag_runs_a_day_after_its_first_and_last_days(monkeypatch):
    """run_offset=-1: day D's run is due at D+1 00:00, and is keyed D."""
    import pendulum

    from mlops_airflow.parse_time import partition_run_dates

    monkeypatch.setenv("MLOPS_START_DATE", "2018-04-01")
    monkeypatch.setenv("MLOPS_END_DATE", "2018-04-30")
    start, end = partition_run_dates()
    assert (start, end) == (
        pendulum.datetime(2018, 4, 2, tz="UTC"),
        pendulum.datetime(2018, 5, 1, tz="UTC"),
    )
    monkeypatch.delenv("MLOPS_END_DATE")
    assert partition_run_dates()[1] is None


def test_the_daily_sensors_defer_unless_the_environment_says_poke_and_how_often(monkeypatch):
    from mlops_airflow.parse_time import sensor_mode, sensor_poke_s

    monkeypatch.delenv("MLOPS_SENSOR_MODE", raising=False)
    assert sensor_mode() == {"deferrable": True}
    monkeypatch.setenv("MLOPS_SENSOR_MODE", "Poke")
    assert sensor_mode() == {"deferrable": False, "mode": "poke"}
    monkeypatch.setenv("MLOPS_SENSOR_MODE", "sometimes")
    with pytest.raises(ValueError, match="MLOPS_SENSOR_MODE must be deferrable, poke"):
        sensor_mode()
    monkeypatch.setenv("MLOPS_SENSOR_POKE_S", "0.25")
    assert sensor_poke_s() == 0.25
