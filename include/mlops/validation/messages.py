"""Words for validation outcomes: what an operator reads in a log line, an alert or an error.

An alert is only useful if it says which file, which rule and which rows without opening a
report, so every failure is told with its source file and the file's own row numbers (the
lineage columns), never with positions inside the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from mlops.schema import SOURCE_FILE, SOURCE_ROW, TRANSACTION_COLUMNS
from mlops.validation.duplicates import DUPLICATE_COPY
from mlops.validation.suite import COLUMN_TYPES, COLUMNS_MATCH_SCHEMA, ROW_COUNT_IN_BOUNDS

FIRST_ROWS = 5


def schema_drift(observed_columns: Sequence[str]) -> tuple[list[str], list[str]]:
    """(missing, extra) columns of the batch against the schema, in a stable order."""
    observed = [str(c) for c in observed_columns]
    missing = [c for c in TRANSACTION_COLUMNS if c not in observed]
    extra = sorted(c for c in observed if c not in TRANSACTION_COLUMNS)
    return missing, extra


def batch_failure_detail(rule: str, outcomes: Sequence[Any], batch: pd.DataFrame) -> str:
    """Why a batch-level rule failed; ``batch`` is the frame GX judged (GX runs with
    BOOLEAN_ONLY, so the observed values are read from the batch itself)."""
    if rule == COLUMNS_MATCH_SCHEMA:
        missing, extra = schema_drift(batch.columns)
        return "; ".join(
            f"{label} {', '.join(cols)}"
            for label, cols in (("missing", missing), ("extra", extra))
            if cols
        )
    if rule == COLUMN_TYPES:
        parts = []
        for outcome in outcomes:
            kwargs = outcome.expectation_config.kwargs
            column = kwargs["column"]
            dtype = batch[column].dtype if column in batch.columns else "absent"
            parts.append(f"{column} is {dtype}, expected {' or '.join(kwargs['type_list'])}")
        return "; ".join(parts)
    if rule == ROW_COUNT_IN_BOUNDS:
        kwargs = outcomes[0].expectation_config.kwargs
        return f"{len(batch):,} rows, expected {kwargs['min_value']:,}..{kwargs['max_value']:,}"
    return f"{len(outcomes)} expectation(s) failed"


def first_rows(frame: pd.DataFrame, positions: Sequence[int]) -> list[str]:
    """The first few offending rows as ``row`` (one source file) or ``file:row`` (several)."""
    head = frame.iloc[list(positions[:FIRST_ROWS])]
    several_files = frame[SOURCE_FILE].nunique() > 1
    refs = []
    for file, row in zip(head[SOURCE_FILE], head[SOURCE_ROW], strict=True):
        number = str(int(row)) if pd.notna(row) else "?"
        refs.append(f"{str(file).rsplit('/', 1)[-1]}:{number}" if several_files else number)
    return refs


def _share(part: int, whole: int) -> str:
    share = part / whole if whole else 0.0
    return "<0.1%" if 0 < share < 0.001 else f"{share:.1%}"


def one_line(summary: dict[str, Any]) -> str:
    """E.g. ``landing/date=2018-04-01/a.csv: 312 of 9,601 rows (3.2%) failed: tx_amount_below_cap
    (300, first rows 17, 45, ...), ...; batch rejected ...``."""
    rows, failed = summary["rows"], summary["failed_rows"]
    copies = summary.get("duplicate_copies", 0)
    empty = set(summary.get("empty_files", ()))
    files = [f"{f} (no rows)" if f in empty else f for f in summary["source_files"]]
    where = ", ".join(files) or f"{summary['day']} (no file)"
    counts = sorted(
        ((n, rule) for rule, n in summary["rule_counts"].items() if n), key=lambda c: (-c[0], c[1])
    )
    if not failed and not copies and not summary["batch_failed"]:
        return f"{where}: all {rows:,} rows passed"
    clauses = []
    if copies:
        clauses.append(f"{copies:,} exact duplicate copies set aside ({DUPLICATE_COPY})")
    if failed:
        rules = []
        for n, rule in counts:
            if rule == DUPLICATE_COPY:
                continue
            examples = summary["first_failed_rows"].get(rule, [])
            more = ", ..." if n > len(examples) else ""
            rules.append(f"{rule} ({n:,}, first rows {', '.join(examples)}{more})")
        unparsed = summary.get("unparsed_lines", 0)
        if unparsed:
            rules.append(f"unparseable_line ({unparsed:,})")
        considered = rows - copies + unparsed
        share = _share(failed, considered)
        clauses.append(f"{failed:,} of {considered:,} rows ({share}) failed: {', '.join(rules)}")
    if summary["batch_failed"]:
        reasons = ", ".join(f"{r} ({d})" for r, d in sorted(summary["batch_failures"].items()))
        total = rows + summary.get("unparsed_lines", 0)
        whole = f", all {total:,} rows quarantined" if total else ""
        clauses.append(f"batch rejected{whole}: {reasons}")
    return f"{where}: {'; '.join(clauses)}"
