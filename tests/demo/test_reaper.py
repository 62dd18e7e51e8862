"""The watchdog (demo/reaper.py) stops what a SIGKILLed driver started, task processes too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from demo.airflow_stack import REAPER, session_members

# A component leads its session and starts a "task" in a process group of its own that
# ignores SIGTERM, as Airflow's task supervisor does; it prints the task's pid.
COMPONENT = """
import subprocess, sys, time
task = subprocess.Popen(
    [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
     " print('up', flush=True); time.sleep(600)"],
    process_group=0, stdout=subprocess.PIPE,
)
task.stdout.readline()
print(task.pid, flush=True)
time.sleep(600)
"""

# The driver starts the watchdog and the component, as AirflowStack does, then waits.
DRIVER = """
import os, subprocess, sys, time
groups, reaper = sys.argv[1], sys.argv[2]
open(groups, "w").close()
watchdog = subprocess.Popen([sys.executable, reaper, groups, "2", str(os.getpid())], start_new_session=True)
component = subprocess.Popen(
    [sys.executable, "-c", sys.argv[3]], start_new_session=True, stdout=subprocess.PIPE
)
with open(groups, "a") as out:
    out.write(f"{component.pid}\\n")
print(watchdog.pid, component.pid, component.stdout.readline().decode().strip(), flush=True)
time.sleep(600)
"""


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_a_killed_driver_leaves_no_task_process_of_its_components(tmp_path):
    argv = [sys.executable, "-c", DRIVER, str(tmp_path / "groups"), str(REAPER), COMPONENT]
    driver = subprocess.Popen(argv, stdout=subprocess.PIPE)
    try:
        watchdog, component, task = map(int, driver.stdout.readline().split())
        assert os.getpgid(task) == task and os.getsid(task) == component
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=10)
        deadline = time.monotonic() + 30
        while running(watchdog) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not running(watchdog), "the watchdog did not finish"
        assert not running(task), "the task process outlived its component's session"
        assert session_members(component) == []
    finally:
        for pid in session_members(component):
            os.kill(pid, signal.SIGKILL)
