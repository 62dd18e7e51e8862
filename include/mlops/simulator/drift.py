"""Drift scenarios: something real for the monitoring and retraining loop to detect.

Each scenario changes only days from ``drift_start_day`` on, and draws its own randomness
from a dedicated stream, so that for the same seed every earlier day is identical to the run
without drift.
"""

from __future__ import annotations

import numpy as np

from mlops.simulator.config import SECONDS_PER_DAY, SimulationConfig
from mlops.simulator.fraud import mark
from mlops.simulator.transactions import GroupIndex, TransactionArrays

NEW_PATTERN_SCENARIO = 4
NEW_PATTERN_CUSTOMERS_PER_DAY = 10
NEW_PATTERN_DAYS = 7
NEW_PATTERN_SHARE_DIVISOR = 2  # floor(n / 2): "a half" of the pooled transactions
NEW_PATTERN_AMOUNT = (1.0, 20.0)
NIGHT_END_S = 6 * 3600  # 00:00:00 to 05:59:59


def amount_multiplier(config: SimulationConfig) -> np.ndarray:
    """Per-day factor on every customer's mean (and sd) of amount: covariate drift."""
    factor = np.ones(config.n_days)
    if config.drift == "amount_shift":
        factor[config.drift_start_day :] = config.drift_factor
    return factor


def new_fraud_pattern(
    tx: TransactionArrays, config: SimulationConfig, rng: np.random.Generator
) -> None:
    """Scenario 4: small night-time frauds on freshly compromised cards: concept drift.

    The handbook's features and a model trained before the start day see these as ordinary
    small purchases, so its delayed-label performance falls until it is retrained.
    """
    if config.drift != "new_fraud_pattern":
        return
    index = GroupIndex.build(tx.customer, config.n_customers)
    picks = min(NEW_PATTERN_CUSTOMERS_PER_DAY, config.n_customers)
    for d in range(config.drift_start_day, config.n_days):
        customers = rng.choice(config.n_customers, size=picks, replace=False)
        pool = index.rows_in_window(customers, tx.day, d, d + NEW_PATTERN_DAYS)
        chosen = rng.choice(pool, size=len(pool) // NEW_PATTERN_SHARE_DIVISOR, replace=False)
        low, high = NEW_PATTERN_AMOUNT
        tx.amount[chosen] = np.round(rng.uniform(low, high, len(chosen)), 2)
        night = rng.integers(0, NIGHT_END_S, len(chosen))
        tx.seconds[chosen] = tx.day[chosen] * SECONDS_PER_DAY + night
        mark(tx, chosen, NEW_PATTERN_SCENARIO)
