"""The model service as a child process: started on a free loopback port, ready when
``/health`` says so, stopped with SIGTERM (uvicorn then flushes the prediction log). Used by
the demo, the benchmarks and the tests, which all need the real process, not an app object.
Each process gets a fresh bearer token unless given one: callers send ``headers``.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx


def request_body(rows: Any) -> dict[str, Any]:
    """``/predict`` body for rows of transactions or offline features (keys, time, amount)."""
    return {
        "transactions": [
            {
                "transaction_id": int(r.TRANSACTION_ID),
                "customer_id": int(r.CUSTOMER_ID),
                "terminal_id": int(r.TERMINAL_ID),
                "tx_datetime": r.TX_DATETIME.isoformat(),
                "tx_amount": float(r.TX_AMOUNT),
            }
            for r in rows.itertuples(index=False)
        ]
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """``python -m mlops.serving.app`` on a free loopback port, stopped by its process id."""

    def __init__(
        self, env: dict[str, str], *, poll_s: float = 0.5, token: str | None = None, **serve: str
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token or secrets.token_urlsafe(24)
        self.headers = {"Authorization": f"Bearer {self.token}"}
        settings = {
            "PORT": str(self.port),
            "POLL_S": str(poll_s),
            "LOG_FLUSH_S": "0.2",
            "TOKEN": self.token,
            **serve,
        }
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")},
            **env,
            **{f"MLOPS_SERVE_{k}": v for k, v in settings.items()},
            "OMP_NUM_THREADS": "1",
        }
        self.process: subprocess.Popen | None = None
        self.started_s = 0.0
        # a file, not a pipe: a pipe nobody reads would block the service once full
        self.output = tempfile.NamedTemporaryFile(prefix="model-service-", suffix=".log")

    def log(self) -> str:
        return Path(self.output.name).read_text(errors="replace")

    def start(self, timeout_s: float = 600, *, ready: int = 200) -> ServiceProcess:
        """Start and wait until ``/health`` answers ``ready`` (503: up, no champion)."""
        began = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlops.serving.app"],
            env=self.env,
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )
        try:
            return self._wait_ready(began, timeout_s, ready)
        except BaseException:  # Ctrl-C or a failure while waiting: the service goes too
            self.stop()
            raise

    def _wait_ready(self, began: float, timeout_s: float, ready: int) -> ServiceProcess:
        while time.perf_counter() - began < timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited: {self.log()[-3000:]}")
            try:
                health = httpx.get(f"{self.url}/health", headers=self.headers, timeout=2)
                if health.status_code == ready:
                    self.started_s = time.perf_counter() - began
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"service not ready within {timeout_s} s")

    def stop(self) -> str:
        """SIGTERM (uvicorn shuts down cleanly, flushing the log); returns the output."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.log()

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
