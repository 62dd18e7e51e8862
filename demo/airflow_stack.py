"""The real Airflow, on the embedded defaults: SQLite metadata DB, LocalExecutor, local folders.

``AirflowStack`` migrates the DB, starts ``scheduler``, ``dag-processor``, ``triggerer`` and
``api-server`` (127.0.0.1, a free port) as subprocesses, each in its own session (a Ctrl-C in
the terminal reaches only this process, which then stops them), with logs in
``$AIRFLOW_HOME/stack-logs/``; it waits for ``/api/v2/monitor/health``, logs in through
SimpleAuthManager (user ``admin``; the password is the one the api-server generated in
``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``) and drives the DAGs over REST::

    with AirflowStack(home, env={"MLOPS_DATA_ROOT": ...}) as stack:
        stack.unpause("transactions_daily")
        runs = stack.wait_for_runs("transactions_daily", count=3)

Speed on 2 cores: parallelism 4, a 0.1 s idle scheduler loop, one parsing process, and the
scheduler preloads the task-time modules (``MLOPS_PRELOAD=1`` with eager plugin loading, see
``plugins/mlops_preload.py``): LocalExecutor forks its workers from the scheduler and each
task is forked from a worker, so every task starts with them imported.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
HEALTH = ("metadatabase", "scheduler", "triggerer", "dag_processor")
FINISHED = {"success", "failed"}
AIRFLOW = str(Path(sys.executable).parent / "airflow")
REAPER = Path(__file__).with_name("reaper.py")
REAP_GRACE_S = 20  # after the driver's death: SIGTERM, this long, then SIGKILL
REPO = Path(__file__).resolve().parents[1]
PASSWORDS = "simple_auth_manager_passwords.json.generated"


class StackError(RuntimeError):
    """A component died, did not become healthy, or a REST call failed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Simulated days land fast: both stacks (this one and demo.production_stack) run with these.
SCHEDULING_SPEED = {
    # A finished task is seen, and its downstream queued, within a tenth of a second.
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.1",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
    # A task's supervisor waits this long in select() between looks at its child: when the
    # child closes its sockets before it has exited, the finished task holds its executor
    # slot this long (5 s by default: most tasks did); 1 is the least the integer allows.
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
    # DAG files depend only on the environment: parse them at once, then seldom.
    "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
}


def stack_environment(
    home: Path, port: int, *, parallelism: int = 4, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of every component: this process's, then the stack's, then ``extra``."""
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            # sqlite3's 5 s busy timeout is too short for four components writing on 2 cores.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "mlops_airflow.metadata_db.SQLITE",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": "mlops_airflow.metadata_db.SQLITE",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": url,
            **SCHEDULING_SPEED,
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "GX_ANALYTICS_ENABLED": "false",
            "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",  # mlops.registry.trust loads
            "MLOPS_PROFILE": "local",
        }
    )
    env.update(extra or {})
    return env


def component_environment(env: Mapping[str, str], component: str, preload: bool) -> dict[str, str]:
    """Only the scheduler preloads: its forks run the tasks; the dag-processor stays light."""
    if component != "scheduler" or not preload:
        return {**env, "MLOPS_PRELOAD": "0"}
    return {**env, "MLOPS_PRELOAD": "1", "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False"}


def spawn(argv: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen:
    """A component in its own session (a Ctrl-C in the terminal reaches only the driver,
    which stops it; ``killpg`` reaches its workers), told SIGTERM if the driver dies."""
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_terminate_with_parent,
        )


def _terminate_with_parent() -> None:
    """Linux's parent-death signal: a driver killed with SIGKILL still stops its components."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class AirflowStack:
    """Start with ``start()`` (or ``with``), stop with ``stop()``; REST helpers in between."""

    components: tuple[str, ...] = COMPONENTS

    def __init__(
        self,
        home: Path,
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        # 4 on 2 cores: a task's supervisor keeps its executor slot up to a second after the
        # task has ended (MIN_HEARTBEAT_INTERVAL), when the next task could already run
        parallelism: int = 4,
        preload: bool = True,
    ) -> None:
        self.home = Path(home).resolve()
        self.port = port or free_port()
        self.preload = preload
        self.env = self.environment(parallelism, env or {})
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_dir = self.home / "stack-logs"
        self.processes: dict[str, subprocess.Popen] = {}
        self._client = httpx.Client(base_url=self.url, timeout=30)
        self._reaper: subprocess.Popen | None = None

    def environment(self, parallelism: int, extra: Mapping[str, str]) -> dict[str, str]:
        return stack_environment(self.home, self.port, parallelism=parallelism, extra=extra)

    def component_env(self, component: str) -> dict[str, str]:
        return component_environment(self.env, component, self.preload)

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> AirflowStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, timeout: float = 240) -> AirflowStack:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        _exit_on_sigterm()  # `kill` of this process then stops the components too
        self.watch()
        self.migrate()
        try:
            for component in self.components:
                self._launch(component)
            self.wait_until_healthy(timeout)
            self.login()
        except BaseException:
            self.stop()
            raise
        return self

    def migrate(self) -> None:
        log = self.log_dir / "db-migrate.log"
        with log.open("w") as out:
            done = subprocess.run(
                [AIRFLOW, "db", "migrate"], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        if done.returncode:
            raise StackError(f"airflow db migrate failed ({done.returncode}); see {log}")

    def watch(self) -> None:
        """Start the watchdog that stops every component if this driver dies (demo/reaper.py)."""
        if self._reaper is not None:
            return
        self.groups_file.write_text("")
        with (self.log_dir / "reaper.log").open("ab") as out:
            self._reaper = subprocess.Popen(
                [
                    sys.executable,
                    str(REAPER),
                    str(self.groups_file),
                    str(REAP_GRACE_S),
                    str(os.getpid()),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def groups_file(self) -> Path:
        return self.log_dir / "process-groups"

    def spawn(self, argv: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen:
        """``spawn``, the process group recorded for the watchdog."""
        process = spawn(argv, env, log)
        with self.groups_file.open("a") as groups:
            groups.write(f"{process.pid}\n")
        return process

    def _launch(self, component: str) -> None:
        argv = [AIRFLOW, *component.split(), *self.component_args(component)]
        log = self.log_dir / f"{component.replace(' ', '-')}.log"
        self.processes[component] = self.spawn(argv, self.component_env(component), log)

    def component_args(self, component: str) -> list[str]:
        return []

    def stop(self, grace: float = 30) -> None:
        """SIGTERM every process group, wait ``grace`` seconds, then SIGKILL the rest. A
        second Ctrl-C or SIGTERM while stopping is ignored: it must not cut the stop short."""
        with _signals_ignored():
            try:
                self.stop_components(grace)
            finally:
                if self._reaper is not None:  # everything stopped: the watchdog's job is done
                    self._reaper.terminate()
                    self._reaper.wait()
                    self._reaper = None

    def stop_components(self, grace: float) -> None:
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process, signal.SIGKILL)
            process.wait()
            try:  # task processes lead process groups of their own, in its session
                kill_session(process.pid)
            except StackError as err:  # the other components must still be stopped
                print(err, file=sys.stderr)
        self.processes.clear()
        self._client.close()

    def kill_component(self, component: str, timeout: float = 30) -> list[int]:
        """A crash: SIGKILL for the component and everything it started, task processes
        included (Airflow gives each its own process group; they stay in the component's
        session), no graceful stop. Until none is left; the leader's pid and those of the
        processes outside its group. ``relaunch`` starts the component again; until then
        ``check_alive`` reports it dead."""
        process = self.processes[component]
        _signal_group(process, signal.SIGKILL)  # the leader and its pool at once
        process.wait(timeout=timeout)  # reaped here; its orphans are init's to reap
        return [process.pid, *kill_session(process.pid, timeout)]

    def relaunch(self, component: str) -> None:
        """Start a component again (after ``kill_component``), as its supervisor would."""
        self._launch(component)

    def check_alive(self) -> None:
        for component, process in self.processes.items():
            if process.poll() is not None:
                log = self.log_dir / f"{component}.log"
                raise StackError(f"airflow {component} exited ({process.returncode}); see {log}")

    def health(self) -> dict[str, str]:
        try:
            body = self._client.get("/api/v2/monitor/health", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return {}
        return {name: (body.get(name) or {}).get("status") or "unknown" for name in HEALTH}

    def wait_until_healthy(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        status: dict[str, str] = {}
        while time.monotonic() < deadline:
            self.check_alive()
            status = self.health()
            if status and all(value == "healthy" for value in status.values()):
                return
            time.sleep(1)
        raise StackError(f"not healthy within {timeout:.0f} s: {status}; logs in {self.log_dir}")

    # ---------------------------------------------------------------- REST
    @property
    def password_file(self) -> Path:
        return self.home / PASSWORDS

    def login(self) -> None:
        password = json.loads(self.password_file.read_text())["admin"]
        response = self._client.post(
            "/auth/token", json={"username": "admin", "password": password}
        )
        _raise_for(response, "POST /auth/token")
        self._client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def api(self, method: str, path: str, *, retries: int = 5, **kwargs: Any) -> Any:
        """One REST call under /api/v2, with the token of ``login``; SQLite's "database is
        locked" (503) is retried."""
        if "Authorization" not in self._client.headers:
            raise StackError(f"{method} {path}: no token; every REST call is made after login()")
        for attempt in range(retries):
            response = self._client.request(method, f"/api/v2/{path.lstrip('/')}", **kwargs)
            if response.status_code != 503 or attempt == retries - 1:
                break
            time.sleep(1 + attempt)
        _raise_for(response, f"{method} {path}")
        return response.json() if response.content else None

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 120) -> None:
        """Until the dag-processor has serialized every DAG of ``dag_ids``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            found = {d["dag_id"] for d in self.api("GET", "dags", params={"limit": 100})["dags"]}
            if set(dag_ids) <= found:
                return
            time.sleep(1)
        errors = self.api("GET", "importErrors")["import_errors"]
        raise StackError(f"DAGs {sorted(set(dag_ids) - found)} not parsed; import errors: {errors}")

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"dags/{dag_id}", json={"is_paused": False})

    def trigger(
        self, dag_id: str, *, conf: dict | None = None, logical_date: str | None = None, **extra
    ) -> str:
        body = {"logical_date": logical_date, "conf": conf or {}, **extra}
        return self.api("POST", f"dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def create_backfill(
        self, dag_id: str, from_date: str, to_date: str, *, max_active_runs: int = 1, **extra
    ) -> dict:
        body = {
            "dag_id": dag_id,
            "from_date": from_date,
            "to_date": to_date,
            "max_active_runs": max_active_runs,
            "reprocess_behavior": "none",
            **extra,
        }
        return self.api("POST", "backfills", json=body, retries=10)

    def dag_runs(self, dag_id: str) -> list[dict]:
        # run_after, not logical_date: a partitioned run (transactions_daily) has none
        params = {"order_by": "run_after", "limit": 1000}
        return self.api("GET", f"dags/{dag_id}/dagRuns", params=params)["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return self.api("GET", path, params={"limit": 1000})["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """A task's XCom as JSON (what it returned, by default)."""
        path = f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        value = self.api("GET", path)["value"]
        return json.loads(value) if isinstance(value, str) else value

    def wait_for_run(self, dag_id: str, run_id: str, *, timeout: float = 1800) -> dict:
        """Until one run has finished; the run."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            run = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in FINISHED:
                return run
            time.sleep(1)
        raise StackError(f"{dag_id} {run_id} not finished in {timeout:.0f} s")

    def wait_for_runs(
        self,
        dag_id: str,
        count: int,
        *,
        timeout: float = 1800,
        poll: float = 2,
        on_progress: Callable[[list[dict]], None] | None = None,
    ) -> list[dict]:
        """Until ``count`` runs of ``dag_id`` have finished (success or failed); their runs."""
        deadline = time.monotonic() + timeout
        runs: list[dict] = []
        while time.monotonic() < deadline:
            self.check_alive()
            runs = self.dag_runs(dag_id)
            if on_progress:
                on_progress(runs)
            if sum(run["state"] in FINISHED for run in runs) >= count:
                return runs
            time.sleep(poll)
        states = [(run["dag_run_id"], run["state"]) for run in runs]
        raise StackError(f"{dag_id}: {count} runs not finished in {timeout:.0f} s: {states}")

    def describe(self) -> str:
        """Where the UI is now, and how to reopen it on the same DB afterwards."""
        return (
            f"Airflow UI: {self.url}  (user admin, password in {self.password_file})\n"
            f"logs: {self.log_dir}\n"
            f"afterwards: AIRFLOW_HOME={self.home} make airflow  (same metadata DB and runs)"
        )


def _exit_on_sigterm() -> None:
    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, leave)


@contextmanager
def _signals_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def process_table() -> list[tuple[int, int, int, str]]:
    """(pid, parent pid, session id, state) of every process, from /proc."""
    table = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table.append((int(entry.name), int(fields[1]), int(fields[3]), fields[0]))
    return table


def session_members(session: int, *, zombies: bool = False) -> list[int]:
    """The processes of a session (a component's: it leads one); zombies (dead, not yet
    reaped by their parent) only if asked for."""
    return [
        pid
        for pid, _, sid, state in process_table()
        if sid == session and (zombies or state != "Z")
    ]


def kill_session(session: int, timeout: float = 10) -> list[int]:
    """SIGKILL every process of ``session`` until none is left (one forked meanwhile is
    found on the next pass); the pids killed."""
    killed: list[int] = []
    deadline = time.monotonic() + timeout
    while members := session_members(session):
        if time.monotonic() > deadline:
            raise StackError(f"processes {members} of session {session} survive SIGKILL")
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            if pid not in killed:
                killed.append(pid)
        time.sleep(0.1)
    # the dead leave the process table once reaped (orphans by init): a stop returns then
    deadline = time.monotonic() + 5
    while session_members(session, zombies=True) and time.monotonic() < deadline:
        time.sleep(0.1)
    return killed


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    try:  # the group outlives its leader when workers linger
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def _raise_for(response: httpx.Response, what: str) -> None:
    if response.is_error:
        raise StackError(f"{what}: HTTP {response.status_code} {response.text[:500]}")
