"""The day windows of a run: the routine placement (delay gap) and the one after a breach
(no gap), and the day from which a gapless run holds enough days of a breach."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from mlops.evaluation.history import history_days
from mlops.training.job import TrainingRequest
from mlops.training.windows import data_window, days_since, ready_day

AS_OF = date(2018, 7, 12)


def test_after_a_breach_the_training_days_run_up_to_the_latest_matured_week():
    routine = TrainingRequest(as_of=AS_OF).window
    after = TrainingRequest(as_of=AS_OF, breach_since=date(2018, 6, 25)).window
    # the same held-out week: the latest matured one, labels known at D
    assert (after.eval_start, after.eval_end) == (routine.eval_start, routine.eval_end)
    assert after.eval_end == AS_OF - timedelta(days=7)
    # routine: its last training day 21 days before D; after a breach: 14 days, no gap
    assert routine.train_end == AS_OF - timedelta(days=21)
    assert (after.train_start, after.train_end) == (date(2018, 6, 14), date(2018, 6, 28))
    assert after.train_end == after.eval_start  # no row of the held-out week is trained on
    assert (after.eval_end - after.train_start).days == 21  # the same 21 matured days
    assert after.to_params()["gap_days"] == 0 and routine.to_params()["gap_days"] == 7


def test_every_training_label_of_a_gapless_run_is_known_at_its_date():
    window = TrainingRequest(as_of=AS_OF, breach_since=date(2018, 6, 25)).window
    last_training_day = window.train_end - timedelta(days=1)
    assert last_training_day + timedelta(days=7) < AS_OF
    # the known cards are read from the training days up to the held-out week, as before;
    # the delay rule of each test day keeps the last training days' frauds unknown to it
    assert history_days(window.train_start, window.eval_start) == (
        window.train_start,
        window.eval_start,
    )


def test_a_gapless_window_needs_one_training_day_and_one_evaluation_day():
    assert TrainingRequest(as_of=AS_OF, window_days=8, breach_since=AS_OF).window
    with pytest.raises(ValueError, match="leaves 0 training days"):
        TrainingRequest(as_of=AS_OF, window_days=7, breach_since=AS_OF)
    with pytest.raises(ValueError, match="leaves 0 training days"):
        data_window(AS_OF, 14, 7, 7, gap=True)


@pytest.mark.parametrize("needed", [1, 3, 5])
@pytest.mark.parametrize(("eval_days", "delay_days"), [(7, 7), (5, 3)])
def test_ready_day_is_the_first_day_a_gapless_run_holds_the_days_needed(
    needed, eval_days, delay_days
):
    since = date(2018, 6, 25)
    ready = ready_day(since, needed, eval_days, delay_days)

    def held(as_of: date) -> int:
        window = data_window(as_of, 21, eval_days, delay_days, gap=False)
        return days_since((window.train_start, window.train_end), since)

    assert held(ready) == needed
    assert held(ready - timedelta(days=1)) == needed - 1


def test_days_since_counts_the_days_on_or_after_a_day():
    window = (date(2018, 6, 14), date(2018, 6, 28))
    assert days_since(window, date(2018, 6, 25)) == 3
    assert days_since(window, date(2018, 6, 1)) == 14
    assert days_since(window, date(2018, 6, 28)) == 0
