"""The day windows of a training run, all derived from its logical date D.

Labels mature ``delay`` days after the transaction, so the days whose labels are known at D
are those before ``D - delay``. A run holds out the most recent of them for evaluation.

Two placements of the training days before that held-out week:

- **routine** (the default): the days matured when the held-out window starts, which leaves
  the delay as a gap between the two, as deployment will (the handbook's protocol: train 7,
  skip 7, test 7). Its last training day is ``D - delay - eval - delay``: 21 days before D.
- **after a breach** (``since`` given: the first data day of a breach): no gap, the training
  days run up to the held-out week, ``[D - delay - eval - (window - eval), D - delay - eval)``.
  A routine run as of a breach would have trained 21 days back, before the new data began,
  and a candidate blind to the change cannot pass a gate judged on it. Dropping the gap is
  honest: every training label is matured at D, no row of the held-out week is trained on,
  and the known-card removal keeps its delay rule (``mlops.evaluation.history``: on test day
  T only frauds of days before ``T - delay`` count as known, so a fraud of the last training
  days does not remove its card early). What it gives up is the deployment-like lag between
  the last label and the judged days (the candidate is judged on the week right after its
  data); the champion is judged on the same rows. The run is worth asking for once its
  training days hold ``n`` days from ``since`` on: as of ``ready_day(since, n, ...)``.

No pandas here: a DAG's parameters, the retrain policy and the tracking code use these
without the data stack.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any, NamedTuple


class Window(NamedTuple):
    """Days ``[start, end)``."""

    start: date
    end: date

    def to_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


DEFAULT_WINDOW_DAYS = 21  # matured days a training run reads: training, 7-day gap, evaluation


def training_window(as_of: date, window_days: int, delay_days: int = 7) -> Window:
    """The last ``window_days`` whose labels are known at ``as_of``."""
    if window_days < 1 or delay_days < 0:
        raise ValueError("window_days must be >= 1 and delay_days >= 0")
    end = as_of - timedelta(days=delay_days)
    return Window(end - timedelta(days=window_days), end)


def evaluation_window(as_of: date, eval_days: int, delay_days: int = 7) -> Window:
    """The most recent matured days, held out; train on ``training_window(<its start>, n,
    delay)``, which leaves the delay as a gap between the two, as deployment will."""
    return training_window(as_of, eval_days, delay_days)


@dataclass(frozen=True)
class DataWindow:
    """A run's training and evaluation days, half-open ``[start, end)`` each."""

    train_start: date
    train_end: date
    eval_start: date
    eval_end: date
    label_delay_days: int

    def to_params(self) -> dict[str, Any]:
        """The window as run parameters (ISO days, the delay and the training length)."""
        days = {k: v.isoformat() for k, v in asdict(self).items() if k != "label_delay_days"}
        window_days = (self.train_end - self.train_start).days
        gap_days = (self.eval_start - self.train_end).days
        return days | {
            "label_delay_days": self.label_delay_days,
            "window_days": window_days,
            "gap_days": gap_days,
        }


def data_window(
    as_of: date,
    window_days: int,
    eval_days: int,
    delay_days: int = 7,
    *,
    gap: bool = True,
) -> DataWindow:
    """The run's days: the held-out ``eval_days`` most recent matured days, and the training
    days before them (after the delay gap, or right up to them with ``gap=False``), all
    within the ``window_days`` matured days before ``as_of - delay``."""
    gap_days = delay_days if gap else 0
    train_days = window_days - gap_days - eval_days
    if eval_days < 1 or train_days < 1:
        raise ValueError(
            f"window_days={window_days} leaves {train_days} training days after "
            f"{eval_days} evaluation days and a {gap_days}-day label gap"
        )
    held_out = evaluation_window(as_of, eval_days, delay_days)
    training = training_window(held_out.start, train_days, gap_days)
    return DataWindow(training.start, training.end, held_out.start, held_out.end, delay_days)


def days_since(window: Window | tuple[date, date], since: date) -> int:
    """How many days of ``[start, end)`` are on or after ``since``."""
    start, end = window
    return max(0, (end - max(start, since)).days)


def ready_day(since: date, days: int, eval_days: int = 7, delay_days: int = 7) -> date:
    """The first as-of date whose gapless training days (``data_window(..., gap=False)``)
    hold ``days`` days from ``since`` on: ``since + days + eval_days + delay_days``."""
    return since + timedelta(days=days + eval_days + delay_days)
