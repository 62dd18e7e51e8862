"""The last ``make demo``'s timing, as it wrote it to ``<data root>/demo_timing.json``.

The demo takes minutes, so ``make bench`` reports its figures rather than running it: the
loop's wall time, the history's share, and per scheduled day the wall time, the task work
(every task instance's duration, sensors excluded) and the rest (Airflow's scheduling, the
sensors' waits, the driver's), with the load average at the end of that run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FILE = "demo_timing.json"


def timing_file(environ: dict[str, str] | None = None) -> Path:
    environ = dict(os.environ) if environ is None else environ
    return Path(environ.get("MLOPS_DATA_ROOT") or REPO / "data") / FILE


def figures(timing: dict[str, Any]) -> dict[str, Any]:
    per_day = timing.get("per_day", {})
    return {
        "wall_s": timing["wall_s"],
        "history_s": timing.get("history_s"),
        "days": timing["days"],
        "scheduled_days": timing.get("scheduled_days"),
        "per_day_wall_s": per_day.get("wall_s"),
        "per_day_task_work_s": per_day.get("task_work_s"),
        "per_day_overhead_s": per_day.get("overhead_s"),
        "slowest_day_s": max(timing.get("day_wall_s", {}).values(), default=None),
        "task_work_s": timing["task_work_s"],
        "load_average_1_5_15": timing.get("load_average_1_5_15"),
    }


def run() -> dict[str, Any]:
    path = timing_file()
    if not path.exists():
        return {"source": str(path), "status": "no demo run yet: make demo writes it"}
    return {"source": str(path), **figures(json.loads(path.read_text()))}
