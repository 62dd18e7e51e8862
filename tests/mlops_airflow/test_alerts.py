"""The project's alerts fired the way Airflow 3.3 fires them, delivered to a real webhook
receiver (tests.support.webhook): the failure notifier on a task's last try and on a failed
run, the deadline callback as the executor calls it, and, in an Airflow of their own, a DAG
that fails under ``dag.test()`` and a 1 s deadline that a real scheduler sees missed."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from mlops_airflow.alerts import FailureNotifier, deadline_alert
from tests.support.alerting_airflow import environment, run, scheduler, wait_for
from tests.support.webhook import webhook

RUN_ID = "scheduled__2018-06-24T00:00:00+00:00"


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MLOPS_DATA_ROOT", str(tmp_path))
    return tmp_path


@pytest.fixture
def hook(monkeypatch):
    with webhook() as receiver:
        monkeypatch.setenv("MLOPS_ALERT_WEBHOOK_URL", receiver.url)
        yield receiver


def written(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / "alerts").glob("*.json"))]


def test_a_tasks_last_failed_try_is_posted_and_written(root, hook):
    ti = SimpleNamespace(
        dag_id="transactions_daily", task_id="build_features", run_id=RUN_ID, try_number=3
    )
    context = {"ti": ti, "exception": ValueError("no rows"), "params": {"day": None}}
    FailureNotifier()(context)  # as the task runner calls an on_failure_callback
    (alert,) = hook.received
    assert alert["kind"] == "task_failed"
    assert alert["summary"] == "transactions_daily.build_features failed after 3 tries"
    assert (alert["task_id"], alert["run_id"], alert["try_number"]) == ("build_features", RUN_ID, 3)
    assert (alert["error"], alert["details"]) == (
        "ValueError('no rows')",
        {"params": {"day": None}},
    )
    assert written(root) == [alert]


def test_a_failed_run_is_posted_with_its_reason(root, hook):
    """The dag-processor's context when it no longer knows the run's tasks: the DAG, the run
    and the reason (here the ``dagrun_timeout``)."""
    from airflow.sdk import DAG

    context = {"dag": DAG("model_monitoring", schedule=None), "run_id": RUN_ID}
    FailureNotifier(run=True)({**context, "reason": "timed_out"})
    (alert,) = hook.received
    assert (alert["kind"], alert["dag_id"], alert["run_id"]) == (
        "run_failed",
        "model_monitoring",
        RUN_ID,
    )
    assert (alert["summary"], alert["task_id"]) == ("model_monitoring run failed: timed_out", "")
    assert alert["details"] == {"failed_task": None}
    assert written(root) == [alert]


def test_a_failed_task_gives_one_task_alert_and_its_run_one_run_alert(root, hook):
    """The task's callback run twice for its last try (by the worker, then by the
    dag-processor for the same try), the run's once: two alerts, one of each kind."""
    from airflow.sdk import DAG

    ti = SimpleNamespace(dag_id="model_training", task_id="train", run_id=RUN_ID, try_number=3)
    context = {"ti": ti, "exception": ValueError("no rows"), "params": {}}
    FailureNotifier()(context)
    FailureNotifier()(dict(context))
    run_context = {"dag": DAG("model_training", schedule=None), "run_id": RUN_ID, "ti": ti}
    FailureNotifier(run=True)({**run_context, "reason": "task_failure"})
    FailureNotifier(run=True)({**run_context, "reason": "task_failure"})
    assert [(a["kind"], a["task_id"]) for a in hook.received] == [
        ("task_failed", "train"),
        ("run_failed", ""),
    ]
    assert hook.received[1]["details"] == {"failed_task": "train"}
    assert sorted(a["kind"] for a in written(root)) == ["run_failed", "task_failed"]


def dag_run(**changes) -> dict:
    """The run as ``Deadline.handle_miss`` hands it over: the REST API's view, as JSON."""
    return {
        "dag_run_id": RUN_ID,
        "dag_id": "transactions_daily",
        "logical_date": "2018-06-24T00:00:00Z",
        "queued_at": "2018-06-25T00:00:02Z",
        "data_interval_start": "2018-06-24T00:00:00Z",
        "data_interval_end": "2018-06-25T00:00:00Z",
        "partition_key": "2018-06-24",
        "run_type": "scheduled",
        "state": "running",
        **changes,
    }


def call_as_the_executor(alert, run: dict) -> tuple[bool, str | None]:
    """``alert``'s callback through the function the executor's callback process runs: the
    serialized path and kwargs, plus the context the scheduler adds."""
    import structlog
    from airflow.sdk.execution_time.callback_supervisor import execute_callback

    data = alert.callback.serialize()
    missed = {"id": "0192", "deadline_time": datetime(2018, 6, 25, 8, 0, 2, tzinfo=UTC)}
    kwargs = {**data["kwargs"], "context": {"dag_run": run, "deadline": missed}}
    return execute_callback(data["path"], kwargs, "", None, structlog.get_logger())


def test_a_missed_deadline_is_posted_naming_it_and_the_run(root, hook):
    from datetime import timedelta

    alert = deadline_alert("features_online", "the day's features online", timedelta(hours=8))
    assert call_as_the_executor(alert, dag_run()) == (True, None)
    (posted,) = hook.received
    assert posted["kind"] == "deadline_missed"
    assert posted["summary"] == "transactions_daily missed its deadline: the day's features online"
    assert (posted["dag_id"], posted["run_id"], posted["task_id"]) == (
        "transactions_daily",
        RUN_ID,
        "",
    )
    assert posted["error"] == "not done by 2018-06-25 08:00:02+00:00 (run running)"
    assert posted["details"]["data_interval_end"] == "2018-06-25T00:00:00Z"
    assert posted["details"]["partition_key"] == "2018-06-24"
    assert written(root) == [posted]


def test_a_backfill_run_that_misses_a_deadline_is_only_logged(root, hook, caplog):
    from datetime import timedelta

    alert = deadline_alert("day_judged", "the day judged by D+1", timedelta(hours=24))
    with caplog.at_level(logging.WARNING, logger="mlops_airflow.alerts"):
        assert call_as_the_executor(alert, dag_run(run_type="backfill")) == (True, None)
    assert hook.received == [] and written(root) == []
    assert f"transactions_daily: backfill run {RUN_ID} missed" in caplog.text


# ------------------------------------------------------------------ an Airflow of their own
@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    """Migrated, with the probe DAGs serialized (about 10 s)."""
    home = tmp_path_factory.mktemp("alerting_airflow")
    done = run(environment(home, ""), "prepare")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return home


@pytest.mark.slow
def test_a_dag_that_fails_posts_its_tasks_last_try_then_the_run(airflow_home, hook):
    done = run(environment(airflow_home, hook.url), "test", "failing_probe")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    task, failed_run = hook.received  # one retry: its first try does not alert
    assert (task["kind"], task["task_id"], task["try_number"]) == ("task_failed", "fails", 2)
    assert task["error"] == "RuntimeError('the probe fails')"
    assert (failed_run["kind"], failed_run["run_id"]) == ("run_failed", task["run_id"])
    assert (failed_run["error"], failed_run["details"]) == (
        "task_failure",
        {"failed_task": "fails"},
    )


@pytest.mark.slow
def test_dag_test_still_fails_a_successful_run_of_a_dag_with_a_deadline(airflow_home, hook):
    """Airflow 3.3.2: ``dag.test()``'s scheduler-side DAG keeps the deadline alerts'
    definitions where a successful run's ``update_state`` looks up their ids
    (``DeadlineAlert.get_by_id(<dict>)``), so tests/conftest.py turns the DAGs' deadlines off.
    When this fails, Airflow is fixed: drop that and this."""
    done = run(environment(airflow_home, hook.url), "test", "succeeding_deadline_probe")
    assert done.returncode != 0
    assert "'dict' object has no attribute 'hex'" in done.stdout + done.stderr
    assert "FROM deadline_alert" in done.stdout + done.stderr


@pytest.mark.slow
def test_a_real_scheduler_runs_the_deadline_callback_on_its_executor(airflow_home, hook):
    """The run is queued and never starts (the DAG is paused); 1 s later the scheduler marks
    its deadline missed and its LocalExecutor runs ``deadline_missed`` in a process of its
    own. Measured: the alert arrives 7 s after the scheduler starts."""
    env = environment(airflow_home, hook.url)
    done = run(env, "trigger", "deadline_probe")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = airflow_home / "scheduler.log"
    with scheduler(env, log):
        try:
            wait_for(lambda: bool(hook.received), timeout=120)
        except TimeoutError:
            pytest.fail(f"no alert; the scheduler's log ends:\n{log.read_text()[-5000:]}")
    (alert,) = hook.received
    assert alert["kind"] == "deadline_missed" and alert["dag_id"] == "deadline_probe"
    assert alert["summary"] == "deadline_probe missed its deadline: the probe done"
    assert alert["run_id"].startswith("manual__")
    assert alert["error"].endswith("(run queued)")
    assert alert["details"]["run_type"] == "manual"
    assert "Callback executed successfully" in log.read_text()
