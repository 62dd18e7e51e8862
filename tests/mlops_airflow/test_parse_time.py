"""Parse-time knobs read from the environment (``mlops_airflow.parse_time``)."""

from __future__ import annotations

from datetime import timedelta


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
