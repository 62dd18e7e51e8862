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
    deployment_request,
    rollback_request,
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


def airflow_event(asset: str, minute: int, **extra):
    """An event as ``triggering_asset_events`` lists it (AssetEventDagRunReferenceResult)."""
    return SimpleNamespace(
        asset=SimpleNamespace(name=asset),
        extra=extra,
        timestamp=pendulum.datetime(2026, 12, 4, 10, minute, tz="UTC"),
        source_dag_id="model_training",
        source_run_id=f"asset_triggered__{minute}",
    )


def woken_by(dag_id: str, params: dict, events: dict) -> dict:
    run = SimpleNamespace(run_type="asset_triggered", run_after=RUN_AFTER.run_after)
    return {
        "params": params,
        "dag": SimpleNamespace(dag_id=dag_id),
        "dag_run": run,
        "run_id": "asset_triggered__x",
        "logical_date": None,
        "triggering_asset_events": events,
    }


DEPLOY_PARAMS = {
    "action": "deploy",
    "version": None,
    "strategy": "canary",
    "canary_share": 0.1,
    "observation_days": 3,
    "wait_for_labels": False,
    "require_approval": False,
    "day": None,
    "reason": None,
}


def test_a_deployment_run_deploys_the_newest_day_s_candidate_whatever_the_listing_order():
    """The newest day's event is listed first: the version and the day come from the same
    event (before, the version came from whichever was listed last)."""
    newest = airflow_event("candidate_model", 1, model_version=5, run_id="b", day="2018-06-05")
    later = airflow_event("candidate_model", 2, model_version=4, run_id="a", day="2018-06-03")
    context = woken_by("model_deployment", DEPLOY_PARAMS, {"candidate_model": [newest, later]})
    request = deployment_request(context)
    assert (request.version, request.day) == ("5", date(2018, 6, 5))
    assert request.actor == "model_deployment/asset_triggered"
    (superseded,) = request.superseded
    assert (superseded["version"], superseded["day"]) == ("4", "2018-06-03")
    assert superseded["source"] == "model_training/asset_triggered__2"


def test_a_rollback_run_acts_on_the_newest_request_and_params_win():
    older = airflow_event("rollback_request", 1, day="2018-06-24", version="7", reason="a")
    newer = airflow_event("rollback_request", 2, day="2018-06-25", version="7", reason="b")
    params = {"version": None, "day": None, "reason": None}
    events = {"rollback_request": [newer, older]}
    request = rollback_request(woken_by("model_rollback", params, events))
    assert (request.version, request.day, request.reason) == ("7", date(2018, 6, 25), "b")
    assert [s["day"] for s in request.superseded] == ["2018-06-24"]
    asked = {"version": "6", "day": "2018-06-30", "reason": "by hand"}
    manual = rollback_request({**woken_by("model_rollback", asked, {}), "logical_date": None})
    assert (manual.version, manual.day, manual.superseded) == ("6", date(2018, 6, 30), ())
    fallback = rollback_request(woken_by("model_rollback", params, {}))
    assert (fallback.version, fallback.day) == (None, date(2026, 11, 29))


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
