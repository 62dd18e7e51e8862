"""The closed loop's recovery on other worlds than the demo's: a second seed of the new fraud
pattern, both seeds of the amount shift, and 135 quiet days. Each world is ``make demo``'s
(135 days, 2,500 cards, the drift from 2018-06-25, 58 days of history) run through the
DAGs' stage entries and the same retrain policy in this process (``demo.recovery``): the
scheduler has its own end-to-end test. The demo's own world is ``test_closed_loop``'s."""

from __future__ import annotations

import pytest

from demo.closed_loop import LoopConfig, loop_environment
from demo.outcome import recovery_shortfalls
from demo.recovery import HISTORY_DAYS, run_world

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # the worlds are run once each

DRIFTED = {
    "new_fraud_pattern-seed-1": LoopConfig(drift="new_fraud_pattern", seed=1),
    "amount_shift-seed-0": LoopConfig(drift="amount_shift", seed=0),
    "amount_shift-seed-1": LoopConfig(drift="amount_shift", seed=1),
}
QUIET = LoopConfig(drift="none")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The recovery figures of a world by name, each world run once."""
    found: dict[str, dict] = {}

    def figures(name: str) -> dict:
        if name not in found:
            config = DRIFTED.get(name, QUIET)
            data_root = tmp_path_factory.mktemp(name) / "data"
            with pytest.MonkeyPatch.context() as patch:
                for key, value in loop_environment(config, data_root, HISTORY_DAYS).items():
                    patch.setenv(key, value)
                found[name] = run_world(config, data_root)
        return found[name]

    return figures


@pytest.mark.parametrize("name", list(DRIFTED))
def test_the_drift_is_flagged_and_nothing_before_it(world, name):
    found = world(name)
    assert found["breaches_before_drift"] == 0, found
    assert found["first_breach_after_drift"], found
    assert found["rollbacks"] == 0, found


@pytest.mark.parametrize("name", list(DRIFTED))
def test_a_model_trained_on_the_drift_serves_within_three_weeks_and_quality_recovers(world, name):
    """demo.outcome.RECOVERY_TARGETS: promoted within 21 days of the drift, served AP of 0.45
    over the 45 days from it, and 95 % of the AP before it after the promotion."""
    found = world(name)
    assert recovery_shortfalls(found) == [], found


def test_a_quiet_world_asks_for_nothing_beyond_the_first_model(world):
    found = world("none")
    assert found["drift_start"] is None
    assert len(found["retrain_requests"]) == 1, found  # the first model
    assert found["rollbacks"] == 0, found
    assert [d.split()[1] for d in found["deployments"]] == ["deployed"], found
