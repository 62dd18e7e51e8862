"""Card-transaction simulator after the Fraud Detection Handbook, plus drift scenarios.

``simulate(SimulationConfig(...))`` gives the whole period as one frame; ``write_landing``
publishes it day by day to the landing zone that the ``transactions_daily`` DAG watches.
"""

from __future__ import annotations

from mlops.simulator.config import DRIFT_SCENARIOS, SimulationConfig
from mlops.simulator.landing import FORMATS, write_landing
from mlops.simulator.simulation import simulate

__all__ = ["DRIFT_SCENARIOS", "FORMATS", "SimulationConfig", "simulate", "write_landing"]
