"""Helper threads whose failure fails the test at once.

An exception in a plain ``threading.Thread`` only prints a warning, and the main thread may
be blocked waiting for what the helper should have done (a ``dag.test`` run waiting on an
approval or on scored days waits out its operator's timeout). ``helper_thread`` raises
``HelperFailed`` in the main thread as soon as the helper fails (through a signal, so a
main thread blocked in a sleep or a poll loop is woken), and again when the block ends.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

JOIN_TIMEOUT_S = 60


class HelperFailed(AssertionError):
    """A helper thread of the test raised; the cause is its exception."""


@contextmanager
def helper_thread(target: Callable[[], object], delay_s: float = 0.0) -> Iterator[None]:
    """Run ``target`` (after ``delay_s``) beside the block; its failure fails the test."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("helper_thread needs the main thread: it signals the test there")
    failures: list[BaseException] = []
    started = threading.Event()
    cancelled = threading.Event()

    def fail_in_main(signum, frame) -> None:
        raise HelperFailed(f"helper thread {target.__name__} failed") from failures[0]

    def run() -> None:
        started.set()
        if cancelled.wait(delay_s):
            return
        try:
            target()
        except BaseException as err:  # noqa: BLE001 - handed to the test, not swallowed
            failures.append(err)
            if not cancelled.is_set():  # the test still runs: wake it
                signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, fail_in_main)
    thread = threading.Thread(target=run, name=f"helper-{target.__name__}", daemon=True)
    try:
        thread.start()
        started.wait()
        yield
        thread.join(timeout=JOIN_TIMEOUT_S)
        if thread.is_alive():
            raise HelperFailed(f"helper thread {target.__name__} still running after the test")
    finally:
        cancelled.set()
        signal.signal(signal.SIGUSR1, previous)
    if failures:
        raise HelperFailed(f"helper thread {target.__name__} failed") from failures[0]
