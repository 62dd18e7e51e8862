"""The model service during a canary and across a champion move, at the target rate.

Part of ``bench.serving_bench`` (same world, same open-loop generator, same service process):

- ``canary``: a second version (the same pipeline, another seed) in a canary at half the
  cards, so every request is scored by both models; the target rate for ``BENCH_SERVING_S``
  and the saturation ladder, as for the champion alone.
- ``champion_move``: the target rate for ``BENCH_SERVING_MOVE_S`` (30 s); a third of the way
  in, the ``champion`` alias moves to a version the service has not loaded. Reported: the
  service's own ``fraud_model_swap_seconds`` (from the registry read that saw the move to the
  new models serving: download, digest and trust checks, the row scorer's compile and
  probe), the seconds from the alias move until ``/health`` names the new champion (the
  poll interval included), and the run's p50/p99/max: every request of the run, the ones
  during the swap among them.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx

MODEL = "fraud_model"
MOVE_S = float(os.environ.get("BENCH_SERVING_MOVE_S", "30"))
POLL_S = 1.0  # the move's run: the registry poll every second


def _health(service: Any) -> dict[str, Any]:
    return httpx.get(f"{service.url}/health", headers=service.headers, timeout=10).json()


def _wait(check: Any, timeout_s: float = 120) -> float:
    began = time.perf_counter()
    while not check():
        if time.perf_counter() - began > timeout_s:
            raise TimeoutError("the service did not take up the registry's move")
        time.sleep(0.02)
    return time.perf_counter() - began


def _swap_seconds(service: Any) -> float:
    text = httpx.get(f"{service.url}/metrics", headers=service.headers, timeout=10).text
    line = next(x for x in text.splitlines() if x.startswith("fraud_model_swap_seconds "))
    return float(line.split()[1])


def canary(world: Any, bodies: Path, champion: str, challenger: str) -> dict[str, Any]:
    """Both models scored on every request: the target rate and the saturation ladder."""
    from bench.serving_bench import DURATION_S, RATE, generate, saturation, token_file
    from mlops.rollout.live import registry_client
    from mlops.rollout.state import RolloutState, clear_rollout, write_rollout
    from mlops.serving.process import ServiceProcess
    from tests.support.serving_world import SERVED, set_alias

    uri = world.settings.mlflow_tracking_uri
    set_alias(uri, "champion", champion)
    client = registry_client(uri)
    state = RolloutState("canary", challenger, 0.5, SERVED.isoformat(), champion)
    write_rollout(client, MODEL, state)
    try:
        with ServiceProcess(world.env, poll_s=5, LOG_FLUSH_S="1.0") as service:
            _wait(lambda: _health(service)["challenger"] == challenger)
            token = token_file(service, bodies.parent)
            url = f"{service.url}/predict"
            generate(url, bodies, 50, 3, token)  # warm-up, not counted
            out = {"rollout": state.to_dict()}
            out["target"] = generate(url, bodies, RATE, DURATION_S, token)
            out["saturation"] = saturation(url, bodies, token)
            return out
    finally:
        clear_rollout(client, MODEL)


def champion_move(world: Any, bodies: Path, before: str, after: str) -> dict[str, Any]:
    """The target rate while ``champion`` moves from ``before`` to ``after`` (not loaded)."""
    from bench.open_loop import percentiles
    from bench.serving_bench import RATE, generate, token_file
    from mlops.serving.process import ServiceProcess
    from tests.support.serving_world import set_alias

    uri = world.settings.mlflow_tracking_uri
    set_alias(uri, "champion", before)
    with ServiceProcess(world.env, poll_s=POLL_S, LOG_FLUSH_S="1.0") as service:
        token = token_file(service, bodies.parent)
        url = f"{service.url}/predict"
        generate(url, bodies, 50, 3, token)  # warm-up, not counted
        moved: dict[str, float] = {}

        def move() -> None:
            time.sleep(MOVE_S / 3)
            moved["at"] = time.time()
            set_alias(uri, "champion", after)
            moved["to_health_s"] = _wait(lambda: _health(service)["champion"] == after)

        mover = threading.Thread(target=move)
        mover.start()
        run = generate(url, bodies, RATE, MOVE_S, token, samples=True)
        mover.join()
        # the requests due from the alias move until /health named the new champion, and
        # a second after: the poll's wait, the load in the background, the swap
        end = moved["at"] + moved["to_health_s"] + 1.0
        during = [ms / 1e3 for due, ms in run.pop("samples") if moved["at"] <= due <= end]
        return {
            "from_version": before,
            "to_version": after,
            "swap_s": round(_swap_seconds(service), 3),
            "alias_move_to_health_s": round(moved["to_health_s"], 3),
            "poll_s": POLL_S,
            "during_swap": {"requests": len(during), **percentiles(during)},
            "run": run,
        }


__all__ = ["canary", "champion_move"]
