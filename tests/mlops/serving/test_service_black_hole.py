"""The service in front of a Redis that accepts connections and never answers: /predict is
503 naming the cause (not the address) within MLOPS_REDIS_TIMEOUT_S, /live stays 200 and
prompt meanwhile, even with more requests waiting than the thread pool has threads (the
in-flight bound, which would refuse most of them at once, is raised here for that)."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from mlops.features.store import apply_definitions
from mlops.rollout.live import registry_client
from mlops.rollout.state import clear_rollout
from mlops.serving.process import ServiceProcess, request_body
from mlops.settings import load_settings
from tests.support.black_hole import black_hole
from tests.support.serving_world import served_transactions, set_alias

TIMEOUT_S = 2
WAITING = 120  # /predict requests at once: three times anyio's 40 worker threads


def timed_post(url: str, body: dict, headers: dict[str, str]) -> tuple[int, str, float]:
    began = time.perf_counter()
    response = httpx.post(url, headers=headers, json=body, timeout=60)
    return response.status_code, response.text, time.perf_counter() - began


def test_a_silent_redis_gives_503_within_the_timeout_while_live_stays_200(serving_world, tmp_path):
    uri = serving_world.settings.mlflow_tracking_uri
    set_alias(uri, "champion", "1")
    clear_rollout(registry_client(uri), "fraud_model")
    body = request_body(served_transactions(serving_world.root).head(3))
    with black_hole() as port:
        env = {
            **serving_world.env,
            "MLOPS_ONLINE_STORE": "redis",
            "MLOPS_REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "MLOPS_REDIS_TIMEOUT_S": str(TIMEOUT_S),
            "MLOPS_FEAST_REGISTRY": str(tmp_path / "registry.db"),
        }
        apply_definitions(load_settings(env))  # a local registry: Redis is not asked
        with ServiceProcess(
            env, MAX_IN_FLIGHT=str(WAITING + 1)
        ) as service:  # ready: the champion loaded, Redis silent
            status, text, seconds = timed_post(f"{service.url}/predict", body, service.headers)
            assert status == 503, text
            assert "online store unavailable (unreachable or too slow)" in text
            assert str(port) not in text  # the cause, not the address
            assert seconds < TIMEOUT_S + 1.5  # one try per request, not redis-py's retries

            with ThreadPoolExecutor(WAITING) as pool:
                answers = [
                    pool.submit(timed_post, f"{service.url}/predict", body, service.headers)
                    for _ in range(WAITING)
                ]
                live = []  # asked again and again while the requests wait on Redis
                while not all(a.done() for a in answers):
                    began = time.perf_counter()
                    response = httpx.get(f"{service.url}/live", timeout=30)
                    live.append((response.status_code, time.perf_counter() - began))
                    time.sleep(0.1)
                results = [a.result() for a in answers]
    assert {status for status, _, _ in results} == {503}
    assert len(live) >= 3 and {code for code, _ in live} == {200}
    # A /live that shared the pool with the waiting requests would queue behind them: three
    # rounds of Redis timeouts (120 requests, 40 threads), 6 s. The bounds leave room for a
    # loaded machine (the first probe races the 120 requests' start).
    assert statistics.median(seconds for _, seconds in live) < TIMEOUT_S / 2, live
    assert max(seconds for _, seconds in live) < 2 * TIMEOUT_S, live
    # each waits at most for two others' bounded waits for a thread, then its own
    assert max(seconds for _, _, seconds in results) < 3 * TIMEOUT_S + 3
