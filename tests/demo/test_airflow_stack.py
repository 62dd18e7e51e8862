"""The real Airflow stack of ``make demo``: scheduler, dag-processor, triggerer and api-server
on SQLite, catching up on simulated days of ``transactions_daily`` driven over REST."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from demo.airflow_stack import (
    AirflowStack,
    StackError,
    component_environment,
    stack_environment,
)
from tests.support.airflow_api import listening_addresses, status, token
from tests.support.simulated_days import catchup_environment, land_days

pytestmark = pytest.mark.slow


def test_every_component_shares_one_sqlite_db_and_the_api_server_of_its_port(tmp_path):
    env = stack_environment(tmp_path, 8123, extra={"MLOPS_DATA_ROOT": "/data"})
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path / 'airflow.db'}"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8123/execution/"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["MLOPS_DATA_ROOT"] == "/data"


def test_only_the_scheduler_preloads_and_loads_plugins_eagerly(tmp_path):
    env = stack_environment(tmp_path, 8123)
    scheduler = component_environment(env, "scheduler", preload=True)
    assert scheduler["MLOPS_PRELOAD"] == "1"
    assert scheduler["AIRFLOW__CORE__LAZY_LOAD_PLUGINS"] == "False"
    for component in ("dag-processor", "api-server", "triggerer"):
        other = component_environment(env, component, preload=True)
        assert other["MLOPS_PRELOAD"] == "0"
        assert "AIRFLOW__CORE__LAZY_LOAD_PLUGINS" not in other
    assert component_environment(env, "scheduler", preload=False)["MLOPS_PRELOAD"] == "0"


def test_the_api_server_listens_on_loopback_and_every_call_carries_a_token(tmp_path):
    env = stack_environment(tmp_path, 8123)
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    stack = AirflowStack(tmp_path / "airflow")  # not started, so not logged in
    with pytest.raises(StackError, match="GET dags: no token; every REST call is made after"):
        stack.api("GET", "dags")


def test_the_scheduler_catches_up_on_landed_days_and_stops_cleanly(tmp_path):
    root = tmp_path / "data"
    days = land_days(root, 2)
    stack = AirflowStack(tmp_path / "airflow", env=catchup_environment(root, days))
    with stack:
        assert "http://127.0.0.1:" in stack.describe()
        stack.wait_for_dags(["transactions_daily"])
        stack.unpause("transactions_daily")
        runs = stack.wait_for_runs("transactions_daily", len(days), timeout=600)
        last = runs[-1]["dag_run_id"]
        tis = stack.task_instances("transactions_daily", last)
        ingested = stack.xcom("transactions_daily", last, "validate_partition")["ingested"]
        pids = [process.pid for process in stack.processes.values()]
        # the API: on loopback only, and refused without a token (the stack's calls carry one)
        listening = listening_addresses(stack.port)
        without_token = status(stack.url)
        password = json.loads(stack.password_file.read_text())["admin"]
        with_token = status(stack.url, token=token(stack.url, password))
    assert listening == {"127.0.0.1"}
    assert (without_token, with_token) == (401, 200)
    assert [run["state"] for run in runs] == ["success"] * len(days)
    assert [run["partition_key"] for run in runs] == [d.isoformat() for d in days]
    assert {ti["state"] for ti in tis} == {"success"} and len(tis) == 5
    assert ingested["day"] == days[-1].isoformat()
    for day in days:
        for zone in ("raw", "validated", "features/daily"):
            assert (root / zone / f"date={day.isoformat()}").is_dir(), (zone, day)
    scheduler_log = (tmp_path / "airflow" / "stack-logs" / "scheduler.log").read_text()
    assert "preloaded" in scheduler_log
    for pid in pids:  # every process group is gone, workers included
        with pytest.raises(ProcessLookupError, match="No such process"):
            os.killpg(pid, 0)


def test_a_component_that_dies_is_reported_with_its_log(tmp_path):
    stack = AirflowStack(tmp_path / "airflow")
    stack.processes["scheduler"] = subprocess.Popen(["false"], start_new_session=True)
    stack.processes["scheduler"].wait()
    with pytest.raises(StackError, match=r"airflow scheduler exited \(1\); see .*scheduler.log"):
        stack.check_alive()
    stack.stop()
    assert stack.processes == {}
