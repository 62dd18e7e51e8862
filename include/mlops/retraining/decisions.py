"""The record of every day's retrain decision, and the stage entry that makes it.

Append-only by day: ``monitoring/decisions/date=D.json``, written atomically. A rerun of D
reads the same summary and the same earlier records, so it writes the same decision again
(the file is replaced by identical content); later days' records are never read for D.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from mlops import zones
from mlops.features.inputs import DayLike, as_date
from mlops.io import storage
from mlops.monitoring.daily import read_summary
from mlops.registry.history import served_on
from mlops.retraining.policy import Decision, RetrainPolicy, decide
from mlops.schema import partition_name
from mlops.settings import Settings
from mlops.training.settled import first_settled_day
from mlops.training.windows import DEFAULT_WINDOW_DAYS

HISTORY_DAYS = 60  # enough for the budget window, the cooldown, probation and a streak


@dataclass(frozen=True)
class DecisionResult:
    decision: Decision
    uri: str

    def to_xcom(self) -> dict[str, Any]:
        return self.decision.to_dict() | {"record": self.uri}


def decision_uri(settings: Settings, day: date) -> str:
    folder = settings.zone(zones.RETRAINING_DECISIONS)
    return storage.join(folder, f"{partition_name(day.isoformat())}.json")


def read_history(
    settings: Settings,
    day: date,
    options: storage.StorageOptions | None = None,
    days: int = HISTORY_DAYS,
) -> list[dict[str, Any]]:
    """The recorded decisions of the ``days`` days before ``day``, oldest first."""
    uris = [decision_uri(settings, day - timedelta(days=back)) for back in range(days, 0, -1)]
    found = storage.read_many(uris, options)  # one batch: concurrent GETs on S3
    return [json.loads(found[uri]) for uri in uris if uri in found]


def first_model_day(settings: Settings) -> date:
    """The first day a default training window (``[D - delay - window, D - delay)``) holds
    only settled features (``mlops.training.settled``)."""
    delay = settings.label_delay_days
    settled = first_settled_day(settings.history_start, delay)
    return settled + timedelta(days=delay + DEFAULT_WINDOW_DAYS)


def decide_day(
    settings: Settings,
    day: DayLike,
    options: storage.StorageOptions | None = None,
    *,
    training_active: bool = False,
    policy: RetrainPolicy | None = None,
) -> DecisionResult:
    """Decide ``day`` from its monitoring summary and the earlier decisions; record it."""
    day = as_date(day)
    summary = read_summary(settings, day, options)
    if summary is None:
        summary = {"day": day.isoformat(), "status": "missing", "reason": "no summary written"}
    decision = decide(
        summary,
        read_history(settings, day, options),
        training_active=training_active,
        policy=policy or RetrainPolicy(delay_days=settings.label_delay_days),
        first_model_day=None
        if served_on(settings, day, options).version
        else first_model_day(settings),
    )
    uri = storage.write_json_atomic(decision_uri(settings, day), decision.to_dict(), options)
    return DecisionResult(decision, uri)
