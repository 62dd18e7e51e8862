"""AbortableTrigger, run as the triggerer runs it (its async generator, the provider's
FileTriggers inside): the wait's own event, the abort mark's, or the deadline's, first one
wins, and the losing poller is cancelled."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from airflow.providers.standard.triggers.file import FileTrigger

from mlops_airflow.triggers import AbortableTrigger
from tests.support.threads import helper_thread

POKE_S = 0.05


def trigger(tmp_path, seconds: float | None = 30) -> AbortableTrigger:
    deadline = datetime.now(UTC) + timedelta(seconds=seconds) if seconds is not None else None
    return AbortableTrigger(
        wait=FileTrigger(
            str(tmp_path / "date=2018-04-02" / "_SUCCESS"), poke_interval=POKE_S
        ).serialize(),
        abort=FileTrigger(str(tmp_path / "aborts" / "run.json"), poke_interval=POKE_S).serialize(),
        deadline=deadline.isoformat() if deadline else None,
    )


def first_event(trigger: AbortableTrigger, appears=None, after_s: float = 0.3):
    """The trigger's event, with ``appears`` (a path) written ``after_s`` into the wait."""

    def write() -> None:
        if appears is not None:
            appears.parent.mkdir(parents=True, exist_ok=True)
            appears.write_text("{}")

    async def run():
        async with asyncio.timeout(20):
            event = await anext(trigger.run())
        # the losing poller is gone: nothing but this task is left on the loop
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return event, others

    with helper_thread(write, delay_s=after_s):
        return asyncio.run(run())


def test_fires_with_the_wait_event_when_the_markers_come(tmp_path):
    event, others = first_event(trigger(tmp_path), tmp_path / "date=2018-04-02" / "_SUCCESS")
    assert event.payload is True  # FileTrigger's own event, unchanged
    assert others == []


def test_fires_aborted_when_the_abort_mark_appears(tmp_path):
    event, others = first_event(trigger(tmp_path), tmp_path / "aborts" / "run.json")
    assert event.payload == {"status": "aborted"}
    assert others == []


@pytest.mark.parametrize("seconds", [0.5, -60])
def test_times_out_at_its_deadline_when_nothing_comes(tmp_path, seconds):
    started = datetime.now(UTC)
    event, others = first_event(trigger(tmp_path, seconds))
    waited = (datetime.now(UTC) - started).total_seconds()
    assert event.payload == {"status": "timeout"}
    assert others == []
    assert waited < max(seconds, 0) + 5
    if seconds > 0:
        assert waited >= seconds - 0.05


def test_it_is_rebuilt_from_what_it_serializes(tmp_path):
    original = trigger(tmp_path, seconds=None)
    classpath, kwargs = original.serialize()
    assert classpath == "mlops_airflow.triggers.AbortableTrigger"
    rebuilt = AbortableTrigger(**kwargs)
    assert rebuilt.serialize() == original.serialize()
    assert kwargs["wait"][0] == "airflow.providers.standard.triggers.file.FileTrigger"
    assert kwargs["deadline"] is None


def test_local_markers_end_the_task_once_every_one_exists(tmp_path):
    from airflow.triggers.base import TaskSuccessEvent

    from mlops_airflow.triggers import LocalMarkersTrigger

    markers = [tmp_path / f"date=2018-04-0{d}" / "_SUCCESS" for d in (1, 2)]
    markers[0].parent.mkdir()
    markers[0].touch()
    waiting = LocalMarkersTrigger([str(m) for m in markers], poke_interval=POKE_S)
    assert LocalMarkersTrigger(**waiting.serialize()[1]).serialize() == waiting.serialize()
    event, others = first_event(waiting, markers[1], after_s=0.2)
    assert isinstance(event, TaskSuccessEvent)
    assert others == []


def test_started_in_the_triggerer_it_works_out_the_run_markers_from_its_context(
    tmp_path, monkeypatch
):
    """``start_from_trigger``: the triggerer gives the trigger a task instance whose context
    names the run; its markers are those the sensor's worker path would look for."""
    from types import SimpleNamespace

    import pendulum
    from airflow.triggers.base import TaskSuccessEvent

    from mlops_airflow.triggers import RunMarkersTrigger

    monkeypatch.setenv("MLOPS_HISTORY_START", "2018-04-29")
    monkeypatch.setenv("MLOPS_LABEL_DELAY_DAYS", "7")
    run = {"params": {}, "partition_key": "2018-05-01", "data_interval_start": None}
    run["dag_run"] = SimpleNamespace(run_after=pendulum.datetime(2018, 5, 2, tz="UTC"))
    waiting = RunMarkersTrigger("earlier_days", str(tmp_path), poke_interval=POKE_S)
    waiting.task_instance = SimpleNamespace(
        task_id="wait_for_earlier_days", task=None, get_template_context=lambda: run
    )
    (tmp_path / "date=2018-04-29").mkdir()
    (tmp_path / "date=2018-04-29" / "_SUCCESS").touch()
    event, _ = first_event(waiting, tmp_path / "date=2018-04-30" / "_SUCCESS", after_s=0.2)
    assert isinstance(event, TaskSuccessEvent)
    assert waiting.paths == [f"{tmp_path}/date=2018-04-{d}/_SUCCESS" for d in ("29", "30")]
