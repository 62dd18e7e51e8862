"""Stops a stack's processes when its driver dies, however it dies.

The components get SIGTERM through their parent-death signal when the driver is killed with
SIGKILL, but a graceful stop can take long or hang (the scheduler waits for the tasks it
runs, and a task retries its calls to an api-server that is gone). This watchdog runs in its
own session beside the stack: once its parent (the driver) is gone, it sends SIGTERM to every
process group listed in ``groups_file``, waits ``grace`` seconds, then SIGKILLs what is left
of each component's session: Airflow runs each task in a process group of its own, which a
group signal misses, but it stays in the component's session (each component leads one).
A driver that stops the stack itself terminates the watchdog afterwards.

    python demo/reaper.py <groups_file> <grace_s> <driver_pid>

The driver names itself: one that dies before this script looks at its parent is still seen.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script

from demo.airflow_stack import StackError, kill_session  # noqa: E402

POLL_S = 0.5


def groups_in(path: Path) -> list[int]:
    try:
        return [int(line) for line in path.read_text().split() if line.strip()]
    except FileNotFoundError:
        return []


def alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_groups(groups: list[int], sig: signal.Signals) -> None:
    for group in groups:
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            pass


def reap(groups: list[int], grace_s: float) -> None:
    """SIGTERM, up to ``grace_s`` for the groups to end, then SIGKILL for every process
    left in their sessions (the groups' leaders lead a session each)."""
    signal_groups(groups, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while any(map(alive, groups)) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    signal_groups([g for g in groups if alive(g)], signal.SIGKILL)
    for session in groups:
        try:
            kill_session(session)
        except StackError as err:  # the other sessions must still be reaped
            print(err, file=sys.stderr)


def main(argv: list[str]) -> int:
    groups_file, grace_s, driver = Path(argv[0]), float(argv[1]), int(argv[2])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the driver's death or its SIGTERM
    while os.getppid() == driver:
        time.sleep(POLL_S)
    reap(groups_in(groups_file), grace_s)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
