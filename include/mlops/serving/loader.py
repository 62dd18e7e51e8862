"""The service's registry reads and model loads, in a child process.

Loading a version is seconds of Python: MLflow's download, the trust check's hashing,
skops rebuilding the pipeline, compiling the trees and comparing them with
``predict_proba`` on probe rows. In the serving process that work takes the interpreter's
lock in turns with the event loop, and every request in flight during a champion move
waited behind it (p99 15-185 ms over the swap). Here a child process does it all and hands
over a ``mlops.scoring.portable.PortableScorer``; the server only unpickles and builds it.
The child also reads the aliases, so the server never imports MLflow (nor holds its
credentials' use), and at start-up it imports MLflow while the server warms its feature
store: the two halves of the start-up run side by side on two cores.

Every call is bounded by ``timeout_s``: a child that does not answer in time is killed and
the call raises; the next call starts a new child, as after a crash. The child exits when
its request pipe closes (the server stopped, however it stopped) and, on Linux, when the
server's process dies (``PR_SET_PDEATHSIG``). Frames on the pipes are an 8-byte length and a
pickle; both ends are this package, in processes of the same user.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from typing import Any, BinaryIO

log = logging.getLogger(__name__)

HEADER = struct.Struct(">Q")
WORKER = "mlops.serving.loader_worker"


class LoaderError(RuntimeError):
    """The loader process failed, died or did not answer in time."""


def send(stream: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, protocol=5)
    stream.write(HEADER.pack(len(data)) + data)
    stream.flush()


def _read(fd: int, size: int, deadline: float | None) -> bytes:
    chunks, left = [], size
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(fd: int, deadline: float | None = None) -> Any:
    """One frame from ``fd``; ``EOFError`` when the other end closed, ``TimeoutError`` past
    ``deadline`` (``time.monotonic``)."""
    (size,) = HEADER.unpack(_read(fd, HEADER.size, deadline))
    return pickle.loads(_read(fd, size, deadline))  # noqa: S301 (our own child, see above)


class LoaderProcess:
    """``live()`` and ``load(version)`` of ``model_name`` at ``tracking_uri``, done by a
    child process; the child starts with ``start()`` or the first call."""

    def __init__(
        self, tracking_uri: str, model_name: str, *, timeout_s: float, worker: str = WORKER
    ) -> None:
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.timeout_s = timeout_s
        self.worker = worker  # the module run as the child (tests give a silent one)
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self._warmed = False

    def start(self) -> None:
        with self._lock:
            self._ensure()

    def _ensure(self) -> subprocess.Popen:
        if self._stopped:
            raise LoaderError("model loader: stopped")
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, "-m", self.worker, self.tracking_uri, self.model_name],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        return self._process

    def call(self, op: str, *args: Any) -> Any:
        """``op`` in the child; its exception is raised here (type and message kept)."""
        with self._lock:
            process = self._ensure()
            try:
                send(process.stdin, (op, args))
                status, value = receive(process.stdout.fileno(), time.monotonic() + self.timeout_s)
            except TimeoutError:
                self._end(process)
                raise LoaderError(
                    f"model loader: no answer to {op} in {self.timeout_s:g} s"
                ) from None
            except (EOFError, OSError) as err:
                self._end(process)
                code = process.returncode
                raise LoaderError(f"model loader exited ({code}) during {op}: {err!r}") from None
        if status == "error":
            raise value
        return value

    def live(self) -> Any:
        return self.call("live")

    def load(self, tracking_uri: str, model_name: str, version: str) -> Any:
        """The ``ModelHolder`` loader: a ``RowScorer`` built here from the child's check."""
        scorer = self.call("load", version).scorer()
        if not self._warmed:  # scikit-learn's lazy set-up in this process too, once
            from mlops.serving.holder import score_one_row

            score_one_row(scorer.model)
            self._warmed = True
        return scorer

    def _end(self, process: subprocess.Popen, grace_s: float = 0.0) -> None:
        if self._process is process:
            self._process = None
        try:
            process.stdin.close()
            process.wait(timeout=grace_s)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()

    def stop(self, grace_s: float = 5.0) -> None:
        """Close the request pipe (the child exits), kill it after ``grace_s``. Not behind
        the call lock: a load in progress then fails at once instead of holding the stop."""
        self._stopped = True
        process = self._process
        if process is not None:
            self._end(process, grace_s)

    @property
    def pid(self) -> int | None:
        process = self._process
        return None if process is None or process.poll() is not None else process.pid


__all__ = ["LoaderError", "LoaderProcess", "receive", "send"]
