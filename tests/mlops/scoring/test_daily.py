"""Daily scoring through the router, and the prediction log it writes."""

from __future__ import annotations

import threading
from datetime import date

import numpy as np
import pandas as pd
import pytest

from mlops.features.names import FEATURES
from mlops.rollout.live import LiveVariants, load_version, registry_client
from mlops.rollout.state import CHALLENGER, NO_ROLLOUT, RolloutState, route, write_rollout
from mlops.scoring.daily import score_day
from mlops.scoring.log import LOG_COLUMNS, ParquetSink, PostgresSink
from mlops.scoring.log_writer import BackgroundLog
from mlops.scoring.score import NoChampionError, ServingModels, score_rows
from mlops.settings import load_settings
from tests.support.published import published
from tests.support.serving_world import SERVED, served_transactions, set_alias


class Constant:
    """A stand-in model (not a mock of a library): scores every row ``value``."""

    def __init__(self, value: float) -> None:
        self.value = value

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.column_stack(
            [1 - np.full(len(frame), self.value), np.full(len(frame), self.value)]
        )


class Raises:
    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        raise MemoryError("challenger blew up")


CANARY = RolloutState("canary", "3", 0.5, "2018-05-10", "2")
CARDS = list(range(400))
ROWS = pd.DataFrame(np.zeros((len(CARDS), len(FEATURES))), columns=list(FEATURES))


def serving(challenger: object, state: RolloutState = CANARY) -> ServingModels:
    return ServingModels(
        LiveVariants("2", "3", state), {"champion": Constant(0.2), "challenger": challenger}
    )


def test_canary_rows_are_answered_by_the_variant_the_router_picks():
    scores = score_rows(serving(Constant(0.7)), CARDS, ROWS)
    assert scores.variant == [route(card, CANARY) for card in CARDS]
    assert 120 < scores.variant.count(CHALLENGER) < 280
    expected = [0.7 if v == CHALLENGER else 0.2 for v in scores.variant]
    assert scores.score.tolist() == pytest.approx(expected)
    assert scores.champion.tolist() == pytest.approx([0.2] * len(CARDS))
    assert scores.challenger_error is None


@pytest.mark.parametrize(
    ("challenger", "error"),
    [
        (Raises(), "raised MemoryError"),
        (Constant(1.5), "outside"),
        (Constant(np.nan), "not finite"),
    ],
)
def test_a_failing_challenger_never_answers(challenger, error):
    scores = score_rows(serving(challenger), CARDS, ROWS)
    assert set(scores.variant) == {"champion"}
    assert scores.score.tolist() == pytest.approx([0.2] * len(CARDS))
    assert error in scores.challenger_error
    assert np.isnan(scores.challenger).all()


def test_nothing_is_scored_without_a_champion():
    empty = ServingModels(LiveVariants(None, None, NO_ROLLOUT), {})
    with pytest.raises(NoChampionError, match="no champion"):
        score_rows(empty, CARDS, ROWS)


def log_rows(day: str, n: int, start: int = 0) -> pd.DataFrame:
    rows = {name: [0.0] * n for name in LOG_COLUMNS}
    rows |= {"request_id": [f"r{i}" for i in range(n)], "source": ["service"] * n}
    rows |= {"transaction_id": list(range(start, start + n)), "customer_id": [1] * n}
    rows |= {"terminal_id": [2] * n, "time": [pd.Timestamp(day)] * n}
    rows |= {"tx_datetime": [pd.Timestamp(day) + pd.Timedelta(hours=1)] * n}
    rows |= {"challenger_version": [None] * n, "challenger_error": [None] * n}
    return pd.DataFrame(rows)


def test_the_background_log_writes_whole_files_per_day_and_flushes_on_close(tmp_path):
    sink = ParquetSink(str(tmp_path / "predictions"))
    log = BackgroundLog(sink, max_batch=7, flush_s=30)
    for i in range(3):
        log.submit(log_rows("2018-05-10", 5, start=5 * i).to_dict("records"))
    log.submit(log_rows("2018-05-11", 2).to_dict("records"))
    log.close()
    assert log.written == 17
    folder = tmp_path / "predictions" / "service" / "date=2018-05-10"
    assert all(p.name.startswith("part-") for p in folder.iterdir())  # no temporary left
    assert sorted(sink.read_day("service", date(2018, 5, 10)).transaction_id) == list(range(15))
    assert len(sink.read_day("service", date(2018, 5, 11))) == 2


def test_a_full_queue_drops_rows_and_says_how_many_instead_of_waiting(tmp_path):
    gate = threading.Event()

    class SlowSink(ParquetSink):
        def append(self, frame):
            gate.wait(10)
            super().append(frame)

    dropped = []
    log = BackgroundLog(SlowSink(str(tmp_path)), max_batch=1, max_queue=3, on_drop=dropped.append)
    log.submit(log_rows("2018-05-10", 10).to_dict("records"))
    gate.set()
    log.close()
    assert sum(dropped) + log.written == 10 and sum(dropped) >= 6


@pytest.mark.integration
def test_the_postgres_log_replaces_a_day_in_one_transaction(postgres_url):
    import sqlalchemy

    table = f"prediction_log_test_{np.random.default_rng().integers(1e9)}"
    sink = PostgresSink(postgres_url, table=table)
    try:
        sink.append(log_rows("2018-05-10", 3))
        batch = log_rows("2018-05-10", 4, start=100).assign(source="batch")
        sink.replace_day("batch", date(2018, 5, 10), batch)
        sink.replace_day("batch", date(2018, 5, 10), batch)
        assert sink.read_day("batch", date(2018, 5, 10)).transaction_id.tolist() == [
            100,
            101,
            102,
            103,
        ]
        assert len(sink.read_day("service", date(2018, 5, 10))) == 3
    finally:
        with sink.engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"DROP TABLE {table}"))


@pytest.mark.integration
def test_rows_read_back_from_postgres_can_be_rescored_by_a_fitted_pipeline(postgres_url):
    """Monitoring rescores logged rows with the champion: scikit-learn refuses SQLAlchemy's
    ``quoted_name`` column labels as feature names (the production profile's monitoring
    crashed on its first matured day)."""
    import sqlalchemy
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlops.features.names import FEATURES

    table = f"prediction_log_test_{np.random.default_rng().integers(1e9)}"
    sink = PostgresSink(postgres_url, table=table)
    try:
        logged = log_rows("2018-05-10", 6).assign(source="batch")
        sink.replace_day("batch", date(2018, 5, 10), logged)
        rows = sink.read_day("batch", date(2018, 5, 10))
        assert all(type(name) is str for name in rows.columns)
        features = logged.loc[:, list(FEATURES)].astype("float64")
        scaler = ColumnTransformer([("all", StandardScaler(), list(FEATURES))])
        model = make_pipeline(scaler, LogisticRegression()).fit(features, [0, 1] * 3)
        assert model.predict_proba(rows.loc[:, list(FEATURES)]).shape == (6, 2)
    finally:
        with sink.engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"DROP TABLE {table}"))


def test_without_a_champion_the_day_is_skipped_saying_why_in_an_empty_partition(tmp_path):
    settings = load_settings({"MLOPS_DATA_ROOT": str(tmp_path)})
    result = score_day(settings, "2018-05-10")
    assert (result.status, result.rows) == ("skipped", 0)
    assert "no champion" in result.reason
    folder = tmp_path / "predictions" / "batch" / "date=2018-05-10"
    assert (folder / "_SUCCESS").exists()  # the day went through scoring; waiters may go on
    assert ParquetSink(str(tmp_path / "predictions")).read_day("batch", date(2018, 5, 10)).empty


def test_scoring_a_day_writes_its_partition_and_a_rerun_gives_the_same_rows(serving_world):
    settings, uri = serving_world.settings, serving_world.settings.mlflow_tracking_uri
    set_alias(uri, "champion", "1")
    state = RolloutState("canary", "2", 0.3, SERVED.isoformat(), "1")
    write_rollout(registry_client(uri), "fraud_model", state)
    first = score_day(settings, SERVED)
    folder = serving_world.root / "predictions" / "batch" / f"date={SERVED}"
    written = pd.read_parquet(published(folder) / "data.parquet")
    second = score_day(settings, SERVED)
    assert first == second and first.status == "scored"
    pd.testing.assert_frame_equal(pd.read_parquet(published(folder) / "data.parquet"), written)
    offline = served_transactions(serving_world.root)
    assert written.transaction_id.tolist() == sorted(offline.TRANSACTION_ID.tolist())
    assert written.variant.tolist() == [route(card, state) for card in written.customer_id]
    assert first.answered_by_challenger == (written.variant == CHALLENGER).sum() > 0
    champion = load_version(uri, "fraud_model", "1")
    by_id = offline.set_index("TRANSACTION_ID").loc[written.transaction_id]
    expected = champion.predict_proba(by_id[list(FEATURES)])[:, 1]
    assert written.champion_score.to_numpy() == pytest.approx(expected)
    assert written[list(FEATURES)].to_numpy() == pytest.approx(by_id[list(FEATURES)].to_numpy())


@pytest.mark.parametrize("kind", ["unloadable", "raising"])
def test_a_challenger_that_cannot_score_leaves_the_day_to_the_champion(
    serving_world, bad_versions, kind
):
    settings, uri = serving_world.settings, serving_world.settings.mlflow_tracking_uri
    bad = bad_versions[kind]
    set_alias(uri, "champion", "1")
    state = RolloutState("canary", bad, 0.5, SERVED.isoformat(), "1")
    write_rollout(registry_client(uri), "fraud_model", state)
    result = score_day(settings, SERVED)
    written = ParquetSink(str(serving_world.root / "predictions")).read_day("batch", SERVED)
    assert (result.status, result.champion_version, result.challenger_version) == (
        "scored",
        "1",
        bad,
    )
    assert result.answered_by_challenger == 0 and (written.variant == "champion").all()
    assert (written.score == written.champion_score).all() and written.challenger_score.isna().all()
    expected = "failed to load" if kind == "unloadable" else "challenger raised ValueError"
    assert expected in result.challenger_error
    assert (written.challenger_error == result.challenger_error).all()


def test_service_records_read_back_as_the_frame_path_writes_them(tmp_path):
    records = log_rows("2018-05-10", 4).to_dict("records")
    for i, record in enumerate(records):
        record |= {"champion_version": 3, "variant": "champion", "model_version": "3"}
        record["challenger_score"] = float("nan") if i % 2 else 0.25
        record["tx_datetime"] = record["tx_datetime"].to_pydatetime()  # as the service has it
    fast, slow = ParquetSink(str(tmp_path / "fast")), ParquetSink(str(tmp_path / "slow"))
    fast.append(records)  # the service's path: Arrow, no DataFrame
    slow.append(pd.DataFrame(records))
    got = fast.read_day("service", date(2018, 5, 10))
    pd.testing.assert_frame_equal(got, slow.read_day("service", date(2018, 5, 10)))
    assert got.champion_version.tolist() == ["3"] * 4  # text, as the log keeps versions
    assert got.challenger_score.isna().tolist() == [False, True, False, True]
    with pytest.raises(ValueError, match=r"missing \['score'\]"):
        fast.append([{k: v for k, v in records[0].items() if k != "score"}])
