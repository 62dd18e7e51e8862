"""Every kind of bad landing input that ingestion can read, through ingestion and validation
as the DAG runs them; files ingestion cannot read at all (empty, truncated, of an unknown
type) fail in ingestion and are tested in tests/mlops/ingestion/test_landing.py.

Each case states what must happen: the run fails naming the file and the rule, or the bad
rows are quarantined with their rule and the good ones validated. In every case landing is
untouched, no temporary file is left visible, and a rerun after the file is fixed succeeds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pytest

from mlops.ingestion.landing import LandingFileError, ingest_partition
from mlops.settings import ValidationRules, load_settings
from mlops.validation.partition import ValidationFailed, validate_partition
from tests.support.landing_files import HEADER, day_frame, land, snapshot, visible_temporaries
from tests.support.published import published

DAY = "2018-04-01"
ROWS = 100


@dataclass(frozen=True)
class Case:
    name: str
    files: Callable[[], dict[str, bytes | pd.DataFrame]]
    error: type[Exception] | None  # the run fails with this, or quarantines rows and succeeds
    rule: str  # named in the error or in the quarantined rows
    quarantined: int | None = None  # rows expected in quarantine when the run succeeds


def edited(**changes) -> pd.DataFrame:
    frame = day_frame(rows=ROWS)
    for column, (rows, value) in changes.items():
        if value is None or isinstance(value, str):
            frame[column] = frame[column].astype(object)
        frame.loc[rows, column] = value
    return frame


CASES = [
    Case(
        "csv with garbage lines",
        lambda: {"t.csv": day_frame(rows=ROWS).to_csv(index=False).encode() + b"\x00\xff;;\n"},
        None,
        "unparseable_line",
        quarantined=1,
    ),
    Case(
        "missing column",
        lambda: {"t.parquet": day_frame(rows=ROWS).drop(columns=["TX_AMOUNT"])},
        ValidationFailed,
        "columns_match_schema",
    ),
    Case(
        "extra column",
        lambda: {"t.parquet": day_frame(rows=ROWS).assign(COUNTRY="BE")},
        ValidationFailed,
        "columns_match_schema",
    ),
    Case(
        "decimal commas in a whole column",
        lambda: {"t.csv": day_frame(rows=ROWS).assign(TX_AMOUNT="12,50")},
        LandingFileError,
        "number_format",
    ),
    Case(
        "text in a whole column",
        lambda: {"t.csv": day_frame(rows=ROWS).assign(TX_AMOUNT="twelve")},
        ValidationFailed,
        "tx_amount_not_null",
    ),
    Case(
        "a few wrong-typed values",
        lambda: {"t.csv": edited(CUSTOMER_ID=([3, 4], "abc"))},
        None,
        "customer_id_not_null",
        quarantined=2,
    ),
    Case(
        "nulls",
        lambda: {"t.parquet": edited(TERMINAL_ID=([5], None))},
        None,
        "terminal_id_not_null",
        1,
    ),
    Case(
        "duplicate ids",
        lambda: {"t.parquet": edited(TRANSACTION_ID=([7], 8))},
        None,
        "conflicting_duplicate_id",
        quarantined=2,
    ),
    Case(
        "negative amounts",
        lambda: {"t.parquet": edited(TX_AMOUNT=([1, 2, 3], -4.0))},
        None,
        "tx_amount_non_negative",
        quarantined=3,
    ),
    Case(
        "timestamps from another day and the future",
        lambda: {
            "t.parquet": edited(TX_DATETIME=([0], pd.Timestamp("2018-03-31 23:59:59"))).assign(
                TX_DATETIME=lambda f: f["TX_DATETIME"].where(
                    f.index != 9, pd.Timestamp("2030-01-01")
                )
            )
        },
        None,
        "tx_datetime_in_partition_day",
        quarantined=2,
    ),
    Case(
        "a second file repeating the first (a retry)",
        lambda: {"a.parquet": day_frame(rows=ROWS), "b.csv": day_frame(rows=ROWS)},
        None,
        "duplicate_copy",
        quarantined=ROWS,
    ),
    Case(
        "a second file reusing the ids with other content",
        lambda: {
            "a.parquet": day_frame(rows=ROWS),
            "b.csv": day_frame(rows=ROWS).assign(TX_AMOUNT=1.0),
        },
        ValidationFailed,
        "conflicting_duplicate_id",
    ),
    Case(
        "a second file with new rows",
        lambda: {"a.parquet": day_frame(rows=ROWS), "b.csv": day_frame(rows=10, first_id=500)},
        None,
        "",
        quarantined=0,
    ),
]


def run(tmp_path):
    settings = load_settings({"MLOPS_DATA_ROOT": str(tmp_path)})
    assert settings.validation == ValidationRules(bad_row_tolerance=0.05)
    ingest_partition(settings, DAY)
    return validate_partition(settings, DAY)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(tmp_path, case: Case):
    landing = tmp_path / "landing"
    files = case.files()
    for name, content in files.items():
        land(landing, DAY, name, content)
    before = snapshot(landing)

    if case.error is not None:
        with pytest.raises(case.error, match=re.escape(case.rule)) as failure:
            run(tmp_path)
        message = str(failure.value)
        assert case.rule in message and f"date={DAY}/" in message  # names the file and rule
        assert not (tmp_path / "validated" / f"date={DAY}").exists()
        kept = published(tmp_path / "quarantine" / f"date={DAY}")
        if case.error is LandingFileError:  # refused at ingestion: each file kept whole
            assert case.rule in (kept / "reasons.json").read_text()
            assert {f"landing-{name}" for name in files} <= {p.name for p in kept.iterdir()}
        else:
            bad = pd.read_parquet(kept / "quarantine.parquet")
            assert len(bad) == sum(len(rows) for rows in files.values())  # the whole day
            assert bad["_failed_rules"].str.contains(case.rule).all()
    else:
        result = run(tmp_path)
        assert result.bad == case.quarantined
        if case.quarantined:
            bad = pd.read_parquet(
                published(tmp_path / "quarantine" / f"date={DAY}") / "quarantine.parquet"
            )
            assert bad["_failed_rules"].str.contains(case.rule).all()
            assert bad["_source_file"].str.contains(f"date={DAY}/").all()
        assert result.good + result.bad == result.rows  # nothing lost

    assert snapshot(landing) == before
    assert (tmp_path / "raw").exists() or case.error is LandingFileError
    assert visible_temporaries(tmp_path) == []

    for path in (landing / f"date={DAY}").iterdir():  # the producer fixes the day
        path.unlink()
    land(landing, DAY, "fixed.parquet", day_frame(rows=ROWS))
    fixed = run(tmp_path)
    assert (fixed.good, fixed.bad) == (ROWS, 0)


def test_a_csv_with_too_many_garbage_lines_is_rejected_whole(tmp_path):
    text = day_frame(rows=20).to_csv(index=False) + "x\n" * 5
    land(tmp_path / "landing", DAY, "t.csv", text.encode())
    with pytest.raises(ValidationFailed, match="unparseable lines 5 of 25"):
        run(tmp_path)
    bad = pd.read_parquet(published(tmp_path / "quarantine" / f"date={DAY}") / "quarantine.parquet")
    assert len(bad) == 25 and set(bad["_failed_rules"]) == {"unparseable_line", "batch_rejected"}


def test_header_only_file_fails_the_row_count_rule_naming_the_file(tmp_path):
    path = land(tmp_path / "landing", DAY, "t.csv", (HEADER + "\n").encode())
    with pytest.raises(ValidationFailed, match="row_count_in_bounds") as err:
        run(tmp_path)
    assert str(err.value).startswith(f"{path} (no rows): batch rejected")


def test_an_empty_file_beside_a_good_one_is_named_as_such(tmp_path):
    landing = tmp_path / "landing"
    land(landing, DAY, "a.parquet", day_frame(rows=ROWS).assign(TX_FRAUD=7))
    empty = land(landing, DAY, "b.csv", (HEADER + "\n").encode())
    with pytest.raises(ValidationFailed, match="no rows") as err:
        run(tmp_path)
    assert f"{landing}/date={DAY}/a.parquet, {empty} (no rows): " in str(err.value)


def test_a_file_of_only_garbage_lines_is_named(tmp_path):
    path = land(tmp_path / "landing", DAY, "t.csv", (HEADER + "\n" + "x\n" * 3).encode())
    with pytest.raises(ValidationFailed, match="failed") as err:
        run(tmp_path)
    message = str(err.value)
    assert message.startswith(f"{path} (no rows): 3 of 3 rows (100.0%) failed")
    assert "unparseable lines 3 of 3" in message


def test_report_names_every_file_and_the_duplicates(tmp_path):
    landing = tmp_path / "landing"
    land(landing, DAY, "a.parquet", day_frame(rows=ROWS))
    land(landing, DAY, "b.csv", day_frame(rows=ROWS))
    result = run(tmp_path)
    report = json.loads((tmp_path / "reports" / "validation" / f"date={DAY}.json").read_text())
    assert [f.rsplit("/", 1)[-1] for f in report["source_files"]] == ["a.parquet", "b.csv"]
    assert report["duplicate_copies"] == ROWS and result.good == ROWS


@pytest.mark.parametrize("bad_rows", [0, 3], ids=["all rows pass", "some rows quarantined"])
def test_validated_partition_has_the_schema_types_and_lineage(tmp_path, bad_rows):
    """All rows passing, the validated table is the raw table's columns; otherwise pandas'."""
    from mlops.schema import TRANSACTION_DTYPES

    frame = edited(TX_AMOUNT=(list(range(bad_rows)), -1.0)) if bad_rows else day_frame(rows=ROWS)
    land(tmp_path / "landing", DAY, "t.parquet", frame)
    assert run(tmp_path).good == ROWS - bad_rows
    validated = pd.read_parquet(
        published(tmp_path / "validated" / f"date={DAY}") / "transactions.parquet"
    )
    expected = {**TRANSACTION_DTYPES, "_source_file": "category", "_source_row": "int64"}
    assert validated.dtypes.astype(str).to_dict() == expected
    assert validated["_source_row"].tolist() == list(range(bad_rows + 1, ROWS + 1))
    kept = frame.iloc[bad_rows:].reset_index(drop=True)
    assert validated["TRANSACTION_ID"].tolist() == kept["TRANSACTION_ID"].tolist()
    assert validated["TX_DATETIME"].tolist() == kept["TX_DATETIME"].tolist()
