"""Two Airflow faults on the production profile (issue 16, item 7): a Celery worker killed
mid-task, a scheduler killed mid-backfill. ``make e2e-prod`` runs them after the closed loop.

The stack is ``demo.production_stack.ProductionStack`` (PostgreSQL, RabbitMQ, Redis db 12,
moto's S3, the MLflow server, Airflow on the CeleryExecutor) on a small world: 300 cards,
five days landed on S3 at once. ``transactions_daily`` runs only what a test asks for: its
start date is after its end date, so the scheduler creates no run of its own, while a manual
run (the ``day`` Param, no partition key) and a backfill (a partition range) run.

What Airflow 3.3 does (seen in the components' logs, and in its source):

- **Worker killed** (SIGKILL for the worker, its pool and the task's own process group: a
  lost machine) while ``validate_partition`` runs, then started again. RabbitMQ gives the
  unacknowledged message (``task_acks_late``) to the new worker, whose api-server refuses it:
  409 while the try is still ``running`` (``TaskAlreadyRunningError``, dropped), or an
  error once the try has been replaced (seen when the new worker took 26 s to start). The
  scheduler fails the try once its last heartbeat is older than
  ``task_instance_heartbeat_timeout`` ("heartbeat timeout" in the event log), and the task
  runs again as try 2 after its ``retry_delay``, on the new worker. Content-addressed
  publishing makes the retry write what a clean run writes: one version a day.
- **Scheduler killed** mid-backfill (a task on the worker, others scheduled), restarted 5 s
  later. The backfill's runs are rows the api-server wrote when it was created; the worker
  finishes what it holds and reports to the api-server; the new scheduler marks the dead one
  failed once it is 30 s silent and adopts its task instances; the backfill completes, no
  task needing a second try, one run a day.

The recovery timers are shortened (``RECOVERY``), so the module takes about 3 minutes on 2
quiet cores (stack up 30 s, worker kill 46 s, scheduler kill 72 s, stop 13 s), not a quarter
of an hour: that is all it changes.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from tests.support.leftovers import assert_nothing_left, group_alive

pytestmark = [
    pytest.mark.e2e_prod,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.timeout(900),  # the first test also starts the stack (its fixture)
]

DAG_ID = "transactions_daily"
WORKER, SCHEDULER = "celery worker", "scheduler"
REDIS_DB = "12"  # 13, 14 and 15 belong to the tests that may run beside this module
LANDED_DAYS = 5
# Tasks a kill may hit: each reads its input from the one before (an XCom), and publishes.
KILLABLE = ("validate_partition", "materialize_features", "score_transactions")
SENSORS = ("wait_for_landing_partition", "wait_for_earlier_days")
RUN_TIMEOUT_S = 300
HEARTBEAT = "heartbeat timeout"  # the event the scheduler logs when it fails a lost try
RECOVERY = {
    # a try whose worker died is failed after 20 s without a heartbeat (300 s by default);
    # the worker's supervisor heartbeats every 5 s ([workers] min_heartbeat_interval)
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    "MLOPS_RETRY_DELAY_S": "2",  # between tries (2 min in the DAG)
}


def world_config() -> Any:
    from demo.closed_loop import LoopConfig

    return LoopConfig(days=LANDED_DAYS + 1, drift="none", customers=300, terminals=600)


def world() -> dict[str, str]:
    """The loop's settings, with the start date after the end date and both outside the
    landed days: no scheduled run. The end is before the first day because Airflow 3.3.2
    schedules a partitioned DAG on from its latest backfill run (up to the end date), and a
    backfill run's run_after is its day, the one a scheduled run gets a day later."""
    from datetime import timedelta

    from demo.closed_loop import loop_environment

    config = world_config()
    settings = loop_environment(config, None)
    before_the_first = config.simulation().day(0) - timedelta(days=1)
    return {
        **settings,
        "MLOPS_START_DATE": config.simulation().day(config.days).isoformat(),
        "MLOPS_END_DATE": before_the_first.isoformat(),
    }


def days() -> list[str]:
    simulation = world_config().simulation()
    return [simulation.day(i).isoformat() for i in range(LANDED_DAYS)]


@pytest.fixture(scope="module")
def services(postgres_url, redis_url, rabbitmq_url) -> None:
    """The host's PostgreSQL, Redis and RabbitMQ (fail under CI=true when one is missing)."""


@pytest.fixture(scope="module")
def stack(services, tmp_path_factory) -> Any:
    """The production stack with the world's days landed and ``transactions_daily`` on."""
    from demo.production_stack import SCHEDULER_RECOVERY, ProductionStack

    home = tmp_path_factory.mktemp("stack-faults") / "home"
    began = time.monotonic()
    recovery = {**SCHEDULER_RECOVERY, **RECOVERY}
    with ProductionStack(home, world=world(), env=recovery, redis_db=REDIS_DB) as running:
        print(f"stack up in {time.monotonic() - began:.0f} s")
        config = world_config()
        land(running, config)
        running.wait_for_dags([DAG_ID])
        running.unpause(DAG_ID)
        yield running


@pytest.fixture(scope="module")
def seen() -> dict[str, Any]:
    """What a test found, for a later one: the versions the killed run published, the
    sessions of the components killed."""
    return {"versions": {}, "sessions": []}


def storage_options(stack: Any) -> dict[str, Any]:
    from mlops.io.storage import s3_options

    env = stack.env
    return s3_options(
        endpoint_url=env["MLOPS_S3_ENDPOINT_URL"],
        key=env["AWS_ACCESS_KEY_ID"],
        secret=env["AWS_SECRET_ACCESS_KEY"],
        region=env["AWS_DEFAULT_REGION"],
    )


def land(stack: Any, config: Any) -> None:
    from mlops.settings import load_settings
    from mlops.simulator import simulate, write_landing

    simulation = config.simulation()
    write_landing(
        simulate(simulation),
        load_settings(stack.env).landing_uri,
        simulation,
        storage_options=storage_options(stack),
        days=range(LANDED_DAYS),
    )


def day_partitions(stack: Any) -> list[str]:
    """Every zone transactions_daily publishes a partition a day in (the batch scoring
    publishes none without a champion)."""
    from mlops import zones
    from mlops.io import storage
    from mlops.settings import load_settings

    settings = load_settings(stack.env)
    snapshots = settings.zone(zones.SNAPSHOTS)
    return [
        *(settings.zone(z) for z in (zones.RAW, zones.VALIDATED, zones.QUARANTINE)),
        settings.zone(zones.DAILY_FEATURES),
        storage.join(snapshots, "customer"),
        storage.join(snapshots, "terminal"),
    ]


def published_versions(stack: Any, on_days: list[str]) -> tuple[dict[str, str], list[str]]:
    """The version each day's partition holds in each zone, and what is wrong: a day with
    no marker, or with a version folder besides the one its marker names."""
    from mlops.io import storage
    from mlops.io.partitions import read_partition, version_folders

    options = storage_options(stack)
    versions: dict[str, str] = {}
    problems: list[str] = []
    for root in day_partitions(stack):
        present = version_folders(root, options)
        for day in on_days:
            uri = storage.join(root, f"date={day}")
            marker = read_partition(uri, options)
            folders = present.get(f"date={day}", set())
            if marker is None:
                problems.append(f"{uri}: not published ({sorted(folders)} present)")
            elif folders != {marker.version}:
                problems.append(f"{uri}: versions {sorted(folders)}, marker {marker.version}")
            else:
                versions[uri] = marker.version
    return versions, problems


def task_states(stack: Any, run_id: str) -> dict[str, tuple[str | None, int]]:
    return {
        ti["task_id"]: (ti["state"], ti["try_number"])
        for ti in stack.task_instances(DAG_ID, run_id)
    }


def kill(stack: Any, component: str, seen: dict[str, Any]) -> None:
    seen["sessions"].append(stack.processes[component].pid)  # it led its session
    stack.kill_component(component)


def kill_the_worker_mid_task(
    stack: Any, run_id: str, seen: dict[str, Any], timeout: float = 240
) -> tuple[str, dict[str, tuple[str | None, int]]]:
    """SIGKILL the worker while one of ``KILLABLE`` runs; that task, and every task's state
    and try right after the kill. A task that ended between the look and the kill does not
    count: the worker starts again and the next task is the target."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = task_states(stack, run_id)
        running = [task for task in KILLABLE if states.get(task, (None, 0))[0] == "running"]
        if running:
            kill(stack, WORKER, seen)
            after = task_states(stack, run_id)
            if after[running[0]][0] == "running":
                return running[0], after
            stack.relaunch(WORKER)
        elif all(states.get(task, (None, 0))[0] == "success" for task in KILLABLE):
            break
        time.sleep(0.2)
    raise AssertionError(f"no task of {run_id} seen running to kill: {task_states(stack, run_id)}")


def test_a_task_whose_worker_is_killed_is_retried_once_and_publishes_its_day_once(stack, seen):
    day = days()[0]
    began = time.monotonic()
    run_id = stack.trigger(DAG_ID, conf={"day": day})  # a manual run: no logical date
    target, at_kill = kill_the_worker_mid_task(stack, run_id, seen)
    killed_after = time.monotonic() - began
    stack.relaunch(WORKER)
    run = stack.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT_S)
    states = task_states(stack, run_id)
    lost = sorted(task for task, (state, _) in at_kill.items() if state == "running")
    print(
        f"killed the worker in {target} {killed_after:.0f} s into the run (running then: "
        f"{lost}); run {run['state']} after {time.monotonic() - began:.0f} s: {states}"
    )
    assert run["state"] == "success", states
    assert {task for task, (state, _) in states.items() if state != "success"} == set()
    # the tries lost with the worker ran once more, and nothing else did
    assert {task: n for task, (_, n) in states.items() if n > 1} == {
        task: at_kill[task][1] + 1 for task in lost
    }
    tries = stack.api("GET", f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{target}/tries")
    tried = at_kill[target][1]
    assert [ti["try_number"] for ti in tries["task_instances"]] == [tried, tried + 1]
    logged = stack.api(
        "GET", "eventLogs", params={"dag_id": DAG_ID, "run_id": run_id, "event": HEARTBEAT}
    )["event_logs"]
    timeouts = sorted(e["task_id"] for e in logged)
    assert timeouts == lost, "the scheduler fails a lost try for its missing heartbeat"
    versions, problems = published_versions(stack, [day])
    assert problems == []
    seen["versions"] = versions


def wait_for_tasks_in_flight(stack: Any, timeout: float = 180) -> dict[str, Any]:
    """Until a backfill run has a finished task and one on the worker (running or queued):
    the runs have started and work is in flight. The runs' task states then."""
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        runs = [r for r in stack.dag_runs(DAG_ID) if r["run_type"] == "backfill"]
        seen = {
            r["dag_run_id"]: task_states(stack, r["dag_run_id"])
            for r in runs
            if r["state"] == "running"
        }
        tasks = [
            state
            for states in seen.values()
            for task, (state, _) in states.items()
            if task not in SENSORS
        ]
        if "success" in tasks and {"running", "queued"} & set(tasks):
            return seen
        time.sleep(0.3)
    raise AssertionError(f"no backfill run with work in flight: {seen}")


def wait_for_backfill_runs(stack: Any, count: int, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    runs: list[dict] = []
    while time.monotonic() < deadline:
        stack.check_alive()
        runs = [r for r in stack.dag_runs(DAG_ID) if r["run_type"] == "backfill"]
        if len(runs) >= count and all(r["state"] in ("success", "failed") for r in runs):
            return runs
        time.sleep(1)
    raise AssertionError(f"backfill not finished in {timeout:.0f} s: {runs}")


def wait_for_completion(stack: Any, backfill_id: int, timeout: float) -> str | None:
    """When the backfill was marked completed (None if not within ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done := stack.api("GET", f"backfills/{backfill_id}")["completed_at"]:
            return done
        time.sleep(1)
    return None


def recovery_lines(stack: Any) -> list[str]:
    """What the scheduler's log says about the dead scheduler and its task instances."""
    words = ("SchedulerJob instances as failed", "orphaned TaskInstances")
    text = (stack.log_dir / "scheduler.log").read_text(errors="replace")
    return [line.strip()[:200] for line in text.splitlines() if any(w in line for w in words)]


def test_a_backfill_whose_scheduler_is_killed_completes_once_a_day(stack, seen):
    on_days = days()
    began = time.monotonic()
    backfill = stack.create_backfill(
        DAG_ID, f"{on_days[0]}T00:00:00Z", f"{on_days[-1]}T00:00:00Z", max_active_runs=2
    )
    in_flight = wait_for_tasks_in_flight(stack)
    killed_after = time.monotonic() - began
    kill(stack, SCHEDULER, seen)
    time.sleep(5)  # the worker and the api-server go on without a scheduler
    stack.relaunch(SCHEDULER)
    runs = wait_for_backfill_runs(stack, len(on_days), RUN_TIMEOUT_S)
    retried = {
        (run["dag_run_id"], task): tries
        for run in runs
        for task, (_, tries) in task_states(stack, run["dag_run_id"]).items()
        if tries > 1
    }
    spans = {r["partition_key"]: (r["start_date"][11:19], r["end_date"][11:19]) for r in runs}
    print(
        f"killed the scheduler {killed_after:.0f} s into backfill {backfill['id']}, in flight: "
        f"{in_flight}; all {len(runs)} runs ended after {time.monotonic() - began:.0f} s; "
        f"tasks tried more than once: {retried or 'none'}; the scheduler's recovery: "
        f"{recovery_lines(stack)}; runs (start, end): {spans}"
    )
    keyed = [run["partition_key"] for run in stack.dag_runs(DAG_ID) if run["partition_key"]]
    assert Counter(keyed) == Counter(on_days), "exactly one run a day"
    states = {run["partition_key"]: run["state"] for run in runs}
    assert states == dict.fromkeys(on_days, "success")
    versions, problems = published_versions(stack, on_days)
    assert problems == []
    # the first day ran twice, with its worker killed and in the backfill: the same bytes
    assert {uri: versions.get(uri) for uri in seen["versions"]} == seen["versions"]
    # the scheduler closes a backfill whose runs have all ended (it looks every 30 s)
    assert wait_for_completion(stack, backfill["id"], timeout=60), backfill
    events = stack.api("GET", "assets/events", params={"source_dag_id": DAG_ID, "limit": 100})
    per_task = Counter((e["source_run_id"], e["source_task_id"]) for e in events["asset_events"])
    assert {key: n for key, n in per_task.items() if n != 1} == {}, "one asset event a task"


def test_nothing_is_left_after_the_stack_stops(stack, seen):
    """Every process of the stack, task processes (in process groups of their own) and the
    killed components' included, is gone: no session of a component has a member left."""
    from demo.airflow_stack import session_members

    where = stack.where()
    began = time.monotonic()
    stack.stop()
    stopped = time.monotonic() - began
    sessions = [*where["process_groups"].values(), *seen["sessions"]]
    assert {s: session_members(s) for s in sessions if session_members(s)} == {}
    # what SIGKILL reached is dead; its parent (or init) reaps it a moment later
    deadline = time.monotonic() + 20
    while any(map(group_alive, sessions)) and time.monotonic() < deadline:
        time.sleep(0.2)
    print(
        f"stopped in {stopped:.0f} s, groups gone {time.monotonic() - began - stopped:.1f} s later"
    )
    assert_nothing_left(where)
