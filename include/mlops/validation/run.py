"""One day's transactions through the GX suite: good rows, bad rows, and the rule each broke.

GX does the judging; this module only reads its verdicts. Row-level expectations run with
``result_format=COMPLETE``, whose ``unexpected_index_list`` holds the position of every
offending row in the batch (the frame is given to GX with a fresh RangeIndex, so a GX index
*is* a row position); that is how a rule becomes a per-row mask without re-implementing the
rule in pandas. The whole suite runs as one batch: one GX batch costs about 0.35 s of fixed
overhead, so a batch per rule would cost seconds.

A day is rejected as a whole (``batch_failed``, every row to quarantine, nothing validated)
when the schema is broken, the row count is out of bounds, a rule could not be evaluated, or
the share of bad rows is above the tolerance: a partial delivery or a broken export is not
a day to train on, even if some of its rows look fine.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from time import perf_counter
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlops.schema import (
    FAILED_RULES,
    SOURCE_FILE,
    SOURCE_ROW,
    TRANSACTION_COLUMNS,
    TRANSACTION_DTYPES,
)
from mlops.settings import ValidationRules
from mlops.validation.data_docs import publish_data_docs, run_identifier
from mlops.validation.messages import batch_failure_detail, first_rows, one_line, schema_drift
from mlops.validation.suite import (
    BAD_SHARE_WITHIN_TOLERANCE,
    BATCH,
    BATCH_REJECTED,
    COLUMNS_MATCH_SCHEMA,
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
# Every unexpected value and index of a COMPLETE result would make the result as large as
# the bad rows themselves, and those are kept in the quarantine; reports, XCom and the Data
# Docs keep GX's partial lists (the first 20) and the counts.
_PER_ROW_RESULT_KEYS = ("unexpected_list", "unexpected_index_list", "unexpected_index_query")


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
    """GX's results regrouped by rule name (GX returns them in its own order, not ours)."""

    rows_by_rule: dict[str, list[int]]
    failed_batch_rules: dict[str, list[ExpectationValidationResult]]
    not_evaluated: dict[str, str]


def validate_transactions(
    df: pd.DataFrame,
    *,
    day: date,
    rules: ValidationRules,
    data_docs_dir: str | None = None,
) -> ValidationReport:
    """Validate one day's ingested rows; see the module docstring for what fails a batch.

    ``df`` holds the schema's columns (possibly some missing or extra: that is what the
    schema rules are for) and the lineage columns, which are required and not validated.
    With ``data_docs_dir`` the result is also added to the Data Docs site in that folder.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    absent = [c for c in LINEAGE_COLUMNS if c not in df.columns]
    if absent:
        raise ValueError(f"lineage columns {absent} missing: validate the ingestion output")
    frame = df.reset_index(drop=True)
    suite = build_suite(rules, day)
    started = perf_counter()
    result = _run_suite(frame.drop(columns=list(LINEAGE_COLUMNS)), suite)
    timings = {"gx_validate": perf_counter() - started}
    verdicts = _read_verdicts(result)
    failed_positions = sorted({p for ps in verdicts.rows_by_rule.values() for p in ps})
    bad_share = len(failed_positions) / len(frame) if len(frame) else 0.0
    batch_details = _batch_failures(verdicts, frame, rules, bad_share)
    labels = _labels(verdicts, batch_details, len(frame))
    good, bad = _split(frame, labels)

    source_files = sorted(str(f) for f in frame[SOURCE_FILE].dropna().unique())
    _drop_per_row_lists(result)
    result.meta["run_id"] = run_identifier(day)
    # Data Docs title a validation page with the batch's asset name: name the landing files.
    result.meta["batch_spec"] = {
        **result.meta.get("batch_spec", {}),
        "data_asset_name": ", ".join(source_files) or f"transactions {day.isoformat()}",
    }
    docs_index = None
    if data_docs_dir is not None:
        started = perf_counter()
        docs_index = publish_data_docs(result, suite, day=day, data_docs_dir=data_docs_dir)
        timings["data_docs"] = perf_counter() - started
    gx_result = result.to_json_dict()
    schema_outcomes = verdicts.failed_batch_rules.get(COLUMNS_MATCH_SCHEMA)
    missing, extra = (
        schema_drift(schema_outcomes[0].result.get("observed_value") or [])
        if schema_outcomes
        else ([], [])
    )

    summary = {
        "day": day.isoformat(),
        "rows": len(frame),
        "good": len(good),
        "bad": len(bad),
        "failed_rows": len(failed_positions),
        "bad_share": round(bad_share, 6),
        "bad_row_tolerance": rules.bad_row_tolerance,
        "success": not batch_details and not failed_positions,
        "batch_failed": bool(batch_details),
        "batch_failures": batch_details,
        "rule_counts": {r: len(verdicts.rows_by_rule.get(r, ())) for r in row_rules()},
        "first_failed_rows": {
            r: first_rows(frame, ps) for r, ps in sorted(verdicts.rows_by_rule.items())
        },
        "missing_columns": missing,
        "extra_columns": extra,
        "not_evaluated": verdicts.not_evaluated,
        "source_files": source_files,
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


def _run_suite(data: pd.DataFrame, suite: Any) -> ExpectationSuiteValidationResult:
    """The whole suite over one in-memory batch, in a throwaway context."""
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
    batch = (
        context.data_sources.add_pandas("landing")
        .add_dataframe_asset("transactions")
        .add_batch_definition_whole_dataframe("day")
        .get_batch(batch_parameters={"dataframe": data})
    )
    return batch.validate(suite, result_format={"result_format": "COMPLETE"})


def _read_verdicts(result: ExpectationSuiteValidationResult) -> _Verdicts:
    rows_by_rule: dict[str, set[int]] = defaultdict(set)
    failed_batch_rules: dict[str, list[Any]] = defaultdict(list)
    not_evaluated: dict[str, str] = {}
    for outcome in result.results:
        meta = outcome.expectation_config.meta or {}
        rule, scope = meta[RULE], meta[SCOPE]
        error = _exception_message(outcome)
        if error is not None:
            not_evaluated[rule] = error
        elif scope == BATCH:
            if not outcome.success:
                failed_batch_rules[rule].append(outcome)
        else:
            rows_by_rule[rule].update(int(i) for i in outcome.result["unexpected_index_list"])
    return _Verdicts(
        rows_by_rule={r: sorted(ps) for r, ps in rows_by_rule.items() if ps},
        failed_batch_rules=dict(failed_batch_rules),
        not_evaluated=not_evaluated,
    )


def _exception_message(outcome: ExpectationValidationResult) -> str | None:
    """GX catches an expectation's exception and reports it as a failure with no rows."""
    for info in (outcome.exception_info or {}).values():
        if isinstance(info, dict) and info.get("raised_exception"):
            return str(info.get("exception_message"))
    if outcome.exception_info and outcome.exception_info.get("raised_exception"):
        return str(outcome.exception_info.get("exception_message"))
    return None


def _batch_failures(
    verdicts: _Verdicts,
    frame: pd.DataFrame,
    rules: ValidationRules,
    bad_share: float,
) -> dict[str, str]:
    """Rule name -> why the day fails as a whole; empty when the day may be published."""
    details = {
        rule: batch_failure_detail(rule, outcomes, frame)
        for rule, outcomes in verdicts.failed_batch_rules.items()
    }
    # With a broken schema, rules on the missing or mistyped columns cannot run; that is a
    # consequence, not a separate failure. With an intact schema it must not pass silently.
    if not any(rule in details for rule in SCHEMA_RULES):
        for rule, error in verdicts.not_evaluated.items():
            details[rule] = f"GX could not evaluate it: {error}"
    if bad_share > rules.bad_row_tolerance:
        details[BAD_SHARE_WITHIN_TOLERANCE] = (
            f"{bad_share:.1%} of rows failed a rule, tolerance {rules.bad_row_tolerance:.1%}"
        )
    return details


def _labels(verdicts: _Verdicts, batch_details: dict[str, str], n_rows: int) -> list[str]:
    """``_failed_rules`` per row position, "" for a row that goes to the validated zone."""
    per_row: list[set[str]] = [set() for _ in range(n_rows)]
    for rule, positions in verdicts.rows_by_rule.items():
        for position in positions:
            per_row[position].add(rule)
    if batch_details:
        # A broken table condemns each row; too many bad rows condemns the clean ones only
        # by association, which batch_rejected says.
        on_every_row = set(batch_details) - {BAD_SHARE_WITHIN_TOLERANCE}
        per_row = [(own | on_every_row) or {BATCH_REJECTED} for own in per_row]
    return [";".join(sorted(rules)) for rules in per_row]


def _split(frame: pd.DataFrame, labels: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    out = frame.reindex(columns=list(OUTPUT_COLUMNS))
    failed = pd.Series(labels, index=frame.index, dtype="object")
    is_bad = failed != ""
    good = out[~is_bad].astype(TRANSACTION_DTYPES).reset_index(drop=True)
    bad = out[is_bad].assign(**{FAILED_RULES: failed[is_bad]}).reset_index(drop=True)
    return good, bad


def _drop_per_row_lists(result: ExpectationSuiteValidationResult) -> None:
    for outcome in result.results:
        for key in _PER_ROW_RESULT_KEYS:
            outcome.result.pop(key, None)
