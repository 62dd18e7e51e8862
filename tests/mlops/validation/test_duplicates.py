"""Duplicate transactions: keep one of exact copies, quarantine every copy of a conflict."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from mlops.schema import FAILED_RULES, SOURCE_FILE, SOURCE_ROW
from mlops.settings import ValidationRules
from mlops.validation.duplicates import find_duplicates
from mlops.validation.run import validate_transactions
from tests.support.landing_files import day_frame

DAY = date(2018, 4, 1)
RULES = ValidationRules(bad_row_tolerance=0.05)


def rows(frame: pd.DataFrame, source: str = "landing/date=2018-04-01/a.csv", first_line=2):
    return frame.assign(
        **{SOURCE_FILE: source, SOURCE_ROW: range(first_line, first_line + len(frame))}
    )


def validate(frame: pd.DataFrame, rules: ValidationRules = RULES):
    return validate_transactions(frame.reset_index(drop=True), day=DAY, rules=rules)


def failed(report) -> dict[tuple[str, int], str]:
    return {
        (f.rsplit("/", 1)[-1], int(r)): rules
        for f, r, rules in zip(
            report.bad[SOURCE_FILE], report.bad[SOURCE_ROW], report.bad[FAILED_RULES], strict=True
        )
    }


def test_an_exact_copy_keeps_the_first_and_quarantines_the_copy():
    day = rows(day_frame(rows=40))
    report = validate(pd.concat([day, day.iloc[[5]].assign(**{SOURCE_ROW: 99})]))
    assert failed(report) == {("a.csv", 99): "duplicate_copy"}
    assert len(report.good) == 40 and 7 in report.good[SOURCE_ROW].tolist()
    assert (
        report.summary["duplicate_copies"] == 1
        and report.summary["rule_counts"]["duplicate_copy"] == 1
    )
    assert not report.batch_failed and report.summary["bad_share"] == 0
    assert "1 exact duplicate copies set aside (duplicate_copy)" in report.message()


def test_three_copies_keep_one():
    day = rows(day_frame(rows=20))
    copies = day.iloc[[3, 3]].assign(**{SOURCE_ROW: [50, 51]})
    report = validate(pd.concat([day, copies]))
    assert failed(report) == {("a.csv", 50): "duplicate_copy", ("a.csv", 51): "duplicate_copy"}


def test_copies_across_files_of_the_day_count_and_do_not_weigh_on_the_tolerance():
    a = rows(day_frame(rows=20), "landing/date=2018-04-01/a.parquet", first_line=1)
    b = rows(day_frame(rows=20), "landing/date=2018-04-01/b.csv")  # a full retry
    report = validate(pd.concat([a, b]))
    assert not report.batch_failed
    assert set(failed(report).values()) == {"duplicate_copy"}
    assert {f for f, _ in failed(report)} == {"b.csv"}
    assert len(report.good) == 20


def test_a_conflicting_id_quarantines_every_copy():
    day = rows(day_frame(rows=40))
    other = day.iloc[[5]].assign(TX_AMOUNT=999.0, **{SOURCE_ROW: 90})
    report = validate(pd.concat([day, other]), ValidationRules(bad_row_tolerance=0.1))
    assert failed(report) == {
        ("a.csv", 7): "conflicting_duplicate_id",
        ("a.csv", 90): "conflicting_duplicate_id",
    }


def test_agreeing_copies_of_a_conflicting_id_are_all_conflicting():
    day = rows(day_frame(rows=40))
    same, other = day.iloc[[5]].assign(**{SOURCE_ROW: 90}), day.iloc[[5]].assign(TX_FRAUD=1)
    report = validate(
        pd.concat([day, same, other.assign(**{SOURCE_ROW: 91})]),
        ValidationRules(bad_row_tolerance=0.1),
    )
    assert failed(report) == {("a.csv", line): "conflicting_duplicate_id" for line in (7, 90, 91)}


def test_copies_with_the_same_null_are_exact_copies():
    day = rows(day_frame(rows=40)).astype({"TERMINAL_ID": "Int64"})
    day.loc[5, "TERMINAL_ID"] = pd.NA
    report = validate(pd.concat([day, day.iloc[[5]].assign(**{SOURCE_ROW: 90})]))
    assert failed(report) == {
        ("a.csv", 7): "terminal_id_not_null",
        ("a.csv", 90): "duplicate_copy",
    }


@pytest.mark.parametrize("copies", [0, 3])
def test_rows_without_an_id_are_not_duplicates(copies):
    day = rows(day_frame(rows=40)).astype({"TRANSACTION_ID": "Int64"})
    day.loc[[1, 2], "TRANSACTION_ID"] = pd.NA
    extra = day.iloc[[10] * copies].assign(**{SOURCE_ROW: range(90, 90 + copies)})
    report = validate(pd.concat([day, extra]), ValidationRules(bad_row_tolerance=0.1))
    assert failed(report) == {
        ("a.csv", 3): "transaction_id_not_null",
        ("a.csv", 4): "transaction_id_not_null",
        **{("a.csv", 90 + i): "duplicate_copy" for i in range(copies)},
    }


@pytest.mark.parametrize("seed", range(5))
def test_conflicting_rows_are_the_ids_left_repeated_once_exact_copies_are_set_aside(seed):
    """The uniqueness rule's mask comes from the duplicate analysis, not a second pass."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 40, 200).astype(float)
    ids[rng.random(200) < 0.1] = np.nan
    frame = pd.DataFrame(
        {"TRANSACTION_ID": pd.array(ids, dtype="Int64"), "TX_AMOUNT": rng.integers(0, 2, 200)}
    )
    found = find_duplicates(frame, ["TRANSACTION_ID", "TX_AMOUNT"])
    left = frame["TRANSACTION_ID"][~found.copies]
    expected = left.duplicated(keep=False) & left.notna()
    assert found.copies.any()
    assert found.conflicting.any()
    assert found.conflicting[~found.copies].tolist() == expected.tolist()
