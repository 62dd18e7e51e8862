"""The lock a local writer holds on a day partition while it publishes it.

``<partition>/.lock`` is created with O_EXCL and holds the owner's pid and host, so a second
writer of the same partition is refused with ``PartitionLockedError`` naming the partition
and the owner, instead of interleaving its files with the first one's.

Stale locks: a lock whose owner is a process of this host that no longer exists (a task
killed with SIGKILL, a lost worker) is taken over by the next writer: it is renamed aside
under a unique name, so of two writers racing for it only one wins, then created afresh. A
lock without an owner after ``UNREADABLE_LOCK_WAIT_S`` (the writer died between creating it
and writing its pid) is stale too. A lock of another host cannot be judged from here (the
data root is then a shared folder): the error says to remove it by hand once that writer is
known to be gone. A reused pid makes a dead owner look alive; the same advice applies.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LOCK = ".lock"
UNREADABLE_LOCK_WAIT_S = 1.0  # how long a lock may stay without its owner's pid and host


class PartitionLockedError(RuntimeError):
    """Another writer holds the partition (the message names it and the owner)."""


@contextmanager
def partition_lock(path: str) -> Iterator[None]:
    """Hold ``<path>/.lock`` (O_EXCL) while publishing; refuse a partition another live
    writer holds; take over the lock of a dead process of this host."""
    os.makedirs(path, exist_ok=True)
    lock = os.path.join(path, LOCK)
    owner = {"pid": os.getpid(), "host": socket.gethostname()}
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            _take_over_if_stale(path, lock)
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(owner))
        break
    else:
        raise PartitionLockedError(f"partition {path}: another writer took the lock meanwhile")
    try:
        yield
    finally:
        try:
            os.remove(lock)
        except FileNotFoundError:
            pass


def _read_owner(lock: str) -> dict[str, Any] | None:
    """The lock's owner; None when it has none yet (a writer between creating the lock and
    writing its owner, microseconds apart) after waiting up to ``UNREADABLE_LOCK_WAIT_S``:
    then that writer died in between and the lock is stale."""
    began = time.perf_counter()
    while True:
        with open(lock) as handle:
            text = handle.read()
        try:
            return json.loads(text)
        except ValueError:
            if time.perf_counter() - began > UNREADABLE_LOCK_WAIT_S:
                return None
            time.sleep(0.05)


def _take_over_if_stale(path: str, lock: str) -> None:
    try:
        owner = _read_owner(lock)
    except FileNotFoundError:
        return  # released meanwhile: try again
    if owner is not None and (
        owner.get("host") != socket.gethostname() or _alive(int(owner.get("pid", 0)))
    ):
        raise PartitionLockedError(
            f"partition {path} is being published by another writer: pid {owner.get('pid')} "
            f"on {owner.get('host')} holds {lock}; retry later, or remove the lock if that "
            "process is gone"
        )
    try:  # stale: move it aside under a unique name, so one taker wins
        os.replace(lock, f"{lock}.stale-{uuid.uuid4().hex}")
    except FileNotFoundError:
        return
    _remove_stale_locks(path)


def _remove_stale_locks(path: str) -> None:
    for name in os.listdir(path):
        if name.startswith(f"{LOCK}.stale-"):
            try:
                os.remove(os.path.join(path, name))
            except FileNotFoundError:
                pass


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
