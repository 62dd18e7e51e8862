"""``make demo``: months of a card-fraud world run through the real Airflow, unattended.

A world of card transactions is simulated (``new_fraud_pattern`` drift late in it by default,
``--drift amount_shift`` for covariate drift) and landed one day at a time. The scheduler,
dag-processor, triggerer and api-server run on the embedded defaults (SQLite, local folders,
LocalExecutor); the DAGs ingest, validate, build features, score, monitor, decide, retrain,
gate and roll out by themselves. The terminal shows the days done, the serving model and the
policy's decision; the UI address is printed at the start. At the end: ``report.html``
(charts and the timeline), a summary, and a few predictions from the model service.

Everything is rebuilt from scratch on each run (the data root and the Airflow home below).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python demo/run_demo.py` finds the demo package

from demo.airflow_ui import DEMO_SETTINGS  # noqa: E402
from demo.closed_loop import (  # noqa: E402
    DAG_IDS,
    LoopConfig,
    days_of,
    loop_environment,
    run_loop,
    time_split,
)


def arguments(argv: list[str] | None) -> argparse.Namespace:
    defaults = LoopConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=defaults.days)
    parser.add_argument(
        "--drift", default=defaults.drift, choices=["new_fraud_pattern", "amount_shift", "none"]
    )
    parser.add_argument("--drift-start-day", type=int, default=defaults.drift_start_day)
    parser.add_argument("--customers", type=int, default=defaults.customers)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--history-days",
        type=int,
        default=58,
        help="days loaded as history before the scheduler takes over (0: all through Airflow)",
    )
    parser.add_argument(
        "--home", type=Path, default=Path(os.environ.get("AIRFLOW_HOME", ROOT / ".airflow"))
    )
    parser.add_argument(
        "--data-root", type=Path, default=Path(os.environ.get("MLOPS_DATA_ROOT", ROOT / "data"))
    )
    return parser.parse_args(argv)


def fresh(*folders: Path) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    config = LoopConfig(
        days=args.days,
        drift=args.drift,
        drift_start_day=args.drift_start_day,
        customers=args.customers,
        terminals=2 * args.customers,
        seed=args.seed,
    )
    home, data_root = args.home.resolve(), args.data_root.resolve()
    fresh(home, data_root)
    env = loop_environment(config, data_root, first_index=args.history_days)
    # Days land seconds apart here: the daily sensors poke in a worker slot (the stack has
    # four) rather than wait for the triggerer's next one-second sync, twice a day.
    env["MLOPS_SENSOR_MODE"] = "poke"
    (home / DEMO_SETTINGS).write_text(json.dumps(env, indent=2))  # make airflow reopens it
    os.environ.update(env)  # this process reads the same records the tasks write
    first, last, drift = days_of(config)
    print(
        f"simulating {config.days} days from {first} ({config.customers:,} cards), drift "
        f"{config.drift} from {drift or '-'}; data in {data_root}",
        flush=True,
    )
    from demo.airflow_stack import AirflowStack
    from demo.closed_loop import load_history
    from demo.outcome import finish
    from mlops.simulator import simulate

    began = time.monotonic()
    transactions = simulate(config.simulation())
    if args.history_days:
        print(f"go-live with history: loading the first {args.history_days} days", flush=True)
        load_history(transactions, config, args.history_days)
        print(f"history loaded in {time.monotonic() - began:.0f} s", flush=True)
    history_s = time.monotonic() - began
    laps = DayLaps()
    with AirflowStack(home, env=env) as stack:
        print(stack.describe(), flush=True)
        stack.wait_for_dags(list(DAG_IDS))
        laps.start()
        run_loop(stack, config, transactions, first_index=args.history_days, until=laps.lap)
        loop_s = time.monotonic() - began
        work = time_split(stack)
    timing = demo_timing(loop_s, history_s, laps.seconds, work, config.days)
    (data_root / "demo_timing.json").write_text(json.dumps(timing, indent=2))
    return finish(config, data_root, home, transactions, loop_s, timing_summary(timing))


class DayLaps:
    """Wall seconds of each scheduled day, from the moment the loop starts landing days
    (``until`` of ``run_loop``: called once a day is finished; it never ends the loop)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.monotonic()

    def start(self) -> None:
        self._last = time.monotonic()

    def lap(self, day: object) -> bool:
        now = time.monotonic()
        self.seconds[str(day)] = round(now - self._last, 2)
        self._last = now
        return False


def demo_timing(
    wall_s: float, history_s: float, day_s: dict[str, float], work: dict[str, float], days: int
) -> dict:
    """``data/demo_timing.json``: where the loop's wall time went, per scheduled day too
    (task work: every task instance's duration, sensors excluded; the rest is Airflow's
    scheduling, the sensors' waits and the driver's)."""
    scheduled = len(day_s) or 1
    per_day_wall, per_day_work = sum(day_s.values()) / scheduled, sum(work.values()) / scheduled
    return {
        "wall_s": round(wall_s, 1),
        "history_s": round(history_s, 1),
        "days": days,
        "scheduled_days": len(day_s),
        "task_work_s": work,
        "per_day": {
            "wall_s": round(per_day_wall, 2),
            "task_work_s": round(per_day_work, 2),
            "overhead_s": round(per_day_wall - per_day_work, 2),
        },
        "day_wall_s": day_s,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def timing_summary(timing: dict) -> str:
    per_day = timing["per_day"]
    return (
        f"wall {timing['wall_s']:.0f} s ({timing['history_s']:.0f} s of history, then "
        f"{timing['scheduled_days']} scheduled days); per scheduled day: wall "
        f"{per_day['wall_s']:.1f} s, task work {per_day['task_work_s']:.1f} s, the rest "
        f"{per_day['overhead_s']:.1f} s; task work by DAG (s, sensors excluded): "
        f"{timing['task_work_s']}; load average {timing['load_average_1_5_15']}"
    )


if __name__ == "__main__":
    sys.exit(main())
