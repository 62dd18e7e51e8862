"""Per-task overhead of ``transactions_daily`` under the real scheduler, before and after the
scheduler preloads the task-time modules (``demo.airflow_stack``, ``mlops_airflow.preload``).

Three small simulated days are caught up by a scheduler on the embedded defaults (SQLite,
LocalExecutor, parallelism 2): once with every task importing what it needs (``before``),
once with the modules inherited from the scheduler's fork (``after``). A task's wall time is
its task instance's start to end (REST); its compute is the same stage call on the same day,
timed in one warm process on a copy of the data. Overhead = wall - compute, per task and day;
the figures are medians over the days. The sensors' compute is a poke (milliseconds): their
whole wall time is overhead. ``gap_s`` is the time between a task's end and the start of the
next one of the run (scheduling latency), not inside any task; ``dag_parse_s`` is the
dag-processor's last parse of the DAG file, which the preload must leave as it was.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "transactions_daily"
DAYS = 3
SENSORS = ("wait_for_landing_partition", "wait_for_earlier_days")
STAGES = {  # task id -> the (module, function)s that the task calls, in order
    "validate_partition": (
        ("mlops.ingestion.landing", "ingest_partition"),
        ("mlops.validation.partition", "validate_partition"),
    ),
    "materialize_features": (
        ("mlops.features.pipeline", "build_day_features"),
        ("mlops.features.pipeline", "materialize_day_features"),
    ),
    "score_transactions": (("mlops.scoring.daily", "score_day"),),
}


def _compute_child() -> dict[str, list[float]]:
    """In this (warm) process: every stage of every day, in DAG order, timed."""
    import importlib

    from mlops.settings import load_settings
    from mlops_airflow.context import task_storage_options

    settings = load_settings()
    options = task_storage_options(settings)
    calls = {
        task: [getattr(importlib.import_module(module), name) for module, name in stages]
        for task, stages in STAGES.items()
    }
    days = json.loads(os.environ["BENCH_DAYS"])
    seconds: dict[str, list[float]] = {task: [] for task in calls}
    for day in days:
        for task, stages in calls.items():
            began = time.perf_counter()
            for call in stages:
                call(settings, day, options)
            seconds[task].append(round(time.perf_counter() - began, 3))
    return seconds


def measure_compute(base: Path) -> dict[str, list[float]]:
    from tests.support.simulated_days import catchup_environment, land_days

    root = base / "data"
    days = land_days(root, DAYS)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS_"))},
        **catchup_environment(root, days),
        "MLOPS_PROFILE": "local",
        "GX_ANALYTICS_ENABLED": "false",
        "BENCH_DAYS": json.dumps([d.isoformat() for d in days]),
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.scheduler_bench", "--compute"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_stack(base: Path, preload: bool) -> dict[str, Any]:
    """Catch up on the days through a real scheduler; the runs' task instances and timings."""
    from demo.airflow_stack import AirflowStack
    from tests.support.simulated_days import catchup_environment, land_days

    root = base / "data"
    days = land_days(root, DAYS)
    began = time.perf_counter()
    stack = AirflowStack(base / "airflow", env=catchup_environment(root, days), preload=preload)
    with stack:
        healthy = time.perf_counter() - began
        stack.wait_for_dags([DAG_ID])
        stack.unpause(DAG_ID)
        unpaused = time.perf_counter()
        runs = stack.wait_for_runs(DAG_ID, DAYS, timeout=1200)
        catchup = time.perf_counter() - unpaused
        tis = {run["dag_run_id"]: stack.task_instances(DAG_ID, run["dag_run_id"]) for run in runs}
        parse_s = stack.api("GET", f"dags/{DAG_ID}")["last_parse_duration"]
    return {
        "dag_parse_s": round(parse_s, 3),
        "states": sorted(run["state"] for run in runs),
        "startup_s": round(healthy, 1),
        "catchup_s": round(catchup, 1),
        "task_instances": tis,
    }


def _parse(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()


def per_task(stack: dict[str, Any], compute: dict[str, list[float]]) -> dict[str, Any]:
    """Median wall, compute and overhead per task over the days; the run's scheduling gaps."""
    walls: dict[str, list[float]] = {}
    gaps: list[float] = []
    for _, tis in sorted(stack["task_instances"].items()):
        ordered = sorted(tis, key=lambda ti: ti["start_date"])
        for ti in ordered:
            walls.setdefault(ti["task_id"], []).append(ti["duration"])
        ends = [_parse(ti["end_date"]) for ti in ordered]
        starts = [_parse(ti["start_date"]) for ti in ordered]
        gaps += [max(0.0, s - max(ends[:i])) for i, s in enumerate(starts) if i]
    tasks = {}
    for task, wall in walls.items():
        spent = compute.get(task, [0.0] * len(wall))
        overhead = [w - c for w, c in zip(wall, spent, strict=True)]
        tasks[task] = {
            "wall_s": round(statistics.median(wall), 2),
            "compute_s": round(statistics.median(spent), 2),
            "overhead_s": round(statistics.median(overhead), 2),
        }
    stages = [tasks[t]["overhead_s"] for t in STAGES if t in tasks]
    return {
        "tasks": tasks,
        "mean_stage_overhead_s": round(statistics.mean(stages), 2),
        "mean_task_overhead_s": round(statistics.mean(t["overhead_s"] for t in tasks.values()), 2),
        "median_gap_s": round(statistics.median(gaps), 2) if gaps else None,
        "startup_s": stack["startup_s"],
        "dag_parse_s": stack["dag_parse_s"],
        "catchup_s": stack["catchup_s"],
        "states": stack["states"],
    }


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mlops-scheduler-bench-") as tmp:
        base = Path(tmp)
        compute = measure_compute(base / "compute")
        before = per_task(run_stack(base / "before", preload=False), compute)
        after = per_task(run_stack(base / "after", preload=True), compute)
    return {
        "days": DAYS,
        "compute_s": compute,
        "before": before,
        "after": after,
        "stage_overhead_saved_s": round(
            before["mean_stage_overhead_s"] - after["mean_stage_overhead_s"], 2
        ),
    }


if __name__ == "__main__":
    if "--compute" in sys.argv:
        print(json.dumps(_compute_child()))
    else:
        print(json.dumps(run(), indent=2))
