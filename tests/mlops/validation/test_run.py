"""Behaviour of the GX validation stage on small hand-made days.

GX is imported once per test session (the first validation pays for it, about 10 s).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd
import pytest

from mlops.schema import (
    FAILED_RULES,
    SOURCE_FILE,
    SOURCE_ROW,
    TRANSACTION_COLUMNS,
    TRANSACTION_DTYPES,
)
from mlops.settings import ValidationRules
from mlops.validation.run import OUTPUT_COLUMNS, ValidationReport, validate_transactions
from mlops.validation.suite import RULE, build_suite, row_rules

DAY = date(2018, 4, 1)
FILE = "landing/date=2018-04-01/transactions.csv"
RULES = ValidationRules(max_amount=1_000.0, min_rows=1, max_rows=1_000, bad_row_tolerance=0.05)


def day_rows(rows: int = 40, day: date = DAY, source: str = FILE) -> pd.DataFrame:
    """A clean day as ingestion hands it over (a row every 10 min, so at most 144 rows);
    SOURCE_ROW is the line in the CSV, whose header is line 1."""
    start = pd.Timestamp(day)
    return pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(1_000, 1_000 + rows, dtype="int64"),
            "TX_DATETIME": (start + pd.to_timedelta(np.arange(rows) * 600, unit="s")).astype(
                "datetime64[us]"
            ),
            "CUSTOMER_ID": np.arange(rows, dtype="int64") % 7,
            "TERMINAL_ID": np.arange(rows, dtype="int64") % 11,
            "TX_AMOUNT": np.round(5 + np.arange(rows) * 2.5, 2),
            "TX_FRAUD": (np.arange(rows) % 10 == 0).astype("int64"),
            "TX_FRAUD_SCENARIO": (np.arange(rows) % 10 == 0).astype("int64"),
            SOURCE_FILE: source,
            SOURCE_ROW: np.arange(2, rows + 2, dtype="int64"),
        }
    )


def failed_by_line(report: ValidationReport) -> dict[int, str]:
    return dict(zip(report.bad[SOURCE_ROW].astype(int), report.bad[FAILED_RULES], strict=True))


def at(df: pd.DataFrame, line: int, column: str, value: object) -> pd.DataFrame:
    df.loc[df[SOURCE_ROW] == line, column] = value
    return df


def validate(df: pd.DataFrame, rules: ValidationRules = RULES, **kwargs) -> ValidationReport:
    return validate_transactions(df, day=DAY, rules=rules, **kwargs)


def test_clean_day_passes_whole_with_schema_dtypes():
    df = day_rows()
    df.loc[0, "TX_DATETIME"] = pd.Timestamp("2018-04-01 00:00:00")  # both edges of the day
    df.loc[1, "TX_DATETIME"] = pd.Timestamp("2018-04-01 23:59:59.999999")
    df["CUSTOMER_ID"] = df["CUSTOMER_ID"].astype("Int64")  # nullable, but no null today
    report = validate(df)
    assert not report.batch_failed and report.batch_failures == ()
    assert report.bad.empty and len(report.good) == len(df)
    assert list(report.good.columns) == list(OUTPUT_COLUMNS)
    assert report.good.dtypes[list(TRANSACTION_COLUMNS)].astype(str).to_dict() == TRANSACTION_DTYPES
    assert report.good[SOURCE_ROW].tolist() == df[SOURCE_ROW].tolist()
    assert report.summary["success"] is True
    assert set(report.summary["rule_counts"].values()) == {0}
    assert report.message() == f"{FILE}: all 40 rows passed"


def _null_customer(df: pd.DataFrame) -> pd.DataFrame:
    df["CUSTOMER_ID"] = df["CUSTOMER_ID"].astype("Int64")
    return at(df, 6, "CUSTOMER_ID", pd.NA)


def _duplicate_ids(df: pd.DataFrame) -> pd.DataFrame:
    first = int(df.loc[df[SOURCE_ROW] == 7, "TRANSACTION_ID"].iloc[0])
    return at(at(df, 20, "TRANSACTION_ID", first), 30, "TRANSACTION_ID", first)


ROW_RULE_CASES: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], dict[int, str]]] = {
    "negative amount": (lambda d: at(d, 3, "TX_AMOUNT", -0.01), {3: "tx_amount_non_negative"}),
    "amount at and above cap": (
        lambda d: at(at(d, 4, "TX_AMOUNT", 1_000.0), 5, "TX_AMOUNT", 25_000.0),
        {4: "tx_amount_below_cap", 5: "tx_amount_below_cap"},
    ),
    "amount missing": (lambda d: at(d, 9, "TX_AMOUNT", np.nan), {9: "tx_amount_not_null"}),
    "null customer": (_null_customer, {6: "customer_id_not_null"}),
    "duplicate ids quarantine every copy": (
        _duplicate_ids,
        {
            7: "conflicting_duplicate_id",
            20: "conflicting_duplicate_id",
            30: "conflicting_duplicate_id",
        },
    ),
    "fraud label 2": (lambda d: at(d, 8, "TX_FRAUD", 2), {8: "tx_fraud_in_0_1"}),
    "timestamp on the previous day": (
        lambda d: at(d, 10, "TX_DATETIME", pd.Timestamp("2018-03-31 23:59:59.999999")),
        {10: "tx_datetime_in_partition_day"},
    ),
    "timestamp next midnight and in the future": (
        lambda d: at(
            at(d, 11, "TX_DATETIME", pd.Timestamp("2018-04-02")),
            12,
            "TX_DATETIME",
            pd.Timestamp("2031-01-01 12:00"),
        ),
        {11: "tx_datetime_in_partition_day", 12: "tx_datetime_in_partition_day"},
    ),
    "negative terminal id": (lambda d: at(d, 13, "TERMINAL_ID", -4), {13: "ids_non_negative"}),
    "two rules on one row, sorted": (
        lambda d: at(at(d, 14, "TX_AMOUNT", -5.0), 14, "TX_FRAUD", 7),
        {14: "tx_amount_non_negative;tx_fraud_in_0_1"},
    ),
}


@pytest.mark.parametrize("case", ROW_RULE_CASES, ids=list(ROW_RULE_CASES))
def test_each_row_rule_quarantines_exactly_its_rows(case):
    mutate, expected = ROW_RULE_CASES[case]
    df = mutate(day_rows())
    report = validate(df, ValidationRules(max_amount=1_000.0, bad_row_tolerance=0.2))
    assert not report.batch_failed
    assert failed_by_line(report) == expected
    assert len(report.good) + len(report.bad) == len(df)
    assert set(report.good[SOURCE_ROW]) == set(df[SOURCE_ROW]) - set(expected)
    assert list(report.bad.columns) == [*OUTPUT_COLUMNS, FAILED_RULES]
    for rule in {r for rules in expected.values() for r in rules.split(";")}:
        assert report.summary["rule_counts"][rule] == sum(
            rule in rules.split(";") for rules in expected.values()
        )
        assert rule in report.message()


def test_message_is_one_line_with_file_rule_count_and_rows():
    df = at(at(day_rows(), 3, "TX_AMOUNT", -1.0), 9, "TX_AMOUNT", -2.0)
    report = validate(at(df, 5, "TX_FRAUD", 2), ValidationRules(bad_row_tolerance=0.1))
    assert report.message() == (
        f"{FILE}: 3 of 40 rows (7.5%) failed: tx_amount_non_negative (2, first rows 3, 9), "
        "tx_fraud_in_0_1 (1, first rows 5)"
    )


def test_rows_are_matched_by_position_whatever_the_index():
    df = day_rows().iloc[::-1]
    df.index = [7] * len(df)  # duplicated labels must not confuse the split
    report = validate(at(df, 3, "TX_AMOUNT", -1.0))
    assert failed_by_line(report) == {3: "tx_amount_non_negative"}
    assert len(report.good) == len(df) - 1


@pytest.mark.parametrize(
    ("change", "detail", "missing", "extra"),
    [
        (lambda d: d.drop(columns=["TX_FRAUD"]), "missing TX_FRAUD", ["TX_FRAUD"], []),
        (lambda d: d.assign(MERCHANT="acme"), "extra MERCHANT", [], ["MERCHANT"]),
    ],
    ids=["missing column", "extra column"],
)
def test_schema_drift_rejects_the_whole_day(change, detail, missing, extra):
    df = change(day_rows())
    report = validate(df)
    assert report.batch_failed
    assert report.batch_failures == ("columns_match_schema",)
    assert report.good.empty and len(report.bad) == len(df)
    assert list(report.bad.columns) == [*OUTPUT_COLUMNS, FAILED_RULES]
    assert all("columns_match_schema" in r.split(";") for r in report.bad[FAILED_RULES])
    assert (report.summary["missing_columns"], report.summary["extra_columns"]) == (missing, extra)
    assert report.message().startswith(f"{FILE}: batch rejected, all 40 rows quarantined: ")
    assert f"columns_match_schema ({detail})" in report.message()


def test_uncoercible_column_type_rejects_the_whole_day():
    df = day_rows()
    df["TX_AMOUNT"] = df["TX_AMOUNT"].astype(str).astype(object)
    report = validate(df)
    assert report.batch_failures == ("column_types",)
    assert set(report.bad[FAILED_RULES]) == {"column_types"}
    assert "TX_AMOUNT is object" in report.message()


def test_too_many_bad_rows_quarantine_the_whole_day():
    df = day_rows(rows=100)
    for line in range(2, 12):  # 10 of 100 rows, tolerance 5%
        at(df, line, "TX_AMOUNT", -1.0)
    report = validate(df)
    assert report.batch_failed
    assert report.batch_failures == ("bad_share_within_tolerance",)
    assert report.good.empty and len(report.bad) == 100
    failed = failed_by_line(report)
    assert {failed[line] for line in range(2, 12)} == {"tx_amount_non_negative"}
    assert {failed[line] for line in range(12, 102)} == {"batch_rejected"}
    assert report.summary["bad_share"] == pytest.approx(0.10)
    message = report.message()
    assert message.startswith(f"{FILE}: 10 of 100 rows (10.0%) failed: tx_amount_non_negative (10")
    assert "first rows 2, 3, 4, 5, 6, ..." in message
    assert "bad_share_within_tolerance" in message and "all 100 rows quarantined" in message


def test_bad_share_at_the_tolerance_is_still_accepted():
    df = day_rows(rows=100)
    for line in range(2, 7):  # exactly 5%
        at(df, line, "TX_FRAUD", 3)
    report = validate(df)
    assert not report.batch_failed
    assert (len(report.good), len(report.bad)) == (95, 5)


def test_empty_day_fails_on_row_count():
    report = validate(day_rows().iloc[0:0])
    assert report.batch_failed
    assert report.batch_failures == ("row_count_in_bounds",)
    assert report.good.empty and report.bad.empty
    assert "row_count_in_bounds (0 rows, expected 1..1,000)" in report.message()
    json.dumps(report.summary)


@pytest.mark.parametrize(
    ("rules", "passes"),
    [
        (ValidationRules(min_rows=21, max_rows=100), False),
        (ValidationRules(min_rows=1, max_rows=19), False),
        (ValidationRules(min_rows=20, max_rows=20), True),
    ],
    ids=["too few", "too many", "exactly at both bounds"],
)
def test_row_count_bounds(rules, passes):
    report = validate(day_rows(rows=20), rules)
    assert report.batch_failed is not passes
    if passes:
        assert len(report.good) == 20
    else:
        assert report.batch_failures == ("row_count_in_bounds",)
        assert set(report.bad[FAILED_RULES]) == {"row_count_in_bounds"}


def test_message_names_every_source_file_and_qualifies_rows():
    a = day_rows(rows=20, source="landing/date=2018-04-01/a.csv")
    b = day_rows(rows=20, source="landing/date=2018-04-01/b.csv")
    b["TRANSACTION_ID"] += 100
    df = pd.concat([a, at(b, 3, "CUSTOMER_ID", -1)], ignore_index=True)
    report = validate(df, ValidationRules(bad_row_tolerance=0.5))
    assert report.summary["source_files"] == [
        "landing/date=2018-04-01/a.csv",
        "landing/date=2018-04-01/b.csv",
    ]
    assert report.message().startswith(
        "landing/date=2018-04-01/a.csv, landing/date=2018-04-01/b.csv"
    )
    assert "ids_non_negative (1, first rows b.csv:3)" in report.message()


def test_summary_and_gx_result_are_plain_json():
    df = _null_customer(day_rows())
    at(df, 10, "TX_DATETIME", pd.Timestamp("2018-03-30"))
    report = validate(df)
    summary = json.loads(json.dumps(report.summary))
    assert summary["rows"] == 40 and summary["bad"] == 2 and summary["good"] == 38
    assert summary["gx_statistics"]["evaluated_expectations"] == len(
        build_suite(RULES, DAY).expectations
    )
    gx_result = json.loads(json.dumps(report.gx_result))
    assert gx_result["success"] is False
    assert all("unexpected_index_list" not in r["result"] for r in gx_result["results"])


def test_suite_names_every_rule_in_meta():
    suite = build_suite(RULES, DAY)
    names = {e.meta[RULE] for e in suite.expectations}
    assert set(row_rules()) - {"duplicate_copy"} <= names  # copies are set aside before GX
    assert {"columns_match_schema", "column_types", "row_count_in_bounds"} <= names


def test_lineage_columns_are_required():
    with pytest.raises(ValueError, match="lineage"):
        validate(day_rows().drop(columns=[SOURCE_ROW]))


def test_data_docs_site_accumulates_days(tmp_path):
    docs = tmp_path / "docs"
    for day in (date(2018, 4, 1), date(2018, 4, 2), date(2018, 4, 1)):  # a rerun of day 1
        df = day_rows(day=day, source=f"landing/date={day}/transactions.csv")
        report = validate_transactions(df, day=day, rules=RULES, data_docs_dir=str(docs))
        assert report.summary["data_docs_index"] == str(docs / "index.html")
    index = (docs / "index.html").read_text()
    assert "2018-04-01" in index and "2018-04-02" in index
    pages = sorted(p.name for p in (docs / "validations").rglob("*.html"))
    assert pages == ["transactions-2018-04-01.html", "transactions-2018-04-02.html"]
    assert "landing/date=2018-04-02/transactions.csv" in index  # the asset is named by its files


def test_data_docs_index_lists_only_the_most_recent_days(tmp_path, monkeypatch):
    from mlops.validation import data_docs

    monkeypatch.setattr(data_docs, "INDEX_DAYS", 2)
    docs = tmp_path / "docs"
    for n in (1, 2, 3):
        day = date(2018, 4, n)
        df = day_rows(day=day, source=f"landing/date={day}/transactions.csv")
        validate_transactions(df, day=day, rules=RULES, data_docs_dir=str(docs))
    index = (docs / "index.html").read_text()
    assert "2018-04-03" in index and "2018-04-02" in index and "2018-04-01" not in index
    assert len(list((docs / "validations").rglob("*.html"))) == 3  # older pages stay


def test_the_index_from_the_day_rows_is_the_one_gx_builds_from_the_results(tmp_path):
    """Each day's row carries what the index shows; without the rows (a site written before
    them) the index is GX's own, read from the full results: the same page."""
    import re
    import shutil

    from mlops.validation import data_docs

    docs = tmp_path / "docs"
    for n in (1, 2, 3):
        day = date(2018, 4, n)
        bad = at(day_rows(day=day, source=f"landing/date={day}/t.csv"), 3, "TX_AMOUNT", -1.0)
        validate_transactions(
            bad if n == 2 else bad.drop(index=3), day=day, rules=RULES, data_docs_dir=str(docs)
        )
    from_rows = (docs / "index.html").read_text()
    assert len(list((docs / data_docs.ROWS_FOLDER).glob("*.json"))) == 3

    shutil.rmtree(docs / data_docs.ROWS_FOLDER)
    context = data_docs._context(str(docs))
    context.build_data_docs(site_names=[data_docs.SITE_NAME], resource_identifiers=[])
    built_at = re.compile(r"\?d=\d{8}T\d{6}\.\d{6}Z")  # the logo's cache buster: now

    def page(html: str) -> str:
        return built_at.sub("<built>", html)

    assert page((docs / "index.html").read_text()) == page(from_rows)
    assert "landing/date=2018-04-02/t.csv" in from_rows


def test_gx_runs_verdicts_only_and_the_docs_show_the_mask_counts():
    df = at(at(day_rows(), 3, "TX_AMOUNT", -1.0), 9, "TX_AMOUNT", -2.0)
    report = validate(df, ValidationRules(bad_row_tolerance=0.1))
    (outcome,) = [
        r
        for r in report.gx_result["results"]
        if r["expectation_config"]["meta"]["rule"] == "tx_amount_non_negative"
    ]
    assert outcome["success"] is False
    assert outcome["result"]["unexpected_count"] == 2
    assert "partial_unexpected_list" not in outcome["result"]
