"""The production profile end to end (``make e2e-prod``): every component a real process on
this host (PostgreSQL, RabbitMQ, Redis, moto's S3 server, the MLflow server, Airflow on the
CeleryExecutor, the model service), the closed loop through it, judged by its report; and
nothing left behind, whether the run ends or is interrupted.

The whole loop (``-m e2e_prod``, ``make e2e-prod``) takes about 25 minutes on 2 cores; the
default selection leaves it out, and ``make test`` runs it beside the rest of the suite (the
start-and-stop tests of the same stack run in the suite)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mlops.registry.history import MOVES
from tests.support.airflow_api import listening_addresses, status, token
from tests.support.leftovers import assert_nothing_left, group_alive, processes_of

RUN_TIMEOUT_S = 50 * 60
pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.timeout(RUN_TIMEOUT_S + 600),  # the run is the first test's fixture
]

REPO = Path(__file__).resolve().parents[2]
DRIVER = [sys.executable, str(REPO / "demo" / "e2e_prod.py")]


def driver_env() -> dict[str, str]:
    """The driver builds every setting itself: nothing of the test session leaks in."""
    leaky = ("AIRFLOW", "MLOPS_", "AWS_")
    return {k: v for k, v in os.environ.items() if not k.startswith(leaky)}


@pytest.fixture(scope="module")
def services(postgres_url, redis_url, rabbitmq_url) -> None:
    """The host's PostgreSQL, Redis and RabbitMQ (fail under CI=true when one is missing)."""


@pytest.fixture(scope="module")
def report(services, tmp_path_factory) -> dict:
    """One whole run of the driver (``make e2e-prod``), its report and its output."""
    root = tmp_path_factory.mktemp("e2e-prod")
    out, log = root / "report.json", root / "driver.log"
    argv = [*DRIVER, "--home", str(root / "home"), "--report", str(out)]
    with log.open("wb") as handle:
        driver = subprocess.Popen(argv, env=driver_env(), stdout=handle, stderr=subprocess.STDOUT)
    try:
        returncode = driver.wait(timeout=RUN_TIMEOUT_S)
    finally:  # interrupted or timed out: SIGTERM lets the driver stop what it started
        if driver.poll() is None:
            driver.terminate()
            try:
                driver.wait(timeout=180)
            except subprocess.TimeoutExpired:
                driver.kill()
    assert returncode == 0, log.read_text(errors="replace")[-5000:]
    found = json.loads(out.read_text())
    found["driver_log"] = log.read_text(errors="replace")
    return found


def tasks(report: dict) -> list[dict]:
    return report["placement"]["tasks"]


@pytest.mark.e2e_prod
def test_every_task_ran_on_the_celery_worker(report):
    assert report["where"]["executor"] == "CeleryExecutor"
    assert urlsplit(report["where"]["broker"]).scheme == "amqp"
    finished = tasks(report)
    assert all(t["state"] == "success" for t in finished), [
        (t["dag_id"], t["task_id"]) for t in finished if t["state"] != "success"
    ]
    # EmptyOperators are marked done by the scheduler and run nowhere; every other task ran
    # on the one Celery worker of this host
    ran = [t for t in finished if t["duration_s"]]
    assert len(ran) > 100
    assert {t["hostname"] for t in ran} <= {socket.gethostname(), socket.getfqdn()}
    for dag_id in ("transactions_daily", "model_monitoring", "model_training", "model_deployment"):
        assert any(t["dag_id"] == dag_id for t in ran), dag_id


@pytest.mark.e2e_prod
def test_the_first_model_is_deployed_and_a_canary_after_the_drift_is_promoted(report):
    actions = [(e["action"], e["version"]) for e in report["deployments"]]
    assert actions[0] == ("deployed", "1")
    drift = report["drift_start"]
    started = [e for e in report["deployments"] if e["action"] == "rollout_started"]
    promoted = [e for e in report["deployments"] if e["action"] == "promoted"]
    assert started and promoted, actions
    assert promoted[-1]["day"] > drift


@pytest.mark.e2e_prod
def test_a_breach_after_the_drift_asks_for_a_retrain_that_goes_through_the_gate(report):
    drift = report["drift_start"]
    breaches = [d for d, x in report["decisions"].items() if x.get("breach") and d >= drift]
    assert breaches
    retrains = [d for d, x in report["decisions"].items() if x["action"] == "retrain"]
    assert any(d >= breaches[0] for d in retrains)
    outcomes = {t["outcome"] for t in report["trainings"]}
    assert outcomes <= {"approve", "reject", "needs_review"} and "approve" in outcomes


@pytest.mark.e2e_prod
def test_the_promoted_canary_was_judged_on_live_requests_and_batch_rows(report):
    promoted = [r for r in report["rollouts"] if r["verdict"] == "promote"]
    assert promoted, report["rollouts"]
    sources = promoted[-1]["health"]["rows_by_source"]
    assert sources.get("service", 0) > 0 and sources.get("batch", 0) > 0, sources
    assert not report["live_traffic"]["failed"], report["live_traffic"]["failures"]
    assert sum(report["live_traffic"]["answered"].values()) > 0


@pytest.mark.e2e_prod
def test_a_manual_training_run_with_params_through_the_rest_api(report):
    manual = report["manual_training"]
    assert manual["state"] == "success"
    assert manual["conf"]["family"] == "logistic_regression"
    assert manual["logged"]["runs"] == 1
    logged = manual["logged"]["params"]
    assert (logged["family"], logged["hp.C"], logged["seed"]) == ("logistic_regression", "0.5", "7")
    # force_review: gated and recorded, never deployed (an approval becomes needs_review; a
    # logistic regression against the boosted champion may also be rejected outright)
    assert manual["logged"]["tags"]["mlops.gate_outcome"] in {"needs_review", "reject"}
    moves = [e for e in report["deployments"] if e["action"] in MOVES]
    assert moves[-1]["action"] == "promoted"  # the loop's, nothing after it
    # a review nobody answers (MLOPS_REVIEW_TIMEOUT_H of the loop) times out, recorded
    reviews = [e for e in report["deployments"] if e["run_id"] == manual["run_id"]]
    if manual["logged"]["tags"]["mlops.gate_outcome"] == "needs_review":
        assert [(e["action"], e["details"]["stage"]) for e in reviews] == [
            ("approval_timed_out", "review")
        ]
    else:
        assert reviews == []


@pytest.mark.e2e_prod
def test_no_review_of_the_unattended_loop_let_a_candidate_through(report):
    """Nobody answers a review in the loop: each needs_review candidate's review timed out
    and it was never rolled out."""
    reviewed = [e for e in report["deployments"] if e["details"].get("stage") == "review"]
    assert {e["action"] for e in reviewed} <= {"approval_timed_out"}
    rolled_out = {e["version"] for e in report["deployments"] if e["action"] in MOVES}
    assert not rolled_out & {e["version"] for e in reviewed}


@pytest.mark.e2e_prod
def test_a_backfill_through_the_rest_api_survives_its_scheduler_killed(report):
    """The scheduler is SIGKILLed while the backfill has work in flight and started again:
    the backfill completes, one run a day, the same summaries and decisions, no new model
    version (a replayed day reuses its recorded retrain decision, never trains again)."""
    backfill = report["backfill"]
    assert backfill["in_flight_at_kill"]
    assert backfill["states"] and set(backfill["states"]) == {"success"}
    assert len(backfill["states"]) == len(backfill["days"])
    assert backfill["runs_a_day"] == dict.fromkeys(backfill["days"], 1)
    assert backfill["same_records"]
    versions = backfill["model_versions"]
    assert versions["after"] == versions["before"] and versions["before"]


@pytest.mark.e2e_prod
def test_nothing_is_left_after_the_run(report):
    assert_nothing_left(report["where"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_run_leaves_nothing_running(services, tmp_path, sig):
    """SIGTERM (twice: a second signal must not cut the stop short): the driver stops every
    component and drops its stores. SIGKILL: the components follow their parent (the
    parent-death signal), and the next run on the same home drops the stores."""
    from demo.production_stack import ProductionStack

    home = tmp_path / "home"
    # Redis db 13: the whole run (db 14) may be going on beside this test (`make test`)
    argv = [
        *DRIVER,
        "--home",
        str(home),
        "--days",
        "70",
        "--history-days",
        "60",
        "--redis-db",
        "13",
    ]
    log = tmp_path / "driver.log"
    with log.open("wb") as handle:
        driver = subprocess.Popen(argv, env=driver_env(), stdout=handle, stderr=subprocess.STDOUT)
    try:
        where = wait_for_stack(driver, log, timeout=600)
        if sig == signal.SIGTERM:  # once is enough: the API of the production profile
            assert_api_needs_a_token(where, home)
        driver.send_signal(sig)
        if sig != signal.SIGKILL:
            time.sleep(1)
            driver.send_signal(sig)
        assert driver.wait(timeout=180) != 0
    finally:
        if driver.poll() is None:
            driver.kill()
    run = urlsplit(where["broker"]).path.strip("/")
    if sig == signal.SIGKILL:
        groups = where["process_groups"].values()
        wait_until(lambda: not processes_of(run) and not any(map(group_alive, groups)), 90)
        assert sorted(ProductionStack.sweep(home))
    assert_nothing_left(where)


def assert_api_needs_a_token(where: dict, home: Path) -> None:
    """The api-server on loopback only; a call without a token refused, with one answered."""
    from demo.production_stack import ADMIN_PASSWORD_FILE

    url = where["airflow"]
    assert listening_addresses(where["ports"]["api"]) == {"127.0.0.1"}
    password = json.loads((home / ADMIN_PASSWORD_FILE).read_text())["admin"]
    assert (status(url), status(url, token=token(url, password))) == (401, 200)


def wait_until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(1)


def wait_for_stack(driver: subprocess.Popen, log: Path, timeout: float) -> dict:
    """The ``where`` block the driver prints once every component is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert driver.poll() is None, log.read_text(errors="replace")[-3000:]
        text = log.read_text(errors="replace")
        if "stack up in" in text:
            block = text.split("stack up in", 1)[1].split(":", 1)[1]
            return json.JSONDecoder().raw_decode(block.lstrip())[0]  # nested: ports, groups
        time.sleep(1)
    raise AssertionError("the stack did not come up: " + log.read_text(errors="replace")[-3000:])
