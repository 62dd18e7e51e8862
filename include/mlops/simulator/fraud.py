"""The handbook's three fraud scenarios, applied in its order.

Order matters: scenario 1 (amount > 220) is decided on genuine amounts, before scenario 3
multiplies some amounts by 5; a later scenario overwrites the label of an earlier one, and a
transaction picked by scenario 3 on two overlapping days is multiplied twice, as in the book.
"""

from __future__ import annotations

import numpy as np

from mlops.simulator.transactions import GroupIndex, TransactionArrays

AMOUNT_THRESHOLD = 220.0
TERMINALS_PER_DAY = 2
TERMINAL_DAYS = 28
CUSTOMERS_PER_DAY = 3
CUSTOMER_DAYS = 14
CUSTOMER_SHARE_DIVISOR = 3  # floor(n / 3) of the pooled transactions
CARD_MULTIPLIER = 5.0


def mark(tx: TransactionArrays, rows: np.ndarray, scenario: int) -> None:
    tx.fraud[rows] = 1
    tx.scenario[rows] = scenario


def large_amounts(tx: TransactionArrays) -> None:
    """Scenario 1: every amount above the threshold is fraud."""
    mark(tx, np.flatnonzero(tx.amount > AMOUNT_THRESHOLD), 1)


def compromised_terminals(
    tx: TransactionArrays, n_terminals: int, n_days: int, rng: np.random.Generator
) -> None:
    """Scenario 2: each day 2 terminals turn every transaction fraud for 28 days."""
    index = GroupIndex.build(tx.terminal, n_terminals)
    picks = min(TERMINALS_PER_DAY, n_terminals)
    for d in range(n_days):
        terminals = rng.choice(n_terminals, size=picks, replace=False)
        mark(tx, index.rows_in_window(terminals, tx.day, d, d + TERMINAL_DAYS), 2)


def compromised_cards(
    tx: TransactionArrays, n_customers: int, n_days: int, rng: np.random.Generator
) -> None:
    """Scenario 3: each day 3 cards have a third of their next 14 days' spending inflated x5."""
    index = GroupIndex.build(tx.customer, n_customers)
    picks = min(CUSTOMERS_PER_DAY, n_customers)
    for d in range(n_days):
        customers = rng.choice(n_customers, size=picks, replace=False)
        pool = index.rows_in_window(customers, tx.day, d, d + CUSTOMER_DAYS)
        chosen = rng.choice(pool, size=len(pool) // CUSTOMER_SHARE_DIVISOR, replace=False)
        tx.amount[chosen] = np.round(tx.amount[chosen] * CARD_MULTIPLIER, 2)
        mark(tx, chosen, 3)
