"""Debian's ``prometheus`` and ``promtool`` for the tests that run them (``make prometheus``
installs both), and a real Prometheus as a child process on a free loopback port.

A missing tool skips its test with the reason, except under ``CI=true``, where it fails: CI
installs the package, so a skip there would hide an install step gone missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops.serving.process import free_port


def debian_tool(name: str) -> str:
    """The path of ``name`` (``prometheus``, ``promtool``); skip, or fail under CI=true."""
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None
    )
    if found is None:
        reason = f"{name} not installed (make prometheus: apt-get install prometheus)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return found


def wait_for(check: Callable[[], Any], timeout_s: float = 240) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value is not None and value is not False:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not true within {timeout_s} s: {check}")


class PrometheusProcess:
    """``prometheus`` with ``config`` (YAML text) in ``workdir``, stopped by its process id."""

    def __init__(self, config: str, workdir: Path) -> None:
        self.workdir = workdir
        self.config = workdir / "prometheus.yml"
        self.config.write_text(config, encoding="utf-8")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def log(self) -> str:
        return (self.workdir / "prometheus.log").read_text(errors="replace")

    def start(self) -> PrometheusProcess:
        argv = [
            debian_tool("prometheus"),
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        with (self.workdir / "prometheus.log").open("wb") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        return self

    def api(self, path: str, **params: str) -> Any:
        """``data`` of an API answer; None while the server is not up (or on an error)."""
        try:
            body = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=5).json()
        except (httpx.TransportError, ValueError):
            return None
        return body.get("data") if body.get("status") == "success" else None

    def value(self, query: str) -> float | None:
        """The first sample of an instant query, or None while there is none."""
        data = self.api("query", query=query)
        return float(data["result"][0]["value"][1]) if data and data["result"] else None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> PrometheusProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
