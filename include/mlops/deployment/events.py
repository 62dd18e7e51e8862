"""Which asset event a deployment-stage run acts on, and what a rollback request carries.

model_deployment (``candidate_model``) and model_rollback (``rollback_request``) are woken by
asset events, and each runs one at a time: the events that come while a run is busy queue,
and Airflow hands them all to the next run. That run acts on one of them, chosen here and
nowhere else: the newest data day, then the newest event (the later ``emitted_at``, then the
later in the order Airflow lists them, which is emission order). An event that carries no
day cannot be placed in data time and ranks below every one that does. The others are
superseded: kept in the run's request (and so in its plan and history record), never acted
on. The day an asset-triggered run takes as its own (``mlops_airflow.context.as_of_day``,
the latest day the events carry) is then the chosen event's day, never another one's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class TriggeringEvent:
    """One asset event as a run received it (``triggering_asset_events``), in plain data."""

    asset: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    emitted_at: datetime | None = None  # the event's timestamp
    source: str | None = None  # ``dag_id/run_id`` of the task that emitted it, if any

    @property
    def day(self) -> date | None:
        value = self.extra.get("day")
        return date.fromisoformat(str(value)[:10]) if value else None

    @property
    def version(self) -> str | None:
        """The model version the event is about: a candidate's, or a rollback's bad one."""
        value = self.extra.get("model_version", self.extra.get("version"))
        return str(value) if value not in (None, "") else None

    def record(self) -> dict[str, Any]:
        """What a run keeps of an event it did not act on."""
        return {
            "asset": self.asset,
            "day": self.day.isoformat() if self.day else None,
            "version": self.version,
            "emitted_at": self.emitted_at.isoformat() if self.emitted_at else None,
            "source": self.source,
        }


@dataclass(frozen=True)
class EventChoice:
    """The event a run acts on (None when it was not woken by one) and those it supersedes,
    oldest first."""

    chosen: TriggeringEvent | None = None
    superseded: tuple[TriggeringEvent, ...] = ()

    @property
    def extra(self) -> dict[str, Any]:
        return dict(self.chosen.extra) if self.chosen else {}

    def superseded_records(self) -> tuple[dict[str, Any], ...]:
        return tuple(event.record() for event in self.superseded)


def _rank(indexed: tuple[int, TriggeringEvent]) -> tuple:
    position, event = indexed
    day = event.day
    moment = event.emitted_at.timestamp() if event.emitted_at else float("-inf")
    return (day is not None, day or date.min, moment, position)


def choose_event(events: Iterable[TriggeringEvent]) -> EventChoice:
    """The newest data day, then the newest event; an event listed twice (under its asset and
    under an alias it was emitted through) counts once."""
    unique: list[TriggeringEvent] = []
    for event in events:
        if event not in unique:
            unique.append(event)
    if not unique:
        return EventChoice()
    ranked = sorted(enumerate(unique), key=_rank)
    chosen = ranked[-1][1]
    return EventChoice(chosen, tuple(event for _, event in ranked[:-1]))


def rollback_event(decision: Mapping[str, Any]) -> dict[str, Any]:
    """The extra of the ``rollback_request`` event a rollback decision emits: the day, the bad
    champion (a second request for it finds it gone and does nothing) and why."""
    return {
        "day": decision["day"],
        "version": str(decision["rollback_version"]),
        "reason": "; ".join(str(reason) for reason in decision["reasons"]),
    }


__all__ = [
    "EventChoice",
    "TriggeringEvent",
    "choose_event",
    "rollback_event",
]
