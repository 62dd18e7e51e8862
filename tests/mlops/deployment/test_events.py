"""Which queued asset event a deployment-stage run acts on: the newest data day, then the
newest event; the others superseded, and recorded."""

from __future__ import annotations

from datetime import UTC, date, datetime

from mlops.deployment.events import EventChoice, TriggeringEvent, choose_event, rollback_event
from mlops.deployment.plan import DeploymentPlan, deployment_request, plan_deployment
from mlops.deployment.rollback import rollback_request
from mlops.registry.aliases import AliasState


def at(minute: int) -> datetime:
    return datetime(2026, 12, 4, 10, minute, tzinfo=UTC)


def candidate(version: int, day: str | None, minute: int | None, asset="candidate_model"):
    extra = {"model_version": version, "run_id": f"r{version}"}
    if day is not None:
        extra["day"] = day
    emitted = at(minute) if minute is not None else None
    return TriggeringEvent(asset, extra, emitted, f"model_training/run{version}")


def test_the_newest_data_day_wins_even_when_its_event_came_first():
    newest_day = candidate(4, "2018-06-10", 1)
    later_event = candidate(5, "2018-06-03", 2)
    choice = choose_event([newest_day, later_event])
    assert choice.chosen == newest_day and choice.superseded == (later_event,)
    assert choice.extra["model_version"] == 4


def test_on_the_same_day_the_newest_event_wins_then_the_later_listed():
    first, second = candidate(4, "2018-06-03", 1), candidate(5, "2018-06-03", 2)
    assert choose_event([second, first]).chosen == second
    same_moment = candidate(6, "2018-06-03", 2)
    assert choose_event([second, same_moment]).chosen == same_moment  # emission order
    assert choose_event([same_moment, second]).chosen == second
    no_time = candidate(7, "2018-06-03", None)
    assert choose_event([first, no_time]).chosen == first


def test_an_event_without_a_day_ranks_below_any_with_one():
    dated, undated = candidate(4, "2018-06-03", 1), candidate(9, None, 5)
    choice = choose_event([dated, undated])
    assert choice.chosen == dated and choice.superseded == (undated,)
    alone = choose_event([undated, candidate(8, None, 7)])
    assert alone.chosen.version == "8" and alone.chosen.day is None


def test_events_of_several_assets_and_aliases_are_ranked_together_once_each():
    event = candidate(4, "2018-06-03", 1)
    via_alias = TriggeringEvent(event.asset, dict(event.extra), event.emitted_at, event.source)
    other = candidate(5, "2018-06-05", 0, asset="manual_candidate")
    choice = choose_event([event, via_alias, other])
    assert choice.chosen == other and choice.superseded == (event,)


def test_superseded_events_are_recorded_oldest_first_and_none_for_an_unwoken_run():
    events = [candidate(v, f"2018-06-0{v}", v) for v in (3, 5, 4)]
    choice = choose_event(events)
    assert choice.chosen.version == "5"
    assert choice.superseded_records() == (
        {
            "asset": "candidate_model",
            "day": "2018-06-03",
            "version": "3",
            "emitted_at": "2026-12-04T10:03:00+00:00",
            "source": "model_training/run3",
        },
        {
            "asset": "candidate_model",
            "day": "2018-06-04",
            "version": "4",
            "emitted_at": "2026-12-04T10:04:00+00:00",
            "source": "model_training/run4",
        },
    )
    assert choose_event([]) == EventChoice() and EventChoice().extra == {}


PARAMS = {
    "action": "deploy",
    "version": None,
    "strategy": "canary",
    "canary_share": 0.1,
    "observation_days": 3,
    "wait_for_labels": False,
    "require_approval": False,
    "day": None,
    "reason": None,
}


def test_a_deployment_request_deploys_the_chosen_candidate_and_keeps_the_others():
    choice = choose_event([candidate(5, "2018-06-05", 2), candidate(4, "2018-06-03", 9)])
    request = deployment_request(
        PARAMS,
        choice.extra,
        fallback_day=date(2018, 6, 1),
        actor="model_deployment/asset_triggered",
        superseded=choice.superseded_records(),
    )
    assert (request.version, request.day) == ("5", date(2018, 6, 5))
    assert [s["version"] for s in request.superseded] == ["4"]
    plan = plan_deployment(request, AliasState(champion="3", previous="2"), 7)
    assert DeploymentPlan.from_xcom(plan.to_xcom()) == plan


def test_a_rollback_request_carries_the_day_the_bad_champion_and_why():
    decision = {"day": "2018-06-24", "rollback_version": 7, "reasons": ["probation", "quality"]}
    extra = rollback_event(decision)
    assert extra == {"day": "2018-06-24", "version": "7", "reason": "probation; quality"}
    params = {"version": None, "day": None, "reason": None}
    woken = rollback_request(params, extra, fallback_day=date(2018, 1, 1), actor="a", run_id="r")
    assert (woken.version, woken.day, woken.reason) == ("7", date(2018, 6, 24), extra["reason"])
    by_hand = {"version": "6", "day": "2018-06-25", "reason": "by hand"}
    manual = rollback_request(by_hand, extra, fallback_day=date(2018, 1, 1), actor="a", run_id="m")
    assert (manual.version, manual.day, manual.reason) == ("6", date(2018, 6, 25), "by hand")
