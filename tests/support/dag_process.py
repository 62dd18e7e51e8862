"""A DAG's ``dag.test()`` in a process of its own, beside the test's.

``dag.test()`` blocks while a deferred task's trigger runs in line, and the Task SDK keeps
its supervisor channel in a module global, so two runs cannot share one process (nor two
threads of it). A run that must wait while the test does something else (a canary waiting
on its observed days while a rollback comes) runs here, on the same metadata DB and
environment, and prints its task states as JSON on its last line.

    python -m tests.support.dag_process DAG_ID CONF_JSON
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[2]


def start_dag_test(dag_id: str, conf: dict, output: IO[str]) -> subprocess.Popen:
    """Start the run; its output (the run's log, then the states) goes to ``output``."""
    env = {
        **os.environ,
        # two processes write the SQLite metadata DB now: wait for the lock, not 5 s
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "mlops_airflow.metadata_db.SQLITE",
    }
    argv = [sys.executable, "-m", "tests.support.dag_process", dag_id, json.dumps(conf)]
    return subprocess.Popen(argv, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)


def states_of(output: str) -> dict[str, str]:
    """The task states the run printed last."""
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag_id, conf = sys.argv[1], json.loads(sys.argv[2])
    run = DagBag(dag_folder=str(REPO / "dags")).dags[dag_id].test(run_conf=conf)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    print(json.dumps(states), flush=True)


if __name__ == "__main__":
    main()
