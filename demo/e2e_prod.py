"""``make e2e-prod``: the closed loop on the production profile, every component a real process.

``demo.production_stack`` starts PostgreSQL databases, a RabbitMQ vhost, Redis, an S3 server,
the MLflow server, Airflow on the CeleryExecutor and the model service from the compose
file's environment. Then the world's first days load as history (the same stage entries the
daily DAG calls, in this process, against the same stores), the scheduler takes over day by
day, and the model service answers a sample of each day's transactions before the day's file
lands (live traffic, logged to the same PostgreSQL log the batch scoring writes). At the end:
a manual ``model_training`` run with Params and a backfill of ``model_monitoring``, both
through the REST API with a token. The report (``--report``) holds what ran where and what
the pipeline recorded; everything started is stopped, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python demo/e2e_prod.py` finds the demo package

from demo.closed_loop import DAG_IDS, LoopConfig, days_of, loop_environment  # noqa: E402

MANUAL_PARAMS = {
    "family": "logistic_regression",
    "hyperparameters": {"C": 0.5},
    "window_days": 21,
    "seed": 7,
    "force_review": True,  # recorded and gated, never deployed: the loop's state stays put
    "reason": "e2e-prod: a manual run with Params through the REST API",
}


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=116)
    parser.add_argument("--drift-start-day", type=int, default=68)
    # the scheduler takes over on the day the first training window settles (2018-06-05)
    parser.add_argument("--history-days", type=int, default=65)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--live-per-day", type=int, default=60)
    parser.add_argument(
        "--all-days",
        action="store_true",
        help="land every day (default: stop once a model is promoted after the drift)",
    )
    parser.add_argument("--redis-db", default="14", help="the online store's Redis database")
    parser.add_argument("--home", type=Path, default=ROOT / ".e2e-prod")
    parser.add_argument("--report", type=Path, default=None)
    return parser.parse_args(argv)


def world_of(args: argparse.Namespace) -> tuple[LoopConfig, dict[str, str]]:
    """The simulated world, and the settings the Airflow components get for it."""
    config = LoopConfig(
        days=args.days,
        drift_start_day=args.drift_start_day,
        customers=args.customers,
        terminals=2 * args.customers,
    )
    env = loop_environment(config, None, first_index=args.history_days)
    # The canary is judged on its planned days here: waiting for its labels' frauds (the
    # default, judged in tests/demo/test_closed_loop.py and tests/dags) would land five more
    # days through the scheduler, minutes of a CI run that is already the longest job.
    return config, {**env, "MLOPS_ROLLOUT_JUDGE_QUALITY": "false"}


CLIENTS = 1  # one caller: the latency logged is the service's, not a queue of our own making


class LiveTraffic:
    """One-transaction ``/predict`` calls for a sample of the day, once a champion serves."""

    def __init__(self, url: str, transactions: Any, per_day: int, headers: dict[str, str]) -> None:
        import httpx

        self.client = httpx.Client(base_url=url, timeout=10, headers=headers)
        self.transactions = transactions
        self.per_day = per_day
        self.answered: dict[str, int] = {}
        self.failed: dict[str, int] = {}
        self.failures: list[str] = []  # the first few refusals, status and body, to say why

    def __call__(self, day: date) -> None:
        from mlops.serving.process import request_body

        if self.client.get("/health").status_code != 200:
            return  # no champion yet
        rows = self.transactions.loc[self.transactions["TX_DATETIME"].dt.date == day]
        step = max(1, len(rows) // self.per_day)
        sample = rows.sort_values("TRANSACTION_ID").iloc[::step].head(self.per_day)
        bodies = [request_body(sample.iloc[[i]]) for i in range(len(sample))]
        with ThreadPoolExecutor(CLIENTS) as pool:
            statuses = list(pool.map(self._post, bodies))
        for status, text in statuses:
            counts = self.answered if status == 200 else self.failed
            counts[str(day)] = counts.get(str(day), 0) + 1
            if status != 200 and len(self.failures) < 20:
                self.failures.append(f"{day} {status} {text[:300]}")

    def _post(self, body: dict[str, Any]) -> tuple[int, str]:
        response = self.client.post("/predict", json=body)
        return response.status_code, "" if response.status_code == 200 else response.text


def manual_training(stack: Any, as_of: date) -> dict[str, Any]:
    """``model_training`` triggered over REST with Params; its run, and what MLflow logged."""
    run_id = stack.trigger(
        "model_training", conf=MANUAL_PARAMS, logical_date=f"{as_of.isoformat()}T00:00:00Z"
    )
    run = stack.wait_for_run("model_training", run_id, timeout=1200)
    logged = _logged_params(stack, run_id) if run["state"] == "success" else {}
    return {"run_id": run_id, "state": run["state"], "conf": run.get("conf"), "logged": logged}


def _logged_params(stack: Any, run_id: str) -> dict[str, Any]:
    """The MLflow run that ``model_training``'s run logged: its params and gate outcome."""
    import mlflow

    client = mlflow.MlflowClient(stack.env["MLOPS_MLFLOW_TRACKING_URI"])
    found = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=f"tags.`airflow.run_id` = '{run_id}'",
        max_results=5,
    )
    return {
        "runs": len(found),
        "params": found[0].data.params if found else {},
        "tags": {k: v for k, v in (found[0].data.tags if found else {}).items() if "mlops." in k},
    }


def monitoring_backfill(stack: Any, settings: Any, first: date, last: date) -> dict[str, Any]:
    """A backfill of ``model_monitoring`` over served days, created over REST, with the
    scheduler killed (SIGKILL) while the backfill has work in flight and started again 5 s
    later: its runs' states, the runs a day, and whether the summaries, decisions and model
    versions it could have rewritten or added are the same as before."""
    from mlops.io import storage
    from mlops.monitoring.daily import SUMMARY_FILE, report_folder
    from mlops.retraining.decisions import decision_uri

    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def records() -> dict[str, str]:
        summaries = [storage.join(report_folder(settings, d), SUMMARY_FILE) for d in days]
        uris = summaries + [decision_uri(settings, d) for d in days]
        return {uri: storage.read_bytes(uri).decode() for uri in uris}

    before, versions_before = records(), model_versions(stack)
    began = time.monotonic()
    created = stack.create_backfill(
        "model_monitoring",
        f"{first.isoformat()}T00:00:00Z",
        f"{last.isoformat()}T00:00:00Z",
        reprocess_behavior="completed",
    )
    in_flight = _backfill_work_in_flight(stack, "model_monitoring", timeout=300)
    killed_after = round(time.monotonic() - began, 1)
    stack.kill_component("scheduler")
    time.sleep(5)  # the worker and the api-server go on without a scheduler
    stack.relaunch("scheduler")
    deadline = time.monotonic() + 900
    runs: list[dict] = []
    while time.monotonic() < deadline:
        stack.check_alive()
        runs = [r for r in stack.dag_runs("model_monitoring") if r["run_type"] == "backfill"]
        if len(runs) == len(days) and all(r["state"] in ("success", "failed") for r in runs):
            break
        time.sleep(2)
    wanted = {str(d) for d in days}
    dated = [
        r["logical_date"][:10] for r in stack.dag_runs("model_monitoring") if r["logical_date"]
    ]
    return {
        "backfill_id": created["id"],
        "days": [str(d) for d in days],
        "states": [r["state"] for r in runs],
        "seconds": round(time.monotonic() - began, 1),
        "scheduler_killed_after_s": killed_after,
        "in_flight_at_kill": in_flight,
        "runs_a_day": {d: n for d, n in Counter(dated).items() if d in wanted},
        "same_records": records() == before,
        "model_versions": {"before": versions_before, "after": model_versions(stack)},
    }


def _backfill_work_in_flight(stack: Any, dag_id: str, timeout: float) -> list[str]:
    """Until a backfill run of ``dag_id`` has a task (not a sensor) queued or running: what
    is in flight then, as ``run_id/task_id``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [
            f"{run['dag_run_id']}/{ti['task_id']}"
            for run in stack.dag_runs(dag_id)
            if run["run_type"] == "backfill" and run["state"] in ("queued", "running")
            for ti in stack.task_instances(dag_id, run["dag_run_id"])
            if ti["state"] in ("queued", "running") and not ti["task_id"].startswith("wait_")
        ]
        if busy:
            return busy
        time.sleep(0.3)
    raise RuntimeError(f"no task of a {dag_id} backfill seen in flight in {timeout:.0f} s")


def model_versions(stack: Any) -> list[str]:
    """The registered model's versions, in order."""
    import mlflow

    from mlops.registry.versions import MODEL_NAME

    client = mlflow.MlflowClient(stack.env["MLOPS_MLFLOW_TRACKING_URI"])
    found = client.search_model_versions(f"name = '{MODEL_NAME}'")
    return sorted((v.version for v in found), key=int)


def loop_closed(settings: Any, drift: date | None) -> Any:
    """True once a model was promoted after the drift: the loop has closed."""
    from mlops.registry.history import read_history

    def closed(day: date) -> bool:
        promoted = [
            e
            for e in read_history(settings)
            if e.action == "promoted" and drift and e.day > str(drift)
        ]
        return bool(promoted)

    return closed


def replay_days(config: LoopConfig, history_days: int) -> tuple[date, date]:
    """Three days the scheduler monitored, early in its run (before any rollout)."""
    first = min(history_days + 10, config.days - 3)
    return config.simulation().day(first), config.simulation().day(first + 2)


def task_placement(stack: Any) -> dict[str, Any]:
    """Every finished task instance: where it ran (host, executor, queue) and its overhead
    (queued to started), by DAG."""
    placed: list[dict[str, Any]] = []
    for dag_id in DAG_IDS:
        for run in stack.dag_runs(dag_id):
            for ti in stack.task_instances(dag_id, run["dag_run_id"]):
                if ti["state"] not in ("success", "failed"):
                    continue
                placed.append(
                    {
                        "dag_id": dag_id,
                        "task_id": ti["task_id"],
                        "state": ti["state"],
                        "hostname": ti.get("hostname"),
                        "executor": ti.get("executor"),
                        "queue": ti.get("queue"),
                        "duration_s": ti.get("duration"),
                        "wait_s": _seconds_between(ti.get("queued_when"), ti.get("start_date")),
                    }
                )
    return {"tasks": placed, "hosts": sorted({p["hostname"] or "" for p in placed})}


def task_work(placement: dict[str, Any]) -> dict[str, float]:
    """Seconds of task work by DAG (sensors' waiting excluded), as the demo reports it."""
    work: dict[str, float] = {}
    for task in placement["tasks"]:
        if task["duration_s"] and not task["task_id"].startswith("wait_"):
            work[task["dag_id"]] = work.get(task["dag_id"], 0.0) + task["duration_s"]
    return {name: round(seconds, 1) for name, seconds in work.items()}


def _seconds_between(earlier: str | None, later: str | None) -> float | None:
    from datetime import datetime

    if not earlier or not later:
        return None
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def run(args: argparse.Namespace) -> dict[str, Any]:
    from demo.airflow_stack import _exit_on_sigterm
    from demo.closed_loop import load_history, run_loop
    from demo.production_stack import SCHEDULER_RECOVERY, ProductionStack
    from demo.report import collect
    from mlops.io.storage import s3_options
    from mlops.settings import load_settings
    from mlops.simulator import simulate

    config, world = world_of(args)
    first, last, drift = days_of(config)
    _exit_on_sigterm()
    began = time.monotonic()
    stack = ProductionStack(args.home, world=world, env=SCHEDULER_RECOVERY, redis_db=args.redis_db)
    with stack:
        started_s = time.monotonic() - began
        os.environ.update({k: v for k, v in stack.env.items() if not k.startswith("AIRFLOW")})
        settings = load_settings()
        options = s3_options(
            endpoint_url=settings.s3_endpoint_url,
            key=os.environ["AWS_ACCESS_KEY_ID"],
            secret=os.environ["AWS_SECRET_ACCESS_KEY"],
            region=os.environ["AWS_DEFAULT_REGION"],
        )
        where = stack.where()
        print(f"stack up in {started_s:.0f} s: " + json.dumps(where, indent=1), flush=True)
        transactions = simulate(config.simulation())
        load_history(transactions, config, args.history_days, options)
        stack.start_model_service()
        stack.wait_for_dags(list(DAG_IDS))
        traffic = LiveTraffic(
            stack.service_url, transactions, args.live_per_day, stack.service_headers
        )
        loop_began = time.monotonic()
        landed = run_loop(
            stack,
            config,
            transactions,
            first_index=args.history_days,
            options=options,
            before_landing=traffic,
            until=None if args.all_days else loop_closed(settings, drift),
        )
        loop_s = time.monotonic() - loop_began
        manual = manual_training(stack, landed + timedelta(days=1))  # on the data there is
        backfill = monitoring_backfill(stack, settings, *replay_days(config, args.history_days))
        placement = task_placement(stack)
        timeline = collect(settings, first, last, drift)
        evidence = _rollout_evidence(settings, options)
        where = stack.where()  # again: the model service has started since
    return {
        "where": where,
        "world": {**asdict(config), "history_days": args.history_days},
        "seconds": {
            "start": round(started_s, 1),
            "loop": round(loop_s, 1),
            "total": round(time.monotonic() - began, 1),
            "task_work": task_work(placement),
        },
        "live_traffic": {
            "answered": traffic.answered,
            "failed": traffic.failed,
            "failures": traffic.failures,
        },
        "decisions": {str(d): x for d, x in timeline.decisions.items()},
        "deployments": [asdict(e) for e in timeline.deployments],
        "trainings": timeline.trainings,
        "rollouts": evidence,
        "manual_training": manual,
        "backfill": backfill,
        "placement": placement,
        "drift_start": str(drift),
    }


def _rollout_evidence(settings: Any, options: Any) -> list[dict[str, Any]]:
    """Every judged rollout: its verdict, reasons and health (rows by source)."""
    from mlops import zones
    from mlops.io import storage

    fs, path = storage.filesystem(settings.zone(zones.DEPLOYMENT_REPORTS), options)
    found = []
    for name in sorted(fs.ls(path, detail=False)) if fs.exists(path) else []:
        if name.endswith(".json"):
            evidence = json.loads(fs.cat(name))
            judgement = evidence["judgement"]
            found.append(
                {
                    "file": name.rsplit("/", 1)[-1],
                    "version": evidence["plan"]["request"]["version"],
                    "verdict": judgement["verdict"],
                    "reasons": judgement["reasons"],
                    "health": judgement["checks"].get("health"),
                }
            )
    return found


def summary(report: dict[str, Any]) -> str:
    tasks = report["placement"]["tasks"]
    by_host: dict[str, int] = {}
    for task in tasks:
        by_host[task["hostname"] or "?"] = by_host.get(task["hostname"] or "?", 0) + 1
    waits = sorted(t["wait_s"] for t in tasks if t["wait_s"] is not None)
    placed: dict[str, dict[str, int]] = {}
    for task in tasks:
        hosts = placed.setdefault(f"{task['dag_id']}.{task['task_id']}", {})
        host = task["hostname"] or "(no worker: EmptyOperator)"
        hosts[host] = hosts.get(host, 0) + 1
    lines = [
        f"executor {report['where']['executor']}; tasks by worker host: {by_host}",
        *(
            f"  {name}: " + ", ".join(f"{host} x{n}" for host, n in hosts.items())
            for name, hosts in sorted(placed.items())
        ),
        f"median queued-to-running {waits[len(waits) // 2]:.2f} s over {len(waits)} tasks"
        if waits
        else "no task timings",
        f"MLflow {report['where']['mlflow']}; data {report['where']['data_root']} "
        f"(buckets {', '.join(report['where']['buckets'])}); log {report['where']['prediction_log']}",
        "deployments: "
        + "; ".join(f"{e['day']} {e['action']} v{e['version']}" for e in report["deployments"]),
        "rollouts judged: "
        + "; ".join(
            f"v{r['version']} {r['verdict']} {r['health'] and r['health'].get('rows_by_source')}"
            for r in report["rollouts"]
        ),
        f"manual model_training: {report['manual_training']['state']}; "
        f"backfill of model_monitoring: {report['backfill']['states']} in "
        f"{report['backfill']['seconds']} s, scheduler killed after "
        f"{report['backfill']['scheduler_killed_after_s']} s, same records: "
        f"{report['backfill']['same_records']}, model versions "
        f"{report['backfill']['model_versions']}",
        f"wall time {report['seconds']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    args.home = args.home.resolve()
    from demo.production_stack import ProductionStack

    if swept := ProductionStack.sweep(args.home):
        print(f"dropped what a killed run left: {', '.join(swept)}", flush=True)
    shutil.rmtree(args.home, ignore_errors=True)  # a run starts from nothing
    report = run(args)
    text = json.dumps(report, indent=2, default=str)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text)
    print(summary(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
