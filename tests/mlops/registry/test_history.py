"""The deployment history: append-only, idempotent per run, and "who served day X" in one call."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlops.registry.history import (
    DeploymentEvent,
    read_history,
    record_event,
    recorded_move,
    served_on,
)
from mlops.settings import load_settings


def event(day: str, action: str, before: str | None, after: str | None, **kw) -> DeploymentEvent:
    return DeploymentEvent(
        day=day,
        action=action,
        model_name="fraud",
        version=after or "0",
        before={"champion": before},
        after={"champion": after},
        reason=f"{action} on {day}",
        actor="test",
        run_id=kw.pop("run_id", f"run-{day}"),
        **kw,
    )


@pytest.fixture
def settings(tmp_path):
    return load_settings({"MLOPS_DATA_ROOT": str(tmp_path)})


def test_the_champion_of_a_day_is_set_by_the_last_move_before_it(settings):
    for each in (
        event("2018-05-01", "deployed", None, "1", approved_by="alice"),
        event("2018-05-10", "rollout_started", "1", "1"),
        event("2018-05-20", "promoted", "1", "2"),
        event("2018-05-25", "rolled_back", "2", "1"),
    ):
        record_event(settings, each)
    assert served_on(settings, "2018-05-01").version is None
    first = served_on(settings, "2018-05-02")
    assert (first.version, first.approved_by) == ("1", "alice")
    assert served_on(settings, "2018-05-20").version == "1"  # moved at day-end
    assert served_on(settings, "2018-05-21").since.action == "promoted"
    assert served_on(settings, "2018-06-01").to_dict()["since"]["action"] == "rolled_back"


def test_a_rerun_of_the_same_run_does_not_append_twice(settings):
    first = record_event(settings, event("2018-05-01", "deployed", None, "1", recorded_at="t1"))
    again = record_event(settings, event("2018-05-01", "deployed", None, "1", recorded_at="t2"))
    assert first == again
    assert [e.recorded_at for e in read_history(settings)] == ["t1"]


def test_events_are_read_back_in_data_time_order(settings):
    record_event(settings, event("2018-05-20", "promoted", "1", "2"))
    record_event(settings, event("2018-05-01", "deployed", None, "1"))
    assert [e.day for e in read_history(settings)] == ["2018-05-01", "2018-05-20"]


def test_an_intent_left_by_a_crash_is_not_history_and_its_retry_keeps_the_first_before(settings):
    registry = {"champion": "1"}
    intent = event("2018-05-20", "promoted", "1", None)

    def crash():
        registry["champion"] = "2"
        raise RuntimeError("killed between the move and its record")

    with pytest.raises(RuntimeError, match="killed between the move and its record"):
        recorded_move(settings, intent, crash)
    assert read_history(settings) == []
    (pending,) = read_history(settings, intended=True)
    assert (pending.status, pending.before, pending.after) == ("intended", {"champion": "1"}, {})
    retry = replace(intent, before={"champion": "2"})  # the retry finds v2 already champion
    done, _ = recorded_move(settings, retry, lambda: dict(registry))
    assert (done.status, done.before, done.after) == ("confirmed", {"champion": "1"}, registry)
    assert served_on(settings, "2018-05-21").since == done
    again, _ = recorded_move(settings, retry, lambda: pytest.fail("a confirmed move is not redone"))
    assert again == done


def test_an_unknown_action_is_refused():
    with pytest.raises(ValueError, match="action must be one of"):
        event("2018-05-01", "moved", None, "1")
