"""Per-task overhead of the CeleryExecutor (the production profile) against the LocalExecutor
(the laptop profile), through the real scheduler on this machine.

A tiny DAG (a chain of ``N`` ``@task`` tasks that only return a small value) is written to a
temporary DAG folder, and each stack runs it three times, one run after another; the first run
warms up, runs 2 and 3 are reported:

- ``local``: ``demo.airflow_stack.AirflowStack`` (SQLite, LocalExecutor, parallelism 2), as the
  demo runs it: the scheduler preloads the project's task modules (``MLOPS_PRELOAD=1``), so its
  forks, and the tasks forked from them, start with those imported.
- ``celery``: ``demo.production_stack.ProductionStack`` (PostgreSQL metadata DB, RabbitMQ
  broker, one Celery worker of concurrency 2, which preloads the task modules; its S3 and
  MLflow servers run too, and the tiny DAG ignores them). It needs the host's PostgreSQL,
  Redis and RabbitMQ: if any is unreachable the section raises with the reason, before either
  stack starts.

Per run: ``wall_s`` is the run's start to end, ``sum_task_s`` the sum of its task instances'
durations, ``per_task_overhead_s`` = (wall - sum) / N; ``queued_to_start_s`` is a task
instance's ``queued_when`` to its ``start_date`` (executor pickup and process start), and
``handoff_s`` a task's end to its downstream's start (the scheduler seeing the end, queueing the
next task, and the executor starting it), of which ``end_to_queued_s`` is the scheduler's part
(a task's end to its downstream's ``queued_when``); each as median and p90 over the run's tasks.
The runs go one after another on a shared 2-core machine: expect run-to-run noise.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

N = 12
DAG_ID = "executor_bench_chain"
RUNS = 3  # the first warms up
RUN_TIMEOUT_S = 600

DAG_FILE = f'''"""{N} tasks in a chain, each returning a small value: executor overhead only."""

from airflow.sdk import chain, dag, task


@task
def step() -> int:
    return 1


@dag(dag_id="{DAG_ID}", schedule=None, catchup=False, tags=["bench"])
def {DAG_ID}():
    chain(*[step.override(task_id=f"step_{{i:02d}}")() for i in range(1, {N} + 1)])


{DAG_ID}()
'''


def _stamp(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def _spread(values: list[float]) -> dict[str, float]:
    """Median and p90 (inclusive quantiles: within the sample's range)."""
    p90 = statistics.quantiles(values, n=10, method="inclusive")[8]
    return {"median": round(statistics.median(values), 3), "p90": round(p90, 3)}


def run_figures(run: dict[str, Any], tis: list[dict[str, Any]]) -> dict[str, Any]:
    """One finished run's figures from the run and its task instances (REST bodies)."""
    ordered = sorted(tis, key=lambda ti: ti["task_id"])  # step_01 .. step_N: the chain's order
    wall = _stamp(run["end_date"]) - _stamp(run["start_date"])
    durations = sum(ti["duration"] for ti in ordered)
    queued = [_stamp(ti["start_date"]) - _stamp(ti["queued_when"]) for ti in ordered]
    pairs = list(zip(ordered, ordered[1:], strict=False))
    handoff = [_stamp(after["start_date"]) - _stamp(before["end_date"]) for before, after in pairs]
    to_queue = [
        _stamp(after["queued_when"]) - _stamp(before["end_date"]) for before, after in pairs
    ]
    return {
        "state": run["state"],
        "wall_s": round(wall, 3),
        "sum_task_s": round(durations, 3),
        "per_task_overhead_s": round((wall - durations) / len(ordered), 3),
        "queued_to_start_s": _spread(queued),
        "handoff_s": _spread(handoff),
        "end_to_queued_s": _spread(to_queue),
    }


def drive(stack: Any) -> dict[str, Any]:
    """Start ``stack``, run the DAG ``RUNS`` times one after another, stop it (every exit)."""
    began = time.perf_counter()
    with stack:
        startup = time.perf_counter() - began
        stack.wait_for_dags([DAG_ID], timeout=180)
        stack.unpause(DAG_ID)
        runs = []
        for _ in range(RUNS):
            run_id = stack.trigger(DAG_ID)
            run = stack.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT_S)
            tis = stack.task_instances(DAG_ID, run_id)
            if run["state"] != "success" or len(tis) != N:
                states = sorted((ti["task_id"], ti["state"]) for ti in tis)
                raise RuntimeError(f"{run_id}: {run['state']}, task instances {states}")
            runs.append(run_figures(run, tis))
    reported = runs[1:]
    return {
        "startup_s": round(startup, 1),
        "warmup": runs[0],
        "runs": {f"run_{i}": figures for i, figures in enumerate(reported, start=2)},
        "per_task_overhead_s": round(
            statistics.mean(r["per_task_overhead_s"] for r in reported), 3
        ),
    }


def celery_requirements() -> str | None:
    """None when the production stack can start here, else why not."""
    from demo.production_stack import POSTGRES, RABBITMQ, REDIS, reachable

    missing = [
        f"{name} at {host}:{port}"
        for name, (host, port) in (
            ("PostgreSQL", POSTGRES),
            ("Redis", REDIS),
            ("RabbitMQ", RABBITMQ),
        )
        if not reachable((host, port))
    ]
    if shutil.which("rabbitmqctl") is None:
        missing.append("rabbitmqctl on PATH")
    return f"CeleryExecutor stack needs {', '.join(missing)}" if missing else None


def measure(base: Path) -> dict[str, Any]:
    from demo.airflow_stack import AirflowStack
    from demo.production_stack import ProductionStack

    dags = base / "dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(DAG_FILE, encoding="utf-8")
    env = {"AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
    local = drive(AirflowStack(base / "local", env=env))
    celery = drive(ProductionStack(base / "celery", env=env))
    return {
        "tasks": N,
        "runs_reported": RUNS - 1,
        "local": {"executor": "LocalExecutor", "scheduler_preload": True, **local},
        "celery": {"executor": "CeleryExecutor", "worker_preload": True, **celery},
        "overhead_ratio_celery_over_local": round(
            celery["per_task_overhead_s"] / local["per_task_overhead_s"], 2
        ),
    }


def run() -> dict[str, Any]:
    if reason := celery_requirements():
        raise RuntimeError(reason)
    base = Path(tempfile.mkdtemp(prefix="mlops-executor-bench-"))
    try:
        figures = measure(base)
    except BaseException as err:
        err.add_note(f"stack homes and logs kept in {base} (<home>/stack-logs/)")
        raise
    shutil.rmtree(base, ignore_errors=True)
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
