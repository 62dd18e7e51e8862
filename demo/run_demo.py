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
    with AirflowStack(home, env=env) as stack:
        print(stack.describe(), flush=True)
        stack.wait_for_dags(list(DAG_IDS))
        run_loop(stack, config, transactions, first_index=args.history_days)
        loop_s = time.monotonic() - began
        work = time_split(stack)
    timing = {"wall_s": round(loop_s, 1), "task_work_s": work, "days": config.days}
    (data_root / "demo_timing.json").write_text(json.dumps(timing, indent=2))
    print(f"wall {loop_s:.0f} s; task work by DAG (s, sensors excluded): {work}", flush=True)
    return finish(config, data_root, home, transactions, loop_s)


if __name__ == "__main__":
    sys.exit(main())
