"""The closed loop through the real Airflow scheduler: data lands day by day, the DAGs do the rest.

The simulated world lands one day of transactions at a time into the landing zone. The
scheduler's catch-up of ``transactions_daily`` and ``model_monitoring`` picks each day up
(their sensors are waiting for it); the monitoring policy decides, and a retrain request,
a gate approval and a rollout follow through the assets, exactly as in production. The
next day lands only once the system has finished with the current one (every task done or
deferred, waiting for data), so the run is as reproducible as the calendar it replays.

Nothing here moves a model or decides anything: it lands files, watches the REST API and
reads the records the DAGs wrote.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

DAG_IDS = (
    "transactions_daily",
    "model_monitoring",
    "model_training",
    "model_deployment",
    "model_rollback",
)
BUSY = {"queued", "scheduled", "running", "up_for_retry", "up_for_reschedule", "restarting"}
# The daily sensors only wait for markers: poking in a worker (MLOPS_SENSOR_MODE=poke) they
# wait for data as a deferred one does, so they do not hold the next day back.
MARKER_WAITS = {"wait_for_landing_partition", "wait_for_earlier_days", "wait_for_predictions"}


@dataclass(frozen=True)
class LoopConfig:
    """The world: its size, its length and its drift (a day index from the first day)."""

    days: int = 135
    drift: str = "new_fraud_pattern"
    drift_start_day: int = 85
    customers: int = 2_500
    terminals: int = 5_000
    seed: int = 0

    def simulation(self) -> Any:
        from mlops.simulator import SimulationConfig

        return SimulationConfig(
            n_customers=self.customers,
            n_terminals=self.terminals,
            n_days=self.days + 1,  # one more: the day the service answers at the end
            seed=self.seed,
            drift=self.drift,
            drift_start_day=self.drift_start_day,
        )


def loop_environment(
    config: LoopConfig, data_root: Path | None, first_index: int = 0
) -> dict[str, str]:
    """What the components need besides the stack's own settings; the daily DAGs start at
    ``first_index`` (the days before it are history loaded by ``load_history``). Without a
    ``data_root`` the profile's own is kept."""
    simulation = config.simulation()
    first, last = simulation.day(0), simulation.day(config.days - 1)
    return {
        **({"MLOPS_DATA_ROOT": str(data_root)} if data_root else {}),
        "MLOPS_HISTORY_START": first.isoformat(),
        "MLOPS_START_DATE": simulation.day(first_index).isoformat(),
        "MLOPS_END_DATE": last.isoformat(),
        "MLOPS_TRAINING_CRON": "",  # only the monitoring policy asks for training
        "MLOPS_SENSOR_POKE_S": "0.25",  # a trigger's look at a local file costs nothing
        "MLOPS_MONITORING_HTML": "false",  # the Evidently page costs seconds a day: on demand
        # canaries observed 3 days at least, then until the matured rows hold 30 frauds to
        # judge AP against the champion (80 to 100 frauds a day at 2,500 cards): those of
        # the days the candidate never saw, replayed (mlops.deployment.replay), so a canary
        # started on D after a breach is judged on D+3; else the labels of D+1, on D+8. One
        # that cannot be judged by D+14 goes to a person; nobody answers here: within a
        # minute it times out and is rolled back
        "MLOPS_ROLLOUT_OBSERVATION_DAYS": "3",
        "MLOPS_ROLLOUT_WAIT_FOR_LABELS": "false",
        "MLOPS_ROLLOUT_QUALITY_DEADLINE_DAYS": "14",
        "MLOPS_ROLLOUT_DECISION_TIMEOUT_H": "0.01",
        # nobody answers a review here: a needs_review candidate times out (nothing moves)
        # within a minute, so a retrain request queued behind it is not held for 24 h
        "MLOPS_REVIEW_TIMEOUT_H": "0.01",
    }


def busy(stack: Any) -> list[str]:
    """The task instances that are doing (or about to do) something, as ``dag/task``, and
    the queued runs: two REST calls across the DAGs (the api-server's CPU is the tasks')."""
    params = {"state": ["queued"], "limit": 100}
    runs = stack.api("GET", "dags/~/dagRuns", params=params)["dag_runs"]
    active = [f"{run['dag_id']} (queued run)" for run in runs if run["dag_id"] in DAG_IDS]
    params = {"state": sorted(BUSY), "limit": 1000}
    tis = stack.api("GET", "dags/~/dagRuns/~/taskInstances", params=params)["task_instances"]
    return active + [
        f"{ti['dag_id']}/{ti['task_id']}"
        for ti in tis
        if ti["dag_id"] in DAG_IDS and ti["task_id"] not in MARKER_WAITS
    ]


def failures(stack: Any) -> list[str]:
    found = []
    for dag_id in DAG_IDS:
        for run in stack.api("GET", f"dags/{dag_id}/dagRuns", params={"state": ["failed"]})[
            "dag_runs"
        ]:
            tis = stack.task_instances(dag_id, run["dag_run_id"])
            failed = [ti["task_id"] for ti in tis if ti["state"] == "failed"]
            found.append(f"{dag_id} {run['dag_run_id']}: {', '.join(failed) or 'run failed'}")
    return found


def wait_for_day(stack: Any, settings: Any, day: date, timeout: float) -> None:
    """Until the day's decision is recorded and nothing is left to do but wait for data."""
    from mlops.io import storage
    from mlops.retraining.decisions import decision_uri

    deadline = time.monotonic() + timeout
    quiet_since, checked = None, time.monotonic()
    while time.monotonic() < deadline:
        stack.check_alive()
        # the file first: REST calls cost the api-server CPU that the tasks need
        if storage.exists(decision_uri(settings, day)) and not busy(stack):
            quiet_since = quiet_since or time.monotonic()
            # quiet for half a second: an asset event may just be turning into a run
            if time.monotonic() - quiet_since >= 0.5:
                return
        else:
            quiet_since = None
        if time.monotonic() - checked > 10:
            checked = time.monotonic()
            if failed := failures(stack):
                raise RuntimeError(f"a run failed on {day}: {failed}; logs in {stack.home}/logs")
        time.sleep(0.2)
    raise TimeoutError(f"{day} not finished within {timeout:.0f} s; still busy: {busy(stack)}")


def progress_line(settings: Any, day: date, index: int, total: int, started: float) -> str:
    from mlops.io import storage
    from mlops.registry.aliases import alias_state
    from mlops.retraining.decisions import decision_uri

    state = alias_state(settings.mlflow_tracking_uri)
    decision = storage.read_json(decision_uri(settings, day))
    serving = f"champion v{state.champion}" if state.champion else "no model yet"
    if state.challenger:
        serving += f", challenger v{state.challenger}"
    reasons = "; ".join(decision.get("reasons", []))[:90]
    return (
        f"[{index:>3}/{total}] {day}  {time.monotonic() - started:6.0f} s  {serving:<28} "
        f"{decision['action']}: {reasons}"
    )


def run_loop(
    stack: Any,
    config: LoopConfig,
    transactions: Any,
    *,
    first_index: int = 0,
    day_timeout: float = 900,
    options: Any = None,
    before_landing: Callable[[date], None] | None = None,
    until: Callable[[date], bool] | None = None,
) -> date:
    """Land the days from ``first_index`` on, one by one, waiting for the system after each
    (in the landing zone of the settings; ``before_landing(day)`` runs first, the live
    traffic of a day comes before its file lands; ``until(day)`` true ends the loop early).
    The last day landed."""
    from mlops.settings import load_settings
    from mlops.simulator import write_landing

    simulation = config.simulation()
    settings = load_settings()
    for dag_id in DAG_IDS:
        stack.unpause(dag_id)
    started = time.monotonic()
    for index in range(first_index, config.days):
        day = simulation.day(index)
        if before_landing:
            before_landing(day)
        write_landing(
            transactions, settings.landing_uri, simulation, storage_options=options, days=[index]
        )
        wait_for_day(stack, settings, day, day_timeout)
        print(progress_line(settings, day, index + 1, config.days, started), flush=True)
        if until and until(day):
            break
    return day


def days_of(config: LoopConfig) -> tuple[date, date, date | None]:
    simulation = config.simulation()
    drift = simulation.day(config.drift_start_day) if config.drift != "none" else None
    return simulation.day(0), simulation.day(config.days - 1), drift


def served_day_rows(transactions: Any, day: date, count: int = 6) -> Any:
    rows = transactions.loc[transactions["TX_DATETIME"].dt.date == day]
    return rows.sort_values("TRANSACTION_ID").head(count)


def load_history(transactions: Any, config: LoopConfig, days: int, options: Any = None) -> None:
    """Go-live with history: the first ``days`` days landed and run through the same stage
    entries transactions_daily calls (ingest, validate, features, scoring; the online store
    as of the last one), in this process, before the scheduler takes over at ``days``."""
    from mlops.features.pipeline import build_day_features, materialize_day_features
    from mlops.ingestion.landing import ingest_partition
    from mlops.scoring.daily import score_day
    from mlops.settings import load_settings
    from mlops.simulator import write_landing
    from mlops.validation.partition import validate_partition

    simulation = config.simulation()
    settings = load_settings()
    landing = settings.landing_uri
    write_landing(transactions, landing, simulation, storage_options=options, days=range(days))
    for index in range(days):
        day = simulation.day(index).isoformat()  # as the DAG passes it
        ingest_partition(settings, day, options)
        validate_partition(settings, day, options)
        build_day_features(settings, day, options)
        score_day(settings, day, options)
    materialize_day_features(settings, simulation.day(days - 1), options)


def time_split(stack: Any) -> dict[str, float]:
    """Seconds spent in task work (every task instance's duration, sensors' waiting excluded)
    against the loop's wall time: the rest is Airflow's scheduling and the driver's waits."""
    work: dict[str, float] = {}
    for dag_id in DAG_IDS:
        for run in stack.dag_runs(dag_id):
            for ti in stack.task_instances(dag_id, run["dag_run_id"]):
                if ti["duration"] and not ti["task_id"].startswith("wait_"):
                    work[dag_id] = work.get(dag_id, 0.0) + ti["duration"]
    return {name: round(seconds, 1) for name, seconds in work.items()}
