"""``make demo`` and ``make airflow`` interrupted: Ctrl-C or SIGTERM (twice, the second
during the stop) and a SIGKILL of the driver leave no process of its Airflow (task processes
included) and free its port. The world is tiny: what matters is that the components and
their tasks run."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from demo.airflow_stack import REAP_GRACE_S, process_table

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
WORLD = ["--days", "8", "--customers", "200", "--history-days", "0"]


def demo_env() -> dict[str, str]:
    leaky = ("AIRFLOW", "MLOPS_")
    return {k: v for k, v in os.environ.items() if not k.startswith(leaky)}


def processes_of(home: Path) -> list[str]:
    """Processes whose environment names the demo's Airflow home, as ``pid cmdline``."""
    marker = f"AIRFLOW_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes():
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found.append(f"{entry.name} {command[:120]}")
        except OSError:
            continue
    return found


def sessions_started_by(driver: int) -> set[int]:
    """The sessions of the driver's children: each component runs in its own, with its
    workers and task processes (whose titles, rewritten, hide their environment)."""
    return {session for _, parent, session, _ in process_table() if parent == driver}


def in_sessions(sessions: set[int]) -> list[int]:
    return [pid for pid, _, session, _ in process_table() if session in sessions]


def wait_until(condition, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: " + log.read_text(errors="replace")[-3000:])
        time.sleep(0.5)


def task_started(home: Path) -> bool:
    """A task instance has written its log: its process runs under the scheduler."""
    return any((home / "logs").glob("dag_id=*/run_id=*/task_id=*/*.log"))


def interrupt(driver: subprocess.Popen, signals: tuple[signal.Signals, ...]) -> None:
    """Send each signal a second apart; the driver must end with a failure status."""
    for sig in signals:
        driver.send_signal(sig)
        time.sleep(1)
    assert driver.wait(timeout=180) != 0


def assert_stopped(home: Path, sessions: set[int], port: int, killed: bool, log: Path) -> None:
    """No process of the stack left and its api-server port free. After a SIGKILL the
    watchdog stops them (SIGTERM, then SIGKILL after its grace); otherwise the driver did
    before it exited (a few seconds for /proc to settle)."""

    def gone() -> bool:
        return not processes_of(home) and not in_sessions(sessions)

    wait_until(gone, REAP_GRACE_S + 15 if killed else 10, "left running", log)
    with socket.socket() as sock:
        sock.settimeout(1)
        assert sock.connect_ex(("127.0.0.1", port)) != 0, f"the api-server still listens on {port}"


@pytest.mark.parametrize(
    "signals", [(signal.SIGINT, signal.SIGINT), (signal.SIGKILL,)], ids=["ctrl-c-twice", "sigkill"]
)
def test_an_interrupted_demo_leaves_no_process_and_frees_its_port(tmp_path, signals):
    home, log = tmp_path / "airflow", tmp_path / "demo.log"
    argv = [sys.executable, str(REPO / "demo" / "run_demo.py"), *WORLD]
    argv += ["--home", str(home), "--data-root", str(tmp_path / "data")]
    with log.open("wb") as out:
        demo = subprocess.Popen(argv, env=demo_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "Airflow UI: " in log.read_text(errors="replace"), 300, "no UI", log)
        port = int(re.search(r"Airflow UI: http://127\.0\.0\.1:(\d+)", log.read_text())[1])
        wait_until(lambda: task_started(home), 120, "no task started", log)
        sessions = sessions_started_by(demo.pid) - {os.getsid(0)}
        assert processes_of(home) and len(sessions) >= 4  # api-server, scheduler, ...
        interrupt(demo, signals)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert_stopped(home, sessions, port, signals == (signal.SIGKILL,), log)


@pytest.mark.parametrize("signals", [(signal.SIGTERM, signal.SIGTERM)], ids=["sigterm-twice"])
def test_make_airflow_reopens_a_demo_home_and_stops_cleanly(tmp_path, signals):
    from demo.airflow_stack import free_port
    from demo.airflow_ui import DEMO_SETTINGS

    home, log, port = tmp_path / "airflow", tmp_path / "ui.log", free_port()
    home.mkdir()
    demo_data = tmp_path / "demo-data"
    (home / DEMO_SETTINGS).write_text(json.dumps({"MLOPS_DATA_ROOT": str(demo_data)}))
    env = {**demo_env(), "AIRFLOW_HOME": str(home), "AIRFLOW__API__PORT": str(port)}
    argv = [sys.executable, str(REPO / "demo" / "airflow_ui.py")]
    with log.open("wb") as out:
        ui = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        up = f"Airflow UI: http://127.0.0.1:{port}"
        wait_until(lambda: up in log.read_text(errors="replace"), 300, "no UI", log)
        sessions = sessions_started_by(ui.pid) - {os.getsid(0)}
        assert len(sessions) >= 4
        setting = f"MLOPS_DATA_ROOT={demo_data}".encode()
        environs = [Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") for pid in sessions]
        # (a component that sets its process title overwrites its environ in /proc)
        assert any(setting in environ for environ in environs), "the demo's settings unused"
        assert "the demo's run, as it ended" in log.read_text()
        interrupt(ui, signals)
    finally:
        if ui.poll() is None:
            ui.kill()
    assert_stopped(home, sessions, port, signals == (signal.SIGKILL,), log)
