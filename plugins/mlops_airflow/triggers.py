"""Triggers of the partition sensors: a wait that ends the task itself, and one that something
else may end early.

``LocalMarkersTrigger`` polls local marker files and, once every one exists, ends the task
in the triggerer (``TaskSuccessEvent``): a worker resuming the sensor would only find what
the trigger found, at the cost of one more task start (about a second of scheduling, a fork
and the Execution API calls on the laptop profile). Where a trigger runs in line
(``dag.test``) the sensor resumes anyway and pokes once more.

``AbortableTrigger`` runs two triggers side by side in the triggerer: the one a sensor waits
on (a provider's ``FileTrigger`` or ``S3KeyTrigger``, for its markers) and one for an abort
mark (the same kinds, on the mark's path), and fires with whichever fires first:

* the wait's own event, unchanged (``True``, or ``{"status": "success"|"error", ...}``);
* ``{"status": "aborted"}`` when the abort mark appears;
* ``{"status": "timeout"}`` at ``deadline``, so the wait ends on time even where nothing
  else enforces the deferral's timeout (``dag.test`` runs triggers in line, without one).

The sensor resumes and decides (it reads the mark first, then the markers); the triggers
are given as their ``serialize()`` output, so any trigger can be wrapped, and the loser is
cancelled, which ends its polling.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent

ABORTED, TIMEOUT = "aborted", "timeout"


def _build(serialized: list[Any] | tuple[str, dict[str, Any]]) -> BaseTrigger:
    """The trigger back from its ``serialize()`` output, as the triggerer builds one."""
    classpath, kwargs = serialized
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)


class LocalMarkersTrigger(BaseTrigger):
    """Every file of ``paths`` present (polled each ``poke_interval`` seconds): the task
    succeeds here. The deferral's own timeout bounds the wait."""

    def __init__(self, paths: list[str], poke_interval: float = 5.0):
        super().__init__()
        self.paths = list(paths)
        self.poke_interval = poke_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"paths": self.paths, "poke_interval": self.poke_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while missing := [path for path in self.paths if not os.path.isfile(path)]:
            self.log.debug("Waiting for %d marker(s), first %s", len(missing), missing[0])
            await asyncio.sleep(self.poke_interval)
        yield TaskSuccessEvent()


class RunMarkersTrigger(LocalMarkersTrigger):
    """A sensor started in the triggerer (``start_from_trigger``): the run's markers are
    worked out here, from the run's context (``mlops_airflow.sensors.run_markers``), then
    waited for as ``LocalMarkersTrigger`` does. No worker runs the task unless it times out."""

    def __init__(self, kind: str, zone_uri: str, poke_interval: float = 5.0):
        super().__init__([], poke_interval)
        self.kind = kind
        self.zone_uri = zone_uri

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"kind": self.kind, "zone_uri": self.zone_uri, "poke_interval": self.poke_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from mlops_airflow.sensors import run_markers

        context = self.task_instance.get_template_context()
        self.paths = run_markers(self.kind, self.zone_uri, context)
        self.log.info("Waiting for %d marker(s): %s", len(self.paths), ", ".join(self.paths))
        async for event in super().run():
            yield event


async def _first_event(trigger: BaseTrigger) -> TriggerEvent | None:
    async for event in trigger.run():
        return event
    return None


class AbortableTrigger(BaseTrigger):
    """The first event of ``wait`` or ``abort`` (each a trigger's ``serialize()``), or a
    timeout event at ``deadline`` (ISO 8601; None: no deadline of its own)."""

    def __init__(
        self,
        wait: list[Any] | tuple[str, dict[str, Any]],
        abort: list[Any] | tuple[str, dict[str, Any]],
        deadline: str | None = None,
    ):
        super().__init__()
        self.wait = list(wait)
        self.abort = list(abort)
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"wait": self.wait, "abort": self.abort, "deadline": self.deadline},
        )

    def _seconds_left(self) -> float | None:
        if self.deadline is None:
            return None
        left = datetime.fromisoformat(self.deadline) - datetime.now(UTC)
        return max(left.total_seconds(), 0.0)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        waiting = asyncio.ensure_future(_first_event(_build(self.wait)))
        aborting = asyncio.ensure_future(_first_event(_build(self.abort)))
        try:
            done, _ = await asyncio.wait(
                {waiting, aborting},
                timeout=self._seconds_left(),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for pending in (waiting, aborting):
                pending.cancel()
            await asyncio.gather(waiting, aborting, return_exceptions=True)
        if aborting in done and aborting.exception() is None:
            self.log.info("Abort mark found: %s", self.abort)
            yield TriggerEvent({"status": ABORTED})
        elif waiting in done:
            event = waiting.result()  # an error of the wait's trigger fails the task
            yield event if event is not None else TriggerEvent({"status": TIMEOUT})
        elif aborting in done:
            aborting.result()  # raises the abort trigger's error
        else:
            self.log.info("Deadline %s passed", self.deadline)
            yield TriggerEvent({"status": TIMEOUT})
