"""The fraud features as DuckDB SQL: the window query, and what every way of computing shares.

``feature_sql`` is the one-pass query: RANGE window frames over every row it reads. A
backfill is the same query over a range's inputs, filtered to the range. A daily run
computes only its own day (``features_sql_day``) but ends in the same ``final_select``, so
the features are the same expressions whichever way their window aggregates were found;
the tests hold the paths equal row for row.

Two definitions share the handbook's 15 column names:

* ``handbook``: the book's windows, anchored at the transaction time ``t`` (microsecond
  timestamps). Customer windows are ``(t - n days, t]``: the left end is open, and every
  transaction of the customer at exactly ``t`` is included, the current one and its peers
  alike (a RANGE frame includes peers; the book's pandas ``rolling`` would include only the
  peers sorted before the row, which makes the value depend on row order). Terminal windows
  are ``(t - (d + n) days, t - d days]`` with ``d`` the label delay.
* ``daily`` (the default, and the one trained and served): whole calendar days before the
  transaction's day ``D``. Customer windows are the days ``[D - n, D - 1]`` plus the current
  transaction itself; terminal windows are the days ``[D - d - n, D - d - 1]``. Everything but
  the current transaction is known at the end of ``D - 1``, which is what an online store
  materialised once a day holds, so a request can be scored with exactly the training values
  (see ``mlops.features.serving``).

Amounts are aggregated as integer cents (``floor(amount * 100 + 0.5)``): an integer sum does
not depend on the order of addition, so DuckDB, pandas, a daily run, the one-pass query and
the request-time code all produce the same bits. A mean is one division of two exact
integers, ``cents / (100 * count)``; a risk is ``frauds / count``, 0 when the window is empty.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from mlops.features.names import WINDOWS

Definition = Literal["handbook", "daily"]
DEFINITIONS: tuple[Definition, ...] = ("handbook", "daily")
# Days are numbered from EPOCH in the SQL (``_day``) and in the Python that builds it.
EPOCH = date(1970, 1, 1)
EPOCH_SQL = f"DATE '{EPOCH.isoformat()}'"

KEY_COLUMNS: tuple[str, ...] = (
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_FRAUD",
)
CUSTOMER_FEATURES: tuple[str, ...] = tuple(
    name
    for n in WINDOWS
    for name in (f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW", f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW")
)
TERMINAL_FEATURES: tuple[str, ...] = tuple(
    name
    for n in WINDOWS
    for name in (f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW", f"TERMINAL_ID_RISK_{n}DAY_WINDOW")
)
FEATURE_COLUMNS: tuple[str, ...] = (
    "TX_AMOUNT",
    "TX_DURING_WEEKEND",
    "TX_DURING_NIGHT",
    *CUSTOMER_FEATURES,
    *TERMINAL_FEATURES,
)
EVENT_TIMESTAMP = "event_timestamp"
OUTPUT_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *FEATURE_COLUMNS, EVENT_TIMESTAMP)

# The validated columns the features read, with their SQL types (the lineage columns are
# never needed); casting them pins the output schema whatever the input file's physical types.
INPUT_TYPES: dict[str, str] = {
    "TRANSACTION_ID": "BIGINT",
    "TX_DATETIME": "TIMESTAMP",
    "CUSTOMER_ID": "BIGINT",
    "TERMINAL_ID": "BIGINT",
    "TX_AMOUNT": "DOUBLE",
    "TX_FRAUD": "BIGINT",
}
INPUT_COLUMNS: tuple[str, ...] = tuple(INPUT_TYPES)

CENTS_SQL = "CAST(floor(TX_AMOUNT * 100 + 0.5) AS BIGINT)"
DAY_NUMBER_SQL = f"date_diff('day', {EPOCH_SQL}, CAST(TX_DATETIME AS DATE))"


def day_number(day: date) -> int:
    """The number of ``day`` in the SQL's count of days (``_day``): days since EPOCH."""
    return (day - EPOCH).days


def lookback_days(delay_days: int) -> int:
    """How many days before ``D`` the features of ``D`` can reach, in both definitions."""
    return delay_days + max(WINDOWS)


def check_definition(definition: str, delay_days: int) -> None:
    if definition not in DEFINITIONS:
        raise ValueError(f"definition must be one of {DEFINITIONS}, got {definition!r}")
    if delay_days < 0:
        raise ValueError(f"delay_days must be >= 0, got {delay_days}")


def base_sql(source: str) -> str:
    """The input typed as the schema says, plus integer cents and the day number."""
    typed = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in INPUT_TYPES.items())
    return f"""base AS (
  SELECT *, {CENTS_SQL} AS _cents, {DAY_NUMBER_SQL} AS _day
  FROM (SELECT {typed} FROM {source})
)"""


def risk_sql(frauds: str, count: str) -> str:
    return (
        f"CASE WHEN {count} = 0 THEN CAST(0 AS DOUBLE) "
        f"ELSE CAST({frauds} AS DOUBLE) / CAST({count} AS DOUBLE) END"
    )


def final_select(relation: str, definition: str, where: str | None = None) -> str:
    """``OUTPUT_COLUMNS`` from a relation holding the base columns and, per window n, the
    aggregates ``_c_nb_n``, ``_c_cents_n`` (customer) and ``_t_nb_n``, ``_t_fraud_n``
    (terminal). Every way of computing the aggregates ends here, so the features are the
    same expressions whatever produced their inputs."""
    own = 1 if definition == "daily" else 0  # daily customer windows stop the day before
    features = []
    for n in WINDOWS:
        count = f"(_c_nb_{n} + {own})"
        features += [
            f"{count} AS CUSTOMER_ID_NB_TX_{n}DAY_WINDOW",
            f"CAST(_c_cents_{n} + {own} * _cents AS DOUBLE) / CAST(100 * {count} AS DOUBLE) "
            f"AS CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW",
        ]
    for n in WINDOWS:
        features += [
            f"_t_nb_{n} AS TERMINAL_ID_NB_TX_{n}DAY_WINDOW",
            f"{risk_sql(f'_t_fraud_{n}', f'_t_nb_{n}')} AS TERMINAL_ID_RISK_{n}DAY_WINDOW",
        ]
    sep = ",\n    "
    return f"""SELECT {", ".join(KEY_COLUMNS)}, TX_AMOUNT,
    CAST(isodow(TX_DATETIME) >= 6 AS BIGINT) AS TX_DURING_WEEKEND,
    CAST(hour(TX_DATETIME) <= 6 AS BIGINT) AS TX_DURING_NIGHT,
    {sep.join(features)},
    CAST(TX_DATETIME AS TIMESTAMPTZ) AS {EVENT_TIMESTAMP}
FROM {relation}
{f"WHERE {where}" if where else ""}
ORDER BY TX_DATETIME, TRANSACTION_ID
"""


def _since(days: int) -> str:
    """An interval that makes a RANGE frame start strictly after ``t - days`` (us data)."""
    return f"(INTERVAL {days} DAY - INTERVAL 1 MICROSECOND)"


def _windows(definition: str, delay_days: int) -> list[str]:
    d = delay_days
    clauses = []
    for n in WINDOWS:
        if definition == "handbook":
            order = "TX_DATETIME"
            customer = f"{_since(n)} PRECEDING AND CURRENT ROW"
            terminal = f"{_since(d + n)} PRECEDING AND INTERVAL {d} DAY PRECEDING"
        else:
            order = "_day"
            customer = f"{n} PRECEDING AND 1 PRECEDING"
            terminal = f"{d + n} PRECEDING AND {d + 1} PRECEDING"
        clauses.append(
            f"c{n} AS (PARTITION BY CUSTOMER_ID ORDER BY {order} RANGE BETWEEN {customer})"
        )
        clauses.append(
            f"t{n} AS (PARTITION BY TERMINAL_ID ORDER BY {order} RANGE BETWEEN {terminal})"
        )
    return clauses


def feature_sql(
    source: str,
    *,
    definition: Definition = "daily",
    delay_days: int = 7,
    where: str | None = None,
) -> str:
    """The one-pass SELECT: window functions over every row of ``source``.

    ``source`` is any relation with ``INPUT_COLUMNS`` (a table, a view, ``read_parquet(...)``);
    ``where`` filters the output after the windows, so filtered rows still count in them. The
    connection's TimeZone must be UTC for ``event_timestamp`` to be labelled UTC.
    """
    check_definition(definition, delay_days)
    aggregates = []
    for n in WINDOWS:
        aggregates += [
            f"count(*) OVER c{n} AS _c_nb_{n}",
            f"CAST(coalesce(sum(_cents) OVER c{n}, 0) AS BIGINT) AS _c_cents_{n}",
            f"count(*) OVER t{n} AS _t_nb_{n}",
            f"CAST(coalesce(sum(TX_FRAUD) OVER t{n}, 0) AS BIGINT) AS _t_fraud_{n}",
        ]
    sep = ",\n    "
    return f"""
WITH {base_sql(source)}, windowed AS (
  SELECT *,
    {sep.join(aggregates)}
  FROM base
  WINDOW {sep.join(_windows(definition, delay_days))}
)
{final_select("windowed", definition, where)}"""
