"""Historical retraining the way an operator does it: ``airflow backfill create`` on the CLI,
executed by a real scheduler (LocalExecutor) on a PostgreSQL metadata database.

Each backfilled date must give its own model, trained only on data known at that date.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.support.published import published
from tests.support.training_data import build_data_root, environment, monday

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
DATES = [monday(0), monday(1), monday(2)]


@pytest.fixture
def metadata_db(fresh_database):
    """A fresh PostgreSQL database for this Airflow, dropped afterwards."""
    return fresh_database[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(url: str, seconds: float = 180) -> None:
    """Tasks report to the api-server: a scheduler started before it loses its first tasks."""
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {seconds} s")


def airflow(env, *args, timeout=300):
    done = subprocess.run(
        [AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def backfill_runs(db_url: str) -> dict[str, str]:
    """The backfill's runs by day: a run's partition key (transactions_daily, partitioned by
    the day) or its logical date (model_training)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(db_url)
    query = "SELECT logical_date, partition_key, state FROM dag_run WHERE run_type = 'backfill'"
    with engine.connect() as conn:
        rows = conn.execute(sqlalchemy.text(query)).all()
    engine.dispose()
    return {key or logical.date().isoformat(): state for logical, key, state in rows}


def airflow_environment(metadata_db: str, airflow_home: Path, port: int) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__DATABASE__")},
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        # Airflow 3 workers report to the api-server's execution API, not to the database.
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
    }


def run_backfill(env, log_path: Path, dag_id: str, dates: list[date], to_date: date, parallel: int):
    """``airflow backfill create --from-date <first date> --to-date <to_date>`` (inclusive),
    executed by an api-server, a scheduler and a triggerer (for deferred sensors) until the
    runs of ``dates`` have all ended."""
    airflow(env, "db", "migrate")
    airflow(env, "dags", "reserialize")
    airflow(
        env, "backfill", "create", "--dag-id", dag_id,
        "--from-date", dates[0].isoformat(), "--to-date", to_date.isoformat(),
        "--max-active-runs", str(parallel),
    )  # fmt: skip
    airflow(env, "dags", "unpause", dag_id)
    expected = len(dates)
    db_url = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    log = log_path.open("w")
    services = [subprocess.Popen([AIRFLOW, "api-server"], env=env, stdout=log, stderr=log)]
    try:
        wait_for_health(f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}/api/v2/monitor/health")
        for service in ("scheduler", "triggerer"):
            services.append(subprocess.Popen([AIRFLOW, service], env=env, stdout=log, stderr=log))
        deadline = time.monotonic() + 20 * 60
        while time.monotonic() < deadline:
            runs = backfill_runs(db_url)
            if len(runs) == expected and all(s in ("success", "failed") for s in runs.values()):
                break
            time.sleep(5)
    finally:
        for service in services:
            service.terminate()
        for service in services:
            service.wait(timeout=60)
    return backfill_runs(db_url)


def test_backfill_gives_one_model_per_date_that_never_saw_the_future(metadata_db, tmp_path):
    import mlflow
    import pandas as pd

    root = build_data_root(tmp_path / "data")
    env = airflow_environment(metadata_db, tmp_path / "airflow", free_port()) | environment(root)
    # nobody reviews a candidate the gate doubts: its review times out and the backfill goes on
    env["MLOPS_REVIEW_TIMEOUT_H"] = "0.01"
    # The runs are at Monday 03:00: the range ends the day after the last.
    last = DATES[-1] + timedelta(days=1)
    runs = run_backfill(env, tmp_path / "airflow.log", "model_training", DATES, last, 1)
    assert runs == {d.isoformat(): "success" for d in DATES}, tmp_path / "airflow.log"

    client = mlflow.MlflowClient(environment(root)["MLOPS_MLFLOW_TRACKING_URI"])
    versions = client.search_model_versions("name = 'fraud_model'")
    keys = sorted(v.tags["mlops.run_key"] for v in versions)
    assert keys == [f"model_training/{d.isoformat()}" for d in DATES]
    for as_of in DATES:
        run = client.search_runs(
            client.get_experiment_by_name("fraud_model").experiment_id,
            f"tags.`mlops.run_key` = 'model_training/{as_of.isoformat()}'",
        )[0]
        known_until = as_of - timedelta(days=7)
        assert date.fromisoformat(run.data.params["eval_end"]) <= known_until
        sets = published(root / "training_sets" / f"date={as_of.isoformat()}")
        for table in ("training.parquet", "evaluation.parquet"):
            latest = pd.read_parquet(sets / table)["TX_DATETIME"].max()
            assert latest.date() < known_until, (as_of, table, latest)


def run_spans(db_url: str) -> list[tuple]:
    import sqlalchemy

    engine = sqlalchemy.create_engine(db_url)
    query = "SELECT start_date, end_date FROM dag_run WHERE run_type = 'backfill'"
    with engine.connect() as conn:
        spans = [tuple(row) for row in conn.execute(sqlalchemy.text(query))]
    engine.dispose()
    return spans


def test_a_parallel_backfill_of_transactions_daily_equals_the_sequential_features(
    metadata_db, tmp_path
):
    """Days run side by side (max-active-runs 4, the DAG's own limit is 1): each day's
    features wait, deferred, for the days before it, and come out as a one-pass backfill."""
    import pandas as pd

    from mlops.features.offline import build_feature_partitions
    from mlops.simulator import SimulationConfig, simulate, write_landing

    config = SimulationConfig(n_customers=300, n_terminals=600, n_days=5, seed=3)
    root = tmp_path / "data"
    write_landing(simulate(config), str(root / "landing"), config, days=range(5))
    days = [config.day(i) for i in range(5)]
    first, last = days[0], days[-1]
    env = airflow_environment(metadata_db, tmp_path / "airflow", free_port()) | {
        "MLOPS_DATA_ROOT": str(root),
        "MLOPS_HISTORY_START": first.isoformat(),
        # no scheduled runs besides the backfill's: start after the end, and the end before
        # the first day, since Airflow 3.3.2 schedules a partitioned DAG on from its latest
        # backfill run (whose run_after is its day) up to the end date
        "MLOPS_START_DATE": (last + timedelta(days=1)).isoformat(),
        "MLOPS_END_DATE": (first - timedelta(days=1)).isoformat(),
        "MLOPS_SENSOR_POKE_S": "2",
    }
    runs = run_backfill(env, tmp_path / "airflow.log", "transactions_daily", days, last, 4)
    assert runs == {d.isoformat(): "success" for d in days}, tmp_path / "airflow.log"
    spans = sorted(run_spans(metadata_db))
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)), spans

    expected = tmp_path / "sequential"
    build_feature_partitions(
        first, last, str(root / "validated"), str(expected), history_start=first
    )
    for i in range(5):
        day = (first + timedelta(days=i)).isoformat()
        produced = pd.read_parquet(
            published(root / "features" / "daily" / f"date={day}") / "data.parquet"
        )
        reference = pd.read_parquet(published(expected / f"date={day}") / "data.parquet")
        pd.testing.assert_frame_equal(produced, reference, check_exact=True)
