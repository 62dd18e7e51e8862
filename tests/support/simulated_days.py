"""A few simulated days landed for ``transactions_daily``, and the environment that makes a
real scheduler catch up on exactly those days."""

from __future__ import annotations

from datetime import date
from pathlib import Path

SMALL = {"n_customers": 300, "n_terminals": 600, "seed": 3}


def land_days(root: Path, n_days: int) -> list[date]:
    """Simulate ``n_days`` small days and land each with its ``_SUCCESS`` marker."""
    from mlops.simulator import SimulationConfig, simulate, write_landing

    config = SimulationConfig(n_days=n_days, **SMALL)
    write_landing(simulate(config), str(root / "landing"), config, days=range(n_days))
    return [config.day(i) for i in range(n_days)]


def catchup_environment(root: Path, days: list[date]) -> dict[str, str]:
    """Scheduled runs for ``days`` only; the history starts at the first of them."""
    return {
        "MLOPS_DATA_ROOT": str(root),
        "MLOPS_HISTORY_START": days[0].isoformat(),
        "MLOPS_START_DATE": days[0].isoformat(),
        "MLOPS_END_DATE": days[-1].isoformat(),
        "MLOPS_SENSOR_POKE_S": "2",
    }
