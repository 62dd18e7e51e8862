"""DAG parse time per file, as Airflow measures it (``airflow dags report``), against 0.1 s.

The dag-processor re-parses every file every ``min_file_process_interval`` (30 s), so a DAG
file that imports pandas or mlflow at module level costs seconds of CPU, forever. The report
runs in an isolated AIRFLOW_HOME (the CLI insists on a migrated DB, so it is migrated first).

Before parsing, ``airflow.sdk`` and ``pendulum`` are imported, as the dag-processor does with
``parsing_pre_import_modules``; otherwise the first file parsed pays ~0.1 s for the framework
and the figure says nothing about the file. A file that yields no DAG (an import error) never
meets the target, however fast it fails.
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

TARGET_S = 0.1
REPO = Path(__file__).resolve().parents[1]

_REPORT = """
import sys
import airflow.sdk, pendulum  # pre-import like the dag-processor
from airflow.__main__ import main
sys.argv = ["airflow", "dags", "report", "--output", "json"]
sys.exit(main())
"""


def airflow_env(home: Path, dags: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.pop("AIRFLOW_CONFIG", None)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        GX_ANALYTICS_ENABLED="false",
    )
    return env


def _seconds(duration: str) -> float:
    """``0:00:00.108354`` (a printed timedelta) to seconds."""
    hours, minutes, seconds = duration.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _report_rows(stdout: str) -> list[dict[str, Any]]:
    # Warnings may share stdout with the report; the report is the JSON array line.
    for line in stdout.splitlines():
        if line.startswith("["):
            return json.loads(line)
    raise RuntimeError(f"no JSON report in the output of `airflow dags report`:\n{stdout}")


def run(dags: Path = REPO / "dags") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="parse-bench-") as tmp:
        env = airflow_env(Path(tmp), dags)
        began = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=env,
            check=True,
            capture_output=True,
        )
        migrate_s = time.perf_counter() - began
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _REPORT], env=env, capture_output=True, text=True
        )
        report_s = time.perf_counter() - began
    if done.returncode:
        raise RuntimeError(f"airflow dags report failed:\n{done.stderr[-3000:]}")

    files = {}
    for row in _report_rows(done.stdout):
        parse_s = _seconds(row["duration"])
        files[row["file"]] = {
            "parse_s": round(parse_s, 4),
            "dags": row["dags"],
            "tasks": int(row["task_num"]),
            "meets_target": parse_s <= TARGET_S and int(row["dag_num"]) > 0,
        }
    return {
        "target_s": TARGET_S,
        "files": dict(sorted(files.items())),
        "all_meet_target": all(f["meets_target"] for f in files.values()),
        "db_migrate_s": round(migrate_s, 2),
        "report_command_s": round(report_s, 2),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
