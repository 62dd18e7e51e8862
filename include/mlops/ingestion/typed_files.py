"""A typed landing file (Parquet) held against the schema, column by column, in Arrow.

A Parquet column carries its type, so a column whose type is not the schema's is a broken
contract, not a few bad values: ``TX_AMOUNT`` written as text (``"1,234.56"``) or
``TX_FRAUD`` written as double would otherwise be coerced, and the values that do not fit
(the large amounts, that is the scenario-1 frauds) would leave the data one row at a time.
So the file is refused whole, naming the column, the type found and the type expected.

Accepted are the types that convert to the schema's without changing a value: any integer
type for an integer column (an overflow is refused), any float, integer or decimal for
``TX_AMOUNT``, any timestamp for ``TX_DATETIME`` (time zones converted to naive UTC,
sub-microsecond digits truncated), and an all-null column (its rows then fail the not-null
rule). Text, dates without time, floats for integers and anything else are refused.
"""

from __future__ import annotations

import pyarrow as pa

from mlops.ingestion.errors import COLUMN_TYPES, LandingFileError
from mlops.schema import TRANSACTION_DTYPES

ARROW_TYPES: dict[str, pa.DataType] = {
    "int64": pa.int64(),
    "float64": pa.float64(),
    "datetime64[us]": pa.timestamp("us"),
}


def accepts(dtype: str, found: pa.DataType) -> bool:
    """Whether a Parquet column of type ``found`` may feed a schema column of ``dtype``."""
    if pa.types.is_null(found):
        return True
    if dtype == "int64":
        return pa.types.is_integer(found)
    if dtype == "float64":
        return any(
            check(found)
            for check in (pa.types.is_floating, pa.types.is_integer, pa.types.is_decimal)
        )
    return pa.types.is_timestamp(found)


def conform(uri: str, table: pa.Table) -> pa.Table:
    """``table`` with every schema column cast to the schema's Arrow type; other columns are
    kept for validation to judge. Raises LandingFileError (rule ``column_types``)."""
    problems, columns = [], []
    for name, column in zip(table.column_names, table.columns, strict=True):
        dtype = TRANSACTION_DTYPES.get(name)
        if dtype is None:
            columns.append(column)
            continue
        if not accepts(dtype, column.type):
            problems.append(f"{name} is {column.type}, expected {dtype}")
            continue
        try:
            columns.append(_cast(column, dtype))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
            problems.append(f"{name} is {column.type} with values outside {dtype} ({err})")
    if problems:
        raise LandingFileError(
            f"{uri}: {COLUMN_TYPES}: {'; '.join(problems)} (a typed column of the wrong type "
            "is a schema violation: the file is refused whole)",
            rule=COLUMN_TYPES,
        )
    return pa.Table.from_arrays(columns, names=table.column_names)


def _cast(column: pa.ChunkedArray, dtype: str) -> pa.ChunkedArray:
    target = ARROW_TYPES[dtype]
    if column.type == target:
        return column
    if pa.types.is_timestamp(column.type):
        # Arrow keeps UTC instants: dropping the zone leaves naive UTC; ns -> us truncates.
        return column.cast(target, safe=False)
    if pa.types.is_decimal(column.type):
        return column.cast(target, safe=False)
    return column.cast(target)  # safe: an overflow or a lossy int -> float raises
