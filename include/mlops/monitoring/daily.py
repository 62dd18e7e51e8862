"""One day of monitoring: drift of the served features and scores, quality on matured labels.

For day D: the batch prediction log of D (what the champion of D scored) is compared with
the reference profile of that champion (``mlops.monitoring.reference``): PSI per feature and
the drifted share, the importance-weighted drifted share, and the PSI of the champion's
scores. The quality of what was served on the matured days is measured with the labels
known at the end of D (``mlops.monitoring.quality``). The summary is written as
``monitoring/reports/date=D/summary.json`` (and the Evidently page ``report.html`` when
asked), each file atomically; a rerun of D rewrites the same summary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from mlops import zones
from mlops.features.inputs import DayLike, as_date
from mlops.features.names import FEATURES
from mlops.io import storage
from mlops.monitoring.drift import DriftThresholds, feature_drift, psi
from mlops.monitoring.quality import matured_quality
from mlops.monitoring.reference import (
    ReferenceProfile,
    days_between,
    positive_scores,
    read_training_rows,
    reference_profile,
)
from mlops.registry.aliases import alias_state
from mlops.registry.versions import load_model
from mlops.schema import partition_name
from mlops.scoring.log import prediction_sink
from mlops.settings import Settings

# Calibrated on the simulator's stable days (tests/mlops/monitoring/test_calibration.py):
# the largest feature PSI of a stable day was 0.020 (2,000 cards, 7 reference days against
# each of 53 later days), so 0.1 leaves a factor of five; the first amount_shift day gave 0.30
# on TX_AMOUNT and 0.47 on the 1-day average amount.
DEFAULT_THRESHOLDS = DriftThresholds(feature_psi=0.1, score_psi=0.1, drift_share=0.1)
# A weekend flag is all 0 or all 1 on any one day: its PSI names the weekday, not a change.
CALENDAR_FEATURES = ("TX_DURING_WEEKEND",)
JUDGED_FEATURES = tuple(f for f in FEATURES if f not in CALENDAR_FEATURES)
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"


@dataclass(frozen=True)
class MonitoringResult:
    """``status`` is ``monitored`` or ``skipped`` (no log for the day); ``summary`` is the
    JSON written for the day and the monitoring asset event's extra."""

    day: str
    status: str
    summary: dict[str, Any] = field(default_factory=dict)
    summary_uri: str = ""
    report_uri: str | None = None

    def to_xcom(self) -> dict[str, Any]:
        return dict(self.summary)


def html_wanted(asked: bool | None, environ: Mapping[str, str]) -> bool:
    """Evidently's page costs seconds a day: a run's ``html_report`` Param wins, else
    ``MLOPS_MONITORING_HTML`` (anything but ``false`` writes it)."""
    if asked is not None:
        return bool(asked)
    return environ.get("MLOPS_MONITORING_HTML", "true").lower() != "false"


def report_folder(settings: Settings, day: date) -> str:
    return storage.join(settings.zone(zones.MONITORING_REPORTS), partition_name(day.isoformat()))


def read_summary(
    settings: Settings, day: DayLike, options: storage.StorageOptions | None = None
) -> dict[str, Any] | None:
    uri = storage.join(report_folder(settings, as_date(day)), SUMMARY_FILE)
    return storage.read_json(uri, options) if storage.exists(uri, options) else None


def drift_summary(
    profile: ReferenceProfile, current: Any, thresholds: DriftThresholds
) -> dict[str, Any]:
    """Feature drift with its importance-weighted share, and the scores' drift (pure)."""
    drift = feature_drift(profile.features, current, JUDGED_FEATURES, thresholds)
    judged_weight = sum(profile.importances.get(n, 0.0) for n in JUDGED_FEATURES) or 1.0
    weighted = sum(profile.importances.get(n, 0.0) for n in drift["drifted"]) / judged_weight
    score_psi = psi(profile.score, current["champion_score"], what="champion scores")
    return {
        "drift": drift | {"weighted_share": round(weighted, 6)},
        "prediction_drift": {
            "psi": round(score_psi, 6),
            "drifted": score_psi > thresholds.score_psi,
        },
    }


def _champion_of(log: Any) -> str:
    counts = Counter(str(v) for v in log["champion_version"].dropna())
    return counts.most_common(1)[0][0]


def monitor_day(
    settings: Settings,
    day: DayLike,
    options: storage.StorageOptions | None = None,
    *,
    html: bool = True,
    thresholds: DriftThresholds = DEFAULT_THRESHOLDS,
) -> MonitoringResult:
    """Monitor ``day`` against the champion that served it; write and return its summary.

    ``html=False`` skips the Evidently page (about 10 s of import and 3 s of work)."""
    day = as_date(day)
    folder = report_folder(settings, day)
    summary_uri = storage.join(folder, SUMMARY_FILE)
    sink = prediction_sink(settings.data_root, settings.prediction_log_url, options)
    log = sink.read_day("batch", day)
    summary: dict[str, Any] = {"day": day.isoformat(), "thresholds": thresholds.to_dict()}
    if log.empty or log["champion_version"].isna().all():
        summary |= {"status": "skipped", "reason": f"no batch prediction log for {day}"}
        storage.write_json_atomic(summary_uri, summary, options)
        return MonitoringResult(day.isoformat(), "skipped", summary, summary_uri)
    tracking = settings.mlflow_tracking_uri
    version = _champion_of(log)
    model = load_model(tracking, version)
    profile = reference_profile(settings, version, options, model=model)
    aliases = alias_state(tracking)
    previous = aliases.previous if aliases.champion == version else None
    rescore = {"champion": lambda rows: positive_scores(model, rows)}
    if previous is not None:
        previous_model = load_model(tracking, previous)
        rescore["previous"] = lambda rows: positive_scores(previous_model, rows)
    quality = matured_quality(
        sink,
        day,
        validated_uri=settings.zone(zones.VALIDATED),
        delay_days=settings.label_delay_days,
        history_start=settings.history_start,
        options=options,
        rescore=rescore,
    )
    champion = profile.champion
    summary |= {
        "status": "monitored",
        "rows": len(log),
        "champion": champion.to_dict() | {"age_days": days_between(champion.trained_as_of, day)},
        "previous_version": previous,
        **drift_summary(profile, log, thresholds),
        "importances": profile.importances,
        "quality": quality,
    }
    report_uri = None
    if html:
        from mlops.monitoring.report import drift_report_html, write_report

        reference = read_training_rows(champion, options)
        page = drift_report_html(
            reference,
            log,
            FEATURES,
            threshold=thresholds.feature_psi,
            drift_share=thresholds.drift_share,
        )
        report_uri = write_report(storage.join(folder, REPORT_FILE), page, options)
    summary["report"] = report_uri
    storage.write_json_atomic(summary_uri, summary, options)
    return MonitoringResult(day.isoformat(), "monitored", summary, summary_uri, report_uri)
