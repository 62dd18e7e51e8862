"""``make bench`` reports the last demo's timing as ``make demo`` wrote it: per scheduled day,
the wall time, the task work and the rest."""

from __future__ import annotations

import json

from bench import demo_timing_bench
from demo.run_demo import DayLaps, demo_timing, timing_summary


def test_the_demo_times_each_scheduled_day_and_splits_it_into_task_work_and_the_rest():
    laps = DayLaps()
    laps.start()
    assert laps.lap("2018-05-29") is False  # never ends the loop
    laps.lap("2018-05-30")
    assert list(laps.seconds) == ["2018-05-29", "2018-05-30"]

    days = {"2018-05-29": 6.0, "2018-05-30": 10.0}
    work = {"transactions_daily": 5.0, "model_monitoring": 1.0}
    timing = demo_timing(100.0, 84.0, days, work, days=60)
    assert timing["per_day"] == {"wall_s": 8.0, "task_work_s": 3.0, "overhead_s": 5.0}
    assert (timing["scheduled_days"], timing["history_s"]) == (2, 84.0)
    assert len(timing["load_average_1_5_15"]) == 3
    assert "wall 8.0 s, task work 3.0 s, the rest 5.0 s" in timing_summary(timing)


def test_make_bench_reports_the_file_the_demo_wrote_or_says_there_is_none(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_DATA_ROOT", str(tmp_path))
    assert demo_timing_bench.run()["status"].startswith("no demo run yet")

    timing = demo_timing(100.0, 84.0, {"2018-05-29": 16.0}, {"transactions_daily": 4.0}, 59)
    (tmp_path / "demo_timing.json").write_text(json.dumps(timing))
    report = demo_timing_bench.run()
    assert report["source"] == str(tmp_path / "demo_timing.json")
    assert (report["per_day_wall_s"], report["per_day_task_work_s"]) == (16.0, 4.0)
    assert (report["per_day_overhead_s"], report["slowest_day_s"]) == (12.0, 16.0)
    assert report["task_work_s"] == {"transactions_daily": 4.0}
