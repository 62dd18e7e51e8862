"""The unattended loops' settings (``demo.closed_loop``): nobody answers a review there, so
it times out within a minute, and a task awaiting input does not hold the day loop (a
retrain request queued behind its run does, until the review has timed out)."""

from __future__ import annotations

from datetime import timedelta

from demo.closed_loop import DAG_IDS, LoopConfig, busy, loop_environment


def test_a_review_in_the_loops_times_out_within_a_minute(monkeypatch):
    from mlops_airflow.parse_time import review_timeout

    env = loop_environment(LoopConfig(days=30), None)
    monkeypatch.setenv("MLOPS_REVIEW_TIMEOUT_H", env["MLOPS_REVIEW_TIMEOUT_H"])
    assert review_timeout() < timedelta(minutes=1)


def test_a_canary_in_the_loops_is_judged_on_quality_and_an_unjudged_one_times_out_soon(
    monkeypatch,
):
    """The labels of a canary's first day are known 7 days later, with 80 to 100 frauds
    at 2,500 cards: judged then. The deadline leaves a week more; nobody answers the
    question after it, which times out (rolled back) within a minute."""
    from mlops_airflow.parse_time import rollout_decision_timeout, rollout_default

    env = loop_environment(LoopConfig(days=30), None)
    for name, value in env.items():
        if name.startswith("MLOPS_ROLLOUT_"):
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLOPS_ROLLOUT_JUDGE_QUALITY", raising=False)
    assert rollout_default("judge_quality", "true") == "true"  # the default: not switched off
    observed, deadline = (
        int(rollout_default(n, "0")) for n in ("observation_days", "quality_deadline_days")
    )
    assert observed + 7 < deadline <= 14  # one matured day before it; a short wait after
    assert rollout_decision_timeout() < timedelta(minutes=1)


class Stack:
    """The REST answers ``busy`` reads: the runs and task instances of one DAG, filtered
    by state as the API does."""

    def __init__(self, runs: list[dict], tis: list[dict], dag: str = "model_training") -> None:
        self.runs = [{**run, "dag_id": dag} for run in runs]
        self.tis = [{**ti, "dag_id": dag} for ti in tis]

    def api(self, method: str, path: str, params: dict) -> dict:
        if path.endswith("taskInstances"):
            return {"task_instances": [t for t in self.tis if t["state"] in params["state"]]}
        return {"dag_runs": [r for r in self.runs if r["state"] in params["state"]]}


def test_a_review_awaiting_input_does_not_hold_the_day_loop_but_a_queued_run_does():
    assert "model_training" in DAG_IDS
    waiting = {"dag_run_id": "asset__1", "state": "running"}
    tis = [
        {"task_id": "train_and_gate", "state": "success"},
        {"task_id": "review_candidate", "state": "awaiting_input"},
    ]
    assert busy(Stack([waiting], tis)) == []
    queued = {"dag_run_id": "asset__2", "state": "queued"}
    assert busy(Stack([waiting, queued], tis)) == ["model_training (queued run)"]


def test_the_daily_sensors_poking_for_the_next_day_do_not_hold_it_back():
    """make demo's sensors poke in a worker (MLOPS_SENSOR_MODE=poke): running, they wait
    for the data the loop has not landed yet, as deferred ones do; a task at work, or the
    deployment's observation (it decides when it wakes), still holds the day."""
    running = {"dag_run_id": "scheduled__1", "state": "running"}
    tis = [
        {"task_id": "wait_for_landing_partition", "state": "running"},
        {"task_id": "wait_for_earlier_days", "state": "queued"},
    ]
    assert busy(Stack([running], tis, dag="transactions_daily")) == []
    working = [*tis, {"task_id": "validate_partition", "state": "running"}]
    stack = Stack([running], working, dag="transactions_daily")
    assert busy(stack) == ["transactions_daily/validate_partition"]
    observing = [{"task_id": "wait_for_observed_days", "state": "running"}]
    stack = Stack([running], observing, dag="model_deployment")
    assert busy(stack) == ["model_deployment/wait_for_observed_days"]
