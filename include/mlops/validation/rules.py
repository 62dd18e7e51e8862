"""The row rules, defined once: each check gives its GX expectation(s) and its numpy mask.

GX judges the batch (its verdict, results and Data Docs); the mask says which rows broke the
rule, vectorised, without GX's per-row index lists (``result_format=COMPLETE`` costs seconds
on a million rows and as much memory as the rows themselves). Both come from the same
``RowCheck``, and every run checks that they agree (``run._cross_check``): a rule GX fails
must have rows in its mask, and a rule GX passes must have none.

Nulls are outside the domain of every check but ``not_null``, as in GX. A range on
``TX_DATETIME`` is given to GX as the column's extremes (min >= start, max < end, the same
verdict): GX's row-wise range on ``datetime64[us]`` falls back to a Python call per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd

from mlops.schema import TRANSACTION_COLUMNS
from mlops.settings import ValidationRules

RULE = "rule"
SCOPE = "scope"
ROW = "row"
BATCH = "batch"

TX_AMOUNT_NON_NEGATIVE = "tx_amount_non_negative"
TX_AMOUNT_BELOW_CAP = "tx_amount_below_cap"
IDS_NON_NEGATIVE = "ids_non_negative"
CONFLICTING_DUPLICATE_ID = "conflicting_duplicate_id"
TX_FRAUD_IN_0_1 = "tx_fraud_in_0_1"
TX_DATETIME_IN_PARTITION_DAY = "tx_datetime_in_partition_day"
ID_COLUMNS = ("TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID")


def not_null_rule(column: str) -> str:
    return f"{column.lower()}_not_null"


def partition_bounds(day: date) -> tuple[datetime, datetime]:
    """``[day 00:00, day+1 00:00)`` as naive UTC datetimes, the way TX_DATETIME is stored."""
    start = datetime.combine(day, time())
    return start, start + timedelta(days=1)


@dataclass(frozen=True)
class RowCheck:
    """One row rule on one column: ``kind`` is not_null, between, in_set or unique."""

    rule: str
    column: str
    kind: str
    min_value: Any = None
    max_value: Any = None
    strict_max: bool = False
    value_set: tuple[Any, ...] = ()
    extremes: bool = False  # give GX the column's min/max instead of a per-row range

    def expectations(self) -> list[Any]:
        """The GX expectation(s) whose joint success means the mask is empty."""
        import great_expectations.expectations as gxe

        meta = {RULE: self.rule, SCOPE: ROW}
        column = self.column
        if self.kind == "not_null":
            return [gxe.ExpectColumnValuesToNotBeNull(column=column, meta=meta)]
        if self.kind == "in_set":
            values = list(self.value_set)
            return [gxe.ExpectColumnValuesToBeInSet(column=column, value_set=values, meta=meta)]
        if self.kind == "unique":
            return [gxe.ExpectColumnValuesToBeUnique(column=column, meta=meta)]
        if self.extremes:
            return [
                gxe.ExpectColumnMinToBeBetween(column=column, min_value=self.min_value, meta=meta),
                gxe.ExpectColumnMaxToBeBetween(
                    column=column,
                    max_value=self.max_value,
                    strict_max=self.strict_max,
                    meta=meta,
                ),
            ]
        bounds = {"min_value": self.min_value, "max_value": self.max_value}
        return [
            gxe.ExpectColumnValuesToBeBetween(
                column=column,
                **{k: v for k, v in bounds.items() if v is not None},
                strict_max=self.strict_max,
                meta=meta,
            )
        ]

    def mask(self, values: pd.Series) -> np.ndarray:
        """True where the row breaks the rule; ``values`` is the column."""
        if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iufM":
            return self._numpy_mask(values)
        present = values.notna().to_numpy(dtype=bool)
        if self.kind == "not_null":
            return ~present
        if self.kind == "in_set":
            inside = values.isin(list(self.value_set))
        elif self.kind == "unique":
            inside = ~values.duplicated(keep=False)
        else:
            inside = pd.Series(True, index=values.index)
            if self.min_value is not None:
                inside &= values >= self.min_value
            if self.max_value is not None:
                inside &= values < self.max_value if self.strict_max else values <= self.max_value
        return present & ~inside.to_numpy(dtype=bool, na_value=True)

    def _numpy_mask(self, values: pd.Series) -> np.ndarray:
        """``mask`` on a plain numpy column (the schema's dtypes), without pandas' Series
        arithmetic: an integer column has no nulls, NaN and NaT compare false."""
        array = values.to_numpy()
        kind = array.dtype.kind
        missing = None if kind in "iu" else (np.isnat(array) if kind == "M" else np.isnan(array))
        if self.kind == "not_null":
            return np.zeros(len(array), dtype=bool) if missing is None else missing
        if self.kind == "unique":
            outside = values.duplicated(keep=False).to_numpy(dtype=bool)
        elif self.kind == "in_set":
            outside = ~values.isin(list(self.value_set)).to_numpy(dtype=bool)
        else:
            outside = np.zeros(len(array), dtype=bool)
            if self.min_value is not None:
                outside |= array < _scalar(self.min_value, kind)
            if self.max_value is not None:
                bound = _scalar(self.max_value, kind)
                outside |= array >= bound if self.strict_max else array > bound
        return outside if missing is None else outside & ~missing


def _scalar(value: Any, kind: str) -> Any:
    """A bound in the column's terms: numpy compares datetime64 with datetime64 only."""
    return np.datetime64(value, "us") if kind == "M" else value


def row_checks(rules: ValidationRules, day: date) -> tuple[RowCheck, ...]:
    """Every row check of the suite for one day, thresholds from ``rules``."""
    start, end = partition_bounds(day)
    return (
        *(RowCheck(not_null_rule(c), c, "not_null") for c in TRANSACTION_COLUMNS),
        RowCheck(TX_AMOUNT_NON_NEGATIVE, "TX_AMOUNT", "between", min_value=0),
        RowCheck(
            TX_AMOUNT_BELOW_CAP, "TX_AMOUNT", "between", max_value=rules.max_amount, strict_max=True
        ),
        *(RowCheck(IDS_NON_NEGATIVE, c, "between", min_value=0) for c in ID_COLUMNS),
        # Exact copies are set aside before the suite (mlops.validation.duplicates), so an id
        # seen twice here is two different transactions: every copy is quarantined.
        RowCheck(CONFLICTING_DUPLICATE_ID, "TRANSACTION_ID", "unique"),
        RowCheck(TX_FRAUD_IN_0_1, "TX_FRAUD", "in_set", value_set=(0, 1)),
        RowCheck(
            TX_DATETIME_IN_PARTITION_DAY,
            "TX_DATETIME",
            "between",
            min_value=start,
            max_value=end,
            strict_max=True,
            extremes=True,
        ),
    )
