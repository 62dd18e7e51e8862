"""The day a run works on, from its Params, data interval, triggering events or run_after;
the storage options a task takes from its Airflow connection."""

from __future__ import annotations

import json
from datetime import date
from types import SimpleNamespace

import pendulum

from mlops.io.storage import S3_CLIENT_CONFIG
from mlops_airflow.context import (
    as_of_day,
    storage_options,
    training_request,
    triggering_day,
    triggering_reason,
)

RUN_AFTER = SimpleNamespace(run_after=pendulum.datetime(2026, 11, 29, 20, tz="UTC"))


def event(**extra):
    return SimpleNamespace(extra=extra)


def test_an_asset_triggered_run_trains_as_of_the_day_in_the_event():
    context = {
        "logical_date": None,
        "dag_run": RUN_AFTER,
        "triggering_asset_events": {
            "retrain_request": [
                event(day="2018-08-03", reasons=["model age"]),
                event(day="2018-08-05", reasons=["data drift: TX_AMOUNT", "quality"]),
            ],
            "an alias of it": [
                event(day="2018-08-05", reasons=["data drift: TX_AMOUNT", "quality"])
            ],
        },
    }
    assert triggering_day(context) == date(2018, 8, 5)
    assert as_of_day(context) == date(2018, 8, 5)
    assert triggering_reason(context) == (
        "retrain request of 2018-08-03: model age | "
        "retrain request of 2018-08-05: data drift: TX_AMOUNT; quality"
    )


def test_without_a_day_in_the_events_the_logical_date_or_run_after_is_used():
    no_day = {"triggering_asset_events": {"retrain_request": [event(rows=3)]}}
    assert as_of_day({**no_day, "logical_date": pendulum.datetime(2018, 9, 3, 3)}) == date(
        2018, 9, 3
    )
    assert as_of_day({**no_day, "logical_date": None, "dag_run": RUN_AFTER}) == date(2026, 11, 29)
    assert triggering_reason(no_day) == "" and triggering_day({}) is None


PARAMS = {
    "window_days": 21,
    "eval_days": 7,
    "family": "logistic_regression",
    "hyperparameters": {},
    "seed": 0,
    "force_review": False,
    "allow_unsettled_features": False,
    "breach_since": None,
    "reason": None,
}


def test_a_run_woken_by_a_request_after_a_breach_trains_without_the_gap():
    request = {"day": "2018-07-12", "reasons": ["quality"], "breach_since": "2018-06-25"}
    context = {"triggering_asset_events": {"retrain_request": [event(**request)]}}
    settings = SimpleNamespace(label_delay_days=7)
    made = training_request(PARAMS, as_of_day(context), settings, "", context)
    assert made.breach_since == date(2018, 6, 25)
    assert made.window.train_end == made.window.eval_start == date(2018, 6, 28)
    routine = training_request(PARAMS, date(2018, 7, 12), settings, "", {})
    assert routine.breach_since is None and routine.window.train_end == date(2018, 6, 21)


def test_s3_calls_of_a_task_are_bounded_with_its_connection_s_identity(monkeypatch):
    import s3fs

    conn = {"conn_type": "aws", "login": "k", "password": "s"}
    conn["extra"] = {"endpoint_url": "http://127.0.0.1:9", "region_name": "eu-west-1"}
    monkeypatch.setenv("AIRFLOW_CONN_LAKE", json.dumps(conn))
    options = storage_options("s3://lake/data", "lake")
    assert (options["key"], options["client_kwargs"]["endpoint_url"]) == ("k", "http://127.0.0.1:9")
    assert options["config_kwargs"] == S3_CLIENT_CONFIG
    client = s3fs.S3FileSystem(**options, skip_instance_cache=True)
    client.connect()
    config = client.s3.meta.config  # what botocore will use on every call
    assert (config.connect_timeout, config.read_timeout) == (5, 30)
    assert config.retries["total_max_attempts"] == 3  # botocore counts the first try
    assert storage_options("/local/data", "lake") == {}
