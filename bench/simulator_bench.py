"""How long the default simulation takes: the budget is 15 s, the handbook's loop over a minute.

Best of a few runs, because the first one also pays for imports and page faults that a
long-lived worker pays once.
"""

from __future__ import annotations

import time
from typing import Any

REPEATS = 3


def run(repeats: int = REPEATS) -> dict[str, Any]:
    from mlops.simulator import SimulationConfig, simulate

    config = SimulationConfig()
    best, rows = float("inf"), 0
    for _ in range(repeats):
        began = time.perf_counter()
        rows = len(simulate(config))
        best = min(best, time.perf_counter() - began)
    return {
        "simulator_default_seconds": round(best, 3),
        "rows": rows,
        "rows_per_second": round(rows / best),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
