"""The end of the closed-loop demo: the report, the printed summary, the model service."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from statistics import mean
from typing import Any

from demo.closed_loop import LoopConfig, days_of, served_day_rows
from demo.report import Timeline, collect, quality_series, write_report

RECOVERY_WINDOW_DAYS = 45  # served AP averaged over the 45 days from the drift start
# what a recovery from a drift must show: a model trained on it promoted within three weeks,
# the mean served AP over the 45 days from the drift, and after that promotion against before
RECOVERY_TARGETS = {
    "promotion_days_after_drift": 21,
    "served_ap_45_days_from_drift": 0.45,
    "after_vs_before": 0.95,
}


def _mean_ap(timeline: Timeline, first: date, last: date) -> str:
    values = [v for d, v in quality_series(timeline)["average_precision"] if first <= d <= last]
    return f"{mean(values):.3f} over {len(values)} days" if values else "n/a"


def milestones(timeline: Timeline) -> dict[str, Any]:
    """The moments the closed loop is about, from the records."""
    requests = [
        (d, x) for d, x in sorted(timeline.decisions.items()) if x.get("action") == "retrain"
    ]
    breaches = [d for d, x in sorted(timeline.decisions.items()) if x.get("breach")]
    after_drift = [d for d in breaches if timeline.drift_start and d >= timeline.drift_start]
    promotions = [e for e in timeline.deployments if e.action in ("promoted", "deployed")]
    return {
        "drift_start": timeline.drift_start,
        "first_breach_after_drift": after_drift[0] if after_drift else None,
        "breaches_before_drift": [
            d for d in breaches if timeline.drift_start and d < timeline.drift_start
        ],
        "retrain_requests": requests,
        "trainings": timeline.trainings,
        "deployments": timeline.deployments,
        "promotions": promotions,
    }


def _mean_of(points: list[tuple[date, float]], first: date, last: date) -> float | None:
    values = [v for d, v in points if first <= d <= last]
    return round(mean(values), 3) if values else None


def recovery_figures(timeline: Timeline, last: date) -> dict[str, Any]:
    """The recovery figures of a collected timeline (``demo.report.Timeline``)."""
    found, drift = milestones(timeline), timeline.drift_start
    ap = quality_series(timeline)["average_precision"]
    requests = [d.isoformat() for d, _ in found["retrain_requests"]]
    out: dict[str, Any] = {
        "drift_start": drift.isoformat() if drift else None,
        "breaches_before_drift": len(found["breaches_before_drift"]),
        "first_breach_after_drift": str(found["first_breach_after_drift"] or "") or None,
        "retrain_requests": requests,
        "trainings": [f"{t['as_of']} v{t['version']} {t['outcome']}" for t in found["trainings"]],
        "deployments": [f"{e.day} {e.action} v{e.version}" for e in found["deployments"]],
        "rollbacks": sum(1 for e in found["deployments"] if e.action == "rolled_back"),
    }
    if not drift:
        return out
    promoted = [e for e in found["promotions"] if e.day >= drift.isoformat()]
    out["served_ap_before_drift"] = _mean_of(ap, drift - timedelta(days=21), drift - timedelta(1))
    out["served_ap_45_days_from_drift"] = _mean_of(
        ap, drift, drift + timedelta(days=RECOVERY_WINDOW_DAYS - 1)
    )
    if promoted:
        day = date.fromisoformat(promoted[0].day)
        out["first_promotion_after_drift"] = f"{day} v{promoted[0].version}"
        out["promotion_days_after_drift"] = (day - drift).days
        out["served_ap_after_promotion"] = _mean_of(ap, day + timedelta(days=1), last)
        if out["served_ap_before_drift"] and out["served_ap_after_promotion"]:
            ratio = out["served_ap_after_promotion"] / out["served_ap_before_drift"]
            out["after_vs_before"] = round(ratio, 3)
    return out


def recovery_shortfalls(found: dict[str, Any]) -> list[str]:
    """The recovery targets ``found`` (``recovery_figures``) misses, each named."""
    missed = []
    for name, target in RECOVERY_TARGETS.items():
        value = found.get(name)
        at_most = name == "promotion_days_after_drift"
        if value is None or (value > target if at_most else value < target):
            missed.append(f"{name} {value} ({'at most' if at_most else 'at least'} {target})")
    return missed


def print_summary(timeline: Timeline, first: date, last: date) -> None:
    found = milestones(timeline)
    drift = found["drift_start"]
    print("\n=== closed loop: what the records say ===")
    print(f"days {first} .. {last}; drift starts {drift or 'never'}")
    print(f"breaching days before the drift: {len(found['breaches_before_drift'])}")
    print(f"first breaching day after the drift: {found['first_breach_after_drift'] or '-'}")
    for day, decision in found["retrain_requests"]:
        print(f"retrain request {day}: {'; '.join(decision.get('reasons', []))}")
    for run in found["trainings"]:
        print(f"trained as of {run['as_of']}: v{run['version']} gate {run['outcome']}")
    for event in found["deployments"]:
        print(f"{event.day}: {event.action} v{event.version} ({event.strategy}) - {event.reason}")
    if drift:
        promoted_after = [e for e in found["promotions"] if e.day >= str(drift)]
        end_of_old = date.fromisoformat(promoted_after[0].day) if promoted_after else last
        print("served AP on matured days:")
        print(
            f"  before the drift            {_mean_ap(timeline, drift - timedelta(days=21), drift - timedelta(days=1))}"
        )
        print(f"  drift, old model serving    {_mean_ap(timeline, drift, end_of_old)}")
        if promoted_after:
            print(
                f"  after the promotion         {_mean_ap(timeline, end_of_old + timedelta(days=1), last)}"
            )
        found = recovery_figures(timeline, last)
        print(
            f"  the {RECOVERY_WINDOW_DAYS} days from the drift   {found['served_ap_45_days_from_drift']}"
        )
        if promoted_after:
            print(
                f"first model trained after the drift in service: {found['first_promotion_after_drift']}, "
                f"{found['promotion_days_after_drift']} days after the drift; served AP after it "
                f"{found.get('after_vs_before', 'n/a')} of before"
            )
        missed = recovery_shortfalls(found)
        print(f"recovery targets: {'missed: ' + '; '.join(missed) if missed else 'all met'}")


def finish(
    config: LoopConfig,
    data_root: Path,
    home: Path,
    transactions: Any,
    loop_s: float,
    timing: str = "",
) -> int:
    import os

    from demo.airflow_ui import DEMO_SETTINGS
    from demo.service_calls import serve_examples
    from mlops.settings import load_settings

    first, last, drift = days_of(config)
    timeline = collect(load_settings(), first, last, drift)
    report = write_report(timeline, data_root / "report.html", f"Closed loop, {first} .. {last}")
    print_summary(timeline, first, last)
    print(f"\nloop wall time {loop_s / 60:.1f} min for {config.days} days")
    if timing:
        print(timing)
    print(f"report: {report}")
    env = {k: v for k, v in os.environ.items() if k.startswith("MLOPS_")}
    serve_examples(env, served_day_rows(transactions, last + timedelta(days=1)))
    default_home = Path(__file__).resolve().parents[1] / ".airflow"
    command = "make airflow" if home == default_home else f"AIRFLOW_HOME={home} make airflow"
    print(
        "\nreopen the Airflow UI on this run (same metadata DB, same data, the demo's "
        f"settings from {home / DEMO_SETTINGS}):\n  {command}"
    )
    return 0 if timeline.deployments else 1
