"""``make demo``: simulate card transactions and run the pipeline DAGs through Airflow.

Everything runs on the embedded defaults (SQLite, local folders): the data set is
simulated, the first days are landed one by one, and ``transactions_daily`` runs for each
day with ``dag.test()`` (the scheduler's code path, in one process). Two bad inputs are
injected on purpose: a second file with broken rows (quarantined row by row, the run
succeeds) and a file that lost a column (the whole day is quarantined and the run fails),
which is then fixed and re-run.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAYS = 5


def configure_environment() -> Path:
    """Airflow reads its configuration at import, so this runs before any airflow import."""
    defaults = {
        "AIRFLOW_HOME": str(ROOT / ".airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "MLOPS_DATA_ROOT": str(ROOT / "data"),
        "GX_ANALYTICS_ENABLED": "false",
        # Task logs go to $AIRFLOW_HOME/logs as usual; the console keeps warnings and errors.
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    return Path(os.environ["MLOPS_DATA_ROOT"])


def land_days(data_root: Path) -> list[str]:
    from mlops.simulator import SimulationConfig, simulate, write_landing

    config = SimulationConfig()
    transactions = simulate(config)
    print(f"simulated {len(transactions):,} transactions over {config.n_days} days")
    write_landing(transactions, str(data_root / "landing"), config, days=range(DAYS))
    return [config.day(d).isoformat() for d in range(DAYS)]


def inject_broken_rows(landing: Path, day: str) -> None:
    """A late second file for the day: negative amounts, a duplicate id, a row from
    another day and two garbage lines."""
    import pandas as pd

    first = pd.read_parquet(landing / f"date={day}" / "transactions.parquet")
    late = first.tail(6).copy()
    late["TRANSACTION_ID"] += 10_000_000
    late.iloc[0:2, late.columns.get_loc("TX_AMOUNT")] = -12.5
    late.iloc[2, late.columns.get_loc("TRANSACTION_ID")] = first["TRANSACTION_ID"].iloc[0]
    late.iloc[3, late.columns.get_loc("TX_DATETIME")] += pd.Timedelta(days=1)
    text = late.to_csv(index=False) + "###,truncated\nnot,a,transaction\n"
    (landing / f"date={day}" / "late_batch.csv").write_text(text)


def drop_a_column(landing: Path, day: str) -> bytes:
    import pandas as pd

    path = landing / f"date={day}" / "transactions.parquet"
    original = path.read_bytes()
    pd.read_parquet(path).drop(columns=["TX_FRAUD"]).to_parquet(path, index=False)
    return original


def run_day(dag, day: str) -> str:
    import pendulum

    # A manual run at D+1 gets the data interval [D, D+1): the same day a scheduled run of D has.
    run = dag.test(logical_date=pendulum.parse(day, tz="UTC").add(days=1))
    print(f"transactions_daily {day}: {run.state}")
    return str(run.state)


def print_outcome(data_root: Path, days: list[str]) -> None:
    print("\nvalidated partitions:")
    for day in days:
        report_path = data_root / "reports" / "validation" / f"date={day}.json"
        report = json.loads(report_path.read_text())
        print(
            f"  {day}: {report['good']:>6,} good, {report['bad']:>3} quarantined "
            f"{report['rule_counts'] or ''}"
        )
    print(f"\nquarantine:  {data_root / 'quarantine'}")
    print(f"Data Docs:   {data_root / 'docs' / 'validation' / 'index.html'}")


def main() -> int:
    data_root = configure_environment()
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.db import initdb

    initdb()
    days = land_days(data_root)
    landing = data_root / "landing"
    inject_broken_rows(landing, days[3])
    original = drop_a_column(landing, days[4])
    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["transactions_daily"]
    states = {day: run_day(dag, day) for day in days}
    if states[days[4]] != "failed":
        print(f"expected {days[4]} to fail on its broken schema", file=sys.stderr)
        return 1
    report = json.loads((data_root / "reports" / "validation" / f"date={days[4]}.json").read_text())
    print(f"{days[4]} failed as it should: {report['batch_failures']}; fixing the file, re-running")
    (landing / f"date={days[4]}" / "transactions.parquet").write_bytes(original)
    states[days[4]] = run_day(dag, days[4])
    print_outcome(data_root, days)
    return 0 if all(state == "success" for state in states.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
