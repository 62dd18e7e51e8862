from __future__ import annotations

from types import SimpleNamespace

import pendulum
import pytest
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from mlops_airflow.context import partition_day
from mlops_airflow.sensors import (
    EarlierPartitionsSensor,
    LandingPartitionSensor,
    ObservedDaysSensor,
    PredictionLogSensor,
)

DAY = pendulum.datetime(2018, 4, 1, tz="UTC")


def context(**overrides):
    base = {"params": {}, "data_interval_start": DAY, "dag_run": SimpleNamespace(run_after=DAY)}
    return {**base, **overrides}


def test_partition_day_prefers_the_param_then_the_key_then_the_interval_then_run_after():
    assert partition_day(context(params={"day": "2018-05-02"})) == "2018-05-02"
    keyed = context(partition_key="2018-05-03", data_interval_start=None)
    assert partition_day(keyed) == "2018-05-03"
    assert partition_day({**keyed, "params": {"day": "2018-05-02"}}) == "2018-05-02"
    assert partition_day(context()) == "2018-04-01"
    no_logical_date = context(data_interval_start=None)
    no_logical_date["dag_run"] = SimpleNamespace(run_after=pendulum.datetime(2018, 4, 3, 6))
    assert partition_day(no_logical_date) == "2018-04-02"
    # a keyless manual run of a partitioned DAG: an empty interval at run_after
    empty = {**no_logical_date, "data_interval_start": DAY.add(days=2)}
    empty["data_interval_end"] = empty["data_interval_start"]
    assert partition_day(empty) == "2018-04-02"


def test_a_partition_key_that_is_not_a_day_fails_the_task_naming_it():
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="'us-east' is not a day"):
        partition_day(context(partition_key="us-east"))


def test_local_landing_defers_to_a_trigger_that_ends_the_task_when_the_marker_exists(tmp_path):
    sensor = LandingPartitionSensor(task_id="wait", landing_uri=str(tmp_path), timeout=60)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context())
    assert type(deferred.value.trigger).__name__ == "LocalMarkersTrigger"
    assert deferred.value.trigger.paths == [f"{tmp_path}/date=2018-04-01/_SUCCESS"]
    assert 59 < deferred.value.timeout.total_seconds() <= 60

    (tmp_path / "date=2018-04-01").mkdir()
    (tmp_path / "date=2018-04-01" / "_SUCCESS").touch()
    assert sensor.execute(context()) is None  # found on the first poke: no deferral


def test_a_local_wait_starts_in_the_triggerer_an_s3_or_templated_one_on_a_worker(tmp_path):
    def sensor(zone: str, **kwargs) -> LandingPartitionSensor:
        return LandingPartitionSensor(
            task_id="wait", landing_uri=zone, timeout=60, poke_interval=0.25, **kwargs
        )

    local = sensor(str(tmp_path))
    assert local.start_from_trigger
    args = local.start_trigger_args
    assert args.trigger_cls == "mlops_airflow.triggers.RunMarkersTrigger"
    assert args.trigger_kwargs == {"kind": "day", "zone_uri": str(tmp_path), "poke_interval": 0.25}
    assert (args.next_method, args.timeout.total_seconds()) == ("execute_complete", 60)
    for worker_path in (
        sensor("s3://b/landing"),
        sensor("{{ var.value.landing }}"),
        sensor(str(tmp_path), deferrable=False),
        ObservedDaysSensor(task_id="observe", plan_task_id="plan"),
    ):
        assert not worker_path.start_from_trigger


@pytest.mark.integration
def test_s3_landing_defers_to_the_amazon_s3_key_trigger(s3_server, bucket, aws_connection):
    import boto3

    sensor = LandingPartitionSensor(task_id="wait", landing_uri=f"s3://{bucket}/landing/")
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context())
    trigger = deferred.value.trigger
    assert type(trigger).__name__ == "S3KeyTrigger"
    assert (trigger.bucket_name, trigger.bucket_key) == (
        bucket,
        ["landing/date=2018-04-01/_SUCCESS"],
    )

    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    s3.put_object(Bucket=bucket, Key="landing/date=2018-04-01/_SUCCESS", Body=b"")
    assert sensor.execute(context()) is None


def test_a_trigger_error_fails_with_its_message():
    sensor = LandingPartitionSensor(task_id="wait", landing_uri="s3://b/landing")
    with pytest.raises(AirflowException, match="waiting for the landing partition failed: denied"):
        sensor.execute_complete(context(), event={"status": "error", "message": "denied"})


def test_a_timeout_names_the_missing_partition(tmp_path):
    sensor = LandingPartitionSensor(task_id="wait", landing_uri=str(tmp_path), timeout=90)
    with pytest.raises(
        AirflowSensorTimeout, match="date=2018-04-01/_SUCCESS did not appear within 90 s"
    ):
        sensor.resume_execution("__fail__", {"error": "Trigger timeout"}, context())


def publish(zone, *days):
    for day in days:
        (zone / f"date={day}").mkdir(parents=True)
        (zone / f"date={day}" / "_SUCCESS").touch()


@pytest.fixture
def validated(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_HISTORY_START", "2018-04-28")
    monkeypatch.setenv("MLOPS_LABEL_DELAY_DAYS", "7")
    return tmp_path / "validated"


def test_features_wait_for_each_earlier_day_within_one_deadline(validated):
    sensor = EarlierPartitionsSensor(task_id="wait", validated_uri=str(validated), timeout=60)
    day = context(data_interval_start=pendulum.datetime(2018, 5, 1, tz="UTC"))
    assert sensor.markers(day) == [
        f"{validated}/date=2018-04-{d}/_SUCCESS" for d in ("28", "29", "30")
    ]
    publish(validated, "2018-04-28")
    with pytest.raises(TaskDeferred) as first:
        sensor.execute(day)
    assert first.value.trigger.paths == [
        f"{validated}/date=2018-04-{d}/_SUCCESS" for d in ("29", "30")
    ]
    deadline = first.value.kwargs["deadline"]

    # resumed (where a trigger runs in line, dag.test) before all are there: deferred again
    publish(validated, "2018-04-29")
    with pytest.raises(TaskDeferred) as second:
        sensor.execute_complete(day, event=None, deadline=deadline)
    assert second.value.trigger.paths == [f"{validated}/date=2018-04-30/_SUCCESS"]
    assert second.value.kwargs["deadline"] == deadline
    assert second.value.timeout <= first.value.timeout

    publish(validated, "2018-04-30")
    assert sensor.execute_complete(day, event=None, deadline=deadline) is None


def test_the_first_day_of_the_history_waits_for_nothing(validated):
    sensor = EarlierPartitionsSensor(task_id="wait", validated_uri=str(validated))
    first_day = context(data_interval_start=pendulum.datetime(2018, 4, 28, tz="UTC"))
    assert sensor.markers(first_day) == []
    assert sensor.execute(first_day) is None


def test_a_passed_deadline_fails_naming_the_missing_days(validated):
    sensor = EarlierPartitionsSensor(task_id="wait", validated_uri=str(validated), timeout=5)
    day = context(data_interval_start=pendulum.datetime(2018, 4, 30, tz="UTC"))
    publish(validated, "2018-04-29")
    with pytest.raises(AirflowSensorTimeout, match=r"date=2018-04-28/_SUCCESS did not appear"):
        sensor.execute_complete(day, event=None, deadline="2018-01-01T00:00:00+00:00")
    with pytest.raises(AirflowSensorTimeout, match="MLOPS_HISTORY_START") as timeout:
        sensor.resume_execution("__fail__", {"error": "Trigger timeout"}, day)
    assert "2018-04-29" not in str(timeout.value)


def mark(zone, day="2018-04-01"):
    (zone / f"date={day}").mkdir(parents=True)
    (zone / f"date={day}" / "_SUCCESS").touch()


def test_not_deferrable_in_poke_mode_pokes_until_the_marker_exists(tmp_path, monkeypatch):
    sensor = LandingPartitionSensor(
        task_id="wait", landing_uri=str(tmp_path), deferrable=False, poke_interval=0, timeout=60
    )
    pokes = []

    def land_on_second_poke(context):
        pokes.append(context)
        if len(pokes) == 2:
            mark(tmp_path)
        return LandingPartitionSensor.poke(sensor, context)

    monkeypatch.setattr(sensor, "poke", land_on_second_poke)
    assert sensor.execute(context()) is None  # no TaskDeferred: it waited in the worker
    assert len(pokes) == 2


def test_not_deferrable_in_poke_mode_times_out_naming_the_partition(tmp_path):
    sensor = LandingPartitionSensor(
        task_id="wait", landing_uri=str(tmp_path), deferrable=False, poke_interval=0, timeout=0
    )
    with pytest.raises(AirflowSensorTimeout, match="date=2018-04-01/_SUCCESS did not appear"):
        sensor.execute(context())


def test_reschedule_mode_frees_the_worker_until_the_next_poke(tmp_path):
    sensor = LandingPartitionSensor(
        task_id="wait",
        landing_uri=str(tmp_path),
        deferrable=False,
        mode="reschedule",
        poke_interval=120,
        timeout=3600,
    )
    ti = SimpleNamespace(get_first_reschedule_date=lambda context: None)
    before = pendulum.now("UTC")
    with pytest.raises(AirflowRescheduleException) as rescheduled:
        sensor.execute(context(ti=ti))
    assert 119 <= (rescheduled.value.reschedule_date - before).total_seconds() <= 125

    mark(tmp_path)
    assert sensor.execute(context(ti=ti)) is None


def test_soft_fail_skips_instead_of_failing_on_every_path(tmp_path):
    def sensor(**kwargs):
        return LandingPartitionSensor(
            task_id="wait", landing_uri=str(tmp_path), soft_fail=True, **kwargs
        )

    with pytest.raises(AirflowSkipException, match="timed out"):
        sensor(deferrable=False, poke_interval=0, timeout=0).execute(context())
    with pytest.raises(AirflowSkipException, match="did not appear"):
        sensor(timeout=5).execute_complete(
            context(), event=None, deadline="2018-01-01T00:00:00+00:00"
        )
    with pytest.raises(AirflowSkipException, match="soft_fail"):
        sensor(timeout=5).resume_execution("__fail__", {"error": "Trigger timeout"}, context())


def test_monitoring_waits_for_the_day_batch_log_partition(tmp_path):
    batch = tmp_path / "predictions" / "batch"
    sensor = PredictionLogSensor(task_id="wait", batch_uri=str(batch), timeout=60)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context())
    assert deferred.value.trigger.paths == [f"{batch}/date=2018-04-01/_SUCCESS"]
    (batch / "date=2018-04-01").mkdir(parents=True)
    (batch / "date=2018-04-01" / "_SUCCESS").touch()
    assert sensor.execute(context()) is None


def observed_rollout(tmp_path, monkeypatch, judge_quality: bool):
    """A canary planned on 2018-04-01, observed on the next 2 days, under a data root."""
    from mlops.deployment.plan import DeploymentRequest, plan_deployment
    from mlops.registry.aliases import AliasState

    monkeypatch.setenv("MLOPS_DATA_ROOT", str(tmp_path))
    request = DeploymentRequest(
        day=DAY.date(),
        version="2",
        observation_days=2,
        wait_for_labels=False,
        judge_quality=judge_quality,
        run_id="canary",
    )
    planned = plan_deployment(request, AliasState(champion="1"), 7)
    ti = SimpleNamespace(xcom_pull=lambda task_ids: planned.to_xcom())
    sensor = ObservedDaysSensor(task_id="wait", plan_task_id="plan", timeout=60)
    return sensor, context(ti=ti, run_id="canary"), planned


@pytest.fixture
def rollout(tmp_path, monkeypatch):
    """Judged on its 2 days alone (``judge_quality`` off)."""
    return observed_rollout(tmp_path, monkeypatch, judge_quality=False)


def test_a_canary_judged_on_quality_waits_a_day_more_while_no_label_has_matured(
    tmp_path, monkeypatch
):
    import pandas as pd

    from mlops.deployment import maturity

    sensor, ctx, _ = observed_rollout(tmp_path, monkeypatch, judge_quality=True)
    # healthy on its 2 days (tests/mlops/deployment judge the rows themselves)
    monkeypatch.setattr(maturity, "observed_rows", lambda *args: (pd.DataFrame(), None))
    monkeypatch.setattr(maturity, "judge", lambda *args: SimpleNamespace(verdict="promote"))
    batch = tmp_path / "predictions" / "batch"
    for day in ("2018-04-02", "2018-04-03", "2018-04-04"):
        mark(batch, day)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(ctx)
    assert deferred.value.trigger.wait[1]["filepath"] == f"{batch}/date=2018-04-05/_SUCCESS"


def test_observed_days_wait_on_their_markers_or_the_run_abort_mark(tmp_path, rollout):
    sensor, ctx, _ = rollout
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(ctx)
    trigger = deferred.value.trigger
    assert type(trigger).__name__ == "AbortableTrigger"
    batch = tmp_path / "predictions" / "batch"
    assert trigger.wait[1]["filepath"] == f"{batch}/date=2018-04-02/_SUCCESS"
    assert trigger.abort[1]["filepath"] == f"{tmp_path}/deployments/aborts/canary.json"
    assert trigger.deadline == deferred.value.kwargs["deadline"]
    assert 59 < deferred.value.timeout.total_seconds() <= 60

    for day in ("2018-04-02", "2018-04-03"):
        mark(batch, day)
    assert sensor.execute_complete(ctx, event=True, deadline=trigger.deadline) is None


def test_observed_days_end_skipped_at_the_abort_mark_kept_in_the_evidence(tmp_path, rollout):
    import json

    sensor, ctx, planned = rollout
    mark(tmp_path / "predictions" / "batch", "2018-04-02")  # the markers do not matter now
    aborts = tmp_path / "deployments" / "aborts"
    aborts.mkdir(parents=True)
    abort = {"aborted_by": "manual__rollback", "reason": "preempted by the rollback of v1"}
    (aborts / "canary.json").write_text(json.dumps(abort))
    with pytest.raises(AirflowSkipException, match="rollout aborted by manual__rollback: preem"):
        sensor.execute_complete(ctx, event={"status": "aborted"}, deadline=None)
    evidence = tmp_path / "reports" / "deployments" / "fraud_model-v2-2018-04-01.json"
    assert json.loads(evidence.read_text())["aborted"] == abort
    with pytest.raises(AirflowSkipException, match="rollout aborted"):
        sensor.execute(ctx)  # a rerun finds the mark before deferring
