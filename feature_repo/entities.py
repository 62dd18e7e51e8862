"""The two things the fraud features describe: a card (customer) and a terminal.

The join keys are the transaction table's own column names, so an entity row for Feast is
a transaction row as it is, in training (historical retrieval) and in serving alike.
"""

from __future__ import annotations

from feast import Entity, ValueType

OWNER = "ml-platform"

customer = Entity(
    name="customer",
    join_keys=["CUSTOMER_ID"],
    value_type=ValueType.INT64,
    description="A payment card; the simulator calls its holder a customer.",
    tags={"domain": "payments"},
    owner=OWNER,
)

terminal = Entity(
    name="terminal",
    join_keys=["TERMINAL_ID"],
    value_type=ValueType.INT64,
    description="A point-of-sale terminal where a card is used.",
    tags={"domain": "payments"},
    owner=OWNER,
)
