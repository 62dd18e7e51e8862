"""Genuine transactions, drawn for all customers and days at once.

The handbook loops over customers, days and transactions in Python (over a minute for the
defaults); here every draw is one array operation over the whole period, so the default run
takes about a second. The distributions are the handbook's, draw for draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlops.simulator.config import SECONDS_PER_DAY
from mlops.simulator.profiles import AvailableTerminals, CustomerProfiles

TIME_MEAN_S = SECONDS_PER_DAY / 2
TIME_SD_S = 20_000.0


@dataclass(frozen=True)
class TransactionArrays:
    """Column arrays in generation order (day-major, then customer).

    The fields are never rebound, but the fraud and drift stages fill ``seconds``,
    ``amount``, ``fraud`` and ``scenario`` in place before the frame is built, which avoids
    copying 1.7 million rows once per stage.
    """

    day: np.ndarray
    seconds: np.ndarray
    customer: np.ndarray
    terminal: np.ndarray
    amount: np.ndarray
    fraud: np.ndarray
    scenario: np.ndarray

    def __len__(self) -> int:
        return len(self.day)


def generate_transactions(
    customers: CustomerProfiles,
    available: AvailableTerminals,
    n_days: int,
    amount_multiplier: np.ndarray,
    rng: np.random.Generator,
) -> TransactionArrays:
    """Daily Poisson counts, then time, amount and terminal of each transaction.

    ``amount_multiplier`` (one value per day) scales a customer's mean and standard deviation
    of amount; it is 1 everywhere except under the ``amount_shift`` drift.
    """
    n_customers = len(customers.mean_amount)
    rates = np.where(available.counts > 0, customers.mean_nb_tx_per_day, 0.0)
    counts = rng.poisson(np.broadcast_to(rates, (n_days, n_customers))).ravel()
    day = np.repeat(np.repeat(np.arange(n_days, dtype=np.int64), n_customers), counts)
    customer = np.repeat(np.tile(np.arange(n_customers, dtype=np.int64), n_days), counts)

    # int() in the handbook truncates towards zero; a time outside (0, 86400) is dropped.
    time_of_day = np.trunc(rng.normal(TIME_MEAN_S, TIME_SD_S, len(day))).astype(np.int64)
    kept = (time_of_day > 0) & (time_of_day < SECONDS_PER_DAY)
    day, customer, time_of_day = day[kept], customer[kept], time_of_day[kept]

    mean = customers.mean_amount[customer] * amount_multiplier[day]
    std = customers.std_amount[customer] * amount_multiplier[day]
    amount = rng.normal(mean, std)
    negative = amount < 0
    amount[negative] = rng.uniform(0.0, 2.0 * mean[negative])
    amount = np.round(amount, 2)

    first = available.offsets[customer]
    terminal = available.terminals[first + rng.integers(0, available.counts[customer])]

    size = len(day)
    return TransactionArrays(
        day=day,
        seconds=day * SECONDS_PER_DAY + time_of_day,
        customer=customer,
        terminal=terminal,
        amount=amount,
        fraud=np.zeros(size, dtype=np.int64),
        scenario=np.zeros(size, dtype=np.int64),
    )


@dataclass(frozen=True)
class GroupIndex:
    """Row indices grouped by a key (customer or terminal), each group in row order.

    Rows are generated day-major, so within a group they are sorted by day and a day window
    is a binary search instead of a scan of all rows.
    """

    offsets: np.ndarray
    rows: np.ndarray

    @classmethod
    def build(cls, keys: np.ndarray, n_keys: int) -> GroupIndex:
        rows = np.argsort(keys, kind="stable")
        offsets = np.zeros(n_keys + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys, minlength=n_keys), out=offsets[1:])
        return cls(offsets=offsets, rows=rows)

    def rows_in_window(
        self, keys: np.ndarray, day: np.ndarray, first: int, stop: int
    ) -> np.ndarray:
        """Rows of the given keys whose day lies in ``[first, stop)``."""
        parts = []
        for key in keys:
            group = self.rows[self.offsets[key] : self.offsets[key + 1]]
            days = day[group]
            lo, hi = np.searchsorted(days, [first, stop], side="left")
            parts.append(group[lo:hi])
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
