"""Every zone of the data root, by name: the one place a path under the root is spelled.

A zone is a folder (local or ``s3://``) under ``MLOPS_DATA_ROOT`` that one stage writes and
later stages read, partitioned by day (``date=YYYY-MM-DD``). Stages build their URIs with
``Settings.zone(name)``; DAG files with ``mlops_airflow.parse_time.zone_uri(name)``. Both end
in ``zone_uri`` below, so a zone moves by changing one line. ``feature_repo/sources.py``
keeps its own copy of ``SNAPSHOTS`` (Feast definitions do not import ``mlops``); a test
holds the two equal.

This module imports nothing, so that parse-time code may use it.
"""

from __future__ import annotations

LANDING = "landing"  # what the producer drops (MLOPS_LANDING_URI may put it elsewhere)
RAW = "raw"  # immutable copy of each landing partition, types normalised
VALIDATED = "validated"  # rows that passed the suite
QUARANTINE = "quarantine"  # rows (or whole files) that did not, with the rules they broke
VALIDATION_REPORTS = "reports/validation"  # one JSON report a day
VALIDATION_DOCS = "docs/validation"  # the Great Expectations Data Docs site
FEATURES = "features"  # the two feature zones below (the ``features`` asset)
DAILY_FEATURES = "features/daily"  # the model's 15 inputs per transaction, one partition a day
SNAPSHOTS = "features/snapshots"  # day-end snapshots per customer and terminal (Feast sources)
TRAINING_SETS = "training_sets"  # the training and evaluation sets of each training run
FEAST = "feast"  # the local Feast registry and SQLite online store
PREDICTIONS = "predictions"  # the prediction log: {batch,service}/date=YYYY-MM-DD (local)
DEPLOYMENT_HISTORY = "deployments/history"  # one JSON record per alias move, append-only
DEPLOYMENT_REPORTS = "reports/deployments"  # the evidence of each rollout judgement
ROLLOUT_ABORTS = "deployments/aborts"  # a rollback's mark that ends a waiting rollout's run
ALERTS = "alerts"  # one JSON document per alert (a task that failed for good)
MONITORING = "monitoring"  # the two zones below
MONITORING_REPORTS = "monitoring/reports"  # per day: summary JSON and Evidently HTML
MONITORING_REFERENCES = "monitoring/references"  # per champion version: its reference profile
RETRAINING_DECISIONS = "monitoring/decisions"  # the retrain policy's decision, one file a day

ZONES: tuple[str, ...] = (
    LANDING,
    RAW,
    VALIDATED,
    QUARANTINE,
    VALIDATION_REPORTS,
    VALIDATION_DOCS,
    FEATURES,
    DAILY_FEATURES,
    SNAPSHOTS,
    TRAINING_SETS,
    FEAST,
    PREDICTIONS,
    DEPLOYMENT_HISTORY,
    DEPLOYMENT_REPORTS,
    ROLLOUT_ABORTS,
    ALERTS,
    MONITORING,
    MONITORING_REPORTS,
    MONITORING_REFERENCES,
    RETRAINING_DECISIONS,
)


def zone_uri(data_root: str, zone: str) -> str:
    """``<data_root>/<zone>``; a name that is not a zone raises, so a typo cannot create one."""
    if zone not in ZONES:
        raise ValueError(f"unknown zone {zone!r}; the zones are {', '.join(ZONES)}")
    return f"{data_root.rstrip('/')}/{zone}"
