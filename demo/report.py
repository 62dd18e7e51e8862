"""The closed loop's report: what the pipeline recorded, day by day, as one HTML page.

Everything comes from the records the DAGs wrote, not from the demo's own bookkeeping: the
monitoring summaries and the retrain decisions (one per day), the deployment history, and
the registered versions with their gate outcome. Charts are PNG (matplotlib), embedded.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any


@dataclass
class Timeline:
    days: list[date]
    drift_start: date | None
    summaries: dict[date, dict[str, Any]] = field(default_factory=dict)
    decisions: dict[date, dict[str, Any]] = field(default_factory=dict)
    deployments: list[Any] = field(default_factory=list)
    trainings: list[dict[str, Any]] = field(default_factory=list)

    def events(self) -> list[tuple[str, str, str]]:
        """(day, what, detail), oldest first: the table of the report."""
        rows = [(str(d), "drift starts", "simulated") for d in [self.drift_start] if d]
        for day, decision in self.decisions.items():
            if decision.get("action") != "none" or decision.get("held_by"):
                what = f"policy: {decision['action']}" + (
                    f" (held by {decision['held_by']})" if decision.get("held_by") else ""
                )
                rows.append((str(day), what, "; ".join(decision.get("reasons", []))))
        for flagged in self.first_flags():
            rows.append((str(flagged), "first drift flag", "data drift over threshold"))
        for run in self.trainings:
            detail = f"v{run['version']}: {run['outcome']}"
            rows.append((run["as_of"], "training + gate", detail))
        for event in self.deployments:
            detail = f"v{event.version} ({event.strategy}): {event.reason}"
            rows.append((event.day, f"deployment: {event.action}", detail))
        return sorted(rows)

    def first_flags(self) -> list[date]:
        flagged = [d for d, s in sorted(self.summaries.items()) if _drifted(s)]
        return flagged[:1]


def _drifted(summary: dict[str, Any]) -> bool:
    drift = summary.get("drift") or {}
    return bool(drift.get("dataset_drifted") or drift.get("drifted"))


def collect(settings: Any, first: date, last: date, drift_start: date | None) -> Timeline:
    from mlops.io import storage
    from mlops.monitoring.daily import read_summary
    from mlops.registry.history import read_history
    from mlops.retraining.decisions import decision_uri

    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    timeline = Timeline(days, drift_start)
    for day in days:
        summary = read_summary(settings, day)
        if summary and summary.get("status") == "monitored":
            timeline.summaries[day] = summary
        uri = decision_uri(settings, day)
        if storage.exists(uri):
            timeline.decisions[day] = storage.read_json(uri)
    timeline.deployments = read_history(settings)
    timeline.trainings = trainings(settings.mlflow_tracking_uri)
    return timeline


def trainings(tracking_uri: str) -> list[dict[str, Any]]:
    """Every registered version with the day it was trained as of and its gate outcome."""
    from mlops.registry.versions import MODEL_NAME
    from mlops.rollout.live import registry_client

    client = registry_client(tracking_uri)
    found = client.search_model_versions(f"name='{MODEL_NAME}'")
    return sorted(
        (
            {
                "version": v.version,
                "as_of": v.tags.get("mlops.logical_date", "?"),
                "outcome": v.tags.get("mlops.gate_outcome", "?"),
            }
            for v in found
        ),
        key=lambda run: (run["as_of"], int(run["version"])),
    )


def quality_series(timeline: Timeline) -> dict[str, list[tuple[date, float]]]:
    """Per matured day: AP and CP@100 of what was served that day."""
    series: dict[str, list[tuple[date, float]]] = {"average_precision": [], "cp_at_100": []}
    for summary in timeline.summaries.values():
        newest = (summary.get("quality") or {}).get("newest_day") or {}
        if newest.get("average_precision") is None:
            continue
        day = date.fromisoformat(newest["day"])
        series["average_precision"].append((day, newest["average_precision"]))
        series["cp_at_100"].append((day, newest.get("card_precision_at_100") or 0.0))
    return series


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _markers(axis: Any, timeline: Timeline) -> None:
    if timeline.drift_start:
        axis.axvline(timeline.drift_start, color="red", ls="--", lw=1, label="drift starts")
    for day, decision in timeline.decisions.items():
        if decision.get("action") == "retrain":
            axis.axvline(day, color="orange", lw=1.5, label="retrain request")
    for run in timeline.trainings:
        if run["as_of"] != "?":
            style = {"approve": "green", "reject": "red"}.get(run["outcome"], "purple")
            axis.axvline(
                date.fromisoformat(run["as_of"]),
                color=style,
                lw=4,
                alpha=0.25,
                label=f"gate: {run['outcome']}",
            )
    for event in timeline.deployments:
        colour = {"promoted": "green", "deployed": "green", "rolled_back": "black"}.get(
            event.action, "grey"
        )
        axis.axvline(
            date.fromisoformat(event.day), color=colour, ls=":", lw=1.5, label=event.action
        )


def charts(timeline: Timeline) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pictures = []
    figure, axis = plt.subplots(figsize=(11, 3.6))
    for name, points in quality_series(timeline).items():
        if points:
            axis.plot(*zip(*sorted(points), strict=True), marker=".", label=name)
    _markers(axis, timeline)
    axis.set_title("Served model on matured labels (by transaction day)")
    _legend(axis)
    pictures.append(_png(figure))
    figure, axis = plt.subplots(figsize=(11, 3.0))
    drift = sorted(
        (d, (s.get("drift") or {}).get("share", 0.0)) for d, s in timeline.summaries.items()
    )
    weighted = sorted(
        (d, (s.get("drift") or {}).get("weighted_share", 0.0))
        for d, s in timeline.summaries.items()
    )
    if drift:
        axis.plot(*zip(*drift, strict=True), label="drifted feature share")
        axis.plot(*zip(*weighted, strict=True), label="importance-weighted share")
    _markers(axis, timeline)
    axis.set_title("Data drift of the monitored day against the champion's training data")
    _legend(axis)
    pictures.append(_png(figure))
    plt.close("all")
    return pictures


def _legend(axis: Any) -> None:
    handles, labels = axis.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    axis.legend(unique.values(), unique.keys(), fontsize=7, loc="upper left", ncols=3)
    axis.grid(alpha=0.3)


def write_report(timeline: Timeline, path: Path, title: str) -> Path:
    rows = "\n".join(
        f"<tr><td>{html.escape(d)}</td><td>{html.escape(w)}</td><td>{html.escape(x)}</td></tr>"
        for d, w, x in timeline.events()
    )
    images = "\n".join(f'<p><img src="data:image/png;base64,{p}"></p>' for p in charts(timeline))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border-bottom:1px solid #ddd;
padding:3px 8px;vertical-align:top;font-size:13px}}table{{border-collapse:collapse}}</style>
</head><body><h1>{html.escape(title)}</h1>{images}
<h2>Timeline</h2><table><tr><th>data day</th><th>what</th><th>detail</th></tr>{rows}</table>
</body></html>"""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(page)
    temporary.replace(path)
    return path
