"""A published raw partition -> the validated partition, the quarantine and the report.

Rows that break a row-level rule go to ``quarantine/date=D`` with the rules they broke;
the rest go to ``validated/date=D``. When the batch as a whole is unusable (broken schema,
row count out of bounds, too many bad rows) every row goes to quarantine, any validated
partition of that day from an earlier run is withdrawn, and ValidationFailed stops the
run. The report (``reports/validation/date=D.json``) and the Data Docs keep the evidence.
"""

from __future__ import annotations

import gc
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
import pyarrow as pa

from mlops.ingestion.landing import FILE_ROWS, INGEST_ERROR, read_raw_version, table_bytes, to_frame
from mlops.ingestion.typed_files import ARROW_TYPES
from mlops.io import storage
from mlops.io.partitions import publish_partition, read_partition, withdraw_partition
from mlops.schema import (
    FAILED_RULES,
    SOURCE_FILE,
    SOURCE_ROW,
    TRANSACTION_DTYPES,
    partition_name,
)
from mlops.settings import Settings
from mlops.validation.data_docs import PAGES_FOLDER, RESULTS_FOLDER
from mlops.validation.run import validate_transactions
from mlops.zones import QUARANTINE, RAW, VALIDATED, VALIDATION_DOCS, VALIDATION_REPORTS

UNPARSEABLE_LINE = "unparseable_line"
VALIDATED_TABLE = "transactions.parquet"
QUARANTINE_TABLE = "quarantine.parquet"


class ValidationFailed(ValueError):
    """The day's batch was quarantined whole; the message names files, rules and counts."""


@dataclass(frozen=True)
class PartitionValidation:
    day: str
    validated_uri: str | None
    quarantine_uri: str
    report_uri: str
    rows: int
    good: int
    bad: int
    rule_counts: dict[str, int]

    def to_xcom(self) -> dict[str, Any]:
        return dict(self.__dict__)


def validate_partition(
    settings: Settings, day: str, storage_options: storage.StorageOptions | None = None
) -> PartitionValidation:
    """The validation stage: validate the day's raw partition and publish what passed, what
    did not, the report and the Data Docs, each in its zone under the data root."""
    with _collector_paused():
        return _validate_partition(settings, day, storage_options)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic collector off for the stage, back on after it.

    GX allocates tens of thousands of small objects per run (configurations, pydantic
    models, deep copies), enough to trigger full collections, and each one walks every
    object of the process (GX, pandas, Airflow): 0.3-0.4 s a day, a fifth of the stage at
    a million rows. The cycles GX leaves are bounded by one run and freed at the end.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _validate_partition(
    settings: Settings, day: str, storage_options: storage.StorageOptions | None
) -> PartitionValidation:
    raw_uri, validated_uri = settings.zone(RAW), settings.zone(VALIDATED)
    quarantine_uri, reports_uri = settings.zone(QUARANTINE), settings.zone(VALIDATION_REPORTS)
    docs_uri, rules = settings.zone(VALIDATION_DOCS), settings.validation
    part = partition_name(day)
    raw_part = storage.join(raw_uri, part)
    raw = read_partition(raw_part, storage_options)  # one version: its manifest and its files
    raw_manifest = raw.manifest if raw else None
    table, unparsed = read_raw_version(raw, raw_part, storage_options)
    rows = to_frame(table)
    ingest_errors = rows.pop(INGEST_ERROR) if INGEST_ERROR in rows else None
    with _local_docs(docs_uri, storage_options) as docs_dir:
        report = validate_transactions(
            rows,
            day=date.fromisoformat(day),
            rules=rules,
            data_docs_dir=docs_dir,
            source_files=sorted((raw_manifest or {}).get(FILE_ROWS, {})) or None,
            unparsed_lines=len(unparsed),
        )
    bad = _stack(_with_ingest_errors(report.bad, rows, ingest_errors), _unparsed_rows(unparsed))
    good = report.good
    total = len(rows) + len(unparsed)
    batch_failed = report.batch_failed
    rule_counts = _rule_counts(bad)
    lineage = {"day": day, "raw": raw_manifest}
    quarantine_part = storage.join(quarantine_uri, part)
    publish_partition(
        quarantine_part,
        {QUARANTINE_TABLE: storage.parquet_bytes(bad.reset_index(drop=True))},
        metadata={**lineage, "rows": len(bad), "rules": rule_counts, "batch_failed": batch_failed},
        options=storage_options,
    )
    validated_part = storage.join(validated_uri, part)
    if batch_failed:
        withdraw_partition(validated_part, storage_options)
    else:
        publish_partition(
            validated_part,
            {VALIDATED_TABLE: table_bytes(_validated_table(good, table))},
            metadata={**lineage, "rows": len(good)},
            options=storage_options,
        )
    report_uri = storage.join(reports_uri, f"{part}.json")
    summary = {
        **report.summary,
        "unparsed_lines": len(unparsed),
        "rows_total": total,
        "good": len(good),
        "bad": len(bad),
        "rule_counts": rule_counts,
        "batch_failed": batch_failed,
        "validated_uri": None if batch_failed else validated_part,
        "quarantine_uri": quarantine_part,
        "gx_result": report.gx_result,
    }
    storage.write_json_atomic(report_uri, summary, storage_options)
    if batch_failed:
        raise ValidationFailed(
            f"{report.message()}; the whole batch is quarantined and nothing was validated"
        )
    return PartitionValidation(
        day, validated_part, quarantine_part, report_uri, total, len(good), len(bad), rule_counts
    )


def _validated_table(good: pd.DataFrame, raw: pa.Table) -> pa.Table:
    """The validated rows as Arrow. When every raw row passed, they are the raw table's own
    columns (already of the schema's types: no second conversion from pandas)."""
    typed = all(
        name in raw.column_names and raw.schema.field(name).type == ARROW_TYPES[dtype]
        for name, dtype in TRANSACTION_DTYPES.items()
    )
    if typed and len(good) == raw.num_rows and set(good.columns) <= set(raw.column_names):
        return raw.select(list(good.columns))
    return pa.Table.from_pandas(good, preserve_index=False)


def _with_ingest_errors(
    bad: pd.DataFrame, rows: pd.DataFrame, ingest_errors: pd.Series | None
) -> pd.DataFrame:
    """Attach the original text of values that could not be typed to their quarantined rows."""
    if ingest_errors is None or bad.empty:
        return bad
    noted = ingest_errors.notna().to_numpy(dtype=bool)
    notes = rows.loc[noted, [SOURCE_FILE, SOURCE_ROW]].assign(
        **{INGEST_ERROR: ingest_errors[noted]}
    )
    for column in (SOURCE_FILE,):  # categorical on one side only would refuse to merge
        notes[column] = notes[column].astype(object)
    keyed = bad.assign(**{SOURCE_FILE: bad[SOURCE_FILE].astype(object)})
    return keyed.merge(notes, on=[SOURCE_FILE, SOURCE_ROW], how="left")


def _unparsed_rows(unparsed: pd.DataFrame) -> pd.DataFrame:
    return unparsed.rename(columns={"line": "_raw_line", "reason": INGEST_ERROR}).assign(
        **{FAILED_RULES: UNPARSEABLE_LINE}
    )


def _stack(*frames: pd.DataFrame) -> pd.DataFrame:
    """Rows of all frames; empty ones are left out so they cannot change column types."""
    kept = [f for f in frames if len(f)] or [frames[0]]
    return pd.concat(kept, ignore_index=True)


def _rule_counts(bad: pd.DataFrame) -> dict[str, int]:
    if bad.empty:
        return {}
    rules = bad[FAILED_RULES].astype("string").str.split(";").explode()
    return {str(k): int(v) for k, v in rules.value_counts().sort_index().items()}


@contextmanager
def _local_docs(docs_uri: str, options: storage.StorageOptions | None) -> Iterator[str]:
    """A local folder for the Data Docs site: the docs zone itself when it is local,
    otherwise a temporary folder holding what a build reads (the stored results, and the
    pages, whose names the index lists; not the static assets), pulled in one concurrent
    batch, whose changed files alone go back up after the build (the day's page and result,
    the index)."""
    if not storage.is_remote(docs_uri):
        os.makedirs(docs_uri, exist_ok=True)
        yield docs_uri
        return
    fs, path = storage.fresh_filesystem(docs_uri, options)
    root = path.rstrip("/")
    with tempfile.TemporaryDirectory() as local:
        for folder in (RESULTS_FOLDER, PAGES_FOLDER):
            if fs.exists(f"{root}/{folder}"):
                fs.get(f"{root}/{folder}/", os.path.join(local, folder) + "/", recursive=True)
        yield local
        storage.upload_changed(local, docs_uri, options)
