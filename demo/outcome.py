"""The end of the closed-loop demo: the report, the printed summary, the model service."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from statistics import mean
from typing import Any

from demo.closed_loop import LoopConfig, days_of, served_day_rows
from demo.report import Timeline, collect, quality_series, write_report


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
