"""Settled features: rows whose feature windows lie wholly inside the data set.

The windows of a day-``D`` row reach back ``lookback_days(delay)`` days (30 days of terminal
risk behind the 7-day label delay: 37). Before ``MLOPS_HISTORY_START`` there is nothing, so
the rows of the first 37 days carry truncated windows: a terminal with no risk yet, customers
with short histories. Served features never look like that again, so a model trained on such
rows learns a relation serving will not reproduce, and a gate judging it on such rows measures
a distribution that no longer exists.

The choice: refuse by default, with an error that names the first settled day and the first
date whose window is settled. Failing loudly costs a run; a silent flag would let the closed
loop promote a model nobody looked at. A request may still ask for it
(``allow_unsettled_features``, e.g. the demo's first model on five weeks of data); the run is
then flagged in the decision record and the model card, and an approval becomes
``needs_review``, so a person accepts the truncation knowingly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from mlops.features.sql import lookback_days


class UnsettledFeaturesError(ValueError):
    """A training or evaluation window holds rows whose feature windows are truncated."""


@dataclass(frozen=True)
class Settlement:
    """Which days of the run's sets have truncated feature windows (``unsettled``: name ->
    [first, last] day, inclusive; empty when every row is settled)."""

    history_start: date
    first_settled_day: date
    lookback_days: int
    unsettled: dict[str, tuple[str, str]]
    allowed: bool

    @property
    def settled(self) -> bool:
        return not self.unsettled

    def to_dict(self) -> dict[str, Any]:
        return {
            "settled": self.settled,
            "history_start": self.history_start.isoformat(),
            "first_settled_day": self.first_settled_day.isoformat(),
            "lookback_days": self.lookback_days,
            "unsettled": {name: list(days) for name, days in self.unsettled.items()},
            "allowed": self.allowed,
        }

    def describe(self) -> str:
        """One line for logs, reasons and the model card."""
        if self.settled:
            return (
                f"features settled: every row is on or after {self.first_settled_day} "
                f"({self.lookback_days}-day windows from {self.history_start})"
            )
        spans = ", ".join(f"{name} {a}..{b}" for name, (a, b) in self.unsettled.items())
        return (
            f"unsettled features: {spans} use windows truncated at MLOPS_HISTORY_START "
            f"{self.history_start} (they reach back {self.lookback_days} days); the first "
            f"settled day is {self.first_settled_day}"
        )


def first_settled_day(history_start: date, delay_days: int) -> date:
    """The first day whose feature windows start on or after ``history_start``."""
    return history_start + timedelta(days=lookback_days(delay_days))


def settlement(
    windows: dict[str, tuple[date, date]],
    history_start: date,
    delay_days: int,
    *,
    as_of: date | None = None,
    allow: bool = False,
) -> Settlement:
    """The settlement of half-open day windows (name -> (start, end)); raises
    ``UnsettledFeaturesError`` unless ``allow`` when one holds a day before the first settled
    day. With ``as_of`` the message names the first as-of date whose windows are settled."""
    first = first_settled_day(history_start, delay_days)
    unsettled = {}
    for name, (start, end) in windows.items():
        if start < first:
            last = min(end - timedelta(days=1), first - timedelta(days=1))
            unsettled[name] = (start.isoformat(), last.isoformat())
    result = Settlement(history_start, first, lookback_days(delay_days), unsettled, allow)
    if unsettled and not allow:
        earliest = min(start for start, _ in windows.values())
        later = first - earliest
        when = f"as of {as_of + later} or later" if as_of else f"{later.days} day(s) later"
        raise UnsettledFeaturesError(
            f"{result.describe()}. Train {when} (same window), or set "
            "allow_unsettled_features to train anyway (the decision then needs review)"
        )
    return result
