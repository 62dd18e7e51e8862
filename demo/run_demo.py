"""``make demo``: simulate card transactions and run the pipeline DAGs through Airflow.

Everything runs on the embedded defaults (SQLite, local folders, no services). The data set
is simulated and five weeks are landed day by day; ``transactions_daily`` runs for each day
with ``dag.test()`` (the scheduler's code path, in one process): ingestion, validation,
features and the online store. Two bad inputs are injected on purpose: a second file with
broken rows (quarantined row by row, the run succeeds) and a file that lost a column (the
whole day is quarantined and the run fails), which is then fixed and re-run. Then one card's
features are read from the online store, and ``model_training`` trains, gates and registers
a first model as of the Monday after the last landed day (on unsettled features, allowed
explicitly: the decision needs review and the model card says why).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path

from mlops import zones

ROOT = Path(__file__).resolve().parents[1]
DAYS = 36  # 2018-04-01 .. 2018-05-06: enough matured days for a 21-day training window
TRAINING_DATE = date(2018, 5, 7)  # a Monday, as the weekly schedule would run


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
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    return Path(os.environ["MLOPS_DATA_ROOT"])


def land_days(data_root: Path):
    from mlops.simulator import SimulationConfig, simulate, write_landing

    config = SimulationConfig()
    transactions = simulate(config)
    print(f"simulated {len(transactions):,} transactions over {config.n_days} days")
    write_landing(transactions, str(data_root / zones.LANDING), config, days=range(DAYS + 1))
    return transactions, [config.day(d).isoformat() for d in range(DAYS)]


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
    print(f"transactions_daily {day}: {run.state}", flush=True)
    return str(run.state)


def print_validation(data_root: Path, days: list[str]) -> None:
    print("\nvalidation (first days):")
    for day in days[:5]:
        report_path = data_root / zones.VALIDATION_REPORTS / f"date={day}.json"
        report = json.loads(report_path.read_text())
        print(
            f"  {day}: {report['good']:>6,} good, {report['bad']:>3} quarantined "
            f"{report['rule_counts'] or ''}"
        )
    print(f"quarantine:  {data_root / zones.QUARANTINE}")
    print(f"Data Docs:   {data_root / zones.VALIDATION_DOCS / 'index.html'}")


def print_online_lookup(transactions) -> None:
    from mlops.features.online import online_features
    from mlops.settings import load_settings

    tx = transactions.loc[transactions["TX_DATETIME"].dt.date == TRAINING_DATE]
    tx = tx.iloc[0]
    served = online_features(
        load_settings(), int(tx["CUSTOMER_ID"]), int(tx["TERMINAL_ID"]), tx.to_dict()
    )
    print(f"\nonline features for card {tx['CUSTOMER_ID']} at {tx['TX_DATETIME']}:")
    for name, value in served.features.items():
        print(f"  {name:<38} {value}")
    print(f"  snapshots: {served.status}")


def train_first_model(training_dag) -> int:
    import pendulum

    day = TRAINING_DATE
    # Five weeks of data: every training row's 37-day feature windows reach before the first
    # day, which model_training refuses unless asked; the decision then needs review.
    conf = {"allow_unsettled_features": True, "reason": "demo: features not settled yet"}
    run = training_dag.test(
        logical_date=pendulum.datetime(day.year, day.month, day.day, 3), run_conf=conf
    )
    print(f"\nmodel_training as of {day}: {run.state}")
    outcome = next(t for t in run.get_task_instances() if t.task_id == "train_and_gate")
    result = outcome.xcom_pull(task_ids="train_and_gate")
    if not result:
        return 1
    print(
        json.dumps(
            {k: result[k] for k in ("outcome", "reasons", "run_id", "model_version", "aliases")},
            indent=2,
        )
    )
    candidate = result["metrics"]["candidate"]
    print(
        f"candidate on {result['metrics']['rows']:,} held-out rows: "
        f"AUC {candidate['roc_auc']:.3f}, AP {candidate['average_precision']:.3f}, "
        f"CP@100 {candidate['card_precision_at_k']:.3f}"
    )
    print_decision_record(result["run_id"])
    return 0 if str(run.state) == "success" else 1


def print_decision_record(run_id: str) -> None:
    import mlflow

    from mlops.registry.versions import DECISION_RECORD, MODEL_CARD
    from mlops.settings import load_settings

    client = mlflow.MlflowClient(load_settings().mlflow_tracking_uri)
    record = json.loads(Path(client.download_artifacts(run_id, DECISION_RECORD)).read_text())
    card = Path(client.download_artifacts(run_id, MODEL_CARD)).read_text()
    print(f"\ndecision record (runs:/{run_id}/{DECISION_RECORD}):")
    print(json.dumps({k: v for k, v in record.items() if k != "evidence"}, indent=2))
    print(f"\nmodel card (runs:/{run_id}/{MODEL_CARD}):\n{card}")


def main() -> int:
    data_root = configure_environment()
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.db import initdb

    initdb()
    transactions, days = land_days(data_root)
    landing = data_root / zones.LANDING
    inject_broken_rows(landing, days[3])
    original = drop_a_column(landing, days[4])
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    daily = bag.dags["transactions_daily"]
    states = {}
    for day in days:
        states[day] = run_day(daily, day)
        if day == days[4]:
            report = data_root / zones.VALIDATION_REPORTS / f"date={day}.json"
            reasons = json.loads(report.read_text())["batch_failures"]
            print(f"{day} failed as it should: {reasons}; fixing the file, re-running")
            (landing / f"date={day}" / "transactions.parquet").write_bytes(original)
            states[day] = run_day(daily, day)
    print_validation(data_root, days)
    print_online_lookup(transactions)
    failed = [day for day, state in states.items() if state != "success"]
    if failed:
        print(f"transactions_daily failed for {failed}", file=sys.stderr)
        return 1
    return train_first_model(bag.dags["model_training"])


if __name__ == "__main__":
    sys.exit(main())
