"""The closed loop end to end through the real scheduler: ``make demo``'s machinery on a
shorter world (history loaded, then the scheduler day by day, early drift), judged only by
what the DAGs recorded: monitoring summaries, daily decisions, the deployment history and
the registered versions with their gate outcome."""

from __future__ import annotations

from datetime import timedelta

import pytest

from demo.airflow_stack import AirflowStack
from demo.closed_loop import DAG_IDS, LoopConfig, days_of, load_history, loop_environment, run_loop
from demo.outcome import milestones
from demo.report import collect, write_report

pytestmark = pytest.mark.slow

CONFIG = LoopConfig(
    days=116, drift="new_fraud_pattern", drift_start_day=73, customers=2_000, terminals=4_000
)
HISTORY_DAYS = 58  # the scheduler takes over a week before the first model can be trained
FLAG_WITHIN_DAYS = 21  # labels mature after 7 days, and a breach must hold 3 days
BUDGET, BUDGET_DAYS, COOLDOWN_DAYS = 2, 30, 14  # RetrainPolicy's defaults


@pytest.fixture(scope="module")
def timeline(tmp_path_factory):
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
        with AirflowStack(root / "airflow", env=env) as stack:
            stack.wait_for_dags(list(DAG_IDS))
            run_loop(stack, CONFIG, transactions, first_index=HISTORY_DAYS)
            replayed = replay(stack, data_root)
        first, last, drift = days_of(CONFIG)
        found = collect(load_settings(), first, last, drift)
        write_report(found, root / "report.html", "closed loop test")
    found.replayed = replayed
    return found


REPLAYED = (CONFIG.simulation().day(68), CONFIG.simulation().day(71))  # v1 serving, pre-drift


def create_backfill(stack, dag_id, first, last) -> None:
    """``POST /backfills``, retried: on SQLite a busy scheduler makes it fail now and then
    with "database is locked" (503, or 500 when the audit log write is the one refused)."""
    import time

    from demo.airflow_stack import StackError

    for _ in range(10):
        try:
            body = {"reprocess_behavior": "completed"}
            stack.create_backfill(dag_id, f"{first}T00:00:00Z", f"{last}T00:00:00Z", **body)
            return
        except StackError:
            time.sleep(3)
            if stack.api("GET", "backfills", params={"dag_id": dag_id})["backfills"]:
                return  # the failed answer came after the backfill was created
    raise AssertionError(f"no backfill of {dag_id} could be created")


def replay(stack, data_root):
    """Re-run model_monitoring over a range with ``airflow backfill``: (before, after) of the
    range's summaries and decisions."""
    import time

    def records():
        days = [
            REPLAYED[0] + timedelta(days=i) for i in range((REPLAYED[1] - REPLAYED[0]).days + 1)
        ]
        return {
            f"{kind}/{day}": (data_root / "monitoring" / path.format(day=day)).read_text()
            for day in days
            for kind, path in (
                ("summary", "reports/date={day}/summary.json"),
                ("decision", "decisions/date={day}.json"),
            )
        }

    before = records()
    create_backfill(stack, "model_monitoring", *REPLAYED)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        runs = [r for r in stack.dag_runs("model_monitoring") if r["run_type"] == "backfill"]
        if runs and all(r["state"] in ("success", "failed") for r in runs):
            break
        time.sleep(2)
    return before, records(), [r["state"] for r in runs]


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


def test_a_backfill_of_monitoring_over_served_days_records_the_same_decisions(timeline):
    before, after, states = timeline.replayed
    assert states and set(states) == {"success"}
    assert after == before
