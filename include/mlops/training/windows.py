"""The day windows of a training run, all derived from its logical date D.

Labels mature ``delay`` days after the transaction, so the days whose labels are known at D
are those before ``D - delay``. A run holds out the most recent of them for evaluation and
trains on the days matured when the held-out window starts, which leaves the delay as a gap
between the two, as deployment will (the handbook's protocol: train 7, skip 7, test 7).
No pandas here: a DAG's parameters and the tracking code use these without the data stack.
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
        return days | {"label_delay_days": self.label_delay_days, "window_days": window_days}
