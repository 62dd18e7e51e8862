"""SQL for one day: the features of its transactions, and the day-end snapshots.

The one-pass window query evaluates every frame of every row it reads; a daily run reads
38 days to score one, so it would do 38 times the work it keeps. Here only the day's rows
are anchors: the handbook windows become a range join of the anchors with the history,
and the ``daily`` windows become per-entity sums over whole previous days, the very
aggregates of the day-end snapshot that the online store serves. Both end in
``features_sql.final_select``, the same expressions as the one-pass query, and the tests
hold the two paths equal on every row.
"""

from __future__ import annotations

from mlops.features.sql import (
    EPOCH_SQL,
    EVENT_TIMESTAMP,
    TERMINAL_FEATURES,
    WINDOWS,
    Definition,
    base_sql,
    check_definition,
    final_select,
    risk_sql,
)

# What the online store holds per entity for the ``daily`` definition, as of the end of a
# day A, for the requests of day A + 1. The customer snapshot keeps sufficient statistics
# (count and integer cents of the days [A + 1 - n, A]); the request adds its own transaction.
# The terminal snapshot holds the final features: they do not depend on the request.
SNAPSHOT_DAY = "SNAPSHOT_DAY"
CUSTOMER_SNAPSHOT_COLUMNS: tuple[str, ...] = tuple(
    name
    for n in WINDOWS
    for name in (f"CUSTOMER_ID_PREV_NB_TX_{n}DAY", f"CUSTOMER_ID_PREV_CENTS_{n}DAY")
)
TERMINAL_SNAPSHOT_COLUMNS: tuple[str, ...] = TERMINAL_FEATURES
ENTITY_KEYS: dict[str, str] = {"customer": "CUSTOMER_ID", "terminal": "TERMINAL_ID"}


def previous_days_sql(entity: str, as_of: int, delay_days: int) -> str:
    """Per-entity aggregates of the whole days that a request of day ``as_of + 1`` may use.

    Customer: days ``[as_of + 1 - n, as_of]``; terminal: ``[as_of + 1 - d - n, as_of - d]``.
    An entity seen only on the day just before its longest window still gets a row, of
    zeros: that row is what tells an online store the window has emptied.
    """
    longest = max(WINDOWS)
    if entity == "customer":
        last, prefix, value = as_of, "_c", ("_cents", "cents")
    elif entity == "terminal":
        last, prefix, value = as_of - delay_days, "_t", ("TX_FRAUD", "fraud")
    else:
        raise ValueError(f"entity must be one of {tuple(ENTITY_KEYS)}, got {entity!r}")
    columns = []
    for n in WINDOWS:
        inside = f"FILTER (WHERE _day > {last - n})"
        columns += [
            f"count(*) {inside} AS {prefix}_nb_{n}",
            f"CAST(coalesce(sum({value[0]}) {inside}, 0) AS BIGINT) AS {prefix}_{value[1]}_{n}",
        ]
    return f"""SELECT {ENTITY_KEYS[entity]}, {", ".join(columns)}
  FROM base WHERE _day BETWEEN {last - longest} AND {last}
  GROUP BY {ENTITY_KEYS[entity]}"""


def _handbook_joins(day_number: int, delay_days: int) -> str:
    """Anchors joined with the history they see, one aggregate per window edge; the day
    bounds on ``h`` only prune rows the time bounds would drop anyway."""
    d, longest, a = delay_days, max(WINDOWS), day_number
    customer, terminal = [], []
    for n in WINDOWS:
        since = f"FILTER (WHERE h.TX_DATETIME > a.TX_DATETIME - INTERVAL {n} DAY)"
        customer += [
            f"count(*) {since} AS _c_nb_{n}",
            f"CAST(coalesce(sum(h._cents) {since}, 0) AS BIGINT) AS _c_cents_{n}",
        ]
        since = f"FILTER (WHERE h.TX_DATETIME > a.TX_DATETIME - INTERVAL {d + n} DAY)"
        terminal += [
            f"count(*) {since} AS _t_nb_{n}",
            f"CAST(coalesce(sum(h.TX_FRAUD) {since}, 0) AS BIGINT) AS _t_fraud_{n}",
        ]
    return f"""customer AS (
  SELECT a._anchor, {", ".join(customer)}
  FROM anchors a JOIN base h ON h.CUSTOMER_ID = a.CUSTOMER_ID
    AND h._day BETWEEN {a - longest} AND {a}
    AND h.TX_DATETIME > a.TX_DATETIME - INTERVAL {longest} DAY
    AND h.TX_DATETIME <= a.TX_DATETIME
  GROUP BY a._anchor
), terminal AS (
  SELECT a._anchor, {", ".join(terminal)}
  FROM anchors a JOIN base h ON h.TERMINAL_ID = a.TERMINAL_ID
    AND h._day BETWEEN {a - d - longest} AND {a - d}
    AND h.TX_DATETIME > a.TX_DATETIME - INTERVAL {d + longest} DAY
    AND h.TX_DATETIME <= a.TX_DATETIME - INTERVAL {d} DAY
  GROUP BY a._anchor
)"""


def day_feature_sql(
    source: str, day_number: int, *, definition: Definition, delay_days: int
) -> str:
    """``OUTPUT_COLUMNS`` for the transactions of day ``day_number`` (days since ``EPOCH``)."""
    check_definition(definition, delay_days)
    aggregates = [
        f"coalesce({prefix}_{kind}_{n}, 0) AS {prefix}_{kind}_{n}"
        for prefix, kinds in (("_c", ("nb", "cents")), ("_t", ("nb", "fraud")))
        for n in WINDOWS
        for kind in kinds
    ]
    if definition == "handbook":
        joins, keys = _handbook_joins(day_number, delay_days), ("_anchor", "_anchor")
    else:
        yesterday = day_number - 1
        joins = (
            f"customer AS ({previous_days_sql('customer', yesterday, delay_days)}), "
            f"terminal AS ({previous_days_sql('terminal', yesterday, delay_days)})"
        )
        keys = ("CUSTOMER_ID", "TERMINAL_ID")
    return f"""
WITH {base_sql(source)},
anchors AS (SELECT *, row_number() OVER () AS _anchor FROM base WHERE _day = {day_number}),
{joins},
windowed AS (
  SELECT anchors.*, {", ".join(aggregates)}
  FROM anchors
  LEFT JOIN customer USING ({keys[0]})
  LEFT JOIN terminal USING ({keys[1]})
)
{final_select("windowed", definition)}"""


def snapshot_sql(source: str, entity: str, day_number: int, *, delay_days: int = 7) -> str:
    """Per-entity snapshot as of the end of day ``day_number``, for the next day's requests.

    ``event_timestamp`` is the start of the next day, when the snapshot becomes true: a
    point-in-time join matches every transaction of that day to it and to nothing later.
    ``SNAPSHOT_DAY`` is an ISO string because Feast has no date type.
    """
    check_definition("daily", delay_days)
    key = ENTITY_KEYS.get(entity, "")
    if entity == "customer":
        columns = [
            f"_c_nb_{n} AS CUSTOMER_ID_PREV_NB_TX_{n}DAY, "
            f"_c_cents_{n} AS CUSTOMER_ID_PREV_CENTS_{n}DAY"
            for n in WINDOWS
        ]
    else:
        columns = [
            f"_t_nb_{n} AS TERMINAL_ID_NB_TX_{n}DAY_WINDOW, "
            f"{risk_sql(f'_t_fraud_{n}', f'_t_nb_{n}')} AS TERMINAL_ID_RISK_{n}DAY_WINDOW"
            for n in WINDOWS
        ]
    return f"""
WITH {base_sql(source)}, aggregates AS ({previous_days_sql(entity, day_number, delay_days)})
SELECT {key}, CAST({EPOCH_SQL} + {day_number} AS VARCHAR) AS {SNAPSHOT_DAY},
    {", ".join(columns)},
    CAST(CAST({EPOCH_SQL} + {day_number + 1} AS TIMESTAMP) AS TIMESTAMPTZ)
        AS {EVENT_TIMESTAMP}
FROM aggregates
ORDER BY {key}
"""
