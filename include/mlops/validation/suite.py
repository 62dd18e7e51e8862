"""The transactions expectation suite: one GX expectation per rule, each named in its meta.

The rule name (``meta["rule"]``) is the contract with the rest of the pipeline: it is what a
quarantined row carries in ``_failed_rules``, what the report counts and what an operator
reads in the failure message. GX's own identifiers (type + kwargs) change with the
thresholds, the rule names do not. ``meta["scope"]`` says whether a failure condemns the rows
GX points at (``row``) or the whole day (``batch``).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from mlops.schema import TRANSACTION_COLUMNS, TRANSACTION_DTYPES
from mlops.settings import ValidationRules

if TYPE_CHECKING:
    import great_expectations as gx

SUITE_NAME = "transactions"
RULE = "rule"
SCOPE = "scope"
ROW = "row"
BATCH = "batch"

# Batch-level rules: the day cannot be trusted as a whole.
COLUMNS_MATCH_SCHEMA = "columns_match_schema"
COLUMN_TYPES = "column_types"
ROW_COUNT_IN_BOUNDS = "row_count_in_bounds"
SCHEMA_RULES = (COLUMNS_MATCH_SCHEMA, COLUMN_TYPES)
# Not GX expectations: they judge the outcome of all the row rules together.
BAD_SHARE_WITHIN_TOLERANCE = "bad_share_within_tolerance"
BATCH_REJECTED = "batch_rejected"

# Row-level rules.
TX_AMOUNT_NON_NEGATIVE = "tx_amount_non_negative"
TX_AMOUNT_BELOW_CAP = "tx_amount_below_cap"
IDS_NON_NEGATIVE = "ids_non_negative"
TRANSACTION_ID_UNIQUE = "transaction_id_unique"
TX_FRAUD_IN_0_1 = "tx_fraud_in_0_1"
TX_DATETIME_IN_PARTITION_DAY = "tx_datetime_in_partition_day"
ID_COLUMNS = ("TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID")

# Ingestion leaves an integer column as pandas' nullable Int64 when a value was null, and
# GX only knows that dtype by its class name; the nulls themselves fail `<col>_not_null`.
_NULLABLE_TWIN = {"int64": "Int64Dtype", "float64": "Float64Dtype"}


def not_null_rule(column: str) -> str:
    return f"{column.lower()}_not_null"


def accepted_types(dtype: str) -> list[str]:
    """The dtype names GX may observe for a schema column without the schema being broken."""
    twin = _NULLABLE_TWIN.get(dtype)
    return [dtype, twin] if twin else [dtype]


def partition_bounds(day: date) -> tuple[datetime, datetime]:
    """``[day 00:00, day+1 00:00)`` as naive UTC datetimes, the way TX_DATETIME is stored."""
    start = datetime.combine(day, time())
    return start, start + timedelta(days=1)


def row_rules() -> tuple[str, ...]:
    """Every row-level rule name, so that reports list zero counts too."""
    return (
        *(not_null_rule(c) for c in TRANSACTION_COLUMNS),
        TX_AMOUNT_NON_NEGATIVE,
        TX_AMOUNT_BELOW_CAP,
        IDS_NON_NEGATIVE,
        TRANSACTION_ID_UNIQUE,
        TX_FRAUD_IN_0_1,
        TX_DATETIME_IN_PARTITION_DAY,
    )


def build_suite(rules: ValidationRules, day: date) -> gx.ExpectationSuite:
    """The suite for one daily partition; the thresholds come from ``rules``, the time window
    from ``day``, so the same code validates any day of a backfill."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    def meta(rule: str, scope: str = ROW) -> dict[str, Any]:
        return {RULE: rule, SCOPE: scope}

    start, end = partition_bounds(day)
    expectations: list[Any] = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(TRANSACTION_COLUMNS),
            exact_match=True,
            meta=meta(COLUMNS_MATCH_SCHEMA, BATCH),
        ),
        gxe.ExpectTableRowCountToBeBetween(
            min_value=rules.min_rows,
            max_value=rules.max_rows,
            meta=meta(ROW_COUNT_IN_BOUNDS, BATCH),
        ),
    ]
    for column, dtype in TRANSACTION_DTYPES.items():
        expectations.append(
            gxe.ExpectColumnValuesToBeInTypeList(
                column=column, type_list=accepted_types(dtype), meta=meta(COLUMN_TYPES, BATCH)
            )
        )
        expectations.append(
            gxe.ExpectColumnValuesToNotBeNull(column=column, meta=meta(not_null_rule(column)))
        )
    expectations += [
        gxe.ExpectColumnValuesToBeBetween(
            column="TX_AMOUNT", min_value=0, meta=meta(TX_AMOUNT_NON_NEGATIVE)
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="TX_AMOUNT",
            max_value=rules.max_amount,
            strict_max=True,
            meta=meta(TX_AMOUNT_BELOW_CAP),
        ),
        *(
            gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, meta=meta(IDS_NON_NEGATIVE))
            for c in ID_COLUMNS
        ),
        # GX flags every row of a duplicated id (duplicated(keep=False)), not just the later
        # ones: we cannot tell which of two rows with one id is the real transaction.
        gxe.ExpectColumnValuesToBeUnique(column="TRANSACTION_ID", meta=meta(TRANSACTION_ID_UNIQUE)),
        gxe.ExpectColumnValuesToBeInSet(
            column="TX_FRAUD", value_set=[0, 1], meta=meta(TX_FRAUD_IN_0_1)
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="TX_DATETIME",
            min_value=start,
            max_value=end,
            strict_max=True,
            meta=meta(TX_DATETIME_IN_PARTITION_DAY),
        ),
    ]
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations)
