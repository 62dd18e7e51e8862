"""Behaviour of the transaction simulator: statistics, determinism, drift, landing, CLI.

The default-configuration figures are compared with the handbook's (SIMULATOR.md). Each
tolerance is a few times the seed-to-seed spread measured over seeds 0..7 (given next to
it), so a changed default seed still passes while a wrong distribution does not.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.schema import SUCCESS_MARKER, TRANSACTION_DTYPES
from mlops.simulator import SimulationConfig, simulate, write_landing
from mlops.simulator import landing as landing_module
from mlops.simulator.cli import main, storage_options
from mlops.simulator.landing import day_indices
from mlops.simulator.profiles import (
    AvailableTerminals,
    CustomerProfiles,
    available_terminals,
    customer_profiles,
    terminal_profiles,
)
from mlops.simulator.transactions import generate_transactions

DEFAULT = SimulationConfig()
SMALL = SimulationConfig(n_customers=300, n_terminals=600, n_days=6, seed=11)
MID = SimulationConfig(n_customers=1000, n_terminals=2000, n_days=60, seed=5, drift_start_day=30)


@pytest.fixture(scope="module")
def default_frame() -> pd.DataFrame:
    return simulate(DEFAULT)


@pytest.fixture(scope="module")
def small_frame() -> pd.DataFrame:
    return simulate(SMALL)


@pytest.fixture(scope="module")
def mid_base() -> pd.DataFrame:
    return simulate(MID)


def frauds_per_day(frame: pd.DataFrame, config: SimulationConfig) -> np.ndarray:
    return np.bincount(day_indices(frame, config), frame["TX_FRAUD"], config.n_days)


def split_at_drift(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    before = day_indices(frame, MID) < MID.drift_start_day
    return frame[before].reset_index(drop=True), frame[~before].reset_index(drop=True)


def test_default_frame_has_the_schema_and_the_handbook_invariants(default_frame):
    df = default_frame
    assert {c: str(t) for c, t in df.dtypes.items()} == TRANSACTION_DTYPES
    assert (df["TRANSACTION_ID"].to_numpy() == np.arange(len(df))).all()
    assert df["TX_DATETIME"].is_monotonic_increasing
    assert df["TX_DATETIME"].min() >= pd.Timestamp("2018-04-01")
    assert df["TX_DATETIME"].max() < pd.Timestamp("2018-04-01") + pd.Timedelta(days=183)
    cents = df["TX_AMOUNT"].to_numpy() * 100
    assert (df["TX_AMOUNT"] >= 0).all() and np.allclose(cents, np.round(cents))
    assert set(df["TX_FRAUD_SCENARIO"].unique()) == {0, 1, 2, 3}
    assert (df["TX_FRAUD"] == (df["TX_FRAUD_SCENARIO"] > 0)).all()
    assert (df.loc[df["TX_FRAUD_SCENARIO"] == 1, "TX_AMOUNT"] > 220).all()
    # Scenario 3 multiplies a cents amount by 5: always a multiple of 5 cents.
    inflated = df.loc[df["TX_FRAUD_SCENARIO"] == 3, "TX_AMOUNT"].to_numpy() * 100
    assert np.allclose(np.round(inflated) % 5, 0)


def test_default_volume_matches_the_handbook(default_frame):
    # Expected 5000 x 2 x P(0 < N(43200, 20000) < 86400) = 9,692 a day; the book has 9,585.
    # Seed-to-seed spread of rows: sd 0.8 % (range 1.753M..1.797M over 8 seeds).
    rows = len(default_frame)
    assert rows == pytest.approx(1_750_000, rel=0.03)
    assert rows / DEFAULT.n_days == pytest.approx(9_600, rel=0.03)


def test_default_fraud_matches_the_handbook(default_frame):
    # Seed-to-seed: fraud rate 0.822..0.849 % (sd 1 % relative), frauds/day 79.4..82.6.
    assert default_frame["TX_FRAUD"].mean() == pytest.approx(0.0084, rel=0.05)
    per_day = frauds_per_day(default_frame, DEFAULT)
    assert per_day.mean() == pytest.approx(80, rel=0.08)
    # Scenarios 2 and 3 ramp up over their 28/14-day windows: measured 0.62..0.68.
    assert per_day[:30].mean() < 0.8 * per_day[30:].mean()


def test_default_scenario_counts_follow_from_their_rules(default_frame):
    from scipy.stats import norm

    df, days = default_frame, DEFAULT.n_days
    counts = df["TX_FRAUD_SCENARIO"].value_counts()
    means = np.linspace(5, 100, 10_001)
    p_large = norm.sf((220 - means) / (means / 2)).mean()  # amount > 220 under the profiles
    per_terminal_day = len(df) / (days * DEFAULT.n_terminals)
    per_customer_day = len(df) / (days * DEFAULT.n_customers)
    terminal_days = sum(2 * min(28, days - d) for d in range(days))
    card_txs = sum(3 * min(14, days - d) * per_customer_day for d in range(days))
    # Observed/expected over 8 seeds: 0.97..1.05, 0.99..1.03, 0.95..1.03.
    assert counts[1] == pytest.approx(p_large * len(df), rel=0.12)
    assert counts[2] == pytest.approx(terminal_days * per_terminal_day, rel=0.12)
    assert counts[3] == pytest.approx((card_txs - days) / 3, rel=0.12)  # floor(n/3): -1/3 a day


def test_time_of_day_is_a_normal_truncated_to_the_day(default_frame):
    from scipy.stats import truncnorm

    stamps = default_frame["TX_DATETIME"]
    seconds = (stamps - stamps.dt.normalize()).dt.total_seconds()
    expected_sd = truncnorm(-43_200 / 20_000, 43_200 / 20_000).std() * 20_000  # 18,193 s
    assert seconds.mean() == pytest.approx(43_200, rel=0.01)
    assert seconds.std() == pytest.approx(expected_sd, rel=0.01)
    assert seconds.min() > 0


def test_available_terminals_are_those_strictly_within_the_radius():
    rng = np.random.default_rng(7)
    customers, terminals = customer_profiles(400, rng), terminal_profiles(900, rng)
    found = available_terminals(customers, terminals, radius=7.3)
    distance = np.hypot(
        customers.x[:, None] - terminals.x[None, :], customers.y[:, None] - terminals.y[None, :]
    )
    for c in range(400):
        mine = found.terminals[found.offsets[c] : found.offsets[c + 1]]
        np.testing.assert_array_equal(mine, np.flatnonzero(distance[c] < 7.3))
    # Defaults: pi r^2 = 78.5 terminals in open field, minus 8 r^3 / (3 L) = 3.3 lost at the
    # square's edges: 75.2 on average (the book rounds to "about 78").
    defaults = available_terminals(customer_profiles(5_000, rng), terminal_profiles(10_000, rng), 5)
    assert defaults.counts.mean() == pytest.approx(75.2, rel=0.02)


def test_about_three_percent_of_times_are_dropped_and_terminals_are_reachable():
    n, days = 2_000, 50
    mean = np.full(n, 50.0)
    customers = CustomerProfiles(np.zeros(n), np.zeros(n), mean, mean / 2, np.full(n, 2.0))
    # Customer c can reach terminals 2c and 2c + 1 only.
    available = AvailableTerminals(np.arange(0, 2 * n + 1, 2), np.arange(2 * n))
    tx = generate_transactions(customers, available, days, np.ones(days), np.random.default_rng(3))
    kept = len(tx) / (n * 2.0 * days)
    assert kept == pytest.approx(0.9692, abs=0.008)  # P(|Z| < 2.16); sd of the ratio 0.2 %
    assert set(np.unique(tx.terminal // 2 - tx.customer)) == {0}
    assert (tx.amount >= 0).all()
    assert len(np.unique(tx.terminal)) == 2 * n


def test_same_seed_gives_the_same_frame_and_another_seed_does_not(default_frame, small_frame):
    pd.testing.assert_frame_equal(simulate(DEFAULT), default_frame)
    pd.testing.assert_frame_equal(simulate(SMALL), small_frame)
    other = simulate(replace(SMALL, seed=SMALL.seed + 1))
    assert not other.equals(small_frame)
    assert not np.array_equal(other["TX_AMOUNT"].to_numpy()[:100], small_frame["TX_AMOUNT"][:100])


@pytest.mark.parametrize("factor", [1.6, 0.5])
def test_amount_shift_scales_amounts_only_from_the_start_day(mid_base, factor):
    shifted = simulate(replace(MID, drift="amount_shift", drift_factor=factor))
    base_before, base_after = split_at_drift(mid_base)
    before, after = split_at_drift(shifted)
    pd.testing.assert_frame_equal(before, base_before)

    def genuine_mean(frame: pd.DataFrame) -> float:  # scenario 3 inflates amounts x5
        return frame.loc[frame["TX_FRAUD_SCENARIO"] != 3, "TX_AMOUNT"].mean()

    assert genuine_mean(after) / genuine_mean(base_after) == pytest.approx(factor, rel=0.01)
    assert genuine_mean(after) / genuine_mean(before) == pytest.approx(factor, rel=0.05)
    assert genuine_mean(base_after) / genuine_mean(base_before) == pytest.approx(1, abs=0.05)


def test_new_fraud_pattern_adds_small_night_frauds_only_from_the_start_day(mid_base):
    drifted = simulate(replace(MID, drift="new_fraud_pattern"))
    base_before, base_after = split_at_drift(mid_base)
    before, after = split_at_drift(drifted)
    pd.testing.assert_frame_equal(before, base_before)
    assert (before["TX_FRAUD_SCENARIO"] != 4).all()
    new = after[after["TX_FRAUD_SCENARIO"] == 4]
    assert new["TX_AMOUNT"].between(1, 20).all()
    assert (new["TX_DATETIME"].dt.hour < 6).all()
    new_days = np.unique(day_indices(new, MID))
    assert new_days.min() == MID.drift_start_day and len(new_days) >= 28  # nearly every day
    # 10 cards a day for 7 days x ~1.9 transactions a card-day / 2: ~65 a day at full speed.
    assert 40 < len(new) / (MID.n_days - MID.drift_start_day) < 90

    def small_night_frauds(frame: pd.DataFrame) -> int:
        hour, amount = frame["TX_DATETIME"].dt.hour, frame["TX_AMOUNT"]
        return int(((frame["TX_FRAUD"] == 1) & (hour < 6) & (amount <= 20)).sum())

    assert small_night_frauds(after) > 10 * max(small_night_frauds(base_after), 1)
    assert after["TX_FRAUD"].mean() > 1.2 * base_after["TX_FRAUD"].mean()


def _recording_writers(monkeypatch) -> list[str]:
    """Record landing's writes by file name, checking no marker precedes its data file."""
    calls: list[str] = []
    write_bytes, write_json = landing_module.write_bytes_atomic, landing_module.write_json_atomic

    def record(uri: str) -> None:
        folder = Path(uri).parent
        if not Path(uri).name.startswith("_"):
            assert not (folder / SUCCESS_MARKER).exists(), "a stale marker sat next to new data"
        calls.append(f"{folder.name}/{Path(uri).name}")

    def bytes_spy(uri, data, options=None):
        record(uri)
        return write_bytes(uri, data, options)

    def json_spy(uri, payload, options=None):
        record(uri)
        return write_json(uri, payload, options)

    monkeypatch.setattr(landing_module, "write_bytes_atomic", bytes_spy)
    monkeypatch.setattr(landing_module, "write_json_atomic", json_spy)
    return calls


def read_partition(partition: Path, fmt: str) -> pd.DataFrame:
    path = partition / f"transactions.{fmt}"
    if fmt == "parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, parse_dates=["TX_DATETIME"]).astype(TRANSACTION_DTYPES)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_landing_round_trip_with_the_marker_written_last(tmp_path, monkeypatch, small_frame, fmt):
    for run in range(2):  # the second run replaces partitions that already have a marker
        calls = _recording_writers(monkeypatch)
        written = write_landing(small_frame, str(tmp_path), SMALL, fmt=fmt)
        expected = [f"date=2018-04-0{d}" for d in range(1, 7)]
        assert [Path(p).name for p in written] == expected
        for name in expected:
            mine = [c.split("/")[1] for c in calls if c.startswith(name + "/")]
            assert mine == [f"transactions.{fmt}", "_scenario.json", SUCCESS_MARKER], run
    parts = [read_partition(tmp_path / name, fmt) for name in expected]
    assert all(str(p["TX_DATETIME"].dtype) == "datetime64[us]" for p in parts)
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), small_frame)
    record = json.loads((tmp_path / "date=2018-04-03" / "_scenario.json").read_text())
    third_day = parts[2]
    assert record["day"] == "2018-04-03" and record["day_index"] == 2
    assert record["rows"] == len(third_day) and record["frauds"] == third_day["TX_FRAUD"].sum()
    assert record["config"] == SMALL.to_dict() and record["drift_active"] is False
    assert (tmp_path / "date=2018-04-03" / SUCCESS_MARKER).read_bytes() == b""


def test_landing_writes_only_the_selected_days_even_an_empty_one(tmp_path, small_frame):
    without_day_2 = small_frame[day_indices(small_frame, SMALL) != 2]
    written = write_landing(without_day_2, str(tmp_path), SMALL, fmt="csv", days=[3, 2])
    assert [Path(p).name for p in written] == ["date=2018-04-03", "date=2018-04-04"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["date=2018-04-03", "date=2018-04-04"]
    empty = read_partition(tmp_path / "date=2018-04-03", "csv")
    assert len(empty) == 0 and list(empty.columns) == list(TRANSACTION_DTYPES)
    with pytest.raises(ValueError, match="outside"):
        write_landing(small_frame, str(tmp_path), SMALL, days=[SMALL.n_days])
    with pytest.raises(ValueError, match="fmt"):
        write_landing(small_frame, str(tmp_path), SMALL, fmt="json")


def test_landing_on_a_remote_filesystem(small_frame):
    import fsspec

    fs = fsspec.filesystem("memory")
    root = "memory://test-simulator-landing"
    try:
        written = write_landing(small_frame, root, SMALL, days=[0])
        assert written == [f"{root}/date=2018-04-01"]
        assert fs.exists("/test-simulator-landing/date=2018-04-01/_SUCCESS")
        with fs.open("/test-simulator-landing/date=2018-04-01/transactions.parquet") as handle:
            day = pd.read_parquet(handle)
        assert len(day) == (day_indices(small_frame, SMALL) == 0).sum()
    finally:
        fs.rm("/test-simulator-landing", recursive=True)


def test_cli_lands_days_one_run_at_a_time(tmp_path, capsys, small_frame):
    tiny = ["--landing", str(tmp_path), "--days", "6", "--customers", "300"]
    tiny += ["--terminals", "600", "--seed", "11"]
    assert main([*tiny, "--only-days", "2"]) == 0
    assert "rows" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["date=2018-04-01", "date=2018-04-02"]
    assert main([*tiny, "--from-day", "2018-04-03", "--to-day", "3", "--format", "parquet"]) == 0
    landed = sorted(tmp_path.iterdir())
    assert [p.name for p in landed] == [f"date=2018-04-0{d}" for d in range(1, 5)]
    assert all((p / SUCCESS_MARKER).exists() for p in landed)
    together = pd.concat([read_partition(p, "parquet") for p in landed], ignore_index=True)
    pd.testing.assert_frame_equal(together, small_frame[day_indices(small_frame, SMALL) < 4])
    assert main([*tiny, "--only-days", "0"]) == 2
    assert main([*tiny, "--from-day", "9"]) == 2
    capsys.readouterr()
    with pytest.raises(SystemExit, match="^2$"):  # argparse's usage error
        main([*tiny, "--drift", "sideways"])
    assert "--drift: invalid choice: 'sideways'" in capsys.readouterr().err


def test_cli_module_entry_point_and_s3_options(tmp_path, monkeypatch):
    args = ["--landing", str(tmp_path), "--days", "2", "--customers", "20", "--terminals", "40"]
    done = subprocess.run([sys.executable, "-m", "mlops.simulator", *args], capture_output=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "date=2018-04-02" / SUCCESS_MARKER).exists()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    options = storage_options("s3://bucket/landing", "http://127.0.0.1:9000")
    assert options["key"] == "id" and options["secret"] == "secret"
    assert options["client_kwargs"]["endpoint_url"] == "http://127.0.0.1:9000"
    assert storage_options(str(tmp_path), "http://127.0.0.1:9000") is None
