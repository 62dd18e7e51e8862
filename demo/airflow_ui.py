"""``make airflow``: the Airflow UI on this project's DAGs (the laptop profile: SQLite,
LocalExecutor), its components started as ``make demo`` starts them and all stopped on
Ctrl-C, on SIGTERM (a second signal does not cut the stop short) or on the driver's death.

On the home of a ``make demo`` run, it reopens that run as it ended: the same metadata DB
and the settings the demo ran with, which the demo keeps in ``<home>/demo-settings.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python demo/airflow_ui.py` finds the demo package

from demo.airflow_stack import AirflowStack  # noqa: E402

DEMO_SETTINGS = "demo-settings.json"


def saved_settings(home: Path) -> dict[str, str]:
    """The ``MLOPS_*`` settings a demo on ``home`` ran with, or none."""
    path = home / DEMO_SETTINGS
    return json.loads(path.read_text()) if path.is_file() else {}


def main() -> int:
    home = Path(os.environ.get("AIRFLOW_HOME", ROOT / ".airflow")).resolve()
    port = int(os.environ.get("AIRFLOW__API__PORT", "8080"))
    settings = saved_settings(home)
    with AirflowStack(home, env=settings, port=port) as stack:
        if settings:
            print(f"the demo's run, as it ended (settings from {home / DEMO_SETTINGS})")
        print(f"{stack.describe()}\nCtrl-C stops every component.", flush=True)
        while True:
            stack.check_alive()
            time.sleep(2)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
