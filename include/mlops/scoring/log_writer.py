"""The model service's prediction log writer: rows in from request threads, batches out to a
sink from one background thread, and every row either written or counted as dropped.

A request must never wait on the log, so ``submit`` only queues. A row can be lost in four
ways, and each is counted (``on_drop(n)``, the service's ``fraud_prediction_log_dropped``)
and logged with the count and the reason:

- the queue is full (the sink has been down or slow for a while): the new rows;
- the sink refuses a batch (PostgreSQL restarted, the connection dropped): that batch. It is
  not retried, as retrying forever would grow memory without bound; the thread goes on, and
  the next batch gets a fresh connection (the sink's pool pings a connection before use);
- ``close`` gives the queue ``timeout`` seconds to flush; what is still queued or in the
  sink's hands at the deadline is counted, so a sink that hangs cannot hang the shutdown
  (a batch the sink finishes after the deadline stays counted as dropped: over-counting is
  the safe side for a log that monitoring trusts);
- rows submitted after ``close``.

So ``written + dropped == submitted`` once ``close`` returns. A killed process (SIGKILL)
loses its queue uncounted: at most ``flush_s`` seconds or ``max_batch`` rows of traffic.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops.scoring.log import PredictionSink

log = logging.getLogger(__name__)


class BackgroundLog:
    """Appends rows to a sink from one background thread, in batches; ``submit`` never waits.

    ``on_drop(n)`` is told about every row lost (see the module doc for the four reasons),
    ``on_error(exc)`` about each batch the sink refused."""

    def __init__(
        self,
        sink: PredictionSink,
        *,
        max_batch: int = 1000,
        flush_s: float = 1.0,
        max_queue: int = 100_000,
        on_drop: Callable[[int], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.sink = sink
        self.max_batch = max_batch
        self.flush_s = flush_s
        self.on_drop = on_drop or (lambda n: None)
        self.on_error = on_error or (lambda exc: None)
        self.written = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._in_flight = 0  # rows the writer has taken and not yet settled
        self._abandoned = False  # close() gave up waiting: whatever is left counts as dropped
        self._closing = threading.Event()
        self._full = False  # the last batch was max_batch rows: more may be waiting
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def submit(self, records: Sequence[dict[str, Any]]) -> None:
        if self._closing.is_set():
            self._drop(len(records), "the log is closed")
            return
        for taken, record in enumerate(records):
            try:
                self._queue.put_nowait(record)
            except queue.Full:
                self._drop(len(records) - taken, "the queue is full (the sink is down or slow)")
                return

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued within ``timeout`` seconds, then count what is left."""
        self._closing.set()  # wakes a writer sleeping through its interval
        self._thread.join(timeout)
        with self._lock:
            self._abandoned = True
            left, self._in_flight = self._in_flight, 0
        left += self._drain()
        if left:
            self._drop(left, f"not written within the {timeout:g} s shutdown deadline")

    def _drain(self) -> int:
        count = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return count
            count += 1

    def _drop(self, n: int, reason: str, exc: BaseException | None = None) -> None:
        with self._lock:
            self.dropped += n
        log.error("prediction log: %d row(s) dropped: %s", n, reason, exc_info=exc)
        self.on_drop(n)

    def _run(self) -> None:
        while not self._abandoned:
            batch = self._next_batch()
            if batch:
                self._write(batch)
            elif self._closing.is_set():
                return

    def _next_batch(self) -> list[dict[str, Any]]:
        """Up to ``max_batch`` rows: what is queued after ``flush_s`` (at once when closing,
        or when the last batch was full). The writer sleeps through the interval instead of
        waking for every row: a wake-up per request cost the requests about 7 % of the
        service's CPU in GIL hand-overs."""
        if not (self._closing.is_set() or self._full):
            self._closing.wait(self.flush_s)
        batch: list[dict[str, Any]] = []
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            batch.append(item)
        self._full = len(batch) == self.max_batch
        return batch

    def _write(self, batch: list[dict[str, Any]]) -> None:
        with self._lock:
            late = self._abandoned
            self._in_flight = 0 if late else len(batch)
        if late:  # taken from the queue while close() was counting what is left
            self._drop(len(batch), "the log closed before they were written")
            return
        try:
            self.sink.append(batch)
        except Exception as err:  # the service must keep serving, and this thread running
            with self._lock:
                counted, self._in_flight = self._abandoned, 0
            if not counted:
                self._drop(len(batch), f"the sink refused the batch ({err!r})", err)
            self.on_error(err)
            return
        with self._lock:
            counted, self._in_flight = self._abandoned, 0
            if not counted:
                self.written += len(batch)
        if counted:
            log.warning(
                "prediction log: %d row(s) counted as dropped at shutdown were written after",
                len(batch),
            )


__all__ = ["BackgroundLog"]
