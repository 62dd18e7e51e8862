"""When a breach began in data time, and whether a retraining could learn from it yet.

Pure, like the policy that calls it (``mlops.retraining.policy``): the summary of the day
and the earlier decisions in, a day or a reason out.

A breach period has a first data day, ``breach_since``, recorded on its first breaching
day and carried while the breach lasts, also across a new champion (the change is the
same). For a drift signal it is the monitored day itself. For a quality breach it is the
first of the trailing matured days of the breaching window whose own served AP is below
the expected AP by the margin (each of them, up to the newest: a change of the fraud shows
in every day since it began), else the newest matured day. On the demo's drift
(2018-06-25), the first breach (07-05, newest matured day 06-28) finds 06-25: the four days
from it sat at 0.50, 0.48, 0.40, 0.28 against a limit of 0.53, the day before at 0.77.
Daily AP on about 45 frauds is noisy (stable days ranged 0.51-0.77), so a dip right before
the change can move the estimate a day early; the gate still judges what the run learnt.

A run asked for after a breach trains right up to its held-out week
(``mlops.training.windows``), so as of D it holds ``D - delay - eval - since`` days of the
new data. Until that reaches the policy's ``post_breach_days``, the request is held, with
the day it will be asked in the reason: one asked earlier trains a candidate blind to the
change, which the gate cannot approve, and spends the cooldown and budget that the useful
request needs. A request asked before the breach's data was there (for staleness, or for an
earlier signal) did not learn from it either (``days_learnt``): it still counts in the
budget, but it does not start a cooldown against the breach's own request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from mlops.training.windows import data_window, days_since, ready_day


def _daily_ap(past: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> dict[str, float]:
    """The served AP of each matured day, from the earlier records and today's summary."""
    found = {}
    for record in past:
        signals = record.get("signals") or {}
        matured, newest = signals.get("matured"), signals.get("newest")
        if matured and newest and newest.get("average_precision") is not None:
            found[matured["day"]] = newest["average_precision"]
    newest = ((summary.get("quality") or {}).get("newest_day")) or {}
    if newest.get("day") and newest.get("average_precision") is not None:
        found[newest["day"]] = newest["average_precision"]
    return found


def breach_start(
    summary: Mapping[str, Any],
    past: Sequence[Mapping[str, Any]],
    day: date,
    breaches: Sequence[str],
    expected_ap: float | None,
    margin: float,
) -> date | None:
    """The first data day of the breach period ``day`` is in (None without a breach).

    Carried from the day before while the breach lasts (also across a new champion: the
    change is the same). A new period starts at the monitored day for a drift signal; for a
    quality breach at the first of the trailing matured days of the breaching window whose
    own AP is below the expected one by the margin, or at the newest matured day."""
    if not breaches:
        return None
    before = next((r for r in past if r["day"] == (day - timedelta(days=1)).isoformat()), None)
    if before and before.get("breach") and before.get("breach_since"):
        return date.fromisoformat(before["breach_since"])
    window = (summary.get("quality") or {}).get("window") or {}
    if not any(r.startswith("quality:") for r in breaches) or not window.get("end"):
        return day
    newest = date.fromisoformat(window["end"])
    if expected_ap is None:
        return newest
    limit, daily = expected_ap * (1 - margin), _daily_ap(past, summary)
    since, cursor = newest, newest
    while cursor.isoformat() >= window["start"] and daily.get(cursor.isoformat(), limit) < limit:
        since, cursor = cursor, cursor - timedelta(days=1)
    return since


def post_breach_hold(
    day: date, since: date | None, needed: int | None, eval_days: int, delay_days: int
) -> str | None:
    """Why a breach's request waits for its data (None once a run as of ``day`` trains on
    ``needed`` days from ``since`` on, or when nothing is needed)."""
    if since is None or needed is None:
        return None
    ready = ready_day(since, needed, eval_days, delay_days)
    if day >= ready:
        return None
    window = data_window(day, eval_days + needed, eval_days, delay_days, gap=False)
    held = days_since((window.train_start, window.train_end), since)
    return (
        f"post-breach data: a run as of {day} would train on {held} day(s) from the breach's "
        f"first data day {since} ({needed} needed); asks on {ready}"
    )


def days_learnt(request: Mapping[str, Any], since: date, eval_days: int, delay_days: int) -> int:
    """How many days from ``since`` on the run a past retrain ``request`` (a decision record)
    asked for trained on: up to its held-out week after a breach (``breach_since`` set),
    a label delay before it otherwise (``mlops.training.windows``)."""
    gap = 0 if request.get("breach_since") else delay_days
    end = date.fromisoformat(request["day"]) - timedelta(days=delay_days + eval_days + gap)
    return max(0, (end - since).days)
