"""The day a run works on, from its Params, data interval, triggering events or run_after."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pendulum

from mlops_airflow.context import as_of_day, triggering_day, triggering_reason

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
