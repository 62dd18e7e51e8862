"""The deployment history: every alias move, who made it, when, why, and its evidence.

Besides the moves, the history holds every answer to a rollout's approval (approved,
rejected, timed out, refused), with the responder; nothing moves with those.

MLflow keeps no alias history (its alias table holds the current mapping only, and tags are
upserts), so whoever moves an alias also appends an event here: one JSON document per event
under the data root's ``deployments/history/`` zone, written atomically. The name is the
event's key (data day, action, version, run), so an Airflow retry or a rerun of the same run
finds its event already there.

A move and its event are one idempotent step (``recorded_move``): the event is first written
as ``intended``, holding the aliases as they were before anything moved; then the aliases
move; then the event is rewritten once as ``confirmed`` with the aliases the move left. A
crash anywhere in between leaves the intent, and the retry finishes the move and confirms the
intent it finds, with the ``before`` of the first attempt: the history never records a retried
move as "no change". Only confirmed events are history; an intent whose run never came back
is listed by ``read_history(..., intended=True)``.

Time: ``day`` is the data day the move was made at (the simulated or backfilled clock, which
is what the pipeline's runs reason in); the new champion serves from the next day on.
``recorded_at`` is the wall-clock time of the recording run, kept for the audit trail only.

``served_on(settings, day)`` answers "which model served on day X, and who approved it" with
one call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import Any

from mlops import zones
from mlops.io import storage
from mlops.settings import Settings

MOVES = ("deployed", "rollout_started", "promoted", "rollout_aborted", "rolled_back")
# A human's answer to a rollout (mlops.deployment.approval): recorded, nothing moved.
DECISIONS = ("approved", "rejected", "approval_timed_out", "approval_refused")
ACTIONS = MOVES + DECISIONS
INTENDED, CONFIRMED = "intended", "confirmed"


@dataclass(frozen=True)
class DeploymentEvent:
    """One move of the aliases (``before``/``after`` are ``AliasState`` dicts)."""

    day: str
    action: str
    model_name: str
    version: str
    before: dict[str, str | None]
    after: dict[str, str | None]
    reason: str
    actor: str
    strategy: str = "direct"
    approved_by: str | None = None
    approved_at: str | None = None
    responded_by: str | None = None  # a decision's responder, as the auth manager names them
    evidence: str | None = None
    run_id: str | None = None
    recorded_at: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    status: str = CONFIRMED  # intended: written before the move, not yet confirmed

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {self.action!r}")
        if self.status not in (INTENDED, CONFIRMED):
            raise ValueError(f"status must be {INTENDED} or {CONFIRMED}, got {self.status!r}")
        date.fromisoformat(self.day)

    @property
    def key(self) -> str:
        run = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.run_id or "manual")
        return f"{self.day}_{self.action}_v{self.version}_{run}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ServedModel:
    """The champion of a day and the event that made it so (None before any deployment)."""

    day: str
    version: str | None
    since: DeploymentEvent | None

    @property
    def approved_by(self) -> str | None:
        return self.since.approved_by if self.since else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "version": self.version,
            "approved_by": self.approved_by,
            "since": self.since.to_dict() if self.since else None,
        }


def history_uri(settings: Settings) -> str:
    return settings.zone(zones.DEPLOYMENT_HISTORY)


def event_uri(settings: Settings, event: DeploymentEvent) -> str:
    return storage.join(history_uri(settings), f"{event.key}.json")


def record_event(
    settings: Settings, event: DeploymentEvent, options: storage.StorageOptions | None = None
) -> str:
    """Append ``event`` (a no-op when the same run already recorded it); returns its URI."""
    uri = event_uri(settings, event)
    if not storage.exists(uri, options):
        storage.write_json_atomic(uri, event.to_dict(), options)
    return uri


def recorded_move(
    settings: Settings,
    intent: DeploymentEvent,
    move: Callable[[], dict[str, str | None]],
    options: storage.StorageOptions | None = None,
) -> tuple[DeploymentEvent, str]:
    """Record ``intent`` (its ``before``: the aliases now), run ``move`` (idempotent; returns
    the aliases it leaves), confirm the event with them; returns the event and its URI.

    A retry of the same run finds its intent and keeps that ``before`` (the first attempt's,
    taken before anything moved), finishes the move and confirms. Once confirmed, a rerun
    moves nothing (the registry may have moved on since) and returns the event."""
    uri = event_uri(settings, intent)
    found = (
        DeploymentEvent(**storage.read_json(uri, options)) if storage.exists(uri, options) else None
    )
    if found is not None and found.status == CONFIRMED:
        return found, uri
    if found is None:
        found = replace(intent, after={}, status=INTENDED)
        storage.write_json_atomic(uri, found.to_dict(), options)
    after = move()
    confirmed = replace(found, after=after, status=CONFIRMED)
    storage.write_json_atomic(uri, confirmed.to_dict(), options)
    return confirmed, uri


def read_history(
    settings: Settings, options: storage.StorageOptions | None = None, *, intended: bool = False
) -> list[DeploymentEvent]:
    """Every confirmed event (and, with ``intended``, every unconfirmed intent), oldest first
    (by data day, then by recording time)."""
    root = history_uri(settings)
    if not storage.exists(root, options):
        return []
    files = [f for f in storage.list_data_files(root, options) if f.endswith(".json")]
    found = storage.read_many(files, options)  # one batch: concurrent GETs on S3
    events = [DeploymentEvent(**json.loads(found[f])) for f in files if f in found]
    events = [e for e in events if intended or e.status == CONFIRMED]
    return sorted(events, key=lambda e: (e.day, e.recorded_at or "", e.key))


def champion_on(events: list[DeploymentEvent], day: date | str) -> ServedModel:
    """The champion that served ``day``: as the last event made on a day before it left it,
    with the move that made it champion."""
    day = date.fromisoformat(str(day)).isoformat()
    earlier = [event for event in events if event.day < day and event.action in MOVES]
    version = earlier[-1].after.get("champion") if earlier else None
    moves = [e for e in earlier if e.after.get("champion") != e.before.get("champion")]
    return ServedModel(day, version, moves[-1] if moves else None)


def served_on(
    settings: Settings, day: date | str, options: storage.StorageOptions | None = None
) -> ServedModel:
    """Which model served on ``day``, and the move (who, why, approved by) that put it there."""
    return champion_on(read_history(settings, options), day)


__all__ = [
    "ACTIONS",
    "CONFIRMED",
    "DECISIONS",
    "INTENDED",
    "MOVES",
    "DeploymentEvent",
    "ServedModel",
    "champion_on",
    "event_uri",
    "history_uri",
    "read_history",
    "record_event",
    "recorded_move",
    "served_on",
]
