"""What a simulation run is: one frozen, validated configuration.

The configuration travels with the data (``_scenario.json`` in every landing partition), so
a reader of a partition can always tell which process, drift and seed produced it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

DRIFT_SCENARIOS: tuple[str, ...] = ("none", "amount_shift", "new_fraud_pattern")

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class SimulationConfig:
    """Defaults reproduce the handbook's data set; the drift fields are ours.

    ``drift_start_day`` is a 0-based day index from ``start_date``: days before it are
    identical, for the same seed, to the run without drift, which is what lets a test (and
    the monitoring demo) attribute every difference to the drift.
    """

    n_customers: int = 5_000
    n_terminals: int = 10_000
    n_days: int = 183
    start_date: dt.date = dt.date(2018, 4, 1)
    radius: float = 5.0
    seed: int = 0
    drift: str = "none"
    drift_start_day: int = 120
    drift_factor: float = 1.6

    def __post_init__(self) -> None:
        for name in ("n_customers", "n_terminals", "n_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.radius <= 0:
            raise ValueError(f"radius must be > 0, got {self.radius}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.drift not in DRIFT_SCENARIOS:
            raise ValueError(f"drift must be one of {DRIFT_SCENARIOS}, got {self.drift!r}")
        if self.drift_start_day < 0:
            raise ValueError(f"drift_start_day must be >= 0, got {self.drift_start_day}")
        if self.drift_factor <= 0:
            raise ValueError(f"drift_factor must be > 0, got {self.drift_factor}")
        if not isinstance(self.start_date, dt.date) or isinstance(self.start_date, dt.datetime):
            raise ValueError(f"start_date must be a datetime.date, got {self.start_date!r}")

    def day(self, index: int) -> dt.date:
        """Calendar date of a 0-based day index."""
        return self.start_date + dt.timedelta(days=index)

    def day_index(self, day: dt.date) -> int:
        """0-based day index of a calendar date (may fall outside the simulated range)."""
        return (day - self.start_date).days

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, recorded with every landing partition."""
        return {**asdict(self), "start_date": self.start_date.isoformat()}
