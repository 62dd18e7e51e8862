"""transactions_daily run by ``dag.test()``: the scheduler's code path, in one process, on
the runs Airflow makes for a day's partition (scheduled, rerun, over REST, by a backfill)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pendulum
import pytest

from tests.support.landing_files import snapshot
from tests.support.partition_runs import api, emitted, existing_run, partitioned_run
from tests.support.published import published
from tests.support.threads import helper_thread

DAGS = Path(__file__).resolve().parents[2] / "dags"
SMALL = {"n_customers": 300, "n_terminals": 600, "n_days": 6, "seed": 7}


@pytest.fixture(scope="module")
def simulated():
    from mlops.simulator import SimulationConfig, simulate

    config = SimulationConfig(**SMALL)
    return config, simulate(config)


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("MLOPS_SENSOR_POKE_S", "1")
    monkeypatch.setenv("MLOPS_HISTORY_START", "")  # set by land(); restored after the test
    return tmp_path / "data"


def load_dag():
    """Parse the DAG file now, so that it sees the test's environment."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors
    return bag.dags["transactions_daily"]


def run_day(day: str, **kwargs):
    """The scheduled run of partition D (D's tasks cleared and run again the next time)."""
    with partitioned_run(day):
        return load_dag().test(logical_date=None, **kwargs)


def states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def land(simulated, root, day_index: int, **kwargs) -> str:
    from mlops.simulator import write_landing

    config, frame = simulated
    write_landing(frame, str(root / "landing"), config, days=[day_index], **kwargs)
    # Each test's data set starts on the day it lands: the feature windows of that day may
    # then reach back into nothing, instead of failing on the days no test landed.
    os.environ["MLOPS_HISTORY_START"] = config.day(day_index).isoformat()
    return config.day(day_index).isoformat()


def test_nothing_reads_a_partition_before_its_sensor_has_seen_it_complete():
    dag = load_dag()
    upstream = {task.task_id: task.upstream_task_ids for task in dag.tasks}
    assert upstream == {
        "wait_for_landing_partition": set(),
        "wait_for_earlier_days": set(),
        "validate_partition": {"wait_for_landing_partition"},  # ingests, then validates
        "materialize_features": {"validate_partition", "wait_for_earlier_days"},  # builds first
        "score_transactions": {"materialize_features"},
    }


def test_one_simulated_day_goes_from_landing_to_validated(airflow_db, simulated, data_root):
    day = land(simulated, data_root, 0)
    run = run_day(day)
    assert str(run.state) == "success", states(run)
    assert (run.partition_key, run.logical_date, str(run.run_type)) == (day, None, "scheduled")

    landed = pd.read_parquet(data_root / "landing" / f"date={day}" / "transactions.parquet")
    validated = pd.read_parquet(
        published(data_root / "validated" / f"date={day}") / "transactions.parquet"
    )
    assert len(validated) == len(landed) > 0
    assert validated["TRANSACTION_ID"].tolist() == landed["TRANSACTION_ID"].tolist()
    report = json.loads((data_root / "reports" / "validation" / f"date={day}.json").read_text())
    assert report["good"] == len(landed) and report["bad"] == 0
    assert (data_root / "docs" / "validation" / "index.html").exists()
    assert (published(data_root / "raw" / f"date={day}") / "_manifest.json").exists()

    features = pd.read_parquet(
        published(data_root / "features" / "daily" / f"date={day}") / "data.parquet"
    )
    assert features["TRANSACTION_ID"].tolist() == landed["TRANSACTION_ID"].tolist()
    snapshots = data_root / "features" / "snapshots"
    customers = pd.read_parquet(published(snapshots / "customer" / f"date={day}") / "data.parquet")
    assert (snapshots / "terminal" / f"date={day}" / "_SUCCESS").exists()
    from mlops.features.online import online_features
    from mlops.settings import load_settings

    card = int(customers["CUSTOMER_ID"].iloc[0])
    tx = {"TX_DATETIME": pendulum.parse(day).add(days=1, hours=9), "TX_AMOUNT": 25.0}
    served = online_features(load_settings(), card, 10**9, tx)
    assert served.status == {"customer": "current", "terminal": "missing"}
    assert served.features["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] == 1 + int(
        customers["CUSTOMER_ID_PREV_NB_TX_1DAY"].iloc[0]
    )
    scored = run.get_task_instance("score_transactions").xcom_pull(task_ids="score_transactions")
    assert scored["status"] == "skipped" and "no champion" in scored["reason"]
    # each asset of the chain: an event for the day's partition, the day as its key
    assert emitted("scored_predictions")[-1] == (
        day,
        {"day": day, "status": "skipped", "rows": 0, "champion_version": None},
    )
    assert emitted("validated_transactions")[-1] == (
        day,
        {"day": day, "rows": len(landed), "bad_rows": 0},
    )
    assert emitted("features")[-1][0] == day


def test_the_same_day_rerun_gives_the_same_partitions(airflow_db, simulated, data_root):
    day = land(simulated, data_root, 1)
    assert str(run_day(day).state) == "success"
    zones = ("raw", "validated", "features/daily", "features/snapshots/customer")
    first = {zone: snapshot(data_root / zone / f"date={day}") for zone in zones}
    events = {asset: len(emitted(asset)) for asset in ("validated_transactions", "features")}
    first_run = run_day(day).run_id
    rerun = run_day(day)  # the same run, cleared
    assert str(rerun.state) == "success" and rerun.run_id == first_run
    # and cleared by partition over REST (clearDagRuns with a partition_key selector)
    path = "/api/v2/dags/transactions_daily/clearDagRuns"
    status, cleared = api("POST", path, {"partition_key": day, "dry_run": False})
    assert status == 200, cleared
    assert [r["dag_run_id"] for r in cleared["dag_runs"]] == [first_run]
    with existing_run("transactions_daily", first_run):
        assert str(load_dag().test(logical_date=None).state) == "success"
    for zone, files in first.items():
        assert snapshot(data_root / zone / f"date={day}") == files, zone
    for asset, before in events.items():  # the rerun: one more event, the same partition
        assert [key for key, _ in emitted(asset)[before:]] == [day, day, day], asset


def test_a_rest_trigger_with_a_partition_key_processes_that_day(airflow_db, simulated, data_root):
    """``POST /api/v2/dags/transactions_daily/dagRuns`` with a ``partition_key`` (no logical
    date, no ``day`` Param): the run processes the key's day and keys its events with it; a
    key that is not a day is refused."""
    day = land(simulated, data_root, 5)
    before = len(emitted("scored_predictions"))
    body = {"logical_date": None, "partition_key": day, "conf": {}}
    status, created = api("POST", "/api/v2/dags/transactions_daily/dagRuns", body)
    assert status == 200, created
    assert (created["partition_key"], created["logical_date"]) == (day, None)
    with existing_run("transactions_daily", created["dag_run_id"]):
        run = load_dag().test(logical_date=None)
    assert str(run.state) == "success", states(run)
    assert (data_root / "predictions" / "batch" / f"date={day}" / "_SUCCESS").exists()
    assert [key for key, _ in emitted("scored_predictions")[before:]] == [day]
    bad = {"logical_date": None, "partition_key": "yesterday", "conf": {}}
    status, refused = api("POST", "/api/v2/dags/transactions_daily/dagRuns", bad)
    assert status == 400 and "yesterday" in str(refused), refused


def test_a_backfill_by_partition_range_runs_each_day_of_the_range(airflow_db, simulated, data_root):
    """``POST /api/v2/backfills`` (what ``airflow backfill create`` does) over two days: one
    run a day, keyed by the day, no logical date; each run processes its day."""
    days = [land(simulated, data_root, index) for index in (1, 2)]
    os.environ["MLOPS_HISTORY_START"] = days[0]
    body = {
        "dag_id": "transactions_daily",
        "from_date": f"{days[0]}T00:00:00Z",
        "to_date": f"{days[1]}T00:00:00Z",
        "max_active_runs": 2,
        "reprocess_behavior": "completed",
    }
    status, backfill = api("POST", "/api/v2/backfills", body)
    assert status == 200, backfill
    status, listed = api("GET", "/api/v2/dags/transactions_daily/dagRuns")
    runs = [r for r in listed["dag_runs"] if r["run_type"] == "backfill"]
    runs = sorted(runs, key=lambda r: r["partition_key"])[-2:]
    assert [(r["partition_key"], r["logical_date"]) for r in runs] == [(d, None) for d in days]
    for created in runs:
        with existing_run("transactions_daily", created["dag_run_id"]):
            run = load_dag().test(logical_date=None)
        assert str(run.state) == "success", states(run)
    for day in days:
        assert (data_root / "features" / "daily" / f"date={day}" / "_SUCCESS").exists()


def test_a_missing_earlier_partition_fails_the_wait_naming_it(
    airflow_db, simulated, data_root, monkeypatch
):
    day = land(simulated, data_root, 2)
    missing = simulated[0].day(1).isoformat()
    os.environ["MLOPS_HISTORY_START"] = missing  # day 1 never landed
    monkeypatch.setenv(
        "MLOPS_SENSOR_TIMEOUT_S", "0"
    )  # dag.test runs triggers without their timeout
    run = run_day(day)
    assert str(run.state) == "failed"
    (wait,) = [ti for ti in run.get_task_instances() if ti.task_id == "wait_for_earlier_days"]
    assert str(wait.state) == "failed"
    assert states(run)["materialize_features"] == "upstream_failed"
    assert (data_root / "validated" / f"date={day}" / "_SUCCESS").exists()
    assert not (data_root / "features" / "daily" / f"date={day}").exists()


def test_features_wait_for_an_earlier_day_validated_later(airflow_db, simulated, data_root):
    """A backfill runs days side by side: day 2's features start once day 1 is validated."""
    first = land(simulated, data_root, 1)
    assert str(run_day(first).state) == "success"
    day = land(simulated, data_root, 2)
    os.environ["MLOPS_HISTORY_START"] = first
    earlier = data_root / "validated" / f"date={first}"
    hidden = data_root / "hidden"
    earlier.rename(hidden)
    started = time.monotonic()
    with helper_thread(lambda: hidden.rename(earlier), delay_s=3.0):
        run = run_day(day)
    assert str(run.state) == "success", states(run)
    assert time.monotonic() - started >= 3.0
    features = pd.read_parquet(
        published(data_root / "features" / "daily" / f"date={day}") / "data.parquet"
    )
    assert features["CUSTOMER_ID_NB_TX_7DAY_WINDOW"].max() > 1  # day 1 was in the windows


def test_the_sensor_defers_until_the_producer_marks_the_day_complete(
    airflow_db, simulated, data_root
):
    day = land(simulated, data_root, 2)
    marker = data_root / "landing" / f"date={day}" / "_SUCCESS"
    marker.unlink()
    started = time.monotonic()
    with helper_thread(marker.touch, delay_s=3.0):
        run = run_day(day)
    assert str(run.state) == "success", states(run)
    assert time.monotonic() - started >= 3.0
    assert (data_root / "validated" / f"date={day}" / "_SUCCESS").exists()


def test_a_broken_schema_quarantines_the_day_and_a_fixed_file_reruns(
    airflow_db, simulated, data_root
):
    day = land(simulated, data_root, 3)
    path = data_root / "landing" / f"date={day}" / "transactions.parquet"
    good_bytes = path.read_bytes()
    pd.read_parquet(path).drop(columns=["TX_FRAUD"]).to_parquet(path, index=False)
    landing_before = snapshot(data_root / "landing")

    run = run_day(day)
    assert str(run.state) == "failed"
    assert states(run)["validate_partition"] == "failed"
    assert snapshot(data_root / "landing") == landing_before
    assert not (data_root / "validated" / f"date={day}").exists()
    quarantined = pd.read_parquet(
        published(data_root / "quarantine" / f"date={day}") / "quarantine.parquet"
    )
    assert len(quarantined) == len(pd.read_parquet(path))
    assert quarantined["_failed_rules"].str.contains("columns_match_schema").all()

    path.write_bytes(good_bytes)
    assert str(run_day(day).state) == "success"
    assert (data_root / "validated" / f"date={day}" / "_SUCCESS").exists()


def test_a_run_without_logical_date_processes_the_day_param(airflow_db, simulated, data_root):
    day = land(simulated, data_root, 4)
    run = load_dag().test(logical_date=None, run_conf={"day": day})
    assert str(run.state) == "success", states(run)
    assert (data_root / "validated" / f"date={day}" / "_SUCCESS").exists()


@pytest.mark.integration
def test_s3_data_root_through_the_airflow_aws_connection(
    airflow_db, simulated, s3_server, bucket, redis_db, aws_connection, monkeypatch, tmp_path
):
    """The production shape: data, features and the Feast registry on S3, Redis online."""
    from mlops.io import storage

    root = f"s3://{bucket}/data"
    monkeypatch.setenv("MLOPS_DATA_ROOT", root)
    # a SQLite registry cannot live on S3: the default under the data root would be a
    # relative folder named "s3:" (score_transactions reads the registry)
    monkeypatch.setenv("MLOPS_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("MLOPS_S3_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("MLOPS_ONLINE_STORE", "redis")
    monkeypatch.setenv("MLOPS_REDIS_URL", redis_db)
    monkeypatch.setenv("MLOPS_SENSOR_POKE_S", "1")
    monkeypatch.setenv("MLOPS_HISTORY_START", "2018-04-06")  # day 5, the one landed below
    options = aws_connection

    from mlops.simulator import write_landing

    config, frame = simulated
    write_landing(frame, f"{root}/landing", config, days=[5], storage_options=options)
    day = config.day(5).isoformat()
    dag = load_dag()
    assert dag.get_task("wait_for_landing_partition").landing_uri == f"{root}/landing"

    with partitioned_run(day):
        run = dag.test(logical_date=None)
    assert str(run.state) == "success", states(run)
    assert storage.exists(f"{root}/features/daily/date={day}/_SUCCESS", options)
    validated_part = published(f"{root}/validated/date={day}", options)
    validated = storage.read_parquet(f"{validated_part}/transactions.parquet", options)
    assert len(validated) == int((frame["TX_DATETIME"].dt.date.astype(str) == day).sum())
    assert storage.exists(f"{root}/docs/validation/index.html", options)
    assert storage.exists(f"{root}/feast/registry.db", options)

    from mlops.features.online import online_features
    from mlops.settings import load_settings

    snapshot_part = published(f"{root}/features/snapshots/customer/date={day}", options)
    customers = storage.read_parquet(f"{snapshot_part}/data.parquet", options)
    card = int(customers["CUSTOMER_ID"].iloc[0])
    tx = {"TX_DATETIME": pendulum.parse(day).add(days=1, hours=9), "TX_AMOUNT": 25.0}
    # No terminal has a matured day yet: the history starts on this day.
    served = online_features(load_settings(), card, 10**9, tx)
    assert served.status == {"customer": "current", "terminal": "missing"}
    assert served.features["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] == 1 + int(
        customers["CUSTOMER_ID_PREV_NB_TX_1DAY"].iloc[0]
    )
