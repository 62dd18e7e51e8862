"""The closed loop end to end, its decisions only: ``make demo``'s world (history loaded,
then the DAGs' stage entries day by day in this process), judged only by what the stages
recorded: monitoring summaries, daily decisions, the deployment history and the registered
versions with their gate outcome. The scheduler's own
end-to-end test is the production-profile one; here it would cost most of the time."""

from __future__ import annotations

from datetime import timedelta

import pendulum
import pytest

from demo.closed_loop import LoopConfig, days_of, load_history, loop_environment
from demo.day_loop import monitoring_backfill, run_days
from demo.outcome import milestones, recovery_figures, recovery_shortfalls
from demo.report import collect, write_report

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # the world is a fixture

CONFIG = LoopConfig()  # make demo's world: 135 days, 2,500 cards, the new pattern on day 85
HISTORY_DAYS = 58  # the loop takes over a week before the first model can be trained
FLAG_WITHIN_DAYS = 21  # labels mature after 7 days, and a breach must hold 3 days
BUDGET, BUDGET_DAYS, COOLDOWN_DAYS = 2, 30, 14  # RetrainPolicy's defaults
REPLAYED = (CONFIG.simulation().day(68), CONFIG.simulation().day(71))  # v1 serving, pre-drift


def records(data_root, first=REPLAYED[0], last=REPLAYED[1]) -> dict[str, str]:
    """The monitoring summaries and decisions of ``first .. last``, as written."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return {
        f"{kind}/{day}": (data_root / "monitoring" / path.format(day=day)).read_text()
        for day in days
        for kind, path in (
            ("summary", "reports/date={day}/summary.json"),
            ("decision", "decisions/date={day}.json"),
        )
    }


@pytest.fixture(scope="module")
def timeline(tmp_path_factory):
    """The world, run once; the environment stays set for the tests (a DAG reads it when
    parsed)."""
    from mlops.settings import load_settings
    from mlops.simulator import simulate

    root = tmp_path_factory.mktemp("closed-loop")
    data_root = root / "data"
    env = loop_environment(CONFIG, data_root, first_index=HISTORY_DAYS)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        transactions = simulate(CONFIG.simulation())
        load_history(transactions, CONFIG, HISTORY_DAYS)
        run_days(CONFIG, transactions, data_root, first_index=HISTORY_DAYS)
        before = records(data_root)
        monitoring_backfill(load_settings(), *REPLAYED)
        first, last, drift = days_of(CONFIG)
        found = collect(load_settings(), first, last, drift)
        write_report(found, root / "report.html", "closed loop test")
        found.replayed = before, records(data_root)
        found.data_root = data_root
        yield found


def test_nothing_is_flagged_and_no_retrain_is_asked_for_before_the_drift(timeline):
    found = milestones(timeline)
    assert found["breaches_before_drift"] == []
    before = [d for d, x in found["retrain_requests"] if d < timeline.drift_start]
    assert len(before) == 1  # the first model, asked for once its training window settled
    assert "first model" in timeline.decisions[before[0]]["reasons"][0]


def test_the_drift_is_flagged_within_a_bounded_number_of_days(timeline):
    flagged = milestones(timeline)["first_breach_after_drift"]
    assert flagged is not None
    assert (flagged - timeline.drift_start).days <= FLAG_WITHIN_DAYS


def test_retrain_requests_keep_the_cooldown_and_the_budget(timeline):
    requests = [d for d, _ in milestones(timeline)["retrain_requests"]]
    assert all((b - a).days > COOLDOWN_DAYS for a, b in zip(requests, requests[1:], strict=False))
    for day in requests:
        window = [d for d in requests if day <= d < day + timedelta(days=BUDGET_DAYS)]
        assert len(window) <= BUDGET


def test_every_model_went_through_the_gate_and_the_first_one_was_deployed_directly(timeline):
    actions = [(e.action, e.version) for e in timeline.deployments]
    assert actions[0] == ("deployed", "1")
    assert {run["outcome"] for run in timeline.trainings} <= {"approve", "reject", "needs_review"}
    assert any(action == "rollout_started" for action, _ in actions)


def test_a_model_promoted_after_the_drift_beats_the_stale_one_on_matured_drift_days(timeline):
    promoted = [e for e in timeline.deployments if e.action == "promoted"]
    assert promoted, [(e.action, e.reason) for e in timeline.deployments]
    stale = promoted[-1].before["champion"]
    compared = [
        (s["quality"]["models"]["champion"], s["quality"]["models"]["previous"])
        for day, s in sorted(timeline.summaries.items())
        if s.get("previous_version") == stale
        and (s.get("quality") or {}).get("models", {}).get("previous")
    ]
    assert compared, "no day compared the promoted model with the one it replaced"
    new, old = compared[-1]
    assert new["average_precision"] > old["average_precision"]


def test_a_model_trained_on_the_drift_serves_within_three_weeks_and_quality_recovers(
    timeline,
):
    """demo.outcome.RECOVERY_TARGETS; the other worlds are test_recovery_worlds'."""
    found = recovery_figures(timeline, days_of(CONFIG)[1])
    assert recovery_shortfalls(found) == [], found


def test_a_backfill_of_monitoring_over_served_days_records_the_same_decisions(timeline):
    before, after = timeline.replayed
    assert after == before


def test_airflow_runs_model_monitoring_again_on_a_served_day_to_the_same_records(
    timeline, airflow_db
):
    """One replayed day through the DAG itself (``dag.test()``, as a backfill's run)."""
    from airflow.dag_processing.dagbag import DagBag

    from demo.day_loop import DAGS

    day = REPLAYED[1]
    before = records(timeline.data_root, day, day)
    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors
    run = bag.dags["model_monitoring"].test(
        logical_date=pendulum.datetime(day.year, day.month, day.day, tz="UTC").add(days=1),
        run_conf={"html_report": False},
    )
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success", states
    assert states["decide"] == "success"
    assert records(timeline.data_root, day, day) == before
