"""How long a rollout is observed (``mlops.deployment.maturity.follow``), on made-up markers
and counts: until its matured rows hold enough frauds, or its deadline passes."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from mlops.deployment.maturity import (
    DEADLINE,
    ENOUGH_FRAUDS,
    FAILING,
    OBSERVED,
    WAITING,
    follow,
)
from mlops.deployment.plan import DeploymentRequest, extended, plan_deployment
from mlops.registry.aliases import AliasState

D = date(2018, 6, 30)
DELAY = 7


def canary(data_end=None, **kwargs):
    fields = {"observation_days": 3, "wait_for_labels": False, **kwargs}
    request = DeploymentRequest(day=D, version="2", run_id="r", **fields)
    return plan_deployment(request, AliasState(champion="1"), DELAY, data_end)


def day(offset: int) -> str:
    return (D + timedelta(days=offset)).isoformat()


def look(plan, scored_through: int, frauds_a_day: int = 40, rows_a_day: int = 4_000, healthy=True):
    """The observation when the days up to ``D+scored_through`` are scored (their markers
    in), each matured day holding ``frauds_a_day`` frauds."""

    def missing(at):
        return sorted({d for d in (*at.observed_days, at.judge_day) if d > day(scored_through)})

    looked: list[str] = []

    def matured(found: str) -> tuple[int, int]:
        looked.append(found)
        return rows_a_day, frauds_a_day

    checked: list[str | None] = []

    def health(at) -> bool:
        checked.append(at.judge_day)
        return healthy

    seen = follow(
        plan, delay_days=DELAY, min_frauds=30, missing=missing, matured=matured, healthy=health
    )
    assert checked in ([], [plan.judge_day])  # the plan's own window only, once
    return seen, looked


def test_the_plan_s_window_comes_first():
    seen, looked = look(canary(), scored_through=2)
    assert seen.status == WAITING and seen.extra_days == 0
    assert seen.missing == (day(3),)
    assert looked == []


def test_without_matured_frauds_it_keeps_observing_a_day_at_a_time():
    seen, looked = look(canary(), scored_through=6)
    assert seen.status == WAITING
    assert (seen.extra_days, seen.plan.judge_day, seen.missing) == (4, day(7), (day(7),))
    assert seen.plan.observed_days[-1] == day(7) and seen.plan.label_days == ()
    assert looked == []


def test_the_first_day_whose_matured_rows_hold_enough_frauds_is_judged():
    seen, looked = look(canary(), scored_through=20)  # a catch-up: many days already in
    assert seen.status == ENOUGH_FRAUDS
    assert (seen.extra_days, seen.plan.judge_day, seen.plan.label_days) == (5, day(8), (day(1),))
    assert (seen.matured_rows, seen.frauds) == (4_000, 40)
    assert looked == [day(1)]
    assert seen.to_dict()["deadline_day"] == day(30)


def test_frauds_add_up_over_the_matured_days():
    seen, looked = look(canary(), scored_through=20, frauds_a_day=12)
    assert (seen.status, seen.plan.judge_day, seen.frauds) == (ENOUGH_FRAUDS, day(10), 36)
    assert looked == [day(1), day(2), day(3)]  # each day counted once


def test_at_the_deadline_without_enough_frauds_a_person_decides():
    plan = canary(quality_deadline_days=14)
    seen, _ = look(plan, scored_through=40, frauds_a_day=1)
    assert (seen.status, seen.plan.judge_day, seen.frauds) == (DEADLINE, day(14), 7)
    assert seen.extra_days == 11


def test_rows_that_are_all_frauds_cannot_rank_and_are_not_enough():
    seen, _ = look(canary(quality_deadline_days=9), scored_through=40, rows_a_day=40)
    assert seen.status == DEADLINE


def test_a_challenger_failing_on_the_plan_s_window_is_not_kept_for_its_labels():
    seen, looked = look(canary(), scored_through=20, healthy=False)
    assert (seen.status, seen.extra_days, seen.plan.judge_day) == (FAILING, 0, day(3))
    assert seen.concluded and looked == []


def test_without_judge_quality_the_plan_s_window_is_all():
    seen, looked = look(canary(judge_quality=False), scored_through=3)
    assert (seen.status, seen.extra_days, seen.plan.judge_day) == (OBSERVED, 0, day(3))
    assert looked == []


def test_waiting_for_the_labels_keeps_the_window_and_its_matured_days_together():
    plan = canary(wait_for_labels=True)
    assert (plan.judge_day, plan.label_days) == (day(10), (day(1), day(2), day(3)))
    longer = extended(plan, 2, DELAY)
    assert longer.observed_days == tuple(day(i) for i in range(1, 6))
    assert (longer.judge_day, longer.label_days[-1]) == (day(12), day(5))
    assert longer.request == plan.request
    seen, looked = look(plan, scored_through=20, frauds_a_day=10)
    assert (seen.status, seen.extra_days, seen.frauds) == (ENOUGH_FRAUDS, 0, 30)


def test_the_matured_days_the_challenger_never_saw_judge_it_on_the_plan_s_window():
    """Its data ended a week before D: at D+3 the replayed days up to D-4 have matured."""
    seen, looked = look(canary(data_end=D - timedelta(days=7)), scored_through=3)
    assert (seen.status, seen.extra_days, seen.plan.judge_day) == (ENOUGH_FRAUDS, 0, day(3))
    assert looked == [day(-7), day(-6), day(-5), day(-4)]
    assert (seen.frauds, seen.to_dict()["replayed_days"][-1]) == (160, day(0))


def test_too_few_replayed_frauds_keep_it_observed_until_its_own_days_add_up():
    seen, looked = look(canary(data_end=D - timedelta(days=2)), scored_through=20, frauds_a_day=6)
    # D-2 .. D, then D+1 and D+2 matured: five days of 6 frauds
    assert (seen.status, seen.extra_days, seen.frauds) == (ENOUGH_FRAUDS, 6, 30)
    assert looked == [day(-2), day(-1), day(0), day(1), day(2)]


@pytest.mark.parametrize("days", [0, 366])
def test_the_deadline_is_bounded(days):
    with pytest.raises(ValueError, match="quality_deadline_days must be in 1..365"):
        DeploymentRequest(day=D, version="2", quality_deadline_days=days)
