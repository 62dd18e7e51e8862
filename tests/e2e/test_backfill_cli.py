"""Historical retraining the way an operator does it: ``airflow backfill create`` on the CLI,
executed by a real scheduler (LocalExecutor) on a PostgreSQL metadata database.

Each backfilled date must give its own model, trained only on data known at that date.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.dags.training_data import build_data_root, environment, monday

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
DATES = [monday(0), monday(1), monday(2)]


@pytest.fixture
def metadata_db(postgres_url):
    """A fresh PostgreSQL database for this Airflow, dropped afterwards."""
    import sqlalchemy

    name = f"airflow_backfill_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


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
    import sqlalchemy

    engine = sqlalchemy.create_engine(db_url)
    query = "SELECT logical_date, state FROM dag_run WHERE run_type = 'backfill'"
    with engine.connect() as conn:
        rows = conn.execute(sqlalchemy.text(query)).all()
    engine.dispose()
    return {row[0].date().isoformat(): row[1] for row in rows}


def test_backfill_gives_one_model_per_date_that_never_saw_the_future(metadata_db, tmp_path):
    import mlflow
    import pandas as pd

    root = build_data_root(tmp_path / "data")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__DATABASE__")},
        **environment(root),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        # Airflow 3 workers report to the api-server's execution API, not to the database.
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
    }
    airflow(env, "db", "migrate")
    airflow(env, "dags", "reserialize")
    airflow(
        env, "backfill", "create", "--dag-id", "model_training",
        "--from-date", DATES[0].isoformat(), "--to-date", (DATES[-1] + timedelta(days=1)).isoformat(),
        "--max-active-runs", "1",
    )  # fmt: skip
    airflow(env, "dags", "unpause", "model_training")
    log = (tmp_path / "airflow.log").open("w")
    services = [subprocess.Popen([AIRFLOW, "api-server"], env=env, stdout=log, stderr=log)]
    try:
        wait_for_health(f"http://127.0.0.1:{port}/api/v2/monitor/health")
        services.append(subprocess.Popen([AIRFLOW, "scheduler"], env=env, stdout=log, stderr=log))
        deadline = time.monotonic() + 20 * 60
        while time.monotonic() < deadline:
            runs = backfill_runs(metadata_db)
            if len(runs) == len(DATES) and all(s in ("success", "failed") for s in runs.values()):
                break
            time.sleep(5)
    finally:
        for service in services:
            service.terminate()
        for service in services:
            service.wait(timeout=60)
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
        sets = root / "training_sets" / f"date={as_of.isoformat()}"
        for table in ("training.parquet", "evaluation.parquet"):
            latest = pd.read_parquet(sets / table)["TX_DATETIME"].max()
            assert latest.date() < known_until, (as_of, table, latest)
