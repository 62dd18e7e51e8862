"""The model's 15 inputs and its label, by name, with nothing else to import.

Training, evaluation, the gate and the model service must agree on the exact columns the
model sees; keeping the list in a module without dependencies lets any of them (and the
tests) import it cheaply. The order is the handbook's and matches
``mlops.features.sql.FEATURE_COLUMNS``; a test keeps the two equal.
"""

from __future__ import annotations

WINDOWS: tuple[int, ...] = (1, 7, 30)

FEATURES: tuple[str, ...] = (
    "TX_AMOUNT",
    "TX_DURING_WEEKEND",
    "TX_DURING_NIGHT",
    *(
        name
        for n in WINDOWS
        for name in (f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW", f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW")
    ),
    *(
        name
        for n in WINDOWS
        for name in (f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW", f"TERMINAL_ID_RISK_{n}DAY_WINDOW")
    ),
)
LABEL = "TX_FRAUD"
