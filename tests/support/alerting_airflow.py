"""A throwaway Airflow of its own (SQLite, LocalExecutor, a dags folder of probe DAGs) to
see the project's alerts fire the way Airflow fires them.

- ``failing_probe``: one task that always fails (one retry), with the project's notifiers;
  ``dag.test()`` runs the task's callback after its last try and the DAG's on the failed run.
- ``deadline_probe``: a 1 s deadline from ``mlops_airflow.alerts.deadline_alert``, paused so
  its runs never start; a real ``airflow scheduler`` notices the missed deadline and runs the
  callback on its LocalExecutor.
- ``succeeding_deadline_probe``: a deadline, and a task that succeeds (``dag.test()``).

    python -m tests.support.alerting_airflow prepare        # migrate, write, serialize
    python -m tests.support.alerting_airflow test DAG_ID    # dag.test()
    python -m tests.support.alerting_airflow trigger DAG_ID # a queued manual run

Each command runs in ``environment(home, webhook_url)``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from demo.airflow_stack import kill_session, stack_environment
from mlops.serving.process import free_port
from tests.support.mlflow_server import stop_group

REPO = Path(__file__).resolve().parents[2]
PROBES = """
from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from mlops_airflow.alerts import FailureNotifier, deadline_alert

START = pendulum.datetime(2026, 1, 1, tz="UTC")


@dag(
    schedule=None,
    start_date=START,
    on_failure_callback=FailureNotifier(run=True),
    default_args={
        "on_failure_callback": FailureNotifier(),
        "retries": 1,
        "retry_delay": timedelta(0),
    },
)
def failing_probe():
    @task
    def fails():
        raise RuntimeError("the probe fails")

    fails()


@dag(
    schedule=None,
    start_date=START,
    deadline=deadline_alert("probe", "the probe done", timedelta(seconds=1)),
)
def deadline_probe():
    @task
    def waits():
        pass

    waits()


@dag(
    schedule=None,
    start_date=START,
    deadline=deadline_alert("probe", "the probe done", timedelta(hours=1)),
)
def succeeding_deadline_probe():
    @task
    def succeeds():
        pass

    succeeds()


failing_probe()
deadline_probe()
succeeding_deadline_probe()
"""


def environment(home: Path, webhook_url: str) -> dict[str, str]:
    """The laptop stack's environment (``demo.airflow_stack``) on the probe DAGs' folder."""
    extra = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        # the scheduler serves its tasks' logs: on a port of its own, not the shared 8793
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "MLOPS_DATA_ROOT": str(home / "data"),
        "MLOPS_ALERT_WEBHOOK_URL": webhook_url,
    }
    return stack_environment(home, free_port(), extra=extra)


def run(env: Mapping[str, str], *argv: str) -> subprocess.CompletedProcess:
    """One command of this module in a process of its own; its output is kept to be shown."""
    command = [sys.executable, "-m", "tests.support.alerting_airflow", *argv]
    return subprocess.run(
        command, cwd=REPO, env=dict(env), capture_output=True, text=True, timeout=300
    )


@contextmanager
def scheduler(env: Mapping[str, str], log: Path) -> Iterator[None]:
    """``airflow scheduler`` for the ``with`` block, stopped (its group) on every exit."""
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow", "scheduler"],
            cwd=REPO,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield
        finally:  # the group, then what left it (task processes start groups of their own)
            stop_group(process)
            kill_session(process.pid)


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``condition()`` held; raises TimeoutError when it never did."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not within {timeout} s")
        time.sleep(0.5)
    return time.monotonic() - started


def prepare() -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.utils.db import initdb

    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    dags.mkdir(parents=True, exist_ok=True)
    (dags / "alert_probes.py").write_text(PROBES, encoding="utf-8")
    initdb()
    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    for bundle in manager.get_all_dag_bundles():
        bundle.initialize()
        bag = BundleDagBag(bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        assert not bag.import_errors, bag.import_errors
        sync_bag_to_db(bag, bundle.name, bundle_version=None)


def main() -> None:
    command, *rest = sys.argv[1:]
    if command == "prepare":
        prepare()
    elif command == "test":
        from airflow.dag_processing.dagbag import DagBag

        DagBag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).dags[rest[0]].test()
    elif command == "trigger":
        from airflow.api.common.trigger_dag import trigger_dag
        from airflow.utils.types import DagRunTriggeredByType

        trigger_dag(rest[0], triggered_by=DagRunTriggeredByType.TEST)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
