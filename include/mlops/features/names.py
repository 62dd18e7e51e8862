"""The model's 15 inputs, its label, the feature windows and the feature service, by name,
with nothing else to import.

Training, evaluation, the gate and the model service must agree on the exact columns the
model sees; keeping the list in a module without dependencies lets any of them (and the
tests) import it cheaply. The order is the handbook's and matches
``mlops.features.sql.FEATURE_COLUMNS``; a test keeps the two equal. ``feature_repo/``
keeps its own copies of ``WINDOWS`` and ``FEATURE_SERVICE`` (Feast definitions do not import
``mlops``); tests/feature_repo holds them equal.
"""

from __future__ import annotations

WINDOWS: tuple[int, ...] = (1, 7, 30)  # days; every window feature exists once per window
# The Feast feature service a model is trained and served through; a model records it.
FEATURE_SERVICE = "fraud_model_v1"

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
