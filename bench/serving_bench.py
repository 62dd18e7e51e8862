"""The model service under bounded load, from another process on loopback.

The service (``python -m mlops.serving.app``, uvicorn) runs as a subprocess on the world of
``tests.support.serving_world``: 50 simulated days, the online store as of the served day's
eve, one registered HGB as champion. This process sends single-transaction ``/predict``
requests at a fixed rate (``BENCH_SERVING_RPS``, default 200/s) for ``BENCH_SERVING_S``
seconds (default 30), open loop: request i is due at t0 + i/rate whatever the earlier ones
did, from a few client threads with keep-alive connections; then again at ``BENCH_SERVING_LIGHT_RPS``
(default 40/s), below saturation, to separate the service's latency from queueing. Latency is measured from the
send to the full response (the lookup of both entities through ``fraud_model_v1``, the
request-time features, the model, the log submission and HTTP); ``late_ms`` says how far
behind schedule the client itself fell (a loaded host delays the sender, not only the
server). Figures for the SQLite online store, and for Redis when ``BENCH_REDIS_URL``
(default db 14 of the local Redis) answers. ``direct_predict`` is the same model's
``predict_proba`` on a one-row DataFrame in this process: the ratio says what serving adds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

DURATION_S = float(os.environ.get("BENCH_SERVING_S", "30"))
RATE = float(os.environ.get("BENCH_SERVING_RPS", "200"))
LIGHT_RATE = float(os.environ.get("BENCH_SERVING_LIGHT_RPS", "40"))
CLIENT_THREADS = 8
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3, 3)

    return {"p50_ms": at(0.50), "p90_ms": at(0.90), "p99_ms": at(0.99), "max_ms": at(1.0)}


def load(
    url: str, bodies: list[dict], duration_s: float, rate: float, headers: dict[str, str]
) -> dict[str, Any]:
    """Open-loop load: ``rate`` requests a second for ``duration_s`` seconds (``headers``:
    the service's bearer token)."""
    import httpx

    total = int(duration_s * rate)
    latencies: list[list[float]] = [[] for _ in range(CLIENT_THREADS)]
    lateness: list[list[float]] = [[] for _ in range(CLIENT_THREADS)]
    errors: list[list[str]] = [[] for _ in range(CLIENT_THREADS)]
    start = time.perf_counter() + 0.5

    def client(k: int) -> None:
        with httpx.Client(timeout=10, headers=headers) as http:
            for i in range(k, total, CLIENT_THREADS):
                due = start + i / rate
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                sent = time.perf_counter()
                lateness[k].append(sent - due)
                try:
                    response = http.post(f"{url}/predict", json=bodies[i % len(bodies)])
                    if response.status_code != 200:
                        errors[k].append(f"{response.status_code}: {response.text[:200]}")
                except httpx.HTTPError as err:
                    errors[k].append(repr(err))
                latencies[k].append(time.perf_counter() - sent)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENT_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    flat = [x for part in latencies for x in part]
    late = sorted(x for part in lateness for x in part)
    failed = [e for part in errors for e in part]
    return {
        "requests": len(flat),
        "seconds": round(elapsed, 2),
        "throughput_per_s": round(len(flat) / elapsed, 1),
        "target_per_s": rate,
        **percentiles(flat),
        "late_p99_ms": round(late[int(0.99 * (len(late) - 1))] * 1e3, 3) if late else None,
        "errors": len(failed),
        "first_errors": failed[:3],
    }


def direct_predict(model: Any, rows: Any, calls: int = 2000) -> dict[str, float]:
    from mlops.features.names import FEATURES

    frames = [rows.iloc[[i % len(rows)]][list(FEATURES)] for i in range(calls)]
    for frame in frames[:50]:
        model.predict_proba(frame)
    seconds = []
    for frame in frames:
        began = time.perf_counter()
        model.predict_proba(frame)
        seconds.append(time.perf_counter() - began)
    return percentiles(seconds)


def redis_settings(world: Any, url: str) -> dict[str, str] | None:
    """Materialise the same day into Redis (own Feast registry); None when Redis is down."""
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2).flushdb()
    except Exception:  # no Redis: the SQLite figures stand alone
        return None
    from tests.support.serving_world import with_redis_online_store

    return with_redis_online_store(world, url)


def serve_and_load(env: dict[str, str], bodies: list[dict]) -> dict[str, Any]:
    from mlops.serving.process import ServiceProcess

    with ServiceProcess(env, poll_s=5) as service:
        load(service.url, bodies[:50], 3, 50, service.headers)  # warm-up, not counted
        figures = load(service.url, bodies, DURATION_S, RATE, service.headers)
        figures["startup_to_ready_s"] = round(service.started_s, 2)
        # below saturation: the service's own latency, without queueing behind the target rate
        figures["at_light_load"] = load(
            service.url, bodies, DURATION_S, LIGHT_RATE, service.headers
        )
    return figures


def run() -> dict[str, Any]:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from mlops.rollout.live import load_version
    from mlops.serving.process import request_body
    from mlops.serving.startup import cap_native_threads
    from tests.support.serving_world import (
        build_world,
        register_model,
        served_transactions,
        set_alias,
    )

    cap_native_threads(1)
    root = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    try:
        world = build_world(root)
        uri = world.settings.mlflow_tracking_uri
        version = register_model(uri, root, seed=1, max_iter=50)
        set_alias(uri, "champion", version)
        rows = served_transactions(root)
        bodies = [request_body(rows.iloc[[i]]) for i in range(len(rows))]
        direct = direct_predict(load_version(uri, "fraud_model", version), rows)
        out: dict[str, Any] = {"rows_served": len(rows), "direct_predict": direct}
        out["sqlite"] = serve_and_load(world.env, bodies)
        redis_env = redis_settings(world, REDIS_URL)
        out["redis"] = (
            serve_and_load(redis_env, bodies)
            if redis_env
            else {"status": f"Redis not reachable at {REDIS_URL}"}
        )
        for store in ("sqlite", "redis"):
            if "p50_ms" in out[store] and direct.get("p50_ms"):
                out[store]["ratio_p50_to_direct_predict"] = round(
                    out[store]["p50_ms"] / direct["p50_ms"], 1
                )
        out["aim"] = "p99 < 10 ms at 200 requests/s, 0 errors"
        out["load"] = {"duration_s": DURATION_S, "rate_per_s": RATE, "threads": CLIENT_THREADS}
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
