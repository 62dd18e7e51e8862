"""The feature views: a card's spending and a terminal's risk, as of the end of a day.

TTL is one day because a snapshot is valid for exactly the day after it: the point-in-time
join gives a transaction of day D the snapshot stamped D 00:00 (the end of D - 1) and never
an older one, so an older snapshot can never stand in for a missing day (serving refuses
such a row, and the training-set builder refuses an unpublished snapshot partition). An
entity absent from the snapshot had empty windows and reads as zeros on both sides; at
exactly midnight the join may reach the snapshot before, whose row for such an entity is
its row of zeros. Feast does not apply the TTL to online reads, so
``mlops.features.serving`` checks ``SNAPSHOT_DAY`` itself.

``SNAPSHOT_DAY`` is the day a row describes (ISO string: Feast has no date type). Counts and
cents are integers so that adding the request's own transaction reproduces the offline
features exactly (``mlops.features.sql``).
"""

from __future__ import annotations

from datetime import timedelta

from entities import OWNER, customer, terminal
from feast import FeatureView, Field
from feast.types import Float64, Int64, String
from sources import customer_snapshots, terminal_snapshots

WINDOWS = (1, 7, 30)
SNAPSHOT_TTL = timedelta(days=1)
TAGS = {"definition": "daily", "label_delay_days": "7", "team": "fraud"}

customer_daily_spending = FeatureView(
    name="customer_daily_spending",
    entities=[customer],
    ttl=SNAPSHOT_TTL,
    schema=[
        Field(name="CUSTOMER_ID", dtype=Int64),
        Field(name="SNAPSHOT_DAY", dtype=String, description="Day the row describes"),
        *(
            Field(name=f"CUSTOMER_ID_PREV_{kind}_{n}DAY", dtype=Int64, description=text)
            for n in WINDOWS
            for kind, text in (
                ("NB_TX", f"Transactions of the {n} whole days before the next day"),
                ("CENTS", f"Amount in cents of the {n} whole days before the next day"),
            )
        ),
    ],
    source=customer_snapshots,
    online=True,
    description=(
        "Card spending over 1, 7 and 30 whole days; at request time the transaction being "
        "scored is added to give CUSTOMER_ID_NB_TX_nDAY_WINDOW and _AVG_AMOUNT_nDAY_WINDOW."
    ),
    tags=TAGS,
    owner=OWNER,
)

terminal_daily_risk = FeatureView(
    name="terminal_daily_risk",
    entities=[terminal],
    ttl=SNAPSHOT_TTL,
    schema=[
        Field(name="TERMINAL_ID", dtype=Int64),
        Field(name="SNAPSHOT_DAY", dtype=String, description="Day the row describes"),
        *(
            field
            for n in WINDOWS
            for field in (
                Field(
                    name=f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW",
                    dtype=Int64,
                    description=f"Transactions of {n} whole days older than the label delay",
                ),
                Field(
                    name=f"TERMINAL_ID_RISK_{n}DAY_WINDOW",
                    dtype=Float64,
                    description=f"Fraud share of those {n} days (0 when there were none)",
                ),
            )
        ),
    ],
    source=terminal_snapshots,
    online=True,
    description=(
        "Terminal risk over 1, 7 and 30 whole days whose labels are known (older than the "
        "7-day delay); served as stored."
    ),
    tags=TAGS,
    owner=OWNER,
)
