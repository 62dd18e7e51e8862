"""The model service under faults, in the middle of a canary, on the production stores: a
private Redis as the online store (a ``redis-server`` of the test, never the system one) and
a PostgreSQL prediction log. One service process for the module (its start is the cost).

What must hold:
- Redis stopped: ``/predict`` answers 503 naming the store, ``/live`` stays 200; once Redis
  is back the same process answers 200 again, with the same features, without a restart;
- the service restarted under a steady stream of requests: the routing (challenger, share,
  which card goes where) is the same after the restart, since it lives in the registry's
  rollout tag; every request answered 200 is in the prediction log, the ones in flight at
  the stop included (uvicorn drains them, the log is flushed on shutdown); a request the
  stopped service refused is sent again by the client and answered once it is back.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest

from mlops.features.online import materialize_day
from mlops.features.store import apply_definitions, feature_store
from mlops.rollout.live import registry_client
from mlops.rollout.state import RolloutState, clear_rollout, route, write_rollout
from mlops.scoring.log import PostgresSink
from mlops.serving.process import ServiceProcess, request_body
from mlops.settings import load_settings
from tests.support.mlflow_server import scratch_database
from tests.support.redis_server import RedisServer, redis_server
from tests.support.serving_world import SERVED, served_transactions, set_alias

pytestmark = pytest.mark.integration
TIMEOUT_S = 1
BEFORE, AFTER = 40, 40  # answers wanted before the stop and after the restart
CANARY = RolloutState("canary", "2", 0.5, SERVED.isoformat(), "1")


@dataclass
class Canary:
    service: ServiceProcess
    redis: RedisServer
    log_url: str
    answered: Counter = field(default_factory=Counter)  # request id -> transactions


@pytest.fixture(scope="module")
def canary(serving_world, redis_url, postgres_url, tmp_path_factory):
    """The service on a private Redis and a PostgreSQL log, champion 1, v2 in a 50% canary.
    (``redis_url`` only gates the module on Redis: CI=true fails rather than skips.)"""
    folder = tmp_path_factory.mktemp("serving-faults")
    uri = serving_world.settings.mlflow_tracking_uri
    client = registry_client(uri)
    with redis_server(folder) as redis, scratch_database(postgres_url, "log") as log_url:
        env = {
            **serving_world.env,
            "MLOPS_ONLINE_STORE": "redis",
            "MLOPS_REDIS_URL": redis.url(0),
            "MLOPS_REDIS_TIMEOUT_S": str(TIMEOUT_S),
            "MLOPS_FEAST_REGISTRY": str(folder / "feast" / "registry.db"),
            "MLOPS_PREDICTION_LOG_URL": log_url,
        }
        settings = load_settings(env)
        apply_definitions(settings)
        materialize_day(settings, SERVED - timedelta(days=1), store=feature_store(settings))
        set_alias(uri, "champion", "1")
        write_rollout(client, "fraud_model", CANARY)
        service = ServiceProcess(env)
        try:
            service.start()
            yield Canary(service, redis, log_url)
        finally:
            service.stop()
            clear_rollout(client, "fraud_model")


def test_redis_down_gives_503_naming_it_and_the_same_process_recovers(canary, serving_world):
    body = request_body(served_transactions(serving_world.root).head(5))
    url, headers = canary.service.url, canary.service.headers

    def predict() -> httpx.Response:
        response = httpx.post(f"{url}/predict", headers=headers, json=body, timeout=30)
        if response.status_code == 200:
            canary.answered[response.json()["request_id"]] += len(body["transactions"])
        return response

    before = predict()
    assert before.status_code == 200, before.text
    canary.redis.stop()
    try:
        began = time.perf_counter()
        down = [predict() for _ in range(3)]
        assert time.perf_counter() - began < 3 * (TIMEOUT_S + 1.5)
        assert [r.status_code for r in down] == [503] * 3, [r.text for r in down]
        # the cause, not the address: the service's log has that (mlops.serving.guard)
        assert all("online store unavailable" in r.text for r in down), [r.text for r in down]
        assert not any(str(canary.redis.port) in r.text for r in down)
        assert httpx.get(f"{url}/live", timeout=10).status_code == 200
    finally:
        canary.redis.start()  # it saved its data set on SIGTERM, as `docker stop` has it
    began, answers = time.perf_counter(), []
    while time.perf_counter() - began < 20:
        answers.append(predict())
        if answers[-1].status_code == 200:
            break
        time.sleep(0.2)
    assert answers[-1].status_code == 200, [r.text for r in answers]
    assert len(answers) <= 2, [r.text for r in answers]  # at most one stale connection
    assert canary.service.process.poll() is None  # the same process: no restart
    scores = [[p["score"] for p in r.json()["predictions"]] for r in (before, answers[-1])]
    assert scores[0] == scores[1]


class Client:
    """Sends one transaction a request, in order, until stopped; a refused connection is
    retried with the same transaction (what a client with retries does)."""

    def __init__(self, url: str, rows, headers: dict[str, str]) -> None:
        self.url, self.rows, self.headers = url, rows, headers
        self.answered: list[dict] = []  # one per 200: request id, card, variant, version
        self.refused = 0
        self.other: list[tuple[int, str]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=30, headers=self.headers) as http:
            i = 0
            while not self.stop.is_set():
                row = self.rows.iloc[[i % len(self.rows)]]
                try:
                    response = http.post(f"{self.url}/predict", json=request_body(row))
                except httpx.TransportError:
                    self.refused += 1
                    time.sleep(0.05)
                    continue
                if response.status_code != 200:
                    self.other.append((response.status_code, response.text[:300]))
                    time.sleep(0.05)
                    continue
                body = response.json()
                answer = body["predictions"][0]
                self.answered.append(
                    {
                        "request_id": body["request_id"],
                        "customer_id": int(row["CUSTOMER_ID"].iloc[0]),
                        "variant": answer["variant"],
                        "model_version": answer["model_version"],
                    }
                )
                i += 1

    def wait_for(self, count: int, timeout_s: float) -> None:
        began = time.perf_counter()
        while len(self.answered) < count:
            if time.perf_counter() - began > timeout_s or not self.thread.is_alive():
                raise TimeoutError(f"{len(self.answered)} answers, {self.other[-3:]}")
            time.sleep(0.05)


def test_a_restart_during_the_canary_keeps_the_routing_and_loses_no_answered_request(
    canary, serving_world
):
    service = canary.service
    sender = Client(service.url, served_transactions(serving_world.root).head(200), service.headers)
    before = httpx.get(f"{service.url}/health", headers=service.headers, timeout=10).json()
    sender.thread.start()
    try:
        sender.wait_for(BEFORE, 120)
        service.stop()  # SIGTERM: in-flight requests finish, the log is flushed
        stopped_at = len(sender.answered)
        service.start()
        after = httpx.get(f"{service.url}/health", headers=service.headers, timeout=10).json()
        sender.wait_for(stopped_at + AFTER, 120)
    finally:
        sender.stop.set()
        sender.thread.join(timeout=60)
    service.stop()  # flushes the log before it is read (the fixture's stop is then a no-op)

    for health in (before, after):
        assert (health["champion"], health["challenger"]) == ("1", "2")
        assert health["rollout"] == CANARY.to_dict()
    assert sender.refused > 0  # the client did meet the stopped service
    assert sender.other == []  # never a 5xx: a service not ready yet is not listening yet
    versions = {"champion": "1", "challenger": "2"}
    for answer in sender.answered:
        assert answer["variant"] == route(answer["customer_id"], CANARY), answer
        assert answer["model_version"] == versions[answer["variant"]]
    halves = (sender.answered[:stopped_at], sender.answered[stopped_at:])
    assert all({a["variant"] for a in half} == {"champion", "challenger"} for half in halves)

    canary.answered.update(a["request_id"] for a in sender.answered)
    logged = PostgresSink(canary.log_url).read_day("service", SERVED)
    assert Counter(logged["request_id"]) == canary.answered  # each answer once, none extra
    print(f"{len(sender.answered)} answered, {sender.refused} refused while restarting")
