"""tests.support.threads: a helper thread's failure reaches the test at once."""

from __future__ import annotations

import time

import pytest

from tests.support.threads import HelperFailed, helper_thread


def test_a_failing_helper_wakes_a_main_thread_that_waits_for_it():
    def answer() -> None:
        raise ValueError("the approval could not be sent")

    began = time.monotonic()
    with (
        pytest.raises(HelperFailed, match="answer failed") as raised,
        helper_thread(answer, delay_s=0.2),
    ):
        time.sleep(30)  # what a dag.test run waiting on the answer would do
    assert time.monotonic() - began < 10
    assert isinstance(raised.value.__cause__, ValueError)
    assert "could not be sent" in str(raised.value.__cause__)


def test_a_failure_caught_inside_the_block_is_raised_again_at_its_end():
    def answer() -> None:
        raise ValueError("no pending approval")

    with pytest.raises(HelperFailed, match="answer failed"), helper_thread(answer):
        try:
            time.sleep(30)
        except HelperFailed:
            pass  # as an operator's broad except would swallow it


def test_a_helper_that_succeeds_is_joined_and_its_work_is_seen():
    done = []
    with helper_thread(lambda: done.append(1), delay_s=0.1):
        while not done:
            time.sleep(0.01)
    assert done == [1]
