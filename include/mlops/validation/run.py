"""One day's transactions through the GX suite: good rows, bad rows, and the rule each broke.

GX judges: its verdict per expectation decides whether a rule failed and whether the day
stands, and its result feeds the Data Docs. Which rows broke a rule comes from the rule's
numpy mask (``mlops.validation.rules``), defined with the expectation, so GX runs with
``result_format=BOOLEAN_ONLY``: no per-row index lists, which on a million rows cost more
than everything else together. Every run checks that each rule's mask is empty exactly when
GX passed the rule; a disagreement fails the day rather than quarantining the wrong rows.
The whole suite runs as one batch in a context kept for the process (one GX batch costs
about 0.35 s of fixed overhead; a context 0.15 s).

A day is rejected as a whole (``batch_failed``, every row to quarantine, nothing validated)
when the schema is broken, the row count is out of bounds, a rule could not be evaluated, or
the share of bad rows (unparseable lines included, exact duplicate copies excluded) is above
the tolerance: a partial delivery or a broken export is not a day to train on.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from datetime import date
from time import perf_counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlops.schema import (
    FAILED_RULES,
    SOURCE_FILE,
    SOURCE_ROW,
    TRANSACTION_COLUMNS,
    TRANSACTION_DTYPES,
)
from mlops.settings import ValidationRules
from mlops.validation.data_docs import add_mask_counts, publish_data_docs, run_identifier
from mlops.validation.duplicates import DUPLICATE_COPY, ID_COLUMN, find_duplicates
from mlops.validation.messages import batch_failure_detail, first_rows, one_line, schema_drift
from mlops.validation.rules import RowCheck, row_checks
from mlops.validation.suite import (
    BAD_SHARE_WITHIN_TOLERANCE,
    BATCH,
    BATCH_REJECTED,
    RULE,
    SCHEMA_RULES,
    SCOPE,
    build_suite,
    row_rules,
)

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )

LINEAGE_COLUMNS = (SOURCE_FILE, SOURCE_ROW)
OUTPUT_COLUMNS = (*TRANSACTION_COLUMNS, *LINEAGE_COLUMNS)


@dataclass(frozen=True, eq=False)
class ValidationReport:
    """What the suite said about one day, ready to be published.

    ``good`` has the schema's dtypes and no failed rule; ``bad`` keeps the rows as they came
    (nullable or wrong dtypes, missing columns as nulls) plus ``_failed_rules``, the sorted
    ``;``-joined rule names. ``len(good) + len(bad)`` is always the input row count.
    ``summary["bad_share"]`` is the share of rows failing a row-level rule, the figure held
    against the tolerance; ``bad`` may hold more rows when the batch failed.
    """

    day: str
    good: pd.DataFrame
    bad: pd.DataFrame
    batch_failed: bool
    batch_failures: tuple[str, ...]
    summary: dict[str, Any]
    gx_result: dict[str, Any]

    def message(self) -> str:
        """One line for a log, an alert or an exception: files, rules, counts, first rows."""
        return one_line(self.summary)


@dataclass(frozen=True)
class _Verdicts:
    """GX's verdicts regrouped by rule name (GX returns them in its own order, not ours)."""

    failed_batch_rules: dict[str, list[ExpectationValidationResult]]
    failed_checks: set[tuple[str, str]]  # (rule, column) of row checks GX failed
    not_evaluated: dict[str, str]


def validate_transactions(
    df: pd.DataFrame,
    *,
    day: date,
    rules: ValidationRules,
    data_docs_dir: str | None = None,
    source_files: list[str] | None = None,
    unparsed_lines: int = 0,
) -> ValidationReport:
    """Validate one day's ingested rows; see the module docstring for what fails a batch.

    ``df`` holds the schema's columns (possibly some missing or extra: that is what the
    schema rules are for) and the lineage columns, which are required and not validated.
    ``source_files`` names the day's files for the messages (default: those of the rows);
    ``unparsed_lines`` counts the lines ingestion could not parse, bad rows GX never sees.
    With ``data_docs_dir`` the result is also added to the Data Docs site in that folder.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    absent = [c for c in LINEAGE_COLUMNS if c not in df.columns]
    if absent:
        raise ValueError(f"lineage columns {absent} missing: validate the ingestion output")
    frame = df if _is_positional(df.index) else df.reset_index(drop=True)
    started = perf_counter()
    present = [c for c in TRANSACTION_COLUMNS if c in frame.columns]
    duplicates = find_duplicates(frame, present)
    copies = duplicates.copies
    kept = np.flatnonzero(~copies)
    with pd.option_context("mode.copy_on_write", True):  # a view: never written to
        data = frame.drop(columns=list(LINEAGE_COLUMNS))
    if copies.any():
        data = data.iloc[kept].reset_index(drop=True)
    checks = row_checks(rules, day)
    conflicting = duplicates.conflicting[kept] if copies.any() else duplicates.conflicting
    masks = {check: _mask(check, data, conflicting) for check in checks}
    timings = {"row_masks": perf_counter() - started}

    suite = build_suite(rules, day)
    started = perf_counter()
    result = _run_suite(data, suite)
    timings["gx_validate"] = perf_counter() - started
    verdicts = _read_verdicts(result)
    disagreements = _cross_check(masks, verdicts, data)

    by_rule: dict[str, np.ndarray] = {}
    for check, mask in masks.items():
        if mask is not None and mask.any():
            full = by_rule.setdefault(check.rule, np.zeros(len(frame), dtype=bool))
            full[kept[mask]] = True
    failed = np.zeros(len(frame), dtype=bool)
    for mask in by_rule.values():
        failed |= mask
    if copies.any():
        by_rule[DUPLICATE_COPY] = copies
    n_failed, n_considered = int(failed.sum()) + unparsed_lines, len(kept) + unparsed_lines
    bad_share = n_failed / n_considered if n_considered else 0.0
    batch_details = _batch_failures(verdicts, data, rules, bad_share, disagreements)
    if batch_details.get(BAD_SHARE_WITHIN_TOLERANCE) and unparsed_lines:
        batch_details[BAD_SHARE_WITHIN_TOLERANCE] += (
            f" (unparseable lines {unparsed_lines} of {n_considered} rows)"
        )
    started = perf_counter()
    good, bad = _split(frame, _labels(by_rule, batch_details, len(frame)))
    timings["split"] = perf_counter() - started

    files = source_files or sorted(str(f) for f in frame[SOURCE_FILE].dropna().unique())
    add_mask_counts(result, masks, len(data))
    result.meta["run_id"] = run_identifier(day)
    # Data Docs title a validation page with the batch's asset name: name the landing files.
    result.meta["batch_spec"] = {
        **result.meta.get("batch_spec", {}),
        "data_asset_name": ", ".join(files) or f"transactions {day.isoformat()}",
    }
    gx_result = result.to_json_dict()  # once: for the report and the Data Docs store
    docs_index = None
    if data_docs_dir is not None:
        started = perf_counter()
        docs_index = publish_data_docs(gx_result, suite, day=day, data_docs_dir=data_docs_dir)
        timings["data_docs"] = perf_counter() - started
    missing, extra = schema_drift(data.columns)
    summary = {
        "day": day.isoformat(),
        "rows": len(frame),
        "good": len(good),
        "bad": len(bad),
        "failed_rows": n_failed,
        "duplicate_copies": int(copies.sum()),
        "unparsed_lines": unparsed_lines,
        "bad_share": round(bad_share, 6),
        "bad_row_tolerance": rules.bad_row_tolerance,
        "success": not batch_details and not by_rule,
        "batch_failed": bool(batch_details),
        "batch_failures": batch_details,
        "rule_counts": {r: int(by_rule[r].sum()) if r in by_rule else 0 for r in row_rules()},
        "first_failed_rows": {
            r: first_rows(frame, np.flatnonzero(m)) for r, m in sorted(by_rule.items())
        },
        "missing_columns": missing,
        "extra_columns": extra,
        "not_evaluated": verdicts.not_evaluated,
        "source_files": files,
        "empty_files": sorted(set(files) - {str(f) for f in frame[SOURCE_FILE].dropna().unique()}),
        "gx_success": bool(result.success),
        "gx_statistics": gx_result["statistics"],
        "data_docs_index": docs_index,
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
    }
    return ValidationReport(
        day=day.isoformat(),
        good=good,
        bad=bad,
        batch_failed=bool(batch_details),
        batch_failures=tuple(sorted(batch_details)),
        summary=summary,
        gx_result=gx_result,
    )


def _is_positional(index: pd.Index) -> bool:
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1


def _mask(check: RowCheck, data: pd.DataFrame, conflicting: np.ndarray) -> np.ndarray | None:
    """The check's mask, or None when its column is missing or not comparable (the schema
    rules then fail the day). The ids' uniqueness is the duplicate analysis' ``conflicting``
    (same rows, without a second pass over the ids)."""
    if check.column not in data.columns:
        return None
    if check.kind == "unique" and check.column == ID_COLUMN:
        return conflicting
    try:
        return check.mask(data[check.column])
    except (TypeError, ValueError):
        return None


@functools.cache
def _batch_definition() -> Any:
    """A throwaway in-memory context, built once per process, with a dataframe asset."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False),  # tqdm bars flood the task log
        analytics_enabled=False,
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    return (
        context.data_sources.add_pandas("landing")
        .add_dataframe_asset("transactions")
        .add_batch_definition_whole_dataframe("day")
    )


def _run_suite(data: pd.DataFrame, suite: Any) -> ExpectationSuiteValidationResult:
    """The whole suite over one in-memory batch, verdicts only.

    GX's own Validator over the batch definition loads the batch once (``Batch.validate``
    loads it a second time, and each load fingerprints the whole frame).
    """
    from great_expectations.validator.v1_validator import Validator

    validator = Validator(
        batch_definition=_batch_definition(),
        result_format={"result_format": "BOOLEAN_ONLY"},
        batch_parameters={"dataframe": data},
    )
    with pd.option_context("mode.copy_on_write", True):
        return validator.validate_expectation_suite(suite)


def _read_verdicts(result: ExpectationSuiteValidationResult) -> _Verdicts:
    failed_batch_rules: dict[str, list[Any]] = {}
    failed_checks: set[tuple[str, str]] = set()
    not_evaluated: dict[str, str] = {}
    for outcome in result.results:
        meta = outcome.expectation_config.meta or {}
        rule, scope = meta[RULE], meta[SCOPE]
        error = _exception_message(outcome)
        if error is not None:
            not_evaluated[rule] = error
        elif outcome.success:
            continue
        elif scope == BATCH:
            failed_batch_rules.setdefault(rule, []).append(outcome)
        else:
            failed_checks.add((rule, outcome.expectation_config.kwargs["column"]))
    return _Verdicts(failed_batch_rules, failed_checks, not_evaluated)


def _exception_message(outcome: ExpectationValidationResult) -> str | None:
    """GX catches an expectation's exception and reports it as a failure with no rows."""
    for info in (outcome.exception_info or {}).values():
        if isinstance(info, dict) and info.get("raised_exception"):
            return str(info.get("exception_message"))
    if outcome.exception_info and outcome.exception_info.get("raised_exception"):
        return str(outcome.exception_info.get("exception_message"))
    return None


def _cross_check(
    masks: dict[RowCheck, np.ndarray | None], verdicts: _Verdicts, data: pd.DataFrame
) -> dict[str, str]:
    """Rule -> why GX and the mask disagree; empty when every evaluated rule agrees.

    A column without any value has no min or max: GX fails an extremes check there, while
    no row breaks it (the not-null and row-count rules speak for such a day)."""
    disagreements = {}
    for check, mask in masks.items():
        if mask is None or check.rule in verdicts.not_evaluated:
            continue
        if check.extremes and not data[check.column].notna().any():
            continue
        gx_failed = (check.rule, check.column) in verdicts.failed_checks
        if gx_failed != bool(mask.any()):
            disagreements[check.rule] = (
                f"GX {'failed' if gx_failed else 'passed'} {check.column} but the row mask "
                f"found {int(mask.sum()):,} rows: rule definitions out of step"
            )
    return disagreements


def _batch_failures(
    verdicts: _Verdicts,
    batch: pd.DataFrame,
    rules: ValidationRules,
    bad_share: float,
    disagreements: dict[str, str],
) -> dict[str, str]:
    """Rule name -> why the day fails as a whole; empty when the day may be published."""
    details = {
        rule: batch_failure_detail(rule, outcomes, batch)
        for rule, outcomes in verdicts.failed_batch_rules.items()
    }
    # With a broken schema, rules on the missing or mistyped columns cannot run; that is a
    # consequence, not a separate failure. With an intact schema it must not pass silently.
    if not any(rule in details for rule in SCHEMA_RULES):
        for rule, error in verdicts.not_evaluated.items():
            details[rule] = f"GX could not evaluate it: {error}"
        details.update(disagreements)
    if bad_share > rules.bad_row_tolerance:
        details[BAD_SHARE_WITHIN_TOLERANCE] = (
            f"{bad_share:.1%} of rows failed a rule, tolerance {rules.bad_row_tolerance:.1%}"
        )
    return details


def _labels(by_rule: dict[str, np.ndarray], batch_details: dict[str, str], n: int) -> np.ndarray:
    """``_failed_rules`` per row position, "" for a row that goes to the validated zone."""
    labels = np.full(n, "", dtype=object)
    own = np.zeros(n, dtype=bool)
    for rule in sorted(by_rule):
        mask = by_rule[rule]
        labels[mask] = labels[mask] + ";" + rule
        own |= mask
    labels[own] = [label[1:] for label in labels[own]]
    if batch_details:
        # A broken table condemns each row; too many bad rows condemns the clean ones only
        # by association, which batch_rejected says.
        on_every_row = set(batch_details) - {BAD_SHARE_WITHIN_TOLERANCE}
        labels[~own] = ";".join(sorted(on_every_row)) or BATCH_REJECTED
        if on_every_row:
            labels[own] = [";".join(sorted({*s.split(";"), *on_every_row})) for s in labels[own]]
    return labels


def _split(frame: pd.DataFrame, labels: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    is_bad = labels != ""
    columns = [c for c in OUTPUT_COLUMNS if c in frame.columns]
    if is_bad.any():
        good = frame.loc[~is_bad, columns].reset_index(drop=True)
        bad = frame.loc[is_bad].reindex(columns=list(OUTPUT_COLUMNS)).reset_index(drop=True)
    else:
        good = frame[columns]
        bad = frame.iloc[0:0].reindex(columns=list(OUTPUT_COLUMNS))
    bad[FAILED_RULES] = pd.Series(labels[is_bad], dtype="object")
    if len(columns) < len(OUTPUT_COLUMNS):  # a broken schema: every row is bad
        good = good.reindex(columns=list(OUTPUT_COLUMNS))
    retype = {c: t for c, t in TRANSACTION_DTYPES.items() if str(good[c].dtype) != t}
    return (good.astype(retype) if retype else good), bad
