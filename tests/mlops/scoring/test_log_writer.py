"""The service's prediction log writer: every row is written or counted as dropped, the
shutdown is bounded, and a PostgreSQL that drops its connections is survived."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest
from prometheus_client import generate_latest

from mlops.scoring.log import LOG_COLUMNS, PostgresSink
from mlops.scoring.log_writer import BackgroundLog
from mlops.serving.metrics import service_metrics

DAY = pd.Timestamp("2018-05-10")


def records(n: int, start: int = 0) -> list[dict]:
    rows = {name: [0.0] * n for name in LOG_COLUMNS}
    rows |= {"request_id": [f"r{i}" for i in range(start, start + n)], "source": ["service"] * n}
    rows |= {"transaction_id": list(range(start, start + n)), "customer_id": [1] * n}
    rows |= {"terminal_id": [2] * n, "time": [DAY] * n}
    rows |= {"tx_datetime": [DAY + pd.Timedelta(hours=1)] * n}
    rows |= {"challenger_version": [None] * n, "challenger_error": [None] * n}
    return pd.DataFrame(rows).to_dict("records")


def wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


class BlockingSink:
    """Takes a batch and never returns until released: a sink that hangs."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def append(self, frame: pd.DataFrame) -> None:
        self.entered.set()
        self.release.wait(30)


def test_close_with_a_hanging_sink_returns_by_its_deadline_and_counts_what_is_left(caplog):
    sink, dropped = BlockingSink(), []
    log = BackgroundLog(sink, max_batch=5, flush_s=0.01, on_drop=dropped.append)
    log.submit(records(5))
    assert sink.entered.wait(10)  # the first batch is in the sink's hands
    log.submit(records(15, start=5))
    started = time.monotonic()
    log.close(timeout=0.5)
    assert time.monotonic() - started < 2.0
    assert (sum(dropped), log.dropped, log.written) == (20, 20, 0)
    assert "20 row(s) dropped: not written within the 0.5 s shutdown deadline" in caplog.text
    log.submit(records(3, start=20))  # a request that raced the shutdown
    assert sum(dropped) == 23 and "dropped: the log is closed" in caplog.text
    sink.release.set()  # the hung batch finally goes through: still counted once, as dropped
    log._thread.join(10)
    assert (log.written, log.dropped) == (0, 23)


def test_a_refused_batch_is_counted_and_the_writer_goes_on(caplog):
    class RefusesTheSecondBatch:
        def __init__(self) -> None:
            self.calls, self.rows = 0, 0

        def append(self, frame: pd.DataFrame) -> None:
            self.calls += 1
            if self.calls == 2:
                raise ConnectionError("server closed the connection unexpectedly")
            self.rows += len(frame)

    sink, metrics, errors = RefusesTheSecondBatch(), service_metrics(), []
    log = BackgroundLog(  # wired as the service wires it (mlops.serving.app)
        sink, max_batch=4, flush_s=30, on_drop=metrics.log_dropped.inc, on_error=errors.append
    )
    log.submit(records(12))
    log.close()
    assert (sink.calls, sink.rows, log.written, log.dropped) == (3, 8, 8, 4)
    exposed = generate_latest(metrics.registry).decode()
    assert "fraud_prediction_log_dropped_total 4.0" in exposed
    assert [type(e) for e in errors] == [ConnectionError]
    assert "4 row(s) dropped: the sink refused the batch (ConnectionError(" in caplog.text


@pytest.fixture
def log_db(fresh_database):
    """A fresh PostgreSQL database for this test (tests/conftest.py)."""
    return fresh_database


def logged_rows(url: str) -> list[int]:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:
        query = "SELECT transaction_id FROM prediction_log ORDER BY transaction_id"
        ids = list(conn.execute(sqlalchemy.text(query)).scalars())
    engine.dispose()
    return ids


@pytest.mark.integration
def test_connections_killed_mid_batch_lose_only_the_counted_rows_and_the_writer_reconnects(
    log_db,
):
    """The batch whose INSERT meets a terminated backend is counted; the next batches go
    through a new connection (what a PostgreSQL restart does to the service)."""
    import sqlalchemy

    admin, name, url = log_db
    sink = PostgresSink(url)
    paused, resume, inserts = threading.Event(), threading.Event(), []

    @sqlalchemy.event.listens_for(sink.engine, "before_cursor_execute")
    def kill_during_the_third_insert(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("INSERT"):
            inserts.append(statement)
            if len(inserts) == 3:
                paused.set()
                resume.wait(10)

    dropped = []
    log = BackgroundLog(sink, max_batch=10, flush_s=0.05, on_drop=dropped.append)
    for start in range(0, 30, 10):
        log.submit(records(10, start=start))
    assert paused.wait(10)
    with admin.connect() as conn:
        query = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"
        killed = conn.execute(sqlalchemy.text(query), {"name": name}).scalars().all()
    assert killed and all(killed)
    resume.set()
    wait_until(lambda: log.written + log.dropped == 30)
    for start in range(30, 60, 10):
        log.submit(records(10, start=start))
    log.close(timeout=10)
    assert (log.written, log.dropped, sum(dropped)) == (50, 10, 10)
    assert logged_rows(url) == [*range(20), *range(30, 60)]
    sink.engine.dispose()


@pytest.mark.integration
def test_a_database_that_is_not_there_yet_drops_counted_batches_then_takes_the_rest(log_db):
    """The service starts while the log's database refuses connections; once it is there,
    the same writer (and sink) creates the table and writes."""
    import sqlalchemy

    admin, name, url = log_db
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"))
    sink, dropped = PostgresSink(url), []  # does not connect yet
    log = BackgroundLog(sink, max_batch=10, flush_s=0.05, on_drop=dropped.append)
    log.submit(records(10))
    wait_until(lambda: log.dropped == 10)
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"))
    log.submit(records(10, start=10))
    log.close(timeout=10)
    assert (log.written, sum(dropped)) == (10, 10)
    assert logged_rows(url) == list(range(10, 20))
    sink.engine.dispose()
