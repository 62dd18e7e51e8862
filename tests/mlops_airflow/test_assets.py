"""What a partition key does to an asset event in Airflow 3.3.2, the reason the model assets
stay unkeyed and model_monitoring keeps its cron and its sensor (README "How the day travels").

Pinned here so that an Airflow upgrade which changes it fails a test instead of cutting the
loop silently."""

from __future__ import annotations

import pytest

from tests.support.partition_runs import queued_by, rest_trigger


@pytest.mark.parametrize(
    ("asset", "consumer"),
    [("retrain_request", "model_training"), ("rollback_request", "model_rollback")],
)
def test_a_day_keyed_request_would_wake_nobody(airflow_db, asset, consumer):
    """Every event of a run that has a partition key carries it, and a keyed event queues only
    partition-aware DAGs: a model_monitoring woken by a day-keyed event could not ask for a
    retraining or a rollback."""
    assert queued_by(asset, None) == {consumer}
    assert queued_by(asset, "2018-04-05") == set()


def test_an_asset_driven_partitioned_dag_cannot_be_backfilled():
    """``airflow backfill create`` takes periodic timetables only; an asset-driven one (even
    partitioned) is not, so re-judging a range of days could not be a backfill either."""
    from airflow.timetables.simple import PartitionedAssetTimetable
    from airflow.timetables.trigger import CronPartitionTimetable

    assert PartitionedAssetTimetable.periodic is False and PartitionedAssetTimetable.partitioned
    assert CronPartitionTimetable.periodic is True


def test_model_monitoring_takes_a_day_param_not_a_partition_key(airflow_db):
    """Not partitioned, model_monitoring takes no ``partition_key``: a REST trigger with one is
    refused, and the ``day`` Param re-judges a day."""
    body = {"logical_date": None, "partition_key": "2018-04-05", "conf": {}}
    status, answer = rest_trigger("model_monitoring", body)
    assert status == 400, answer
    assert "is not a partitioned Dag and does not accept a partition_key" in answer["detail"]
    body = {"logical_date": None, "conf": {"day": "2018-04-05"}}
    status, answer = rest_trigger("model_monitoring", body)
    assert status == 200 and answer["conf"]["day"] == "2018-04-05", answer
    assert answer["partition_key"] is None


def test_the_daily_chain_assets_carry_the_location_and_the_requests_none():
    from mlops_airflow import assets

    daily = [assets.VALIDATED_TRANSACTIONS, assets.FEATURES, assets.SCORED_PREDICTIONS]
    assert [a.name for a in daily] == ["validated_transactions", "features", "scored_predictions"]
    assert all(a.extra["location"] for a in daily)
    assert assets.RETRAIN_REQUEST.extra == assets.ROLLBACK_REQUEST.extra == {}
