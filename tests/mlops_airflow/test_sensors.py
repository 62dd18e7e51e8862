from __future__ import annotations

from types import SimpleNamespace

import pendulum
import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred

from mlops_airflow.context import partition_day
from mlops_airflow.sensors import (
    LandingPartitionFileSensor,
    LandingPartitionS3Sensor,
    landing_partition_sensor,
)

DAY = pendulum.datetime(2018, 4, 1, tz="UTC")


def context(**overrides):
    base = {"params": {}, "data_interval_start": DAY, "dag_run": SimpleNamespace(run_after=DAY)}
    return {**base, **overrides}


@pytest.fixture
def fs_default(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_FS_DEFAULT", '{"conn_type": "fs", "extra": {"path": ""}}')


def test_partition_day_prefers_the_param_then_the_interval_then_run_after():
    assert partition_day(context(params={"day": "2018-05-02"})) == "2018-05-02"
    assert partition_day(context()) == "2018-04-01"
    no_logical_date = context(data_interval_start=None)
    no_logical_date["dag_run"] = SimpleNamespace(run_after=pendulum.datetime(2018, 4, 3, 6))
    assert partition_day(no_logical_date) == "2018-04-02"


def test_the_factory_picks_the_sensor_by_scheme():
    s3 = landing_partition_sensor(task_id="s3", landing_uri="s3://bucket/landing")
    local = landing_partition_sensor(task_id="local", landing_uri="/srv/landing")
    assert isinstance(s3, LandingPartitionS3Sensor) and s3.deferrable
    assert isinstance(local, LandingPartitionFileSensor) and local.deferrable


def test_file_sensor_defers_until_the_marker_exists(tmp_path, fs_default):
    sensor = LandingPartitionFileSensor(task_id="wait", landing_uri=str(tmp_path), timeout=60)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context())
    assert deferred.value.trigger.filepath == f"{tmp_path}/date=2018-04-01/_SUCCESS"
    assert deferred.value.timeout.total_seconds() == 60

    (tmp_path / "date=2018-04-01").mkdir()
    (tmp_path / "date=2018-04-01" / "_SUCCESS").touch()
    fresh = LandingPartitionFileSensor(task_id="wait", landing_uri=str(tmp_path), timeout=60)
    assert fresh.execute(context()) is None  # found on the first poke: no deferral


def test_s3_sensor_waits_for_the_day_marker_key():
    sensor = LandingPartitionS3Sensor(task_id="wait", landing_uri="s3://bucket/landing/")
    sensor.poke = lambda context: False  # the key is not there yet
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context())
    assert deferred.value.trigger.bucket_key == "s3://bucket/landing/date=2018-04-01/_SUCCESS"


def test_a_timeout_names_the_missing_partition(tmp_path):
    sensor = LandingPartitionFileSensor(task_id="wait", landing_uri=str(tmp_path), timeout=90)
    with pytest.raises(
        AirflowSensorTimeout, match="date=2018-04-01/_SUCCESS did not appear within 90 s"
    ):
        sensor.resume_execution("__fail__", {"error": "Trigger timeout"}, context())
