"""The online store: materialisation throughput and lookup latency, SQLite and Redis.

Data: the full default simulation (183 days); the snapshots of its last ``DAYS`` days are
materialised one day at a time, as ``transactions_daily`` does, into a fresh store of each
kind. The first day pays for warming up (DuckDB, ibis, the registry) and is reported apart;
throughput is entity rows (cards + terminals) per second over the other days. Redis runs
on ``BENCH_REDIS_URL`` (default db 14 of the local Redis, flushed before and after); its
throughput is compared with ``redis-benchmark -t set -P 16 -q -n 200000`` on the same
server, plain pipelined SETs, an upper bound no store of hashes per entity can reach.
Lookups: ``LOOKUPS`` calls of ``mlops.features.online.online_features`` (the feature service
read plus the request-time arithmetic) and of Feast's bare ``get_online_features``, one
transaction of the following day each.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlops import zones

DAYS = 4
LOOKUPS = 250
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def redis_reason(url: str) -> str | None:
    """None when Redis answers, else why the Redis figures are skipped."""
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as err:  # any failure means: no Redis figures, with the reason
        return f"Redis not reachable at {url}: {err}"
    return None


def redis_benchmark(url: str) -> dict[str, Any]:
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return {"status": "redis-benchmark not installed"}
    parts = urlsplit(url)
    command = [binary, "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
    command += ["-t", "set", "-P", "16", "-q", "-n", "200000"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300).stdout
    found = re.findall(r"SET: ([\d.]+) requests per second", out)
    if not found:
        return {"status": "unparsed output", "output": out[-500:]}
    return {"command": " ".join(command[1:]), "set_per_s": round(float(found[-1]))}


def percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "calls": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 3),
    }


def materialise(settings: Any, days: list[Any]) -> dict[str, Any]:
    from mlops.features.online import materialize_day
    from mlops.features.store import apply_definitions, feature_store

    store = feature_store(settings)
    apply_definitions(settings, store)
    runs = []
    for day in days:
        began = time.perf_counter()
        result = materialize_day(settings, day, store=store)
        seconds = time.perf_counter() - began
        rows = result.customers + result.terminals
        runs.append({"day": str(day), "rows": rows, "seconds": round(seconds, 3)})
    warm = runs[1:]
    rows, seconds = sum(r["rows"] for r in warm), sum(r["seconds"] for r in warm)
    return {
        "days": runs,
        "first_day_rows_per_s": round(runs[0]["rows"] / runs[0]["seconds"]),
        "rows_per_s": round(rows / seconds),
    }


def lookups(settings: Any, transactions: Any) -> dict[str, Any]:
    from mlops.features.names import FEATURE_SERVICE
    from mlops.features.online import online_features
    from mlops.features.store import feature_store

    store = feature_store(settings)
    rows = transactions.sample(n=LOOKUPS, random_state=0).itertuples(index=False)
    rows = list(rows)
    service = store.get_feature_service(FEATURE_SERVICE, allow_cache=True)
    online_features(store, rows[0].CUSTOMER_ID, rows[0].TERMINAL_ID, rows[0]._asdict())
    served, bare = [], []
    for tx in rows:
        began = time.perf_counter()
        online_features(store, tx.CUSTOMER_ID, tx.TERMINAL_ID, tx._asdict())
        served.append(time.perf_counter() - began)
        entity = {"CUSTOMER_ID": int(tx.CUSTOMER_ID), "TERMINAL_ID": int(tx.TERMINAL_ID)}
        began = time.perf_counter()
        store.get_online_features(
            features=service, entity_rows=[entity], full_feature_names=True
        ).to_dict()
        bare.append(time.perf_counter() - began)
    return {"online_features": percentiles(served), "feast_get_online_features": percentiles(bare)}


def run() -> dict[str, Any]:
    from bench.features_bench import write_validated
    from mlops.features.pipeline import build_day_features
    from mlops.settings import load_settings
    from mlops.simulator import SimulationConfig, simulate

    config = SimulationConfig()
    figures: dict[str, Any] = {"days_materialised": DAYS, "lookups": LOOKUPS}
    with tempfile.TemporaryDirectory(prefix="mlops-feast-bench-") as tmp:
        root = Path(tmp)
        frame = simulate(config)
        write_validated(
            frame,
            root / zones.VALIDATED,
            config,
        )
        last = config.day(config.n_days - 1)
        days = [last - timedelta(days=DAYS - i) for i in range(DAYS)]
        env = {"MLOPS_DATA_ROOT": str(root), "MLOPS_HISTORY_START": str(config.start_date)}
        began = time.perf_counter()
        for day in days:
            build_day_features(load_settings(env), day)
        figures["build_day_features_s_per_day"] = round((time.perf_counter() - began) / DAYS, 3)
        next_day = frame[frame["TX_DATETIME"].dt.date == last]
        stores = {"sqlite": {"MLOPS_FEAST_REGISTRY": str(root / zones.FEAST / "sqlite.db")}}
        reason = redis_reason(REDIS_URL)
        if reason is None:
            stores["redis"] = {
                "MLOPS_ONLINE_STORE": "redis",
                "MLOPS_REDIS_URL": REDIS_URL,
                "MLOPS_FEAST_REGISTRY": str(root / zones.FEAST / "redis.db"),
            }
        else:
            figures["redis"] = {"skipped": reason}
        for name, extra in stores.items():
            settings = load_settings(env | extra)
            if name == "redis":
                _flush(REDIS_URL)
            try:
                figures[name] = {
                    "materialize": materialise(settings, days),
                    "lookup": lookups(settings, next_day),
                }
            finally:
                if name == "redis":
                    _flush(REDIS_URL)
        if reason is None:
            benchmark = redis_benchmark(REDIS_URL)
            figures["redis"]["redis_benchmark"] = benchmark
            if "set_per_s" in benchmark:
                rate = figures["redis"]["materialize"]["rows_per_s"]
                figures["redis"]["ratio_rows_to_pipelined_sets"] = round(
                    rate / benchmark["set_per_s"], 4
                )
    return figures


def _flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
