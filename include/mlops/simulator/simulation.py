"""``simulate``: profiles, genuine transactions, fraud, drift, then one sorted frame.

Every stage gets its own child of the seed (``SeedSequence.spawn``), so a stage that only
runs under a drift scenario cannot shift the random draws of the others: the same seed gives
the same days before the drift starts, whatever the scenario.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlops.schema import TRANSACTION_DTYPES
from mlops.simulator import drift, fraud
from mlops.simulator.config import SimulationConfig
from mlops.simulator.profiles import available_terminals, customer_profiles, terminal_profiles
from mlops.simulator.transactions import TransactionArrays, generate_transactions

_STREAMS = ("customers", "terminals", "transactions", "terminal_fraud", "card_fraud", "drift")


def _generators(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    return {
        name: np.random.default_rng(child) for name, child in zip(_STREAMS, children, strict=True)
    }


def simulate(config: SimulationConfig | None = None) -> pd.DataFrame:
    """The whole period as one frame with the columns and dtypes of ``TRANSACTION_DTYPES``.

    Rows are sorted by time and ``TRANSACTION_ID`` is the 0-based rank, as in the handbook.
    """
    config = config or SimulationConfig()
    rng = _generators(config.seed)
    customers = customer_profiles(config.n_customers, rng["customers"])
    terminals = terminal_profiles(config.n_terminals, rng["terminals"])
    available = available_terminals(customers, terminals, config.radius)
    tx = generate_transactions(
        customers, available, config.n_days, drift.amount_multiplier(config), rng["transactions"]
    )
    fraud.large_amounts(tx)
    fraud.compromised_terminals(tx, config.n_terminals, config.n_days, rng["terminal_fraud"])
    fraud.compromised_cards(tx, config.n_customers, config.n_days, rng["card_fraud"])
    drift.new_fraud_pattern(tx, config, rng["drift"])
    return _to_frame(tx, config)


def _to_frame(tx: TransactionArrays, config: SimulationConfig) -> pd.DataFrame:
    order = np.argsort(tx.seconds, kind="stable")
    start = np.datetime64(config.start_date.isoformat(), "us")
    frame = pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(len(tx), dtype=np.int64),
            "TX_DATETIME": start + tx.seconds[order].astype("timedelta64[s]"),
            "CUSTOMER_ID": tx.customer[order],
            "TERMINAL_ID": tx.terminal[order],
            "TX_AMOUNT": tx.amount[order],
            "TX_FRAUD": tx.fraud[order],
            "TX_FRAUD_SCENARIO": tx.scenario[order],
        },
        copy=False,  # the arrays are fresh; consolidating them would copy 100 MB for nothing
    )
    return frame.astype(TRANSACTION_DTYPES, copy=False)
