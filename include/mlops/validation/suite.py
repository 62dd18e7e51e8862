"""The transactions expectation suite: one GX expectation (or two) per rule, named in its meta.

The rule name (``meta["rule"]``) is the contract with the rest of the pipeline: it is what a
quarantined row carries in ``_failed_rules``, what the report counts and what an operator
reads in the failure message. GX's own identifiers (type + kwargs) change with the
thresholds, the rule names do not. ``meta["scope"]`` says whether a failure condemns the rows
the rule's mask points at (``row``, see ``mlops.validation.rules``) or the whole day
(``batch``).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from mlops.schema import TRANSACTION_COLUMNS, TRANSACTION_DTYPES
from mlops.settings import ValidationRules
from mlops.validation.duplicates import DUPLICATE_COPY
from mlops.validation.rules import (
    BATCH,
    CONFLICTING_DUPLICATE_ID,
    ID_COLUMNS,
    IDS_NON_NEGATIVE,
    ROW,
    RULE,
    SCOPE,
    TX_AMOUNT_BELOW_CAP,
    TX_AMOUNT_NON_NEGATIVE,
    TX_DATETIME_IN_PARTITION_DAY,
    TX_FRAUD_IN_0_1,
    not_null_rule,
    partition_bounds,
    row_checks,
)

if TYPE_CHECKING:
    import great_expectations as gx

__all__ = [
    "BATCH",
    "CONFLICTING_DUPLICATE_ID",
    "DUPLICATE_COPY",
    "ID_COLUMNS",
    "IDS_NON_NEGATIVE",
    "ROW",
    "RULE",
    "SCOPE",
    "TX_AMOUNT_BELOW_CAP",
    "TX_AMOUNT_NON_NEGATIVE",
    "TX_DATETIME_IN_PARTITION_DAY",
    "TX_FRAUD_IN_0_1",
    "build_suite",
    "not_null_rule",
    "partition_bounds",
    "row_rules",
]

SUITE_NAME = "transactions"

# Batch-level rules: the day cannot be trusted as a whole.
COLUMNS_MATCH_SCHEMA = "columns_match_schema"
COLUMN_TYPES = "column_types"
ROW_COUNT_IN_BOUNDS = "row_count_in_bounds"
SCHEMA_RULES = (COLUMNS_MATCH_SCHEMA, COLUMN_TYPES)
# Not GX expectations: they judge the outcome of all the row rules together.
BAD_SHARE_WITHIN_TOLERANCE = "bad_share_within_tolerance"
BATCH_REJECTED = "batch_rejected"

# Ingestion leaves an integer column as pandas' nullable Int64 when a value was null, and
# GX only knows that dtype by its class name; the nulls themselves fail `<col>_not_null`.
_NULLABLE_TWIN = {"int64": "Int64Dtype", "float64": "Float64Dtype"}


def accepted_types(dtype: str) -> list[str]:
    """The dtype names GX may observe for a schema column without the schema being broken."""
    twin = _NULLABLE_TWIN.get(dtype)
    return [dtype, twin] if twin else [dtype]


def row_rules() -> tuple[str, ...]:
    """Every row-level rule name, so that reports list zero counts too."""
    names = [c.rule for c in row_checks(ValidationRules(), date(2000, 1, 1))]
    return (*dict.fromkeys(names), DUPLICATE_COPY)


def build_suite(rules: ValidationRules, day: date) -> gx.ExpectationSuite:
    """The suite for one daily partition; the thresholds come from ``rules``, the time window
    from ``day``, so the same code validates any day of a backfill."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    def meta(rule: str) -> dict[str, Any]:
        return {RULE: rule, SCOPE: BATCH}

    expectations: list[Any] = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(TRANSACTION_COLUMNS), exact_match=True, meta=meta(COLUMNS_MATCH_SCHEMA)
        ),
        gxe.ExpectTableRowCountToBeBetween(
            min_value=rules.min_rows, max_value=rules.max_rows, meta=meta(ROW_COUNT_IN_BOUNDS)
        ),
        *(
            gxe.ExpectColumnValuesToBeInTypeList(
                column=column, type_list=accepted_types(dtype), meta=meta(COLUMN_TYPES)
            )
            for column, dtype in TRANSACTION_DTYPES.items()
        ),
    ]
    for check in row_checks(rules, day):
        expectations += check.expectations()
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations)
