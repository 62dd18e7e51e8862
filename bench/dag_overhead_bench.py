"""Orchestration overhead of model_training: the whole run's wall time against the sum of its
tasks' own durations, for one ``dag.test()`` run on simulated data (the test suite's data root).

The run happens in a child process with its own AIRFLOW_HOME and data root, because Airflow
reads its configuration once, at import. The first ``dag.test()`` of a process also builds
the in-process execution API (about 5 s); the second run, reported as ``warm``, is what a
long-lived scheduler and worker look like.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _child(home: Path) -> dict[str, Any]:
    import pendulum
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.db import initdb

    from tests.support.training_data import build_data_root, monday

    initdb()
    build_data_root(Path(os.environ["MLOPS_DATA_ROOT"]))
    dag = DagBag(dag_folder=str(REPO / "dags")).dags["model_training"]
    figures = {}
    for label, week in (("cold", 0), ("warm", 1)):
        day = monday(week)
        began = time.perf_counter()
        run = dag.test(logical_date=pendulum.datetime(day.year, day.month, day.day, 3))
        wall = time.perf_counter() - began
        tasks = {
            ti.task_id: (ti.end_date - ti.start_date).total_seconds()
            for ti in run.get_task_instances()
            if ti.start_date and ti.end_date
        }
        figures[label] = {
            "state": str(run.state),
            "wall_s": round(wall, 2),
            "tasks_s": {k: round(v, 2) for k, v in tasks.items()},
            "sum_tasks_s": round(sum(tasks.values()), 2),
            "overhead_ratio": round(wall / sum(tasks.values()), 2),
        }
    return figures


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mlops-overhead-") as tmp:
        home = Path(tmp)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS_"))},
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
            "MLOPS_DATA_ROOT": str(home / "data"),
            "MLOPS_HISTORY_START": "2018-04-01",
            "MLOPS_MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db",
            "PYTHONPATH": str(REPO),
        }
        done = subprocess.run(
            [sys.executable, "-m", "bench.dag_overhead_bench", "--child"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=1800,
        )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    if "--child" in sys.argv:
        print(json.dumps(_child(Path(os.environ["AIRFLOW_HOME"]))))
    else:
        print(json.dumps(run(), indent=2))
